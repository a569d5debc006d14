package bench

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// The plots a run draws, and their titles in the report.
const (
	plotThroughputLinger = "throughput-vs-linger.png"
	plotSpectrumProduce  = "latency-spectrum-produce.png"
	plotSpectrumE2E      = "latency-spectrum-e2e.png"
	plotThroughputP99    = "throughput-vs-p99.png"
)

var plotTitles = map[string]string{
	plotThroughputLinger: "produce throughput against linger.ms",
	plotSpectrumProduce:  "produce latency by percentile",
	plotSpectrumE2E:      "end-to-end latency by percentile",
	plotThroughputP99:    "produce throughput against p99 latency",
}

// WritePlots draws the run's plots as PNG files into dir from the summary
// and returns the names of those it drew. A plot with nothing to show (no
// scenario finished, no consumer) is skipped.
func WritePlots(dir string, s *Summary) ([]string, error) {
	var ok []ScenarioResult
	for _, r := range s.Scenarios {
		if r.MeasuredSeconds > 0 && r.Error == "" {
			ok = append(ok, r)
		}
	}
	var names []string
	var errs []error
	for _, p := range []struct {
		name string
		draw func([]ScenarioResult, []string) (*plot.Plot, error)
	}{
		{plotThroughputLinger, plotLinger},
		{plotSpectrumProduce, func(rs []ScenarioResult, _ []string) (*plot.Plot, error) {
			return plotSpectrum(rs, "Produce latency (send to acknowledgement)", func(r ScenarioResult) LatencySummary { return r.ProduceLatency })
		}},
		{plotSpectrumE2E, func(rs []ScenarioResult, _ []string) (*plot.Plot, error) {
			return plotSpectrum(rs, "End-to-end latency (send to consumer)", func(r ScenarioResult) LatencySummary { return r.EndToEndLatency })
		}},
		{plotThroughputP99, plotThroughputVsP99},
	} {
		pl, err := p.draw(ok, s.Swept)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.name, err))
			continue
		}
		if pl == nil {
			continue
		}
		// Legends grow with the scenarios; so does the picture, so that
		// the legend does not hide the lines.
		height := 6*vg.Inch + vg.Length(max(len(ok)-12, 0))*0.12*vg.Inch
		if err := pl.Save(9*vg.Inch, height, filepath.Join(dir, p.name)); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.name, err))
			continue
		}
		names = append(names, p.name)
	}
	return names, errors.Join(errs...)
}

// plotLinger draws produce MiB/s against linger.ms, one line per
// combination of the other swept settings (acks first, as the sweep nests
// them).
func plotLinger(rs []ScenarioResult, swept []string) (*plot.Plot, error) {
	if len(rs) == 0 {
		return nil, nil
	}
	groups := map[string]plotter.XYs{}
	var order []string
	for _, r := range rs {
		var label []string
		for _, k := range swept {
			if k != "linger.ms" {
				label = append(label, k+"="+r.Value(k))
			}
		}
		key := strings.Join(label, " ")
		if key == "" {
			key = "all scenarios"
		}
		if _, seen := groups[key]; !seen {
			order = append(order, key)
		}
		groups[key] = append(groups[key], plotter.XY{X: float64(r.Producer.LingerMs), Y: r.ProduceMiBPerSec})
	}
	p := plot.New()
	p.Title.Text = "Produce throughput against linger.ms"
	p.X.Label.Text = "linger.ms"
	p.Y.Label.Text = "produce MiB/s"
	p.Legend.Top = true
	var args []any
	for _, k := range order {
		xys := groups[k]
		sort.Slice(xys, func(i, j int) bool { return xys[i].X < xys[j].X })
		args = append(args, k, xys)
	}
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return nil, err
	}
	// The legend sits at the top: leave it room above the lines.
	p.Y.Min, p.Y.Max = 0, p.Y.Max*min(1.1+0.06*float64(len(order)), 2.5)
	return p, nil
}

// shortLabelsAbove is how many scenarios a spectrum plot names in full in
// its legend; above it, lines are labelled with scenario numbers.
const shortLabelsAbove = 8

// spectrumX maps a percentile to 1/(1-p): 90% is 10, 99% is 100, 99.9%
// is 1000, so on a log axis each nine gets the same width, as HdrHistogram's
// own plots show it.
func spectrumX(percentile float64) float64 {
	return 1 / (1 - percentile/100)
}

func plotSpectrum(rs []ScenarioResult, title string, get func(ScenarioResult) LatencySummary) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "latency (ms)"
	p.X.Scale = plot.LogScale{}
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = logTicks
	var ticks []plot.Tick
	for _, t := range []struct {
		x     float64
		label string
	}{{1, "0%"}, {10, "90%"}, {100, "99%"}, {1000, "99.9%"}, {1e4, "99.99%"}, {1e5, "99.999%"}} {
		ticks = append(ticks, plot.Tick{Value: t.x, Label: t.label})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.Legend.Top = true
	p.Legend.Left = true
	var args []any
	maxX := 1.0
	for _, r := range rs {
		var xys plotter.XYs
		for _, pt := range get(r).Spectrum {
			if pt.Percentile >= 100 || pt.Ms <= 0 {
				continue // 1/(1-1) is infinite; the max is in the table
			}
			x := spectrumX(pt.Percentile)
			maxX = max(maxX, x)
			xys = append(xys, plotter.XY{X: x, Y: pt.Ms})
		}
		if len(xys) > 0 {
			label := "#" + strconv.Itoa(r.Index)
			if len(rs) <= shortLabelsAbove {
				label += " " + r.Name
			}
			args = append(args, label, xys)
		}
	}
	if len(args) == 0 {
		return nil, nil
	}
	if err := plotutil.AddLines(p, args...); err != nil {
		return nil, err
	}
	if len(rs) > shortLabelsAbove {
		// Many lines: scenario numbers (the report's table names them)
		// in a smaller font, and a decade of room above the highest.
		p.Legend.TextStyle.Font.Size = vg.Points(8)
		p.Y.Max *= 10
	}
	// Room on the right for the last tick's label.
	p.X.Min, p.X.Max = 1, math.Max(maxX, 10)*2
	return p, nil
}

// plotThroughputVsP99 scatters scenarios by produce p99 latency and
// throughput, each point labelled with its scenario number: the frontier
// of the trade-off is the upper left edge.
func plotThroughputVsP99(rs []ScenarioResult, _ []string) (*plot.Plot, error) {
	var xys plotter.XYs
	var labels []string
	for _, r := range rs {
		if r.ProduceLatency.P99Ms <= 0 {
			continue
		}
		xys = append(xys, plotter.XY{X: r.ProduceLatency.P99Ms, Y: r.ProduceMiBPerSec})
		labels = append(labels, "#"+strconv.Itoa(r.Index))
	}
	if len(xys) == 0 {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = "Produce throughput against p99 latency (labels: scenario #)"
	p.X.Label.Text = "produce p99 latency (ms, log scale)"
	p.Y.Label.Text = "produce MiB/s"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = logTicks
	sc, err := plotter.NewScatter(xys)
	if err != nil {
		return nil, err
	}
	sc.GlyphStyle.Color = plotutil.Color(0)
	sc.GlyphStyle.Radius = vg.Points(3)
	lb, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
	if err != nil {
		return nil, err
	}
	lb.Offset = vg.Point{X: vg.Points(5), Y: vg.Points(-3)} // beside the point, not on it
	p.Add(sc, lb)
	// A log axis needs room around a single point.
	minX, maxX := xys[0].X, xys[0].X
	for _, xy := range xys {
		minX, maxX = min(minX, xy.X), max(maxX, xy.X)
	}
	p.X.Min, p.X.Max = minX/1.5, maxX*1.5
	p.Y.Min, p.Y.Max = 0, p.Y.Max*1.1
	return p, nil
}

// logTicks labels a log axis at powers of ten when it spans a decade or
// more, and with ordinary ticks when it does not (a narrow log axis would
// otherwise have no label at all).
var logTicks = plot.TickerFunc(func(lo, hi float64) []plot.Tick {
	if lo > 0 && hi/lo >= 10 {
		return plot.LogTicks{Prec: -1}.Ticks(lo, hi)
	}
	return plot.DefaultTicks{}.Ticks(lo, hi)
})
