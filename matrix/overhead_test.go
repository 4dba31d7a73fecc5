package matrix_test

import (
	"context"
	"testing"
	"time"

	"github.com/idlerace/idlerace/matrix"
)

// BenchmarkCellOverhead measures what the runner adds to each cell: preparing it,
// starting and stopping the builtin upstream, matching closes, and writing the cell's
// hlog, summary.json and manifest.json atomically. The load sends a few requests over 5ms;
// the benchmark reports ns/op minus those 5ms as overhead-ms/op. It is a figure (README:
// about 5ms), compared across builds with benchstat, not a bound: a shared machine's
// timing decides no test.
func BenchmarkCellOverhead(b *testing.B) {
	dir := b.TempDir()
	specs := []matrix.CellSpec{{Strategy: "blind", Skew: "none", Latency: "0", Load: "constant:rate=1000/s,duration=5ms", IdleTimeout: 100e6}}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		sum, err := matrix.Run(context.Background(), specs, matrix.RunOptions{OutDir: dir})
		if err != nil || len(sum.Cells) != 1 || sum.Cells[0].Requests < 1 {
			b.Fatalf("%v %+v", err, sum)
		}
	}
	perCell := time.Since(start) / time.Duration(b.N)
	b.ReportMetric(float64(perCell-5*time.Millisecond)/float64(time.Millisecond), "overhead-ms/op")
}
