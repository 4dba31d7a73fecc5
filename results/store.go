package results

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// filePerm is the mode of every file the store writes.
const filePerm os.FileMode = 0o644

// WriteSummary writes s to path as indented JSON with a trailing newline, atomically
// (see WriteFileAtomic). An empty s.Schema is written as Schema; any other schema is
// refused, since this package only produces idlerace.summary/v1. s is not modified.
func WriteSummary(path string, s *Summary) error {
	data, err := encodeSummary(s)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return WriteFileAtomic(path, data, filePerm)
}

// ReadSummary reads the summary.json at path. It refuses a file whose schema is not
// Schema, with an error naming the file, the schema found and the one accepted, so a
// newer or foreign file is never half-read. Unknown fields are ignored.
func ReadSummary(path string) (*Summary, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var head struct {
		Schema *string `json:"schema"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("%s: not a summary: %w", path, err)
	}
	if head.Schema == nil {
		return nil, fmt.Errorf("%s: no \"schema\" field (accepted: %q)", path, Schema)
	}
	if *head.Schema != Schema {
		return nil, fmt.Errorf("%s: schema %q not supported (accepted: %q)", path, *head.Schema, Schema)
	}
	s := new(Summary)
	if err := json.Unmarshal(data, s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// encodeSummary is the one JSON encoding of a Summary, shared by WriteSummary and
// RenderJSON: two-space indent, no HTML escaping, trailing newline.
func encodeSummary(s *Summary) ([]byte, error) {
	if s == nil {
		return nil, errors.New("nil summary")
	}
	out := *s
	out.Findings = Findings(out.Cells)
	switch out.Schema {
	case "":
		out.Schema = Schema
	case Schema:
	default:
		return nil, fmt.Errorf("schema %q: this build writes only %q", out.Schema, Schema)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&out); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteHlog writes h to path as an HdrHistogram interval log (format 1.3, readable by
// HdrHistogram's HistogramLogProcessor and hdrhistogram-go's HistogramLogReader): the
// format version, a comment giving the units, a StartTime line for start, the legend,
// and one interval histogram tagged with tag. The interval starts at start and ends at
// h's EndTimeMs if that is later, else it has zero length; timestamps are absolute
// (seconds since the epoch). Values are h's, microseconds for a cell histogram, so
// the log's Interval_Max column (the writer divides by 10^6) reads in seconds.
//
// The log is built in memory and written atomically. tag must not contain a comma or
// white space (the log format's field and line separators); a cell ID never does. h
// is not modified.
func WriteHlog(path string, start time.Time, tag string, h *hdrhistogram.Histogram) error {
	if h == nil {
		return fmt.Errorf("write %s: nil histogram", path)
	}
	if strings.ContainsAny(tag, ", \t\r\n\v\f") {
		return fmt.Errorf("write %s: tag %q contains a comma or white space", path, tag)
	}
	startMs := start.UnixMilli()
	if startMs < 0 {
		return fmt.Errorf("write %s: start time %s is before 1970 (is it unset?)", path, start.UTC().Format(time.RFC3339))
	}

	interval := h.Clone()
	interval.SetTag(tag)
	interval.SetStartTimeMs(startMs)
	if interval.EndTimeMs() < startMs {
		interval.SetEndTimeMs(startMs)
	}

	var buf bytes.Buffer
	lw := hdrhistogram.NewHistogramLogWriter(&buf)
	err := errors.Join(
		lw.OutputLogFormatVersion(),
		lw.OutputComment("[idlerace: values in microseconds; Interval_Max in seconds]"),
		lw.OutputStartTime(startMs),
		lw.OutputLegend(),
		lw.OutputIntervalHistogram(interval),
	)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return WriteFileAtomic(path, buf.Bytes(), filePerm)
}

// ReadHlog reads the HdrHistogram interval log at path and returns all its intervals
// merged into one histogram, with the first interval's geometry and tag, its start
// time and the latest end time. A log with no interval, an interval that does not
// decode, or a later interval whose values do not fit the first one's range is an
// error naming the file.
func ReadHlog(path string) (*hdrhistogram.Histogram, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readHlog(path, f)
}

func readHlog(path string, r io.Reader) (*hdrhistogram.Histogram, error) {
	lr := hdrhistogram.NewHistogramLogReader(r)
	var merged *hdrhistogram.Histogram
	for n := 1; ; n++ {
		h, err := lr.NextIntervalHistogram()
		if err != nil {
			return nil, fmt.Errorf("%s: interval %d: %w", path, n, err)
		}
		if h == nil {
			break
		}
		if merged == nil {
			merged = h
			continue
		}
		if dropped := merged.Merge(h); dropped > 0 {
			return nil, fmt.Errorf("%s: interval %d: %d values outside the first interval's range [%d, %d]",
				path, n, dropped, merged.LowestTrackableValue(), merged.HighestTrackableValue())
		}
		merged.SetEndTimeMs(max(merged.EndTimeMs(), h.EndTimeMs()))
	}
	if merged == nil {
		return nil, fmt.Errorf("%s: no interval histogram in the log", path)
	}
	return merged, nil
}
