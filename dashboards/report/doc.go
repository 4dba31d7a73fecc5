// Package report turns a run directory (summary.json and the cells' .hlog files) into
// the reports people look at: report.html, one self-contained page that works offline
// from disk, with the race curve, a reset-rate heatmap, HdrHistogram latency
// percentiles, the cost view with its Pareto front, the summary table, the run's
// settings and the cells where measurement and model disagree; report.md, the same in
// brief as GitHub-flavoured Markdown for a pull request or $GITHUB_STEP_SUMMARY; and a
// PNG of each chart.
//
// Charts are drawn with gonum/plot: SVG (vgsvg) inline in the page and PNG (vgimg)
// beside it, both in the Go font, which the page embeds once so that the browser draws
// the text with the metrics gonum/plot laid it out with. The page has no script and
// loads nothing: no CDN, no network, no file but itself.
//
// A run that is partial, or whose summary.json has another schema, is reported as far
// as it can be read, under a banner that says so; only a directory with no readable
// summary.json at all is an error (*InputError).
//
// The package reads results and renders; it runs nothing and knows nothing of pools,
// upstreams or the matrix (DESIGN.md: dashboards -> results).
//
// The screenshot in docs/report.png is made by this package's browser test:
//
//	IDLERACE_REPORT_RUN=/tmp/run-default IDLERACE_REPORT_SCREENSHOT=$PWD/docs/report.png \
//	    go test -run 'TestReportInBrowser/^run$' ./dashboards/report/
package report
