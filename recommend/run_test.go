package recommend

import (
	"testing"

	"github.com/idlerace/idlerace/results"
)

// A run's cells against one server fold into one: the earliest and latest closes of
// all of them, the lowest median latency as the round trip, and settings below the
// earliest close. Another skew of the same upstream is another server; one that saw
// too few closes, or none, recommends nothing.
func TestFromRunFoldsTheCellsOfEachServer(t *testing.T) {
	cell := func(strategy, skew string, p50us int64, sp *results.CloseSpread) results.Cell {
		return results.Cell{Strategy: strategy, Upstream: "uvicorn", Skew: skew, Latency: "0", IdleTimeoutMS: 1000,
			LatencyUS: results.LatencyUS{P50: p50us}, Server: results.Server{IdleCloseMS: sp}}
	}
	cells := []results.Cell{
		cell("blind", "none", 400, &results.CloseSpread{Min: 1000.2, P50: 1001, P99: 1002, Max: 1003, Samples: 40}),
		cell("watch", "none", 300, &results.CloseSpread{Min: 1000.5, P50: 1001.4, P99: 1002.5, Max: 1002.6, Samples: 60}),
		cell("timeout-margin", "none", 200, nil), // closed its own connections first
		cell("blind", "offset:-5ms", 300, &results.CloseSpread{Min: 995, P50: 996, P99: 997, Max: 997, Samples: 3}),
	}
	servers := FromRun(cells)
	if len(servers) != 1 {
		t.Fatalf("servers %+v: want uvicorn with skew none only (offset:-5ms saw 3 closes)", servers)
	}
	s := servers[0]
	want := results.CloseSpread{Min: 1000.2, P50: (1001*40 + 1001.4*60) / 100, P99: 1002.5, Max: 1003, Samples: 100}
	if s.Cells != 2 || s.Closes != want || s.RTTMS != 0.3 {
		t.Errorf("server %+v: want 2 cells, closes %+v, rtt 0.3 ms (the lower median of the cells that saw closes)", s, want)
	}
	// margin max(1%, 2 × 2.3 ms, 1 ms) = 10.002 ms: 1000.2 − 0.3 − 10.002 = 989.898 → 989 ms.
	var goSetting, margin string
	for _, r := range s.Recommendations {
		switch r.Client {
		case "Go net/http":
			goSetting = r.Setting
		case "timeout-margin":
			margin = r.Spec
		}
	}
	if goSetting != "Transport.IdleConnTimeout ≤ 989ms" || margin != "timeout-margin:margin=11ms" {
		t.Errorf("Go %q, timeout-margin %q: want ≤ 989ms and margin=11ms from T = 1s", goSetting, margin)
	}
}
