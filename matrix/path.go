package matrix

import (
	"context"
	"io"
	"net"
	"strings"
	"time"

	"github.com/idlerace/idlerace/hops"
	_ "github.com/idlerace/idlerace/hops/delay" // the latency paths, as hops
	_ "github.com/idlerace/idlerace/hops/netem"
	"github.com/idlerace/idlerace/upstreams"
	"github.com/idlerace/idlerace/upstreams/wire"
)

// cellPath is a cell's chain of hops between the load and the upstream (Prepared.Path),
// composed from the upstream outwards, each hop in front of the last: the latency path's
// (the delay proxy, or netem's namespace, which encloses the upstream and so starts
// before it), then the reverse proxy, whose pool to the upstream is then the one that
// races. What each hop is, it declares (hops.Properties and the interfaces it
// implements); runCell and RunTarget compose the same chain in front of their server.
type cellPath struct {
	started []pathHop // from the upstream outwards
	// front is where the load connects: the outermost hop's host:port, or the
	// upstream's with none in front of it.
	front string
}

// pathHop is a started hop with what its kind declared.
type pathHop struct {
	hops.Hop
	props hops.Properties
}

// encloseUpstream starts the hop that holds the upstream, if p's path has one: the
// upstream then listens through the path (listen) and the load dials through it (dial).
func encloseUpstream(ctx context.Context, p *Prepared, seed uint64) (*cellPath, error) {
	cp := &cellPath{}
	for _, s := range p.Path {
		if !s.Props.Encloses {
			continue
		}
		h, err := s.Start(ctx, hops.Config{Seed: seed})
		if err != nil {
			return nil, err
		}
		cp.started = append(cp.started, pathHop{h, s.Props})
	}
	return cp, nil
}

// startInFront starts the rest of p's path in front of upstream (host:port); on an error
// it stops what it started.
func (cp *cellPath) startInFront(ctx context.Context, p *Prepared, upstream string, seed uint64) error {
	cp.front = upstream
	for _, s := range p.Path {
		if s.Props.Encloses {
			continue
		}
		h, err := s.Start(ctx, hops.Config{Upstream: "http://" + cp.front, Seed: seed})
		if err != nil {
			cp.close()
			return err
		}
		cp.started = append(cp.started, pathHop{h, s.Props})
		if u := h.URL(); u != "" {
			cp.front = strings.TrimPrefix(u, "http://")
		}
	}
	return nil
}

// capture starts the capture of up's port where up listens: on loopback, or on the
// loopback of the hop that encloses it (netem's namespace), opened from inside.
func (cp *cellPath) capture(up upstreams.Upstream, idleTimeout time.Duration, pcap io.Writer, onReuse func(wire.Reuse)) (c *wire.Capture, view string) {
	e := cp.enclosure()
	if e == nil {
		return startCapture(up, idleTimeout, pcap, onReuse)
	}
	if err := e.Inside(func() { c, view = startCapture(up, idleTimeout, pcap, onReuse) }); err != nil {
		return nil, viewNone("capture failed: " + err.Error())
	}
	return c, view
}

// enclosure is the hop that holds the upstream, or nil.
func (cp *cellPath) enclosure() hops.Enclosure {
	for _, h := range cp.started {
		if e, ok := h.Hop.(hops.Enclosure); ok && h.props.Encloses {
			return e
		}
	}
	return nil
}

// listen is how the upstream makes its listener (nil: net.Listen).
func (cp *cellPath) listen() func(network, addr string) (net.Listener, error) {
	if e := cp.enclosure(); e != nil {
		return e.Listen
	}
	return nil
}

// dial is how the load dials (nil: the pool's own dialer).
func (cp *cellPath) dial() func(ctx context.Context, network, addr string) (net.Conn, error) {
	if e := cp.enclosure(); e != nil {
		return e.DialContext
	}
	return nil
}

// pool is the hop whose pool races the upstream (a reverse proxy), or nil.
func (cp *cellPath) pool() hops.Hop {
	for _, h := range cp.started {
		if h.props.Pools {
			return h.Hop
		}
	}
	return nil
}

// mapper names the upstream's connections by the client's ports, where the hop in
// front of the upstream can (the delay proxy); nil otherwise, as an interface.
func (cp *cellPath) mapper() hops.PortMapper {
	for _, h := range cp.started {
		if h.props.Encloses {
			continue // around the upstream, not in front of it
		}
		if m, ok := h.Hop.(hops.PortMapper); ok {
			return m
		}
		return nil
	}
	return nil
}

// oneWay is the path's one-way delay as the model takes it, once the load is over, and
// how much sooner a FIN crosses it than data: the sums of its hops' (hops.Delays).
func (cp *cellPath) oneWay() (oneWay, finLead time.Duration) {
	for _, h := range cp.started {
		if d, ok := h.Hop.(hops.Delays); ok {
			oneWay += d.OneWay()
			finLead += d.FINLead()
		}
	}
	return oneWay, finLead
}

// stopRelays stops the hops that neither pool nor enclose (the delay proxy) before the
// upstream stops: its shutdown then closes no connection they still carry. A proxy
// stops when its account is taken (hopAccount), an enclosure last.
func (cp *cellPath) stopRelays() {
	for _, h := range cp.started {
		if !h.props.Pools && !h.props.Encloses {
			_ = h.Close()
		}
	}
}

// close stops every hop, the outermost first (each stops once, however often asked).
func (cp *cellPath) close() {
	for i := len(cp.started) - 1; i >= 0; i-- {
		_ = cp.started[i].Close()
	}
}
