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
func MergeRuns(out string, dirs []string, opts ...MergeOptions) (*Summary, error) {
	var opt MergeOptions
	if len(opts) > 0 {
		opt = opts[0]
	}
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
	if opt.Order != nil {
		// Shards of one matrix: its own order, as an unsharded run lists its cells.
		at := map[string]int{}
		for i, id := range opt.Order {
			at[id] = i
		}
		for _, m := range ms {
			i, ok := at[m.cell.ID]
			if !ok {
				return nil, fmt.Errorf("merge: cell %s is not in the shards' matrix", m.cell.ID)
			}
			m.pos = i
		}
		if len(ms) < len(opt.Order) {
			state = "partial"
		}
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
	if opt.MatrixYAML != nil {
		if err := WriteFileAtomic(filepath.Join(out, "matrix.yaml"), opt.MatrixYAML, 0o644); err != nil {
			return nil, err
		}
		man.Matrix = "matrix.yaml"
	}
	if opt.Order != nil {
		man.CellsTotal = len(opt.Order)
	}
	if err := WriteManifest(filepath.Join(out, "manifest.json"), man); err != nil {
		return nil, err
	}
	return sum, nil
}

// MergeOptions are for merging the shards of one matrix.
type MergeOptions struct {
	// Order is the matrix's cell IDs in its order: the merged run lists its cells so,
	// and is partial when some are missing.
	Order []string
	// MatrixYAML is stored as the merged run's matrix.yaml.
	MatrixYAML []byte
}

// CheckShards says whether the runs of manifests (read from dirs) are the shards of one
// matrix made by one build, and which shards are missing. None a shard: a plain merge
// (sharded false). Some but not all, shards of different matrices or builds, or a shard
// twice: an error naming the directories.
func CheckShards(dirs []string, manifests []*Manifest) (sharded bool, missing []int, err error) {
	var first *Manifest
	var firstDir string
	seen := map[int]string{}
	for i, m := range manifests {
		if (m.Shard == nil) != (manifests[0].Shard == nil) {
			shard, whole := dirs[i], dirs[0]
			if m.Shard == nil {
				shard, whole = dirs[0], dirs[i]
			}
			return false, nil, fmt.Errorf("%s is a shard and %s is not: merge the shards of one matrix, or whole runs", shard, whole)
		}
		if m.Shard == nil {
			continue
		}
		if first == nil {
			first, firstDir = m, dirs[i]
		}
		f, s := first.Shard, m.Shard
		switch {
		case s.MatrixSHA256 != f.MatrixSHA256 || s.Count != f.Count:
			return false, nil, fmt.Errorf("%s is shard %d/%d of another matrix than %s (matrix.yaml sha256 %.12s, not %.12s): merge shards of one matrix", dirs[i], s.Index, s.Count, firstDir, s.MatrixSHA256, f.MatrixSHA256)
		case m.Tool.Version != first.Tool.Version || m.Tool.Commit != first.Tool.Commit:
			return false, nil, fmt.Errorf("%s was run by idlerace %s (%s), %s by %s (%s): merge shards of one build", dirs[i], m.Tool.Version, m.Tool.Commit, firstDir, first.Tool.Version, first.Tool.Commit)
		}
		if d, dup := seen[s.Index]; dup {
			return false, nil, fmt.Errorf("shard %d/%d is given twice: %s and %s", s.Index, s.Count, d, dirs[i])
		}
		seen[s.Index] = dirs[i]
	}
	if first == nil {
		return false, nil, nil
	}
	for i := 0; i < first.Shard.Count; i++ {
		if _, ok := seen[i]; !ok {
			missing = append(missing, i)
		}
	}
	return true, missing, nil
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
	a.Reused, a.ClosingResponses = a.Reused+c.Reused, a.ClosingResponses+c.ClosingResponses
	a.Status.S2xx += c.Status.S2xx
	a.Status.S3xx += c.Status.S3xx
	a.Status.S4xx += c.Status.S4xx
	a.Status.S5xx += c.Status.S5xx
	a.Failures.ResetWrite += c.Failures.ResetWrite
	a.Failures.ResetRead += c.Failures.ResetRead
	a.Failures.EOF += c.Failures.EOF
	a.Failures.Timeout += c.Failures.Timeout
	a.Failures.BadGateway += c.Failures.BadGateway
	a.Failures.Other += c.Failures.Other
	if h := c.Hop; h != nil {
		if a.Hop == nil {
			a.Hop = &Hop{Kind: h.Kind, Version: h.Version}
		} else {
			m := *a.Hop
			a.Hop = &m // the part's own stays as it was
		}
		a.Hop.Requests += h.Requests
		a.Hop.BadGateway += h.BadGateway
		a.Hop.UpstreamRetries += h.UpstreamRetries
		a.Hop.OwnErrors += h.OwnErrors
	}
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
		if n := s.Wire.PeerCloses + t.Wire.PeerCloses; n > 0 {
			s.Wire.PeerCloseLagUS = (s.Wire.PeerCloseLagUS*float64(s.Wire.PeerCloses) + t.Wire.PeerCloseLagUS*float64(t.Wire.PeerCloses)) / float64(n)
			s.Wire.PeerCloses = n
		}
	}
	s.IdleCloseMS = MergeSpread(s.IdleCloseMS, t.IdleCloseMS)
	s.ReuseGapMS = MergeSpread(s.ReuseGapMS, t.ReuseGapMS)
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

// MergeSpread folds two cells' idle closes: the earliest and latest are exact; with no
// samples to merge, the median is the samples-weighted mean of the two and the p99 the
// later of the two (the conservative side for a recommendation).
func MergeSpread(a, b *CloseSpread) *CloseSpread {
	switch {
	case b == nil || b.Samples == 0:
		return a
	case a == nil || a.Samples == 0:
		c := *b
		return &c
	}
	n := a.Samples + b.Samples
	return &CloseSpread{
		Min:     min(a.Min, b.Min),
		P50:     (a.P50*float64(a.Samples) + b.P50*float64(b.Samples)) / float64(n),
		P99:     max(a.P99, b.P99),
		Max:     max(a.Max, b.Max),
		Samples: n,
	}
}
