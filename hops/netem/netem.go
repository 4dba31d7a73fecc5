// Package netem is the kernel's netem qdisc as a hop: the latency path "netem:2ms" of a
// cell. It encloses the upstream: a private network namespace whose loopback carries the
// qdisc, in which the upstream listens and into which the load dials (chaos.Netns), so
// it starts before the upstream and nothing sits between them.
package netem

import (
	"context"
	"net"
	"time"

	"github.com/idlerace/idlerace/chaos"
	"github.com/idlerace/idlerace/hops"
	"github.com/idlerace/idlerace/internal/spec"
)

// Kind is the name netem registers under (not a --proxy: the latency axis asks for it).
const Kind = "netem"

func init() {
	hops.Register(hops.Kind{
		Name:    Kind,
		Summary: "the kernel's netem qdisc around the upstream, in a network namespace: the latency path netem:D",
		Options: []string{"delay", "jitter"},
		Props:   hops.Properties{Encloses: true},
		Parse:   parse,
	})
}

func parse(o *spec.Options) (hops.Parsed, error) {
	d, j, err := hops.DelayOptions(o)
	if err != nil {
		return hops.Parsed{}, err
	}
	return hops.Parsed{Start: func(ctx context.Context, _ hops.Config) (hops.Hop, error) {
		ns, err := chaos.NewNetemNamespace(ctx, d, j)
		if err != nil {
			return nil, err
		}
		return &Namespace{ns: ns, delay: d, jitter: j}, nil
	}}, nil
}

// Namespace is a running netem namespace.
type Namespace struct {
	ns            *chaos.Netns
	delay, jitter time.Duration
}

func (h *Namespace) Kind() string      { return Kind }
func (h *Namespace) Version() string   { return "netem" }
func (h *Namespace) URL() string       { return "" } // the load dials the upstream through it
func (h *Namespace) Stats() hops.Stats { return hops.Stats{} }
func (h *Namespace) Close() error      { return h.ns.Close() }

// OneWay is the delay and its jitter's mean half; netem delays FINs as it delays data.
func (h *Namespace) OneWay() time.Duration  { return h.delay + h.jitter/2 }
func (h *Namespace) FINLead() time.Duration { return 0 }

func (h *Namespace) Listen(network, addr string) (net.Listener, error) {
	return h.ns.Listen(network, addr)
}

// Inside runs f on a thread in the namespace: a socket it opens stays there.
func (h *Namespace) Inside(f func()) error { return h.ns.Do(f) }

func (h *Namespace) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return h.ns.DialContext(ctx, network, addr)
}
