package results

import (
	"bytes"
	"strings"
	"testing"
)

func realCell(upstream string, timeoutMS float64, p50US, maxUS int64, keepAlive string) Cell {
	c := Cell{Strategy: "blind", Upstream: upstream, Skew: "none", Latency: "0", Load: "sweep", IdleTimeoutMS: timeoutMS, Requests: 100, Stale: 10, PredictedResetRate: 0.1}
	c.Server = Server{ConfiguredTimeoutMS: timeoutMS, CloseJitterUS: &LatencyUS{P50: p50US, Max: maxUS}, CloseSamples: 16, KeepAlive: keepAlive}
	c.Finish()
	return c
}

func TestFindings(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cells []Cell
		want  []string // a substring of each finding's What, in order
	}{
		{"node closes a second late and advertises timeout=1", []Cell{
			realCell("node", 1000, 1_000_200, 1_000_900, "timeout=1"),
			realCell("node", 1000, 1_000_400, 1_001_000, "timeout=1"),
		}, []string{"idle close lands 1000.2 ms after the configured timeout", "Keep-Alive: timeout=1 disagrees with the real close"}},
		{"nginx closes 2.7 ms early at T = 100ms", []Cell{realCell("nginx", 100, -2700, 1400, "")}, []string{"2.7 ms before the configured timeout"}},
		{"2.7 ms is within 1% of T = 1s", []Cell{realCell("nginx", 1000, -2700, 1400, "")}, nil},
		{"a close within max(1ms, 1%) is no finding", []Cell{realCell("uvicorn", 5000, 40_000, 48_000, "")}, nil},
		{"an honest hint is no finding", []Cell{realCell("gonet", 1000, 300, 900, "timeout=1")}, nil},
		{"builtin's own lateness, unskewed", []Cell{{
			Strategy: "blind", Upstream: "builtin", Skew: "none", IdleTimeoutMS: 100,
			Server: Server{ConfiguredTimeoutMS: 100, IdleCloses: 40, CloseLateUS: LatencyUS{P50: 1500, Max: 4000}},
		}}, []string{"idle close lands 1.5 ms after"}},
		{"builtin under a skew closes where the skew says", []Cell{{
			Strategy: "blind", Upstream: "builtin", Skew: "uniform:±10ms", IdleTimeoutMS: 100,
			Server: Server{ConfiguredTimeoutMS: 100, IdleCloses: 40, CloseLateUS: LatencyUS{P50: 1500, Max: 4000}},
		}}, nil},
		{"builtin close=rst resets every idle close", []Cell{{
			Strategy: "blind", Upstream: "builtin:close=rst", Skew: "offset:5ms", IdleTimeoutMS: 100,
			Server: Server{ConfiguredTimeoutMS: 100, IdleCloses: 40, ClosesWithUnread: 3,
				Wire: &Wire{ServerRSTs: 40, ServerFINs: 2}},
		}}, []string{"closes by RST instead of FIN (37 of 42 closes)"}},
		{"resets of closes that found a request unread are the race, no finding", []Cell{{
			Strategy: "blind", Upstream: "nginx", Skew: "none", IdleTimeoutMS: 100,
			Server: Server{ConfiguredTimeoutMS: 100, IdleCloses: 40, ClosesWithUnread: 5,
				Wire: &Wire{ServerRSTs: 5, ServerFINs: 35}},
		}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := Findings(tc.cells)
			if len(fs) != len(tc.want) {
				t.Fatalf("%d findings, want %d: %+v", len(fs), len(tc.want), fs)
			}
			for i, f := range fs {
				if !strings.Contains(f.What, tc.want[i]) {
					t.Errorf("finding %d: %q, want it to say %q", i, f.What, tc.want[i])
				}
				if f.Upstream != tc.cells[0].Upstream || f.Measured == "" || f.Expected == "" {
					t.Errorf("finding %d: %+v: want the upstream, what it measured and what was expected", i, f)
				}
			}
		})
	}
}

// A cell off the model by more than 2 points with the prediction outside its interval
// is a finding; one inside its interval, however far, is not.
func TestModelFindings(t *testing.T) {
	off := Cell{Strategy: "blind", Upstream: "nginx", Skew: "none", Latency: "0", Load: "sweep", Requests: 4000, Stale: 2576, PredictedResetRate: 0.402}
	off.Finish()
	noisy := Cell{Strategy: "watch", Upstream: "nginx", Skew: "none", Latency: "0", Load: "sweep", Requests: 20, Stale: 2, PredictedResetRate: 0.05}
	noisy.Finish()
	fs := Findings([]Cell{off, noisy})
	if len(fs) != 1 || !strings.Contains(fs[0].What, "the model disagrees with blind") || !strings.Contains(fs[0].Expected, "40.2%") {
		t.Fatalf("findings %+v, want one: blind's 64.4%% against the model's 40.2%%", fs)
	}
	var b bytes.Buffer
	if err := RenderFindings(&b, fs); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); !strings.HasPrefix(got, "finding: nginx: the model disagrees") || strings.Count(got, "\n") != 1 {
		t.Errorf("rendered %q, want one line naming nginx", got)
	}
}

func TestAdvertisedTimeoutMS(t *testing.T) {
	for in, want := range map[string]float64{"timeout=5": 5000, "timeout=5, max=1000": 5000, " Timeout = 0.5 ": 500, "max=3,timeout=1": 1000} {
		if got, ok := AdvertisedTimeoutMS(in); !ok || got != want {
			t.Errorf("AdvertisedTimeoutMS(%q) = %g, %v, want %g", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "max=5", "timeout=x", "timeout=-1"} {
		if _, ok := AdvertisedTimeoutMS(in); ok {
			t.Errorf("AdvertisedTimeoutMS(%q) ok, want no timeout", in)
		}
	}
}

// Failures the server's view does not explain are findings: stale failures no close
// explains, named with the proxy the cell was behind, and a proxy's own errors.
func TestMatchFindings(t *testing.T) {
	c := Cell{Strategy: "blind", Upstream: "builtin", Skew: "none", Latency: "0", Load: "sweep", Proxy: "haproxy",
		Requests: 50, Stale: 5, Failures: Failures{BadGateway: 3}, PredictedResetRate: 0.1,
		Server: Server{UnmatchedFailures: 2}, Hop: &Hop{Kind: "haproxy", OwnErrors: 1}}
	c.Finish()
	fs := Findings([]Cell{c})
	if len(fs) != 2 || !strings.Contains(fs[0].What, "2 stale failures of blind") || !strings.Contains(fs[0].What, "behind haproxy") ||
		!strings.Contains(fs[1].What, "haproxy answered 1 requests 502") {
		t.Fatalf("findings %+v: want the 2 unmatched failures behind haproxy, then its own error", fs)
	}
	c.Server.UnmatchedFailures, c.Hop.OwnErrors = 0, 0
	if fs := Findings([]Cell{c}); len(fs) != 0 {
		t.Errorf("findings %+v for a cell whose failures are all explained", fs)
	}
}
