//go:build !linux

package upstreams

import (
	"context"
	"net"
	"time"
)

// stampConn remembers when a Read last returned bytes.
type stampConn struct {
	net.Conn
	last time.Time
}

func newStampConn(nc net.Conn) *stampConn { return &stampConn{Conn: nc} }

func (c *stampConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.last = time.Now()
	}
	return n, err
}

type closeWatcher struct{}

func newCloseWatcher() *closeWatcher { return nil }
func (*closeWatcher) stop()          {}

// waitEnd cannot wait precisely here: the caller's blocking read times the close.
func (c *stampConn) waitEnd(context.Context, *closeWatcher, time.Time) (time.Time, bool) {
	return time.Time{}, false
}

func enableRxTimestamps() (release func()) { return func() {} }
