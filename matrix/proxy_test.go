package matrix

import (
	"bufio"
	"context"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/idlerace/idlerace/internal/realtest"
)

// A cell behind a reverse proxy: every request, and the load's primes, goes through
// nginx (its access log counts them), the load's own connection to it never meets a
// close (no reset or EOF, nothing unmatched), a 502 is the cell's stale failure, the
// model is nginx's pool's, and the cell's ID keeps it apart from the same cell without
// the proxy.
func TestCellBehindAProxyMeasuresTheProxysPool(t *testing.T) {
	realtest.Require(t, "nginx (/usr/sbin/nginx)", "nginx", realtest.Executable("/usr/sbin/nginx"))
	spec := CellSpec{Strategy: "blind", Upstream: "builtin", Skew: "offset:-5ms", Latency: "0", Proxy: "nginx",
		Load: "sweep:lanes=1,width=20ms,periods=30,requests=24", IdleTimeout: 200 * time.Millisecond, Method: "POST", Seed: 1}
	p, err := Prepare(spec)
	if err != nil {
		t.Fatal(err)
	}
	direct := spec
	direct.Proxy = ""
	pd, err := Prepare(direct)
	if err != nil {
		t.Fatal(err)
	}
	if p.ID() == pd.ID() {
		t.Errorf("cell ID %s is the same with and without the proxy", p.ID())
	}
	out, err := RunCell(context.Background(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := out.Cell
	if c.Proxy != "nginx" || c.Hop == nil || c.Hop.Kind != "nginx" || c.Hop.Version == "" {
		t.Fatalf("proxy %q, hop %+v: want nginx's own account", c.Proxy, c.Hop)
	}
	if c.Requests != 24 || c.Hop.Requests != c.Requests+c.Primes {
		t.Errorf("%d requests and %d primes, nginx answered %d: want every one through it; ok %d failures %+v", c.Requests, c.Primes, c.Hop.Requests, c.OK, c.Failures)
	}
	f := c.Failures
	if f.ResetWrite+f.ResetRead+f.EOF != 0 || c.Server.UnmatchedFailures != 0 || c.NewConns != 1 {
		t.Errorf("failures %+v, unmatched %d, new conns %d: the load's one connection to the proxy must never race", f, c.Server.UnmatchedFailures, c.NewConns)
	}
	if c.Stale != f.BadGateway || c.Hop.BadGateway != f.BadGateway || c.Hop.OwnErrors != 0 {
		t.Errorf("stale %d, bad_gateway %d, nginx's 502s %d, its own errors %d: want each 502 the cell's stale failure, explained by an idle close of the builtin's", c.Stale, f.BadGateway, c.Hop.BadGateway, c.Hop.OwnErrors)
	}
	// nginx watches its idle upstream connections and replays only idempotent methods:
	// a POST is never replayed, so the model predicts no retry.
	if c.PredictedRetryRate != 0 || c.Hop.UpstreamRetries != 0 {
		t.Errorf("predicted retry rate %g, nginx retried %d: want none for POST", c.PredictedRetryRate, c.Hop.UpstreamRetries)
	}
	if c.Server.IdleCloses == 0 {
		t.Errorf("the builtin closed no idle connection of nginx's in %d requests at T − 5 ms", c.Requests)
	}
	// As root the upstream's port is captured behind a proxy: nginx answers each idle
	// close it did not race with its own FIN, and the time it took is the model's window.
	if w := c.Server.Wire; w != nil {
		if c.Server.IdleCloses-c.Stale >= 2 && (w.PeerCloses == 0 || c.NotifySamples != int(w.PeerCloses) || c.NotifyLagUS <= 0) {
			t.Errorf("wire %+v, notify lag %gµs from %d: want nginx's answers to the builtin's %d idle closes timed", w, c.NotifyLagUS, c.NotifySamples, c.Server.IdleCloses)
		}
		// The upstream idles nginx's connection at least as long as the load's gap (its
		// timer starts before the answer reaches the load and stops after the request
		// crossed nginx), and the sweep asks gaps no shorter than 195 ms − 20 ms.
		if g := c.Server.ReuseGapMS; g == nil || g.Samples == 0 || g.Samples > c.Requests+c.Primes || g.Min < 175 {
			t.Errorf("upstream gaps before reuse %+v: want some, no more than the %d requests, none under the sweep's 175 ms", g, c.Requests+c.Primes)
		}
	} else if os.Geteuid() == 0 {
		t.Errorf("view %q: as root a cell behind a proxy captures the upstream's port", c.Server.View)
	}
}

// Which idle upstream connection does each proxy hand the next request? Two load
// connections leave two upstream connections idle, the second most recently; a third
// load connection's request then goes on the most recently used one for nginx, Caddy
// (Go's Transport), Apache (APR's reslist) and hyper, which is why a sweep through a
// proxy keeps one lane. HAProxy (http-reuse safe) sends a connection's first request on
// a new upstream connection, and keeps handing a load connection the upstream one it
// used before. The README's account of each proxy's choice rests on this test.
func TestWhichIdleConnectionEachProxyPicks(t *testing.T) {
	for _, tc := range []struct {
		kind, binary, pkg string
		// The upstream connection (named by the first request it carried) of the new
		// load connection's request, and of the first load connection's next one.
		third, again string
	}{
		{"nginx", "/usr/sbin/nginx", "nginx", "r2", "r2"},
		{"caddy", "/usr/bin/caddy", "caddy", "r2", "r2"},
		{"apache", "/usr/sbin/apache2", "apache2", "r2", "r2"},
		{"hyper", "/usr/bin/cargo", "cargo", "r2", "r2"},
		{"haproxy", "/usr/sbin/haproxy", "haproxy", "r3", "r1"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			realtest.Require(t, tc.kind+" ("+tc.binary+")", tc.pkg, realtest.Executable(tc.binary))
			// A proxy may put a connection back in its pool a moment after the load has
			// its response (hyper drops its pooled handle when the body is done, Go's
			// Transport at the body's EOF): r3 may then find only r1's idle. A pool that
			// prefers the older one would do so every time, so three tries tell them apart.
			var got map[string]string
			for try := 1; try <= 3; try++ {
				got = idleChoice(t, tc.kind)
				t.Logf("%s, try %d: upstream connections by request %v", tc.kind, try, got)
				if got["r1"] == "r1" && got["r2"] == "r2" && got["r3"] == tc.third && got["r4"] == tc.again {
					return
				}
			}
			t.Errorf("%s: requests went on %v; want r1 and r2 each on its own, r3 on %s's, r4 on %s's", tc.kind, got, tc.third, tc.again)
		})
	}
}

// idleChoice runs the scenario once against a fresh upstream and proxy: the upstream
// connection (named by its first request) of each request.
func idleChoice(t *testing.T, kind string) map[string]string {
	up := startHoldingUpstream(t)
	h := realtest.StartHop(t, kind, up.url())
	defer h.Close()
	a, b := realtest.Dial(t, h.URL()), realtest.Dial(t, h.URL())
	defer a.NC.Close()
	defer b.NC.Close()
	a.Send("/", "Idlerace-Request-Id: r1")
	b.Send("/", "Idlerace-Request-Id: r2")
	a.Recv() // the upstream holds r1 until r2 is in on a second connection
	close(up.answerSecond)
	b.Recv()
	c := realtest.Dial(t, h.URL())
	defer c.NC.Close()
	c.RoundTrip("/", "Idlerace-Request-Id: r3")
	a.RoundTrip("/", "Idlerace-Request-Id: r4")
	return up.conns()
}

// holdingUpstream answers every request, naming each connection after the first request
// it carried, except that r1 waits until r2 has arrived (so that the proxy has two
// upstream connections) and r2 until the test says (so that r1's went idle first).
type holdingUpstream struct {
	ln                     net.Listener
	wg                     sync.WaitGroup
	mu                     sync.Mutex
	byID                   map[string]string
	secondIn, answerSecond chan struct{}
}

func startHoldingUpstream(t *testing.T) *holdingUpstream {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &holdingUpstream{ln: ln, byID: map[string]string{}, secondIn: make(chan struct{}), answerSecond: make(chan struct{})}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				u.serve(nc)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		select {
		case <-u.answerSecond:
		default:
			close(u.answerSecond)
		}
		u.wg.Wait()
	})
	return u
}

func (u *holdingUpstream) serve(nc net.Conn) {
	defer nc.Close()
	br := bufio.NewReader(nc)
	name := ""
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		id := req.Header.Get("Idlerace-Request-Id")
		if name == "" {
			name = id
		}
		u.mu.Lock()
		if id != "" {
			u.byID[id] = name
		}
		u.mu.Unlock()
		switch id {
		case "r1":
			select {
			case <-u.secondIn:
			case <-time.After(realtest.WaitBound): // only a broken proxy gets here
			}
		case "r2":
			close(u.secondIn)
			<-u.answerSecond
		}
		if _, err := io.WriteString(nc, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
			return
		}
	}
}

func (u *holdingUpstream) url() string { return "http://" + u.ln.Addr().String() }

// conns is the upstream connection each request id came on.
func (u *holdingUpstream) conns() map[string]string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return maps.Clone(u.byID)
}
