package pool

import (
	"fmt"
	"time"
)

// timeoutMargin never reuses a connection idle longer than T - margin, where T is the
// server's timeout as configured on the client: Go's Transport.IdleConnTimeout, hyper's
// pool_idle_timeout and nginx's upstream keepalive_timeout set below the server's.
// Window left open: a server that closes earlier than the client believes by more than
// the margin, s < -margin - d; it pays with a new connection for every longer gap.
type timeoutMargin struct {
	margin time.Duration
}

func init() {
	Register("timeout-margin", "timeout-margin:margin=D",
		"never reuse a connection idle longer than T - D (IdleConnTimeout below the server's timeout)",
		func(o *Options) (Strategy, error) {
			m, err := o.Duration("margin", 0, false)
			if err == nil && m == 0 {
				err = fmt.Errorf("margin is required, e.g. margin=20ms")
			}
			return &timeoutMargin{margin: m}, err
		})
}

func (t *timeoutMargin) String() string { return fmt.Sprintf("timeout-margin:margin=%s", t.margin) }

func (t *timeoutMargin) Check(c *Conn, now time.Time) (bool, string) {
	return withinMargin(c.IdleAge(now), c.IdleTimeout, t.margin)
}

func (t *timeoutMargin) Model(b *Behaviour) { b.Margin = t.margin }

// withinMargin keeps a connection idle for age when age <= T - margin. With T unknown
// (0) it keeps every connection: there is nothing to take a margin from.
func withinMargin(age, idleTimeout, margin time.Duration) (bool, string) {
	if idleTimeout <= 0 || age <= idleTimeout-margin {
		return true, ""
	}
	return false, fmt.Sprintf("idle %s > T %s - margin %s", age, idleTimeout, margin)
}
