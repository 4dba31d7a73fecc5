package matrix

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/idlerace/idlerace/chaos"
	"github.com/idlerace/idlerace/hops"
)

// cellPath is a cell's chain between the load and the upstream, composed from the
// upstream outwards: the latency path's delay proxy in front of the upstream (it delays
// bytes, FIN and RST alike by d each way, and knows which of its upstream-side
// connections carries which of the client's), then the reverse proxy (the hop) in front
// of that, whose pool to the upstream is then the one that races. netem is no link here:
// it places the upstream itself in a namespace, so it comes before the upstream starts.
// runCell and RunTarget compose the same chain in front of their server.
type cellPath struct {
	delay *chaos.DelayProxy
	hop   hops.Hop
	// front is where the load connects: the outermost link's host:port, or the
	// upstream's with no link.
	front string
}

// startPath starts p's links in front of upstream (host:port); on an error nothing it
// started is left.
func startPath(ctx context.Context, p *Prepared, upstream string, seed uint64) (*cellPath, error) {
	cp := &cellPath{front: upstream}
	if !p.Latency.IsZero() && !p.Latency.Netem {
		d, err := chaos.StartDelayProxy(ctx, upstream, p.Latency.Delay, p.Latency.Jitter, seed)
		if err != nil {
			return nil, fmt.Errorf("latency %s: %w", p.Latency, err)
		}
		cp.delay, cp.front = d, d.Addr()
	}
	if !p.Proxy.IsNone() {
		h, err := p.Proxy.Start(ctx, hops.Config{Upstream: "http://" + cp.front})
		if err != nil {
			cp.close()
			return nil, err
		}
		cp.hop, cp.front = h, strings.TrimPrefix(h.URL(), "http://")
	}
	return cp, nil
}

// oneWay is the path's one-way delay as the model takes it, once the load is over: the
// latency asked for (its jitter's mean half), plus the delay proxy's own lateness, which
// it measured.
func (cp *cellPath) oneWay(l chaos.Latency) time.Duration {
	d := l.Delay + l.Jitter/2
	if cp.delay != nil {
		d += cp.delay.MeanLateness()
	}
	return d
}

// stopDelay stops the delay proxy, if any, before the upstream stops: the upstream's
// shutdown then closes no connection the proxy still carries.
func (cp *cellPath) stopDelay() {
	if cp.delay != nil {
		_ = cp.delay.Close()
	}
}

// close stops every link (each stops once, however often asked).
func (cp *cellPath) close() {
	if cp.hop != nil {
		_ = cp.hop.Close()
	}
	if cp.delay != nil {
		_ = cp.delay.Close()
	}
}
