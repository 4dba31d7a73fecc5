package builtin

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/idlerace/idlerace/chaos"
	"github.com/idlerace/idlerace/upstreams"
)

func mustFault(t testing.TB, spec string) chaos.Fault {
	t.Helper()
	f, err := chaos.ParseFault(spec)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// staleEnd writes a request on a connection the server has given up on, as a blind pool
// would, and returns what the following read saw: it must not be a response.
func (c *client) staleEnd(headers ...string) error {
	c.t.Helper()
	c.send(headers...)
	return c.readEnd()
}

// waitStats waits (bounded) until cond holds for the server's stats.
func waitStats(t testing.TB, s *Server, what string, cond func(upstreams.Stats) bool) upstreams.Stats {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for {
		st := s.Stats()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats never reached %s: %+v", what, st)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCloseAfterSendsFINWithoutConnectionClose(t *testing.T) {
	s := startServer(t, upstreams.Config{IdleTimeout: 5 * time.Second, Faults: []chaos.Fault{mustFault(t, "close-after:n=2")}})
	c := dial(t, s)
	for i, id := range []string{"a1", "a2"} {
		resp, body := c.roundTrip(RequestIDHeader + ": " + id)
		if resp.Close || resp.Header.Get("Keep-Alive") != "timeout=5" || string(body) != "ok" {
			t.Fatalf("response %d: Close %v, Keep-Alive %q, body %q; want an ordinary keep-alive response",
				i+1, resp.Close, resp.Header.Get("Keep-Alive"), body)
		}
	}
	// Nothing announced the close, yet the FIN follows the 2nd response at once.
	if err := c.readEnd(); err != io.EOF {
		t.Fatalf("read after the 2nd response: %v, want EOF", err)
	}
	r := waitCloses(t, s, 1)[0]
	if r.Reason != upstreams.ReasonCloseAfter || r.Requests != 2 || r.Unread {
		t.Errorf("record = %+v, want close-after after 2 requests", r)
	}
	// Right after the response, not by the idle timer: a close this side of T (5s) can
	// only be close-after's (the reason says so too).
	if late := r.Closed.Sub(r.IdleStart); late >= 5*time.Second {
		t.Errorf("closed %v after the response, want right after it, long before T=5s", late)
	}

	// A blind client learns only on its next write: the write succeeds, the read finds
	// the connection gone, and the server never ran the request.
	b := dial(t, s)
	b.roundTrip(RequestIDHeader + ": b1")
	b.roundTrip(RequestIDHeader + ": b2")
	waitCloses(t, s, 2)
	if err := b.staleEnd(RequestIDHeader + ": b3"); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("stale request: %v, want EOF or ECONNRESET", err)
	}
	if st := s.Stats(); st.Executed != 4 || st.Duplicates != 0 {
		t.Fatalf("Stats = %+v, want 4 executed (a1 a2 b1 b2; b3 never ran), 0 duplicates", st)
	}
	// Replaying the failed b3 is safe: it never ran.
	dial(t, s).roundTrip(RequestIDHeader + ": b3")
	if st := s.Stats(); st.Executed != 5 || st.Duplicates != 0 {
		t.Fatalf("after replaying b3: %+v, want 5 executed, 0 duplicates", st)
	}
	// A client that blames the close on the request before it (b2, which ran and was
	// answered) and replays it executes it twice.
	dial(t, s).roundTrip(RequestIDHeader + ": b2")
	if st := s.Stats(); st.Executed != 6 || st.Duplicates != 1 {
		t.Fatalf("after replaying b2: %+v, want 6 executed, 1 duplicate", st)
	}
}

func TestCloseAfterDefersToAnnouncedMaxRequests(t *testing.T) {
	s := startServer(t, upstreams.Config{IdleTimeout: 5 * time.Second, MaxRequests: 1,
		Faults: []chaos.Fault{mustFault(t, "close-after:n=1")}})
	c := dial(t, s)
	if resp, _ := c.roundTrip(); !resp.Close {
		t.Error("MaxRequests 1 response does not say Connection: close")
	}
	if r := waitCloses(t, s, 1)[0]; r.Reason != upstreams.ReasonMaxRequests {
		t.Errorf("record = %+v, want max-requests (announced) over close-after", r)
	}
}

func TestRestartClosesAllConnectionsAtOnce(t *testing.T) {
	const every = 500 * time.Millisecond
	s, err := listen(context.Background(), upstreams.Config{IdleTimeout: 5 * time.Second,
		Faults: []chaos.Fault{mustFault(t, "restart:every=500ms")}})
	if err != nil {
		t.Fatal(err)
	}
	passes := make(chan int, 64) // connections closed by each restart pass, in order
	s.afterRestart = func(killed int) {
		select {
		case passes <- killed:
		default:
		}
	}
	s.run(context.Background())
	t.Cleanup(func() { s.Close() })
	cs := make([]*client, 5)
	for i := range cs {
		cs[i] = dial(t, s)
		cs[i].roundTrip()
	}
	seen := make([]time.Time, len(cs))
	for i, c := range cs {
		if err := c.readEnd(); err != io.EOF {
			t.Fatalf("connection %d: %v, want EOF", i, err)
		}
		seen[i] = time.Now()
	}
	recs := waitCloses(t, s, len(cs))
	first, last := recs[0].Closed, recs[len(recs)-1].Closed
	for _, r := range recs {
		if r.Reason != upstreams.ReasonRestart || r.Requests != 1 {
			t.Errorf("record = %+v, want restart after 1 request", r)
		}
	}
	// "At once" is one pass of the restart: the first pass that closed anything closed
	// all five (each was open and idle when it came).
	for killed := range passes {
		if killed == 0 {
			continue
		}
		if killed != len(cs) {
			t.Errorf("the first restart closed %d connections, want all %d at once", killed, len(cs))
		}
		break
	}
	// A ticker never fires early: the restart came a whole period after start.
	if since := first.Sub(s.started); since < every {
		t.Errorf("restart came %v after start, before the period %v", since, every)
	}
	t.Logf("restart %v after start; the 5 closes spread over %v", first.Sub(s.started), last.Sub(first))
	// The listener stays open through a restart.
	if resp, _ := dial(t, s).roundTrip(); resp.StatusCode != 200 {
		t.Errorf("after the restart: status %d", resp.StatusCode)
	}
}

// TestRestartLosesResponseOfExecutedRequest: the one fault that makes a replay a
// duplicate: the request ran, its response never left.
func TestRestartLosesResponseOfExecutedRequest(t *testing.T) {
	s := startServer(t, upstreams.Config{IdleTimeout: 5 * time.Second, ServiceTime: 400 * time.Millisecond,
		Faults: []chaos.Fault{mustFault(t, "restart:every=150ms")}})
	c := dial(t, s)
	c.send(RequestIDHeader + ": r1")
	if err := c.readEnd(); err != io.EOF {
		t.Fatalf("in-flight request across a restart: %v, want EOF before any response byte", err)
	}
	if st := s.Stats(); st.Executed != 1 {
		t.Fatalf("Executed = %d, want 1: the request ran though its response was lost", st.Executed)
	}
	dial(t, s).send(RequestIDHeader + ": r1") // the retry
	st := waitStats(t, s, "2 executed", func(st upstreams.Stats) bool { return st.Executed == 2 })
	if st.Duplicates != 1 {
		t.Errorf("Duplicates = %d after replaying r1, want 1", st.Duplicates)
	}
}

func TestSilentDeathTimesOutWithoutFIN(t *testing.T) {
	s := startServer(t, upstreams.Config{IdleTimeout: 50 * time.Millisecond, Faults: []chaos.Fault{mustFault(t, "silent-death:after=1")}})
	c := dial(t, s)
	if resp, _ := c.roundTrip(RequestIDHeader + ": s1"); resp.StatusCode != 200 || resp.Close {
		t.Fatalf("1st response: status %d close %v", resp.StatusCode, resp.Close)
	}
	c.send(RequestIDHeader + ": s2")
	// Well past T (50ms): no response, no FIN, no RST; only the client's timeout.
	c.nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var buf [64]byte
	n, err := c.br.Read(buf[:])
	if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read on the silent connection: %d bytes, %v; want a timeout", n, err)
	}
	if recs := s.Closes(); len(recs) != 0 {
		t.Errorf("server closed: %+v, want no close before shutdown", recs)
	}
	if st := s.Stats(); st.Executed != 1 || st.IdleCloses != 0 {
		t.Errorf("Stats = %+v, want s1 executed only and no idle close", st)
	}
	// Replaying the timed-out s2 is safe: it never ran.
	dial(t, s).roundTrip(RequestIDHeader + ": s2")
	if st := s.Stats(); st.Executed != 2 || st.Duplicates != 0 {
		t.Errorf("after replaying s2: %+v, want 2 executed, 0 duplicates", st)
	}
	s.Close()
	if err := c.readEnd(); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after shutdown: %v, want the connection ended", err)
	}
	var silent *upstreams.CloseRecord
	for _, r := range s.Closes() {
		if r.RemotePort == c.localPort() {
			silent = &r
		}
	}
	if silent == nil || silent.Reason != upstreams.ReasonShutdown || !silent.Unread || silent.Requests != 1 {
		t.Errorf("record of the silent connection = %+v, want shutdown with s2 unread", silent)
	}
}

func TestRSTFaultResetsIdleClose(t *testing.T) {
	for _, mode := range []chaos.CloseMode{"", chaos.CloseFIN, chaos.CloseRST} {
		t.Run("close="+mode.String(), func(t *testing.T) {
			s := startServer(t, upstreams.Config{IdleTimeout: 20 * time.Millisecond, Close: mode, Faults: []chaos.Fault{chaos.RST{}}})
			c := dial(t, s)
			c.roundTrip()
			if err := c.readEnd(); !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("read after the idle close: %v, want ECONNRESET", err)
			}
			if r := waitCloses(t, s, 1)[0]; r.Reason != upstreams.ReasonIdle || r.Unread {
				t.Errorf("record = %+v, want idle, nothing unread", r)
			}
		})
	}
}

func TestSlowCloseLeavesRequestUnreadThenResets(t *testing.T) {
	const delay = 150 * time.Millisecond
	s, err := listen(context.Background(), upstreams.Config{IdleTimeout: 30 * time.Millisecond,
		Faults: []chaos.Fault{mustFault(t, "slow-close:delay=150ms")}})
	if err != nil {
		t.Fatal(err)
	}
	fired := make(chan struct{})
	var firedAt time.Time // stamped in the hook, before the server's delay begins
	s.beforeIdleClose = func(net.Conn) { firedAt = time.Now(); close(fired) }
	s.run(context.Background())
	t.Cleanup(func() { s.Close() })

	c := dial(t, s)
	c.roundTrip(RequestIDHeader + ": w1")
	select {
	case <-fired:
	case <-time.After(waitBound):
		t.Fatal("idle deadline never fired")
	}
	// The server gave up on the connection but has not closed it: the request goes out
	// and nothing tells the client for `delay`.
	err = c.staleEnd(RequestIDHeader + ": w2")
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("request in the slow-close window: %v, want ECONNRESET", err)
	}
	// The hook ran before the server began its delay, so the reset cannot come sooner.
	if waited := time.Since(firedAt); waited < delay {
		t.Errorf("reset %v after the idle deadline fired, want at least the %v delay", waited, delay)
	}
	r := waitCloses(t, s, 1)[0]
	if r.Reason != upstreams.ReasonIdle || !r.Unread || r.Requests != 1 {
		t.Errorf("record = %+v, want idle close with w2 unread", r)
	}
	if late := r.Closed.Sub(r.Due); late < delay {
		t.Errorf("closed %v after due, want >= %v", late, delay)
	}
	st := s.Stats()
	if st.ClosesWithUnread != 1 || st.IdleCloses != 1 || st.Executed != 1 || st.Duplicates != 0 {
		t.Errorf("Stats = %+v, want 1 close with unread, 1 idle close, only w1 executed", st)
	}
	if st.CloseLateP50US < delay.Microseconds() {
		t.Errorf("CloseLateP50US = %d, want the delay (%dµs) counted as lateness", st.CloseLateP50US, delay.Microseconds())
	}
	dial(t, s).roundTrip(RequestIDHeader + ": w2")
	if st := s.Stats(); st.Executed != 2 || st.Duplicates != 0 {
		t.Errorf("after replaying w2: %+v, want 2 executed, 0 duplicates", st)
	}
}

func TestFaultConfigErrors(t *testing.T) {
	type otherFault struct{ chaos.RST }
	for _, tc := range []struct {
		faults []chaos.Fault
		want   string
	}{
		{[]chaos.Fault{chaos.RST{}, chaos.RST{}}, `upstream config: Faults[1] "rst": rst given twice`},
		{[]chaos.Fault{nil}, `upstream config: Faults[0]: nil`},
		{[]chaos.Fault{otherFault{}}, `upstream config: Faults[0] "rst": the builtin upstream cannot inject it (builtin.otherFault)`},
	} {
		_, err := Start(context.Background(), upstreams.Config{IdleTimeout: time.Second, Faults: tc.faults})
		if err == nil || err.Error() != tc.want {
			t.Errorf("Start with faults %v: %v, want %q", tc.faults, err, tc.want)
		}
	}
}

func TestVersion(t *testing.T) {
	s := startServer(t, upstreams.Config{IdleTimeout: time.Second})
	var u upstreams.Upstream = s
	if u.Version() != "idlerace-builtin" {
		t.Errorf("Version() = %q", u.Version())
	}
}
