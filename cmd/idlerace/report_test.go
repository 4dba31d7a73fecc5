package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/idlerace/idlerace/dashboards/report/reporttest"
)

func syntheticRun(t *testing.T, o reporttest.Options) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := reporttest.WriteRun(dir, o); err != nil {
		t.Fatal(err)
	}
	return dir
}

// report RUN_DIR writes the report into the run directory and lists what it wrote,
// one path a line; --out writes it elsewhere and leaves the run directory alone.
func TestReportWritesHTMLMarkdownAndCharts(t *testing.T) {
	dir := syntheticRun(t, reporttest.Small())
	code, out, stderr := run(t, "report", dir)
	if code != exitOK || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	want := []string{"report.html", "report.md", "report-race-curve.png", "report-race-window.png", "report-reset-heatmap.png", "report-latency.png", "report-cost.png"}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(want) {
		t.Fatalf("stdout %q: want %d paths", out, len(want))
	}
	for i, name := range want {
		if lines[i] != filepath.Join(dir, name) {
			t.Errorf("line %d: %q, want %q", i+1, lines[i], filepath.Join(dir, name))
		}
		if fi, err := os.Stat(lines[i]); err != nil || fi.Size() < 1000 {
			t.Errorf("%s: %v, %d bytes", lines[i], err, sizeOf(fi))
		}
	}

	elsewhere := filepath.Join(t.TempDir(), "reports", "today")
	src := syntheticRun(t, reporttest.Small())
	code, out, stderr = run(t, "report", src, "--out", elsewhere)
	if code != exitOK {
		t.Fatalf("--out: exit %d, stderr %q", code, stderr)
	}
	if !strings.HasPrefix(out, filepath.Join(elsewhere, "report.html")+"\n") {
		t.Errorf("--out: stdout %q, want report.html in %s first", out, elsewhere)
	}
	if _, err := os.Stat(filepath.Join(src, "report.html")); err == nil {
		t.Error("--out also wrote into the run directory")
	}
}

func sizeOf(fi os.FileInfo) int64 {
	if fi == nil {
		return 0
	}
	return fi.Size()
}

// A partial run or a summary of another schema is reported (exit 0) with a banner, and
// the banner is said on stderr too.
func TestReportOfPartialOrOtherSchemaRunWarnsAndSucceeds(t *testing.T) {
	o := reporttest.Small()
	o.State = "partial"
	partial := syntheticRun(t, o)

	old := syntheticRun(t, reporttest.Small())
	path := filepath.Join(old, "summary.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b = []byte(strings.Replace(string(b), `"schema": "idlerace.summary/v1"`, `"schema": "idlerace.summary/v0"`, 1))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}

	for dir, want := range map[string]string{
		partial: "Partial run: it was interrupted after 6 cell(s).",
		old:     `summary.json is schema "idlerace.summary/v0", older than idlerace.summary/v1`,
	} {
		code, _, stderr := run(t, "report", dir)
		if code != exitOK {
			t.Errorf("%s: exit %d, want 0: %s", dir, code, stderr)
			continue
		}
		if !strings.HasPrefix(stderr, "idlerace report: warning: "+want) {
			t.Errorf("%s: stderr %q, want a warning %q", dir, stderr, want)
		}
		html, err := os.ReadFile(filepath.Join(dir, "report.html"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(html), `<div class="banner" role="alert">`) {
			t.Errorf("%s: report.html has no banner", dir)
		}
	}
}

// An unreadable or missing run directory is bad input: exit 2, one line on stderr
// naming the path.
func TestReportOfUnreadableRunIsExitCode2NamingThePath(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "summary.json")
	if err := os.WriteFile(file, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	noSummary := filepath.Join(base, "empty")
	if err := os.Mkdir(noSummary, 0o755); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(base, "broken")
	if err := os.Mkdir(broken, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(broken, "summary.json"), []byte(`{"schema": "idlerace.summary/v1", "cells": [`), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"report", filepath.Join(base, "missing")}, filepath.Join(base, "missing") + ": no such run directory"},
		{[]string{"report", file}, file + ": not a directory"},
		{[]string{"report", noSummary}, filepath.Join(noSummary, "summary.json") + ": missing"},
		{[]string{"report", broken}, filepath.Join(broken, "summary.json") + ": not a summary"},
		{[]string{"report"}, "idlerace report takes one run directory, got 0 arguments"},
		{[]string{"report", noSummary, broken}, "idlerace report takes one run directory, got 2 arguments"},
	}
	for _, c := range cases {
		code, stdout, stderr := run(t, c.args...)
		if code != exitBadInput {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", c.args, code, stderr)
		}
		if !strings.HasPrefix(stderr, "idlerace: "+c.want) {
			t.Errorf("%v: stderr %q, want it to start %q", c.args, stderr, "idlerace: "+c.want)
		}
		if n := strings.Count(strings.TrimRight(stderr, "\n"), "\n"); n != 0 {
			t.Errorf("%v: stderr has %d lines, want 1: %q", c.args, n+1, stderr)
		}
		if stdout != "" {
			t.Errorf("%v: stdout %q, want nothing", c.args, stdout)
		}
	}
}
