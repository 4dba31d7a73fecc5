package wire

import (
	"testing"
	"time"

	"github.com/idlerace/idlerace/upstreams"
)

// An idle close that found a request waiting says how long before its FIN the server
// had stopped reading: the request's wait. A request the server answered, and one that
// arrived after the FIN, say nothing of it.
func TestTrackerTimesTheRequestsAnIdleCloseLeftUnread(t *testing.T) {
	const T = time.Second
	base := time.Date(2026, 12, 3, 13, 0, 0, 0, time.UTC)
	at := func(ms float64) time.Time { return base.Add(time.Duration(ms * float64(time.Millisecond))) }
	tr := newTracker(upstreams.NewRecorder(), T, nil)
	// One exchange on each of three connections, then the request that meets the close.
	open := func(port int, nextRequest, fin float64) {
		tr.add(segment{at: at(0), clientPort: port, syn: true})
		tr.add(segment{at: at(1), clientPort: port, payload: 100})
		tr.add(segment{at: at(2), clientPort: port, fromServer: true, ack: true, payload: 200})
		if nextRequest < fin {
			tr.add(segment{at: at(nextRequest), clientPort: port, ack: true, payload: 100})
			tr.add(segment{at: at(fin), clientPort: port, fromServer: true, ack: true, fin: true})
		} else {
			tr.add(segment{at: at(fin), clientPort: port, fromServer: true, ack: true, fin: true})
			tr.add(segment{at: at(nextRequest), clientPort: port, ack: true, payload: 100})
		}
	}
	open(1, 1001.7, 1002.0) // waited 0.3 ms unread
	open(2, 1001.5, 1002.0) // 0.5 ms
	open(3, 1002.5, 1002.0) // after the FIN: late, not unread
	st := tr.stats
	if st.IdleUnread != 2 || st.UnreadLead != 800*time.Microsecond || st.LateRequests != 1 || st.ClosesWithUnread != 2 {
		t.Fatalf("stats %+v: want 2 idle closes with a request unread, waiting 0.8 ms in all, and 1 late request", st)
	}
}
