package caddy

import (
	"context"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/idlerace/idlerace/hops"
	"github.com/idlerace/idlerace/internal/realtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func startProxy(t *testing.T, spec, upstream string) *Proxy {
	t.Helper()
	realtest.Require(t, "caddy ("+binary+")", DebianPackage, realtest.Executable(binary))
	return realtest.StartHop(t, spec, upstream).(*Proxy)
}

// Caddy passes the request id on, and the second request of an upstream connection
// meets the upstream's close: Go's Transport under it replays the GET (idempotent) on a
// new connection, unseen, and answers the POST 502.
func TestCaddyMeetsTheClose(t *testing.T) {
	up := realtest.StartOneShot(t)
	p := startProxy(t, "caddy", up.URL())
	if v := p.Version(); !strings.HasPrefix(v, "Caddy/2.") {
		t.Errorf("Version() = %q, want Caddy/2.x", v)
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
	if got[0] != 200 || got[1] != 502 || got[2] != 200 || got[3] != 200 {
		t.Errorf("statuses %v, want [200 502 200 200]", got)
	}
	if st.Requests != 4 || st.BadGateway != 1 {
		t.Errorf("stats %+v, want 4 requests, 1 bad gateway", st)
	}
	if ids := up.Answered(); len(ids) < 3 || ids[0] != "p1" || ids[len(ids)-1] != "g2" {
		t.Errorf("the upstream answered ids %q: want the request id passed on, g2 replayed", ids)
	}
}

// A bad option is one line naming it and what is accepted; a proxy that cannot bind is
// a start error with Caddy's own words.
func TestCaddyBadOptionsAndFailedStart(t *testing.T) {
	for spec, want := range map[string]string{
		"caddy:keepalive=0s":            "must be > 0",
		"caddy:keepalive_idle_conns=-1": "keepalive_idle_conns: want a whole number from 0",
		"caddy:lb_policy=first":         "(caddy takes: keepalive, keepalive_idle_conns)",
	} {
		if _, err := hops.Parse(spec); err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Parse(%q) = %v, want one line with %q", spec, err, want)
		}
	}
	realtest.Require(t, "caddy ("+binary+")", DebianPackage, realtest.Executable(binary))
	s, _ := hops.Parse("caddy")
	_, err := s.Start(context.Background(), hops.Config{Upstream: "http://127.0.0.1:9", Addr: realtest.BusyAddr(t)})
	realtest.AssertStartError(t, err)
}
