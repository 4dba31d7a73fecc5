package matrix

import (
	"testing"
	"time"

	"github.com/idlerace/idlerace/attack"
	"github.com/idlerace/idlerace/upstreams/probe"
)

// The bounds printed before a probe starts hold for every close it can find: each
// plan's own bounds stay within them, and each plan's sweep is a valid load capped at
// the requests it counts.
func TestWindowPlansStayWithinTheBoundsPrintedBefore(t *testing.T) {
	for _, maxTimeout := range []time.Duration{100 * time.Millisecond, time.Second, 10 * time.Minute} {
		before, beforeTook := WindowBoundsBefore(maxTimeout)
		for _, closeAt := range []time.Duration{time.Millisecond, 7 * time.Millisecond, 99 * time.Millisecond, 740 * time.Millisecond, 760 * time.Millisecond, maxTimeout} {
			if closeAt > maxTimeout {
				continue
			}
			for _, spread := range []time.Duration{0, time.Millisecond, 50 * time.Millisecond, closeAt} {
				ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
				res := &probe.Result{IdleTimeoutMS: &probe.Closes{P50: ms(closeAt), Min: ms(closeAt - spread/2), Max: ms(closeAt + spread/2), Method: "watched"}}
				p, ok := PlanWindows(res)
				if !ok {
					t.Fatalf("close %v: no plan", closeAt)
				}
				reqs, took := p.Bounds()
				if reqs > before || took > beforeTook {
					t.Errorf("max timeout %v, close %v ± %v: plan %+v costs %d requests and %v, bounds printed before %d and %v",
						maxTimeout, closeAt, spread/2, p, reqs, took, before, beforeTook)
				}
				if _, err := attack.ParseLoad(p.Load()); err != nil {
					t.Errorf("plan %+v: load %q: %v", p, p.Load(), err)
				}
			}
		}
	}
	if _, ok := PlanWindows(&probe.Result{IdleTimeoutMS: &probe.Closes{P50: 100, Method: "bisection"}}); ok {
		t.Error("a bisected (silent) close has no window to aim at, want no plan")
	}
}

// Every setting recommended is below the earliest close by the round trip and more, so
// the model gives it no stale failure; its cost is the gaps it gives up below the close.
// The share of closes before a time is read off the quantiles, linearly.
func TestRecommendationsCarryTheirPredictionAndCost(t *testing.T) {
	res := &probe.Result{RTTMS: 0.3, IdleTimeoutMS: &probe.Closes{Min: 5000, P50: 5001, P99: 5002, Max: 5003, Method: "watched"}}
	Recommend(res)
	if len(res.Recommendations) < 3 {
		t.Fatalf("recommendations %+v", res.Recommendations)
	}
	for _, r := range res.Recommendations {
		if r.ValueMS == 0 {
			continue // nginx's block and whole-second settings that cannot be safe carry none
		}
		if r.PredictedResetRate != 0 {
			t.Errorf("%s at %g ms: predicted reset %g, want 0 below the earliest close", r.Client, r.ValueMS, r.PredictedResetRate)
		}
		if want := (5001 - r.ValueMS) / 5001 * 1000; r.ExtraConnsPer1k != want || want <= 0 {
			t.Errorf("%s at %g ms: +conns/1k %g, want %g", r.Client, r.ValueMS, r.ExtraConnsPer1k, want)
		}
	}
	// A safe value under 1 ms truncates to 0, which Go and most libraries read as "no
	// limit": no setting is safe then.
	tiny := &probe.Result{RTTMS: 0.3, IdleTimeoutMS: &probe.Closes{Min: 1.5, P50: 1.6, P99: 1.7, Max: 1.7, Method: "watched"}}
	Recommend(tiny)
	if len(tiny.Recommendations) != 1 || tiny.Recommendations[0].Setting != "no idle timeout is safe" {
		t.Errorf("a close at 1.5 ms: %+v", tiny.Recommendations)
	}
	c := res.IdleTimeoutMS
	for _, tc := range []struct{ ms, want float64 }{{4999, 0}, {5000.5, 0.25}, {5001.5, 0.745}, {5003, 1}} {
		if got := closesBefore(c, tc.ms); got < tc.want-1e-9 || got > tc.want+1e-9 {
			t.Errorf("closes before %g ms: %g, want %g", tc.ms, got, tc.want)
		}
	}
}
