package chaos

import (
	"fmt"
	"strings"
	"time"
)

// Latency is the one-way network latency path between client and upstream.
//
// The race window is as wide as the path is long: a server's FIN takes Delay to reach the
// client, and until it has arrived no check the client makes can see it (DESIGN.md,
// "The phenomenon, precisely"). Two paths carry it:
//
//	proxy (default)  client --> DelayProxy (127.0.0.1) --> upstream     userspace, any user
//	netem            client --> lo + netem qdisc --> upstream           kernel, root, in a Netns
//
// Both delay every byte, FIN and RST by Delay in each direction. The proxy does not delay
// the TCP handshake (the client's kernel completes it with the proxy's listener at once),
// so a new connection costs one round trip less through the proxy than under netem.
type Latency struct {
	Delay  time.Duration // one-way d
	Jitter time.Duration // added uniformly in [0, Jitter] per chunk (0: none)
	Netem  bool          // true: kernel netem in a network namespace; false: the userspace delay proxy
}

// MaxLatency bounds Delay and Jitter: far beyond any real path, and small enough that
// Delay+Jitter and the model's T+s+2d arithmetic cannot overflow.
const MaxLatency = time.Minute

const latencyUsage = "accepted: 0, 2ms, 2ms+500us (delay plus jitter), proxy:2ms, netem:2ms, netem:2ms+500us"

// ParseLatency reads "0", "2ms", "2ms+500us" (delay plus jitter), "proxy:2ms" (same as
// "2ms"), "netem:2ms", "netem:2ms+500us". An empty spec is "0" (a matrix cell that leaves
// latency out runs on plain loopback). Surrounding spaces are ignored; durations are Go
// durations, non-negative and at most MaxLatency.
// Errors are one line of the form `latency "SPEC": what was wrong (accepted: ...)`.
func ParseLatency(s string) (Latency, error) {
	var l Latency
	spec := strings.TrimSpace(s)
	if path, rest, ok := strings.Cut(spec, ":"); ok {
		switch strings.ToLower(strings.TrimSpace(path)) {
		case "proxy":
		case "netem":
			l.Netem = true
		default:
			return Latency{}, fmt.Errorf("latency %q: unknown path %q (known: proxy, netem; %s)", s, path, latencyUsage)
		}
		spec = strings.TrimSpace(rest)
		if spec == "" {
			return Latency{}, fmt.Errorf("latency %q: %s: needs a delay (%s)", s, path, latencyUsage)
		}
	}
	if spec == "" {
		return l, nil
	}
	delay, jitter, hasJitter := strings.Cut(spec, "+")
	var err error
	if l.Delay, err = parseLatencyDuration(delay); err != nil {
		return Latency{}, fmt.Errorf("latency %q: delay %w (%s)", s, err, latencyUsage)
	}
	if hasJitter {
		if l.Jitter, err = parseLatencyDuration(jitter); err != nil {
			return Latency{}, fmt.Errorf("latency %q: jitter %w (%s)", s, err, latencyUsage)
		}
	}
	return l, nil
}

func parseLatencyDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, fmt.Errorf("%q is not a duration", s)
	case d < 0:
		return 0, fmt.Errorf("%q is negative", s)
	case d > MaxLatency:
		return 0, fmt.Errorf("%q is out of range (at most %v)", s, MaxLatency)
	}
	return d, nil
}

// String returns the canonical spec, which ParseLatency reads back to the same value:
// "0" for none, "2ms", "2ms+500us", "netem:2ms". The proxy path has no prefix.
func (l Latency) String() string {
	var b strings.Builder
	if l.Netem {
		b.WriteString("netem:")
	}
	if l.Delay == 0 {
		b.WriteString("0")
	} else {
		b.WriteString(l.Delay.String())
	}
	if l.Jitter != 0 {
		b.WriteString("+")
		b.WriteString(l.Jitter.String())
	}
	return b.String()
}

// Hop is the latency path as a hop spec (package hops): "" for plain loopback,
// "delay:delay=2ms,jitter=500µs" for the delay proxy, "netem:delay=2ms,jitter=0s" for
// netem's namespace.
func (l Latency) Hop() string {
	if l.IsZero() {
		return ""
	}
	kind := "delay"
	if l.Netem {
		kind = "netem"
	}
	return fmt.Sprintf("%s:delay=%s,jitter=%s", kind, l.Delay, l.Jitter)
}

// IsZero reports whether l is no added latency at all: plain loopback, no proxy, no
// namespace. "netem:0" is not zero: it still runs in a namespace.
func (l Latency) IsZero() bool { return l == Latency{} }

// MarshalText encodes l as String does, for JSON and YAML.
func (l Latency) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText parses text with ParseLatency.
func (l *Latency) UnmarshalText(text []byte) error {
	v, err := ParseLatency(string(text))
	if err != nil {
		return err
	}
	*l = v
	return nil
}
