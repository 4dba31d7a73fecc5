package report

import (
	"testing"

	"github.com/idlerace/idlerace/results"
)

func TestCPUsShowGOMAXPROCSWhereItDiffers(t *testing.T) {
	for _, c := range []struct {
		tool results.Tool
		want string
	}{
		{results.Tool{CPUs: 2, Procs: 8}, "2 (GOMAXPROCS 8)"},
		{results.Tool{CPUs: 2, Procs: 2}, "2"},
		{results.Tool{CPUs: 2}, "2"}, // a run from before GOMAXPROCS was recorded
	} {
		if got := cpus(c.tool); got != c.want {
			t.Errorf("cpus(%+v) = %q, want %q", c.tool, got, c.want)
		}
	}
}
