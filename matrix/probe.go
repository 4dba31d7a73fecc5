package matrix

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/idlerace/idlerace/attack/agent"
	"github.com/idlerace/idlerace/upstreams/probe"
)

// WindowStrategies are the strategies whose race window a probe measures at the
// server: blind is the whole exposure, watch and read-probe what a client that looks
// before it reuses still loses.
var WindowStrategies = []string{"blind", "watch", "read-probe"}

// Window sweeps: 16 lanes, at least 4 periods and 3 s, and at most maxWindowPeriods so
// that a server closing after a few milliseconds does not cost thousands of requests.
const (
	windowLanes      = 16
	maxWindowPeriods = 30
)

// WindowPlan is the fine sweep a probe runs per strategy at the close it found: T the
// measured median close, gaps swept ±3 ms around it, or the close's own spread when
// wider, up to the T/4 a sweep takes by default.
type WindowPlan struct {
	T, Width time.Duration
	Periods  int
}

// PlanWindows plans the window sweeps for a watched close; ok is false when the probe
// saw no close it could aim at (bisected or none).
func PlanWindows(res *probe.Result) (p WindowPlan, ok bool) {
	c := res.IdleTimeoutMS
	if c == nil || c.Method != "watched" {
		return p, false
	}
	p.T = time.Duration(c.P50 * float64(time.Millisecond)).Round(10 * time.Microsecond)
	spread := time.Duration((c.Max - c.Min) * float64(time.Millisecond))
	p.Width = max(3*time.Millisecond, min(spread, p.T/4)).Round(10 * time.Microsecond)
	p.Periods = min(maxWindowPeriods, max(4, int(math.Ceil(float64(3*time.Second)/float64(p.T)))))
	return p, true
}

// Load is the sweep spec of one window cell, its requests capped at a lane's share of
// one a period (a gap shorter than T could otherwise add a few).
func (p WindowPlan) Load() string {
	return fmt.Sprintf("sweep:lanes=%d,width=%s,periods=%d,requests=%d", windowLanes, p.Width, p.Periods, windowLanes*p.Periods)
}

// cellRequests bounds one window cell's requests: the measured ones its load is capped
// at, and the primes, one a lane to start and one after each failure (at most one per
// measured request).
func cellRequests(periods int) int { return 2*windowLanes*periods + windowLanes }

// Bounds is what the window sweeps of all WindowStrategies may cost: cellRequests each,
// and a cell lasting at most periods+1 of T+width.
func (p WindowPlan) Bounds() (requests int, took time.Duration) {
	n := len(WindowStrategies)
	return n * cellRequests(p.Periods), time.Duration(n*(p.Periods+1)) * (p.T + p.Width)
}

// WindowBoundsBefore bounds the window sweeps before the close is known, for a search
// up to maxTimeout (the close found is at most that): the request cap holds whatever T
// is. A cell lasts (periods+1)(T+width) with width ≤ max(3 ms, T/4): below 750 ms at
// most 31 periods of 750 ms + 187.5 ms, above it 5 periods of 1.25 T.
func WindowBoundsBefore(maxTimeout time.Duration) (requests int, took time.Duration) {
	n := len(WindowStrategies)
	short := (maxWindowPeriods + 1) * (750*time.Millisecond + 750*time.Millisecond/4)
	long := 5 * (maxTimeout + max(3*time.Millisecond, maxTimeout/4))
	return n * cellRequests(maxWindowPeriods), time.Duration(n) * max(short, long)
}

// ProbeWindows measures each strategy's race window at a probed server: one cell per
// strategy against the target, planned by PlanWindows, its requests the probe's own
// (method, headers, body; a nil body is the method's default).
func ProbeWindows(ctx context.Context, res *probe.Result, method string, header http.Header, body []byte, progress func(string, time.Duration)) error {
	p, ok := PlanWindows(res)
	if !ok {
		return nil
	}
	load := p.Load()
	res.WindowMS = map[string]probe.Window{}
	for _, s := range WindowStrategies {
		if progress != nil {
			progress("race window: "+s, time.Duration(p.Periods+1)*(p.T+p.Width))
		}
		cp, err := Prepare(CellSpec{Strategy: s, Upstream: "external", Skew: "none", Latency: "0", Load: load,
			IdleTimeout: p.T, Method: method, Header: header, Body: body, Seed: 1})
		if err != nil {
			return err
		}
		out, err := RunTarget(ctx, cp, res.Target, nil)
		if err != nil {
			return fmt.Errorf("race window of %s: %w", s, err)
		}
		res.WindowMS[s] = probe.Window{MeasuredMS: out.Cell.WindowMS, ModelMS: out.Cell.ModelWindowMS,
			Requests: out.Cell.Requests, Stale: out.Cell.Stale}
		res.RequestsSent += out.Cell.Requests + out.Cell.Primes
	}
	return nil
}

// Recommend fills res.Recommendations: for Go's net/http, the timeout-margin strategy,
// every client kind with an idle setting and an nginx upstream block, the longest idle
// timeout that is still below the earliest close the probe saw. The margin is the
// larger of 1% of that close, twice the closes' spread and 1 ms: room for the client's
// timer and the server's.
func Recommend(res *probe.Result) {
	c := res.IdleTimeoutMS
	if c == nil {
		return
	}
	earliest := c.Min
	spread := c.P99 - c.Min
	margin := math.Max(math.Max(earliest/100, 2*spread), 1)
	safe := earliest - res.RTTMS - margin
	arith := fmt.Sprintf("earliest close %s − RTT %s − margin %s (max of 1%%, 2 × spread %s, 1 ms) = %s",
		msText(earliest), msText(res.RTTMS), msText(margin), msText(spread), msText(safe))
	if c.Method == "bisection" {
		arith = "silent close: only an idle timeout protects a client (a watch or a read probe sees nothing); " + arith
	}
	d := time.Duration(safe * float64(time.Millisecond)).Truncate(time.Millisecond)
	if d <= 0 { // a zero idle timeout means "no limit" to Go and to most libraries
		res.Recommendations = append(res.Recommendations, probe.Recommendation{Client: "any", Setting: "no idle timeout is safe", Arithmetic: arith})
		return
	}
	addAt := func(client, setting, spec string, v time.Duration) {
		r := probe.Recommendation{Client: client, Setting: setting, Arithmetic: arith, Spec: spec}
		if v > 0 {
			r.ValueMS = float64(v) / float64(time.Millisecond)
			r.PredictedResetRate = closesBefore(c, r.ValueMS+res.RTTMS)
			r.ExtraConnsPer1k = math.Max(0, (c.P50-r.ValueMS)/c.P50*1000)
		}
		res.Recommendations = append(res.Recommendations, r)
	}
	add := func(client, setting, spec string) { addAt(client, setting, spec, d) }
	add("Go net/http", "Transport.IdleConnTimeout ≤ "+d.String(), "")
	t := time.Duration(c.P50 * float64(time.Millisecond)).Round(time.Millisecond)
	add("timeout-margin", fmt.Sprintf("margin ≥ %s with T = %s", (t-d).String(), t), fmt.Sprintf("timeout-margin:margin=%s", t-d))
	for _, k := range agent.Kinds() {
		is := agent.IdleSettingOf(k)
		if is == nil {
			continue
		}
		v := d
		if is.WholeSeconds {
			v = d.Truncate(time.Second)
			if v == 0 {
				addAt(k, is.Option+": none safe (whole seconds only, and the server closes within 1 s)", "", 0)
				continue
			}
		}
		addAt(k, fmt.Sprintf("%s ≤ %s", is.Option, v), fmt.Sprintf("%s:%s=%s", k, is.Option, v), v)
	}
	add("nginx (as a proxy in front)", fmt.Sprintf("upstream { keepalive_timeout %dms; }", d.Milliseconds()), "")
}

// closesBefore is the share of the probe's closes that land before ms, read off the
// quantiles it kept (min, p50, p99, max), linear between them: 0 below the earliest.
func closesBefore(c *probe.Closes, ms float64) float64 {
	pts := []struct{ x, q float64 }{{c.Min, 0}, {c.P50, 0.5}, {c.P99, 0.99}, {c.Max, 1}}
	if ms < pts[0].x {
		return 0
	}
	for i := 1; i < len(pts); i++ {
		if ms < pts[i].x {
			a, b := pts[i-1], pts[i]
			return a.q + (b.q-a.q)*(ms-a.x)/(b.x-a.x)
		}
	}
	return 1
}

func msText(v float64) string {
	if math.Abs(v) >= 1000 {
		return fmt.Sprintf("%.3fs", v/1000)
	}
	return fmt.Sprintf("%.2fms", v)
}
