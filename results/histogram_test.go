package results

import (
	"testing"
	"time"
)

func TestNewLatencyHistogramHasCellGeometry(t *testing.T) {
	h := NewLatencyHistogram()
	if got := h.LowestTrackableValue(); got != 1 {
		t.Errorf("lowest = %d µs, want 1", got)
	}
	if got := h.HighestTrackableValue(); got != 60_000_000 {
		t.Errorf("highest = %d µs, want 60000000", got)
	}
	if got := h.SignificantFigures(); got != 3 {
		t.Errorf("significant figures = %d, want 3", got)
	}
	if got := h.TotalCount(); got != 0 {
		t.Errorf("new histogram holds %d values, want 0", got)
	}
}

func TestRecordLatencyRecordsWholeMicroseconds(t *testing.T) {
	h := NewLatencyHistogram()
	RecordLatency(h, 1234*time.Microsecond+999*time.Nanosecond) // truncates to 1234
	if got := h.TotalCount(); got != 1 {
		t.Fatalf("count = %d, want 1", got)
	}
	// Below 2048 µs a 3-digit histogram is exact.
	if got := h.Max(); got != 1234 {
		t.Errorf("recorded %d µs, want 1234", got)
	}
}

func TestRecordLatencyClampsBelowOneMicrosecond(t *testing.T) {
	for _, d := range []time.Duration{0, 1, 999 * time.Nanosecond, -5 * time.Second} {
		h := NewLatencyHistogram()
		RecordLatency(h, d)
		if h.TotalCount() != 1 || h.Min() != 1 || h.Max() != 1 {
			t.Errorf("RecordLatency(%v): count %d, min %d, max %d; want one value of 1 µs",
				d, h.TotalCount(), h.Min(), h.Max())
		}
	}
}

func TestRecordLatencyClampsAboveSixtySecondsWithoutLosingTheSample(t *testing.T) {
	h := NewLatencyHistogram()
	for _, d := range []time.Duration{60 * time.Second, 61 * time.Second, 2 * time.Hour, time.Duration(1<<63 - 1)} {
		RecordLatency(h, d)
	}
	if got := h.TotalCount(); got != 4 {
		t.Fatalf("count = %d, want 4: an over-long request must still count", got)
	}
	if got := h.Min(); !h.ValuesAreEquivalent(got, 60_000_000) {
		t.Errorf("min = %d µs, want the 60 s ceiling", got)
	}
	if got := h.Max(); !h.ValuesAreEquivalent(got, 60_000_000) {
		t.Errorf("max = %d µs, want the 60 s ceiling", got)
	}
}

func TestLatencyFromEmptyHistogramIsZero(t *testing.T) {
	if got := LatencyFrom(NewLatencyHistogram()); got != (LatencyUS{}) {
		t.Errorf("empty: %+v, want zeros", got)
	}
	if got := LatencyFrom(nil); got != (LatencyUS{}) {
		t.Errorf("nil: %+v, want zeros", got)
	}
}

func TestLatencyFromReadsPercentiles(t *testing.T) {
	h := NewLatencyHistogram()
	for us := 1; us <= 1000; us++ { // exact range: every value is its own bucket
		RecordLatency(h, time.Duration(us)*time.Microsecond)
	}
	want := LatencyUS{P50: 500, P90: 900, P99: 990, P999: 999, Max: 1000}
	if got := LatencyFrom(h); got != want {
		t.Errorf("LatencyFrom = %+v, want %+v", got, want)
	}
}

func TestLatencyFromIsWithinThreeDigitsAboveExactRange(t *testing.T) {
	h := NewLatencyHistogram()
	// 90 fast requests at 2.5 ms, 9 at 123.456 ms, 1 at 7.654321 s.
	for range 90 {
		RecordLatency(h, 2500*time.Microsecond)
	}
	for range 9 {
		RecordLatency(h, 123456*time.Microsecond)
	}
	RecordLatency(h, 7654321*time.Microsecond)

	got := LatencyFrom(h)
	for _, c := range []struct {
		name      string
		got, want int64
	}{
		{"p50", got.P50, 2500},
		{"p90", got.P90, 2500},
		{"p99", got.P99, 123456},
		{"p99.9", got.P999, 7654321},
		{"max", got.Max, 7654321},
	} {
		if c.got < c.want || float64(c.got) > float64(c.want)*1.001 {
			t.Errorf("%s = %d µs, want %d µs to 3 significant digits (and not below)", c.name, c.got, c.want)
		}
	}
}
