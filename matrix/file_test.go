package matrix_test

import (
	"strings"
	"testing"
	"time"

	"github.com/idlerace/idlerace/matrix"
	"github.com/idlerace/idlerace/results"
)

func parse(t *testing.T, src string) []matrix.CellSpec {
	t.Helper()
	f, err := matrix.ParseFile("m.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	cells, err := f.Cells()
	if err != nil {
		t.Fatal(err)
	}
	return cells
}

func names(cells []matrix.CellSpec) string {
	var s []string
	for _, c := range cells {
		s = append(s, c.Strategy+"/"+c.Skew)
	}
	return strings.Join(s, " ")
}

func TestAxesMultiplyStrategiesFastest(t *testing.T) {
	cells := parse(t, "strategies: [blind, watch]\nskews: [none, \"offset:-5ms\"]\nrepeats: 2\nduration: 1s\nidle_timeout: 50ms\n")
	if got := names(cells); got != "blind/none blind/none watch/none watch/none blind/offset:-5ms blind/offset:-5ms watch/offset:-5ms watch/offset:-5ms" {
		t.Fatalf("order %s", got)
	}
	if cells[1].Repeat != 1 || cells[0].Load != "sweep:lanes=64,duration=1.5s" || cells[0].IdleTimeout != 50*time.Millisecond {
		t.Fatalf("cell %+v", cells[1])
	}
	// duration applies only to loads that set none.
	cells = parse(t, "strategies: [blind]\nloads: [sweep, \"sweep:duration=3s\"]\nduration: 1s\n")
	if cells[0].Load != "sweep:duration=1s" || cells[1].Load != "sweep:duration=3s" {
		t.Fatalf("loads %q %q", cells[0].Load, cells[1].Load)
	}
}

// GitHub Actions semantics: exclude removes every combination that matches all its keys;
// an include that agrees with combinations adds its settings to them, one that agrees
// with none is a new combination.
func TestIncludeExcludeFollowGitHubActions(t *testing.T) {
	cells := parse(t, `
strategies: [blind, watch, retry-only]
skews: [none, "uniform:±10ms"]
exclude:
  - {strategy: watch}
  - {strategy: blind, skew: "uniform:10ms"}
include:
  - {strategy: "retry-only:max=1,methods=all", idle_timeout: 200ms}
  - {strategy: read-probe, skew: "offset:-5ms"}
`)
	if got := names(cells); got != "blind/none retry-only/none retry-only/uniform:±10ms read-probe/offset:-5ms" {
		t.Fatalf("cells %s", got)
	}
	for _, c := range cells {
		want := 100 * time.Millisecond
		if strings.HasPrefix(c.Strategy, "retry-only") {
			want = 200 * time.Millisecond
		}
		if c.IdleTimeout != want {
			t.Errorf("%s/%s: idle timeout %s, want %s", c.Strategy, c.Skew, c.IdleTimeout, want)
		}
	}
}

// Include entries that differ only in method or T are different measurements, with
// different IDs; a cell with the defaults (POST, the matrix's T) keeps the ID of the five
// axes alone, as runs stored before the method and T were part of it have.
func TestCellsDifferingInMethodOrTHaveTheirOwnIDs(t *testing.T) {
	cells := parse(t, `
idle_timeout: 200ms
strategies: [watch]
include:
  - {strategy: requests, upstream: uvicorn, idle_timeout: 1s, method: GET}
  - {strategy: requests, upstream: uvicorn, idle_timeout: 1s, method: POST}
  - {strategy: requests, upstream: uvicorn, idle_timeout: 2s, method: POST}
`)
	ids := map[string]bool{}
	for _, c := range cells {
		p, err := matrix.Prepare(c)
		if err != nil {
			t.Fatal(err)
		}
		if ids[p.ID()] {
			t.Errorf("two cells share the ID %s", p.ID())
		}
		ids[p.ID()] = true
	}
	if len(ids) != 4 {
		t.Fatalf("%d IDs for %d cells: %v", len(ids), len(cells), ids)
	}
	for id := range ids {
		if strings.HasPrefix(id, "requests.") && !strings.Contains(id, ".t-1s.") && !strings.Contains(id, ".t-2s.") {
			t.Errorf("%s: a cell with its own T does not name it", id)
		}
	}
	p, _ := matrix.Prepare(cells[0])
	if want := results.CellID("watch", "builtin", "none", "0", p.Load.String(), 0); p.ID() != want {
		t.Errorf("the default cell's ID %s, want %s (the five axes alone)", p.ID(), want)
	}
}

func FuzzParseFile(f *testing.F) {
	for _, s := range []string{
		"strategies: [blind]\n",
		"strategies: [blind, watch]\nskews: [none]\nexclude:\n  - {strategy: watch}\ninclude:\n  - {strategy: read-probe}\n",
		"idle_timeout: 5s\nrepeats: 3\nstrategies: [\"timeout-margin:margin=1s\"]\n",
		"- a\n", "{", "strategies: [", "strategies:\n  - {a: b}\n", "include: [1]\n", "exclude: x\n", "seed: -1\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		mf, err := matrix.ParseFile("fuzz.yaml", []byte(src))
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error: %q", err)
			}
			if !strings.HasPrefix(err.Error(), "fuzz.yaml:") {
				t.Fatalf("error does not name the file: %q", err)
			}
			return
		}
		cells, err := mf.Cells()
		if err != nil {
			t.Fatal(err)
		}
		if len(cells) > 100_000 {
			return
		}
		for _, c := range cells {
			if _, err := matrix.Prepare(c); err != nil {
				t.Fatalf("a file that parsed gives a cell that does not: %v", err)
			}
		}
	})
}

// The methods and proxies axes multiply like the others, outermost: GET and POST of one
// proxy are cells of their own, and a cell without a proxy keeps the ID it had.
func TestMethodsAndProxiesAreAxes(t *testing.T) {
	cells := parse(t, `
strategies: [blind]
methods: [POST, GET]
proxies: [none, "nginx:keepalive_timeout=150ms"]
exclude:
  - {proxy: none, method: GET}
`)
	var got []string
	for _, c := range cells {
		p, err := matrix.Prepare(c)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c.Method+" "+p.Proxy.Raw+" "+p.ID())
	}
	if len(got) != 3 || !strings.HasPrefix(got[0], "POST none ") || !strings.HasPrefix(got[1], "POST nginx:keepalive_timeout=150ms ") ||
		!strings.HasPrefix(got[2], "GET nginx:keepalive_timeout=150ms ") {
		t.Fatalf("cells %q: want POST none, POST and GET behind nginx", got)
	}
	p, _ := matrix.Prepare(cells[0])
	if want := results.CellID("blind", "builtin", "none", "0", p.Load.String(), 0); p.ID() != want {
		t.Errorf("the cell without a proxy has ID %s, want %s", p.ID(), want)
	}
}
