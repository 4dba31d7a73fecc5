package main

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/idlerace/idlerace/matrix"
	"github.com/idlerace/idlerace/results"
)

// progress shows a run's progress: on a terminal a live bar (cells done/total, ETA, the
// running cell, stale failures so far) drawn by progressbar; elsewhere (CI logs) one
// plain line per finished cell.
type progress struct {
	w     io.Writer
	quiet bool
	live  bool
	mu    sync.Mutex
	bar   *progressbar.ProgressBar
	stale int64
	cur   string
}

func newProgress(w io.Writer, quiet bool) *progress {
	return &progress{w: w, quiet: quiet, live: isTerminal(w)}
}

// isTerminal says whether w is a terminal, where a live bar can redraw itself; a CI log
// gets plain lines instead.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (p *progress) start(toRun, total int) {
	if p.quiet || !p.live {
		return
	}
	p.bar = progressbar.NewOptions(toRun,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription("cells"),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionSetWidth(24),
		progressbar.OptionClearOnFinish(),
	)
}

func (p *progress) cellStart(c *matrix.Prepared) {
	if p.bar == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cur = c.Strategy.String() + " / " + c.Skew.String()
	p.bar.Describe(fmt.Sprintf("stale so far %d | running %s", p.stale, p.cur))
}

func (p *progress) cellDone(done, total int, c results.Cell) {
	if p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stale += c.Stale
	if p.bar != nil {
		p.bar.Describe(fmt.Sprintf("stale so far %d | last %s / %s", p.stale, c.Strategy, c.Skew))
		_ = p.bar.Add(1)
		return
	}
	fmt.Fprintf(p.w, "[%d/%d] %-30s %-14s %-10s reset %5.1f%% (model %5.1f%%) in %.1fs\n",
		done, total, c.Strategy, c.Skew, c.Upstream, 100*c.ResetRate, 100*c.PredictedResetRate, c.DurationMS/1000)
}

func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}
