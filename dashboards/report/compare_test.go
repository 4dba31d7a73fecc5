package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/idlerace/idlerace/dashboards/report/reporttest"
)

// Two runs side by side: every cell of both appears, labelled by its run, and each
// chart is written.
func TestWriteCompareShowsBothRunsSideBySide(t *testing.T) {
	base := writeSynthetic(t, reporttest.Small())
	o := reporttest.Small()
	o.Seed++
	next := writeSynthetic(t, o)
	out := t.TempDir()
	paths, err := WriteCompare(base, next, out)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths.Charts) != len(chartOrder) {
		t.Fatalf("charts %v", paths.Charts)
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"· base", "· new"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md does not show %q cells", want)
		}
	}
	html, err := os.ReadFile(paths.HTML)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(html), "· new"); n < 2 {
		t.Errorf("report.html names the new run's cells %d times", n)
	}
	if _, err := WriteCompare(base, filepath.Join(out, "missing"), out); err == nil {
		t.Error("a missing run directory was accepted")
	}
}
