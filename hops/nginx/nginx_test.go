package nginx

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/idlerace/idlerace/hops"
	"github.com/idlerace/idlerace/internal/realtest"
	upnginx "github.com/idlerace/idlerace/upstreams/nginx"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// oneShotUpstream answers the first request of every connection and closes the
// connection when the second arrives, unanswered: the upstream's idle close as the
// proxy's pool meets it, every time. It records each request's Idlerace-Request-Id.
type oneShotUpstream struct {
	ln  net.Listener
	wg  sync.WaitGroup
	mu  sync.Mutex
	ids []string
}

func startOneShot(t *testing.T) *oneShotUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &oneShotUpstream{ln: ln}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for n := 0; ; n++ {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					if n == 1 {
						return // the second request meets the close
					}
					u.mu.Lock()
					u.ids = append(u.ids, req.Header.Get("Idlerace-Request-Id"))
					u.mu.Unlock()
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); u.wg.Wait() })
	return u
}

func (u *oneShotUpstream) answered() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.ids...)
}

func startProxy(t *testing.T, spec, upstream string) *Proxy {
	t.Helper()
	realtest.Require(t, "nginx ("+binary+")", upnginx.DebianPackage, realtest.Executable(binary))
	s, err := hops.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	h, err := s.Start(context.Background(), hops.Config{Upstream: upstream})
	if err != nil {
		t.Fatal(err)
	}
	p := h.(*Proxy)
	t.Cleanup(func() { p.Close() })
	return p
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
			up := startOneShot(t)
			p := startProxy(t, tc.spec, "http://"+up.ln.Addr().String())
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
			if ids := up.answered(); len(ids) == 0 || ids[0] != "p1" {
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
		"haproxy":                          "unknown proxy kind (known: none, nginx",
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
