package attack_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idlerace/idlerace/attack"
)

// seen is what a server was sent, one line per request in arrival order.
type seen struct {
	mu    sync.Mutex
	lines []string
}

func recordingServer(t *testing.T) (*httptest.Server, *seen) {
	s := &seen{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.lines = append(s.lines, fmt.Sprintf("%s %s tenant=%v all=%v ua=%v cl=%d body=%s",
			r.Method, r.URL.RequestURI(), r.Header.Values("X-Tenant"), r.Header.Values("X-All"), r.Header.Values("User-Agent"), r.ContentLength, b))
		s.mu.Unlock()
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	return srv, s
}

// With Targets the load's requests go round over them in order, each with its own
// method, path, headers and body, on Target's server whatever host a target names; a
// target's header replaces Env.Header's of the same name, and a User-Agent in either
// replaces idlerace's.
func TestTargetsGoRoundInTurnWithTheirOwnRequests(t *testing.T) {
	srv, got := recordingServer(t)
	e := env(t, srv.URL+"/ignored", "blind", time.Hour)
	e.Header = http.Header{"X-All": {"1"}, "X-Tenant": {"env"}}
	e.Targets = []attack.Request{
		{Method: "GET", URL: "http://elsewhere.invalid:1/a?x=1", Header: http.Header{"X-Tenant": {"7"}}},
		{Method: "PUT", URL: "http://elsewhere.invalid:1/b", Header: http.Header{"User-Agent": {"curl/8"}}, Body: []byte(`{"n":1}`)},
	}
	rec := attack.NewRecorder("targets", nil)
	if err := attack.Run(context.Background(), load(t, "constant:rate=1000/s,duration=1h,requests=6,workers=1"), e, rec); err != nil {
		t.Fatal(err)
	}
	a := "GET /a?x=1 tenant=[7] all=[1] ua=[idlerace/dev] cl=0 body="
	b := `PUT /b tenant=[env] all=[1] ua=[curl/8] cl=7 body={"n":1}`
	want := []string{a, b, a, b, a, b}
	if rec.OK != 6 || strings.Join(got.lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("ok %d; the server saw\n%s\nwant\n%s", rec.OK, strings.Join(got.lines, "\n"), strings.Join(want, "\n"))
	}
}

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// vegeta's http format, read by vegeta's parser: comments, headers (names made
// canonical), a body file relative to the targets file, and request lines that follow
// one another without a blank line.
func TestReadTargetsReadsVegetasHTTPFormat(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "order.json", `{"order":42}`)
	path := writeFile(t, dir, "targets.txt", `# two orders and a health check
GET http://127.0.0.1:8080/orders?id=1
x-tenant: 7
Authorization: Bearer t

PUT http://127.0.0.1:8080/orders/42
Content-Type: application/json
@order.json

HEAD http://127.0.0.1:8080/health
OPTIONS http://127.0.0.1:8080/
`)
	ts, err := attack.ReadTargets(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, r := range ts {
		lines = append(lines, fmt.Sprintf("%s %s %v body=%q nil=%v", r.Method, r.URL, r.Header, r.Body, r.Body == nil))
	}
	want := []string{
		`GET http://127.0.0.1:8080/orders?id=1 map[Authorization:[Bearer t] X-Tenant:[7]] body="" nil=true`,
		`PUT http://127.0.0.1:8080/orders/42 map[Content-Type:[application/json]] body="{\"order\":42}" nil=false`,
		`HEAD http://127.0.0.1:8080/health map[] body="" nil=true`,
		`OPTIONS http://127.0.0.1:8080/ map[] body="" nil=true`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("read\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// A bad targets file is refused with the file, the line and what is accepted.
func TestReadTargetsNamesTheBadLine(t *testing.T) {
	dir := t.TempDir()
	ok := "GET http://127.0.0.1:8080/\n\n"
	for _, c := range []struct{ name, text, want string }{
		{"method", ok + "# next\nget http://127.0.0.1:8080/a\n", `:4: target: "get http://127.0.0.1:8080/a": want METHOD URL, the method in capitals`},
		{"target", ok + "GET\n", `:3: target: "GET": want METHOD URL`},
		{"url", ok + "POST not-a-url\n", `:3: url: "not-a-url": parse "not-a-url": invalid URI for request (want an http:// URL`},
		{"relative", "GET /orders\n", `:1: url: "/orders": want an http:// URL with a host`},
		{"server", ok + "GET http://127.0.0.1:9090/\n", `:3: url: "http://127.0.0.1:9090/" is not on http://127.0.0.1:8080, the first target's server`},
		{"header", ok + "GET http://127.0.0.1:8080/\nX-Tenant 7\n", `:4: header: "X-Tenant 7": want Name: value`},
		{"request-id", ok + "GET http://127.0.0.1:8080/\nX-Tenant: 7\nidlerace-request-id: 1\n", `:5: header: header Idlerace-Request-Id: idlerace sets it`},
		{"body", ok + "POST http://127.0.0.1:8080/\n@missing.json\n", `:4: @body: ` + filepath.Join(dir, "missing.json") + `: no such file or directory (want a file, relative to the targets file)`},
		{"empty", "# nothing\n\n", `:1: targets: none (want lines such as GET http://127.0.0.1:8080/`},
	} {
		path := writeFile(t, dir, c.name+".txt", c.text)
		_, err := attack.ReadTargets(path)
		if err == nil || !strings.HasPrefix(err.Error(), path+c.want) {
			t.Errorf("%s: %v\nwant %s%s", c.name, err, path, c.want)
		}
	}
	if _, err := attack.ReadTargets(filepath.Join(dir, "absent.txt")); err == nil || !strings.Contains(err.Error(), "absent.txt: no such file or directory (want a file of targets") {
		t.Errorf("absent file: %v", err)
	}
}
