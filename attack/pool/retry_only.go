package pool

import (
	"fmt"
	"net/http"
)

// retryOnly reuses blindly and replays a stale failure on a new connection, as Go's
// Transport (shouldRetryRequest), urllib3's Retry and most RPC clients do. It hides the
// race from the caller but not from the wire: the failure still happens, costs a round
// trip, and a request that met a close after the server executed it runs twice.
// methods=idempotent limits replays to GET, HEAD, OPTIONS, TRACE, PUT and DELETE (and
// requests with an Idempotency-Key header), as RFC 9110 and Go do; methods=all replays
// anything whose body can be sent again.
type retryOnly struct {
	max            int
	idempotentOnly bool
}

func init() {
	Register("retry-only", "retry-only[:max=N,methods=all|idempotent]",
		"reuse blindly; replay a stale failure on a new connection (default max=1, methods=all)",
		func(o *Options) (Strategy, error) {
			max, err := o.Int("max", 1, 1, 10)
			if err != nil {
				return nil, err
			}
			m, err := o.Enum("methods", "all", "all", "idempotent")
			return retryOnly{max: max, idempotentOnly: m == "idempotent"}, err
		})
}

func (r retryOnly) String() string {
	m := "all"
	if r.idempotentOnly {
		m = "idempotent"
	}
	return fmt.Sprintf("retry-only:max=%d,methods=%s", r.max, m)
}

func (r retryOnly) Retry(req *http.Request, err *Error, attempt int) bool {
	if attempt >= r.max {
		return false
	}
	return !r.idempotentOnly || idempotent(req)
}

// Model adds the retry to what the strategy it stands in front of does: a library that
// replays any method itself (libcurl) still does behind a retry of idempotent ones, and
// the union of the JDK's GET and HEAD with either set is that set.
func (r retryOnly) Model(b *Behaviour) {
	innerAll := b.Retries > 0 && !b.IdempotentOnly && b.RetryMethods == ""
	b.Retries = max(b.Retries, r.max)
	b.IdempotentOnly = r.idempotentOnly && !innerAll
	b.RetryMethods = ""
}

func idempotent(req *http.Request) bool {
	if Idempotent(req.Method) {
		return true
	}
	return req.Header.Get("Idempotency-Key") != "" || req.Header.Get("X-Idempotency-Key") != ""
}
