package matrix

import (
	"strings"
	"time"

	"github.com/idlerace/idlerace/attack"
	"github.com/idlerace/idlerace/attack/pool"
	"github.com/idlerace/idlerace/chaos"
	"github.com/idlerace/idlerace/hops"
)

func parseStrategy(s string) (*pool.Spec, error) { return pool.Parse(s) }
func parseSkew(s string) (chaos.Skew, error)     { return chaos.ParseSkew(s) }
func parseLoad(s string) (attack.Load, error)    { return attack.ParseLoad(s) }

// Canonical returns the canonical form of an axis value, so that "retry-only" and
// "retry-only:max=1,methods=all" match in include, exclude and gate rules.
func Canonical(key, v string) string { return canonical(key, v) }

func canonical(key, v string) string {
	switch key {
	case "strategy":
		if s, err := pool.Parse(v); err == nil {
			return s.String()
		}
	case "skew":
		if s, err := chaos.ParseSkew(v); err == nil {
			return s.String()
		}
	case "load":
		if l, err := attack.ParseLoad(v); err == nil {
			return l.String()
		}
	case "latency":
		if l, err := chaos.ParseLatency(v); err == nil {
			return l.String()
		}
	case "proxy":
		if h, err := hops.Parse(v); err == nil {
			return h.Raw
		}
	case "upstream":
		if u, err := ParseUpstream(v); err == nil {
			return u.String()
		}
	}
	return v
}

// withDuration gives a load spec the file's duration when it sets neither a duration nor
// periods of its own.
func withDuration(load string, d time.Duration) string {
	if d == 0 || strings.Contains(load, "duration=") || strings.Contains(load, "periods=") {
		return load
	}
	if strings.Contains(load, ":") {
		return load + ",duration=" + d.String()
	}
	return load + ":duration=" + d.String()
}

// Cells expands the file into cell specs: the product of the axes (strategies vary
// fastest), minus every combination an exclude entry matches on all its keys, plus the
// include entries as a GitHub Actions matrix treats them: an entry whose axis values
// all agree with a combination adds its settings (idle_timeout, method) to it; an entry
// that agrees with none becomes a combination of its own, its missing axes taking each
// axis's first value (and later includes do not add to it). Each combination runs Repeats times.
func (f *File) Cells() ([]CellSpec, error) {
	type combo map[string]string
	var combos []combo
	proxies := f.Proxies
	if len(proxies) == 0 {
		proxies = []string{hops.None}
	}
	methods := f.Methods
	if len(methods) == 0 {
		methods = []string{""} // the file's method, a setting rather than an axis
	}
	for _, m := range methods {
		for _, px := range proxies {
			for _, up := range f.Upstreams {
				for _, lat := range f.Latencies {
					for _, sk := range f.Skews {
						for _, ld := range f.Loads {
							for _, st := range f.Strategies {
								c := combo{"strategy": st, "upstream": up, "skew": sk, "latency": lat, "load": ld, "proxy": px}
								if m != "" {
									c["method"] = m
								}
								combos = append(combos, c)
							}
						}
					}
				}
			}
		}
	}
	matches := func(c combo, e Entry, axesOnly bool) bool {
		for k, v := range e.Values {
			if k == "idle_timeout" || k == "method" {
				if axesOnly {
					continue
				}
			}
			cv, ok := c[k]
			if !ok || canonical(k, cv) != canonical(k, v) {
				return false
			}
		}
		return true
	}
	kept := combos[:0]
	for _, c := range combos {
		excluded := false
		for _, e := range f.Exclude {
			excluded = excluded || matches(c, e, false)
		}
		if !excluded {
			kept = append(kept, c)
		}
	}
	combos = kept
	// Includes add settings to the axes' own combinations only: one that another include
	// made is a measurement of its own (GET and POST of the same client are two cells).
	axes := len(combos)
	for _, e := range f.Include {
		added := false
		for _, c := range combos[:axes] {
			if matches(c, e, true) {
				// An include never overwrites an axis value, only adds settings.
				for k, v := range e.Values {
					if k == "idle_timeout" || k == "method" {
						c[k] = v
					}
				}
				added = true
			}
		}
		if !added {
			c := combo{"strategy": first(f.Strategies), "upstream": first(f.Upstreams), "skew": first(f.Skews),
				"latency": first(f.Latencies), "load": first(f.Loads), "proxy": first(proxies)}
			for k, v := range e.Values {
				c[k] = v
			}
			combos = append(combos, c)
		}
	}
	var cells []CellSpec
	for _, c := range combos {
		idle, ownT := f.IdleTimeout, false
		if v, ok := c["idle_timeout"]; ok {
			idle, _ = time.ParseDuration(v) // checked when the file was read
			ownT = idle != f.IdleTimeout
		}
		method := f.Method
		if v, ok := c["method"]; ok {
			method = strings.ToUpper(v)
		}
		for r := 0; r < f.Repeats; r++ {
			cells = append(cells, CellSpec{
				Strategy: c["strategy"], Upstream: c["upstream"], Skew: c["skew"], Latency: c["latency"], Proxy: c["proxy"],
				Load: withDuration(c["load"], f.Duration), IdleTimeout: idle, OwnT: ownT, Method: method, Seed: f.Seed, Repeat: r,
				Path: f.Request.Path, Header: f.Request.Header, Body: f.Request.Body,
			})
		}
	}
	return cells, nil
}

func first(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return l[0]
}
