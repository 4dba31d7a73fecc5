package pool

import (
	"testing"
	"time"
)

// The estimate starts below the closes by their spread and a guard: tight closes give
// a limit just under them, spread ones a limit under their low tail.
func TestEstimateCloseIsBelowTheClosesBySpreadAndGuard(t *testing.T) {
	ms := func(v ...float64) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x * float64(time.Millisecond))
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		samples []time.Duration
		want    time.Duration
	}{
		// q05 = q50 = 100 ms: less the guard max(1 ms, 1%) = 1 ms.
		{"exact", ms(100, 100, 100, 100, 100, 100, 100, 100), 99 * time.Millisecond},
		// 21 closes 90..110 ms: q05 = 91, q50 = 100; 91 − 9 − 1 (1% of 91 is 0.91).
		{"uniform", ms(110, 109, 108, 107, 106, 105, 104, 103, 102, 101, 100, 99, 98, 97, 96, 95, 94, 93, 92, 91, 90), 81 * time.Millisecond},
		// 5 s closes: q05 = 5000, q50 = 5001, the guard 1%, 50 ms.
		{"long", ms(5000, 5001, 5001, 5002), 4949 * time.Millisecond},
		// One early outlier among 20 closes at 100 ms: q05 = 40 ms, the spread bounded by
		// a quarter of it: 40 − 10 − 1.
		{"outlier", ms(40, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100), 29 * time.Millisecond},
		{"spread bounded", ms(1, 1, 50, 50), 0},
	} {
		if got := estimateClose(tc.samples); got != tc.want {
			t.Errorf("%s: estimate %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A close right after a response (a server closing after N requests, a restart) is no
// sample of the idle timer: it would pull the estimate to nothing.
func TestAdaptiveMarginIgnoresClosesRightAfterAResponse(t *testing.T) {
	a := &adaptiveMargin{learn: 2}
	a.ObserveClose(50*time.Microsecond, time.Second)
	a.ObserveClose(99*time.Millisecond, time.Second) // under T/10
	if n, _, _, _, ok := a.Learned(); n != 0 || ok {
		t.Fatalf("%d samples (learned %v) from closes under T/10, want none", n, ok)
	}
	a.ObserveClose(time.Second, time.Second)
	a.ObserveClose(time.Second, time.Second)
	if _, limit, _, _, ok := a.Learned(); !ok || limit != 990*time.Millisecond {
		t.Fatalf("learned %v, limit %v: want 1 s less 1%%", ok, limit)
	}
}
