package report

import (
	"fmt"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// latencyFigure draws HdrHistogram's percentile distribution: for each combo a panel,
// and in it for each strategy the latency at percentile p against 1/(1−p) on a log
// axis, so 90%, 99%, 99.9% sit a decade apart and the tail gets the room it deserves.
// The curves come from the cells' .hlog files, pooled per strategy and combo, and stop
// at the percentile the request count can still resolve (1 − 1/N).
func (v *view) latencyFigure() (figure, error) {
	f := figure{name: "latency", cols: 3, panelW: 235, panelH: 190, legendW: 190}
	any := false
	maxX := 10.0
	for _, k := range v.combos {
		p := newPlot(v.title(k), "percentile", "latency (ms)")
		addGrid(p)
		drawn := 0
		for _, s := range v.strategies {
			t := v.byCombo[k][s]
			if t == nil || t.hist == nil || t.hist.TotalCount() == 0 {
				continue
			}
			n := t.hist.TotalCount()
			pts := percentileCurve(n, func(q float64) float64 {
				return float64(t.hist.ValueAtQuantile(q)) / 1000
			})
			maxX = math.Max(maxX, float64(n))
			l, err := line(pts, v.colour(s), 1.3, v.dashes(s))
			if err != nil {
				return f, err
			}
			p.Add(l)
			drawn++
		}
		if drawn == 0 {
			f.panels = append(f.panels, emptyPanel(v.title(k), "no .hlog could be read"))
			continue
		}
		any = true
		p.X.Scale = plot.LogScale{}
		p.Y.Min = 0
		f.panels = append(f.panels, p)
	}
	if !any {
		f.panels = []*plot.Plot{emptyPanel("latency", "no cell's .hlog could be read")}
		f.legendW = 0
		return f, nil
	}
	// The axis runs to the largest count; one just short of a decade (891 requests:
	// 99.89%) is taken to that decade, so the last percentile is labelled.
	if next := math.Pow(10, math.Ceil(math.Log10(maxX))); math.Log10(next)-math.Log10(maxX) < 0.1 {
		maxX = next
	}
	ticks := percentileTicks(maxX, f.panelW-50)
	for _, p := range f.panels {
		if _, ok := p.X.Scale.(plot.LogScale); ok {
			p.X.Min, p.X.Max = 1, maxX
			p.X.Tick.Marker = ticks
		}
	}
	l := newLegend()
	for _, s := range v.strategies {
		ml, _ := line(nil, v.colour(s), 1.3, v.dashes(s))
		l.Add(s, ml)
	}
	f.legend = &l
	return f, nil
}

// percentileCurve samples the latency at percentiles whose 1/(1−p) steps evenly on a
// log axis, eight points a decade, from p = 0 up to 1 − 1/n, the last one n samples
// resolve, which is always the last point.
func percentileCurve(n int64, at func(percentile float64) float64) plotter.XYs {
	pts := plotter.XYs{{X: 1, Y: at(0)}}
	for k := 1; ; k++ {
		x := math.Pow(10, float64(k)/8)
		if x >= float64(n) {
			break
		}
		pts = append(pts, plotter.XY{X: x, Y: at(100 * (1 - 1/x))})
	}
	if n > 1 {
		pts = append(pts, plotter.XY{X: float64(n), Y: at(100 * (1 - 1/float64(n)))})
	}
	return pts
}

// percentileTicks labels 1/(1−p) = 1, 2, 10, 100, ... as 0%, 50%, 90%, 99%, ... up to
// maxX. 50% is labelled only where it stands clear of 0% on an axis axisW long.
func percentileTicks(maxX float64, axisW vg.Length) plot.ConstantTicks {
	ticks := plot.ConstantTicks{{Value: 1, Label: "0%"}, {Value: 2, Label: "50%"}}
	if vg.Length(math.Log10(2)/math.Log10(maxX))*axisW < (textWidth("0%", tickSize)+textWidth("50%", tickSize))/2+4 {
		ticks[1].Label = ""
	}
	for d := 1; math.Pow(10, float64(d)) <= maxX*1.0001; d++ {
		ticks = append(ticks, plot.Tick{Value: math.Pow(10, float64(d)), Label: nines(d)})
	}
	return ticks
}

// nines is the percentile with d nines: 1 -> "90%", 3 -> "99.9%".
func nines(d int) string {
	switch d {
	case 1:
		return "90%"
	case 2:
		return "99%"
	}
	return fmt.Sprintf("99.%s%%", strings.Repeat("9", d-2))
}
