package probe

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/idlerace/idlerace/upstreams"
)

// Run probes c.Target (Prepare first). It ends by itself within c.Bounds().
func Run(ctx context.Context, c *Config) (*Result, error) {
	if c.u == nil {
		if err := c.Prepare(); err != nil {
			return nil, err
		}
	}
	_, bound := c.Bounds()
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	start := time.Now()
	res := &Result{Target: c.u.String(), MaxTimeoutMS: ms(c.MaxTimeout), MaxRequestsTried: c.MaxRequests, Recommendations: []Recommendation{}, Findings: []string{}}
	defer func() {
		res.RequestsSent = c.sent.Load()
		res.TookMS = ms(time.Since(start))
	}()

	if err := countRequests(ctx, c, res); err != nil {
		return res, err
	}
	if res.MaxRequests != nil && *res.MaxRequests <= 1 {
		res.CloseMode = "none"
		res.Findings = append(res.Findings, fmt.Sprintf("closes the connection after every response (%s): nothing is ever reused, so there is no idle race to measure", res.MaxRequestsMode))
		return res, nil
	}
	edge, lo, mode, err := coarse(ctx, c)
	if err != nil {
		return res, err
	}
	res.CloseMode = mode
	switch mode {
	case "none":
		res.Findings = append(res.Findings, fmt.Sprintf("kept idle connections open for the whole search (up to %v): no idle timeout within --max-timeout", c.MaxTimeout))
	case "silent":
		if err := bisect(ctx, c, res, lo, edge); err != nil {
			return res, err
		}
	default:
		if err := fine(ctx, c, res, edge); err != nil {
			if mode != "edge" || ctx.Err() != nil {
				return res, err
			}
			// No close came to watch: a server that forgets idle connections silently
			// and resets what it is sent later.
			res.CloseMode = "silent"
			if err := bisect(ctx, c, res, lo, edge); err != nil {
				return res, err
			}
			break
		}
	}
	switch {
	case res.CloseMode == "rst":
		res.Findings = append(res.Findings, "closes idle connections with a RST, not a FIN: a client sees `connection reset by peer` rather than EOF, and a read probe still sees it")
	case res.CloseMode == "silent" && res.IdleTimeoutMS != nil:
		how := "no FIN, no RST: a request after it goes unanswered"
		if res.LateRequest == "rst" {
			how = "no FIN while idle; a request after it is reset"
		}
		res.Findings = append(res.Findings, fmt.Sprintf("drops idle connections silently after about %s (%s): a watching client or a read probe sees nothing, so only a client idle timeout below it is safe", fmtMS(res.IdleTimeoutMS.P50), how))
	}
	advertised(res)
	return res, nil
}

// countRequests sends requests back to back on one connection until the server closes
// it or MaxRequests are answered: the per-connection limit, the Keep-Alive header and
// the round trip.
func countRequests(ctx context.Context, c *Config, res *Result) error {
	c.progress(fmt.Sprintf("requests per connection (up to %d)", c.MaxRequests), time.Duration(c.MaxRequests)*c.ResponseTimeout)
	cn, err := dial(ctx, c)
	if err != nil {
		return fmt.Errorf("connect %s: %w", c.host, err)
	}
	defer cn.Close()
	var rtts []time.Duration
	for i := 1; i <= c.MaxRequests; i++ {
		o := cn.do(ctx)
		if o.err != nil {
			if i == 1 {
				return fmt.Errorf("%s %s: %w", c.Method, c.u, o.err)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			n := i - 1
			res.MaxRequests = &n
			switch {
			case o.silent:
				res.MaxRequestsMode = "silent"
				res.Findings = append(res.Findings, fmt.Sprintf("stops answering after %d requests on a connection, with no FIN and no RST: the next request waits for a client timeout", n))
			case o.reset:
				res.MaxRequestsMode = "rst"
			default:
				res.MaxRequestsMode = "fin"
			}
			if !o.silent {
				res.Findings = append(res.Findings, fmt.Sprintf("closes a connection after %d responses without saying Connection: close: a pool reuses it and request %d fails (%s)", n, n+1, res.MaxRequestsMode))
			}
			break
		}
		if res.KeepAlive == "" {
			res.KeepAlive = o.keepAliveHdr
		}
		if o.resp.StatusCode >= 400 && i == 1 {
			res.Findings = append(res.Findings, fmt.Sprintf("answers %s %s with %s: the idle behaviour below is that of an error response", c.Method, c.u.Path, o.resp.Status))
		}
		if i > 1 {
			rtts = append(rtts, o.rtt)
		}
		if o.closeAnnounced {
			n := i
			res.MaxRequests, res.MaxRequestsMode = &n, "announced"
			break
		}
	}
	if len(rtts) > 0 {
		slices.Sort(rtts)
		res.RTTMS = ms(rtts[len(rtts)/2])
	}
	return nil
}

// coarse finds the close's neighbourhood: fresh connections idle for gaps doubling
// from 100 ms, each watched while idle. A FIN or RST seen while watching gives the
// close's age directly (mode "fin" or "rst"); a gap that passes with nothing seen but
// whose next request goes unanswered brackets a silent close in (lo, edge].
func coarse(ctx context.Context, c *Config) (edge, lo time.Duration, mode string, err error) {
	var prev time.Duration
	for _, g := range c.gaps() {
		c.progress(fmt.Sprintf("coarse search: idle %v", g), g+c.ResponseTimeout)
		cn, err := dial(ctx, c)
		if err != nil {
			return 0, 0, "", fmt.Errorf("connect %s: %w", c.host, err)
		}
		o := cn.do(ctx)
		if o.err != nil {
			cn.Close()
			return 0, 0, "", fmt.Errorf("coarse search: first request: %w", o.err)
		}
		age, reset, closed, werr := cn.watch(ctx, cn.last.Add(g))
		if werr != nil {
			cn.Close()
			return 0, 0, "", fmt.Errorf("coarse search: %w", werr)
		}
		if closed {
			cn.Close()
			if reset {
				return age, prev, "rst", nil
			}
			return age, prev, "fin", nil
		}
		o = cn.do(ctx)
		cn.Close()
		if ctx.Err() != nil {
			return 0, 0, "", ctx.Err()
		}
		if o.silent {
			return g, prev, "silent", nil
		}
		if o.err != nil {
			// Reset or EOF on a gap that watched nothing: the close came just after
			// the watch ended, or the server resets what it forgot silently. The
			// fine phase tells which.
			return g, prev, "edge", nil
		}
		prev = g
	}
	return 0, 0, "none", nil
}

// fine watches Conns fresh connections at once until each closes: the close's
// distribution. On loopback, for a plain GET, the ages come from
// upstreams.MeasureIdleCloses (kernel receive timestamps, one ppoll thread); elsewhere,
// or when the probe's request has headers, a body or another method (which that
// measurement does not send), from this package's reads. Beside it, one more
// connection writes a request after its close.
func fine(ctx context.Context, c *Config, res *Result, edge time.Duration) error {
	wait := 2*edge + 2*c.ResponseTimeout
	c.progress(fmt.Sprintf("close distribution: %d connections", c.Conns), wait)
	var late string
	var wg sync.WaitGroup
	wg.Go(func() { late = lateRequest(ctx, c, wait) })
	var ages []time.Duration
	resets := 0
	var err error
	if c.AllowRemote || c.Method != http.MethodGet || len(c.Header) > 0 || len(c.Body) > 0 {
		ages, resets, err = watchMany(ctx, c, wait)
	} else {
		var m upstreams.IdleCloses
		m, err = upstreams.MeasureIdleCloses(ctx, c.u.String(), c.Conns, wait)
		c.sent.Add(int64(c.Conns))
		ages, resets = m.Closes, m.Resets
	}
	wg.Wait()
	if len(ages) < 2 {
		if err == nil {
			err = errors.New("no connection saw a close")
		}
		return fmt.Errorf("close distribution: %w", err)
	}
	// A few connections that failed do not spoil the others' samples.
	res.LateRequest = late
	if resets*2 > len(ages) {
		res.CloseMode = "rst"
	} else {
		res.CloseMode = "fin"
	}
	res.IdleTimeoutMS = closesOf(ages)
	return nil
}

// watchMany is MeasureIdleCloses' measurement for a target outside loopback, or for a
// request of the user's own.
func watchMany(ctx context.Context, c *Config, wait time.Duration) ([]time.Duration, int, error) {
	var mu sync.Mutex
	var ages []time.Duration
	resets := 0
	var firstErr error
	var wg sync.WaitGroup
	for range c.Conns {
		wg.Go(func() {
			age, reset, err := watchOne(ctx, c, wait)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			ages = append(ages, age)
			if reset {
				resets++
			}
		})
	}
	wg.Wait()
	return ages, resets, firstErr
}

func watchOne(ctx context.Context, c *Config, wait time.Duration) (time.Duration, bool, error) {
	cn, err := dial(ctx, c)
	if err != nil {
		return 0, false, err
	}
	defer cn.Close()
	if o := cn.do(ctx); o.err != nil {
		return 0, false, o.err
	}
	age, reset, closed, err := cn.watch(ctx, cn.last.Add(wait))
	if err == nil && !closed {
		err = fmt.Errorf("no close within %v", wait)
	}
	return age, reset, err
}

// lateRequest waits for one connection's close, then writes a request into it.
func lateRequest(ctx context.Context, c *Config, wait time.Duration) string {
	cn, err := dial(ctx, c)
	if err != nil {
		return ""
	}
	defer cn.Close()
	if o := cn.do(ctx); o.err != nil {
		return ""
	}
	if _, _, closed, err := cn.watch(ctx, cn.last.Add(wait)); err != nil || !closed {
		return ""
	}
	return cn.lateRequest(ctx)
}

// bisect narrows a silent close bracketed in (lo, hi] to 1% of lo or 2 ms: a fresh
// connection idles mid, then asks again; an answer moves lo up, silence moves hi down.
func bisect(ctx context.Context, c *Config, res *Result, lo, hi time.Duration) error {
	for range bisectSteps {
		if hi-lo <= max(2*time.Millisecond, lo/100) {
			break
		}
		mid := lo + (hi-lo)/2
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < mid+3*c.ResponseTimeout {
			break // the probe's bound: report the bracket reached
		}
		c.progress(fmt.Sprintf("bisection: idle %v", mid.Round(time.Millisecond)), mid+2*c.ResponseTimeout)
		cn, err := dial(ctx, c)
		if err != nil {
			return fmt.Errorf("connect %s: %w", c.host, err)
		}
		o := cn.do(ctx)
		if o.err == nil {
			_, _, _, err = cn.watch(ctx, cn.last.Add(mid))
			if err == nil {
				o = cn.do(ctx)
			}
		} else {
			err = fmt.Errorf("first request: %w", o.err)
		}
		cn.Close()
		if err != nil || ctx.Err() != nil {
			return fmt.Errorf("bisection: %w", errors.Join(err, ctx.Err()))
		}
		if o.err == nil {
			lo = mid
		} else {
			hi = mid
			if o.reset {
				res.LateRequest = "rst"
			}
		}
	}
	res.IdleTimeoutMS = &Closes{P50: ms(lo + (hi-lo)/2), P99: ms(hi), Min: ms(lo), Max: ms(hi),
		P50CI95: [2]float64{ms(lo), ms(hi)}, Method: "bisection"}
	return nil
}

// advertised reads the Keep-Alive header and sets it beside the measured close.
func advertised(res *Result) {
	for part := range strings.SplitSeq(res.KeepAlive, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch strings.ToLower(k) {
		case "timeout":
			if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 {
				res.AdvertisedTimeoutS = &f
			}
		case "max":
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				res.AdvertisedMax = &n
			}
		}
	}
	adv := res.AdvertisedTimeoutS
	switch {
	case adv == nil:
		res.Advertised = "not advertised"
	case res.IdleTimeoutMS == nil:
		res.Advertised = "disagrees"
		res.Findings = append(res.Findings, fmt.Sprintf("advertises Keep-Alive timeout=%g but closed no idle connection within the search", *adv))
	default:
		p50 := res.IdleTimeoutMS.P50
		advMS := *adv * 1000
		tol := max(2, advMS/100)
		switch {
		case p50 >= advMS-tol && p50 <= advMS+tol:
			res.Advertised = "agrees"
		case *adv == float64(int64(*adv)) && p50 > advMS && p50 < advMS+1000:
			// Keep-Alive's timeout is whole seconds for most servers: a close
			// between N and N+1 s is honestly told as N.
			res.Advertised = "rounds down"
		default:
			res.Advertised = "disagrees"
			d := p50 - advMS
			when := "later"
			if d < 0 {
				d, when = -d, "earlier"
			}
			res.Findings = append(res.Findings, fmt.Sprintf("advertises Keep-Alive timeout=%g but closes idle connections at %s (p50), %s %s: a client that learns its timeout from the header %s", *adv, fmtMS(p50), fmtMS(d), when, map[string]string{"later": "gives up connections it could have kept", "earlier": "reuses connections the server has closed"}[when]))
		}
	}
	if res.AdvertisedMax != nil && res.MaxRequests != nil && *res.AdvertisedMax < *res.MaxRequests {
		res.Findings = append(res.Findings, fmt.Sprintf("advertises max=%d but served %d requests on one connection", *res.AdvertisedMax, *res.MaxRequests))
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fmtMS(v float64) string {
	if v >= 1000 {
		return strconv.FormatFloat(v/1000, 'f', 3, 64) + " s"
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + " ms"
}
