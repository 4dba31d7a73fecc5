// Package spec parses the "name:key=value,..." specs that strategies and loads share, with
// typed getters that consume their keys so that leftovers can be reported as unknown.
package spec

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Options are a spec's "key=value,..." arguments.
type Options struct {
	kv   map[string]string
	keys []string
}

// Parse reads "key=value,..." (the part after the name's colon). An empty string gives
// empty options.
func Parse(args string) (*Options, error) {
	o := &Options{kv: map[string]string{}}
	if strings.TrimSpace(args) == "" {
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

// Has reports whether key was given and not yet consumed.
func (o *Options) Has(key string) bool {
	_, ok := o.kv[key]
	return ok
}

// String returns the raw value of key and whether it was given, consuming it.
func (o *Options) String(key string) (string, bool) { return o.take(key) }

// Unused returns an error naming the first key no getter consumed.
func (o *Options) Unused() error {
	for _, k := range o.keys {
		if _, left := o.kv[k]; left {
			return fmt.Errorf("unknown option %q", k)
		}
	}
	return nil
}

// Duration returns the duration option key, def when absent. Negative values are refused;
// zero only when allowZero. A bare "0" is zero.
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

// Rate returns a rate option such as "100/s", "50/1s" or "6000/1m" in requests per
// second, def when absent; it must be > 0.
func (o *Options) Rate(key string, def float64) (float64, error) {
	v, ok := o.take(key)
	if !ok {
		return def, nil
	}
	num, per, hasPer := strings.Cut(v, "/")
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s: want a rate such as 100/s, got %q", key, v)
	}
	if !hasPer {
		return n, nil
	}
	if per != "" && (per[0] < '0' || per[0] > '9') {
		per = "1" + per
	}
	d, err := time.ParseDuration(per)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s: want a rate such as 100/s, got %q", key, v)
	}
	return n / d.Seconds(), nil
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
