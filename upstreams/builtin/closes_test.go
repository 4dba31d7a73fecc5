package builtin

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/idlerace/idlerace/internal/realtest"
	"github.com/idlerace/idlerace/upstreams"
)

// TestMeasureClosesSeesEveryBuiltinClose checks MeasureCloses against the one server
// whose closes idlerace controls and records itself: it must return one sample per
// connection, each an idle close the server recorded, none before T-T/4, and the median
// lateness it sees must agree with the server's own median lateness (close minus due)
// within T/2. The two views are taken on the two sides of the same sockets, so a busy
// machine moves them together (seen: a 0.5s stall made both 517-521ms late), while a
// MeasureCloses that timed anything but the close would not agree. How close to T the
// closes land is BenchmarkMeasureClosesAccuracy's figure; a single sample is only held
// to T-T/4 because a busy neighbour can defer the delivery that stamps the response's
// end (one sample of gonet's came 2.9ms early so).
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
		if d < idle-idle/4 {
			t.Errorf("connection %d: close seen %v after the response, well before T=%v", i, d, idle)
		}
	}
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	t.Logf("T=%v, close - response end: min %v p50 %v max %v; server's own lateness p50 %dµs max %dµs",
		idle, sorted[0], sorted[n/2], sorted[n-1], st.CloseLateP50US, st.CloseLateMaxUS)
	seen := sorted[n/2] - idle
	own := time.Duration(st.CloseLateP50US) * time.Microsecond
	if d := seen - own; d < -idle/2 || d > idle/2 {
		t.Errorf("median close seen %v after T, the server's own median lateness %v: want them within T/2 (T=%v)", seen, own, idle)
	}
}

// BenchmarkMeasureClosesAccuracy reports how far after T MeasureCloses sees the builtin's
// closes (20 connections at once, T = 50ms): the watcher's precision plus the server's.
func BenchmarkMeasureClosesAccuracy(b *testing.B) {
	const idle = 50 * time.Millisecond
	s := startServer(b, upstreams.Config{IdleTimeout: idle})
	realtest.BenchCloseJitter(b, s.URL(), 20, idle)
}
