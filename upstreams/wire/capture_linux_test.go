//go:build linux && cgo

package wire_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/pcapgo"
	"go.uber.org/goleak"

	"github.com/idlerace/idlerace/upstreams"
	_ "github.com/idlerace/idlerace/upstreams/gonet"
	"github.com/idlerace/idlerace/upstreams/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"

// exchange sends one request on c and reads its response whole.
func exchange(t *testing.T, c net.Conn, r *bufio.Reader) {
	t.Helper()
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	resp, err := http.ReadResponse(r, req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// The wire sees what net/http's server says of itself: every connection it accepted,
// every request, every idle close on the same client port, each after that
// connection's last response; and what the server cannot say: that its closes were
// FINs, that a request written after the FIN arrived too late (answered by a RST), and
// how soon each client that saw the FIN closed its end.
func TestWireSeesTheServersOwnCloses(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: capturing needs CAP_NET_RAW (run as root)")
	}
	const T = 200 * time.Millisecond
	ctx := context.Background()
	up, err := upstreams.Start(ctx, "gonet", upstreams.Config{IdleTimeout: T})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	_, portStr, _ := net.SplitHostPort(strings.TrimPrefix(up.URL(), "http://"))
	port, _ := net.LookupPort("tcp", portStr)
	var pcap bytes.Buffer
	var reuses []wire.Reuse // only the capture's goroutine appends, until Stop
	capture, err := wire.Start(wire.Options{Port: port, IdleTimeout: T, PCAP: &pcap, OnReuse: func(r wire.Reuse) { reuses = append(reuses, r) }})
	if err != nil {
		t.Fatal(err)
	}
	var wireCloses []upstreams.CloseRecord
	closes := make(chan upstreams.CloseRecord, 100)
	capture.Recorder().StreamCloses(func(c upstreams.CloseRecord) { closes <- c })

	const conns = 8
	ports := map[int]bool{}
	var late net.Conn
	for i := range conns {
		c, err := net.Dial("tcp", strings.TrimPrefix(up.URL(), "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ports[c.LocalAddr().(*net.TCPAddr).Port] = true
		r := bufio.NewReader(c)
		exchange(t, c, r)
		exchange(t, c, r)
		// Wait for the server's idle close: the FIN, as EOF.
		_ = c.SetReadDeadline(time.Now().Add(time.Minute))
		if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
			t.Fatalf("connection %d: want the server's FIN (EOF), got %v", i, err)
		}
		if i == 0 {
			late = c
		} else {
			c.Close() // the client answers the idle close with its own FIN, sending nothing
		}
	}
	// A request into a connection the server has closed: its kernel answers with a RST.
	if _, err := io.WriteString(late, request); err != nil {
		t.Fatal(err)
	}
	_ = late.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := late.Read(make([]byte, 1)); err == nil {
		t.Fatal("a read after the server's close returned data")
	}
	for range conns {
		select {
		case c := <-closes:
			wireCloses = append(wireCloses, c)
		case <-time.After(time.Minute):
			t.Fatalf("the wire saw %d of %d closes in a minute", len(wireCloses), conns)
		}
	}
	st, err := capture.Stop()
	if err != nil {
		t.Fatal(err)
	}
	own := map[int]upstreams.CloseRecord{}
	for _, c := range up.Closes() {
		own[c.RemotePort] = c
	}
	for _, c := range wireCloses {
		if !ports[c.RemotePort] {
			t.Errorf("the wire saw a close of port %d, not one of this test's", c.RemotePort)
		}
		if o, ok := own[c.RemotePort]; !ok || o.Reason != upstreams.ReasonIdle {
			t.Errorf("port %d: the wire saw an idle close the server did not record as one (%+v)", c.RemotePort, o)
		}
		if c.Reason != upstreams.ReasonIdle || c.Requests != 2 || c.Unread || c.Reset {
			t.Errorf("port %d: wire close %+v, want idle, 2 requests, nothing unread, a FIN", c.RemotePort, c)
		}
		if !c.Closed.After(c.IdleStart) || !c.IdleStart.After(c.Accepted) || c.Due != c.IdleStart.Add(T) {
			t.Errorf("port %d: accepted %v, last response %v, closed %v, due %v: want them in that order, due at T after the last response",
				c.RemotePort, c.Accepted, c.IdleStart, c.Closed, c.Due)
		}
	}
	ws := capture.Recorder().Stats()
	if ws.Accepted != conns || ws.Executed != 2*conns || ws.IdleCloses != conns || ws.ClosesWithUnread != 0 {
		t.Errorf("wire stats %+v: want %d accepted, %d requests, %d idle closes, none with unread", ws, conns, 2*conns, conns)
	}
	if st.ServerFINs != conns || st.ServerRSTs != 0 || st.LateRequests != 1 || st.Drops != 0 {
		t.Errorf("wire %+v: want %d FINs, no RST close, 1 late request, no drops", st, conns)
	}
	// Each client but the late one closed its end after reading the FIN: the wire times
	// how long each took (the one that wrote first is no notice of the close).
	if st.PeerCloses != conns-1 || st.PeerCloseLag <= 0 {
		t.Errorf("wire %+v: want %d peer closes after the server's, in a positive time", st, conns-1)
	}
	// Each connection's second request reused it, and so did the late one, long after
	// its connection's last response (past the close at T).
	if len(reuses) != conns+1 || reuses[len(reuses)-1].Gap() < T || slices.ContainsFunc(reuses, func(r wire.Reuse) bool { return r.Gap() < 0 || !ports[r.ClientPort] }) {
		t.Errorf("reused-connection gaps %v: want %d, none negative, each on a port of ours, the late one's past T", reuses, conns+1)
	}
	t.Logf("wire: %+v; recorder: %+v", st, ws)
	// The pcap holds each segment the tracker saw, once.
	r, err := pcapgo.NewReader(&pcap)
	if err != nil {
		t.Fatal(err)
	}
	n := int64(0)
	for {
		if _, _, err := r.ReadPacketData(); err != nil {
			break
		}
		n++
	}
	if n != st.Segments || n == 0 {
		t.Errorf("the pcap has %d segments, the capture saw %d", n, st.Segments)
	}
}
