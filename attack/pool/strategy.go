package pool

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

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
	Name, Usage, Help string
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
func Parse(spec string) (*Spec, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, fmt.Errorf("strategy %q: empty (known: %s)", spec, names())
	}
	out := &Spec{}
	for _, part := range strings.Split(spec, "+") {
		name, args, _ := strings.Cut(strings.TrimSpace(part), ":")
		reg, ok := registry[name]
		if !ok {
			return nil, fmt.Errorf("strategy %q: unknown strategy %q (known: %s)", spec, name, names())
		}
		opts, err := parseOptions(args)
		if err != nil {
			return nil, fmt.Errorf("strategy %q: %s: %v (%s)", spec, name, err, reg.usage)
		}
		st, err := reg.build(opts)
		if uerr := opts.unused(); uerr != nil {
			err = uerr
		}
		if err != nil {
			return nil, fmt.Errorf("strategy %q: %s: %v (%s)", spec, name, err, reg.usage)
		}
		out.Parts = append(out.Parts, st)
	}
	for _, p := range out.Parts {
		if _, ok := p.(TransportMaker); ok && len(out.Parts) > 1 {
			return nil, fmt.Errorf("strategy %q: %s is a whole transport and cannot be composed with '+'", spec, p)
		}
	}
	return out, nil
}

// Behaviour returns what the spec does, for the race model.
func (s *Spec) Behaviour() Behaviour {
	var b Behaviour
	for _, p := range s.Parts {
		if m, ok := p.(Modeller); ok {
			m.Model(&b)
		}
	}
	return b
}

// Options are a strategy's "key=value,..." arguments. Each getter consumes its key;
// keys left over after the strategy is built are reported as unknown.
type Options struct {
	kv   map[string]string
	keys []string
}

func parseOptions(args string) (*Options, error) {
	o := &Options{kv: map[string]string{}}
	if args == "" {
		return o, nil
	}
	for _, f := range strings.Split(args, ",") {
		k, v, ok := strings.Cut(f, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("option %q: want key=value", f)
		}
		if _, dup := o.kv[k]; dup {
			return nil, fmt.Errorf("option %q given twice", k)
		}
		o.kv[k] = strings.TrimSpace(v)
		o.keys = append(o.keys, k)
	}
	return o, nil
}

func (o *Options) take(key string) (string, bool) {
	v, ok := o.kv[key]
	delete(o.kv, key)
	return v, ok
}

func (o *Options) unused() error {
	for _, k := range o.keys {
		if _, left := o.kv[k]; left {
			return fmt.Errorf("unknown option %q", k)
		}
	}
	return nil
}

// Duration returns the duration option key, def when absent. Negative values are refused;
// zero only when allowZero.
func (o *Options) Duration(key string, def time.Duration, allowZero bool) (time.Duration, error) {
	v, ok := o.take(key)
	if !ok {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s: invalid duration %q", key, v)
	}
	if d < 0 || (d == 0 && !allowZero) {
		return 0, fmt.Errorf("%s: must be > 0, got %s", key, v)
	}
	return d, nil
}

// Int returns the integer option key within [min, max], def when absent.
func (o *Options) Int(key string, def, min, max int) (int, error) {
	v, ok := o.take(key)
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		return 0, fmt.Errorf("%s: want a whole number from %d to %d, got %q", key, min, max, v)
	}
	return n, nil
}

// Enum returns the option key, which must be one of allowed; def when absent.
func (o *Options) Enum(key, def string, allowed ...string) (string, error) {
	v, ok := o.take(key)
	if !ok {
		return def, nil
	}
	for _, a := range allowed {
		if v == a {
			return v, nil
		}
	}
	return "", fmt.Errorf("%s: %q is not one of %s", key, v, strings.Join(allowed, ", "))
}
