package results

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// MergeRuns combines run directories into out. Cells with the same ID (the same
// combination and repeat, measured in several runs) become one cell: counts add up,
// latency histograms merge exactly and percentiles are read from the merged histogram,
// the prediction is weighted by requests, and the race curve adds up bin by bin. The
// merged run is complete only if every input was.
func MergeRuns(out string, dirs []string) (*Summary, error) {
	byID := map[string]*mergedCell{}
	var sum *Summary
	state := "complete"
	for _, dir := range dirs {
		s, err := ReadSummary(filepath.Join(dir, "summary.json"))
		if err != nil {
			return nil, err
		}
		if s.State != "complete" {
			state = "partial"
		}
		if sum == nil {
			sum = &Summary{Schema: Schema, Tool: s.Tool, Started: s.Started, Finished: s.Finished}
		}
		if s.Started.Before(sum.Started) {
			sum.Started = s.Started
		}
		if s.Finished.After(sum.Finished) {
			sum.Finished = s.Finished
		}
		for _, c := range s.Cells {
			var h *hdrhistogram.Histogram
			if c.Hlog != "" {
				if h, err = ReadHlog(filepath.Join(dir, c.Hlog)); err != nil {
					return nil, err
				}
			}
			m, ok := byID[c.ID]
			if !ok {
				byID[c.ID] = &mergedCell{cell: c, hist: h, pos: len(byID)}
				continue
			}
			if err := m.add(c, h); err != nil {
				return nil, fmt.Errorf("%s: cell %s: %w", dir, c.ID, err)
			}
		}
	}
	if sum == nil {
		return nil, fmt.Errorf("merge: no run directories")
	}
	ms := make([]*mergedCell, 0, len(byID))
	for _, m := range byID {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].pos < ms[j].pos })
	if sum.Started.IsZero() {
		sum.Started = time.Now().UTC() // inputs written without a start time
	}
	if err := os.MkdirAll(filepath.Join(out, "cells"), 0o755); err != nil {
		return nil, err
	}
	for _, m := range ms {
		if m.hist != nil {
			m.cell.LatencyUS = LatencyFrom(m.hist)
			m.cell.Hlog = filepath.Join("cells", m.cell.ID+".hlog")
			if err := WriteHlog(filepath.Join(out, m.cell.Hlog), sum.Started, "cell", m.hist); err != nil {
				return nil, err
			}
		}
		m.cell.Finish()
		sum.Cells = append(sum.Cells, m.cell)
	}
	sum.State = state
	if err := WriteSummary(filepath.Join(out, "summary.json"), sum); err != nil {
		return nil, err
	}
	man := &Manifest{State: state, Tool: sum.Tool, Kernel: Kernel(), Started: sum.Started, Finished: time.Now().UTC(),
		CellsTotal: len(sum.Cells), CellsDone: len(sum.Cells), Parallel: 1, Args: append([]string{"merge"}, dirs...)}
	if err := WriteManifest(filepath.Join(out, "manifest.json"), man); err != nil {
		return nil, err
	}
	return sum, nil
}

type mergedCell struct {
	cell Cell
	hist *hdrhistogram.Histogram
	pos  int
}

// add folds another measurement of the same cell into m.
func (m *mergedCell) add(c Cell, h *hdrhistogram.Histogram) error {
	a := &m.cell
	total := a.Requests + c.Requests
	if total > 0 {
		a.PredictedResetRate = (a.PredictedResetRate*float64(a.Requests) + c.PredictedResetRate*float64(c.Requests)) / float64(total)
		a.PredictedRetryRate = (a.PredictedRetryRate*float64(a.Requests) + c.PredictedRetryRate*float64(c.Requests)) / float64(total)
	}
	a.Requests, a.OK, a.Stale, a.Retries, a.Primes = total, a.OK+c.OK, a.Stale+c.Stale, a.Retries+c.Retries, a.Primes+c.Primes
	a.HiddenRetries += c.HiddenRetries
	a.NewConns, a.Discards = a.NewConns+c.NewConns, a.Discards+c.Discards
	a.Failures.ResetWrite += c.Failures.ResetWrite
	a.Failures.ResetRead += c.Failures.ResetRead
	a.Failures.EOF += c.Failures.EOF
	a.Failures.Timeout += c.Failures.Timeout
	a.Failures.Other += c.Failures.Other
	s, t := &a.Server, c.Server
	s.Accepted, s.IdleCloses, s.ClosesWithUnread = s.Accepted+t.Accepted, s.IdleCloses+t.IdleCloses, s.ClosesWithUnread+t.ClosesWithUnread
	s.Executed, s.Duplicates = s.Executed+t.Executed, s.Duplicates+t.Duplicates
	if s.UnmatchedFailures < 0 || t.UnmatchedFailures < 0 {
		s.UnmatchedFailures = -1 // a part had no view of the server's closes
	} else {
		s.UnmatchedFailures += t.UnmatchedFailures
	}
	if s.View != t.View {
		s.View = "mixed: " + s.View + ", " + t.View
	}
	if t.Wire != nil {
		if s.Wire == nil {
			s.Wire = &Wire{}
		} else {
			w := *s.Wire
			s.Wire = &w // the part's own stays as it was
		}
		s.Wire.Segments += t.Wire.Segments
		s.Wire.Drops += t.Wire.Drops
		s.Wire.ServerFINs += t.Wire.ServerFINs
		s.Wire.ServerRSTs += t.Wire.ServerRSTs
		s.Wire.LateRequests += t.Wire.LateRequests
		s.Wire.ClosesWithUnread += t.Wire.ClosesWithUnread
	}
	s.CloseLateUS.Max = max(s.CloseLateUS.Max, t.CloseLateUS.Max)
	s.CloseLateUS.P50 = max(s.CloseLateUS.P50, t.CloseLateUS.P50) // the worse of the two: close lateness has no histogram to merge
	s.CloseLateUS.P99 = max(s.CloseLateUS.P99, t.CloseLateUS.P99)
	a.DurationMS += c.DurationMS
	a.WindowProbes += c.WindowProbes
	if a.DurationMS > 0 {
		a.WindowProbesPerS = float64(a.WindowProbes) / (a.DurationMS / 1000)
	}
	a.Curve = mergeCurves(a.Curve, c.Curve)
	a.WindowMS = WindowMS(a.Curve, a.IdleTimeoutMS)
	a.ModelWindowMS = ModelWindowMS(a.Curve, a.IdleTimeoutMS)
	switch {
	case m.hist == nil:
		m.hist = h
	case h != nil:
		if dropped := m.hist.Merge(h); dropped != 0 {
			return fmt.Errorf("%d latency values out of the histogram's range", dropped)
		}
	}
	return nil
}
