package results

import "sort"

// CurveBin returns p's centre as g - T and its width, in ms, for a cell whose idle
// timeout is tMS: the point's own fields, or, for a summary written before they existed
// (bins of 1% of T), what its gap_over_t implies.
func (p CurvePoint) CurveBin(tMS float64) (gapMinusTMS, binMS float64) {
	if p.BinMS > 0 {
		return p.GapMinusTMS, p.BinMS
	}
	return (p.GapOverT - 1) * tMS, 0.01 * tMS
}

// WindowThreshold is the stale-failure rate above which a bin counts as inside the
// race window (Cell.WindowMS).
const WindowThreshold = 0.05

// WindowMS is the race window a curve measured: the total width, in ms, of its bins
// whose stale-failure rate is above WindowThreshold, for a cell whose idle timeout is
// tMS. A width, not the span from the first such bin to the last: a stray failure far
// from the close adds its bin, not everything in between.
func WindowMS(curve []CurvePoint, tMS float64) float64 {
	var w float64
	for _, p := range curve {
		if p.Requests > 0 && float64(p.Stale) > WindowThreshold*float64(p.Requests) {
			_, bin := p.CurveBin(tMS)
			w += bin
		}
	}
	return w
}

// ModelWindowMS is WindowMS by the model: the total width of the curve's bins (those
// that saw requests) whose predicted stale probability is above WindowThreshold.
func ModelWindowMS(curve []CurvePoint, tMS float64) float64 {
	var w float64
	for _, p := range curve {
		if p.Requests > 0 && p.Predicted > WindowThreshold {
			_, bin := p.CurveBin(tMS)
			w += bin
		}
	}
	return w
}

// mergeCurves adds two curves of the same cell bin by bin. Bins match by centre and
// width; bins of different widths (a repeat whose sweep came out another size) are
// kept side by side.
func mergeCurves(a, b []CurvePoint) []CurvePoint {
	type key struct{ gapOverT, gapMinusT, bin float64 }
	byBin := map[key]*CurvePoint{}
	for _, l := range [][]CurvePoint{a, b} {
		for _, p := range l {
			k := key{p.GapOverT, p.GapMinusTMS, p.BinMS}
			q, ok := byBin[k]
			if !ok {
				c := p
				byBin[k] = &c
				continue
			}
			n := q.Requests + p.Requests
			if n > 0 {
				q.Predicted = (q.Predicted*float64(q.Requests) + p.Predicted*float64(p.Requests)) / float64(n)
			}
			q.Requests, q.Stale, q.Retried = n, q.Stale+p.Stale, q.Retried+p.Retried
		}
	}
	out := make([]CurvePoint, 0, len(byBin))
	for _, p := range byBin {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].GapOverT != out[j].GapOverT {
			return out[i].GapOverT < out[j].GapOverT
		}
		return out[i].BinMS < out[j].BinMS
	})
	return out
}
