//go:build linux

// Package hrwait is what idlerace's precise waits share: epoll_pwait2(2), which takes a
// nanosecond timeout where epoll_wait and the Go netpoller take whole milliseconds, and
// the priority a waiting thread asks for so that it runs when its timer fires.
package hrwait

import (
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Pwait2 is epoll_pwait2 on epfd with a timeout (negative: none); it returns the number
// of events, 0 on timeout or EINTR (the runtime's preemption signal), and -1 when the
// call failed (ENOSYS before Linux 5.11). x/sys has no wrapper for it.
func Pwait2(epfd int, events []unix.EpollEvent, timeout time.Duration) int {
	var tsp *unix.Timespec
	if timeout >= 0 {
		ts := unix.NsecToTimespec(int64(timeout))
		tsp = &ts
	}
	n, _, errno := syscall.Syscall6(unix.SYS_EPOLL_PWAIT2, uintptr(epfd),
		uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(unsafe.Pointer(tsp)), 0, 0)
	switch {
	case errno == syscall.EINTR:
		return 0
	case errno != 0:
		return -1
	}
	return int(n)
}

// Boost gives the calling thread nice -20 where the process may (root or CAP_SYS_NICE),
// and reports whether it did. The caller must have locked its goroutine to the thread
// (runtime.LockOSThread) and never unlock it: the thread then ends with the goroutine,
// and the priority goes to no other. Why not SCHED_FIFO: in the builtin's
// BenchmarkIdleCloseAccuracy it stalled 2 runs of 17 (p99 16–61 ms), a real-time thread
// spinning in the Go runtime on a lock whose holder it keeps off the core.
func Boost() bool {
	return unix.Setpriority(unix.PRIO_PROCESS, 0, -20) == nil // on Linux: this thread
}
