package probe

import (
	"slices"
	"time"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// closesOf summarises watched closes: quantiles by gonum's empirical quantile, and a
// distribution-free 95% interval on the median from order statistics (the ranks
// between which the median lies with probability ≥ 95% under Binomial(n, 1/2)), which
// asks nothing of the close's shape.
func closesOf(ages []time.Duration) *Closes {
	x := make([]float64, len(ages))
	for i, a := range ages {
		x[i] = ms(a)
	}
	slices.Sort(x)
	c := &Closes{
		P50: stat.Quantile(0.5, stat.Empirical, x, nil), P99: stat.Quantile(0.99, stat.Empirical, x, nil),
		Min: x[0], Max: x[len(x)-1], Samples: len(x), Method: "watched",
	}
	lo, hi := medianRanks(len(x))
	c.P50CI95 = [2]float64{x[lo], x[hi]}
	return c
}

// medianRanks returns 0-based ranks j ≤ k with P(X(j) ≤ median ≤ X(k)) ≥ 95%, the
// widest (the extremes) when n is too small for that.
func medianRanks(n int) (int, int) {
	b := distuv.Binomial{N: float64(n), P: 0.5}
	// The median lies below X(j) (0-based) when at most j samples are below it:
	// P(Bin ≤ j) ≤ 2.5% for the largest such j, by symmetry the same at the top.
	j := 0
	for j+1 < n/2 && b.CDF(float64(j+1)) <= 0.025 {
		j++
	}
	return j, n - 1 - j
}
