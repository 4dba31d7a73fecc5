package report

import (
	"encoding/json"
	"errors"
	"flag"
	"html/template"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/idlerace/idlerace/dashboards/report/reporttest"
	"github.com/idlerace/idlerace/results"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// writeSynthetic writes a synthetic run into a new temp dir and returns the dir.
func writeSynthetic(t *testing.T, o reporttest.Options) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := reporttest.WriteRun(dir, o); err != nil {
		t.Fatal(err)
	}
	return dir
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// rewriteSummary edits the run's summary.json as raw JSON, as another tool or an older
// idlerace might have written it.
func rewriteSummary(t *testing.T, dir string, edit func(m map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, "summary.json")
	var m map[string]any
	if err := json.Unmarshal([]byte(readFile(t, path)), &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

var svgRE = regexp.MustCompile(`(?s)<figure class="chart" id="chart-([a-z-]+)"[^>]*><svg[^>]*viewBox="0 0 ([0-9.]+) ([0-9.]+)".*?</svg>`)

func TestWriteFiftyCellRunIsOneSelfContainedFile(t *testing.T) {
	dir := writeSynthetic(t, reporttest.Fifty())
	out := filepath.Join(t.TempDir(), "out")
	p, err := Write(dir, out)
	if err != nil {
		t.Fatal(err)
	}
	if p.HTML != filepath.Join(out, "report.html") || p.Markdown != filepath.Join(out, "report.md") {
		t.Errorf("paths %+v: want report.html and report.md in %s", p, out)
	}
	if len(p.Notices) != 0 {
		t.Errorf("notices %q for a complete run of this schema, want none", p.Notices)
	}
	html := readFile(t, p.HTML)
	if n := len(html); n > maxReportBytes {
		t.Errorf("report.html is %d bytes, want ≤ %d", n, maxReportBytes)
	}
	// Nothing is loaded from anywhere: no script, no link, no remote URL in an
	// attribute or in CSS (the SVG namespace URIs are names, not fetches).
	for _, bad := range []string{"<script", "<link", "<img", "<iframe", "@import", `src="`, "url(http", `href="http`, `href="//`} {
		if strings.Contains(html, bad) {
			t.Errorf("report.html contains %q: it must load nothing", bad)
		}
	}
	if !strings.Contains(html, "@font-face") || !strings.Contains(html, "url(data:font/ttf;base64,") {
		t.Error("report.html does not embed the chart font")
	}
	charts := svgRE.FindAllStringSubmatch(html, -1)
	var names []string
	for _, m := range charts {
		names = append(names, m[1])
		if w, h := m[2], m[3]; w == "0" || h == "0" {
			t.Errorf("chart %s: viewBox %s×%s", m[1], w, h)
		}
		if n := strings.Count(m[0], "<path"); n < 20 {
			t.Errorf("chart %s: %d paths, want a chart with data", m[1], n)
		}
	}
	if got, want := strings.Join(names, ","), strings.Join(chartOrder, ","); got != want {
		t.Errorf("charts in the page: %s, want %s", got, want)
	}
	// 50 cell rows in the summary table, 2 in the disagreements (the slow watcher).
	if n := strings.Count(section(t, html, "cells"), "<tr"); n != 51 {
		t.Errorf("summary table has %d rows, want 50 cells and a header", n)
	}
	if n := strings.Count(section(t, html, "disagreements"), `<tr class="disagree">`); n != 2 {
		t.Errorf("disagreement table has %d rows, want 2 (watch under uniform:±10ms at both latencies)", n)
	}
	// One table of safe settings per server (5 skews × 2 latencies), each row's setting
	// below that server's earliest close.
	if n := strings.Count(section(t, html, "safe"), `<table class="safe-table">`); n != 10 {
		t.Errorf("safe settings: %d tables, want one for each of the 10 servers", n)
	}
	for _, c := range p.Charts {
		f, err := os.Open(c)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil {
			t.Errorf("%s: %v", c, err)
			continue
		}
		if cfg.Width < 400 || cfg.Height < 200 {
			t.Errorf("%s: %d×%d px, want a readable chart", c, cfg.Width, cfg.Height)
		}
	}
	if len(p.Charts) != len(chartOrder) {
		t.Errorf("%d chart PNGs, want %d", len(p.Charts), len(chartOrder))
	}
}

// section returns the HTML of <section id="id">.
func section(t *testing.T, html, id string) string {
	t.Helper()
	start := strings.Index(html, `<section id="`+id+`">`)
	if start < 0 {
		t.Fatalf("no section %q", id)
	}
	end := strings.Index(html[start:], "</section>")
	return html[start : start+end]
}

func TestWriteIsDeterministic(t *testing.T) {
	dir := writeSynthetic(t, reporttest.Small())
	a, b := t.TempDir(), t.TempDir()
	pa, err := Write(dir, a)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := Write(dir, b)
	if err != nil {
		t.Fatal(err)
	}
	if readFile(t, pa.HTML) != readFile(t, pb.HTML) {
		t.Error("report.html differs between two writes of the same run")
	}
	if readFile(t, pa.Markdown) != readFile(t, pb.Markdown) {
		t.Error("report.md differs between two writes of the same run")
	}
}

func TestMarkdownGolden(t *testing.T) {
	dir := writeSynthetic(t, reporttest.Small())
	p, err := Write(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	md := readFile(t, p.Markdown)
	golden := filepath.Join("testdata", "report.md.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(md), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := readFile(t, golden)
	if md != want {
		t.Errorf("report.md differs from %s (go test -update to accept):\n--- got\n%s\n--- want\n%s", golden, md, want)
	}

	// And its structure, independent of the numbers.
	lines := strings.Split(md, "\n")
	if !strings.HasPrefix(lines[0], "## idlerace report: 6 cells, complete run") {
		t.Errorf("first line %q, want the heading", lines[0])
	}
	if strings.Contains(md, "[!WARNING]") {
		t.Error("a complete run's report.md has a warning")
	}
	table := tableAfter(t, lines, "### Reset rate: measured (model)")
	if got := table[0]; got != "| strategy | none | offset:-5ms | conns/1k | p99 ms | Pareto front |" {
		t.Errorf("compact table header %q", got)
	}
	if len(table) != 2+3 {
		t.Errorf("compact table has %d lines, want header, alignment and 3 strategies", len(table))
	}
	for _, row := range table {
		if strings.Count(row, "|") != strings.Count(table[0], "|") {
			t.Errorf("row %q has a different number of columns than the header", row)
		}
	}
	dis := tableAfter(t, lines, "### Disagreements with the model (|measured − model| > 5 pp)")
	if len(dis) != 3 || !strings.HasPrefix(dis[2], "| watch | skew offset:-5ms · latency 0 · builtin |") {
		t.Errorf("disagreements %q: want one row, watch under offset:-5ms", dis)
	}
	if !strings.Contains(md, "<details><summary>All 6 cells</summary>") {
		t.Error("no folded table of all cells")
	}
	if n := len(tableAfter(t, lines, "<details><summary>All 6 cells</summary>")); n != 2+6 {
		t.Errorf("folded table has %d lines, want header, alignment and 6 cells", n)
	}
}

// tableAfter returns the Markdown table that follows the line heading (after one blank
// line).
func tableAfter(t *testing.T, lines []string, heading string) []string {
	t.Helper()
	for i, l := range lines {
		if l != heading {
			continue
		}
		var table []string
		for _, r := range lines[i+2:] {
			if !strings.HasPrefix(r, "|") {
				break
			}
			table = append(table, r)
		}
		return table
	}
	t.Fatalf("no line %q", heading)
	return nil
}

func TestPartialRunHasBannerAndStillReports(t *testing.T) {
	o := reporttest.Small()
	o.State = "partial"
	dir := writeSynthetic(t, o)
	p, err := Write(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Notices) != 1 || !strings.HasPrefix(p.Notices[0], "Partial run: it was interrupted after 6 cell(s).") {
		t.Errorf("notices %q, want one saying the run is partial", p.Notices)
	}
	html := readFile(t, p.HTML)
	banner := strings.Index(html, `<div class="banner" role="alert">Partial run`)
	if banner < 0 || banner > strings.Index(html, `<section id="race">`) {
		t.Error("report.html has no partial-run banner above the charts")
	}
	if n := len(svgRE.FindAllString(html, -1)); n != len(chartOrder) {
		t.Errorf("%d charts in a partial run's report, want all %d", n, len(chartOrder))
	}
	md := readFile(t, p.Markdown)
	if !strings.Contains(md, "> [!WARNING]\n> Partial run") || !strings.HasPrefix(md, "## idlerace report: 6 cells, PARTIAL run") {
		t.Errorf("report.md does not warn of the partial run:\n%s", md[:min(len(md), 400)])
	}
}

func TestOtherSchemaHasBannerInsteadOfFailing(t *testing.T) {
	cases := []struct {
		name   string
		schema any // nil: field removed
		want   string
	}{
		{"older", "idlerace.summary/v0", `summary.json is schema "idlerace.summary/v0", older than idlerace.summary/v1`},
		{"newer", "idlerace.summary/v2", `summary.json is schema "idlerace.summary/v2", newer than idlerace.summary/v1`},
		{"foreign", "k6.summary/v3", `summary.json is schema "k6.summary/v3", not an idlerace summary`},
		{"missing", nil, `summary.json has no "schema" field`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeSynthetic(t, reporttest.Small())
			rewriteSummary(t, dir, func(m map[string]any) {
				if c.schema == nil {
					delete(m, "schema")
				} else {
					m["schema"] = c.schema
				}
			})
			if _, err := results.ReadSummary(filepath.Join(dir, "summary.json")); err == nil {
				t.Fatal("results.ReadSummary accepted the file: the test does not test the tolerant path")
			}
			p, err := Write(dir, "")
			if err != nil {
				t.Fatalf("Write refused a %s schema: %v", c.name, err)
			}
			if len(p.Notices) != 1 || !strings.HasPrefix(p.Notices[0], c.want) {
				t.Errorf("notices %q, want one starting %q", p.Notices, c.want)
			}
			html := readFile(t, p.HTML)
			if !strings.Contains(html, `<div class="banner" role="alert">`+template.HTMLEscapeString(c.want)) {
				t.Errorf("report.html has no banner %q", c.want)
			}
			// The fields v1 shares were still read: six cells in the table.
			if n := strings.Count(section(t, html, "cells"), "<tr"); n != 7 {
				t.Errorf("summary table has %d rows, want 6 cells and a header", n)
			}
		})
	}
}

func TestFieldOfWrongTypeIsANoticeNotAFailure(t *testing.T) {
	dir := writeSynthetic(t, reporttest.Small())
	rewriteSummary(t, dir, func(m map[string]any) {
		m["schema"] = "idlerace.summary/v0"
		m["cells"].([]any)[0].(map[string]any)["requests"] = "lots"
	})
	p, err := Write(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Notices) != 2 || !strings.Contains(p.Notices[1], "Some fields could not be read") ||
		!strings.Contains(p.Notices[1], "requests") {
		t.Errorf("notices %q: want the schema and the field that did not read", p.Notices)
	}
}

func TestUnreadableRunIsInputErrorNamingThePath(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	empty := filepath.Join(base, "empty")
	notJSON := filepath.Join(base, "notjson")
	for _, d := range []string{empty, notJSON} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(notJSON, "summary.json"), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ dir, path, want string }{
		{filepath.Join(base, "nope"), filepath.Join(base, "nope"), "no such run directory"},
		{file, file, "not a directory"},
		{empty, filepath.Join(empty, "summary.json"), "missing"},
		{notJSON, filepath.Join(notJSON, "summary.json"), "not a summary"},
	}
	for _, c := range cases {
		_, err := Write(c.dir, t.TempDir())
		var ie *InputError
		if !errors.As(err, &ie) {
			t.Errorf("%s: error %v (%T), want *InputError", c.dir, err, err)
			continue
		}
		if ie.Path != c.path || !strings.HasPrefix(err.Error(), c.path+": ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q (path %q), want it to name %s and say %q", c.dir, err, ie.Path, c.path, c.want)
		}
		if strings.Count(err.Error(), c.path) != 1 || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %q should name the path once, on one line", c.dir, err)
		}
	}
}

func TestMissingHlogIsANoteAndAGapNotAFailure(t *testing.T) {
	o := reporttest.Small()
	o.NoHlog = true
	dir := writeSynthetic(t, o)
	p, err := Write(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	html := readFile(t, p.HTML)
	if n := strings.Count(html, "no such file or directory; its latency curve is left out."); n != 6 {
		t.Errorf("%d notes about missing .hlog files, want 6", n)
	}
	if !strings.Contains(section(t, html, "latency"), "no cell&#39;s .hlog could be read") &&
		!strings.Contains(section(t, html, "latency"), "no cell's .hlog could be read") {
		t.Error("latency chart does not say that no .hlog could be read")
	}
	// Without histograms, p99 still comes from the summary's cells.
	if strings.Contains(section(t, html, "cost"), "<td>–</td>") {
		t.Error("cost table lacks a p99 that summary.json has")
	}
}

func TestHlogOutsideRunDirectoryIsNotRead(t *testing.T) {
	dir := writeSynthetic(t, reporttest.Small())
	rewriteSummary(t, dir, func(m map[string]any) {
		m["cells"].([]any)[0].(map[string]any)["hlog"] = "../../etc/passwd"
	})
	p, err := Write(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if html := readFile(t, p.HTML); !strings.Contains(html, "is outside the run directory; not read.") {
		t.Error("no note about an .hlog path outside the run directory")
	}
}

func TestNamesFromTheSummaryAreEscaped(t *testing.T) {
	o := reporttest.Small()
	o.Strategies = []string{"blind", `<script>alert("x")</script>|x`}
	dir := writeSynthetic(t, o)
	p, err := Write(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if html := readFile(t, p.HTML); strings.Contains(html, "<script>") {
		t.Error("report.html contains a strategy name unescaped")
	}
	md := readFile(t, p.Markdown)
	if strings.Contains(md, "<script>") || !strings.Contains(md, `&lt;script&gt;alert("x")&lt;/script&gt;\|x`) {
		t.Error("report.md does not escape a strategy name for a table cell")
	}
}

func TestParetoFront(t *testing.T) {
	nan := math.NaN()
	cases := []struct {
		name string
		pts  []point
		want []bool
	}{
		{"one", []point{{1, 1}}, []bool{true}},
		{"dominated on both", []point{{0, 1}, {1, 2}}, []bool{true, false}},
		{"trade-off", []point{{0, 2}, {1, 1}, {2, 0}}, []bool{true, true, true}},
		{"equal on one, worse on the other", []point{{0, 1}, {0, 2}}, []bool{true, false}},
		{"identical points share the front", []point{{1, 1}, {1, 1}}, []bool{true, true}},
		{"blind, watch, margin", []point{{0.55, 618}, {0.012, 623}, {0, 983}, {0.0007, 614}}, []bool{false, false, true, true}},
		{"NaN is never on it and beats nothing", []point{{nan, 0}, {1, 1}}, []bool{false, true}},
	}
	for _, c := range cases {
		got := paretoFront(c.pts)
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s: front %v, want %v", c.name, got, c.want)
				break
			}
		}
	}
}

func TestPercentileAxis(t *testing.T) {
	got := percentileTicks(1000, 400)
	var labels []string
	for _, tk := range got {
		labels = append(labels, tk.Label)
	}
	if s := strings.Join(labels, ","); s != "0%,50%,90%,99%,99.9%" {
		t.Errorf("ticks to 1000 on a wide axis: %s", s)
	}
	if tk := percentileTicks(1e5, 150); tk[1].Label != "" {
		t.Errorf("50%% labelled on a narrow axis of five decades, where it meets 0%%")
	}
	pts := percentileCurve(891, func(p float64) float64 { return p })
	if last := pts[len(pts)-1]; last.X != 891 || math.Abs(last.Y-100*(1-1.0/891)) > 1e-9 {
		t.Errorf("curve ends at %+v, want 1/(1−p) = 891", last)
	}
	if pts[0].X != 1 || pts[0].Y != 0 {
		t.Errorf("curve starts at %+v, want p = 0", pts[0])
	}
}

func BenchmarkWriteFiftyCells(b *testing.B) {
	dir := b.TempDir()
	if _, err := reporttest.WriteRun(dir, reporttest.Fifty()); err != nil {
		b.Fatal(err)
	}
	var size int
	for b.Loop() {
		p, err := Write(dir, "")
		if err != nil {
			b.Fatal(err)
		}
		html, _ := os.ReadFile(p.HTML)
		size = len(html)
	}
	b.ReportMetric(float64(size), "html-bytes")
}
