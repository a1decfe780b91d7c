package report

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// WritePlot writes the sweep's TTFT p99 and goodput against the step value,
// two aligned panels, as SVG or PNG (by path's extension). Saturated steps
// are drawn in red: their figures include client delay.
func WritePlot(path string, s *Sweep) error {
	ttft, good := plot.New(), plot.New()
	ttft.Title.Text = "llmprobe sweep: " + s.Scenario
	ttft.Y.Label.Text = "TTFT p99 (ms)"
	good.Y.Label.Text = "goodput"
	good.X.Label.Text = s.Unit
	good.Y.Min, good.Y.Max = 0, 1.05
	ttft.Y.Min = 0
	var tp, gp, sat plotter.XYs
	for _, st := range s.Steps {
		tp = append(tp, plotter.XY{X: st.Value, Y: st.TTFTP99 * 1000})
		gp = append(gp, plotter.XY{X: st.Value, Y: st.Goodput})
		if st.ClientSaturated {
			sat = append(sat, plotter.XY{X: st.Value, Y: st.Goodput})
		}
	}
	for _, panel := range []struct {
		p   *plot.Plot
		xys plotter.XYs
	}{{ttft, tp}, {good, gp}} {
		line, points, err := plotter.NewLinePoints(panel.xys)
		if err != nil {
			return err
		}
		panel.p.Add(plotter.NewGrid(), line, points)
	}
	target, err := plotter.NewLine(plotter.XYs{{X: s.Steps[0].Value, Y: s.GoodputTarget}, {X: s.Steps[len(s.Steps)-1].Value, Y: s.GoodputTarget}})
	if err != nil {
		return err
	}
	target.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	good.Add(target)
	good.Legend.Add(fmt.Sprintf("target %s", FormatFloat(s.GoodputTarget)), target)
	if len(sat) > 0 {
		sc, err := plotter.NewScatter(sat)
		if err != nil {
			return err
		}
		sc.Color = color.RGBA{R: 200, A: 255}
		sc.Radius = vg.Points(4)
		good.Add(sc)
		good.Legend.Add("client saturated", sc)
	}
	good.Legend.Top = false
	good.Legend.Left = true

	const w, h = 6 * vg.Inch, 6 * vg.Inch
	var c vg.CanvasSizer
	var write func(f *os.File) error
	switch strings.ToLower(filepath.Ext(path)) {
	case ".svg":
		sv := vgsvg.New(w, h)
		c, write = sv, func(f *os.File) error { _, err := sv.WriteTo(f); return err }
	case ".png":
		img := vgimg.New(w, h)
		png := vgimg.PngCanvas{Canvas: img}
		c, write = img, func(f *os.File) error { _, err := png.WriteTo(f); return err }
	default:
		return fmt.Errorf("plot %s: write .svg or .png", path)
	}
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadY: vg.Millimeter * 4, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4}
	plots := [][]*plot.Plot{{ttft}, {good}}
	canvases := plot.Align(plots, tiles, draw.New(c))
	ttft.Draw(canvases[0][0])
	good.Draw(canvases[1][0])
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
