package recommend

import (
	"testing"

	"github.com/idlerace/idlerace/upstreams/probe"
)

// Every setting recommended is below the earliest close by the round trip and more, so
// the model gives it no stale failure; its cost is the gaps it gives up below the close.
// The share of closes before a time is read off the quantiles, linearly.
func TestRecommendationsCarryTheirPredictionAndCost(t *testing.T) {
	c := probe.Closes{Min: 5000, P50: 5001, P99: 5002, Max: 5003, Method: "watched"}
	recs := For(c, 0.3, 0)
	if len(recs) < 3 {
		t.Fatalf("recommendations %+v", recs)
	}
	for _, r := range recs {
		if r.ValueMS == 0 {
			continue // nginx's block and whole-second settings that cannot be safe carry none
		}
		if r.PredictedResetRate != 0 {
			t.Errorf("%s at %g ms: predicted reset %g, want 0 below the earliest close", r.Client, r.ValueMS, r.PredictedResetRate)
		}
		if want := (5001 - r.ValueMS) / 5001 * 1000; r.ExtraConnsPer1k != want || want <= 0 {
			t.Errorf("%s at %g ms: +conns/1k %g, want %g", r.Client, r.ValueMS, r.ExtraConnsPer1k, want)
		}
	}
	// A safe value under 1 ms truncates to 0, which Go and most libraries read as "no
	// limit": no setting is safe then.
	tiny := For(probe.Closes{Min: 1.5, P50: 1.6, P99: 1.7, Max: 1.7, Method: "watched"}, 0.3, 0)
	if len(tiny) != 1 || tiny[0].Setting != "no idle timeout is safe" {
		t.Errorf("a close at 1.5 ms: %+v", tiny)
	}
	for _, tc := range []struct{ ms, want float64 }{{4999, 0}, {5000.5, 0.25}, {5001.5, 0.745}, {5003, 1}} {
		if got := closesBefore(c, tc.ms); got < tc.want-1e-9 || got > tc.want+1e-9 {
			t.Errorf("closes before %g ms: %g, want %g", tc.ms, got, tc.want)
		}
	}
}
