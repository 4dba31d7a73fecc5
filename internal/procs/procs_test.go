package procs

import (
	"runtime"
	"testing"
)

func TestForWidensUnlessTheUserChose(t *testing.T) {
	for _, c := range []struct {
		env           string
		current, want int
	}{
		{"", 1, Floor},
		{"", 2, Floor},
		{"", 4, Floor},
		{"", 6, 12},
		{"", 32, 64},
		{"2", 2, 2}, // GOMAXPROCS=2 in the environment: the runtime applied it, keep it
		{"16", 16, 16},
	} {
		if got := For(c.env, c.current); got != c.want {
			t.Errorf("For(%q, %d) = %d, want %d", c.env, c.current, got, c.want)
		}
	}
}

func TestWidenSetsTheRuntime(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(before)
	t.Setenv("GOMAXPROCS", "")
	n := Widen()
	if got := runtime.GOMAXPROCS(0); got != n || n != For("", before) {
		t.Errorf("Widen() = %d, runtime has %d, want %d", n, got, For("", before))
	}
}
