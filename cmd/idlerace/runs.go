package main

import (
	"os"
	"path/filepath"

	"github.com/idlerace/idlerace/results"
)

// readRun reads a run directory's summary (or a summary.json given directly); an
// unreadable one is bad input.
func readRun(path string) (*results.Summary, error) {
	p := path
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		p = filepath.Join(path, "summary.json")
	}
	s, err := results.ReadSummary(p)
	if err != nil {
		return nil, badInput("%v", err)
	}
	return s, nil
}
