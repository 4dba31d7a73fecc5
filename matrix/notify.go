package matrix

import (
	"sort"
	"sync"
	"time"

	"github.com/idlerace/idlerace/upstreams"
)

// watchClose is one idle watcher waking to the server's close.
type watchClose struct {
	port int
	at   time.Time
}

// maxWatchSamples bounds what one cell keeps: the mean settles long before.
const maxWatchSamples = 1 << 16

// watchLog collects a cell's watcher wake-ups (pool.Config.OnWatchClose).
type watchLog struct {
	mu     sync.Mutex
	closes []watchClose
}

func (w *watchLog) add(port int, at time.Time) {
	w.mu.Lock()
	if len(w.closes) < maxWatchSamples {
		w.closes = append(w.closes, watchClose{port, at})
	}
	w.mu.Unlock()
}

func (w *watchLog) all() []watchClose {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]watchClose(nil), w.closes...)
}

// notifyLag is the mean time from a FIN's arrival at the client to the watcher waking
// to it: each wake-up is matched with the server's last close of the same client port
// before it, and the FIN's trip (finPath: 0 on loopback, the delay proxy's d and
// lateness otherwise) is taken off. It is watch's race window on loopback: a checkout
// inside it still finds the connection idle, because Go's netpoller reports the
// checkout's wake-up deadline rather than the FIN the watcher has not run for yet.
// The model assumed 100µs, an idle machine's goroutine wake-up; measured here it is
// 30µs with 8 sweep lanes and 80-160µs with 64. The mean, not the median, because the
// window's width is what a request meets on average. Wake-ups with no close within
// maxLag before them are left out; n is how many were used.
//
// It underestimates under load: it averages the watchers that woke undisturbed, while
// the watcher a checkout races is delayed by that checkout's own burst of work on the
// same two cores. Watch, uniform:±10ms, 6 s, T = 100ms: with 8 sweep lanes 2-3 stale
// failures in 467 requests against ~1 predicted (0.43-0.64% vs 0.17-0.21%); with 64
// lanes about 4 times the prediction (1.1-1.4% vs 0.3%), although each failure lies
// inside the window the model draws (request 90-220µs after the close was due, 5-90µs
// after the FIN reached the socket).
func notifyLag(seen []watchClose, closes []upstreams.CloseRecord, finPath, maxLag time.Duration) (lag time.Duration, n int) {
	byPort := map[int][]time.Time{}
	for _, c := range closes {
		if !c.Closed.IsZero() {
			byPort[c.RemotePort] = append(byPort[c.RemotePort], c.Closed)
		}
	}
	for _, ts := range byPort {
		sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	}
	var sum time.Duration
	for _, w := range seen {
		ts := byPort[w.port]
		// The last close at or before the wake-up.
		i := sort.Search(len(ts), func(i int) bool { return ts[i].After(w.at) }) - 1
		if i < 0 {
			continue
		}
		d := w.at.Sub(ts[i]) - finPath
		if d > maxLag {
			continue
		}
		sum += max(d, 0)
		n++
	}
	if n == 0 {
		return 0, 0
	}
	return sum / time.Duration(n), n
}
