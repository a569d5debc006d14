package client

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// testLogger logs nowhere unless GREGOR_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("GREGOR_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// newFake starts a kfake cluster that ends with the test.
func newFake(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(3)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// testProducerConfig has short timeouts and backoffs: tests wait for real
// time only when that is what they test.
func testProducerConfig(addrs []string) ProducerConfig {
	cfg := DefaultProducerConfig()
	cfg.BootstrapServers = addrs
	cfg.ClientID = "gregor-test"
	cfg.RetryBackoffMs = 20
	cfg.RequestTimeoutMs = 5000
	cfg.DeliveryTimeoutMs = 20000
	cfg.MaxBlockMs = 10000
	return cfg
}

func newTestProducer(t testing.TB, cfg ProducerConfig, opts ...Option) *Producer {
	t.Helper()
	p, err := NewProducer(cfg, append([]Option{WithLogger(testLogger())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Close(ctx)
	})
	return p
}

// produced is one callback's outcome.
type produced struct {
	seq   int // order of the Produce call
	value string
	md    RecordMetadata
	err   error
}

// results collects callbacks and checks that each runs exactly once.
type results struct {
	mu      sync.Mutex
	got     []produced
	calls   map[int]int
	pending int
	done    chan struct{}
}

func newResults() *results { return &results{calls: map[int]int{}, done: make(chan struct{})} }

func (r *results) callback(seq int, value string) func(RecordMetadata, error) {
	r.mu.Lock()
	r.pending++
	r.mu.Unlock()
	return func(md RecordMetadata, err error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.calls[seq]++
		r.got = append(r.got, produced{seq: seq, value: value, md: md, err: err})
		if r.pending--; r.pending == 0 {
			close(r.done)
			r.done = make(chan struct{})
		}
	}
}

// wait waits (bounded) until every callback has run.
func (r *results) wait(t testing.TB, d time.Duration) []produced {
	t.Helper()
	deadline := time.After(d)
	for {
		r.mu.Lock()
		if r.pending == 0 {
			out := slices.Clone(r.got)
			for seq, n := range r.calls {
				if n != 1 {
					r.mu.Unlock()
					t.Fatalf("callback of record %d ran %d times", seq, n)
				}
			}
			r.mu.Unlock()
			return out
		}
		ch, pending := r.done, r.pending
		r.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%d callbacks did not run within %v", pending, d)
		}
	}
}

// checkCallbacksInOrder checks that, per partition, callbacks ran in the
// order of the Produce calls with increasing offsets (unless acks=0).
func checkCallbacksInOrder(t testing.TB, got []produced, acks0 bool) {
	t.Helper()
	lastSeq := map[TopicPartition]int{}
	lastOff := map[TopicPartition]int64{}
	for _, g := range got {
		if g.err != nil {
			t.Fatalf("record %d (%s): %v", g.seq, g.value, g.err)
		}
		tp := TopicPartition{g.md.Topic, g.md.Partition}
		if s, ok := lastSeq[tp]; ok && g.seq < s {
			t.Fatalf("%s: callback of record %d after that of record %d", tp, g.seq, s)
		}
		lastSeq[tp] = g.seq
		if acks0 {
			if g.md.Offset != -1 {
				t.Fatalf("acks=0 gave offset %d", g.md.Offset)
			}
			continue
		}
		if o, ok := lastOff[tp]; ok && g.md.Offset <= o {
			t.Fatalf("%s: offset %d after %d", tp, g.md.Offset, o)
		}
		lastOff[tp] = g.md.Offset
	}
}

func testConsumerConfig(addrs []string) ConsumerConfig {
	cfg := DefaultConsumerConfig()
	cfg.BootstrapServers = addrs
	cfg.ClientID = "gregor-test"
	cfg.AutoOffsetReset = "earliest"
	cfg.RetryBackoffMs = 20
	cfg.FetchMaxWaitMs = 100
	cfg.RequestTimeoutMs = 5000
	return cfg
}

func newTestConsumer(t testing.TB, cfg ConsumerConfig, tps ...TopicPartition) *Consumer {
	t.Helper()
	c, err := NewConsumer(cfg, WithLogger(testLogger()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if len(tps) > 0 {
		c.Assign(tps)
	}
	return c
}

func partitions(topic string, n int32) []TopicPartition {
	var out []TopicPartition
	for p := range n {
		out = append(out, TopicPartition{topic, p})
	}
	return out
}

// consumeN polls until n records came (bounded), failing on any error.
func consumeN(t testing.TB, c *Consumer, n int, d time.Duration) []*ConsumedRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var out []*ConsumedRecord
	for len(out) < n {
		recs, err := c.Poll(ctx)
		if err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(out), n, err)
		}
		out = append(out, recs...)
	}
	return out
}

// checkConsumed checks that the records consumed are exactly the values
// produced, none twice, each partition in production order with consecutive
// offsets from 0.
func checkConsumed(t testing.TB, consumed []*ConsumedRecord, want []produced) {
	t.Helper()
	sorted := slices.Clone(want)
	slices.SortFunc(sorted, func(a, b produced) int { return a.seq - b.seq })
	perPart := map[TopicPartition][]string{}
	for _, p := range sorted {
		tp := TopicPartition{p.md.Topic, p.md.Partition}
		perPart[tp] = append(perPart[tp], p.value)
	}
	got := map[TopicPartition][]*ConsumedRecord{}
	for _, r := range consumed {
		tp := TopicPartition{r.Topic, r.Partition}
		got[tp] = append(got[tp], r)
	}
	for tp, w := range perPart {
		g := got[tp]
		if len(g) != len(w) {
			t.Fatalf("%s: consumed %d records, produced %d", tp, len(g), len(w))
		}
		for i := range w {
			if string(g[i].Value) != w[i] {
				t.Fatalf("%s: record %d is %q, want %q (duplicate or reordered)", tp, i, g[i].Value, w[i])
			}
			if g[i].Offset != int64(i) {
				t.Fatalf("%s: record %d has offset %d", tp, i, g[i].Offset)
			}
		}
	}
	for tp := range got {
		if _, ok := perPart[tp]; !ok {
			t.Fatalf("consumed records from %s, where none were produced", tp)
		}
	}
}

// produceValues produces n records (keyed when key is not nil) and waits for
// their callbacks.
func produceValues(t testing.TB, p *Producer, topic string, n int, key func(i int) []byte, prefix string) []produced {
	t.Helper()
	res := newResults()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range n {
		v := fmt.Sprintf("%s-%d", prefix, i)
		var k []byte
		if key != nil {
			k = key(i)
		}
		if err := p.Produce(ctx, &Record{Topic: topic, Partition: -1, Key: k, Value: []byte(v)}, res.callback(i, v)); err != nil {
			t.Fatalf("Produce %d: %v", i, err)
		}
	}
	return res.wait(t, 30*time.Second)
}
