// Package agent runs real HTTP client libraries as things under test: a client kind is
// a library in its own process (an agent), driven lane by lane over the protocol in
// docs/agent-protocol.md. Each kind registers itself as a strategy (pool.Register), so
// it is usable wherever a strategy spec is, and declares its behaviour for the model.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/idlerace/idlerace/attack/pool"
)

// Kind is a client kind: how to start its agent and what its library does.
type Kind struct {
	Name, Usage, Help string
	// Files are written into the agent's private directory before it starts (its
	// script); Argv is its command line there, the settings' Args after it.
	Files map[string][]byte
	Argv  []string
	// Command, when set, gives the command line instead of Argv (a compiled agent,
	// built on first use).
	Command func() ([]string, error)
	// Options reads the kind's options from its spec, named as the library names them
	// (nil: the kind takes none).
	Options func(o *pool.Options) (Settings, error)
	// Missing says what to install when the runtime is not on this machine ("" when
	// it is).
	Missing func() string
	// Version says which version of the library this machine has, for `idlerace
	// strategies` (the agent's hello says it again in every cell).
	Version func() string
	// Behaviour is what the model assumes of the library (see each kind's comment for
	// the source that shows it).
	Behaviour pool.Behaviour
	// Idle is the library's setting for how long a pooled connection may idle (nil:
	// it has none). A kind without its own Options takes it as its one option.
	Idle *IdleSetting
}

// IdleSetting is a library's idle timeout for pooled connections, as the library names
// it: what `idlerace probe` recommends a value for.
type IdleSetting struct {
	Option       string // the spec option, e.g. "keep_alive_timeout"
	WholeSeconds bool   // the library takes whole seconds only
}

// IdleSettingOf returns the idle setting of the client kind named name (nil: none, or
// no such kind).
func IdleSettingOf(name string) *IdleSetting {
	if k := kinds[name]; k != nil {
		return k.Idle
	}
	return nil
}

var kinds = map[string]*Kind{}

// DirPrefix begins the name of every agent's private directory (its working directory):
// "idlerace-agent-KIND-*" under the system's temporary directory.
const DirPrefix = "idlerace-agent-"

// Register makes k a strategy named k.Name.
func Register(k *Kind) {
	if k.Options == nil && k.Idle != nil {
		k.Options = idleOption(k.Name, k.Idle.Option, k.Idle.WholeSeconds)
	}
	kinds[k.Name] = k
	usage := k.Usage
	if usage == "" {
		usage = k.Name
	}
	pool.Register(k.Name, usage, k.Help, func(o *pool.Options) (pool.Strategy, error) {
		c := &clientKind{kind: k, set: Settings{Canonical: k.Name}}
		if k.Options != nil {
			set, err := k.Options(o)
			if err != nil {
				return nil, err
			}
			c.set = set
		}
		return c, nil
	})
}

// Settings are a client kind's options as one spec gives them.
type Settings struct {
	Args      []string // added to the agent's command line
	Canonical string   // the spec, options in order ("hyper:pool_idle_timeout=4.9s")
	// Behave adjusts the kind's behaviour for these options (nil: unchanged).
	Behave func(b *pool.Behaviour)
}

// Installed says, for the client kind named name, the library version this machine has
// or what to install; ok is false for a strategy that is no client kind.
func Installed(name string) (what string, ok bool) {
	k := kinds[name]
	if k == nil {
		return "", false
	}
	if k.Missing != nil {
		if m := k.Missing(); m != "" {
			return "not installed: " + m, true
		}
	}
	if k.Version != nil {
		return k.Version(), true
	}
	return "", true
}

// clientKind is a kind as one cell uses it: one agent process for all its lanes,
// started with the first lane's first request and ended when the last lane closes.
type clientKind struct {
	kind *Kind
	set  Settings

	mu    sync.Mutex
	proc  *process
	dir   string
	err   error
	lanes int // open lanes
	next  int // lane numbers
	hello Hello
}

// Client is the library the cell ran, as its agent said (zero before it started).
func (c *clientKind) Client() (kind, library, version string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hello.Kind, c.hello.Library, c.hello.Version
}

func (c *clientKind) String() string { return c.set.Canonical }

// ClosesUnseen says the library closes its connections in another process, unseen:
// no pool.Config.OnClose comes for them.
func (c *clientKind) ClosesUnseen() {}

// AcceptsRetry lets a retry stand in front of the library (hyper+retry-only): each lane
// hands back its failures, classified, for it to replay.
func (c *clientKind) AcceptsRetry() {}

// Model gives the model the library's behaviour.
func (c *clientKind) Model(b *pool.Behaviour) {
	*b = c.kind.Behaviour
	if c.set.Behave != nil {
		c.set.Behave(b)
	}
}

// NewTransport is one lane: the library's own client and pool in the agent.
func (c *clientKind) NewTransport(cfg pool.Config) pool.Transport {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lanes++
	c.next++
	rt := cfg.RequestTimeout
	if rt <= 0 {
		rt = pool.DefaultRequestTimeout
	}
	return &lane{kind: c, n: c.next, timeout: rt}
}

// answerSlack is how long past a request's own timeout an agent may take to answer
// before it counts as hung and is killed.
var answerSlack = 10 * time.Second

// ErrMissing is wrapped by a send's error when the kind's runtime is not installed.
var ErrMissing = errors.New("client kind not installed")

// process returns the cell's agent, starting it on first use.
func (c *clientKind) process() (*process, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc != nil || c.err != nil {
		return c.proc, c.err
	}
	if c.kind.Missing != nil {
		if what := c.kind.Missing(); what != "" {
			c.err = fmt.Errorf("%s: %w: %s", c.kind.Name, ErrMissing, what)
			return nil, c.err
		}
	}
	dir, err := os.MkdirTemp("", DirPrefix+c.kind.Name+"-")
	if err != nil {
		c.err = err
		return nil, err
	}
	for name, data := range c.kind.Files {
		if err := os.WriteFile(dir+"/"+name, data, 0o644); err != nil {
			os.RemoveAll(dir)
			c.err = err
			return nil, err
		}
	}
	argv := c.kind.Argv
	if c.kind.Command != nil {
		if argv, err = c.kind.Command(); err != nil {
			os.RemoveAll(dir)
			c.err = fmt.Errorf("%s: %w", c.kind.Name, err)
			return nil, c.err
		}
	}
	argv = append(append([]string(nil), argv...), c.set.Args...)
	c.proc, c.err = startProcess(argv, dir)
	if c.err != nil {
		os.RemoveAll(dir)
		c.err = fmt.Errorf("%s: starting its agent: %w", c.kind.Name, c.err)
		return nil, c.err
	}
	c.dir = dir
	c.hello = c.proc.hello
	return c.proc, nil
}

// Warm starts the cell's agent (building it first if need be) before the load's clock
// starts, so that a runtime's start-up (Python importing requests, a first hyper build)
// is not counted against the cell's duration; Cool undoes it. The agent ends when the
// warm-up and every lane have let go of it.
func (c *clientKind) Warm() error {
	c.mu.Lock()
	c.lanes++
	c.mu.Unlock()
	if _, err := c.process(); err != nil {
		c.release()
		return err
	}
	return nil
}

// Cool lets go of Warm's hold on the agent.
func (c *clientKind) Cool() { c.release() }

// release closes a lane; the last one ends the agent.
func (c *clientKind) release() {
	c.mu.Lock()
	c.lanes--
	var p *process
	if c.lanes == 0 {
		p, c.proc, c.err = c.proc, nil, nil
	}
	dir := c.dir
	c.mu.Unlock()
	if p != nil {
		_ = p.close()
		os.RemoveAll(dir)
	}
}

// lane is one lane's transport: a pool.Timed.
type lane struct {
	kind    *clientKind
	n       int
	timeout time.Duration

	mu     sync.Mutex
	stats  pool.Stats
	closed bool
}

// SendAt has the agent send req on this lane no earlier than at.
func (l *lane) SendAt(ctx context.Context, req *http.Request, at time.Time) pool.TimedResult {
	fail := func(err error) pool.TimedResult {
		now := time.Now()
		return pool.TimedResult{Start: now, End: now, Err: err, Class: pool.Other}
	}
	p, err := l.kind.process()
	if err != nil {
		return fail(err)
	}
	m := message{Op: "send", Lane: l.n, AtNS: nsString(at), Timeout: fmt.Sprint(l.timeout.Nanoseconds()),
		Method: req.Method, URL: req.URL.String(), Headers: map[string]string{}}
	if at.IsZero() {
		m.AtNS = "0"
	}
	for k, vs := range req.Header {
		m.Headers[k] = strings.Join(vs, ", ")
	}
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return fail(err)
		}
		m.Body = string(b)
	}
	// The agent times the request out itself; this bound only catches an agent that
	// stopped answering.
	bound := l.timeout + answerSlack
	if !at.IsZero() {
		bound += max(time.Until(at), 0)
	}
	r, err := p.send(m, bound)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", l.kind.kind.Name, err))
	}
	out := pool.TimedResult{Status: r.Status, BytesIn: r.BytesIn, LocalPort: r.Port}
	out.Start, _ = parseNS(r.StartNS)
	out.End, _ = parseNS(r.EndNS)
	if r.Reused != nil {
		out.Reused = *r.Reused
	}
	if r.Error != "" || r.Status == 0 {
		out.Err = errors.New(r.Error)
		out.Class = pool.Class(r.Class)
		switch out.Class {
		case pool.ResetWrite, pool.ResetRead, pool.EOF, pool.Timeout, pool.Other:
		default:
			out.Class = pool.Other
		}
	}
	l.mu.Lock()
	if out.Reused {
		l.stats.Reused++
	} else if out.LocalPort != 0 {
		l.stats.NewConns++
	}
	l.mu.Unlock()
	return out
}

// RoundTrip sends req now (for loads that do not time their own gaps).
func (l *lane) RoundTrip(req *http.Request) (*http.Response, error) {
	r := l.SendAt(req.Context(), req, time.Time{})
	if r.Err != nil {
		return nil, r.Err
	}
	return &http.Response{StatusCode: r.Status, Body: http.NoBody, Request: req, Header: http.Header{}}, nil
}

func (l *lane) CloseIdleConnections() {
	l.mu.Lock()
	closed := l.closed
	l.closed = true
	l.mu.Unlock()
	if !closed {
		l.kind.release()
	}
}

func (l *lane) Stats() pool.Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

// idleOption is the Options of a kind whose setting is its library's idle timeout for
// pooled connections, under the name the library gives it (undici's keepAliveTimeout as
// keep_alive_timeout, httpx's keepalive_expiry, libcurl's CURLOPT_MAXAGE_CONN as
// maxage_conn): the agent gets it as --max-idle-ns, the model as MaxIdle. wholeSeconds:
// the library takes whole seconds only.
func idleOption(kind, name string, wholeSeconds bool) func(o *pool.Options) (Settings, error) {
	// The spec parser has already named the kind in any error it wraps.
	return func(o *pool.Options) (Settings, error) {
		set := Settings{Canonical: kind}
		if !o.Has(name) {
			return set, nil
		}
		d, err := o.Duration(name, 0, false)
		if err != nil {
			return set, err
		}
		if wholeSeconds && d%time.Second != 0 {
			return set, fmt.Errorf("%s=%s: whole seconds only (1s, 5s, ...)", name, d)
		}
		set.Args = []string{"--max-idle-ns", fmt.Sprint(d.Nanoseconds())}
		set.Canonical += ":" + name + "=" + d.String()
		set.Behave = func(b *pool.Behaviour) { b.MaxIdle = d }
		return set, nil
	}
}
