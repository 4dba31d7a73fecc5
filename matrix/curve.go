package matrix

import (
	"math"
	"sort"
	"time"

	"github.com/idlerace/idlerace/attack"
	"github.com/idlerace/idlerace/attack/pool"
	"github.com/idlerace/idlerace/chaos"
	"github.com/idlerace/idlerace/matrix/model"
	"github.com/idlerace/idlerace/results"
)

// The race curve is binned by g - T in absolute time: the window is a few ms wide
// whatever T is, so bins of a fraction of T (1% was 50 ms at T = 5s) lose it.
const (
	// curveMinBins is how many coarse bins at least span the cell's exposed gaps.
	curveMinBins = 40
	// curveFineBin is the widest bin around the server's close, where the window lives.
	curveFineBin = 250 * time.Microsecond
	// curveFinePad widens the fine zone beyond the model's close distribution, for a
	// close the model did not expect (a server's own lateness, the notify lag).
	curveFinePad = time.Millisecond
)

// curveGrid is how one cell's curve is binned: coarse bins across the gaps, and bins of
// at most curveFineBin (or the gaps' resolution) in [fineLo, fineHi) of g - T. Every bin of a width starts at a
// multiple of that width from T, and the fine zone's ends are multiples of the coarse
// width, so the fine bins tile whole coarse bins and two cells with the same widths
// share their bins.
type curveGrid struct {
	t              time.Duration
	coarse, fine   time.Duration
	fineLo, fineHi time.Duration // g - T
}

// newCurveGrid chooses the grid for exposed gaps in [lo, hi]: the coarse width is the
// largest 1, 2 or 5 × 10^k µs that gives curveMinBins across them, the fine width that
// or curveFineBin, whichever is smaller, and the fine zone the model's close, from the
// skew's 0.1% to its 99.9% quantile, widened by the two path delays a request's gap
// loses (2d) below and by the server's close lag and the watchers' notify lag above,
// plus curveFinePad each side.
//
// No bin is narrower than resolution, the gaps' own (attack.Gaps keeps a long cell's
// gaps in buckets of 1ns to 1ms, a power of ten): a bucket stands at its mean gap, so a
// narrower bin would draw a bucket's requests as if they all had that gap.
func newCurveGrid(params model.Params, lo, hi, resolution time.Duration) curveGrid {
	resolution = max(resolution, 1)
	g := curveGrid{t: params.IdleTimeout, coarse: max(niceFloor((hi-lo)/curveMinBins), resolution)}
	g.fine = min(g.coarse, max(curveFineBin, resolution))
	sLo, sHi := skewQuantile(params.Skew, 0.001), skewQuantile(params.Skew, 0.999)
	notify := params.NotifyLag
	if notify == 0 {
		notify = model.DefaultNotifyLag
	}
	from := sLo - 2*params.Latency - curveFinePad
	to := sHi + max(params.MaxCloseLag(), 0) + notify + curveFinePad
	g.fineLo = floorTo(from, g.coarse)
	g.fineHi = floorTo(to, g.coarse) + g.coarse
	return g
}

// bin returns the start (as g - T) and width of the bin gap falls in.
func (g curveGrid) bin(gap time.Duration) (start, width time.Duration) {
	off := gap - g.t
	if off >= g.fineLo && off < g.fineHi {
		return floorTo(off, g.fine), g.fine
	}
	return floorTo(off, g.coarse), g.coarse
}

// niceFloor is the largest 1, 2 or 5 × 10^k µs not above d, and 1µs at least.
func niceFloor(d time.Duration) time.Duration {
	best := time.Microsecond
	for p := time.Microsecond; p <= d && p <= time.Hour; p *= 10 {
		for _, m := range []time.Duration{1, 2, 5} {
			if m*p <= d {
				best = m * p
			}
		}
	}
	return best
}

// floorTo rounds d down to a multiple of w (towards -inf, also for negative d).
func floorTo(d, w time.Duration) time.Duration {
	q := d / w
	if d%w != 0 && d < 0 {
		q--
	}
	return q * w
}

// skewQuantile is the smallest s with P(skew <= s) >= q, to 1µs; 0 for no skew.
func skewQuantile(sk chaos.Skew, q float64) time.Duration {
	if sk == nil {
		return 0
	}
	lo, hi := -chaos.MaxSkew, chaos.MaxSkew
	for hi-lo > time.Microsecond {
		mid := lo + (hi-lo)/2
		if sk.CDF(mid) >= q {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}

// curve bins the exposed requests on the cell's grid and puts the model's prediction
// beside each bin's measured stale rate.
func curve(b pool.Behaviour, params model.Params, rec *attack.Recorder) []results.CurvePoint {
	lo, hi := time.Duration(math.MaxInt64), time.Duration(math.MinInt64)
	for g := range rec.Gaps.Buckets() {
		lo, hi = min(lo, g.Gap), max(hi, g.Gap)
	}
	if lo > hi {
		return nil
	}
	grid := newCurveGrid(params, lo, hi, rec.Gaps.Resolution)
	type key struct{ start, width time.Duration }
	type acc struct {
		n, stale, retried int64
		pred              float64
	}
	bins := map[key]*acc{}
	for g := range rec.Gaps.Buckets() {
		start, width := grid.bin(g.Gap)
		k := key{start, width}
		a := bins[k]
		if a == nil {
			a = &acc{}
			bins[k] = a
		}
		a.n += g.N
		a.stale += g.Stale
		a.retried += g.Retried
		s, _ := model.Fail(b, params, g.Gap)
		a.pred += s * float64(g.N)
	}
	keys := make([]key, 0, len(bins))
	for k := range bins {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].start < keys[j].start })
	t := float64(params.IdleTimeout)
	out := make([]results.CurvePoint, 0, len(keys))
	for _, k := range keys {
		a := bins[k]
		centre := float64(k.start) + float64(k.width)/2
		out = append(out, results.CurvePoint{
			GapOverT:    math.Round((t+centre)/t*1e7) / 1e7,
			GapMinusTMS: centre / float64(time.Millisecond),
			BinMS:       float64(k.width) / float64(time.Millisecond),
			Requests:    a.n,
			Stale:       a.stale,
			Retried:     a.retried,
			Predicted:   a.pred / float64(a.n),
		})
	}
	return out
}
