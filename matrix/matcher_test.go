package matrix

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/idlerace/idlerace/attack"
	"github.com/idlerace/idlerace/results"
	"github.com/idlerace/idlerace/upstreams"
)

const ms = time.Millisecond

func TestMatcherNotifyLagMatchesWakeUpsToTheLastCloseOfTheirPort(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := newCloseMatcher(time.Minute)
	// A wake-up may be seen before the server's record of its close: it waits for it.
	m.wakeUp(40001, t0.Add(2*ms+300*time.Microsecond)) // 0.3ms after the FIN's 2ms trip
	for _, c := range []upstreams.CloseRecord{
		{RemotePort: 40001, Closed: t0},
		{RemotePort: 40001, Accepted: t0.Add(100 * ms), Closed: t0.Add(500 * ms)}, // the port reused later
		{RemotePort: 40002, Closed: t0.Add(10 * ms)},
		{RemotePort: 40003}, // never closed by the server
	} {
		m.serverClose(c)
	}
	m.wakeUp(40001, t0.Add(502*ms+500*time.Microsecond)) // the second close: 0.5ms
	m.wakeUp(40002, t0.Add(11*ms))                       // 1ms after the close: -1ms left, counts as 0
	m.wakeUp(40003, t0.Add(ms))                          // no close: left out
	m.wakeUp(40004, t0.Add(ms))                          // unknown port: left out
	m.wakeUp(40002, t0.Add(10*ms+time.Second))           // a close a second before: left out
	r := m.finish(2*ms, 100*ms)
	if r.notifyN != 3 {
		t.Fatalf("used %d wake-ups, want 3", r.notifyN)
	}
	// (0.3 + 0.5 + 0) / 3 ms, to the histogram's 3 significant digits
	if want := 800 * time.Microsecond / 3; (r.notifyLag - want).Abs() > time.Microsecond {
		t.Fatalf("lag %v, want %v", r.notifyLag, want)
	}
	// Its quantiles: a third each at 0, 0.3 and 0.5 ms (the histogram's bucket middles).
	if len(r.notifyLags) != lagSteps {
		t.Fatalf("%d notify quantiles, want %d", len(r.notifyLags), lagSteps)
	}
	near := func(d, want time.Duration) bool { return (d - want).Abs() <= time.Microsecond }
	if q := r.notifyLags; q[0] != 0 || !near(q[lagSteps/2], 300*time.Microsecond) || !near(q[lagSteps-1], 500*time.Microsecond) {
		t.Errorf("notify quantiles %v: want thirds at 0, 0.3 and 0.5 ms", q)
	}
	if r := newCloseMatcher(time.Minute).finish(0, time.Second); r.notifyLag != 0 || r.notifyN != 0 || r.notifyLags != nil {
		t.Fatalf("no wake-ups: lag %v from %d", r.notifyLag, r.notifyN)
	}
}

// A stale failure is explained by the server's own close of the connection its port had
// when the request started, whichever of the two is recorded first.
func TestMatcherExplainsFailuresByTheServersClose(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := newCloseMatcher(time.Minute)
	idle := func(port int, accepted time.Duration) upstreams.CloseRecord {
		return upstreams.CloseRecord{RemotePort: port, Reason: upstreams.ReasonIdle, Accepted: t0.Add(accepted), Closed: t0.Add(accepted + time.Second)}
	}
	m.serverClose(idle(1, 0))
	m.failure(attack.StaleConn{LocalPort: 1, Start: t0.Add(1500 * ms)}) // its close came first
	m.failure(attack.StaleConn{LocalPort: 2, Start: t0.Add(1500 * ms)}) // its close comes next
	m.serverClose(idle(2, 0))
	m.serverClose(upstreams.CloseRecord{RemotePort: 3, Reason: upstreams.ReasonPeer, Accepted: t0, Closed: t0.Add(time.Second)})
	m.failure(attack.StaleConn{LocalPort: 3, Start: t0.Add(1500 * ms)}) // the client closed it: unexplained
	m.failure(attack.StaleConn{LocalPort: 4, Start: t0.Add(1500 * ms)}) // no close at all
	m.serverClose(idle(5, 2*time.Second))
	m.failure(attack.StaleConn{LocalPort: 5, Start: t0.Add(1500 * ms)}) // before that connection was accepted
	if r := m.finish(0, time.Second); r.unmatched != 3 || r.closes != 4 {
		t.Fatalf("%d unmatched of 5 failures, %d closes; want 3 (ports 3, 4 and 5) and 4", r.unmatched, r.closes)
	}
}

// The idle closes' median lags past their due time, as the model takes them: a close
// that is late once (a stalled wake-up) does not move them.
func TestMatcherMedianLagsOfIdleCloses(t *testing.T) {
	due := time.Unix(1000, 0)
	us := time.Microsecond
	m := newCloseMatcher(time.Minute)
	rec := func(reason string, stop, closed time.Duration) upstreams.CloseRecord {
		r := upstreams.CloseRecord{Reason: reason, Due: due, Closed: due.Add(closed)}
		if stop >= 0 {
			r.Stopped = due.Add(stop)
		}
		return r
	}
	for _, c := range []upstreams.CloseRecord{
		rec(upstreams.ReasonIdle, 50*us, 60*us),
		rec(upstreams.ReasonIdle, 90*us, 100*us),
		rec(upstreams.ReasonIdle, 900*us, 5000*us), // a late wake-up: not the median
		rec(upstreams.ReasonPeer, 0, 9000*us),      // not an idle close
		rec(upstreams.ReasonIdle, -1, 80*us),       // reading stop unknown
	} {
		m.serverClose(c)
	}
	// 60, 80, 100, 5000 and 50, 90, 900: the histogram's median is the lower middle value.
	if r := m.finish(0, time.Second); r.closeLag != 80*us || r.stopLag != 90*us {
		t.Fatalf("close lag %v, stop lag %v; want 80µs and 90µs", r.closeLag, r.stopLag)
	}
	// The distributions: 32 midpoint quantiles, the late wake-up among them.
	r := m.finish(0, time.Second)
	if len(r.closeLags) != lagSteps || len(r.stopLags) != lagSteps {
		t.Fatalf("%d close and %d stop quantiles, want %d", len(r.closeLags), len(r.stopLags), lagSteps)
	}
	if r.closeLags[0] != 60*us || r.closeLags[lagSteps-1] < 4990*us || r.stopLags[lagSteps-1] < 899*us {
		t.Errorf("quantiles %v .. %v (stop .. %v): want 60µs .. 5ms (stop .. 900µs)", r.closeLags[0], r.closeLags[lagSteps-1], r.stopLags[lagSteps-1])
	}
	if r := newCloseMatcher(time.Minute).finish(0, time.Second); r.closeLag != 0 || r.stopLag != 0 || r.closeLags != nil {
		t.Fatalf("no closes: %v %v %v", r.closeLag, r.stopLag, r.closeLags)
	}
}

// A long cell keeps only the closes of connections the client still holds or closed
// within the grace period: 100,000 connections, each used, failed on, closed by the
// client and by the server, at 2,000 a second, leave the matcher holding no more than
// the last grace period's.
func TestMatcherKeepsOnlyWhatCanStillMatch(t *testing.T) {
	t0 := time.Unix(1000, 0)
	grace := 2 * time.Second
	m := newCloseMatcher(grace)
	const conns, perSecond = 100_000, 2000
	peak := 0
	for i := range conns {
		at := t0.Add(time.Duration(i) * time.Second / perSecond)
		port := 10_000 + i%50_000 // ports come round again, as the kernel's do
		m.serverClose(upstreams.CloseRecord{RemotePort: port, Reason: upstreams.ReasonIdle, Accepted: at.Add(-time.Second), Closed: at})
		m.failure(attack.StaleConn{LocalPort: port, Start: at.Add(ms)})
		m.clientClosed(port, at.Add(2*ms))
		peak = max(peak, len(m.ports))
	}
	if limit := int(math.Ceil(grace.Seconds()*perSecond)) + 2; peak > limit {
		t.Errorf("held the closes of %d ports at once, want at most %d (a grace period's worth)", peak, limit)
	}
	if len(m.pending) != 0 {
		t.Errorf("%d failures still waiting, want none: each had its close", len(m.pending))
	}
	if r := m.finish(0, time.Second); r.unmatched != 0 || r.closes != conns {
		t.Errorf("%d unmatched, %d closes; want 0 and %d", r.unmatched, r.closes, conns)
	}
}

// For a client whose closes are never seen (a client kind), a server's close starts the
// grace period itself: a failure within the grace still finds its close, and a long
// cell's closes do not pile up.
func TestMatcherExpiresByTheServersCloseWhenTheClientsAreUnseen(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := newCloseMatcher(time.Second)
	m.expireOnServerClose()
	for i := range 10_000 {
		at := t0.Add(time.Duration(i) * 10 * ms)
		m.serverClose(upstreams.CloseRecord{RemotePort: 1024 + i%20_000, Reason: upstreams.ReasonIdle, Accepted: at.Add(-time.Second), Closed: at})
	}
	last := t0.Add(9999 * 10 * ms)
	m.failure(attack.StaleConn{LocalPort: 1024 + 9999, Start: last.Add(-500 * ms)}) // within the grace
	m.mu.Lock()
	held := len(m.ports)
	m.mu.Unlock()
	if held > 110 { // a second's closes at 100 a second, and the one in hand
		t.Errorf("%d ports' closes held after 100 s of closes with a 1 s grace", held)
	}
	if r := m.finish(0, time.Second); r.unmatched != 0 || r.closes != 10_000 {
		t.Errorf("%d unmatched, %d closes: want the failure matched, every close counted", r.unmatched, r.closes)
	}
}

// Behind a proxy a failure is explained by a close of any of the server's connections
// made from hopLead before its request started to its end, whichever is recorded first;
// a close explains one failure at most; a 502 nothing explains is the proxy's own error,
// and any other failure nothing explains is unmatched.
func TestMatcherBehindAProxyMatchesByTime(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := newCloseMatcher(time.Minute)
	m.behindHop(10 * ms)
	idle := func(port int, closed time.Duration) upstreams.CloseRecord {
		return upstreams.CloseRecord{RemotePort: port, Reason: upstreams.ReasonIdle, Accepted: t0, Closed: t0.Add(closed)}
	}
	gw := func(start, end time.Duration, gap time.Duration) attack.StaleConn {
		return attack.StaleConn{LocalPort: 50000, Start: t0.Add(start), End: t0.Add(end), Gap: gap, Gateway: true}
	}
	m.serverClose(idle(40001, 1000*ms))
	m.failure(gw(1005*ms, 1007*ms, 200*ms)) // the close 5 ms before it started: the proxy had not seen the FIN
	m.failure(gw(1005*ms, 1007*ms, 201*ms)) // the same close cannot explain a second 502: waits
	m.failure(gw(2000*ms, 2003*ms, 202*ms)) // its close comes after its record, during the request
	m.serverClose(idle(40002, 2001*ms))
	m.serverClose(upstreams.CloseRecord{RemotePort: 40003, Reason: upstreams.ReasonPeer, Accepted: t0, Closed: t0.Add(3001 * ms)})
	m.failure(gw(3000*ms, 3002*ms, 203*ms))                                                                  // only the proxy closed: its own error
	m.failure(attack.StaleConn{LocalPort: 50001, Start: t0.Add(4000 * ms), End: t0.Add(4001 * ms), Gap: -1}) // an eof the load met with no close: unmatched
	m.serverClose(idle(40004, 5050*ms))
	m.failure(gw(5000*ms, 5002*ms, 204*ms)) // a close after its 502 came back explains nothing
	m.wakeUp(50000, t0.Add(1001*ms))        // the load's watchers wake to the proxy, never matched
	r := m.finish(0, time.Second)
	if r.unmatched != 1 || r.ownErrors != 3 {
		t.Fatalf("unmatched %d, own errors %d: want 1 and 3 (the second 502 at 1005 ms, the one at 3000 ms, the one at 5000 ms)", r.unmatched, r.ownErrors)
	}
	if want := []time.Duration{201 * ms, 203 * ms, 204 * ms}; !slices.Equal(r.ownGaps, want) {
		t.Errorf("own errors' gaps %v, want %v", r.ownGaps, want)
	}
	if r.notifyN != 0 {
		t.Errorf("%d wake-ups matched behind a proxy", r.notifyN)
	}
}

// The proxy's own errors leave the cell's stale count, its reset rate and the race
// curve, and are reported in hop.own_errors.
func TestOwnErrorsLeaveTheStaleCount(t *testing.T) {
	rec := attack.NewRecorder("c", nil)
	rec.Gaps.Add(200*ms, true, false)
	rec.Gaps.Add(201*ms, true, false)
	c := results.Cell{Requests: 10, Stale: 2, Hop: &results.Hop{Kind: "nginx", BadGateway: 2}}
	c.Finish()
	ownErrors(&c, rec, matchResult{ownErrors: 1, ownGaps: []time.Duration{201 * ms}})
	if c.Stale != 1 || c.Hop.OwnErrors != 1 || c.ResetRate != 0.1 {
		t.Fatalf("stale %d, own errors %d, reset rate %g: want 1, 1, 0.1", c.Stale, c.Hop.OwnErrors, c.ResetRate)
	}
	for b := range rec.Gaps.Buckets() {
		if want := int64(b2i(b.Gap == 200*ms)); b.Stale != want {
			t.Errorf("gap %v: %d stale, want %d", b.Gap, b.Stale, want)
		}
	}
	direct := results.Cell{Requests: 10, Stale: 2}
	ownErrors(&direct, rec, matchResult{ownErrors: 1})
	if direct.Stale != 2 {
		t.Errorf("a cell without a proxy lost a stale failure: %d", direct.Stale)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
