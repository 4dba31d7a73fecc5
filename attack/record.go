package attack

import (
	"cmp"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/idlerace/idlerace/attack/pool"
	"github.com/idlerace/idlerace/results"
)

// Record is one request as the load saw it.
type Record struct {
	Seq uint64
	// Intended is when the load meant to send the request; Start when it did; End when
	// the response body was read to its end (or the request failed).
	Intended, Start, End time.Time
	// Gap is the idle gap this request was exposed to, -1 when it was not exposed to
	// the race (it could only have gone on a new connection).
	Gap   time.Duration
	Code  int
	Err   error
	Class pool.Class
	// Stale: the failure is the keep-alive race (reset or EOF on a reused connection).
	Stale  bool
	Reused bool
	// ClosingResponse: the response ended its connection (Connection: close), where the
	// client shows the response (not a client kind's library).
	ClosingResponse bool
	// FirstReused and FirstIdleAge describe the first attempt's connection: what the
	// request was exposed to, even when a retry then went on a new connection.
	FirstReused  bool
	FirstIdleAge time.Duration
	// FirstCheckout is when the first attempt got its connection and FirstPort that
	// connection's local port (zero for a client kind's lane, whose library does not say
	// when it checked out): with FirstIdleAge, when the client's gap began and ended.
	FirstCheckout time.Time
	FirstPort     int
	// Prime marks a request sent only to (re)open a lane's connection.
	Prime     bool
	IdleAge   time.Duration
	LocalPort int
	// Attempts counts connections the request was tried on (more than 1: retried).
	Attempts int
	BytesIn  int64
	BytesOut int64
	// Method and URL are what the request was ("" the load's one target's).
	Method, URL string
}

// Latency is measured from the intended send time, so that time spent waiting behind a
// slow request counts (no coordinated omission).
func (r *Record) Latency() time.Duration { return r.End.Sub(r.Intended) }

// Recorder aggregates the records of one cell. It keeps counters, the latency histogram,
// a bounded summary of the gaps the model needs and, per stale failure, the port and
// start time the server's log is matched against; every request streams to the vegeta encoder, if any, and is not
// kept, so a cell's memory does not grow with its length.
type Recorder struct {
	mu sync.Mutex
	// Name labels the vegeta results (their "attack" field).
	Name string
	enc  vegeta.Encoder
	// EncodeErr is the first error the encoder returned.
	EncodeErr error

	Requests, OK, Primes, PrimeFailures, Retries int64
	Failures                                     results.Failures
	Stale                                        int64
	Latency                                      *hdrhistogram.Histogram
	// Reused counts measured requests whose first attempt went on a reused connection,
	// Status the responses by class (2xx, 3xx, 4xx, 5xx).
	Reused int64
	Status results.StatusClasses
	// ClosingResponses counts responses that ended their connection: a server that
	// says Connection: close to every response leaves nothing to race.
	ClosingResponses int64
	// Gaps summarises the exposure gap of every request that had one, with whether it
	// failed stale or was retried; Unexposed counts the measured requests that had none.
	Gaps      Gaps
	Unexposed int64
	// Observer, when set, sees every record as it is added (live metrics).
	Observer Observer
	// StaleFailures keeps the first maxFailureRecords (64) stale failures, for tests and
	// for looking at, without their error (Class says what it was): a record with its
	// error chain was ~1 KiB, and a strategy that fails stale a few times a minute (watch,
	// stdlib) kept filling 256 of them for the whole of a 10-minute soak.
	StaleFailures []Record
	// StaleConns has every stale failure (up to maxKeptFailures, 7.2 MiB) as the 72 bytes
	// that matching it with the server's closes needs: which connection, by the client's
	// port, when the request started and ended, its gap. With OnStale set they go there instead,
	// and none is kept (a matcher that runs during the cell keeps only what it has not
	// matched yet).
	StaleConns []StaleConn
	OnStale    func(StaleConn)
	// Checkouts keeps the first maxCheckouts reuses of a connection, for the time the
	// wire saw between the server's response and the client's gap, and between the end
	// of the gap and the request (matrix pairs them by port).
	Checkouts []Checkout
	// FirstPrimeError is why the first priming request failed, if one did.
	FirstPrimeError error
	target, method  string
}

const (
	maxKeptFailures   = 100_000
	maxFailureRecords = 64
	// maxCheckouts bounds Recorder.Checkouts: 4,096 say a mean to a few µs (160 KiB).
	maxCheckouts = 4096
)

// Checkout is one reuse of an idle connection as the client timed it: the connection's
// local port, when the pool took it back idle (the gap's start) and when a request took
// it (the gap's end).
type Checkout struct {
	Port          int
	IdleSince, At time.Time
}

// StaleConn is a stale failure as the server's close log is searched for it.
type StaleConn struct {
	Start     time.Time // Record.Start
	End       time.Time // Record.End: a close after it cannot explain the failure
	LocalPort int       // Record.LocalPort
	// Gap is Record.Gap (-1 when not exposed); Gateway says the failure was a proxy's
	// 502, 503 or 504, which a proxy's own error can be too (matrix's matcher decides).
	Gap     time.Duration
	Gateway bool
}

// NewRecorder returns a recorder; enc may be nil.
func NewRecorder(name string, enc vegeta.Encoder) *Recorder {
	return &Recorder{Name: name, enc: enc, Latency: results.NewLatencyHistogram()}
}

// Observer sees every request of a cell as it is recorded, primes included.
type Observer interface {
	Observe(r *Record)
}

// Add counts one record.
func (rc *Recorder) Add(r Record) {
	if rc.Observer != nil {
		rc.Observer.Observe(&r)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if r.Prime {
		rc.Primes++
		if r.Err != nil {
			rc.PrimeFailures++
			if rc.FirstPrimeError == nil {
				rc.FirstPrimeError = r.Err
			}
		}
		return
	}
	rc.Requests++
	if r.FirstReused {
		rc.Reused++
		if r.FirstPort > 0 && !r.FirstCheckout.IsZero() && len(rc.Checkouts) < maxCheckouts {
			rc.Checkouts = append(rc.Checkouts, Checkout{Port: r.FirstPort, IdleSince: r.FirstCheckout.Add(-r.FirstIdleAge), At: r.FirstCheckout})
		}
	}
	if r.ClosingResponse {
		rc.ClosingResponses++
	}
	rc.Status.Add(r.Code)
	if r.Attempts > 1 {
		rc.Retries += int64(r.Attempts - 1)
	}
	results.RecordLatency(rc.Latency, r.Latency())
	if r.Gap >= 0 {
		rc.Gaps.Add(r.Gap, r.Stale, r.Attempts > 1)
	} else {
		rc.Unexposed++
	}
	if r.Err == nil {
		rc.OK++
	} else {
		switch r.Class {
		case pool.ResetWrite:
			rc.Failures.ResetWrite++
		case pool.ResetRead:
			rc.Failures.ResetRead++
		case pool.EOF:
			rc.Failures.EOF++
		case pool.Timeout:
			rc.Failures.Timeout++
		case pool.BadGateway:
			rc.Failures.BadGateway++
		default:
			rc.Failures.Other++
		}
		if r.Stale {
			rc.Stale++
			// A proxy's 502 is matched too: with the upstream's closes by time, not by the
			// load's port (matrix's closeMatcher behind a hop).
			switch sc := (StaleConn{Start: r.Start, End: r.End, LocalPort: r.LocalPort, Gap: r.Gap, Gateway: r.Class == pool.BadGateway}); {
			case rc.OnStale != nil:
				rc.OnStale(sc)
			case len(rc.StaleConns) < maxKeptFailures:
				rc.StaleConns = append(rc.StaleConns, sc)
			}
			if len(rc.StaleFailures) < maxFailureRecords {
				kept := r
				kept.Err = nil
				rc.StaleFailures = append(rc.StaleFailures, kept)
			}
		}
	}
	if rc.enc != nil && rc.EncodeErr == nil {
		rc.EncodeErr = rc.enc.Encode(rc.vegetaResult(&r))
	}
}

func (rc *Recorder) vegetaResult(r *Record) *vegeta.Result {
	res := &vegeta.Result{
		Attack:    rc.Name,
		Seq:       r.Seq,
		Code:      uint16(r.Code),
		Timestamp: r.Intended,
		Latency:   r.Latency(),
		BytesIn:   uint64(r.BytesIn),
		BytesOut:  uint64(r.BytesOut),
		Method:    cmp.Or(r.Method, rc.method),
		URL:       cmp.Or(r.URL, rc.target),
	}
	if r.Err != nil {
		res.Error = r.Err.Error()
	}
	return res
}
