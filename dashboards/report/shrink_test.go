package report

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"sort"
)

// shrinkPNG re-encodes a screenshot as an 8-bit paletted PNG: the 256 colours are
// chosen by median cut over the image's own colours (weighted by how many pixels use
// each), and every pixel takes the nearest one, without dithering, so text edges stay
// clean. A page screenshot has a few thousand colours, mostly anti-aliasing between
// a dozen, so this keeps it readable at about a third of the size.
func shrinkPNG(in []byte) ([]byte, error) {
	img, err := png.Decode(bytes.NewReader(in))
	if err != nil {
		return nil, err
	}
	b := img.Bounds()
	rgba := image.NewRGBA(b)
	draw.Draw(rgba, b, img, b.Min, draw.Src)
	at := func(x, y int) color.RGBA {
		i := rgba.PixOffset(x, y)
		return color.RGBA{rgba.Pix[i], rgba.Pix[i+1], rgba.Pix[i+2], 0xff}
	}
	counts := map[color.RGBA]int{}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			counts[at(x, y)]++
		}
	}
	pal := medianCut(counts, 256)
	out := image.NewPaletted(b, pal)
	nearest := map[color.RGBA]uint8{}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := at(x, y)
			i, ok := nearest[c]
			if !ok {
				i = uint8(pal.Index(c))
				nearest[c] = i
			}
			out.SetColorIndex(x, y, i)
		}
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, out); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type weighted struct {
	c color.RGBA
	n int
}

// medianCut splits the colour set along its widest channel at the weighted median
// until there are n boxes, and returns each box's weighted mean colour.
func medianCut(counts map[color.RGBA]int, n int) color.Palette {
	all := make([]weighted, 0, len(counts))
	for c, k := range counts {
		all = append(all, weighted{c, k})
	}
	boxes := [][]weighted{all}
	for len(boxes) < n {
		// Split the box with the widest spread weighted by its pixels.
		best, bestScore, bestCh := -1, 0, 0
		for i, bx := range boxes {
			if len(bx) < 2 {
				continue
			}
			ch, spread := widest(bx)
			total := 0
			for _, w := range bx {
				total += w.n
			}
			if score := spread * total; score > bestScore {
				best, bestScore, bestCh = i, score, ch
			}
		}
		if best < 0 {
			break
		}
		bx := boxes[best]
		sort.Slice(bx, func(i, j int) bool { return channel(bx[i].c, bestCh) < channel(bx[j].c, bestCh) })
		total := 0
		for _, w := range bx {
			total += w.n
		}
		cut, acc := 1, 0
		for i, w := range bx {
			acc += w.n
			if acc*2 >= total {
				cut = min(max(i+1, 1), len(bx)-1)
				break
			}
		}
		boxes[best] = bx[:cut]
		boxes = append(boxes, bx[cut:])
	}
	pal := make(color.Palette, 0, len(boxes))
	for _, bx := range boxes {
		var r, g, b, t int
		for _, w := range bx {
			r += int(w.c.R) * w.n
			g += int(w.c.G) * w.n
			b += int(w.c.B) * w.n
			t += w.n
		}
		pal = append(pal, color.RGBA{uint8(r / t), uint8(g / t), uint8(b / t), 0xff})
	}
	return pal
}

func widest(bx []weighted) (ch, spread int) {
	for c := range 3 {
		lo, hi := 255, 0
		for _, w := range bx {
			v := channel(w.c, c)
			lo, hi = min(lo, v), max(hi, v)
		}
		if hi-lo > spread {
			ch, spread = c, hi-lo
		}
	}
	return ch, spread
}

func channel(c color.RGBA, ch int) int {
	switch ch {
	case 0:
		return int(c.R)
	case 1:
		return int(c.G)
	}
	return int(c.B)
}
