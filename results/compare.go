package results

import (
	"fmt"
	"io"
	"math"
	"sort"
	"text/tabwriter"

	"golang.org/x/perf/benchmath"
	"gonum.org/v1/gonum/stat/distuv"
)

// CellKey names what a cell measured, without its repeat: cells of two runs with the
// same key are compared, and repeats of one key are pooled.
func CellKey(c Cell) string {
	k := c.Strategy + "|" + c.Upstream + "|" + c.Skew + "|" + c.Latency + "|" + c.Load
	// What else sets a cell apart from its neighbours, as its ID says it: cells behind
	// different proxies, or of another method, are not repeats of one another.
	if c.Method != "" {
		k += "|" + c.Method
	}
	if c.Proxy != "" {
		k += "|proxy=" + c.Proxy
	}
	return k
}

// Side is one run's view of a compared key, pooled over its repeats.
type Side struct {
	Repeats    int        `json:"repeats"`
	Requests   int64      `json:"requests"`
	Stale      int64      `json:"stale"`
	ResetRate  float64    `json:"reset_rate"`
	CI95       [2]float64 `json:"reset_rate_ci95"`
	ConnsPer1k float64    `json:"conns_per_1k"`
	// P50US and P99US hold each repeat's percentile; their medians are shown.
	P50US []float64 `json:"p50_us"`
	P99US []float64 `json:"p99_us"`
}

// MedianP50 and MedianP99 summarise a side's repeats.
func (s Side) MedianP50() float64 { return median(s.P50US) }

// MedianP99 is the median over repeats of each repeat's p99.
func (s Side) MedianP99() float64 { return median(s.P99US) }

// Verdicts of a comparison row.
const (
	Better = "better"
	Worse  = "worse"
	Same   = "same"
)

// Row compares one key of two runs.
type Row struct {
	Strategy string `json:"strategy"`
	Upstream string `json:"upstream"`
	Skew     string `json:"skew"`
	Latency  string `json:"latency"`
	Load     string `json:"load"`
	Base     Side   `json:"base"`
	New      Side   `json:"new"`
	// ResetP is the p-value of "the two reset rates are equal" (chi-square test of the
	// 2x2 table stale/ok × base/new, Yates-corrected).
	ResetP float64 `json:"reset_p"`
	// P50P and P99P are Mann-Whitney U p-values over the repeats' percentiles
	// (benchmath.AssumeNothing, as benchstat uses); 1 when there are too few repeats to
	// tell anything.
	P50P         float64 `json:"p50_p"`
	P99P         float64 `json:"p99_p"`
	ResetVerdict string  `json:"reset_verdict"`
	P99Verdict   string  `json:"p99_verdict"`
	// Verdict is worse if any metric is significantly worse, else better if any is
	// significantly better, else same.
	Verdict string `json:"verdict"`
}

// Comparison is the result of comparing two runs.
type Comparison struct {
	Alpha float64 `json:"alpha"`
	Rows  []Row   `json:"rows"`
	// OnlyBase and OnlyNew list keys that one run has and the other lacks.
	OnlyBase []string `json:"only_base,omitempty"`
	OnlyNew  []string `json:"only_new,omitempty"`
}

// Compare pools each run's repeats by key and compares the keys both runs have, in the
// order of base.
func Compare(base, new *Summary, alpha float64) *Comparison {
	b, bOrder := pool(base)
	n, _ := pool(new)
	out := &Comparison{Alpha: alpha}
	for _, k := range bOrder {
		bs := b[k]
		ns, ok := n[k]
		if !ok {
			out.OnlyBase = append(out.OnlyBase, k)
			continue
		}
		c := bs.cell
		r := Row{Strategy: c.Strategy, Upstream: c.Upstream, Skew: c.Skew, Latency: c.Latency, Load: c.Load, Base: bs.side, New: ns.side}
		r.ResetP = TwoProportionP(bs.side.Stale, bs.side.Requests, ns.side.Stale, ns.side.Requests)
		r.P50P = RepeatsP(bs.side.P50US, ns.side.P50US, alpha)
		r.P99P = RepeatsP(bs.side.P99US, ns.side.P99US, alpha)
		r.ResetVerdict = verdict(r.ResetP, alpha, bs.side.ResetRate, ns.side.ResetRate)
		r.P99Verdict = verdict(r.P99P, alpha, bs.side.MedianP99(), ns.side.MedianP99())
		r.Verdict = Same
		for _, v := range []string{r.ResetVerdict, r.P99Verdict, verdict(r.P50P, alpha, bs.side.MedianP50(), ns.side.MedianP50())} {
			if v == Worse {
				r.Verdict = Worse
			} else if v == Better && r.Verdict == Same {
				r.Verdict = Better
			}
		}
		out.Rows = append(out.Rows, r)
	}
	for k := range n {
		if _, ok := b[k]; !ok {
			out.OnlyNew = append(out.OnlyNew, k)
		}
	}
	sort.Strings(out.OnlyNew)
	return out
}

// verdict says whether new is significantly lower (better) or higher (worse) than base.
func verdict(p, alpha, base, new float64) string {
	switch {
	case p >= alpha || base == new:
		return Same
	case new < base:
		return Better
	default:
		return Worse
	}
}

type pooled struct {
	cell Cell
	side Side
}

func pool(s *Summary) (map[string]*pooled, []string) {
	m := map[string]*pooled{}
	var order []string
	for _, c := range s.Cells {
		k := CellKey(c)
		p, ok := m[k]
		if !ok {
			p = &pooled{cell: c}
			m[k] = p
			order = append(order, k)
		}
		p.side.Repeats++
		p.side.Requests += c.Requests
		p.side.Stale += c.Stale
		p.side.ConnsPer1k += c.ConnsPer1k * float64(c.Requests)
		p.side.P50US = append(p.side.P50US, float64(c.LatencyUS.P50))
		p.side.P99US = append(p.side.P99US, float64(c.LatencyUS.P99))
	}
	for _, p := range m {
		if p.side.Requests > 0 {
			p.side.ResetRate = float64(p.side.Stale) / float64(p.side.Requests)
			p.side.ConnsPer1k /= float64(p.side.Requests)
		}
		p.side.CI95 = Wilson(p.side.Stale, p.side.Requests)
	}
	return m, order
}

// TwoProportionP is the p-value of the chi-square test (1 degree of freedom, Yates'
// continuity correction, which keeps small counts from crying wolf) that k1/n1 and
// k2/n2 come from the same rate. It is 1 when either side is empty or both rates are 0
// or 1.
func TwoProportionP(k1, n1, k2, n2 int64) float64 {
	if n1 <= 0 || n2 <= 0 {
		return 1
	}
	a, b := float64(k1), float64(n1-k1)
	c, d := float64(k2), float64(n2-k2)
	n := a + b + c + d
	r1, r2, c1, c2 := a+b, c+d, a+c, b+d
	if c1 == 0 || c2 == 0 {
		return 1
	}
	diff := math.Abs(a*d-b*c) - n/2
	if diff < 0 {
		diff = 0
	}
	chi2 := n * diff * diff / (r1 * r2 * c1 * c2)
	return distuv.ChiSquared{K: 1}.Survival(chi2)
}

// RepeatsP is the Mann-Whitney U p-value that two sets of per-repeat values come from
// the same distribution (benchmath.AssumeNothing, as benchstat). With fewer repeats than
// the test needs to reach alpha, it is 1.
func RepeatsP(base, new []float64, alpha float64) float64 {
	if len(base) == 0 || len(new) == 0 {
		return 1
	}
	th := benchmath.DefaultThresholds
	th.CompareAlpha = alpha
	s1 := benchmath.NewSample(append([]float64(nil), base...), &th)
	s2 := benchmath.NewSample(append([]float64(nil), new...), &th)
	cmp := benchmath.AssumeNothing.Compare(s1, s2)
	if math.IsNaN(cmp.P) {
		return 1
	}
	return cmp.P
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// RenderCompareTable writes a comparison as a plain-text table.
func RenderCompareTable(w io.Writer, c *Comparison) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "STRATEGY\tSKEW\tUPSTREAM\tRESET% BASE\tRESET% NEW\tP\tP99ms BASE\tP99ms NEW\tP\tCONN/1k BASE\tCONN/1k NEW\tVERDICT")
	for _, r := range c.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.3g\t%.2f\t%.2f\t%.3g\t%.1f\t%.1f\t%s\n",
			tableText(r.Strategy), tableText(r.Skew), tableText(r.Upstream),
			ratePct(r.Base), ratePct(r.New), r.ResetP,
			r.Base.MedianP99()/1000, r.New.MedianP99()/1000, r.P99P,
			r.Base.ConnsPer1k, r.New.ConnsPer1k, r.Verdict)
	}
	for _, k := range c.OnlyBase {
		fmt.Fprintf(tw, "only in base: %s\n", k)
	}
	for _, k := range c.OnlyNew {
		fmt.Fprintf(tw, "only in new: %s\n", k)
	}
	return tw.Flush()
}

// Worse reports whether any row is significantly worse.
func (c *Comparison) Worse() bool {
	for _, r := range c.Rows {
		if r.Verdict == Worse {
			return true
		}
	}
	return false
}
