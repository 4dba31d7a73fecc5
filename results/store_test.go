package results

import (
	"bytes"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// sampleSummary is a summary with every field set to a distinct value.
func sampleSummary() *Summary {
	c1 := Cell{
		ID:            CellID("read-probe+retry-only:max=1", "builtin", "uniform:±10ms", "1ms", "sweep", 0),
		Strategy:      "read-probe+retry-only:max=1",
		Upstream:      "builtin",
		Skew:          "uniform:±10ms",
		Latency:       "1ms",
		Load:          "sweep",
		IdleTimeoutMS: 5000,
		Repeat:        0,
		Requests:      1000,
		OK:            990,
		Failures:      Failures{ResetWrite: 3, ResetRead: 2, EOF: 1, Timeout: 4, Other: 0},
		Stale:         6,
		Retries:       17,
		Primes:        12,
		NewConns:      41,
		Discards:      9,
		LatencyUS:     LatencyUS{P50: 1234, P90: 2345, P99: 45678, P999: 99999, Max: 1200000},
		Server: Server{
			Accepted: 41, IdleCloses: 30, ClosesWithUnread: 5, UnmatchedFailures: 1, Executed: 1007, Duplicates: 2,
			CloseLateUS: LatencyUS{P50: 80, P90: 150, P99: 900, P999: 2000, Max: 2500},
		},
		PredictedResetRate: 0.0055,
		PredictedRetryRate: 0.018,
		DurationMS:         61234.5,
		Hlog:               "cells/x.hlog",
	}
	c1.Finish()
	c2 := Cell{ID: "blind", Strategy: "blind", Upstream: "uvicorn", Skew: "none", Latency: "0", Load: "lull", Repeat: 1}
	c2.Finish()
	return &Summary{
		Schema:   Schema,
		Tool:     Tool{Version: "v0.1.0", Commit: "abc123", Go: "go1.26", OS: "linux", Arch: "amd64", CPUs: 2},
		Started:  time.Date(2025, 11, 25, 8, 14, 3, 123456789, time.UTC),
		Finished: time.Date(2025, 11, 25, 8, 20, 0, 0, time.UTC),
		State:    "complete",
		Cells:    []Cell{c1, c2},
	}
}

func TestSummaryRoundTrips(t *testing.T) {
	path := filepath.Join(t.TempDir(), "summary.json")
	want := sampleSummary()
	if err := WriteSummary(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSummary(path)
	if err != nil {
		t.Fatal(err)
	}
	want.Findings = Findings(want.Cells) // WriteSummary derives them (here: cell 0's unmatched failure)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip changed the summary:\n got %+v\nwant %+v", got, want)
	}
	if got.Cells[0].ResetRate != 0.006 || got.Cells[0].ConnsPer1k != 41 {
		t.Errorf("cell 0: reset rate %g, conns/1k %g; want 0.006, 41", got.Cells[0].ResetRate, got.Cells[0].ConnsPer1k)
	}
}

func TestWriteSummaryIsIndentedJSONWithTrailingNewline(t *testing.T) {
	path := filepath.Join(t.TempDir(), "summary.json")
	if err := WriteSummary(path, sampleSummary()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if !strings.HasPrefix(text, "{\n  \"schema\": \"idlerace.summary/v1\",\n  \"tool\": {\n    \"version\": \"v0.1.0\",") {
		t.Errorf("not two-space indented with schema first:\n%.200s", text)
	}
	if !strings.HasSuffix(text, "}\n") || strings.HasSuffix(text, "\n\n") {
		t.Errorf("want exactly one trailing newline, file ends %q", text[len(text)-5:])
	}
	// DESIGN.md's contract fields, by their JSON names.
	for _, key := range []string{`"reset_rate_ci95": [`, `"conns_per_1k": 41,`, `"latency_us": {`, `"p999": 99999,`,
		`"predicted_reset_rate": 0.0055,`, `"closes_with_unread": 5,`, `"unmatched_failures": 1,`, `"reset_write": 3,`} {
		if !strings.Contains(text, key) {
			t.Errorf("summary.json lacks %s", key)
		}
	}
	if strings.Contains(text, `\u00b1`) || !strings.Contains(text, "uniform:±10ms") {
		t.Error("spec strings are escaped; want them as written")
	}
}

func TestWriteSummaryFillsEmptySchemaWithoutTouchingTheCaller(t *testing.T) {
	path := filepath.Join(t.TempDir(), "summary.json")
	s := sampleSummary()
	s.Schema = ""
	if err := WriteSummary(path, s); err != nil {
		t.Fatal(err)
	}
	if s.Schema != "" {
		t.Errorf("WriteSummary set the caller's Schema to %q", s.Schema)
	}
	got, err := ReadSummary(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Schema != Schema {
		t.Errorf("schema read back = %q, want %q", got.Schema, Schema)
	}
}

func TestWriteSummaryRefusesOtherSchemas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "summary.json")
	s := sampleSummary()
	s.Schema = "idlerace.summary/v2"
	err := WriteSummary(path, s)
	if err == nil || !strings.Contains(err.Error(), "idlerace.summary/v2") {
		t.Fatalf("error = %v, want one naming idlerace.summary/v2", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused summary left a file: %v", err)
	}
	if err := WriteSummary(path, nil); err == nil {
		t.Error("no error writing a nil summary")
	}
}

func TestReadSummaryRefusesOtherSchemas(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ name, content, found string }{
		{"v2.json", `{"schema": "idlerace.summary/v2", "cells": []}`, `"idlerace.summary/v2"`},
		{"foreign.json", `{"schema": "vegeta.report/v1"}`, `"vegeta.report/v1"`},
		{"empty-schema.json", `{"schema": "", "cells": []}`, `""`},
		{"no-schema.json", `{"cells": []}`, `no "schema" field`},
	} {
		path := filepath.Join(dir, c.name)
		if err := os.WriteFile(path, []byte(c.content), 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := ReadSummary(path)
		if err == nil {
			t.Errorf("%s: read %+v, want an error", c.name, s)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, path) || !strings.Contains(msg, c.found) || !strings.Contains(msg, `"idlerace.summary/v1"`) {
			t.Errorf("%s: error %q; want it to name the file, %s and the accepted \"idlerace.summary/v1\"", c.name, msg, c.found)
		}
	}
}

func TestReadSummaryNamesTheFileOfBadJSON(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"truncated.json":  `{"schema": "idlerace.summary/v1", "cells": [{"requests": 1`,
		"wrong-type.json": `{"schema": "idlerace.summary/v1", "cells": [{"requests": "many"}]}`,
		"not-json.json":   "requests=1\n",
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadSummary(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v, want one naming %s", name, err, path)
		}
	}
	missing := filepath.Join(dir, "missing.json")
	if _, err := ReadSummary(missing); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: error %v, want ErrNotExist naming %s", err, missing)
	}
}

// latencySample fills a cell histogram with a spread of latencies, the shape of a
// real cell: most requests fast, a tail, a few stale failures seconds long.
func latencySample(seed uint64) *hdrhistogram.Histogram {
	h := NewLatencyHistogram()
	rng := rand.New(rand.NewPCG(seed, 7))
	for range 20_000 {
		us := 200 + rng.ExpFloat64()*800
		if rng.IntN(100) == 0 {
			us = 5_000_000 + rng.Float64()*1_000_000
		}
		RecordLatency(h, time.Duration(us*1000))
	}
	return h
}

var hlogQuantiles = []float64{0, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100}

func assertSameHistogram(t *testing.T, got, want *hdrhistogram.Histogram) {
	t.Helper()
	if got.TotalCount() != want.TotalCount() {
		t.Errorf("count = %d, want %d", got.TotalCount(), want.TotalCount())
	}
	for _, q := range hlogQuantiles {
		if g, w := got.ValueAtQuantile(q), want.ValueAtQuantile(q); g != w {
			t.Errorf("p%g = %d µs, want %d µs", q, g, w)
		}
	}
	if g, w := got.Min(), want.Min(); g != w {
		t.Errorf("min = %d, want %d", g, w)
	}
	if g, w := got.Max(), want.Max(); g != w {
		t.Errorf("max = %d, want %d", g, w)
	}
	if !got.Equals(want) {
		t.Error("histograms differ in geometry or bucket counts")
	}
}

func TestHlogRoundTripsExactly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cell.hlog")
	want := latencySample(1)
	start := time.Date(2025, 11, 25, 8, 14, 3, 250_000_000, time.UTC)
	tag := CellID("read-probe", "builtin", "uniform:±10ms", "1ms", "sweep", 0)
	if err := WriteHlog(path, start, tag, want); err != nil {
		t.Fatal(err)
	}
	if want.Tag() != "" || want.StartTimeMs() != 0 {
		t.Errorf("WriteHlog changed the caller's histogram: tag %q, start %d", want.Tag(), want.StartTimeMs())
	}

	got, err := ReadHlog(path)
	if err != nil {
		t.Fatal(err)
	}
	assertSameHistogram(t, got, want)
	if got.Tag() != tag {
		t.Errorf("tag = %q, want %q", got.Tag(), tag)
	}
	if got.StartTimeMs() != start.UnixMilli() {
		t.Errorf("start = %d ms, want %d ms", got.StartTimeMs(), start.UnixMilli())
	}
	if got.LowestTrackableValue() != 1 || got.HighestTrackableValue() != 60_000_000 || got.SignificantFigures() != 3 {
		t.Errorf("geometry = %d..%d, %d digits; want the cell geometry",
			got.LowestTrackableValue(), got.HighestTrackableValue(), got.SignificantFigures())
	}
	if l := LatencyFrom(got); l != LatencyFrom(want) {
		t.Errorf("LatencyFrom after round trip = %+v, want %+v", l, LatencyFrom(want))
	}
}

func TestWriteHlogWritesAStandardIntervalLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cell.hlog")
	start := time.Date(2025, 11, 25, 8, 14, 3, 250_000_000, time.UTC)
	if err := WriteHlog(path, start, "cell-7", latencySample(2)); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d lines, want 5 (version, units, start time, legend, interval):\n%s", len(lines), data)
	}
	for i, prefix := range []string{
		"#[Histogram log format version 1.3]",
		"#[idlerace: values in microseconds",
		"#[StartTime: 1764058443 (seconds since epoch), 2025-11-25T08:14:03Z]",
		`"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"`,
		"Tag=cell-7,1764058443.250000,0.000000,",
	} {
		if !strings.HasPrefix(lines[i], prefix) {
			t.Errorf("line %d = %.90q, want prefix %q", i+1, lines[i], prefix)
		}
	}
}

func TestHlogOfEmptyHistogramRoundTrips(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.hlog")
	if err := WriteHlog(path, time.Unix(1_700_000_000, 0), "", NewLatencyHistogram()); err != nil {
		t.Fatal(err)
	}
	got, err := ReadHlog(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.TotalCount() != 0 || LatencyFrom(got) != (LatencyUS{}) {
		t.Errorf("empty histogram read back with %d values, %+v", got.TotalCount(), LatencyFrom(got))
	}
}

func TestReadHlogMergesAllIntervals(t *testing.T) {
	a, b := latencySample(3), latencySample(4)
	a.SetStartTimeMs(1_700_000_000_000)
	a.SetEndTimeMs(1_700_000_060_000)
	b.SetStartTimeMs(1_700_000_060_000)
	b.SetEndTimeMs(1_700_000_120_000)
	var buf bytes.Buffer
	lw := hdrhistogram.NewHistogramLogWriter(&buf)
	if err := errors.Join(lw.OutputLogFormatVersion(), lw.OutputStartTime(1_700_000_000_000), lw.OutputLegend(),
		lw.OutputIntervalHistogram(a), lw.OutputIntervalHistogram(b)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "two.hlog")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	want := NewLatencyHistogram()
	want.Merge(a)
	want.Merge(b)
	got, err := ReadHlog(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.TotalCount() != 40_000 {
		t.Errorf("count = %d, want 40000 (two intervals of 20000)", got.TotalCount())
	}
	assertSameHistogram(t, got, want)
	if got.StartTimeMs() != 1_700_000_000_000 || got.EndTimeMs() != 1_700_000_120_000 {
		t.Errorf("span = %d..%d ms, want 1700000000000..1700000120000", got.StartTimeMs(), got.EndTimeMs())
	}
}

func TestWriteHlogRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	h := latencySample(5)
	start := time.Unix(1_700_000_000, 0)
	for name, call := range map[string]func(path string) error{
		"comma-tag":  func(p string) error { return WriteHlog(p, start, "a,b", h) },
		"space-tag":  func(p string) error { return WriteHlog(p, start, "a b", h) },
		"line-tag":   func(p string) error { return WriteHlog(p, start, "a\nb", h) },
		"edge-comma": func(p string) error { return WriteHlog(p, start, "a,", h) },
		"zero-start": func(p string) error { return WriteHlog(p, time.Time{}, "a", h) },
		"nil":        func(p string) error { return WriteHlog(p, start, "a", nil) },
	} {
		path := filepath.Join(dir, name+".hlog")
		err := call(path)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v, want one naming %s", name, err, path)
		}
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: refused write left a file: %v", name, err)
		}
	}
}

func TestReadHlogRejectsWhatIsNotAnIntervalLog(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"empty.hlog":   "",
		"header.hlog":  "#[Histogram log format version 1.3]\n#[StartTime: 1700000000 (seconds since epoch)]\n",
		"corrupt.hlog": "#[StartTime: 1700000000 (seconds since epoch)]\n1700000000.000,0.000,1.0,HISTFAAAAnotbase64!!\n",
		"json.hlog":    `{"schema": "idlerace.summary/v1"}`,
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		h, err := ReadHlog(path)
		if err == nil {
			t.Errorf("%s: read %d values, want an error", name, h.TotalCount())
			continue
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %q does not name the file", name, err)
		}
	}
	if _, err := ReadHlog(filepath.Join(dir, "missing.hlog")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: error %v, want ErrNotExist", err)
	}
}
