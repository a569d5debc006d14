package bench

import (
	"bytes"
	"flag"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Regenerate the golden report after a deliberate change, and read the
// diff: go test ./bench -run TestReportGolden -update
var update = flag.Bool("update", false, "rewrite testdata/report.golden.md from testdata/summary.json")

func readTestSummary(t *testing.T) *Summary {
	t.Helper()
	s, err := ReadSummary(filepath.Join("testdata", "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestReportGolden renders report.md from a fixed summary (six scenarios
// of acks x linger.ms, one failed and one with errors) and compares it
// with the golden file.
func TestReportGolden(t *testing.T) {
	s := readTestSummary(t)
	var b bytes.Buffer
	plots := []string{plotThroughputLinger, plotSpectrumProduce, plotSpectrumE2E, plotThroughputP99}
	if err := WriteReport(&b, s, plots); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "report.golden.md")
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("report differs from %s (rerun with -update after a deliberate change):\n%s", golden, lineDiff(string(want), b.String()))
	}
	// What the report must say, whatever the golden file holds.
	for _, must := range []string{
		"## Machine limits (measured in this run)", "one TCP stream over loopback", "page-cache append into fresh pages",
		"page-cache append into reused pages", "fdatasync", "## Results", "| # | acks | linger.ms |", "## Best settings",
		"Highest produce throughput: #2", "Lowest produce p99 latency: #1", "## What each setting change cost",
		"| linger.ms | 0 | 5 |", "| acks | 1 | all |", "x append)", "x TCP)", "](throughput-vs-linger.png)",
		"#6 acks=all linger.ms=20: creating topic", "#3 acks=1 linger.ms=20: 2 records failed",
	} {
		if !strings.Contains(b.String(), must) {
			t.Errorf("report lacks %q", must)
		}
	}
	if i, j := strings.Index(b.String(), "## Machine limits"), strings.Index(b.String(), "## Results"); i < 0 || j < i {
		t.Error("the machine's limits do not come before the results")
	}
}

// lineDiff shows the first differing lines.
// TestReportClientCPU: the client CPU column appears when the summary has
// the figure (summaries older than it do not, and their reports stay as
// they were).
func TestReportClientCPU(t *testing.T) {
	s := readTestSummary(t)
	for i := range s.Scenarios {
		s.Scenarios[i].ClientCPUSeconds = 1.5 + float64(i)
	}
	var b bytes.Buffer
	if err := WriteReport(&b, s, nil); err != nil {
		t.Fatal(err)
	}
	for _, must := range []string{"| client CPU s | errors |", "| 1.50 |", "- Client CPU is user+system seconds"} {
		if !strings.Contains(b.String(), must) {
			t.Errorf("report lacks %q", must)
		}
	}
}

func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "line " + itoa(i+1) + ":\nwant: " + wl + "\ngot:  " + gl
		}
	}
	return ""
}

func TestSettingCosts(t *testing.T) {
	s := readTestSummary(t)
	costs := settingCosts(s)
	byKey := map[string]settingCost{}
	for _, c := range costs {
		byKey[c.Key+" "+c.From+">"+c.To] = c
	}
	near := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	// acks 1 -> all: pairs at linger 0 (120/150) and 5 (180/210); linger
	// 20 has no OK pair (#3 had errors, #6 failed).
	c := byKey["acks 1>all"]
	if c.Pairs != 2 {
		t.Fatalf("acks pairs %d", c.Pairs)
	}
	near("acks throughput", c.Throughput, math.Sqrt(120.0/150*180/210))
	near("acks throughput lo", c.ThroughputLo, 120.0/150)
	near("acks p99", c.P99, math.Sqrt(11.0/9*15/12))
	near("acks broker CPU per MiB", c.CPU, 1) // the fixture's CPU is MiB/60
	// linger 0 -> 5: both acks values.
	c = byKey["linger.ms 0>5"]
	if c.Pairs != 2 {
		t.Fatalf("linger pairs %d", c.Pairs)
	}
	near("linger throughput", c.Throughput, math.Sqrt(210.0/150*180/120))
	// linger 5 -> 20: no pair has both ends OK.
	if c := byKey["linger.ms 5>20"]; c.Pairs != 0 {
		t.Errorf("linger 5>20 pairs %d", c.Pairs)
	}
}

// TestWriteOutputs writes everything a run writes from a summary: the
// JSON reads back the same, the PNGs decode, the report has its tables.
func TestWriteOutputs(t *testing.T) {
	s := readTestSummary(t)
	dir := t.TempDir()
	files, err := WriteOutputs(dir, s)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"summary.json", "report.md", plotThroughputLinger, plotSpectrumProduce, plotSpectrumE2E, plotThroughputP99} {
		found := false
		for _, f := range files {
			found = found || f == want
		}
		if !found {
			t.Errorf("%s not written (files %q)", want, files)
		}
	}
	for _, f := range files {
		if !strings.HasSuffix(f, ".png") {
			continue
		}
		fh, err := os.Open(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(fh)
		fh.Close()
		if err != nil {
			t.Errorf("%s: %v", f, err)
		} else if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 300 {
			t.Errorf("%s: %v", f, b)
		}
	}
	back, err := ReadSummary(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if back.Workload.TestDuration != s.Workload.TestDuration || len(back.Scenarios) != 6 || back.Scenarios[4].ProduceLatency.P99Ms != 15 {
		t.Errorf("summary did not read back: %+v", back.Workload)
	}
	report, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	if !strings.Contains(string(report), "![produce latency by percentile](latency-spectrum-produce.png)") {
		t.Errorf("report does not show the plots:\n%s", report)
	}
}

// TestPlotsWithNothingToShow: a run whose every scenario failed still
// writes a summary and a report, and no empty plot.
func TestPlotsWithNothingToShow(t *testing.T) {
	s := readTestSummary(t)
	s.Scenarios = s.Scenarios[5:] // the failed one
	dir := t.TempDir()
	files, err := WriteOutputs(dir, s)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(files, ",") != "summary.json,report.md" {
		t.Errorf("files %q", files)
	}
	report, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	if !strings.Contains(string(report), "No scenario ran to the end without errors, lost (or uncounted) records, or records not sent, not acknowledged or not delivered.") {
		t.Errorf("report:\n%s", report)
	}
}

// TestReportHgrmUnits: the .hgrm files hold milliseconds (as OMB writes
// them), though the histograms record microseconds; the report must say
// which, or a reader of a .hgrm file is off by a thousand.
func TestReportHgrmUnits(t *testing.T) {
	r := NewRecorder()
	r.Record(5 * time.Millisecond)
	var hgrm bytes.Buffer
	if err := WriteHgrm(&hgrm, r.Histogram()); err != nil {
		t.Fatal(err)
	}
	h, err := ParseHgrm(&hgrm)
	if err != nil {
		t.Fatal(err)
	}
	if h.Max < 4.99 || h.Max > 5.01 { // 3 significant digits
		t.Errorf(".hgrm max %v for a 5 ms latency, want 5 (milliseconds)", h.Max)
	}
	var b bytes.Buffer
	if err := WriteReport(&b, readTestSummary(t), nil); err != nil {
		t.Fatal(err)
	}
	if want := "`.hgrm` files, with values in milliseconds"; !strings.Contains(b.String(), want) {
		t.Errorf("report does not say the .hgrm values are milliseconds (lacks %q)", want)
	}
	if strings.Contains(b.String(), "HdrHistograms in microseconds") {
		t.Error("report still calls the .hgrm values microseconds")
	}
}

// TestReportLeavesOutShortfalls: a scenario that did not keep up (records
// never sent at the rate asked for, or never acknowledged) has latency
// percentiles that are lower bounds, so it is no candidate for the best
// settings nor a side of a cost ratio, and the report says why.
func TestReportLeavesOutShortfalls(t *testing.T) {
	r := ScenarioResult{MeasuredSeconds: 5, RecordsStored: -1, NotSent: 2449}
	r.Producer.Acks = AcksAll
	if r.clean() {
		t.Error("a scenario with records not sent is clean")
	}
	r.NotSent, r.Unacknowledged = 0, 1000
	if r.clean() {
		t.Error("a scenario with records unacknowledged is clean")
	}

	s := readTestSummary(t)
	s.Scenarios[1].NotSent = 100       // #2, the highest throughput
	s.Scenarios[0].Unacknowledged = 10 // #1, the lowest p99
	var b strings.Builder
	if err := WriteReport(&b, s, nil); err != nil {
		t.Fatal(err)
	}
	report := b.String()
	for _, must := range []string{
		"| ≥ 3.00 / 12.0 / 18.0 | ≥ 3.90 / 16.8 |", "| ≥ 2.10 / 9.00 / 13.5 |", "| 0, 100 not sent |", "| 0, 10 unacknowledged |",
		"#2 acks=1 linger.ms=5: the producers did not keep up: 100 records never sent",
		"#1 acks=1 linger.ms=0: 10 records unacknowledged",
		"- Latencies marked ≥ are lower bounds",
		"Highest produce throughput: #5", "Lowest produce p99 latency: #4",
		"| linger.ms | 0 | 5 | 1 |", "| acks | 1 | all | 0 |",
	} {
		if !strings.Contains(report, must) {
			t.Errorf("report lacks %q", must)
		}
	}
	if got := settingCosts(s); len(got) == 0 || got[0].Key != "acks" || got[0].Pairs != 0 {
		t.Errorf("acks costs %+v: want no pair, #1 and #2 being out", got)
	}
}

// TestReportShowsEveryErrorText: the failures a scenario's clients (or
// the harness's profile fetches) reported are printed whether or not they
// made the scenario unclean: a clean scenario whose profile could not be
// fetched still says so, and stays a candidate for the best settings.
func TestReportShowsEveryErrorText(t *testing.T) {
	s := readTestSummary(t)
	s.Scenarios[1].ErrorTexts = []string{"profile cpu from node 1: connection refused"} // #2, clean
	if !s.Scenarios[1].clean() {
		t.Fatal("setup: #2 is not clean")
	}
	var b strings.Builder
	if err := WriteReport(&b, s, nil); err != nil {
		t.Fatal(err)
	}
	for _, must := range []string{"- #2 acks=1 linger.ms=5: `profile cpu from node 1: connection refused`", "Highest produce throughput: #2"} {
		if !strings.Contains(b.String(), must) {
			t.Errorf("report lacks %q:\n%s", must, b.String())
		}
	}
}

// TestReportLeavesOutConsumerShortfalls: a scenario whose consumers did not
// receive every record stored by the end of the drain has end-to-end
// percentiles drawn from its fastest records alone, and one whose fetches
// failed did not run cleanly; neither is a candidate for the best settings
// nor a side of a cost ratio. The report marks the end-to-end figures (not
// the produce ones, whose records were all answered) as lower bounds and
// gives the counts.
func TestReportLeavesOutConsumerShortfalls(t *testing.T) {
	s := readTestSummary(t)
	s.Scenarios[0].ConsumeTarget, s.Scenarios[0].RecordsConsumed = 768100, 700000 // #1, the lowest p99s
	s.Scenarios[1].ConsumeTarget, s.Scenarios[1].ConsumeErrors = 1075300, 3       // #2, the highest throughput
	s.Scenarios[4].ConsumeTarget = 921700                                         // #5: all delivered
	var b strings.Builder
	if err := WriteReport(&b, s, nil); err != nil {
		t.Fatal(err)
	}
	report := b.String()
	for _, must := range []string{
		"| 2.10 / 9.00 / 13.5 | ≥ 2.73 / 12.6 |", "| 0, 68100 undelivered |",
		"| 3.00 / 12.0 / 18.0 | 3.90 / 16.8 |", "| 0, 3 consume errors |",
		"#1 acks=1 linger.ms=0: the consumers received 700000 of the 768100 records expected (768100 stored) by the end of the drain: 68100 never delivered",
		"#2 acks=1 linger.ms=5: 3 fetches failed",
		"- Latencies marked ≥ are lower bounds",
		"Highest produce throughput: #5", "Lowest produce p99 latency: #4", "Lowest end-to-end p99 latency: #4",
		"| linger.ms | 0 | 5 | 1 |", "| acks | 1 | all | 0 |",
	} {
		if !strings.Contains(report, must) {
			t.Errorf("report lacks %q", must)
		}
	}
	if strings.Contains(report, "#5 acks=all linger.ms=5:") {
		t.Error("#5, whose consumers received every record, is listed with problems")
	}
	for _, i := range []int{0, 1} {
		if r := s.Scenarios[i]; !r.fellShort() || r.clean() {
			t.Errorf("#%d: fell short %v, clean %v", r.Index, r.fellShort(), r.clean())
		}
	}
	if !s.Scenarios[4].clean() {
		t.Error("#5, whose consumers received every record, is not clean")
	}
	// Two subscriptions read every record stored.
	if got := expectedFrom(ScenarioResult{RecordsStored: 50, RecordsAcked: 60, ConsumeTarget: 100}); got != "50 stored x 2 subscriptions" {
		t.Errorf("expected from %q", got)
	}
}
