package results

import (
	"fmt"
	"io"
	"strings"
)

// WriteBenchfmt writes a run in the Go benchmark format, one line per cell (repeats are
// separate lines, i.e. samples), so that `benchstat old.txt new.txt` compares two runs:
//
//	BenchmarkIdlerace/strategy=blind/upstream=builtin/skew=none/latency=0/load=sweep:lanes=64,duration=1.5s  891  0.5129 reset-rate  610 p50-µs  2460 p99-µs  584.7 conns/1k
//
// The iteration count is the number of requests.
func WriteBenchfmt(w io.Writer, s *Summary) error {
	var b strings.Builder
	fmt.Fprintf(&b, "goos: %s\ngoarch: %s\npkg: github.com/idlerace/idlerace\n", s.Tool.OS, s.Tool.Arch)
	if s.Tool.Version != "" {
		fmt.Fprintf(&b, "idlerace-version: %s\n", s.Tool.Version)
	}
	if s.Tool.Commit != "" {
		fmt.Fprintf(&b, "idlerace-commit: %s\n", s.Tool.Commit)
	}
	for _, c := range s.Cells {
		name := fmt.Sprintf("BenchmarkIdlerace/strategy=%s/upstream=%s/skew=%s/latency=%s/load=%s",
			benchName(c.Strategy), benchName(c.Upstream), benchName(c.Skew), benchName(c.Latency), benchName(c.Load))
		fmt.Fprintf(&b, "%s\t%d\t%.6g reset-rate\t%d p50-µs\t%d p99-µs\t%.6g conns/1k\t%.6g retries/1k\n",
			name, max(c.Requests, 1), c.ResetRate, c.LatencyUS.P50, c.LatencyUS.P99, c.ConnsPer1k, per1k(c.Retries, c.Requests))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// benchName keeps a value inside one name part: no spaces, no slashes.
func benchName(s string) string {
	return strings.NewReplacer(" ", "_", "/", "∕", "\t", "_").Replace(s)
}
