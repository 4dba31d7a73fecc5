package chaos

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// CloseMode is how a server ends a connection: "fin" (orderly close) or "rst" (abortive,
// SO_LINGER 0).
//
// With fin the client's kernel learns of the close when the FIN arrives; a request the
// client writes afterwards still leaves its socket, and the server's kernel answers it
// with RST. With rst the client's next read or write fails at once with ECONNRESET.
// Note that on Linux a fin close of a socket with unread bytes in its receive buffer is
// sent as RST anyway: that is the race idlerace measures.
type CloseMode string

const (
	CloseFIN CloseMode = "fin"
	CloseRST CloseMode = "rst"
)

// ParseCloseMode parses "fin" or "rst" (case and surrounding spaces ignored).
func ParseCloseMode(s string) (CloseMode, error) {
	switch m := CloseMode(strings.ToLower(strings.TrimSpace(s))); m {
	case CloseFIN, CloseRST:
		return m, nil
	}
	return "", fmt.Errorf("close mode %q: unknown (known: fin, rst)", s)
}

// String returns the mode's name; the zero mode is "fin".
func (m CloseMode) String() string {
	if m == "" {
		return string(CloseFIN)
	}
	return string(m)
}

// Close ends c in this mode. For rst on a *net.TCPConn (anything with SetLinger) it sets
// linger 0 first, so close sends RST and discards unsent data. The zero mode is fin.
// An unknown mode still closes c (orderly) and reports the mode as an error.
func (m CloseMode) Close(c net.Conn) error {
	switch m {
	case "", CloseFIN:
		return c.Close()
	case CloseRST:
		var lingerErr error
		if l, ok := c.(interface{ SetLinger(sec int) error }); ok {
			lingerErr = l.SetLinger(0)
		}
		return errors.Join(lingerErr, c.Close())
	}
	return errors.Join(fmt.Errorf("close mode %q: unknown (known: fin, rst)", string(m)), c.Close())
}

// Unread reports whether bytes are waiting unread in c's kernel receive buffer
// (non-blocking recv with MSG_PEEK|MSG_DONTWAIT through SyscallConn); false if it cannot
// tell (c has no file descriptor, is closed, or the platform has no MSG_DONTWAIT).
// Bytes already copied into a user-space buffer (a bufio.Reader) are not seen.
func Unread(c net.Conn) bool {
	return unread(c)
}
