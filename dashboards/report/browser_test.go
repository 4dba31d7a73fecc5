package report

// These tests look at report.html as a person would: in headless Chromium, opened from
// disk with no network, checking that every chart drew with data, that no text in a
// chart sits on other text, that the page logs no error and fetches nothing, and
// saving a screenshot.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/idlerace/idlerace/dashboards/report/reporttest"
)

// chromiumPath finds Debian's Chromium, or skips (fails under IDLERACE_REQUIRE_REAL=1).
func chromiumPath(t testing.TB) string {
	t.Helper()
	candidates := []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"}
	if p := os.Getenv("IDLERACE_CHROMIUM"); p != "" {
		candidates = []string{p}
	}
	for _, p := range candidates {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	msg := fmt.Sprintf("headless Chromium not found (looked at %s): install Debian's package chromium (apt-get install chromium)",
		strings.Join(candidates, ", "))
	if os.Getenv("IDLERACE_REQUIRE_REAL") == "1" {
		t.Fatal(msg + "; IDLERACE_REQUIRE_REAL=1 makes this a failure, not a skip")
	}
	t.Skip(msg)
	return ""
}

// newBrowser starts one headless Chromium for a test and its subtests, with a fresh
// profile and everything that could reach the network switched off.
func newBrowser(t testing.TB) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	// Start the browser now, so a broken install fails here with its own message.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start %s: %v", chromiumPath(t), err)
	}
	return bctx
}

// pageVisit is what a tab saw while it loaded one page.
type pageVisit struct {
	loadWall     time.Duration // Navigate until the load event, as the test saw it
	loadEventMS  float64       // navigation start to the end of the load event, as the browser measured it
	consoleLines []string      // console errors and uncaught exceptions
	warnings     []string
	requests     []string // every URL the page asked for
}

// visit opens path in a new tab of browser, runs check in it, and returns what the tab
// saw. The tab is closed when visit returns.
func visit(t testing.TB, browser context.Context, path string, check func(ctx context.Context)) pageVisit {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := chromedp.NewContext(browser)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)

	var (
		mu sync.Mutex
		v  pageVisit
		wg sync.WaitGroup
	)
	// Subscribe before navigating: both iterators buffer from here on.
	console := chromedp.Console(ctx)
	requests := chromedp.Events(ctx, network.RequestWillBeSent)
	wg.Add(2)
	go func() {
		defer wg.Done()
		for m, err := range console {
			if err != nil {
				return
			}
			mu.Lock()
			switch {
			case m.IsException(), m.Type == chromedp.ConsoleError:
				v.consoleLines = append(v.consoleLines, fmt.Sprintf("%s %s:%d %s", m.Type, m.URL, m.Line+1, m.Text))
			case m.Type == chromedp.ConsoleWarning:
				v.warnings = append(v.warnings, m.Text)
			}
			mu.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		for ev, err := range requests {
			if err != nil {
				return
			}
			mu.Lock()
			v.requests = append(v.requests, ev.Request.URL)
			mu.Unlock()
		}
	}()

	start := time.Now()
	if err := chromedp.Do(ctx, chromedp.Navigate((&url.URL{Scheme: "file", Path: abs}).String())); err != nil {
		t.Fatalf("open %s: %v", abs, err)
	}
	loadWall := time.Since(start)
	// Fonts are part of rendering: wait until the embedded one is ready.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.fonts.ready.then(() => true)`, chromedp.EvalAwaitPromise)); err != nil {
		t.Fatalf("wait for fonts: %v", err)
	}
	loadEventMS, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`performance.getEntriesByType("navigation")[0].loadEventEnd`))
	if err != nil {
		t.Fatalf("read navigation timing: %v", err)
	}
	if check != nil {
		check(ctx)
	}
	cancelTimeout()
	cancel()
	wg.Wait()
	v.loadWall, v.loadEventMS = loadWall, loadEventMS
	return v
}

// chartLook is what the page shows of one chart.
type chartLook struct {
	Name       string   `json:"name"`
	Width      float64  `json:"width"`
	Height     float64  `json:"height"`
	Right      float64  `json:"right"`
	Paths      int      `json:"paths"`
	LongPaths  int      `json:"longPaths"` // paths of at least 10 segments: plotted lines
	Texts      int      `json:"texts"`
	EmptyTexts int      `json:"emptyTexts"`
	Overlaps   []string `json:"overlaps"`
	FontFamily string   `json:"fontFamily"`
}

// lookJS measures every chart as laid out: its box, its paths, and pairs of text
// boxes in it that overlap: by more than a pixel across and a fifth of a line down.
// (A text's box is its font's whole line height, so two lines of one label may touch
// by a pixel without their letters meeting.)
const lookJS = `(() => {
  const vw = document.documentElement.clientWidth;
  return [...document.querySelectorAll("figure.chart")].map(fig => {
    const svg = fig.querySelector("svg");
    if (!svg) return {name: fig.dataset.chart, width: 0, height: 0, right: 0, paths: 0, longPaths: 0, texts: 0, emptyTexts: 0, overlaps: [], fontFamily: ""};
    const r = svg.getBoundingClientRect();
    const paths = [...svg.querySelectorAll("path")];
    const long = paths.filter(p => ((p.getAttribute("d") || "").match(/[LlCc]/g) || []).length >= 10);
    const texts = [...svg.querySelectorAll("text")].filter(t => t.textContent.trim() !== "");
    const boxes = texts.map(t => ({t: t.textContent, b: t.getBoundingClientRect()}));
    const overlaps = [];
    for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i].b, b = boxes[j].b;
      const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
      const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      if (w > 1 && h > 0.2 * Math.min(a.height, b.height)) overlaps.push(boxes[i].t + " / " + boxes[j].t + " (" + w.toFixed(1) + "×" + h.toFixed(1) + " of " + a.height.toFixed(1) + ")");
    }
    const first = texts[0];
    return {name: fig.dataset.chart, width: r.width, height: r.height, right: r.right - vw,
      paths: paths.length, longPaths: long.length, texts: texts.length,
      emptyTexts: texts.filter(t => t.getComputedTextLength() === 0).length, overlaps,
      fontFamily: first ? getComputedStyle(first).fontFamily : ""};
  });
})()`

func lookAtCharts(t *testing.T, ctx context.Context) []chartLook {
	t.Helper()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](lookJS))
	if err != nil {
		t.Fatalf("measure charts: %v", err)
	}
	var looks []chartLook
	if err := json.Unmarshal(raw, &looks); err != nil {
		t.Fatalf("measure charts: %v: %s", err, raw)
	}
	return looks
}

// checkCharts asserts that the four charts drew with data: each has a size, stays in
// the page, draws its text in the embedded font with no text on other text, and has
// at least the paths its data needs (want: chart -> minimum, counting plotted lines
// for the line charts and all paths for the others).
func checkCharts(t *testing.T, looks []chartLook, wantLines, wantPaths map[string]int) {
	t.Helper()
	seen := map[string]bool{}
	for _, l := range looks {
		seen[l.Name] = true
		if l.Width < 300 || l.Height < 120 {
			t.Errorf("chart %s: drawn %.0f×%.0f px, want at least 300×120", l.Name, l.Width, l.Height)
		}
		if l.Right > 0.5 {
			t.Errorf("chart %s: sticks out of the page by %.0f px", l.Name, l.Right)
		}
		if l.LongPaths < wantLines[l.Name] {
			t.Errorf("chart %s: %d plotted lines (paths of ≥10 segments), want ≥ %d", l.Name, l.LongPaths, wantLines[l.Name])
		}
		if l.Paths < wantPaths[l.Name] {
			t.Errorf("chart %s: %d paths, want ≥ %d", l.Name, l.Paths, wantPaths[l.Name])
		}
		if l.Texts < 5 || l.EmptyTexts > 0 {
			t.Errorf("chart %s: %d texts, %d of them drawn with no width", l.Name, l.Texts, l.EmptyTexts)
		}
		if !strings.Contains(l.FontFamily, fontFamily) {
			t.Errorf("chart %s: text in font %q, want the embedded %q", l.Name, l.FontFamily, fontFamily)
		}
		if len(l.Overlaps) > 0 {
			t.Errorf("chart %s: %d pairs of overlapping text, e.g. %q", l.Name, len(l.Overlaps), l.Overlaps[:min(3, len(l.Overlaps))])
		}
	}
	for _, name := range chartOrder {
		if !seen[name] {
			t.Errorf("chart %s: not in the page", name)
		}
	}
}

// checkClean asserts the page logged no error and asked for nothing but itself and
// inline data.
func checkClean(t *testing.T, v pageVisit) {
	t.Helper()
	for _, l := range v.consoleLines {
		t.Errorf("console: %s", l)
	}
	for _, w := range v.warnings {
		t.Logf("console warning: %s", w)
	}
	if len(v.requests) == 0 {
		t.Errorf("saw no request at all, not even the page: is the network listener broken?")
	}
	for _, u := range v.requests {
		if !strings.HasPrefix(u, "file://") && !strings.HasPrefix(u, "data:") {
			t.Errorf("page asked for %s: the report must load nothing from outside", u)
		}
	}
	if n := len(v.requests); n > 2 {
		t.Errorf("page made %d requests (%v), want the page itself and at most its inline font", n, v.requests)
	}
}

// screenshot saves a full-page PNG of the tab at path; shrink re-encodes it with 256
// colours (for a file that is committed).
func screenshot(t *testing.T, ctx context.Context, path string, shrink bool) []byte {
	t.Helper()
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if shrink {
		if shot, err = shrinkPNG(shot); err != nil {
			t.Fatalf("shrink screenshot: %v", err)
		}
	}
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	t.Logf("screenshot %s: %d×%d px, %d KB", path, cfg.Width, cfg.Height, len(shot)/1024)
	return shot
}

// maxReportBytes is the size report.html must stay under for a 50-cell run.
const maxReportBytes = 2 << 20

func TestReportInBrowser(t *testing.T) {
	browser := newBrowser(t)

	t.Run("fifty-cells", func(t *testing.T) {
		dir := t.TempDir()
		o := reporttest.Fifty()
		if _, err := reporttest.WriteRun(dir, o); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		paths, err := Write(dir, "")
		if err != nil {
			t.Fatal(err)
		}
		gen := time.Since(start)
		fi, err := os.Stat(paths.HTML)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > maxReportBytes {
			t.Errorf("report.html for 50 cells is %d bytes, want ≤ %d", fi.Size(), maxReportBytes)
		}
		strategies, panels := len(o.Strategies), len(o.Skews)*len(o.Latencies)
		var looks []chartLook
		v := visit(t, browser, paths.HTML, func(ctx context.Context) {
			looks = lookAtCharts(t, ctx)
			screenshot(t, ctx, filepath.Join(t.ArtifactDir(), "report-50-cells.png"), false)
		})
		checkClean(t, v)
		checkCharts(t, looks,
			map[string]int{"race-curve": strategies * panels, "latency": strategies * panels},
			map[string]int{"reset-heatmap": strategies * panels, "cost": 2 * strategies})
		t.Logf("50-cell report: %d bytes (%.0f KB), generated in %v; browser load %v wall, load event at %.0f ms",
			fi.Size(), float64(fi.Size())/1024, gen.Round(time.Millisecond), v.loadWall.Round(time.Millisecond), v.loadEventMS)
	})

	t.Run("partial-run-banner", func(t *testing.T) {
		dir := t.TempDir()
		o := reporttest.Small()
		o.State = "partial"
		if _, err := reporttest.WriteRun(dir, o); err != nil {
			t.Fatal(err)
		}
		paths, err := Write(dir, "")
		if err != nil {
			t.Fatal(err)
		}
		v := visit(t, browser, paths.HTML, func(ctx context.Context) {
			type banner struct {
				Text string  `json:"text"`
				Top  float64 `json:"top"`
				H    float64 `json:"h"`
			}
			raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](`(() => { const b = document.querySelector(".banner");
				if (!b) return null; const r = b.getBoundingClientRect(); return {text: b.innerText, top: r.top, h: r.height}; })()`))
			if err != nil {
				t.Fatal(err)
			}
			var b *banner
			if err := json.Unmarshal(raw, &b); err != nil || b == nil {
				t.Fatalf("no banner on a partial run's report (%s)", raw)
			}
			if !strings.Contains(b.Text, "Partial run") || b.Top > 200 || b.H < 10 {
				t.Errorf("banner %q at y=%.0f px, height %.0f: want it saying \"Partial run\" within the first 200 px", b.Text, b.Top, b.H)
			}
		})
		checkClean(t, v)
	})

	// The check itself must see what it is there to see: a page with a console error,
	// a failed request and a remote font is caught.
	t.Run("checks-catch-a-broken-page", func(t *testing.T) {
		dir := t.TempDir()
		page := filepath.Join(dir, "broken.html")
		const broken = `<!doctype html><meta charset="utf-8"><title>broken</title>
<script>console.error("boom")</script><img src="missing.png"><p>hi</p>`
		if err := os.WriteFile(page, []byte(broken), 0o644); err != nil {
			t.Fatal(err)
		}
		v := visit(t, browser, page, nil)
		if len(v.consoleLines) < 2 {
			t.Errorf("console lines %q: want the console.error and the failed image", v.consoleLines)
		}
		if len(v.requests) < 2 {
			t.Errorf("requests %q: want the page and the image", v.requests)
		}
	})

	// With IDLERACE_REPORT_RUN set, report on that run directory (e.g. /tmp/run-default)
	// and, with IDLERACE_REPORT_SCREENSHOT, save the screenshot there (docs/report.png).
	t.Run("run", func(t *testing.T) {
		runDir := os.Getenv("IDLERACE_REPORT_RUN")
		if runDir == "" {
			t.Skip("set IDLERACE_REPORT_RUN to a run directory to report on it")
		}
		out := t.TempDir()
		paths, err := Write(runDir, out)
		if err != nil {
			t.Fatal(err)
		}
		shotPath, shrink := os.Getenv("IDLERACE_REPORT_SCREENSHOT"), true
		if shotPath == "" {
			shotPath, shrink = filepath.Join(t.ArtifactDir(), "report.png"), false
		}
		var looks []chartLook
		v := visit(t, browser, paths.HTML, func(ctx context.Context) {
			looks = lookAtCharts(t, ctx)
			screenshot(t, ctx, shotPath, shrink)
		})
		checkClean(t, v)
		checkCharts(t, looks, map[string]int{"race-curve": 1, "latency": 1}, map[string]int{"reset-heatmap": 1, "cost": 2})
	})
}

// BenchmarkLoadFiftyCellReportInBrowser measures how long Chromium takes to load and
// lay out the 50-cell report from disk (compare runs with benchstat).
func BenchmarkLoadFiftyCellReportInBrowser(b *testing.B) {
	browser := newBrowser(b)
	dir := b.TempDir()
	if _, err := reporttest.WriteRun(dir, reporttest.Fifty()); err != nil {
		b.Fatal(err)
	}
	p, err := Write(dir, "")
	if err != nil {
		b.Fatal(err)
	}
	var loadMS float64
	for b.Loop() {
		loadMS += visit(b, browser, p.HTML, nil).loadEventMS
	}
	b.ReportMetric(loadMS/float64(b.N), "load-event-ms")
}
