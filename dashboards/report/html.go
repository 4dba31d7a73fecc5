package report

import (
	"bytes"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/image/font/gofont/goregular"

	"github.com/idlerace/idlerace/results"
)

//go:embed report.html.tmpl
var pageTemplateText string

var pageTemplate = template.Must(template.New("report.html").Funcs(template.FuncMap{
	"join": func(items []string) string {
		if len(items) == 0 {
			return "none"
		}
		return strings.Join(items, ", ")
	},
}).Parse(pageTemplateText))

// page is what report.html.tmpl renders.
type page struct {
	RunDir, RunName, StateText, When     string
	FontFamily, FontBase64               string
	Notices, Notes                       []string
	Findings                             []results.Finding
	Glance                               []labelled
	Constant                             string
	Threshold, ThresholdPP               string
	Race, Window, Heatmap, Latency, Cost htmlChart
	FrontConns, FrontP99                 []string
	CostRows                             []costRow
	Disagreements                        []disagreementRow
	Safe                                 []safeServer
	Cells                                []results.Cell
	Columns                              []column
	Rows                                 []row
	Settings                             []labelled
	MatrixYAML                           string
}

type labelled struct{ Label, Value string }

type htmlChart struct {
	Name    string
	SVG     template.HTML // gonum/plot's vgsvg output; text in it is escaped by vgsvg
	PNG     string
	WidthPx int
}

type costRow struct {
	Strategy, Rate, Model, Conns, P99, Front string
	Requests                                 int64
}

type disagreementRow struct {
	Strategy, Condition, Measured, CI, Model, Delta string
	Requests, Unmatched                             int64
}

type column struct {
	Name, Title string
	Left        bool
}

type field struct {
	Text string
	Left bool
}

type row struct {
	Fields   []field
	Disagree bool
}

// renderHTML executes the page template for v with the rendered charts.
func (v *view) renderHTML(charts map[string]chart) ([]byte, error) {
	s := &v.run.summary
	pg := page{
		RunDir:      v.run.dir,
		RunName:     filepath.Base(filepath.Clean(v.run.dir)),
		StateText:   stateText(s.State),
		When:        when(s),
		FontFamily:  fontFamily,
		FontBase64:  base64.StdEncoding.EncodeToString(goregular.TTF),
		Notices:     v.run.notices,
		Notes:       v.run.notes,
		Constant:    v.constant(),
		Threshold:   fmt.Sprintf("%g", DisagreementThreshold),
		ThresholdPP: fmt.Sprintf("%g", 100*DisagreementThreshold),
		Cells:       s.Cells,
		MatrixYAML:  v.run.matrixYAML,
		FrontConns:  v.frontList(v.frontConns),
		FrontP99:    v.frontList(v.frontP99),
	}
	for name, dst := range map[string]*htmlChart{
		"race-curve": &pg.Race, "race-window": &pg.Window, "reset-heatmap": &pg.Heatmap, "latency": &pg.Latency, "cost": &pg.Cost,
	} {
		c := charts[name]
		*dst = htmlChart{
			Name:    name,
			SVG:     template.HTML(c.svg), //nolint:gosec // produced by vgsvg, which escapes every text it draws
			PNG:     pngName(name),
			WidthPx: int(math.Ceil(c.widthPt * 96 / 72)),
		}
	}
	pg.Glance = v.glance()
	pg.Findings = results.Findings(s.Cells)
	pg.Safe = safeSettings(s.Cells)
	for _, st := range v.strategies {
		t := v.byStrategy[st]
		pg.CostRows = append(pg.CostRows, costRow{
			Strategy: st, Requests: t.requests,
			Rate: pct(t.resetRate()), Model: pct(t.predictedRate()),
			Conns: num(t.connsPer1k(), "%.0f"), P99: num(t.p99US()/1000, "%.2f"),
			Front: v.fronts(st),
		})
	}
	for _, i := range v.disagree {
		c := &s.Cells[i]
		pg.Disagreements = append(pg.Disagreements, disagreementRow{
			Strategy:  c.Strategy,
			Condition: cellCondition(c),
			Requests:  c.Requests,
			Measured:  pct(c.ResetRate),
			CI:        ci(c.ResetRateCI95),
			Model:     pct(c.PredictedResetRate),
			Delta:     deltaPP(c),
			Unmatched: c.Server.UnmatchedFailures,
		})
	}
	pg.Columns, pg.Rows = v.cellTable()
	pg.Settings = v.settings()
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, pg); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// glance is the row of headline numbers under the title.
func (v *view) glance() []labelled {
	if len(v.strategies) == 0 {
		return nil
	}
	best, worst := v.strategies[0], v.strategies[0]
	for _, st := range v.strategies {
		r := v.byStrategy[st].resetRate()
		if r < v.byStrategy[best].resetRate() {
			best = st
		}
		if r > v.byStrategy[worst].resetRate() {
			worst = st
		}
	}
	var requests int64
	for _, c := range v.run.summary.Cells {
		requests += c.Requests
	}
	return []labelled{
		{"Worst reset rate", fmt.Sprintf("%s: %s", worst, pct(v.byStrategy[worst].resetRate()))},
		{"Best reset rate", fmt.Sprintf("%s: %s", best, pct(v.byStrategy[best].resetRate()))},
		{"Pareto front (connections)", strings.Join(v.frontList(v.frontConns), ", ")},
		{"Model disagreements", v.disagreementCount()},
		{"Requests", fmt.Sprintf("%d in %d strategies × %d conditions", requests, len(v.strategies), len(v.combos))},
	}
}

// fronts names the cost views whose Pareto front strategy is on: "new connections,
// p99", or "".
func (v *view) fronts(strategy string) string {
	var on []string
	if v.frontConns[strategy] {
		on = append(on, "new connections")
	}
	if v.frontP99[strategy] {
		on = append(on, "p99")
	}
	return strings.Join(on, ", ")
}

func (v *view) frontList(front map[string]bool) []string {
	var out []string
	for _, s := range v.strategies {
		if front[s] {
			out = append(out, s)
		}
	}
	return out
}

// cellTable is the summary table: one row per cell, with the columns whose value
// varies across the run (upstream, latency, load, T, repeat) shown only when they do.
func (v *view) cellTable() ([]column, []row) {
	cells := v.run.summary.Cells
	varies := func(f func(*results.Cell) string) bool {
		for i := range cells {
			if f(&cells[i]) != f(&cells[0]) {
				return true
			}
		}
		return false
	}
	type col struct {
		column
		show bool
		text func(*results.Cell) string
	}
	ms := func(us int64) string { return fmt.Sprintf("%.2f", float64(us)/1000) }
	cols := []col{
		{column{"strategy", "", true}, true, func(c *results.Cell) string { return c.Strategy }},
		{column{"skew", "", true}, true, func(c *results.Cell) string { return c.Skew }},
		{column{"latency", "one-way network latency", true}, false, func(c *results.Cell) string { return c.Latency }},
		{column{"upstream", "", true}, false, func(c *results.Cell) string { return pathOf(c) }},
		{column{"load", "", true}, false, func(c *results.Cell) string { return c.Load }},
		{column{"T ms", "idle timeout the client believes", false}, false, func(c *results.Cell) string { return fmt.Sprintf("%g", c.IdleTimeoutMS) }},
		{column{"repeat", "", false}, false, func(c *results.Cell) string { return fmt.Sprint(c.Repeat) }},
		{column{"requests", "", false}, true, func(c *results.Cell) string { return fmt.Sprint(c.Requests) }},
		{column{"stale", "caller-visible stale failures", false}, true, func(c *results.Cell) string { return fmt.Sprint(c.Stale) }},
		{column{"reset rate (95% CI)", "stale / requests, with its Wilson 95% interval", false}, true, func(c *results.Cell) string {
			return fmt.Sprintf("%s (%s)", pct(c.ResetRate), ci(c.ResetRateCI95))
		}},
		{column{"model", "predicted reset rate", false}, true, func(c *results.Cell) string { return pct(c.PredictedResetRate) }},
		{column{"Δ pp", "measured − model, percentage points", false}, true, func(c *results.Cell) string {
			return deltaPP(c)
		}},
		{column{"window ms", "window_ms: the width of the race-curve bins whose stale rate is above 5%", false}, true, func(c *results.Cell) string { return fmt.Sprintf("%.2f", results.WindowMS(c.Curve, c.IdleTimeoutMS)) }},
		{column{"window probes (/s)", "window_probes: exposed requests whose gap lay within 2 ms of the server's close (close_ms), and per second", false}, true, func(c *results.Cell) string {
			return fmt.Sprintf("%d (%.1f)", c.WindowProbes, c.WindowProbesPerS)
		}},
		{column{"retries", "", false}, true, func(c *results.Cell) string { return fmt.Sprint(c.Retries) }},
		{column{"conns/1k", "new connections per 1,000 requests", false}, true, func(c *results.Cell) string { return fmt.Sprintf("%.0f", c.ConnsPer1k) }},
		{column{"p50 · p99 · p99.9 · max ms", "latency percentiles from the intended send time", false}, true, func(c *results.Cell) string {
			l := c.LatencyUS
			return strings.Join([]string{ms(l.P50), ms(l.P99), ms(l.P999), ms(l.Max)}, " · ")
		}},
		{column{"srv unread · unmatched · dups", "server: idle closes that found request bytes unread (the race seen from the server) · client stale failures the server cannot explain (– without a view of its closes) · requests executed twice; (wire) when the server was seen on the wire", false}, true,
			func(c *results.Cell) string {
				unmatched := fmt.Sprint(c.Server.UnmatchedFailures)
				if c.Server.UnmatchedFailures < 0 {
					unmatched = "–"
				}
				out := fmt.Sprintf("%d · %s · %d", c.Server.ClosesWithUnread, unmatched, c.Server.Duplicates)
				if c.Server.View == "wire" {
					out += " (wire)"
				}
				return out
			}},
	}
	for i := range cols {
		if !cols[i].show {
			cols[i].show = varies(cols[i].text)
		}
	}
	var header []column
	for _, c := range cols {
		if c.show {
			header = append(header, c.column)
		}
	}
	rows := make([]row, len(cells))
	for i := range cells {
		for _, c := range cols {
			if c.show {
				rows[i].Fields = append(rows[i].Fields, field{c.text(&cells[i]), c.Left})
			}
		}
		rows[i].Disagree = v.disagrees(i)
	}
	return header, rows
}

// settings lists the run's environment and the matrix's dimensions.
func (v *view) settings() []labelled {
	s := &v.run.summary
	t := s.Tool
	out := []labelled{
		{"Run directory", v.run.dir},
		{"Schema", orDash(s.Schema)},
		{"State", stateText(s.State)},
		{"Started", stamp(s.Started)},
		{"Finished", stamp(s.Finished)},
	}
	if !s.Started.IsZero() && s.Finished.After(s.Started) {
		out = append(out, labelled{"Duration", s.Finished.Sub(s.Started).Round(100 * time.Millisecond).String()})
	}
	version := orDash(t.Version)
	if t.Commit != "" {
		version += " (commit " + t.Commit + ")"
	}
	out = append(out,
		labelled{"idlerace", version},
		labelled{"Go", orDash(t.Go)},
		labelled{"OS / arch", orDash(t.OS) + " / " + orDash(t.Arch)},
		labelled{"CPUs", cpus(t)},
	)
	distinct := func(f func(*results.Cell) string) string {
		var vals []string
		for i := range s.Cells {
			if x := f(&s.Cells[i]); !slices.Contains(vals, x) {
				vals = append(vals, x)
			}
		}
		return orDash(strings.Join(vals, ", "))
	}
	out = append(out,
		labelled{"Strategies", distinct(func(c *results.Cell) string { return c.Strategy })},
		labelled{"Skews", distinct(func(c *results.Cell) string { return c.Skew })},
		labelled{"Latencies", distinct(func(c *results.Cell) string { return c.Latency })},
		labelled{"Upstreams", distinct(func(c *results.Cell) string { return pathOf(c) })},
		labelled{"Loads", distinct(func(c *results.Cell) string { return c.Load })},
		labelled{"Idle timeout T", distinct(func(c *results.Cell) string { return fmt.Sprintf("%g ms", c.IdleTimeoutMS) })},
		labelled{"Repeats", distinct(func(c *results.Cell) string { return fmt.Sprint(c.Repeat) })},
	)
	return out
}

func stateText(state string) string {
	switch state {
	case "complete":
		return "complete run"
	case "partial":
		return "PARTIAL run"
	case "":
		return "state unknown"
	}
	return "state " + state
}

// when is "2026-11-25 08:29:29 UTC, 31.6 s" for the subtitle.
func when(s *results.Summary) string {
	if s.Started.IsZero() {
		return ""
	}
	out := stamp(s.Started)
	if s.Finished.After(s.Started) {
		out += fmt.Sprintf(", %.1f s", s.Finished.Sub(s.Started).Seconds())
	}
	return out
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func ci(b [2]float64) string { return strings.TrimSuffix(pct(b[0]), "%") + "–" + pct(b[1]) }

// cellCondition names a cell's conditions for the disagreement table.
func cellCondition(c *results.Cell) string {
	parts := []string{"skew " + orDash(c.Skew), "latency " + orDash(c.Latency), orDash(pathOf(c))}
	if c.Repeat != 0 {
		parts = append(parts, fmt.Sprintf("repeat %d", c.Repeat))
	}
	return strings.Join(parts, " · ")
}

func pngName(chart string) string { return "report-" + chart + ".png" }

// deltaPP is a cell's measured minus predicted reset rate in percentage points, with
// its sign ("+1.4", "-0.2"); a difference that rounds to zero reads "+0.0", never
// "-0.0".
func deltaPP(c *results.Cell) string {
	s := fmt.Sprintf("%+.1f", 100*(c.ResetRate-c.PredictedResetRate))
	if s == "-0.0" {
		return "+0.0"
	}
	return s
}

// disagreementCount is the summary card's count of the cells the model does not explain,
// by the rule the findings use (results.ModelDisagrees), with how many of them lie
// beyond the report's own DisagreementThreshold (those its tables list and outline), so
// that the card and the findings above it never disagree.
func (v *view) disagreementCount() string {
	cells := v.run.summary.Cells
	n := 0
	for i := range cells {
		if results.ModelDisagrees(&cells[i]) {
			n++
		}
	}
	out := fmt.Sprintf("%d of %d cells", n, len(cells))
	if n > 0 {
		out += fmt.Sprintf(" (%d by more than %g pp)", len(v.disagree), 100*DisagreementThreshold)
	}
	return out
}
