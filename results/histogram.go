package results

import (
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Latency histogram geometry, the DESIGN.md contract for every cell: values in
// microseconds from 1 µs to 60 s, with 3 significant decimal digits.
const (
	// LowestLatencyUS is the smallest latency a cell histogram tells apart, in µs.
	LowestLatencyUS int64 = 1
	// HighestLatencyUS is the largest latency a cell histogram tracks (60 s), in µs.
	HighestLatencyUS int64 = 60_000_000
	// LatencySignificantDigits is the cell histogram's precision in decimal digits.
	LatencySignificantDigits = 3
)

// NewLatencyHistogram returns an empty histogram with the cell geometry: 1 µs .. 60 s,
// in microseconds, 3 significant digits. Record into it with RecordLatency.
func NewLatencyHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(LowestLatencyUS, HighestLatencyUS, LatencySignificantDigits)
}

// RecordLatency records d into h in whole microseconds (truncated, like
// time.Duration.Microseconds). A duration below 1 µs, zero or negative is recorded as
// 1 µs and one above h's highest trackable value as that value, so a sample is never
// lost and never an error: a request that took longer than the histogram can hold
// still counts, at the ceiling.
func RecordLatency(h *hdrhistogram.Histogram, d time.Duration) {
	us := d.Microseconds()
	if us < 1 {
		us = 1
	}
	if highest := h.HighestTrackableValue(); us > highest {
		us = highest
	}
	// In range by construction; the only remaining failure is the total count
	// overflowing int64, which no run can reach.
	_ = h.RecordValue(us)
}

// LatencyFrom reads the summary percentiles out of h: the values at p50, p90, p99 and
// p99.9, and the maximum, in microseconds as h holds them. Each is the highest value
// equivalent to the recorded one at h's precision (HdrHistogram's convention), so
// with 3 significant digits a value may read up to 0.1% above what was recorded. An
// empty or nil histogram gives all zeros.
func LatencyFrom(h *hdrhistogram.Histogram) LatencyUS {
	if h == nil || h.TotalCount() == 0 {
		return LatencyUS{}
	}
	return LatencyUS{
		P50:  h.ValueAtQuantile(50),
		P90:  h.ValueAtQuantile(90),
		P99:  h.ValueAtQuantile(99),
		P999: h.ValueAtQuantile(99.9),
		Max:  h.Max(),
	}
}
