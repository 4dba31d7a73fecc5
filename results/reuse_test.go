package results

import (
	"strings"
	"testing"
)

// A cell says it did not measure the race when at least half its responses said
// Connection: close, or half its requests were answered with errors; never with fewer
// than 10 requests, and never for a server that merely closes idle connections early.
func TestReuseVerdict(t *testing.T) {
	for _, tc := range []struct {
		name              string
		requests, closing int64
		status            StatusClasses
		want              []string // substrings; none: measured
	}{
		{"too few to tell", 9, 9, StatusClasses{S2xx: 9}, nil},
		{"keep-alive", 100, 0, StatusClasses{S2xx: 60}, nil},
		{"some closing", 100, 20, StatusClasses{S2xx: 100}, nil},
		{"closed after each response", 80, 80, StatusClasses{S2xx: 80}, []string{"80 of 80 responses said Connection: close", "not measured"}},
		{"errors", 30, 0, StatusClasses{S4xx: 30}, []string{"30 of 30 requests were answered with errors (4xx 30, 5xx 0)"}},
		{"a few errors", 30, 0, StatusClasses{S2xx: 20, S5xx: 10}, nil},
	} {
		got := ReuseVerdict(tc.requests, tc.closing, tc.status)
		if (got == "") != (tc.want == nil) {
			t.Errorf("%s: verdict %q", tc.name, got)
		}
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: verdict %q lacks %q", tc.name, got, w)
			}
		}
	}
	var s StatusClasses
	for _, code := range []int{100, 200, 204, 301, 404, 418, 502, 0} {
		s.Add(code)
	}
	if s != (StatusClasses{S2xx: 2, S3xx: 1, S4xx: 2, S5xx: 1}) {
		t.Errorf("status classes %+v", s)
	}
}

// A cell that did not measure the race reads n/a, is a finding, and fails a gate rule
// on its reset rate even though its rate (0) is within the limit; a regression rule
// fails it too.
func TestUnmeasuredCellFailsTheGateAndReadsNA(t *testing.T) {
	c := cell("watch", 0, 200, 0, 3000)
	c.Status, c.ClosingResponses = StatusClasses{S2xx: 200}, 200
	c.Finish()
	if c.NotMeasured == "" {
		t.Fatal("a cell whose every response said Connection: close: want NotMeasured")
	}
	run := &Summary{Cells: []Cell{c}}
	g := Gate(policy(t, "rules:\n  - name: no stale\n    metric: reset_rate\n    max: 0.01\n"), run, nil)
	if g.Passed() || !strings.Contains(g.Checks[0].Message, "not measured: 200 of 200 responses") {
		t.Errorf("absolute rule: passed %v, checks %+v", g.Passed(), g.Checks)
	}
	base := &Summary{Cells: []Cell{cell("watch", 0, 200, 0, 3000)}}
	g = Gate(policy(t, "rules:\n  - metric: reset_rate\n    max_increase: 0.01\n"), run, base)
	if g.Passed() || !strings.Contains(g.Checks[0].Message, "not measured") {
		t.Errorf("regression rule: passed %v, checks %+v", g.Passed(), g.Checks)
	}
	fs := Findings(run.Cells)
	if len(fs) != 1 || !strings.Contains(fs[0].What, "did not measure the race") {
		t.Errorf("findings %+v", fs)
	}
	var b strings.Builder
	if err := RenderTable(&b, run.Cells); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), " n/a ") {
		t.Errorf("table:\n%s\nwant RESET%% n/a", b.String())
	}
	measured := cell("watch", 0, 200, 0, 3000)
	measured.Status = StatusClasses{S2xx: 200}
	measured.Finish()
	if g := Gate(policy(t, "rules:\n  - metric: reset_rate\n    max: 0.01\n"), &Summary{Cells: []Cell{measured}}, nil); !g.Passed() {
		t.Errorf("a measured cell within the limit: %+v", g.Checks)
	}
}
