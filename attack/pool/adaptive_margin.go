package pool

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"
)

// adaptiveMargin learns the server's real idle close instead of trusting a configured
// or advertised T: it watches idle connections (as watch does) and takes the idle age
// at which each watcher saw the server's FIN or RST as one sample of the close. Once it
// has learn samples it never reuses a connection idle longer than a conservative
// estimate, the 5% quantile less the spread down to it from the median (at most a quarter of it) and a guard of
// max(1 ms, 1%); before that it falls back to the configured T. No client library does
// this; it exists to show what learning from the wire buys over a fixed margin.
// Window left open: while it learns, watch's; after, a server whose close moves earlier
// than what it learned (it no longer sees closes once it gives connections up first),
// and a round trip too long for the guard (it learns the close as the client sees it).
type adaptiveMargin struct {
	learn int

	mu      sync.Mutex
	samples []time.Duration // the last maxAdaptiveSamples closes, as idle ages
	next    int
	learned bool
	limit   time.Duration // the estimate, once learned
	// responses counts responses seen, first when the first was; learnedAfter and
	// learnedIn are the responses and the time it took to learn.
	responses    int64
	first        time.Time
	learnedAfter int64
	learnedIn    time.Duration
}

const maxAdaptiveSamples = 256

func init() {
	Register("adaptive-margin", "adaptive-margin[:learn=N]",
		"learn the server's real idle close from the FINs its watchers see (learn=N closes, default 8); never reuse past a low quantile of it less its spread",
		func(o *Options) (Strategy, error) {
			n, err := o.Int("learn", 8, 2, maxAdaptiveSamples)
			return &adaptiveMargin{learn: n}, err
		})
}

func (a *adaptiveMargin) String() string {
	if a.learn == 8 {
		return "adaptive-margin"
	}
	return fmt.Sprintf("adaptive-margin:learn=%d", a.learn)
}

func (a *adaptiveMargin) Watch() {}

// Observe counts responses, to say how many it took to learn.
func (a *adaptiveMargin) Observe(*Conn, *http.Response) {
	a.mu.Lock()
	if a.responses == 0 {
		a.first = time.Now()
	}
	a.responses++
	a.mu.Unlock()
}

// ObserveClose takes one idle close as the watcher saw it. A close within a tenth of T
// of the response (or 1 ms when T is unknown) is not the idle timer: a server that
// closes after N requests, restarts or reloads does that, and one such sample would
// pull the estimate to nothing.
func (a *adaptiveMargin) ObserveClose(idleAge, idleTimeout time.Duration) {
	if idleAge < max(time.Millisecond, idleTimeout/10) {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.samples) < maxAdaptiveSamples {
		a.samples = append(a.samples, idleAge)
	} else {
		a.samples[a.next] = idleAge
		a.next = (a.next + 1) % maxAdaptiveSamples
	}
	if len(a.samples) < a.learn {
		return
	}
	if !a.learned {
		a.learned = true
		a.learnedAfter = a.responses
		if !a.first.IsZero() {
			a.learnedIn = time.Since(a.first)
		}
	}
	a.limit = estimateClose(a.samples)
}

// estimateClose is the conservative estimate of where the closes start: q05 less the
// spread down to it from the median (at most a quarter of q05, so that one early outlier
// cannot take the estimate below itself) less max(1 ms, 1% of q05), at least 0.
func estimateClose(samples []time.Duration) time.Duration {
	s := slices.Clone(samples)
	slices.Sort(s)
	q := func(p float64) time.Duration { return s[int(p*float64(len(s)-1))] }
	lo, mid := q(0.05), q(0.5)
	return max(0, lo-min(mid-lo, lo/4)-max(time.Millisecond, lo/100))
}

func (a *adaptiveMargin) Check(c *Conn, now time.Time) (bool, string) {
	a.mu.Lock()
	limit, learned := a.limit, a.learned
	a.mu.Unlock()
	age := c.IdleAge(now)
	if !learned {
		return withinMargin(age, c.IdleTimeout, 0)
	}
	if age <= limit {
		return true, ""
	}
	return false, fmt.Sprintf("idle %s > learned close %s", age, limit)
}

// Learned says what it learned: the closes it saw, the estimate, and the responses and
// time it took (ok false: not yet).
func (a *adaptiveMargin) Learned() (closes int, limit time.Duration, afterResponses int64, took time.Duration, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.samples), a.limit, a.learnedAfter, a.learnedIn, a.learned
}

// Model: a watcher throughout; past learning, a library-style idle limit at the
// estimate (the cells it runs in learn within their first idle periods).
func (a *adaptiveMargin) Model(b *Behaviour) {
	b.Watch, b.WatchAtCheckout = true, true
	a.mu.Lock()
	if a.learned {
		b.MaxIdle = max(a.limit, 1) // MaxIdle 0 would mean no limit
	}
	a.mu.Unlock()
}
