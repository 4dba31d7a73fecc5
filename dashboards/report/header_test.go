package report

import (
	"testing"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/idlerace/idlerace/results"
)

func TestCPUsShowGOMAXPROCSWhereItDiffers(t *testing.T) {
	for _, c := range []struct {
		tool results.Tool
		want string
	}{
		{results.Tool{CPUs: 2, Procs: 8}, "2 (GOMAXPROCS 8)"},
		{results.Tool{CPUs: 2, Procs: 2}, "2"},
		{results.Tool{CPUs: 2}, "2"}, // a run from before GOMAXPROCS was recorded
	} {
		if got := cpus(c.tool); got != c.want {
			t.Errorf("cpus(%+v) = %q, want %q", c.tool, got, c.want)
		}
	}
}

// TestDisagreementCardCountsAsTheFindingsDo: the summary card counts the cells the model
// does not explain by the findings' rule (more than 2 points and the model outside the
// 95% interval), and says how many of those pass the report's 5-point line.
func TestDisagreementCardCountsAsTheFindingsDo(t *testing.T) {
	cell := func(strategy string, rate, pred, lo, hi float64) results.Cell {
		return results.Cell{Strategy: strategy, Upstream: "builtin", Skew: "none", Latency: "0", Requests: 900,
			ResetRate: rate, PredictedResetRate: pred, ResetRateCI95: [2]float64{lo, hi}}
	}
	r := &run{summary: results.Summary{Cells: []results.Cell{
		cell("blind", 0.60, 0.50, 0.57, 0.63),         // 10 points off: both rules
		cell("watch", 0.088, 0.009, 0.082, 0.095),     // 7.9 points: both
		cell("read-probe", 0.044, 0.011, 0.04, 0.049), // 3.3 points: the findings' only
		cell("stdlib", 0.063, 0.055, 0.049, 0.080),    // model inside the interval: agrees
		cell("margin", 0.0, 0.0, 0.0, 0.004),          // agrees
	}}}
	r.hists = make([]*hdrhistogram.Histogram, len(r.summary.Cells)) // no .hlog: nil, as a missing one
	if got, want := newView(r).disagreementCount(), "3 of 5 cells (2 by more than 5 pp)"; got != want {
		t.Errorf("card %q, want %q", got, want)
	}
	r.summary.Cells, r.hists = r.summary.Cells[3:], r.hists[3:]
	if got, want := newView(r).disagreementCount(), "0 of 2 cells"; got != want {
		t.Errorf("card %q, want %q", got, want)
	}
}
