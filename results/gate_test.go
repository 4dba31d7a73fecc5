package results

import (
	"bytes"
	"encoding/xml"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update-gate", false, "rewrite testdata/gate.md.golden")

func policy(t *testing.T, src string) *Policy {
	t.Helper()
	p, err := ParsePolicy("gate.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func cell(strategy string, repeat int, requests, stale int64, p99 int64) Cell {
	c := Cell{Strategy: strategy, Upstream: "builtin", Skew: "none", Latency: "0", Load: "sweep", Repeat: repeat,
		Requests: requests, Stale: stale, NewConns: requests / 2, LatencyUS: LatencyUS{P50: p99 / 3, P99: p99}}
	c.ID = CellID(c.Strategy, c.Upstream, c.Skew, c.Latency, c.Load, repeat)
	c.Finish()
	return c
}

func TestAbsoluteRuleNamesCellRuleAndValue(t *testing.T) {
	p := policy(t, "rules:\n  - name: no stale\n    metric: reset_rate\n    max: 0.001\n    where: {strategy: read-probe}\n")
	run := &Summary{Cells: []Cell{cell("read-probe", 0, 1000, 5, 3000), cell("blind", 0, 1000, 500, 3000)}}
	g := Gate(p, run, nil)
	if g.Failed != 1 || len(g.Checks) != 1 {
		t.Fatalf("checks %+v", g.Checks)
	}
	msg := g.Checks[0].Message
	for _, want := range []string{"read-probe|builtin|none|0|sweep", `rule "no stale"`, "reset_rate = 0.005 > 0.001"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
}

// where: proxy picks the cells behind that proxy; none the cells without one. The cell
// behind the proxy and the one without are two cells, not repeats of one (their keys
// differ, as their IDs do), and a GET cell is not a repeat of the POST one.
func TestWhereProxyPicksItsCells(t *testing.T) {
	behind := cell("blind", 0, 1000, 60, 3000)
	behind.Proxy = "nginx:keepalive_timeout=150ms"
	behind.ID = CellID(behind.Strategy, behind.Upstream, behind.Skew, behind.Latency, behind.Load, 0, "proxy="+behind.Proxy)
	direct := cell("blind", 0, 1000, 500, 3000)
	get := cell("blind", 0, 1000, 0, 3000)
	get.Method = "GET"
	run := &Summary{Cells: []Cell{behind, direct, get}}
	if g := Gate(policy(t, "rules:\n  - {metric: reset_rate, max: 1}\n"), run, nil); len(g.Checks) != 3 {
		t.Errorf("checks %+v: want three cells, none pooled with another", g.Checks)
	}
	for where, want := range map[string]string{`"nginx:keepalive_timeout=150ms"`: CellKey(behind), "none": CellKey(direct)} {
		g := Gate(policy(t, "rules:\n  - {metric: reset_rate, max: 0.01, where: {proxy: "+where+"}}\n"), run, nil)
		if where == "none" {
			// The GET cell has no proxy either, and passes.
			if len(g.Checks) != 2 || g.Checks[0].Cell != want || g.Failed != 1 {
				t.Errorf("where proxy none: checks %+v, want the POST cell failing and the GET cell", g.Checks)
			}
			continue
		}
		if len(g.Checks) != 1 || g.Checks[0].Cell != want || g.Failed != 1 {
			t.Errorf("where proxy %s: checks %+v, want one failing on %s", where, g.Checks, want)
		}
	}
}

// A regression fails only when beyond the threshold and significant; the same numbers
// with fewer requests are not significant and pass.
func TestRegressionNeedsThresholdAndSignificance(t *testing.T) {
	p := policy(t, "alpha: 0.01\nrules:\n  - metric: reset_rate\n    max_increase: 0.01\n")
	base := &Summary{Cells: []Cell{cell("read-probe", 0, 2000, 10, 3000), cell("blind", 0, 2000, 1000, 3000)}}
	worse := &Summary{Cells: []Cell{cell("read-probe", 0, 2000, 80, 3000), cell("blind", 0, 2000, 1010, 3000)}}
	g := Gate(p, worse, base)
	if g.Failed != 1 {
		t.Fatalf("failed %d: %+v", g.Failed, g.Checks)
	}
	f := g.Checks[0]
	if f.Pass || f.Cell != "read-probe|builtin|none|0|sweep" || f.Base != 0.005 || f.New != 0.04 || f.P > 1e-6 {
		t.Fatalf("check %+v", f)
	}
	if !strings.Contains(f.Message, "rose from 0.005 to 0.04") || !strings.Contains(f.Message, "p = ") {
		t.Fatalf("message %q", f.Message)
	}
	small := &Summary{Cells: []Cell{cell("read-probe", 0, 50, 2, 3000)}}
	smallBase := &Summary{Cells: []Cell{cell("read-probe", 0, 50, 0, 3000)}}
	if g := Gate(p, small, smallBase); g.Failed != 0 {
		t.Fatalf("2/50 vs 0/50 is not significant, but the gate failed: %+v", g.Checks)
	}
}

// Holm's step-down: with 10 cells each at p = 0.004, none is significant at family-wise
// 0.01 (the smallest needs p <= 0.001), though each would be alone.
func TestHolmCorrectsAcrossCells(t *testing.T) {
	checks := make([]Check, 10)
	for i := range checks {
		checks[i].P = 0.004
	}
	holm(checks, 0.01)
	for _, c := range checks {
		if c.Significant {
			t.Fatal("Holm rejected p = 0.004 among 10 at alpha 0.01")
		}
	}
	checks[3].P = 0.0005
	holm(checks, 0.01)
	if !checks[3].Significant || checks[0].Significant {
		t.Fatalf("Holm: %+v", checks)
	}
}

func TestLatencyRegressionUsesRepeats(t *testing.T) {
	p := policy(t, "rules:\n  - metric: p99\n    max_increase: 10%\n")
	var base, slow Summary
	for r := 0; r < 6; r++ {
		base.Cells = append(base.Cells, cell("blind", r, 1000, 500, 3000+int64(r)*10))
		slow.Cells = append(slow.Cells, cell("blind", r, 1000, 500, 4000+int64(r)*10))
	}
	g := Gate(p, &slow, &base)
	if g.Failed != 1 || g.Checks[0].P > 0.01 {
		t.Fatalf("p99 +33%% over 6 repeats each: %+v", g.Checks)
	}
	if g := Gate(p, &base, &base); g.Failed != 0 {
		t.Fatal("a run gated against itself failed")
	}
}

func TestRegressionWithoutBaselineIsNoted(t *testing.T) {
	p := policy(t, "rules:\n  - metric: p99\n    max_increase: 10%\n")
	g := Gate(p, &Summary{Cells: []Cell{cell("blind", 0, 10, 1, 100)}}, nil)
	if g.Failed != 0 || len(g.Notes) != 1 || !strings.Contains(g.Notes[0], "needs --baseline") {
		t.Fatalf("%+v", g)
	}
}

// The JUnit output has the structure CI systems read: testsuites > testsuite (one per
// rule) > testcase (one per cell), with consistent counts and a failure element where a
// check failed.
func TestJUnitStructure(t *testing.T) {
	p := policy(t, "rules:\n  - {name: a, metric: reset_rate, max: 0.1}\n  - {name: b, metric: p99, max: 5000}\n")
	run := &Summary{Cells: []Cell{cell("blind", 0, 100, 50, 3000), cell("watch", 0, 100, 1, 6000)}}
	var buf bytes.Buffer
	if err := WriteJUnit(&buf, Gate(p, run, nil)); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), "<?xml") {
		t.Fatal("no XML header")
	}
	var doc struct {
		XMLName  xml.Name `xml:"testsuites"`
		Tests    int      `xml:"tests,attr"`
		Failures int      `xml:"failures,attr"`
		Suites   []struct {
			Name     string `xml:"name,attr"`
			Tests    int    `xml:"tests,attr"`
			Failures int    `xml:"failures,attr"`
			Cases    []struct {
				Name      string `xml:"name,attr"`
				Classname string `xml:"classname,attr"`
				Failure   *struct {
					Message string `xml:"message,attr"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Tests != 4 || doc.Failures != 2 || len(doc.Suites) != 2 {
		t.Fatalf("tests %d failures %d suites %d", doc.Tests, doc.Failures, len(doc.Suites))
	}
	for _, s := range doc.Suites {
		fails := 0
		for _, c := range s.Cases {
			if c.Name == "" || c.Classname == "" {
				t.Errorf("testcase without name or classname in %s", s.Name)
			}
			if c.Failure != nil {
				fails++
				if c.Failure.Message == "" {
					t.Error("failure without message")
				}
			}
		}
		if s.Tests != len(s.Cases) || s.Failures != fails || fails != 1 {
			t.Errorf("suite %s: tests %d/%d failures %d/%d", s.Name, s.Tests, len(s.Cases), s.Failures, fails)
		}
	}
}

func TestGateMarkdownGolden(t *testing.T) {
	p := policy(t, "alpha: 0.01\nrules:\n  - {name: no stale, metric: reset_rate, max: 0.01, where: {strategy: read-probe}}\n  - {metric: reset_rate, max_increase: 0.01}\n  - {metric: p99, max_increase: 10%}\n")
	p.Path = "examples/gate.yaml"
	base := &Summary{Cells: []Cell{cell("read-probe", 0, 2000, 10, 3000), cell("blind", 0, 2000, 1000, 3000)}}
	run := &Summary{Cells: []Cell{cell("read-probe", 0, 2000, 80, 3000), cell("blind", 0, 2000, 1010, 3000)}}
	var buf bytes.Buffer
	if err := WriteGateMarkdown(&buf, Gate(p, run, base)); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "gate.md.golden")
	if *updateGolden {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if buf.String() != string(want) {
		t.Fatalf("markdown differs from %s (run with -update-gate):\n%s", golden, buf.String())
	}
}

func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{
		"rules:\n  - {metric: p99, max: 1}\n",
		"alpha: 0.05\nrules:\n  - {metric: reset_rate, max_increase: 10%, where: {strategy: blind}}\n",
		"rules: x", "{", "- a", "rules:\n  - metric: [1]\n", "alpha: nan\nrules: []\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		p, err := ParsePolicy("p.yaml", []byte(src))
		if err != nil {
			if strings.Contains(err.Error(), "\n") || !strings.HasPrefix(err.Error(), "p.yaml:") {
				t.Fatalf("bad error %q", err)
			}
			return
		}
		Gate(p, &Summary{Cells: []Cell{cell("blind", 0, 10, 1, 100)}}, &Summary{Cells: []Cell{cell("blind", 0, 10, 2, 100)}})
	})
}

// A gate message's numbers keep their digits: 659.96 to four digits is 660, not 66
// (a merged run's conns_per_1k read "642.1 -> 66"), and only a fraction's trailing
// zeros go.
func TestGateNumbersKeepTheirIntegerZeros(t *testing.T) {
	for v, want := range map[float64]string{659.96: "660", 661.6: "661.6", 0.5282: "0.5282", 0.25: "0.25", 1.5e-7: "1.5e-07", 24463: "24463", 123456.7: "1.235e+05", 10.0001: "10"} {
		if got := num(v); got != want {
			t.Errorf("num(%v) = %q, want %q", v, got, want)
		}
	}
}
