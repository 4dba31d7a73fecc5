// Package hostile is a kit of loopback HTTP/1.1 servers that misbehave the ways real
// servers and middleboxes do: a status line that is not HTTP, megabytes of headers, a
// body shorter than its Content-Length, broken chunked encoding, a response trickled a
// byte at a time, a server that never answers, an RST on accept, "100 Continue" and
// then a close, an answer before the request body was read. Tests point idlerace at
// them to check that each failure gets its class, that the load goes on, and that
// nothing leaks.
//
// Each misbehaviour is one registered Kind (name, what it does, the class a client
// should report); adding one touches nothing else. A Server owns its listener
// (127.0.0.1:0 only) and one goroutine per connection; Close ends them all promptly,
// the trickling and the silent ones included, so goleak passes.
//
//	client ── HTTP/1.1 over loopback ──► Server(kind) ── serve(conn) per connection
//	                                       Close: listener, every conn, wait for all
//
// It knows nothing of clients: the expected classes are DESIGN.md's names, as strings.
package hostile

import (
	"fmt"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Options tune a kind's misbehaviour; the zero value is each kind's default.
type Options struct {
	// Interval is the trickle server's pause before each byte (default 1s: one byte a
	// second). A test makes it short to stay fast.
	Interval time.Duration
	// HeaderBytes is the size of the huge-header server's header block (default 2 MiB).
	HeaderBytes int
}

// DefaultInterval and DefaultHeaderBytes are the zero Options' values.
const (
	DefaultInterval    = time.Second
	DefaultHeaderBytes = 2 << 20
)

func (o Options) withDefaults() Options {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.HeaderBytes <= 0 {
		o.HeaderBytes = DefaultHeaderBytes
	}
	return o
}

// Kind is one misbehaviour.
type Kind struct {
	Name string
	Help string
	// Expect lists the failure classes (DESIGN.md: reset_write, reset_read, eof,
	// timeout, other) a correct client reports for a request to this server; more than
	// one when the kernel's ordering of two events decides. "" means success.
	Expect []string
	// serve handles one accepted connection until it is done or the server closes.
	serve func(s *Server, c net.Conn)
}

var kinds = map[string]Kind{}

func register(k Kind) {
	if _, dup := kinds[k.Name]; dup {
		panic("hostile: kind registered twice: " + k.Name)
	}
	kinds[k.Name] = k
}

// Kinds lists every misbehaviour, sorted by name.
func Kinds() []Kind {
	out := make([]Kind, 0, len(kinds))
	for _, k := range kinds {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Server is one hostile server on loopback.
type Server struct {
	Kind Kind
	opt  Options
	ln   net.Listener
	done chan struct{}

	accepted atomic.Int64
	mu       sync.Mutex
	conns    map[net.Conn]bool
	closed   bool
	wg       sync.WaitGroup
	once     sync.Once
}

// New starts the server of kind name on 127.0.0.1:0.
func New(name string, opt Options) (*Server, error) {
	k, ok := kinds[name]
	if !ok {
		var known []string
		for _, k := range Kinds() {
			known = append(known, k.Name)
		}
		return nil, fmt.Errorf("hostile: unknown kind %q (known: %v)", name, known)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{Kind: k, opt: opt.withDefaults(), ln: ln, done: make(chan struct{}), conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// Start is New for a test: it fails the test if the server cannot start and closes the
// server when the test ends.
func Start(t testing.TB, name string, opt Options) *Server {
	t.Helper()
	s, err := New(name, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// URL is the server's base URL, http://127.0.0.1:port/.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() + "/" }

// Accepted counts the connections the server accepted.
func (s *Server) Accepted() int64 { return s.accepted.Load() }

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.accepted.Add(1)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[c] = true
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.Kind.serve(s, c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			_ = c.Close()
		}()
	}
}

// Close stops accepting, ends every connection (a trickle or a silent server is woken
// at once) and waits for every goroutine the server started.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.done)
		_ = s.ln.Close()
		s.mu.Lock()
		s.closed = true
		for c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
}

// sleep waits d or until the server closes; it reports whether d passed.
func (s *Server) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.done:
		return false
	}
}
