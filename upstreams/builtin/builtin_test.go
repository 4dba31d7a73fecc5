package builtin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/idlerace/idlerace/chaos"
	"github.com/idlerace/idlerace/upstreams"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitBound caps every wait in these tests; nothing should come near it.
const waitBound = 5 * time.Second

func mustSkew(t testing.TB, spec string) chaos.Skew {
	t.Helper()
	s, err := chaos.ParseSkew(spec)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func startServer(t testing.TB, cfg upstreams.Config) *Server {
	t.Helper()
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// client is a raw HTTP/1.1 client on one TCP connection.
type client struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

func dial(t testing.TB, s *Server) *client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.Addr().String(), waitBound)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (c *client) localPort() int { return c.nc.LocalAddr().(*net.TCPAddr).Port }

// send writes one GET with the given extra header lines ("Name: value").
func (c *client) send(headers ...string) {
	c.t.Helper()
	req := "GET /work HTTP/1.1\r\nHost: idlerace\r\n"
	for _, h := range headers {
		req += h + "\r\n"
	}
	c.nc.SetWriteDeadline(time.Now().Add(waitBound))
	if _, err := io.WriteString(c.nc, req+"\r\n"); err != nil {
		c.t.Fatalf("write request: %v", err)
	}
}

// recv reads one response and its whole body.
func (c *client) recv() (*http.Response, []byte) {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(waitBound))
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.t.Fatalf("read response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("read body: %v", err)
	}
	return resp, body
}

func (c *client) roundTrip(headers ...string) (*http.Response, []byte) {
	c.t.Helper()
	c.send(headers...)
	return c.recv()
}

// readEnd blocks (bounded) until the server ends the connection and returns the error
// the read saw; receiving any byte fails the test.
func (c *client) readEnd() error {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(waitBound))
	var buf [64]byte
	n, err := c.br.Read(buf[:])
	if n > 0 {
		c.t.Fatalf("read %d unexpected bytes %q", n, buf[:n])
	}
	if err == nil || errors.Is(err, syscall.ETIMEDOUT) || isTimeout(err) {
		c.t.Fatalf("read: %v, want the server to end the connection", err)
	}
	return err
}

// waitCloses waits (bounded) until the server recorded n closes: a client can see EOF
// a moment before the server appends the record.
func waitCloses(t testing.TB, s *Server, n int) []upstreams.CloseRecord {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for {
		recs := s.Closes()
		if len(recs) >= n {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("server recorded %d closes, want %d: %+v", len(recs), n, recs)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestIdleCloseLandsAtTPlusSkew(t *testing.T) {
	s := startServer(t, upstreams.Config{IdleTimeout: 30 * time.Millisecond, Skew: mustSkew(t, "offset:-10ms")})
	c := dial(t, s)
	resp, body := c.roundTrip()
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("response %d %q, want 200 \"ok\"", resp.StatusCode, body)
	}
	if err := c.readEnd(); err != io.EOF {
		t.Fatalf("client read after idle fin close: %v, want EOF", err)
	}
	recs := waitCloses(t, s, 1)
	r := recs[0]
	if r.Reason != upstreams.ReasonIdle {
		t.Errorf("Reason = %q, want idle", r.Reason)
	}
	if got := r.Due.Sub(r.IdleStart); got != 20*time.Millisecond {
		t.Errorf("Due - IdleStart = %v, want exactly 20ms (T 30ms + s -10ms)", got)
	}
	if r.Skew != -10*time.Millisecond {
		t.Errorf("Skew = %v, want -10ms", r.Skew)
	}
	if r.Closed.Before(r.Due) {
		t.Errorf("closed %v before due", r.Due.Sub(r.Closed))
	}
	// Reading stopped at or after due and before the close.
	if r.Stopped.Before(r.Due) || r.Closed.Before(r.Stopped) {
		t.Errorf("due %v, stopped %v, closed %v: want due <= stopped <= closed", r.Due, r.Stopped, r.Closed)
	}
	if !r.IdleStart.After(r.Accepted) {
		t.Errorf("IdleStart %v not after Accepted %v: idle should start at the response", r.IdleStart, r.Accepted)
	}
	if r.Requests != 1 || r.Unread || r.RemotePort != c.localPort() {
		t.Errorf("record = %+v, want Requests 1, Unread false, RemotePort %d", r, c.localPort())
	}
	st := s.Stats()
	if st.IdleCloses != 1 || st.Accepted != 1 || st.Executed != 1 || st.ClosesWithUnread != 0 || st.Duplicates != 0 {
		t.Errorf("Stats = %+v, want 1 accepted, 1 idle close, 1 executed", st)
	}
	// One idle close: every lateness percentile is that close's Closed - Due, to the
	// histogram's 3 significant digits.
	lateUS := r.Closed.Sub(r.Due).Microseconds()
	for name, got := range map[string]int64{"p50": st.CloseLateP50US, "p99": st.CloseLateP99US, "max": st.CloseLateMaxUS} {
		if d := got - lateUS; d < -1 || d > lateUS/500+1 {
			t.Errorf("CloseLate %s = %dµs, want this close's lateness %dµs (Closed - Due)", name, got, lateUS)
		}
	}
}

func TestIdleCloseFromAcceptWithoutRequest(t *testing.T) {
	s := startServer(t, upstreams.Config{IdleTimeout: 20 * time.Millisecond})
	c := dial(t, s)
	if err := c.readEnd(); err != io.EOF {
		t.Fatalf("read: %v, want EOF", err)
	}
	r := waitCloses(t, s, 1)[0]
	if r.Reason != upstreams.ReasonIdle || r.Requests != 0 || !r.IdleStart.Equal(r.Accepted) ||
		r.Due.Sub(r.Accepted) != 20*time.Millisecond || r.Skew != 0 {
		t.Errorf("record = %+v, want idle close 20ms after accept with no requests", r)
	}
}

func TestIdleCloseRSTResetsClient(t *testing.T) {
	s := startServer(t, upstreams.Config{IdleTimeout: 20 * time.Millisecond, Close: chaos.CloseRST})
	c := dial(t, s)
	c.roundTrip()
	if err := c.readEnd(); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client read after idle rst close: %v, want ECONNRESET", err)
	}
	if r := waitCloses(t, s, 1)[0]; r.Reason != upstreams.ReasonIdle || r.Unread {
		t.Errorf("record = %+v, want idle without unread bytes", r)
	}
}

func TestKeepAliveHeaderAdvertisesTimeout(t *testing.T) {
	for _, tc := range []struct {
		idle, advertise time.Duration
		want            []string // nil: no Keep-Alive header
	}{
		{idle: 100 * time.Millisecond, want: []string{"timeout=0.1"}},
		{idle: 5 * time.Second, want: []string{"timeout=5"}},
		{idle: 1500 * time.Millisecond, want: []string{"timeout=1.5"}},
		{idle: 5 * time.Second, advertise: 4 * time.Second, want: []string{"timeout=4"}},
		{idle: 100 * time.Millisecond, advertise: 75 * time.Second, want: []string{"timeout=75"}},
		{idle: 5 * time.Second, advertise: -1, want: nil},
	} {
		t.Run(fmt.Sprintf("T=%v,advertise=%v", tc.idle, tc.advertise), func(t *testing.T) {
			s := startServer(t, upstreams.Config{IdleTimeout: tc.idle, Advertise: tc.advertise})
			resp, _ := dial(t, s).roundTrip()
			if got := resp.Header.Values("Keep-Alive"); !slices.Equal(got, tc.want) {
				t.Errorf("Keep-Alive = %q, want %q", got, tc.want)
			}
			if resp.Close {
				t.Error("response asks to close a keep-alive connection")
			}
		})
	}
}

func TestMaxRequestsClosesAfterNth(t *testing.T) {
	s := startServer(t, upstreams.Config{IdleTimeout: 5 * time.Second, MaxRequests: 3})
	c := dial(t, s)
	for i := 1; i <= 3; i++ {
		resp, _ := c.roundTrip()
		wantClose := i == 3
		// ReadResponse sets Close from the Connection: close header (and removes it).
		if resp.Close != wantClose {
			t.Errorf("response %d: Close = %v; want close only on the 3rd", i, resp.Close)
		}
		if hasKA := resp.Header.Get("Keep-Alive") != ""; hasKA == wantClose {
			t.Errorf("response %d: Keep-Alive = %q; want it on keep-alive responses only", i, resp.Header.Get("Keep-Alive"))
		}
	}
	if err := c.readEnd(); err != io.EOF {
		t.Fatalf("read after the 3rd response: %v, want EOF", err)
	}
	r := waitCloses(t, s, 1)[0]
	if r.Reason != upstreams.ReasonMaxRequests || r.Requests != 3 || !r.Due.IsZero() {
		t.Errorf("record = %+v, want max-requests after 3 requests, no due", r)
	}
	if st := s.Stats(); st.IdleCloses != 0 || st.Executed != 3 {
		t.Errorf("Stats = %+v, want 0 idle closes, 3 executed", st)
	}
}

func TestConnectionCloseRequestClosesAsPeer(t *testing.T) {
	s := startServer(t, upstreams.Config{IdleTimeout: 5 * time.Second})
	c := dial(t, s)
	resp, _ := c.roundTrip("Connection: close")
	if !resp.Close {
		t.Error("response to Connection: close does not say close")
	}
	if err := c.readEnd(); err != io.EOF {
		t.Fatalf("read: %v, want EOF", err)
	}
	if r := waitCloses(t, s, 1)[0]; r.Reason != upstreams.ReasonPeer || r.Requests != 1 {
		t.Errorf("record = %+v, want peer after 1 request", r)
	}
}

func TestClientCloseWhileIdleRecordedAsPeer(t *testing.T) {
	s := startServer(t, upstreams.Config{IdleTimeout: 5 * time.Second, Skew: mustSkew(t, "offset:1s")})
	c := dial(t, s)
	c.roundTrip()
	c.nc.Close()
	r := waitCloses(t, s, 1)[0]
	if r.Reason != upstreams.ReasonPeer || r.Due.Sub(r.IdleStart) != 6*time.Second || r.Skew != time.Second {
		t.Errorf("record = %+v, want peer close while idle with its due at +6s", r)
	}
	if st := s.Stats(); st.IdleCloses != 0 {
		t.Errorf("IdleCloses = %d, want 0", st.IdleCloses)
	}
}

func TestResponseBytesAndServiceTime(t *testing.T) {
	const serviceTime = 40 * time.Millisecond
	s := startServer(t, upstreams.Config{IdleTimeout: 5 * time.Second, ResponseBytes: 10_001, ServiceTime: serviceTime})
	c := dial(t, s)
	for i := range 2 {
		start := time.Now()
		resp, body := c.roundTrip()
		// A lower bound only: sleeping never ends early.
		if elapsed := time.Since(start); elapsed < serviceTime {
			t.Errorf("request %d answered after %v, before the %v service time", i, elapsed, serviceTime)
		}
		if len(body) != 10_001 || resp.ContentLength != 10_001 {
			t.Errorf("request %d: body %d bytes, Content-Length %d; want 10001", i, len(body), resp.ContentLength)
		}
	}
}

func TestDefaultResponseIsTwoBytes(t *testing.T) {
	s := startServer(t, upstreams.Config{IdleTimeout: 5 * time.Second})
	resp, body := dial(t, s).roundTrip()
	if string(body) != "ok" || resp.Header.Get("Content-Length") != "2" {
		t.Errorf("body %q, Content-Length %q; want \"ok\", 2", body, resp.Header.Get("Content-Length"))
	}
}

func TestPipelinedRequestsAnsweredInOrder(t *testing.T) {
	s := startServer(t, upstreams.Config{IdleTimeout: 5 * time.Second, MaxRequests: 3})
	c := dial(t, s)
	// One write, so that the 4th request is in the server's buffer when the 3rd
	// response closes the connection.
	var all string
	for i := 1; i <= 4; i++ { // the 4th is beyond MaxRequests: never read
		all += fmt.Sprintf("GET /work HTTP/1.1\r\nHost: idlerace\r\n%s: p%d\r\n\r\n", RequestIDHeader, i)
	}
	if _, err := io.WriteString(c.nc, all); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		resp, _ := c.recv()
		if resp.Close != (i == 3) {
			t.Errorf("response %d: Close = %v", i, resp.Close)
		}
	}
	r := waitCloses(t, s, 1)[0]
	if r.Reason != upstreams.ReasonMaxRequests || !r.Unread {
		t.Errorf("record = %+v, want max-requests with the 4th request unread", r)
	}
	if st := s.Stats(); st.Executed != 3 || st.ClosesWithUnread != 1 {
		t.Errorf("Stats = %+v, want 3 executed, 1 close with unread", st)
	}
}

func TestDuplicateRequestIDsCounted(t *testing.T) {
	s := startServer(t, upstreams.Config{IdleTimeout: 5 * time.Second})
	dial(t, s).roundTrip(RequestIDHeader + ": req-1")
	dial(t, s).roundTrip(RequestIDHeader + ": req-1")
	c := dial(t, s)
	c.roundTrip(RequestIDHeader + ": req-2")
	c.roundTrip() // no id: executed, never a duplicate
	c.roundTrip()
	st := s.Stats()
	if st.Executed != 5 || st.Duplicates != 1 {
		t.Errorf("Executed %d, Duplicates %d; want 5, 1", st.Executed, st.Duplicates)
	}
	dial(t, s).roundTrip(RequestIDHeader + ": req-1")
	if st := s.Stats(); st.Executed != 6 || st.Duplicates != 2 {
		t.Errorf("after a third req-1: Executed %d, Duplicates %d; want 6, 2", st.Executed, st.Duplicates)
	}
}

func TestStatsEndpointAnswersJSONAndIsNotExecuted(t *testing.T) {
	s := startServer(t, upstreams.Config{IdleTimeout: 5 * time.Second})
	c := dial(t, s)
	c.roundTrip(RequestIDHeader + ": a")
	c.send()
	c.nc.SetWriteDeadline(time.Now().Add(waitBound))
	io.WriteString(c.nc, "GET "+StatsPath+" HTTP/1.1\r\nHost: idlerace\r\n\r\n")
	c.recv()
	resp, body := c.recv()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var got map[string]int64
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("stats body %q: %v", body, err)
	}
	if got["executed"] != 2 || got["accepted"] != 1 || got["duplicates"] != 0 {
		t.Errorf("stats = %v, want executed 2, accepted 1", got)
	}
	for _, k := range []string{"idle_closes", "closes_with_unread", "close_late_p50_us", "close_late_p99_us", "close_late_max_us"} {
		if _, ok := got[k]; !ok {
			t.Errorf("stats JSON lacks %q: %s", k, body)
		}
	}
	if st := s.Stats(); st.Executed != 2 {
		t.Errorf("Executed = %d after a stats request, want 2", st.Executed)
	}
}

// TestIdlePeriodStartsAsTheResponseLeaves: the idle period (CloseRecord.IdleStart, and
// the due T after it) starts as the response's last write begins, not once the write
// returned: a goroutine that then waits for a thread (the hook holds it until the
// client has read the whole response) would start its timer late by that wait, which
// the wire, where the response left, never shows.
func TestIdlePeriodStartsAsTheResponseLeaves(t *testing.T) {
	s, err := listen(context.Background(), upstreams.Config{IdleTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	read := make(chan struct{})
	var once sync.Once
	s.afterResponse = func() {
		once.Do(func() {
			select {
			case <-read:
			case <-time.After(waitBound):
			}
		})
	}
	s.run(context.Background())
	t.Cleanup(func() { s.Close() })
	c := dial(t, s)
	c.roundTrip(RequestIDHeader + ": first")
	readAt := time.Now()
	close(read)
	r := waitCloses(t, s, 1)[0]
	if r.Reason != upstreams.ReasonIdle {
		t.Fatalf("record %+v, want an idle close", r)
	}
	if !r.IdleStart.Before(readAt) {
		t.Errorf("idle start %v after the client had read the response: it was taken when the write returned", r.IdleStart.Sub(readAt))
	}
}

// TestIdleCloseWithUnreadRequest puts a request into the socket after the idle deadline
// fired and before the server closes: the race itself, made deterministic by the hook.
func TestIdleCloseWithUnreadRequest(t *testing.T) {
	for _, mode := range []chaos.CloseMode{chaos.CloseFIN, chaos.CloseRST} {
		t.Run(string(mode), func(t *testing.T) {
			s, err := listen(context.Background(), upstreams.Config{IdleTimeout: 30 * time.Millisecond, Close: mode})
			if err != nil {
				t.Fatal(err)
			}
			fired, written := make(chan struct{}), make(chan struct{})
			s.beforeIdleClose = func(nc net.Conn) {
				close(fired)
				select {
				case <-written:
				case <-time.After(waitBound):
					return
				}
				for deadline := time.Now().Add(waitBound); !chaos.Unread(nc) && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
				}
			}
			s.run(context.Background())
			t.Cleanup(func() { s.Close() })

			c := dial(t, s)
			c.roundTrip(RequestIDHeader + ": first")
			select {
			case <-fired:
			case <-time.After(waitBound):
				t.Fatal("idle deadline never fired")
			}
			c.send(RequestIDHeader + ": second")
			close(written)
			// Closing a socket with unread bytes sends RST even in fin mode.
			if err := c.readEnd(); !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("client read: %v, want ECONNRESET", err)
			}
			r := waitCloses(t, s, 1)[0]
			if r.Reason != upstreams.ReasonIdle || !r.Unread || r.Requests != 1 {
				t.Errorf("record = %+v, want idle close with unread bytes after 1 request", r)
			}
			if st := s.Stats(); st.ClosesWithUnread != 1 || st.IdleCloses != 1 || st.Executed != 1 {
				t.Errorf("Stats = %+v, want 1 close with unread, 1 idle close, 1 executed", st)
			}
		})
	}
}

// skewSequence opens n connections one after another, lets each idle out, and returns
// the skews the server drew, in accept order.
func skewSequence(t *testing.T, seed uint64, n int) []time.Duration {
	s := startServer(t, upstreams.Config{IdleTimeout: 10 * time.Millisecond, Skew: mustSkew(t, "uniform:±5ms"), Seed: seed})
	for range n {
		if err := dial(t, s).readEnd(); err != io.EOF {
			t.Fatalf("read: %v, want EOF", err)
		}
	}
	// In accept order, not close order (Closes' own): a close is stamped after close()
	// returns, and a goroutine held off the CPU for longer than the next connection's
	// whole idle period (5 ms here, on a loaded machine) stamps its close after it.
	recs := waitCloses(t, s, n)
	slices.SortFunc(recs, func(a, b upstreams.CloseRecord) int { return a.Accepted.Compare(b.Accepted) })
	var skews []time.Duration
	for _, r := range recs {
		if r.Reason != upstreams.ReasonIdle {
			t.Fatalf("record = %+v, want idle", r)
		}
		skews = append(skews, r.Skew)
	}
	return skews
}

func TestSeededSkewsRepeat(t *testing.T) {
	const n = 6
	a, b, other := skewSequence(t, 7, n), skewSequence(t, 7, n), skewSequence(t, 8, n)
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different skews:\n%v\n%v", a, b)
	}
	if slices.Equal(a, other) {
		t.Errorf("seeds 7 and 8 drew the same skews %v", a)
	}
	// The i-th connection's draws come from PCG(seed, i).
	skew := mustSkew(t, "uniform:±5ms")
	for i, got := range a {
		if want := skew.Draw(rand.New(rand.NewPCG(7, uint64(i))), 0); got != want {
			t.Errorf("connection %d: skew %v, want %v", i, got, want)
		}
	}
}

func TestCloseEndsOpenConnections(t *testing.T) {
	s, err := Start(context.Background(), upstreams.Config{IdleTimeout: time.Minute, ServiceTime: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	idle := dial(t, s)    // waiting for its first request
	partial := dial(t, s) // half a request written
	busy := dial(t, s)    // inside the one-minute service time
	io.WriteString(partial.nc, "GET / HT")
	busy.send()
	deadline := time.Now().Add(waitBound)
	for s.Stats().Executed < 1 || s.Stats().Accepted < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("server did not take the connections: %+v", s.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for name, c := range map[string]*client{"idle": idle, "partial": partial, "busy": busy} {
		if err := c.readEnd(); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("%s connection after Close: %v, want EOF or reset", name, err)
		}
	}
	recs := s.Closes()
	if len(recs) != 3 {
		t.Fatalf("%d close records, want 3: %+v", len(recs), recs)
	}
	for _, r := range recs {
		if r.Reason != upstreams.ReasonShutdown {
			t.Errorf("record = %+v, want shutdown", r)
		}
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := net.DialTimeout("tcp", s.Addr().String(), waitBound); err == nil {
		t.Error("dial after Close succeeded")
	}
}

func TestCancelledContextStopsServer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Start(ctx, upstreams.Config{IdleTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, s)
	c.roundTrip()
	cancel()
	if err := c.readEnd(); err != io.EOF {
		t.Fatalf("read after cancel: %v, want EOF", err)
	}
	s.Close() // waits for the shutdown the cancellation began
	if recs := s.Closes(); len(recs) != 1 || recs[0].Reason != upstreams.ReasonShutdown {
		t.Errorf("records = %+v, want one shutdown", recs)
	}
	if _, err := Start(ctx, upstreams.Config{IdleTimeout: time.Minute}); !errors.Is(err, context.Canceled) {
		t.Errorf("Start with a done context: %v, want context.Canceled", err)
	}
}

func TestMalformedRequestAnswered400(t *testing.T) {
	s := startServer(t, upstreams.Config{IdleTimeout: 5 * time.Second})
	c := dial(t, s)
	io.WriteString(c.nc, "NOT HTTP AT ALL\r\n\r\n")
	resp, _ := c.recv()
	if resp.StatusCode != 400 || !resp.Close {
		t.Errorf("status %d close %v, want 400 and close", resp.StatusCode, resp.Close)
	}
	if r := waitCloses(t, s, 1)[0]; r.Reason != upstreams.ReasonError {
		t.Errorf("record = %+v, want error", r)
	}
	if st := s.Stats(); st.Executed != 0 {
		t.Errorf("Executed = %d for a malformed request, want 0", st.Executed)
	}
}

func TestIPv6Loopback(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	ln.Close()
	s := startServer(t, upstreams.Config{IdleTimeout: 5 * time.Second, Addr: "[::1]:0"})
	if !strings.HasPrefix(s.URL(), "http://[::1]:") {
		t.Errorf("URL = %q", s.URL())
	}
	if resp, _ := dial(t, s).roundTrip(); resp.StatusCode != 200 {
		t.Errorf("status %d", resp.StatusCode)
	}
}

func TestBadConfigNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		cfg  upstreams.Config
		want string
	}{
		{upstreams.Config{IdleTimeout: time.Second, Addr: "0.0.0.0:0"}, `upstream config: Addr: "0.0.0.0:0": not a loopback address`},
		{upstreams.Config{IdleTimeout: time.Second, Addr: ":0"}, `upstream config: Addr: ":0": not a loopback address`},
		{upstreams.Config{IdleTimeout: time.Second, Addr: "192.0.2.1:80"}, `upstream config: Addr: "192.0.2.1:80": not a loopback address`},
		{upstreams.Config{IdleTimeout: time.Second, Addr: "127.0.0.1"}, `upstream config: Addr: "127.0.0.1": address 127.0.0.1: missing port in address`},
		{upstreams.Config{}, "upstream config: IdleTimeout must be > 0, got 0s"},
		{upstreams.Config{IdleTimeout: -time.Second}, "upstream config: IdleTimeout must be > 0, got -1s"},
		{upstreams.Config{IdleTimeout: time.Second, Close: "silent"}, `upstream config: Close "silent": unknown (known: fin, rst)`},
		{upstreams.Config{IdleTimeout: time.Second, ResponseBytes: -1}, "upstream config: ResponseBytes must be >= 0, got -1"},
		{upstreams.Config{IdleTimeout: time.Second, MaxRequests: -1}, "upstream config: MaxRequests must be >= 0, got -1"},
		{upstreams.Config{IdleTimeout: time.Second, ServiceTime: -1}, "upstream config: ServiceTime must be >= 0, got -1ns"},
	} {
		s, err := Start(context.Background(), tc.cfg)
		if err == nil {
			s.Close()
			t.Errorf("Start(%+v) succeeded, want %q", tc.cfg, tc.want)
			continue
		}
		if !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Start(%+v) error\n got %q\nwant %q...", tc.cfg, err, tc.want)
		}
	}
}

func TestRegisteredAsBuiltin(t *testing.T) {
	if kinds := upstreams.Kinds(); !slices.Contains(kinds, "builtin") {
		t.Fatalf("Kinds() = %v, want builtin among them", kinds)
	}
	u, err := upstreams.Start(context.Background(), "builtin", upstreams.Config{IdleTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if u.Kind() != "builtin" || !strings.HasPrefix(u.URL(), "http://127.0.0.1:") {
		t.Errorf("Kind %q URL %q", u.Kind(), u.URL())
	}
	resp, err := http.Get(u.URL()) // a real client: the server speaks HTTP/1.1 to net/http
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if st := u.Stats(); st.Executed != 1 {
		t.Errorf("Executed = %d, want 1", st.Executed)
	}
	_, err = upstreams.Start(context.Background(), "builtin", upstreams.Config{})
	if want := `upstream "builtin": upstream config: IdleTimeout must be > 0, got 0s`; err == nil || err.Error() != want {
		t.Errorf("Start with zero IdleTimeout: %v, want %q", err, want)
	}
}

// BenchmarkIdleCloseAccuracy idles 20 connections at once per iteration (T = 20ms) and
// reports how late the server's closes landed after their due time.
func BenchmarkIdleCloseAccuracy(b *testing.B) {
	// 20 connections at T = 20ms, and the 64, 256 and 512 idle at once at
	// T = 100ms: how late the builtin's idle close lands with many lanes idle together
	// (each connection's idle wait blocks in ppoll on its own thread).
	for _, c := range []struct {
		conns int
		t     time.Duration
	}{{20, 20 * time.Millisecond}, {64, 100 * time.Millisecond}, {256, 100 * time.Millisecond}, {512, 100 * time.Millisecond}} {
		b.Run(fmt.Sprintf("idle=%d", c.conns), func(b *testing.B) { benchIdleClose(b, c.conns, c.t) })
	}
}

func benchIdleClose(b *testing.B, conns int, idle time.Duration) {
	s := startServer(b, upstreams.Config{IdleTimeout: idle})
	for b.Loop() {
		cs := make([]*client, conns)
		for i := range cs {
			cs[i] = dial(b, s)
			cs[i].send()
		}
		for _, c := range cs {
			c.recv()
		}
		for _, c := range cs {
			if err := c.readEnd(); err != io.EOF {
				b.Fatalf("read: %v, want EOF", err)
			}
			c.nc.Close()
		}
	}
	b.StopTimer()
	st := s.Stats()
	if st.IdleCloses < int64(b.N*conns) {
		waitCloses(b, s, b.N*conns)
		st = s.Stats()
	}
	b.ReportMetric(float64(st.CloseLateP50US), "late-p50-µs")
	b.ReportMetric(float64(st.CloseLateP99US), "late-p99-µs")
	b.ReportMetric(float64(st.CloseLateMaxUS), "late-max-µs")
}
