package uvicorn

import (
	"context"
	"io"
	"strings"
	"sync"
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

// available asks python once per test binary (it takes a few hundred ms).
var available = sync.OnceValue(Available)

func requireUvicorn(t testing.TB) {
	t.Helper()
	realtest.Require(t, "uvicorn (module of "+python+")", DebianPackage, available)
}

func TestServesCountsAndStopsCleanly(t *testing.T) {
	requireUvicorn(t)
	u, err := upstreams.Start(context.Background(), Kind, upstreams.Config{IdleTimeout: 5 * time.Second, Advertise: 4 * time.Second, ResponseBytes: 5})
	if err != nil {
		t.Fatal(err)
	}
	s := u.(*Server)
	if v := u.Version(); !strings.HasPrefix(v, "uvicorn/0.") || !strings.Contains(v, "CPython 3.") {
		t.Errorf("Version() = %q, want uvicorn/0.x (CPython 3.x, ...)", v)
	}
	c := realtest.Dial(t, u.URL())
	resp, body := c.RoundTrip("/", "Idlerace-Request-Id: u1")
	if resp.StatusCode != 200 || string(body) != "okoko" || resp.Close {
		t.Fatalf("response %d %q close %v, want 200 \"okoko\" keep-alive", resp.StatusCode, body, resp.Close)
	}
	if ka := resp.Header.Get("Keep-Alive"); ka != "timeout=4" {
		t.Errorf("Keep-Alive = %q, want timeout=4 from Advertise", ka)
	}
	c.RoundTrip("/", "Idlerace-Request-Id: u2")
	realtest.Dial(t, u.URL()).RoundTrip("/", "Idlerace-Request-Id: u1")
	if st := u.Stats(); st.Executed != 3 || st.Duplicates != 1 {
		t.Errorf("Stats = %+v, want 3 executed, 1 duplicate", st)
	}
	pid, dir := s.Pid(), s.Dir()
	if err := u.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := c.ReadEnd(); err != io.EOF {
		t.Errorf("idle connection after Close: %v, want EOF", err)
	}
	realtest.AssertGone(t, pid, dir)
	if st := u.Stats(); st.Executed != 3 || st.Duplicates != 1 {
		t.Errorf("Stats after Close = %+v, want the final counts", st)
	}
}

func TestClosesIdleConnectionNearTimeout(t *testing.T) {
	requireUvicorn(t)
	const idle, n = time.Second, 50
	s := realtest.Start(t, Start, upstreams.Config{IdleTimeout: idle})
	j := realtest.CloseJitter(t, s.URL(), n, idle)
	t.Logf("%s T=%v: %v", s.Version(), idle, j)
	// uvicorn arms its keep-alive timer after the response is handed to asyncio's
	// transport (loop.call_later reads the monotonic clock afresh), so closes come after
	// T; how many ms after T they land is BenchmarkCloseJitter's figure.
	realtest.AssertClosesNearTimeout(t, j, idle, time.Millisecond)
	if st := realtest.WaitStats(s.Stats, func(st upstreams.Stats) bool { return st.Executed >= n }); st.Executed != n {
		t.Errorf("Executed = %d, want %d", st.Executed, n)
	}
}

func BenchmarkCloseJitter(b *testing.B) {
	requireUvicorn(b)
	const idle = time.Second
	s := realtest.Start(b, Start, upstreams.Config{IdleTimeout: idle})
	realtest.BenchCloseJitter(b, s.URL(), 50, idle)
}

func TestCancelledContextStopsServer(t *testing.T) {
	requireUvicorn(t)
	realtest.AssertCancelStops(t, func(ctx context.Context) (*Server, error) {
		return Start(ctx, upstreams.Config{IdleTimeout: 5 * time.Second})
	}, false)
}

func TestPythonMissingIsErrStart(t *testing.T) {
	realtest.AssertBinaryMissing(t, Kind, &python, "/nonexistent/bin/python3", "Debian package python3-uvicorn")
}

func TestPortTakenIsErrStartWithLogTail(t *testing.T) {
	requireUvicorn(t)
	realtest.AssertStartFails(t, Start, upstreams.Config{IdleTimeout: time.Second, Addr: realtest.BusyAddr(t)},
		"uvicorn exited before it was ready", "address already in use")
}

func TestBadConfigIsErrStartWithLogTail(t *testing.T) {
	requireUvicorn(t)
	extraArgs = []string{"--http", "no-such-protocol"}
	t.Cleanup(func() { extraArgs = nil })
	realtest.AssertStartFails(t, Start, upstreams.Config{IdleTimeout: time.Second},
		"uvicorn exited before it was ready", "no-such-protocol", " | ")
}

func TestConfigItCannotHonourNamesTheField(t *testing.T) {
	skew, _ := chaos.ParseSkew("normal:sd=3ms")
	for _, tc := range []struct {
		cfg  upstreams.Config
		want string
	}{
		{upstreams.Config{IdleTimeout: 1500 * time.Millisecond}, "upstream config: IdleTimeout: uvicorn --timeout-keep-alive takes whole seconds; got 1.5s"},
		{upstreams.Config{IdleTimeout: 100 * time.Millisecond}, "upstream config: IdleTimeout: uvicorn --timeout-keep-alive takes whole seconds; got 100ms"},
		{upstreams.Config{IdleTimeout: time.Second, Skew: skew}, `upstream config: Skew "normal:sd=3ms": uvicorn cannot honour a skew model`},
		{upstreams.Config{IdleTimeout: time.Second, MaxRequests: 2}, "upstream config: MaxRequests 2: uvicorn has no per-connection request limit"},
		{upstreams.Config{IdleTimeout: time.Second, Faults: []chaos.Fault{chaos.SlowClose{Delay: time.Millisecond}}}, `upstream config: Faults ["slow-close:delay=1ms"]: uvicorn cannot inject faults`},
	} {
		realtest.AssertRefused(t, Start, tc.cfg, tc.want)
	}
}
