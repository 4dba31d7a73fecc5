// Package recommend says which client settings are safe at a server, from when it was
// seen to close idle connections: by a probe (upstreams/probe) or during a run's cells
// (results.Server.IdleCloseMS). Every setting shows its arithmetic, the model's stale
// rate at it and what it costs in new connections.
package recommend

import (
	"fmt"
	"math"
	"time"

	"github.com/idlerace/idlerace/attack/agent"
	"github.com/idlerace/idlerace/upstreams/probe"
)

// For is the settings safe at a server whose idle closes are c, with a round trip of
// rttMS: for Go's net/http, the timeout-margin strategy (at a believed T of believedMS,
// or the median close rounded to the millisecond when 0), every client kind with an
// idle setting and an nginx upstream block, the longest idle timeout still below the
// earliest close. The margin is the larger of 1% of that close, twice the closes'
// spread (p99 − earliest) and 1 ms: room for the client's timer and the server's.
//
// A request sent idle g reaches the server idle g + RTT (the response's way back and
// the request's way there), so the round trip comes off too.
func For(c probe.Closes, rttMS, believedMS float64) []probe.Recommendation {
	earliest := c.Min
	spread := c.P99 - c.Min
	margin := math.Max(math.Max(earliest/100, 2*spread), 1)
	safe := earliest - rttMS - margin
	arith := fmt.Sprintf("earliest close %s − RTT %s − margin %s (max of 1%%, 2 × spread %s, 1 ms) = %s",
		MS(earliest), MS(rttMS), MS(margin), MS(spread), MS(safe))
	if c.Method == "bisection" {
		arith = "silent close: only an idle timeout protects a client (a watch or a read probe sees nothing); " + arith
	}
	d := time.Duration(safe * float64(time.Millisecond)).Truncate(time.Millisecond)
	if d <= 0 { // a zero idle timeout means "no limit" to Go and to most libraries
		return []probe.Recommendation{{Client: "any", Setting: "no idle timeout is safe", Arithmetic: arith}}
	}
	var out []probe.Recommendation
	addAt := func(client, setting, spec string, v time.Duration) {
		r := probe.Recommendation{Client: client, Setting: setting, Arithmetic: arith, Spec: spec}
		if v > 0 {
			r.ValueMS = float64(v) / float64(time.Millisecond)
			r.PredictedResetRate = closesBefore(c, r.ValueMS+rttMS)
			r.ExtraConnsPer1k = math.Max(0, (c.P50-r.ValueMS)/c.P50*1000)
		}
		out = append(out, r)
	}
	add := func(client, setting, spec string) { addAt(client, setting, spec, d) }
	add("Go net/http", "Transport.IdleConnTimeout ≤ "+d.String(), "")
	t := time.Duration(believedMS * float64(time.Millisecond))
	if believedMS <= 0 {
		t = time.Duration(c.P50 * float64(time.Millisecond)).Round(time.Millisecond)
	}
	if t > d {
		add("timeout-margin", fmt.Sprintf("margin ≥ %s with T = %s", (t-d).String(), t), fmt.Sprintf("timeout-margin:margin=%s", t-d))
	} else {
		addAt("timeout-margin", fmt.Sprintf("any margin: T = %s is already below the safe %s", t, d), "", t)
	}
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
	return out
}

// closesBefore is the share of closes that land before ms, read off the quantiles
// kept (min, p50, p99, max), linear between them: 0 below the earliest.
func closesBefore(c probe.Closes, ms float64) float64 {
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

// MS writes milliseconds as a reader of a timeout reads them: "4.949s", "52.00ms".
func MS(v float64) string {
	if math.Abs(v) >= 1000 {
		return fmt.Sprintf("%.3fs", v/1000)
	}
	return fmt.Sprintf("%.2fms", v)
}
