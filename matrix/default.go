package matrix

import "time"

// DefaultStrategies are the rows of the embedded default run: every strategy, the
// margin ones at 20ms (a fifth of the default T).
var DefaultStrategies = []string{
	"blind", "watch", "read-probe", "timeout-margin:margin=20ms", "hint-margin:margin=20ms", "retry-only", "stdlib",
}

// DefaultSkews are the default run's skews: exact, 5ms early, ±10ms jitter.
var DefaultSkews = []string{"none", "offset:-5ms", "uniform:±10ms"}

// DefaultLoad sweeps the gap across [75ms, 125ms] on 64 lanes for 1.5s per cell: about
// 900 requests per cell, enough for a ±3 point interval on a 50% reset rate, and 21 cells
// in well under a minute.
const DefaultLoad = "sweep:lanes=64,duration=1.5s"

// DefaultIdleTimeout is T of the default run.
const DefaultIdleTimeout = 100 * time.Millisecond

// Default returns the embedded default matrix: builtin upstream, T = 100ms, every
// strategy against every default skew under the sweep load.
func Default() []CellSpec {
	var cells []CellSpec
	for _, sk := range DefaultSkews {
		for _, st := range DefaultStrategies {
			cells = append(cells, CellSpec{
				Strategy: st, Upstream: "builtin", Skew: sk, Latency: "0", Load: DefaultLoad,
				IdleTimeout: DefaultIdleTimeout, Method: "POST", Seed: 1,
			})
		}
	}
	return cells
}
