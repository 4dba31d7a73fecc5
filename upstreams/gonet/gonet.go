// Package gonet is the upstream kind "gonet": Go's own net/http.Server, in this
// process, configured as a Go service usually is: IdleTimeout = Config.IdleTimeout and
// nothing else (no ReadTimeout or ReadHeaderTimeout, so a connection that never sends a
// request is never closed, as in such a service).
//
// net/http closes an idle connection through a read deadline: after each response it
// sets the deadline to now+IdleTimeout and peeks for the next request; when the
// deadline passes the peek fails and the connection is closed (FIN). The Go netpoller
// rounds that wait to whole milliseconds, so closes land 0..~1ms after T.
//
// The listener hands net/http connections wrapped in an observer that changes nothing
// on the wire: it sees the idle deadline net/http sets (CloseRecord.Due), whether the
// read that ended the connection timed out (an idle close) or saw the client leave, and
// when Close was called. With the ConnState hook (StateIdle -> StateClosed) that gives
// Stats.IdleCloses, their lateness, and a CloseRecord for every connection.
//
// Config: IdleTimeout, ResponseBytes, ServiceTime (a sleep in the handler), MaxRequests
// (the handler answers the Nth request with Connection: close, which net/http honours)
// and Advertise > 0 (the handler sends Keep-Alive: timeout=N, as builtin does; net/http
// itself sends none) are honoured. GET /_idlerace/stats answers Stats as JSON and is
// not an execution.
package gonet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/idlerace/idlerace/chaos"
	"github.com/idlerace/idlerace/internal/real"
	"github.com/idlerace/idlerace/upstreams"
)

// Kind is the name gonet registers under.
const Kind = "gonet"

// RequestIDHeader carries the id under which a request's execution is counted.
const RequestIDHeader = "Idlerace-Request-Id"

// StatsPath answers Stats as JSON; requests to it are not executions.
const StatsPath = "/_idlerace/stats"

// shutdownGrace bounds how long Close lets in-flight requests finish before it closes
// their connections.
const shutdownGrace = 3 * time.Second

func init() { upstreams.RegisterStart(Kind, upstreams.Properties{}, Start) }

// Server is a running gonet upstream. It implements upstreams.Upstream.
type Server struct {
	cfg       upstreams.Config
	body      []byte
	keepAlive string
	srv       *http.Server
	ln        net.Listener
	url       string
	closing   atomic.Bool
	stopCtx   func() bool
	served    chan struct{} // closed when srv.Serve returned
	conns     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	rec *upstreams.Recorder // counts, closes and their lateness

	// idleArmed, when a test stores a function here, is called each time net/http arms
	// an idle deadline: the moment a connection is idle in net/http's own view.
	idleArmed atomic.Pointer[func()]

	mu     sync.Mutex // guards errLog
	errLog []string   // net/http's ErrorLog, last lines
}

// Start validates cfg, listens on loopback and serves until Close or until ctx is done.
// A listen failure (the port is taken) is an *upstreams.StartError.
func Start(ctx context.Context, cfg upstreams.Config) (*Server, error) {
	if err := real.CheckConfig(Kind, cfg, real.Limits{}); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	addr := cfg.Addr
	if addr == "" {
		addr = upstreams.DefaultAddr
	}
	if cfg.ResponseBytes == 0 {
		cfg.ResponseBytes = upstreams.DefaultResponseBytes
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, &upstreams.StartError{Err: err}
	}
	if ta, ok := ln.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
		ln.Close()
		return nil, fmt.Errorf("upstream config: Addr: %q resolved to non-loopback %s", addr, ln.Addr())
	}
	s := &Server{
		cfg:    cfg,
		body:   bytes.Repeat([]byte("ok"), cfg.ResponseBytes/2+1)[:cfg.ResponseBytes],
		ln:     ln,
		url:    "http://" + ln.Addr().String(),
		served: make(chan struct{}),
		rec:    upstreams.NewRecorder(),
	}
	if cfg.Advertise > 0 {
		s.keepAlive = "timeout=" + strconv.FormatFloat(cfg.Advertise.Seconds(), 'f', -1, 64)
	}
	s.srv = &http.Server{
		Handler:     s,
		IdleTimeout: cfg.IdleTimeout,
		ConnState:   s.connState,
		ConnContext: func(ctx context.Context, nc net.Conn) context.Context {
			if c, ok := nc.(*conn); ok {
				return context.WithValue(ctx, connKey{}, c)
			}
			return ctx
		},
		ErrorLog: log.New(logWriter{s}, "", 0),
	}
	go func() {
		defer close(s.served)
		s.srv.Serve(&listener{Listener: ln, s: s})
	}()
	s.stopCtx = context.AfterFunc(ctx, func() { s.Close() })
	return s, nil
}

// Kind returns "gonet".
func (s *Server) Kind() string { return Kind }

// Version returns "net/http go1.x.y": net/http is the Go release's.
func (s *Server) Version() string { return "net/http " + runtime.Version() }

// URL returns "http://127.0.0.1:PORT".
func (s *Server) URL() string { return s.url }

// Stats returns the counters so far and the idle-close lateness percentiles.
func (s *Server) Stats() upstreams.Stats { return s.rec.Stats() }

// Closes returns every close so far, in order of close time.
func (s *Server) Closes() []upstreams.CloseRecord { return s.rec.Closes() }

// StreamCloses hands every later close to f as it is made (upstreams.CloseStreamer).
func (s *Server) StreamCloses(f func(upstreams.CloseRecord)) { s.rec.StreamCloses(f) }

// RememberExecutions bounds how long the duplicate count keeps an id
// (upstreams.ExecutionRememberer).
func (s *Server) RememberExecutions(d time.Duration) { s.rec.RememberExecutions(d) }

// Close shuts the server down as a Go service does (http.Server.Shutdown: idle
// connections closed at once, in-flight requests finished, up to 3s), then waits until
// every connection is closed and recorded. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.stopCtx()
		s.closing.Store(true)
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		err := s.srv.Shutdown(ctx)
		cancel()
		if err != nil {
			err = errors.Join(err, s.srv.Close())
		}
		<-s.served
		s.conns.Wait()
		s.closeErr = err
	})
	return s.closeErr
}

type connKey struct{}

// listener wraps each accepted connection in a conn.
type listener struct {
	net.Listener
	s *Server
}

func (l *listener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nc, nil
	}
	c := &conn{TCPConn: tc, s: l.s, accepted: time.Now()}
	c.idleStart = c.accepted
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		c.remotePort = ta.Port
	}
	l.s.conns.Add(1)
	l.s.rec.CountAccepted()
	return c, nil
}

// conn observes one connection as net/http uses it; it changes nothing on the wire.
type conn struct {
	*net.TCPConn
	s          *Server
	accepted   time.Time
	remotePort int
	requests   atomic.Int64
	closeOnce  sync.Once

	mu           sync.Mutex
	idle         bool      // between a response and the next request (ConnState)
	idleStart    time.Time // when it last became idle
	due          time.Time // the idle read deadline net/http set
	idleTimedOut bool      // a read failed on that deadline
	peerGone     bool      // a read saw EOF or a reset
	maxReached   bool      // the handler answered the MaxRequests-th request
	peerAsked    bool      // the client asked for Connection: close
}

func (c *conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	idle := c.idle
	if idle {
		c.due = t
	}
	c.mu.Unlock()
	err := c.TCPConn.SetReadDeadline(t)
	if f := c.s.idleArmed.Load(); idle && f != nil {
		(*f)()
	}
	return err
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	if err != nil {
		c.mu.Lock()
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			if c.idle && !c.due.IsZero() {
				c.idleTimedOut = true
			}
		case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
			c.peerGone = true
		}
		c.mu.Unlock()
	}
	return n, err
}

func (c *conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		unread := chaos.Unread(c.TCPConn)
		err = c.TCPConn.Close()
		c.s.recordClose(c, time.Now(), unread)
	})
	return err
}

func (s *Server) recordClose(c *conn, closed time.Time, unread bool) {
	c.mu.Lock()
	r := upstreams.CloseRecord{
		RemotePort: c.remotePort,
		Accepted:   c.accepted,
		IdleStart:  c.idleStart,
		Closed:     closed,
		Unread:     unread,
		Requests:   int(c.requests.Load()),
	}
	if c.idle {
		r.Due = c.due
	}
	// What ended the connection first decides the reason: a connection that had served
	// its last request, or whose peer had asked to close, is closing for that reason even
	// when Shutdown reaches it before net/http did.
	switch {
	case c.idleTimedOut:
		r.Reason = upstreams.ReasonIdle
	case c.maxReached:
		r.Reason = upstreams.ReasonMaxRequests
	case c.peerAsked || c.peerGone:
		r.Reason = upstreams.ReasonPeer
	case s.closing.Load():
		r.Reason = upstreams.ReasonShutdown
	default:
		r.Reason = upstreams.ReasonError
	}
	c.mu.Unlock()
	// net/http sets the idle deadline after StateIdle began the idle period, so Due is
	// never before IdleStart and lateness is Closed minus Due.
	s.rec.Record(r)
}

// connState follows net/http's view of each connection: StateIdle starts an idle
// period, StateActive ends it; StateClosed and StateHijacked end the connection.
func (s *Server) connState(nc net.Conn, state http.ConnState) {
	c, ok := nc.(*conn)
	if !ok {
		return
	}
	switch state {
	case http.StateIdle:
		c.mu.Lock()
		c.idle, c.idleStart, c.due = true, time.Now(), time.Time{}
		c.mu.Unlock()
	case http.StateActive:
		c.mu.Lock()
		c.idle, c.due = false, time.Time{}
		c.mu.Unlock()
	case http.StateClosed, http.StateHijacked:
		c.Close() // net/http closed it already; this records it if nothing did
		s.conns.Done()
	}
}

// ServeHTTP answers every request with the fixed body; GET StatsPath answers Stats.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, _ := r.Context().Value(connKey{}).(*conn)
	n := int64(0)
	if c != nil {
		n = c.requests.Add(1)
	}
	io.Copy(io.Discard, r.Body)
	h := w.Header()
	body := s.body
	if r.Method == http.MethodGet && r.URL.Path == StatsPath {
		body, _ = json.Marshal(s.Stats())
		h.Set("Content-Type", "application/json")
	} else {
		s.rec.CountExecution(r.Header.Get(RequestIDHeader))
		h.Set("Content-Type", "text/plain")
		if s.cfg.ServiceTime > 0 {
			t := time.NewTimer(s.cfg.ServiceTime)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
	}
	closing := false
	if c != nil {
		c.mu.Lock()
		if s.cfg.MaxRequests > 0 && n >= int64(s.cfg.MaxRequests) {
			c.maxReached, closing = true, true
		}
		if r.Close {
			c.peerAsked = true
		}
		c.mu.Unlock()
	}
	if closing {
		h.Set("Connection", "close")
	} else if s.keepAlive != "" && !r.Close {
		h.Set("Keep-Alive", s.keepAlive)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// logWriter keeps the last lines of net/http's ErrorLog.
type logWriter struct{ s *Server }

func (w logWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	w.s.errLog = append(w.s.errLog, string(bytes.TrimSpace(p)))
	if len(w.s.errLog) > upstreams.TailLines {
		w.s.errLog = w.s.errLog[len(w.s.errLog)-upstreams.TailLines:]
	}
	return len(p), nil
}

// ErrorLog returns the last lines net/http logged.
func (s *Server) ErrorLog() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.errLog)
}
