package matrix_test

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

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/idlerace/idlerace/matrix"
)

const requestMatrix = `strategies: [blind]
request:
  method: put
  path: /orders?tenant=7
  headers: {X-Tenant: 7, user-agent: curl/8}
  body_file: order.json
include:
  - {strategy: watch, method: GET}
`

// The request block reaches every cell: method (an include entry's still wins), path,
// headers (canonical names) and the body file, read relative to the matrix file.
func TestRequestBlockReachesEveryCell(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "order.json"), []byte(`{"order":42}`), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "m.yaml")
	if err := os.WriteFile(path, []byte(requestMatrix), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := matrix.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cells, err := f.Cells()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cells {
		got = append(got, fmt.Sprintf("%s %s %s %v %s", c.Strategy, c.Method, c.Path, c.Header, c.Body))
	}
	want := `blind PUT /orders?tenant=7 map[User-Agent:[curl/8] X-Tenant:[7]] {"order":42}
watch GET /orders?tenant=7 map[User-Agent:[curl/8] X-Tenant:[7]] {"order":42}`
	if strings.Join(got, "\n") != want {
		t.Fatalf("cells\n%s\nwant\n%s", strings.Join(got, "\n"), want)
	}
}

// A cell's method, path, headers and body are what its server receives.
func TestCellRequestIsWhatTheServerReceives(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s %s tenant=%v ua=%v body=%s", r.Method, r.URL.RequestURI(), r.Header.Values("X-Tenant"), r.Header.Values("User-Agent"), b))
		mu.Unlock()
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	p, err := matrix.Prepare(matrix.CellSpec{Strategy: "blind", Target: true, Skew: "none", Latency: "0",
		Load: "sweep:lanes=1,requests=3,duration=1m", IdleTimeout: 50 * time.Millisecond, Wire: matrix.WireOff,
		Method: "PUT", Path: "/orders?tenant=7", Header: http.Header{"X-Tenant": {"7"}}, Body: []byte("hello")})
	if err != nil {
		t.Fatal(err)
	}
	out, err := matrix.RunTarget(context.Background(), p, srv.URL+"/ignored", nil)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if out.Cell.Requests != 3 || len(seen) < 3 {
		t.Fatalf("%d requests measured, %d seen by the server", out.Cell.Requests, len(seen))
	}
	for _, s := range seen {
		if want := "PUT /orders?tenant=7 tenant=[7] ua=[idlerace/dev] body=hello"; s != want {
			t.Errorf("server saw %s, want %s", s, want)
		}
	}
}

// The schema takes the request block and refuses what the parser refuses: a body with
// a body file, idlerace's own request-id header, an unknown key.
func TestSchemaChecksTheRequestBlock(t *testing.T) {
	s := compileSchema(t, "matrix.schema.json")
	doc := func(req string) any {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(`{"strategies": ["blind"], "request": ` + req + `}`))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if err := s.Validate(doc(`{"method": "PUT", "path": "/orders?id=1", "headers": {"X-Tenant": "7", "Authorization": "Bearer x"}, "body_file": "order.json"}`)); err != nil {
		t.Errorf("schema refused a good request block: %v", err)
	}
	for _, bad := range []string{`{"body": "x", "body_file": "f"}`, `{"headers": {"idlerace-request-id": "1"}}`, `{"header": {}}`, `{"path": "orders"}`, `{"headers": {"X Tenant": "7"}}`} {
		if err := s.Validate(doc(bad)); err == nil {
			t.Errorf("schema accepted request %s", bad)
		}
	}
}
