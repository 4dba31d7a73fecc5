package results

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Check is one rule applied to one cell key.
type Check struct {
	Rule   string `json:"rule"`
	Metric string `json:"metric"`
	// Kind is "absolute" or "regression".
	Kind string `json:"kind"`
	Cell string `json:"cell"`
	// Base is the baseline's value (regression rules only), New this run's.
	Base  float64 `json:"base,omitempty"`
	New   float64 `json:"new"`
	Limit float64 `json:"limit"`
	// P is the p-value of the rise (regression rules only); Holm-corrected rejection at
	// the policy's alpha decides whether it is significant.
	P           float64 `json:"p,omitempty"`
	Significant bool    `json:"significant,omitempty"`
	Pass        bool    `json:"pass"`
	Message     string  `json:"message"`
}

// GateResult is a gate's verdict.
type GateResult struct {
	Policy string  `json:"policy"`
	Alpha  float64 `json:"alpha"`
	Checks []Check `json:"checks"`
	Failed int     `json:"failed"`
	// Notes say what could not be checked (a rule with no matching cell, a regression
	// rule without a baseline cell).
	Notes []string `json:"notes,omitempty"`
}

// Passed reports whether every check passed.
func (g *GateResult) Passed() bool { return g.Failed == 0 }

// Gate applies the policy to run (and, for regression rules, base; nil when there is no
// baseline, in which case regression rules are noted as not checked).
func Gate(p *Policy, run, base *Summary) *GateResult {
	g := &GateResult{Policy: p.Path, Alpha: p.Alpha}
	newCells, order := group(run)
	var baseCells map[string][]Cell
	if base != nil {
		baseCells, _ = group(base)
	}
	for _, r := range p.Rules {
		matched := 0
		// Absolute limits.
		if r.Max != nil || r.Min != nil {
			for _, k := range order {
				cells := newCells[k]
				if !r.matches(cells[0]) {
					continue
				}
				matched++
				v := pooledMetric(r.Metric, cells)
				c := Check{Rule: r.Name, Metric: r.Metric, Kind: "absolute", Cell: k, New: v, Pass: true}
				if why := notMeasured(cells); why != "" {
					c.Pass, c.Limit = false, limitOf(r)
					c.Message = fmt.Sprintf("%s: rule %q: not measured: %s", k, r.Name, why)
				} else if r.Max != nil && v > *r.Max {
					c.Pass, c.Limit = false, *r.Max
					c.Message = fmt.Sprintf("%s: rule %q: %s = %s > %s", k, r.Name, r.Metric, num(v), num(*r.Max))
				} else if r.Min != nil && v < *r.Min {
					c.Pass, c.Limit = false, *r.Min
					c.Message = fmt.Sprintf("%s: rule %q: %s = %s < %s", k, r.Name, r.Metric, num(v), num(*r.Min))
				} else {
					c.Limit = limitOf(r)
					c.Message = fmt.Sprintf("%s: %s = %s within %s", k, r.Metric, num(v), r.Name)
				}
				g.add(c)
			}
		}
		// Regressions against the baseline: beyond the threshold and significant after
		// Holm's correction over the rule's cells.
		if r.MaxIncrease != nil {
			if base == nil {
				g.Notes = append(g.Notes, fmt.Sprintf("rule %q needs --baseline: not checked", r.Name))
				continue
			}
			var checks []Check
			for _, k := range order {
				cells := newCells[k]
				if !r.matches(cells[0]) {
					continue
				}
				matched++
				bc, ok := baseCells[k]
				if !ok {
					g.Notes = append(g.Notes, fmt.Sprintf("rule %q: %s has no baseline cell: not checked", r.Name, k))
					continue
				}
				bv, nv := pooledMetric(r.Metric, bc), pooledMetric(r.Metric, cells)
				limit := bv + *r.MaxIncrease
				if r.IncreaseRelative {
					limit = bv * (1 + *r.MaxIncrease)
				}
				checks = append(checks, Check{Rule: r.Name, Metric: r.Metric, Kind: "regression", Cell: k,
					Base: bv, New: nv, Limit: limit, P: riseP(r.Metric, bc, cells, p.Alpha)})
			}
			holm(checks, p.Alpha)
			for _, c := range checks {
				beyond := c.New > c.Limit
				c.Pass = !(beyond && c.Significant)
				why := notMeasured(newCells[c.Cell])
				if why != "" {
					c.Pass = false
				}
				switch {
				case why != "":
					c.Message = fmt.Sprintf("%s: rule %q: not measured: %s", c.Cell, r.Name, why)
				case !c.Pass:
					c.Message = fmt.Sprintf("%s: rule %q: %s rose from %s to %s (limit %s), p = %.3g (significant at alpha %g, Holm over %d cells)",
						c.Cell, r.Name, r.Metric, num(c.Base), num(c.New), num(c.Limit), c.P, p.Alpha, len(checks))
				case beyond:
					c.Message = fmt.Sprintf("%s: %s rose from %s to %s (limit %s) but p = %.3g is not significant", c.Cell, r.Metric, num(c.Base), num(c.New), num(c.Limit), c.P)
				default:
					c.Message = fmt.Sprintf("%s: %s %s -> %s within %s", c.Cell, r.Metric, num(c.Base), num(c.New), r.Name)
				}
				g.add(c)
			}
		}
		if matched == 0 {
			g.Notes = append(g.Notes, fmt.Sprintf("rule %q matched no cell", r.Name))
		}
	}
	return g
}

// notMeasured is why the first of cells that did not measure the race did not, "" when
// they all did: a rate of 0 from a cell that never reused a connection is not a pass.
func notMeasured(cells []Cell) string {
	for _, c := range cells {
		if c.NotMeasured != "" {
			return c.NotMeasured
		}
	}
	return ""
}

func (g *GateResult) add(c Check) {
	if !c.Pass {
		g.Failed++
	}
	g.Checks = append(g.Checks, c)
}

func limitOf(r Rule) float64 {
	if r.Max != nil {
		return *r.Max
	}
	if r.Min != nil {
		return *r.Min
	}
	return 0
}

func (r Rule) matches(c Cell) bool {
	proxy := c.Proxy
	if proxy == "" {
		proxy = "none"
	}
	fields := map[string]string{"strategy": c.Strategy, "upstream": c.Upstream, "skew": c.Skew, "latency": c.Latency, "load": c.Load, "proxy": proxy}
	for k, v := range r.Where {
		if fields[k] != v {
			return false
		}
	}
	return true
}

// holm marks which p-values Holm's step-down procedure rejects at family-wise alpha.
func holm(checks []Check, alpha float64) {
	idx := make([]int, len(checks))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return checks[idx[a]].P < checks[idx[b]].P })
	m := len(checks)
	for rank, i := range idx {
		if checks[i].P > alpha/float64(m-rank) {
			break
		}
		checks[i].Significant = true
	}
}

// riseP is the p-value that the metric's base and new values are the same.
func riseP(metric string, base, new []Cell, alpha float64) float64 {
	sum := func(cells []Cell, f func(Cell) int64) (k, n int64) {
		for _, c := range cells {
			k += f(c)
			n += c.Requests
		}
		return
	}
	switch metric {
	case "reset_rate", "conns_per_1k", "retries_per_1k":
		pick := map[string]func(Cell) int64{
			"reset_rate":     func(c Cell) int64 { return c.Stale },
			"conns_per_1k":   func(c Cell) int64 { return min(c.NewConns, c.Requests) },
			"retries_per_1k": func(c Cell) int64 { return min(c.Retries, c.Requests) },
		}[metric]
		k1, n1 := sum(base, pick)
		k2, n2 := sum(new, pick)
		return TwoProportionP(k1, n1, k2, n2)
	case "unmatched_failures", "duplicates":
		// Exact counts of events that should not happen: any rise is real.
		if pooledMetric(metric, new) > pooledMetric(metric, base) {
			return 0
		}
		return 1
	default: // latency percentiles: Mann-Whitney over the repeats
		vals := func(cells []Cell) []float64 {
			out := make([]float64, len(cells))
			for i, c := range cells {
				out[i] = Metrics[metric](c)
			}
			return out
		}
		return RepeatsP(vals(base), vals(new), alpha)
	}
}

// pooledMetric is a key's value over its repeats: rates pooled over requests, counts
// summed, latency percentiles the median of the repeats'.
func pooledMetric(metric string, cells []Cell) float64 {
	var stale, req, conns, retries, count int64
	var lat []float64
	for _, c := range cells {
		stale += c.Stale
		req += c.Requests
		conns += c.NewConns
		retries += c.Retries
		count += int64(Metrics[metric](c))
		lat = append(lat, Metrics[metric](c))
	}
	switch metric {
	case "reset_rate":
		if req == 0 {
			return 0
		}
		return float64(stale) / float64(req)
	case "conns_per_1k":
		return per1k(conns, req)
	case "retries_per_1k":
		return per1k(retries, req)
	case "unmatched_failures", "duplicates":
		return float64(count)
	default:
		return median(lat)
	}
}

func group(s *Summary) (map[string][]Cell, []string) {
	m := map[string][]Cell{}
	var order []string
	for _, c := range s.Cells {
		k := CellKey(c)
		if _, ok := m[k]; !ok {
			order = append(order, k)
		}
		m[k] = append(m[k], c)
	}
	return m, order
}

// num prints a metric value compactly.
func num(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e12 {
		return fmt.Sprintf("%.0f", v)
	}
	s := fmt.Sprintf("%.4g", v)
	if !strings.Contains(s, ".") || strings.ContainsAny(s, "eE") {
		return s // "660" (659.96 to 4 digits) keeps its zero; "1.2e+05" its exponent
	}
	return strings.TrimRight(strings.TrimRight(s, "0"), ".")
}
