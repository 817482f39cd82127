package bench

// --plot: the run's latency distribution and its rate over time, as one SVG file of two
// charts, drawn with gonum's plot.

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"slices"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// The plot's titles, which the test looks for.
const (
	latencyTitle = "Latency distribution"
	rateTitle    = "Rate over time"
)

const histogramBins = 60

// writePlot writes the plot to the file at path.
func (r *Report) writePlot(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := r.plot(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// plot draws, one above the other, a histogram of the operations' latencies (to their 99.9th
// percentile, with the median and the 99th marked) and the operations per second in each
// second of the timed run.
func (r *Report) plot(w io.Writer) error {
	latency, err := r.latencyChart()
	if err != nil {
		return err
	}
	rate, err := r.rateChart()
	if err != nil {
		return err
	}
	const width, height = 18 * vg.Centimeter, 10 * vg.Centimeter
	canvas := vgsvg.New(width, 2*height)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Centimeter / 2, PadBottom: vg.Centimeter / 2, PadLeft: vg.Centimeter / 4, PadRight: vg.Centimeter / 2, PadY: vg.Centimeter / 2}
	charts := [][]*plot.Plot{{latency}, {rate}}
	for i, row := range plot.Align(charts, tiles, draw.New(canvas)) {
		charts[i][0].Draw(row[0])
	}
	_, err = canvas.WriteTo(w)
	return err
}

func (r *Report) latencyChart() (*plot.Plot, error) {
	p := plot.New()
	lat := slices.Sorted(slices.Values(r.latencies))
	p.Title.Text = fmt.Sprintf("%s: %d %s, %d concurrent", latencyTitle, len(lat), r.Unit, r.Concurrency)
	p.X.Label.Text = "latency (ms)"
	p.X.Min, p.Y.Min = 0, 0
	if len(lat) == 0 {
		p.X.Max, p.Y.Max = 1, 1
		p.Y.Label.Text = r.Unit
		return p, nil
	}
	// The slowest 0.1% would stretch the axis: the histogram stops at the 99.9th percentile.
	top := perMille(lat, 999)
	width := max(ms(top), 0.001) / histogramBins
	bins := make([]plotter.HistogramBin, histogramBins)
	for i := range bins {
		bins[i] = plotter.HistogramBin{Min: float64(i) * width, Max: float64(i+1) * width}
	}
	beyond := 0
	for _, d := range lat {
		if d > top {
			beyond++
			continue
		}
		bins[min(int(ms(d)/width), len(bins)-1)].Weight++
	}
	if beyond > 0 {
		p.X.Label.Text += fmt.Sprintf("; the slowest %d, to %.1f ms, not shown", beyond, ms(lat[len(lat)-1]))
	}
	p.Y.Label.Text = fmt.Sprintf("%s per %.2f ms", r.Unit, width)
	hist := &plotter.Histogram{Bins: bins, Width: width, FillColor: color.Gray{Y: 170}, LineStyle: plotter.DefaultLineStyle}
	hist.LineStyle.Width = vg.Points(0.5)
	p.Add(hist, plotter.NewGrid())
	tallest := p.Y.Max
	p.Y.Max *= 1.25 // room for the legend above the bars and the marks
	for _, mark := range []struct {
		name  string
		value float64
		color color.Color
	}{
		{"p50", r.Latency.P50, color.RGBA{B: 200, A: 255}},
		{"p99", r.Latency.P99, color.RGBA{R: 200, A: 255}},
	} {
		line, err := verticalLine(mark.value, tallest, mark.color)
		if err != nil {
			return nil, err
		}
		p.Add(line)
		p.Legend.Add(fmt.Sprintf("%s %.2f ms", mark.name, mark.value), line)
	}
	p.Legend.Top = true
	return p, nil
}

func (r *Report) rateChart() (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: %s per second, %.0f/s on average", rateTitle, r.Unit, r.OpsPerSec)
	p.X.Label.Text = "time into the timed run (s; untimed preparation cut out)"
	p.Y.Label.Text = r.Unit + " per second (1/s)"
	p.X.Min, p.Y.Min = 0, 0
	seconds := int(math.Ceil(r.Seconds))
	if len(r.ends) == 0 || seconds == 0 {
		p.X.Max, p.Y.Max = max(r.Seconds, 1), 1
		return p, nil
	}
	// The last second may be cut short by the end of the run; less than half a second, it goes
	// with the one before, so that the few operations that end in it are not a spike.
	if seconds > 1 && r.Seconds-float64(seconds-1) < 0.5 {
		seconds--
	}
	counts := make([]float64, seconds)
	for _, at := range r.ends {
		counts[min(int(at/time.Second), seconds-1)]++
	}
	points := make(plotter.XYs, 0, seconds+1)
	for i, n := range counts {
		length := 1.0
		if i == seconds-1 {
			length = r.Seconds - float64(i)
		}
		points = append(points, plotter.XY{X: float64(i), Y: n / length})
	}
	points = append(points, plotter.XY{X: r.Seconds, Y: points[len(points)-1].Y})
	line, err := plotter.NewLine(points)
	if err != nil {
		return nil, err
	}
	line.StepStyle = plotter.PostStep
	line.Width = vg.Points(1.5)
	mean, err := plotter.NewLine(plotter.XYs{{X: 0, Y: r.OpsPerSec}, {X: r.Seconds, Y: r.OpsPerSec}})
	if err != nil {
		return nil, err
	}
	mean.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	mean.Color = color.RGBA{R: 200, A: 255}
	p.Add(plotter.NewGrid(), line, mean)
	p.Legend.Add("each second", line)
	p.Legend.Add(fmt.Sprintf("mean %.0f/s", r.OpsPerSec), mean)
	p.Legend.Top = true
	p.Y.Max *= 1.15 // room for the legend
	return p, nil
}

// verticalLine is a dashed line at x, from 0 to height.
func verticalLine(x, height float64, c color.Color) (*plotter.Line, error) {
	l, err := plotter.NewLine(plotter.XYs{{X: x, Y: 0}, {X: x, Y: height}})
	if err != nil {
		return nil, err
	}
	l.Color, l.Width, l.Dashes = c, vg.Points(1.2), []vg.Length{vg.Points(4), vg.Points(3)}
	return l, nil
}
