package client

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/internal/testcluster"
)

// clusters are the brokers the end-to-end tests run against: franz-go's fake
// cluster and an in-process Gregor. start returns the bootstrap addresses;
// the topic exists with one partition afterwards (created by the producer
// through auto-creation on Gregor).
var clusters = []struct {
	name  string
	start func(t *testing.T, topic string) []string
}{
	{"kfake", func(t *testing.T, topic string) []string {
		return newFake(t, kfake.SeedTopics(1, topic)).ListenAddrs()
	}},
	{"gregor", func(t *testing.T, topic string) []string {
		c := testcluster.Start(t, 1, nil)
		return c.Addrs()
	}},
}

// produceOneBatch writes n records with timestamps t0+i seconds to partition
// 0 as a single batch (linger.ms holds them, Flush sends them), so that
// seeking into the middle of the partition means skipping records within a
// batch.
func produceOneBatch(t *testing.T, addrs []string, topic string, n int, t0 time.Time, prefix string) {
	t.Helper()
	cfg := testProducerConfig(addrs)
	cfg.LingerMs = 60000
	cfg.DeliveryTimeoutMs = 120000
	p := newTestProducer(t, cfg)
	res := newResults()
	ctx := context.Background()
	for i := range n {
		v := fmt.Sprintf("%s-%d", prefix, i)
		must(t, p.Produce(ctx, &Record{Topic: topic, Partition: 0, Value: []byte(v), Timestamp: t0.Add(time.Duration(i) * time.Second)},
			res.callback(i, v)))
	}
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	must(t, p.Flush(fctx))
	checkCallbacksInOrder(t, res.wait(t, time.Second), false)
	if st := p.Stats(); st.Batches != 1 {
		t.Fatalf("%d batches, want 1", st.Batches)
	}
}

// firstOffset polls once and returns the first record's offset.
func firstOffset(t *testing.T, c *Consumer) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	recs, err := c.Poll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return recs[0].Offset
}

// pollNothing checks that no record comes for a while.
func pollNothing(t *testing.T, c *Consumer, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if recs, err := c.Poll(ctx); err == nil {
		t.Fatalf("got %d records (first offset %d), want none", len(recs), recs[0].Offset)
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
}

func TestConsumerSeekAndMaxPollRecords(t *testing.T) {
	for _, cl := range clusters {
		t.Run(cl.name, func(t *testing.T) {
			const topic = "seek"
			addrs := cl.start(t, topic)
			t0 := time.UnixMilli(1700000000000)
			produceOneBatch(t, addrs, topic, 30, t0, "v")
			tp := TopicPartition{topic, 0}
			cfg := testConsumerConfig(addrs)
			cfg.MaxPollRecords = 7
			c := newTestConsumer(t, cfg, tp)

			// auto.offset.reset=earliest; max.poll.records bounds each Poll.
			got := 0
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for got < 30 {
				recs, err := c.Poll(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(recs) > 7 {
					t.Fatalf("Poll returned %d records, max.poll.records is 7", len(recs))
				}
				for _, r := range recs {
					if r.Offset != int64(got) || string(r.Value) != fmt.Sprintf("v-%d", got) ||
						!r.Timestamp.Equal(t0.Add(time.Duration(got)*time.Second)) {
						t.Fatalf("record %d: offset %d value %q ts %v", got, r.Offset, r.Value, r.Timestamp)
					}
					got++
				}
			}
			if pos := c.Position(tp); pos != 30 {
				t.Fatalf("position %d after 30 records", pos)
			}

			c.Seek(tp, At(17)) // inside the batch: records 0..16 are skipped
			if o := firstOffset(t, c); o != 17 {
				t.Fatalf("At(17): first offset %d", o)
			}
			c.Seek(tp, AtTime(t0.Add(10*time.Second)))
			if o := firstOffset(t, c); o != 10 {
				t.Fatalf("AtTime(t0+10s): first offset %d", o)
			}
			c.Seek(tp, AtTime(t0.Add(9500*time.Millisecond)))
			if o := firstOffset(t, c); o != 10 {
				t.Fatalf("AtTime(t0+9.5s): first offset %d", o)
			}
			c.Seek(tp, Earliest())
			if o := firstOffset(t, c); o != 0 {
				t.Fatalf("Earliest: first offset %d", o)
			}
			c.Seek(tp, Latest())
			pollNothing(t, c, 300*time.Millisecond)
			c.Seek(tp, AtTime(t0.Add(time.Hour))) // after every record: the end
			pollNothing(t, c, 300*time.Millisecond)
			produceOneBatch(t, addrs, topic, 2, t0.Add(time.Hour), "late")
			recs := consumeN(t, c, 2, 10*time.Second)
			if recs[0].Offset != 30 || string(recs[0].Value) != "late-0" {
				t.Fatalf("after seeking past the end, got offset %d %q", recs[0].Offset, recs[0].Value)
			}

			// OFFSET_OUT_OF_RANGE resets per auto.offset.reset (earliest).
			c.Seek(tp, At(1000))
			if o := firstOffset(t, c); o != 0 {
				t.Fatalf("out of range with reset earliest: first offset %d", o)
			}

			// auto.offset.reset=none: Poll reports it; Seek repairs it.
			cfg.AutoOffsetReset = "none"
			strict := newTestConsumer(t, cfg, tp)
			if _, err := strict.Poll(context.Background()); !errors.Is(err, ErrNoOffset) {
				t.Fatalf("no position with reset none: %v", err)
			}
			strict.Seek(tp, At(1000))
			pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer pcancel()
			if _, err := strict.Poll(pctx); !errors.Is(err, ErrNoOffset) {
				t.Fatalf("out of range with reset none: %v", err)
			}
			strict.Seek(tp, At(5))
			if o := firstOffset(t, strict); o != 5 {
				t.Fatalf("after Seek(At(5)): first offset %d", o)
			}
		})
	}
}

// TestConsumerOutOfRangeDropsRecordsFetchedAhead: records fetched ahead of
// Poll (offsets 0..9, buffered) are followed by OFFSET_OUT_OF_RANGE for the
// next fetch, at 10; the reset (earliest: 0) decides where reading goes on,
// so 0..9 come once, from the fetch after the reset, not also from before.
func TestConsumerOutOfRangeDropsRecordsFetchedAhead(t *testing.T) {
	const topic = "ahead"
	c := newFake(t, kfake.SeedTopics(1, topic))
	addrs := c.ListenAddrs()
	at := func(offset int64) func(kmsg.Request) bool {
		return func(r kmsg.Request) bool {
			for _, rt := range r.(*kmsg.FetchRequest).Topics {
				for _, rp := range rt.Partitions {
					if rp.FetchOffset == offset {
						return true
					}
				}
			}
			return false
		}
	}
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Err: kerr.OffsetOutOfRange, When: at(10)})
	fromStart := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Observe: true, Count: -1, When: at(0)})
	produceOneBatch(t, addrs, topic, 10, time.Now(), "v")
	cons := newTestConsumer(t, testConsumerConfig(addrs), TopicPartition{topic, 0})
	// Poll nothing until the fetch after the reset has been sent: by then
	// 0..9 were buffered and the fetch at 10 answered out of range.
	wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer wcancel()
	must(t, fromStart.Wait(wctx, 2))
	produceOneBatch(t, addrs, topic, 1, time.Now(), "end")
	var offsets []int64
	for _, r := range consumeN(t, cons, 11, 10*time.Second) {
		offsets = append(offsets, r.Offset)
	}
	for i, o := range offsets {
		if o != int64(i) {
			t.Fatalf("consumed offsets %v: records fetched before the reset came after it", offsets)
		}
	}
}

// A consumer that starts at latest sees only what is produced after it has
// its position.
func TestConsumerLatestByDefault(t *testing.T) {
	c := newFake(t, kfake.SeedTopics(1, "latest"))
	produceOneBatch(t, c.ListenAddrs(), "latest", 5, time.Now(), "old")
	cfg := testConsumerConfig(c.ListenAddrs())
	cfg.AutoOffsetReset = "latest"
	cons := newTestConsumer(t, cfg, TopicPartition{"latest", 0})
	for cons.Position(TopicPartition{"latest", 0}) < 0 {
		pollNothing(t, cons, 50*time.Millisecond)
	}
	produceOneBatch(t, c.ListenAddrs(), "latest", 1, time.Now(), "new")
	recs := consumeN(t, cons, 1, 10*time.Second)
	if recs[0].Offset != 5 || string(recs[0].Value) != "new-0" {
		t.Fatalf("got offset %d %q, want the new record at 5", recs[0].Offset, recs[0].Value)
	}
}

func TestConsumerCloseEndsPoll(t *testing.T) {
	c := newFake(t, kfake.SeedTopics(1, "idle"))
	cons, err := NewConsumer(testConsumerConfig(c.ListenAddrs()))
	must(t, err)
	cons.Assign([]TopicPartition{{"idle", 0}})
	done := make(chan error, 1)
	go func() {
		_, err := cons.Poll(context.Background())
		done <- err
	}()
	cons.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Poll during Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Poll did not end when the consumer closed")
	}
}

// read_committed hides records of aborted transactions (written here by
// franz-go's transactional producer, since this producer has no
// transactions); read_uncommitted shows them. Control batches never appear.
func TestKfakeConsumerIsolationLevels(t *testing.T) {
	c := newFake(t, kfake.SeedTopics(1, "txn"))
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.TransactionalID("gregor-test-txn"), kgo.DefaultProduceTopic("txn"))
	must(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, txn := range []struct {
		values []string
		commit kgo.TransactionEndTry
	}{{[]string{"a1", "a2"}, kgo.TryAbort}, {[]string{"c1"}, kgo.TryCommit}, {[]string{"a3"}, kgo.TryAbort}, {[]string{"c2", "c3"}, kgo.TryCommit}} {
		must(t, cl.BeginTransaction())
		for _, v := range txn.values {
			must(t, cl.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte(v)}).FirstErr())
		}
		must(t, cl.EndTransaction(ctx, txn.commit))
	}
	read := func(isolation string, n int) string {
		cfg := testConsumerConfig(c.ListenAddrs())
		cfg.IsolationLevel = isolation
		cons := newTestConsumer(t, cfg, TopicPartition{"txn", 0})
		var vs []string
		for _, r := range consumeN(t, cons, n, 10*time.Second) {
			vs = append(vs, string(r.Value))
		}
		return fmt.Sprint(vs)
	}
	if got := read("read_committed", 3); got != "[c1 c2 c3]" {
		t.Fatalf("read_committed: %s", got)
	}
	if got := read("read_uncommitted", 6); got != "[a1 a2 c1 a3 c2 c3]" {
		t.Fatalf("read_uncommitted: %s", got)
	}
}

// A partition that needs an offset lookup must not strand one that is ready
// to fetch. The fetcher sends one request per round, the lookup first; it
// once marked both partitions busy in such a round, sent only the
// ListOffsets, and never fetched the other partition again (found as a
// group member that never read a partition handed over cooperatively).
func TestConsumerLookupDoesNotStrandFetchablePartition(t *testing.T) {
	const topic = "strand"
	addrs := newFake(t, kfake.NumBrokers(1), kfake.SeedTopics(2, topic)).ListenAddrs() // one fetcher for both partitions
	p := newTestProducer(t, testProducerConfig(addrs))
	produceTo := func(partition int32, v string) {
		t.Helper()
		res := newResults()
		must(t, p.Produce(context.Background(), &Record{Topic: topic, Partition: partition, Value: []byte(v)}, res.callback(0, v)))
		res.wait(t, 10*time.Second)
	}
	p0, p1 := TopicPartition{topic, 0}, TopicPartition{topic, 1}
	produceTo(0, "first")
	cons := newTestConsumer(t, testConsumerConfig(addrs), p0)
	consumeN(t, cons, 1, 10*time.Second)
	// Partition 0 now has a position and an empty buffer, so the fetcher's
	// next round (after its long poll at offset 1, which finds nothing)
	// finds it ready to fetch and partition 1 waiting for its lookup (only
	// the fetcher does lookups).
	cons.Assign([]TopicPartition{p0, p1})
	produceTo(1, "other")
	if r := consumeN(t, cons, 1, 10*time.Second)[0]; r.Partition != 1 || string(r.Value) != "other" {
		t.Fatalf("consumed %q from partition %d, want %q from 1", r.Value, r.Partition, "other")
	}
	produceTo(0, "second")
	if r := consumeN(t, cons, 1, 10*time.Second)[0]; r.Partition != 0 || string(r.Value) != "second" {
		t.Fatalf("consumed %q from partition %d, want %q from 0", r.Value, r.Partition, "second")
	}
}

// A consumer with group.id that assigns partitions by hand starts them at
// the group's committed offsets, as the Java consumer does
// (updateFetchPositions: refreshCommittedOffsetsIfNeeded), and only a
// partition with nothing committed per auto.offset.reset.
func TestKfakeAssignStartsAtCommittedOffsets(t *testing.T) {
	c := newFake(t, kfake.SeedTopics(2, "asg"))
	p := newTestProducer(t, testProducerConfig(c.ListenAddrs()))
	res := newResults()
	for part := range int32(2) {
		for i := range 10 {
			v := fmt.Sprintf("p%d-%d", part, i)
			must(t, p.Produce(context.Background(), &Record{Topic: "asg", Partition: part, Value: []byte(v)}, res.callback(int(part)*10+i, v)))
		}
	}
	checkCallbacksInOrder(t, res.wait(t, 10*time.Second), false)
	committed, uncommitted := TopicPartition{"asg", 0}, TopicPartition{"asg", 1}
	cfg := groupConfig(c.ListenAddrs(), "manual") // auto.offset.reset=earliest
	first := newTestConsumer(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	must(t, first.CommitOffsets(ctx, map[TopicPartition]int64{committed: 7}))
	first.Close()

	second := newTestConsumer(t, cfg, committed, uncommitted)
	starts := map[TopicPartition]int64{}
	for _, r := range consumeN(t, second, 3+10, 10*time.Second) {
		tp := TopicPartition{r.Topic, r.Partition}
		if _, ok := starts[tp]; !ok {
			starts[tp] = r.Offset
		}
	}
	if starts[committed] != 7 || starts[uncommitted] != 0 {
		t.Fatalf("first offsets %v; want 7 for %s (committed) and 0 for %s (nothing committed, earliest)", starts, committed, uncommitted)
	}

	// A Seek wins over the committed offset, whether the lookup has
	// answered yet or not.
	third := newTestConsumer(t, cfg, committed)
	third.Seek(committed, At(2))
	if off := firstOffset(t, third); off != 2 {
		t.Fatalf("first offset %d after Seek to 2", off)
	}
}
