// Package model is the race model of DESIGN.md: for a strategy's behaviour, the gap a
// request was exposed to, the believed idle timeout T, the skew model and the one-way
// latency d, the probability that the request meets a connection the server has closed.
// idlerace prints the prediction beside the measurement; a large disagreement is a bug in
// the harness or a discovery about the client.
//
// Gaps here are measured by the client, from the end of the previous response as the
// client saw it, which is d after the server finished writing it. In the client's frame:
//
//	server closes at     T + s - d
//	FIN reaches client   T + s
//	a request written at g reaches the server at g + d
//
// so a request fails when g + 2d > T + s (DESIGN.md's g + d > T + s, with g counted from
// the server's end of the response), and a client that looks at the socket at g sees the
// FIN only when g > T + s. A path that carries FINs faster than data (the delay proxy
// jitters data but not FINs) moves the FIN's arrival earlier by that lead.
package model

import (
	"iter"
	"slices"
	"time"

	"github.com/idlerace/idlerace/attack/pool"
	"github.com/idlerace/idlerace/chaos"
)

// DefaultNotifyLag is how long a watcher takes, after the FIN arrives, to drop the
// connection: a goroutine wake-up on an idle machine. It widens watch's window.
const DefaultNotifyLag = 100 * time.Microsecond

// Params are the race's conditions for one cell.
type Params struct {
	// IdleTimeout is T, as the client believes it.
	IdleTimeout time.Duration
	// Skew draws s; nil means none.
	Skew chaos.Skew
	// Latency is d, the one-way network latency of data (its mean, with jitter).
	Latency time.Duration
	// FINLead is how much sooner than data a FIN crosses the path (data latency minus FIN
	// latency): the delay proxy's jitter, which FINs do not take, on average Jitter/2;
	// 0 for plain loopback and netem, which delays every packet alike. A FIN that
	// arrives sooner is seen sooner, so it narrows the window of strategies that look.
	FINLead time.Duration
	// Hint is the timeout the server advertises in Keep-Alive (0: none).
	Hint time.Duration
	// NotifyLag widens watch's window (DefaultNotifyLag when 0); NotifyLags, when set,
	// are its quantiles as measured, which then stand for it.
	NotifyLag  time.Duration
	NotifyLags []time.Duration
	// CloseLag is how late the server's close lands after its deadline T+s (its
	// goroutine's wake-up; the builtin upstream measures it). A request that arrives
	// after the server stopped reading (StopLag) and before the close is never read:
	// the server closes over it with an RST. CloseLag - StopLag widens the window of
	// every strategy that looks before reusing.
	CloseLag time.Duration
	// StopLag is how late after T+s the server stopped reading (its idle wait ended);
	// a request that arrived before was served, so the close, as a request meets it,
	// lands StopLag late. The builtin upstream measures it; 0 where unknown. It is at
	// most CloseLag: what lies between is the window of strategies that look.
	StopLag time.Duration
	// CloseLags and StopLags, when set, are those lags as measured: equally weighted
	// quantiles of their distributions, which then stand for CloseLag and StopLag. A
	// strategy that looks fails on the requests that land between the stop and the
	// close, so its rate follows the lags' means over a locally even sweep, not their
	// medians: a builtin close that one wake-up in fifty delays 2 ms widens read-probe's
	// window by 40 µs, which a median never shows (at T = 100 ms, 256 lanes, ±2 ms:
	// read-probe 4.6% measured, 1.4% modelled on the medians).
	CloseLags, StopLags []time.Duration
	// ReadLag is how long after the server wrote a response the client's gap began (its
	// pool took the connection back): the server's idle timer is that much ahead of the
	// client's. WriteLag is how long after the gap ended (the checkout, where a strategy
	// looks) the request left. Both are the wire's, under the cell's load; 0 unknown.
	ReadLag, WriteLag time.Duration
	// ReadLags and ReachLags, when set, are the read lag's quantiles and those of the
	// read plus the write lag, request by request (equally weighted); they then stand
	// for ReadLag and ReadLag + WriteLag. Their means are not enough where their tails
	// outrun the sweep: over gaps in c ± W, blind follows E[min(lag, W)], and at T =
	// 100 ms, 256 lanes, ±2 ms, a read lag of mean 320 µs is ~100 µs for most requests
	// and 10 ms for a few (blind modelled 4 points high on the mean).
	ReadLags, ReachLags []time.Duration
	// Method of the requests; decides whether idempotent-only retries replay them.
	Method string

	// arrive and seen are the lags folded (Prepare): a request reaches the server
	// arrive past g + 2d in the server's frame; a FIN is seen at g if it left seen before.
	// watched is seen less the watcher's notify lag.
	arrive, seen, watched []time.Duration
	prepared              bool
}

// cdf is P(s <= x).
func (p Params) cdf(x time.Duration) float64 {
	if p.Skew == nil {
		if x >= 0 {
			return 1
		}
		return 0
	}
	return p.Skew.CDF(x)
}

// maxSpread bounds the points a folded distribution keeps (spread): 64 quantiles.
const maxSpread = 64

// Prepare folds the measured lags together once, for the many gaps Fail is asked about
// (Predict and PredictWeighted call it; Fail does when it was not): the request's
// reach past the client's gap (ReachLags) less the server's stop lag, and the
// checkout's look (ReadLags) less its close lag. The server's lags and the client's
// are independent, so each difference is the spread of every pair. A prepared Params
// keeps what it folded: prepare it again after changing a lag.
func (p Params) Prepare() Params {
	p.arrive = spread(p.ReachLags, p.ReadLag+p.WriteLag, p.StopLags, p.StopLag)
	p.seen = spread(p.ReadLags, p.ReadLag, p.CloseLags, p.CloseLag)
	notify := p.NotifyLag
	if notify <= 0 {
		notify = DefaultNotifyLag
	}
	p.watched = spread(p.seen, 0, p.NotifyLags, notify)
	p.prepared = true
	return p
}

// spread is the distribution of a − b for independent a and b, each given as equally
// weighted quantiles or as one value, in at most maxSpread equally weighted points.
func spread(as []time.Duration, a time.Duration, bs []time.Duration, b time.Duration) []time.Duration {
	if len(as) == 0 {
		as = []time.Duration{a}
	}
	if len(bs) == 0 {
		bs = []time.Duration{b}
	}
	d := make([]time.Duration, 0, len(as)*len(bs))
	for _, x := range as {
		for _, y := range bs {
			d = append(d, x-y)
		}
	}
	slices.Sort(d)
	if len(d) <= maxSpread {
		return d
	}
	return Midpoints(d, maxSpread)
}

// Midpoints are the n midpoint quantiles of sorted (ascending, not empty): the value
// at the middle of each of n equal slices, equally weighted (repeated where sorted has
// fewer than n).
func Midpoints(sorted []time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = sorted[(2*i+1)*len(sorted)/(2*n)]
	}
	return out
}

// over is P(s <= x + q) averaged over the points q of a folded distribution.
func (p Params) over(x time.Duration, qs []time.Duration) float64 {
	var sum float64
	for _, q := range qs {
		sum += p.cdf(x + q)
	}
	return sum / float64(len(qs))
}

// MaxCloseLag is the longest close lag the model counts.
func (p Params) MaxCloseLag() time.Duration {
	if len(p.CloseLags) == 0 {
		return p.CloseLag
	}
	return slices.Max(p.CloseLags)
}

// Fail returns, for one request exposed to gap g, the probability that the caller sees a
// stale failure and the probability that the strategy retried one on the wire.
func Fail(b pool.Behaviour, p Params, g time.Duration) (stale, retried float64) {
	t := p.IdleTimeout
	if b.MaxIdle > 0 && g > b.MaxIdle && !(b.HintReplacesMaxIdle && b.UseHint && p.Hint > 0) {
		return 0, 0 // expired in the pool: a new connection
	}
	if b.Margin > 0 && !(b.HintOnly && p.Hint <= 0) {
		believed := t
		if b.UseHint && p.Hint > 0 {
			believed = p.Hint
		}
		if g > believed-b.Margin {
			return 0, 0 // dropped at checkout: the request goes on a new connection
		}
	}
	d := p.Latency
	if !p.prepared {
		p = p.Prepare()
	}
	// In the server's frame the checkout comes ReadLag after the client's gap says, and
	// the request WriteLag after the checkout: s < g + read + write lag + 2d - T - stop
	// lag, over the lags' distributions where they were measured.
	closedBeforeArrival := p.over(g+2*d-t, p.arrive)
	wire := closedBeforeArrival
	switch {
	case b.Probe && g >= b.ProbeAfter:
		// The probe at g sees a FIN that arrived by then: s < g + read lag - T + lead -
		// close lag.
		wire = closedBeforeArrival - p.over(g-t+p.FINLead, p.seen)
	case b.Watch:
		// The watcher drops the connection a notify lag after the FIN: s < g - lag - T + lead.
		// A checkout that asks the watcher (WatchAtCheckout) counts a FIN once the runtime's
		// poller has taken it, which is the watcher's wake-up but for the goroutine switch:
		// the thread that takes the FIN from epoll runs the goroutine it readied. Lanes
		// woken by their own timer thread (ptimer) do not wait in that poller, so its lag
		// is theirs too (at T = 1 s, ±3 ms: watch 2–3 points over a model without it).
		wire = closedBeforeArrival - p.over(g-t+p.FINLead, p.watched)
	}
	if wire < 0 {
		wire = 0
	}
	if b.Replays(p.Method) {
		// A replay goes on a new connection, which cannot be stale.
		return 0, wire
	}
	return wire, 0
}

// Predict averages Fail over the exposure gaps of a cell's requests. requests counts all
// measured requests, including those that were not exposed (they cannot fail stale).
func Predict(b pool.Behaviour, p Params, gaps []time.Duration, requests int64) (resetRate, retryRate float64) {
	return PredictWeighted(b, p, func(yield func(time.Duration, int64) bool) {
		for _, g := range gaps {
			if !yield(g, 1) {
				return
			}
		}
	}, requests)
}

// PredictWeighted is Predict over gaps given with their counts (attack.Gaps.Weighted): a
// gap yielded with count n weighs as n requests of that gap.
func PredictWeighted(b pool.Behaviour, p Params, gaps iter.Seq2[time.Duration, int64], requests int64) (resetRate, retryRate float64) {
	if requests <= 0 {
		return 0, 0
	}
	p = p.Prepare()
	var stale, retried float64
	for g, n := range gaps {
		s, r := Fail(b, p, g)
		stale += s * float64(n)
		retried += r * float64(n)
	}
	return stale / float64(requests), retried / float64(requests)
}
