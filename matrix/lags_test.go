package matrix

import (
	"testing"
	"time"

	"github.com/idlerace/idlerace/attack"
	"github.com/idlerace/idlerace/upstreams/wire"
)

// Each checkout pairs with the wire's reuse of the same connection, its port's first
// arrival after it; a port's later connection, a reuse on another port and a request
// that arrived too long after are not its.
func TestClientLagsPairCheckoutsWithTheWire(t *testing.T) {
	base := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	at := func(ms float64) time.Time { return base.Add(time.Duration(ms * float64(time.Millisecond))) }
	l := newReuseLog()
	var cs []attack.Checkout
	for i := range minLagSamples {
		port := 40000 + i
		// The response left the server at 0, the client's gap began 0.2 ms later and
		// ended at 100 ms; the request reached the server 0.3 ms after that.
		l.add(wire.Reuse{ClientPort: port, Answered: at(0), Arrived: at(100.3)})
		// The port's next connection, much later: not this checkout's.
		l.add(wire.Reuse{ClientPort: port, Answered: at(500), Arrived: at(600)})
		cs = append(cs, attack.Checkout{Port: port, IdleSince: at(0.2), At: at(100)})
	}
	// On a port the wire never saw, and one whose request came 80 ms after: no pair.
	cs = append(cs, attack.Checkout{Port: 1, IdleSince: at(0.2), At: at(100)})
	l.add(wire.Reuse{ClientPort: 2, Answered: at(0), Arrived: at(180)})
	cs = append(cs, attack.Checkout{Port: 2, IdleSince: at(0.2), At: at(100)})
	got := l.lags(cs)
	if got.n != minLagSamples || got.read != 200*time.Microsecond || got.write != 300*time.Microsecond {
		t.Fatalf("lags %+v: want %d pairs, read 200µs, write 300µs", got, minLagSamples)
	}
	for i := range lagSteps {
		if got.readQ[i] != 200*time.Microsecond || got.reachQ[i] != 500*time.Microsecond {
			t.Fatalf("quantile %d: read %v, reach %v; want 200µs and 500µs", i, got.readQ[i], got.reachQ[i])
		}
	}
	// Inside a netem namespace the wire stamps a request a one-way delay late: taken off
	// every write lag, never below none.
	got.lessWrite(time.Millisecond)
	if got.write != 0 || got.reachQ[0] != got.readQ[0] {
		t.Errorf("less 1ms: write %v, reach %v; want 0 and the read lag %v", got.write, got.reachQ[0], got.readQ[0])
	}
	if few := l.lags(cs[:minLagSamples-1]); few.n != 0 || few.read != 0 || few.write != 0 {
		t.Errorf("lags of %d pairs %+v: fewer than %d leave the model without them", minLagSamples-1, few, minLagSamples)
	}
}

// A server's stop lead is its unread closes over how many of the cell's requests fell
// just before a close: every close at T + 1 ms, one gap a µs across T +- 3 ms puts 500
// requests in the 0.5 ms before it, and 50 of them unread is a lead of 50 µs, however
// long each of the 50 had waited.
func TestStopLeadCountsUnreadClosesAgainstTheGaps(t *testing.T) {
	const T = time.Second
	closes := newEmpiricalSkew([]time.Duration{T + time.Millisecond}, T)
	gaps := func(yield func(time.Duration, int64) bool) {
		for g := T - 3*time.Millisecond; g < T+3*time.Millisecond; g += time.Microsecond {
			if !yield(g, 1) {
				return
			}
		}
	}
	if got := stopLead(50, closes, gaps, 0, T); got != 50*time.Microsecond {
		t.Errorf("stop lead %v: want 50µs", got)
	}
	if got := stopLead(minUnread-1, closes, gaps, 0, T); got != 0 {
		t.Errorf("stop lead of %d unread closes %v: want none", minUnread-1, got)
	}
	if got := stopLead(50, nil, gaps, 0, T); got != 0 {
		t.Errorf("stop lead without the cell's closes %v: want none", got)
	}
}
