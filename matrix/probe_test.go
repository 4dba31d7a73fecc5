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
