package matrix

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// What composes a cell asks the upstream kind's declared properties, not its name: the
// builtin draws skews and can listen inside a netem namespace; gonet is a real server
// with one timeout, so a drawn skew is bad input and so is the netem path; a target
// idlerace did not start reads "external" and takes the skew the user told.
func TestUpstreamKindsDeclareWhatTheCellAsks(t *testing.T) {
	prep := func(s CellSpec) (*Prepared, error) {
		s.Strategy, s.Load, s.IdleTimeout = "blind", "sweep", time.Second
		if s.Latency == "" {
			s.Latency = "0"
		}
		return Prepare(s)
	}
	b, err := prep(CellSpec{Upstream: "builtin", Skew: "uniform:±10ms"})
	if err != nil || b.Upstream.Real() || !b.Upstream.Props.Listens {
		t.Fatalf("builtin: %v, real %v, props %+v", err, b != nil && b.Upstream.Real(), b)
	}
	g, err := prep(CellSpec{Upstream: "gonet", Skew: "offset:-5ms"})
	if err != nil || !g.Upstream.Real() || g.offset != -5*time.Millisecond {
		t.Fatalf("gonet: %v; want a real server offset by -5ms", err)
	}
	for _, s := range []CellSpec{{Upstream: "gonet", Skew: "uniform:±10ms"}, {Upstream: "gonet", Skew: "none", Latency: "netem:2ms"}, {Target: true, Skew: "none", Latency: "netem:2ms"}} {
		_, err := prep(s)
		var bi *BadInput
		if !errors.As(err, &bi) {
			t.Errorf("%+v: %v, want bad input", s, err)
		}
		if s.Latency != "" && (err == nil || !strings.Contains(err.Error(), "only builtin can listen there")) {
			t.Errorf("%+v: %v, want the kinds that can named", s, err)
		}
	}
	x, err := prep(CellSpec{Target: true, Upstream: "ignored", Skew: "uniform:±10ms"})
	if err != nil || x.Upstream.String() != "external" || x.Upstream.Real() {
		t.Fatalf("target: %v, upstream %v", err, x)
	}
}
