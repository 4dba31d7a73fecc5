package results

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tableCells covers a lossy strategy, a clean one, a cell with no requests and one that
// never reused a connection (n/a).
func tableCells() []Cell {
	cells := []Cell{
		{
			Strategy: "blind", Skew: "uniform:±10ms", Load: "sweep",
			Requests: 1000, Reused: 628, Stale: 334, NewConns: 372, Retries: 0,
			LatencyUS:          LatencyUS{P50: 1234, P99: 45678},
			PredictedResetRate: 0.3412,
			Server:             Server{ClosesWithUnread: 330, UnmatchedFailures: 4},
		},
		{
			Strategy: "read-probe+retry-only:max=1", Skew: "offset:-5ms", Load: "lull:gap=4.9s",
			Requests: 20000, Reused: 19948, Stale: 0, NewConns: 52, Retries: 17,
			LatencyUS:          LatencyUS{P50: 998, P99: 5_000_123},
			PredictedResetRate: 0.0009,
			Server:             Server{ClosesWithUnread: 17},
		},
		{Strategy: "timeout-margin:margin=10ms", Skew: "", Load: "constant"},
		{
			Strategy: "watch", Skew: "none", Load: "sweep", Requests: 223, NewConns: 239,
			Status: StatusClasses{S2xx: 223}, ClosingResponses: 223,
			LatencyUS: LatencyUS{P50: 840, P99: 1530}, PredictedResetRate: 0.004,
		},
	}
	for i := range cells {
		cells[i].Finish()
	}
	return cells
}

func TestRenderTableMatchesGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := RenderTable(&buf, tableCells()); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "table.golden")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./results/ -run TestRenderTable -update to create it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("table differs from %s (rerun with -update if intended):\n got:\n%s\nwant:\n%s", golden, buf.Bytes(), want)
	}
}

func TestRenderTableFormatsNumbers(t *testing.T) {
	var buf bytes.Buffer
	if err := RenderTable(&buf, tableCells()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d lines, want a header and 4 rows:\n%s", len(lines), buf.String())
	}
	if h := strings.Join(strings.Fields(lines[0]), " "); h !=
		"STRATEGY SKEW LOAD REQS REUSED STALE RESET% 95% CI PRED% WINDOWms RETRIES CONN/1k P50ms P99ms SRV UNREAD UNMATCHED" {
		t.Errorf("header = %q", h)
	}
	for i, want := range [][]string{
		// 334/1000 stale: 33.4%, Wilson [30.5, 36.4]; 372 conns per 1000 requests.
		{"blind", "uniform:±10ms", "sweep", "1000", "628", "334", "33.4", "30.5–36.4", "34.1", "0.00", "0", "372.0", "1.23", "45.68", "330", "4"},
		// 0/20000 stale: Wilson hi = 3.84/20003.84 = 0.02%; 52 conns per 20000 = 2.6 per 1k.
		{"read-probe+retry-only:max=1", "offset:-5ms", "lull:gap=4.9s", "20000", "19948", "0", "0.0", "0.0–0.0", "0.1", "0.00", "17", "2.6", "1.00", "5000.12", "17", "0"},
		{"timeout-margin:margin=10ms", "-", "constant", "0", "0", "0", "0.0", "0.0–0.0", "0.0", "0.00", "0", "0.0", "0.00", "0.00", "0", "0"},
		// Every response said Connection: close: the race was not measured.
		{"watch", "none", "sweep", "223", "0", "0", "n/a", "n/a", "0.4", "0.00", "0", "1071.7", "0.84", "1.53", "0", "0"},
	} {
		if got := strings.Fields(lines[i+1]); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("row %d:\n got %q\nwant %q", i+1, got, want)
		}
	}
}

func TestRenderTableAlignsColumns(t *testing.T) {
	var buf bytes.Buffer
	if err := RenderTable(&buf, tableCells()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	// Every column starts at the same rune offset on every line; check REQS and
	// UNMATCHED, which sit after the variable-width spec columns and the en dash.
	for _, col := range []string{"REQS", "UNMATCHED"} {
		at := len([]rune(lines[0][:strings.Index(lines[0], col)]))
		for i, l := range lines[1:] {
			r := []rune(l)
			if at >= len(r) || r[at] == ' ' || r[at-1] != ' ' {
				t.Errorf("row %d: column %s does not start at rune %d:\n%s\n%s", i+1, col, at, lines[0], l)
			}
		}
	}
}

func TestRenderTableKeepsRowsInGivenOrderAndOnOneLine(t *testing.T) {
	cells := tableCells()
	cells[0], cells[2] = cells[2], cells[0]
	cells[1].Strategy = "evil\tstrategy\nname"
	var buf bytes.Buffer
	if err := RenderTable(&buf, cells); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 1+len(cells) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), 1+len(cells), buf.String())
	}
	for i, prefix := range []string{"timeout-margin:margin=10ms", "evil strategy name", "blind", "watch"} {
		if !strings.HasPrefix(lines[i+1], prefix+" ") {
			t.Errorf("row %d = %q, want it to start with %q", i+1, lines[i+1], prefix)
		}
	}
}

func TestRenderTableOfNoCellsIsJustTheHeader(t *testing.T) {
	var buf bytes.Buffer
	if err := RenderTable(&buf, nil); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\n"); n != 1 || !strings.HasPrefix(buf.String(), "STRATEGY") {
		t.Errorf("output %q, want one header line", buf.String())
	}
}

// failingWriter fails every write, like a closed pipe.
type failingWriter struct{}

var errWrite = errors.New("broken pipe")

func (failingWriter) Write([]byte) (int, error) { return 0, errWrite }

func TestRenderersReturnWriteErrors(t *testing.T) {
	if err := RenderTable(failingWriter{}, tableCells()); !errors.Is(err, errWrite) {
		t.Errorf("RenderTable error = %v, want %v", err, errWrite)
	}
	if err := RenderJSON(failingWriter{}, sampleSummary()); !errors.Is(err, errWrite) {
		t.Errorf("RenderJSON error = %v, want %v", err, errWrite)
	}
}

func TestRenderJSONIsWhatWriteSummaryStores(t *testing.T) {
	s := sampleSummary()
	path := filepath.Join(t.TempDir(), "summary.json")
	if err := WriteSummary(path, s); err != nil {
		t.Fatal(err)
	}
	stored, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := RenderJSON(&buf, s); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), stored) {
		t.Errorf("RenderJSON output (%d bytes) differs from summary.json (%d bytes)", buf.Len(), len(stored))
	}
	if err := RenderJSON(&buf, nil); err == nil {
		t.Error("no error rendering a nil summary")
	}
}
