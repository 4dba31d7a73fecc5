package pool

import (
	"context"
	"net/http"
	"sync/atomic"
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
	// Attempts counts the sends it took (0 or 1: one); FirstReused is the first send's
	// Reused, when a retry in front of the library replayed it.
	Attempts    int
	FirstReused bool
}

// Composable is a whole transport that a Retrier may stand in front of (a client kind:
// its lane hands back each failure, classified, and the retry sends the request again).
type Composable interface {
	TransportMaker
	AcceptsRetry()
}

// retryingTimed puts a Retrier in front of a Timed transport: a stale failure the
// library hands back is sent again on the same lane, now, where the library has dropped
// the connection that failed, so the replay goes on a new one. It is the remedy users
// put around a client that does not retry (hyper's, the seed's third): the caller sees
// the replay's outcome; the cell counts the replay.
type retryingTimed struct {
	Timed
	r       Retrier
	retries atomic.Int64
}

func (t *retryingTimed) SendAt(ctx context.Context, req *http.Request, at time.Time) TimedResult {
	first := t.Timed.SendAt(ctx, req, at)
	res := first
	res.FirstReused = first.Reused
	for attempt := 0; res.Err != nil && res.Class.Stale(res.Reused) && ctx.Err() == nil; attempt++ {
		if !t.r.Retry(req, &Error{Class: res.Class, Reused: res.Reused, LocalPort: res.LocalPort, Err: res.Err}, attempt) {
			break
		}
		next, ok := rewind(req)
		if !ok {
			break
		}
		req = next
		t.retries.Add(1)
		res = t.Timed.SendAt(ctx, req, time.Time{})
		res.Start, res.FirstReused, res.Attempts = first.Start, first.Reused, attempt+2
	}
	return res
}

// RoundTrip sends through SendAt, so a load that does not time its own gaps gets the
// retry too.
func (t *retryingTimed) RoundTrip(req *http.Request) (*http.Response, error) {
	r := t.SendAt(req.Context(), req, time.Time{})
	if r.Err != nil {
		return nil, r.Err
	}
	return &http.Response{StatusCode: r.Status, Body: http.NoBody, Request: req, Header: http.Header{}}, nil
}

func (t *retryingTimed) Stats() Stats {
	s := t.Timed.Stats()
	s.Retries += t.retries.Load()
	return s
}
