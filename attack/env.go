package attack

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/idlerace/idlerace/attack/pool"
)

// RequestIDHeader carries a unique id per request so that the server can count
// executions: a request that a retry ran twice shows up as a duplicate.
const RequestIDHeader = "Idlerace-Request-Id"

// Env is what a load needs to send requests: where, what, and how to get a transport.
type Env struct {
	// Target is the URL every request goes to.
	Target string
	// Method defaults to POST: net/http.Transport replays idempotent requests by itself,
	// which would hide the race in the stdlib row.
	Method string
	// Body is sent with every request (replayable: GetBody is set); nil or empty is no
	// body and no Content-Length.
	Body []byte
	// StaleGateway says a reverse proxy is in the path: a 502, 503 or 504 from it is the
	// race lost by its upstream pool, and counts as stale (not on the load's own
	// connection, so no close of the load's is looked for).
	StaleGateway bool
	// Header is sent with every request beside idlerace's own Idlerace-Request-Id; a
	// User-Agent in it replaces idlerace's, a Host sets the request's Host.
	Header http.Header
	// Targets, when set, are the requests the load goes round over, one after another
	// (attack --targets): each its own method, path, headers and body, all on Target's
	// server. Method and Body are then unused.
	Targets []Request
	// IdleTimeout is T, the server's idle timeout as the client believes it; sweep and
	// lull place their gaps around it.
	IdleTimeout time.Duration
	// LocatedClose is where the server's idle close lands as the client sees it: from the end
	// of a response to the close's arrival (T + s for the builtin upstream, the median
	// of the measured closes for a real server); 0 when not located (T stands in).
	// sweep:focus=D aims its gaps at it.
	LocatedClose time.Duration
	// NewTransport makes a fresh transport; sweep gives one to every lane.
	NewTransport func() pool.Transport
	// Seed makes the lull shape's draws reproducible.
	Seed uint64
	// RunID prefixes every request id.
	RunID string

	seq        atomic.Uint64
	mu         sync.Mutex
	transports []pool.Transport
	once       sync.Once
	tmpl       []template
	tmplErr    error
}

// UserAgent is every request's User-Agent ("idlerace/<version>"; the command sets it).
var UserAgent = "idlerace/dev"

// DefaultBody is the body a cell's requests carry: a small JSON document for a method
// that carries one, none for GET, HEAD, DELETE, OPTIONS and TRACE, which a server may
// refuse with a body (a GET with a body and Content-Length drew 400s from servers
// idlerace did not write).
func DefaultBody(method string) []byte {
	switch strings.ToUpper(method) {
	case http.MethodGet, http.MethodHead, http.MethodDelete, http.MethodOptions, http.MethodTrace:
		return nil
	}
	return []byte(`{"idlerace":true}`)
}

func (e *Env) method() string {
	if e.Method == "" {
		return http.MethodPost
	}
	return e.Method
}

// transport makes a transport and remembers it so that Stats and Close can reach it.
func (e *Env) transport() pool.Transport {
	t := e.NewTransport()
	e.mu.Lock()
	e.transports = append(e.transports, t)
	e.mu.Unlock()
	return t
}

// Stats sums the counters of every transport the load used.
func (e *Env) Stats() pool.Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	var s pool.Stats
	for _, t := range e.transports {
		ts := t.Stats()
		s.NewConns += ts.NewConns
		s.Reused += ts.Reused
		s.Discards += ts.Discards
		s.WatchCloses += ts.WatchCloses
		s.Retries += ts.Retries
	}
	return s
}

// Close closes every idle connection of every transport the load used.
func (e *Env) Close() {
	e.mu.Lock()
	ts := e.transports
	e.mu.Unlock()
	for _, t := range ts {
		t.CloseIdleConnections()
	}
}

// send makes one request through tr and reads the whole response. intended is when the
// load meant to send it: latency is measured from there.
func (e *Env) send(ctx context.Context, tr http.RoundTripper, intended time.Time, prime bool) Record {
	if tt, ok := tr.(pool.Timed); ok {
		return e.sendTimed(ctx, tt, intended, prime)
	}
	return e.sendHTTP(ctx, tr, intended, prime)
}

// sendHTTP sends one request through an http.RoundTripper, traced.
func (e *Env) sendHTTP(ctx context.Context, tr http.RoundTripper, intended time.Time, prime bool) Record {
	r := Record{Seq: e.seq.Add(1), Intended: intended, Prime: prime, Gap: -1}
	var wrote bool
	trace := &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) {
			r.Attempts++
			r.Reused = i.Reused
			r.IdleAge = i.IdleTime
			if a, ok := i.Conn.LocalAddr().(*net.TCPAddr); ok {
				r.LocalPort = a.Port
			}
			if r.Attempts == 1 {
				r.FirstReused, r.FirstIdleAge = i.Reused, i.IdleTime
				r.FirstCheckout, r.FirstPort = time.Now(), r.LocalPort
			}
		},
		WroteRequest: func(i httptrace.WroteRequestInfo) { wrote = i.Err == nil },
	}
	req, t, err := e.newRequest(httptrace.WithClientTrace(ctx, trace), r.Seq)
	if err != nil {
		r.Err, r.Class, r.Start, r.End = err, pool.Other, time.Now(), time.Now()
		return r
	}
	r.Method, r.URL, r.BytesOut = t.method, t.url, int64(len(t.body))
	r.Start = time.Now()
	resp, err := tr.RoundTrip(req)
	var bodyErr error
	if err == nil {
		r.Code = resp.StatusCode
		r.ClosingResponse = resp.Close
		r.BytesIn, bodyErr = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	r.End = time.Now()
	switch {
	case err != nil:
		r.Err = err
		r.Class = pool.Classify(err, wrote)
		r.Stale = r.Class.Stale(r.Reused)
	case bodyErr != nil:
		// The server read the request and began answering: a body cut short is not the
		// keep-alive race (which ends before any response byte).
		r.Err = fmt.Errorf("reading the response body: %w", bodyErr)
		r.Class = pool.Other
		if pool.Classify(bodyErr, true) == pool.Timeout {
			r.Class = pool.Timeout
		}
	default:
		e.classifyStatus(&r)
	}
	return r
}

// classifyStatus makes a response that is not a success a failure: a 502, 503 or 504
// is bad_gateway, and stale when a proxy is in the path (its pool lost the race on the
// upstream side: StaleGateway); any other status below 200 or from 400 is other.
func (e *Env) classifyStatus(r *Record) {
	switch {
	case pool.IsBadGateway(r.Code):
		r.Err, r.Class, r.Stale = fmt.Errorf("status %d", r.Code), pool.BadGateway, e.StaleGateway
	case r.Code < 200 || r.Code >= 400:
		r.Err, r.Class = fmt.Errorf("status %d", r.Code), pool.Other
	}
}

// sendTimed has a Timed transport (a client kind's agent lane) send the request at
// intended itself and builds the record from what its library said.
func (e *Env) sendTimed(ctx context.Context, tt pool.Timed, intended time.Time, prime bool) Record {
	r := Record{Seq: e.seq.Add(1), Intended: intended, Prime: prime, Gap: -1, Attempts: 1}
	req, t, err := e.newRequest(ctx, r.Seq)
	if err != nil {
		r.Err, r.Class, r.Start, r.End = err, pool.Other, time.Now(), time.Now()
		return r
	}
	r.Method, r.URL, r.BytesOut = t.method, t.url, int64(len(t.body))
	res := tt.SendAt(ctx, req, intended)
	r.Start, r.End, r.Code, r.BytesIn = res.Start, res.End, res.Status, res.BytesIn
	r.Reused, r.FirstReused, r.LocalPort = res.Reused, res.Reused, res.LocalPort
	if res.Attempts > 1 { // a retry in front of the library replayed it
		r.Attempts, r.FirstReused = res.Attempts, res.FirstReused
	}
	switch {
	case res.Err != nil:
		r.Err, r.Class = res.Err, res.Class
		r.Stale = r.Class.Stale(r.Reused)
	default:
		e.classifyStatus(&r)
	}
	return r
}
