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
	call func(fd uintptr) bool
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
	p.call = func(fd uintptr) bool {
		p.n, _, p.err = syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait for readiness: this is a probe
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
	if err := p.rc.Read(p.call); err != nil {
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
