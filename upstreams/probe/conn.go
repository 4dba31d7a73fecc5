package probe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"
)

// conn is one probe connection: requests written with net/http's wire code on a raw
// TCP connection, so that the probe sees exactly which response ended it, whether the
// server announced that, and when the FIN or RST came, none of which a pool would show.
type conn struct {
	nc  net.Conn
	br  *bufio.Reader
	cfg *Config
	// last is when the last response ended (its last byte read): the idle start.
	last time.Time
	sent int
}

// outcome is what became of one request.
type outcome struct {
	resp *http.Response // nil unless answered
	// closeAnnounced: the response said Connection: close.
	closeAnnounced bool
	rtt            time.Duration
	// err: no answer. dead is true when the connection was found closed (EOF, RST, a
	// failed write) and silent when nothing came back within the response timeout.
	err          error
	reset        bool
	silent       bool
	bytesAfter   int
	keepAliveHdr string
}

func dial(ctx context.Context, cfg *Config) (*conn, error) {
	d := net.Dialer{Timeout: cfg.ResponseTimeout}
	nc, err := d.DialContext(ctx, "tcp", cfg.host)
	if err != nil {
		return nil, err
	}
	if !cfg.AllowRemote {
		if ta, ok := nc.RemoteAddr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
			nc.Close()
			return nil, fmt.Errorf("%s resolved to non-loopback %s (--allow-remote to probe it)", cfg.host, nc.RemoteAddr())
		}
	}
	return &conn{nc: nc, br: bufio.NewReader(nc), cfg: cfg}, nil
}

func (c *conn) Close() error { return c.nc.Close() }

// do sends one request and reads its response, waiting at most the response timeout
// (or until ctx ends: the probe's own bound).
func (c *conn) do(ctx context.Context) outcome {
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Now()) })
	defer stop()
	req, err := c.cfg.newRequest(ctx)
	if err != nil {
		return outcome{err: err}
	}
	start := time.Now()
	c.nc.SetDeadline(start.Add(c.cfg.ResponseTimeout))
	if err := ctx.Err(); err != nil {
		return outcome{err: err}
	}
	c.sent++
	c.cfg.count()
	if err := req.Write(c.nc); err != nil {
		return outcome{err: fmt.Errorf("write: %w", err), reset: isReset(err)}
	}
	resp, err := http.ReadResponse(c.br, req)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if err != nil {
		o := outcome{err: err, reset: isReset(err)}
		if ctx.Err() != nil {
			o.err = ctx.Err()
		} else if isTimeout(err) {
			o.silent = true
			o.err = fmt.Errorf("no answer within %v", c.cfg.ResponseTimeout)
		}
		return o
	}
	c.last = time.Now()
	return outcome{resp: resp, closeAnnounced: resp.Close, rtt: c.last.Sub(start),
		bytesAfter: c.br.Buffered(), keepAliveHdr: resp.Header.Get("Keep-Alive")}
}

// watch blocks reading the idle connection until the server ends it or until is
// reached (or ctx ends). It returns the idle age at which the close arrived, whether
// it was a RST, and closed=false when nothing came.
func (c *conn) watch(ctx context.Context, until time.Time) (age time.Duration, reset, closed bool, err error) {
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Now()) })
	defer stop()
	c.nc.SetReadDeadline(until)
	if err := ctx.Err(); err != nil {
		return 0, false, false, err
	}
	var b [1]byte
	n, rerr := c.br.Read(b[:])
	now := time.Now()
	switch {
	case ctx.Err() != nil:
		return 0, false, false, ctx.Err()
	case n > 0:
		return 0, false, false, errors.New("the server sent bytes on an idle connection")
	case errors.Is(rerr, io.EOF) || isReset(rerr):
		return now.Sub(c.last), isReset(rerr), true, nil
	case isTimeout(rerr):
		return 0, false, false, nil
	}
	return 0, false, false, rerr
}

// lateRequest writes a request into a connection the server has closed, as a pool that
// missed the FIN would, and says what the server's kernel answered: "rst" (the request
// was reset, as Linux does to data for a closed socket) or "eof" (nothing but the FIN).
func (c *conn) lateRequest(ctx context.Context) string {
	req, err := c.cfg.newRequest(ctx)
	if err != nil {
		return "unknown"
	}
	c.cfg.count()
	c.nc.SetDeadline(time.Now().Add(c.cfg.ResponseTimeout))
	if err := req.Write(c.nc); err != nil {
		if isReset(err) || errors.Is(err, syscall.EPIPE) {
			return "rst"
		}
		return "unknown"
	}
	// The first read after the FIN may return EOF before the RST is back; a second
	// write into a reset socket fails with EPIPE or ECONNRESET.
	var b [1]byte
	if _, err := c.br.Read(b[:]); isReset(err) {
		return "rst"
	}
	if err := req.Write(c.nc); err != nil && (isReset(err) || errors.Is(err, syscall.EPIPE)) {
		return "rst"
	}
	if _, err := c.br.Read(b[:]); isReset(err) {
		return "rst"
	}
	return "eof"
}

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
