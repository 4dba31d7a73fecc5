package matrix

import (
	"testing"
	"time"

	"github.com/idlerace/idlerace/upstreams"
)

func TestNotifyLagMatchesWakeUpsToTheLastCloseOfTheirPort(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := time.Millisecond
	closes := []upstreams.CloseRecord{
		{RemotePort: 40001, Closed: t0},
		{RemotePort: 40001, Closed: t0.Add(500 * ms)}, // the port reused later
		{RemotePort: 40002, Closed: t0.Add(10 * ms)},
		{RemotePort: 40003}, // never closed by the server
	}
	seen := []watchClose{
		{40001, t0.Add(2*ms + 300*time.Microsecond)},   // 0.3ms after the FIN's 2ms trip
		{40001, t0.Add(502*ms + 500*time.Microsecond)}, // matched with the second close: 0.5ms
		{40002, t0.Add(11 * ms)},                       // 1ms after the close: -1ms trip left, counts as 0
		{40003, t0.Add(ms)},                            // no close: left out
		{40004, t0.Add(ms)},                            // unknown port: left out
		{40002, t0.Add(10*ms + time.Second)},           // a close a second before: left out
	}
	lag, n := notifyLag(seen, closes, 2*ms, 100*ms)
	if n != 3 {
		t.Fatalf("used %d wake-ups, want 3", n)
	}
	// (0.3 + 0.5 + 0) / 3 ms
	if want := 800 * time.Microsecond / 3; lag != want {
		t.Fatalf("lag %v, want %v", lag, want)
	}
	if lag, n := notifyLag(nil, closes, 0, time.Second); lag != 0 || n != 0 {
		t.Fatalf("no wake-ups: lag %v from %d", lag, n)
	}
}

func TestMedianLagsOfIdleCloses(t *testing.T) {
	due := time.Unix(1000, 0)
	us := time.Microsecond
	rec := func(reason string, stop, closed time.Duration) upstreams.CloseRecord {
		r := upstreams.CloseRecord{Reason: reason, Due: due, Closed: due.Add(closed)}
		if stop >= 0 {
			r.Stopped = due.Add(stop)
		}
		return r
	}
	closes := []upstreams.CloseRecord{
		rec(upstreams.ReasonIdle, 50*us, 60*us),
		rec(upstreams.ReasonIdle, 90*us, 100*us),
		rec(upstreams.ReasonIdle, 900*us, 5000*us), // a late wake-up: not the median
		rec(upstreams.ReasonPeer, 0, 9000*us),      // not an idle close
		rec(upstreams.ReasonIdle, -1, 80*us),       // reading stop unknown
	}
	closeLag, stopLag := medianLags(closes)
	if closeLag != 100*us || stopLag != 90*us {
		t.Fatalf("close lag %v, stop lag %v; want 100µs and 90µs", closeLag, stopLag)
	}
	if c, s := medianLags(nil); c != 0 || s != 0 {
		t.Fatalf("no closes: %v %v", c, s)
	}
}
