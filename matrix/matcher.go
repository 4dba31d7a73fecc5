package matrix

import (
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/idlerace/idlerace/attack"
	"github.com/idlerace/idlerace/upstreams"
)

// closeMatcher joins, while a cell runs, the server's closes with what the client saw of
// the same connections (by the client's port): each stale failure with the close that
// explains it (Unmatched's rule), each idle watcher's wake-up with the close it woke to
// (the notify lag), and it keeps the median lags of the server's idle closes. It keeps
// only what a later event can still need: a server close until the client has closed
// that connection and a grace period has passed, a failure or a wake-up until its close
// has arrived. So a cell of any length holds about as many records as it has
// connections open; kept whole until the cell's end, the closes alone grew a 10-minute
// soak's heap by ~0.5 MiB.
//
// Why a grace period: the events of one connection arrive out of order. The client sees
// the server's FIN and may close its end, retry and record the failure before the
// server's goroutine records the close (Record runs after close()), and a failed
// request is recorded only when its last attempt ends, up to a request timeout after the
// pool closed the connection it failed on.
type closeMatcher struct {
	mu    sync.Mutex
	grace time.Duration
	// base is the time the matcher's int64 times count from (ns): a close and an expiry
	// are 24 bytes each instead of 56, for the ~20 a second that wait out the grace.
	base time.Time

	ports   map[int][]matchedClose
	expiry  []portExpiry // in order of at: ports the client closed
	pending []attack.StaleConn
	waiting []watchClose // wake-ups whose close has not arrived

	closes    int64
	unmatched int64
	// wakeUS holds each matched wake-up's time since its close, µs: the FIN's trip is
	// taken off at the end, when the delay proxy has said how late it ran.
	wakeUS                      *hdrhistogram.Histogram
	closeLagUS, stopLagUS       *hdrhistogram.Histogram
	pendingCap, waitingCap      int
	droppedPending, droppedWait int64
	// serverSide: the client's closes are never seen (a client kind's library closes
	// its connections in its own process), so a server's close starts the grace period
	// itself: no event of that connection comes later than a request's lifetime after.
	serverSide bool

	// Behind a reverse proxy (behindHop) the load's failures happen on its connections
	// to the proxy and the closes that explain them on the proxy's to the upstream, so
	// ports say nothing: a failure is explained by a close the server made on any
	// connection from hopLead before its request started to its end (the proxy wrote the
	// request into a connection the upstream was closing, or had closed a moment before
	// the proxy's event loop saw the FIN), each close explaining one failure at most. A
	// 502 that no close explains is the proxy's own error (ownErrors), not the race; any
	// other failure left is unmatched, the load's own hop racing, which must not happen.
	throughHop bool
	hopLead    int64
	hopCloses  []int64 // closed times of the server's own closes not yet used, sorted
	ownErrors  int64
	ownGaps    []time.Duration
}

// behindHop puts the matcher in front of a reverse proxy (see throughHop); lead is how
// long before a request started a close can still have been what it met.
func (m *closeMatcher) behindHop(lead time.Duration) {
	m.mu.Lock()
	m.throughHop, m.hopLead = true, int64(lead)
	m.mu.Unlock()
}

// hopLead is behindHop's lead for a cell believing T: the proxy's notice of a FIN is
// an event loop's turn, well under a millisecond on an idle machine and a few on a busy
// one, while with one lane the connection before lost its close at least T before; T/10
// within 10-500 ms keeps both apart.
func hopLead(t time.Duration) time.Duration {
	return min(max(t/10, 10*time.Millisecond), 500*time.Millisecond)
}

// hopEndSlack is added to a failure's end: the builtin stamps a close once close(2) has
// returned, which on a busy machine can be milliseconds after the proxy met it, and the
// wire's kernel timestamps and the load's clock differ by microseconds.
const hopEndSlack = 10 * time.Millisecond

// matchHop reports whether f is explained behind a proxy, using up the close.
func (m *closeMatcher) matchHop(f attack.StaleConn) bool {
	from := m.ns(f.Start) - m.hopLead
	to := m.ns(f.End) + int64(hopEndSlack)
	if f.End.IsZero() {
		to = m.ns(f.Start) + int64(m.grace)
	}
	i := sort.Search(len(m.hopCloses), func(i int) bool { return m.hopCloses[i] >= from })
	if i == len(m.hopCloses) || m.hopCloses[i] > to {
		return false
	}
	m.hopCloses = slices.Delete(m.hopCloses, i, i+1)
	return true
}

// hopClose takes a server close behind a proxy (serverClose's half for behindHop).
func (m *closeMatcher) hopClose(mc matchedClose) {
	if !mc.initiated || mc.closed == noTime {
		return
	}
	i := sort.Search(len(m.hopCloses), func(i int) bool { return m.hopCloses[i] > mc.closed })
	m.hopCloses = slices.Insert(m.hopCloses, i, mc.closed)
	// A failure still to come ended after now and started at most a lifetime before.
	old := sort.Search(len(m.hopCloses), func(i int) bool { return m.hopCloses[i] >= mc.closed-int64(m.grace)-m.hopLead })
	m.hopCloses = slices.Delete(m.hopCloses, 0, old)
	// A failure that ended before the horizon of the closes kept can find none: it is
	// settled now rather than retried at every close until the cell's end.
	horizon := mc.closed - int64(m.grace)
	kept := m.pending[:0]
	for _, f := range m.pending {
		switch {
		case m.matchHop(f):
		case m.ns(f.End)+int64(hopEndSlack) < horizon && !f.End.IsZero():
			m.settleHop(f)
		default:
			kept = append(kept, f)
		}
	}
	clear(m.pending[len(kept):])
	m.pending = kept
}

// settleHop counts a failure behind a proxy that no close explains: a 502 is the proxy's
// own error, anything else unmatched.
func (m *closeMatcher) settleHop(f attack.StaleConn) {
	if f.Gateway {
		m.ownErrors++
		m.ownGaps = append(m.ownGaps, f.Gap)
	} else {
		m.unmatched++
	}
}

// expireOnServerClose is for a client whose closes are not seen (see serverSide).
func (m *closeMatcher) expireOnServerClose() {
	m.mu.Lock()
	m.serverSide = true
	m.mu.Unlock()
}

// watchClose is one idle watcher waking to the server's close. The notify lag, the
// time from a FIN's arrival at the client to the watcher waking to it, is watch's race
// window on loopback: a checkout inside it still finds the connection idle, because
// Go's netpoller reports the checkout's wake-up deadline rather than the FIN the watcher
// has not run for yet. The model assumed 100µs, an idle machine's goroutine wake-up;
// measured (closeMatcher) it is 30µs with 8 sweep lanes and 80-160µs with 64. The mean,
// not the median, because the window's width is what a request meets on average.
//
// It underestimates under load: it averages the watchers that woke undisturbed, while
// the watcher a checkout races is delayed by that checkout's own burst of work on the
// same two cores. Watch, uniform:±10ms, 6 s, T = 100ms: with 8 sweep lanes 2-3 stale
// failures in 467 requests against ~1 predicted (0.43-0.64% vs 0.17-0.21%); with 64
// lanes about 4 times the prediction (1.1-1.4% vs 0.3%), although each failure lies
// inside the window the model draws (request 90-220µs after the close was due, 5-90µs
// after the FIN reached the socket).
type watchClose struct {
	port int
	at   time.Time
}

// matchedClose is a server close as matching needs it; times in ns since base, closed
// noTime when the record had none.
type matchedClose struct {
	accepted, closed int64
	initiated        bool // the server ended it (serverInitiated)
}

type portExpiry struct {
	// closed is when the client closed its connection; at when the port's closes
	// accepted before then may go (ns since base).
	closed, at int64
	port       int32
}

const noTime = math.MinInt64

// ns is t in ns since base (noTime for the zero time): the same order and differences
// as t's monotonic readings, or wall clock where t has none.
func (m *closeMatcher) ns(t time.Time) int64 {
	if t.IsZero() {
		return noTime
	}
	return int64(t.Sub(m.base))
}

// Bounds on what waits for its other half: a failure or wake-up that never finds a close
// (the server did not close that connection) waits until the cell's end.
const (
	maxPendingFailures = 100_000
	maxWaitingWakeUps  = 4096
)

func newCloseMatcher(grace time.Duration) *closeMatcher {
	return &closeMatcher{
		grace:      grace,
		base:       time.Now(),
		ports:      map[int][]matchedClose{},
		wakeUS:     hdrhistogram.New(1, 60_000_000, 3),
		closeLagUS: hdrhistogram.New(1, 60_000_000, 3),
		stopLagUS:  hdrhistogram.New(1, 60_000_000, 3),
		pendingCap: maxPendingFailures, waitingCap: maxWaitingWakeUps,
	}
}

// serverClose takes one close the server made, its RemotePort already the client's.
func (m *closeMatcher) serverClose(c upstreams.CloseRecord) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closes++
	if c.Reason == upstreams.ReasonIdle && !c.Due.IsZero() {
		m.closeLagUS.RecordValue(lagUS(c.Closed.Sub(c.Due)))
		if !c.Stopped.IsZero() {
			m.stopLagUS.RecordValue(lagUS(c.Stopped.Sub(c.Due)))
		}
	}
	mc := matchedClose{accepted: m.ns(c.Accepted), closed: m.ns(c.Closed), initiated: serverInitiated(c.Reason)}
	if m.throughHop {
		m.hopClose(mc)
		return
	}
	l := m.ports[c.RemotePort]
	i := sort.Search(len(l), func(i int) bool { return l[i].accepted > mc.accepted })
	m.ports[c.RemotePort] = slices.Insert(l, i, mc)
	if m.serverSide && mc.closed != noTime {
		m.expire(mc.closed)
		m.expiry = append(m.expiry, portExpiry{port: int32(c.RemotePort), closed: mc.closed, at: mc.closed + int64(m.grace)})
	}
	// What waited for a close of this port may have its answer now.
	kept := m.pending[:0]
	for _, f := range m.pending {
		if f.LocalPort != c.RemotePort || !m.matchFailure(f) {
			kept = append(kept, f)
		}
	}
	clear(m.pending[len(kept):])
	m.pending = kept
	waiting := m.waiting[:0]
	for _, w := range m.waiting {
		if w.port != c.RemotePort || !m.matchWakeUp(w) {
			waiting = append(waiting, w)
		}
	}
	m.waiting = waiting
}

// failure takes one stale failure (attack.Recorder.OnStale).
func (m *closeMatcher) failure(f attack.StaleConn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.throughHop && m.matchHop(f) || !m.throughHop && m.matchFailure(f) {
		return
	}
	if len(m.pending) < m.pendingCap {
		m.pending = append(m.pending, f)
	} else {
		m.droppedPending++
		m.unmatched++ // kept in the count, not in memory
	}
}

// matchFailure reports whether f is explained: the connection from its port that the
// server accepted last before the request started was closed by the server itself.
// Unexplained is not final while the cell runs (the close may be on its way).
func (m *closeMatcher) matchFailure(f attack.StaleConn) bool {
	l := m.ports[f.LocalPort]
	start := m.ns(f.Start)
	i := sort.Search(len(l), func(i int) bool { return l[i].accepted > start }) - 1
	return i >= 0 && l[i].initiated
}

// wakeUp takes one idle watcher's wake-up (pool.Config.OnWatchClose).
func (m *closeMatcher) wakeUp(port int, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.throughHop {
		return // the load's watchers wake to the proxy's closes, not the server's
	}
	w := watchClose{port, at}
	if m.matchWakeUp(w) {
		return
	}
	if len(m.waiting) < m.waitingCap {
		m.waiting = append(m.waiting, w)
	} else {
		m.droppedWait++
	}
}

// matchWakeUp keeps w's time since the last close of its port at or before it, when
// there is one.
func (m *closeMatcher) matchWakeUp(w watchClose) bool {
	l := m.ports[w.port]
	at := m.ns(w.at)
	last := -1
	for i := range l {
		if c := l[i].closed; c != noTime && c <= at && (last < 0 || c > l[last].closed) {
			last = i
		}
	}
	if last < 0 {
		return false
	}
	m.wakeUS.RecordValue(lagUS(time.Duration(at - l[last].closed)))
	return true
}

// clientClosed takes the client's close of a connection (pool.Config.OnClose): after
// the grace period no event can need the port's closes accepted before now.
func (m *closeMatcher) clientClosed(port int, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.ns(at)
	m.expire(now)
	m.expiry = append(m.expiry, portExpiry{port: int32(port), closed: now, at: now + int64(m.grace)})
}

// expire drops the closes whose time has passed (now: ns since base).
func (m *closeMatcher) expire(now int64) {
	n := 0
	for _, e := range m.expiry {
		if e.at > now {
			break
		}
		n++
		port := int(e.port)
		l := m.ports[port]
		// Closes of a connection the port had later stay: ports are reused.
		i := sort.Search(len(l), func(i int) bool { return l[i].accepted > e.closed })
		if i == len(l) {
			delete(m.ports, port)
		} else {
			m.ports[port] = append(l[:0], l[i:]...)
		}
	}
	m.expiry = append(m.expiry[:0], m.expiry[n:]...)
}

// matchResult is what a cell's matching found.
type matchResult struct {
	closes    int64 // server closes seen
	unmatched int64
	// ownErrors are a proxy's 502s that no close of the server's explains, with their
	// gaps (-1 unexposed): the proxy's own errors, not the race (behindHop).
	ownErrors         int64
	ownGaps           []time.Duration
	notifyLag         time.Duration
	notifyN           int
	notifyLags        []time.Duration // the notify lag's quantiles (lagSteps)
	closeLag, stopLag time.Duration
	// closeLags and stopLags are their distributions (lagQuantiles), nil without closes.
	closeLags, stopLags []time.Duration
}

// finish settles what still waits, now that no close can come: a failure that found no
// close of the server's is unmatched. The notify lag is the mean of the wake-ups' times
// since their close less finPath, the FIN's trip (0 on loopback; the delay proxy's d
// and lateness), each counted as 0 when negative; a wake-up more than maxLag after it
// woke to something else and is left out (notifyLag's rule).
func (m *closeMatcher) finish(finPath, maxLag time.Duration) matchResult {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, f := range m.pending {
		switch {
		case m.throughHop && m.matchHop(f), !m.throughHop && m.matchFailure(f):
		case m.throughHop:
			m.settleHop(f)
		default:
			m.unmatched++
		}
	}
	m.pending = nil
	for _, w := range m.waiting {
		m.matchWakeUp(w)
	}
	m.waiting = nil
	r := matchResult{closes: m.closes, unmatched: m.unmatched, ownErrors: m.ownErrors, ownGaps: m.ownGaps}
	var sum time.Duration
	var wakes []weighted
	for _, b := range m.wakeUS.Distribution() {
		if b.Count == 0 {
			continue
		}
		// A bucket's values, 3 significant digits wide, stand at its middle.
		d := time.Duration(b.From+b.To)*time.Microsecond/2 - finPath
		if d > maxLag {
			continue
		}
		sum += max(d, 0) * time.Duration(b.Count)
		r.notifyN += int(b.Count)
		wakes = append(wakes, weighted{max(d, 0), b.Count})
	}
	if r.notifyN > 0 {
		r.notifyLag = sum / time.Duration(r.notifyN)
		r.notifyLags = weightedQuantiles(wakes, int64(r.notifyN))
	}
	if m.closeLagUS.TotalCount() > 0 {
		r.closeLag = time.Duration(m.closeLagUS.ValueAtQuantile(50)) * time.Microsecond
		r.closeLags = lagQuantiles(m.closeLagUS)
	}
	if m.stopLagUS.TotalCount() > 0 {
		r.stopLag = time.Duration(m.stopLagUS.ValueAtQuantile(50)) * time.Microsecond
		r.stopLags = lagQuantiles(m.stopLagUS)
	}
	return r
}

// lagSteps is how many quantiles stand for a lag's distribution in the model: the
// midpoints of 32 equal slices, so that its 1.6% tail counts as one of them.
const lagSteps = 32

// weighted is a value standing for n samples.
type weighted struct {
	v time.Duration
	n int64
}

// weightedQuantiles are the lagSteps midpoint quantiles of ws (ascending, total n).
func weightedQuantiles(ws []weighted, total int64) []time.Duration {
	qs := make([]time.Duration, lagSteps)
	var below int64
	j := 0
	for i := range qs {
		rank := (2*int64(i) + 1) * total / (2 * lagSteps) // 0-based rank of the midpoint
		for j < len(ws)-1 && below+ws[j].n <= rank {
			below += ws[j].n
			j++
		}
		qs[i] = ws[j].v
	}
	return qs
}

// lagQuantiles are h's midpoint quantiles, lagSteps of them, in µs as recorded.
func lagQuantiles(h *hdrhistogram.Histogram) []time.Duration {
	qs := make([]time.Duration, lagSteps)
	for i := range qs {
		qs[i] = time.Duration(h.ValueAtQuantile(100*(float64(i)+0.5)/lagSteps)) * time.Microsecond
	}
	return qs
}

// lagUS is a lag in whole µs for the histograms, which hold 1µs..60s: a close at or
// before its due time counts as 0 lag.
func lagUS(d time.Duration) int64 { return min(max(d.Microseconds(), 0), 60_000_000) }
