package matrix

import (
	"iter"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/idlerace/idlerace/attack"
	"github.com/idlerace/idlerace/matrix/model"
	"github.com/idlerace/idlerace/results"
	"github.com/idlerace/idlerace/upstreams/wire"
)

// The server's clock and the client's run a little apart around a reuse, and at a
// window of a few ms that is most of the race (issue 9: the model predicted blind 9-11
// points low on every real server at T = 1 s, +-3 ms, and read-probe's window as none):
//
//   - the server's idle timer starts when it writes the response; the client's gap
//     when its pool takes the connection back, after reading it (the read lag);
//   - a request goes out after its checkout: Go's Transport hands it to its writeLoop
//     goroutine, the kernel then copies it (the write lag). A strategy that looks at the
//     socket looks at checkout, so a close in between is its window.
//
// The wire times both ends of the server's gap; the client times its own. Paired by the
// connection's port, they give both lags under the cell's own load.

// maxWireReuses bounds reuseLog: the first 16,384 reuses the wire saw (640 KiB), enough
// to hold the first maxCheckouts (4,096) of the client's.
const maxWireReuses = 16384

// minLagSamples is how many paired reuses make the lags a cell's: fewer leave the model
// without them.
const minLagSamples = 16

// maxLag bounds a plausible lag: a pairing further apart is another request's.
const maxLag = 50 * time.Millisecond

// lagTolerance allows for the two clocks' stamps (the kernel's receive timestamp and the
// client's time.Now) landing out of order by a few µs.
const lagTolerance = time.Millisecond

// reuseLog keeps the wire's reuses by client port, in the order the wire saw them;
// safe for concurrent use (the capture's goroutine adds).
type reuseLog struct {
	mu     sync.Mutex
	n      int
	byPort map[int][]wire.Reuse
}

func newReuseLog() *reuseLog { return &reuseLog{byPort: map[int][]wire.Reuse{}} }

func (l *reuseLog) add(r wire.Reuse) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n >= maxWireReuses {
		return
	}
	l.n++
	l.byPort[r.ClientPort] = append(l.byPort[r.ClientPort], r)
}

// adder is the capture's OnReuse: each reuse into the log, and its server-side gap into
// gaps (server.reuse_gap_ms).
func (l *reuseLog) adder(gaps *durationSample) func(wire.Reuse) {
	return func(r wire.Reuse) {
		gaps.add(r.Gap())
		l.add(r)
	}
}

// clientLags are the means of the read and write lags over the client's checkouts that
// pair with a reuse on the wire: the same port, the request's arrival the first after
// the checkout, and the response it followed answered before the client's gap began.
type clientLags struct {
	read, write time.Duration
	n           int
	// readQ and reachQ are the read lag's quantiles and the read plus write lag's,
	// request by request (model.Params.ReadLags, ReachLags).
	readQ, reachQ []time.Duration
}

func (l *reuseLog) lags(checkouts []attack.Checkout) clientLags {
	l.mu.Lock()
	defer l.mu.Unlock()
	var read, write time.Duration
	n := 0
	var reads, reaches []time.Duration
	for _, c := range checkouts {
		rs := l.byPort[c.Port]
		i := sort.Search(len(rs), func(i int) bool { return !rs[i].Arrived.Before(c.At.Add(-lagTolerance)) })
		if i == len(rs) {
			continue
		}
		r := rs[i]
		rl, wl := c.IdleSince.Sub(r.Answered), r.Arrived.Sub(c.At)
		if rl < -lagTolerance || rl > maxLag || wl < -lagTolerance || wl > maxLag {
			continue // not this request's reuse (the port's next connection, say)
		}
		read += rl
		write += wl
		n++
		reads, reaches = append(reads, rl), append(reaches, rl+wl)
	}
	if n < minLagSamples {
		return clientLags{}
	}
	slices.Sort(reads)
	slices.Sort(reaches)
	return clientLags{read: read / time.Duration(n), write: write / time.Duration(n), n: n, readQ: model.Midpoints(reads, lagSteps), reachQ: model.Midpoints(reaches, lagSteps)}
}

// lessWrite takes d off every request's write lag (not below 0): the wire inside a
// netem namespace stamps a request after the qdisc held it.
func (cl *clientLags) lessWrite(d time.Duration) {
	cl.write = max(cl.write-d, 0)
	for i, r := range cl.reachQ {
		cl.reachQ[i] = max(r-d, cl.readQ[i])
	}
}

// put writes the lags into the cell's wire account, when there is one.
func (cl clientLags) put(w *results.Wire) {
	if w == nil || cl.n == 0 {
		return
	}
	w.ReadLagUS = float64(cl.read) / float64(time.Microsecond)
	w.WriteLagUS = float64(cl.write) / float64(time.Microsecond)
	w.LagSamples = cl.n
}

// minUnread is how many idle closes with a request waiting make a stop lead: fewer say
// nothing of its length.
const minUnread = 4

// leadProbe is the width of the window before each close over which stopLead counts
// the requests that could have met it.
const leadProbe = 500 * time.Microsecond

// stopLead is how long, on average, a real server stopped reading before its close
// reached the wire: a request that arrives in between is never read and meets the close
// (an event loop closes a pass after its timer; Go's server a goroutine wake-up after its
// deadline). The wire counts them (unread) but their own waits are length-biased (one
// descheduled close of 2 ms collects the requests of a hundred of 10 µs), so the lead is
// the count over how many the cell's gaps put in a window of leadProbe just before the
// close: unread = E[lead] × density, expected = leadProbe × density. Gaps are the
// client's, lag later in the server's clock; closes the cell's own.
func stopLead(unread int64, closes *empiricalSkew, gaps iter.Seq2[time.Duration, int64], lag, believed time.Duration) time.Duration {
	if unread < minUnread || closes == nil {
		return 0
	}
	var expected float64
	for g, n := range gaps {
		x := g + lag - believed
		expected += float64(n) * (closes.CDF(x) - closes.CDF(x-leadProbe))
	}
	if expected <= 0 {
		return 0
	}
	return time.Duration(float64(leadProbe) * float64(unread) / expected)
}
