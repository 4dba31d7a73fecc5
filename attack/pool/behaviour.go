package pool

import "time"

// Detection is how a strategy learns that the server closed an idle connection.
type Detection int

const (
	// DetectNone: the connection is reused without looking.
	DetectNone Detection = iota
	// DetectWatch: a background reader sees the FIN and drops the connection, a
	// scheduling delay (the notify lag) after it arrives.
	DetectWatch
	// DetectProbe: a non-blocking peek at checkout sees a FIN that has arrived.
	DetectProbe
)

// Behaviour is what the race model needs to know about a strategy spec. Strategies fill
// it in through Modeller; the zero value is blind.
type Behaviour struct {
	Detect Detection
	// ProbeAfter: the probe runs only on connections idle at least this long.
	ProbeAfter time.Duration
	// Margin > 0: never reuse a connection idle longer than T - Margin.
	Margin time.Duration
	// UseHint: T is the server's advertised Keep-Alive timeout when it sends one.
	UseHint bool
	// Retries: a stale failure is replayed up to this many times on a new connection,
	// when the request may be replayed (IdempotentOnly limits that to idempotent methods).
	Retries        int
	IdempotentOnly bool
}
