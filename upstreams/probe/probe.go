// Package probe learns a server's real keep-alive behaviour from the client's side:
// when it closes an idle connection (and how precisely), whether it says so in
// Keep-Alive, whether it closes by FIN, by RST or silently, how many requests it serves
// on one connection, and what a request written just after its close gets. It needs
// nothing of the server but its URL: `idlerace probe`.
package probe

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/idlerace/idlerace/upstreams"
)

// Config is one probe. Zero fields take the defaults below.
type Config struct {
	Target string // http://host:port/path
	Method string // GET
	Header http.Header
	Body   []byte
	// UserAgent is sent unless Header sets one.
	UserAgent string
	// Conns is how many connections the fine phase watches at once (16): enough for an
	// interval on the median close.
	Conns int
	// MaxTimeout bounds the search: a server that keeps an idle connection longer is
	// reported as closing none within it (10 min).
	MaxTimeout time.Duration
	// ResponseTimeout is how long a request may go unanswered before the connection is
	// taken as dead (2 s).
	ResponseTimeout time.Duration
	// MaxRequests bounds the requests sent back to back on one connection to find the
	// server's per-connection limit (100).
	MaxRequests int
	// AllowRemote lets the target resolve outside loopback.
	AllowRemote bool
	// Progress, when set, is told before each phase that waits: what it waits for and
	// for at most how long.
	Progress func(phase string, wait time.Duration)

	u    *url.URL
	host string
	sent atomic.Int64
}

// Defaults.
const (
	DefaultConns           = 16
	DefaultMaxTimeout      = 10 * time.Minute
	DefaultResponseTimeout = 2 * time.Second
	DefaultMaxRequests     = 100
	firstGap               = 100 * time.Millisecond
	// bisectSteps halve (g/2, g] until it is within 1% of g/2 or 2 ms: log2(100) < 7.
	bisectSteps = 8
)

// Prepare checks c and fills its defaults; the error names the field.
func (c *Config) Prepare() error {
	u, err := url.Parse(c.Target)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("--target %q: want an http:// URL with a host, e.g. http://127.0.0.1:8080/", c.Target)
	}
	host := u.Host
	if u.Port() == "" {
		host += ":80"
	}
	if !c.AllowRemote {
		if err := upstreams.CheckLoopback(host); err != nil {
			return fmt.Errorf("--target %w (--allow-remote to probe it)", err)
		}
	}
	if u.Path == "" {
		u.Path = "/"
	}
	c.u, c.host = u, host
	if c.Method == "" {
		c.Method = http.MethodGet
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Conns, DefaultConns)
	def(&c.MaxRequests, DefaultMaxRequests)
	defD(&c.MaxTimeout, DefaultMaxTimeout)
	defD(&c.ResponseTimeout, DefaultResponseTimeout)
	switch {
	case c.Conns < 2 || c.Conns > upstreams.MaxMeasureConns:
		return fmt.Errorf("--conns %d: want 2..%d", c.Conns, upstreams.MaxMeasureConns)
	case c.MaxRequests < 2 || c.MaxRequests > 100_000:
		return fmt.Errorf("--max-requests %d: want 2..100000", c.MaxRequests)
	case c.MaxTimeout < firstGap:
		return fmt.Errorf("--max-timeout %v: want at least %v", c.MaxTimeout, firstGap)
	case c.ResponseTimeout <= 0:
		return fmt.Errorf("--response-timeout %v: want > 0", c.ResponseTimeout)
	}
	return nil
}

// gaps is the coarse search's idle gaps: firstGap doubling up to MaxTimeout.
func (c *Config) gaps() []time.Duration {
	var out []time.Duration
	for g := firstGap; ; g *= 2 {
		if g >= c.MaxTimeout {
			return append(out, c.MaxTimeout)
		}
		out = append(out, g)
	}
}

// Bounds is the most a probe with this Config sends and takes: printed before it
// starts, and enforced (Run's context ends at took; a bisection cut short by it
// reports the bracket it reached).
func (c *Config) Bounds() (requests int, took time.Duration) {
	steps := len(c.gaps())
	requests = c.MaxRequests + 2*steps + c.Conns + 3 + 2*bisectSteps
	var search time.Duration
	for _, g := range c.gaps() {
		search += g + c.ResponseTimeout
	}
	// The count phase, the coarse search, then the fine phase (twice the close it
	// found plus a response timeout or two) or the bisection (its first steps).
	took = time.Duration(c.MaxRequests)*c.ResponseTimeout + search + 3*c.MaxTimeout + 4*c.ResponseTimeout
	return requests, took
}

func (c *Config) count() { c.sent.Add(1) }

func (c *Config) newRequest(ctx context.Context) (*http.Request, error) {
	var body io.Reader
	if len(c.Body) > 0 {
		body = bytes.NewReader(c.Body)
	}
	req, err := http.NewRequestWithContext(ctx, c.Method, c.u.String(), body)
	if err != nil {
		return nil, err
	}
	for k, vs := range c.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if h := c.Header.Get("Host"); h != "" {
		req.Host = h // net/http writes req.Host, not a Host in the header map
	}
	if req.Header.Get("User-Agent") == "" && c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	return req, nil
}

func (c *Config) progress(phase string, wait time.Duration) {
	if c.Progress != nil {
		c.Progress(phase, wait)
	}
}
