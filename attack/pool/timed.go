package pool

import (
	"context"
	"net/http"
	"time"
)

// Timed is a transport that sends a request itself at a given instant and says what its
// library did: a client kind's agent lane (package attack/agent). A load hands it the
// intended send time instead of sleeping until then, so that the gap is timed inside the
// client's own process, not across a pipe.
type Timed interface {
	Transport
	SendAt(ctx context.Context, req *http.Request, at time.Time) TimedResult
}

// TimedResult is one request as a Timed transport saw it.
type TimedResult struct {
	Status  int
	BytesIn int64
	// Start is when the library was handed the request, End when the response's last
	// byte was read or the request failed.
	Start, End time.Time
	// Reused: the library sent it on a pooled connection (false where it does not say).
	Reused    bool
	LocalPort int
	// Err is the library's own error (its text kept), Class idlerace's class for it.
	Err   error
	Class Class
}
