package bench

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Config is one run of the harness.
type Config struct {
	Workload *Workload
	// Bootstrap is a Kafka-compatible cluster to drive. Empty: the harness
	// starts an embedded cluster of gregor serve processes.
	Bootstrap []string
	// Brokers is the embedded cluster's size (default 1).
	Brokers int
	// GregorBinary is the gregor executable for the embedded cluster.
	GregorBinary string
	// BrokerProperties are extra server.properties lines for embedded
	// brokers.
	BrokerProperties []string
	// DataDir is where embedded brokers keep their (temporary) data and
	// where the page-cache and fdatasync limits are measured. Default:
	// the system's temporary directory.
	DataDir string
	// Client names the driver (see DriverNames); default "gregor", Gregor's
	// own client.
	Client string
	// OutDir is the parent of the run's folder, <date>-<workload name>
	// (default "results").
	OutDir string
	// Profiles are the profiles to record (ProfileKinds); broker ones for
	// embedded clusters only.
	Profiles []string
	// Timeout bounds reaching the cluster and each admin operation
	// (default 30 s).
	Timeout time.Duration
	// DrainTimeout bounds the wait, after the measured phase, for the
	// producers' last acknowledgements and the consumers' last records
	// (default 30 s). A producer still blocked in Produce that long after
	// the measured phase is released first, and the drain starts then.
	DrainTimeout time.Duration
	// Progress receives a line every ProgressInterval (default 5 s) and a
	// final line per scenario, in kafka-producer-perf-test's format.
	Progress         io.Writer
	ProgressInterval time.Duration
	// LimitsEach bounds each machine-limit measurement (default 1 s).
	LimitsEach time.Duration
	// Now gives the run's date; default time.Now.
	Now func() time.Time
}

// ErrInterrupted is returned when ctx ended the run; what was measured
// until then is written all the same.
var ErrInterrupted = errors.New("interrupted")

// Result is a finished (or interrupted) run.
type Result struct {
	Summary *Summary
	// Dir is the run's folder; Files are the files written into it.
	Dir   string
	Files []string
}

func (c *Config) setDefaults() {
	if c.Brokers <= 0 {
		c.Brokers = 1
	}
	if c.Client == "" {
		c.Client = "gregor"
	}
	if c.OutDir == "" {
		c.OutDir = "results"
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = 5 * time.Second
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.DataDir == "" {
		c.DataDir = os.TempDir()
	}
}

// Check reports configuration errors that need no cluster: the workload
// against the embedded cluster's size, the client, and profiles asked of
// a cluster the harness does not run.
func (c *Config) Check() error {
	cc := *c
	cc.setDefaults()
	if cc.Workload == nil {
		return errors.New("no workload")
	}
	var errs []error
	if len(cc.Bootstrap) == 0 {
		if err := cc.Workload.Validate(cc.Brokers); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := LookupDriver(cc.Client); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, checkClientSettings(cc.Workload, cc.Client)...)
	if brokerProfiles(cc.Profiles) && len(cc.Bootstrap) > 0 {
		errs = append(errs, errors.New("broker profiles are recorded from the embedded brokers' admin ports; with --bootstrap there are none to ask (the client profile works with any cluster)"))
	}
	for _, p := range cc.Profiles {
		if _, err := ParseProfiles(p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkClientSettings asks each scenario's client (its own when the sweep
// varies it, else client) whether it can honour the scenario's producer
// settings; scenarios refused for the same reason are named together.
func checkClientSettings(w *Workload, client string) []error {
	type refusal struct {
		client, why string
	}
	var order []refusal
	scenarios := map[refusal][]string{}
	for _, sc := range w.Scenarios() {
		name := cmp.Or(sc.Client, client)
		d, err := LookupDriver(name)
		if err != nil {
			continue // reported on its own
		}
		sch, ok := d.(settingsChecker)
		if !ok {
			continue
		}
		if err := sch.checkProducerSettings(sc.Producer); err != nil {
			r := refusal{name, err.Error()}
			if scenarios[r] == nil {
				order = append(order, r)
			}
			scenarios[r] = append(scenarios[r], strconv.Itoa(sc.Index))
		}
	}
	var errs []error
	for _, r := range order {
		errs = append(errs, fmt.Errorf("client %s, scenario(s) %s: %s", r.client, strings.Join(scenarios[r], ", "), r.why))
	}
	return errs
}

// Run runs every scenario of the workload and writes the run's folder:
// summary.json, a .hgrm per scenario and latency kind, report.md and the
// plots. It fails fast, before writing anything, when the configuration is
// wrong or the cluster cannot be reached. Once scenarios have run, their
// results are written whatever happens next: a failed scenario is recorded
// and the next one runs; an interrupt (ctx) stops the scenario in progress,
// stops the embedded brokers, writes what was measured and returns
// ErrInterrupted. A returned error with a non-nil Result means the files
// were written but some scenario failed.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.setDefaults()
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	driver, _ := LookupDriver(cfg.Client)
	w := cfg.Workload
	sum := &Summary{Workload: w, Client: cfg.Client, StartedAt: cfg.Now().UTC(), Swept: w.Sweep.Swept(),
		Target: Target{Embedded: len(cfg.Bootstrap) == 0, Brokers: cfg.Brokers, Bootstrap: cfg.Bootstrap}}

	r := &runner{cfg: cfg, w: w, driver: driver, sum: sum}
	var err error
	if sum.Target.Embedded {
		fmt.Fprintf(cfg.Progress, "starting an embedded cluster of %d gregor node(s) (%s)\n", cfg.Brokers, cfg.GregorBinary)
		if r.cluster, err = StartCluster(ctx, ClusterConfig{Binary: cfg.GregorBinary, Brokers: cfg.Brokers, Dir: cfg.DataDir,
			Properties: cfg.BrokerProperties, StartTimeout: max(cfg.Timeout, 60*time.Second)}); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%w while starting the embedded cluster", ErrInterrupted)
			}
			return nil, fmt.Errorf("embedded cluster: %w", err)
		}
		defer r.cluster.Close()
		r.bootstrap = r.cluster.Bootstrap()
	} else {
		r.bootstrap = cfg.Bootstrap
	}
	adm, err := newAdmin(r.bootstrap, cfg.Timeout)
	if err != nil {
		return nil, err
	}
	defer adm.close()
	r.admin = adm
	brokers, err := adm.brokers(ctx, r.bootstrap)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %v", ErrInterrupted, err)
		}
		return nil, err
	}
	sum.Target.Brokers = brokers
	if err := w.Validate(brokers); err != nil {
		return nil, err
	}

	dir := filepath.Join(cfg.OutDir, sum.StartedAt.Format("2006-01-02")+"-"+w.Name)
	if err := prepareDir(dir); err != nil {
		return nil, err
	}
	r.dir = dir
	if len(cfg.Profiles) > 0 {
		var admins []string
		if r.cluster != nil {
			admins = r.cluster.AdminAddrs()
		}
		r.prof = newProfiler(cfg.Profiles, admins, dir)
	}

	fmt.Fprintf(cfg.Progress, "measuring this machine's limits in %s\n", cfg.DataDir)
	lim, lerr := MeasureLimits(ctx, LimitsConfig{Dir: cfg.DataDir, Each: cfg.LimitsEach})
	sum.Limits = &lim
	if lerr != nil {
		sum.LimitsError = lerr.Error()
	}
	fmt.Fprintf(cfg.Progress, "limits: loopback TCP %.0f MiB/s, page-cache append %.0f MiB/s fresh and %.0f MiB/s reused, fdatasync p50 %.3f ms p99 %.3f ms\n",
		lim.LoopbackTCPMiBps, lim.AppendFreshMiBps, lim.AppendReusedMiBps, lim.Fdatasync.P50Ms, lim.Fdatasync.P99Ms)

	var runErr error
	scenarios := w.Scenarios()
	for i, sc := range scenarios {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(cfg.Progress, "scenario %d/%d: %s (warmup %v, measured %v)\n", i+1, len(scenarios), sc.Name, w.WarmupDuration, w.TestDuration)
		res, hists := r.runScenario(ctx, sc)
		res.HgrmFiles = r.writeHgrms(sc.Slug, hists)
		sum.Scenarios = append(sum.Scenarios, res)
		if res.Error != "" {
			fmt.Fprintf(cfg.Progress, "scenario %d failed: %s\n", i+1, res.Error)
		} else if res.MeasuredSeconds > 0 {
			fmt.Fprintln(cfg.Progress, finalLine(&res))
		}
		if r.cluster != nil {
			if err := r.cluster.Exited(); err != nil {
				runErr = err
				sum.Error = err.Error()
				break
			}
		}
	}
	if ctx.Err() != nil {
		sum.Interrupted = true
	}
	// Stop the brokers before writing: on an interrupt the user is
	// waiting, and the files need nothing from them.
	if r.cluster != nil {
		if err := r.cluster.Close(); err != nil {
			fmt.Fprintf(cfg.Progress, "stopping the embedded cluster: %v\n", err)
		}
	}
	sum.FinishedAt = cfg.Now().UTC()
	res := &Result{Summary: sum, Dir: dir}
	files, werr := WriteOutputs(dir, sum)
	res.Files = append(r.files, files...)
	switch {
	case werr != nil:
		return res, werr
	case sum.Interrupted:
		return res, fmt.Errorf("%w: the results so far are in %s", ErrInterrupted, dir)
	case runErr != nil:
		return res, runErr
	}
	var failed []string
	for _, s := range sum.Scenarios {
		if !s.OK() {
			failed = append(failed, fmt.Sprintf("scenario %d (%s)", s.Index, s.Name))
		}
	}
	if len(failed) > 0 {
		return res, fmt.Errorf("%d of %d scenarios failed or had errors: %s (see %s)", len(failed), len(sum.Scenarios),
			strings.Join(failed, ", "), filepath.Join(dir, "report.md"))
	}
	return res, nil
}

// outputPatterns are the files a run writes; a rerun on the same day
// removes them first, so that no file of the earlier run is mistaken for
// one of this run.
var outputPatterns = []string{"summary.json", "report.md", "*.hgrm", "*.png", "*.pprof", "*.trace.out"}

func prepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, pat := range outputPatterns {
		old, _ := filepath.Glob(filepath.Join(dir, pat))
		for _, f := range old {
			if err := os.Remove(f); err != nil {
				return err
			}
		}
	}
	return nil
}

// WriteOutputs writes summary.json, report.md and the plots into dir and
// returns the files' names.
func WriteOutputs(dir string, sum *Summary) ([]string, error) {
	var files []string
	var errs []error
	if err := WriteSummary(filepath.Join(dir, "summary.json"), sum); err != nil {
		errs = append(errs, err)
	} else {
		files = append(files, "summary.json")
	}
	plots, err := WritePlots(dir, sum)
	if err != nil {
		errs = append(errs, fmt.Errorf("plots: %w", err))
	}
	files = append(files, plots...)
	f, err := os.Create(filepath.Join(dir, "report.md"))
	if err == nil {
		err = WriteReport(f, sum, plots)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("report.md: %w", err))
	} else {
		files = append(files, "report.md")
	}
	return files, errors.Join(errs...)
}

// runner holds what the scenarios of one run share.
type runner struct {
	cfg       Config
	w         *Workload
	driver    Driver
	sum       *Summary
	cluster   *Cluster
	bootstrap []string
	admin     scenarioAdmin
	prof      *profiler
	dir       string
	files     []string
	runID     string
}

// scenarioAdmin is what a scenario asks of the cluster's admin API (admin
// implements it): an interface so that a test can run a scenario against a
// fake cluster in a synctest bubble, where the harness's own deadlines and
// drains play out in virtual time.
type scenarioAdmin interface {
	createTopics(ctx context.Context, topics []string, partitions, rf, minISR int) error
	deleteTopics(ctx context.Context, topics []string) error
	endOffsets(ctx context.Context, topics []string) (int64, error)
}

// hists are a scenario's histograms, written to .hgrm files.
type hists struct {
	produce, e2e *hdrhistogram.Histogram
}

func (r *runner) writeHgrms(slug string, h hists) []string {
	var names []string
	for _, x := range []struct {
		suffix string
		h      *hdrhistogram.Histogram
	}{{".hgrm", h.produce}, {".e2e.hgrm", h.e2e}} {
		if x.h == nil {
			continue
		}
		name := slug + x.suffix
		f, err := os.Create(filepath.Join(r.dir, name))
		if err != nil {
			fmt.Fprintf(r.cfg.Progress, "writing %s: %v\n", name, err)
			continue
		}
		err = WriteHgrm(f, x.h)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			fmt.Fprintf(r.cfg.Progress, "writing %s: %v\n", name, err)
			continue
		}
		names = append(names, name)
		r.files = append(r.files, name)
	}
	return names
}

// finalLine is kafka-producer-perf-test's closing line for a scenario.
func finalLine(res *ScenarioResult) string {
	l := res.ProduceLatency
	return fmt.Sprintf("%d records sent, %f records/sec (%.2f MB/sec), %.2f ms avg latency, %.2f ms max latency, %d ms 50th, %d ms 95th, %d ms 99th, %d ms 99.9th.",
		res.RecordsAckedInWindow, res.ProduceRecordsPerSec, res.ProduceMiBPerSec, l.MeanMs, l.MaxMs,
		int64(l.P50Ms), int64(l.P95Ms), int64(l.P99Ms), int64(l.P999Ms))
}

// benchGroup is one subscription's consumer group.
type benchGroup struct {
	members    []Consumer
	partitions int
	offsets    *groupOffsets
}

// settled reports whether the group's members are all in one generation
// and own every partition between them. A driver that cannot tell is
// taken as settled.
func (g *benchGroup) settled() bool {
	total, gen := 0, int32(-1)
	for i, m := range g.members {
		gm, ok := m.(GroupConsumer)
		if !ok {
			return true
		}
		mgen, n := gm.GroupState()
		if mgen < 0 || (i > 0 && mgen != gen) {
			return false
		}
		gen, total = mgen, total+n
	}
	return total == g.partitions
}

// groupSettleCheck is how often the harness looks at the groups while
// they form.
const groupSettleCheck = 20 * time.Millisecond

// waitGroupsSettled waits, up to Config.Timeout, until every consumer group
// has settled, so that the load starts on a stable group and no rebalance
// is measured.
func (r *runner) waitGroupsSettled(ctx context.Context, groups []*benchGroup) error {
	if len(groups) == 0 {
		return nil
	}
	deadline := time.Now().Add(r.cfg.Timeout)
	tick := time.NewTicker(groupSettleCheck)
	defer tick.Stop()
	for {
		pending := 0
		for _, g := range groups {
			if !g.settled() {
				pending++
			}
		}
		if pending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d consumer groups did not settle (every partition owned, one generation) within %v", pending, len(groups), r.cfg.Timeout)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the consumer groups: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// maxUnpacedRate bounds the records an unpaced producer may send per
// second of the scenario: far above what a client reaches, it only makes
// every loop's count bounded.
const maxUnpacedRate = 10_000_000

// Reading the end offsets after the drain: every storedPoll, until they
// reach the count acknowledged or have not grown for storedSettleReads
// readings in a row.
const (
	storedPoll        = 100 * time.Millisecond
	storedSettleReads = 10
)

// storedRecords counts the records the cluster holds once the producers
// have flushed: the sum of the end offsets, which are high watermarks and
// can trail what was acknowledged for a moment. With acks=0 a flush only
// means the requests were written to the socket, and the broker may still
// be reading them; with acks=1 and replicationFactor > 1 the leader answers
// before its followers have fetched the records, and only their fetches
// move the high watermark. So the count is taken again (see storedPoll)
// until it reaches acked, or stops growing for storedSettleReads readings,
// or ctx (the drain) ends: records on their way are not reported as lost,
// and records really missing cost a bounded wait.
func (r *runner) storedRecords(ctx context.Context, topics []string, acked int64) (int64, error) {
	stored, err := r.admin.endOffsets(ctx, topics)
	if err != nil {
		return stored, err
	}
	tick := time.NewTicker(storedPoll)
	defer tick.Stop()
	for unchanged := 0; stored < acked && unchanged < storedSettleReads; {
		select {
		case <-ctx.Done():
			return stored, nil
		case <-tick.C:
		}
		next, err := r.admin.endOffsets(ctx, topics)
		if err != nil {
			return stored, nil
		}
		if next > stored {
			stored, unchanged = next, 0
		} else {
			unchanged++
		}
	}
	return stored, nil
}

// runScenario runs one scenario: fresh topics, consumers from their start,
// producers for warmup plus the measured phase, then a bounded drain. It
// returns the figures and the histograms; the topics are deleted.
func (r *runner) runScenario(ctx context.Context, sc Scenario) (res ScenarioResult, h hists) {
	w := r.w
	res.Scenario = sc
	res.ProducerRate = w.ProducerRate
	res.CoordinatedOmissionCorrected = w.ProducerRate > 0
	res.Retries = -1
	res.RecordsStored = -1
	if r.runID == "" {
		var b [3]byte
		rand.Read(b[:])
		r.runID = hex.EncodeToString(b[:])
	}
	for t := range w.Topics {
		res.Topics = append(res.Topics, fmt.Sprintf("gregor-bench-%s-%02d-%d", r.runID, sc.Index, t))
	}
	if err := r.admin.createTopics(ctx, res.Topics, w.PartitionsPerTopic, sc.ReplicationFactor, sc.MinInsyncReplicas); err != nil {
		res.Error = err.Error()
		res.Interrupted = ctx.Err() != nil
		return res, h
	}
	defer func() {
		// The run may be interrupted; deleting is still worth a moment.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := r.admin.deleteTopics(dctx, res.Topics); err != nil {
			fmt.Fprintf(r.cfg.Progress, "deleting topics %s: %v\n", strings.Join(res.Topics, ","), err)
		}
	}()
	var pids []int
	if r.cluster != nil {
		pids = r.cluster.PIDs()
		for _, pid := range pids {
			ResetPeakRSS(pid) // best effort: without it the peak is since start
		}
	}

	// Clients: the scenario's own when the sweep varies them (checked
	// when the workload was read), else the run's.
	driver := r.driver
	if sc.Client != "" {
		d, err := LookupDriver(sc.Client)
		if err != nil {
			res.Error = err.Error()
			return res, h
		}
		driver = d
	}
	var producers []Producer
	var consumers []Consumer
	var consumerGroup []*groupOffsets // by consumer: its group's deliveries, nil without groups
	var groups []*benchGroup
	defer func() {
		for _, p := range producers {
			p.Close()
		}
		for _, c := range consumers {
			c.Close()
		}
	}()
	for ti, topic := range res.Topics {
		for s := range w.SubscriptionsPerTopic {
			if w.ConsumerGroups {
				// One group per subscription, as OMB has it; the group
				// protocol shares the partitions among its members.
				bg := &benchGroup{partitions: w.PartitionsPerTopic, offsets: newGroupOffsets(w.PartitionsPerTopic)}
				for c := range w.ConsumerPerSubscription {
					cons, err := driver.NewConsumer(ctx, ConsumerConfig{Bootstrap: r.bootstrap, Group: fmt.Sprintf("%s-s%d", topic, s),
						Topics: []string{topic}, ClientID: fmt.Sprintf("gregor-bench-t%d-s%d-c%d", ti, s, c)})
					if err != nil {
						res.Error = fmt.Sprintf("creating a consumer: %v", err)
						return res, h
					}
					consumers = append(consumers, cons)
					consumerGroup = append(consumerGroup, bg.offsets)
					bg.members = append(bg.members, cons)
				}
				groups = append(groups, bg)
				continue
			}
			for c := range w.ConsumerPerSubscription {
				var parts []int32
				for p := c; p < w.PartitionsPerTopic; p += w.ConsumerPerSubscription {
					parts = append(parts, int32(p))
				}
				if len(parts) == 0 {
					continue // more consumers than partitions: this one idles
				}
				cons, err := driver.NewConsumer(ctx, ConsumerConfig{Bootstrap: r.bootstrap, Partitions: map[string][]int32{topic: parts},
					ClientID: fmt.Sprintf("gregor-bench-t%d-s%d-c%d", ti, s, c)})
				if err != nil {
					res.Error = fmt.Sprintf("creating a consumer: %v", err)
					return res, h
				}
				consumers = append(consumers, cons)
				consumerGroup = append(consumerGroup, nil)
			}
		}
		for p := range w.ProducersPerTopic {
			prod, err := driver.NewProducer(ctx, ProducerConfig{Bootstrap: r.bootstrap, Settings: sc.Producer,
				ClientID: fmt.Sprintf("gregor-bench-t%d-p%d", ti, p)})
			if err != nil {
				res.Error = fmt.Sprintf("creating a producer: %v", err)
				return res, h
			}
			producers = append(producers, prod)
		}
	}

	if err := r.waitGroupsSettled(ctx, groups); err != nil {
		res.Error = err.Error()
		res.Interrupted = ctx.Err() != nil
		return res, h
	}

	// The values are built before the clock starts: up to 64 MiB of
	// templates takes a third of a second for large messages, which would
	// otherwise be charged to the first records' latency (at a fixed rate)
	// or taken from the producers' time (as fast as possible).
	payload := newPayloadSource(makePayloads(w, uint64(sc.Index))...)
	start := time.Now()
	warmEnd := start.Add(w.WarmupDuration)
	end := warmEnd.Add(w.TestDuration)
	stats := newLoadStats(warmEnd, end)

	// Consumers run until they have every acknowledged record or the
	// drain ends; their deadline bounds them whatever else happens.
	consCtx, cancelCons := context.WithDeadline(ctx, end.Add(r.cfg.DrainTimeout+5*time.Second))
	defer cancelCons()
	var consWG sync.WaitGroup
	for i, c := range consumers {
		consWG.Go(func() { consumeLoop(consCtx, c, stats, consumerGroup[i]) })
	}

	// Producers. Their deadline releases one blocked in Produce (a full
	// buffer against a cluster that stopped answering, which the Producer
	// contract allows until ctx ends): the drain's bound applies from the
	// end of the measured phase, so every scenario ends by itself.
	prodCtx, cancelProd := context.WithDeadline(ctx, end.Add(lateSlack+r.cfg.DrainTimeout))
	defer cancelProd()
	perProducer := w.ProducerRate / float64(len(producers))
	total := (w.WarmupDuration + w.TestDuration).Seconds()
	maxRecords := int64(math.Ceil(total*maxUnpacedRate)) + 1
	if perProducer > 0 {
		maxRecords = int64(math.Ceil(total*perProducer)) + 1
	}
	var prodWG sync.WaitGroup
	for i, p := range producers {
		loop := &producerLoop{p: p, topic: res.Topics[i/w.ProducersPerTopic], rate: perProducer, start: start, end: end,
			maxRecords: maxRecords, keys: newKeySource(w.KeyDistributor, uint64(i+1)), payload: payload, stats: stats}
		prodWG.Go(func() { loop.run(prodCtx) })
	}

	// Phases: broker and client CPU at the start and end of the measured
	// phase, and the profiles over it. The client's is this process's: the
	// producers, the consumers and the harness's own bookkeeping.
	var cpu0, cpu1 []float64
	self := []int{os.Getpid()}
	var self0, self1 []float64
	// An interrupt ends the measured window where it happens, before the
	// drain starts: an interrupt in the warmup leaves no measured phase at
	// all, and one in the measured phase leaves the acknowledgements the
	// drain brings out of the window they would be divided by.
	measuredEnd := end
	var phaseWG sync.WaitGroup
	phaseWG.Go(func() {
		if !sleepUntil(ctx, warmEnd) {
			measuredEnd = warmEnd
			stats.endWindow(warmEnd)
			return
		}
		cpu0, self0 = readCPU(pids), readCPU(self)
		r.prof.start(ctx, sc.Slug, w.TestDuration)
		if !sleepUntil(ctx, end) {
			measuredEnd = time.Now()
			stats.endWindow(measuredEnd)
		}
		cpu1, self1 = readCPU(pids), readCPU(self)
	})

	// Progress lines until the producers are done.
	prodDone := make(chan struct{})
	var progWG sync.WaitGroup
	progWG.Go(func() {
		t := time.NewTicker(r.cfg.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-prodDone:
				return
			case now := <-t.C:
				fmt.Fprintln(r.cfg.Progress, stats.progressLine(now))
			}
		}
	})
	prodWG.Wait()
	close(prodDone)
	progWG.Wait()
	phaseWG.Wait()
	interrupted := ctx.Err() != nil

	// Drain: the last acknowledgements, then the consumers' last records.
	drain := r.cfg.DrainTimeout
	if interrupted {
		drain = min(drain, 5*time.Second)
	}
	drainCtx, cancelDrain := context.WithTimeout(context.WithoutCancel(ctx), drain)
	defer cancelDrain()
	var flushErrs []string
	for _, p := range producers {
		if err := p.Flush(drainCtx); err != nil {
			flushErrs = append(flushErrs, err.Error())
		}
	}
	cancelProd()
	// What the cluster holds: the consumers' target, and with acks=0 the
	// only count of records that arrived.
	target := stats.acked.Load()
	if !interrupted {
		if stored, err := r.storedRecords(drainCtx, res.Topics, stats.acked.Load()); err == nil {
			res.RecordsStored, target = stored, stored
		} else {
			stats.noteError(fmt.Errorf("listing end offsets: %w", err))
		}
	}
	if len(consumers) > 0 && !interrupted {
		// Every subscription reads every record stored.
		res.ConsumeTarget = target * int64(w.SubscriptionsPerTopic)
		stats.expectDeliveries(res.ConsumeTarget)
		select {
		case <-stats.caughtUp:
		case <-drainCtx.Done():
		case <-ctx.Done():
		}
	}
	cancelCons()
	consWG.Wait()
	profiles, profErr := r.prof.wait()
	res.ProfileFiles = profiles
	r.files = append(r.files, profiles...)
	// An interrupt during the drain leaves the measured phase whole, but
	// ends the wait for the consumers' last records (and the run): the
	// scenario was interrupted all the same.
	interrupted = interrupted || ctx.Err() != nil

	// Figures.
	measured := measuredEnd.Sub(warmEnd)
	if interrupted {
		res.Interrupted = true
		if measured <= 0 {
			res.Error = "interrupted before the measured phase"
			return res, h
		}
	}
	res.MeasuredSeconds = measured.Seconds()
	secs := measured.Seconds()
	res.RecordsSent = stats.sent.Load()
	res.RecordsAcked = stats.acked.Load()
	res.RecordsAckedInWindow = stats.ackedInWindow.Load()
	// Records Produce refused were never sent: they fail, but are not
	// among the sent records that went unanswered.
	res.Refused = stats.refused.Load()
	res.Errors = stats.errors.Load() + res.Refused
	res.Unacknowledged = max(res.RecordsSent-res.RecordsAcked-stats.errors.Load(), 0)
	res.NotSent = stats.notSent.Load()
	res.ConsumeErrors = stats.consumeErrors.Load()
	res.RecordsConsumed = stats.consumed.Load()
	res.RecordsRedelivered = stats.redelivered.Load()
	res.ProduceRecordsPerSec = float64(res.RecordsAckedInWindow) / secs
	res.ProduceMiBPerSec = float64(stats.ackedBytesInWindow.Load()) / (1 << 20) / secs
	res.ConsumeRecordsPerSec = float64(stats.consumedInWindow.Load()) / secs
	res.ConsumeMiBPerSec = float64(stats.consumedBytesInWindow.Load()) / (1 << 20) / secs
	h.produce, h.e2e = stats.produceLat.Histogram(), stats.e2eLat.Histogram()
	res.ProduceLatency = Summarize(h.produce)
	res.EndToEndLatency = Summarize(h.e2e)
	if len(consumers) == 0 {
		h.e2e = nil
	}
	var ps ProducerStats
	retriesKnown := len(producers) > 0
	for _, p := range producers {
		sp, ok := p.(StatsProducer)
		if !ok {
			retriesKnown = false
			continue
		}
		s := sp.Stats()
		ps.Batches += s.Batches
		ps.UncompressedBytes += s.UncompressedBytes
		ps.CompressedBytes += s.CompressedBytes
		ps.Retries += s.Retries
		retriesKnown = retriesKnown && s.Retries >= 0
	}
	if retriesKnown {
		res.Retries = ps.Retries
	}
	res.Batches = ps.Batches
	if ps.Batches > 0 {
		res.AvgBatchRecords = float64(res.RecordsAcked) / float64(ps.Batches)
	}
	if ps.CompressedBytes > 0 {
		res.CompressionRatio = float64(ps.UncompressedBytes) / float64(ps.CompressedBytes)
	}
	for i, pid := range pids {
		bf := BrokerFigures{Node: i + 1, PID: pid}
		if i < len(cpu0) && i < len(cpu1) && cpu0[i] >= 0 && cpu1[i] >= 0 {
			bf.CPUSeconds = cpu1[i] - cpu0[i]
		}
		if st, err := ReadProcStats(pid); err == nil {
			bf.PeakRSSBytes = st.PeakRSSBytes
		}
		res.Brokers = append(res.Brokers, bf)
		res.BrokerCPUSeconds += bf.CPUSeconds
		res.BrokerPeakRSSBytes = max(res.BrokerPeakRSSBytes, bf.PeakRSSBytes)
	}
	if len(self0) == 1 && len(self1) == 1 && self0[0] >= 0 && self1[0] >= 0 {
		res.ClientCPUSeconds = self1[0] - self0[0]
	}
	res.ErrorTexts = stats.errorTexts()
	for _, e := range flushErrs {
		if len(res.ErrorTexts) < maxErrorTexts {
			res.ErrorTexts = append(res.ErrorTexts, "flush: "+e)
		}
	}
	if profErr != nil && len(res.ErrorTexts) < maxErrorTexts {
		res.ErrorTexts = append(res.ErrorTexts, profErr.Error())
	}
	return res, h
}

// sleepUntil waits until t; false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// readCPU reads each process's CPU seconds; -1 where it cannot.
func readCPU(pids []int) []float64 {
	out := make([]float64, len(pids))
	for i, pid := range pids {
		st, err := ReadProcStats(pid)
		if err != nil {
			out[i] = -1
			continue
		}
		out[i] = st.CPUSeconds
	}
	return out
}
