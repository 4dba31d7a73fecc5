package pool

import (
	"fmt"
	"net/http"
	"time"
)

// hintMargin learns T from the server's Keep-Alive: timeout=N header and never reuses a
// connection idle longer than N - margin, as undici (keepAliveTimeoutThreshold) and Node's
// http.Agent do; without the header it falls back to the configured T. Window left open: a
// server that closes before its advertised timeout by more than the margin (nginx's
// two-parameter keepalive_timeout can advertise anything).
type hintMargin struct {
	margin time.Duration
}

func init() {
	Register("hint-margin", "hint-margin:margin=D",
		"learn T from Keep-Alive: timeout=N (undici, Node's agent); never reuse past N - D",
		func(o *Options) (Strategy, error) {
			m, err := o.Duration("margin", 0, false)
			if err == nil && m == 0 {
				err = fmt.Errorf("margin is required, e.g. margin=20ms")
			}
			return &hintMargin{margin: m}, err
		})
}

func (h *hintMargin) String() string { return fmt.Sprintf("hint-margin:margin=%s", h.margin) }

// Observe records the hint on the connection; a response without one clears it, so a
// server that stops advertising falls back to the configured T.
func (h *hintMargin) Observe(c *Conn, resp *http.Response) {
	c.KeepAliveHint = parseKeepAliveTimeout(resp.Header.Get("Keep-Alive"))
}

func (h *hintMargin) Check(c *Conn, now time.Time) (bool, string) {
	t := c.IdleTimeout
	if c.KeepAliveHint > 0 {
		t = c.KeepAliveHint
	}
	return withinMargin(c.IdleAge(now), t, h.margin)
}

func (h *hintMargin) Model(b *Behaviour) {
	b.Margin = h.margin
	b.UseHint = true
}
