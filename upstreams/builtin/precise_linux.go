//go:build linux

package builtin

import (
	"net"
	"syscall"
	"time"
	"unsafe"
)

// pollFd is struct pollfd from poll(2).
type pollFd struct {
	fd      int32
	events  int16
	revents int16
}

const pollIn = 0x1 // POLLIN; POLLERR and POLLHUP are always reported

// waitReadable blocks the calling thread in ppoll(2) until nc is readable (a request
// byte, the client's FIN or an error) or until `until`, with the kernel's hrtimer
// precision (timer slack, 50µs by default) instead of the Go netpoller's, which rounds
// every timer wait to whole milliseconds of epoll_wait. ok is false when it could not
// wait at all (no file descriptor, a ppoll error); the caller then falls back to a read
// deadline.
//
// It goes through RawConn.Control, not RawConn.Read: Read would take the fd's read lock
// and refuse to run once the read deadline passed. A concurrent Close waits for Control
// to return (at most until `until`) before the descriptor is released.
func waitReadable(nc net.Conn, until time.Time) (readable, ok bool) {
	sc, isSC := nc.(syscall.Conn)
	if !isSC {
		return false, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false, false
	}
	failed := false
	err = rc.Control(func(fd uintptr) {
		pfd := pollFd{fd: int32(fd), events: pollIn}
		for {
			remaining := time.Until(until)
			if remaining <= 0 {
				return
			}
			ts := syscall.NsecToTimespec(int64(remaining))
			n, _, errno := syscall.Syscall6(syscall.SYS_PPOLL,
				uintptr(unsafe.Pointer(&pfd)), 1, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
			switch {
			case errno == syscall.EINTR: // the runtime's preemption signal; wait on
			case errno != 0:
				failed = true
				return
			case n > 0:
				readable = true
				return
			}
		}
	})
	if err != nil || failed {
		return false, false
	}
	return readable, true
}
