package nginx

import (
	"context"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/idlerace/idlerace/hops"
	"github.com/idlerace/idlerace/internal/realtest"
	upnginx "github.com/idlerace/idlerace/upstreams/nginx"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func startProxy(t *testing.T, spec, upstream string) *Proxy {
	t.Helper()
	realtest.Require(t, "nginx ("+binary+")", upnginx.DebianPackage, realtest.Executable(binary))
	return realtest.StartHop(t, spec, upstream).(*Proxy)
}

// send sends method with id on c (one connection to the proxy, kept alive) and returns
// the status.
func send(t *testing.T, c *realtest.Client, method, id string) int {
	t.Helper()
	c.Method = method
	resp, _ := c.RoundTrip("/", "Idlerace-Request-Id: "+id)
	return resp.StatusCode
}

// nginx passes the request id on, and its pool sends the second request of an upstream
// connection into the upstream's close: a POST comes back 502, a GET is replayed on a
// new connection by proxy_next_upstream (its default "error timeout") and succeeds, one
// upstream try more; with proxy_next_upstream=non_idempotent the POST is replayed too,
// and with off the GET fails as well. The load's own connection to nginx stays up.
func TestNginxProxyLosesTheRaceAsConfigured(t *testing.T) {
	for _, tc := range []struct {
		spec              string
		post, get         int
		badGateway, tries int64
	}{
		{"nginx", 502, 200, 1, 1},
		// Each replay opens a connection that has served one request: the next request
		// meets its close too (p2, g1 and g2 are each replayed).
		{"nginx:proxy_next_upstream=non_idempotent", 200, 200, 0, 3},
		{"nginx:proxy_next_upstream=off", 502, 502, 2, 0},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			up := realtest.StartOneShot(t)
			p := startProxy(t, tc.spec, up.URL())
			if v := p.Version(); !strings.HasPrefix(v, "nginx/1.") {
				t.Errorf("Version() = %q, want nginx/1.x", v)
			}
			c := realtest.Dial(t, p.URL())
			// Each pair: a request that opens an upstream connection, then one that
			// meets its close.
			got := []int{send(t, c, "POST", "p1"), send(t, c, "POST", "p2"), send(t, c, "GET", "g1"), send(t, c, "GET", "g2")}
			if got[0] != 200 || got[1] != tc.post || got[2] != 200 || got[3] != tc.get {
				t.Errorf("statuses %v, want [200 %d 200 %d]", got, tc.post, tc.get)
			}
			// Counted after Close: nginx logs a request as it ends, a moment after
			// the response the client already read.
			pid, dir := p.Pid(), p.Dir()
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			realtest.AssertGone(t, pid, dir)
			st := p.Stats()
			if st.Requests != 4 || st.BadGateway != tc.badGateway || st.UpstreamTries != tc.tries {
				t.Errorf("stats %+v, want 4 requests, %d bad gateway, %d upstream tries more", st, tc.badGateway, tc.tries)
			}
			if ids := up.Answered(); len(ids) == 0 || ids[0] != "p1" {
				t.Errorf("the upstream answered ids %q: want the request id passed on (p1 first)", ids)
			}
		})
	}
}

// A bad option is one line naming it and what is accepted; a proxy that cannot bind is
// a start error with nginx's own log.
func TestNginxProxyBadOptionsAndFailedStart(t *testing.T) {
	for spec, want := range map[string]string{
		"nginx:keepalive=0":                "keepalive: want a whole number from 1",
		"nginx:keepalive_timeout=1500us":   "whole milliseconds",
		"nginx:proxy_next_upstream=always": `"always" is not one of default, off, non_idempotent`,
		"nginx:keepalive_time=1s":          "(nginx takes: keepalive, keepalive_timeout, keepalive_requests, proxy_next_upstream)",
		"traefik":                          "unknown proxy kind (known: none, ",
	} {
		if _, err := hops.Parse(spec); err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Parse(%q) = %v, want one line with %q", spec, err, want)
		}
	}
	realtest.Require(t, "nginx ("+binary+")", upnginx.DebianPackage, realtest.Executable(binary))
	s, _ := hops.Parse("nginx")
	_, err := s.Start(context.Background(), hops.Config{Upstream: "http://127.0.0.1:9", Addr: realtest.BusyAddr(t)})
	realtest.AssertStartError(t, err, "Address already in use")
}
