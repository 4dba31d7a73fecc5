package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/idlerace/idlerace/results"
)

// InputError says that the run directory, or its summary.json, could not be read at
// all: nothing to report on. Path names the directory or file. A command maps it to
// exit code 2 (bad input).
type InputError struct {
	Path string
	Err  error
}

func (e *InputError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// run is a run directory as read for a report: the summary (complete or as much of it
// as could be read), the banner lines that say why it may not be what it seems, and
// each cell's latency histogram where its .hlog could be read.
type run struct {
	dir     string
	summary results.Summary
	// notices are the banner at the top of the report: a partial run, a summary of
	// another schema, nothing recorded. Empty for a complete run of this schema.
	notices []string
	// notes are smaller problems shown under the banner: a missing or unreadable
	// .hlog, for example. Each names the file.
	notes []string
	// hists[i] is cell i's latency histogram, nil when its .hlog is missing.
	hists []*hdrhistogram.Histogram
	// matrixYAML is the run's matrix.yaml as run, when the directory has one.
	matrixYAML string
}

// summaryVersion is the major version of results.Schema ("idlerace.summary/v1" -> 1).
var summaryVersion, _ = schemaVersion(results.Schema)

// load reads runDir. It fails only when there is no summary to read: the directory is
// missing or not a directory, or summary.json is missing, unreadable or not JSON.
// Everything else (a partial run, another schema, a field of the wrong type, a missing
// .hlog) becomes a notice or a note and the report goes on with what was read.
func load(runDir string) (*run, error) {
	fi, err := os.Stat(runDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, &InputError{runDir, errors.New("no such run directory")}
	case err != nil:
		return nil, &InputError{runDir, fmt.Errorf("cannot read run directory: %w", unwrapPath(err))}
	case !fi.IsDir():
		return nil, &InputError{runDir, errors.New("not a directory (want a run directory holding summary.json)")}
	}
	r := &run{dir: runDir}
	sumPath := filepath.Join(runDir, "summary.json")
	data, err := os.ReadFile(sumPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, &InputError{sumPath, errors.New("missing: is this a run directory (idlerace run --out DIR)?")}
	case err != nil:
		return nil, &InputError{sumPath, fmt.Errorf("cannot read: %w", unwrapPath(err))}
	}
	var head struct {
		Schema *string `json:"schema"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, &InputError{sumPath, fmt.Errorf("not a summary: %w", err)}
	}

	if head.Schema != nil && *head.Schema == results.Schema {
		s, err := results.ReadSummary(sumPath)
		if err == nil {
			r.summary = *s
		} else {
			r.decodeTolerant(data)
			r.notices = append(r.notices, fmt.Sprintf(
				"summary.json does not read as %s (%v); this report shows the fields that could be read.",
				results.Schema, err))
		}
	} else {
		r.notices = append(r.notices, schemaNotice(head.Schema))
		if err := r.decodeTolerant(data); err != nil {
			r.notices = append(r.notices, fmt.Sprintf("Some fields could not be read as %s: %v.", results.Schema, err))
		}
	}
	r.notices = append(r.notices, stateNotices(&r.summary)...)
	r.readHlogs()
	if b, err := os.ReadFile(filepath.Join(runDir, "matrix.yaml")); err == nil {
		r.matrixYAML = string(b)
	}
	return r, nil
}

// decodeTolerant reads data into r.summary as far as it goes: encoding/json skips a
// field whose type does not match and goes on, reporting the first such field.
func (r *run) decodeTolerant(data []byte) error {
	r.summary = results.Summary{}
	return json.Unmarshal(data, &r.summary)
}

// schemaNotice is the banner line for a summary whose schema is not results.Schema.
func schemaNotice(schema *string) string {
	if schema == nil {
		return fmt.Sprintf("summary.json has no \"schema\" field, so it predates %s or was not written by idlerace. "+
			"It was read as %s as far as possible: numbers may be missing or mean something else.", results.Schema, results.Schema)
	}
	v, ok := schemaVersion(*schema)
	switch {
	case ok && v < summaryVersion:
		return fmt.Sprintf("summary.json is schema %q, older than %s which this report reads. "+
			"It was read as far as possible: fields added since are empty, renamed ones are missing.", *schema, results.Schema)
	case ok && v > summaryVersion:
		return fmt.Sprintf("summary.json is schema %q, newer than %s which this report reads. "+
			"It was read as far as possible: fields this build does not know are left out; use a newer idlerace.", *schema, results.Schema)
	}
	return fmt.Sprintf("summary.json is schema %q, not an idlerace summary (%s). "+
		"It was read as far as possible: this report may be empty or wrong.", *schema, results.Schema)
}

// schemaVersion returns N for "idlerace.summary/vN"; ok is false for any other name.
func schemaVersion(schema string) (n int, ok bool) {
	rest, ok := strings.CutPrefix(schema, "idlerace.summary/v")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 || strings.HasPrefix(rest, "+") {
		return 0, false
	}
	return n, true
}

// stateNotices are the banner lines about the run's state and size.
func stateNotices(s *results.Summary) []string {
	var out []string
	switch s.State {
	case "complete":
	case "partial":
		out = append(out, fmt.Sprintf("Partial run: it was interrupted after %d cell(s). "+
			"The charts and tables below show only the cells that finished; the rest of the matrix is missing.", len(s.Cells)))
	case "":
		out = append(out, "summary.json records no state: the run may not have finished.")
	default:
		out = append(out, fmt.Sprintf("summary.json records state %q (known: complete, partial).", s.State))
	}
	if len(s.Cells) == 0 {
		out = append(out, "No cells were recorded: there is nothing to chart.")
	}
	return out
}

// readHlogs reads each cell's .hlog; a missing or unreadable one becomes a note and a
// gap in the latency chart.
func (r *run) readHlogs() {
	r.hists = make([]*hdrhistogram.Histogram, len(r.summary.Cells))
	var missing []string
	for i, c := range r.summary.Cells {
		switch {
		case c.Hlog == "":
			missing = append(missing, cellName(&c))
			continue
		case !filepath.IsLocal(filepath.FromSlash(c.Hlog)):
			r.notes = append(r.notes, fmt.Sprintf("%s: hlog %q is outside the run directory; not read.", cellName(&c), c.Hlog))
			continue
		}
		path := filepath.Join(r.dir, filepath.FromSlash(c.Hlog))
		h, err := results.ReadHlog(path)
		if err != nil {
			r.notes = append(r.notes, fmt.Sprintf("%s: %v; its latency curve is left out.", cellName(&c), unwrapPathKeep(err, path)))
			continue
		}
		r.hists[i] = h
	}
	if len(missing) > 0 {
		r.notes = append(r.notes, fmt.Sprintf("%d cell(s) name no .hlog file (%s); their latency curves are left out.",
			len(missing), abbreviate(missing, 3)))
	}
}

// cellName names a cell for a note: "blind / none / 0 / builtin".
func cellName(c *results.Cell) string {
	return strings.Join([]string{orDash(c.Strategy), orDash(c.Skew), orDash(c.Latency), orDash(pathOf(c))}, " / ")
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// abbreviate joins the first n of items and says how many more there are.
func abbreviate(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, "; ")
	}
	return fmt.Sprintf("%s; and %d more", strings.Join(items[:n], "; "), len(items)-n)
}

// unwrapPath drops an *fs.PathError's own path, for messages that name it already.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// unwrapPathKeep returns err naming path exactly once.
func unwrapPathKeep(err error, path string) string {
	msg := unwrapPath(err).Error()
	if strings.Contains(msg, path) {
		return msg
	}
	return path + ": " + msg
}

// cpus is the machine's CPU count, with the run's GOMAXPROCS beside it where recorded:
// idlerace runs more Ps than cores, and a reader comparing runs should see both.
func cpus(t results.Tool) string {
	if t.Procs > 0 && t.Procs != t.CPUs {
		return fmt.Sprintf("%d (GOMAXPROCS %d)", t.CPUs, t.Procs)
	}
	return fmt.Sprint(t.CPUs)
}
