package matrix

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/idlerace/idlerace/attack"
	"github.com/idlerace/idlerace/results"
)

// Build identifies the binary that measured, for the summary's tool block.
type Build struct{ Version, Commit string }

// DefaultParallel is how many cells run at once unless told otherwise. The race load is
// mostly idle waiting and wall time falls close to 1/N, but on 2 cores the builtin
// upstream's idle close stops landing within 1ms of T+s beyond one cell at a time (the
// median cell's p99 lateness was 0.47ms at 1, 2.0ms at 2, 5.0ms at 3, 7.8ms at 4), and
// the watch window widens with it; see README ("Parallel cells").
const DefaultParallel = 1

// RunOptions say how a matrix run goes and where its outputs land.
type RunOptions struct {
	// OutDir is the run directory; "" writes no files.
	OutDir string
	// MatrixYAML, when set, is stored in the run directory as matrix.yaml.
	MatrixYAML []byte
	// Results receives every request as a vegeta result; nil for none.
	Results vegeta.Encoder
	// Parallel is how many cells run at once (0: 1).
	Parallel int
	// Done holds cells of an earlier, partial run of the same matrix (--resume): cells
	// whose ID it has are not run again.
	Done []results.Cell
	// OnStart is called once with the number of cells to run; OnCellStart and OnCell
	// around each cell (OnCell with the count of cells finished and the total).
	OnStart     func(toRun, total int)
	OnCellStart func(p *Prepared)
	OnCell      func(done, total int, c results.Cell)
	// Observer, when set, gives each cell an observer of its requests (live metrics).
	Observer func(p *Prepared) attack.Observer
	Build    Build
	Args     []string
	// PCAP writes each cell's capture of the server's segments as cells/<id>.pcap
	// (headers only, nanosecond timestamps; --pcap), for Wireshark.
	PCAP bool
	// Shard, for a shard of a matrix, is recorded in the manifest (specs are the
	// shard's cells already).
	Shard *results.Shard
}

// ErrInterrupted is returned when the run's context ended before every cell finished;
// finished cells are on disk and the manifest says partial.
var ErrInterrupted = errors.New("interrupted")

// Run measures every cell, up to Parallel at a time. All cells are prepared first, so
// bad input stops the run before any upstream starts. With an OutDir, the manifest is
// written first (state running), and each cell's HdrHistogram log and the summary are
// written atomically the moment the cell finishes, so an interrupted run loses only the
// cells in flight, which are abandoned. The summary lists cells in matrix order.
func Run(ctx context.Context, specs []CellSpec, opts RunOptions) (*results.Summary, error) {
	prepared := make([]*Prepared, len(specs))
	index := map[string]int{}
	for i, s := range specs {
		p, err := Prepare(s)
		if err != nil {
			return nil, err
		}
		prepared[i] = p
		if j, dup := index[p.ID()]; dup {
			return nil, bad(fmt.Errorf("cells %d and %d are the same measurement (%s / %s / %s / %s / %s, %s at T = %s, repeat %d): list each combination once",
				j+1, i+1, p.Strategy, p.Upstream, p.Skew, p.Latency, p.Load, p.Spec.Method, p.Spec.IdleTimeout, s.Repeat))
		}
		index[p.ID()] = i
	}
	st := &runState{
		opts: opts,
		sum:  &results.Summary{Schema: results.Schema, Tool: tool(opts.Build), Started: time.Now().UTC(), State: "partial"},
		byID: map[string]results.Cell{},
		pos:  index,
	}
	for _, c := range opts.Done {
		if _, ok := index[c.ID]; ok {
			st.byID[c.ID] = c
		}
	}
	var todo []*Prepared
	for _, p := range prepared {
		if _, done := st.byID[p.ID()]; !done {
			todo = append(todo, p)
		}
	}
	st.manifest = &results.Manifest{
		State: "running", Tool: st.sum.Tool, Kernel: results.Kernel(), Started: st.sum.Started,
		CellsTotal: len(prepared), CellsDone: len(st.byID), Parallel: max(opts.Parallel, 1), Args: opts.Args,
		Shard: opts.Shard,
	}
	if err := st.begin(); err != nil {
		return nil, err
	}
	if opts.OnStart != nil {
		opts.OnStart(len(todo), len(prepared))
	}
	enc := opts.Results
	if enc != nil {
		var mu sync.Mutex
		inner := enc
		enc = func(r *vegeta.Result) error { mu.Lock(); defer mu.Unlock(); return inner(r) }
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan *Prepared)
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for w := 0; w < max(opts.Parallel, 1); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				if opts.OnCellStart != nil {
					opts.OnCellStart(p)
				}
				var obs attack.Observer
				if opts.Observer != nil {
					obs = opts.Observer(p)
				}
				var sp *spool
				var cellEnc vegeta.Encoder
				if enc != nil {
					var err error
					if sp, err = newSpool(); err != nil {
						errOnce.Do(func() { firstErr = err })
						cancel()
						continue
					}
					cellEnc = sp.Encode
				}
				var pcap *results.AtomicFile
				var pcapW io.Writer
				if opts.PCAP && opts.OutDir != "" {
					var err error
					if pcap, err = results.CreateAtomic(filepath.Join(opts.OutDir, "cells", p.ID()+".pcap")); err != nil {
						errOnce.Do(func() { firstErr = err })
						cancel()
						continue
					}
					pcapW = pcap
				}
				out, err := runCell(runCtx, p, cellEnc, obs, pcapW)
				if runCtx.Err() != nil {
					if sp != nil {
						sp.close()
					}
					if pcap != nil {
						pcap.Abort()
					}
					continue // abandoned: a cell cut short is not a measurement
				}
				if pcap != nil {
					if err == nil && out.Cell.Server.Wire != nil {
						// In place before the summary that names it is written.
						if err = pcap.Commit(0o644); err == nil {
							out.Cell.PCAP = filepath.Join("cells", p.ID()+".pcap")
						}
					} else {
						pcap.Abort() // no capture ran (a netem cell, or not root)
					}
				}
				if err == nil && sp != nil {
					err = sp.flush(enc)
				}
				if sp != nil {
					sp.close()
				}
				if err == nil {
					err = st.finish(p, out)
				}
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("cell %s: %w", p.ID(), err) })
					cancel()
				}
			}
		}()
	}
feed:
	for _, p := range todo {
		select {
		case work <- p:
		case <-runCtx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()

	err := firstErr
	if err == nil && ctx.Err() != nil {
		err = ErrInterrupted
	}
	if werr := st.end(err); werr != nil && err == nil {
		err = werr
	}
	return st.sum, err
}

// runState holds what a run has finished and writes it to the run directory.
type runState struct {
	opts     RunOptions
	mu       sync.Mutex
	sum      *results.Summary
	manifest *results.Manifest
	byID     map[string]results.Cell
	pos      map[string]int
}

// begin makes the run directory. A new one appears whole (matrix.yaml, summary.json with
// no cells, manifest.json, cells/), so a process killed at any point leaves either no
// directory or one that --resume and report can read. An existing one (--resume) is
// first cleared of the temp files an earlier process, killed mid-write, left behind.
func (st *runState) begin() error {
	dir := st.opts.OutDir
	if dir == "" {
		return nil
	}
	if _, err := results.RemoveTemps(dir); err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	return results.CreateDirAtomic(dir, func(d string) error {
		if err := os.MkdirAll(filepath.Join(d, "cells"), 0o755); err != nil {
			return fmt.Errorf("run directory: %w", err)
		}
		if st.opts.MatrixYAML != nil {
			if err := results.WriteFileAtomic(filepath.Join(d, "matrix.yaml"), st.opts.MatrixYAML, 0o644); err != nil {
				return err
			}
			st.manifest.Matrix = "matrix.yaml"
		}
		st.collect()
		return st.writeTo(d)
	})
}

// finish records a finished cell and writes its files.
func (st *runState) finish(p *Prepared, out *Outcome) error {
	dir := st.opts.OutDir
	if dir != "" {
		out.Cell.Hlog = filepath.Join("cells", out.Cell.ID+".hlog")
		if err := results.WriteHlog(filepath.Join(dir, out.Cell.Hlog), out.Started, "cell", out.Latency); err != nil {
			return err
		}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.byID[out.Cell.ID] = out.Cell
	st.collect()
	if err := st.write(); err != nil {
		return err
	}
	if st.opts.OnCell != nil {
		st.opts.OnCell(len(st.byID), st.manifest.CellsTotal, out.Cell)
	}
	return nil
}

// collect puts the finished cells into the summary in matrix order.
func (st *runState) collect() {
	cells := make([]results.Cell, 0, len(st.byID))
	for _, c := range st.byID {
		cells = append(cells, c)
	}
	sort.SliceStable(cells, func(i, j int) bool { return st.pos[cells[i].ID] < st.pos[cells[j].ID] })
	st.sum.Cells = cells
	st.sum.Finished = time.Now().UTC()
	st.manifest.CellsDone = len(cells)
}

// write writes the summary, then the manifest: after a crash between the two the
// manifest is one cell behind summary.json, which is the record of what finished.
func (st *runState) write() error { return st.writeTo(st.opts.OutDir) }

func (st *runState) writeTo(dir string) error {
	if dir == "" {
		return nil
	}
	if err := results.WriteSummary(filepath.Join(dir, "summary.json"), st.sum); err != nil {
		return err
	}
	return results.WriteManifest(filepath.Join(dir, "manifest.json"), st.manifest)
}

func (st *runState) end(runErr error) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.collect()
	state := "complete"
	if runErr != nil || len(st.byID) < st.manifest.CellsTotal {
		state = "partial"
	}
	st.sum.State = state
	st.manifest.State = state
	st.manifest.Finished = st.sum.Finished
	if runErr != nil && !errors.Is(runErr, ErrInterrupted) {
		st.manifest.Error = runErr.Error()
	}
	return st.write()
}

func tool(b Build) results.Tool {
	v := b.Version
	if v == "" {
		v = "dev"
	}
	return results.Tool{Version: v, Commit: b.Commit, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), Procs: runtime.GOMAXPROCS(0)}
}
