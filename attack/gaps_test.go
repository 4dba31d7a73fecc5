package attack_test

import (
	"slices"
	"testing"
	"time"

	"github.com/idlerace/idlerace/attack"
)

// Below the bucket bound every gap is kept as measured: the summary is exact.
func TestGapsKeepEveryGapExactlyWhileTheyFit(t *testing.T) {
	var gs attack.Gaps
	gs.Add(3*time.Millisecond+7, true, false)
	gs.Add(time.Millisecond, false, true)
	gs.Add(3*time.Millisecond+7, false, false)
	var got []attack.GapBucket
	for b := range gs.Buckets() {
		got = append(got, b)
	}
	if gs.Resolution != 1 || gs.Len() != 3 || len(got) != 2 {
		t.Fatalf("resolution %s, len %d, buckets %+v", gs.Resolution, gs.Len(), got)
	}
	if got[0].Gap != time.Millisecond || got[0].N != 1 || got[0].Retried != 1 || got[0].Stale != 0 {
		t.Errorf("first bucket %+v", got[0])
	}
	if got[1].Gap != 3*time.Millisecond+7 || got[1].N != 2 || got[1].Stale != 1 || got[1].Retried != 0 {
		t.Errorf("second bucket %+v", got[1])
	}
}

// A million distinct gaps coarsen the buckets, not memory: counts stay exact, the
// resolution stays fine enough for the race window, and each bucket's mean lies inside
// it.
func TestGapsStayBoundedOverAMillionDistinctGaps(t *testing.T) {
	var gs attack.Gaps
	const n = 1_000_000
	var stale int64
	for i := range int64(n) {
		g := time.Duration(i*7919%5_000_000) + 95*time.Millisecond // 95ms .. 100ms, all distinct
		s := g > 99*time.Millisecond
		if s {
			stale++
		}
		gs.Add(g, s, i%10 == 0)
	}
	var buckets, total, gotStale, retried int64
	prev := time.Duration(-1)
	for b := range gs.Buckets() {
		buckets++
		total += b.N
		gotStale += b.Stale
		retried += b.Retried
		if b.Gap <= prev {
			t.Fatalf("buckets out of order: %s after %s", b.Gap, prev)
		}
		prev = b.Gap
	}
	if total != n || gs.Len() != n || gotStale != stale || retried != n/10 {
		t.Fatalf("total %d len %d stale %d (want %d) retried %d", total, gs.Len(), gotStale, stale, retried)
	}
	if buckets > 1<<13 || gs.Resolution > time.Microsecond {
		t.Fatalf("%d buckets at resolution %s: want at most 8192 at 1µs or finer", buckets, gs.Resolution)
	}
}

// Gaps takes its room once, at its first gap, and keeps it through every coarsening: its
// memory is the same early in a cell as late, so a soak sees no growth from it.
// Allocations: the map's tables, then one scratch slice per coarsening (a few here).
func TestGapsAllocateTheirRoomOnce(t *testing.T) {
	var resolution time.Duration
	allocs := testing.AllocsPerRun(3, func() {
		var gs attack.Gaps
		for i := range int64(100_000) {
			gs.Add(time.Duration(i*7919%5_000_000)+95*time.Millisecond, false, false)
		}
		resolution = gs.Resolution
	})
	if resolution == 1 {
		t.Fatal("100,000 distinct gaps did not coarsen: the test does not reach what it checks")
	}
	if allocs > 60 { // 35 with go1.26; 201 when the map grew and was remade
		t.Errorf("%.0f allocations for 100,000 gaps (resolution %s): the map was reallocated as it grew or coarsened", allocs, resolution)
	}
	t.Logf("%.0f allocations, resolution %s", allocs, resolution)
}

// Unstale takes back one stale failure of the gap it was added with, and no more than
// were added; the request stays counted.
func TestGapsUnstaleTakesBackOneStaleFailure(t *testing.T) {
	var gs attack.Gaps
	g := 200 * time.Millisecond
	gs.Add(g, true, false)
	gs.Add(g, true, false)
	gs.Add(g+time.Millisecond, false, false)
	var took []bool
	for _, at := range []time.Duration{g, g, g, g + time.Millisecond, -1} {
		took = append(took, gs.Unstale(at))
	}
	if want := []bool{true, true, false, false, false}; !slices.Equal(took, want) {
		t.Fatalf("took %v, want %v: two stale failures of g and none of the others", took, want)
	}
	for b := range gs.Buckets() {
		if b.Stale != 0 {
			t.Errorf("bucket %+v still stale", b)
		}
	}
	if gs.Len() != 3 {
		t.Errorf("len %d, want the 3 requests kept", gs.Len())
	}
}
