package model

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/idlerace/idlerace/attack/pool"
	"github.com/idlerace/idlerace/chaos"
)

// sweepGaps returns n gaps evenly spread over [t-w, t+w].
func sweepGaps(t, w time.Duration, n int) []time.Duration {
	gaps := make([]time.Duration, n)
	for i := range gaps {
		gaps[i] = t - w + time.Duration((float64(i)+0.5)/float64(n)*float64(2*w))
	}
	return gaps
}

func behaviour(t *testing.T, spec string) pool.Behaviour {
	t.Helper()
	s, err := pool.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	return s.Behaviour()
}

func skew(t *testing.T, spec string) chaos.Skew {
	t.Helper()
	s, err := chaos.ParseSkew(spec)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The default run's cells: T = 100ms, gaps sweep [75ms, 125ms], loopback (d = 0).
func TestPredictionsForTheDefaultSweep(t *testing.T) {
	const T = 100 * time.Millisecond
	gaps := sweepGaps(T, 25*time.Millisecond, 10000)
	n := int64(len(gaps))
	cases := []struct {
		strategy, skew string
		reset, retry   float64
	}{
		{"blind", "none", 0.5, 0},
		{"blind", "offset:-5ms", 0.6, 0},
		{"blind", "uniform:±10ms", 0.5, 0},
		{"blind", "normal:sd=3ms", 0.5, 0},
		{"blind", "drift:from=0,to=-10ms", 0.6, 0},
		// watch fails only within the notify lag after the close: 100µs of a 50ms window.
		{"watch", "none", 0.002, 0},
		{"stdlib", "uniform:±10ms", 0.002, 0},
		// the probe sees every FIN that arrived on loopback.
		{"read-probe", "none", 0, 0},
		{"read-probe", "offset:-5ms", 0, 0},
		// a margin of 20ms drops every connection idle past 80ms: no stale failure unless
		// the server closes more than 20ms early.
		{"timeout-margin:margin=20ms", "uniform:±10ms", 0, 0},
		{"timeout-margin:margin=20ms", "offset:-30ms", 0.1, 0},
		{"hint-margin:margin=20ms", "offset:-5ms", 0, 0},
		{"retry-only", "none", 0, 0.5},
		{"retry-only:methods=idempotent", "none", 0.5, 0}, // POST is not replayed
		{"read-probe+retry-only", "none", 0, 0},
	}
	for _, c := range cases {
		p := Params{IdleTimeout: T, Skew: skew(t, c.skew), Method: "POST", Hint: T}
		reset, retry := Predict(behaviour(t, c.strategy), p, gaps, n)
		if math.Abs(reset-c.reset) > 0.002 || math.Abs(retry-c.retry) > 0.002 {
			t.Errorf("%s under %s: predicted reset %.4f retry %.4f, want %.4f %.4f", c.strategy, c.skew, reset, retry, c.reset, c.retry)
		}
	}
}

// With latency d, the probe's window is 2d wide (the FIN is in flight while the request
// is), which is what a read probe cannot close. A FIN that crosses the path sooner than
// data (the delay proxy jitters data, not FINs) is seen sooner: the probe's window
// shrinks to 2d - lead; blind's, from g > T - 2d, does not move.
func TestLatencyOpensTheProbeWindow(t *testing.T) {
	const T = 100 * time.Millisecond
	gaps := sweepGaps(T, 25*time.Millisecond, 50000)
	for _, c := range []struct {
		d, lead              time.Duration
		wantProbe, wantBlind float64
	}{
		{2 * time.Millisecond, 0, 4.0 / 50, 29.0 / 50},
		{3 * time.Millisecond, time.Millisecond, 5.0 / 50, 31.0 / 50},
	} {
		p := Params{IdleTimeout: T, Skew: skew(t, "none"), Latency: c.d, FINLead: c.lead}
		probe, _ := Predict(behaviour(t, "read-probe"), p, gaps, int64(len(gaps)))
		blind, _ := Predict(behaviour(t, "blind"), p, gaps, int64(len(gaps)))
		if math.Abs(probe-c.wantProbe) > 0.001 || math.Abs(blind-c.wantBlind) > 0.001 {
			t.Errorf("d=%v, FIN lead %v: read-probe %.4f, blind %.4f; want %.4f ((2d - lead) / 2w) and %.4f",
				c.d, c.lead, probe, blind, c.wantProbe, c.wantBlind)
		}
	}
}

// The server stops reading StopLag after T+s and closes CloseLag after it: a request
// arriving before it stopped is served, one arriving after it closed meets a FIN the
// probe saw. On loopback the probe's window is CloseLag - StopLag; blind's failures
// start StopLag later.
func TestStopLagNarrowsTheProbeWindow(t *testing.T) {
	const T = 100 * time.Millisecond
	gaps := sweepGaps(T, 25*time.Millisecond, 50000)
	p := Params{IdleTimeout: T, Skew: skew(t, "none"), CloseLag: 2 * time.Millisecond, StopLag: 1500 * time.Microsecond}
	probe, _ := Predict(behaviour(t, "read-probe"), p, gaps, int64(len(gaps)))
	if want := 0.5 / 50; math.Abs(probe-want) > 0.001 {
		t.Fatalf("read-probe: %.4f, want %.4f ((close lag - stop lag) / 2w)", probe, want)
	}
	blind, _ := Predict(behaviour(t, "blind"), p, gaps, int64(len(gaps)))
	if want := 23.5 / 50; math.Abs(blind-want) > 0.001 {
		t.Fatalf("blind: %.4f, want %.4f (fails from g > T + stop lag)", blind, want)
	}
}

// Measured lags count by their distribution: a close that one wake-up in 32 delays
// 3.2 ms widens the probe's window by 0.1 ms over an even sweep, though the median lag
// is 0; the scalar lags are ignored once the quantiles are there.
func TestLagQuantilesWidenTheProbeWindowByTheirMean(t *testing.T) {
	const T = 100 * time.Millisecond
	gaps := sweepGaps(T, 5*time.Millisecond, 50000)
	closes := make([]time.Duration, 32)
	closes[31] = 3200 * time.Microsecond
	p := Params{IdleTimeout: T, Skew: skew(t, "none"), CloseLag: 0, CloseLags: closes, StopLags: make([]time.Duration, 32)}
	probe, _ := Predict(behaviour(t, "read-probe"), p, gaps, int64(len(gaps)))
	if want := 0.1 / 10; math.Abs(probe-want) > 0.0005 {
		t.Errorf("read-probe: %.4f, want %.4f (the close lags' mean over the sweep)", probe, want)
	}
	p.CloseLags, p.StopLags = nil, nil
	if probe, _ := Predict(behaviour(t, "read-probe"), p, gaps, int64(len(gaps))); probe > 0.0005 {
		t.Errorf("read-probe on the median lag (0): %.4f, want 0", probe)
	}
	if p.MaxCloseLag() != 0 {
		t.Errorf("MaxCloseLag without quantiles %v, want the scalar 0", p.MaxCloseLag())
	}
	p.CloseLags = closes
	if p.MaxCloseLag() != 3200*time.Microsecond {
		t.Errorf("MaxCloseLag %v, want the longest quantile 3.2ms", p.MaxCloseLag())
	}
}

// A lag counts by its distribution where its tail outruns the sweep: over gaps in
// T ± 2 ms, a read lag of 10 ms for one request in 32 and none for the rest moves
// blind's failures by E[min(lag, 2 ms)] = 62.5 µs, not by its mean of 312.5 µs.
func TestReachLagTailIsCutByTheSweep(t *testing.T) {
	const T = 100 * time.Millisecond
	gaps := sweepGaps(T, 2*time.Millisecond, 40000)
	reach := make([]time.Duration, 32)
	reach[31] = 10 * time.Millisecond
	p := Params{IdleTimeout: T, Skew: skew(t, "none"), ReadLag: 0, WriteLag: 312500 * time.Nanosecond, ReachLags: reach, ReadLags: make([]time.Duration, 32)}
	blind, _ := Predict(behaviour(t, "blind"), p, gaps, int64(len(gaps)))
	if want := (2 + 0.0625) / 4; math.Abs(blind-want) > 0.001 {
		t.Errorf("blind on the quantiles: %.4f, want %.4f", blind, want)
	}
	p.ReachLags, p.ReadLags = nil, nil
	blind, _ = Predict(behaviour(t, "blind"), p, gaps, int64(len(gaps)))
	if want := (2 + 0.3125) / 4; math.Abs(blind-want) > 0.001 {
		t.Errorf("blind on the mean: %.4f, want %.4f", blind, want)
	}
	// The watcher's notify lag likewise: measured at 0 for all but one wake-up in 32,
	// which took 10 ms, its window is 62.5 µs of the 4 ms sweep.
	p = Params{IdleTimeout: T, Skew: skew(t, "none"), NotifyLags: reach}
	watch, _ := Predict(behaviour(t, "watch"), p, gaps, int64(len(gaps)))
	if want := 0.0625 / 4; math.Abs(watch-want) > 0.0005 {
		t.Errorf("watch on the notify quantiles: %.4f, want %.4f", watch, want)
	}
}

// spread folds two independent lags into one distribution of their difference, equally
// weighted, in at most maxSpread points.
func TestSpreadFoldsIndependentLags(t *testing.T) {
	us := time.Microsecond
	if got := spread(nil, 5*us, nil, 2*us); len(got) != 1 || got[0] != 3*us {
		t.Errorf("two values: %v, want [3µs]", got)
	}
	if got := spread([]time.Duration{0, 10 * us}, 0, nil, 4*us); len(got) != 2 || got[0] != -4*us || got[1] != 6*us {
		t.Errorf("quantiles less a value: %v, want [-4µs 6µs]", got)
	}
	a, b := make([]time.Duration, 32), make([]time.Duration, 32)
	for i := range a {
		a[i], b[i] = time.Duration(i)*us, time.Duration(i)*us
	}
	got := spread(a, 0, b, 0)
	if len(got) != maxSpread || !slices.IsSorted(got) || got[0] > -25*us || got[maxSpread-1] < 25*us {
		t.Errorf("32 × 32 folded: %d points from %v to %v, want %d sorted, about ±31µs wide", len(got), got[0], got[len(got)-1], maxSpread)
	}
}

// The server's idle timer starts ReadLag before the client's gap and the request leaves
// WriteLag after the checkout: blind fails from g > T - read lag - write lag, and a
// strategy that looks at checkout misses a close in the last WriteLag before the
// request. At T = 1 s, +-3 ms, 0.3 ms of each is 10 points of blind and 5 of the probe.
func TestClientLagsMoveTheClose(t *testing.T) {
	const T = time.Second
	gaps := sweepGaps(T, 3*time.Millisecond, 60000)
	p := Params{IdleTimeout: T, Skew: skew(t, "none"), ReadLag: 300 * time.Microsecond, WriteLag: 300 * time.Microsecond}
	blind, _ := Predict(behaviour(t, "blind"), p, gaps, int64(len(gaps)))
	if want := 3.6 / 6; math.Abs(blind-want) > 0.001 {
		t.Errorf("blind: %.4f, want %.4f (fails from g > T - 0.6 ms)", blind, want)
	}
	probe, _ := Predict(behaviour(t, "read-probe"), p, gaps, int64(len(gaps)))
	if want := 0.3 / 6; math.Abs(probe-want) > 0.001 {
		t.Errorf("read-probe: %.4f, want %.4f (the write lag over the sweep)", probe, want)
	}
	// A watcher adds its notify lag, whether it must run to drop the connection (a
	// proxy's pool, Go's Transport) or is asked at checkout (idlerace's watch): the
	// thread that takes the FIN from the poller is the one that runs the watcher.
	p.NotifyLag = 200 * time.Microsecond
	readLoop, _ := Predict(pool.Behaviour{Watch: true}, p, gaps, int64(len(gaps)))
	if want := 0.5 / 6; math.Abs(readLoop-want) > 0.001 {
		t.Errorf("a watcher that must run: %.4f, want %.4f (the write lag and the notify lag)", readLoop, want)
	}
	watch, _ := Predict(behaviour(t, "watch"), p, gaps, int64(len(gaps)))
	if want := 0.5 / 6; math.Abs(watch-want) > 0.001 {
		t.Errorf("watch: %.4f, want %.4f (the write lag and the notify lag)", watch, want)
	}
	margin, _ := Predict(behaviour(t, "timeout-margin:margin=20ms"), p, gaps, int64(len(gaps)))
	if margin != 0 {
		t.Errorf("timeout-margin: %.4f, want 0 (its gaps end 20 ms before T in the client's clock)", margin)
	}
}

func TestHintOverridesBelievedTimeout(t *testing.T) {
	b := behaviour(t, "hint-margin:margin=10ms")
	p := Params{IdleTimeout: time.Second, Hint: 50 * time.Millisecond}
	if s, _ := Fail(b, p, 45*time.Millisecond); s != 0 {
		t.Fatalf("gap past hint - margin must go on a new connection, got %v", s)
	}
	if s, _ := Fail(b, Params{IdleTimeout: 50 * time.Millisecond, Skew: skew(t, "offset:-20ms")}, 35*time.Millisecond); s != 1 {
		t.Fatalf("gap 35ms within margin but past a close at 30ms: want 1, got %v", s)
	}
}

// undici's keepAliveTimeout (4 s) caps reuse only when the server sends no hint; a
// hint of N s replaces it with N - 2 s, and a hint of 2 s or less keeps nothing.
func TestHintReplacesMaxIdle(t *testing.T) {
	b := pool.Behaviour{Watch: true, MaxIdle: 4 * time.Second, UseHint: true, HintOnly: true,
		HintReplacesMaxIdle: true, Margin: 2 * time.Second}
	closedAt := func(t0 time.Duration) Params { // the server closes every connection t0 idle
		return Params{IdleTimeout: t0, Skew: skew(t, "offset:0s")}
	}
	for _, c := range []struct {
		name string
		p    Params
		gap  time.Duration
		want float64
	}{
		{"no hint, idle past the library's 4 s: a new connection", closedAt(3 * time.Second), 5 * time.Second, 0},
		{"no hint, within 4 s, at the close (inside the notify lag): stale", closedAt(3 * time.Second), 3 * time.Second, 1},
		{"hint 10 s replaces the 4 s cap: reused at 5 s, at the close", withHint(closedAt(5*time.Second), 10*time.Second), 5 * time.Second, 1},
		{"hint 10 s: past 8 s, a new connection", withHint(closedAt(5*time.Second), 10*time.Second), 9 * time.Second, 0},
		{"hint 2 s: nothing is kept", withHint(closedAt(100*time.Millisecond), 2*time.Second), 200 * time.Millisecond, 0},
	} {
		if s, _ := Fail(b, c.p, c.gap); s != c.want {
			t.Errorf("%s: stale %v, want %v", c.name, s, c.want)
		}
	}
}

func withHint(p Params, h time.Duration) Params { p.Hint = h; return p }

func TestUnexposedRequestsDiluteTheRate(t *testing.T) {
	gaps := []time.Duration{200 * time.Millisecond, 200 * time.Millisecond}
	r, _ := Predict(behaviour(t, "blind"), Params{IdleTimeout: 100 * time.Millisecond}, gaps, 4)
	if r != 0.5 {
		t.Fatalf("2 certain failures among 4 requests: %v", r)
	}
	if r, _ := Predict(pool.Behaviour{}, Params{}, nil, 0); r != 0 {
		t.Fatal("no requests must predict 0")
	}
}
