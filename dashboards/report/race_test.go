package report

import "testing"

// The window panel zooms on the bins where a curve moves, and a bin far out in the tail
// with a request or two (one stale of two is 50%) does not drag it out: at T = 1 s the
// builtin's late closes and preempted lanes left such bins 15 ms past the close, and the
// panel spanned 24 ms around a window of 1.
func TestRaceWindowIgnoresSparseTailBins(t *testing.T) {
	tl := &tally{curve: map[curveKey]*curvePoint{}}
	add := func(ms float64, requests, stale int64, predicted float64) {
		tl.curve[curveKey{centreNS: int64(ms * 1e6), widthNS: 100_000}] = &curvePoint{gapMinusTMS: ms, binMS: 0.1, requests: requests, stale: stale, predictedRequests: predicted * float64(requests)}
	}
	for i := -20; i <= 20; i++ {
		ms := float64(i) / 10
		switch {
		case ms < -0.2:
			add(ms, 30, 0, 0)
		case ms > 0.2:
			add(ms, 30, 30, 1)
		default: // the window: -0.2 to 0.2 ms
			add(ms, 30, 15, 0.5)
		}
	}
	add(15, 2, 1, 0) // a tail bin
	v := &view{byCombo: map[combo]map[string]*tally{{Upstream: "builtin"}: {"blind": tl}}}
	lo, hi, ok := v.raceWindow()
	if !ok || lo > -0.25 || hi < 0.25 || hi > 1 || lo < -1 {
		t.Fatalf("window [%g, %g] ms (ok %v): want about the bins from -0.2 to 0.2 ms, padded, not the tail bin at 15 ms", lo, hi, ok)
	}
}
