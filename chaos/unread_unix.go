//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package chaos

import (
	"net"
	"syscall"
)

func unread(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var (
		n       int
		recvErr error
		buf     [1]byte
	)
	// Control, not Read: RawConn.Read refuses to run f once the read deadline has
	// passed, and an expired idle deadline is exactly when a server asks.
	err = rc.Control(func(fd uintptr) {
		n, _, recvErr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	})
	// n == 0 with no error is the peer's FIN: nothing unread.
	return err == nil && recvErr == nil && n > 0
}
