package hyper

import (
	"context"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/idlerace/idlerace/hops"
	"github.com/idlerace/idlerace/internal/realtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func requireBuild(t *testing.T) {
	t.Helper()
	if what := Missing(); what != "" {
		if os.Getenv("IDLERACE_REQUIRE_REAL") == "1" {
			t.Fatal(what)
		}
		t.Skipf("skipped: %s", what)
	}
}

// The seed's setup in miniature: the second request of an upstream connection meets the
// upstream's close, hyper's Client had written it, so it fails (hyper replays only a
// request canceled before it was written) and the proxy answers 502, a GET as a POST.
// The request id reaches the upstream; nothing is left behind after Close.
func TestHyperProxyMeetsTheClose(t *testing.T) {
	requireBuild(t)
	up := realtest.StartOneShot(t)
	p := realtest.StartHop(t, "hyper", up.URL()).(*Proxy)
	if v := p.Version(); !strings.HasPrefix(v, "hyper/0.14.") {
		t.Errorf("Version() = %q, want hyper/0.14.x", v)
	}
	var c *realtest.Client
	got := []int{realtest.SendOn(t, &c, p.URL(), "POST", "p1"), realtest.SendOn(t, &c, p.URL(), "POST", "p2"), realtest.SendOn(t, &c, p.URL(), "GET", "g1"), realtest.SendOn(t, &c, p.URL(), "GET", "g2")}
	if c != nil {
		c.NC.Close()
	}
	pid, dir := p.Pid(), p.Dir()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	realtest.AssertGone(t, pid, dir)
	st := p.Stats()
	t.Logf("statuses %v, stats %+v, upstream answered %q", got, st, up.Answered())
	if want := []int{200, 502, 200, 502}; !slices.Equal(got, want) {
		t.Errorf("statuses %v, want %v: on the load's one connection throughout", got, want)
	}
	if st.Requests != 4 || st.BadGateway != 2 {
		t.Errorf("stats %+v, want 4 requests, 2 bad gateway", st)
	}
	if ids := up.Answered(); !slices.Equal(ids, []string{"p1", "g1"}) {
		t.Errorf("the upstream answered ids %q, want [p1 g1]: the request id passed on, no replay", ids)
	}
}

// pool_idle_timeout reaches hyper's Client: a connection idle past it is not reused, so
// the second request goes on a new connection and is answered. The pause only has to
// be longer than the option, which a slow machine makes it all the more.
func TestHyperProxyPoolIdleTimeout(t *testing.T) {
	requireBuild(t)
	up := realtest.StartOneShot(t)
	p := realtest.StartHop(t, "hyper:pool_idle_timeout=10ms", up.URL())
	var c *realtest.Client
	first := realtest.SendOn(t, &c, p.URL(), "POST", "p1")
	time.Sleep(100 * time.Millisecond)
	second := realtest.SendOn(t, &c, p.URL(), "POST", "p2")
	if c != nil {
		c.NC.Close()
	}
	if first != http.StatusOK || second != http.StatusOK {
		t.Errorf("statuses %d, %d: want 200, 200 (the idle connection expired, a new one answered)", first, second)
	}
	if ids := up.Answered(); !slices.Equal(ids, []string{"p1", "p2"}) {
		t.Errorf("the upstream answered %q, want [p1 p2]", ids)
	}
}

// The model: hyper's Client watches, keeps idle connections pool_idle_timeout (90 s by
// default) and replays nothing it wrote.
func TestHyperProxyBehaviour(t *testing.T) {
	for spec, idle := range map[string]time.Duration{"hyper": 90 * time.Second, "hyper:pool_idle_timeout=4900ms": 4900 * time.Millisecond} {
		s, err := hops.Parse(spec)
		if err != nil {
			t.Fatal(err)
		}
		if b := s.Behaviour; !b.Watch || b.MaxIdle != idle || b.Retries != 0 || b.Replays(http.MethodGet) {
			t.Errorf("%s models as %+v: want watch, MaxIdle %v, no replay", spec, b, idle)
		}
	}
}

// A bad option is one line naming it and what is accepted; a proxy that cannot bind is
// a start error with its own words.
func TestHyperProxyBadOptionsAndFailedStart(t *testing.T) {
	for spec, want := range map[string]string{
		"hyper:pool_idle_timeout=0s":          "must be > 0",
		"hyper:retry_canceled_requests=maybe": "want true or false",
		"hyper:pool_max_idle_per_host=-1":     "pool_max_idle_per_host: want a whole number from 0",
		"hyper:http2_only=true":               "(hyper takes: pool_idle_timeout, retry_canceled_requests, pool_max_idle_per_host)",
	} {
		if _, err := hops.Parse(spec); err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Parse(%q) = %v, want one line with %q", spec, err, want)
		}
	}
	requireBuild(t)
	s, _ := hops.Parse("hyper")
	_, err := s.Start(context.Background(), hops.Config{Upstream: "http://127.0.0.1:9", Addr: realtest.BusyAddr(t)})
	realtest.AssertStartError(t, err, "Address already in use")
}
