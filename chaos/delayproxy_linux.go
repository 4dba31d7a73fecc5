package chaos

import (
	"encoding/binary"
	"syscall"
)

// tcpStateClose is TCP_CLOSE in include/net/tcp_states.h: the state a socket lands in
// when an RST arrives (or, after our own FIN, when the exchange of FINs is complete).
const tcpStateClose = 7

// resetSeen reports whether the socket fd was reset by its peer even though a read gave
// EOF: its pending error is set, or it reached TCP_CLOSE without our FIN. The second case
// is an RST whose error a failed write already took: Linux then reads EOF, not
// ECONNRESET. (A FIN followed within microseconds by an RST looks the same and is passed
// on as the RST alone.)
func resetSeen(fd uintptr, sentFIN bool) bool {
	if e, err := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_ERROR); err == nil && e != 0 {
		return true
	}
	// TCP_INFO starts with the one-byte tcpi_state; read the first four bytes as an int
	// and take the first byte back out in the machine's byte order.
	v, err := syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_INFO)
	if err != nil {
		return false
	}
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], uint32(v))
	return b[0] == tcpStateClose && !sentFIN
}

// wasReset reports, right after a read returned EOF on s, whether that EOF was an RST.
func wasReset(s *proxySide) bool {
	rc, err := s.c.SyscallConn()
	if err != nil {
		return false
	}
	reset := false
	if rc.Control(func(fd uintptr) { reset = resetSeen(fd, s.sentFIN.Load()) }) != nil {
		return false
	}
	return reset
}

// watchReset blocks after s gave EOF until its peer resets it (true) or s is closed
// (false). Go's poller is edge-triggered, so each wait ends only at a new event on the
// socket (an RST, an ACK freeing send space), not at the FIN already read.
func watchReset(s *proxySide) bool {
	rc, err := s.c.SyscallConn()
	if err != nil {
		return false
	}
	reset := false
	err = rc.Read(func(fd uintptr) bool {
		reset = resetSeen(fd, s.sentFIN.Load())
		return reset
	})
	return err == nil && reset
}
