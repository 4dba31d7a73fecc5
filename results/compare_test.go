package results

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/perf/benchfmt"
)

func TestTwoProportionPKnownValues(t *testing.T) {
	// 2x2 table 10/100 vs 30/100: chi-square with Yates = 11.28, p = 0.00078.
	if p := TwoProportionP(10, 100, 30, 100); math.Abs(p-0.000784) > 0.00005 {
		t.Fatalf("p = %g, want 0.00078", p)
	}
	if p := TwoProportionP(50, 100, 50, 100); p != 1 {
		t.Fatalf("equal rates: p = %g, want 1", p)
	}
	if p := TwoProportionP(0, 100, 0, 100); p != 1 {
		t.Fatalf("both zero: p = %g, want 1", p)
	}
	if p := TwoProportionP(1, 0, 1, 10); p != 1 {
		t.Fatalf("empty side: p = %g, want 1", p)
	}
}

func TestRepeatsPNeedsEnoughRepeats(t *testing.T) {
	if p := RepeatsP([]float64{1, 2, 3}, []float64{10, 11, 12}, 0.05); p < 0.05 {
		t.Fatalf("3 vs 3 cannot be significant at 0.05 (Mann-Whitney minimum 0.1), got %g", p)
	}
	if p := RepeatsP([]float64{1, 2, 3, 4, 5, 6}, []float64{10, 11, 12, 13, 14, 15}, 0.05); p > 0.01 {
		t.Fatalf("6 vs 6 fully separated: p = %g, want < 0.01", p)
	}
}

func TestCompareVerdicts(t *testing.T) {
	base := &Summary{Cells: []Cell{cell("blind", 0, 2000, 1000, 3000), cell("read-probe", 0, 2000, 100, 3000), cell("watch", 0, 2000, 40, 3000)}}
	next := &Summary{Cells: []Cell{cell("blind", 0, 2000, 1010, 3000), cell("read-probe", 0, 2000, 10, 3000), cell("stdlib", 0, 2000, 40, 3000)}}
	c := Compare(base, next, 0.05)
	if len(c.Rows) != 2 || len(c.OnlyBase) != 1 || len(c.OnlyNew) != 1 {
		t.Fatalf("rows %d, only base %v, only new %v", len(c.Rows), c.OnlyBase, c.OnlyNew)
	}
	if c.Rows[0].Verdict != Same || c.Rows[1].Verdict != Better || c.Rows[1].ResetP > 1e-10 {
		t.Fatalf("verdicts %s (p %g), %s (p %g)", c.Rows[0].Verdict, c.Rows[0].ResetP, c.Rows[1].Verdict, c.Rows[1].ResetP)
	}
	if c.Worse() {
		t.Fatal("nothing is worse")
	}
	worse := Compare(next, base, 0.05)
	if !worse.Worse() || worse.Rows[1].ResetVerdict != Worse {
		t.Fatalf("swapped: %+v", worse.Rows[1])
	}
	var table, md bytes.Buffer
	if err := RenderCompareTable(&table, c); err != nil {
		t.Fatal(err)
	}
	if err := WriteCompareMarkdown(&md, c); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "better") || !strings.Contains(md.String(), "| read-probe |") || !strings.Contains(md.String(), "Only in new") {
		t.Fatalf("table:\n%s\nmarkdown:\n%s", table.String(), md.String())
	}
}

// The benchfmt export reads back with golang.org/x/perf/benchfmt, benchstat's own
// parser, one result per cell with the units idlerace writes.
func TestBenchfmtReadsBackWithBenchstatsParser(t *testing.T) {
	s := &Summary{Tool: Tool{OS: "linux", Arch: "amd64", Version: "v1"}, Cells: []Cell{cell("blind", 0, 1000, 500, 3000), cell("read-probe+retry-only:max=1,methods=all", 1, 900, 0, 2500)}}
	var buf bytes.Buffer
	if err := WriteBenchfmt(&buf, s); err != nil {
		t.Fatal(err)
	}
	r := benchfmt.NewReader(&buf, "run.txt")
	var n int
	for r.Scan() {
		res, ok := r.Result().(*benchfmt.Result)
		if !ok {
			continue
		}
		n++
		if v, ok := res.Value("reset-rate"); !ok || (n == 1 && v != 0.5) {
			t.Errorf("result %d: reset-rate %v %v", n, v, ok)
		}
		if v, ok := res.Value("p99-µs"); !ok || (n == 2 && v != 2500) {
			t.Errorf("result %d: p99 %v %v", n, v, ok)
		}
		if n == 2 && res.Iters != 900 {
			t.Errorf("iterations %d, want the requests", res.Iters)
		}
		if n == 2 && !strings.Contains(string(res.Name), "strategy=read-probe+retry-only:max=1,methods=all") {
			t.Errorf("name %s", res.Name)
		}
	}
	if err := r.Err(); err != nil || n != 2 {
		t.Fatalf("%d results, err %v", n, err)
	}
}

// Merging two runs of the same cells adds their counts and merges the histograms
// exactly; a cell only one run has is kept as it is.
func TestMergeRunsAddsCountsAndHistograms(t *testing.T) {
	write := func(dir string, cells ...Cell) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(dir, "cells"), 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range cells {
			h := NewLatencyHistogram()
			for v := int64(1); v <= cells[i].Requests; v++ {
				RecordLatency(h, time.Duration(v)*time.Microsecond)
			}
			cells[i].Hlog = filepath.Join("cells", cells[i].ID+".hlog")
			if err := WriteHlog(filepath.Join(dir, cells[i].Hlog), time.Unix(1700000000, 0), "cell", h); err != nil {
				t.Fatal(err)
			}
		}
		if err := WriteSummary(filepath.Join(dir, "summary.json"), &Summary{State: "complete", Cells: cells}); err != nil {
			t.Fatal(err)
		}
	}
	a, b, out := t.TempDir(), t.TempDir(), t.TempDir()
	// a's blind alone said Connection: close to most responses (not measured); merged
	// with b's it is a measurement: the verdict comes from the summed counts.
	ba := cell("blind", 0, 100, 50, 3000)
	ba.Reused, ba.Status, ba.ClosingResponses = 10, StatusClasses{S2xx: 50}, 40
	bb := cell("blind", 0, 300, 100, 3000)
	bb.Reused, bb.Status = 250, StatusClasses{S2xx: 200}
	ba.Hop = &Hop{Kind: "nginx", Version: "nginx/1.22.1", Requests: 100, BadGateway: 6, UpstreamRetries: 2, OwnErrors: 1}
	bb.Hop = &Hop{Kind: "nginx", Version: "nginx/1.22.1", Requests: 300, BadGateway: 9, UpstreamRetries: 3}
	ba.Finish()
	bb.Finish()
	if ba.NotMeasured == "" || bb.NotMeasured != "" {
		t.Fatalf("parts: %q, %q", ba.NotMeasured, bb.NotMeasured)
	}
	write(a, ba, cell("watch", 0, 10, 1, 3000))
	write(b, bb)
	sum, err := MergeRuns(out, []string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Cells) != 2 || sum.State != "complete" {
		t.Fatalf("%d cells, state %s", len(sum.Cells), sum.State)
	}
	blind := sum.Cells[0]
	if blind.Requests != 400 || blind.Stale != 150 || blind.ResetRate != 0.375 {
		t.Fatalf("merged blind: %d requests, %d stale, rate %g", blind.Requests, blind.Stale, blind.ResetRate)
	}
	if blind.Reused != 260 || blind.Status.S2xx != 250 || blind.ClosingResponses != 40 || blind.NotMeasured != "" {
		t.Fatalf("merged blind: reused %d, status %+v, closing %d, not measured %q", blind.Reused, blind.Status, blind.ClosingResponses, blind.NotMeasured)
	}
	// The proxy's account is summed too, so that its own errors and its retries are the
	// merged cell's, as its stale count is.
	if hp := blind.Hop; hp == nil || hp.Requests != 400 || hp.BadGateway != 15 || hp.UpstreamRetries != 5 || hp.OwnErrors != 1 || hp.Kind != "nginx" {
		t.Fatalf("merged hop %+v", hp)
	}
	h, err := ReadHlog(filepath.Join(out, blind.Hlog))
	// 1..100µs from a and 1..300µs from b: the 200th of 400 values is 100µs.
	if err != nil || h.TotalCount() != 400 || h.Max() < 300 || blind.LatencyUS.P50 != 100 {
		t.Fatalf("merged histogram: count %d max %d p50 %d, err %v", h.TotalCount(), h.Max(), blind.LatencyUS.P50, err)
	}
	if m, err := ReadManifest(filepath.Join(out, "manifest.json")); err != nil || m.CellsDone != 2 {
		t.Fatalf("manifest %+v %v", m, err)
	}
}
