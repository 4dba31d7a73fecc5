package attack

import (
	"iter"
	"maps"
	"slices"
	"time"
)

// Gaps is a bounded summary of the exposure gaps of a cell's requests: what the model's
// prediction and the race curve are computed from. Gaps are grouped in buckets of
// Resolution; each bucket keeps its count, how many of its requests failed stale or were
// retried, and the sum of its gaps, so its mean gap is exact.
//
// Resolution starts at 1ns, where a bucket holds only equal gaps and the summary is
// exact: every gap of a cell with fewer than maxGapBuckets distinct gaps is kept as
// measured. Past that, the resolution coarsens tenfold (10ns, 100ns, 1µs, ...) until the
// buckets fit, so memory stays bounded however long the cell runs (a soak sends over a
// million requests per cell; one gap each, kept whole, grew the heap by 10 bytes a
// request). A coarse bucket stands for its requests at their mean gap: the model's
// prediction is then approximate by at most the skew's probability mass within one
// Resolution of each bucket's mean (1µs at 1,000,000 constant-load requests on loopback,
// well inside the microseconds the gap itself is measured to). Counts are exact at any
// resolution, and the race curve's bins stay exact while Resolution divides their width
// (T/100 is a whole number of microseconds for any T that is a multiple of 100µs).
type Gaps struct {
	// Resolution is the bucket width: 1ns (exact) until there were too many distinct gaps.
	Resolution time.Duration
	buckets    map[int64]gapAcc
	n          int64
}

// gapAcc is a bucket as stored: 24 bytes (a bucket counts up to 4 billion requests, 11
// hours at the constant load's top rate).
type gapAcc struct {
	sum               time.Duration
	n, stale, retried uint32
}

// GapBucket is the requests of one bucket of Gaps.
type GapBucket struct {
	// Gap is the mean gap of the bucket's requests: at 1ns resolution, their gap.
	Gap               time.Duration
	N, Stale, Retried int64
}

// maxGapBuckets bounds Gaps: the map sized for it takes 640 KiB (go1.26), from the
// first gap of a cell on.
const maxGapBuckets = 1 << 13

// Add counts one exposed request of gap g.
func (gs *Gaps) Add(g time.Duration, stale, retried bool) {
	if gs.buckets == nil {
		// Sized for the bound from the start, and never reallocated (coarsen refills it):
		// a map grown bucket by bucket, then halved by a coarsening and grown again, made
		// the cell's live heap swing by up to ~0.5 MiB between two points of a soak,
		// growth that looked like a leak; sized once, it costs the same at minute 1 as at
		// minute 10.
		gs.buckets = make(map[int64]gapAcc, maxGapBuckets)
		gs.Resolution = 1
	}
	k := int64(g / gs.Resolution)
	b, ok := gs.buckets[k]
	if !ok && len(gs.buckets) >= maxGapBuckets {
		gs.coarsen()
		k = int64(g / gs.Resolution)
		b = gs.buckets[k]
	}
	gs.n++
	b.n++
	b.sum += g
	if stale {
		b.stale++
	}
	if retried {
		b.retried++
	}
	gs.buckets[k] = b
}

// coarsen multiplies the resolution by ten until there is room for a new bucket; each
// time at least tenfold, so it happens a few times in a cell's life, not at every gap.
func (gs *Gaps) coarsen() {
	old := make([]gapAcc, 0, len(gs.buckets))
	for len(gs.buckets) >= maxGapBuckets {
		gs.Resolution *= 10
		old = slices.AppendSeq(old[:0], maps.Values(gs.buckets))
		clear(gs.buckets) // keeps the map's room for maxGapBuckets
		for _, b := range old {
			k := int64((b.sum / time.Duration(b.n)) / gs.Resolution)
			m := gs.buckets[k]
			m.n += b.n
			m.sum += b.sum
			m.stale += b.stale
			m.retried += b.retried
			gs.buckets[k] = m
		}
	}
}

// Len is how many exposed requests were added.
func (gs *Gaps) Len() int64 { return gs.n }

// Buckets yields the buckets in order of gap, each with its mean gap.
func (gs *Gaps) Buckets() iter.Seq[GapBucket] {
	return func(yield func(GapBucket) bool) {
		for _, k := range slices.Sorted(maps.Keys(gs.buckets)) {
			b := gs.buckets[k]
			if !yield(GapBucket{Gap: b.sum / time.Duration(b.n), N: int64(b.n), Stale: int64(b.stale), Retried: int64(b.retried)}) {
				return
			}
		}
	}
}

// Weighted yields each bucket's mean gap with its count: the model's input.
func (gs *Gaps) Weighted() iter.Seq2[time.Duration, int64] {
	return func(yield func(time.Duration, int64) bool) {
		for b := range gs.Buckets() {
			if !yield(b.Gap, b.N) {
				return
			}
		}
	}
}

// Unstale takes back one stale failure of gap g, counted by Add: a failure the cell
// found afterwards not to be the race (a proxy's own 502). A coarsening keys a bucket by
// its mean gap, so g's failure may sit one bucket over: the neighbours are tried next.
// It reports whether a bucket had one to take.
func (gs *Gaps) Unstale(g time.Duration) bool {
	if gs.buckets == nil || g < 0 {
		return false
	}
	k := int64(g / gs.Resolution)
	for _, k := range []int64{k, k - 1, k + 1} {
		if b, ok := gs.buckets[k]; ok && b.stale > 0 {
			b.stale--
			gs.buckets[k] = b
			return true
		}
	}
	return false
}
