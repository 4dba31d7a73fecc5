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
// skews, T = 100ms, sweep) and checks what the race says must happen, in bounds that hold
// on a busy machine. A neighbour on the two cores stalls the client between checkout and
// write and the server between due and close; that widens every strategy's window by the
// stall, so a looking strategy's rate, a margin's handful of failures and one cell's
// retries against another cell's failures move with the load, not with the code. What
// the code decides is the order of magnitude, and that is what is asserted: blind loses
// the sweep's far half, looking strategies a small part of what blind loses, margins and
// retries next to nothing, and the model, fed each cell's own gaps, closes and wake-ups,
// agrees with every cell. The default run's figures themselves are reported by make run
// and the README, not gated here.
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
	blind := map[string]results.Cell{}
	for _, c := range sum.Cells {
		if c.Strategy == "blind" {
			blind[c.Skew] = c
		}
	}
	for _, c := range sum.Cells {
		name := c.Strategy + " / " + c.Skew
		b := blind[c.Skew]
		t.Logf("%-30s %-14s reset %.3f (model %.3f) stale %d retries %d of %d", c.Strategy, c.Skew, c.ResetRate, c.PredictedResetRate, c.Stale, c.Retries, c.Requests)
		// 64 lanes, 1.5s, gaps around T = 100ms: about 900 requests, set by the gaps.
		if c.Requests < 400 {
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
			// They fail only inside a window of a few hundred µs (plus any stall) around
			// T+s, of a 50ms sweep: a small part of what blind loses. One that stopped
			// looking would lose as much as blind.
			if c.ResetRate > b.ResetRate/3 {
				t.Errorf("%s: reset rate %.3f, want at most a third of blind's %.3f", name, c.ResetRate, b.ResetRate)
			}
			// Only idlerace's own pool reports its watchers' wake-ups; every idle close
			// the sweep leaves past T+s is one, so there are hundreds, and each wake-up
			// follows its close (a lag longer than T would mean nothing was watching).
			if watched := c.Strategy == "watch"; watched != (c.NotifySamples > 0) {
				t.Errorf("%s: %d notify-lag samples", name, c.NotifySamples)
			} else if watched && (c.NotifySamples < 100 || c.NotifyLagUS <= 0 || c.NotifyLagUS >= 100_000) {
				t.Errorf("%s: notify lag %.0fµs from %d wake-ups, want hundreds of samples and 0 < lag < T", name, c.NotifyLagUS, c.NotifySamples)
			}
		case strings.HasPrefix(c.Strategy, "timeout-margin") || strings.HasPrefix(c.Strategy, "hint-margin"):
			// Every skew stays inside the 20ms margin: a stale failure needs the client
			// stalled for the rest of the margin between checkout and write. A margin that
			// was not applied would lose as much as blind.
			if float64(c.Stale) > 0.01*float64(c.Requests) || c.Stale*20 > b.Stale {
				t.Errorf("%s: %d stale failures of %d requests, want at most 1%% and a twentieth of blind's %d", name, c.Stale, c.Requests, b.Stale)
			}
		case strings.HasPrefix(c.Strategy, "retry-only"):
			// No stale failure reaches the caller. A failure on a fresh connection (the
			// machine starved the client past T+s between dial and write) is not the race.
			if c.Stale != 0 || float64(c.Requests-c.OK) > 0.01*float64(c.Requests) {
				t.Errorf("%s: %d caller-visible stale failures, %d/%d ok (failures %+v); want none", name, c.Stale, c.OK, c.Requests, c.Failures)
			}
			// Every request a blind pool would lose, retry-only loses on the wire and
			// replays: its retries are blind's failures, give or take the two cells'
			// different luck with the machine (not retrying, or retrying everything, is
			// far outside).
			if r, bs := float64(c.Retries), float64(b.Stale); r < bs/2 || r > 2*bs {
				t.Errorf("%s: %d retries, want within a factor 2 of blind's %d failures", name, c.Retries, b.Stale)
			}
		}
		if c.Strategy != "stdlib" && !strings.HasPrefix(c.Strategy, "retry-only") && !strings.HasPrefix(c.Strategy, "hint") && !within(c) {
			t.Errorf("%s: measured %.3f, predicted %.3f: disagree", name, c.ResetRate, c.PredictedResetRate)
		}
	}
}
