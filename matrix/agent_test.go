package matrix

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/idlerace/idlerace/internal/agentproc"
)

// A client kind is a strategy like any other: a cell of each (Node's http.Agent and
// fetch, Python requests, aiohttp and httpx, libcurl, the JDK's HttpClient, hyper 0.14,
// each in its own process) measures the race against a server that sends no Keep-Alive hint, says which library and version it ran, matches its stale failures to
// the server's closes, and leaves no agent process behind.
func TestClientKindCellRunsTheRealLibrary(t *testing.T) {
	for _, k := range []struct{ kind, runtime, install, version string }{
		{"node-agent", "node", "nodejs", "v"},
		{"requests", "/usr/bin/python3", "python3-requests", "2."},
		{"hyper", "/usr/bin/cargo", "cargo librust-hyper-dev librust-tokio-dev", "0.14"},
		{"aiohttp", "/usr/bin/python3", "python3-aiohttp", "3."},
		{"httpx", "/usr/bin/python3", "python3-httpx", "0."},
		{"curl", "/usr/bin/python3", "python3-pycurl", "7."},
		{"undici", "node", "nodejs", "6."},
		{"java", "java", "openjdk-17-jdk-headless libjackson2-databind-java", "17."},
	} {
		t.Run(k.kind, func(t *testing.T) {
			if _, err := exec.LookPath(k.runtime); err != nil {
				if os.Getenv("IDLERACE_REQUIRE_REAL") == "1" {
					t.Fatalf("%s is not installed (apt-get install %s)", k.runtime, k.install)
				}
				t.Skipf("skipped: %s is not installed (apt-get install %s)", k.runtime, k.install)
			}
			p, err := Prepare(CellSpec{Strategy: k.kind, Upstream: "builtin:advertise=off", Skew: "offset:-20ms", Latency: "0",
				Load: "sweep:lanes=8,requests=48,duration=2m", IdleTimeout: 200 * time.Millisecond, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			out, err := RunCell(context.Background(), p, nil)
			if err != nil {
				t.Fatal(err)
			}
			c := out.Cell
			if c.Client == nil || c.Client.Kind != k.kind || !strings.HasPrefix(c.Client.Version, k.version) {
				t.Errorf("cell.client %+v: want %s with its library's version", c.Client, k.kind)
			}
			if c.Requests == 0 || c.NewConns == 0 || c.Server.UnmatchedFailures != 0 {
				t.Errorf("%d requests, %d new connections, %d unmatched: want requests on connections the server explains", c.Requests, c.NewConns, c.Server.UnmatchedFailures)
			}
			// Its lanes reuse their connections (no hint, so no margin): fewer new
			// connections than requests. The cell is bounded by its count of requests
			// (the sweep spreads their gaps evenly, a third of them before the close);
			// its duration only catches a hang, so a slow machine sends them all too.
			if c.NewConns >= c.Requests+c.Primes {
				t.Errorf("%d new connections for %d requests and %d primes: the agent's lanes never reused", c.NewConns, c.Requests, c.Primes)
			}
			if left := agentproc.Children(os.Getpid()); len(left) > 0 {
				t.Errorf("agent processes left after the cell: %v", left)
			}
		})
	}
}
