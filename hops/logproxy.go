package hops

import (
	"context"
	"strings"
	"sync"

	"github.com/idlerace/idlerace/internal/real"
)

// LogProxy is what the proxy kinds share: a real process (started, stopped and cleaned
// up by internal/real) whose own account of a cell is its request log, read a line at
// a time. A kind embeds it and gives Launch how to prepare its files and how to count a
// log line.
type LogProxy struct {
	real.Server
	kind string
	// Upstream is the next hop's "HOST:PORT".
	Upstream string
	// Log is the request log to read; the kind's prepare sets its Path.
	Log   real.LogTail
	count func(line []byte, st *Stats)

	mu    sync.Mutex
	stats Stats
}

// ProxyLauncher says how to start one kind of LogProxy.
type ProxyLauncher struct {
	Kind    string // the hop's kind; its directories are idlerace-<DirKind>-*
	DirKind string // "" is Kind
	InUse   string // what the proxy says when its port is taken
	Version string
	// Prepare writes the proxy's files into its private directory (real.Launcher).
	Prepare func(dir string, addr real.Addr, token string) (real.Spec, error)
	// Count adds one log line to the stats (lines it does not know it ignores).
	Count func(line []byte, st *Stats)
}

// Launch starts p in front of cfg.Upstream as l says; p's Prepare may read p.Upstream.
func (p *LogProxy) Launch(ctx context.Context, cfg Config, l ProxyLauncher) error {
	p.kind, p.count = l.Kind, l.Count
	p.Upstream = strings.TrimSuffix(strings.TrimPrefix(cfg.Upstream, "http://"), "/")
	dirKind := l.DirKind
	if dirKind == "" {
		dirKind = l.Kind
	}
	return real.Launch(ctx, &p.Server, real.Launcher{
		Kind:      dirKind,
		Addr:      cfg.Addr,
		InUse:     l.InUse,
		Version:   l.Version,
		Prepare:   l.Prepare,
		AfterStop: func() { p.Stats() },
	})
}

// Kind is the hop's kind.
func (p *LogProxy) Kind() string { return p.kind }

// Stats reads the log so far; after Close, in all (the log is read a last time once the
// proxy has stopped, before its directory goes).
func (p *LogProxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, line := range p.Log.Lines() {
		p.count(line, &p.stats)
	}
	return p.stats
}
