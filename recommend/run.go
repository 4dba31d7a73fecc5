package recommend

import (
	"github.com/idlerace/idlerace/results"
	"github.com/idlerace/idlerace/upstreams/probe"
)

// Server is one server of a run, as its cells saw it: the cells against one upstream
// with one skew, latency and believed T, the idle closes they saw between them, and
// the settings safe at it.
type Server struct {
	// Proxy is the reverse proxy in front of the upstream ("" none): its pool is the
	// client the settings are for.
	Proxy         string  `json:"proxy,omitempty"`
	Upstream      string  `json:"upstream"`
	Skew          string  `json:"skew"`
	Latency       string  `json:"latency"`
	IdleTimeoutMS float64 `json:"idle_timeout_ms"`
	// Cells counts the cells whose closes were folded in (those that saw any).
	Cells  int                 `json:"cells"`
	Closes results.CloseSpread `json:"closes"`
	// RTTMS is the round trip taken off: the lowest median latency of those cells, an
	// upper bound on the path's own round trip (it holds the server's work too).
	RTTMS           float64                `json:"rtt_ms"`
	Recommendations []probe.Recommendation `json:"recommendations"`
}

// minCloses is how many idle closes a server needs before a run recommends anything
// from them: fewer say little about the earliest.
const minCloses = 8

// FromRun is the settings safe at each server of a run, from the idle closes its cells
// saw (results.Server.IdleCloseMS), in the order the servers first appear. A server
// whose cells saw fewer than minCloses closes (no view of the server, or a strategy
// that never let a connection sit idle that long) is left out.
func FromRun(cells []results.Cell) []Server {
	type key struct {
		proxy, up, skew, lat string
		t                    float64
	}
	var order []key
	byKey := map[key]*Server{}
	spreads := map[key]*results.CloseSpread{}
	for _, c := range cells {
		sp := c.Server.IdleCloseMS
		if sp == nil || sp.Samples == 0 {
			continue
		}
		k := key{c.Proxy, c.Upstream, c.Skew, c.Latency, c.IdleTimeoutMS}
		s := byKey[k]
		if s == nil {
			s = &Server{Proxy: c.Proxy, Upstream: c.Upstream, Skew: c.Skew, Latency: c.Latency, IdleTimeoutMS: c.IdleTimeoutMS, RTTMS: -1}
			byKey[k] = s
			order = append(order, k)
		}
		s.Cells++
		spreads[k] = results.MergeSpread(spreads[k], sp)
		if rtt := float64(c.LatencyUS.P50) / 1000; c.LatencyUS.P50 > 0 && (s.RTTMS < 0 || rtt < s.RTTMS) {
			s.RTTMS = rtt
		}
	}
	var out []Server
	for _, k := range order {
		s, sp := byKey[k], spreads[k]
		if sp.Samples < minCloses {
			continue
		}
		s.Closes = *sp
		s.RTTMS = max(s.RTTMS, 0)
		s.Recommendations = For(probe.Closes{Min: sp.Min, P50: sp.P50, P99: sp.P99, Max: sp.Max, Samples: int(sp.Samples), Method: "watched"}, s.RTTMS, s.IdleTimeoutMS)
		out = append(out, *s)
	}
	return out
}
