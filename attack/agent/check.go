package agent

import (
	"errors"
	"sort"
	"time"
)

// Checked is one client kind as `idlerace strategies --check` found it: started once as
// a cell would start it, with its library's defaults.
type Checked struct {
	Name string `json:"name"`
	// Build is how long a compiled agent's build took (0 when it was cached or the kind
	// needs none); Start how long from starting its process to its hello.
	Build   time.Duration `json:"build_ns"`
	Start   time.Duration `json:"start_ns"`
	Library string        `json:"library,omitempty"`
	Version string        `json:"version,omitempty"`
	Err     string        `json:"error,omitempty"`
	// Missing says the kind's runtime is not installed (Err says what to install).
	Missing bool `json:"missing,omitempty"`
}

// Kinds lists the registered client kinds' names, sorted.
func Kinds() []string {
	var names []string
	for n := range kinds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Check starts kind name's agent once, building it first where it is compiled, and
// says how long each took and which library it ran.
func Check(name string) Checked {
	out := Checked{Name: name}
	k := kinds[name]
	if k == nil {
		out.Err = "no such client kind"
		return out
	}
	c := &clientKind{kind: k, set: Settings{Canonical: name}}
	if k.Command != nil && (k.Missing == nil || k.Missing() == "") {
		t := time.Now()
		if _, err := k.Command(); err != nil {
			out.Err = err.Error()
			return out
		}
		out.Build = time.Since(t)
	}
	t := time.Now()
	if err := c.Warm(); err != nil {
		out.Err, out.Missing = err.Error(), errors.Is(err, ErrMissing)
		return out
	}
	out.Start = time.Since(t)
	_, out.Library, out.Version = c.Client()
	c.Cool()
	return out
}
