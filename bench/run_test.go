package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// tinyWorkload is a workload of two one-second scenarios at a low rate.
func tinyWorkload(t *testing.T, extra string) *Workload {
	t.Helper()
	w, err := ParseWorkload([]byte(`name: unit
partitionsPerTopic: 2
messageSize: 128
producerRate: 200
warmupDurationSeconds: 0
testDurationSeconds: 1
producer:
  linger.ms: 1
sweep:
  acks: [1, all]
`+extra), "unit.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func fakeCluster(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// TestRunAgainstKfake runs the harness end to end against franz-go's
// in-memory cluster: the harness's own path, independent of Gregor's
// broker, with the default client (Gregor's) and its CPU profile.
func TestRunAgainstKfake(t *testing.T) {
	out := t.TempDir()
	var progress syncBuffer
	res, err := Run(t.Context(), Config{Workload: tinyWorkload(t, ""), Bootstrap: fakeCluster(t), OutDir: out,
		Profiles: []string{ClientProfile},
		Progress: &progress, LimitsEach: 50 * time.Millisecond, Timeout: 10 * time.Second, DrainTimeout: 10 * time.Second,
		Now: func() time.Time { return time.Date(2026, 3, 4, 23, 59, 0, 0, time.FixedZone("x", 3600)) }})
	if err != nil {
		t.Fatalf("%v\nprogress:\n%s", err, progress.String())
	}
	if want := filepath.Join(out, "2026-03-04-unit"); res.Dir != want {
		t.Errorf("dir %s, want %s (the date in UTC)", res.Dir, want)
	}
	s := res.Summary
	if len(s.Scenarios) != 2 || s.Target.Embedded || s.Target.Brokers != 1 || s.Limits == nil {
		t.Fatalf("summary %+v", s)
	}
	if s.Client != "gregor" {
		t.Errorf("client %q, want the default, gregor", s.Client)
	}
	for _, r := range s.Scenarios {
		if !r.OK() {
			t.Errorf("scenario %d: %+v", r.Index, r)
		}
		if want := r.Slug + ".client.cpu.pprof"; len(r.ProfileFiles) != 1 || r.ProfileFiles[0] != want {
			t.Errorf("scenario %d profiles %q, want %s", r.Index, r.ProfileFiles, want)
		} else if b, err := os.ReadFile(filepath.Join(res.Dir, want)); err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
			t.Errorf("%s: not a pprof profile (%v)", want, err)
		}
		if r.ClientCPUSeconds < 0 {
			t.Errorf("scenario %d client CPU %v s", r.Index, r.ClientCPUSeconds)
		}
		// 200 records/s for 1 s.
		if r.RecordsSent < 195 || r.RecordsSent > 201 || r.RecordsStored != r.RecordsAcked || r.RecordsConsumed != r.RecordsStored {
			t.Errorf("scenario %d: sent %d acked %d stored %d consumed %d", r.Index, r.RecordsSent, r.RecordsAcked, r.RecordsStored, r.RecordsConsumed)
		}
		if r.ProduceLatency.Count == 0 || r.EndToEndLatency.Count == 0 || !r.CoordinatedOmissionCorrected || r.Retries < 0 {
			t.Errorf("scenario %d latencies %+v %+v", r.Index, r.ProduceLatency, r.EndToEndLatency)
		}
		if len(r.HgrmFiles) != 2 {
			t.Errorf("hgrm files %q", r.HgrmFiles)
		}
	}
	for _, f := range []string{"summary.json", "report.md", "01_acks-1.hgrm", "01_acks-1.e2e.hgrm", "02_acks-all.hgrm", plotSpectrumProduce} {
		if _, err := os.Stat(filepath.Join(res.Dir, f)); err != nil {
			t.Error(err)
		}
	}
	if n := strings.Count(progress.String(), " ms 99.9th."); n != 2 {
		t.Errorf("%d final lines:\n%s", n, progress.String())
	}
}

// TestRunInterrupted: cancelling the context mid-scenario stops the run,
// and what was measured is still written.
func TestRunInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	w := tinyWorkload(t, "")
	w.TestDuration = time.Minute
	progress := &cancelOn{substr: "scenario 1/2", after: 700 * time.Millisecond, cancel: cancel}
	start := time.Now()
	res, err := Run(ctx, Config{Workload: w, Bootstrap: fakeCluster(t), OutDir: t.TempDir(), Progress: progress,
		LimitsEach: 20 * time.Millisecond, Timeout: 10 * time.Second})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("took %v to stop", d)
	}
	if res == nil || !res.Summary.Interrupted || len(res.Summary.Scenarios) != 1 {
		t.Fatalf("result %+v", res)
	}
	r := res.Summary.Scenarios[0]
	if !r.Interrupted || r.MeasuredSeconds <= 0 || r.MeasuredSeconds > 5 || r.ProduceLatency.Count == 0 {
		t.Errorf("interrupted scenario: measured %v s, %d latencies", r.MeasuredSeconds, r.ProduceLatency.Count)
	}
	back, err := ReadSummary(filepath.Join(res.Dir, "summary.json"))
	if err != nil || !back.Interrupted {
		t.Errorf("summary.json: %v %+v", err, back)
	}
	report, _ := os.ReadFile(filepath.Join(res.Dir, "report.md"))
	if !strings.Contains(string(report), "The run was interrupted") {
		t.Error("report does not say the run was interrupted")
	}
}

// cancelOn cancels a context a moment after a progress line containing
// substr is written.
type cancelOn struct {
	substr string
	after  time.Duration
	cancel context.CancelFunc
	once   sync.Once
}

func (c *cancelOn) Write(p []byte) (int, error) {
	if strings.Contains(string(p), c.substr) {
		c.once.Do(func() { time.AfterFunc(c.after, c.cancel) })
	}
	return len(p), nil
}

func TestRunUnreachableCluster(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	out := t.TempDir()
	start := time.Now()
	_, err = Run(t.Context(), Config{Workload: tinyWorkload(t, ""), Bootstrap: []string{addr}, OutDir: out, Timeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "cannot reach the cluster at "+addr) {
		t.Errorf("err = %v", err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("took %v with a 1 s timeout", d)
	}
	if left, _ := os.ReadDir(out); len(left) != 0 {
		t.Errorf("wrote %v for a run that never started", left)
	}
}

func TestConfigCheck(t *testing.T) {
	w := tinyWorkload(t, "replicationFactor: 2\n")
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{Workload: w}, "replicationFactor: 2 is more than the 1 broker(s)"},
		{Config{Workload: w, Brokers: 2, Client: "nope"}, `client "nope": unknown`},
		{Config{Workload: w, Bootstrap: []string{"h:1"}, Profiles: []string{"cpu"}}, "with --bootstrap there are none"},
		{Config{Workload: w, Brokers: 2, Profiles: []string{"gpu"}}, `profile "gpu"`},
	} {
		err := tt.cfg.Check()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: err = %v, want %q", tt.cfg, err, tt.want)
		}
	}
	if err := (&Config{Workload: w, Brokers: 2, Profiles: []string{"cpu", "trace"}}).Check(); err != nil {
		t.Error(err)
	}
	// The client's profile is this process's: any cluster will do.
	if err := (&Config{Workload: w, Bootstrap: []string{"h:1"}, Profiles: []string{ClientProfile}}).Check(); err != nil {
		t.Error(err)
	}
	c := Config{Workload: w}
	c.setDefaults()
	if c.Client != "gregor" {
		t.Errorf("default client %q, want gregor", c.Client)
	}
}

func TestParseProfiles(t *testing.T) {
	got, err := ParseProfiles(" cpu,mem , cpu")
	if err != nil || strings.Join(got, ",") != "cpu,mem" {
		t.Errorf("%q %v", got, err)
	}
	if _, err := ParseProfiles("cpu,heap"); err == nil || !strings.Contains(err.Error(), `"heap"`) {
		t.Errorf("heap: %v", err)
	}
}

// syncBuffer is a bytes buffer safe for the harness's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fakeAdmin stands in for the cluster's admin API, so that a scenario runs
// in a synctest bubble: topics come and go at once, and the n-th reading of
// the end offsets (from 1) gives stored(n), or an error without stored.
type fakeAdmin struct {
	mu     sync.Mutex
	reads  int
	stored func(n int) int64
}

func (*fakeAdmin) createTopics(context.Context, []string, int, int, int) error { return nil }
func (*fakeAdmin) deleteTopics(context.Context, []string) error                { return nil }

func (a *fakeAdmin) endOffsets(context.Context, []string) (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reads++
	if a.stored == nil {
		return 0, errors.New("fake admin: no end offsets")
	}
	return a.stored(a.reads), nil
}

// producerDriver builds every producer with its function, and no consumers.
type producerDriver func() Producer

func (d producerDriver) NewProducer(context.Context, ProducerConfig) (Producer, error) {
	return d(), nil
}
func (producerDriver) NewConsumer(context.Context, ConsumerConfig) (Consumer, error) {
	return nil, errors.New("producerDriver: no consumers")
}

// runOneScenario runs the first scenario of a workload of one topic without
// consumers (yaml adds to it) through d against adm, in the caller's synctest
// bubble.
func runOneScenario(ctx context.Context, t *testing.T, yaml string, d Driver, adm scenarioAdmin, cfg Config) ScenarioResult {
	t.Helper()
	return runFirstScenario(ctx, t, "subscriptionsPerTopic: 0\n"+yaml, d, adm, cfg)
}

// runFirstScenario runs the first scenario of a workload (yaml, consumers
// allowed: one subscription of one consumer by default) through d against
// adm, in the caller's synctest bubble.
func runFirstScenario(ctx context.Context, t *testing.T, yaml string, d Driver, adm scenarioAdmin, cfg Config) ScenarioResult {
	t.Helper()
	if !strings.Contains(yaml, "warmupDuration") {
		yaml = "warmupDurationSeconds: 0\n" + yaml // not OMB's minute
	}
	w, err := ParseWorkload([]byte("name: unit\n"+yaml), "unit.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Workload = w
	cfg.setDefaults()
	r := &runner{cfg: cfg, w: w, driver: d, admin: adm, sum: &Summary{}}
	res, _ := r.runScenario(ctx, w.Scenarios()[0])
	return res
}

// stuckProducer answers its first few records, then behaves as a client
// whose buffer is full against a cluster that stopped answering: Produce
// blocks until ctx ends, as the Producer contract allows. A fallback an
// hour on only keeps a harness that never releases it from running
// forever; releasedBy says what ended the wait.
type stuckProducer struct {
	answered   int
	n          int
	releasedBy error
	releasedAt time.Time
}

var errStuckFallback = errors.New("stuckProducer: released by its own fallback, not by the harness")

func (p *stuckProducer) Produce(ctx context.Context, _ string, _ int32, _, _ []byte, _ time.Time, done func(error)) error {
	p.n++
	if p.n <= p.answered {
		done(nil)
		return nil
	}
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	select {
	case <-ctx.Done():
		p.releasedBy = ctx.Err()
	case <-t.C:
		p.releasedBy = errStuckFallback
	}
	p.releasedAt = time.Now()
	return p.releasedBy
}
func (p *stuckProducer) Flush(context.Context) error { return nil }
func (p *stuckProducer) Close() error                { return nil }

// TestRunScenarioReleasesBlockedProducer: a producer blocked in Produce
// against a cluster that stopped answering is released by the harness
// once the drain's bound has passed after the measured phase, so the
// scenario ends by itself.
func TestRunScenarioReleasesBlockedProducer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &stuckProducer{answered: 10}
		start := time.Now()
		res := runOneScenario(t.Context(), t, "producerRate: 100\ntestDurationSeconds: 1\n",
			producerDriver(func() Producer { return p }), &fakeAdmin{}, Config{DrainTimeout: 2 * time.Second})
		if !errors.Is(p.releasedBy, context.DeadlineExceeded) {
			t.Fatalf("the blocked Produce ended with %v, want the harness's deadline", p.releasedBy)
		}
		if want := start.Add(time.Second + lateSlack + 2*time.Second); p.releasedAt.After(want) {
			t.Errorf("released %v after the start, want by the end of the measured phase + lateSlack + DrainTimeout (%v)",
				p.releasedAt.Sub(start), want.Sub(start))
		}
		if res.RecordsSent != 10 || res.RecordsAcked != 10 || res.Interrupted {
			t.Errorf("sent %d acked %d interrupted %v, want the 10 answered records", res.RecordsSent, res.RecordsAcked, res.Interrupted)
		}
		// The other 90 were given up when it was released, and count in
		// the latencies up to then, as lower bounds.
		if res.NotSent != 90 || res.ProduceLatency.Count != 100 {
			t.Errorf("not sent %d, %d latencies; want 90 given up and all 100 intended records counted", res.NotSent, res.ProduceLatency.Count)
		}
	})
}

// TestRunScenarioStoredCatchesUp: the end offsets are high watermarks,
// which can trail the acknowledged count right after the flush (acks=1
// with followers still to fetch). The harness reads them again until they
// reach it, so records on their way are not reported as lost; a count that
// stays short stops the reading after storedSettleReads unchanged readings.
func TestRunScenarioStoredCatchesUp(t *testing.T) {
	for _, tt := range []struct {
		name      string
		stored    func(n int) int64
		want      int64
		wantReads int
	}{
		{"catches up", func(n int) int64 { return min(40+20*int64(n), 100) }, 100, 3},
		{"already there", func(int) int64 { return 100 }, 100, 1},
		{"stays short", func(n int) int64 { return min(90+int64(n), 95) }, 95, 5 + storedSettleReads},
		// Still growing when the 2.05 s drain ends: one reading at the
		// flush, then one every storedPoll.
		{"bounded by the drain", func(n int) int64 { return int64(n) }, 21, 21},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				adm := &fakeAdmin{stored: tt.stored}
				p := &stallingProducer{ackAfter: time.Millisecond, sendToAck: NewRecorder()}
				res := runOneScenario(t.Context(), t, "producerRate: 100\ntestDurationSeconds: 1\nproducer:\n  acks: 1\n",
					producerDriver(func() Producer { return p }), adm, Config{DrainTimeout: 2050 * time.Millisecond})
				if res.RecordsAcked != 100 {
					t.Fatalf("acked %d, want 100 (100/s for 1 s)", res.RecordsAcked)
				}
				if res.RecordsStored != tt.want || adm.reads != tt.wantReads {
					t.Errorf("stored %d after %d readings, want %d after %d", res.RecordsStored, adm.reads, tt.want, tt.wantReads)
				}
			})
		})
	}
}

// TestRunScenarioInterruptedInWarmup: an interrupt during the warmup leaves
// no measured phase, and the scenario says so rather than reporting a full
// measured phase of zeros.
func TestRunScenarioInterruptedInWarmup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		time.AfterFunc(700*time.Millisecond, cancel)
		p := &stallingProducer{ackAfter: time.Millisecond, sendToAck: NewRecorder()}
		res := runOneScenario(ctx, t, "producerRate: 100\nwarmupDurationSeconds: 30\ntestDurationSeconds: 10\n",
			producerDriver(func() Producer { return p }), &fakeAdmin{}, Config{})
		const want = "interrupted before the measured phase"
		if res.Error != want || !res.Interrupted || res.MeasuredSeconds != 0 || res.ProduceRecordsPerSec != 0 {
			t.Fatalf("interrupted 0.7 s into a 30 s warmup: error %q, interrupted %v, measured %v s, %v records/s; want %q and no measured phase",
				res.Error, res.Interrupted, res.MeasuredSeconds, res.ProduceRecordsPerSec, want)
		}
		var b strings.Builder
		if err := WriteReport(&b, &Summary{Interrupted: true, Scenarios: []ScenarioResult{res}}, nil); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), want) {
			t.Errorf("the report does not say %q:\n%s", want, b.String())
		}
	})
}

// TestRunScenarioInterruptedWindow: an interrupt ends the measured window.
// Records answered 1.5 s after they are sent, interrupted just before 1 s
// into the measured phase: none was acknowledged within it, so its
// throughput is zero, though the drain brings in every acknowledgement
// (whose latencies, of records intended in the window, all count).
func TestRunScenarioInterruptedWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		time.AfterFunc(999500*time.Microsecond, cancel) // after the 1000th record, at 999 ms
		p := &stallingProducer{ackAfter: 1500 * time.Millisecond, sendToAck: NewRecorder()}
		res := runOneScenario(ctx, t, "producerRate: 1000\ntestDurationSeconds: 60\n",
			producerDriver(func() Producer { return p }), &fakeAdmin{}, Config{})
		if !res.Interrupted || res.MeasuredSeconds != 0.9995 {
			t.Fatalf("interrupted %v, measured %v s; want interrupted after 0.9995 s", res.Interrupted, res.MeasuredSeconds)
		}
		if res.RecordsAcked != 1000 || res.ProduceLatency.Count != 1000 {
			t.Errorf("acked %d, %d latencies; want the 1000 records sent, all answered in the drain", res.RecordsAcked, res.ProduceLatency.Count)
		}
		if res.RecordsAckedInWindow != 0 || res.ProduceRecordsPerSec != 0 || res.ProduceMiBPerSec != 0 {
			t.Errorf("%d acknowledged in the window, %v records/s, %v MiB/s: the drain's acknowledgements counted toward the interrupted phase",
				res.RecordsAckedInWindow, res.ProduceRecordsPerSec, res.ProduceMiBPerSec)
		}
	})
}

// halfRefusing refuses every other record up front (Produce's error: never
// queued, never sent) and queues the others, which are never answered.
type halfRefusing struct{ n int }

func (p *halfRefusing) Produce(context.Context, string, int32, []byte, []byte, time.Time, func(error)) error {
	p.n++
	if p.n%2 == 0 {
		return errors.New("refused")
	}
	return nil
}
func (p *halfRefusing) Flush(context.Context) error { return nil }
func (p *halfRefusing) Close() error                { return nil }

// TestRunScenarioRefusedNotUnacknowledged: records Produce refused were
// never sent, so they fail without standing for sent records that were
// answered; every record sent and never answered is unacknowledged.
func TestRunScenarioRefusedNotUnacknowledged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &halfRefusing{}
		res := runOneScenario(t.Context(), t, "producerRate: 1000\ntestDurationSeconds: 1\n",
			producerDriver(func() Producer { return p }), &fakeAdmin{}, Config{DrainTimeout: time.Second})
		if res.RecordsSent != 500 || res.Refused != 500 || res.Errors != 500 {
			t.Errorf("sent %d, refused %d, errors %d; want 500 of each", res.RecordsSent, res.Refused, res.Errors)
		}
		if res.Unacknowledged != 500 {
			t.Errorf("unacknowledged %d, want the 500 records sent and never answered", res.Unacknowledged)
		}
		var b strings.Builder
		if err := WriteReport(&b, &Summary{Scenarios: []ScenarioResult{res}}, nil); err != nil {
			t.Fatal(err)
		}
		for _, must := range []string{"500 records failed (500 refused by the client before they were sent)", "500 records unacknowledged"} {
			if !strings.Contains(b.String(), must) {
				t.Errorf("report lacks %q", must)
			}
		}
	})
}

// TestRunScenarioStoredUnknownNotClean: with acks=0 the end offsets are the
// only count of what the brokers kept (RecordsStored), and a scenario that
// lost records must be left out of the best settings. When listing the end
// offsets fails, RecordsStored stays -1 and Lost() reads 0; the scenario
// must not pass for clean (eligible for "Highest produce throughput"
// without the check ever having been made), and the report must say why,
// with the listing's error.
func TestRunScenarioStoredUnknownNotClean(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &stallingProducer{ackAfter: time.Millisecond, sendToAck: NewRecorder()}
		res := runOneScenario(t.Context(), t, "producerRate: 100\ntestDurationSeconds: 1\nproducer:\n  acks: 0\n",
			producerDriver(func() Producer { return p }), &fakeAdmin{}, Config{DrainTimeout: time.Second})
		if res.RecordsStored != -1 || len(res.ErrorTexts) == 0 || res.Lost() != 0 {
			t.Fatalf("setup: stored %d, lost %d, error texts %q", res.RecordsStored, res.Lost(), res.ErrorTexts)
		}
		if res.clean() {
			t.Error("an acks=0 scenario whose records stored were never counted is clean")
		}
		var b strings.Builder
		if err := WriteReport(&b, &Summary{Scenarios: []ScenarioResult{res}}, nil); err != nil {
			t.Fatal(err)
		}
		report := b.String()
		for _, must := range []string{
			"#1 baseline: the records stored could not be counted (the end offsets were not read), so lost records are unknown",
			"listing end offsets: fake admin: no end offsets", "| 0, lost unknown |",
			"No scenario ran to the end",
		} {
			if !strings.Contains(report, must) {
				t.Errorf("report lacks %q:\n%s", must, report)
			}
		}
	})
}

// memLog is a one-partition in-memory topic shared by memProducer and
// memConsumer, for scenarios with consumers run in a synctest bubble.
type memLog struct {
	mu      sync.Mutex
	recs    []ConsumedRecord
	changed chan struct{}
}

func newMemLog() *memLog { return &memLog{changed: make(chan struct{})} }

func (l *memLog) append(value []byte, ts time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, ConsumedRecord{Topic: "t", Partition: 0, Offset: int64(len(l.recs)), Timestamp: ts,
		Value: append([]byte(nil), value...)})
	close(l.changed)
	l.changed = make(chan struct{})
}

// memProducer appends each record to the log and acknowledges it ackAfter
// later.
type memProducer struct {
	log      *memLog
	ackAfter time.Duration
	inflight sync.WaitGroup
}

func (p *memProducer) Produce(_ context.Context, _ string, _ int32, _, value []byte, ts time.Time, done func(error)) error {
	v := append([]byte(nil), value...)
	p.inflight.Add(1)
	time.AfterFunc(p.ackAfter, func() {
		p.log.append(v, ts)
		done(nil)
		p.inflight.Done()
	})
	return nil
}
func (p *memProducer) Flush(context.Context) error { p.inflight.Wait(); return nil }
func (p *memProducer) Close() error                { return nil }

// memConsumer reads the log from the start, delivering at most
// deliverAtMost records. After those, every fetch fails (failAfter: a
// consumer whose partition's leader went away), or the consumer just
// receives nothing more (a consumer too slow for the drain).
type memConsumer struct {
	log           *memLog
	next          int
	deliverAtMost int
	failAfter     bool
}

var errFetch = errors.New("fetch t-0: NOT_LEADER_OR_FOLLOWER")

func (c *memConsumer) Poll(ctx context.Context, fn func(ConsumedRecord)) error {
	if c.next >= c.deliverAtMost {
		if !c.failAfter {
			<-ctx.Done()
			return nil
		}
		t := time.NewTimer(50 * time.Millisecond)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			return errFetch
		}
	}
	for {
		c.log.mu.Lock()
		recs, ch := c.log.recs, c.log.changed
		c.log.mu.Unlock()
		if c.next < len(recs) {
			for c.next < len(recs) && c.next < c.deliverAtMost {
				fn(recs[c.next])
				c.next++
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ch:
		}
	}
}
func (c *memConsumer) Close() error { return nil }

// memDriver builds memProducers and memConsumers of one memLog.
type memDriver struct {
	log           *memLog
	deliverAtMost int
	failAfter     bool
}

func (d memDriver) NewProducer(context.Context, ProducerConfig) (Producer, error) {
	return &memProducer{log: d.log, ackAfter: time.Millisecond}, nil
}
func (d memDriver) NewConsumer(context.Context, ConsumerConfig) (Consumer, error) {
	return &memConsumer{log: d.log, deliverAtMost: d.deliverAtMost, failAfter: d.failAfter}, nil
}

// TestRunScenarioConsumerShortfall: 100 records produced, acknowledged and
// stored, but the one consumer receives only 10 of them before the drain
// ends, its later fetches failing or simply bringing nothing. The
// end-to-end percentiles are then drawn from the 10 fastest records (the
// 90 undelivered ones, the slowest of all, are missing), so the scenario
// fell short: it records how many deliveries it waited for, is left out of
// the best settings, marks its end-to-end (not its produce) percentiles as
// lower bounds, and the report says how many records never arrived and how
// many fetches failed.
func TestRunScenarioConsumerShortfall(t *testing.T) {
	for _, tt := range []struct {
		name      string
		failAfter bool
	}{{"fetches fail", true}, {"too slow", false}} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				adm := &fakeAdmin{stored: func(int) int64 { return 100 }}
				res := runFirstScenario(t.Context(), t, "producerRate: 100\ntestDurationSeconds: 1\n",
					memDriver{log: newMemLog(), deliverAtMost: 10, failAfter: tt.failAfter}, adm, Config{DrainTimeout: 2 * time.Second})
				if res.RecordsAcked != 100 || res.RecordsStored != 100 || res.RecordsConsumed != 10 || res.EndToEndLatency.Count != 10 ||
					(res.ConsumeErrors > 0) != tt.failAfter {
					t.Fatalf("setup: acked %d stored %d consumed %d (%d latencies) consume errors %d", res.RecordsAcked, res.RecordsStored,
						res.RecordsConsumed, res.EndToEndLatency.Count, res.ConsumeErrors)
				}
				if res.ConsumeTarget != 100 || res.Undelivered() != 90 {
					t.Errorf("consume target %d, undelivered %d; want 100 and 90", res.ConsumeTarget, res.Undelivered())
				}
				if !res.fellShort() || res.clean() {
					t.Errorf("90 of 100 stored records never reached the consumer, yet fell short %v, clean %v", res.fellShort(), res.clean())
				}
				if res.OK() == tt.failAfter {
					t.Errorf("OK %v with %d consume errors", res.OK(), res.ConsumeErrors)
				}
				var b strings.Builder
				if err := WriteReport(&b, &Summary{Scenarios: []ScenarioResult{res}}, nil); err != nil {
					t.Fatal(err)
				}
				report := b.String()
				must := []string{
					"Scenarios with problems",
					"#1 baseline: the consumers received 10 of the 100 records expected (100 stored) by the end of the drain: 90 never delivered",
					"| 1.00 / 1.00 / 1.00 | ≥ ", "90 undelivered",
					"- Latencies marked ≥ are lower bounds", "No scenario ran to the end",
				}
				if tt.failAfter {
					must = append(must, fmt.Sprintf("%d fetches failed", res.ConsumeErrors), fmt.Sprintf("%d consume errors", res.ConsumeErrors),
						"`"+errFetch.Error()+"`")
				}
				for _, m := range must {
					if !strings.Contains(report, m) {
						t.Errorf("report lacks %q:\n%s", m, report)
					}
				}
			})
		})
	}
}

// TestRunScenarioInterruptedInDrain: an interrupt after the measured
// phase, while the harness waits for the consumers' last records, cuts
// that wait short; the scenario's measured phase is whole, but it was
// interrupted and must say so.
func TestRunScenarioInterruptedInDrain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		time.AfterFunc(1500*time.Millisecond, cancel) // 0.5 s into a 10 s drain
		adm := &fakeAdmin{stored: func(int) int64 { return 100 }}
		start := time.Now()
		res := runFirstScenario(ctx, t, "producerRate: 100\ntestDurationSeconds: 1\n",
			memDriver{log: newMemLog(), deliverAtMost: 10}, adm, Config{DrainTimeout: 10 * time.Second})
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("the scenario took %v; the interrupt came at 1.5 s", d)
		}
		if !res.Interrupted || res.MeasuredSeconds != 1 || res.OK() {
			t.Errorf("interrupted in the drain: interrupted %v, measured %v s, OK %v; want interrupted after the whole 1 s measured phase",
				res.Interrupted, res.MeasuredSeconds, res.OK())
		}
	})
}
