package results

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Finding is something a run found out about a server or the model that a reader
// should see before any table: a server whose idle close is not where it is configured
// to be, a Keep-Alive header that disagrees with the close, a cell the model does not
// explain. Findings are derived from the cells (Findings), so a merged or resumed run
// states the same ones as a whole run would.
type Finding struct {
	Upstream string `json:"upstream"`
	What     string `json:"what"`
	Measured string `json:"measured"`
	Expected string `json:"expected"`
}

// ModelAgreementPP is how far, in percentage points, a cell's reset rate may lie from
// the model's prediction outside its 95% interval before it is a finding.
const ModelAgreementPP = 2

// closeTolerance is how far a server's idle close may land from where it should before
// it is a finding: max(1 ms, 1% of the timeout), in µs.
func closeTolerance(timeoutMS float64) float64 { return math.Max(1000, 10*timeoutMS) }

// Findings returns what the cells found, in the order their first cell was measured:
// per upstream and configured timeout, a median idle close further than
// max(1 ms, 1%) from the timeout, and an advertised Keep-Alive timeout further than
// that from the close; per cell, a reset rate more than ModelAgreementPP from the
// model with the prediction outside the measured 95% interval, or (instead) that the
// cell did not measure the race at all (Cell.NotMeasured).
func Findings(cells []Cell) []Finding {
	var out []Finding
	type group struct {
		upstream  string
		timeoutMS float64
	}
	seen := map[group]bool{}
	for i := range cells {
		c := &cells[i]
		s := &c.Server
		g := group{c.Upstream, s.ConfiguredTimeoutMS}
		if !seen[g] && s.ConfiguredTimeoutMS > 0 {
			seen[g] = true
			out = append(out, closeFindings(cells, c.Upstream, s.ConfiguredTimeoutMS)...)
			if f, ok := resetFinding(cells, c.Upstream, s.ConfiguredTimeoutMS); ok {
				out = append(out, f)
			}
		}
		if c.NotMeasured != "" {
			out = append(out, Finding{Upstream: c.Upstream,
				What:     fmt.Sprintf("%s (skew %s, latency %s, %s) did not measure the race", c.Strategy, c.Skew, c.Latency, c.Load),
				Measured: c.NotMeasured,
				Expected: "most requests idle that briefly on a reused connection",
			})
		} else if f, ok := modelFinding(c); ok {
			out = append(out, f)
		}
		out = append(out, matchFindings(c)...)
	}
	return out
}

// cellName is how a finding names a cell: its strategy and axes, and its proxy.
func cellName(c *Cell) string {
	s := fmt.Sprintf("%s (skew %s, latency %s, %s", c.Strategy, c.Skew, c.Latency, c.Load)
	if c.Proxy != "" {
		s += ", behind " + c.Proxy
	}
	return s + ")"
}

// matchFindings are a cell's failures its server's view does not explain: stale
// failures no close of the server's explains (the harness, or behind a proxy the load's
// own connection to it, raced where nothing should), and a proxy's 502s that no idle
// close of the upstream's explains (its own errors, not counted as stale).
func matchFindings(c *Cell) []Finding {
	var out []Finding
	if n := c.Server.UnmatchedFailures; n > 0 {
		expected := "each stale failure explained by the server's close of its connection"
		if c.Proxy != "" {
			expected = "each explained by an idle close of the upstream's: the load's own connection to the proxy never idles out"
		}
		out = append(out, Finding{Upstream: c.Upstream,
			What:     fmt.Sprintf("%d stale failures of %s that no close of the server's explains", n, cellName(c)),
			Measured: fmt.Sprintf("%d of %d stale failures unmatched", n, c.Stale),
			Expected: expected,
		})
	}
	if h := c.Hop; h != nil && h.OwnErrors > 0 {
		out = append(out, Finding{Upstream: c.Upstream,
			What:     fmt.Sprintf("%s answered %d requests 502, 503 or 504 with no idle close of the upstream's to explain them, in %s", c.Proxy, h.OwnErrors, cellName(c)),
			Measured: fmt.Sprintf("%d own errors of %d gateway failures, not counted as stale", h.OwnErrors, c.Failures.BadGateway),
			Expected: "every gateway failure the race (an idle close the proxy's request met)",
		})
	}
	return out
}

// closeFindings pools the cells of one upstream and configured timeout: the median of
// their median closes (a real server's, measured on idle connections before each cell;
// an in-process server's own lateness past its due time).
func closeFindings(cells []Cell, upstream string, timeoutMS float64) []Finding {
	var offsUS []float64
	var samples int
	var maxUS int64
	var keepAlive string
	for i := range cells {
		c := &cells[i]
		if c.Upstream != upstream || c.Server.ConfiguredTimeoutMS != timeoutMS {
			continue
		}
		switch s := &c.Server; {
		case s.CloseJitterUS != nil && s.CloseSamples > 0:
			offsUS = append(offsUS, float64(s.CloseJitterUS.P50))
			samples += s.CloseSamples
			maxUS = max(maxUS, s.CloseJitterUS.Max)
			if keepAlive == "" {
				keepAlive = s.KeepAlive
			}
		case s.IdleCloses > 0 && s.CloseLateUS.P50 > 0 && c.Skew == "none":
			// An in-process server's lateness past T+s; with a skew drawn per period
			// its close is meant to move, so only an unskewed cell says where it is.
			offsUS = append(offsUS, float64(s.CloseLateUS.P50))
			samples += int(s.IdleCloses)
			maxUS = max(maxUS, s.CloseLateUS.Max)
		}
	}
	if len(offsUS) == 0 {
		return nil
	}
	sort.Float64s(offsUS)
	off := offsUS[(len(offsUS)-1)/2] // the lower median: a value some cell measured
	closeMS := timeoutMS + off/1000
	var out []Finding
	if tol := closeTolerance(timeoutMS); math.Abs(off) > tol {
		dir := "after"
		if off < 0 {
			dir = "before"
		}
		out = append(out, Finding{
			Upstream: upstream,
			What:     fmt.Sprintf("idle close lands %s ms %s the configured timeout", fmtMS(math.Abs(off)/1000), dir),
			Measured: fmt.Sprintf("closes %s ms after the response (median of %d cells' medians, %d closes; latest %s ms after the timeout)", fmtMS(closeMS), len(offsUS), samples, fmtMS(float64(maxUS)/1000)),
			Expected: fmt.Sprintf("%s ms (configured), within %s ms", fmtMS(timeoutMS), fmtMS(tol/1000)),
		})
	}
	if adv, ok := AdvertisedTimeoutMS(keepAlive); ok && math.Abs(adv-closeMS)*1000 > closeTolerance(closeMS) {
		out = append(out, Finding{
			Upstream: upstream,
			What:     fmt.Sprintf("Keep-Alive: %s disagrees with the real close", keepAlive),
			Measured: fmt.Sprintf("closes %s ms after the response", fmtMS(closeMS)),
			Expected: fmt.Sprintf("%s ms (advertised)", fmtMS(adv)),
		})
	}
	return out
}

// resetFinding is a server that closes by RST where a FIN was due, as the wire saw it
// (server.wire). Linux resets instead of sending a FIN when a socket is closed with
// bytes unread, so the closes that found a request waiting (the race itself) are taken
// off; what remains is the server's own choice (SO_LINGER 0, an abortive close, a
// middlebox), which a client meets as "connection reset by peer", never as EOF.
func resetFinding(cells []Cell, upstream string, timeoutMS float64) (Finding, bool) {
	var rsts, fins, unread int64
	for i := range cells {
		c := &cells[i]
		if c.Upstream != upstream || c.Server.ConfiguredTimeoutMS != timeoutMS || c.Server.Wire == nil {
			continue
		}
		rsts += c.Server.Wire.ServerRSTs
		fins += c.Server.Wire.ServerFINs
		unread += c.Server.ClosesWithUnread
	}
	excess := rsts - unread
	if excess <= 0 || float64(excess) < 0.01*float64(rsts+fins) {
		return Finding{}, false
	}
	return Finding{
		Upstream: upstream,
		What:     fmt.Sprintf("closes by RST instead of FIN (%d of %d closes)", excess, rsts+fins),
		Measured: fmt.Sprintf("%d RSTs and %d FINs on the wire; %d closes found a request unread, which Linux resets", rsts, fins, unread),
		Expected: "FIN: a client reads EOF and a watcher or read probe sees the close; a RST reads as connection reset by peer",
	}, true
}

// ModelDisagrees reports whether the model does not explain cell c: its measured reset
// rate lies more than ModelAgreementPP points from the prediction and the prediction
// outside the measured 95% interval. A cell without requests agrees.
func ModelDisagrees(c *Cell) bool {
	if c.Requests == 0 {
		return false
	}
	d := 100 * (c.ResetRate - c.PredictedResetRate)
	ci := c.ResetRateCI95
	inside := c.PredictedResetRate >= ci[0] && c.PredictedResetRate <= ci[1]
	return math.Abs(d) > ModelAgreementPP && !inside
}

// modelFinding is a cell the model does not explain (see ModelDisagrees).
func modelFinding(c *Cell) (Finding, bool) {
	if !ModelDisagrees(c) {
		return Finding{}, false
	}
	d := 100 * (c.ResetRate - c.PredictedResetRate)
	ci := c.ResetRateCI95
	return Finding{
		Upstream: c.Upstream,
		What:     fmt.Sprintf("the model disagrees with %s: %+.1f pp", cellName(c), d),
		Measured: fmt.Sprintf("%.1f%% reset (95%% CI %.1f–%.1f%%, %d requests)", 100*c.ResetRate, 100*ci[0], 100*ci[1], c.Requests),
		Expected: fmt.Sprintf("%.1f%% (model)", 100*c.PredictedResetRate),
	}, true
}

// AdvertisedTimeoutMS reads timeout=N (seconds, possibly fractional) from a Keep-Alive
// header value, in ms.
func AdvertisedTimeoutMS(keepAlive string) (float64, bool) {
	for _, part := range strings.Split(keepAlive, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "timeout") {
			continue
		}
		s, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || s < 0 || math.IsInf(s, 0) {
			return 0, false
		}
		return s * 1000, true
	}
	return 0, false
}

// fmtMS formats milliseconds with up to 3 decimals, no trailing zeros: 1000.25.
func fmtMS(ms float64) string { return strconv.FormatFloat(math.Round(ms*1000)/1000, 'f', -1, 64) }

// RenderFindings writes one line per finding, before a run's table:
//
//	finding: node: idle close lands 1000.2 ms after the configured timeout; measured: ...; expected: ...
//
// and nothing when there are none.
func RenderFindings(w io.Writer, fs []Finding) error {
	for _, f := range fs {
		if _, err := fmt.Fprintf(w, "finding: %s: %s; measured: %s; expected: %s\n", tableText(f.Upstream), f.What, f.Measured, f.Expected); err != nil {
			return err
		}
	}
	return nil
}
