package matrix

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/idlerace/idlerace/results"
)

// Build identifies the binary that measured, for the summary's tool block.
type Build struct{ Version, Commit string }

// RunOptions say where a matrix run's outputs go.
type RunOptions struct {
	// OutDir is the run directory; "" writes no files.
	OutDir string
	// Results receives every request as a vegeta result; nil for none.
	Results vegeta.Encoder
	// OnCell is called after each cell with its index (from 0) and the total.
	OnCell func(i, n int, c results.Cell)
	Build  Build
}

// Run measures every cell in order. All cells are prepared first, so bad input stops the
// run before any upstream starts. With an OutDir, each cell's HdrHistogram log and the
// summary (state "partial" until the last cell) are written atomically as each cell
// finishes, so an interrupted run loses at most the cell in flight.
func Run(ctx context.Context, specs []CellSpec, opts RunOptions) (*results.Summary, error) {
	prepared := make([]*Prepared, len(specs))
	for i, s := range specs {
		p, err := Prepare(s)
		if err != nil {
			return nil, err
		}
		prepared[i] = p
	}
	sum := &results.Summary{
		Schema:  results.Schema,
		Tool:    tool(opts.Build),
		Started: time.Now().UTC(),
		State:   "partial",
	}
	if opts.OutDir != "" {
		if err := os.MkdirAll(filepath.Join(opts.OutDir, "cells"), 0o755); err != nil {
			return nil, fmt.Errorf("run directory: %w", err)
		}
	}
	for i, p := range prepared {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		out, err := RunCell(ctx, p, opts.Results)
		if err != nil {
			if ctx.Err() != nil {
				return sum, ctx.Err()
			}
			return sum, fmt.Errorf("cell %s: %w", p.ID(), err)
		}
		if opts.OutDir != "" {
			out.Cell.Hlog = filepath.Join("cells", out.Cell.ID+".hlog")
			if err := results.WriteHlog(filepath.Join(opts.OutDir, out.Cell.Hlog), out.Started, "cell", out.Latency); err != nil {
				return sum, err
			}
		}
		sum.Cells = append(sum.Cells, out.Cell)
		if i == len(prepared)-1 {
			sum.State = "complete"
		}
		sum.Finished = time.Now().UTC()
		if opts.OutDir != "" {
			if err := results.WriteSummary(filepath.Join(opts.OutDir, "summary.json"), sum); err != nil {
				return sum, err
			}
		}
		if opts.OnCell != nil {
			opts.OnCell(i, len(prepared), out.Cell)
		}
	}
	if len(prepared) == 0 {
		sum.State = "complete"
	}
	return sum, nil
}

func tool(b Build) results.Tool {
	v := b.Version
	if v == "" {
		v = "dev"
	}
	return results.Tool{Version: v, Commit: b.Commit, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU()}
}
