package chaos

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

// Skew draws the keep-alive skew s for one idle period: actual close time minus T.
// Negative s means the server closes earlier than the client believes.
type Skew interface {
	// Draw returns s for an idle period that begins at progress p of the run (0 = start,
	// 1 = end; values outside [0,1] are clamped). Only drift uses p.
	Draw(rng *rand.Rand, progress float64) time.Duration
	// CDF returns P(s <= x) for an idle period whose start is uniform over the run.
	CDF(x time.Duration) float64
	// String returns the canonical spec that ParseSkew accepts, e.g. "uniform:±10ms".
	String() string
}

// SkewModel names a registered skew model and its one-line usage.
type SkewModel struct {
	Name  string `json:"name"`
	Usage string `json:"usage"`
}

// MaxSkew bounds every duration a skew spec may hold, so that T+s and the models'
// arithmetic can never overflow. A skew of a day is far beyond any idle timeout in use.
const MaxSkew = 24 * time.Hour

type skewEntry struct {
	usage string
	parse func(arg string) (Skew, error)
}

var (
	skewMu     sync.RWMutex
	skewModels = map[string]skewEntry{}
)

// RegisterSkew adds a model; usage is one line for help and errors, e.g.
// "uniform:±D (also uniform:D)". parse receives what follows "name:" ("" when the spec
// is the bare name) and returns an error that names the bad value and what is accepted.
// Registering an empty name, a name containing ':', a nil parse or a name twice panics:
// those are programming errors in an init function.
func RegisterSkew(name, usage string, parse func(arg string) (Skew, error)) {
	if name == "" || strings.Contains(name, ":") || parse == nil {
		panic(fmt.Sprintf("chaos: RegisterSkew(%q): empty or invalid name or nil parse", name))
	}
	skewMu.Lock()
	defer skewMu.Unlock()
	if _, dup := skewModels[name]; dup {
		panic(fmt.Sprintf("chaos: RegisterSkew(%q) called twice", name))
	}
	skewModels[name] = skewEntry{usage: usage, parse: parse}
}

// ParseSkew parses "name" or "name:arg", e.g. "none", "offset:-5ms", "uniform:±10ms",
// "normal:mean=-2ms,sd=3ms", "drift:from=0,to=-20ms". Surrounding spaces are ignored.
// Errors are one line of the form `skew "SPEC": what was wrong (what is accepted)`.
func ParseSkew(spec string) (Skew, error) {
	name, arg, _ := strings.Cut(strings.TrimSpace(spec), ":")
	skewMu.RLock()
	e, ok := skewModels[name]
	skewMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("skew %q: unknown model %q (known: %s)", spec, name, strings.Join(skewNames(), ", "))
	}
	s, err := e.parse(arg)
	if err != nil {
		return nil, fmt.Errorf("skew %q: %w", spec, err)
	}
	return s, nil
}

// SkewModels lists registered models sorted by name.
func SkewModels() []SkewModel {
	skewMu.RLock()
	defer skewMu.RUnlock()
	out := make([]SkewModel, 0, len(skewModels))
	for name, e := range skewModels {
		out = append(out, SkewModel{Name: name, Usage: e.usage})
	}
	slices.SortFunc(out, func(a, b SkewModel) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func skewNames() []string {
	skewMu.RLock()
	defer skewMu.RUnlock()
	names := make([]string, 0, len(skewModels))
	for name := range skewModels {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// parseSkewDuration parses a signed Go duration ("-5ms", "1.5s"; a bare "0" is zero)
// and bounds it by ±MaxSkew.
func parseSkewDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	if d > MaxSkew || d < -MaxSkew {
		return 0, fmt.Errorf("duration %q out of range (within ±%v)", s, MaxSkew)
	}
	return d, nil
}

// parseSkewParams parses "k=v,k=v" into durations. Every key must be in allowed, and
// none may repeat; usage is appended to errors about the shape of arg.
func parseSkewParams(arg string, usage string, allowed ...string) (map[string]time.Duration, error) {
	out := make(map[string]time.Duration, len(allowed))
	if strings.TrimSpace(arg) == "" {
		return out, nil
	}
	for item := range strings.SplitSeq(arg, ",") {
		k, v, ok := strings.Cut(item, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("parameter %q is not key=value (%s)", item, usage)
		}
		if !slices.Contains(allowed, k) {
			return nil, fmt.Errorf("unknown key %q (%s)", k, usage)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("key %q given twice (%s)", k, usage)
		}
		d, err := parseSkewDuration(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = d
	}
	return out, nil
}

// clampProgress maps progress into [0,1]; NaN counts as the start of the run.
func clampProgress(p float64) float64 {
	if !(p > 0) { // also NaN
		return 0
	}
	return math.Min(p, 1)
}

// stepCDF is the CDF of a point mass at at.
func stepCDF(x, at time.Duration) float64 {
	if x >= at {
		return 1
	}
	return 0
}

// uniformCDF is the CDF of the continuous uniform distribution on [lo, hi], lo < hi.
func uniformCDF(x, lo, hi time.Duration) float64 {
	switch {
	case x <= lo:
		return 0
	case x >= hi:
		return 1
	}
	return float64(x-lo) / float64(hi-lo)
}
