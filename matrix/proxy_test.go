package matrix

import (
	"context"
	"os"
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
	} else if os.Geteuid() == 0 {
		t.Errorf("view %q: as root a cell behind a proxy captures the upstream's port", c.Server.View)
	}
}
