package client

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"gregor/batch"
)

var codecs = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// Every codec with every acks, keyed and unkeyed records, produced to
// franz-go's fake cluster and read back with this package's consumer.
func TestKfakeProduceConsumeEveryCodecAndAcks(t *testing.T) {
	c := newFake(t)
	for _, codec := range codecs {
		for _, acks := range []string{"0", "1", "all"} {
			t.Run(fmt.Sprintf("codec=%s/acks=%s", codec, acks), func(t *testing.T) {
				topic := fmt.Sprintf("codec-%s-acks-%s", codec, acks)
				if err := c.CreateTopic(topic, 3, nil); err != nil {
					t.Fatal(err)
				}
				cfg := testProducerConfig(c.ListenAddrs())
				cfg.CompressionType = codec
				cfg.Acks = acks
				cfg.EnableIdempotence = acks == "all"
				p := newTestProducer(t, cfg)
				keyed := produceValues(t, p, topic, 150, func(i int) []byte { return fmt.Appendf(nil, "key-%d", i%7) }, "keyed")
				for _, g := range keyed {
					if want := KeyPartition(fmt.Appendf(nil, "key-%d", g.seq%7), 3); g.md.Partition != want {
						t.Fatalf("key-%d went to partition %d, the Java client puts it on %d", g.seq%7, g.md.Partition, want)
					}
				}
				checkCallbacksInOrder(t, keyed, acks == "0")
				unkeyed := produceValues(t, p, topic, 150, nil, "unkeyed")
				checkCallbacksInOrder(t, unkeyed, acks == "0")
				all := append(keyed, unkeyed...)
				for i := range unkeyed {
					all[len(keyed)+i].seq += len(keyed)
				}
				cons := newTestConsumer(t, testConsumerConfig(c.ListenAddrs()), partitions(topic, 3)...)
				checkConsumed(t, consumeN(t, cons, len(all), 20*time.Second), all)
				st := p.Stats()
				if st.RecordsSent != 300 || st.RecordErrors != 0 || st.Batches == 0 || st.Bytes == 0 {
					t.Fatalf("stats %+v", st)
				}
				// The values repeat their prefix, so every codec saves bytes.
				if saved := codec != "none"; saved && st.UncompressedBytes <= st.Bytes || !saved && st.UncompressedBytes != st.Bytes {
					t.Fatalf("%s: %d bytes sent, %d without compression", codec, st.Bytes, st.UncompressedBytes)
				}
			})
		}
	}
}

// Records without a key stick to one partition while its batch fills (KIP-480),
// then move on: with batches of a few dozen records, 3000 records use every
// partition (the chance that ~100 random moves miss one is (2/3)^100),
// and consecutive records mostly share one.
func TestKfakeStickyPartitionerSpreadsByBatch(t *testing.T) {
	c := newFake(t, kfake.SeedTopics(4, "sticky"))
	cfg := testProducerConfig(c.ListenAddrs())
	cfg.BatchSize = 500
	cfg.LingerMs = 300 // batches close by size, not time
	p := newTestProducer(t, cfg)
	got := produceValues(t, p, "sticky", 3000, nil, "v")
	seen := map[int32]int{}
	switches := 0
	bySeq := make([]int32, len(got))
	for _, g := range got {
		seen[g.md.Partition]++
		bySeq[g.seq] = g.md.Partition
	}
	for i := 1; i < len(bySeq); i++ {
		if bySeq[i] != bySeq[i-1] {
			switches++
		}
	}
	if len(seen) != 4 {
		t.Fatalf("unkeyed records used partitions %v, want all 4", seen)
	}
	if st := p.Stats(); switches > int(st.Batches) {
		t.Fatalf("%d partition switches for %d batches: not sticky", switches, st.Batches)
	}
}

// An idempotent producer whose requests fail in the ways that cause duplicates
// and reordering in a naive client: a response lost after the write
// (REQUEST_TIMED_OUT is answered after the append), connections dropped before
// the write, and a NOT_LEADER rejection while later batches of the same
// partition are in flight (those then fail with OUT_OF_ORDER_SEQUENCE_NUMBER
// and must go again after it). The log must hold every record once, in order.
func TestKfakeIdempotentRetriesKeepOrderWithoutDuplicates(t *testing.T) {
	c := newFake(t, kfake.SeedTopics(2, "idem"))
	timedOut := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.RequestTimedOut, Count: 3,
		When: everyNth(4)})
	notLeader := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.NotLeaderForPartition, Count: 2,
		When: everyNth(7)})
	var produces, dropped atomic.Int32
	c.ControlKey(kmsg.Produce.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if n := produces.Add(1); n%10 == 5 && dropped.Load() < 3 {
			dropped.Add(1)
			return nil, errors.New("test: drop the connection before the write"), true
		}
		return nil, nil, false
	})
	cfg := testProducerConfig(c.ListenAddrs())
	cfg.BatchSize = 300 // many small batches, so several of a partition are in flight
	cfg.LingerMs = 0
	cfg.RetryBackoffMs = 5
	p := newTestProducer(t, cfg)
	got := produceValues(t, p, "idem", 600, func(i int) []byte { return fmt.Appendf(nil, "k%d", i%2) }, "v")
	checkCallbacksInOrder(t, got, false)
	if timedOut.Hits() == 0 || notLeader.Hits() == 0 || dropped.Load() == 0 {
		t.Fatalf("faults hit: timed out %d, not leader %d, dropped %d; the test injected nothing",
			timedOut.Hits(), notLeader.Hits(), dropped.Load())
	}
	st := p.Stats()
	if st.Retries == 0 {
		t.Fatalf("no retries: %+v", st)
	}
	t.Logf("faults: %d timed out, %d not leader, %d dropped; %+v", timedOut.Hits(), notLeader.Hits(), dropped.Load(), st)
	cons := newTestConsumer(t, testConsumerConfig(c.ListenAddrs()), partitions("idem", 2)...)
	checkConsumed(t, consumeN(t, cons, len(got), 20*time.Second), got)
}

// everyNth matches every nth request it sees, so faults land in the middle
// of a pipelined stream rather than on the first request.
func everyNth(n int32) func(kmsg.Request) bool {
	var i atomic.Int32
	return func(kmsg.Request) bool { return i.Add(1)%n == 0 }
}

// requestNumbers numbers requests in the order kfake first sees them; its
// nth(n) matches the nth. Faults sharing it count the same requests, each
// once however often kfake asks (When runs on the cluster goroutine, maybe
// several times per request, and not at all for a fault after the one that
// answered). It must see every request: give it to the first faults added.
func requestNumbers() (nth func(n int) func(kmsg.Request) bool) {
	index := map[kmsg.Request]int{}
	return func(n int) func(kmsg.Request) bool {
		return func(r kmsg.Request) bool {
			if _, ok := index[r]; !ok {
				index[r] = len(index) + 1
			}
			return index[r] == n
		}
	}
}

// firstSequence is the base sequence of the first batch of a Produce
// request, -1 if it has none.
func firstSequence(r kmsg.Request) int32 {
	req, ok := r.(*kmsg.ProduceRequest)
	if !ok || len(req.Topics) == 0 || len(req.Topics[0].Partitions) == 0 || len(req.Topics[0].Partitions[0].Records) < batch.HeaderSize {
		return -1
	}
	return batch.Header(req.Topics[0].Partitions[0].Records).BaseSequence()
}

// A batch written but answered REQUEST_TIMED_OUT goes again with the batches
// pipelined behind it written; its resend is refused (NOT_LEADER_OR_FOLLOWER,
// not written). Were new batches sent behind that resend and written, the
// batch would fall out of the five the broker remembers for duplicates, and
// every resend after would be OUT_OF_ORDER_SEQUENCE_NUMBER until
// delivery.timeout.ms failed records that are in the log. Nothing new goes
// until the resend has its answer: every record is acknowledged and in the
// log once, in order.
func TestKfakeResendHoldsItsPartitionUntilAnswered(t *testing.T) {
	c := newFake(t, kfake.SeedTopics(1, "held"))
	nth := requestNumbers()
	timedOut := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.RequestTimedOut, When: nth(1)})
	notLeader := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.NotLeaderForPartition, When: nth(6)})
	cfg := testProducerConfig(c.ListenAddrs())
	cfg.BatchSize, cfg.LingerMs, cfg.RetryBackoffMs = 100, 0, 20
	cfg.RequestTimeoutMs, cfg.DeliveryTimeoutMs = 2000, 3000
	p := newTestProducer(t, cfg)
	res := newResults()
	for i := range 120 {
		v := fmt.Sprintf("v-%d", i)
		must(t, p.Produce(context.Background(), &Record{Topic: "held", Partition: 0, Value: []byte(v)}, res.callback(i, v)))
	}
	got := res.wait(t, 20*time.Second)
	checkCallbacksInOrder(t, got, false)
	if timedOut.Hits() != 1 || notLeader.Hits() != 1 {
		t.Fatalf("faults hit: timed out %d, not leader %d; want one each", timedOut.Hits(), notLeader.Hits())
	}
	cons := newTestConsumer(t, testConsumerConfig(c.ListenAddrs()), TopicPartition{"held", 0})
	checkConsumed(t, consumeN(t, cons, len(got), 10*time.Second), got)
}

// Batch A is written but answered REQUEST_TIMED_OUT while batch B is in
// flight behind it; B is acknowledged, and so was W before A. The broker
// answers A's resend with OUT_OF_ORDER_SEQUENCE_NUMBER, as Kafka does once a
// batch is out of the five it remembers for duplicates. W and B acknowledged
// under the same producer id and epoch mean the broker wrote every sequence
// between them: A succeeded (at an unknown offset).
func TestKfakeOutOfOrderResendOfAWrittenBatchSucceeds(t *testing.T) {
	c := newFake(t, kfake.SeedTopics(1, "passed"))
	const seqA = 1 // W, A and B hold one record each
	bSent := make(chan struct{})
	var firstSends atomic.Int32
	hook := withFirstSendHook(func(TopicPartition, time.Time, time.Time) {
		if firstSends.Add(1) == 3 {
			close(bSent)
		}
	})
	// Hold A's first attempt until B is on its way behind it, so that A's
	// answer comes while B is in flight.
	var heldA atomic.Bool
	c.ControlKey(kmsg.Produce.Int16(), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if firstSequence(r) == seqA && !heldA.Swap(true) {
			c.SleepControl(func() { <-bSent })
		}
		return nil, nil, false
	})
	isA := func(r kmsg.Request) bool { return firstSequence(r) == seqA }
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.RequestTimedOut, When: isA})
	refused := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.OutOfOrderSequenceNumber, When: isA, Count: -1})
	cfg := testProducerConfig(c.ListenAddrs())
	cfg.BatchSize, cfg.LingerMs = 1, 0 // a batch per record
	cfg.RequestTimeoutMs, cfg.DeliveryTimeoutMs = 1000, 2000
	p := newTestProducer(t, cfg, hook)
	checkCallbacksInOrder(t, produceValues(t, p, "passed", 1, nil, "W"), false)
	res := newResults()
	for i, v := range []string{"A", "B"} {
		must(t, p.Produce(context.Background(), &Record{Topic: "passed", Partition: 0, Value: []byte(v)}, res.callback(i, v)))
	}
	for _, g := range res.wait(t, 10*time.Second) {
		if g.err != nil {
			t.Fatalf("record %s: %v", g.value, g.err)
		}
	}
	if refused.Hits() == 0 {
		t.Fatal("A's resend was never refused: the test injected nothing")
	}
	cons := newTestConsumer(t, testConsumerConfig(c.ListenAddrs()), TopicPartition{"passed", 0})
	var values []string
	for _, r := range consumeN(t, cons, 3, 10*time.Second) {
		values = append(values, string(r.Value))
	}
	if !slices.Equal(values, []string{"W-0", "A", "B"}) {
		t.Fatalf("the log holds %q, want W-0, A, B", values)
	}
}

// OUT_OF_ORDER_SEQUENCE_NUMBER for the batch right after the last
// acknowledged one means the broker lost the producer's state. It refused the
// batch, so the Java idempotent producer (Kafka 3.x) retries it under a new
// epoch: the record is written once, and later records go through.
func TestKfakeOutOfOrderOnNextBatchIsRetriedUnderANewEpoch(t *testing.T) {
	c := newFake(t, kfake.SeedTopics(1, "ooo"))
	inits := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.InitProducerID}, Observe: true, Count: -1})
	refused := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.OutOfOrderSequenceNumber})
	p := newTestProducer(t, testProducerConfig(c.ListenAddrs()))
	first := produceValues(t, p, "ooo", 1, nil, "first")
	checkCallbacksInOrder(t, first, false)
	if refused.Hits() != 1 || inits.Hits() < 2 {
		t.Fatalf("%d refused, %d InitProducerId requests; want the refused batch retried under a second", refused.Hits(), inits.Hits())
	}
	after := produceValues(t, p, "ooo", 20, nil, "after")
	checkCallbacksInOrder(t, after, false)
	all := append(first, after...)
	for i := range after {
		all[1+i].seq += 1
	}
	cons := newTestConsumer(t, testConsumerConfig(c.ListenAddrs()), TopicPartition{"ooo", 0})
	checkConsumed(t, consumeN(t, cons, len(all), 10*time.Second), all)
}

// UNKNOWN_PRODUCER_ID: the broker has no state for the producer, though the
// log still holds its acknowledged record (the state was lost, not removed
// by retention). The Java idempotent producer (TransactionManager.canRetry,
// Kafka 2.5+, KIP-360) retries the batch: as it is while the answer lacks
// the log start offset, else under a new epoch. Here the broker refuses the
// old producer id until then; the record is written once either way.
func TestKfakeUnknownProducerIDIsRetried(t *testing.T) {
	for _, logStartKnown := range []bool{false, true} {
		t.Run(fmt.Sprintf("log start known=%v", logStartKnown), func(t *testing.T) {
			c := newFake(t, kfake.SeedTopics(1, "upid"))
			inits := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.InitProducerID}, Observe: true, Count: -1})
			p := newTestProducer(t, testProducerConfig(c.ListenAddrs()))
			first := produceValues(t, p, "upid", 1, nil, "first")
			checkCallbacksInOrder(t, first, false)
			var refused func() int
			if logStartKnown {
				// Refuse the producer id that wrote "first", with the log
				// start offset (0: its record is still there).
				var forgotten atomic.Int64
				var n atomic.Int32
				forgotten.Store(-2)
				refused = func() int { return int(n.Load()) }
				c.ControlKey(kmsg.Produce.Int16(), func(r kmsg.Request) (kmsg.Response, error, bool) {
					c.KeepControl()
					req := r.(*kmsg.ProduceRequest)
					recs := req.Topics[0].Partitions[0].Records
					pid := batch.Header(recs).ProducerID()
					forgotten.CompareAndSwap(-2, pid) // "second" is the first request seen
					if pid != forgotten.Load() {
						return nil, nil, false
					}
					n.Add(1)
					resp := req.ResponseKind().(*kmsg.ProduceResponse)
					for _, rt := range req.Topics {
						st := kmsg.NewProduceResponseTopic()
						st.Topic = rt.Topic
						for _, rp := range rt.Partitions {
							sp := kmsg.NewProduceResponseTopicPartition()
							sp.Partition, sp.ErrorCode, sp.LogStartOffset = rp.Partition, kerr.UnknownProducerID.Code, 0
							st.Partitions = append(st.Partitions, sp)
						}
						resp.Topics = append(resp.Topics, st)
					}
					return resp, nil, true
				})
			} else {
				refused = c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.UnknownProducerID}).Hits
			}
			res := newResults()
			must(t, p.Produce(context.Background(), &Record{Topic: "upid", Partition: 0, Value: []byte("second")}, res.callback(1, "second")))
			second := res.wait(t, 10*time.Second)
			if second[0].err != nil {
				t.Fatalf("second record failed: %v; the Java producer retries it", second[0].err)
			}
			if refused() == 0 || logStartKnown && inits.Hits() < 2 {
				t.Fatalf("%d refused, %d InitProducerId requests; want the batch refused, and retried under a new epoch if the log start was known",
					refused(), inits.Hits())
			}
			cons := newTestConsumer(t, testConsumerConfig(c.ListenAddrs()), TopicPartition{"upid", 0})
			checkConsumed(t, consumeN(t, cons, 2, 10*time.Second), append(first, second...))
		})
	}
}

// A batch the broker wrote but answered with a retriable error
// (NOT_ENOUGH_REPLICAS_AFTER_APPEND) waits out retry.backoff.ms; meanwhile
// another partition's batch fails for good, and the producer moves to a new
// producer id. The waiting batch is resent under its old numbering, which
// the broker recognises as a duplicate, not renumbered under the new id,
// which the broker would write again. Later records of its partition go
// under the new id.
func TestKfakeBumpKeepsAWrittenRetrysNumbering(t *testing.T) {
	c := newFake(t, kfake.SeedTopics(2, "dup"))
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "dup", Partitions: []int32{0}, Err: kerr.NotEnoughReplicasAfterAppend})
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "dup", Partitions: []int32{1}, Err: kerr.InvalidRecord})
	inits := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.InitProducerID}, Observe: true, Count: -1})
	cfg := testProducerConfig(c.ListenAddrs())
	cfg.RetryBackoffMs, cfg.LingerMs = 500, 0
	p := newTestProducer(t, cfg)
	res := newResults()
	ctx := context.Background()
	must(t, p.Produce(ctx, &Record{Topic: "dup", Partition: 0, Value: []byte("written")}, res.callback(0, "written")))
	must(t, p.Produce(ctx, &Record{Topic: "dup", Partition: 1, Value: []byte("refused")}, res.callback(1, "refused")))
	for _, r := range res.wait(t, 10*time.Second) {
		if want := r.value == "refused"; errors.Is(r.err, kerr.InvalidRecord) != want || (!want && r.err != nil) {
			t.Fatalf("record %q: %v", r.value, r.err)
		}
	}
	res = newResults()
	must(t, p.Produce(ctx, &Record{Topic: "dup", Partition: 0, Value: []byte("end")}, res.callback(0, "end")))
	if end := res.wait(t, 10*time.Second); end[0].err != nil {
		t.Fatal(end[0].err)
	}
	if inits.Hits() < 2 {
		t.Fatalf("%d InitProducerId requests; want a second one after the failure", inits.Hits())
	}
	cons := newTestConsumer(t, testConsumerConfig(c.ListenAddrs()), TopicPartition{"dup", 0})
	var values []string
	for _, r := range consumeN(t, cons, 2, 10*time.Second) {
		values = append(values, string(r.Value))
	}
	if !slices.Equal(values, []string{"written", "end"}) {
		t.Fatalf("partition 0 holds %q, want the written record once, then the last", values)
	}
}

// Batch A is written but answered NOT_ENOUGH_REPLICAS_AFTER_APPEND (to be
// resent); batch B, right behind it in flight, is refused for good
// (INVALID_RECORD), and the batches behind B are refused for the gap
// (OUT_OF_ORDER_SEQUENCE_NUMBER). The producer moves to a new epoch, under
// which B's successors are numbered again; A keeps its numbering, and its
// resend is a duplicate the broker drops rather than a second copy. The log
// holds every acknowledged record once, in order, and nothing else.
func TestKfakeFailureRenumbersOnlyTheBatchesAfterIt(t *testing.T) {
	c := newFake(t, kfake.SeedTopics(1, "renum"))
	nth := requestNumbers()
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.NotEnoughReplicasAfterAppend, When: nth(1)})
	refused := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.InvalidRecord, When: nth(2)})
	inits := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.InitProducerID}, Observe: true, Count: -1})
	cfg := testProducerConfig(c.ListenAddrs())
	cfg.BatchSize, cfg.LingerMs, cfg.RetryBackoffMs = 100, 0, 50
	p := newTestProducer(t, cfg)
	res := newResults()
	for i := range 40 {
		v := fmt.Sprintf("v-%d", i)
		must(t, p.Produce(context.Background(), &Record{Topic: "renum", Partition: 0, Value: []byte(v)}, res.callback(i, v)))
	}
	var acked []produced
	for _, g := range res.wait(t, 20*time.Second) {
		switch {
		case g.err == nil:
			acked = append(acked, g)
		case !errors.Is(g.err, kerr.InvalidRecord):
			t.Fatalf("record %s: %v", g.value, g.err)
		}
	}
	if refused.Hits() != 1 || inits.Hits() < 2 || len(acked) == 40 {
		t.Fatalf("%d refused, %d InitProducerId, %d of 40 acknowledged; the test injected nothing", refused.Hits(), inits.Hits(), len(acked))
	}
	checkCallbacksInOrder(t, acked, false)
	cons := newTestConsumer(t, testConsumerConfig(c.ListenAddrs()), TopicPartition{"renum", 0})
	checkConsumed(t, consumeN(t, cons, len(acked), 10*time.Second), acked)
}

// TestSenderNeverWaitsOnItsOwnResults: a request started on a connection
// that has died is answered at once, on the sender's own goroutine; with
// the results channel full (more requests in flight than it holds, as with
// many brokers) that answer must not wait for the sender to empty it.
func TestSenderNeverWaitsOnItsOwnResults(t *testing.T) {
	c := newFake(t, kfake.SeedTopics(1, "t"))
	cfg := testProducerConfig(c.ListenAddrs())
	cfg.EnableIdempotence = false
	s := newSender(newTestProducer(t, cfg)) // not running: this test is its goroutine
	defer close(s.done)
	for len(s.results) < cap(s.results) {
		s.results <- &produceReq{}
	}
	dead := &conn{}
	dead.mu.dead, dead.mu.err = true, errors.New("test: the connection died")
	ps := s.part(TopicPartition{"t", 0})
	pb := &pbatch{b: &producerBatch{}, part: ps, seq: -1}
	ps.batches = append(ps.batches, pb)
	sent := make(chan struct{})
	go func() {
		s.send(1, dead, []*pbatch{pb})
		close(sent)
	}()
	select {
	case <-sent:
	case <-time.After(30 * time.Second):
		t.Fatal("send waited 30s on the sender's own full results channel")
	}
	for range cap(s.results) {
		<-s.results
	}
	if r := <-s.results; r.err == nil || r.batches[0] != pb {
		t.Fatalf("the dead connection's answer: %+v", r)
	}
}

// INVALID_PRODUCER_EPOCH means another producer took over the id: fatal.
func TestKfakeInvalidProducerEpochIsFatal(t *testing.T) {
	c := newFake(t, kfake.SeedTopics(1, "fenced"))
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.InvalidProducerEpoch})
	p := newTestProducer(t, testProducerConfig(c.ListenAddrs()))
	res := newResults()
	if err := p.Produce(context.Background(), &Record{Topic: "fenced", Partition: 0, Value: []byte("x")}, res.callback(0, "x")); err != nil {
		t.Fatal(err)
	}
	got := res.wait(t, 10*time.Second)
	if !errors.Is(got[0].err, kerr.InvalidProducerEpoch) {
		t.Fatalf("callback: %v, want INVALID_PRODUCER_EPOCH", got[0].err)
	}
	err := p.Produce(context.Background(), &Record{Topic: "fenced", Partition: 0, Value: []byte("y")}, nil)
	if !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("Produce after a fatal error: %v", err)
	}
}

// A non-retriable error fails the batch's records with the Kafka error.
func TestKfakeNonRetriableErrorFailsRecords(t *testing.T) {
	c := newFake(t, kfake.SeedTopics(1, "norecord"))
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.TopicAuthorizationFailed})
	cfg := testProducerConfig(c.ListenAddrs())
	p := newTestProducer(t, cfg)
	res := newResults()
	if err := p.Produce(context.Background(), &Record{Topic: "norecord", Partition: 0, Value: []byte("x")}, res.callback(0, "x")); err != nil {
		t.Fatal(err)
	}
	if got := res.wait(t, 10*time.Second); !errors.Is(got[0].err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("callback: %v, want TOPIC_AUTHORIZATION_FAILED", got[0].err)
	}
	// The producer goes on: later records are written.
	checkCallbacksInOrder(t, produceValues(t, p, "norecord", 10, nil, "later"), false)
}

// blackholeProduce makes the cluster never answer Produce requests, until
// the test ends.
func blackholeProduce(t *testing.T, c *kfake.Cluster) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	c.ControlKey(kmsg.Produce.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		c.SleepControl(func() { <-release })
		return nil, errors.New("test: released"), true
	})
}

// With the cluster not answering, buffer.memory fills, Produce blocks for
// max.block.ms and then fails with ErrBufferFull; records already buffered
// fail in their callbacks when the producer closes.
func TestKfakeBufferMemoryExhaustionBlocksThenFails(t *testing.T) {
	c := newFake(t, kfake.SeedTopics(1, "full"))
	blackholeProduce(t, c)
	cfg := testProducerConfig(c.ListenAddrs())
	cfg.BufferMemory = 4096
	cfg.BatchSize = 1024
	cfg.LingerMs = 0
	cfg.MaxBlockMs = 300
	cfg.EnableIdempotence = false
	p, err := NewProducer(cfg, WithLogger(testLogger()))
	if err != nil {
		t.Fatal(err)
	}
	res := newResults()
	ctx := context.Background()
	value := make([]byte, 200)
	var blockedFor time.Duration
	for i := 0; ; i++ {
		if i > 100 {
			t.Fatal("100 records of 200 bytes fit in a 4 KiB buffer.memory")
		}
		start := time.Now()
		cb := res.callback(i, "")
		err := p.Produce(ctx, &Record{Topic: "full", Partition: 0, Value: value}, cb)
		if err != nil {
			blockedFor = time.Since(start)
			if !errors.Is(err, ErrBufferFull) {
				t.Fatalf("Produce: %v, want ErrBufferFull", err)
			}
			cb(RecordMetadata{}, errNotProduced) // Produce failed: the producer never calls it
			break
		}
	}
	if blockedFor < 300*time.Millisecond || blockedFor > 5*time.Second {
		t.Fatalf("Produce blocked for %v, want about max.block.ms=300ms", blockedFor)
	}
	if b := p.Stats().BufferedBytes; b > cfg.BufferMemory {
		t.Fatalf("%d bytes buffered, over buffer.memory", b)
	}
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := p.Close(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close with unanswered records: %v", err)
	}
	for _, g := range res.wait(t, 10*time.Second) {
		if !errors.Is(g.err, errNotProduced) && !errors.Is(g.err, ErrClosed) {
			t.Fatalf("record %d: %v, want ErrClosed", g.seq, g.err)
		}
	}
	if err := p.Produce(ctx, &Record{Topic: "full", Partition: 0}, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Produce after Close: %v", err)
	}
}

// Records not acknowledged within delivery.timeout.ms fail with
// ErrDeliveryTimeout, even while their requests keep timing out and being
// retried.
func TestKfakeDeliveryTimeoutExpires(t *testing.T) {
	c := newFake(t, kfake.SeedTopics(1, "slow"))
	blackholeProduce(t, c)
	cfg := testProducerConfig(c.ListenAddrs())
	cfg.RequestTimeoutMs = 300
	cfg.DeliveryTimeoutMs = 800
	cfg.LingerMs = 0
	cfg.RetryBackoffMs = 50
	p := newTestProducer(t, cfg)
	res := newResults()
	start := time.Now()
	for i := range 5 {
		if err := p.Produce(context.Background(), &Record{Topic: "slow", Partition: 0, Value: []byte("x")}, res.callback(i, "x")); err != nil {
			t.Fatal(err)
		}
	}
	got := res.wait(t, 10*time.Second)
	elapsed := time.Since(start)
	for _, g := range got {
		if !errors.Is(g.err, ErrDeliveryTimeout) {
			t.Fatalf("record %d: %v, want ErrDeliveryTimeout", g.seq, g.err)
		}
	}
	if elapsed < 800*time.Millisecond || elapsed > 5*time.Second {
		t.Fatalf("records failed after %v, want about delivery.timeout.ms=800ms", elapsed)
	}
	if st := p.Stats(); st.RecordErrors != 5 || st.Retries == 0 {
		t.Fatalf("stats %+v: want 5 errors after retries", st)
	}
}

// When a partition's leader moves, the old leader answers NOT_LEADER: the
// producer and the consumer refresh metadata and follow it.
func TestKfakeFollowsLeaderMoves(t *testing.T) {
	c := newFake(t, kfake.SeedTopics(3, "moving"))
	p := newTestProducer(t, testProducerConfig(c.ListenAddrs()))
	first := produceValues(t, p, "moving", 90, func(i int) []byte { return fmt.Appendf(nil, "%d", i) }, "before")
	cons := newTestConsumer(t, testConsumerConfig(c.ListenAddrs()), partitions("moving", 3)...)
	consumed := consumeN(t, cons, len(first), 20*time.Second)
	for part := range int32(3) {
		old := c.LeaderFor("moving", part)
		if err := c.MoveTopicPartition("moving", part, (old+1)%3); err != nil {
			t.Fatal(err)
		}
	}
	second := produceValues(t, p, "moving", 90, func(i int) []byte { return fmt.Appendf(nil, "%d", i) }, "after")
	checkCallbacksInOrder(t, second, false)
	if st := p.Stats(); st.Retries == 0 {
		t.Fatalf("no retries after the leaders moved: the producer never met NOT_LEADER? %+v", st)
	}
	all := append(first, second...)
	for i := range second {
		all[len(first)+i].seq += len(first)
	}
	consumed = append(consumed, consumeN(t, cons, len(second), 20*time.Second)...)
	checkConsumed(t, consumed, all)
}

// Metadata that changes while the sender makes its pass over the
// partitions wakes it: taken before its snapshot, the wakeup cannot be
// missed. Partition 1's batch waits because its leader, broker X, has its
// one request in flight (for partition 0; the cluster never answers). In the
// pass that skips it, a request to another broker goes out (partition 2),
// and with it new metadata names Y partition 1's leader. linger.ms makes
// that pass one woken by a timer, with the Produce calls' wakeups long
// taken; nothing else will wake the sender for a long time (no answers, no
// refresh asked for), so partition 1's batch goes out to Y only if that
// metadata does.
func TestKfakeSenderSeesMetadataChangedDuringItsPass(t *testing.T) {
	c := newFake(t, kfake.SeedTopics(3, "wake"))
	x := c.LeaderFor("wake", 0)
	y, z := (x+1)%3, (x+2)%3
	must(t, c.MoveTopicPartition("wake", 1, x))
	must(t, c.MoveTopicPartition("wake", 2, z))
	tp0, tp1, tp2 := TopicPartition{"wake", 0}, TopicPartition{"wake", 1}, TopicPartition{"wake", 2}
	cfg := testProducerConfig(c.ListenAddrs())
	cfg.EnableIdempotence = false
	cfg.MaxInFlightRequestsPerConnection = 1
	cfg.LingerMs = 200
	cfg.RequestTimeoutMs, cfg.DeliveryTimeoutMs = 30000, 60000
	var p *Producer
	sent := map[TopicPartition]chan struct{}{tp0: make(chan struct{}), tp1: make(chan struct{}), tp2: make(chan struct{})}
	hook := withFirstSendHook(func(tp TopicPartition, _, _ time.Time) {
		// The sender's goroutine, in its pass.
		if tp == tp2 {
			if err := c.MoveTopicPartition("wake", 1, y); err != nil {
				t.Error(err)
			}
			md := p.cl.snapshot()
			moved := &metadata{brokers: md.brokers, topics: maps.Clone(md.topics)}
			old := md.topics["wake"]
			tm := &topicMeta{name: old.name, id: old.id, err: old.err, parts: slices.Clone(old.parts), writable: old.writable}
			tm.parts[1].leader = y
			moved.topics["wake"] = tm
			p.cl.publish(moved, nil)
		}
		close(sent[tp])
	})
	p = newTestProducer(t, cfg, hook)
	blackholeProduce(t, c)
	waitSent := func(tp TopicPartition) {
		t.Helper()
		select {
		case <-sent[tp]:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no batch sent within 5s", tp)
		}
	}
	must(t, p.Produce(context.Background(), &Record{Topic: "wake", Partition: 0, Value: []byte("x")}, nil))
	waitSent(tp0)
	must(t, p.Produce(context.Background(), &Record{Topic: "wake", Partition: 1, Value: []byte("waits for x")}, nil))
	must(t, p.Produce(context.Background(), &Record{Topic: "wake", Partition: 2, Value: []byte("z")}, nil))
	waitSent(tp2)
	waitSent(tp1)
	// Nothing will be answered: close without waiting for the batches.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	p.Close(ctx)
}

func TestProduceRejectsWhatCannotBeBuffered(t *testing.T) {
	c := newFake(t, kfake.SeedTopics(2, "ok"))
	cfg := testProducerConfig(c.ListenAddrs())
	cfg.MaxRequestSize = 1000
	cfg.MaxBlockMs = 300
	p := newTestProducer(t, cfg)
	ctx := context.Background()
	if err := p.Produce(ctx, &Record{Topic: "bad/topic", Partition: -1}, nil); !errors.Is(err, kerr.InvalidTopicException) {
		t.Fatalf("illegal topic name: %v", err)
	}
	if err := p.Produce(ctx, &Record{Topic: "ok", Partition: -1, Value: make([]byte, 2000)}, nil); !errors.Is(err, ErrRecordTooLarge) || !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("record over max.request.size: %v", err)
	}
	if err := p.Produce(ctx, &Record{Topic: "ok", Partition: 7}, nil); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("partition 7 of a 2-partition topic: %v", err)
	}
	// kfake without auto-creation: the topic never appears.
	start := time.Now()
	if err := p.Produce(ctx, &Record{Topic: "absent", Partition: -1}, nil); err == nil || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("absent topic: %v after %v, want an error after max.block.ms", err, time.Since(start))
	}
}

// Topics are created through Metadata's allow_auto_topic_creation.
func TestKfakeAutoCreatesTopics(t *testing.T) {
	c := newFake(t, kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(2))
	p := newTestProducer(t, testProducerConfig(c.ListenAddrs()))
	got := produceValues(t, p, "auto-created", 10, nil, "v")
	checkCallbacksInOrder(t, got, false)
	if c.TopicInfo("auto-created") == nil {
		t.Fatal("topic not created")
	}
}

// Flush sends at once whatever linger.ms would hold back, and returns after
// the callbacks.
func TestKfakeFlushIgnoresLinger(t *testing.T) {
	c := newFake(t, kfake.SeedTopics(1, "flush"))
	cfg := testProducerConfig(c.ListenAddrs())
	cfg.LingerMs = 60000
	cfg.DeliveryTimeoutMs = 120000
	p := newTestProducer(t, cfg)
	res := newResults()
	for i := range 10 {
		if err := p.Produce(context.Background(), &Record{Topic: "flush", Partition: 0, Value: []byte("x")}, res.callback(i, "x")); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("flush took %v", time.Since(start))
	}
	res.mu.Lock()
	pending := res.pending
	res.mu.Unlock()
	if pending != 0 {
		t.Fatalf("%d callbacks had not run when Flush returned", pending)
	}
	checkCallbacksInOrder(t, res.wait(t, time.Second), false)
}

// The clock option stamps records that have no timestamp.
func TestKfakeRecordTimestamps(t *testing.T) {
	c := newFake(t, kfake.SeedTopics(1, "ts"))
	fixed := time.UnixMilli(1700000000123)
	cfg := testProducerConfig(c.ListenAddrs())
	p, err := NewProducer(cfg, WithLogger(testLogger()), WithClock(func() time.Time { return fixed }))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	res := newResults()
	explicit := time.UnixMilli(1600000000000)
	ctx := context.Background()
	must(t, p.Produce(ctx, &Record{Topic: "ts", Partition: 0, Value: []byte("a")}, res.callback(0, "a")))
	must(t, p.Produce(ctx, &Record{Topic: "ts", Partition: 0, Value: []byte("b"), Timestamp: explicit}, res.callback(1, "b")))
	must(t, p.Flush(ctx))
	got := res.wait(t, 5*time.Second)
	cons := newTestConsumer(t, testConsumerConfig(c.ListenAddrs()), TopicPartition{"ts", 0})
	recs := consumeN(t, cons, 2, 10*time.Second)
	for i, want := range []time.Time{fixed, explicit} {
		if !recs[i].Timestamp.Equal(want) || !got[i].md.Timestamp.Equal(want) {
			t.Fatalf("record %d: consumed timestamp %v, callback %v, want %v", i, recs[i].Timestamp, got[i].md.Timestamp, want)
		}
	}
}

var errNotProduced = errors.New("test: Produce returned an error")

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Against brokers that speak only older versions (Kafka 1.0: ApiVersions v1,
// so our v3 ApiVersions is refused and asked again; Produce v5, Fetch v6,
// Metadata v5, no topic ids), each request uses the highest version both
// sides speak, and everything still works.
func TestKfakeOlderBrokerVersions(t *testing.T) {
	for _, v := range []struct {
		name string
		vs   *kversion.Versions
	}{{"1.0", kversion.V1_0_0()}, {"2.4", kversion.V2_4_0()}, {"3.0", kversion.V3_0_0()}} {
		t.Run("kafka="+v.name, func(t *testing.T) {
			c := newFake(t, kfake.MaxVersions(v.vs), kfake.SeedTopics(2, "old"))
			cfg := testProducerConfig(c.ListenAddrs())
			cfg.CompressionType = "snappy"
			p := newTestProducer(t, cfg)
			got := produceValues(t, p, "old", 100, func(i int) []byte { return fmt.Appendf(nil, "%d", i) }, "v")
			checkCallbacksInOrder(t, got, false)
			cons := newTestConsumer(t, testConsumerConfig(c.ListenAddrs()), partitions("old", 2)...)
			checkConsumed(t, consumeN(t, cons, len(got), 10*time.Second), got)
		})
	}
}

// Producing into an open batch does not allocate: the hot path of a producer
// is a metadata lookup, the partitioner, and a copy into the batch.
func TestProduceIntoOpenBatchDoesNotAllocate(t *testing.T) {
	c := newFake(t, kfake.SeedTopics(1, "alloc"))
	cfg := testProducerConfig(c.ListenAddrs())
	cfg.BatchSize = 256 << 10
	cfg.LingerMs = 60000
	cfg.DeliveryTimeoutMs = 120000
	p := newTestProducer(t, cfg)
	ctx := context.Background()
	for _, partition := range []int32{0, -1} {
		rec := &Record{Topic: "alloc", Partition: partition, Value: make([]byte, 100)}
		// Warm up: grow a batch to batch.size and recycle it.
		for range 2 {
			for range 2000 {
				must(t, p.Produce(ctx, rec, nil))
			}
			must(t, p.Flush(ctx))
		}
		must(t, p.Produce(ctx, rec, nil))
		if allocs := testing.AllocsPerRun(200, func() { must(t, p.Produce(ctx, rec, nil)) }); allocs != 0 {
			t.Fatalf("partition %d: Produce into an open batch allocates %.1f times", partition, allocs)
		}
		must(t, p.Flush(ctx))
	}
}

// TestKfakeMaxBlockMsLongMaxBlocks: max.block.ms = Long.MAX_VALUE, a Java
// user's "block for ever", overflowed to a negative wait, and the first
// Produce to a topic failed at once, waiting for its metadata.
func TestKfakeMaxBlockMsLongMaxBlocks(t *testing.T) {
	c := newFake(t)
	must(t, c.CreateTopic("forever", 1, nil))
	cfg := testProducerConfig(c.ListenAddrs())
	cfg.MaxBlockMs = math.MaxInt64
	p := newTestProducer(t, cfg)
	res := newResults()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Produce(ctx, &Record{Topic: "forever", Partition: 0, Value: []byte("x")}, res.callback(0, "x")); err != nil {
		t.Fatalf("Produce with max.block.ms = Long.MAX_VALUE: %v", err)
	}
	if got := res.wait(t, 10*time.Second); got[0].err != nil {
		t.Fatal(got[0].err)
	}
}

// TestKfakeProduceToANewPartitionWaitsForIt: a record for a partition the
// producer's metadata does not have yet (added by CreatePartitions since
// its last refresh) failed at once with UNKNOWN_TOPIC_OR_PARTITION, and
// kept failing until metadata.max.age.ms brought the new count. Java's
// waitOnMetadata refreshes and waits for it, up to max.block.ms.
func TestKfakeProduceToANewPartitionWaitsForIt(t *testing.T) {
	c := newFake(t)
	must(t, c.CreateTopic("grows", 1, nil))
	p := newTestProducer(t, testProducerConfig(c.ListenAddrs()))
	checkCallbacksInOrder(t, produceValues(t, p, "grows", 1, nil, "before"), false)

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rs, err := kadm.NewClient(cl).CreatePartitions(ctx, 2, "grows")
	if err == nil {
		err = rs.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	res := newResults()
	if err := p.Produce(ctx, &Record{Topic: "grows", Partition: 2, Value: []byte("new")}, res.callback(0, "new")); err != nil {
		t.Fatalf("Produce to partition 2 of a topic that now has 3: %v", err)
	}
	if got := res.wait(t, 10*time.Second); got[0].err != nil || got[0].md.Partition != 2 {
		t.Fatalf("callback: %+v", got[0])
	}
	// A partition that never comes fails once max.block.ms has passed.
	cfg := testProducerConfig(c.ListenAddrs())
	cfg.MaxBlockMs = 300
	p2 := newTestProducer(t, cfg)
	checkCallbacksInOrder(t, produceValues(t, p2, "grows", 1, nil, "known"), false)
	if err := p2.Produce(ctx, &Record{Topic: "grows", Partition: 7, Value: []byte("x")}, nil); err == nil {
		t.Fatal("Produce to partition 7 of a topic of 3 succeeded")
	}
}

// TestKfakeCloseFromACallback: Close called from a callback cannot wait for
// the callbacks (it would wait on itself). As Java's producer does, it
// closes without waiting: the record still in flight fails with ErrClosed,
// its callback runs once the calling one returns, and Close answers
// ErrCloseInCallback, at once rather than when its context ends. Flush
// called there answers ErrFlushInCallback at once.
func TestKfakeCloseFromACallback(t *testing.T) {
	c := newFake(t, kfake.SeedTopics(1, "cb"))
	// The first Produce is answered; later ones never are.
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	var produces atomic.Int32
	c.ControlKey(kmsg.Produce.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if produces.Add(1) == 1 {
			return nil, nil, false
		}
		c.SleepControl(func() { <-release })
		return nil, errors.New("test: released"), true
	})
	p := newTestProducer(t, testProducerConfig(c.ListenAddrs()))
	type outcome struct {
		flushErr, closeErr, produceErr error
	}
	inCallback := make(chan outcome, 1)
	second := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	first := func(_ RecordMetadata, err error) {
		if err != nil {
			t.Errorf("first record: %v", err)
		}
		var o outcome
		// In flight, and never answered: Close cannot flush it.
		must(t, p.Produce(ctx, &Record{Topic: "cb", Value: []byte("second")}, func(_ RecordMetadata, err error) { second <- err }))
		o.flushErr = p.Flush(ctx)
		o.closeErr = p.Close(ctx)
		o.produceErr = p.Produce(ctx, &Record{Topic: "cb", Value: []byte("third")}, nil)
		inCallback <- o
	}
	must(t, p.Produce(ctx, &Record{Topic: "cb", Value: []byte("first")}, first))
	var o outcome
	select {
	case o = <-inCallback:
	case <-ctx.Done():
		t.Fatal("the callback calling Close did not return")
	}
	if !errors.Is(o.flushErr, ErrFlushInCallback) || !errors.Is(o.closeErr, ErrCloseInCallback) || !errors.Is(o.produceErr, ErrClosed) {
		t.Fatalf("from the callback: Flush %v, Close %v, then Produce %v; want %v, %v, %v",
			o.flushErr, o.closeErr, o.produceErr, ErrFlushInCallback, ErrCloseInCallback, ErrClosed)
	}
	if err := p.Close(ctx); !errors.Is(err, ErrCloseInCallback) {
		t.Fatalf("a later Close: %v, want %v", err, ErrCloseInCallback)
	}
	select {
	case err := <-second:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("the record in flight: %v, want %v", err, ErrClosed)
		}
	default:
		t.Fatal("Close returned before the callback of the record in flight ran")
	}
}

// TestKfakeUnsupportedProduceVersionFails: a broker that speaks no Produce
// version this client does fails the batch with UNSUPPORTED_VERSION at once,
// as Java's Sender does on a version mismatch; it is not retried until
// delivery.timeout.ms, since the broker will not learn the version meanwhile.
func TestKfakeUnsupportedProduceVersionFails(t *testing.T) {
	vs := kversion.Stable()
	vs.SetMaxKeyVersion(kmsg.Produce.Int16(), 2)
	c := newFake(t, kfake.MaxVersions(vs), kfake.SeedTopics(1, "old"))
	cfg := testProducerConfig(c.ListenAddrs())
	cfg.EnableIdempotence, cfg.Acks = false, "1"
	cfg.DeliveryTimeoutMs = 120_000
	p := newTestProducer(t, cfg)
	res := newResults()
	must(t, p.Produce(context.Background(), &Record{Topic: "old", Value: []byte("v")}, res.callback(0, "v")))
	got := res.wait(t, 20*time.Second)
	if len(got) != 1 || !errors.Is(got[0].err, ErrUnsupportedVersion) {
		t.Fatalf("callbacks: %+v, want one failed with %v", got, ErrUnsupportedVersion)
	}
	if st := p.Stats(); st.Retries != 0 {
		t.Fatalf("%d retries, want none", st.Retries)
	}
}

// TestKfakeIdleTopicLeavesTheMetadataRequests: a topic no record was produced
// to for metadata.max.idle.ms is no longer asked for, as Java's producer
// forgets it, so a producer that moves from topic to topic does not ask for
// every topic it ever used; a topic produced to stays, and the forgotten one
// comes back with its next record.
func TestKfakeIdleTopicLeavesTheMetadataRequests(t *testing.T) {
	c := newFake(t, kfake.SeedTopics(1, "busy", "idle"))
	var asked atomic.Pointer[[]string]
	c.ControlKey(kmsg.Metadata.Int16(), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		var names []string
		for _, rt := range r.(*kmsg.MetadataRequest).Topics {
			if rt.Topic != nil {
				names = append(names, *rt.Topic)
			}
		}
		slices.Sort(names)
		asked.Store(&names)
		return nil, nil, false
	})
	var skew atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	cfg := testProducerConfig(c.ListenAddrs())
	cfg.MetadataMaxIdleMs = 5000
	p := newTestProducer(t, cfg, WithClock(clock))
	produce := func(topic string) {
		t.Helper()
		for _, r := range produceValues(t, p, topic, 1, nil, topic) {
			if r.err != nil {
				t.Fatalf("producing to %s: %v", topic, r.err)
			}
		}
	}
	// askedFor refreshes the metadata until a request asks for want, a
	// few times at most, running before first before each: a refresh
	// under way may have begun before the clock moved.
	askedFor := func(before func(), want ...string) {
		t.Helper()
		for range 5 {
			before()
			ch := p.cl.changedCh()
			p.cl.requestRefresh()
			select {
			case <-ch:
			case <-time.After(10 * time.Second):
				t.Fatal("no metadata refresh within 10s")
			}
			if got := asked.Load(); got != nil && slices.Equal(*got, want) {
				return
			}
		}
		t.Fatalf("metadata requests ask for %v, want %v", *asked.Load(), want)
	}
	busy := func() { produce("busy") }
	produce("idle")
	askedFor(busy, "busy", "idle")
	skew.Store(int64(6 * time.Second))
	askedFor(busy, "busy")
	produce("idle")
	askedFor(busy, "busy", "idle")
}

// TestKfakeBatchForAForgottenTopicAsksForIt: a record produced on the
// metadata just before its topic went idle (the refresh that forgets it
// runs between the lookup and the append) leaves a batch whose topic no
// request asks for; the sender, finding no leader for it, asks again.
func TestKfakeBatchForAForgottenTopicAsksForIt(t *testing.T) {
	c := newFake(t, kfake.SeedTopics(1, "gone"))
	cfg := testProducerConfig(c.ListenAddrs())
	cfg.LingerMs = 100
	p := newTestProducer(t, cfg)
	produceValues(t, p, "gone", 1, nil, "first")
	res := newResults()
	must(t, p.Produce(context.Background(), &Record{Topic: "gone", Value: []byte("v")}, res.callback(0, "v")))
	// What the refresh that forgets the topic leaves, while the batch
	// lingers.
	p.cl.mu.Lock()
	delete(p.cl.mu.topics, "gone")
	p.cl.mu.Unlock()
	md := p.cl.snapshot()
	p.cl.publish(&metadata{brokers: md.brokers, topics: map[string]*topicMeta{}}, nil)
	got := res.wait(t, 15*time.Second)
	if len(got) != 1 || got[0].err != nil {
		t.Fatalf("the batch for a forgotten topic: %+v, want it delivered", got)
	}
}
