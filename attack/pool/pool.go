package pool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Config sets up a pool. The zero value works: defaults are filled in by New.
type Config struct {
	// IdleTimeout is T, the server's idle timeout as the client believes it. Margin
	// strategies are taken from it; hint-margin falls back to it.
	IdleTimeout time.Duration
	// MaxIdle caps the idle connections kept per host (default 64).
	MaxIdle int
	// DialTimeout bounds one dial (default 5s).
	DialTimeout time.Duration
	// RequestTimeout bounds one attempt from its write to the end of its response body
	// (default 30s, vegeta's -timeout): a server that never answers, or trickles its
	// response, costs a worker at most this long, and the attempt fails as Timeout.
	RequestTimeout time.Duration
	// MaxResponseHeaderBytes caps the bytes read for a response's header block, 1xx
	// interim responses included (default 1 MiB, net/http's DefaultMaxHeaderBytes: what
	// Go's server accepts of a request's headers; net/http.Transport allows 10 MiB). A
	// server that sends more fails the attempt as Other (ErrResponseHeaderTooLarge)
	// after at most this many bytes, however many it sends.
	MaxResponseHeaderBytes int64
	// Dial replaces the dialer, e.g. to count connections or go through a delay proxy.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// OnWatchClose, if set, is called when an idle watcher wakes to a close (EOF, RST or
	// stray bytes), with the connection's local port and the wake-up time. Matched with
	// the server's close of the same port it gives the watcher's notify lag, which is
	// watch's whole race window on loopback.
	OnWatchClose func(localPort int, at time.Time)
	// OnClose, if set, is called once when the client closes a connection, for any
	// reason, with its local port and the time. After it no request can fail on that
	// connection, so the server's record of it need not be kept for matching any more.
	OnClose func(localPort int, at time.Time)
}

// DefaultRequestTimeout is Config.RequestTimeout's default: vegeta's -timeout.
const DefaultRequestTimeout = 30 * time.Second

// DefaultMaxResponseHeaderBytes is Config.MaxResponseHeaderBytes's default, 1 MiB.
const DefaultMaxResponseHeaderBytes = http.DefaultMaxHeaderBytes

// ErrResponseHeaderTooLarge is wrapped by the error of an attempt whose response headers
// passed Config.MaxResponseHeaderBytes.
var ErrResponseHeaderTooLarge = errors.New("server response headers exceeded the limit")

// errHeaderLimit is what the connection's limited reader returns once the header block
// has used up its allowance.
var errHeaderLimit = errors.New("response header read limit exhausted")

func (cfg Config) withDefaults() Config {
	if cfg.MaxIdle <= 0 {
		cfg.MaxIdle = 64
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.MaxResponseHeaderBytes <= 0 {
		cfg.MaxResponseHeaderBytes = DefaultMaxResponseHeaderBytes
	}
	if cfg.Dial == nil {
		d := &net.Dialer{Timeout: cfg.DialTimeout}
		cfg.Dial = d.DialContext
	}
	return cfg
}

// Transport is what New returns: a RoundTripper whose idle connections can be closed and
// whose connection counters can be read.
type Transport interface {
	http.RoundTripper
	CloseIdleConnections()
	Stats() Stats
}

// Stats counts what a transport did with connections.
type Stats struct {
	NewConns int64 `json:"new_conns"`
	Reused   int64 `json:"reused"`
	// Discards counts idle connections a Checker dropped at checkout.
	Discards int64 `json:"discards"`
	// WatchCloses counts idle connections a watcher dropped because the server ended them.
	WatchCloses int64 `json:"watch_closes"`
	Retries     int64 `json:"retries"`
}

// New returns a transport for spec: the pool with the spec's hooks, or, for a spec that
// is a whole transport (stdlib), that transport.
func New(spec *Spec, cfg Config) Transport {
	cfg = cfg.withDefaults()
	for _, s := range spec.Parts {
		if tm, ok := s.(TransportMaker); ok {
			t := tm.NewTransport(cfg)
			for _, o := range spec.Parts {
				if r, ok := o.(Retrier); ok {
					if tt, ok := t.(Timed); ok {
						return &retryingTimed{Timed: tt, r: r}
					}
				}
			}
			return t
		}
	}
	p := &Pool{cfg: cfg, idle: map[string][]*Conn{}}
	for _, s := range spec.Parts {
		if c, ok := s.(Checker); ok {
			p.checkers = append(p.checkers, c)
		}
		if o, ok := s.(Observer); ok {
			p.observers = append(p.observers, o)
		}
		if r, ok := s.(Retrier); ok && p.retrier == nil {
			p.retrier = r
		}
		if _, ok := s.(Watcher); ok {
			p.watch = true
		}
		if o, ok := s.(CloseObserver); ok {
			p.closeObservers = append(p.closeObservers, o)
		}
	}
	return p
}

// Pool is the HTTP/1.1 connection pool under test.
type Pool struct {
	cfg       Config
	checkers  []Checker
	observers []Observer
	retrier   Retrier
	watch     bool
	// closeObservers hear the idle age of every close a watcher woke to.
	closeObservers []CloseObserver

	mu     sync.Mutex
	idle   map[string][]*Conn // per host:port, most recently used last
	closed bool

	newConns, reused, discards, watchCloses, retries atomic.Int64
}

// Stats returns the pool's counters.
func (p *Pool) Stats() Stats {
	return Stats{
		NewConns:    p.newConns.Load(),
		Reused:      p.reused.Load(),
		Discards:    p.discards.Load(),
		WatchCloses: p.watchCloses.Load(),
		Retries:     p.retries.Load(),
	}
}

// aLongTimeAgo is a read deadline in the past: setting it wakes a blocked read at once.
var aLongTimeAgo = time.Unix(1, 0)

// errUnexpectedData is what a watcher or probe reports when an idle connection has bytes
// nobody asked for (a server's 408 before closing, say): the connection cannot be reused.
var errUnexpectedData = errors.New("unexpected data on idle connection")

// RoundTrip sends req on an idle connection the strategy accepts, or on a new one.
func (p *Pool) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil || req.URL.Scheme != "http" {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, fmt.Errorf("pool: unsupported URL %v (the pool speaks plain HTTP/1.1: http://host:port/...)", req.URL)
	}
	addr := canonicalAddr(req.URL.Host)
	trace := httptrace.ContextClientTrace(req.Context())
	for attempt := 0; ; attempt++ {
		resp, perr := p.attempt(req, addr, trace, attempt > 0)
		if perr == nil {
			return resp, nil
		}
		// The keep-alive race: the request met a connection the server had closed. A
		// request that met a closed socket was never executed, but one that met a close
		// after execution (a fault) was; the Retrier decides which requests may be
		// replayed, and replays go on a new connection, which cannot be stale.
		if p.retrier == nil || !perr.Stale() || req.Context().Err() != nil || !p.retrier.Retry(req, perr, attempt) {
			return nil, perr
		}
		next, ok := rewind(req)
		if !ok {
			return nil, perr
		}
		req = next
		p.retries.Add(1)
	}
}

// rewind returns a request whose body can be sent again, when it can.
func rewind(req *http.Request) (*http.Request, bool) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, true
	}
	if req.GetBody == nil {
		return nil, false
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, false
	}
	next := req.Clone(req.Context())
	next.Body = body
	return next, true
}

func (p *Pool) attempt(req *http.Request, addr string, trace *httptrace.ClientTrace, fresh bool) (*http.Response, *Error) {
	if trace != nil && trace.GetConn != nil {
		trace.GetConn(addr)
	}
	var (
		c       *Conn
		idleAge time.Duration
	)
	if !fresh {
		c, idleAge = p.checkout(addr)
	}
	reused := c != nil
	if c == nil {
		var err error
		if c, err = p.dial(req.Context(), addr, trace); err != nil {
			if req.Body != nil {
				_ = req.Body.Close() // a RoundTripper closes the body, even on error
			}
			// A refused dial is Other; a dial the server accepted and reset at once
			// (a full backlog, a firewall) is an RST before the request went out.
			cls := Classify(err, false)
			if cls != Timeout && cls != ResetWrite {
				cls = Other
			}
			return nil, &Error{Class: cls, Op: "dial", Err: err}
		}
	} else {
		p.reused.Add(1)
	}
	if trace != nil && trace.GotConn != nil {
		trace.GotConn(httptrace.GotConnInfo{Conn: c.nc, Reused: reused, WasIdle: reused, IdleTime: idleAge})
	}
	fail := func(op string, err error, wrote bool) *Error {
		c.close()
		cls := Classify(err, wrote)
		if c.lr.got > 0 && cls != Timeout {
			// The server had begun to answer: whatever ended the exchange (a close
			// after "100 Continue", a status line cut short, an RST mid-header) is not
			// the idle-close race, which ends before any response byte.
			cls = Other
		}
		return &Error{Class: cls, Reused: reused, IdleAge: idleAge, LocalPort: c.LocalPort, Op: op, Err: err}
	}

	deadline := time.Now().Add(p.cfg.RequestTimeout)
	if d, ok := req.Context().Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.nc.SetDeadline(deadline)
	// Cancelling the request's context aborts a blocked write or read at once.
	stop := context.AfterFunc(req.Context(), func() { _ = c.nc.SetDeadline(aLongTimeAgo) })
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()

	c.Requests++
	c.lr.reset(c.br.Buffered())
	err := req.Write(c.bw)
	if err == nil {
		err = c.bw.Flush()
	}
	if trace != nil && trace.WroteRequest != nil {
		trace.WroteRequest(httptrace.WroteRequestInfo{Err: err})
	}
	if err != nil {
		return nil, fail("write", err, false)
	}
	resp, err := p.readResponse(c, req, trace)
	if err != nil {
		return nil, fail("read", err, true)
	}
	for _, o := range p.observers {
		o.Observe(c, resp)
	}
	keep := !resp.Close && !req.Close && resp.StatusCode != http.StatusSwitchingProtocols
	// If the cancel callback already ran (or is running), it may yet poison the
	// connection's deadline: such a connection must not go back to the pool.
	stopped = true
	if !stop() {
		keep = false
	}
	if resp.Body == http.NoBody || resp.Body == nil {
		p.release(addr, c, keep)
	} else {
		resp.Body = &body{rc: resp.Body, p: p, c: c, addr: addr, keep: keep}
	}
	return resp, nil
}

// readResponse reads the final response to req, skipping 1xx interim responses as
// net/http.Transport does (a "100 Continue" is not the answer: a close after it must not
// hand the caller a 100 and put a dead connection back in the pool). The header blocks
// of all of them share one MaxResponseHeaderBytes allowance.
func (p *Pool) readResponse(c *Conn, req *http.Request, trace *httptrace.ClientTrace) (*http.Response, error) {
	c.lr.left = p.cfg.MaxResponseHeaderBytes
	defer func() { c.lr.left = math.MaxInt64 }()
	first := true
	for {
		resp, err := http.ReadResponse(c.br, req)
		if first && c.lr.got > 0 && trace != nil && trace.GotFirstResponseByte != nil {
			trace.GotFirstResponseByte()
		}
		first = false
		if err != nil && c.lr.err != nil {
			// bufio.Reader.ReadLine hands the parser a partial line without the error
			// that cut it short, so a deadline or the header limit mid-line surfaces as
			// "malformed HTTP response": the socket's own error says what happened.
			if errors.Is(c.lr.err, errHeaderLimit) {
				return nil, fmt.Errorf("%w (%d bytes; pool.Config.MaxResponseHeaderBytes)", ErrResponseHeaderTooLarge, p.cfg.MaxResponseHeaderBytes)
			}
			if !errors.Is(err, c.lr.err) {
				err = fmt.Errorf("%w (after %d response bytes: %v)", c.lr.err, c.lr.got, err)
			}
		}
		if err != nil {
			return nil, err
		}
		if code := resp.StatusCode; code < 100 || code > 199 || code == http.StatusSwitchingProtocols {
			return resp, nil
		}
		if trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(resp.StatusCode, textproto.MIMEHeader(resp.Header)); err != nil {
				return nil, err
			}
		}
	}
}

func (p *Pool) dial(ctx context.Context, addr string, trace *httptrace.ClientTrace) (*Conn, error) {
	if trace != nil && trace.ConnectStart != nil {
		trace.ConnectStart("tcp", addr)
	}
	dctx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
	nc, err := p.cfg.Dial(dctx, "tcp", addr)
	cancel()
	if trace != nil && trace.ConnectDone != nil {
		trace.ConnectDone("tcp", addr, err)
	}
	if err != nil {
		return nil, err
	}
	p.newConns.Add(1)
	c := newConn(nc, p.cfg.IdleTimeout)
	c.onClose = p.cfg.OnClose
	return c, nil
}

// checkout takes the most recently used idle connection that the strategy accepts,
// dropping those it refuses. It returns nil when none is left.
func (p *Pool) checkout(addr string) (*Conn, time.Duration) {
	for {
		p.mu.Lock()
		list := p.idle[addr]
		if len(list) == 0 {
			p.mu.Unlock()
			return nil, 0
		}
		c := list[len(list)-1]
		p.idle[addr] = list[:len(list)-1]
		p.mu.Unlock()

		now := time.Now()
		if c.watchDone != nil && c.stopWatch() != nil {
			// The watcher saw the close but lost the race to remove the connection.
			c.close()
			p.watchCloses.Add(1)
			continue
		}
		keep := true
		for _, ch := range p.checkers {
			if keep, _ = ch.Check(c, now); !keep {
				break
			}
		}
		if !keep {
			c.close()
			p.discards.Add(1)
			continue
		}
		return c, c.IdleAge(now)
	}
}

// release returns a connection whose response body was read to its end, or closes it.
func (p *Pool) release(addr string, c *Conn, reusable bool) {
	if !reusable {
		c.close()
		return
	}
	c.IdleSince = time.Now()
	// Clear the request's deadline before publishing: an idle connection carries none
	// (the watcher's read must block until the server speaks or a checkout wakes it).
	_ = c.nc.SetDeadline(time.Time{})
	if p.watch {
		c.watchErr = nil
		c.watchDone = make(chan struct{})
	}
	p.mu.Lock()
	if p.closed || len(p.idle[addr]) >= p.cfg.MaxIdle {
		p.mu.Unlock()
		c.close()
		return
	}
	p.idle[addr] = append(p.idle[addr], c)
	if p.watch {
		go p.watchIdle(addr, c)
	}
	p.mu.Unlock()
}

// watchIdle blocks reading an idle connection, as Go's persistConn.readLoop and hyper do.
// Anything that arrives while nobody asked (EOF, RST, stray bytes) means the connection
// cannot be reused; the watcher drops it at once. The race it leaves open: a request
// written after the server's close but before the FIN arrived and this goroutine ran.
func (p *Pool) watchIdle(addr string, c *Conn) {
	_, err := c.br.Peek(1)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// A checkout woke us: it owns the connection now. The past deadline wins only
		// over a FIN the runtime's poller has not yet taken from the kernel; one it has
		// (this goroutine made ready, not yet run) is read as EOF, and the checkout
		// drops the connection. That poller lag is watch's window.
		close(c.watchDone)
		return
	}
	now := time.Now()
	if p.cfg.OnWatchClose != nil {
		p.cfg.OnWatchClose(c.LocalPort, now)
	}
	if err == nil {
		err = errUnexpectedData
	} else if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
		// The server ended the idle connection: not stray bytes, and not our own close
		// (CloseIdleConnections wakes the watcher with net.ErrClosed at any idle age).
		for _, o := range p.closeObservers {
			o.ObserveClose(c.IdleAge(now), c.IdleTimeout)
		}
	}
	c.watchErr = err
	removed := p.removeIdle(addr, c)
	close(c.watchDone)
	if removed {
		c.close()
		p.watchCloses.Add(1)
	}
}

// stopWatch wakes the idle watcher and waits for it. It returns what the watcher saw,
// nil when the connection is still good.
func (c *Conn) stopWatch() error {
	_ = c.nc.SetReadDeadline(aLongTimeAgo)
	<-c.watchDone
	c.watchDone = nil
	_ = c.nc.SetReadDeadline(time.Time{}) // the wake-up deadline must not outlive the watcher
	return c.watchErr
}

func (p *Pool) removeIdle(addr string, c *Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	list := p.idle[addr]
	for i, ic := range list {
		if ic == c {
			p.idle[addr] = append(list[:i], list[i+1:]...)
			return true
		}
	}
	return false
}

// CloseIdleConnections closes every idle connection and waits for their watchers. The
// pool stays usable: connections in use are not touched and go idle afterwards.
func (p *Pool) CloseIdleConnections() {
	p.mu.Lock()
	var all []*Conn
	var watched []chan struct{}
	for addr, list := range p.idle {
		for _, c := range list {
			all = append(all, c)
			if c.watchDone != nil {
				watched = append(watched, c.watchDone)
			}
		}
		delete(p.idle, addr)
	}
	p.mu.Unlock()
	for _, c := range all {
		c.close()
	}
	for _, done := range watched {
		<-done
	}
}

// body hands the connection back when the caller has read the response to its end.
type body struct {
	rc   io.ReadCloser
	p    *Pool
	c    *Conn
	addr string
	keep bool
	once sync.Once
}

func (b *body) Read(buf []byte) (int, error) {
	n, err := b.rc.Read(buf)
	if err == io.EOF {
		b.finish(true)
	} else if err != nil {
		b.finish(false)
	}
	return n, err
}

// Close drains what is left (net/http's response body does on Close) so the connection
// can be reused.
func (b *body) Close() error {
	err := b.rc.Close()
	b.finish(err == nil)
	return err
}

func (b *body) finish(ok bool) {
	b.once.Do(func() { b.p.release(b.addr, b.c, ok && b.keep) })
}

func canonicalAddr(host string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	return net.JoinHostPort(host, "80")
}
