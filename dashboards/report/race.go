package report

import (
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// raceFigure draws the race curve: for each combo a panel, and in it for each strategy
// the share of exposed requests that failed stale, bin by bin of the idle gap g as a
// fraction of T, with the model's prediction dashed in the same colour. A thin grey
// line marks g = T, where a blind pool starts to lose.
func (v *view) raceFigure() (figure, error) {
	f := figure{name: "race-curve", cols: 3, panelW: 235, panelH: 190, legendW: 190}
	any := false
	for _, k := range v.combos {
		p := newPlot(v.title(k), "idle gap g / T", "P(stale failure)")
		addGrid(p)
		drawn := 0
		for _, s := range v.strategies {
			t := v.byCombo[k][s]
			if t == nil || !t.curveSeen {
				continue
			}
			measured, predicted := plotter.XYs{}, plotter.XYs{}
			for _, cp := range t.sortedCurve() {
				measured = append(measured, plotter.XY{X: cp.gapOverT, Y: float64(cp.stale) / float64(cp.requests)})
				predicted = append(predicted, plotter.XY{X: cp.gapOverT, Y: cp.predictedRequests / float64(cp.requests)})
			}
			ml, err := line(measured, v.colour(s), 1.4, v.dashes(s))
			if err != nil {
				return f, err
			}
			pl, err := line(predicted, v.colour(s), 1, modelDash)
			if err != nil {
				return f, err
			}
			p.Add(pl, ml)
			drawn++
		}
		if drawn == 0 {
			f.panels = append(f.panels, emptyPanel(v.title(k), "no race-curve bins recorded"))
			continue
		}
		any = true
		p.Y.Min, p.Y.Max = 0, 1
		ref, err := line(plotter.XYs{{X: 1, Y: 0}, {X: 1, Y: 1}}, color.Gray{0x99}, 0.6, []vg.Length{1, 2})
		if err != nil {
			return f, err
		}
		p.Add(ref)
		p.Y.Tick.Marker = plot.ConstantTicks{{Value: 0, Label: "0"}, {Value: 0.25}, {Value: 0.5, Label: "0.5"}, {Value: 0.75}, {Value: 1, Label: "1"}}
		f.panels = append(f.panels, p)
	}
	if lo, hi, ok := v.raceFocus(); ok {
		for _, p := range f.panels {
			if p.X.Label.Text != "" { // not an empty panel
				p.X.Min, p.X.Max = lo, hi
			}
		}
	}
	if !any {
		f.panels = []*plot.Plot{emptyPanel("race curve", "no cell carries a race curve (summary.json \"curve\")")}
		f.legendW = 0
		return f, nil
	}
	l := newLegend()
	for _, s := range v.strategies {
		ml, _ := line(nil, v.colour(s), 1.4, v.dashes(s))
		l.Add(s, ml)
	}
	model, _ := line(nil, color.Gray{0x44}, 1, modelDash)
	l.Add("model (dashed)", model)
	ref, _ := line(nil, color.Gray{0x99}, 0.6, []vg.Length{1, 2})
	l.Add("g = T", ref)
	f.legend = &l
	return f, nil
}

// raceFocus is the range of g/T the race curve shows, the same in every panel: from
// the first bin where any curve, measured or predicted, changes from its previous bin
// to the last, with 3% of T either side, within the bins there are. Flat stretches
// outside (0 before the race, a blind pool's 1 after it) are left out; a stray failure
// far from T is a change, so it stays in view.
func (v *view) raceFocus() (lo, hi float64, ok bool) {
	first, last := math.Inf(1), math.Inf(-1)
	dataLo, dataHi := math.Inf(1), math.Inf(-1)
	for _, byStrategy := range v.byCombo {
		for _, t := range byStrategy {
			pts := t.sortedCurve()
			for i, cp := range pts {
				dataLo, dataHi = math.Min(dataLo, cp.gapOverT), math.Max(dataHi, cp.gapOverT)
				if i == 0 {
					continue
				}
				prev := pts[i-1]
				m0, m1 := float64(prev.stale)/float64(prev.requests), float64(cp.stale)/float64(cp.requests)
				p0, p1 := prev.predictedRequests/float64(prev.requests), cp.predictedRequests/float64(cp.requests)
				if math.Abs(m1-m0) > 1e-9 || math.Abs(p1-p0) > 1e-9 {
					first, last = math.Min(first, prev.gapOverT), math.Max(last, cp.gapOverT)
				}
			}
		}
	}
	if math.IsInf(first, 0) {
		return 0, 0, false
	}
	return math.Max(dataLo, first-0.03), math.Min(dataHi, last+0.03), true
}

// addGrid adds faint grid lines, drawn under whatever is added after it.
func addGrid(p *plot.Plot) {
	g := plotter.NewGrid()
	g.Vertical.Color = color.Gray{0xe4}
	g.Horizontal.Color = color.Gray{0xe4}
	g.Vertical.Width = 0.5
	g.Horizontal.Width = 0.5
	p.Add(g)
}
