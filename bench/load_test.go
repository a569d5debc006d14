package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"regexp"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestPacer(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := NewPacer(start, 3) // a third of a second apart, without drift
	for i, want := range []time.Duration{0, 333333333, 666666666, time.Second, 1333333333} {
		if got := p.Next().Sub(start); got != want {
			t.Errorf("record %d at %v, want %v", i, got, want)
		}
	}
	p = NewPacer(start, 1000)
	var last time.Time
	for range 1_000_000 {
		last = p.Next()
	}
	if got := last.Sub(start); got != 999_999*time.Millisecond {
		t.Errorf("millionth record at %v: the schedule drifted", got)
	}
}

// stallingProducer stands in for a client and a cluster: every record is
// acknowledged ackAfter after it is sent, except that from stallFrom to
// stallTo the cluster answers nothing and the client's buffer is full, so
// Produce blocks until the stall ends. That is the situation coordinated
// omission hides: the load generator waits with the system it measures.
type stallingProducer struct {
	stallFrom, stallTo time.Time
	ackAfter           time.Duration
	// sendToAck is what a harness measuring from the actual send (not
	// from the intended send) would record.
	sendToAck *Recorder
	inflight  sync.WaitGroup
}

func (p *stallingProducer) Produce(ctx context.Context, _ string, _ int32, _, _ []byte, _ time.Time, done func(error)) error {
	if now := time.Now(); !now.Before(p.stallFrom) && now.Before(p.stallTo) {
		t := time.NewTimer(p.stallTo.Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	sent := time.Now()
	p.inflight.Add(1)
	time.AfterFunc(p.ackAfter, func() {
		p.sendToAck.Record(time.Since(sent))
		done(nil)
		p.inflight.Done()
	})
	return nil
}

func (p *stallingProducer) Flush(context.Context) error { p.inflight.Wait(); return nil }
func (p *stallingProducer) Close() error                { return nil }

// runStalled runs a producer loop for 5 s against a cluster that stalls for
// 1 s from the 2nd second, in a synctest bubble (virtual time: the test
// takes milliseconds and its timing is exact).
func runStalled(t *testing.T, rate float64) (corrected, uncorrected LatencySummary, stats *loadStats) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		end := start.Add(5 * time.Second)
		p := &stallingProducer{stallFrom: start.Add(2 * time.Second), stallTo: start.Add(3 * time.Second),
			ackAfter: time.Millisecond, sendToAck: NewRecorder()}
		stats = newLoadStats(start, end)
		loop := &producerLoop{p: p, topic: "t", rate: rate, start: start, end: end, maxRecords: 100_000,
			keys: newKeySource(NoKey, 1), payload: newPayloadSource(make([]byte, 100)), stats: stats}
		if err := loop.run(t.Context()); err != nil {
			t.Fatal(err)
		}
		p.Flush(t.Context())
		corrected = Summarize(stats.produceLat.Histogram())
		uncorrected = Summarize(p.sendToAck.Histogram())
	})
	return corrected, uncorrected, stats
}

// TestCoordinatedOmissionCorrected: at a fixed rate of 1000 records/s, a
// 1 s stall delays the 1000 records meant for it by 1000 ms down to 0 ms.
// Measured from each record's intended send time, p99 shows the stall
// (about 950 ms: the 50 worst of 5000 records); measured from the actual
// send, as a naive harness does, it all but vanishes.
func TestCoordinatedOmissionCorrected(t *testing.T) {
	corrected, uncorrected, stats := runStalled(t, 1000)
	t.Logf("corrected p50 %v p95 %v p99 %v max %v ms; uncorrected p99 %v max %v ms",
		corrected.P50Ms, corrected.P95Ms, corrected.P99Ms, corrected.MaxMs, uncorrected.P99Ms, uncorrected.MaxMs)
	if n := stats.sent.Load(); n != 5000 {
		t.Errorf("sent %d records, want 5000 (1000/s for 5 s)", n)
	}
	if corrected.Count != 5000 || stats.errors.Load() != 0 {
		t.Errorf("recorded %d latencies, %d errors", corrected.Count, stats.errors.Load())
	}
	if corrected.P99Ms < 900 || corrected.P99Ms > 1000 {
		t.Errorf("corrected p99 = %v ms, want about 950 ms", corrected.P99Ms)
	}
	if corrected.P50Ms > 1.1 {
		t.Errorf("corrected p50 = %v ms, want 1 ms (most records never saw the stall)", corrected.P50Ms)
	}
	if corrected.MaxMs < 1000 || corrected.MaxMs > 1002 {
		t.Errorf("corrected max = %v ms, want 1001 (the stall plus the acknowledgement)", corrected.MaxMs)
	}
	// 80% of records are untouched, the other 20% spread evenly over
	// 0..1000 ms: p90 is about half the stall.
	if corrected.P95Ms < 700 || corrected.P95Ms > 800 {
		t.Errorf("corrected p95 = %v ms, want about 750", corrected.P95Ms)
	}
	if uncorrected.P99Ms > 1.1 {
		t.Errorf("uncorrected p99 = %v ms: the naive figure should hide the stall", uncorrected.P99Ms)
	}
}

// TestUnpacedLatencyFromSend: as fast as possible there is no schedule, so
// latency counts from the send, blocking included: only the one record
// caught in the stall shows it.
func TestUnpacedLatencyFromSend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		p := &stallingProducer{stallFrom: start, stallTo: start.Add(time.Second), ackAfter: 2 * time.Millisecond, sendToAck: NewRecorder()}
		stats := newLoadStats(start, start.Add(time.Hour))
		loop := &producerLoop{p: p, topic: "t", start: start, end: start.Add(time.Hour), maxRecords: 100,
			keys: newKeySource(NoKey, 1), payload: newPayloadSource(make([]byte, 10)), stats: stats}
		if err := loop.run(t.Context()); err != nil {
			t.Fatal(err)
		}
		p.Flush(t.Context())
		s := Summarize(stats.produceLat.Histogram())
		if s.Count != 100 || s.MaxMs < 1001 || s.MaxMs > 1003 || s.P50Ms < 1.9 || s.P50Ms > 2.1 {
			t.Errorf("count %d max %v p50 %v: want 100 records, one at 1002 ms, the rest at 2 ms", s.Count, s.MaxMs, s.P50Ms)
		}
	})
}

// TestProducerLoopBounded: a loop stops at its record bound, at its end
// time and when its context ends, whichever comes first.
func TestProducerLoopBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		p := &stallingProducer{ackAfter: time.Millisecond, sendToAck: NewRecorder()}
		mk := func(end time.Time, maxRecords int64, rate float64) (*producerLoop, *loadStats) {
			stats := newLoadStats(start, end)
			return &producerLoop{p: p, topic: "t", rate: rate, start: time.Now(), end: end, maxRecords: maxRecords,
				keys: newKeySource(KeyRoundRobin, 1), payload: newPayloadSource(make([]byte, 10)), stats: stats}, stats
		}
		l, s := mk(start.Add(time.Hour), 7, 0)
		l.run(t.Context())
		if s.sent.Load() != 7 {
			t.Errorf("count bound: sent %d", s.sent.Load())
		}
		l, s = mk(time.Now().Add(time.Second), 1<<40, 100)
		l.run(t.Context())
		if s.sent.Load() != 100 {
			t.Errorf("time bound at 100/s for 1 s: sent %d", s.sent.Load())
		}
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(450*time.Millisecond, cancel) // between the 5th and 6th record
		l, s = mk(time.Now().Add(time.Hour), 1<<40, 10)
		if err := l.run(ctx); err == nil {
			t.Error("no error from a cancelled loop")
		}
		if n := s.sent.Load(); n != 5 {
			t.Errorf("cancelled after 0.45 s at 10/s: sent %d, want 5", n)
		}
		p.Flush(t.Context())
	})
}

func TestLoadStatsWindow(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newLoadStats(t0.Add(time.Second), t0.Add(3*time.Second))
	// Intended before the window, acknowledged in it: counts for
	// throughput, not latency.
	s.ack(t0.Add(500*time.Millisecond), t0.Add(1500*time.Millisecond), 100, nil)
	// Intended in the window, acknowledged after it: latency, not
	// throughput.
	s.ack(t0.Add(2900*time.Millisecond), t0.Add(3100*time.Millisecond), 100, nil)
	s.ack(t0.Add(2*time.Second), t0.Add(2*time.Second), 100, errTest)
	if got := s.ackedInWindow.Load(); got != 1 {
		t.Errorf("acked in window %d, want 1", got)
	}
	if got := s.produceLat.Histogram().TotalCount(); got != 1 {
		t.Errorf("latencies %d, want 1", got)
	}
	if s.errors.Load() != 1 || len(s.errorTexts()) != 1 {
		t.Errorf("errors %d %q", s.errors.Load(), s.errorTexts())
	}
	s.delivered(t0.Add(2*time.Second), t0.Add(2100*time.Millisecond), 100)
	s.delivered(t0, t0.Add(4*time.Second), 100)
	if s.e2eLat.Histogram().TotalCount() != 1 || s.consumedInWindow.Load() != 1 || s.consumed.Load() != 2 {
		t.Errorf("deliveries: e2e %d, in window %d, total %d", s.e2eLat.Histogram().TotalCount(), s.consumedInWindow.Load(), s.consumed.Load())
	}
	select {
	case <-s.caughtUp:
		t.Fatal("caught up before a target was set")
	default:
	}
	s.expectDeliveries(2)
	select {
	case <-s.caughtUp:
	default:
		t.Fatal("not caught up with 2 of 2 delivered")
	}
}

var errTest = &testError{}

type testError struct{}

func (*testError) Error() string { return "test error" }

func TestProgressLineFormat(t *testing.T) {
	t0 := time.Now()
	s := newLoadStats(t0, t0.Add(time.Hour))
	s.mu.ivStart = t0
	for range 1000 {
		s.ack(t0, t0.Add(2*time.Millisecond), 1024, nil)
	}
	line := s.progressLine(t0.Add(5 * time.Second))
	want := "1000 records sent, 200.0 records/sec (0.20 MB/sec), 2.0 ms avg latency, 2.0 ms max latency."
	if line != want {
		t.Errorf("got  %q\nwant %q", line, want)
	}
	if re := regexp.MustCompile(`^\d+ records sent, [\d.]+ records/sec \([\d.]+ MB/sec\), [\d.]+ ms avg latency, [\d.]+ ms max latency\.$`); !re.MatchString(line) {
		t.Errorf("%q is not kafka-producer-perf-test's format", line)
	}
	if next := s.progressLine(t0.Add(10 * time.Second)); next != "0 records sent, 0.0 records/sec (0.00 MB/sec), 0.0 ms avg latency, 0.0 ms max latency." {
		t.Errorf("empty window: %q", next)
	}
}

func TestFinalLineFormat(t *testing.T) {
	r := &ScenarioResult{RecordsAckedInWindow: 50000, ProduceRecordsPerSec: 10000, ProduceMiBPerSec: 9.765625,
		ProduceLatency: LatencySummary{MeanMs: 2.5, MaxMs: 120.25, P50Ms: 2.2, P95Ms: 5.9, P99Ms: 12.1, P999Ms: 99.9}}
	want := "50000 records sent, 10000.000000 records/sec (9.77 MB/sec), 2.50 ms avg latency, 120.25 ms max latency, 2 ms 50th, 5 ms 95th, 12 ms 99th, 99 ms 99.9th."
	if got := finalLine(r); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestPayloadStampAndKinds(t *testing.T) {
	text := makePayload(PayloadText, 4096, 1)
	random := makePayload(PayloadRandom, 4096, 1)
	if len(text) != 4096 || len(random) != 4096 {
		t.Fatalf("sizes %d %d", len(text), len(random))
	}
	gz := func(b []byte) int {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Len()
	}
	if r := float64(len(text)) / float64(gz(text)); r < 2 {
		t.Errorf("text compresses only %.2fx", r)
	}
	if r := float64(len(random)) / float64(gz(random)); r > 1.05 {
		t.Errorf("random compresses %.2fx", r)
	}
	ps := newPayloadSource(text)
	at := time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.UTC)
	bp := ps.get(at)
	got := sentTime(ConsumedRecord{Value: *bp}, at.Add(time.Millisecond))
	if !got.Equal(at) {
		t.Errorf("stamp read back as %v, want %v", got, at)
	}
	if !bytes.Equal((*bp)[8:], text[8:]) {
		t.Error("the value beyond the stamp differs from the template")
	}
	// A value that does not carry a plausible stamp falls back to the
	// record timestamp.
	ts := at.Add(-time.Second)
	if got := sentTime(ConsumedRecord{Value: []byte("short"), Timestamp: ts}, at); !got.Equal(ts) {
		t.Errorf("short value: %v", got)
	}
	if got := sentTime(ConsumedRecord{Value: bytes.Repeat([]byte{0xff}, 16), Timestamp: ts}, at); !got.Equal(ts) {
		t.Errorf("foreign value: %v", got)
	}
}

func TestKeySource(t *testing.T) {
	if k := newKeySource(NoKey, 1).key(); k != nil {
		t.Errorf("NO_KEY gave %q", k)
	}
	rr := newKeySource(KeyRoundRobin, 1)
	first := string(rr.key())
	for range uniqueKeys - 1 {
		rr.key()
	}
	if again := string(rr.key()); again != first || len(first) != keyBytes {
		t.Errorf("round robin: %q then %q after a full cycle", first, again)
	}
	rn := newKeySource(RandomNano, 1)
	seen := map[string]bool{}
	for range 1000 {
		seen[string(rn.key())] = true
	}
	if len(seen) < 900 {
		t.Errorf("random keys: %d distinct of 1000", len(seen))
	}
}

// TestGiveUpStallAtEnd: a 1.5 s stall from 4 s into a 5 s run at 1000
// records/s. The producer, blocked until 5.5 s, is then past the end and
// behind schedule, and gives up on the 999 records meant for 4.001-4.999 s:
// the ones that waited longest. Each still counts in the latencies, from
// its intended send time to the give-up (501-1499 ms, lower bounds), and
// as not sent; without them p99 would show no stall at all.
func TestGiveUpStallAtEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		end := start.Add(5 * time.Second)
		p := &stallingProducer{stallFrom: start.Add(4 * time.Second), stallTo: start.Add(5500 * time.Millisecond),
			ackAfter: time.Millisecond, sendToAck: NewRecorder()}
		stats := newLoadStats(start, end)
		loop := &producerLoop{p: p, topic: "t", rate: 1000, start: start, end: end, maxRecords: 100_000,
			keys: newKeySource(NoKey, 1), payload: newPayloadSource(make([]byte, 100)), stats: stats}
		if err := loop.run(t.Context()); err != nil {
			t.Fatal(err)
		}
		p.Flush(t.Context())
		s := Summarize(stats.produceLat.Histogram())
		t.Logf("sent %d, not sent %d, %d latencies: p99 %v ms, max %v ms", stats.sent.Load(), stats.notSent.Load(), s.Count, s.P99Ms, s.MaxMs)
		if sent, notSent := stats.sent.Load(), stats.notSent.Load(); sent != 4001 || notSent != 999 {
			t.Errorf("sent %d, not sent %d; want 4001 and 999", sent, notSent)
		}
		if s.Count != 5000 {
			t.Errorf("%d latencies of the 5000 records intended in the window", s.Count)
		}
		// The 50th worst of the 1000 stalled records: about 1450 ms.
		if s.P99Ms < 1400 || s.P99Ms > 1500 {
			t.Errorf("p99 = %v ms, want about 1450: the stall at the end is missing from the percentiles", s.P99Ms)
		}
	})
}

// slowProducer is a cluster that takes one record per per: Produce blocks
// that long, as on a full buffer, then the record is acknowledged.
type slowProducer struct{ per time.Duration }

func (p *slowProducer) Produce(_ context.Context, _ string, _ int32, _, _ []byte, _ time.Time, done func(error)) error {
	<-time.After(p.per)
	done(nil)
	return nil
}
func (p *slowProducer) Flush(context.Context) error { return nil }
func (p *slowProducer) Close() error                { return nil }

// TestGiveUpOverload: asked for 1000 records/s, the cluster takes 500. By
// 5.1 s the producer has sent 2551 records; it gives up on the other 2449,
// and every one of the 5000 intended records is in the latencies, the
// given-up ones as lower bounds (which is why the report marks such a
// scenario's percentiles as such and leaves it out of the comparisons).
func TestGiveUpOverload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		end := start.Add(5 * time.Second)
		stats := newLoadStats(start, end)
		loop := &producerLoop{p: &slowProducer{2 * time.Millisecond}, topic: "t", rate: 1000, start: start, end: end, maxRecords: 100_000,
			keys: newKeySource(NoKey, 1), payload: newPayloadSource(make([]byte, 100)), stats: stats}
		if err := loop.run(t.Context()); err != nil {
			t.Fatal(err)
		}
		s := Summarize(stats.produceLat.Histogram())
		if sent, notSent := stats.sent.Load(), stats.notSent.Load(); sent != 2551 || notSent != 2449 {
			t.Errorf("sent %d, not sent %d; want 2551 and 2449", sent, notSent)
		}
		if s.Count != 5000 {
			t.Errorf("%d latencies of the 5000 records intended", s.Count)
		}
	})
}
