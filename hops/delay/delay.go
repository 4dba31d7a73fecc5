// Package delay is the delay proxy as a hop: the latency path "2ms" or "2ms+500us" of a
// cell, between the next hop in (the load, or a reverse proxy) and the upstream. It
// delays bytes, FIN and RST alike by delay in each direction, with up to jitter more on
// data (chaos.DelayProxy), and maps the upstream's connections back to its clients'.
package delay

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/idlerace/idlerace/chaos"
	"github.com/idlerace/idlerace/hops"
	"github.com/idlerace/idlerace/internal/spec"
)

// Kind is the name the delay proxy registers under (not a --proxy: the latency axis
// asks for it).
const Kind = "delay"

func init() {
	hops.Register(hops.Kind{
		Name:    Kind,
		Summary: "idlerace's delay proxy: the latency path D or D+J",
		Options: []string{"delay", "jitter"},
		Parse:   parse,
	})
}

func parse(o *spec.Options) (hops.Parsed, error) {
	d, j, err := hops.DelayOptions(o)
	if err != nil {
		return hops.Parsed{}, err
	}
	return hops.Parsed{Start: func(ctx context.Context, cfg hops.Config) (hops.Hop, error) {
		p, err := chaos.StartDelayProxy(ctx, strings.TrimPrefix(cfg.Upstream, "http://"), d, j, cfg.Seed)
		if err != nil {
			return nil, fmt.Errorf("latency %s: %w", chaos.Latency{Delay: d, Jitter: j}, err)
		}
		return &Proxy{p: p, delay: d, jitter: j}, nil
	}}, nil
}

// Proxy is a running delay proxy.
type Proxy struct {
	p             *chaos.DelayProxy
	delay, jitter time.Duration
}

func (h *Proxy) Kind() string           { return Kind }
func (h *Proxy) Version() string        { return "idlerace delay proxy" }
func (h *Proxy) URL() string            { return "http://" + h.p.Addr() }
func (h *Proxy) Stats() hops.Stats      { return hops.Stats{} }
func (h *Proxy) Close() error           { return h.p.Close() }
func (h *Proxy) FINLead() time.Duration { return h.jitter / 2 } // it jitters data, not FINs

// OneWay is the delay asked for, its jitter's mean half, and the proxy's own scheduling
// lateness, which it measured: the delay the path really had.
func (h *Proxy) OneWay() time.Duration { return h.delay + h.jitter/2 + h.p.MeanLateness() }

// ClientPort names the client-side connection that the upstream-side one from port
// upstreamSide, accepted at accepted, carried.
func (h *Proxy) ClientPort(upstreamSide int, accepted time.Time) (int, bool) {
	return h.p.ClientPort(upstreamSide, accepted)
}
