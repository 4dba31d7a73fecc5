package pool_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/idlerace/idlerace/attack/pool"
	"github.com/idlerace/idlerace/upstreams/hostile"
)

func roundTrip(tr http.RoundTripper, url string) error {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"idlerace":true}`))
	if err != nil {
		return err
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// A 2 MiB header block fails at the limit: the pool reads at most MaxResponseHeaderBytes
// of it. Measured: parsing the whole block allocates about 1.3 MiB a request; with a
// 64 KiB limit the pool stays under 512 KiB.
func TestHugeResponseHeaderFailsAtTheLimitWithoutReadingIt(t *testing.T) {
	srv := hostile.Start(t, "huge-header", hostile.Options{})
	const limit = 64 << 10
	tr := pool.New(mustParse(t, "blind"), pool.Config{MaxResponseHeaderBytes: limit})
	defer tr.CloseIdleConnections()
	const n = 10
	// One request first: the server builds its 2 MiB response once, in this process.
	if err := roundTrip(tr, srv.URL()); !errors.Is(err, pool.ErrResponseHeaderTooLarge) {
		t.Fatalf("%v, want ErrResponseHeaderTooLarge", err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < n; i++ {
		err := roundTrip(tr, srv.URL())
		var pe *pool.Error
		if !errors.As(err, &pe) || pe.Class != pool.Other || pe.Stale() || !errors.Is(err, pool.ErrResponseHeaderTooLarge) {
			t.Fatalf("request %d: %v, want a non-stale other wrapping ErrResponseHeaderTooLarge", i, err)
		}
	}
	runtime.ReadMemStats(&after)
	if perReq := (after.TotalAlloc - before.TotalAlloc) / n; perReq > 8*limit {
		t.Fatalf("allocated %d KiB a request for a %d KiB header limit", perReq>>10, limit>>10)
	}
	if st := tr.Stats(); st.NewConns != n+1 || st.Reused != 0 {
		t.Fatalf("stats %+v: a failed connection must not be reused", st)
	}
}

// The default limit is net/http's DefaultMaxHeaderBytes, 1 MiB: under the kit's 2 MiB.
func TestDefaultHeaderLimitRejectsTheKitsHugeHeader(t *testing.T) {
	if pool.DefaultMaxResponseHeaderBytes != 1<<20 || hostile.DefaultHeaderBytes <= pool.DefaultMaxResponseHeaderBytes {
		t.Fatalf("limit %d, kit header %d", pool.DefaultMaxResponseHeaderBytes, hostile.DefaultHeaderBytes)
	}
	srv := hostile.Start(t, "huge-header", hostile.Options{})
	tr := pool.New(mustParse(t, "blind"), pool.Config{})
	defer tr.CloseIdleConnections()
	if err := roundTrip(tr, srv.URL()); !errors.Is(err, pool.ErrResponseHeaderTooLarge) {
		t.Fatalf("%v, want ErrResponseHeaderTooLarge", err)
	}
}

// "100 Continue" is not the answer: the pool reads on, and the close that follows is
// not counted as an idle-close EOF, because the server had begun to answer.
func TestCloseAfter100ContinueIsOtherNotEOF(t *testing.T) {
	srv := hostile.Start(t, "continue-then-close", hostile.Options{})
	tr := pool.New(mustParse(t, "blind"), pool.Config{})
	defer tr.CloseIdleConnections()
	for i := 0; i < 3; i++ {
		err := roundTrip(tr, srv.URL())
		if c := pool.Classify(err, true); c != pool.Other {
			t.Fatalf("request %d: class %q (%v), want other", i, c, err)
		}
	}
	if st := tr.Stats(); st.Reused != 0 {
		t.Fatalf("stats %+v: the connection after a 100 must not go back to the pool", st)
	}
}

// A response trickled slower than the request timeout fails as timeout, even though
// the parser was handed a partial status line.
func TestTrickledResponseTimesOut(t *testing.T) {
	srv := hostile.Start(t, "trickle", hostile.Options{Interval: 20 * time.Millisecond})
	for _, spec := range []string{"blind", "stdlib"} {
		tr := pool.New(mustParse(t, spec), pool.Config{RequestTimeout: 100 * time.Millisecond})
		err := roundTrip(tr, srv.URL())
		tr.CloseIdleConnections()
		if c := pool.Classify(err, true); c != pool.Timeout {
			t.Fatalf("%s: class %q (%v), want timeout", spec, c, err)
		}
	}
}

// A reset is reported once, to the first read or write after it arrives; the other then
// sees a plain end of stream. When net/http's writeLoop takes it, the readLoop reads EOF
// and the transport says "server closed idle connection": the class must still be a
// reset. The dialer puts the loops in that order: it returns a connection the server has
// already reset (rst-on-accept), whose reads wait for the first write and whose failed
// write returns only once the readLoop has closed the connection.
func TestStdlibResetTakenByTheWriteIsAReset(t *testing.T) {
	srv := hostile.Start(t, "rst-on-accept", hostile.Options{})
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		// The RST can beat the dialer's own check of the connect (SO_ERROR): that is a
		// failed dial, not what is tested here; dial again.
		for i := 0; i < 100 && errors.Is(err, syscall.ECONNRESET); i++ {
			c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		}
		if err != nil {
			return nil, err
		}
		if err := waitReset(c); err != nil {
			c.Close()
			return nil, err
		}
		return &writeFirst{Conn: c, wrote: make(chan struct{}), closed: make(chan struct{})}, nil
	}
	tr := pool.New(mustParse(t, "stdlib"), pool.Config{Dial: dial})
	defer tr.CloseIdleConnections()
	for i := 0; i < 20; i++ {
		err := roundTrip(tr, srv.URL())
		var pe *pool.Error
		if !errors.As(err, &pe) || pe.Class != pool.ResetWrite || pe.Op != "write" || pe.Stale() || !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("request %d: %v, want a fresh connection's reset_write wrapping ECONNRESET", i, err)
		}
	}
}

// waitReset waits until the server's RST has reached c, without reading it: poll(2)
// reports the error and leaves it for the next read or write.
func waitReset(c net.Conn) error {
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return err
	}
	var perr error
	if err := rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			// The bound only keeps a broken server from hanging the test.
			n, err := unix.Poll(fds, 10_000)
			if err == unix.EINTR {
				continue
			}
			if err == nil && (n == 0 || fds[0].Revents&unix.POLLERR == 0) {
				err = fmt.Errorf("poll: no reset (revents %#x)", fds[0].Revents)
			}
			perr = err
			return
		}
	}); err != nil {
		return err
	}
	return perr
}

// writeFirst lets net/http's readLoop read only after the first write has returned, and
// holds a failed write until the connection is closed.
type writeFirst struct {
	net.Conn
	wrote, closed     chan struct{}
	wroteOnce, closer sync.Once
}

func (c *writeFirst) Read(p []byte) (int, error) {
	select {
	case <-c.wrote:
	case <-c.closed:
	}
	return c.Conn.Read(p)
}

func (c *writeFirst) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.wroteOnce.Do(func() { close(c.wrote) })
	if err != nil {
		<-c.closed
	}
	return n, err
}

func (c *writeFirst) Close() error {
	err := c.Conn.Close()
	c.closer.Do(func() { close(c.closed) })
	return err
}
