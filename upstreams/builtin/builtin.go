// Package builtin is idlerace's own upstream: an HTTP/1.1 server on loopback whose idle
// closes land exactly where the chaos models say, T+s after the end of the last response,
// with a record of every close and how late it landed.
//
// It is written on net/http's wire code (http.ReadRequest, (*http.Response).Write) but
// not on net/http.Server, whose idle handling is a background timer we cannot place
// precisely. Each connection is one goroutine:
//
//	accept / response flushed
//	  -> idleStart = now; s = skew.Draw(rng, progress); due = idleStart + T + s
//	  -> wait in the server's idle waiter (one epoll set, one goroutine) until due
//	       due:      unread? -> close (fin|rst) -> record "idle", lateness = closed - due
//	       data:     ReadRequest, count Idlerace-Request-Id, sleep ServiceTime, respond,
//	                 close after it for Connection: close ("peer") or MaxRequests
//	       EOF/RST:  close, record "peer"
//
// The idle wait is not a read deadline because the Go netpoller rounds timer waits to
// whole milliseconds (closes land 0..1ms late, p50 ~0.6ms); the waiter sleeps in
// epoll_pwait2(2) and closes at due itself, about 0.1ms late (idlewait_linux.go says why
// one waiter for all connections). Elsewhere, and before Linux 5.11, the deadline.
//
// The connection's rng is seeded from Config.Seed and the connection's accept index, so a
// seed repeats the same skews connection by connection.
//
// Beyond HTTP/1.1 it sends `Keep-Alive: timeout=N` with N in seconds as a decimal
// (100ms -> `timeout=0.1`): a documented extension, since real servers only send whole
// seconds. GET /_idlerace/stats answers Stats as JSON and is not counted as an execution.
// Close modes apply to idle closes, the fault under test; closes after Connection: close
// or MaxRequests are orderly, as real servers make them.
//
// Config.Faults add misbehaviours beyond skew (see faults.go): close-after (FIN after the
// Nth response, unannounced), restart (every connection closed at once, every D),
// silent-death (after the Nth response, never read, write or close again), rst (idle
// closes send RST, as Close mode rst) and slow-close (stop reading at the idle deadline,
// close D later).
package builtin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/idlerace/idlerace/chaos"
	"github.com/idlerace/idlerace/upstreams"
)

// Kind is the name builtin registers under.
const Kind = "builtin"

// Version is what Server.Version reports.
const Version = "idlerace-builtin"

// RequestIDHeader carries the id under which a request's execution is counted; the same
// id executed twice is a duplicate (a retried request the server had already run).
const RequestIDHeader = "Idlerace-Request-Id"

// StatsPath answers Stats as JSON; requests to it are not executions.
const StatsPath = "/_idlerace/stats"

// requestTimeout bounds reading one request (and writing one response) once its first
// byte arrived: generous, since only a broken client takes that long.
const requestTimeout = 30 * time.Second

func init() {
	upstreams.RegisterStart(Kind, upstreams.Properties{DrawsSkews: true, Listens: true}, Start)
}

// Server is a running builtin upstream. It implements upstreams.Upstream.
type Server struct {
	cfg       upstreams.Config
	skew      chaos.Skew // nil: none
	closeMode chaos.CloseMode
	faults    faultPlan
	keepAlive string // Keep-Alive header value, "" for none
	body      []byte
	ln        net.Listener
	url       string
	started   time.Time
	done      chan struct{} // closed when Close begins
	closing   atomic.Bool
	stopCtx   func() bool

	waiter *idleWaiter // nil: idle waits on read deadlines

	// beforeIdleClose, when set by a test before run, is called when an idle deadline
	// fired and before the server looks for unread bytes and closes. It lets a test put
	// a request into the socket at exactly that moment.
	beforeIdleClose func(net.Conn)
	// afterResponse, when set by a test before run, is called once a response's write
	// returned: it stands for the goroutine waiting there for a thread.
	afterResponse func()
	// afterRestart, when set by a test before run, is called after each pass of the
	// restart fault with the number of connections that pass closed.
	afterRestart func(killed int)

	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	rec *upstreams.Recorder // counts, closes and their lateness; its own lock

	mu        sync.Mutex // guards conns and nextIndex; taken before rec's, never after
	conns     map[*conn]struct{}
	nextIndex uint64
}

// conn is one accepted connection. Its goroutine owns it; Close may end it from outside,
// and whoever wins claimed closes and records it.
type conn struct {
	nc         net.Conn
	index      uint64
	accepted   time.Time
	remotePort int
	claimed    atomic.Bool
	killed     chan struct{} // closed when Close or a restart claimed the connection
	// atDue is the idle waiter's close at due, set on its goroutine before it answers
	// closedIdle and read on c's after.
	atDue struct {
		closed     time.Time
		unread, ok bool
	}

	mu  sync.Mutex // guards st, which Close reads for its shutdown record
	st  connState
	rng *rand.Rand
	br  *bufio.Reader
	bw  *bufio.Writer
}

type connState struct {
	idle      bool // waiting for the next request
	idleStart time.Time
	due       time.Time
	stopped   time.Time // the idle wait ended with no request (zero: it did not)
	skew      time.Duration
	requests  int
}

// Start validates cfg, listens on loopback and serves until Close or until ctx is done.
func Start(ctx context.Context, cfg upstreams.Config) (*Server, error) {
	s, err := listen(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s.run(ctx)
	return s, nil
}

// listen binds and prepares a server without serving, so tests can set hooks first.
func listen(ctx context.Context, cfg upstreams.Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cfg.Addr == "" {
		cfg.Addr = upstreams.DefaultAddr
	}
	if cfg.ResponseBytes == 0 {
		cfg.ResponseBytes = upstreams.DefaultResponseBytes
	}
	if cfg.Close == "" {
		cfg.Close = chaos.CloseFIN
	}
	faults, err := planFaults(cfg.Faults)
	if err != nil {
		return nil, err
	}
	if faults.rst {
		cfg.Close = chaos.CloseRST
	}
	advertise := cfg.Advertise
	if advertise == 0 {
		advertise = cfg.IdleTimeout
	}
	keepAlive := ""
	if advertise > 0 {
		keepAlive = "timeout=" + strconv.FormatFloat(advertise.Seconds(), 'f', -1, 64)
	}
	var ln net.Listener
	if cfg.Listen != nil {
		ln, err = cfg.Listen("tcp", cfg.Addr) // inside the netem namespace
	} else {
		var lc net.ListenConfig
		ln, err = lc.Listen(ctx, "tcp", cfg.Addr)
	}
	if err != nil {
		return nil, err
	}
	// Only a name like "localhost" can resolve elsewhere; refuse anything that did.
	if ta, ok := ln.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
		ln.Close()
		return nil, errors.New("upstream config: Addr: " + strconv.Quote(cfg.Addr) + " resolved to non-loopback " + ln.Addr().String())
	}
	body := bytes.Repeat([]byte("ok"), cfg.ResponseBytes/2+1)[:cfg.ResponseBytes]
	s := &Server{
		cfg:       cfg,
		skew:      cfg.Skew,
		closeMode: cfg.Close,
		faults:    faults,
		keepAlive: keepAlive,
		body:      body,
		ln:        ln,
		url:       "http://" + ln.Addr().String(),
		done:      make(chan struct{}),
		rec:       upstreams.NewRecorder(),
		conns:     make(map[*conn]struct{}),
	}
	s.waiter = newIdleWaiter(s.closeAtDue)
	return s, nil
}

// run starts the accept loop; when ctx is done the server closes itself.
func (s *Server) run(ctx context.Context) {
	s.started = time.Now()
	s.stopCtx = context.AfterFunc(ctx, func() { s.Close() })
	s.wg.Add(1)
	go s.acceptLoop()
	if s.waiter != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.waiter.run()
		}()
	}
	if s.faults.restartEvery > 0 {
		s.wg.Add(1)
		go s.restartLoop(s.faults.restartEvery)
	}
}

// Kind returns "builtin".
func (s *Server) Kind() string { return Kind }

// Version returns "idlerace-builtin".
func (s *Server) Version() string { return Version }

// URL returns "http://127.0.0.1:PORT".
func (s *Server) URL() string { return s.url }

// Addr returns the listening address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Stats returns the counters so far and the idle-close lateness percentiles.
func (s *Server) Stats() upstreams.Stats { return s.rec.Stats() }

// Closes returns every close the server made so far, in order of close time.
func (s *Server) Closes() []upstreams.CloseRecord { return s.rec.Closes() }

// StreamCloses hands every later close to f as it is made (upstreams.CloseStreamer).
func (s *Server) StreamCloses(f func(upstreams.CloseRecord)) { s.rec.StreamCloses(f) }

// RememberExecutions bounds how long the duplicate count keeps an id
// (upstreams.ExecutionRememberer).
func (s *Server) RememberExecutions(d time.Duration) { s.rec.RememberExecutions(d) }

// Close stops accepting, closes every open connection (recorded as "shutdown") and waits
// for all of the server's goroutines. It is safe to call more than once and from several
// goroutines; every call returns after the server has stopped.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.stopCtx()
		s.mu.Lock()
		s.closing.Store(true)
		close(s.done)
		open := make([]*conn, 0, len(s.conns))
		for c := range s.conns {
			open = append(open, c)
		}
		s.mu.Unlock()
		s.closeErr = s.ln.Close()
		for _, c := range open {
			s.kill(c, upstreams.ReasonShutdown)
		}
		if s.waiter != nil {
			s.waiter.stop()
		}
		s.wg.Wait()
	})
	return s.closeErr
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	backoff := 5 * time.Millisecond
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return
			}
			// A transient failure such as EMFILE: back off as net/http.Server does.
			select {
			case <-s.done:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		c := &conn{nc: nc, accepted: time.Now(), killed: make(chan struct{})}
		if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
			c.remotePort = ta.Port
		}
		s.mu.Lock()
		if s.closing.Load() {
			s.mu.Unlock()
			s.kill(c, upstreams.ReasonShutdown)
			return
		}
		c.index = s.nextIndex
		s.nextIndex++
		s.rec.CountAccepted()
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c)
	}
}

// kill ends c from outside its goroutine (Close: "shutdown", the restart fault:
// "restart") unless its own goroutine already did, and wakes that goroutine wherever it
// waits.
func (s *Server) kill(c *conn, reason string) bool {
	if !c.claimed.CompareAndSwap(false, true) {
		return false
	}
	close(c.killed)
	unread := chaos.Unread(c.nc)
	c.nc.Close()
	closed := time.Now()
	c.mu.Lock()
	st := c.st
	c.mu.Unlock()
	s.record(c, st, reason, closed, unread)
	return true
}

// finish ends c from its own goroutine with an orderly close, unless Close got there first.
func (s *Server) finish(c *conn, reason string, unread bool) {
	if !c.claimed.CompareAndSwap(false, true) {
		return
	}
	c.nc.Close()
	closed := time.Now()
	s.record(c, c.st, reason, closed, unread)
}

func (s *Server) record(c *conn, st connState, reason string, closed time.Time, unread bool) {
	r := upstreams.CloseRecord{
		RemotePort: c.remotePort,
		Accepted:   c.accepted,
		IdleStart:  st.idleStart,
		Closed:     closed,
		Reason:     reason,
		Unread:     unread,
		Requests:   st.requests,
	}
	if st.idle {
		r.Due, r.Stopped, r.Skew = st.due, st.stopped, st.skew
	}
	s.rec.Record(r)
}

func (s *Server) progress(t time.Time) float64 {
	if s.cfg.RunDuration <= 0 {
		return 0
	}
	return float64(t.Sub(s.started)) / float64(s.cfg.RunDuration)
}

func (s *Server) serve(c *conn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.wg.Done()
	}()
	c.rng = rand.New(rand.NewPCG(s.cfg.Seed, c.index))
	c.br = bufio.NewReader(c.nc)
	c.bw = bufio.NewWriter(c.nc)
	idleStart := c.accepted
	for {
		var skew time.Duration
		if s.skew != nil {
			skew = s.skew.Draw(c.rng, s.progress(idleStart))
		}
		due := idleStart.Add(s.cfg.IdleTimeout + skew)
		c.mu.Lock()
		c.st.idle, c.st.idleStart, c.st.due, c.st.skew = true, idleStart, due, skew
		c.mu.Unlock()

		err := s.waitIdle(c, due)
		if err != nil {
			if errors.Is(err, errClosedIdle) {
				if c.atDue.ok { // the waiter closed it at due; the record is ours
					s.record(c, c.st, upstreams.ReasonIdle, c.atDue.closed, c.atDue.unread)
				}
				return
			}
			if errors.Is(err, os.ErrDeadlineExceeded) && !s.closing.Load() {
				// Reading stops here, not at due: the timer's slack and the wake-up
				// put it later, and a request that arrived before was served.
				stopped := time.Now()
				c.mu.Lock()
				c.st.stopped = stopped
				c.mu.Unlock()
				s.idleClose(c)
				return
			}
			s.finish(c, s.reasonFor(err), false)
			return
		}

		c.mu.Lock()
		c.st.idle = false
		c.st.requests++
		c.mu.Unlock()
		reason, wrote, ok := s.handle(c)
		if !ok {
			return
		}
		idleStart = wrote
		c.mu.Lock()
		c.st.idleStart = idleStart
		c.mu.Unlock()
		if reason != "" {
			s.finish(c, reason, c.br.Buffered() > 0 || chaos.Unread(c.nc))
			return
		}
		if s.faults.silentAfter > 0 && c.st.requests >= s.faults.silentAfter {
			// silent-death: never read, write or close again; Close (or a restart)
			// ends and records the connection.
			select {
			case <-s.done:
			case <-c.killed:
			}
			return
		}
	}
}

// waitIdle waits until a request byte is available (nil), the connection failed, or due
// passed (os.ErrDeadlineExceeded; errClosedIdle when the waiter closed it at due, c.atDue).
//
// The wait is the server's idle waiter's where there is one (Linux ≥ 5.11); otherwise, or
// for a connection it cannot watch, a read deadline, up to a millisecond late.
func (s *Server) waitIdle(c *conn, due time.Time) error {
	if c.br.Buffered() > 0 {
		return nil // a pipelined request: epoll cannot see bytes already in br
	}
	if s.waiter != nil && time.Now().Before(due) {
		if v, ok := s.waiter.wait(c, due, s.done, c.killed); ok {
			switch v {
			case readable: // read as usual (handle sets the request's deadline)
				c.nc.SetReadDeadline(time.Now().Add(requestTimeout))
				_, err := c.br.Peek(1)
				return err
			case pastDue:
				return os.ErrDeadlineExceeded
			case closedIdle:
				return errClosedIdle
			case ended:
				return net.ErrClosed
			}
		}
	}
	c.nc.SetReadDeadline(due)
	_, err := c.br.Peek(1)
	return err
}

// errClosedIdle: the idle waiter closed the connection at due and recorded it.
var errClosedIdle = errors.New("closed idle by the waiter")

// closeAtDue is the waiter's close of c at due, from the waiter's goroutine: false leaves
// it to c's own (slow-close waits D first; a closing server records a shutdown). The
// record is left to c's goroutine too (atDue), off the waiter's path: the recorder's
// lock is shared with every connection, and a holder descheduled on 2 cores would make
// every close after it late.
func (s *Server) closeAtDue(c *conn, stopped time.Time) bool {
	if s.faults.slowCloseDelay > 0 || s.closing.Load() {
		return false
	}
	c.mu.Lock()
	c.st.stopped = stopped
	c.mu.Unlock()
	if hook := s.beforeIdleClose; hook != nil {
		hook(c.nc)
	}
	c.atDue.closed, c.atDue.unread, c.atDue.ok = s.closeIdleNow(c)
	return true
}

// idleClose is the path from a fired idle deadline to close(): kept to a claim, a peek
// at the receive buffer and the close itself, with all bookkeeping after.
func (s *Server) idleClose(c *conn) {
	if hook := s.beforeIdleClose; hook != nil {
		hook(c.nc)
	}
	if d := s.faults.slowCloseDelay; d > 0 {
		// slow-close: reading stopped at due; whatever arrives now stays unread.
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-s.done:
			t.Stop()
			return // Close claims and records the connection
		case <-c.killed:
			t.Stop()
			return
		}
	}
	if closed, unread, ok := s.closeIdleNow(c); ok {
		s.record(c, c.st, upstreams.ReasonIdle, closed, unread)
	}
}

// closeIdleNow claims c, looks for a request it left unread and closes it; ok is false
// when Close or a restart had claimed it (and records it as theirs).
func (s *Server) closeIdleNow(c *conn) (closed time.Time, unread, ok bool) {
	if !c.claimed.CompareAndSwap(false, true) {
		return time.Time{}, false, false
	}
	unread = c.br.Buffered() > 0 || chaos.Unread(c.nc)
	s.closeMode.Close(c.nc)
	return time.Now(), unread, true
}

// handle reads one request and writes its response. It returns the reason to close
// after the response ("" to keep the connection), and ok=false when the connection was
// already closed and recorded.
//
// wrote is when the response's end went to the kernel: where the idle period starts.
func (s *Server) handle(c *conn) (closeReason string, wrote time.Time, ok bool) {
	now := time.Now()
	c.nc.SetReadDeadline(now.Add(requestTimeout))
	c.nc.SetWriteDeadline(now.Add(requestTimeout))
	req, err := http.ReadRequest(c.br)
	if err != nil {
		if c.claimed.Load() {
			return "", time.Time{}, false // Close or a restart closed it under us, and recorded it
		}
		if peerOr(err, "") != "" || isTimeout(err) || s.closing.Load() {
			s.finish(c, s.reasonFor(err), false)
			return "", time.Time{}, false
		}
		// Malformed: say so, as a server would, then close.
		io.WriteString(c.nc, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
		s.finish(c, upstreams.ReasonError, false)
		return "", time.Time{}, false
	}
	if _, err := io.Copy(io.Discard, req.Body); err != nil {
		s.finish(c, s.reasonFor(err), false)
		return "", time.Time{}, false
	}
	req.Body.Close()

	body := s.body
	header := http.Header{}
	if req.Method == http.MethodGet && req.URL.Path == StatsPath {
		body, _ = json.Marshal(s.Stats())
		header["Content-Type"] = []string{"application/json"}
	} else {
		s.rec.CountExecution(req.Header.Get(RequestIDHeader))
		if s.cfg.ServiceTime > 0 {
			t := time.NewTimer(s.cfg.ServiceTime)
			select {
			case <-t.C:
			case <-s.done:
				t.Stop()
				return "", time.Time{}, false // Close ends and records the connection
			case <-c.killed:
				t.Stop()
				return "", time.Time{}, false // a restart ended and recorded it
			}
		}
	}

	c.mu.Lock()
	requests := c.st.requests
	c.mu.Unlock()
	switch {
	case req.Close:
		closeReason = upstreams.ReasonPeer
	case s.cfg.MaxRequests > 0 && requests >= s.cfg.MaxRequests:
		closeReason = upstreams.ReasonMaxRequests
	}
	// Connection: close announces every close but close-after's, which is the fault.
	announce := closeReason != ""
	if !announce && s.faults.closeAfter > 0 && requests >= s.faults.closeAfter {
		closeReason = upstreams.ReasonCloseAfter
	}
	resp := &http.Response{
		StatusCode:    http.StatusOK,
		ProtoMajor:    1,
		ProtoMinor:    1,
		Request:       req,
		Header:        header,
		ContentLength: int64(len(body)),
		Body:          io.NopCloser(bytes.NewReader(body)),
		Close:         announce,
	}
	if !resp.Close {
		if s.keepAlive != "" {
			header["Keep-Alive"] = []string{s.keepAlive}
		}
		if !req.ProtoAtLeast(1, 1) {
			// An HTTP/1.0 client that asked for keep-alive (else req.Close is set).
			header["Connection"] = []string{"keep-alive"}
		}
	}
	err = resp.Write(c.bw)
	// The idle period starts as the last write begins when the whole response is in
	// that one write (it fits the buffer: a write the client's reads cannot hold up),
	// else once it returned. Taken after a write that returned, it was late by however
	// long the goroutine then waited for a thread: at T = 100 ms, 256 lanes on 2 cores,
	// one request in twenty that reached the server 2 ms past T + s after its response
	// left on the wire was still served, a lateness the wire shows and no lag of the
	// server's own accounts for (blind modelled 3 points high).
	wrote = time.Now()
	flushedOnce := len(body)+maxHeaderBytes <= c.bw.Size()
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		s.finish(c, s.reasonFor(err), false)
		return "", time.Time{}, false
	}
	if hook := s.afterResponse; hook != nil {
		hook()
	}
	if !flushedOnce {
		wrote = time.Now()
	}
	return closeReason, wrote, true
}

// maxHeaderBytes bounds the builtin's response headers (status line, Content-Length,
// Keep-Alive, Connection, the request's id): far under a kilobyte.
const maxHeaderBytes = 1024

// reasonFor names why a read or write on a connection failed with err: "shutdown" once
// Close began (it closes or is about to close every connection), "peer" when the client
// went away, else "error".
func (s *Server) reasonFor(err error) string {
	if s.closing.Load() {
		return upstreams.ReasonShutdown
	}
	return peerOr(err, upstreams.ReasonError)
}

// peerOr returns "peer" when err says the client went away (EOF, reset, broken pipe),
// else otherwise.
func peerOr(err error, otherwise string) string {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return upstreams.ReasonPeer
	}
	return otherwise
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
