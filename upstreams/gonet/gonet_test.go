package gonet

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/idlerace/idlerace/chaos"
	"github.com/idlerace/idlerace/internal/realtest"
	"github.com/idlerace/idlerace/upstreams"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestServesAndCountsExecutionsAndDuplicates(t *testing.T) {
	u, err := upstreams.Start(context.Background(), Kind, upstreams.Config{IdleTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if v := u.Version(); !strings.HasPrefix(v, "net/http go1.") {
		t.Errorf("Version() = %q, want net/http go1.x", v)
	}
	c := realtest.Dial(t, u.URL())
	resp, body := c.RoundTrip("/", RequestIDHeader+": x1")
	if resp.StatusCode != 200 || string(body) != "ok" || resp.Close {
		t.Fatalf("response %d %q close %v, want 200 \"ok\" keep-alive", resp.StatusCode, body, resp.Close)
	}
	if ka := resp.Header.Get("Keep-Alive"); ka != "" {
		t.Errorf("Keep-Alive = %q; net/http sends none unless told", ka)
	}
	c.RoundTrip("/", RequestIDHeader+": x2")
	realtest.Dial(t, u.URL()).RoundTrip("/", RequestIDHeader+": x1") // a replay on a new connection
	_, body = c.RoundTrip(StatsPath)
	var got upstreams.Stats
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("stats %q: %v", body, err)
	}
	if got.Executed != 3 || got.Duplicates != 1 || got.Accepted != 2 {
		t.Errorf("stats endpoint = %+v, want 3 executed, 1 duplicate, 2 accepted", got)
	}
	if st := u.Stats(); st.Executed != 3 || st.Duplicates != 1 {
		t.Errorf("Stats() = %+v, want 3 executed, 1 duplicate (the stats request is not one)", st)
	}
}

func TestClosesIdleConnectionNearTimeout(t *testing.T) {
	const idle, n = 100 * time.Millisecond, 50
	s := realtest.Start(t, Start, upstreams.Config{IdleTimeout: idle})
	j := realtest.CloseJitter(t, s.URL(), n, idle)
	t.Logf("gonet %s T=%v: %v", s.Version(), idle, j)
	// net/http sets the read deadline on a fresh clock read after the response was
	// written, and its netpoller resolves it to the millisecond.
	realtest.AssertClosesNearTimeout(t, j, idle, time.Millisecond)
	// The server records a close after close() returned, so the client may have seen
	// the last FIN first: wait for the count.
	st := realtest.WaitStats(s.Stats, func(st upstreams.Stats) bool { return st.IdleCloses >= n })
	if st.IdleCloses != n || st.Executed != n {
		t.Errorf("Stats = %+v, want %d idle closes and executions", st, n)
	}
	// The deadline is set after StateIdle began the idle period, and the close follows it:
	// both orders are causal, so they hold however loaded the machine is.
	for _, r := range s.Closes() {
		if r.Reason != upstreams.ReasonIdle || r.Due.Sub(r.IdleStart) < idle || r.Closed.Before(r.Due) || r.Requests != 1 {
			t.Errorf("record %+v: want an idle close after 1 request, due at least T after the response, not before due", r)
			break
		}
	}
	// The server's own lateness is the same closes seen from inside: it agrees with the
	// client's view on the median (each side's stamps sit within a wake-up of the wire).
	if late := time.Duration(st.CloseLateP50US) * time.Microsecond; late > idle/2 {
		t.Errorf("server-side median lateness %v, want within T/2 (client saw %v)", late, j)
	}
}

func BenchmarkCloseJitter(b *testing.B) {
	const idle = 100 * time.Millisecond
	s := realtest.Start(b, Start, upstreams.Config{IdleTimeout: idle})
	realtest.BenchCloseJitter(b, s.URL(), 50, idle)
}

func TestMaxRequestsAnnouncedAndClosed(t *testing.T) {
	s := realtest.Start(t, Start, upstreams.Config{IdleTimeout: 5 * time.Second, MaxRequests: 2, Advertise: 5 * time.Second})
	c := realtest.Dial(t, s.URL())
	if resp, _ := c.RoundTrip("/"); resp.Close || resp.Header.Get("Keep-Alive") != "timeout=5" {
		t.Errorf("1st response: close %v, Keep-Alive %q; want keep-alive with timeout=5", resp.Close, resp.Header.Get("Keep-Alive"))
	}
	if resp, _ := c.RoundTrip("/"); !resp.Close {
		t.Error("2nd response (MaxRequests 2) lacks Connection: close")
	}
	if err := c.ReadEnd(); err != io.EOF {
		t.Errorf("after the 2nd response: %v, want EOF", err)
	}
	s.Close()
	recs := s.Closes()
	if len(recs) != 1 || recs[0].Reason != upstreams.ReasonMaxRequests || recs[0].Requests != 2 {
		t.Errorf("records = %+v, want one max-requests after 2 requests", recs)
	}
}

func TestCloseShutsIdleConnections(t *testing.T) {
	s, err := Start(context.Background(), upstreams.Config{IdleTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	armed := make(chan struct{}, 1)
	f := func() {
		select {
		case armed <- struct{}{}:
		default:
		}
	}
	s.idleArmed.Store(&f)
	c := realtest.Dial(t, s.URL())
	c.RoundTrip("/")
	// net/http turns the connection idle (and sets its idle deadline) only after the
	// client already has the response: wait for that before shutting down.
	select {
	case <-armed:
	case <-time.After(realtest.WaitBound):
		t.Fatal("net/http never armed the idle deadline")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.ReadEnd(); err != io.EOF {
		t.Errorf("after Close: %v, want EOF", err)
	}
	recs := s.Closes()
	if len(recs) != 1 || recs[0].Reason != upstreams.ReasonShutdown || recs[0].Due.IsZero() {
		t.Errorf("records = %+v, want one shutdown of an idle connection", recs)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestCancelledContextStopsServer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Start(ctx, upstreams.Config{IdleTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	c := realtest.Dial(t, s.URL())
	c.RoundTrip("/")
	cancel()
	if err := c.ReadEnd(); err != io.EOF {
		t.Errorf("after cancel: %v, want EOF", err)
	}
	s.Close()
}

func TestPortTakenIsErrStart(t *testing.T) {
	addr := realtest.BusyAddr(t)
	realtest.AssertStartFails(t, Start, upstreams.Config{IdleTimeout: time.Second, Addr: addr}, "address already in use", addr)
}

func TestConfigItCannotHonourNamesTheField(t *testing.T) {
	skew, _ := chaos.ParseSkew("uniform:±5ms")
	for _, tc := range []struct {
		cfg  upstreams.Config
		want string
	}{
		{upstreams.Config{IdleTimeout: time.Second, Skew: skew}, `upstream config: Skew "uniform:±5ms": gonet cannot honour a skew model`},
		{upstreams.Config{IdleTimeout: time.Second, Close: chaos.CloseRST}, `upstream config: Close "rst": gonet`},
		{upstreams.Config{IdleTimeout: time.Second, Faults: []chaos.Fault{chaos.RST{}}}, `upstream config: Faults ["rst"]: gonet cannot inject faults`},
		{upstreams.Config{IdleTimeout: time.Second, Addr: "0.0.0.0:0"}, `upstream config: Addr: "0.0.0.0:0": not a loopback address`},
		{upstreams.Config{}, `upstream config: IdleTimeout must be > 0`},
	} {
		realtest.AssertRefused(t, Start, tc.cfg, tc.want)
	}
	none, _ := chaos.ParseSkew("none")
	realtest.Start(t, Start, upstreams.Config{IdleTimeout: time.Second, Skew: none}) // none is fine
}
