package wire

import (
	"errors"
	"io"
	"time"

	"github.com/idlerace/idlerace/upstreams"
)

// ErrUnavailable is wrapped by Start's error when this process cannot capture here:
// not Linux, built without cgo, or without CAP_NET_RAW (not root).
var ErrUnavailable = errors.New("no packet capture")

// unavailable is Start's error when capture cannot run here; its text is the short
// reason a cell's server.view shows ("not root: no packet capture").
type unavailable struct {
	reason string
	err    error // the system's own error, if any
}

func (u *unavailable) Error() string { return u.reason + ": " + ErrUnavailable.Error() }
func (u *unavailable) Unwrap() []error {
	if u.err == nil {
		return []error{ErrUnavailable}
	}
	return []error{ErrUnavailable, u.err}
}

// Options is what to capture.
type Options struct {
	Interface string // "lo" when empty
	Port      int    // the server's TCP port
	// IdleTimeout is the server's configured idle timeout T: a close after at least T/2
	// idle is an idle close, due at T. Zero counts every close of an idle connection
	// as idle, with no due time.
	IdleTimeout time.Duration
	// PCAP, when set, receives every captured segment (truncated to its headers) as a
	// pcap file, nanosecond timestamps, for Wireshark.
	PCAP io.Writer
	// OnReuse, when set, is called (from the capture's goroutine) for each request that
	// arrives on a connection which has carried a response, whether it was served or
	// met the close.
	OnReuse func(Reuse)
}

// Reuse is a request on a connection that had carried a response, as the wire saw it.
type Reuse struct {
	ClientPort int
	// Answered is when the previous response's last byte left the server, Arrived when
	// the request's first byte reached it (kernel timestamps).
	Answered, Arrived time.Time
}

// Gap is the idle gap the server saw before the request.
func (r Reuse) Gap() time.Duration { return r.Arrived.Sub(r.Answered) }

// Capture is a running capture of one server port.
type Capture struct {
	rec  *upstreams.Recorder
	impl *capturer
}

// Recorder is the server's view the capture builds: Stats() as upstreams.Stats,
// StreamCloses to take each close as the wire shows it.
func (c *Capture) Recorder() *upstreams.Recorder { return c.rec }

// Stop ends the capture once every segment the kernel had already taken is read, and
// returns what the wire saw. It is safe to call more than once.
func (c *Capture) Stop() (Stats, error) { return c.impl.stop() }
