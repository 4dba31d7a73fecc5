package apache

import (
	"context"
	"fmt"
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

func startProxy(t *testing.T, spec, upstream string) *Proxy {
	t.Helper()
	realtest.Require(t, "apache2 ("+binary+")", DebianPackage, realtest.Executable(binary))
	return realtest.StartHop(t, spec, upstream).(*Proxy)
}

// Apache passes the request id on, and the second request of a backend connection meets
// the upstream's close (as the request arrives, so Apache's read probe cannot see it).
// The load has two connections, a then b: a sends p1; b's first request p2 takes the
// pooled backend connection by default and gets the 502, since it is the first of b's
// connection; b's g1 takes a new one; b's g2 meets that one's close and Apache closes b
// unanswered (status 0), for the client to retry (its log says 502 with nothing sent;
// not counted as one). With
// proxy-initial-not-pooled the first request of each of the load's connections takes a
// new backend connection, so p2 and, once b is redialled, g2 are answered, and g1, b's
// second, meets the close; with disablereuse every request is answered.
func TestApacheMeetsTheClose(t *testing.T) {
	for _, tc := range []struct {
		spec                         string
		want                         [4]int
		requests, badGateway, answer int64
	}{
		{"apache", [4]int{200, 502, 200, 0}, 4, 1, 2},
		{"apache:proxy_initial_not_pooled=on", [4]int{200, 200, 0, 200}, 4, 0, 3},
		{"apache:disablereuse=on", [4]int{200, 200, 200, 200}, 4, 0, 4},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			up := realtest.StartOneShot(t)
			p := startProxy(t, tc.spec, up.URL())
			if v := p.Version(); !strings.HasPrefix(v, "Apache/2.4") {
				t.Errorf("Version() = %q, want Apache/2.4.x", v)
			}
			var a, b *realtest.Client
			got := [4]int{realtest.SendOn(t, &a, p.URL(), "POST", "p1"), realtest.SendOn(t, &b, p.URL(), "POST", "p2"), realtest.SendOn(t, &b, p.URL(), "GET", "g1"), realtest.SendOn(t, &b, p.URL(), "GET", "g2")}
			for _, c := range []*realtest.Client{a, b} {
				if c != nil {
					c.NC.Close() // the load's connections end before the proxy does, as a cell's
				}
			}
			pid, dir := p.Pid(), p.Dir()
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			realtest.AssertGone(t, pid, dir)
			st := p.Stats()
			t.Logf("statuses %v, stats %+v, upstream answered %q", got, st, up.Answered())
			if got != tc.want {
				t.Errorf("statuses %v, want %v", got, tc.want)
			}
			if st.Requests != tc.requests || st.BadGateway != tc.badGateway || st.UpstreamTries != 0 {
				t.Errorf("stats %+v, want %d requests, %d bad gateway, no retries", st, tc.requests, tc.badGateway)
			}
			if ids := up.Answered(); int64(len(ids)) != tc.answer || ids[0] != "p1" {
				t.Errorf("the upstream answered ids %q: want %d, the request id passed on (p1 first)", ids, tc.answer)
			}
		})
	}
}

// With ttl, a backend connection idle longer is not used again: p2, on the load's same
// connection 1.1 s after p1, takes a new one and is answered (without ttl it meets the
// close, as above). The wait is a lower bound: a slower machine only idles it longer.
func TestApacheTTL(t *testing.T) {
	up := realtest.StartOneShot(t)
	p := startProxy(t, "apache:ttl=1s", up.URL())
	var c *realtest.Client
	first := realtest.SendOn(t, &c, p.URL(), "POST", "p1")
	time.Sleep(1100 * time.Millisecond)
	second := realtest.SendOn(t, &c, p.URL(), "POST", "p2")
	if c != nil {
		c.NC.Close()
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if first != 200 || second != 200 || len(up.Answered()) != 2 {
		t.Errorf("statuses %d, %d, upstream answered %q: want both answered, p2 on a new backend connection", first, second, up.Answered())
	}
}

// ttl and disablereuse reach the model: a read probe at any age, no reuse past ttl,
// none at all with disablereuse.
func TestApacheBehaviour(t *testing.T) {
	for spec, want := range map[string]string{
		"apache":                 "probe true, max idle 0s",
		"apache:ttl=4s":          "probe true, max idle 4s",
		"apache:disablereuse=on": "probe true, max idle 1ns",
	} {
		s, err := hops.Parse(spec)
		if err != nil {
			t.Fatal(err)
		}
		b := s.Behaviour
		if got := fmt.Sprintf("probe %v, max idle %v", b.Probe, b.MaxIdle); got != want || b.Retries != 0 || b.Watch {
			t.Errorf("%s: %s, retries %d, watch %v; want %s, no retry, no watch", spec, got, b.Retries, b.Watch, want)
		}
	}
}

// A bad option is one line naming it and what is accepted; a proxy that cannot bind is
// a start error with Apache's own words.
func TestApacheBadOptionsAndFailedStart(t *testing.T) {
	for spec, want := range map[string]string{
		"apache:ttl=1500ms":                 "ttl: Apache takes whole seconds, got 1.5s",
		"apache:disablereuse=yes":           `"yes" is not one of off, on`,
		"apache:proxy_initial_not_pooled=1": `"1" is not one of off, on`,
		"apache:keepalive=on":               "(apache takes: ttl, disablereuse, proxy_initial_not_pooled)",
	} {
		if _, err := hops.Parse(spec); err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Parse(%q) = %v, want one line with %q", spec, err, want)
		}
	}
	realtest.Require(t, "apache2 ("+binary+")", DebianPackage, realtest.Executable(binary))
	s, _ := hops.Parse("apache")
	_, err := s.Start(context.Background(), hops.Config{Upstream: "http://127.0.0.1:9", Addr: realtest.BusyAddr(t)})
	realtest.AssertStartError(t, err)
}
