package report

import (
	"bytes"
	"fmt"
	"image/color"
	"sync"

	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// The charts use the Go font (golang.org/x/image/font/gofont), measured by gonum/plot
// when it lays text out and embedded once in report.html, so the browser draws the
// SVG text with the metrics it was laid out for, on any machine, offline. gonum/plot's
// default (Liberation) is not embedded by vgsvg unless asked, once per chart.
const typeface = "Go"

// fontFamily is the family name vgsvg writes into the SVG, read from the font's name
// table; the HTML's @font-face must declare the same.
const fontFamily = "Go"

var textHandler = sync.OnceValue(func() text.Handler {
	f, err := opentype.Parse(goregular.TTF)
	if err != nil {
		panic(fmt.Sprintf("report: parse the Go font: %v", err)) // a compiled-in font; cannot fail
	}
	return text.Plain{Fonts: font.NewCache(font.Collection{{
		Font: font.Font{Typeface: typeface},
		Face: f,
	}})}
})

// Font sizes, in points.
const (
	tickSize   = 9
	labelSize  = 10
	titleSize  = 10.5
	legendSize = 9.5
)

func textStyle(size vg.Length) text.Style {
	return text.Style{
		Color:   color.Black,
		Font:    font.Font{Typeface: typeface, Size: size},
		XAlign:  draw.XLeft,
		YAlign:  draw.YBottom,
		Handler: textHandler(),
	}
}

// restyle points every text of p at the Go font in the report's sizes.
func restyle(p *plot.Plot) {
	h := textHandler()
	p.TextHandler = h
	set := func(s *text.Style, size vg.Length) {
		s.Handler = h
		s.Font = font.Font{Typeface: typeface, Size: size}
	}
	set(&p.Title.TextStyle, titleSize)
	set(&p.Legend.TextStyle, legendSize)
	for _, ax := range []*plot.Axis{&p.X, &p.Y} {
		set(&ax.Label.TextStyle, labelSize)
		set(&ax.Tick.Label, tickSize)
		ax.Tick.Length = 4
		ax.LineStyle.Color = color.Gray{0x55}
		ax.Tick.LineStyle.Color = color.Gray{0x55}
		ax.Label.Padding = 3
	}
	p.Title.Padding = 6
}

// newPlot returns a plot in the report's style with its axis labels.
func newPlot(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	restyle(p)
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	return p
}

// newLegend returns a legend in the report's style, for a strip beside the panels.
func newLegend() plot.Legend {
	l := plot.NewLegend()
	l.TextStyle = textStyle(legendSize)
	l.Top = true
	l.Left = true
	l.ThumbnailWidth = 22
	l.Padding = 4
	return l
}

// palette: colour-blind-safe hues first (Okabe & Ito), then Tableau's, darkened where
// they would vanish on white. A strategy keeps its colour in every chart.
var palette = []color.NRGBA{
	{0x00, 0x72, 0xB2, 0xff}, // blue
	{0xD5, 0x5E, 0x00, 0xff}, // vermillion
	{0x00, 0x9E, 0x73, 0xff}, // bluish green
	{0xCC, 0x79, 0xA7, 0xff}, // reddish purple
	{0xE6, 0x9F, 0x00, 0xff}, // orange
	{0x56, 0xB4, 0xE9, 0xff}, // sky blue
	{0x33, 0x33, 0x33, 0xff}, // near black
	{0x9C, 0x75, 0x5F, 0xff}, // brown
	{0x8E, 0x6C, 0xC4, 0xff}, // violet
	{0xA0, 0x9A, 0x00, 0xff}, // olive
}

// glyphs are the cost view's markers, one per strategy in the same order as palette.
var glyphs = []draw.GlyphDrawer{
	draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.PyramidGlyph{},
	draw.BoxGlyph{}, draw.CrossGlyph{}, draw.PlusGlyph{}, draw.RingGlyph{},
}

func (v *view) colour(strategy string) color.Color {
	for i, s := range v.strategies {
		if s == strategy {
			return palette[i%len(palette)]
		}
	}
	return color.Gray{0x80}
}

// dashes varies the line pattern once the palette has gone round, so the eleventh
// strategy does not look like the first.
func (v *view) dashes(strategy string) []vg.Length {
	for i, s := range v.strategies {
		if s == strategy && i >= len(palette) {
			return []vg.Length{6, 2, 1, 2}
		}
	}
	return nil
}

func (v *view) glyph(strategy string) draw.GlyphDrawer {
	for i, s := range v.strategies {
		if s == strategy {
			return glyphs[i%len(glyphs)]
		}
	}
	return draw.CircleGlyph{}
}

// modelDash is the line pattern of the model's prediction in every chart.
var modelDash = []vg.Length{4, 3}

// figure is one chart as the report shows it: panels tiled in a grid, and a legend in
// a strip on the right that serves them all.
type figure struct {
	name           string // file stem: "race-curve" -> report-race-curve.png
	panels         []*plot.Plot
	cols           int
	panelW, panelH vg.Length
	legend         *plot.Legend
	legendW        vg.Length
}

// chart is a rendered figure: the SVG for report.html and the PNG beside it.
type chart struct {
	name          string
	svg, png      []byte
	widthPt       float64
	heightPt      float64
	plottedPanels int
}

func (f figure) size() (w, h vg.Length, rows int) {
	cols := max(1, min(f.cols, len(f.panels)))
	rows = (len(f.panels) + cols - 1) / cols
	return vg.Length(cols)*f.panelW + f.legendW, vg.Length(rows) * f.panelH, rows
}

func (f figure) draw(c vg.CanvasSizer, w, h vg.Length, rows int) {
	dc := draw.New(c)
	cols := max(1, min(f.cols, len(f.panels)))
	grid := make([][]*plot.Plot, rows)
	for r := range grid {
		grid[r] = make([]*plot.Plot, cols)
		for k := range cols {
			if i := r*cols + k; i < len(f.panels) {
				grid[r][k] = f.panels[i]
			}
		}
	}
	area := draw.Crop(dc, 0, -f.legendW, 0, 0)
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: 14, PadY: 10, PadTop: 4, PadBottom: 2, PadLeft: 2, PadRight: 6}
	canvases := plot.Align(grid, tiles, area)
	for r := range grid {
		for k := range grid[r] {
			if grid[r][k] != nil {
				grid[r][k].Draw(canvases[r][k])
			}
		}
	}
	if f.legend != nil {
		strip := draw.Crop(dc, w-f.legendW+8, 0, 0, -10)
		f.legend.Draw(strip)
	}
}

// render draws f as SVG and as PNG (at 2x, for sharp text when zoomed).
func (f figure) render() (chart, error) {
	w, h, rows := f.size()
	sc := vgsvg.New(w, h)
	f.draw(sc, w, h, rows)
	var svg bytes.Buffer
	if _, err := sc.WriteTo(&svg); err != nil {
		return chart{}, fmt.Errorf("%s: svg: %w", f.name, err)
	}
	ic := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(144), vgimg.UseBackgroundColor(color.White))
	f.draw(ic, w, h, rows)
	var png bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: ic}).WriteTo(&png); err != nil {
		return chart{}, fmt.Errorf("%s: png: %w", f.name, err)
	}
	return chart{name: f.name, svg: stripXMLProlog(svg.Bytes()), png: png.Bytes(),
		widthPt: w.Points(), heightPt: h.Points(), plottedPanels: len(f.panels)}, nil
}

// stripXMLProlog drops what precedes <svg (the XML declaration and a comment), which
// has no place inside an HTML document.
func stripXMLProlog(b []byte) []byte {
	if i := bytes.Index(b, []byte("<svg")); i >= 0 {
		return b[i:]
	}
	return b
}

// line returns a line plotter of pts in colour c, dashed if dashes is non-nil.
func line(pts plotter.XYs, c color.Color, width vg.Length, dashes []vg.Length) (*plotter.Line, error) {
	l, err := plotter.NewLine(pts)
	if err != nil {
		return nil, err
	}
	l.Color = c
	l.Width = width
	l.Dashes = dashes
	return l, nil
}

// emptyPanel is a panel that says it has no data, instead of an empty frame.
func emptyPanel(title, msg string) *plot.Plot {
	p := newPlot(title, "", "")
	p.HideAxes()
	lbl, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: 0.5, Y: 0.5}}, Labels: []string{msg}})
	if err == nil {
		st := textStyle(labelSize)
		st.XAlign = draw.XCenter
		st.YAlign = draw.YCenter
		st.Color = color.Gray{0x66}
		lbl.TextStyle = []text.Style{st}
		p.Add(lbl)
	}
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
	return p
}
