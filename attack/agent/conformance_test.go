package agent

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/idlerace/idlerace/attack/pool"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// registered is every registered client kind, by name.
func registered() []*Kind {
	var out []*Kind
	for _, k := range kinds {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// laneOf returns a lane of kind k, skipping when its runtime is missing (failing under
// IDLERACE_REQUIRE_REAL=1).
func laneOf(t *testing.T, k *Kind) (*clientKind, pool.Timed) {
	t.Helper()
	if what := k.Missing(); what != "" {
		if os.Getenv("IDLERACE_REQUIRE_REAL") == "1" {
			t.Fatalf("%s: %s", k.Name, what)
		}
		t.Skipf("skipped: %s", what)
	}
	ck := &clientKind{kind: k}
	return ck, ck.NewTransport(pool.Config{RequestTimeout: 5 * time.Second}).(pool.Timed)
}

// Every agent speaks the protocol: it says hello with its library's version, sends a
// request no earlier than told (the gap timed in its own process), reports the
// response, reuses its lane's connection for the next request and says so with the
// same local port, reports a server's close as a failure classified from its own
// error, and exits when its lanes close.
func TestAgentConformance(t *testing.T) {
	for _, k := range registered() {
		t.Run(k.Name, func(t *testing.T) {
			ck, tr := laneOf(t, k)
			var closeNext bool
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("X-Probe") != "yes" {
					http.Error(w, "no header", http.StatusBadRequest)
					return
				}
				b, _ := io.ReadAll(r.Body)
				_, _ = w.Write(b)
			}))
			defer srv.Close()
			req := func() *http.Request {
				r, _ := http.NewRequest(http.MethodPost, srv.URL+"/", strings.NewReader("hello"))
				r.Header.Set("X-Probe", "yes")
				return r
			}
			ctx := context.Background()
			first := tr.SendAt(ctx, req(), time.Time{})
			if first.Err != nil || first.Status != 200 || first.BytesIn != 5 || first.LocalPort == 0 || first.Reused {
				t.Fatalf("first request: %+v: want 200, the 5 bytes echoed, a local port, a new connection", first)
			}
			p, _ := ck.process()
			if p.hello.Kind != k.Name || p.hello.Version == "" || p.hello.Library == "" {
				t.Errorf("hello %+v: want the kind, its library and its version", p.hello)
			}
			at := first.End.Add(50 * time.Millisecond)
			second := tr.SendAt(ctx, req(), at)
			if second.Err != nil || second.Status != 200 {
				t.Fatalf("second request: %+v", second)
			}
			if second.Start.Before(at) {
				t.Errorf("sent %v before the instant it was given", at.Sub(second.Start))
			}
			if !second.Reused || second.LocalPort != first.LocalPort {
				t.Errorf("second request reused %v on port %d, want the lane's connection (port %d) again", second.Reused, second.LocalPort, first.LocalPort)
			}
			// The server closes the idle connection; the agent's next request on it
			// either sees the close first (a new connection) or fails, classified.
			srv.CloseClientConnections()
			_ = closeNext
			third := tr.SendAt(ctx, req(), time.Time{})
			switch {
			case third.Err == nil && third.Reused:
				t.Errorf("third request succeeded on a reused connection the server had closed: %+v", third)
			case third.Err != nil && third.Class == "":
				t.Errorf("failure %v without a class", third.Err)
			}
			tr.CloseIdleConnections()
			select {
			case <-p.exited:
			case <-time.After(time.Minute):
				t.Fatal("the agent did not exit after its last lane closed")
			}
		})
	}
}

// A request into a connection the server has just closed fails with the library's own
// error, classified, or, for a library that declares a replay of a POST, is
// replayed on a new connection without the caller seeing a failure: a raw listener
// answers one request, then closes without reading the next, and answers every request
// on the connections after.
func TestAgentClassifiesAClosedConnection(t *testing.T) {
	for _, k := range registered() {
		t.Run(k.Name, func(t *testing.T) {
			_, tr := laneOf(t, k)
			defer tr.CloseIdleConnections()
			url, replayed := closingServer(t)
			r1, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("a"))
			first := tr.SendAt(context.Background(), r1, time.Time{})
			if first.Err != nil {
				t.Fatalf("first: %+v", first)
			}
			r2, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("b"))
			second := tr.SendAt(context.Background(), r2, time.Time{})
			if k.Behaviour.Replays(http.MethodPost) {
				if second.Err != nil || second.Reused {
					t.Fatalf("second: %+v: want the library's own replay to succeed on a new connection", second)
				}
				if body := <-replayed; body != "b" {
					t.Errorf("the replay carried %q, want the second request's body", body)
				}
				return
			}
			if second.Err == nil || !second.Reused {
				t.Fatalf("second: %+v: want a failure on the reused connection", second)
			}
			t.Logf("%s on a closed connection: class %s, error %q", k.Name, second.Class, second.Err)
			if second.Class != pool.EOF && second.Class != pool.ResetRead {
				t.Errorf("class %q (%v): want eof or reset_read", second.Class, second.Err)
			}
			if !second.Class.Stale(second.Reused) {
				t.Errorf("class %q on a reused connection does not count as stale", second.Class)
			}
		})
	}
}

// closingServer is a raw listener whose first connection answers one request and then
// closes without answering the next (closeAfterOne), and whose later connections answer
// every request; replayed gets the bodies those read. It stops when the test ends.
func closingServer(t *testing.T) (url string, replayed <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bodies := make(chan string, 4)
	served := make(chan struct{})
	go func() {
		defer close(served)
		for n := 0; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if n == 0 {
				closeAfterOne(c)
				continue
			}
			go answerAll(c, bodies)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-served })
	return "http://" + ln.Addr().String() + "/", bodies
}

// closeAfterOne answers c's first request, then waits for the second's first byte and
// closes without answering: a FIN after the request arrived, before any response byte.
func closeAfterOne(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, req.Body)
	_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	_, _ = br.Peek(1)
}

// answerAll answers every request on c until the client closes it, sending each body
// read to bodies.
func answerAll(c net.Conn, bodies chan<- string) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		b, _ := io.ReadAll(req.Body)
		select {
		case bodies <- string(b):
		default:
		}
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
			return
		}
	}
}

// An agent that stops answering is killed after a bound, and the request it held fails,
// classified, rather than hanging the cell: a fake agent that says hello and then
// reads forever.
func TestHungAgentIsKilledAndItsRequestClassified(t *testing.T) {
	defer func(s time.Duration) { answerSlack = s }(answerSlack)
	answerSlack = 100 * time.Millisecond
	k := &Kind{Name: "hung", Argv: []string{"sh", "-c", `read line; echo '{"op":"hello","protocol":1,"kind":"hung","library":"sh","version":"1"}'; while read line; do :; done`}}
	ck := &clientKind{kind: k}
	tr := ck.NewTransport(pool.Config{RequestTimeout: 100 * time.Millisecond}).(pool.Timed)
	r, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:9/", nil)
	res := tr.SendAt(context.Background(), r, time.Time{})
	if res.Err == nil || res.Class != pool.Other || !strings.Contains(res.Err.Error(), "killed") {
		t.Fatalf("a hung agent's request: %+v: want a failure saying it was killed, class other", res)
	}
	p, _ := ck.process()
	select {
	case <-p.exited:
	case <-time.After(time.Minute):
		t.Fatal("the hung agent was not killed")
	}
	tr.CloseIdleConnections()
}

// A kind's idle-timeout option reaches its library: a lane reuses its connection after a
// short gap, then, after a gap well past the option's value (and well inside the
// library's default), opens a new one.
func TestIdleOptionReachesTheLibrary(t *testing.T) {
	for _, c := range []struct {
		spec        string
		short, long time.Duration
	}{
		{"undici:keep_alive_timeout=200ms", 20 * time.Millisecond, 600 * time.Millisecond},
		{"httpx:keepalive_expiry=200ms", 20 * time.Millisecond, 600 * time.Millisecond},
		{"aiohttp:keepalive_timeout=200ms", 20 * time.Millisecond, 600 * time.Millisecond},
		{"curl:maxage_conn=1s", 20 * time.Millisecond, 2500 * time.Millisecond},
		// The JDK's expiry is the return time truncated to whole seconds plus the
		// keepalive (ConnectionPool.ExpiryList.add: now.truncatedTo(ChronoUnit.SECONDS)
		// .plus(keepAlive, SECONDS)), so a 1 s keepalive leaves a pooled connection
		// anywhere from 0 to 1 s of life and the 20 ms gap met an expired one in CI;
		// 2 s leaves it 1 to 2 s. And it purges from its selector thread's timer, not
		// at checkout: beside a busy flake hunt a connection 2.5 s idle past a 1 s
		// keepalive was still handed out; 7 s is past 2 s and the selector's own 3 s
		// wake-up.
		{"java:keepalive_timeout=2s", 20 * time.Millisecond, 7 * time.Second},
		{"hyper:pool_idle_timeout=200ms", 20 * time.Millisecond, 600 * time.Millisecond},
	} {
		t.Run(c.spec, func(t *testing.T) {
			s, err := pool.Parse(c.spec)
			if err != nil {
				t.Fatal(err)
			}
			ck := s.Parts[0].(*clientKind)
			if what := ck.kind.Missing(); what != "" {
				if os.Getenv("IDLERACE_REQUIRE_REAL") == "1" {
					t.Fatalf("%s: %s", ck.kind.Name, what)
				}
				t.Skipf("skipped: %s", what)
			}
			tr := ck.NewTransport(pool.Config{RequestTimeout: 5 * time.Second}).(pool.Timed)
			defer tr.CloseIdleConnections()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
			defer srv.Close()
			send := func(at time.Time) pool.TimedResult {
				r, _ := http.NewRequest(http.MethodPost, srv.URL+"/", strings.NewReader("x"))
				res := tr.SendAt(context.Background(), r, at)
				if res.Err != nil {
					t.Fatalf("%+v", res)
				}
				return res
			}
			first := send(time.Time{})
			second := send(first.End.Add(c.short))
			if !second.Reused {
				t.Fatalf("after %v: a new connection, want the lane's one reused", c.short)
			}
			if third := send(second.End.Add(c.long)); third.Reused {
				t.Errorf("after %v idle, past %s: the connection was reused", c.long, c.spec)
			}
		})
	}
}

// A retry in front of a client kind (the seed's third remedy: hyper+retry-only) replays
// the stale failure the library hands back, on a new connection: the caller sees the
// replay's success, the lane counts one retry, and the server gets the request again.
func TestRetryInFrontOfAClientKindReplaysItsStaleFailure(t *testing.T) {
	s, err := pool.Parse("hyper+retry-only")
	if err != nil {
		t.Fatal(err)
	}
	if what := hyperAgent.Missing(); what != "" {
		if os.Getenv("IDLERACE_REQUIRE_REAL") == "1" {
			t.Fatal(what)
		}
		t.Skipf("skipped: %s", what)
	}
	if b := s.Behaviour(); !b.Watch || b.Retries != 1 || !b.Replays(http.MethodPost) {
		t.Errorf("hyper+retry-only models as %+v: want hyper's watch with a replay of any method", b)
	}
	tr := pool.New(s, pool.Config{RequestTimeout: 5 * time.Second}).(pool.Timed)
	defer tr.CloseIdleConnections()
	url, replayed := closingServer(t)
	r1, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("a"))
	if first := tr.SendAt(context.Background(), r1, time.Time{}); first.Err != nil {
		t.Fatalf("first: %+v", first)
	}
	r2, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("b"))
	second := tr.SendAt(context.Background(), r2, time.Time{})
	if second.Err != nil || second.Attempts != 2 || !second.FirstReused || second.Reused {
		t.Fatalf("second: %+v: want success on a new connection after a stale first attempt", second)
	}
	if body := <-replayed; body != "b" {
		t.Errorf("the replay carried %q, want the second request's body", body)
	}
	if st := tr.Stats(); st.Retries != 1 {
		t.Errorf("stats %+v: want 1 retry", st)
	}
}

// A retry in front of a library that replays some methods itself adds to them.
func TestRetryInFrontOfAClientKindAddsToItsOwnReplays(t *testing.T) {
	for _, c := range []struct {
		spec, method string
		want         bool
	}{
		{"curl+retry-only:methods=idempotent", http.MethodPost, true}, // libcurl replays any method itself
		{"java+retry-only:methods=idempotent", http.MethodPut, true},
		{"java+retry-only:methods=idempotent", http.MethodPost, false},
		{"java", http.MethodPut, false},
		{"retry-only+requests", http.MethodPost, true}, // order does not matter
	} {
		s, err := pool.Parse(c.spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Behaviour().Replays(c.method); got != c.want {
			t.Errorf("%s replays %s: %v, want %v", c.spec, c.method, got, c.want)
		}
	}
	if _, err := pool.Parse("hyper+read-probe"); err == nil || !strings.Contains(err.Error(), "takes only a retry") {
		t.Errorf("hyper+read-probe: %v, want refused: the library owns its pool", err)
	}
}
