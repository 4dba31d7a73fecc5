package report

import (
	"fmt"
	"image/color"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// heatmapFigure draws the reset rate of every strategy (rows) under every combo
// (columns). Each cell prints the measured rate and the model's; the colour follows
// the square root of the rate, so 1% already shows against 0% when the worst cell is
// 60%. Exactly 0 is pale grey, a combo a strategy never ran under is white, and a cell
// whose measurement lies more than DisagreementThreshold from the model is outlined.
func (v *view) heatmapFigure() (figure, error) {
	f := figure{name: "reset-heatmap", cols: 1}
	if len(v.combos) == 0 {
		f.panels = []*plot.Plot{emptyPanel("reset rate", "no cells")}
		f.panelW, f.panelH = 400, 120
		return f, nil
	}
	nr, nc := len(v.strategies), len(v.combos)
	g := &rateGrid{z: make([][]float64, nr), rows: nr, cols: nc}
	maxRate := 0.0
	for r, s := range v.strategies {
		g.z[r] = make([]float64, nc)
		for c, k := range v.combos {
			g.z[r][c] = math.NaN()
			if t := v.byCombo[k][s]; t != nil && t.requests > 0 {
				g.z[r][c] = t.resetRate()
				maxRate = math.Max(maxRate, g.z[r][c])
			}
		}
	}
	hm := plotter.NewHeatMap(g, rampPalette{})
	hm.Min = 1e-12 // exactly zero underflows to its own colour
	hm.Max = math.Max(math.Sqrt(maxRate), 1e-6)
	hm.Underflow = color.NRGBA{0xee, 0xf1, 0xee, 0xff}
	hm.NaN = color.White

	p := newPlot("", v.axisName(" / "), "")
	p.Add(hm)

	// Two labels per cell: the measured rate, and below it the model's.
	var meas, model plotter.XYLabels
	var measStyle, modelStyle []text.Style
	var outlines []plotter.XYs
	for r, s := range v.strategies {
		for c, k := range v.combos {
			t := v.byCombo[k][s]
			if t == nil || t.requests == 0 {
				continue
			}
			x, y := float64(c), float64(nr-1-r)
			rate, pred := t.resetRate(), t.predictedRate()
			ink := color.Color(color.Black)
			if rate > 0 && math.Sqrt(rate)/hm.Max > 0.62 {
				ink = color.White
			}
			meas.XYs = append(meas.XYs, plotter.XY{X: x, Y: y})
			meas.Labels = append(meas.Labels, pct(rate))
			ms := textStyle(10)
			ms.Color, ms.XAlign, ms.YAlign = ink, draw.XCenter, draw.YBottom
			measStyle = append(measStyle, ms)
			model.XYs = append(model.XYs, plotter.XY{X: x, Y: y})
			model.Labels = append(model.Labels, "model "+pct(pred))
			mst := textStyle(8)
			mst.Color, mst.XAlign, mst.YAlign = ink, draw.XCenter, draw.YTop
			modelStyle = append(modelStyle, mst)
			if math.Abs(rate-pred) > DisagreementThreshold {
				const e = 0.46
				outlines = append(outlines, plotter.XYs{{X: x - e, Y: y - e}, {X: x + e, Y: y - e}, {X: x + e, Y: y + e}, {X: x - e, Y: y + e}, {X: x - e, Y: y - e}})
			}
		}
	}
	for _, o := range outlines {
		l, err := line(o, color.Black, 2, nil)
		if err != nil {
			return f, err
		}
		p.Add(l)
	}
	for _, lb := range []struct {
		d   plotter.XYLabels
		sty []text.Style
		dy  vg.Length
	}{{meas, measStyle, 1}, {model, modelStyle, -1}} {
		if len(lb.d.Labels) == 0 {
			continue
		}
		labels, err := plotter.NewLabels(lb.d)
		if err != nil {
			return f, err
		}
		labels.TextStyle = lb.sty
		labels.Offset = vg.Point{Y: lb.dy}
		p.Add(labels)
	}

	var xt, yt plot.ConstantTicks
	maxLine, lines := vg.Length(0), 1
	for c, k := range v.combos {
		lbl := v.label(k, "\n")
		xt = append(xt, plot.Tick{Value: float64(c), Label: lbl})
		for _, ln := range strings.Split(lbl, "\n") {
			maxLine = max(maxLine, textWidth(ln, tickSize))
		}
		lines = max(lines, strings.Count(lbl, "\n")+1)
	}
	maxName := vg.Length(0)
	for r, s := range v.strategies {
		yt = append(yt, plot.Tick{Value: float64(nr - 1 - r), Label: s})
		maxName = max(maxName, textWidth(s, tickSize))
	}
	p.X.Tick.Marker, p.Y.Tick.Marker = xt, yt
	p.X.Tick.Length, p.Y.Tick.Length = 0, 0
	p.X.LineStyle.Width, p.Y.LineStyle.Width = 0, 0
	p.X.Padding, p.Y.Padding = 2, 2

	colW := max(84, maxLine+14)
	const rowH = 34
	f.panelW = maxName + 30 + vg.Length(nc)*colW
	f.panelH = vg.Length(nr)*rowH + vg.Length(lines)*12 + 40
	f.panels = []*plot.Plot{p}
	return f, nil
}

// rateGrid is the heatmap's GridXYZ: column c, row r (row 0 at the bottom).
type rateGrid struct {
	z          [][]float64 // [strategy][combo], strategy 0 first
	rows, cols int
}

func (g *rateGrid) Dims() (c, r int)   { return g.cols, g.rows }
func (g *rateGrid) Z(c, r int) float64 { return math.Sqrt(g.z[g.rows-1-r][c]) }
func (g *rateGrid) X(c int) float64    { return float64(c) }
func (g *rateGrid) Y(r int) float64    { return float64(r) }

// rampPalette is a sequential palette from pale yellow to dark brown (ColorBrewer's
// YlOrBr), interpolated to 256 steps.
type rampPalette struct{}

func (rampPalette) Colors() []color.Color {
	stops := []color.NRGBA{
		{0xff, 0xf7, 0xbc, 0xff}, {0xfe, 0xe3, 0x91, 0xff}, {0xfe, 0xc4, 0x4f, 0xff},
		{0xfe, 0x99, 0x29, 0xff}, {0xec, 0x70, 0x14, 0xff}, {0xcc, 0x4c, 0x02, 0xff},
		{0x99, 0x34, 0x04, 0xff}, {0x66, 0x25, 0x06, 0xff},
	}
	const n = 256
	out := make([]color.Color, n)
	for i := range n {
		pos := float64(i) / (n - 1) * float64(len(stops)-1)
		j := min(int(pos), len(stops)-2)
		fr := pos - float64(j)
		a, b := stops[j], stops[j+1]
		mix := func(x, y uint8) uint8 { return uint8(math.Round(float64(x) + fr*(float64(y)-float64(x)))) }
		out[i] = color.NRGBA{mix(a.R, b.R), mix(a.G, b.G), mix(a.B, b.B), 0xff}
	}
	return out
}

// textWidth measures s in the report's font at size.
func textWidth(s string, size vg.Length) vg.Length {
	w, _, _ := textHandler().Box(s, font.Font{Typeface: typeface, Size: size})
	return w
}

// pct formats a rate as a percentage with one decimal ("51.0%"), and a rate below
// 0.1% but above zero with two ("0.04%"); NaN as "–".
func pct(rate float64) string {
	switch {
	case math.IsNaN(rate):
		return "–"
	case rate > 0 && rate < 0.001:
		return fmt.Sprintf("%.2f%%", 100*rate)
	}
	return fmt.Sprintf("%.1f%%", 100*rate)
}
