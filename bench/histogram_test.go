package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestRecorderAndSummary(t *testing.T) {
	r := NewRecorder()
	for i := 1; i <= 1000; i++ {
		r.Record(time.Duration(i) * time.Millisecond)
	}
	r.Record(-time.Second) // clamped to the lowest value
	// Kept as it is: the range reaches a week, beyond any latency a
	// scenario can see. (An hour, the bound before, cut it to an hour.)
	r.Record(2 * time.Hour)
	s := Summarize(r.Histogram())
	if s.Count != 1002 {
		t.Errorf("count %d", s.Count)
	}
	within := func(name string, got, want float64) {
		t.Helper()
		if got < want*0.999 || got > want*1.001 {
			t.Errorf("%s = %v, want %v (3 significant digits)", name, got, want)
		}
	}
	within("p50", s.P50Ms, 500)
	within("p99", s.P99Ms, 991) // the 992nd of 1002 values
	within("max", s.MaxMs, float64(2*time.Hour/time.Millisecond))
	if s.MinMs != 0.001 {
		t.Errorf("min %v, want 0.001 (1 µs)", s.MinMs)
	}
	if len(s.Spectrum) != len(spectrumPercentiles) || s.Spectrum[0].Percentile != 0 || s.Spectrum[len(s.Spectrum)-1].Percentile != 100 {
		t.Errorf("spectrum %v", s.Spectrum)
	}
	if e := Summarize(NewLatencyHistogram()); e.Count != 0 || e.Spectrum != nil || e.MaxMs != 0 {
		t.Error("empty histogram has figures")
	}
}

// TestLongLatenciesKeepTheirTail: a consumer that catches up after an
// outage of over an hour sees latencies that long; the summary keeps them,
// where an hour-wide histogram cut the max and p99 to an hour.
func TestLongLatenciesKeepTheirTail(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newLoadStats(t0, t0.Add(3*time.Hour))
	sent := t0.Add(time.Minute)
	for range 980 {
		s.delivered(sent, sent.Add(5*time.Millisecond), 1024)
	}
	for i := range 20 {
		s.delivered(sent, sent.Add(time.Duration(70+i)*time.Minute), 1024)
	}
	sum := Summarize(s.e2eLat.Histogram())
	if wantMax, wantP99 := float64(89*time.Minute/time.Millisecond), float64(75*time.Minute/time.Millisecond); sum.MaxMs < wantMax*0.999 || sum.P99Ms < wantP99*0.999 {
		t.Errorf("end-to-end max %.0f ms, p99 %.0f ms; want at least %.0f and %.0f", sum.MaxMs, sum.P99Ms, wantMax, wantP99)
	}
}

func TestHgrmRoundTrip(t *testing.T) {
	h := NewLatencyHistogram()
	for i := int64(1); i <= 10000; i++ {
		h.RecordValue(i * 10) // 10 µs .. 100 ms
	}
	var b bytes.Buffer
	if err := WriteHgrm(&b, h); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "Value") || !strings.Contains(b.String(), "#[Max") {
		t.Fatalf("not the percentile distribution format:\n%s", b.String())
	}
	g, err := ParseHgrm(&b)
	if err != nil {
		t.Fatal(err)
	}
	if g.TotalCount != 10000 || len(g.Rows) < 20 {
		t.Errorf("total %d, %d rows", g.TotalCount, len(g.Rows))
	}
	last := g.Rows[len(g.Rows)-1]
	if last.Percentile != 1 || last.TotalCount != 10000 || last.Value < 99.9 || last.Value > 100.1 {
		t.Errorf("last row %+v, want 100 ms at percentile 1", last)
	}
	if g.Max < 99.9 || g.Max > 100.1 || g.Mean < 49 || g.Mean > 51 {
		t.Errorf("footer max %v mean %v (ms)", g.Max, g.Mean)
	}
}

func TestParseHgrmErrors(t *testing.T) {
	for name, src := range map[string]string{
		"no header":    "1.0 0.5 1 2.0\n",
		"short row":    " Value Percentile TotalCount 1/(1-Percentile)\n\n1.0 0.5 1\n",
		"bad number":   " Value Percentile TotalCount 1/(1-Percentile)\n\nx 0.5 1 2\n",
		"decreasing":   " Value Percentile TotalCount 1/(1-Percentile)\n\n2.0 0.5 1 2\n1.0 0.6 2 2.5\n",
		"bad footer":   " Value Percentile TotalCount 1/(1-Percentile)\n\n#[Max = x]\n",
		"percentile>1": " Value Percentile TotalCount 1/(1-Percentile)\n\n2.0 1.5 1 2\n",
	} {
		if _, err := ParseHgrm(strings.NewReader(src)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
