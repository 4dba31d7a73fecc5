package report

import (
	"image/color"
	"math"
	"sort"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// costFigure draws what each strategy pays for its reset rate, every combo pooled: new
// connections per 1,000 requests (left) and p99 latency (right) against the reset
// rate. The strategies no other strategy beats on both axes of a panel, its Pareto
// front, are ringed and joined by a grey step line; everything above and to the right
// of that line is dominated.
func (v *view) costFigure() (figure, error) {
	f := figure{name: "cost", cols: 2, panelW: 330, panelH: 250, legendW: 190}
	if len(v.strategies) == 0 {
		f.panels = []*plot.Plot{emptyPanel("cost", "no cells")}
		f.legendW = 0
		return f, nil
	}
	type axis struct {
		title, yLabel string
		y             func(*tally) float64
		front         map[string]bool
	}
	for _, ax := range []axis{
		{"new connections", "new connections per 1,000 requests", func(t *tally) float64 { return t.connsPer1k() }, v.frontConns},
		{"tail latency", "p99 latency (ms)", func(t *tally) float64 { return t.p99US() / 1000 }, v.frontP99},
	} {
		p := newPlot(ax.title, "reset rate (%, square-root axis)", ax.yLabel)
		p.X.Scale = sqrtScale{}
		addGrid(p)
		var front plotter.XYs
		var all plotter.XYs
		for _, s := range v.strategies {
			t := v.byStrategy[s]
			x, y := 100*t.resetRate(), ax.y(t)
			if math.IsNaN(x) || math.IsNaN(y) {
				continue
			}
			all = append(all, plotter.XY{X: x, Y: y})
			if ax.front[s] {
				front = append(front, plotter.XY{X: x, Y: y})
			}
		}
		if len(all) == 0 {
			f.panels = append(f.panels, emptyPanel(ax.title, "no strategy has both numbers"))
			continue
		}
		if len(front) > 0 {
			sort.Slice(front, func(i, j int) bool {
				return front[i].X < front[j].X || front[i].X == front[j].X && front[i].Y > front[j].Y
			})
			step, err := line(front, color.Gray{0x88}, 1, []vg.Length{3, 2})
			if err != nil {
				return f, err
			}
			step.StepStyle = plotter.PostStep
			p.Add(step)
			rings, err := plotter.NewScatter(front)
			if err != nil {
				return f, err
			}
			rings.GlyphStyle = frontGlyph()
			p.Add(rings)
		}
		for _, s := range v.strategies {
			t := v.byStrategy[s]
			x, y := 100*t.resetRate(), ax.y(t)
			if math.IsNaN(x) || math.IsNaN(y) {
				continue
			}
			sc, err := plotter.NewScatter(plotter.XYs{{X: x, Y: y}})
			if err != nil {
				return f, err
			}
			sc.GlyphStyle = draw.GlyphStyle{Color: v.colour(s), Radius: 4, Shape: v.glyph(s)}
			p.Add(sc)
		}
		// Room around the points, so a strategy at 0% is not drawn on the axis.
		xmin, xmax, ymin, ymax := plotter.XYRange(all)
		// The x padding is 6% of the axis in square-root space, where it is drawn.
		fmin, fmax := math.Sqrt(xmin), math.Sqrt(xmax)
		padF := math.Max((fmax-fmin)*0.06, 0.15)
		padY := math.Max((ymax-ymin)*0.08, math.Max(ymax*0.05, 1e-3))
		p.X.Min = -(padF - fmin) * math.Abs(padF-fmin) // signed square of fmin − padF
		p.X.Max = (fmax + padF) * (fmax + padF)
		p.X.Tick.Marker = sqrtTicks(p.X.Min, p.X.Max)
		p.Y.Min, p.Y.Max = math.Max(0, ymin-padY), ymax+padY
		f.panels = append(f.panels, p)
	}
	l := newLegend()
	for _, s := range v.strategies {
		l.Add(s, glyphThumb{draw.GlyphStyle{Color: v.colour(s), Radius: 4, Shape: v.glyph(s)}})
	}
	l.Add("Pareto front", glyphThumb{frontGlyph()})
	f.legend = &l
	return f, nil
}

// frontGlyph rings a point on the Pareto front.
func frontGlyph() draw.GlyphStyle {
	return draw.GlyphStyle{Color: color.Black, Radius: 7.5, Shape: draw.RingGlyph{}}
}

// glyphThumb is a legend thumbnail showing one glyph.
type glyphThumb struct{ draw.GlyphStyle }

func (g glyphThumb) Thumbnail(c *draw.Canvas) {
	c.DrawGlyph(g.GlyphStyle, c.Center())
}

// sqrtScale is a square-root axis (signed below zero), so reset rates of 0%, 1% and
// 50% sit apart instead of the first two on top of each other.
type sqrtScale struct{}

func (sqrtScale) Normalize(min, max, x float64) float64 {
	f := func(v float64) float64 { return math.Copysign(math.Sqrt(math.Abs(v)), v) }
	if f(max) == f(min) {
		return 0.5
	}
	return (f(x) - f(min)) / (f(max) - f(min))
}

// sqrtTicks labels round percentages that lie in [min, max] and stand at least 9% of
// the axis apart on a square-root scale.
func sqrtTicks(min, max float64) plot.ConstantTicks {
	var ticks plot.ConstantTicks
	last := math.Inf(-1)
	for _, v := range []float64{0, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 50, 75, 100} {
		if v < min || v > max {
			continue
		}
		n := sqrtScale{}.Normalize(min, max, v)
		if n-last < 0.09 {
			continue
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', -1, 64)})
		last = n
	}
	return ticks
}
