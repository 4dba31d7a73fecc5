package report

import (
	"math"
	"slices"
	"sort"
	"strings"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/idlerace/idlerace/results"
)

// DisagreementThreshold is how far a cell's measured reset rate may lie from the
// model's prediction, as an absolute difference of rates, before the report lists the
// cell as a disagreement: |reset_rate − predicted_reset_rate| > 0.05.
const DisagreementThreshold = 0.05

// combo is one condition a strategy was measured under: a panel of the race and
// latency charts and a column of the heatmap. Cells with the same combo and strategy
// (other loads, repeats) are pooled.
type combo struct {
	Upstream, Skew, Latency string
}

// tally pools the cells of one strategy under one combo (or under all combos).
type tally struct {
	cells             []int // indexes into the summary's cells
	requests, stale   int64
	newConns, retries int64
	predictedStale    float64 // Σ predicted_reset_rate × requests
	hist              *hdrhistogram.Histogram
	histCells         int     // how many cells' histograms are in hist
	p99FromCellsUS    float64 // Σ cell p99 (µs) × requests: their weighted mean, when no hlog
	p99WeightRequests int64
	curve             map[curveKey]*curvePoint
	curveSeen         bool
}

// curveKey is a race-curve bin: its centre (g - T) and width, in ns, so that the same
// bin of two cells pools, and bins of two widths stay apart.
type curveKey struct{ centreNS, widthNS int64 }

type curvePoint struct {
	gapMinusTMS, binMS float64
	requests, stale    int64
	retried            int64
	predictedRequests  float64 // Σ predicted × requests
}

func (t *tally) resetRate() float64 {
	if t.requests == 0 {
		return math.NaN()
	}
	return float64(t.stale) / float64(t.requests)
}

func (t *tally) predictedRate() float64 {
	if t.requests == 0 {
		return math.NaN()
	}
	return t.predictedStale / float64(t.requests)
}

func (t *tally) connsPer1k() float64 {
	if t.requests == 0 {
		return math.NaN()
	}
	return float64(t.newConns) * 1000 / float64(t.requests)
}

// p99US is the 99th percentile latency in µs: from the pooled histogram when every
// cell's .hlog was read, else the request-weighted mean of the cells' own p99 (the
// best the summary alone can say). NaN when neither is known.
func (t *tally) p99US() float64 {
	if t.hist != nil && t.histCells == len(t.cells) && t.hist.TotalCount() > 0 {
		return float64(t.hist.ValueAtQuantile(99))
	}
	if t.p99WeightRequests > 0 {
		return t.p99FromCellsUS / float64(t.p99WeightRequests)
	}
	return math.NaN()
}

// sortedCurve returns the pooled race curve in order of gap.
func (t *tally) sortedCurve() []*curvePoint {
	pts := make([]*curvePoint, 0, len(t.curve))
	for _, p := range t.curve {
		pts = append(pts, p)
	}
	sort.Slice(pts, func(i, j int) bool {
		if pts[i].gapMinusTMS != pts[j].gapMinusTMS {
			return pts[i].gapMinusTMS < pts[j].gapMinusTMS
		}
		return pts[i].binMS < pts[j].binMS
	})
	return pts
}

func (t *tally) add(i int, c *results.Cell, h *hdrhistogram.Histogram) {
	t.cells = append(t.cells, i)
	t.requests += c.Requests
	t.stale += c.Stale
	t.newConns += c.NewConns
	t.retries += c.Retries
	t.predictedStale += c.PredictedResetRate * float64(c.Requests)
	if c.LatencyUS.P99 > 0 && c.Requests > 0 {
		t.p99FromCellsUS += float64(c.LatencyUS.P99) * float64(c.Requests)
		t.p99WeightRequests += c.Requests
	}
	if h != nil {
		if t.hist == nil {
			t.hist = results.NewLatencyHistogram()
		}
		t.hist.Merge(h)
		t.histCells++
	}
	if t.curve == nil {
		t.curve = map[curveKey]*curvePoint{}
	}
	for _, p := range c.Curve {
		centre, width := p.CurveBin(c.IdleTimeoutMS)
		if p.Requests <= 0 || !finite(centre) || !finite(width) || width <= 0 {
			continue
		}
		t.curveSeen = true
		key := curveKey{int64(math.Round(centre * 1e6)), int64(math.Round(width * 1e6))}
		cp := t.curve[key]
		if cp == nil {
			cp = &curvePoint{gapMinusTMS: float64(key.centreNS) / 1e6, binMS: float64(key.widthNS) / 1e6}
			t.curve[key] = cp
		}
		cp.requests += p.Requests
		cp.stale += p.Stale
		cp.retried += p.Retried
		cp.predictedRequests += p.Predicted * float64(p.Requests)
	}
}

// view is everything the charts and tables are drawn from: the run's strategies and
// combos in the order the run met them, the pooled tallies, and the cells that
// disagree with the model.
type view struct {
	run        *run
	strategies []string
	combos     []combo
	// varies says which of the combo's fields take more than one value; labels show
	// only those.
	variesUpstream, variesSkew, variesLatency bool
	byCombo                                   map[combo]map[string]*tally // combo -> strategy -> tally
	byStrategy                                map[string]*tally           // every combo pooled
	disagree                                  []int                       // cell indexes, largest disagreement first
	frontConns                                map[string]bool             // Pareto front of reset rate vs conns/1k
	frontP99                                  map[string]bool             // Pareto front of reset rate vs p99
}

func newView(r *run) *view {
	v := &view{
		run:        r,
		byCombo:    map[combo]map[string]*tally{},
		byStrategy: map[string]*tally{},
	}
	cells := r.summary.Cells
	for i := range cells {
		c := &cells[i]
		k := combo{pathOf(c), c.Skew, c.Latency}
		if !slices.Contains(v.strategies, c.Strategy) {
			v.strategies = append(v.strategies, c.Strategy)
		}
		if _, ok := v.byCombo[k]; !ok {
			v.combos = append(v.combos, k)
			v.byCombo[k] = map[string]*tally{}
		}
		t := v.byCombo[k][c.Strategy]
		if t == nil {
			t = &tally{}
			v.byCombo[k][c.Strategy] = t
		}
		t.add(i, c, r.hists[i])
		all := v.byStrategy[c.Strategy]
		if all == nil {
			all = &tally{}
			v.byStrategy[c.Strategy] = all
		}
		all.add(i, c, r.hists[i])
		if c.Requests > 0 && math.Abs(c.ResetRate-c.PredictedResetRate) > DisagreementThreshold {
			v.disagree = append(v.disagree, i)
		}
	}
	for _, k := range v.combos {
		v.variesUpstream = v.variesUpstream || k.Upstream != v.combos[0].Upstream
		v.variesSkew = v.variesSkew || k.Skew != v.combos[0].Skew
		v.variesLatency = v.variesLatency || k.Latency != v.combos[0].Latency
	}
	sort.SliceStable(v.disagree, func(a, b int) bool {
		ca, cb := &cells[v.disagree[a]], &cells[v.disagree[b]]
		return math.Abs(ca.ResetRate-ca.PredictedResetRate) > math.Abs(cb.ResetRate-cb.PredictedResetRate)
	})
	v.frontConns = v.front(func(t *tally) float64 { return t.connsPer1k() })
	v.frontP99 = v.front(func(t *tally) float64 { return t.p99US() })
	return v
}

// front marks the strategies on the Pareto front of (reset rate, cost(strategy)).
func (v *view) front(cost func(*tally) float64) map[string]bool {
	pts := make([]point, len(v.strategies))
	for i, s := range v.strategies {
		t := v.byStrategy[s]
		pts[i] = point{t.resetRate(), cost(t)}
	}
	on := paretoFront(pts)
	out := map[string]bool{}
	for i, s := range v.strategies {
		if on[i] {
			out[s] = true
		}
	}
	return out
}

// point is a strategy in a cost view: x is its reset rate, y its cost.
type point struct{ x, y float64 }

// paretoFront reports, for each point, whether no other point beats it on both
// coordinates: no other is at most as bad on both and strictly better on one. Lower is
// better on both. A point with a NaN coordinate is never on the front and never beats
// another. Equal points are on the front together.
func paretoFront(pts []point) []bool {
	on := make([]bool, len(pts))
	for i, p := range pts {
		if math.IsNaN(p.x) || math.IsNaN(p.y) {
			continue
		}
		on[i] = true
		for j, q := range pts {
			if j == i || math.IsNaN(q.x) || math.IsNaN(q.y) {
				continue
			}
			if q.x <= p.x && q.y <= p.y && (q.x < p.x || q.y < p.y) {
				on[i] = false
				break
			}
		}
	}
	return on
}

// label names a combo by the fields that vary across the run, joined by sep; with
// nothing varying, by its skew.
func (v *view) label(k combo, sep string) string {
	var parts []string
	if v.variesSkew {
		parts = append(parts, k.Skew)
	}
	if v.variesLatency {
		parts = append(parts, "latency "+k.Latency)
	}
	if v.variesUpstream {
		parts = append(parts, k.Upstream)
	}
	if len(parts) == 0 {
		parts = append(parts, "skew "+k.Skew)
	}
	return strings.Join(parts, sep)
}

// title names a combo for a panel: "skew none · latency 1ms", with the fixed fields
// left to constant().
func (v *view) title(k combo) string {
	var parts []string
	if v.variesSkew || (!v.variesLatency && !v.variesUpstream) {
		parts = append(parts, "skew "+k.Skew)
	}
	if v.variesLatency {
		parts = append(parts, "latency "+k.Latency)
	}
	if v.variesUpstream {
		parts = append(parts, "upstream "+k.Upstream)
	}
	return strings.Join(parts, " · ")
}

// constant names the combo fields that are the same in every cell: "upstream builtin,
// latency 0". Empty when all vary or there are no cells.
func (v *view) constant() string {
	if len(v.combos) == 0 {
		return ""
	}
	k := v.combos[0]
	var parts []string
	if !v.variesUpstream {
		parts = append(parts, "upstream "+k.Upstream)
	}
	if !v.variesLatency {
		parts = append(parts, "latency "+k.Latency)
	}
	if !v.variesSkew && (v.variesLatency || v.variesUpstream) {
		parts = append(parts, "skew "+k.Skew)
	}
	return strings.Join(parts, ", ")
}

// axisName names the varying combo fields, for the heatmap's axis: "skew / latency".
func (v *view) axisName(sep string) string {
	var parts []string
	if v.variesSkew || (!v.variesLatency && !v.variesUpstream) {
		parts = append(parts, "skew")
	}
	if v.variesLatency {
		parts = append(parts, "latency")
	}
	if v.variesUpstream {
		parts = append(parts, "upstream")
	}
	return strings.Join(parts, sep)
}

// disagrees reports whether cell i is one the model does not explain.
func (v *view) disagrees(i int) bool { return slices.Contains(v.disagree, i) }

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// pathOf names where a cell's requests went: its upstream, behind its proxy when it had
// one ("nginx → builtin").
func pathOf(c *results.Cell) string {
	if c.Proxy != "" {
		return c.Proxy + " → " + c.Upstream
	}
	return c.Upstream
}
