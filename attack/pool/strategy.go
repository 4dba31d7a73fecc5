package pool

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/idlerace/idlerace/internal/spec"
)

// Options are a strategy's "key=value,..." arguments (see internal/spec).
type Options = spec.Options

// Strategy is one reuse policy. It implements any of the hook interfaces below; the pool
// calls the hooks of every strategy in a spec, in the order the spec names them.
type Strategy interface {
	// String returns the canonical spec of this strategy with its options.
	String() string
}

// Checker vets an idle connection at checkout; returning false drops it and the pool
// tries the next idle connection or dials.
type Checker interface {
	Check(c *Conn, now time.Time) (keep bool, reason string)
}

// Watcher asks for a background read on every idle connection, so that a FIN or RST from
// the server removes the connection from the pool as soon as it arrives.
type Watcher interface {
	Watch()
}

// Observer sees every response before the caller does.
type Observer interface {
	Observe(c *Conn, resp *http.Response)
}

// CloseObserver sees the idle age at which a watcher found each idle connection closed
// by the server (EOF or RST), and the T the client was configured with, to learn where
// the server's close lies.
type CloseObserver interface {
	ObserveClose(idleAge, idleTimeout time.Duration)
}

// Retrier decides whether a failed attempt is replayed on a new connection. attempt
// counts replays already made (0 for the first failure).
type Retrier interface {
	Retry(req *http.Request, err *Error, attempt int) bool
}

// TransportMaker replaces the pool with a whole transport of its own (stdlib). It cannot
// be composed with other strategies.
type TransportMaker interface {
	NewTransport(cfg Config) Transport
}

// Modeller tells the race model what a strategy does, so that idlerace can print the
// predicted failure rate beside the measured one.
type Modeller interface {
	Model(b *Behaviour)
}

type registration struct {
	name, usage, help string
	build             func(opts *Options) (Strategy, error)
}

var registry = map[string]registration{}

// Register adds a strategy under name. usage shows its options ("timeout-margin:margin=D"),
// help is one line for `idlerace strategies`. build reads its options from opts.
func Register(name, usage, help string, build func(opts *Options) (Strategy, error)) {
	if _, dup := registry[name]; dup {
		panic("pool: strategy registered twice: " + name)
	}
	registry[name] = registration{name: name, usage: usage, help: help, build: build}
}

// Info describes a registered strategy.
type Info struct {
	Name  string `json:"name"`
	Usage string `json:"usage"`
	Help  string `json:"help"`
}

// Strategies lists every registered strategy, sorted by name.
func Strategies() []Info {
	out := make([]Info, 0, len(registry))
	for _, r := range registry {
		out = append(out, Info{Name: r.name, Usage: r.usage, Help: r.help})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func names() string {
	var ns []string
	for _, s := range Strategies() {
		ns = append(ns, s.Name)
	}
	return strings.Join(ns, ", ")
}

// Spec is a parsed strategy spec: one or more strategies joined by '+'.
type Spec struct {
	Parts []Strategy
}

// String returns the canonical spec.
func (s *Spec) String() string {
	parts := make([]string, len(s.Parts))
	for i, p := range s.Parts {
		parts[i] = p.String()
	}
	return strings.Join(parts, "+")
}

// Parse reads a spec such as "read-probe+retry-only:max=1" or "timeout-margin:margin=20ms".
func Parse(specText string) (*Spec, error) {
	if strings.TrimSpace(specText) == "" {
		return nil, fmt.Errorf("strategy %q: empty (known: %s)", specText, names())
	}
	out := &Spec{}
	for _, part := range strings.Split(specText, "+") {
		name, args, _ := strings.Cut(strings.TrimSpace(part), ":")
		reg, ok := registry[name]
		if !ok {
			return nil, fmt.Errorf("strategy %q: unknown strategy %q (known: %s)", specText, name, names())
		}
		opts, err := spec.Parse(args)
		if err != nil {
			return nil, fmt.Errorf("strategy %q: %s: %v (%s)", specText, name, err, reg.usage)
		}
		st, err := reg.build(opts)
		if uerr := opts.Unused(); uerr != nil {
			err = uerr
		}
		if err != nil {
			return nil, fmt.Errorf("strategy %q: %s: %v (%s)", specText, name, err, reg.usage)
		}
		out.Parts = append(out.Parts, st)
	}
	for _, p := range out.Parts {
		if _, ok := p.(TransportMaker); !ok || len(out.Parts) == 1 {
			continue
		}
		// A client kind takes a retry in front of it (hyper+retry-only), nothing else:
		// the library owns its pool, so checks, observers and watchers have nothing to
		// hook into.
		if _, ok := p.(Composable); ok && len(out.Parts) == 2 {
			other := out.Parts[0]
			if other == p {
				other = out.Parts[1]
			}
			if onlyRetrier(other) {
				continue
			}
			return nil, fmt.Errorf("strategy %q: %s takes only a retry (retry-only) in front of it", specText, p)
		}
		return nil, fmt.Errorf("strategy %q: %s is a whole transport and cannot be composed with '+'", specText, p)
	}
	return out, nil
}

// Behaviour returns what the spec does, for the race model. A whole transport's (a
// client kind's library) comes first, so that a retry in front of it adds to it.
func (s *Spec) Behaviour() Behaviour {
	var b Behaviour
	parts := slices.Clone(s.Parts)
	slices.SortStableFunc(parts, func(x, y Strategy) int {
		_, xt := x.(TransportMaker)
		_, yt := y.(TransportMaker)
		switch {
		case xt && !yt:
			return -1
		case yt && !xt:
			return 1
		}
		return 0
	})
	for _, p := range parts {
		if m, ok := p.(Modeller); ok {
			m.Model(&b)
		}
	}
	return b
}

// onlyRetrier says whether s does nothing but decide replays (retry-only).
func onlyRetrier(s Strategy) bool {
	_, r := s.(Retrier)
	_, c := s.(Checker)
	_, o := s.(Observer)
	_, w := s.(Watcher)
	_, t := s.(TransportMaker)
	return r && !c && !o && !w && !t
}
