package matrix

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"time"

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
		cp, err := Prepare(CellSpec{Strategy: s, Target: true, Skew: "none", Latency: "0", Load: load,
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
