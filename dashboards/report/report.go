package report

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/idlerace/idlerace/results"
)

// Paths names the files Write wrote.
type Paths struct {
	// HTML is report.html: the whole report in one file.
	HTML string
	// Markdown is report.md: the compact table and the disagreements.
	Markdown string
	// Charts are the PNG files, one per chart: report-race-curve.png,
	// report-race-window.png,
	// report-reset-heatmap.png, report-latency.png, report-cost.png.
	Charts []string
	// Notices repeats the banner at the top of the report (a partial run, a summary of
	// another schema), so a caller can say it on stderr too. Empty for a complete run.
	Notices []string
}

// chartOrder is the order charts appear in the page and in Paths.Charts.
var chartOrder = []string{"race-curve", "race-window", "reset-heatmap", "latency", "cost"}

// Write reads the run directory runDir and writes report.html, report.md and a PNG of
// each chart into outDir (runDir when outDir is empty; created if missing). Each file
// is written atomically.
//
// A partial run or a summary of another schema is reported under a banner, not
// refused. The error is an *InputError when runDir, or its summary.json, cannot be
// read at all; any other error is a failure to render or to write.
func Write(runDir, outDir string) (Paths, error) {
	r, err := load(runDir)
	if err != nil {
		return Paths{}, err
	}
	if outDir == "" {
		outDir = runDir
	}
	return write(r, outDir)
}

// WriteCompare writes the same report for two runs side by side into outDir: each
// cell's upstream is labelled "· base" or "· new", so every chart and table shows the
// two runs' conditions next to each other (idlerace compare --report DIR).
func WriteCompare(baseDir, newDir, outDir string) (Paths, error) {
	base, err := load(baseDir)
	if err != nil {
		return Paths{}, err
	}
	next, err := load(newDir)
	if err != nil {
		return Paths{}, err
	}
	both := &run{dir: baseDir + " vs " + newDir, summary: base.summary}
	both.summary.Cells = nil
	for _, side := range []struct {
		label string
		r     *run
	}{{"base", base}, {"new", next}} {
		for i, c := range side.r.summary.Cells {
			c.Upstream += " · " + side.label
			both.summary.Cells = append(both.summary.Cells, c)
			both.hists = append(both.hists, side.r.hists[i])
		}
		for _, n := range side.r.notices {
			both.notices = append(both.notices, side.label+": "+n)
		}
		for _, n := range side.r.notes {
			both.notes = append(both.notes, side.label+": "+n)
		}
	}
	if next.summary.Finished.After(both.summary.Finished) {
		both.summary.Finished = next.summary.Finished
	}
	return write(both, outDir)
}

func write(r *run, outDir string) (Paths, error) {
	v := newView(r)
	charts, err := v.renderCharts()
	if err != nil {
		return Paths{}, err
	}
	html, err := v.renderHTML(charts)
	if err != nil {
		return Paths{}, fmt.Errorf("report.html: %w", err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return Paths{}, err
	}
	p := Paths{
		HTML:     filepath.Join(outDir, "report.html"),
		Markdown: filepath.Join(outDir, "report.md"),
		Notices:  r.notices,
	}
	var pngs []string
	for _, name := range chartOrder {
		path := filepath.Join(outDir, pngName(name))
		if err := results.WriteFileAtomic(path, charts[name].png, 0o644); err != nil {
			return Paths{}, err
		}
		p.Charts = append(p.Charts, path)
		pngs = append(pngs, pngName(name))
	}
	if err := results.WriteFileAtomic(p.Markdown, v.renderMarkdown(pngs), 0o644); err != nil {
		return Paths{}, err
	}
	if err := results.WriteFileAtomic(p.HTML, html, 0o644); err != nil {
		return Paths{}, err
	}
	return p, nil
}

// renderCharts draws every chart as SVG and PNG.
func (v *view) renderCharts() (map[string]chart, error) {
	build := map[string]func() (figure, error){
		"race-curve":    v.raceFigure,
		"race-window":   v.raceWindowFigure,
		"reset-heatmap": v.heatmapFigure,
		"latency":       v.latencyFigure,
		"cost":          v.costFigure,
	}
	out := make(map[string]chart, len(build))
	for _, name := range chartOrder {
		f, err := build[name]()
		if err != nil {
			return nil, fmt.Errorf("chart %s: %w", name, err)
		}
		c, err := f.render()
		if err != nil {
			return nil, fmt.Errorf("chart %s: %w", name, err)
		}
		out[name] = c
	}
	return out, nil
}
