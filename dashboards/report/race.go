package report

import (
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// raceFigure draws the race curve over the whole sweep: for each combo a panel, and in
// it for each strategy the share of exposed requests that failed stale, bin by bin of
// g - T in ms, with the model's prediction dashed in the same colour. A thin grey line
// marks g = T, where a blind pool starts to lose.
func (v *view) raceFigure() (figure, error) {
	lo, hi, ok := v.raceSpan()
	return v.racePanels("race-curve", lo, hi, ok)
}

// raceWindowFigure draws the same panels zoomed on the window: the gaps where some
// strategy's curve, measured or predicted, lies between 2% and 98% (see raceWindow).
func (v *view) raceWindowFigure() (figure, error) {
	lo, hi, ok := v.raceWindow()
	return v.racePanels("race-window", lo, hi, ok)
}

func (v *view) racePanels(name string, lo, hi float64, ranged bool) (figure, error) {
	f := figure{name: name, cols: 3, panelW: 235, panelH: 190, legendW: 190}
	any := false
	for _, k := range v.combos {
		p := newPlot(v.title(k), "g − T (ms)", "P(stale failure)")
		addGrid(p)
		drawn := 0
		for _, s := range v.strategies {
			t := v.byCombo[k][s]
			if t == nil || !t.curveSeen {
				continue
			}
			measured, predicted := plotter.XYs{}, plotter.XYs{}
			for _, cp := range t.sortedCurve() {
				if ranged && (cp.gapMinusTMS < lo || cp.gapMinusTMS > hi) {
					continue // off the axis: gonum would draw it over the margin
				}
				measured = append(measured, plotter.XY{X: cp.gapMinusTMS, Y: float64(cp.stale) / float64(cp.requests)})
				predicted = append(predicted, plotter.XY{X: cp.gapMinusTMS, Y: cp.predictedRequests / float64(cp.requests)})
			}
			if len(measured) == 0 {
				continue
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
		ref, err := line(plotter.XYs{{X: 0, Y: 0}, {X: 0, Y: 1}}, color.Gray{0x99}, 0.6, []vg.Length{1, 2})
		if err != nil {
			return f, err
		}
		p.Add(ref)
		p.Y.Tick.Marker = plot.ConstantTicks{{Value: 0, Label: "0"}, {Value: 0.25}, {Value: 0.5, Label: "0.5"}, {Value: 0.75}, {Value: 1, Label: "1"}}
		if ranged {
			p.X.Min, p.X.Max = lo, hi
		}
		f.panels = append(f.panels, p)
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

// raceSpan is the range of g - T (ms) the whole-sweep chart shows, the same in every
// panel: every bin there is, edge to edge.
func (v *view) raceSpan() (lo, hi float64, ok bool) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, byStrategy := range v.byCombo {
		for _, t := range byStrategy {
			for _, cp := range t.curve {
				lo, hi = math.Min(lo, cp.gapMinusTMS-cp.binMS/2), math.Max(hi, cp.gapMinusTMS+cp.binMS/2)
			}
		}
	}
	return lo, hi, lo < hi
}

// Window bounds: a curve between these two values is moving (raceWindow).
const windowLow, windowHigh = 0.02, 0.98

// minWindowRequests is how many requests a bin needs to place the window: a gap far
// out in the sweep's tail (a lane preempted for 15 ms, a late close of the builtin's)
// holds one or two requests, and one stale of three is no window.
const minWindowRequests = 5

// raceWindow is the range of g - T (ms) the window chart shows, the same in every
// panel: from the first bin to the last where any curve, measured or predicted, lies
// between 2% and 98%, widened by half its width (at least two of its bins) each side;
// bins of fewer than minWindowRequests requests do not count.
// Where no curve passes through that band (a blind pool that steps from 0 to 1 between
// two bins), the bins where some curve changes from one bin to the next stand in.
func (v *view) raceWindow() (lo, hi float64, ok bool) {
	lo, hi = math.Inf(1), math.Inf(-1)
	bin := math.Inf(1)
	moving := func(x float64) bool { return x >= windowLow && x <= windowHigh }
	for _, byStrategy := range v.byCombo {
		for _, t := range byStrategy {
			for _, cp := range t.curve {
				if cp.requests < minWindowRequests {
					continue
				}
				m, p := float64(cp.stale)/float64(cp.requests), cp.predictedRequests/float64(cp.requests)
				if moving(m) || moving(p) {
					lo, hi = math.Min(lo, cp.gapMinusTMS-cp.binMS/2), math.Max(hi, cp.gapMinusTMS+cp.binMS/2)
					bin = math.Min(bin, cp.binMS)
				}
			}
		}
	}
	if lo > hi {
		for _, byStrategy := range v.byCombo {
			for _, t := range byStrategy {
				pts := t.sortedCurve()
				for i := 1; i < len(pts); i++ {
					prev, cp := pts[i-1], pts[i]
					m0, m1 := float64(prev.stale)/float64(prev.requests), float64(cp.stale)/float64(cp.requests)
					p0, p1 := prev.predictedRequests/float64(prev.requests), cp.predictedRequests/float64(cp.requests)
					if math.Abs(m1-m0) > 1e-9 || math.Abs(p1-p0) > 1e-9 {
						lo, hi = math.Min(lo, prev.gapMinusTMS), math.Max(hi, cp.gapMinusTMS)
						bin = math.Min(bin, math.Min(prev.binMS, cp.binMS))
					}
				}
			}
		}
	}
	if lo > hi {
		return 0, 0, false
	}
	pad := math.Max((hi-lo)/2, 2*bin)
	return lo - pad, hi + pad, true
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
