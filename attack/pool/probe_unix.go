//go:build unix

package pool

import (
	"io"
	"net"
	"syscall"
)

// prober does one non-blocking recv(MSG_PEEK|MSG_DONTWAIT) on a connection's socket.
// It is built once per connection so that a probe allocates nothing: the probe sits on
// the checkout path of every reuse.
type prober struct {
	rc   syscall.RawConn
	buf  [1]byte
	n    int
	err  error
	call func(fd uintptr)
}

func newProber(nc net.Conn) *prober {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	p := &prober{rc: rc}
	p.call = func(fd uintptr) {
		p.n, _, p.err = syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	}
	return p
}

// peek reports nil for a live, quiet socket (EAGAIN); io.EOF when the FIN has arrived
// (0 bytes); errUnexpectedData when the server sent bytes nobody asked for; any other
// error (ECONNRESET) as is. It never blocks and never consumes data.
func (p *prober) peek() error {
	if p == nil {
		return nil // not a socket (a test pipe): nothing to look at
	}
	// Control, not Read: RawConn.Read refuses to run once the connection's read deadline
	// has passed, and a pooled connection may carry an old one; the probe must look at
	// the socket whatever the deadline says. Nobody reads the connection meanwhile: it
	// is checked out.
	if err := p.rc.Control(p.call); err != nil {
		return err
	}
	switch {
	case p.err == syscall.EAGAIN || p.err == syscall.EWOULDBLOCK:
		return nil
	case p.err != nil:
		return p.err
	case p.n == 0:
		return io.EOF
	default:
		return errUnexpectedData
	}
}
