package matrix_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/idlerace/idlerace/matrix"
	"github.com/idlerace/idlerace/results"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// within reports whether the measured rate agrees with the prediction: within 5
// percentage points, or, for small cells, within 4.5 standard errors of the prediction.
func within(c results.Cell) bool {
	p := c.PredictedResetRate
	se := math.Sqrt(math.Max(p*(1-p), 0.0025) / float64(c.Requests))
	return math.Abs(c.ResetRate-p) <= math.Max(0.05, 4.5*se)
}

// TestDefaultMatrixReproducesTheRace runs the embedded default (every strategy, three
// skews, T = 100ms, sweep) and checks what the race says must happen.
func TestDefaultMatrixReproducesTheRace(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole default matrix (~35 s)")
	}
	sum, err := matrix.Run(context.Background(), matrix.Default(), matrix.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Cells) != 21 || sum.State != "complete" {
		t.Fatalf("%d cells, state %s", len(sum.Cells), sum.State)
	}
	blindStale := map[string]int64{}
	for _, c := range sum.Cells {
		if c.Strategy == "blind" {
			blindStale[c.Skew] = c.Stale
		}
	}
	for _, c := range sum.Cells {
		name := c.Strategy + " / " + c.Skew
		if c.Requests < 500 {
			t.Errorf("%s: only %d requests", name, c.Requests)
		}
		if c.Server.UnmatchedFailures != 0 {
			t.Errorf("%s: %d stale failures the server's closes do not explain", name, c.Server.UnmatchedFailures)
		}
		if c.Server.Duplicates != 0 {
			t.Errorf("%s: %d duplicated executions; a request that met a closed socket never ran", name, c.Server.Duplicates)
		}
		switch {
		case c.Strategy == "blind":
			if c.ResetRate < 0.3 {
				t.Errorf("%s: reset rate %.3f, want >= 0.3", name, c.ResetRate)
			}
		case c.Strategy == "watch" || c.Strategy == "read-probe" || c.Strategy == "stdlib":
			if c.ResetRate > 0.05 {
				t.Errorf("%s: reset rate %.3f, want <= 0.05 on loopback", name, c.ResetRate)
			}
			// Only idlerace's own pool reports its watchers' wake-ups; every idle close
			// the sweep leaves past T+s is one, so there are hundreds.
			if watched := c.Strategy == "watch"; watched != (c.NotifySamples > 0) {
				t.Errorf("%s: %d notify-lag samples", name, c.NotifySamples)
			} else if watched && (c.NotifySamples < 100 || c.NotifyLagUS <= 0 || c.NotifyLagUS > 5000) {
				t.Errorf("%s: notify lag %.0fµs from %d wake-ups, want hundreds of samples and 0 < lag <= 5ms", name, c.NotifyLagUS, c.NotifySamples)
			}
		case strings.HasPrefix(c.Strategy, "timeout-margin") || strings.HasPrefix(c.Strategy, "hint-margin"):
			if c.Stale != 0 {
				t.Errorf("%s: %d stale failures, want 0 (skews stay within the 20ms margin)", name, c.Stale)
			}
		case strings.HasPrefix(c.Strategy, "retry-only"):
			// No stale failure reaches the caller. A failure on a fresh connection (the
			// machine starved the client past T+s between dial and write) is not the race.
			if c.Stale != 0 || float64(c.Requests-c.OK) > 0.005*float64(c.Requests) {
				t.Errorf("%s: %d caller-visible stale failures, %d/%d ok (failures %+v); want none", name, c.Stale, c.OK, c.Requests, c.Failures)
			}
			// Every request a blind pool loses, retry-only loses on the wire and replays.
			b := float64(blindStale[c.Skew])
			if math.Abs(float64(c.Retries)-b) > 0.15*b {
				t.Errorf("%s: %d retries, want within 15%% of blind's %v failures", name, c.Retries, b)
			}
		}
		if c.Strategy != "stdlib" && !strings.HasPrefix(c.Strategy, "retry-only") && !strings.HasPrefix(c.Strategy, "hint") && !within(c) {
			t.Errorf("%s: measured %.3f, predicted %.3f: disagree", name, c.ResetRate, c.PredictedResetRate)
		}
	}
}
