package pool_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// testServer is a small HTTP/1.1 server on loopback, on net/http's wire code, that a
// test can tell to end its idle connections with a FIN or an RST at a chosen moment.
type testServer struct {
	ln        net.Listener
	keepAlive string // Keep-Alive header value, "" for none

	mu       sync.Mutex
	conns    map[net.Conn]bool // open connections
	executed int
	accepted int
	wg       sync.WaitGroup
}

func newTestServer(t testing.TB, keepAlive string) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{ln: ln, keepAlive: keepAlive, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.close)
	return s
}

func (s *testServer) url() string { return "http://" + s.ln.Addr().String() + "/" }

func (s *testServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = true
		s.accepted++
		s.mu.Unlock()
		s.wg.Add(1)
		go s.handle(c)
	}
}

func (s *testServer) handle(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	br, bw := bufio.NewReader(c), bufio.NewWriter(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		s.mu.Lock()
		s.executed++
		s.mu.Unlock()
		h := http.Header{}
		if s.keepAlive != "" {
			h.Set("Keep-Alive", s.keepAlive)
		}
		body := "ok"
		resp := &http.Response{StatusCode: 200, ProtoMajor: 1, ProtoMinor: 1, Header: h,
			ContentLength: int64(len(body)), Body: io.NopCloser(strings.NewReader(body))}
		if err := resp.Write(bw); err != nil || bw.Flush() != nil {
			return
		}
	}
}

// closeIdle ends every open connection, with an RST when rst is set, and waits until the
// client's kernel has had time to receive it (loopback delivers within microseconds).
func (s *testServer) closeIdle(rst bool) int {
	s.mu.Lock()
	n := 0
	for c := range s.conns {
		if rst {
			_ = c.(*net.TCPConn).SetLinger(0)
		}
		_ = c.Close()
		n++
	}
	s.mu.Unlock()
	time.Sleep(20 * time.Millisecond)
	return n
}

func (s *testServer) counts() (accepted, executed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted, s.executed
}

func (s *testServer) close() {
	_ = s.ln.Close()
	s.closeIdle(false)
	s.wg.Wait()
}
