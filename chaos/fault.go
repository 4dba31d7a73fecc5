package chaos

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/idlerace/idlerace/internal/spec"
)

// Fault is a misbehaviour of a server beyond where its idle close lands: closing after the
// Nth response without saying so, restarting, going silent, resetting, closing slowly.
// Each fault is one file holding a typed struct (its parameters) that registers itself by
// name in init, as skew models do; the server under test (upstreams/builtin) reads the
// struct and does the work:
//
//	spec "close-after:n=3" --ParseFault--> registry["close-after"].parse("n=3") --> CloseAfter{N: 3}
//	                                                                                 |
//	upstreams.Config{Faults: []Fault{...}} --> builtin: after the 3rd response, FIN <-'
//
// A fault says what happens to bytes and sockets, never what a client should do about it.
type Fault interface {
	// String returns the canonical spec that ParseFault accepts, e.g. "close-after:n=3".
	String() string
}

// FaultInfo names a registered fault and its one-line usage.
type FaultInfo struct {
	Name  string
	Usage string
}

// MinFaultPeriod bounds how often a periodic fault (restart:every=D) may fire, so that a
// typo cannot turn a server into a busy loop of closes.
const MinFaultPeriod = time.Millisecond

type faultEntry struct {
	usage string
	parse func(arg string) (Fault, error)
}

var (
	faultMu  sync.RWMutex
	faultReg = map[string]faultEntry{}
)

// RegisterFault adds a fault; usage is one line for help and errors, e.g.
// "close-after:n=N (FIN right after the Nth response)". parse receives what follows
// "name:" ("" for the bare name). Registering an empty name, a name containing ':' or
// '+', a nil parse or a name twice panics.
func RegisterFault(name, usage string, parse func(arg string) (Fault, error)) {
	if name == "" || strings.ContainsAny(name, ":+") || parse == nil {
		panic(fmt.Sprintf("chaos: RegisterFault(%q): empty or invalid name or nil parse", name))
	}
	faultMu.Lock()
	defer faultMu.Unlock()
	if _, dup := faultReg[name]; dup {
		panic(fmt.Sprintf("chaos: RegisterFault(%q) called twice", name))
	}
	faultReg[name] = faultEntry{usage: usage, parse: parse}
}

// ParseFault parses "name" or "name:key=value,...", e.g. "rst", "close-after:n=3",
// "restart:every=2s", "silent-death:after=5", "slow-close:delay=20ms". Surrounding spaces
// are ignored. Errors are one line: `fault "SPEC": what was wrong (usage)`.
func ParseFault(spec string) (Fault, error) {
	name, arg, _ := strings.Cut(strings.TrimSpace(spec), ":")
	faultMu.RLock()
	e, ok := faultReg[name]
	faultMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("fault %q: unknown fault %q (known: %s)", spec, name, strings.Join(faultNames(), ", "))
	}
	f, err := e.parse(arg)
	if err != nil {
		return nil, fmt.Errorf("fault %q: %v (%s)", spec, err, e.usage)
	}
	return f, nil
}

// Faults lists registered faults sorted by name.
func Faults() []FaultInfo {
	faultMu.RLock()
	defer faultMu.RUnlock()
	out := make([]FaultInfo, 0, len(faultReg))
	for name, e := range faultReg {
		out = append(out, FaultInfo{Name: name, Usage: e.usage})
	}
	slices.SortFunc(out, func(a, b FaultInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// FaultName returns the registered name of f: its spec up to the first ':'.
func FaultName(f Fault) string {
	name, _, _ := strings.Cut(f.String(), ":")
	return name
}

func faultNames() []string {
	infos := Faults()
	names := make([]string, len(infos))
	for i, fi := range infos {
		names[i] = fi.Name
	}
	return names
}

// faultOptions parses a fault's "key=value,..." argument with the project's spec parser.
func faultOptions(arg string) (*spec.Options, error) {
	return spec.Parse(arg)
}

// faultCount reads the required whole-number option key (1 .. 1<<30).
func faultCount(o *spec.Options, key string) (int, error) {
	if !o.Has(key) {
		return 0, fmt.Errorf("%s is required", key)
	}
	return o.Int(key, 0, 1, 1<<30)
}

// faultDuration reads the required duration option key, within [least, MaxSkew].
func faultDuration(o *spec.Options, key string, least time.Duration) (time.Duration, error) {
	if !o.Has(key) {
		return 0, fmt.Errorf("%s is required", key)
	}
	d, err := o.Duration(key, 0, false)
	if err != nil {
		return 0, err
	}
	if d < least || d > MaxSkew {
		return 0, fmt.Errorf("%s: must be within [%v, %v], got %v", key, least, MaxSkew, d)
	}
	return d, nil
}
