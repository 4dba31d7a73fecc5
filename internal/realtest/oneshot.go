package realtest

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"

	"github.com/idlerace/idlerace/hops"
)

// OneShotUpstream answers the first request of every connection and closes the
// connection when the second arrives, unanswered: the upstream's idle close as the
// proxy's pool meets it, every time. It records each request's Idlerace-Request-Id.
type OneShotUpstream struct {
	ln  net.Listener
	wg  sync.WaitGroup
	mu  sync.Mutex
	ids []string
}

func StartOneShot(t testing.TB) *OneShotUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &OneShotUpstream{ln: ln}
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

// Answered lists the ids of the requests it answered, in order.
func (u *OneShotUpstream) Answered() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.ids...)
}

// URL is "http://127.0.0.1:PORT".
func (u *OneShotUpstream) URL() string { return "http://" + u.ln.Addr().String() }

// StartHop parses spec and starts the hop in front of upstream; it stops at cleanup.
func StartHop(t testing.TB, spec, upstream string) hops.Hop {
	t.Helper()
	s, err := hops.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	h, err := s.Start(context.Background(), hops.Config{Upstream: upstream})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// SendOn sends method with Idlerace-Request-Id id on *c (dialled to url first when nil)
// and returns the status, or 0 when the server ended the connection instead of
// answering (*c is then nil, and the next call dials anew).
func SendOn(t testing.TB, c **Client, url, method, id string) int {
	t.Helper()
	if *c == nil {
		*c = Dial(t, url)
	}
	(*c).Method = method
	resp, _, err := (*c).TryRoundTrip("/", "Idlerace-Request-Id: "+id)
	if err != nil {
		(*c).NC.Close()
		*c = nil
		return 0
	}
	return resp.StatusCode
}
