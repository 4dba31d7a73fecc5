package pool

import (
	"fmt"
	"time"
)

// readProbe peeks at the socket without blocking before reusing it (MSG_PEEK with
// MSG_DONTWAIT), as awc, urllib3 and the aerospike client do; with after=D it probes only
// connections idle at least D, as Apache HttpClient's validateAfterInactivity does.
// Window left open: a close whose FIN has not reached the client when it probes,
// T + s - d < g < T + s + d; with after=D also every stale connection younger than D.
type readProbe struct {
	after time.Duration
}

func init() {
	Register("read-probe", "read-probe[:after=D]",
		"a non-blocking peek at checkout drops a connection the server closed (awc, urllib3; after=D: Apache HttpClient)",
		func(o *Options) (Strategy, error) {
			after, err := o.Duration("after", 0, true)
			return readProbe{after: after}, err
		})
}

func (r readProbe) String() string {
	if r.after > 0 {
		return fmt.Sprintf("read-probe:after=%s", r.after)
	}
	return "read-probe"
}

func (r readProbe) Check(c *Conn, now time.Time) (bool, string) {
	if r.after > 0 && c.IdleAge(now) < r.after {
		return true, ""
	}
	if err := probe(c); err != nil {
		return false, err.Error()
	}
	return true, ""
}

func (r readProbe) Model(b *Behaviour) {
	b.Probe = true
	b.ProbeAfter = r.after
}

// probe reports why c cannot be reused, or nil. Bytes already buffered, bytes waiting in
// the kernel, EOF and a reset all mean the server is done with the connection.
func probe(c *Conn) error {
	if c.br.Buffered() > 0 {
		return errUnexpectedData
	}
	if c.prober == nil {
		c.prober = newProber(c.nc)
	}
	return c.prober.peek()
}
