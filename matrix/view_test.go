package matrix

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/idlerace/idlerace/attack"
	"github.com/idlerace/idlerace/recommend"
	"github.com/idlerace/idlerace/results"
)

// A real server has no account of its own closes; the wire gives it one. nginx is
// configured 150 ms below what the client believes, so every request blind sends on a
// reused connection meets a closed one: each of those stale failures must be matched to
// nginx's close of the same connection, seen on the wire.
func TestWireViewMatchesEveryStaleFailureOfARealServer(t *testing.T) {
	if _, err := exec.LookPath("nginx"); err != nil {
		if _, err := os.Stat("/usr/sbin/nginx"); err != nil {
			if os.Getenv("IDLERACE_REQUIRE_REAL") == "1" {
				t.Fatal("nginx is not installed (apt-get install nginx)")
			}
			t.Skip("skipped: nginx is not installed (apt-get install nginx)")
		}
	}
	c := wireCell(t, "nginx", "offset:-150ms", 400*time.Millisecond, 4, "")
	srv := c.Server
	if srv.View != viewWire || srv.Wire == nil {
		t.Fatalf("server.view %q, wire %+v: want the wire's view of nginx", srv.View, srv.Wire)
	}
	if c.Stale == 0 {
		t.Fatalf("blind against a server that closes 150 ms before every reuse failed no request (%d requests)", c.Requests)
	}
	if srv.UnmatchedFailures != 0 {
		t.Errorf("%d of %d stale failures matched no close nginx made on the wire (drops %d)", srv.UnmatchedFailures, c.Stale, srv.Wire.Drops)
	}
	if srv.IdleCloses < c.Stale || srv.Accepted < c.NewConns {
		t.Errorf("the wire saw %d idle closes and %d connections for %d stale failures and %d new connections",
			srv.IdleCloses, srv.Accepted, c.Stale, c.NewConns)
	}
	if srv.Wire.ServerFINs+srv.Wire.ServerRSTs < srv.IdleCloses {
		t.Errorf("wire %+v: fewer FINs and RSTs than idle closes (%d)", srv.Wire, srv.IdleCloses)
	}
	// Blind writes every request of a reused connection: it reached nginx either before
	// the close (unread) or after its FIN (late, answered by a RST).
	if srv.Wire.LateRequests+srv.Wire.ClosesWithUnread < c.Stale || srv.Wire.ClosesWithUnread != srv.ClosesWithUnread {
		t.Errorf("wire %+v, %d closes with unread: fewer than the %d stale failures", *srv.Wire, srv.ClosesWithUnread, c.Stale)
	}
	// The model of a real server is its closes under this cell's load, once there are
	// enough of them (16).
	if srv.IdleCloses >= 16 && int64(srv.ModelCloses) != srv.IdleCloses {
		t.Errorf("model_closes %d: want the cell's own %d idle closes", srv.ModelCloses, srv.IdleCloses)
	}
	if sp := srv.IdleCloseMS; srv.IdleCloses > 0 && (sp == nil || sp.Samples != srv.IdleCloses) {
		t.Errorf("idle_close_ms %+v: want each of the %d idle closes the wire saw", sp, srv.IdleCloses)
	}
	if !strings.HasPrefix(srv.Version, "nginx") {
		t.Errorf("server.version %q: the server's own numbers are kept beside the wire's", srv.Version)
	}
	if w := srv.Wire; w.LagSamples < minLagSamples || w.ReadLagUS <= 0 || w.WriteLagUS <= 0 {
		t.Errorf("wire %+v beside %d reused requests: want the read and write lags of at least %d", *w, c.Reused, minLagSamples)
	}
	t.Logf("nginx on the wire: %d requests, %d stale, server %+v, wire %+v", c.Requests, c.Stale, srv, *srv.Wire)
}

// Beside a server that keeps its own account, the wire adds what only it shows, and
// agrees: every idle close builtin made is a FIN or a RST on the wire.
func TestWireSeesTheBuiltinsClosesBesideItsOwnView(t *testing.T) {
	c := wireCell(t, "builtin", "offset:-150ms", 400*time.Millisecond, 3, WireOn)
	srv := c.Server
	if srv.View != viewSelf || srv.Wire == nil {
		t.Fatalf("server.view %q, wire %+v: want builtin's own view and the wire's numbers beside it", srv.View, srv.Wire)
	}
	if c.Stale == 0 || srv.UnmatchedFailures != 0 {
		t.Fatalf("%d stale failures, %d unmatched: want blind to fail and builtin to explain each", c.Stale, srv.UnmatchedFailures)
	}
	// Every stale request reached the server either before its close (unread: Linux
	// then resets) or after its FIN (late), as the wire orders them.
	if srv.Wire.ServerFINs+srv.Wire.ServerRSTs < srv.IdleCloses || srv.Wire.LateRequests+srv.Wire.ClosesWithUnread < c.Stale {
		t.Errorf("wire %+v beside builtin's %d idle closes and %d stale failures", *srv.Wire, srv.IdleCloses, c.Stale)
	}
	// The closes are kept as idle periods, from which a run recommends: builtin's timer
	// is armed at T+s = 250 ms from its response's end and never fires before it.
	sp := srv.IdleCloseMS
	if sp == nil || sp.Samples != srv.IdleCloses || sp.Min < 250 || sp.P50 < sp.Min || sp.P99 < sp.P50 || sp.Max < sp.P99 {
		t.Fatalf("idle_close_ms %+v beside %d idle closes: want each one, none before 250 ms, in order", sp, srv.IdleCloses)
	}
	// The client's lags, off the wire: its gap begins after the response left the
	// server, and its request leaves after its checkout, so both are above 0.
	if w := srv.Wire; w.LagSamples < minLagSamples || w.ReadLagUS <= 0 || w.WriteLagUS <= 0 {
		t.Errorf("wire %+v beside %d reused requests: want the read and write lags of at least %d", *w, c.Reused, minLagSamples)
	}
	servers := recommend.FromRun([]results.Cell{c})
	if len(servers) != 1 || servers[0].Closes != *sp || len(servers[0].Recommendations) == 0 {
		t.Fatalf("recommendations from the cell: %+v", servers)
	}
	for _, r := range servers[0].Recommendations {
		if r.ValueMS >= sp.Min {
			t.Errorf("%s: %s (%g ms) is not below the earliest close %g ms", r.Client, r.Setting, r.ValueMS, sp.Min)
		}
	}
}

// A server that resets idle connections is seen doing so, and said: builtin close=rst.
func TestWireSeesAServerThatClosesByRST(t *testing.T) {
	c := wireCell(t, "builtin:close=rst", "offset:-50ms", 200*time.Millisecond, 3, WireOn)
	srv := c.Server
	if srv.Wire == nil || srv.IdleCloses == 0 || srv.Wire.ServerRSTs < srv.IdleCloses {
		t.Fatalf("close=rst: %d idle closes, wire %+v: want every idle close a RST", srv.IdleCloses, srv.Wire)
	}
	found := false
	for _, f := range results.Findings([]results.Cell{c}) {
		found = found || strings.Contains(f.What, "closes by RST instead of FIN")
	}
	if !found {
		t.Errorf("findings %+v: want the RST closes said", results.Findings([]results.Cell{c}))
	}
}

// By default the in-process builtin, which keeps its own account, is not captured (the
// capture costs CPU at high rates) unless its sweep is narrow, and --wire off leaves a
// real server without a view, saying so.
func TestWireModes(t *testing.T) {
	const constant = "constant:rate=50/s,duration=200ms"
	cell := func(upstream, load, mode string) *results.Cell {
		t.Helper()
		p, err := Prepare(CellSpec{Strategy: "blind", Upstream: upstream, Skew: "none", Latency: "0",
			Load: load, IdleTimeout: 100 * time.Millisecond, Seed: 1, Wire: mode})
		if err != nil {
			t.Fatal(err)
		}
		out, err := RunCell(context.Background(), p, nil)
		if err != nil {
			t.Fatal(err)
		}
		return &out.Cell
	}
	if c := cell("builtin", constant, ""); c.Server.View != viewSelf || c.Server.Wire != nil {
		t.Errorf("builtin, --wire auto: view %q, wire %+v: want self and no capture", c.Server.View, c.Server.Wire)
	}
	// A sweep within 3 ms of the close: the model needs the client's lags off the wire.
	if c := cell("builtin", "sweep:lanes=2,width=3ms,periods=3", ""); c.Server.View != viewSelf || (c.Server.Wire == nil) == (os.Geteuid() == 0) {
		t.Errorf("builtin, narrow sweep, --wire auto: view %q, wire %+v: want self with the capture beside it (as root; without, none)", c.Server.View, c.Server.Wire)
	}
	// gonet keeps its own account in a process of its own: the wire adds the client's
	// lags and its stop-reading lead.
	if c := cell("gonet", constant, ""); c.Server.View != viewSelf || (c.Server.Wire == nil) == (os.Geteuid() == 0) {
		t.Errorf("gonet, --wire auto: view %q, wire %+v: want self with the capture beside it (as root; without, none)", c.Server.View, c.Server.Wire)
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err != nil {
		t.Skip("skipped: nginx is not installed (apt-get install nginx)")
	}
	if c := cell("nginx", constant, WireOff); c.Server.View != "none (--wire off: no packet capture)" || c.Server.Wire != nil || c.Server.UnmatchedFailures != -1 {
		t.Errorf("nginx, --wire off: view %q, wire %+v, unmatched %d", c.Server.View, c.Server.Wire, c.Server.UnmatchedFailures)
	}
}

// auto captures the builtin where a sweep lies within narrowSweep of the close, whether
// given by width or by focus, and not in the default run's ±T/4 nor in loads that do not
// sweep.
func TestNarrowLoad(t *testing.T) {
	for _, c := range []struct {
		load string
		t    time.Duration
		want bool
	}{
		{"sweep:lanes=48,width=3ms,periods=20", time.Second, true},
		{"sweep:lanes=256,focus=2ms,periods=30", 100 * time.Millisecond, true},
		{"sweep:lanes=4,width=19ms", time.Second, true},
		{"sweep:lanes=4,width=20ms", time.Second, false},
		{DefaultLoad, DefaultIdleTimeout, false}, // ±25 ms
		{"sweep:lanes=4", 5 * time.Second, false},
		{"constant:rate=50/s,duration=200ms", 10 * time.Millisecond, false},
	} {
		load, err := attack.ParseLoad(c.load)
		if err != nil {
			t.Fatal(err)
		}
		if got := narrowLoad(load, c.t); got != c.want {
			t.Errorf("%s at T = %s: narrow %v, want %v", c.load, c.t, got, c.want)
		}
		if got, _ := (capturing{mode: WireAuto, selfView: true, narrow: c.want}).want(); got != c.want {
			t.Errorf("%s: an in-process server's capture %v, want %v", c.load, got, c.want)
		}
	}
}

// wireCell runs one blind sweep cell that captures its server (as root; it skips
// otherwise).
func wireCell(t *testing.T, upstream, skew string, idle time.Duration, periods int, mode string) results.Cell {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: capturing needs CAP_NET_RAW (run as root)")
	}
	p, err := Prepare(CellSpec{Strategy: "blind", Upstream: upstream, Skew: skew, Latency: "0",
		Load: fmt.Sprintf("sweep:lanes=8,periods=%d", periods), IdleTimeout: idle, Method: "GET", Seed: 1, Wire: mode})
	if err != nil {
		t.Fatal(err)
	}
	out, err := RunCell(context.Background(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out.Cell
}

// Every request the wire sees meet a closed connection is accounted for: the caller saw
// it fail (stale), or idlerace's own pool replayed it (retries); no Go strategy retries
// behind idlerace's back, so hidden_retries is 0 for each. GET, so that net/http's own
// replay of idempotent requests is in play (its watcher usually sees the FIN first).
func TestWireAccountsForEveryRequestThatMetAClosedConnection(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: capturing needs CAP_NET_RAW (run as root)")
	}
	for _, strategy := range []string{"blind", "retry-only", "stdlib"} {
		p, err := Prepare(CellSpec{Strategy: strategy, Upstream: "builtin", Skew: "offset:-50ms", Latency: "0",
			Load: "sweep:lanes=8,periods=3", IdleTimeout: 200 * time.Millisecond, Method: "GET", Seed: 1, Wire: WireOn})
		if err != nil {
			t.Fatal(err)
		}
		out, err := RunCell(context.Background(), p, nil)
		if err != nil {
			t.Fatal(err)
		}
		c, w := out.Cell, out.Cell.Server.Wire
		if w == nil {
			t.Fatalf("%s: no wire view with --wire on", strategy)
		}
		// blind and retry-only reuse without looking: they must have met closes.
		if strategy != "stdlib" && w.LateRequests+w.ClosesWithUnread == 0 {
			t.Fatalf("%s: wire %+v: want requests that met a closed connection", strategy, w)
		}
		if c.HiddenRetries != 0 || w.LateRequests+w.ClosesWithUnread > c.Stale+c.Retries {
			t.Errorf("%s: %d late and %d unread on the wire, %d stale, %d retries: %d hidden", strategy,
				w.LateRequests, w.ClosesWithUnread, c.Stale, c.Retries, c.HiddenRetries)
		}
	}
}

// Behind a proxy the wire times the proxy's answer to an idle close at the upstream:
// the FIN's trip to the proxy and the proxy's FIN's trip back are taken off, and only a
// pool that watches gets the window.
func TestPeerNoticeTakesOffThePath(t *testing.T) {
	c := results.Cell{Server: results.Server{Wire: &results.Wire{PeerCloses: 5, PeerCloseLagUS: 4200}}}
	if lag, ok := peerNotice(&c, true, 2*time.Millisecond); !ok || lag != 200*time.Microsecond || c.NotifyLagUS != 200 || c.NotifySamples != 5 {
		t.Errorf("lag %v (%v), cell %gµs from %d: want 200µs from 5", lag, ok, c.NotifyLagUS, c.NotifySamples)
	}
	if _, ok := peerNotice(&c, false, 0); ok {
		t.Error("a pool that does not watch got a window")
	}
}

// Inside netem's namespace the wire is the namespace's loopback, captured from inside:
// builtin's every idle close is a FIN or a RST there, and every stale request reached
// it before the close (unread) or after its FIN (late). netem:0 is the namespace
// without a qdisc, which any kernel has.
func TestWireSeesTheServerInsideTheNetemNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: a namespace and a capture need root")
	}
	p, err := Prepare(CellSpec{Strategy: "blind", Upstream: "builtin", Skew: "offset:-150ms", Latency: "netem:0",
		Load: "sweep:lanes=8,periods=3", IdleTimeout: 400 * time.Millisecond, Method: "GET", Seed: 1, Wire: WireOn})
	if err != nil {
		t.Fatal(err)
	}
	out, err := RunCell(context.Background(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := out.Cell
	srv := c.Server
	if srv.View != viewSelf || srv.Wire == nil || srv.Wire.Segments == 0 {
		t.Fatalf("server.view %q, wire %+v: want builtin's own view and the namespace's wire beside it", srv.View, srv.Wire)
	}
	if c.Stale == 0 || srv.UnmatchedFailures != 0 {
		t.Fatalf("%d stale failures, %d unmatched: want blind to fail and builtin to explain each", c.Stale, srv.UnmatchedFailures)
	}
	if w := srv.Wire; w.ServerFINs+w.ServerRSTs < srv.IdleCloses || w.LateRequests+w.ClosesWithUnread < c.Stale || w.LagSamples < minLagSamples {
		t.Errorf("wire %+v beside builtin's %d idle closes, %d stale failures and %d reused requests", *w, srv.IdleCloses, c.Stale, c.Reused)
	}
}
