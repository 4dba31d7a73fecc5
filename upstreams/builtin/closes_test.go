package builtin

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/idlerace/idlerace/upstreams"
	"github.com/idlerace/idlerace/upstreams/internal/realtest"
)

// TestMeasureClosesSeesEveryBuiltinClose checks MeasureCloses against the one server
// whose closes idlerace controls: it must return one sample per connection, each an
// idle close the server recorded, and none before T: the response end is the kernel's
// receive timestamp, taken before the server's idle period began, and the server closes
// only once T has passed, so nothing a loaded machine does can make a sample early. How
// close to T the samples land is BenchmarkMeasureClosesAccuracy's figure; a busy
// neighbour delays the server's and the watcher's threads alike, so the test asks only
// that the median lies within T/2 (a measurement that missed the close would not).
func TestMeasureClosesSeesEveryBuiltinClose(t *testing.T) {
	const (
		idle = 50 * time.Millisecond
		n    = 20
	)
	s := startServer(t, upstreams.Config{IdleTimeout: idle, Skew: mustSkew(t, "none")})
	samples, err := upstreams.MeasureCloses(context.Background(), s.URL(), n, waitBound)
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != n {
		t.Fatalf("%d samples, want %d", len(samples), n)
	}
	waitCloses(t, s, n)
	st := s.Stats()
	if st.IdleCloses != n || st.Executed != n {
		t.Errorf("Stats = %+v, want %d idle closes and executions", st, n)
	}
	for i, d := range samples {
		if d < idle {
			t.Errorf("connection %d: close seen %v after the response, before T=%v", i, d, idle)
		}
	}
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	t.Logf("T=%v, close - response end: min %v p50 %v max %v; server's own lateness p50 %dµs max %dµs",
		idle, sorted[0], sorted[n/2], sorted[n-1], st.CloseLateP50US, st.CloseLateMaxUS)
	if p50 := sorted[n/2]; p50 > idle+idle/2 {
		t.Errorf("median close seen %v after the response, want within [T, 1.5T] (T=%v)", p50, idle)
	}
}

// BenchmarkMeasureClosesAccuracy reports how far after T MeasureCloses sees the builtin's
// closes (20 connections at once, T = 50ms): the watcher's precision plus the server's.
func BenchmarkMeasureClosesAccuracy(b *testing.B) {
	const idle = 50 * time.Millisecond
	s := startServer(b, upstreams.Config{IdleTimeout: idle})
	realtest.BenchCloseJitter(b, s.URL(), 20, idle)
}
