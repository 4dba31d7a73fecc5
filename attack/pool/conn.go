package pool

import (
	"bufio"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Conn is one pooled HTTP/1.1 connection. Strategies read its fields in their hooks; only
// the goroutine that has checked it out (or, while it is idle, its watcher) touches it.
type Conn struct {
	nc net.Conn
	lr limitedReader // between nc and br: caps a response's header block, counts its bytes
	br *bufio.Reader
	bw *bufio.Writer

	// Created is when the dial finished; LocalPort is the client's port, by which the
	// server's logs name the connection.
	Created   time.Time
	LocalPort int
	// IdleTimeout is T as the client believes it (Config.IdleTimeout).
	IdleTimeout time.Duration
	// IdleSince is when the last response body was read to its end.
	IdleSince time.Time
	// Requests counts requests written on this connection.
	Requests int
	// KeepAliveHint is the server's advertised idle timeout from the last response's
	// Keep-Alive: timeout=N header, 0 when it sent none.
	KeepAliveHint time.Duration

	prober *prober // built on the first probe

	// watchDone is closed when the idle watcher has stopped; watchErr is what it saw
	// (nil when it was stopped by checkout before anything arrived).
	watchDone chan struct{}
	watchErr  error

	closeOnce sync.Once
	onClose   func(localPort int, at time.Time) // Config.OnClose
}

func newConn(nc net.Conn, idleTimeout time.Duration) *Conn {
	c := &Conn{
		nc:          nc,
		lr:          limitedReader{r: nc, left: math.MaxInt64},
		bw:          bufio.NewWriterSize(nc, 4096),
		Created:     time.Now(),
		IdleTimeout: idleTimeout,
	}
	c.br = bufio.NewReaderSize(&c.lr, 4096)
	if a, ok := nc.LocalAddr().(*net.TCPAddr); ok {
		c.LocalPort = a.Port
	}
	return c
}

// IdleAge is how long the connection has been idle at now.
func (c *Conn) IdleAge(now time.Time) time.Duration {
	if c.IdleSince.IsZero() {
		return 0
	}
	return now.Sub(c.IdleSince)
}

// NetConn returns the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.nc }

func (c *Conn) close() {
	c.closeOnce.Do(func() {
		_ = c.nc.Close()
		if c.onClose != nil {
			c.onClose(c.LocalPort, time.Now())
		}
	})
}

// parseKeepAliveTimeout reads timeout=N from a Keep-Alive header value. N may carry a
// decimal fraction (idlerace's builtin upstream advertises timeout=0.1 for 100ms; real
// servers send whole seconds). It returns 0 when there is no usable timeout.
func parseKeepAliveTimeout(v string) time.Duration {
	for _, f := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "timeout") {
			continue
		}
		sec, err := strconv.ParseFloat(strings.Trim(strings.TrimSpace(val), `"`), 64)
		if err != nil || sec <= 0 || sec > 1e6 {
			return 0
		}
		return time.Duration(sec * float64(time.Second))
	}
	return 0
}

// limitedReader is what the connection's bufio.Reader reads through: while a response's
// header block is read it allows only Config.MaxResponseHeaderBytes from the socket (as
// net/http's persistConn.readLimit does), so a server sending megabytes of headers costs
// the client at most the limit; and it counts the bytes read since the request was
// written, so the pool knows whether the server had begun to answer.
type limitedReader struct {
	r    net.Conn
	left int64 // bytes still allowed; math.MaxInt64 outside a header block
	got  int64 // bytes read since the last reset
	err  error // the socket's last error since the last reset
}

// reset starts counting a new exchange; buffered counts bytes already read ahead.
func (l *limitedReader) reset(buffered int) {
	l.got, l.err = int64(buffered), nil
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		l.err = errHeaderLimit
		return 0, errHeaderLimit
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	if l.left != math.MaxInt64 {
		l.left -= int64(n)
	}
	l.got += int64(n)
	if err != nil {
		l.err = err
	}
	return n, err
}
