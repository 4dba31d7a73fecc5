package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// DelayProxy is a userspace TCP proxy on loopback that delays everything crossing it by a
// one-way latency d: bytes, FINs and RSTs, in both directions, each in order.
//
// It is ours, not Toxiproxy's latency toxic, because the race lives in how closes travel:
// the toxic forwards a close undelayed, turns a FIN into a full close and an RST into a
// FIN. Here a FIN is delivered d later as a half-close, so the other direction keeps
// flowing, and an RST is answered d later with an RST. When the upstream closes an idle
// connection, the client therefore sees the FIN exactly d later, and a request it writes
// in between meets a closed socket: the window a read probe cannot close.
//
// One accepted connection is a pair of sides and two directions:
//
//	client <-> [side 0] --read--> queue (chunk, fin, rst; released at arrival time) --write--> [side 1] <-> upstream
//	                   <--write-- queue                                            <--read--
//
// A reader stamps each chunk with its arrival time (read time + d + jitter), a writer
// sleeps until then and delivers it. A read EOF becomes a fin (CloseWrite on the other
// side), ECONNRESET an rst (SetLinger(0) then Close on the other side). After its EOF a
// reader keeps watching its socket, because the RST that answers a request written into
// a closed server arrives after the FIN (Linux only; elsewhere it is missed). A pair ends
// when both fins were delivered or an rst was.
//
// The TCP handshake is not delayed: the client's kernel completes it with the proxy's
// listener at once and the proxy dials the upstream at once. An upstream that refuses the
// dial is answered to the client with an RST two delays after the accept.
type DelayProxy struct {
	ln       net.Listener
	upstream string
	delay    time.Duration
	jitter   time.Duration
	seed     uint64

	done      chan struct{} // closed by Close: every goroutine returns
	ctx       context.Context
	cancel    context.CancelFunc // cancels ctx (pending upstream dials) on Close
	closeOnce sync.Once
	stopCtx   func() bool // stops the context.AfterFunc that closes the proxy
	wg        sync.WaitGroup

	mu    sync.Mutex
	pairs map[*proxyPair]struct{}
	conns uint64 // accepted so far; numbers each pair's jitter streams
	// ports maps the port of each upstream-side connection to the client ports it
	// carried, in dial order (a port is reused over a long cell), so that a server's log
	// (which sees the proxy) can be matched to the client's failures.
	ports map[int][]portUse

	// lateNS and lateN sum how late chunks were released after their due time: the
	// proxy's own addition to d, which the race model needs to know.
	lateNS, lateN atomic.Int64
}

type portUse struct {
	dialed time.Time
	client int
}

// ClientPort returns the client port whose connection the proxy carried on its
// upstream-side connection from port upstreamSide that the server accepted at
// accepted: the last one dialled before then.
func (p *DelayProxy) ClientPort(upstreamSide int, accepted time.Time) (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	uses := p.ports[upstreamSide]
	for i := len(uses) - 1; i >= 0; i-- {
		if !uses[i].dialed.After(accepted) {
			return uses[i].client, true
		}
	}
	return 0, false
}

// MeanLateness is how late, on average, the proxy delivered data, FINs and RSTs after
// their due time (scheduling and copying): the one-way delay is Delay + Jitter/2 + this.
func (p *DelayProxy) MeanLateness() time.Duration {
	n := p.lateN.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(p.lateNS.Load() / n)
}

// proxyChunkCap bounds the chunks queued in one direction: when the writer falls behind
// (its peer stops reading) the reader stops reading, and the sender's TCP window closes,
// as it would on a real path.
const proxyChunkCap = 256

// proxyReadSize is the largest chunk one read takes off a socket.
const proxyReadSize = 32 << 10

// proxyDialTimeout bounds the dial to the upstream (a loopback address: it answers at once
// or not at all).
const proxyDialTimeout = 5 * time.Second

// StartDelayProxy listens on a loopback port and forwards every accepted connection to
// upstream (a loopback host:port), delaying each direction by delay (+ uniform jitter per
// chunk, seeded). Jitter never reorders: a chunk is released no earlier than the one
// before it, so each release lies in [read time + delay, read time + delay + jitter].
// FINs and RSTs take delay without jitter (and after every chunk before them).
// Cancelling ctx closes the proxy as Close does.
func StartDelayProxy(ctx context.Context, upstream string, delay, jitter time.Duration, seed uint64) (*DelayProxy, error) {
	dialAddr, err := loopbackAddr(upstream)
	if err != nil {
		return nil, fmt.Errorf("delay proxy upstream %q: %w", upstream, err)
	}
	if delay < 0 || jitter < 0 || delay > MaxLatency || jitter > MaxLatency {
		return nil, fmt.Errorf("delay proxy: delay %v, jitter %v: want each within 0..%v", delay, jitter, MaxLatency)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("delay proxy: %w", err)
	}
	p := &DelayProxy{
		ln:       ln,
		upstream: dialAddr,
		delay:    delay,
		jitter:   jitter,
		seed:     seed,
		done:     make(chan struct{}),
		pairs:    map[*proxyPair]struct{}{},
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Add(1)
	go p.accept()
	p.stopCtx = context.AfterFunc(ctx, func() { p.Close() })
	return p, nil
}

// loopbackAddr accepts host:port whose host is a loopback IP literal, or "localhost",
// which it returns as 127.0.0.1 so that no resolver is ever asked.
func loopbackAddr(hostport string) (string, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", errors.New("not host:port (want a loopback address such as 127.0.0.1:8080)")
	}
	if host == "localhost" {
		return net.JoinHostPort("127.0.0.1", port), nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return "", errors.New("not a loopback address (want 127.0.0.0/8 or ::1, e.g. 127.0.0.1:8080)")
	}
	return hostport, nil
}

// Addr returns "127.0.0.1:PORT" for clients to dial.
func (p *DelayProxy) Addr() string { return p.ln.Addr().String() }

// Close closes the listener and every connection (each side gets a FIN, or an RST where
// bytes are unread), then waits for all of the proxy's goroutines. Calling it again does
// nothing and returns nil.
func (p *DelayProxy) Close() error {
	var err error
	first := false
	p.closeOnce.Do(func() {
		first = true
		p.stopCtx()
		close(p.done)
		p.cancel()
		err = p.ln.Close()
		p.mu.Lock()
		pairs := make([]*proxyPair, 0, len(p.pairs))
		for pp := range p.pairs {
			pairs = append(pairs, pp)
		}
		p.mu.Unlock()
		for _, pp := range pairs {
			pp.shutdown(-1)
		}
		p.wg.Wait()
	})
	if !first {
		return nil
	}
	return err
}

func (p *DelayProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			select {
			case <-p.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and friends: back off briefly rather than spin.
			select {
			case <-p.done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			continue
		}
		p.mu.Lock()
		n := p.conns
		p.conns++
		p.mu.Unlock()
		p.wg.Add(1)
		go p.serve(c.(*net.TCPConn), n)
	}
}

// serve dials the upstream for client connection number n and runs the pair.
func (p *DelayProxy) serve(client *net.TCPConn, n uint64) {
	defer p.wg.Done()
	accepted := time.Now()
	ctx, cancel := context.WithTimeout(p.ctx, proxyDialTimeout)
	var d net.Dialer
	dialed := time.Now()
	uc, err := d.DialContext(ctx, "tcp", p.upstream)
	cancel()
	if err != nil {
		// The client's SYN would have met an RST: answer its connection with one, a
		// round trip after it began.
		t := time.NewTimer(time.Until(accepted.Add(2 * p.delay)))
		select {
		case <-t.C:
		case <-p.done:
			t.Stop()
		}
		client.SetLinger(0)
		client.Close()
		return
	}
	if ua, ok := uc.LocalAddr().(*net.TCPAddr); ok {
		if ca, ok := client.RemoteAddr().(*net.TCPAddr); ok {
			p.mu.Lock()
			if p.ports == nil {
				p.ports = map[int][]portUse{}
			}
			p.ports[ua.Port] = append(p.ports[ua.Port], portUse{dialed: dialed, client: ca.Port})
			p.mu.Unlock()
		}
	}
	pp := &proxyPair{p: p, done: make(chan struct{})}
	pp.sides[0] = &proxySide{c: client}
	pp.sides[1] = &proxySide{c: uc.(*net.TCPConn)}
	for i := range pp.q {
		pp.q[i] = make(chan proxyChunk, proxyChunkCap)
	}
	p.mu.Lock()
	select {
	case <-p.done:
		p.mu.Unlock()
		client.Close()
		uc.Close()
		return
	default:
	}
	p.pairs[pp] = struct{}{}
	p.mu.Unlock()

	var wg sync.WaitGroup
	for dir := range 2 {
		// Two independent streams per pair and direction: the same seed and accept order
		// give the same jitter.
		rng := rand.New(rand.NewPCG(p.seed, n<<1|uint64(dir)))
		wg.Add(2)
		go func() { defer wg.Done(); pp.read(dir, rng) }()
		go func() { defer wg.Done(); pp.write(dir) }()
	}
	wg.Wait()
	p.mu.Lock()
	delete(p.pairs, pp)
	p.mu.Unlock()
}

type chunkKind uint8

const (
	chunkData chunkKind = iota
	chunkFIN
	chunkRST
)

// proxyChunk is what one read produced, to be delivered at at.
type proxyChunk struct {
	at   time.Time
	kind chunkKind
	data []byte
	buf  *[]byte // data's pooled buffer for large chunks (nil: data is its own copy)
}

// release returns a large chunk's buffer to the pool once it has been written.
func (c *proxyChunk) release() {
	if c.buf != nil {
		proxyBufs.Put(c.buf)
		c.buf, c.data = nil, nil
	}
}

// proxySmallChunk is the largest read that is copied into a chunk of its own size; larger
// reads hand over their pooled read buffer instead of copying. Small chunks (requests,
// headers) thus hold no more memory than their bytes while they wait out d.
const proxySmallChunk = 4 << 10

// proxyBufs holds read buffers of proxyReadSize bytes.
var proxyBufs = sync.Pool{New: func() any { b := make([]byte, proxyReadSize); return &b }}

// proxySide is one of a pair's two sockets.
type proxySide struct {
	c *net.TCPConn
	// sentFIN: we have half-closed this socket (delivered the other side's FIN to it).
	// A socket that reached TCP_CLOSE without it was reset.
	sentFIN atomic.Bool
	// reset makes sure an RST seen on this socket (by its reader, its watcher, or a failed
	// write into it) is queued once.
	reset sync.Once
}

// proxyPair is one client connection and its upstream connection.
// Direction dir reads sides[dir] and writes sides[1-dir] through q[dir].
type proxyPair struct {
	p        *DelayProxy
	sides    [2]*proxySide
	q        [2]chan proxyChunk
	fins     atomic.Int32 // fins delivered; 2 ends the pair
	done     chan struct{}
	shutOnce sync.Once
}

// push queues c for direction dir; false once the pair is shutting down.
func (pp *proxyPair) push(dir int, c proxyChunk) bool {
	select {
	case pp.q[dir] <- c:
		return true
	case <-pp.done:
		return false
	}
}

// sideReset queues an RST in the direction that reads side i, once, to be delivered a
// delay after now.
func (pp *proxyPair) sideReset(i int) {
	pp.sides[i].reset.Do(func() {
		pp.push(i, proxyChunk{at: time.Now().Add(pp.p.delay), kind: chunkRST})
	})
}

// shutdown ends the pair: side rst (0 or 1) is closed with an RST, the other sockets
// with a plain close; rst -1 closes both plainly. Readers, watchers and writers return.
func (pp *proxyPair) shutdown(rst int) {
	pp.shutOnce.Do(func() {
		close(pp.done)
		for i, s := range pp.sides {
			if i == rst {
				s.c.SetLinger(0)
			}
			s.c.Close()
		}
	})
}

// read moves side dir's bytes into q[dir], stamped with their arrival time.
func (pp *proxyPair) read(dir int, rng *rand.Rand) {
	src := pp.sides[dir]
	d, j := pp.p.delay, pp.p.jitter
	var last time.Time // release time of the previous chunk: never overtaken
	buf := proxyBufs.Get().(*[]byte)
	defer func() { proxyBufs.Put(buf) }()
	for {
		n, err := src.c.Read(*buf)
		now := time.Now()
		if n > 0 {
			at := releaseAt(now, last, d, j, rng)
			last = at
			c := proxyChunk{at: at, kind: chunkData}
			if n <= proxySmallChunk {
				c.data = append([]byte(nil), (*buf)[:n]...)
			} else {
				// A large chunk takes the buffer itself; the writer returns it to the pool.
				c.data, c.buf = (*buf)[:n], buf
				buf = proxyBufs.Get().(*[]byte)
			}
			if !pp.push(dir, c) {
				return
			}
		}
		if err == nil {
			continue
		}
		if pp.closing() || errors.Is(err, net.ErrClosed) {
			return
		}
		if err == io.EOF && !wasReset(src) {
			if !pp.push(dir, proxyChunk{at: releaseAt(now, last, d, 0, nil), kind: chunkFIN}) {
				return
			}
			// The peer may still reset the connection (it does when a request is written
			// into a socket it closed): wait for that until the pair ends.
			if watchReset(src) && !pp.closing() {
				pp.sideReset(dir)
			}
			return
		}
		// ECONNRESET, or EOF on a socket an RST closed (a failed write into it took the
		// error first), or anything else that broke the connection: pass on an RST.
		pp.sideReset(dir)
		return
	}
}

// releaseAt is when a chunk read at now arrives: now + d + a uniform draw in [0, j], but
// never before the chunk before it (released at last), so that jitter cannot reorder.
// The result lies in [now+d, now+d+j] whenever last came from an earlier, no later now.
func releaseAt(now, last time.Time, d, j time.Duration, rng *rand.Rand) time.Time {
	at := now.Add(d)
	if j > 0 {
		at = at.Add(time.Duration(rng.Int64N(int64(j) + 1)))
	}
	if at.Before(last) {
		at = last
	}
	return at
}

func (pp *proxyPair) closing() bool {
	select {
	case <-pp.done:
		return true
	default:
		return false
	}
}

// write delivers q[dir] to side 1-dir, each chunk at its arrival time.
func (pp *proxyPair) write(dir int) {
	dst := pp.sides[1-dir]
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	broken := false // dst refused a write: drop data until the rst that follows
	for {
		var c proxyChunk
		select {
		case c = <-pp.q[dir]:
		case <-pp.done:
			return
		}
		if wait := time.Until(c.at); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-pp.done:
				return
			}
		}
		pp.p.lateNS.Add(int64(time.Since(c.at)))
		pp.p.lateN.Add(1)
		switch c.kind {
		case chunkData:
			if broken {
				c.release()
				continue
			}
			_, err := dst.c.Write(c.data)
			c.release()
			if err != nil {
				if pp.closing() {
					return
				}
				// dst's peer reset it (or it broke): its reader's direction passes the RST on.
				broken = true
				pp.sideReset(1 - dir)
			}
		case chunkFIN:
			dst.sentFIN.Store(true)
			dst.c.CloseWrite()
			if pp.fins.Add(1) == 2 {
				pp.shutdown(-1)
				return
			}
		case chunkRST:
			pp.shutdown(1 - dir)
			return
		}
	}
}
