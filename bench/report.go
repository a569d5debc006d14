package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// WriteReport writes report.md for a summary: the machine's limits first,
// then the scenarios' table, the best settings, what each setting change
// cost, and the plots (file names as WritePlots returned them). It reads
// nothing but the summary, so the same summary always gives the same
// report.
func WriteReport(w io.Writer, s *Summary, plots []string) error {
	var b strings.Builder
	wl := s.Workload
	if wl == nil {
		wl = &Workload{Name: "(unknown)"}
	}
	fmt.Fprintf(&b, "# Benchmark %s\n\n", wl.Name)
	target := fmt.Sprintf("the cluster at %s (%d brokers)", strings.Join(s.Target.Bootstrap, ","), s.Target.Brokers)
	if s.Target.Embedded {
		target = fmt.Sprintf("an embedded cluster of %d gregor serve process(es) on loopback", s.Target.Brokers)
	}
	clients := fmt.Sprintf("the %s client", s.Client)
	if wl.Sweep.Client != nil {
		clients = fmt.Sprintf("the clients %s (swept: each scenario names its own)", strings.Join(wl.Sweep.Client, " and "))
	}
	fmt.Fprintf(&b, "Run from %s to %s UTC with %s against %s.\n",
		s.StartedAt.UTC().Format("2006-01-02 15:04:05"), s.FinishedAt.UTC().Format("15:04:05"), clients, target)
	if s.Interrupted {
		b.WriteString("**The run was interrupted**: the figures below are what was measured until then.\n")
	}
	if s.Error != "" {
		fmt.Fprintf(&b, "**The run stopped early**: %s\n", oneLine(s.Error))
	}
	b.WriteString("\n")
	rate := "as fast as the producers are acknowledged"
	if wl.ProducerRate > 0 {
		rate = fmt.Sprintf("%s records/s in total (latency counted from each record's intended send time, correcting for coordinated omission)", fmtNum(wl.ProducerRate))
	}
	payload := string(wl.Payload)
	if wl.PayloadFile != "" {
		payload = "from " + wl.PayloadFile
	}
	fmt.Fprintf(&b, "Workload: %d topic(s) of %d partition(s); %d-byte records (%s payload), keys %s; %d producer(s) and %d subscription(s) of %d consumer(s) per topic; rate %s; warmup %v, measured %v per scenario.",
		wl.Topics, wl.PartitionsPerTopic, wl.MessageSize, payload, wl.KeyDistributor, wl.ProducersPerTopic,
		wl.SubscriptionsPerTopic, wl.ConsumerPerSubscription, rate, wl.WarmupDuration, wl.TestDuration)
	if wl.ConsumerGroups {
		b.WriteString(" Each subscription is a consumer group; the load starts once every group has settled, and records a group delivers again after a rebalance count once.")
	}
	if len(s.Swept) > 0 {
		fmt.Fprintf(&b, " %d scenarios: the sweep over %s.", len(s.Scenarios), strings.Join(s.Swept, " x "))
	}
	b.WriteString("\n\n")

	writeLimits(&b, s)
	writeResults(&b, s)
	writeBest(&b, s)
	writeCosts(&b, s)

	writeProfiles(&b, s)
	if len(plots) > 0 {
		b.WriteString("## Plots\n\n")
		for _, p := range plots {
			fmt.Fprintf(&b, "![%s](%s)\n\n", plotTitles[p], p)
		}
	}

	b.WriteString("## How to read this\n\n")
	b.WriteString("- Rates are over the measured phase: records acknowledged (produce) or received (consume) in it, divided by its length. MiB are 2^20 bytes of record values, before compression, as kafka-producer-perf-test counts its MB.\n")
	b.WriteString("- Produce latency runs from the send (at a fixed rate: from the intended send time) to the acknowledgement; end-to-end latency from the same point to a consumer's receipt, read from a timestamp the record carries. Both are recorded in HdrHistograms of microseconds with 3 significant digits; each scenario's distributions are in its `.hgrm` files, with values in milliseconds.\n")
	b.WriteString("- \"of bound\" divides a throughput by the machine limit that bounds it: produce by the lower of one loopback TCP stream and page-cache appends into fresh pages divided by the replication factor (every replica writes the bytes on this machine); consume by one loopback TCP stream. The bytes compared are those that cross the wire and reach the page cache: the record values divided by the compression ratio. Against a remote cluster these are this machine's limits, not the cluster's.\n")
	b.WriteString("- Best settings and cost ratios leave out scenarios with errors, with acknowledged records missing from the log afterwards (or whose log could not be counted), that did not keep up (records not sent at the rate asked for, or not acknowledged or not delivered to every subscription's consumers by the end of the drain), or whose consumers' fetches failed. Cost ratios compare scenarios that differ in one setting only, from one value to the next; above 1 means more throughput (or more latency) at the second value. The figure is the geometric mean over every such pair, with the range.\n")
	if slices.ContainsFunc(s.Scenarios, func(r ScenarioResult) bool { return r.producerShort() || r.Undelivered() > 0 }) {
		b.WriteString("- Latencies marked ≥ are lower bounds: the scenario did not keep up, and its slowest records were never sent (counted from their intended send time to when the producer gave up) or never acknowledged (not counted), or, for end-to-end latency, never reached the consumers by the end of the drain (not counted).\n")
	}
	if s.Target.Embedded {
		b.WriteString("- Broker CPU is user+system seconds of all brokers over the measured phase (/proc/<pid>/stat); peak RSS is the highest VmHWM of any broker over the scenario.\n")
	}
	if clientCPUShown(s) {
		b.WriteString("- Client CPU is user+system seconds of the harness's own process over the measured phase: the producers and consumers of the client named above, and the harness's bookkeeping.\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeLimits(b *strings.Builder, s *Summary) {
	b.WriteString("## Machine limits (measured in this run)\n\n")
	l := s.Limits
	if l == nil {
		b.WriteString("Not measured.\n\n")
		return
	}
	b.WriteString("| limit | figure |\n|---|---|\n")
	fmt.Fprintf(b, "| one TCP stream over loopback (1 MiB writes) | %s MiB/s |\n", fmtNum(l.LoopbackTCPMiBps))
	fmt.Fprintf(b, "| page-cache append into fresh pages (1 MiB writes to a new file) | %s MiB/s |\n", fmtNum(l.AppendFreshMiBps))
	fmt.Fprintf(b, "| page-cache append into reused pages (rewriting a 64 MiB region) | %s MiB/s |\n", fmtNum(l.AppendReusedMiBps))
	fmt.Fprintf(b, "| 4 KiB append + fdatasync, %d times | p50 %s ms, p99 %s ms, max %s ms |\n",
		l.Fdatasync.Count, fmtNum(l.Fdatasync.P50Ms), fmtNum(l.Fdatasync.P99Ms), fmtNum(l.Fdatasync.MaxMs))
	b.WriteString("\n")
	fmt.Fprintf(b, "%d cores", l.Cores)
	if l.CPU != "" {
		fmt.Fprintf(b, " (%s)", l.CPU)
	}
	fmt.Fprintf(b, ", %s; files in %s.", l.GoVersion, l.Dir)
	if s.LimitsError != "" {
		fmt.Fprintf(b, " Some limits could not be measured: %s.", oneLine(s.LimitsError))
	}
	b.WriteString("\n\n")
}

// produceBound is the machine limit that bounds a scenario's produce
// throughput, and its name.
func produceBound(s *Summary, rf int) (float64, string) {
	if s.Limits == nil {
		return 0, ""
	}
	tcp := s.Limits.LoopbackTCPMiBps
	if s.Target.Embedded && s.Limits.AppendFreshMiBps > 0 {
		app := s.Limits.AppendFreshMiBps / float64(max(rf, 1))
		if app < tcp || tcp <= 0 {
			if rf > 1 {
				return app, fmt.Sprintf("append/%d", rf)
			}
			return app, "append"
		}
	}
	return tcp, "TCP"
}

func fraction(v, bound float64, name string) string {
	if bound <= 0 || v <= 0 {
		return ""
	}
	return fmt.Sprintf(" (%.2gx %s)", v/bound, name)
}

func writeResults(b *strings.Builder, s *Summary) {
	b.WriteString("## Results\n\n")
	if len(s.Scenarios) == 0 {
		b.WriteString("No scenario ran.\n\n")
		return
	}
	header := []string{"#"}
	header = append(header, s.Swept...)
	if len(s.Swept) == 0 {
		header = append(header, "scenario")
	}
	header = append(header, "produce rec/s", "produce MiB/s (of bound)", "consume MiB/s (of bound)",
		"produce p50 / p99 / p99.9 ms", "e2e p50 / p99 ms", "records/batch", "compression")
	if s.Target.Embedded {
		header = append(header, "broker CPU s", "peak RSS MiB")
	}
	clientCPU := clientCPUShown(s)
	if clientCPU {
		header = append(header, "client CPU s")
	}
	header = append(header, "errors")
	b.WriteString("| " + strings.Join(header, " | ") + " |\n")
	b.WriteString("|" + strings.Repeat("---|", len(header)) + "\n")
	var failed []ScenarioResult
	for _, r := range s.Scenarios {
		row := []string{strconv.Itoa(r.Index)}
		for _, k := range s.Swept {
			row = append(row, r.Value(k))
		}
		if len(s.Swept) == 0 {
			row = append(row, r.Name)
		}
		if r.Error != "" && r.MeasuredSeconds == 0 {
			failed = append(failed, r)
			row = append(row, "failed")
			for len(row) < len(header) {
				row = append(row, "")
			}
			b.WriteString("| " + strings.Join(row, " | ") + " |\n")
			continue
		}
		pb, pn := produceBound(s, r.ReplicationFactor)
		var cb float64
		if s.Limits != nil {
			cb = s.Limits.LoopbackTCPMiBps
		}
		// What crosses the wire and lands in the page cache is the
		// compressed batch, so that is what the limits bound.
		wire := 1.0
		if r.CompressionRatio > 0 {
			wire = 1 / r.CompressionRatio
		}
		// A scenario that fell short has its percentiles as lower bounds:
		// both kinds when the producers did, end-to-end ones alone when
		// records stored never reached the consumers.
		atLeast, e2eAtLeast := "", ""
		if r.producerShort() {
			atLeast = "≥ "
		}
		if r.producerShort() || r.Undelivered() > 0 {
			e2eAtLeast = "≥ "
		}
		row = append(row,
			fmtNum(r.ProduceRecordsPerSec),
			fmtNum(r.ProduceMiBPerSec)+fraction(r.ProduceMiBPerSec*wire, pb, pn),
			fmtNum(r.ConsumeMiBPerSec)+fraction(r.ConsumeMiBPerSec*wire, cb, "TCP"),
			atLeast+fmt.Sprintf("%s / %s / %s", fmtNum(r.ProduceLatency.P50Ms), fmtNum(r.ProduceLatency.P99Ms), fmtNum(r.ProduceLatency.P999Ms)),
			dashIfZero(r.EndToEndLatency.Count, e2eAtLeast+fmt.Sprintf("%s / %s", fmtNum(r.EndToEndLatency.P50Ms), fmtNum(r.EndToEndLatency.P99Ms))),
			dashIfZero(r.Batches, fmtNum(r.AvgBatchRecords)),
			compressionCell(r),
		)
		if s.Target.Embedded {
			row = append(row, fmtNum(r.BrokerCPUSeconds), fmtNum(float64(r.BrokerPeakRSSBytes)/(1<<20)))
		}
		if clientCPU {
			row = append(row, fmtNum(r.ClientCPUSeconds))
		}
		row = append(row, errorCell(r))
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
		// A clean scenario's failures (a profile not fetched) are listed
		// too: an error the report does not show is one nobody reads.
		if !r.clean() || len(r.ErrorTexts) > 0 {
			failed = append(failed, r)
		}
	}
	b.WriteString("\n")
	if len(failed) > 0 {
		b.WriteString("Scenarios with problems:\n\n")
		for _, r := range failed {
			var what []string
			if r.Error != "" {
				what = append(what, oneLine(r.Error))
			}
			if r.Interrupted {
				what = append(what, "interrupted")
			}
			if r.Refused > 0 {
				what = append(what, fmt.Sprintf("%d records failed (%d refused by the client before they were sent)", r.Errors, r.Refused))
			} else if r.Errors > 0 {
				what = append(what, fmt.Sprintf("%d records failed", r.Errors))
			}
			if r.NotSent > 0 {
				what = append(what, fmt.Sprintf("the producers did not keep up: %d records never sent at the rate asked for (their latencies count until the producers gave up, so the latency percentiles are lower bounds)", r.NotSent))
			}
			if lost := r.Lost(); lost > 0 {
				why := ""
				if r.Producer.Acks == AcksNone {
					why = " (acks=0 gets no answer: a record the broker drops still counts as sent)"
				}
				what = append(what, fmt.Sprintf("%d acknowledged records (%.2g%%) were not in the log afterwards%s",
					lost, 100*float64(lost)/float64(r.RecordsAcked), why))
			}
			if r.Unacknowledged > 0 {
				what = append(what, fmt.Sprintf("%d records unacknowledged when the drain timed out (missing from the latencies, so the percentiles are lower bounds)", r.Unacknowledged))
			}
			if n := r.Undelivered(); n > 0 {
				what = append(what, fmt.Sprintf("the consumers received %d of the %d records expected (%s) by the end of the drain: %d never delivered (missing from the end-to-end latencies, so those percentiles are lower bounds)",
					r.RecordsConsumed, r.ConsumeTarget, expectedFrom(r), n))
			}
			if r.ConsumeErrors > 0 {
				what = append(what, fmt.Sprintf("%d fetches failed", r.ConsumeErrors))
			}
			if r.storedUnknown() {
				what = append(what, "the records stored could not be counted (the end offsets were not read), so lost records are unknown")
			}
			for _, e := range r.ErrorTexts {
				what = append(what, "`"+oneLine(e)+"`")
			}
			fmt.Fprintf(b, "- #%d %s: %s\n", r.Index, r.Name, strings.Join(what, "; "))
		}
		b.WriteString("\n")
	}
}

// expectedFrom says where a scenario's ConsumeTarget came from.
func expectedFrom(r ScenarioResult) string {
	base, what := r.RecordsStored, "stored"
	if base < 0 {
		base, what = r.RecordsAcked, "acknowledged"
	}
	if base > 0 && r.ConsumeTarget > base {
		return fmt.Sprintf("%d %s x %d subscriptions", base, what, r.ConsumeTarget/base)
	}
	return fmt.Sprintf("%d %s", base, what)
}

func dashIfZero(n int64, s string) string {
	if n == 0 {
		return "-"
	}
	return s
}

func compressionCell(r ScenarioResult) string {
	if r.CompressionRatio <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", r.CompressionRatio)
}

func errorCell(r ScenarioResult) string {
	parts := []string{strconv.FormatInt(r.Errors, 10)}
	if r.Retries > 0 {
		parts = append(parts, fmt.Sprintf("%d retries", r.Retries))
	}
	if r.NotSent > 0 {
		parts = append(parts, fmt.Sprintf("%d not sent", r.NotSent))
	}
	if r.Unacknowledged > 0 {
		parts = append(parts, fmt.Sprintf("%d unacknowledged", r.Unacknowledged))
	}
	if n := r.Undelivered(); n > 0 {
		parts = append(parts, fmt.Sprintf("%d undelivered", n))
	}
	if r.ConsumeErrors > 0 {
		parts = append(parts, fmt.Sprintf("%d consume errors", r.ConsumeErrors))
	}
	if lost := r.Lost(); lost > 0 {
		parts = append(parts, fmt.Sprintf("%d lost", lost))
	} else if r.storedUnknown() {
		parts = append(parts, "lost unknown")
	}
	if r.Interrupted {
		parts = append(parts, "interrupted")
	}
	return strings.Join(parts, ", ")
}

func writeBest(b *strings.Builder, s *Summary) {
	b.WriteString("## Best settings\n\n")
	var ok []ScenarioResult
	for _, r := range s.Scenarios {
		if r.clean() {
			ok = append(ok, r)
		}
	}
	if len(ok) == 0 {
		b.WriteString("No scenario ran to the end without errors, lost (or uncounted) records, or records not sent, not acknowledged or not delivered.\n\n")
		return
	}
	best := func(title string, better func(a, c ScenarioResult) bool, show func(r ScenarioResult) string) {
		top := ok[0]
		for _, r := range ok[1:] {
			if better(r, top) {
				top = r
			}
		}
		fmt.Fprintf(b, "- %s: #%d %s (%s).\n", title, top.Index, top.Name, show(top))
	}
	figures := func(r ScenarioResult) string {
		return fmt.Sprintf("%s MiB/s, %s records/s, produce p99 %s ms", fmtNum(r.ProduceMiBPerSec), fmtNum(r.ProduceRecordsPerSec), fmtNum(r.ProduceLatency.P99Ms))
	}
	best("Highest produce throughput", func(a, c ScenarioResult) bool { return a.ProduceMiBPerSec > c.ProduceMiBPerSec }, figures)
	best("Lowest produce p99 latency", func(a, c ScenarioResult) bool {
		return a.ProduceLatency.Count > 0 && (c.ProduceLatency.Count == 0 || a.ProduceLatency.P99Ms < c.ProduceLatency.P99Ms)
	}, figures)
	hasE2E := slices.ContainsFunc(ok, func(r ScenarioResult) bool { return r.EndToEndLatency.Count > 0 })
	if hasE2E {
		best("Lowest end-to-end p99 latency", func(a, c ScenarioResult) bool {
			return a.EndToEndLatency.Count > 0 && (c.EndToEndLatency.Count == 0 || a.EndToEndLatency.P99Ms < c.EndToEndLatency.P99Ms)
		}, func(r ScenarioResult) string {
			return fmt.Sprintf("e2e p99 %s ms, %s MiB/s", fmtNum(r.EndToEndLatency.P99Ms), fmtNum(r.ProduceMiBPerSec))
		})
	}
	b.WriteString("\n")
}

// clean reports a scenario fit to compare: it ran to the end without
// errors, the cluster held every record it acknowledged (an acks=0
// scenario that lost records was faster only at losing them), which needs
// the count of records stored (with acks=0 nothing else tells whether
// records were lost), and it did not fall short (fellShort), since its
// latencies would be lower bounds that look better than the scenarios
// that kept up.
func (r *ScenarioResult) clean() bool {
	return r.OK() && !r.storedUnknown() && r.Lost() == 0 && !r.fellShort()
}

// storedUnknown reports a scenario that ran whose records stored could not
// be counted (listing the end offsets failed), so that its losses are
// unknown. An interrupted or failed scenario says so already.
func (r *ScenarioResult) storedUnknown() bool {
	return r.RecordsStored < 0 && r.Error == "" && !r.Interrupted && r.MeasuredSeconds > 0
}

// fellShort reports a scenario that did not keep up: its producers fell
// short (producerShort), or its consumers did: records stored that never
// reached them by the end of the drain, or fetches that failed. The
// slowest records' latencies are then lower bounds or missing, and a
// scenario whose consumers received only the fastest records would look
// best at end-to-end latency.
func (r *ScenarioResult) fellShort() bool {
	return r.producerShort() || r.Undelivered() > 0 || r.ConsumeErrors > 0
}

// producerShort reports a scenario whose producers did not keep up:
// records never sent at the rate asked for, or sent and never answered.
// Either way the slowest records' latencies are lower bounds or missing,
// so the percentiles are lower bounds.
func (r *ScenarioResult) producerShort() bool { return r.NotSent > 0 || r.Unacknowledged > 0 }

// settingCost is what changing one setting from one value to the next
// did, over every pair of scenarios that differ in it alone.
type settingCost struct {
	Key, From, To                          string
	Pairs                                  int
	Throughput, ThroughputLo, ThroughputHi float64
	P99, P99Lo, P99Hi                      float64
	// CPU compares broker CPU seconds per MiB produced (embedded runs).
	CPU, CPULo, CPUHi float64
}

// ratioStat accumulates a geometric mean and a range.
type ratioStat struct {
	logSum, lo, hi float64
	n              int
}

func (r *ratioStat) add(v float64) {
	if r.n == 0 {
		r.lo, r.hi = v, v
	}
	r.logSum += math.Log(v)
	r.lo, r.hi = min(r.lo, v), max(r.hi, v)
	r.n++
}

func (r *ratioStat) get() (mean, lo, hi float64) {
	if r.n == 0 {
		return 0, 0, 0
	}
	return math.Exp(r.logSum / float64(r.n)), r.lo, r.hi
}

// settingCosts computes, for each swept key and adjacent pair of its
// values, the geometric mean and range of the throughput and p99 ratios.
func settingCosts(s *Summary) []settingCost {
	var out []settingCost
	for _, key := range s.Swept {
		values := sweepValues(s, key)
		for i := 0; i+1 < len(values); i++ {
			c := settingCost{Key: key, From: values[i], To: values[i+1]}
			var tput, p99, cpu ratioStat
			for _, a := range s.Scenarios {
				if !a.clean() || a.Value(key) != c.From {
					continue
				}
				for _, z := range s.Scenarios {
					if !z.clean() || z.Value(key) != c.To || !sameExcept(a, z, key) {
						continue
					}
					if a.ProduceMiBPerSec > 0 && z.ProduceMiBPerSec > 0 {
						tput.add(z.ProduceMiBPerSec / a.ProduceMiBPerSec)
						if a.BrokerCPUSeconds > 0 && z.BrokerCPUSeconds > 0 {
							cpu.add((z.BrokerCPUSeconds / z.ProduceMiBPerSec) / (a.BrokerCPUSeconds / a.ProduceMiBPerSec))
						}
					}
					if a.ProduceLatency.P99Ms > 0 && z.ProduceLatency.P99Ms > 0 {
						p99.add(z.ProduceLatency.P99Ms / a.ProduceLatency.P99Ms)
					}
				}
			}
			c.Pairs = tput.n
			c.Throughput, c.ThroughputLo, c.ThroughputHi = tput.get()
			c.P99, c.P99Lo, c.P99Hi = p99.get()
			c.CPU, c.CPULo, c.CPUHi = cpu.get()
			out = append(out, c)
		}
	}
	return out
}

// sweepValues lists a swept key's values in the order scenarios ran them,
// which is the sweep's order.
func sweepValues(s *Summary, key string) []string {
	var vals []string
	for _, r := range s.Scenarios {
		if v := r.Value(key); v != "" && !slices.Contains(vals, v) {
			vals = append(vals, v)
		}
	}
	return vals
}

func sameExcept(a, z ScenarioResult, key string) bool {
	if len(a.Swept) != len(z.Swept) {
		return false
	}
	for i := range a.Swept {
		if a.Swept[i].Key != key && a.Swept[i] != z.Swept[i] {
			return false
		}
	}
	return true
}

func writeCosts(b *strings.Builder, s *Summary) {
	costs := settingCosts(s)
	if len(costs) == 0 {
		return
	}
	cpu := false
	for _, c := range costs {
		cpu = cpu || c.CPU > 0
	}
	b.WriteString("## What each setting change cost\n\n")
	b.WriteString("| setting | from | to | pairs | produce throughput ratio (range) | produce p99 ratio (range) |")
	if cpu {
		b.WriteString(" broker CPU per MiB ratio (range) |")
	}
	b.WriteString("\n|---|---|---|---|---|---|")
	if cpu {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	cell := func(v, lo, hi float64) string {
		if v <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.2fx (%.2f-%.2f)", v, lo, hi)
	}
	for _, c := range costs {
		fmt.Fprintf(b, "| %s | %s | %s | %d | %s | %s |", c.Key, c.From, c.To, c.Pairs,
			cell(c.Throughput, c.ThroughputLo, c.ThroughputHi), cell(c.P99, c.P99Lo, c.P99Hi))
		if cpu {
			fmt.Fprintf(b, " %s |", cell(c.CPU, c.CPULo, c.CPUHi))
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
}

// writeProfiles lists the broker profiles recorded with --profile.
func writeProfiles(b *strings.Builder, s *Summary) {
	has := false
	for _, r := range s.Scenarios {
		has = has || len(r.ProfileFiles) > 0
	}
	if !has {
		return
	}
	b.WriteString("## Broker profiles\n\n")
	b.WriteString("Fetched from each broker's /debug/pprof during the measured phase; read them with `go tool pprof` (`go tool trace` for traces). Mutex and block profiles stay empty unless the broker enables them (runtime.SetMutexProfileFraction, runtime.SetBlockProfileRate).\n\n")
	for _, r := range s.Scenarios {
		if len(r.ProfileFiles) == 0 {
			continue
		}
		files := slices.Clone(r.ProfileFiles)
		slices.Sort(files)
		fmt.Fprintf(b, "- #%d %s: %s\n", r.Index, r.Name, "`"+strings.Join(files, "`, `")+"`")
	}
	b.WriteString("\n")
}

// fmtNum prints a figure with three or so significant digits: enough for
// measurements whose run-to-run noise is in the percent.
func fmtNum(v float64) string {
	a := math.Abs(v)
	switch {
	case v == 0:
		return "0"
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

// oneLine keeps multi-line errors inside a table cell or list item.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "|", "/")), " ")
}

// clientCPUShown is whether the summary has client CPU figures: summaries
// written before they were measured do not.
func clientCPUShown(s *Summary) bool {
	for _, r := range s.Scenarios {
		if r.ClientCPUSeconds > 0 {
			return true
		}
	}
	return false
}
