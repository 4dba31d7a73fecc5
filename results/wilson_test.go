package results

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestWilsonKnownValues(t *testing.T) {
	for _, c := range []struct {
		k, n   int64
		lo, hi float64
	}{
		{0, 10, 0, 0.2775},
		{1, 10, 0.0179, 0.4042},
		{5, 10, 0.2366, 0.7634},
		{10, 10, 0.7225, 1},
		{1, 1, 0.2065, 1},
		{0, 3, 0, 0.5615},
		{50, 1000, 0.0381, 0.0653},
		{334, 1000, 0.3055, 0.3638},
		{0, 1000, 0, 0.0038},
		{17, 4000, 0.0027, 0.0068},
	} {
		got := Wilson(c.k, c.n)
		if math.Abs(got[0]-c.lo) > 0.00005 || math.Abs(got[1]-c.hi) > 0.00005 {
			t.Errorf("Wilson(%d, %d) = [%.4f, %.4f], want [%.4f, %.4f]", c.k, c.n, got[0], got[1], c.lo, c.hi)
		}
	}
}

func TestWilsonEdgesAreExact(t *testing.T) {
	if got := Wilson(0, 0); got != [2]float64{0, 0} {
		t.Errorf("Wilson(0, 0) = %v, want [0 0]", got)
	}
	if got := Wilson(3, -1); got != [2]float64{0, 0} {
		t.Errorf("Wilson(3, -1) = %v, want [0 0]", got)
	}
	for _, n := range []int64{1, 2, 7, 1000, 1_000_000_000} {
		if got := Wilson(0, n); got[0] != 0 {
			t.Errorf("Wilson(0, %d) lo = %g, want exactly 0", n, got[0])
		}
		if got := Wilson(n, n); got[1] != 1 {
			t.Errorf("Wilson(%d, %d) hi = %g, want exactly 1", n, n, got[1])
		}
	}
}

func TestWilsonClampsCountsOutsideTrials(t *testing.T) {
	if got, want := Wilson(12, 10), Wilson(10, 10); got != want {
		t.Errorf("Wilson(12, 10) = %v, want Wilson(10, 10) = %v", got, want)
	}
	if got, want := Wilson(-3, 10), Wilson(0, 10); got != want {
		t.Errorf("Wilson(-3, 10) = %v, want Wilson(0, 10) = %v", got, want)
	}
}

func TestWilsonContainsTheObservedRate(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20_000 {
		n := rng.Int64N(1_000_000) + 1
		if rng.IntN(3) == 0 {
			n = rng.Int64N(20) + 1 // small n, where the interval is widest
		}
		k := rng.Int64N(n + 1)
		if rng.IntN(4) == 0 {
			k = rng.Int64N(min(n, 3) + 1) // rare events, the usual case for a good strategy
		}
		ci := Wilson(k, n)
		p := float64(k) / float64(n)
		if !(0 <= ci[0] && ci[0] <= p && p <= ci[1] && ci[1] <= 1) {
			t.Fatalf("Wilson(%d, %d) = %v does not satisfy 0 <= lo <= %g <= hi <= 1", k, n, ci, p)
		}
		if ci[1]-ci[0] <= 0 {
			t.Fatalf("Wilson(%d, %d) = %v has no width", k, n, ci)
		}
		// Swapping successes and failures mirrors the interval.
		m := Wilson(n-k, n)
		if math.Abs(ci[0]-(1-m[1])) > 1e-12 || math.Abs(ci[1]-(1-m[0])) > 1e-12 {
			t.Fatalf("Wilson(%d, %d) = %v is not the mirror of Wilson(%d, %d) = %v", k, n, ci, n-k, n, m)
		}
	}
}

func TestWilsonNarrowsWithMoreTrials(t *testing.T) {
	prev := 1.0
	for _, n := range []int64{10, 100, 1000, 10_000, 100_000} {
		ci := Wilson(n/20, n) // 5% in every case
		width := ci[1] - ci[0]
		if width >= prev {
			t.Errorf("n=%d: width %.5f not narrower than %.5f at n/10", n, width, prev)
		}
		prev = width
	}
	// Roughly 1/sqrt(n): 100,000 trials at 5% give about ±0.135%.
	if prev < 0.0026 || prev > 0.0028 {
		t.Errorf("width at n=100000, p=0.05 = %.5f, want about 0.0027", prev)
	}
}
