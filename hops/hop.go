// Package hops is what sits between the load and the upstream: a reverse proxy whose
// upstream pool is then the pool under test, and the latency path (the delay proxy, or
// netem's namespace around the upstream). A hop kind registers itself by name with the
// options it takes, named as the proxy names them (Toxiproxy's toxics are the model), and
// declares its properties; a cell's path is load → hops → upstream, composed from the
// upstream outwards.
package hops

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/idlerace/idlerace/attack/pool"
	"github.com/idlerace/idlerace/internal/spec"
)

// None is the spec of a path with no hop.
const None = "none"

// Hop is a running hop.
type Hop interface {
	Kind() string
	// Version is the proxy's own name for itself ("nginx/1.22.1").
	Version() string
	// URL is where the load sends its requests: "http://127.0.0.1:PORT".
	URL() string
	// Stats is what the hop counted of itself so far; after Close, in all.
	Stats() Stats
	// Close stops the hop and everything it started.
	Close() error
}

// Stats is a hop's own account.
type Stats struct {
	// Requests the hop answered, and of them those it answered 502, 503 or 504.
	Requests, BadGateway int64
	// UpstreamTries counts the hop's attempts on the upstream beyond one a request: its
	// own retries (nginx's proxy_next_upstream), which the caller never sees.
	UpstreamTries int64
}

// Config is what every hop is started with.
type Config struct {
	// Upstream is the next hop's URL, "http://127.0.0.1:PORT" ("" for a hop that
	// encloses the upstream: it starts first).
	Upstream string
	// Addr is where the hop listens ("" is a free loopback port).
	Addr string
	// Seed draws whatever the hop draws (the delay proxy's jitter).
	Seed uint64
}

// Properties are what a hop kind declares of itself, for the code that composes a
// cell's path (no switch on a kind's name there).
type Properties struct {
	// Pools says the hop is an HTTP proxy with a pool of its own to the next hop: the
	// pool under test. Its 502s are the cell's stale failures, matched to the upstream's
	// closes by time (no port links the load's connections to its own), and its kind is
	// offered as a --proxy.
	Pools bool
	// Encloses says the hop holds the upstream itself (netem's namespace): it starts
	// before the upstream, which listens through it (Enclosure), and no other hop can
	// sit between it and the upstream.
	Encloses bool
}

// PortMapper is a hop that knows which of its client-side connections each of its
// upstream-side ones carries: the upstream's closes are then matched by the load's port.
type PortMapper interface {
	ClientPort(upstreamSide int, accepted time.Time) (int, bool)
}

// Delays is a hop that delays what it carries, as the model takes it.
type Delays interface {
	// OneWay is its mean one-way delay of data, once the load is over (measured where
	// it can be: the delay proxy's own lateness counts).
	OneWay() time.Duration
	// FINLead is how much sooner, on average, a FIN crosses it than data.
	FINLead() time.Duration
}

// DelayOptions reads the options "delay" and "jitter" (durations, 0 by default) that
// the latency path's kinds take.
func DelayOptions(o *spec.Options) (delay, jitter time.Duration, err error) {
	if delay, err = o.Duration("delay", 0, true); err != nil {
		return 0, 0, err
	}
	jitter, err = o.Duration("jitter", 0, true)
	return delay, jitter, err
}

// Enclosure is a hop that holds the upstream (Properties.Encloses): the upstream
// listens through it and the load dials through it.
type Enclosure interface {
	Listen(network, addr string) (net.Listener, error)
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	// Inside runs f where the upstream is (a thread in the namespace), so that what f
	// opens (a packet capture of the upstream's interface) is opened there.
	Inside(f func()) error
}

// Kind is a registered hop kind.
type Kind struct {
	Name string
	// Summary says in a line what the kind is, for `idlerace strategies` and errors.
	Summary string
	// Options names the options the kind takes, for the error that meets another.
	Options []string
	// Props is what the kind declares of itself.
	Props Properties
	// Parse reads the kind's options (the spec after "name:"), consuming each it knows,
	// and returns a hop with them, ready to start.
	Parse func(o *spec.Options) (Parsed, error)
}

// Parsed is a hop kind with its options read.
type Parsed struct {
	// Start starts one hop.
	Start func(ctx context.Context, cfg Config) (Hop, error)
	// Behaviour is the hop's upstream pool as the model sees it, with these options:
	// the pool that races the upstream's idle close when the hop is in the path.
	Behaviour pool.Behaviour
}

var (
	mu    sync.RWMutex
	kinds = map[string]Kind{}
)

// Register makes a hop kind available by name; called from the kind's init. An empty
// name, a nil Parse or a name given twice panics.
func Register(k Kind) {
	if k.Name == "" || k.Parse == nil || k.Name == None {
		panic(fmt.Sprintf("hops: Register(%q): empty or reserved name, or nil Parse", k.Name))
	}
	mu.Lock()
	defer mu.Unlock()
	if _, dup := kinds[k.Name]; dup {
		panic(fmt.Sprintf("hops: Register(%q) called twice", k.Name))
	}
	kinds[k.Name] = k
}

// Kinds lists the proxy kinds' names (Properties.Pools), sorted: what --proxy takes.
func Kinds() []string {
	var out []string
	for _, k := range List() {
		out = append(out, k.Name)
	}
	return out
}

// List returns the proxy kinds (Properties.Pools), sorted by name.
func List() []Kind {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]Kind, 0, len(kinds))
	for _, k := range kinds {
		if k.Props.Pools {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, func(a, b Kind) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Usage is the kind's spec as a user writes it: "nginx[:keepalive=…,keepalive_timeout=…]".
func (k Kind) Usage() string {
	if len(k.Options) == 0 {
		return k.Name
	}
	return k.Name + "[:" + strings.Join(k.Options, "=…,") + "=…]"
}

// Spec is a parsed hop spec: "nginx:keepalive_timeout=4s".
type Spec struct {
	Raw   string
	Kind  string
	Props Properties
	Parsed
}

// IsNone reports whether the spec is the empty path.
func (s Spec) IsNone() bool { return s.Kind == "" || s.Kind == None }

// ErrUnknownKind is wrapped by Parse for a name no kind registered.
var ErrUnknownKind = errors.New("unknown proxy kind")

// Parse reads a proxy spec (--proxy, a matrix's proxies): "none", or a proxy kind's name
// with its options. An unknown kind or option is an error naming it and what is
// accepted.
func Parse(raw string) (Spec, error) { return parse(raw, true) }

// ParsePath reads the spec of any hop kind, the latency path's too ("delay:delay=2ms").
func ParsePath(raw string) (Spec, error) { return parse(raw, false) }

func parse(raw string, proxies bool) (Spec, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" || raw == None {
		return Spec{Raw: None, Kind: None}, nil
	}
	name, args, _ := strings.Cut(raw, ":")
	mu.RLock()
	k, ok := kinds[name]
	mu.RUnlock()
	if !ok || proxies && !k.Props.Pools {
		return Spec{}, fmt.Errorf("proxy %q: %w (known: %s)", raw, ErrUnknownKind, strings.Join(append([]string{None}, Kinds()...), ", "))
	}
	o, err := spec.Parse(args)
	if err != nil {
		return Spec{}, fmt.Errorf("proxy %q: %w", raw, err)
	}
	takes := fmt.Sprintf("(%s takes: %s)", name, strings.Join(k.Options, ", "))
	parsed, err := k.Parse(o)
	if err != nil {
		return Spec{}, fmt.Errorf("proxy %q: %w %s", raw, err, takes)
	}
	if err := o.Unused(); err != nil {
		return Spec{}, fmt.Errorf("proxy %q: %w %s", raw, err, takes)
	}
	return Spec{Raw: raw, Kind: name, Props: k.Props, Parsed: parsed}, nil
}

// Start starts the hop s names in front of cfg.Upstream.
func (s Spec) Start(ctx context.Context, cfg Config) (Hop, error) {
	if s.IsNone() || s.Parsed.Start == nil {
		return nil, fmt.Errorf("proxy %q: nothing to start", s.Raw)
	}
	h, err := s.Parsed.Start(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("proxy %s: %w", s.Raw, err)
	}
	return h, nil
}
