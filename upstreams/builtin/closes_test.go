package builtin

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/idlerace/idlerace/upstreams"
)

// TestMeasureClosesSeesExactBuiltinCloses checks MeasureCloses against the one server
// whose closes land within a fraction of a millisecond of T: every sample must be
// within [T, T+2ms]. Nothing may ever come early: the response end is the kernel's
// receive timestamp, taken before the server's idle period began. Lateness is also
// what a loaded machine produces (other tests share its two cores and delay the server's
// and the watcher's threads alike), so a late sample repeats the measurement, and the
// test fails when three attempts in a row were late.
func TestMeasureClosesSeesExactBuiltinCloses(t *testing.T) {
	const (
		idle     = 50 * time.Millisecond
		n        = 20
		slack    = 2 * time.Millisecond
		attempts = 3
	)
	for attempt := 1; ; attempt++ {
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
		sorted := slices.Clone(samples)
		slices.Sort(sorted)
		t.Logf("attempt %d: T=%v, close - response end: min %v p50 %v max %v; server's own lateness p50 %dµs max %dµs",
			attempt, idle, sorted[0], sorted[n/2], sorted[n-1], st.CloseLateP50US, st.CloseLateMaxUS)
		for i, d := range samples {
			if d < idle {
				t.Errorf("connection %d: close seen %v after the response, before T=%v", i, d, idle)
			}
		}
		if sorted[n-1] <= idle+slack {
			return
		}
		if attempt == attempts {
			t.Fatalf("%d attempts in a row saw a close more than %v after T (last: %v; the server's own lateness up to %dµs): want every sample within [%v, %v]",
				attempts, slack, sorted[n-1]-idle, st.CloseLateMaxUS, idle, idle+slack)
		}
		s.Close()
	}
}
