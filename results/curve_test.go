package results

import (
	"math"
	"testing"
)

// A summary written before gap_minus_t_ms and bin_ms had bins of 1% of T: CurveBin reads
// them from gap_over_t.
func TestCurveBinReadsOldSummaries(t *testing.T) {
	g, w := CurvePoint{GapOverT: 1.005}.CurveBin(1000)
	if math.Abs(g-5) > 1e-9 || math.Abs(w-10) > 1e-9 {
		t.Errorf("an old bin at g/T = 1.005, T = 1s: %g ms wide %g, want 5 and 10", g, w)
	}
	g, w = CurvePoint{GapOverT: 1.0000125, GapMinusTMS: 0.0625, BinMS: 0.125}.CurveBin(5000)
	if g != 0.0625 || w != 0.125 {
		t.Errorf("a new bin: %g ms wide %g, want its own fields 0.0625 and 0.125", g, w)
	}
}

// The window is the width of the bins above 5%, not the span between the first and
// the last: a stray failure far away adds its bin only.
func TestWindowMSIsTheWidthOfTheFailingBins(t *testing.T) {
	c := []CurvePoint{
		{GapMinusTMS: -50, BinMS: 10, Requests: 100, Stale: 10},     // a stray bin: 10%
		{GapMinusTMS: -0.375, BinMS: 0.25, Requests: 100, Stale: 5}, // 5%: not above
		{GapMinusTMS: -0.125, BinMS: 0.25, Requests: 100, Stale: 50},
		{GapMinusTMS: 0.125, BinMS: 0.25, Requests: 100, Stale: 90},
		{GapMinusTMS: 0.375, BinMS: 0.25, Requests: 0},
	}
	if got := WindowMS(c, 1000); math.Abs(got-10.5) > 1e-9 {
		t.Errorf("window_ms %g, want 10.5 (one 10 ms bin and two 0.25 ms bins)", got)
	}
	if got := WindowMS(nil, 1000); got != 0 {
		t.Errorf("window_ms of no curve %g, want 0", got)
	}
}

// The model's window is measured the same way, over the bins that saw requests.
func TestModelWindowMSIsTheWidthOfThePredictedBins(t *testing.T) {
	c := []CurvePoint{
		{GapMinusTMS: -0.375, BinMS: 0.25, Requests: 100, Predicted: 0.05}, // not above 5%
		{GapMinusTMS: -0.125, BinMS: 0.25, Requests: 100, Predicted: 0.5},
		{GapMinusTMS: 0.125, BinMS: 0.25, Requests: 100, Predicted: 0.9},
		{GapMinusTMS: 0.375, BinMS: 0.25, Requests: 0, Predicted: 1}, // no requests: not a bin
	}
	if got := ModelWindowMS(c, 1000); math.Abs(got-0.5) > 1e-9 {
		t.Errorf("model_window_ms %g, want 0.5 (two 0.25 ms bins)", got)
	}
}

// Merged repeats add bin by bin; bins of another width stay beside them.
func TestMergeCurvesKeepsWidthsApart(t *testing.T) {
	a := []CurvePoint{{GapOverT: 1.0001, GapMinusTMS: 0.125, BinMS: 0.25, Requests: 10, Stale: 5, Predicted: 0.5}}
	b := []CurvePoint{
		{GapOverT: 1.0001, GapMinusTMS: 0.125, BinMS: 0.25, Requests: 30, Stale: 9, Predicted: 0.3},
		{GapOverT: 1.0001, GapMinusTMS: 0.125, BinMS: 0.05, Requests: 1, Stale: 1, Predicted: 1},
	}
	m := mergeCurves(a, b)
	if len(m) != 2 {
		t.Fatalf("%d bins, want 2: %+v", len(m), m)
	}
	wide := m[1]
	if wide.BinMS != 0.25 || wide.Requests != 40 || wide.Stale != 14 || math.Abs(wide.Predicted-0.35) > 1e-9 {
		t.Errorf("merged bin %+v, want 40 requests, 14 stale, predicted 0.35", wide)
	}
}
