//go:build !linux

package builtin

import (
	"net"
	"time"
)

// waitReadable has no precise implementation here: ok=false makes the server wait on a
// read deadline alone (the Go netpoller's millisecond precision).
func waitReadable(net.Conn, time.Time) (readable, ok bool) { return false, false }
