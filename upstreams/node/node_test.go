package node

import (
	"context"
	"errors"
	"io"
	"strings"
	"syscall"
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

func requireNode(t testing.TB) {
	t.Helper()
	realtest.Require(t, "node ("+binary+")", DebianPackage, realtest.Executable(binary))
}

func TestServesCountsAndStopsCleanly(t *testing.T) {
	requireNode(t)
	u, err := upstreams.Start(context.Background(), Kind, upstreams.Config{IdleTimeout: 5 * time.Second, MaxRequests: 3})
	if err != nil {
		t.Fatal(err)
	}
	s := u.(*Server)
	if v := u.Version(); !strings.HasPrefix(v, "node/v") {
		t.Errorf("Version() = %q, want node/vX.Y.Z", v)
	}
	c := realtest.Dial(t, u.URL())
	resp, body := c.RoundTrip("/", "Idlerace-Request-Id: j1")
	if resp.StatusCode != 200 || string(body) != "ok" || resp.Close {
		t.Fatalf("response %d %q close %v, want 200 \"ok\" keep-alive", resp.StatusCode, body, resp.Close)
	}
	if ka := resp.Header.Get("Keep-Alive"); ka != "timeout=5, max=3" {
		t.Errorf("Keep-Alive = %q, want node's own timeout=5, max=3", ka)
	}
	c.RoundTrip("/", "Idlerace-Request-Id: j2")
	if resp, _ := c.RoundTrip("/", "Idlerace-Request-Id: j1"); !resp.Close {
		t.Error("3rd response (maxRequestsPerSocket 3) lacks Connection: close")
	}
	// Node announces the close but leaves it to the client (it closes only at its idle
	// timeout); a request beyond the limit is answered 503 without reaching the app.
	if resp, _ := c.RoundTrip("/", "Idlerace-Request-Id: j3"); resp.StatusCode != 503 {
		t.Errorf("4th request on the connection: status %d, want node's 503", resp.StatusCode)
	}
	idle := realtest.Dial(t, u.URL())
	idle.RoundTrip("/")
	if st := u.Stats(); st.Executed != 4 || st.Duplicates != 1 || st.Accepted != 2 {
		t.Errorf("Stats = %+v, want 4 executed, 1 duplicate, 2 accepted", st)
	}
	pid, dir := s.Pid(), s.Dir()
	if err := u.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := idle.ReadEnd(); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("idle connection after Close: %v, want it ended", err)
	}
	realtest.AssertGone(t, pid, dir)
	if st := u.Stats(); st.Executed != 4 {
		t.Errorf("Stats after Close = %+v, want the final counts", st)
	}
}

func TestClosesIdleConnectionNearTimeout(t *testing.T) {
	requireNode(t)
	const idle, n = 100 * time.Millisecond, 50
	s := realtest.Start(t, Start, upstreams.Config{IdleTimeout: idle})
	// Node 20 arms the socket timeout at keepAliveTimeout + 1s
	// (HTTP_SERVER_KEEP_ALIVE_TIMEOUT_BUFFER, to make the race less likely) while it
	// advertises timeout=floor(keepAliveTimeout/1s): 0 here.
	j := realtest.CloseJitter(t, s.URL(), n, idle+KeepAliveBuffer)
	t.Logf("%s T=%v (+%v buffer): %v", s.Version(), idle, KeepAliveBuffer, j)
	// libuv runs timers against the loop time cached at the start of each turn
	// (millisecond resolution), so a close may come before T+buffer counted from the
	// response's arrival: by up to 1ms typically, by a turn's length when it was long.
	realtest.AssertClosesNearTimeout(t, j, idle+KeepAliveBuffer, 5*time.Millisecond)
	if st := realtest.WaitStats(s.Stats, func(st upstreams.Stats) bool { return st.IdleCloses >= n }); st.Executed != n || st.IdleCloses != n || st.Accepted != n {
		t.Errorf("Stats = %+v, want %d executed, accepted and idle-closed", st, n)
	}
}

func BenchmarkCloseJitter(b *testing.B) {
	requireNode(b)
	const idle = 100 * time.Millisecond
	s := realtest.Start(b, Start, upstreams.Config{IdleTimeout: idle})
	realtest.BenchCloseJitter(b, s.URL(), 50, idle+KeepAliveBuffer)
}

func TestCancelledContextStopsServer(t *testing.T) {
	requireNode(t)
	realtest.AssertCancelStops(t, func(ctx context.Context) (*Server, error) {
		return Start(ctx, upstreams.Config{IdleTimeout: 5 * time.Second})
	}, true)
}

func TestBinaryMissingIsErrStart(t *testing.T) {
	realtest.AssertBinaryMissing(t, Kind, &binary, "/nonexistent/bin/node", "Debian package nodejs")
}

func TestPortTakenIsErrStartWithLogTail(t *testing.T) {
	requireNode(t)
	addr := realtest.BusyAddr(t)
	realtest.AssertStartFails(t, Start, upstreams.Config{IdleTimeout: time.Second, Addr: addr},
		"node exited before it was ready", "idlerace node upstream: listen EADDRINUSE: address already in use "+addr)
}

func TestBadConfigIsErrStartWithLogTail(t *testing.T) {
	requireNode(t)
	extraArgs = []string{"--no-such-node-flag"}
	t.Cleanup(func() { extraArgs = nil })
	realtest.AssertStartFails(t, Start, upstreams.Config{IdleTimeout: time.Second},
		"node exited before it was ready", "--no-such-node-flag")
}

func TestConfigItCannotHonourNamesTheField(t *testing.T) {
	skew, _ := chaos.ParseSkew("drift:to=-20ms")
	for _, tc := range []struct {
		cfg  upstreams.Config
		want string
	}{
		{upstreams.Config{IdleTimeout: time.Second, Skew: skew}, `upstream config: Skew "drift:from=0s,to=-20ms": node cannot honour a skew model`},
		{upstreams.Config{IdleTimeout: time.Second, Advertise: time.Second}, "upstream config: Advertise 1s: node advertises"},
		{upstreams.Config{IdleTimeout: time.Second, Advertise: -1}, "upstream config: Advertise -1ns (none): node always sends"},
		{upstreams.Config{IdleTimeout: 1500 * time.Microsecond}, "upstream config: IdleTimeout: node keepAliveTimeout takes whole milliseconds; got 1.5ms"},
		{upstreams.Config{IdleTimeout: time.Second, Faults: []chaos.Fault{chaos.Restart{Every: time.Second}}}, `upstream config: Faults ["restart:every=1s"]: node cannot inject faults`},
	} {
		realtest.AssertRefused(t, Start, tc.cfg, tc.want)
	}
}
