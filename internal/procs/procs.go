// Package procs sets how many Go threads may run at once (GOMAXPROCS) in an idlerace
// process.
//
// idlerace's load, its pool's watchers and its builtin upstream share one process, and
// what they measure is the time from an event (a timer, a FIN, a readable socket) to the
// goroutine that acts on it. With GOMAXPROCS equal to the cores (Go's default), a
// goroutine made runnable waits for a P: until the goroutine on it blocks, or until the
// scheduler preempts it after 10 ms; and a P whose thread blocks in a system call (the
// builtin's ppoll stretch) is handed over only when sysmon notices. On 2 cores, with 256
// lanes at T = 100ms, the builtin's idle close then landed 9–16 ms late at p99. With more
// Ps than cores, a woken goroutine finds an idle P and the kernel's scheduler, which
// preempts in well under a millisecond, shares the cores: p99 2–3.5 ms in the same cells
// (README, "Aiming at the window"). The load is latency-bound, not throughput-bound, so
// the extra Ps cost little.
package procs

import (
	"os"
	"runtime"
)

// Floor is the fewest Ps Widen leaves: 8 and 16 measured alike on 2 cores.
const Floor = 8

// For returns the GOMAXPROCS an idlerace process uses: the user's GOMAXPROCS when the
// environment sets it (the runtime already applied it), else at least Floor and at
// least twice current (Go's default: the cores, or the cgroup's CPU limit).
func For(env string, current int) int {
	if env != "" {
		return current
	}
	return max(Floor, 2*current)
}

// Widen applies For to this process and returns the value in force.
func Widen() int {
	n := For(os.Getenv("GOMAXPROCS"), runtime.GOMAXPROCS(0))
	runtime.GOMAXPROCS(n)
	return n
}
