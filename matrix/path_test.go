package matrix

import (
	"context"
	"testing"
	"time"

	"github.com/idlerace/idlerace/results"
)

// The latency path is a hop in front of the upstream. With the delay proxy (latency
// 2ms) every answered request crosses it both ways, so none is answered sooner than 2d;
// the model is told the delay the path had, at least d; and the builtin's closes, which
// it sees from the proxy's ports, are named by the load's (the proxy maps them), so
// every stale failure is matched to its connection's close.
func TestDelayProxyIsAHopInFrontOfTheUpstream(t *testing.T) {
	const d = 2 * time.Millisecond
	run := func(skew string) results.Cell {
		p, err := Prepare(CellSpec{Strategy: "blind", Upstream: "builtin", Skew: skew, Latency: "2ms",
			Load: "sweep:lanes=4,width=20ms,periods=8,requests=32", IdleTimeout: 200 * time.Millisecond, Method: "POST", Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Path) != 1 || p.Path[0].Kind != "delay" || p.Path[0].Props.Pools || p.Path[0].Props.Encloses {
			t.Fatalf("path %+v: want the delay proxy alone, neither pooling nor enclosing", p.Path)
		}
		out, err := RunCell(context.Background(), p, nil)
		if err != nil {
			t.Fatal(err)
		}
		c := out.Cell
		if c.Latency != "2ms" || c.OneWayUS < float64(d/time.Microsecond) {
			t.Errorf("skew %s: latency %q, one-way %gµs: want the cell at 2ms and the model told at least that", skew, c.Latency, c.OneWayUS)
		}
		return c
	}
	// A server closing 50 ms after T: every request is answered, through the proxy.
	if c := run("offset:50ms"); c.Stale != 0 || c.LatencyUS.P50 < (2*d).Microseconds() {
		t.Errorf("%d stale, p50 latency %dµs: want every request answered, none sooner than 2d = %v", c.Stale, c.LatencyUS.P50, 2*d)
	}
	// Blind reuses every connection idle 190-210 ms at a server closing 5 ms before
	// T = 200 ms: most of 32 requests meet the close (and fail at once, on the proxy's
	// own reset), each explained by it.
	if c := run("offset:-5ms"); c.Stale == 0 || c.Server.UnmatchedFailures != 0 {
		t.Errorf("%d stale, %d unmatched: want stale failures, each matched through the proxy's port map", c.Stale, c.Server.UnmatchedFailures)
	}
}
