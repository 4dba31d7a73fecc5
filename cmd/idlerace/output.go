package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/idlerace/idlerace/results"
)

// writeSummary prints a summary as a table, its findings first, or as summary.json's JSON.
func writeSummary(w io.Writer, format string, s *results.Summary) error {
	if format == "json" {
		return results.RenderJSON(w, s)
	}
	if err := results.RenderFindings(w, results.Findings(s.Cells)); err != nil {
		return err
	}
	return results.RenderTable(w, s.Cells)
}

// resultsFile streams vegeta results to a temporary file beside path and renames it into
// place on commit, so that a crashed run leaves no half-written file under the name.
type resultsFile struct {
	path string
	tmp  *os.File
	enc  vegeta.Encoder
}

// openResults opens --results PATH; the encoding is --results-format, or else the
// extension (.csv, .json; anything else is vegeta's gob).
func openResults(path, format string) (*resultsFile, error) {
	if path == "" {
		return nil, nil
	}
	if format == "" {
		switch strings.ToLower(filepath.Ext(path)) {
		case ".csv":
			format = "csv"
		case ".json":
			format = "json"
		default:
			format = "gob"
		}
	}
	if format != "gob" && format != "csv" && format != "json" {
		return nil, badInput("--results-format %q: want gob, csv or json (vegeta's encodings)", format)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return nil, badInput("--results %s: %v", path, err)
	}
	rf := &resultsFile{path: path, tmp: tmp}
	switch format {
	case "csv":
		rf.enc = vegeta.NewCSVEncoder(tmp)
	case "json":
		rf.enc = vegeta.NewJSONEncoder(tmp)
	default:
		rf.enc = vegeta.NewEncoder(tmp)
	}
	return rf, nil
}

func (rf *resultsFile) encoder() vegeta.Encoder {
	if rf == nil {
		return nil
	}
	return rf.enc
}

// commit syncs and renames the file into place; abort removes it.
func (rf *resultsFile) commit() error {
	if rf == nil {
		return nil
	}
	if err := rf.tmp.Sync(); err != nil {
		rf.abort()
		return err
	}
	if err := rf.tmp.Close(); err != nil {
		_ = os.Remove(rf.tmp.Name())
		return err
	}
	if err := os.Rename(rf.tmp.Name(), rf.path); err != nil {
		_ = os.Remove(rf.tmp.Name())
		return fmt.Errorf("--results: %w", err)
	}
	return nil
}

func (rf *resultsFile) abort() {
	if rf == nil {
		return
	}
	_ = rf.tmp.Close()
	_ = os.Remove(rf.tmp.Name())
}

// appendOrWrite appends data to path (as $GITHUB_STEP_SUMMARY expects), creating it.
func appendOrWrite(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
