package agent

import (
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The protocol's times are CLOCK_MONOTONIC ns, which every process on the machine
// shares; Go's time.Time carries a monotonic reading of its own origin. clockBase pairs
// one reading of each, taken back to back, to convert between them.
var clockBase = sync.OnceValue(func() struct {
	t  time.Time
	ns int64
} {
	var ts unix.Timespec
	t := time.Now()
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return struct {
		t  time.Time
		ns int64
	}{t, ts.Nano()}
})

// monoNS is t as CLOCK_MONOTONIC ns.
func monoNS(t time.Time) int64 {
	b := clockBase()
	return b.ns + int64(t.Sub(b.t))
}

// fromMonoNS is a CLOCK_MONOTONIC ns reading as a time.Time with a monotonic reading.
func fromMonoNS(ns int64) time.Time {
	b := clockBase()
	return b.t.Add(time.Duration(ns - b.ns))
}
