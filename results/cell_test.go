package results

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestFinishDerivesRatesFromCounts(t *testing.T) {
	c := Cell{Requests: 1000, Stale: 50, NewConns: 37}
	c.Finish()
	if c.ResetRate != 0.05 {
		t.Errorf("ResetRate = %g, want 0.05", c.ResetRate)
	}
	if math.Abs(c.ResetRateCI95[0]-0.0381) > 0.00005 || math.Abs(c.ResetRateCI95[1]-0.0653) > 0.00005 {
		t.Errorf("ResetRateCI95 = %.4f, want [0.0381 0.0653]", c.ResetRateCI95)
	}
	if c.ConnsPer1k != 37 {
		t.Errorf("ConnsPer1k = %g, want 37", c.ConnsPer1k)
	}

	c = Cell{Requests: 3, Stale: 0, NewConns: 3}
	c.Finish()
	if c.ResetRate != 0 || c.ResetRateCI95[0] != 0 || math.Abs(c.ResetRateCI95[1]-0.5615) > 0.00005 {
		t.Errorf("0 of 3: rate %g, CI %.4f; want 0, [0 0.5615]", c.ResetRate, c.ResetRateCI95)
	}
	if c.ConnsPer1k != 1000 {
		t.Errorf("3 conns for 3 requests: ConnsPer1k = %g, want 1000", c.ConnsPer1k)
	}
}

func TestFinishWithNoRequestsIsZero(t *testing.T) {
	// Stale values from an earlier Finish must not survive a recount to zero.
	c := Cell{NewConns: 4, Stale: 2, ResetRate: 0.5, ResetRateCI95: [2]float64{0.1, 0.9}, ConnsPer1k: 12}
	c.Finish()
	if c.ResetRate != 0 || c.ResetRateCI95 != [2]float64{0, 0} || c.ConnsPer1k != 0 {
		t.Errorf("no requests: rate %g, CI %v, conns/1k %g; want all zero", c.ResetRate, c.ResetRateCI95, c.ConnsPer1k)
	}
}

func TestFinishIsIdempotent(t *testing.T) {
	c := Cell{Requests: 7919, Stale: 123, NewConns: 456}
	c.Finish()
	first := c
	c.Finish()
	if !reflect.DeepEqual(c, first) {
		t.Errorf("second Finish changed the cell: %+v -> %+v", first, c)
	}
}

func TestFailuresTotalCountsEveryClass(t *testing.T) {
	f := Failures{ResetWrite: 1, ResetRead: 20, EOF: 300, Timeout: 4000, Other: 50000}
	if got := f.Total(); got != 54321 {
		t.Errorf("Total = %d, want 54321", got)
	}
	if got := (Failures{}).Total(); got != 0 {
		t.Errorf("zero Total = %d, want 0", got)
	}
}

var safeCellID = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*\.[0-9a-f]{8}$`)

func TestCellIDSpellsSpecPunctuation(t *testing.T) {
	for _, c := range []struct {
		strategy, upstream, skew, latency, load string
		repeat                                  int
		readable                                string
	}{
		{"read-probe+retry-only:max=1", "builtin", "uniform:±10ms", "1ms", "sweep", 0,
			"read-probe-plus-retry-only_max-1.builtin.uniform_pm10ms.1ms.sweep.r0"},
		{"timeout-margin:margin=10ms", "uvicorn", "offset:-5ms", "2ms+500µs", "lull:gap=4.9s,n=3", 2,
			"timeout-margin_margin-10ms.uvicorn.offset_-5ms.2ms-plus-500us.lull_gap-4.9s_n-3.r2"},
		{"Blind", "Node HTTP", "", "0", "constant", 11,
			"blind.node-http.none.0.constant.r11"},
	} {
		id := CellID(c.strategy, c.upstream, c.skew, c.latency, c.load, c.repeat)
		sum := sha256.Sum256([]byte(strings.Join([]string{
			c.strategy, c.upstream, c.skew, c.latency, c.load, fmt.Sprint(c.repeat)}, "\x00")))
		want := c.readable + "." + hex.EncodeToString(sum[:4])
		if id != want {
			t.Errorf("CellID(%q, %q, %q, %q, %q, %d)\n got %s\nwant %s",
				c.strategy, c.upstream, c.skew, c.latency, c.load, c.repeat, id, want)
		}
	}
}

func TestCellIDIsStable(t *testing.T) {
	// Pinned: run directories from earlier builds name their .hlog files with these IDs.
	const want = "read-probe-plus-retry-only_max-1.builtin.uniform_pm10ms.1ms.sweep.r0.f6f4174b"
	if got := CellID("read-probe+retry-only:max=1", "builtin", "uniform:±10ms", "1ms", "sweep", 0); got != want {
		t.Errorf("CellID = %s, want %s", got, want)
	}
}

func TestCellIDsOfDistinctCellsNeverCollide(t *testing.T) {
	strategies := []string{"blind", "watch", "read-probe", "read-probe+retry-only:max=1", "timeout-margin:margin=10ms"}
	skews := []string{"none", "offset:-5ms", "uniform:±10ms", "uniform:10ms", "normal:sd=3ms"}
	loads := []string{"sweep", "lull", "constant", "lull:gap=4.9s"}
	seen := make(map[string]string)
	for _, st := range strategies {
		for _, sk := range skews {
			for _, lo := range loads {
				for r := range 10 {
					fields := fmt.Sprint(st, "|", sk, "|", lo, "|", r)
					id := CellID(st, "builtin", sk, "1ms", lo, r)
					if !safeCellID.MatchString(id) {
						t.Fatalf("CellID(%s) = %q has unsafe characters", fields, id)
					}
					if prev, dup := seen[id]; dup {
						t.Fatalf("CellID(%s) = CellID(%s) = %s", fields, prev, id)
					}
					seen[id] = fields
				}
			}
		}
	}
	if len(seen) != 1000 {
		t.Fatalf("generated %d IDs, want 1000", len(seen))
	}
}

func TestCellIDSeparatesFieldsTheReadablePartConflates(t *testing.T) {
	pairs := [][2]string{
		{"a+b", "a-plus-b"},
		{"Read-Probe", "read-probe"},
		{"x:y", "x,y"},
		{"x==y", "x=y"},
		{"", "none"},
	}
	for _, p := range pairs {
		a := CellID(p[0], "builtin", "none", "1ms", "sweep", 0)
		b := CellID(p[1], "builtin", "none", "1ms", "sweep", 0)
		if a == b {
			t.Errorf("strategies %q and %q share ID %s", p[0], p[1], a)
		}
	}
	// The same fields spread differently over the columns are different cells.
	if CellID("a", "b", "", "", "", 0) == CellID("", "a", "b", "", "", 0) {
		t.Error("moving fields between columns kept the ID")
	}
	if CellID("a", "b", "c", "d", "e", 1) == CellID("a", "b", "c", "d", "e", 10) {
		t.Error("repeat 1 and 10 share an ID")
	}
}

func TestCellIDIsSafeForHostileInput(t *testing.T) {
	for _, s := range []string{"../../etc/passwd", "-.x", "-", "_-_", "/", ".", "..", "a b\tc\nd", "\x00", "日本語", "UPPER", "±±±", "+", strings.Repeat("x+", 500)} {
		id := CellID(s, s, s, s, s, -1)
		if !safeCellID.MatchString(id) {
			t.Errorf("CellID of %q = %q: unsafe", s, id)
		}
		if strings.Contains(id, "/") || strings.HasPrefix(id, ".") || strings.Contains(id, "..") {
			t.Errorf("CellID of %q = %q could escape a directory", s, id)
		}
		if len(id) > 200+9 {
			t.Errorf("CellID of %q has %d bytes, want at most 209", s, len(id))
		}
	}
}
