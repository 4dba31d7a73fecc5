package upstreams

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"syscall"
	"time"
)

// MaxMeasureConns bounds MeasureCloses' n: each connection is a socket and a goroutine.
const MaxMeasureConns = 1024

// MeasureCloses measures when a server really closes idle connections. It opens n TCP
// connections to the loopback url at once, sends one GET for url's path ("/" when empty)
// on each with net/http's wire code, reads the response, then blocks reading until the
// server ends the connection (EOF or RST) or wait passes. For each connection that the
// server closed it returns how long after the end of the response the close arrived,
// in connection order; compare with the server's idle timeout to see how precisely it
// closes.
//
// On Linux the end of the response is the kernel's receive timestamp of its last bytes
// (SO_TIMESTAMPNS), and the close is seen by one thread blocked in ppoll(2) on all n
// sockets, so neither a burst of n responses nor the Go scheduler moves a sample by more
// than a thread wake-up; a sample is never shorter than the server's real close minus
// its last write. Elsewhere both ends are taken when the read that saw them returned.
//
// A connection that failed, was answered with Connection: close, received bytes after
// the response or was not closed within wait is left out and named in the error (at
// most five named, then a count); the samples of the others are still returned.
func MeasureCloses(ctx context.Context, rawURL string, n int, wait time.Duration) ([]time.Duration, error) {
	m, err := MeasureIdleCloses(ctx, rawURL, n, wait)
	return m.Closes, err
}

// IdleCloses is what MeasureIdleCloses saw of a server.
type IdleCloses struct {
	// Closes is MeasureCloses' samples.
	Closes []time.Duration
	// KeepAlive is the Keep-Alive header of the first response that had one ("" when
	// none did): what the server advertises, to set beside what it does.
	KeepAlive string
	// Resets counts the closes among Closes that arrived as a RST rather than a FIN.
	Resets int
}

// MeasureIdleCloses is MeasureCloses that also keeps the server's Keep-Alive header.
func MeasureIdleCloses(ctx context.Context, rawURL string, n int, wait time.Duration) (IdleCloses, error) {
	var res IdleCloses
	u, err := url.Parse(rawURL)
	if err != nil {
		return res, fmt.Errorf("MeasureCloses: url %q: %v", rawURL, err)
	}
	if u.Scheme != "http" {
		return res, fmt.Errorf("MeasureCloses: url %q: scheme must be http", rawURL)
	}
	if u.Port() == "" {
		return res, fmt.Errorf("MeasureCloses: url %q: needs a port", rawURL)
	}
	if err := CheckLoopback(u.Host); err != nil {
		return res, fmt.Errorf("MeasureCloses: url: %w", err)
	}
	if n < 1 || n > MaxMeasureConns {
		return res, fmt.Errorf("MeasureCloses: n must be within [1, %d], got %d", MaxMeasureConns, n)
	}
	if wait <= 0 {
		return res, fmt.Errorf("MeasureCloses: wait must be > 0, got %v", wait)
	}
	if u.Path == "" {
		u.Path = "/"
	}

	defer enableRxTimestamps()()
	w := newCloseWatcher()
	defer w.stop()
	samples := make([]time.Duration, n)
	headers := make([]string, n)
	resets := make([]bool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			samples[i], headers[i], resets[i], errs[i] = measureClose(ctx, w, u, wait)
		})
	}
	wg.Wait()

	out := make([]time.Duration, 0, n)
	for _, h := range headers {
		if h != "" {
			res.KeepAlive = h
			break
		}
	}
	var failed []error
	for i, err := range errs {
		if err != nil {
			failed = append(failed, fmt.Errorf("conn %d: %w", i, err))
			continue
		}
		out = append(out, samples[i])
		if resets[i] {
			res.Resets++
		}
	}
	res.Closes = out
	if len(failed) == 0 {
		return res, nil
	}
	shown := failed[:min(len(failed), 5)]
	msg := fmt.Sprintf("MeasureCloses %s: %d of %d connections gave no sample", rawURL, len(failed), n)
	for _, e := range shown {
		msg += "; " + e.Error()
	}
	if len(failed) > len(shown) {
		msg += fmt.Sprintf("; and %d more", len(failed)-len(shown))
	}
	return res, errors.New(msg)
}

// measureClose is one connection of MeasureCloses.
func measureClose(ctx context.Context, w *closeWatcher, u *url.URL, wait time.Duration) (late time.Duration, keepAlive string, reset bool, err error) {
	d := net.Dialer{Timeout: wait}
	nc, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		if ctx.Err() != nil {
			return 0, keepAlive, false, ctx.Err() // the dial ended with the context, which says why
		}
		return 0, keepAlive, false, err
	}
	defer nc.Close()
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
		return 0, keepAlive, false, fmt.Errorf("%s resolved to non-loopback %s", u.Host, nc.RemoteAddr())
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer stop()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, keepAlive, false, err
	}
	req.Header.Set("User-Agent", "idlerace-measure-closes")
	// Every deadline set here is followed by a look at ctx: a cancellation whose
	// AfterFunc ran just before would otherwise be overwritten.
	nc.SetDeadline(time.Now().Add(wait))
	if err := ctx.Err(); err != nil {
		return 0, keepAlive, false, err
	}
	if err := req.Write(nc); err != nil {
		return 0, keepAlive, false, fmt.Errorf("write request: %w", err)
	}
	sc := newStampConn(nc)
	br := bufio.NewReader(sc)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return 0, keepAlive, false, fmt.Errorf("read response: %w", err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, keepAlive, false, fmt.Errorf("read response body: %w", err)
	}
	resp.Body.Close()
	keepAlive = resp.Header.Get("Keep-Alive")
	if resp.Close {
		return 0, keepAlive, false, errors.New("response said Connection: close: not an idle close")
	}
	end := sc.last
	if br.Buffered() > 0 {
		return 0, keepAlive, false, fmt.Errorf("%d unexpected bytes after the response", br.Buffered())
	}

	closed, waited := sc.waitEnd(ctx, w, end.Add(wait))
	nc.SetReadDeadline(end.Add(wait))
	if err := ctx.Err(); err != nil {
		return 0, keepAlive, false, err
	}
	var buf [1]byte
	n, err := br.Read(buf[:])
	if !waited {
		closed = time.Now()
	}
	switch {
	case n > 0:
		return 0, keepAlive, false, fmt.Errorf("%d unexpected bytes after the response", br.Buffered()+n)
	case ctx.Err() != nil:
		return 0, keepAlive, false, ctx.Err()
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
		return closed.Sub(end), keepAlive, errors.Is(err, syscall.ECONNRESET), nil
	case isTimeoutErr(err):
		return 0, keepAlive, false, fmt.Errorf("no close within %v of the response", wait)
	}
	return 0, keepAlive, false, fmt.Errorf("waiting for the close: %w", err)
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
