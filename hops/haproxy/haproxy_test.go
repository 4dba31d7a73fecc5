package haproxy

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
	realtest.Require(t, "haproxy ("+binary+")", DebianPackage, realtest.Executable(binary))
	return realtest.StartHop(t, spec, upstream).(*Proxy)
}

// HAProxy passes the request id on, and the second request of a server connection meets
// the server's close. By default (retry-on conn-failure, http-reuse safe) HAProxy
// answers no 502: it closes the load's own connection without a response, which is how
// "safe" reuse leaves the retry to a client that reused its connection (the load sees
// a stale EOF, status 0 here). With retry-on empty-response it replays the request on
// a new server connection, POST and GET alike.
func TestHAProxyMeetsTheClose(t *testing.T) {
	for _, tc := range []struct {
		spec                        string
		post, get                   int
		requests, badGateway, tries int64
	}{
		// HAProxy logs no line for a request it drops by closing the load's connection.
		{"haproxy", 0, 0, 2, 0, 0},
		{"haproxy:retry_on=empty-response", 200, 200, 4, 0, 3},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			up := realtest.StartOneShot(t)
			p := startProxy(t, tc.spec, up.URL())
			if v := p.Version(); !strings.HasPrefix(v, "HAProxy/2.") {
				t.Errorf("Version() = %q, want HAProxy/2.x", v)
			}
			var c *realtest.Client
			got := []int{realtest.SendOn(t, &c, p.URL(), "POST", "p1"), realtest.SendOn(t, &c, p.URL(), "POST", "p2"), realtest.SendOn(t, &c, p.URL(), "GET", "g1"), realtest.SendOn(t, &c, p.URL(), "GET", "g2")}
			if c != nil {
				c.NC.Close() // the load's connection ends before the proxy does, as a cell's
			}
			pid, dir := p.Pid(), p.Dir()
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			realtest.AssertGone(t, pid, dir)
			st := p.Stats()
			t.Logf("statuses %v, stats %+v, upstream answered %q", got, st, up.Answered())
			if got[0] != 200 || got[1] != tc.post || got[3] != tc.get {
				t.Errorf("statuses %v, want [200 %d _ %d]", got, tc.post, tc.get)
			}
			if st.Requests != tc.requests || st.BadGateway != tc.badGateway || st.UpstreamTries != tc.tries {
				t.Errorf("stats %+v, want %d requests, %d bad gateway, %d retries", st, tc.requests, tc.badGateway, tc.tries)
			}
			if ids := up.Answered(); len(ids) == 0 || ids[0] != "p1" {
				t.Errorf("the upstream answered ids %q: want the request id passed on (p1 first)", ids)
			}
		})
	}
}

// A bad option is one line naming it and what is accepted; a proxy that cannot bind is
// a start error with HAProxy's own words.
func TestHAProxyBadOptionsAndFailedStart(t *testing.T) {
	for spec, want := range map[string]string{
		"haproxy:http_reuse=sometimes": `"sometimes" is not one of never, safe, aggressive, always`,
		"haproxy:retry_on=404":         `"404" is not one of none, conn-failure, empty-response, all-retryable-errors`,
		"haproxy:timeout_server=0s":    "must be > 0",
		"haproxy:keepalive=1":          "(haproxy takes: http_reuse, retry_on, timeout_server)",
	} {
		if _, err := hops.Parse(spec); err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Parse(%q) = %v, want one line with %q", spec, err, want)
		}
	}
	realtest.Require(t, "haproxy ("+binary+")", DebianPackage, realtest.Executable(binary))
	s, _ := hops.Parse("haproxy")
	_, err := s.Start(context.Background(), hops.Config{Upstream: "http://127.0.0.1:9", Addr: realtest.BusyAddr(t)})
	realtest.AssertStartError(t, err)
}
