package attack

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/idlerace/idlerace/internal/ptimer"
	"github.com/idlerace/idlerace/internal/spec"
)

// Load is a load shape.
type Load interface {
	// String returns the canonical spec.
	String() string
	// Duration is how long the load runs at most for idle timeout T (the upstream's skew
	// models use it to place an idle period within the run).
	Duration(idleTimeout time.Duration) time.Duration
	// Run sends requests through env until the load is done, ctx ends or its request
	// budget is spent, and records each one in rec.
	Run(ctx context.Context, env *Env, rec *Recorder) error
}

type loadRegistration struct {
	name, usage, help string
	parse             func(o *spec.Options) (Load, error)
}

var loads = map[string]loadRegistration{}

// RegisterLoad adds a load shape under name; usage shows its options.
func RegisterLoad(name, usage, help string, parse func(o *spec.Options) (Load, error)) {
	if _, dup := loads[name]; dup {
		panic("attack: load registered twice: " + name)
	}
	loads[name] = loadRegistration{name: name, usage: usage, help: help, parse: parse}
}

// LoadInfo describes a registered load shape.
type LoadInfo struct {
	Name  string `json:"name"`
	Usage string `json:"usage"`
	Help  string `json:"help"`
}

// Loads lists the registered load shapes, sorted by name.
func Loads() []LoadInfo {
	var out []LoadInfo
	for _, r := range loads {
		out = append(out, LoadInfo{r.name, r.usage, r.help})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ParseLoad reads a load spec such as "sweep:lanes=32,duration=2s".
func ParseLoad(text string) (Load, error) {
	name, args, _ := strings.Cut(strings.TrimSpace(text), ":")
	reg, ok := loads[name]
	if !ok {
		var known []string
		for _, l := range Loads() {
			known = append(known, l.Name)
		}
		return nil, fmt.Errorf("load %q: unknown load %q (known: %s)", text, name, strings.Join(known, ", "))
	}
	o, err := spec.Parse(args)
	if err != nil {
		return nil, fmt.Errorf("load %q: %v (%s)", text, err, reg.usage)
	}
	l, err := reg.parse(o)
	if uerr := o.Unused(); uerr != nil {
		err = uerr
	}
	if err != nil {
		return nil, fmt.Errorf("load %q: %v (%s)", text, err, reg.usage)
	}
	return l, nil
}

// sleepUntil waits until t or until ctx ends; it reports whether t was reached, on
// ptimer: a load that wakes seldom (a lull between bursts).
func sleepUntil(ctx context.Context, t time.Time) bool {
	return ptimer.SleepUntil(ctx, t)
}

// preciseBelow is the wake-up rate of a load (per second) under which it sleeps on ptimer
// rather than on Go timers. Between wake-ups further apart than a couple of ms the runtime
// goes back to sleep in its netpoller, whose epoll_wait rounds to whole milliseconds: a
// Go timer then fires 0.5 ms late at p50, and a lane still asleep when the server's FIN
// arrives is woken by the FIN and sends at a gap the close chose (at T = 1 s, 48 lanes,
// blind on nginx measured 65.3% against a model of 60.0%; on ptimer 53.8% against 53.3%).
// Where the Ps run all the time, the runtime checks its timers at every scheduling point
// and fires them on time, while ptimer's wake-up must wait for a P: the builtin at T =
// 100 ms with 256 lanes (2,560 wake-ups a second) made 1,341–1,867 window probes a
// second on ptimer, 1,973–2,114 on Go timers.
const preciseBelow = 500

// sleeperFor is how a load that wakes rate times a second sleeps.
func sleeperFor(rate float64) func(context.Context, time.Time) bool {
	if rate < preciseBelow {
		return ptimer.SleepUntil
	}
	return ptimer.GoSleepUntil
}
