package pool

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// Behaviour is what the race model needs to know about a strategy spec. Strategies fill
// it in through Modeller; the zero value is blind.
type Behaviour struct {
	// Watch: a background reader drops an idle connection when the server's FIN
	// arrives, a notify lag later.
	Watch bool
	// WatchAtCheckout: a checkout wakes the watcher and waits for what it saw (idlerace's
	// own pool), so a FIN the runtime's poller has taken from the kernel counts even if
	// the watcher had not run yet. Go's Transport (stdlib) waits for its readLoop to run.
	// The model gives both the watcher's notify lag: the thread that takes the FIN from
	// epoll runs the watcher it readied, so the poller's lag is most of that wake-up.
	WatchAtCheckout bool
	// Probe: a non-blocking peek at checkout sees a FIN that has arrived, on connections
	// idle at least ProbeAfter.
	Probe      bool
	ProbeAfter time.Duration
	// Margin > 0: never reuse a connection idle longer than T - Margin.
	Margin time.Duration
	// UseHint: T is the server's advertised Keep-Alive timeout when it sends one.
	UseHint bool
	// HintOnly: the margin applies only when the server sends a hint; without one the
	// connection is reused however long it idled (Node's http.Agent).
	HintOnly bool
	// MaxIdle > 0: never reuse a connection idle longer than this, whatever T is (a
	// library's own idle timeout: hyper's pool_idle_timeout).
	MaxIdle time.Duration
	// HintReplacesMaxIdle: a server's hint replaces MaxIdle rather than adding to it
	// (undici's keepAliveTimeout gives way to Keep-Alive: timeout=N minus its threshold).
	HintReplacesMaxIdle bool
	// Retries: a stale failure is replayed up to this many times on a new connection,
	// when the request may be replayed (IdempotentOnly limits that to idempotent methods).
	Retries        int
	IdempotentOnly bool
	// RetryMethods, when set, are the only methods replayed, space-separated, in place of
	// IdempotentOnly's set (the JDK's HttpClient replays GET and HEAD alone).
	RetryMethods string
}

// Replays says whether the behaviour replays a stale failure of a request with method.
func (b Behaviour) Replays(method string) bool {
	if b.Retries <= 0 {
		return false
	}
	if b.RetryMethods != "" {
		return slices.Contains(strings.Fields(b.RetryMethods), method)
	}
	return !b.IdempotentOnly || Idempotent(method)
}

// Idempotent says whether method is idempotent by RFC 9110 (section 9.2.2); "" is GET.
func Idempotent(method string) bool {
	switch method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}
