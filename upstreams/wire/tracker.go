package wire

import (
	"time"

	"github.com/idlerace/idlerace/upstreams"
)

// segment is one TCP segment of the server's port as the tracker needs it.
type segment struct {
	at                 time.Time // the kernel's receive timestamp
	clientPort         int
	fromServer         bool
	syn, ack, fin, rst bool
	payload            int // TCP payload bytes, from the IP lengths
}

// Stats is what the wire saw beyond the upstreams.Stats its Recorder keeps.
type Stats struct {
	Segments int64 `json:"segments"`
	// Drops are segments the kernel could not hand to the capture (its ring was full):
	// anything above 0 means connections the view may have got wrong.
	Drops      int64 `json:"drops"`
	ServerFINs int64 `json:"server_fins"` // connections the server closed with a FIN
	ServerRSTs int64 `json:"server_rsts"` // ... with a RST (Linux resets when it closes with bytes unread)
	// LateRequests are connections on which client bytes arrived after the server's FIN
	// or RST: a request sent into a connection already closed, the race on the wire.
	LateRequests int64 `json:"late_requests"`
	// ClosesWithUnread are server closes (idle or not) with request bytes that had
	// arrived after the last response: the race, from the server's side.
	ClosesWithUnread int64 `json:"closes_with_unread"`
	// PeerCloses counts the server's idle closes the client answered with its own FIN
	// before it sent anything more, and PeerCloseLag is the sum of the times it took:
	// how long a client that watches its idle connections (a proxy's pool, most of all)
	// takes to see the close, its race window, read off the wire.
	PeerCloses   int64         `json:"peer_closes"`
	PeerCloseLag time.Duration `json:"peer_close_lag_ns"`
	// IdleUnread counts the idle closes that found a request waiting, and UnreadLead is
	// the sum of how long before the close each had arrived: the server had stopped
	// reading before its close reached the wire (an event loop closes a pass after its
	// timer; Go's server a goroutine wake-up after its deadline), and a request that
	// arrives in between is never read.
	IdleUnread int64         `json:"idle_unread"`
	UnreadLead time.Duration `json:"unread_lead_ns"`
}

// conn is one connection's state, by client port.
type conn struct {
	accepted, idleStart time.Time
	requests            int
	pending             bool      // request bytes with no response after them
	pendingAt           time.Time // when they began to arrive
	serverClosed        bool
	clientClosed        bool
	late                bool
	idleClosed          time.Time // the server's idle close, while the client has not answered it
	answered            bool      // the server has sent response bytes on it
}

// tracker turns segments into closes. Not safe for concurrent use: one capture
// goroutine feeds it.
type tracker struct {
	rec         *upstreams.Recorder
	idleTimeout time.Duration
	onReuse     func(Reuse) // Options.OnReuse
	conns       map[int]*conn
	stats       Stats
}

func newTracker(rec *upstreams.Recorder, idleTimeout time.Duration, onReuse func(Reuse)) *tracker {
	return &tracker{rec: rec, idleTimeout: idleTimeout, onReuse: onReuse, conns: map[int]*conn{}}
}

func (t *tracker) add(s segment) {
	t.stats.Segments++
	c := t.conns[s.clientPort]
	if !s.fromServer && s.syn && !s.ack {
		// A new connection from this port; whatever the port held before is over.
		c = &conn{accepted: s.at, idleStart: s.at}
		t.conns[s.clientPort] = c
		t.rec.CountAccepted()
		return
	}
	if c == nil {
		// The capture began after this connection did.
		c = &conn{idleStart: s.at}
		t.conns[s.clientPort] = c
	}
	if s.fromServer {
		t.fromServer(c, s)
	} else {
		t.fromClient(c, s)
	}
	if c.serverClosed && c.clientClosed || s.rst {
		delete(t.conns, s.clientPort)
	}
}

func (t *tracker) fromClient(c *conn, s segment) {
	if s.payload > 0 {
		switch {
		case c.serverClosed:
			if !c.late {
				c.late = true
				t.stats.LateRequests++
				t.reused(c, s)
			}
		case !c.pending:
			t.reused(c, s)
			c.requests++
			c.pending, c.pendingAt = true, s.at
			t.rec.CountExecution("")
		}
	}
	if s.fin && !c.clientClosed && !c.late && !c.idleClosed.IsZero() {
		// The client saw the idle close and closed its end, sending nothing first.
		t.stats.PeerCloses++
		t.stats.PeerCloseLag += s.at.Sub(c.idleClosed)
	}
	if (s.fin || s.rst) && !c.clientClosed {
		c.clientClosed = true
		if s.rst && !c.serverClosed {
			// A reset from the client ends the connection: the server sends no FIN.
			t.close(c, s, upstreams.ReasonPeer)
		}
	}
}

// reused hands OnReuse a request that begins with s, when its connection has carried a
// response before.
func (t *tracker) reused(c *conn, s segment) {
	if t.onReuse != nil && c.answered {
		t.onReuse(Reuse{ClientPort: s.clientPort, Answered: c.idleStart, Arrived: s.at})
	}
}

func (t *tracker) fromServer(c *conn, s segment) {
	if s.payload > 0 && !c.serverClosed {
		c.pending = false
		c.answered = true
		c.idleStart = s.at
	}
	if !(s.fin || s.rst) || c.serverClosed {
		return
	}
	if s.rst {
		t.stats.ServerRSTs++
	} else {
		t.stats.ServerFINs++
	}
	idle := s.at.Sub(c.idleStart)
	switch {
	case c.clientClosed:
		t.close(c, s, upstreams.ReasonPeer)
	case t.idleTimeout <= 0 || idle >= t.idleTimeout/2:
		// Idle long enough to be the idle timeout, or the timeout is unknown. A request
		// waiting here met the close: the race, from the server's side.
		if !s.rst && !c.pending {
			c.idleClosed = s.at // an idle close the client had sent nothing into
		}
		t.close(c, s, upstreams.ReasonIdle)
	default:
		t.close(c, s, upstreams.ReasonServer)
	}
}

// close records the connection's end as s shows it.
func (t *tracker) close(c *conn, s segment, reason string) {
	c.serverClosed = true
	r := upstreams.CloseRecord{
		RemotePort: s.clientPort, Accepted: c.accepted, IdleStart: c.idleStart, Closed: s.at,
		Reason: reason, Unread: c.pending && reason != upstreams.ReasonPeer, Requests: c.requests,
		Reset: s.rst && s.fromServer,
	}
	if r.Unread {
		t.stats.ClosesWithUnread++
		if reason == upstreams.ReasonIdle {
			t.stats.IdleUnread++
			t.stats.UnreadLead += s.at.Sub(c.pendingAt)
		}
	}
	if reason == upstreams.ReasonIdle && t.idleTimeout > 0 {
		r.Due = c.idleStart.Add(t.idleTimeout)
	}
	t.rec.Record(r)
}
