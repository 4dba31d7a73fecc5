package chaos

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// proxied is a client and a server connected through a DelayProxy on loopback.
type proxied struct {
	p              *DelayProxy
	client, server *net.TCPConn
}

// startProxied starts an upstream listener and a proxy with delay d and jitter j in front
// of it, and connects one client through it. Everything is closed at the end of the
// test, after which no goroutine may be left.
func startProxied(t testing.TB, d, j time.Duration) proxied {
	t.Helper()
	if _, ok := t.(*testing.T); ok { // a benchmark's own runner goroutines would count
		t.Cleanup(func() { goleak.VerifyNone(t) }) // runs last
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p, err := StartDelayProxy(context.Background(), ln.Addr().String(), d, j, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("DelayProxy.Close: %v", err)
		}
	})
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return proxied{p: p, client: c.(*net.TCPConn), server: s.(*net.TCPConn)}
}

// readAt reads into buf (until full, or one error) and returns when the read returned.
func readAt(c net.Conn, buf []byte) (time.Time, error) {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.ReadFull(c, buf)
	return time.Now(), err
}

// readEnd reads from c until an error (expecting no bytes) and returns it and its time.
func readEnd(t *testing.T, c net.Conn) (time.Time, error) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var buf [64]byte
	n, err := c.Read(buf[:])
	at := time.Now()
	if n != 0 {
		t.Fatalf("read %d bytes %q, want none", n, buf[:n])
	}
	return at, err
}

// notBeforeD runs attempt, which measures how long something took to cross the proxy,
// and fails if it arrived before want: the proxy holds everything for d, so arriving
// early is a bug whatever the machine's load. Arriving late is what a loaded machine
// does (a late timer, a late reader); how late the proxy itself is, is
// BenchmarkDelayProxyLateness's figure and every latency cell's one_way_us, not a bound
// here.
func notBeforeD(t *testing.T, what string, want time.Duration, attempt func() time.Duration) {
	t.Helper()
	atLeastD(t, what, attempt(), want)
}

// atLeastD fails if got, how long something took to cross the proxy, is less than want.
func atLeastD(t *testing.T, what string, got, want time.Duration) {
	t.Helper()
	t.Logf("%s after %v (want >= %v)", what, got, want)
	if got < want {
		t.Errorf("%s after %v: earlier than %v", what, got, want)
	}
}

func TestDelayProxyDelaysDataBothWays(t *testing.T) {
	const d = 20 * time.Millisecond
	x := startProxied(t, d, 0)
	cross := func(from, to net.Conn, msg string) func() time.Duration {
		return func() time.Duration {
			sent := time.Now()
			if _, err := from.Write([]byte(msg)); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, len(msg))
			at, err := readAt(to, buf)
			if err != nil || string(buf) != msg {
				t.Fatalf("read %q, %v; want %q", buf, err, msg)
			}
			return at.Sub(sent)
		}
	}
	for range 2 {
		notBeforeD(t, "client->server bytes", d, cross(x.client, x.server, "ping"))
		notBeforeD(t, "server->client bytes", d, cross(x.server, x.client, "pong"))
	}
}

// TestDelayProxyDelaysFINByD is the race window itself: the upstream closes an idle
// connection, and the client learns of it d later, not before.
func TestDelayProxyDelaysFINByD(t *testing.T) {
	const d = 20 * time.Millisecond
	notBeforeD(t, "FIN at the client", d, func() time.Duration {
		x := startProxied(t, d, 0)
		// One exchange first, so the connection is an idle pooled one.
		x.client.Write([]byte("GET"))
		buf := make([]byte, 3)
		if _, err := readAt(x.server, buf); err != nil {
			t.Fatal(err)
		}
		x.server.Write([]byte("200"))
		if _, err := readAt(x.client, buf); err != nil {
			t.Fatal(err)
		}

		closed := time.Now()
		if err := x.server.Close(); err != nil {
			t.Fatal(err)
		}
		at, err := readEnd(t, x.client)
		if err != io.EOF {
			t.Fatalf("client read after the server's close: %v, want EOF", err)
		}
		return at.Sub(closed)
	})
}

func TestDelayProxyPassesRSTAsRST(t *testing.T) {
	const d = 20 * time.Millisecond
	for _, from := range []string{"server", "client"} {
		t.Run("from "+from, func(t *testing.T) {
			notBeforeD(t, "RST at the peer", d, func() time.Duration {
				x := startProxied(t, d, 0)
				closer, peer := x.server, x.client
				if from == "client" {
					closer, peer = x.client, x.server
				}
				// An exchange first, so the RST is that of a connection in use.
				x.client.Write([]byte("x"))
				if _, err := readAt(x.server, make([]byte, 1)); err != nil {
					t.Fatal(err)
				}
				reset := time.Now()
				if err := CloseRST.Close(closer); err != nil {
					t.Fatal(err)
				}
				at, err := readEnd(t, peer)
				if !errors.Is(err, syscall.ECONNRESET) {
					t.Fatalf("peer read after the %s's RST: %v, want ECONNRESET (not EOF)", from, err)
				}
				return at.Sub(reset)
			})
		})
	}
}

func TestDelayProxyHalfCloseKeepsOtherDirection(t *testing.T) {
	const d = 5 * time.Millisecond
	for _, from := range []string{"client", "server"} {
		t.Run("FIN from "+from, func(t *testing.T) {
			x := startProxied(t, d, 0)
			closer, peer := x.client, x.server
			if from == "server" {
				closer, peer = x.server, x.client
			}
			if _, err := closer.Write([]byte("request")); err != nil {
				t.Fatal(err)
			}
			sent := time.Now()
			if err := closer.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 7)
			if _, err := readAt(peer, buf); err != nil || string(buf) != "request" {
				t.Fatalf("peer read %q, %v", buf, err)
			}
			at, err := readEnd(t, peer)
			if err != io.EOF {
				t.Fatalf("peer read after the half-close: %v, want EOF", err)
			}
			atLeastD(t, "FIN at the peer", at.Sub(sent), d)
			// The other direction still flows, in both halves of a reply.
			for _, part := range []string{"response", "-more"} {
				if _, err := peer.Write([]byte(part)); err != nil {
					t.Fatalf("peer write after receiving a FIN: %v", err)
				}
				got := make([]byte, len(part))
				if _, err := readAt(closer, got); err != nil || string(got) != part {
					t.Fatalf("half-closed side read %q, %v; want %q", got, err, part)
				}
			}
			// And its FIN completes an orderly close.
			peer.CloseWrite()
			if _, err := readEnd(t, closer); err != io.EOF {
				t.Fatalf("half-closed side read after the peer's FIN: %v, want EOF", err)
			}
		})
	}
}

func TestDelayProxyJitterDoesNotReorder(t *testing.T) {
	const (
		d, j = time.Millisecond, 4 * time.Millisecond
		n    = 300
	)
	x := startProxied(t, d, j)
	done := make(chan error, 1)
	go func() {
		var b [4]byte
		for i := range uint32(n) {
			binary.BigEndian.PutUint32(b[:], i)
			if _, err := x.client.Write(b[:]); err != nil {
				done <- err
				return
			}
			time.Sleep(50 * time.Microsecond) // separate reads, so separate chunks and draws
		}
		done <- x.client.CloseWrite()
	}()
	got, err := io.ReadAll(io.LimitReader(deadlineReader{x.server, 5 * time.Second}, 4*n+1))
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(got) != 4*n {
		t.Fatalf("server got %d bytes, want %d", len(got), 4*n)
	}
	for i := range uint32(n) {
		if v := binary.BigEndian.Uint32(got[4*i:]); v != i {
			t.Fatalf("word %d is %d: bytes reordered", i, v)
		}
	}
}

type deadlineReader struct {
	c net.Conn
	d time.Duration
}

func (r deadlineReader) Read(b []byte) (int, error) {
	r.c.SetReadDeadline(time.Now().Add(r.d))
	return r.c.Read(b)
}

// TestReleaseAtJitterBoundsAndOrder checks the schedule a direction's chunks follow: each
// release within [read+d, read+d+j] and never before the one before, for reads closer
// together than j (where order clamps) and farther apart (where jitter spreads over
// [0, j] with mean j/2); the same seed gives the same schedule.
func TestReleaseAtJitterBoundsAndOrder(t *testing.T) {
	const d, j = 2 * time.Millisecond, time.Millisecond
	t0 := time.Unix(0, 0)
	offsets := func(seed uint64, spacing time.Duration) []time.Duration {
		rng := rand.New(rand.NewPCG(seed, 0))
		var last time.Time
		out := make([]time.Duration, 0, 2000)
		for i := range 2000 {
			now := t0.Add(time.Duration(i) * spacing)
			at := releaseAt(now, last, d, j, rng)
			if at.Before(now.Add(d)) || at.After(now.Add(d+j)) {
				t.Fatalf("spacing %v: chunk %d released at +%v after its read, want within [%v, %v]", spacing, i, at.Sub(now), d, d+j)
			}
			if at.Before(last) {
				t.Fatalf("spacing %v: chunk %d released %v before the chunk before it", spacing, i, last.Sub(at))
			}
			last = at
			out = append(out, at.Sub(now)-d)
		}
		return out
	}
	offsets(7, 100*time.Microsecond) // dense: bounds and order only
	a, b, c := offsets(7, 2*time.Millisecond), offsets(7, 2*time.Millisecond), offsets(8, 2*time.Millisecond)
	lo, hi, sum := j, time.Duration(0), time.Duration(0)
	same, differs := true, false
	for i := range a {
		lo, hi, sum = min(lo, a[i]), max(hi, a[i]), sum+a[i]
		same = same && a[i] == b[i]
		differs = differs || a[i] != c[i]
	}
	mean := sum / time.Duration(len(a))
	if lo > j/50 || hi < j*49/50 || mean < j*45/100 || mean > j*55/100 {
		t.Errorf("jitter offsets span [%v, %v] with mean %v, want about [0, %v] with mean %v", lo, hi, mean, j, j/2)
	}
	if !same || !differs {
		t.Errorf("same seed same schedule: %v; another seed another schedule: %v", same, differs)
	}
	if at := releaseAt(time.Unix(5, 0), time.Unix(9, 0), d, 0, nil); !at.Equal(time.Unix(9, 0)) {
		t.Errorf("a FIN read at 5s after a chunk released at 9s is released at %v, want 9s", at)
	}
}

func TestDelayProxyRefusedUpstreamIsRST(t *testing.T) {
	defer goleak.VerifyNone(t)
	const d = 10 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: a dial is refused
	p, err := StartDelayProxy(context.Background(), addr, d, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	notBeforeD(t, "refusal at the client", 2*d, func() time.Duration {
		start := time.Now()
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		at, err := readEnd(t, c)
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("read through a proxy whose upstream refuses: %v, want ECONNRESET", err)
		}
		return at.Sub(start)
	})
}

func TestDelayProxyCloseLeavesNoGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p, err := StartDelayProxy(context.Background(), ln.Addr().String(), 50*time.Millisecond, time.Millisecond, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Three connections in three states: idle, data in flight, half-closed.
	var clients, servers []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		clients, servers = append(clients, c), append(servers, s)
	}
	clients[1].Write([]byte("in flight"))
	clients[2].(*net.TCPConn).CloseWrite()
	servers[2].Write([]byte("in flight"))
	time.Sleep(5 * time.Millisecond) // let the proxy read them into its queues
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// Every connection ended at once: nothing in flight was delivered 50ms later.
	for i, c := range clients {
		c.SetReadDeadline(time.Now().Add(time.Second))
		if n, err := c.Read(make([]byte, 16)); err == nil {
			t.Errorf("client %d read %d bytes after the proxy closed", i, n)
		}
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		t.Error("the proxy still accepts connections after Close")
	}
}

func TestDelayProxyClosesWithContext(t *testing.T) {
	defer goleak.VerifyNone(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	p, err := StartDelayProxy(ctx, ln.Addr().String(), time.Millisecond, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cancel()
	if _, err := readEnd(t, c); err == nil {
		t.Fatal("connection still open after the proxy's context was cancelled")
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close after cancel: %v", err)
	}
}

func TestStartDelayProxyRejectsNonLoopbackUpstream(t *testing.T) {
	for _, tc := range []struct{ upstream, wantErr string }{
		{"10.0.0.1:80", `delay proxy upstream "10.0.0.1:80": not a loopback address (want 127.0.0.0/8 or ::1, e.g. 127.0.0.1:8080)`},
		{"example.com:80", `delay proxy upstream "example.com:80": not a loopback address (want 127.0.0.0/8 or ::1, e.g. 127.0.0.1:8080)`},
		{"127.0.0.1", `delay proxy upstream "127.0.0.1": not host:port (want a loopback address such as 127.0.0.1:8080)`},
	} {
		p, err := StartDelayProxy(context.Background(), tc.upstream, 0, 0, 1)
		if err == nil {
			p.Close()
			t.Errorf("StartDelayProxy(%q) succeeded, want error %q", tc.upstream, tc.wantErr)
		} else if err.Error() != tc.wantErr {
			t.Errorf("StartDelayProxy(%q):\n got %q\nwant %q", tc.upstream, err, tc.wantErr)
		}
	}
	p, err := StartDelayProxy(context.Background(), "localhost:1", 0, 0, 1)
	if err != nil {
		t.Fatalf("StartDelayProxy(localhost:1): %v", err)
	}
	if p.upstream != "127.0.0.1:1" {
		t.Errorf("upstream localhost:1 is dialled as %q, want 127.0.0.1:1 (no resolver)", p.upstream)
	}
	p.Close()
	if _, err := StartDelayProxy(context.Background(), "127.0.0.1:1", -time.Millisecond, 0, 1); err == nil {
		t.Error("StartDelayProxy accepted a negative delay")
	}
}

// BenchmarkDelayProxyChunkOverhead is a 64-byte ping-pong on loopback: directly, through
// a plain io.Copy relay (the cost of the extra hop alone), and through the proxy with d=0.
// proxy minus direct, halved, is what the proxy adds per chunk; proxy minus copy, halved,
// is what its queue and timer add beyond a relay. The 32KiB case measures throughput.
func BenchmarkDelayProxyChunkOverhead(b *testing.B) {
	for _, size := range []int{64, 32 << 10} {
		for _, via := range []string{"direct", "copy", "proxy"} {
			b.Run(fmt.Sprintf("%s/size=%d", via, size), func(b *testing.B) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				defer ln.Close()
				go func() { // echo server
					s, err := ln.Accept()
					if err != nil {
						return
					}
					defer s.Close()
					io.Copy(s, s)
				}()
				addr := ln.Addr().String()
				switch via {
				case "copy":
					addr = copyRelay(b, addr)
				case "proxy":
					p, err := StartDelayProxy(context.Background(), addr, 0, 0, 1)
					if err != nil {
						b.Fatal(err)
					}
					defer p.Close()
					addr = p.Addr()
				}
				c, err := net.Dial("tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				msg, got := make([]byte, size), make([]byte, size)
				b.SetBytes(int64(size))
				b.ResetTimer()
				for b.Loop() {
					if _, err := c.Write(msg); err != nil {
						b.Fatal(err)
					}
					if _, err := io.ReadFull(c, got); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkDelayProxyLateness reports how late past d the proxy delivers a 64-byte chunk
// (d = 2ms, one direction, one chunk in flight): the figure the tests do not gate on.
func BenchmarkDelayProxyLateness(b *testing.B) {
	const d = 2 * time.Millisecond
	x := startProxied(b, d, 0)
	msg, got := make([]byte, 64), make([]byte, 64)
	var late []time.Duration
	for b.Loop() {
		sent := time.Now()
		if _, err := x.client.Write(msg); err != nil {
			b.Fatal(err)
		}
		at, err := readAt(x.server, got)
		if err != nil {
			b.Fatal(err)
		}
		late = append(late, at.Sub(sent)-d)
	}
	slices.Sort(late)
	q := func(p float64) float64 {
		return float64(late[min(len(late)-1, int(p*float64(len(late))))].Microseconds())
	}
	b.ReportMetric(q(0.5), "late-p50-µs")
	b.ReportMetric(q(0.99), "late-p99-µs")
	b.ReportMetric(float64(late[len(late)-1].Microseconds()), "late-max-µs")
}

// copyRelay relays one connection to upstream with two io.Copy calls: the baseline of
// a hop with no queue, no timestamps and no timer.
func copyRelay(b *testing.B, upstream string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		u, err := net.Dial("tcp", upstream)
		if err != nil {
			return
		}
		defer u.Close()
		go io.Copy(u, c)
		io.Copy(c, u)
	}()
	return ln.Addr().String()
}
