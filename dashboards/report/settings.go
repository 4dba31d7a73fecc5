package report

import (
	"fmt"
	"time"

	"github.com/idlerace/idlerace/recommend"
	"github.com/idlerace/idlerace/results"
)

// safeServer is one server of the run with the client settings safe at it, from the
// idle closes its cells saw (recommend.FromRun), as the report writes it.
type safeServer struct {
	// Server names it: "uvicorn · skew none · latency 0 · T = 1s".
	Server string
	// Closes says what the settings are built from: "100 idle closes in 2 cells:
	// 1000.20–1003.00 ms, p50 1001.24 ms, p99 1002.50 ms; RTT taken as 0.30 ms (…)".
	Closes string
	// Arithmetic is the margin's, shared by every row.
	Arithmetic string
	Rows       []safeRow
}

type safeRow struct {
	Client, Setting, Model, Conns, Spec string
}

// safeSettings is the run's servers with their safe settings, none for a run whose
// cells saw too few idle closes (or could not see them).
func safeSettings(cells []results.Cell) []safeServer {
	var out []safeServer
	for _, s := range recommend.FromRun(cells) {
		c := s.Closes
		up := s.Upstream
		if s.Proxy != "" {
			up = s.Proxy + " → " + s.Upstream
		}
		ss := safeServer{
			Server: fmt.Sprintf("%s · skew %s · latency %s · T = %s", orDash(up), orDash(s.Skew), orDash(s.Latency), time.Duration(s.IdleTimeoutMS*float64(time.Millisecond)).Round(10*time.Microsecond)),
			Closes: fmt.Sprintf("%d idle closes in %s: %.2f–%.2f ms, p50 %.2f ms, p99 %.2f ms; RTT taken as %.2f ms (the cells' lowest median latency, which holds the server's work too)",
				c.Samples, plural(s.Cells, "cell"), c.Min, c.Max, c.P50, c.P99, s.RTTMS),
		}
		for _, r := range s.Recommendations {
			ss.Arithmetic = r.Arithmetic
			row := safeRow{Client: r.Client, Setting: r.Setting, Model: "–", Conns: "–", Spec: orDash(r.Spec)}
			if r.ValueMS > 0 {
				row.Model, row.Conns = pct(r.PredictedResetRate), fmt.Sprintf("+%.1f", r.ExtraConnsPer1k)
			}
			ss.Rows = append(ss.Rows, row)
		}
		out = append(out, ss)
	}
	return out
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
