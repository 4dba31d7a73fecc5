// Package realtest holds what the tests of the real upstream kinds share: skipping (or,
// with IDLERACE_REQUIRE_REAL=1, failing) when a server is not installed, a raw HTTP/1.1
// client on one loopback connection, close-jitter statistics from MeasureCloses, and
// checks that a stopped server left no process and no directory behind.
package realtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/idlerace/idlerace/internal/real"
	"github.com/idlerace/idlerace/upstreams"
)

// WaitBound caps every wait in these tests.
const WaitBound = 10 * time.Second

// RequireEnv is the variable that turns a missing server from a skip into a failure (CI).
const RequireEnv = "IDLERACE_REQUIRE_REAL"

// Require skips the test when check fails (the server is not installed), naming the
// Debian package to install; with IDLERACE_REQUIRE_REAL=1 it fails instead.
func Require(t testing.TB, what, debianPackage string, check func() error) {
	t.Helper()
	err := check()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("%s is not available (%v): install the Debian package %s (sudo apt-get install %s, or scripts/deps.sh as root)",
		what, err, debianPackage, debianPackage)
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s; %s=1 requires the real servers", msg, RequireEnv)
		return
	}
	t.Skip(msg + "; set " + RequireEnv + "=1 to fail instead of skipping")
}

// Executable checks that path is an executable file.
func Executable(path string) func() error {
	return func() error {
		st, err := os.Stat(path)
		if err != nil {
			return err
		}
		if st.IsDir() || st.Mode()&0o111 == 0 {
			return fmt.Errorf("%s is not executable", path)
		}
		return nil
	}
}

// Client is a raw HTTP/1.1 client on one TCP connection.
type Client struct {
	t  testing.TB
	NC net.Conn
	BR *bufio.Reader
	// Method is what Send sends ("" is GET); any other method carries a 2-byte body.
	Method string
}

// Dial connects to the loopback URL u ("http://HOST:PORT") and closes at cleanup.
func Dial(t testing.TB, u string) *Client {
	t.Helper()
	host := strings.TrimPrefix(u, "http://")
	if err := upstreams.CheckLoopback(host); err != nil {
		t.Fatal(err)
	}
	nc, err := net.DialTimeout("tcp", host, WaitBound)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &Client{t: t, NC: nc, BR: bufio.NewReader(nc)}
}

// Send writes one request of path (a GET unless Method says otherwise) with extra
// header lines ("Name: value").
func (c *Client) Send(path string, headers ...string) {
	c.t.Helper()
	method, body := c.Method, ""
	if method == "" || method == http.MethodGet {
		method = http.MethodGet
	} else {
		body = "{}"
		headers = append(headers, "Content-Length: 2")
	}
	req := method + " " + path + " HTTP/1.1\r\nHost: idlerace\r\n"
	for _, h := range headers {
		req += h + "\r\n"
	}
	c.NC.SetWriteDeadline(time.Now().Add(WaitBound))
	if _, err := io.WriteString(c.NC, req+"\r\n"+body); err != nil {
		c.t.Fatalf("write request: %v", err)
	}
}

// Recv reads one response and its body.
func (c *Client) Recv() (*http.Response, []byte) {
	c.t.Helper()
	c.NC.SetReadDeadline(time.Now().Add(WaitBound))
	resp, err := http.ReadResponse(c.BR, nil)
	if err != nil {
		c.t.Fatalf("read response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("read body: %v", err)
	}
	return resp, body
}

// TryRoundTrip sends a request of path and reads the response, returning the read's
// error (the server ended the connection instead of answering) rather than failing.
func (c *Client) TryRoundTrip(path string, headers ...string) (*http.Response, []byte, error) {
	c.t.Helper()
	c.Send(path, headers...)
	c.NC.SetReadDeadline(time.Now().Add(WaitBound))
	resp, err := http.ReadResponse(c.BR, nil)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// RoundTrip sends a request of path and reads the response.
func (c *Client) RoundTrip(path string, headers ...string) (*http.Response, []byte) {
	c.t.Helper()
	c.Send(path, headers...)
	return c.Recv()
}

// ReadEnd blocks (bounded) until the server ends the connection and returns what the
// read saw (io.EOF, a reset); receiving bytes or timing out fails the test.
func (c *Client) ReadEnd() error {
	c.t.Helper()
	c.NC.SetReadDeadline(time.Now().Add(WaitBound))
	var buf [64]byte
	n, err := c.BR.Read(buf[:])
	if n > 0 {
		c.t.Fatalf("read %d unexpected bytes %q", n, buf[:n])
	}
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		c.t.Fatalf("read: %v, want the server to end the connection", err)
	}
	if err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
		c.t.Fatalf("read: %v, want EOF or a reset", err)
	}
	return err
}

// Jitter is how far closes landed after the configured timeout.
type Jitter struct {
	N             int
	P50, P99, Max time.Duration
	Min           time.Duration
}

func (j Jitter) String() string {
	return fmt.Sprintf("n=%d close-T: min %v p50 %v p99 %v max %v", j.N, j.Min, j.P50, j.P99, j.Max)
}

// CloseJitter measures n idle closes of the server at url with MeasureCloses and returns
// the close times minus timeout; it fails the test if any connection gave no sample.
func CloseJitter(t testing.TB, url string, n int, timeout time.Duration) Jitter {
	t.Helper()
	samples, err := upstreams.MeasureCloses(context.Background(), url, n, timeout+WaitBound)
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != n {
		t.Fatalf("%d samples, want %d", len(samples), n)
	}
	d := make([]time.Duration, n)
	for i, s := range samples {
		d[i] = s - timeout
	}
	slices.Sort(d)
	q := func(p float64) time.Duration { return d[min(n-1, int(p*float64(n)))] }
	return Jitter{N: n, Min: d[0], P50: q(0.5), P99: q(0.99), Max: d[n-1]}
}

// AssertClosesNearTimeout states what every kind's idle close must do in terms that hold
// on a loaded machine: the median close lies within [T-medianEarly, T+T/2], and none
// comes before T-T/4. A busy neighbour mostly delays a close, so the upper bound is loose
// on purpose: it catches a server that does not close near T at all, while how precisely
// it closes is a figure for BenchCloseJitter and for every cell of a run
// (server.close_jitter_us), not a pass/fail here. medianEarly is the kind's own clock
// resolution: about 1ms for servers that arm the timer on a fresh clock read after the
// response was written (net/http rounds to the netpoller's milliseconds); an event-loop
// server that arms it from a clock cached at the start of the loop's turn can close early
// by that turn's length. Single samples are not held to it: under load one came 2.9ms
// early even from net/http, whose deadline is set after the write (the client's kernel
// receive timestamp of the response, deferred with the softirq that delivers it, is the
// likeliest cause), so only T/4 early is ruled out for each.
func AssertClosesNearTimeout(t testing.TB, j Jitter, timeout, medianEarly time.Duration) {
	t.Helper()
	if j.P50 < -medianEarly || j.P50 > timeout/2 {
		t.Errorf("median close landed %v after T=%v, want within [%v, %v] (%v)", j.P50, timeout, -medianEarly, timeout/2, j)
	}
	if j.Min < -timeout/4 {
		t.Errorf("a close landed %v before T=%v, want none earlier than T/4 (%v)", -j.Min, timeout, j)
	}
}

// WaitStats polls stats (bounded by WaitBound) until cond holds and returns the last
// value: a server counts a close or a request when its own bookkeeping runs, which can be
// a moment after the client already saw the FIN or the response.
func WaitStats(stats func() upstreams.Stats, cond func(upstreams.Stats) bool) upstreams.Stats {
	st := stats()
	for deadline := time.Now().Add(WaitBound); !cond(st) && time.Now().Before(deadline); st = stats() {
		time.Sleep(time.Millisecond)
	}
	return st
}

// BenchCloseJitter reports how precisely the server at url closes idle connections:
// each iteration measures n closes at once with MeasureCloses, and the benchmark reports
// the close minus timeout over all of them (p50, p99, min, max in µs). These are the
// figures the tests do not gate on.
func BenchCloseJitter(b *testing.B, url string, n int, timeout time.Duration) {
	b.Helper()
	var all []time.Duration
	for b.Loop() {
		samples, err := upstreams.MeasureCloses(context.Background(), url, n, timeout+WaitBound)
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range samples {
			all = append(all, s-timeout)
		}
	}
	slices.Sort(all)
	q := func(p float64) float64 { return float64(all[min(len(all)-1, int(p*float64(len(all))))].Microseconds()) }
	b.ReportMetric(q(0.5), "close-p50-µs")
	b.ReportMetric(q(0.99), "close-p99-µs")
	b.ReportMetric(float64(all[0].Microseconds()), "close-min-µs")
	b.ReportMetric(float64(all[len(all)-1].Microseconds()), "close-max-µs")
}

// AssertGone checks that the server with main process pid (also its process group) has
// left no process behind and that its directory is gone.
func AssertGone(t testing.TB, pid int, dir string) {
	t.Helper()
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
		t.Errorf("process %d still exists after Close", pid)
	}
	if left := real.GroupMembers(pid); len(left) > 0 {
		t.Errorf("process group %d still has processes %v after Close", pid, left)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("server directory %s still there after Close (stat: %v)", dir, err)
	}
}

// BusyAddr listens on a free loopback port and returns its address; the listener
// closes at cleanup. A server told to use it cannot bind.
func BusyAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// AssertStartError checks that err is an upstreams.ErrStart whose one-line message
// holds every one of wants.
func AssertStartError(t testing.TB, err error, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("start succeeded, want ErrStart")
	}
	if !errors.Is(err, upstreams.ErrStart) {
		t.Fatalf("error %q does not wrap upstreams.ErrStart", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	for _, w := range wants {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q lacks %q", msg, w)
		}
	}
}
