package pool

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"time"
)

// stdlib is Go's net/http.Transport, unmodified: the reference row. Its persistConn
// readLoop watches idle connections (like watch), and it retries by itself a request that
// failed on a reused connection when the request is idempotent or nothing was written
// (shouldRetryRequest). idlerace's default method is POST so that the race stays visible.
// Window left open: watch's, for requests it will not replay.
type stdlib struct{}

func init() {
	Register("stdlib", "stdlib", "Go's net/http.Transport unmodified (watches idle connections; retries idempotent requests itself)",
		func(*Options) (Strategy, error) { return stdlib{}, nil })
}

func (stdlib) String() string { return "stdlib" }

func (stdlib) Model(b *Behaviour) {
	b.Watch = true
	b.Retries = 1
	b.IdempotentOnly = true
}

func (stdlib) NewTransport(cfg Config) Transport {
	t := &stdTransport{}
	t.Transport = &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := cfg.Dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			t.newConns.Add(1)
			return &countingConn{Conn: c, onClose: cfg.OnClose}, nil
		},
		MaxIdleConnsPerHost:    cfg.MaxIdle,
		MaxIdleConns:           0,
		DisableCompression:     true,
		ResponseHeaderTimeout:  cfg.RequestTimeout,
		MaxResponseHeaderBytes: cfg.MaxResponseHeaderBytes,
		ForceAttemptHTTP2:      false,
	}
	t.timeout = cfg.RequestTimeout
	return t
}

type stdTransport struct {
	*http.Transport
	timeout  time.Duration
	newConns atomic.Int64
}

// RoundTrip bounds the whole exchange, body included, by Config.RequestTimeout, as
// http.Client.Timeout does: ResponseHeaderTimeout alone lets a trickled body hold the
// request for ever.
func (t *stdTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(req.Context(), t.timeout)
	var (
		conn   *countingConn
		before int64
		info   httptrace.GotConnInfo
	)
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if c, ok := i.Conn.(*countingConn); ok {
			conn, before, info = c, c.read.Load(), i
		}
	}})
	resp, err := t.Transport.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		// A reset is reported once, to the first read or write after it arrives; the
		// other then sees a plain end of stream. When net/http's writeLoop took it, its
		// readLoop reads EOF and the request fails as "server closed idle connection":
		// an RST that the class would call a FIN. RoundTrip returns only after the
		// writeLoop has (mapRoundTripError waits for it), so the write's error is known.
		if conn != nil && Classify(err, true) == EOF {
			if werr := conn.writeReset(); werr != nil {
				return nil, &Error{Class: ResetWrite, Reused: info.Reused, IdleAge: info.IdleTime, LocalPort: conn.localPort(), Op: "write",
					Err: fmt.Errorf("%w (net/http reported: %v)", werr, err)}
			}
		}
		// net/http reports a close after "100 Continue" (or mid-status-line) as a
		// plain EOF: if the server had sent bytes, it had begun to answer, which the
		// idle-close race never does.
		if conn != nil && conn.read.Load() > before && Classify(err, true).Stale(true) {
			return nil, &Error{Class: Other, Reused: info.Reused, IdleAge: info.IdleTime, LocalPort: conn.localPort(), Op: "read", Err: err}
		}
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// countingConn counts the bytes read from a connection, so that RoundTrip can tell
// whether the server had begun to answer before a failure, and keeps a write's reset.
type countingConn struct {
	net.Conn
	read      atomic.Int64
	wreset    atomic.Pointer[error] // the first write error that was a reset
	closeOnce sync.Once
	onClose   func(localPort int, at time.Time) // Config.OnClose
}

// Close closes the connection and, the first time, tells Config.OnClose.
func (c *countingConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		if c.onClose != nil {
			c.onClose(c.localPort(), time.Now())
		}
	})
	return err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil && Classify(err, false) == ResetWrite {
		c.wreset.CompareAndSwap(nil, &err)
	}
	return n, err
}

// writeReset is the reset a write on the connection returned, if one did.
func (c *countingConn) writeReset() error {
	if e := c.wreset.Load(); e != nil {
		return *e
	}
	return nil
}

func (c *countingConn) localPort() int {
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// cancelBody releases the request's timeout when the caller is done with the body.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

func (t *stdTransport) Stats() Stats { return Stats{NewConns: t.newConns.Load()} }
