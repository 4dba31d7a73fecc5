package results

import "math"

// z95 is the standard normal quantile for a two-sided 95% interval.
const z95 = 1.959963984540054

// Wilson returns the Wilson score 95% confidence interval [lo, hi] for k successes in
// n trials, as fractions in [0, 1]. It is the interval reported beside every reset
// rate: unlike the normal approximation it stays inside [0, 1] and is honest when k is
// 0 or small, which is the usual case for a good strategy (0 stale failures in 1,000
// requests still gives hi ≈ 0.0038, not 0).
//
// n <= 0 gives [0, 0]. k is clamped to [0, n]. For k == 0 lo is exactly 0 and for
// k == n hi is exactly 1, so lo <= k/n <= hi always holds despite rounding.
func Wilson(k, n int64) [2]float64 {
	if n <= 0 {
		return [2]float64{0, 0}
	}
	k = min(max(k, 0), n)

	nf := float64(n)
	p := float64(k) / nf
	z2 := z95 * z95
	denom := 1 + z2/nf
	center := (p + z2/(2*nf)) / denom
	half := z95 / denom * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))

	lo := center - half
	hi := center + half
	switch {
	case k == 0:
		lo = 0
	case lo > p: // rounding can put lo a hair above p when p is tiny
		lo = p
	}
	switch {
	case k == n:
		hi = 1
	case hi < p:
		hi = p
	}
	return [2]float64{min(max(lo, 0), 1), min(max(hi, 0), 1)}
}
