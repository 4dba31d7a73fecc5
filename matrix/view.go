package matrix

import (
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/idlerace/idlerace/attack"
	"github.com/idlerace/idlerace/hops"
	"github.com/idlerace/idlerace/results"
	"github.com/idlerace/idlerace/upstreams"
	"github.com/idlerace/idlerace/upstreams/wire"
)

// Where a cell's server numbers come from (results.Server.View).
const (
	viewSelf = "self" // the server's own account (an upstreams.CloseStreamer)
	viewWire = "wire" // its segments, captured
)

// Wire modes (CellSpec.Wire, run --wire).
const (
	WireAuto = "auto"
	WireOn   = "on"
	WireOff  = "off"
)

// narrowSweep is the half-width under which auto captures even a server that keeps its
// own account. The model needs the client's lags off the wire (0.2–0.4 ms together at
// T = 1 s): a lag L moves blind's rate over a sweep of half-width W by L/2W, more than
// a point under 20 ms (at T = 1 s, ±3 ms: 3–7 points), 0.8 point at the default run's
// ±25 ms, whose capture adds an eighth to its wall time (README: the capture's cost).
const narrowSweep = 20 * time.Millisecond

// capturing is what decides whether a cell captures its server's segments.
type capturing struct {
	mode       string // CellSpec.Wire
	selfView   bool   // the server keeps an account of its own closes
	pcap       bool   // a pcap is asked for
	hop        bool   // a proxy is in the path
	ownProcess bool   // the server runs in a process of its own
	narrow     bool   // the sweep's half-width is under narrowSweep
}

// want says whether the cell captures: auto where the server keeps no account of its
// own, runs in a process of its own, the sweep is narrow or a pcap is asked for; why is
// the view when it does not.
func (c capturing) want() (bool, string) {
	switch c.mode {
	case WireOff:
		return false, viewNone("--wire off: no packet capture")
	case WireOn:
		return true, ""
	}
	// Behind a proxy the wire shows what no server's account can: how soon the proxy's
	// pool answers an idle close (its race window, for the model) and its hidden replays.
	// A server in its own process (gonet) keeps an account of its closes but not when it
	// stopped reading before one, nor when the client's gap began: the wire has both.
	// The in-process builtin measures them itself and is left uncaptured unless the
	// sweep is narrow enough for the client's lags to move the model.
	return !c.selfView || c.pcap || c.hop || c.ownProcess || c.narrow, ""
}

// narrowLoad says whether load sweeps its gaps within narrowSweep of the close, at idle
// timeout t.
func narrowLoad(load attack.Load, t time.Duration) bool {
	w, ok := load.(interface {
		Window(t, c time.Duration) (lo, hi time.Duration)
	})
	if !ok {
		return false
	}
	lo, hi := w.Window(t, t)
	return hi-lo < 2*narrowSweep
}

// durationSample is a uniform sample (a reservoir) of at most maxIdleSamples durations
// with the exact count, least and greatest of all it was given, safe for concurrent
// use: the idle periods of a cell's idle closes (closeFeed), the server's gaps before
// reuse on the wire (results.Server.ReuseGapMS).
type durationSample struct {
	mu     sync.Mutex
	n      int64
	lo, hi time.Duration
	sample []time.Duration
	rng    *rand.Rand
}

func newDurationSample(seed uint64) *durationSample {
	return &durationSample{rng: rand.New(rand.NewPCG(seed, seed+1))}
}

func (r *durationSample) add(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == 0 || d < r.lo {
		r.lo = d
	}
	r.hi = max(r.hi, d)
	r.n++
	if len(r.sample) < maxIdleSamples {
		r.sample = append(r.sample, d)
	} else if i := r.rng.Int64N(r.n); i < maxIdleSamples {
		r.sample[i] = d
	}
}

// spread is what it was given, nil when nothing.
func (r *durationSample) spread() *results.CloseSpread {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == 0 {
		return nil
	}
	return closeSpread(r.sample, r.lo, r.hi, r.n)
}

// values is a copy of the sample.
func (r *durationSample) values() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sample)
}

// peerNotice is, behind a proxy whose pool watches its idle connections, how long the
// pool took to answer the upstream's idle closes with its own FIN (the wire's mean), and
// how many it answered: its window, which the model would otherwise take from the
// load's own watchers (none behind a proxy) or assume. A pool that probes at checkout
// (Apache) closes a dead connection only when it next picks it: no window of its.
//
// The wire times it at the upstream: the FIN's trip to the proxy and the proxy's FIN's
// trip back (finPath each, the delay proxy's when one sits between) are taken off.
func peerNotice(c *results.Cell, watchingHop bool, finPath time.Duration) (time.Duration, bool) {
	w := c.Server.Wire
	if !watchingHop || w == nil || w.PeerCloses == 0 {
		return 0, false
	}
	lag := max(time.Duration(w.PeerCloseLagUS*float64(time.Microsecond))-2*finPath, 0)
	c.NotifyLagUS, c.NotifySamples = float64(lag)/float64(time.Microsecond), int(w.PeerCloses)
	return lag, true
}

// wireOf is a capture's account as the cell carries it.
func wireOf(ws wire.Stats) *results.Wire {
	w := &results.Wire{Segments: ws.Segments, Drops: ws.Drops, ServerFINs: ws.ServerFINs, ServerRSTs: ws.ServerRSTs, LateRequests: ws.LateRequests, ClosesWithUnread: ws.ClosesWithUnread, PeerCloses: ws.PeerCloses, IdleUnread: ws.IdleUnread}
	if ws.PeerCloses > 0 {
		w.PeerCloseLagUS = float64(ws.PeerCloseLag) / float64(ws.PeerCloses) / float64(time.Microsecond)
	}
	if ws.IdleUnread > 0 {
		w.UnreadLeadUS = float64(ws.UnreadLead) / float64(ws.IdleUnread) / float64(time.Microsecond)
	}
	return w
}

// viewNone is the view of a cell without one, and why: "none (not root: no packet
// capture)".
func viewNone(why string) string { return "none (" + why + ")" }

// startCapture begins capturing the segments of up's port on loopback, so that a server
// with no account of its own (nginx, uvicorn, node, a --target) is seen as builtin and
// gonet see themselves. When it cannot (not root, not Linux, a build without cgo) the
// cell goes on without, and its view says why.
func startCapture(up upstreams.Upstream, idleTimeout time.Duration, pcap io.Writer, onReuse func(wire.Reuse)) (*wire.Capture, string) {
	return captureURL(up.URL(), idleTimeout, pcap, onReuse)
}

func captureURL(target string, idleTimeout time.Duration, pcap io.Writer, onReuse func(wire.Reuse)) (*wire.Capture, string) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, viewNone(err.Error())
	}
	ip := net.ParseIP(u.Hostname())
	if ip == nil || !ip.IsLoopback() {
		return nil, viewNone(u.Host + " is not on loopback: only loopback is captured")
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		return nil, viewNone("no port in " + target)
	}
	c, err := wire.Start(wire.Options{Interface: "lo", Port: port, IdleTimeout: idleTimeout, PCAP: pcap, OnReuse: onReuse})
	if err != nil {
		if errors.Is(err, wire.ErrUnavailable) {
			return nil, viewNone(err.Error())
		}
		return nil, viewNone("capture failed: " + err.Error())
	}
	return c, viewWire
}

// wireView is a server's stats with what the wire saw in place of what the server
// could not say: its idle closes, closes with unread requests, their lateness, and the
// accepts and requests when the server counts none.
func wireView(own, w upstreams.Stats) upstreams.Stats {
	st := own
	st.IdleCloses, st.ClosesWithUnread = w.IdleCloses, w.ClosesWithUnread
	st.CloseLateP50US, st.CloseLateP99US, st.CloseLateMaxUS = w.CloseLateP50US, w.CloseLateP99US, w.CloseLateMaxUS
	if st.Accepted == 0 {
		st.Accepted = w.Accepted
	}
	if st.Executed == 0 {
		st.Executed = w.Executed
	}
	return st
}

// closeFeed hands a server's closes, its own or the wire's, to a cell's matcher as they
// come, named by the client's port when a delay proxy sits between.
type closeFeed struct {
	matcher *closeMatcher
	proxy   hops.PortMapper // the hop in front of the upstream, when it maps ports
	mu      sync.Mutex
	// unmapped are closes made before the proxy had noted their connection.
	unmapped []upstreams.CloseRecord
	// idle holds the idle periods (last response to close) of the server's idle
	// closes, for the model of the cell's own closes.
	idle *durationSample
}

// maxIdleSamples bounds a durationSample: 8,192 closes, 64 KiB, say the distribution to
// about a percent however long the cell.
const maxIdleSamples = 8192

// feedMatcher streams streamer's closes into a new matcher whose grace is lifetime:
// a failure is recorded when its request's last attempt ends, up to a request timeout
// per attempt after the pool closed the connection it failed on.
//
// hopLead above 0 puts the matcher behind a reverse proxy (closeMatcher.behindHop) before
// the first close can arrive.
func feedMatcher(streamer upstreams.CloseStreamer, lifetime time.Duration, proxy hops.PortMapper, hopLead time.Duration) *closeFeed {
	f := &closeFeed{matcher: newCloseMatcher(lifetime), proxy: proxy, idle: newDurationSample(1)}
	if hopLead > 0 {
		f.matcher.behindHop(hopLead)
	}
	streamer.StreamCloses(f.close)
	return f
}

func (f *closeFeed) close(c upstreams.CloseRecord) {
	if c.Reason == upstreams.ReasonIdle && !c.IdleStart.IsZero() && c.Closed.After(c.IdleStart) {
		f.idle.add(c.Closed.Sub(c.IdleStart))
	}
	if f.proxy != nil {
		// The server sees the proxy's ports; name each close by the client's.
		cp, ok := f.proxy.ClientPort(c.RemotePort, c.Accepted)
		if !ok {
			f.mu.Lock()
			f.unmapped = append(f.unmapped, c)
			f.mu.Unlock()
			return
		}
		c.RemotePort = cp
	}
	f.matcher.serverClose(c)
}

// finish maps the closes that came before their connection was noted, now that the
// proxy knows every one (a close it never carried keeps the server's port, and is
// named after the cell), and settles the matcher.
func (f *closeFeed) finish(finPath, maxLag time.Duration) matchResult {
	f.mu.Lock()
	for _, c := range f.unmapped {
		if cp, ok := f.proxy.ClientPort(c.RemotePort, c.Accepted); ok {
			c.RemotePort = cp
		}
		f.matcher.serverClose(c)
	}
	f.unmapped = nil
	f.mu.Unlock()
	return f.matcher.finish(finPath, maxLag)
}

// spread is the cell's idle closes for results.Server.IdleCloseMS: nil when there were
// none.
func (f *closeFeed) spread() *results.CloseSpread { return f.idle.spread() }

// closeSpread is the spread of the sample idle (nearest-rank quantiles) with the exact
// earliest and latest of the n closes it stands for.
func closeSpread(idle []time.Duration, lo, hi time.Duration, n int64) *results.CloseSpread {
	s := slices.Clone(idle)
	slices.Sort(s)
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(s)))) - 1
		return msOf(s[max(0, min(i, len(s)-1))])
	}
	return &results.CloseSpread{Min: msOf(lo), P50: at(0.5), P99: at(0.99), Max: msOf(hi), Samples: n}
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// idlePeriods returns the sample of idle-close periods.
func (f *closeFeed) idlePeriods() []time.Duration { return f.idle.values() }

// hiddenRetries are the requests the wire saw meet a closed connection (after the
// server's FIN, or unread at its close) that the caller did not see fail and that
// idlerace's pool did not replay: retried by the library itself.
func hiddenRetries(w *results.Wire, stale, retries int64) int64 {
	if w == nil {
		return 0
	}
	return max(w.LateRequests+w.ClosesWithUnread-stale-retries, 0)
}
