package matrix

import (
	_ "embed"
	"fmt"
	"strings"
	"time"
)

// DefaultYAML is the embedded default matrix (examples/default.yaml is the same file).
//
//go:embed default.yaml
var DefaultYAML []byte

// DefaultStrategies are the rows of the embedded default run: every strategy, the
// margin ones at 20ms (a fifth of the default T).
var DefaultStrategies = []string{
	"blind", "watch", "read-probe", "timeout-margin:margin=20ms", "hint-margin:margin=20ms", "adaptive-margin", "retry-only", "stdlib",
}

// DefaultSkews are the default run's skews: exact, 5ms early, ±10ms jitter.
var DefaultSkews = []string{"none", "offset:-5ms", "uniform:±10ms"}

// DefaultLoad sweeps the gap across [75ms, 125ms] on 64 lanes for 1.5s per cell.
const DefaultLoad = "sweep:lanes=64,duration=1.5s"

// DefaultIdleTimeout is T of the default run.
const DefaultIdleTimeout = 100 * time.Millisecond

// Default returns the cells of the embedded default matrix.
func Default() []CellSpec {
	f, err := ParseFile("default.yaml", DefaultYAML)
	if err != nil {
		panic("matrix: the embedded default.yaml does not parse: " + err.Error())
	}
	cells, _ := f.Cells()
	return cells
}

// FlagsYAML writes the matrix file that a run given by command-line flags amounts to,
// so that the run directory's matrix.yaml can be resumed and read like any other.
func FlagsYAML(strategies, upstreams, skews, latencies, proxies []string, load string, idleTimeout time.Duration, method string, seed uint64) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# written by idlerace run from its flags\nidle_timeout: %s\nmethod: %s\nseed: %d\n", idleTimeout, method, seed)
	list := func(name string, vs []string) {
		fmt.Fprintf(&b, "%s:\n", name)
		for _, v := range vs {
			fmt.Fprintf(&b, "  - %q\n", v)
		}
	}
	list("strategies", strategies)
	list("upstreams", upstreams)
	list("skews", skews)
	list("latencies", latencies)
	list("loads", []string{load})
	if len(proxies) > 0 && !(len(proxies) == 1 && (proxies[0] == "none" || proxies[0] == "")) {
		list("proxies", proxies)
	}
	return []byte(b.String())
}
