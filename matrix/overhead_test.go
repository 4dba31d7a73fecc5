package matrix_test

import (
	"context"
	"testing"

	"github.com/idlerace/idlerace/matrix"
)

// BenchmarkCellOverhead measures what the runner adds to each cell: preparing it,
// starting and stopping the builtin upstream, matching closes, and writing the cell's
// hlog, summary.json and manifest.json atomically. The load sends a few requests over 5ms, so
// ns/op minus 5ms is the overhead. The target is at most 100ms per cell.
func BenchmarkCellOverhead(b *testing.B) {
	dir := b.TempDir()
	specs := []matrix.CellSpec{{Strategy: "blind", Skew: "none", Latency: "0", Load: "constant:rate=1000/s,duration=5ms", IdleTimeout: 100e6}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sum, err := matrix.Run(context.Background(), specs, matrix.RunOptions{OutDir: dir})
		if err != nil || len(sum.Cells) != 1 || sum.Cells[0].Requests < 1 {
			b.Fatalf("%v %+v", err, sum)
		}
	}
}
