package matrix

import (
	"math"
	"testing"
	"time"

	"github.com/idlerace/idlerace/attack"
	"github.com/idlerace/idlerace/attack/pool"
	"github.com/idlerace/idlerace/chaos"
	"github.com/idlerace/idlerace/matrix/model"
	"github.com/idlerace/idlerace/results"
)

// sweptRecorder is a blind pool's cell whose exposed gaps step evenly across
// [T-w, T+w]: every gap past T failed stale.
func sweptRecorder(t, w time.Duration, n int) *attack.Recorder {
	rec := attack.NewRecorder("test", nil)
	for i := 0; i < n; i++ {
		g := t - w + time.Duration(float64(2*w)*float64(i)/float64(n-1))
		rec.Gaps.Add(g, g > t, false)
	}
	return rec
}

// checkCurve asserts the invariants every curve keeps: bins do not overlap, every
// exposed request and stale failure is in exactly one, and each bin's centre and width
// agree with its gap_over_t.
func checkCurve(t *testing.T, c []results.CurvePoint, tt time.Duration, n, stale int64) {
	t.Helper()
	var reqs, st int64
	tMS := float64(tt) / float64(time.Millisecond)
	for i, p := range c {
		reqs += p.Requests
		st += p.Stale
		if p.BinMS <= 0 {
			t.Fatalf("bin %d: width %g ms", i, p.BinMS)
		}
		if got := 1 + p.GapMinusTMS/tMS; math.Abs(got-p.GapOverT) > 1e-6 {
			t.Errorf("bin %d: gap_over_t %g, but its centre %g ms from T = %g ms is %g", i, p.GapOverT, p.GapMinusTMS, tMS, got)
		}
		if i > 0 {
			prev := c[i-1]
			if prevEnd, start := prev.GapMinusTMS+prev.BinMS/2, p.GapMinusTMS-p.BinMS/2; start < prevEnd-1e-9 {
				t.Errorf("bins %d and %d overlap: %g+%g/2 > %g-%g/2", i-1, i, prev.GapMinusTMS, prev.BinMS, p.GapMinusTMS, p.BinMS)
			}
		}
	}
	if reqs != n || st != stale {
		t.Errorf("curve holds %d requests and %d stale, want %d and %d", reqs, st, n, stale)
	}
}

// A ±3 ms sweep at T = 1 s is drawn in bins of at most 0.25 ms, at least 20 across it
// (1% of T, 10 ms, drew it as two points).
func TestCurveOfANarrowSweepIsInMilliseconds(t *testing.T) {
	tt, w := time.Second, 3*time.Millisecond
	rec := sweptRecorder(tt, w, 6001)
	c := curve(pool.Behaviour{}, model.Params{IdleTimeout: tt}, rec)
	checkCurve(t, c, tt, rec.Gaps.Len(), 3000)
	if len(c) < 20 {
		t.Fatalf("%d bins across ±3ms, want at least 20", len(c))
	}
	for _, p := range c {
		if p.BinMS > 0.25 {
			t.Errorf("bin at %g ms is %g ms wide, want at most 0.25", p.GapMinusTMS, p.BinMS)
		}
	}
	// The blind pool fails every gap past T: its window is the sweep's upper half.
	if got := results.WindowMS(c, 1000); math.Abs(got-3) > 0.2 {
		t.Errorf("window_ms %g, want 3 (every gap in (T, T+3ms] failed)", got)
	}
}

// A ±1.25 s sweep at T = 5 s (the seed's uvicorn) gets coarse bins across the sweep and
// bins of 0.25 ms around the close, the fine ones tiling the whole coarse bins that
// hold the close.
func TestCurveOfAWideSweepIsFineAtTheClose(t *testing.T) {
	tt, w := 5*time.Second, 1250*time.Millisecond
	rec := sweptRecorder(tt, w, 8001) // a gap every 312.5µs: Gaps keeps each as it is
	sk, err := chaos.ParseSkew("uniform:±2ms")
	if err != nil {
		t.Fatal(err)
	}
	params := model.Params{IdleTimeout: tt, Skew: sk, Latency: 100 * time.Microsecond}
	c := curve(pool.Behaviour{}, params, rec)
	checkCurve(t, c, tt, rec.Gaps.Len(), 4000)
	var coarse, fine int
	for _, p := range c {
		switch {
		case p.BinMS == 50:
			coarse++
		case p.BinMS == 0.25:
			fine++
			if math.Abs(p.GapMinusTMS) > 50 {
				t.Errorf("a fine bin at %g ms, more than the coarse bin around the close (skew ±2ms) away", p.GapMinusTMS)
			}
		default:
			t.Errorf("a bin %g ms wide at %g ms, want 50 (2.5s / 40, rounded down to 1-2-5) or 0.25", p.BinMS, p.GapMinusTMS)
		}
	}
	if coarse < 40 || fine < 16 {
		t.Errorf("%d coarse and %d fine bins, want at least 40 coarse and the ±2ms close in 0.25ms bins (16+)", coarse, fine)
	}
	// The prediction moves inside the fine bins: the skew spreads the close over 4 ms.
	var moving int
	for _, p := range c {
		if p.Predicted > 0.02 && p.Predicted < 0.98 {
			moving++
			if p.BinMS != 0.25 {
				t.Errorf("the model moves (%.2f) in a %g ms bin at %g ms", p.Predicted, p.BinMS, p.GapMinusTMS)
			}
		}
	}
	if moving < 8 {
		t.Errorf("the model moves in %d bins, want the ±2ms close drawn over 8 or more", moving)
	}
}

func TestNiceFloor(t *testing.T) {
	for _, c := range []struct{ in, want time.Duration }{
		{0, time.Microsecond}, {150 * time.Microsecond, 100 * time.Microsecond},
		{62500 * time.Microsecond, 50 * time.Millisecond}, {3 * time.Millisecond, 2 * time.Millisecond},
		{time.Second, time.Second},
	} {
		if got := niceFloor(c.in); got != c.want {
			t.Errorf("niceFloor(%s) = %s, want %s", c.in, got, c.want)
		}
	}
	if got := floorTo(-1, 10); got != -10 {
		t.Errorf("floorTo(-1, 10) = %d, want -10", got)
	}
}

// A long cell's gaps are kept in coarser buckets (attack.Gaps): no bin is narrower
// than a bucket, which stands at its mean gap.
func TestCurveBinsAreNoFinerThanTheGaps(t *testing.T) {
	tt, w := 5*time.Second, 1250*time.Millisecond
	rec := sweptRecorder(tt, w, 200_001)
	res := rec.Gaps.Resolution
	if res < 100*time.Microsecond {
		t.Fatalf("200,001 distinct gaps kept at %s: the test needs Gaps to have coarsened", res)
	}
	c := curve(pool.Behaviour{}, model.Params{IdleTimeout: tt}, rec)
	checkCurve(t, c, tt, rec.Gaps.Len(), 100_000)
	for _, p := range c {
		if p.BinMS*float64(time.Millisecond) < float64(res) {
			t.Fatalf("a %g ms bin, narrower than the gaps' %s buckets", p.BinMS, res)
		}
	}
}
