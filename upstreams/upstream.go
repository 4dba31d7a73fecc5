package upstreams

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/idlerace/idlerace/chaos"
)

// Config describes the server under test. Kinds that cannot honour a field (a real
// server has no skew model) say so in their Start error rather than ignoring it.
//
// The real kinds (gonet, nginx, uvicorn, node) honour IdleTimeout (within the server's
// own unit), ResponseBytes and Addr, and MaxRequests, ServiceTime and Advertise where the
// server has such a setting; each kind's package doc says which. For them Advertise 0
// means the server's own behaviour (nginx and Go send no Keep-Alive header, Node sends
// whole seconds), not IdleTimeout.
type Config struct {
	IdleTimeout time.Duration   // T: the server closes a connection idle for T+s
	Skew        chaos.Skew      // nil means none
	Seed        uint64          // seeds the skew draws, so a seed repeats the same skews
	Close       chaos.CloseMode // "" means fin
	// Advertise is the value sent as Keep-Alive: timeout=N. 0 means IdleTimeout; < 0 means
	// send no Keep-Alive header. It may differ from IdleTimeout (nginx's two-parameter
	// keepalive_timeout).
	Advertise time.Duration
	// MaxRequests is 0 for unlimited; else the Nth response carries Connection: close and
	// the server closes after it.
	MaxRequests   int
	ResponseBytes int           // body size of every response (0 means the default, 2)
	ServiceTime   time.Duration // sleep before responding
	// RunDuration scales progress for skew models: progress = time since Start / RunDuration
	// (0: progress is always 0).
	RunDuration time.Duration
	Addr        string // listen address, default "127.0.0.1:0"; a non-loopback address is an error
	// Listen, when set, makes the server's listener instead of net.Listen: the netem
	// latency path passes a network namespace's, so the server lives behind its
	// delayed loopback. Only the in-process builtin kind honours it.
	Listen func(network, addr string) (net.Listener, error)
	// Faults are misbehaviours beyond skew (chaos.ParseFault): close-after, restart,
	// silent-death, rst, slow-close. At most one of each; only the builtin kind injects
	// them.
	Faults []chaos.Fault
}

// DefaultAddr is where a server listens when Config.Addr is empty.
const DefaultAddr = "127.0.0.1:0"

// DefaultResponseBytes is the body size when Config.ResponseBytes is 0.
const DefaultResponseBytes = 2

// Validate reports the first field of c that no kind can honour, naming the field.
func (c Config) Validate() error {
	switch {
	case c.IdleTimeout <= 0:
		return fmt.Errorf("upstream config: IdleTimeout must be > 0, got %v", c.IdleTimeout)
	case c.MaxRequests < 0:
		return fmt.Errorf("upstream config: MaxRequests must be >= 0, got %d", c.MaxRequests)
	case c.ResponseBytes < 0:
		return fmt.Errorf("upstream config: ResponseBytes must be >= 0, got %d", c.ResponseBytes)
	case c.ServiceTime < 0:
		return fmt.Errorf("upstream config: ServiceTime must be >= 0, got %v", c.ServiceTime)
	case c.RunDuration < 0:
		return fmt.Errorf("upstream config: RunDuration must be >= 0, got %v", c.RunDuration)
	}
	switch c.Close {
	case "", chaos.CloseFIN, chaos.CloseRST:
	default:
		return fmt.Errorf("upstream config: Close %q: unknown (known: fin, rst)", string(c.Close))
	}
	if err := CheckLoopback(c.Addr); err != nil {
		return fmt.Errorf("upstream config: Addr: %w", err)
	}
	seen := map[string]bool{}
	for i, f := range c.Faults {
		if f == nil {
			return fmt.Errorf("upstream config: Faults[%d]: nil", i)
		}
		name := chaos.FaultName(f)
		if seen[name] {
			return fmt.Errorf("upstream config: Faults[%d] %q: %s given twice", i, f.String(), name)
		}
		seen[name] = true
	}
	return nil
}

// CheckLoopback returns an error unless addr ("host:port"; "" means DefaultAddr) names a
// loopback IP (127.0.0.0/8 or ::1) or "localhost". idlerace never listens elsewhere.
func CheckLoopback(addr string) error {
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: %v", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%q: not a loopback address (want 127.0.0.0/8, ::1 or localhost)", addr)
}

// Upstream is a running server under test.
type Upstream interface {
	Kind() string
	// Version names the server software as it reported itself, e.g. "nginx/1.22.1",
	// "uvicorn/0.17.6 (CPython 3.11.2, h11 0.14.0)", "idlerace-builtin".
	Version() string
	URL() string           // "http://127.0.0.1:PORT"
	Stats() Stats          // counters so far; safe to call at any time
	Closes() []CloseRecord // every close the server made, in order of close time; nil if it cannot see them
	Close() error          // stop accepting, close every connection, wait for all goroutines
}

// CloseStreamer is an Upstream that can hand each close to f as it makes it, instead of
// keeping it for Closes (see Recorder.StreamCloses): how a cell of any length matches
// the client's failures to the server's closes without keeping either.
type CloseStreamer interface {
	StreamCloses(f func(CloseRecord))
}

// ExecutionRememberer is an Upstream whose duplicate count can be told how long a request
// lives (see Recorder.RememberExecutions), so that a long cell's server forgets the ids
// no retry can bring back.
type ExecutionRememberer interface {
	RememberExecutions(d time.Duration)
}

// Stats is the server's own count of what happened. The JSON names match the server
// block of summary.json where they overlap.
type Stats struct {
	Accepted         int64 `json:"accepted"`
	IdleCloses       int64 `json:"idle_closes"`
	ClosesWithUnread int64 `json:"closes_with_unread"`
	Executed         int64 `json:"executed"`
	Duplicates       int64 `json:"duplicates"`
	// CloseLate is how late idle closes landed after their due time (microseconds),
	// p50/p99/max.
	CloseLateP50US int64 `json:"close_late_p50_us"`
	CloseLateP99US int64 `json:"close_late_p99_us"`
	CloseLateMaxUS int64 `json:"close_late_max_us"`
}

// Reasons a server closed a connection (CloseRecord.Reason).
const (
	ReasonIdle        = "idle"         // idle for T+s
	ReasonMaxRequests = "max-requests" // served MaxRequests responses
	ReasonPeer        = "peer"         // the client closed, reset, or asked for Connection: close
	ReasonShutdown    = "shutdown"     // Upstream.Close
	ReasonError       = "error"        // a malformed request, a timeout reading one, a failed write
	ReasonCloseAfter  = "close-after"  // fault close-after: FIN after the Nth response, unannounced
	ReasonRestart     = "restart"      // fault restart: every connection closed at once
	// ReasonServer is a close the server made, seen on the wire, that was not idle for
	// half the timeout: max requests, Connection: close or a fault look alike there.
	ReasonServer = "server"
)

// CloseRecord is one connection as the server closed it.
type CloseRecord struct {
	RemotePort int       // the client's local port
	Accepted   time.Time // when accept returned
	IdleStart  time.Time // when the last response left (its last write; or accept)
	// Due is IdleStart + T + s. It is set for idle closes and for any close that happened
	// while the connection was idle (peer, shutdown); zero otherwise.
	Due time.Time
	// Stopped is when the server stopped reading the idle connection: its wait for a
	// request ended with none. A request that arrived before it was served; one that
	// arrived between it and Closed met the close (Unread). Zero when unknown.
	Stopped  time.Time
	Closed   time.Time // when close() was called
	Reason   string    // "idle", "max-requests", "peer", "shutdown", "error", "close-after", "restart"
	Unread   bool      // request bytes were waiting when the server closed
	Requests int       // requests read on the connection
	Skew     time.Duration
	// Reset is a close the wire saw as a RST from the server, not a FIN (Linux resets
	// when a socket is closed with bytes unread). Only the wire view sets it.
	Reset bool
}

// Properties are what a kind declares of itself, so that the code composing a cell asks
// them rather than switching on the kind's name.
type Properties struct {
	// DrawsSkews says the kind draws each connection's timeout from Config.Skew (the
	// builtin). A kind that does not is a real server with one configured timeout: a
	// cell's skew can only offset it (none or offset:D), and its closes are measured
	// rather than known.
	DrawsSkews bool
	// Listens says the kind makes its listener with Config.Listen, so that it can run
	// inside a netem namespace.
	Listens bool
}

type kind struct {
	props Properties
	start func(ctx context.Context, cfg Config) (Upstream, error)
}

var (
	kindsMu sync.RWMutex
	kinds   = map[string]kind{}
)

// Register makes an upstream kind available to Start, with its properties. It is called
// from the kind's init; registering an empty name, a nil start or a name twice panics.
func Register(name string, props Properties, start func(ctx context.Context, cfg Config) (Upstream, error)) {
	if name == "" || start == nil {
		panic(fmt.Sprintf("upstreams: Register(%q): empty kind or nil start", name))
	}
	kindsMu.Lock()
	defer kindsMu.Unlock()
	if _, dup := kinds[name]; dup {
		panic(fmt.Sprintf("upstreams: Register(%q) called twice", name))
	}
	kinds[name] = kind{props: props, start: start}
}

// PropertiesOf returns what a registered kind declared of itself.
func PropertiesOf(name string) (Properties, bool) {
	kindsMu.RLock()
	defer kindsMu.RUnlock()
	k, ok := kinds[name]
	return k.props, ok
}

// RegisterStart registers a kind by its own Start, which returns the kind's server type:
// a failed start becomes a nil Upstream, never a typed nil in the interface.
func RegisterStart[S Upstream](kind string, props Properties, start func(ctx context.Context, cfg Config) (S, error)) {
	Register(kind, props, func(ctx context.Context, cfg Config) (Upstream, error) {
		s, err := start(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return s, nil
	})
}

// Start starts a server of the given kind. ctx bounds the server's life as well as its
// start: when ctx is done the server shuts down as if Close were called.
func Start(ctx context.Context, kind string, cfg Config) (Upstream, error) {
	kindsMu.RLock()
	k, ok := kinds[kind]
	kindsMu.RUnlock()
	if !ok {
		known := Kinds()
		if len(known) == 0 {
			return nil, fmt.Errorf("upstream %q: unknown kind (none registered; import upstreams/builtin)", kind)
		}
		return nil, fmt.Errorf("upstream %q: unknown kind (known: %s)", kind, strings.Join(known, ", "))
	}
	u, err := k.start(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", kind, err)
	}
	if u == nil {
		return nil, errors.New("upstream " + kind + ": start returned no server")
	}
	return u, nil
}

// Kinds lists registered kinds, sorted.
func Kinds() []string {
	kindsMu.RLock()
	defer kindsMu.RUnlock()
	out := make([]string, 0, len(kinds))
	for k := range kinds {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
