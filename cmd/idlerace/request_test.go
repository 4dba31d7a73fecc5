package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// wireRequest is one request as its bytes reached the server: the request line, the
// header lines as sent, and the bytes after the header block.
type wireRequest struct {
	line    string
	headers []string // "Name: value", as on the wire
	body    string
	// stray is bytes that were already there after a request without Content-Length,
	// before the server answered: a body that was sent without saying so.
	stray int
}

// header is every value of the header name (case-insensitive) on the wire.
func (r wireRequest) header(name string) []string {
	var out []string
	for _, h := range r.headers {
		if n, v, _ := strings.Cut(h, ":"); strings.EqualFold(n, name) {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

var requestLine = regexp.MustCompile(`^[A-Z]+ /\S* HTTP/1\.1$`)

// wireServer is a loopback server that reads each request's raw bytes (no HTTP parser
// between them and the test), hands them over before it answers, and answers
// "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok". A request is handed over before its
// response is written, so once attack returns every request is in reqs.
func wireServer(t *testing.T) (addr string, reqs func() []wireRequest) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []wireRequest
	var conns []net.Conn
	var wg sync.WaitGroup
	serve := func(c net.Conn) {
		defer wg.Done()
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			r := wireRequest{line: strings.TrimRight(line, "\r\n")}
			for {
				h, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if h = strings.TrimRight(h, "\r\n"); h == "" {
					break
				}
				r.headers = append(r.headers, h)
			}
			if cl := r.header("Content-Length"); len(cl) == 1 {
				n, _ := strconv.Atoi(cl[0])
				b := make([]byte, n)
				if _, err := io.ReadFull(br, b); err != nil {
					return
				}
				r.body = string(b)
			} else {
				r.stray = br.Buffered()
			}
			mu.Lock()
			got = append(got, r)
			mu.Unlock()
			if len(r.header("Transfer-Encoding")) > 0 || !requestLine.MatchString(r.line) {
				return // cannot tell where the next request starts
			}
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
				return
			}
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go serve(c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String(), func() []wireRequest {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

// checkWire fails the test for a request that is not one request line, headers and the
// body its Content-Length says, and returns the requests as "LINE ua=[..] cl=[..]
// te=[..] body=..." with each extra header named in show.
func checkWire(t *testing.T, reqs []wireRequest, show ...string) []string {
	t.Helper()
	if len(reqs) == 0 {
		t.Fatal("the server saw no request")
	}
	var out []string
	for i, r := range reqs {
		if !requestLine.MatchString(r.line) || r.stray != 0 {
			t.Errorf("request %d: line %q, %d stray bytes after its head (a body without Content-Length?)", i, r.line, r.stray)
		}
		s := fmt.Sprintf("%s ua=%v cl=%v te=%v", r.line, r.header("User-Agent"), r.header("Content-Length"), r.header("Transfer-Encoding"))
		for _, h := range show {
			s += fmt.Sprintf(" %s=%v", strings.ToLower(h), r.header(h))
		}
		out = append(out, s+" body="+r.body)
	}
	return out
}

// A GET through attack carries no body, no Content-Length and no Transfer-Encoding, and
// says it is idlerace; a POST carries its 17-byte JSON body: read from the raw bytes.
func TestAttackGETCarriesNoBody(t *testing.T) {
	for _, c := range []struct{ method, want string }{
		{"GET", "GET / HTTP/1.1 ua=[idlerace/dev] cl=[] te=[] body="},
		{"POST", `POST / HTTP/1.1 ua=[idlerace/dev] cl=[17] te=[] body={"idlerace":true}`},
	} {
		t.Run(c.method, func(t *testing.T) {
			addr, reqs := wireServer(t)
			code, _, stderr := run(t, "attack", "--target", "http://"+addr+"/", "--strategy", "blind", "--method", c.method,
				"--load", "sweep:lanes=2,requests=4,duration=1m", "--idle-timeout", "50ms")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			for i, got := range checkWire(t, reqs()) {
				if got != c.want {
					t.Errorf("request %d on the wire: %s, want %s", i, got, c.want)
				}
			}
		})
	}
}

// -H sends its headers and replaces idlerace's User-Agent (one User-Agent line, the
// user's); --body replaces the default body (an empty --body empties it), --body-file reads one.
func TestAttackHeaderAndBodyFlags(t *testing.T) {
	dir := t.TempDir()
	bodyFile := filepath.Join(dir, "order.json")
	if err := os.WriteFile(bodyFile, []byte(`{"order":42}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-H", "User-Agent: curl/8.5.0", "-H", "x-tenant: 7", "--body", "hello"},
			"POST / HTTP/1.1 ua=[curl/8.5.0] cl=[5] te=[] x-tenant=[7] body=hello"},
		{[]string{"--method", "put", "--header", "X-Tenant:8", "--body-file", bodyFile},
			`PUT / HTTP/1.1 ua=[idlerace/dev] cl=[12] te=[] x-tenant=[8] body={"order":42}`},
		// An empty body: a POST then says Content-Length: 0, as Go's client does (RFC 9110
		// 8.6: a request that would have a body says it is empty).
		{[]string{"--body", ""}, "POST / HTTP/1.1 ua=[idlerace/dev] cl=[0] te=[] x-tenant=[] body="},
	} {
		addr, reqs := wireServer(t)
		args := append([]string{"attack", "--target", "http://" + addr + "/", "--strategy", "blind",
			"--load", "sweep:lanes=2,requests=4,duration=1m", "--idle-timeout", "50ms"}, c.args...)
		if code, _, stderr := run(t, args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", c.args, code, stderr)
		}
		for i, got := range checkWire(t, reqs(), "X-Tenant") {
			if got != c.want {
				t.Errorf("%v: request %d on the wire: %s, want %s", c.args, i, got, c.want)
			}
		}
	}
}

// --targets with two targets, one with headers and one with an @body file (relative to
// the targets file): the load's requests go round over them, and the server sees each
// target's method, path, headers and body; the --results file names each request's own
// method and URL.
func TestAttackTargetsFileSendsEachTarget(t *testing.T) {
	addr, reqs := wireServer(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "order.json"), []byte(`{"order":42}`), 0o644); err != nil {
		t.Fatal(err)
	}
	targets := filepath.Join(dir, "targets.txt")
	text := fmt.Sprintf("# vegeta's http format\nGET http://%s/orders?id=1\nX-Tenant: 7\nAuthorization: Bearer t\n\nPUT http://%s/orders/42\n@order.json\n", addr, addr)
	if err := os.WriteFile(targets, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	res := filepath.Join(dir, "r.json")
	code, _, stderr := run(t, "attack", "--targets", targets, "--strategy", "blind", "-H", "X-All: 1",
		"--load", "sweep:lanes=2,requests=6,duration=1m", "--idle-timeout", "50ms", "--results", res)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	get := "GET /orders?id=1 HTTP/1.1 ua=[idlerace/dev] cl=[] te=[] x-tenant=[7] authorization=[Bearer t] x-all=[1] body="
	put := `PUT /orders/42 HTTP/1.1 ua=[idlerace/dev] cl=[12] te=[] x-tenant=[] authorization=[] x-all=[1] body={"order":42}`
	n := map[string]int{}
	for _, got := range checkWire(t, reqs(), "X-Tenant", "Authorization", "X-All") {
		if got != get && got != put {
			t.Errorf("on the wire: %s\nwant %s\n  or %s", got, get, put)
		}
		n[got]++
	}
	// Round in turn: every request, primes too, takes the next target.
	if n[get] == 0 || n[put] == 0 || n[get]-n[put] > 1 || n[put]-n[get] > 1 {
		t.Errorf("%d GETs and %d PUTs: want them in turn", n[get], n[put])
	}
	f, err := os.ReadFile(res)
	if err != nil {
		t.Fatal(err)
	}
	urls := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(f)), "\n") {
		var r struct{ Method, URL string }
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		urls[r.Method+" "+r.URL]++
	}
	if len(urls) != 2 || urls["GET http://"+addr+"/orders?id=1"] == 0 || urls["PUT http://"+addr+"/orders/42"] == 0 {
		t.Errorf("--results names %v, want each target's method and URL", urls)
	}
}
