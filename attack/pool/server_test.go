package pool_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
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

	mu         sync.Mutex
	conns      map[net.Conn]bool // open connections
	lastClosed []int             // client ports of the connections the last closeIdle ended
	executed   int
	accepted   int
	wg         sync.WaitGroup
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
// client's kernel has received it: the client's socket has left ESTABLISHED (CLOSE_WAIT
// after the FIN, gone from the table after the RST). Loopback delivers within
// microseconds, but a loaded machine may defer the delivery to ksoftirqd, and a test that
// went on before it would race the kernel, not the pool.
func (s *testServer) closeIdle(rst bool) int {
	s.mu.Lock()
	var ports []int
	for c := range s.conns {
		if rst {
			_ = c.(*net.TCPConn).SetLinger(0)
		}
		ports = append(ports, c.RemoteAddr().(*net.TCPAddr).Port)
		_ = c.Close()
	}
	s.mu.Unlock()
	s.lastClosed = ports
	waitClientSockets(ports, s.ln.Addr().(*net.TCPAddr).Port, tcpEstablished)
	return len(ports)
}

// waitClientClosed waits until the client has closed its end of every connection the
// last closeIdle ended: its socket is neither ESTABLISHED nor CLOSE_WAIT. That is how a
// pool whose reader saw the FIN (net/http's readLoop) shows it has dropped the connection.
func (s *testServer) waitClientClosed() {
	waitClientSockets(s.lastClosed, s.ln.Addr().(*net.TCPAddr).Port, tcpEstablished, tcpCloseWait)
}

// TCP states as /proc/net/tcp prints them.
const (
	tcpEstablished = "01"
	tcpCloseWait   = "08"
)

// waitClientSockets waits (5s at most) until no loopback socket with one of the local
// ports, connected to serverPort, is in one of the states in /proc/net/tcp.
func waitClientSockets(ports []int, serverPort int, states ...string) {
	want := map[string]bool{}
	for _, p := range ports {
		for _, st := range states {
			want[fmt.Sprintf("0100007F:%04X 0100007F:%04X %s", p, serverPort, st)] = true
		}
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Microsecond) {
		table, err := os.ReadFile("/proc/net/tcp")
		if err != nil {
			time.Sleep(20 * time.Millisecond) // no socket table to look at: the old guess
			return
		}
		established := false
		for _, line := range strings.Split(string(table), "\n") {
			// "  sl  local_address rem_address   st ...": fields 1-3 are what we match.
			f := strings.Fields(line)
			if len(f) > 3 && want[f[1]+" "+f[2]+" "+f[3]] {
				established = true
				break
			}
		}
		if !established {
			return
		}
	}
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
