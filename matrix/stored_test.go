package matrix

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A matrix whose request body comes from a file is stored with the body inline, so the
// run directory's matrix.yaml parses to the same cells alone (resume, merge); a matrix
// without one is stored byte for byte.
func TestStoredMatrixCarriesItsBodyFile(t *testing.T) {
	dir := t.TempDir()
	body := "{\"id\": 42,\n \"note\": \"a \\\"quoted\\\" line\"}\n"
	if err := os.WriteFile(filepath.Join(dir, "order.json"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	src := "# a comment kept\nidle_timeout: 100ms\nrequest:\n  method: PUT\n  body_file: order.json\nstrategies: [blind]\nupstreams: [builtin]\nskews: [none]\nlatencies: [\"0\"]\nloads: [\"sweep:lanes=2,duration=1s\"]\n"
	f, err := ParseFile(filepath.Join(dir, "m.yaml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	stored := f.Stored()
	if strings.Contains(string(stored), "body_file: order.json") || !strings.Contains(string(stored), "# a comment kept") {
		t.Fatalf("stored:\n%s", stored)
	}
	other := t.TempDir() // where order.json is not
	g, err := ParseFile(filepath.Join(other, "matrix.yaml"), stored)
	if err != nil {
		t.Fatalf("the stored matrix does not parse alone: %v\n%s", err, stored)
	}
	if string(g.Request.Body) != body || g.Method != "PUT" {
		t.Errorf("stored body %q, method %s; want %q, PUT", g.Request.Body, g.Method, body)
	}
	a, _ := f.Cells()
	b, _ := g.Cells()
	if len(a) != 1 || len(b) != 1 || string(a[0].Body) != string(b[0].Body) || a[0].Method != b[0].Method {
		t.Errorf("cells differ: %+v vs %+v", a, b)
	}
	plain, err := ParseFile("p.yaml", []byte("idle_timeout: 100ms\nstrategies: [blind]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if string(plain.Stored()) != string(plain.Raw) {
		t.Error("a matrix without body_file: want its bytes unchanged")
	}
}
