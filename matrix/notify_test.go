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
