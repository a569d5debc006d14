package bench

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, from 1 µs to a week, with 3
// significant digits: the same resolution as the OpenMessaging Benchmark,
// and small enough (about 250 KB) to keep one per scenario in memory. A
// week is more than any latency a scenario can see (its warmup and its
// measured phase are at most a day each, and its drain has a deadline), so
// no value is ever clamped: an hour, the bound before, silently cut a
// consumer's catch-up after a long outage down to an hour.
const (
	histLowestUs  = 1
	histHighestUs = int64(7 * 24 * time.Hour / time.Microsecond)
	histSigFigs   = 3
)

// NewLatencyHistogram returns an empty histogram of microseconds.
func NewLatencyHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowestUs, histHighestUs, histSigFigs)
}

// Recorder is a latency histogram safe for concurrent use: acknowledgements
// arrive on the client's goroutines. A mutex is cheap next to a produce
// and keeps one histogram rather than one per goroutine to merge.
type Recorder struct {
	mu struct {
		sync.Mutex
		h *hdrhistogram.Histogram
	}
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	r := &Recorder{}
	r.mu.h = NewLatencyHistogram()
	return r
}

// Record adds one latency. Values outside the histogram's range (below
// 1 µs; none above it can arise) are clamped to it rather than lost.
func (r *Recorder) Record(d time.Duration) {
	us := d.Microseconds()
	us = min(max(us, histLowestUs), histHighestUs)
	r.mu.Lock()
	r.mu.h.RecordValue(us)
	r.mu.Unlock()
}

// Histogram returns a copy of what has been recorded.
func (r *Recorder) Histogram() *hdrhistogram.Histogram {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.h.Clone()
}

// LatencySummary is a histogram's figures in milliseconds.
type LatencySummary struct {
	Count    int64           `json:"count"`
	MeanMs   float64         `json:"meanMs"`
	MinMs    float64         `json:"minMs"`
	MaxMs    float64         `json:"maxMs"`
	P50Ms    float64         `json:"p50Ms"`
	P95Ms    float64         `json:"p95Ms"`
	P99Ms    float64         `json:"p99Ms"`
	P999Ms   float64         `json:"p999Ms"`
	P9999Ms  float64         `json:"p9999Ms"`
	Spectrum []SpectrumPoint `json:"spectrum,omitempty"`
}

// SpectrumPoint is one point of a latency percentile spectrum.
type SpectrumPoint struct {
	Percentile float64 `json:"percentile"`
	Ms         float64 `json:"ms"`
}

// spectrumPercentiles are the points kept in summary.json for plots: dense
// in the tail, where latency distributions say the most.
var spectrumPercentiles = []float64{0, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 92.5, 95, 96.25, 97.5, 98.75,
	99, 99.375, 99.5, 99.6875, 99.8, 99.9, 99.95, 99.99, 99.995, 99.999, 100}

// Summarize computes a histogram's figures.
func Summarize(h *hdrhistogram.Histogram) LatencySummary {
	if h == nil || h.TotalCount() == 0 {
		return LatencySummary{}
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	s := LatencySummary{
		Count:   h.TotalCount(),
		MeanMs:  h.Mean() / 1000,
		MinMs:   ms(h.Min()),
		MaxMs:   ms(h.Max()),
		P50Ms:   ms(h.ValueAtQuantile(50)),
		P95Ms:   ms(h.ValueAtQuantile(95)),
		P99Ms:   ms(h.ValueAtQuantile(99)),
		P999Ms:  ms(h.ValueAtQuantile(99.9)),
		P9999Ms: ms(h.ValueAtQuantile(99.99)),
	}
	for _, p := range spectrumPercentiles {
		s.Spectrum = append(s.Spectrum, SpectrumPoint{Percentile: p, Ms: ms(h.ValueAtQuantile(p))})
	}
	return s
}

// WriteHgrm writes h in HdrHistogram's percentile distribution format
// (what HistogramLogProcessor and the online plotter read), with values in
// milliseconds as OMB writes them.
func WriteHgrm(w io.Writer, h *hdrhistogram.Histogram) error {
	_, err := h.PercentilesPrint(w, 5, 1000.0)
	return err
}

// Hgrm is a parsed percentile distribution file.
type Hgrm struct {
	Rows       []HgrmRow
	Mean, Max  float64
	TotalCount int64
}

// HgrmRow is one line of a percentile distribution.
type HgrmRow struct {
	Value      float64
	Percentile float64 // 0..1
	TotalCount int64
}

// ParseHgrm reads a percentile distribution file as WriteHgrm (or Java's
// outputPercentileDistribution) writes it.
func ParseHgrm(r io.Reader) (*Hgrm, error) {
	out := &Hgrm{}
	sc := bufio.NewScanner(r)
	header := false
	line := 0
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		switch {
		case t == "":
			continue
		case strings.HasPrefix(t, "Value"):
			header = true
			continue
		case strings.HasPrefix(t, "#[Mean"):
			if _, err := fmt.Sscanf(strings.ReplaceAll(t, ",", " "), "#[Mean = %g StdDeviation = %g]", &out.Mean, new(float64)); err != nil {
				return nil, fmt.Errorf("line %d: %q: %v", line, t, err)
			}
			continue
		case strings.HasPrefix(t, "#[Max"):
			if _, err := fmt.Sscanf(strings.ReplaceAll(t, ",", " "), "#[Max = %g Total count = %d]", &out.Max, &out.TotalCount); err != nil {
				return nil, fmt.Errorf("line %d: %q: %v", line, t, err)
			}
			continue
		case strings.HasPrefix(t, "#"):
			continue
		}
		if !header {
			return nil, fmt.Errorf("line %d: data before the Value/Percentile header", line)
		}
		f := strings.Fields(t)
		if len(f) != 4 {
			return nil, fmt.Errorf("line %d: want 4 columns, got %q", line, t)
		}
		v, err1 := strconv.ParseFloat(f[0], 64)
		p, err2 := strconv.ParseFloat(f[1], 64)
		c, err3 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || p < 0 || p > 1 {
			return nil, fmt.Errorf("line %d: bad row %q", line, t)
		}
		if n := len(out.Rows); n > 0 && (v < out.Rows[n-1].Value || p < out.Rows[n-1].Percentile) {
			return nil, fmt.Errorf("line %d: values or percentiles decrease", line)
		}
		out.Rows = append(out.Rows, HgrmRow{Value: v, Percentile: p, TotalCount: c})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !header {
		return nil, fmt.Errorf("no Value/Percentile header")
	}
	return out, nil
}
