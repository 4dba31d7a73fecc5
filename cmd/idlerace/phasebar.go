package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// phaseBar shows a probe's phases: one line each, and on a terminal, for a phase that
// may wait long (an idle timeout of minutes), a bar drawn by progressbar that fills over
// the phase's bound, second by second, until the next phase starts.
type phaseBar struct {
	w    io.Writer
	live bool

	mu   sync.Mutex
	bar  *progressbar.ProgressBar
	stop chan struct{}
	done chan struct{}
}

// minBarWait is the shortest bound a phase gets a bar for; shorter ones are over before
// a bar would say anything.
const minBarWait = 2 * time.Second

func newPhaseBar(w io.Writer) *phaseBar {
	return &phaseBar{w: w, live: isTerminal(w)}
}

// phase ends the previous phase's bar and starts this one's.
func (b *phaseBar) phase(name string, wait time.Duration) {
	b.end()
	fmt.Fprintf(b.w, "probe: %s (up to %v)\n", name, wait.Round(time.Millisecond))
	if !b.live || wait < minBarWait {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	secs := int64(wait.Round(time.Second) / time.Second)
	b.bar = progressbar.NewOptions64(secs,
		progressbar.OptionSetWriter(b.w),
		progressbar.OptionSetDescription(name+" (s)"),
		progressbar.OptionSetWidth(24),
		progressbar.OptionShowCount(),
		progressbar.OptionClearOnFinish(),
	)
	_ = b.bar.RenderBlank() // drawn at once, not at the first second
	b.stop, b.done = make(chan struct{}), make(chan struct{})
	go tick(b.bar, secs, b.stop, b.done)
}

// tick fills bar a second at a time, up to secs, until stop.
func tick(bar *progressbar.ProgressBar, secs int64, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for n := int64(1); ; n++ {
		select {
		case <-stop:
			return
		case <-t.C:
			_ = bar.Set64(min(n, secs))
		}
	}
}

// end stops and clears the current bar, if any; the probe calls it when it is done.
func (b *phaseBar) end() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar == nil {
		return
	}
	close(b.stop)
	<-b.done
	_ = b.bar.Finish()
	b.bar = nil
}
