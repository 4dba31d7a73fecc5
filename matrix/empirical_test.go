package matrix

import (
	"math/rand/v2"
	"testing"
	"time"
)

// A close is seen only when the client's gap outlasted the server's timer, so the closes
// a cell sees are biased toward short timers; weighted by 1/S(x) they give the timer's
// own distribution back. Timers uniform over T±2ms, gaps uniform over T±3ms.
func TestCellClosesSkewUndoesTheGapsSelection(t *testing.T) {
	const T = time.Second
	rng := rand.New(rand.NewPCG(3, 4))
	uni := func(w time.Duration) time.Duration { return T - w + time.Duration(rng.Int64N(int64(2*w))) }
	gapCount := map[time.Duration]int64{}
	var seen []time.Duration
	for range 200_000 {
		timer, gap := uni(2*time.Millisecond), uni(3*time.Millisecond)
		gapCount[gap.Truncate(10*time.Microsecond)]++
		if gap > timer {
			seen = append(seen, timer)
		}
	}
	gaps := func(yield func(time.Duration, int64) bool) {
		for g, n := range gapCount {
			if !yield(g, n) {
				return
			}
		}
	}
	median := func(e *empiricalSkew) time.Duration { return skewQuantile(e, 0.5) }
	raw, weighted := newEmpiricalSkew(seen, T), cellClosesSkew(seen, gaps, 0, T)
	if m := median(weighted); m < -200*time.Microsecond || m > 200*time.Microsecond {
		t.Errorf("weighted median skew %v, want the timers' own, 0 ± 0.2ms", m)
	}
	if m := median(raw); m > -400*time.Microsecond {
		t.Errorf("unweighted median skew %v: the selection should have pulled it below -0.4ms (the test shows nothing)", m)
	}
	for _, q := range []float64{0.1, 0.9} {
		want := time.Duration((q*4 - 2) * float64(time.Millisecond))
		if got := skewQuantile(weighted, q); got < want-300*time.Microsecond || got > want+300*time.Microsecond {
			t.Errorf("weighted %.0f%% quantile %v, want %v ± 0.3ms", 100*q, got, want)
		}
	}
}
