package builtin

import (
	"context"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/idlerace/idlerace/upstreams"
)

func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// TestRequestsWhileIdleWaitingAreServed: every request below arrives while the connection
// sits in the server's idle waiter (on Linux), and is read and answered.
func TestRequestsWhileIdleWaitingAreServed(t *testing.T) {
	s, err := listen(context.Background(), upstreams.Config{IdleTimeout: 40 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS == "linux" && s.waiter == nil {
		t.Fatal("no idle waiter on Linux (epoll_pwait2 needs 5.11)")
	}
	s.run(context.Background())
	t.Cleanup(func() { s.Close() })
	c := dial(t, s)
	for range 3 {
		time.Sleep(2 * time.Millisecond)
		if resp, body := c.roundTrip(); resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("response %d %q", resp.StatusCode, body)
		}
	}
	if err := c.readEnd(); err != io.EOF {
		t.Fatalf("read: %v, want EOF from the idle close", err)
	}
	r := waitCloses(t, s, 1)[0]
	if r.Reason != upstreams.ReasonIdle || r.Requests != 3 || r.Unread || r.Closed.Before(r.Due) {
		t.Errorf("record = %+v, want an idle close after 3 requests, not before due", r)
	}
	// And a client that leaves during the stretch is a peer close.
	c2 := dial(t, s)
	c2.roundTrip()
	c2.nc.Close()
	recs := waitCloses(t, s, 2)
	if r := recs[1]; r.Reason != upstreams.ReasonPeer || r.RemotePort != c2.localPort() {
		t.Errorf("record = %+v, want peer close of port %d", r, c2.localPort())
	}
}

func TestSkewBeyondTimeoutClosesAtOnce(t *testing.T) {
	s := startServer(t, upstreams.Config{IdleTimeout: 20 * time.Millisecond, Skew: mustSkew(t, "offset:-30ms")})
	// The first idle period begins at accept, so the server closes before any request.
	if err := dial(t, s).readEnd(); err != io.EOF {
		t.Fatalf("read: %v, want EOF", err)
	}
	r := waitCloses(t, s, 1)[0]
	if r.Reason != upstreams.ReasonIdle || r.Requests != 0 || r.Due.Sub(r.IdleStart) != -10*time.Millisecond {
		t.Errorf("record = %+v, want idle close due 10ms before the idle period began", r)
	}
	// Lateness counts from the start of the idle period, not from the due in the past
	// (which would add the 10ms by which due precedes it).
	fromStart := r.Closed.Sub(r.IdleStart).Microseconds()
	if st := s.Stats(); st.CloseLateMaxUS-fromStart < -1 || st.CloseLateMaxUS-fromStart > fromStart/500+1 {
		t.Errorf("CloseLateMaxUS = %d, want Closed - IdleStart = %dµs (not Closed - Due = %dµs)",
			st.CloseLateMaxUS, fromStart, r.Closed.Sub(r.Due).Microseconds())
	}
}

func TestDriftFollowsRunProgress(t *testing.T) {
	for _, tc := range []struct {
		run  time.Duration
		want time.Duration
	}{
		{run: 0, want: 0}, // no run duration: progress stays 0, s = from
		{run: time.Nanosecond, want: -8 * time.Millisecond}, // past the end: progress clamps to 1, s = to
	} {
		s := startServer(t, upstreams.Config{IdleTimeout: 20 * time.Millisecond,
			Skew: mustSkew(t, "drift:from=0,to=-8ms"), RunDuration: tc.run})
		c := dial(t, s)
		c.roundTrip()
		if err := c.readEnd(); err != io.EOF {
			t.Fatalf("read: %v, want EOF", err)
		}
		if r := waitCloses(t, s, 1)[0]; r.Skew != tc.want || r.Due.Sub(r.IdleStart) != 20*time.Millisecond+tc.want {
			t.Errorf("RunDuration %v: record = %+v, want skew %v", tc.run, r, tc.want)
		}
	}
}
