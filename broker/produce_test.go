package broker_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/batch"
	"gregor/broker"
	"gregor/internal/testcluster"
)

// TestPipelinedProduceKeepsPartitionOrder sends an idempotent producer's
// large Produce requests back to back on one connection without waiting
// for answers, as clients with several requests in flight do. Requests this
// large are appended off the connection's goroutine, partitions side by
// side; each partition must still take its batches in request order, or
// the broker would answer OUT_OF_ORDER_SEQUENCE_NUMBER, and the answers
// must come back in request order with contiguous offsets. Each request's
// frame goes back to netio once answered; the records read back show no
// frame was reused while its batches were still being written.
func TestPipelinedProduceKeepsPartitionOrder(t *testing.T) {
	const requests, partitions, recordsPerBatch, valueSize = 24, 3, 40, 4 << 10
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "lanes", partitions, nil)
	r := dialRaw(t, c.Addrs()[0])
	init := kmsg.NewPtrInitProducerIDRequest()
	init.Version = 4
	ip := r.do(init).(*kmsg.InitProducerIDResponse)
	if ip.ErrorCode != 0 {
		t.Fatalf("InitProducerId: %v", kerr.ErrorForCode(ip.ErrorCode))
	}

	// Request i writes to two of the three partitions, so consecutive
	// requests share a partition and each partition is written by
	// requests that are in flight together.
	var seq [partitions]int32
	var frames [][]byte
	var want [][2]int32 // per request, the partitions it names
	for i := range requests {
		ps := [2]int32{int32(i % partitions), int32((i + 1) % partitions)}
		var parts []producePart
		for _, p := range ps {
			parts = append(parts, producePart{"lanes", p, idempotentBatchOf(t, ip.ProducerID, 0, seq[p], recordsPerBatch, valueSize)})
			seq[p] += recordsPerBatch
		}
		frames = append(frames, r.frameOf(produceRequest(9, -1, parts...)))
		want = append(want, ps)
	}
	firstCorr := r.corr - requests + 1
	written := make(chan error, 1)
	go func() {
		for _, f := range frames {
			if _, err := r.c.Write(f); err != nil {
				written <- err
				return
			}
		}
		written <- nil
	}()

	var next [partitions]int64
	for i := range requests {
		body, err := r.read()
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		rd := kbin.Reader{Src: body}
		if corr := rd.Int32(); corr != firstCorr+int32(i) {
			t.Fatalf("answer %d has correlation id %d, want %d", i, corr, firstCorr+int32(i))
		}
		kmsg.SkipTags(&rd) // Produce v9 answers with a flexible header
		resp := kmsg.NewPtrProduceResponse()
		resp.Version = 9
		if err := resp.ReadFrom(rd.Src); err != nil {
			t.Fatal(err)
		}
		got := resp.Topics[0].Partitions
		if len(got) != 2 {
			t.Fatalf("answer %d names %d partitions, want 2", i, len(got))
		}
		for k, sp := range got {
			if sp.Partition != want[i][k] {
				t.Fatalf("answer %d, slot %d: partition %d, want %d", i, k, sp.Partition, want[i][k])
			}
			if sp.ErrorCode != 0 {
				t.Fatalf("request %d, partition %d: %v (%s)", i, sp.Partition, kerr.ErrorForCode(sp.ErrorCode), deref(sp.ErrorMessage))
			}
			if sp.BaseOffset != next[sp.Partition] {
				t.Fatalf("request %d, partition %d: base offset %d, want %d", i, sp.Partition, sp.BaseOffset, next[sp.Partition])
			}
			next[sp.Partition] += recordsPerBatch
		}
	}
	if err := <-written; err != nil {
		t.Fatal(err)
	}

	// The log holds every record as sent, in sequence order: a value is
	// its sequence number, which is its offset, padded with zeros.
	records := consumeAll(t, c, "lanes", requests*2*recordsPerBatch)
	for _, rec := range records {
		want := []byte(fmt.Sprint(rec.Offset))
		want = append(want, make([]byte, valueSize-len(want))...)
		if !bytes.Equal(rec.Value, want) {
			t.Fatalf("partition %d offset %d: the value is not the one sent", rec.Partition, rec.Offset)
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// TestLargeAcksZeroProduceFailureClosesConnection: with acks=0 a failed
// partition closes the connection, so the client refreshes its metadata,
// also when the request is large enough to be appended off the
// connection's goroutine; the good partitions of the request and the
// requests before it are still appended.
func TestLargeAcksZeroProduceFailureClosesConnection(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "zero", 2, nil)
	r := dialRaw(t, c.Addrs()[0])
	big := recordBatch(t, 80, 4<<10) // 320 KiB: over the lanes' threshold
	first := produceRequest(9, 0, producePart{"zero", 0, big})
	second := produceRequest(9, 0, producePart{"zero", 1, big}, producePart{"nope", 0, big})
	r.write(append(r.frameOf(first), r.frameOf(second)...))
	r.expectClosed()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(newClient(t, c)).ListEndOffsets(ctx, "zero")
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(2) {
		if o, ok := ends.Lookup("zero", p); !ok || o.Err != nil || o.Offset != 80 {
			t.Fatalf("partition %d: end offset %d (%v), want 80", p, o.Offset, o.Err)
		}
	}
}

// TestPipelinedListOffsetsSeesEarlierProduce: a ListOffsets a client
// pipelines after a Produce on the same connection, as sarama and kafka-go
// do, answers the log end after that Produce's records, as Kafka's does
// (it reads no further on a connection until it has answered). The
// Produce is large enough to be appended on the lanes, after Serve
// returns; the ListOffsets must wait for it, every round.
func TestPipelinedListOffsetsSeesEarlierProduce(t *testing.T) {
	const rounds, records = 20, 300
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "seen", 1, map[string]*string{"max.message.bytes": kmsg.StringPtr("2000000")})
	r := dialRaw(t, c.Addrs()[0])
	for i := range rounds {
		pr := produceRequest(9, 1, producePart{"seen", 0, recordBatch(t, records, 1000)}) // 300 KiB: over the lanes' threshold
		lo := listOffsetsRequest(7, "seen", 1, -1)
		r.write(append(r.frameOf(pr), r.frameOf(lo)...))
		checkProduceAnswer(t, r, pr, r.corr-1)
		got := r.answer(lo, r.corr).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
		if want := int64(records * (i + 1)); got.ErrorCode != 0 || got.Offset != want {
			t.Fatalf("round %d: ListOffsets(latest) sent after a Produce on its connection answered %d (%v), want %d",
				i, got.Offset, kerr.ErrorForCode(got.ErrorCode), want)
		}
	}
}

// TestPipelinedProducesOverlap: a connection's Produce requests do not
// wait for its earlier ones, which is what lets the lanes append a
// client's pipeline side by side, while its next request of another kind
// does. The first Produce is held in validation (its decompression blocks
// in the budget's hook); the second, on another partition, is validated
// meanwhile, and a ListOffsets after both waits, then answers both.
func TestPipelinedProducesOverlap(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	b := c.Brokers[0]
	createTopic(t, c, "overlap", 2, nil)
	r := dialRaw(t, c.Addrs()[0])

	events := make(chan string, 8)
	gate := make(chan struct{})
	open := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(open) // a failed test must not leave the append held
	var charged atomic.Int32
	broker.WatchDecompressions(b, nil, func() {
		if charged.Add(1) == 1 {
			events <- "first produce validating"
			<-gate
			return
		}
		events <- "second produce validating"
	})
	broker.WatchProduceWaits(b, func() { events <- "list offsets waiting" })
	// 300 KiB of noise: over the lanes' threshold, so the first Produce
	// leaves Serve before it is appended.
	first := produceRequest(9, 1, producePart{"overlap", 0, bombBatch(t, 1<<20, 300<<10)})
	second := produceRequest(9, 1, producePart{"overlap", 1, codecBatch(t, batch.CodecLZ4, 10, 100)})
	lo := listOffsetsRequest(7, "overlap", 1, -1, -1)
	lo.Topics[0].Partitions[1].Partition = 1
	deadline := time.After(20 * time.Second)
	expect := func(want string) {
		t.Helper()
		select {
		case got := <-events:
			if got != want {
				t.Fatalf("%s, want %s next", got, want)
			}
		case <-deadline:
			t.Fatalf("still waiting for: %s", want)
		}
	}
	// The first is sent alone, so that the hook's first call is its.
	r.write(r.frameOf(first))
	expect("first produce validating")
	r.write(append(r.frameOf(second), r.frameOf(lo)...))
	expect("second produce validating")
	expect("list offsets waiting")
	open()
	checkProduceAnswer(t, r, first, r.corr-2)
	checkProduceAnswer(t, r, second, r.corr-1)
	for _, p := range r.answer(lo, r.corr).(*kmsg.ListOffsetsResponse).Topics[0].Partitions {
		if want := []int64{1, 10}[p.Partition]; p.ErrorCode != 0 || p.Offset != want {
			t.Errorf("partition %d: log end %d (%v), want %d", p.Partition, p.Offset, kerr.ErrorForCode(p.ErrorCode), want)
		}
	}
}

// TestProducedDeleteHorizonMarkIsCleared: a produced batch that carries a
// delete horizon's mark (attribute bit 6, which only a log cleaner sets,
// KIP-534) is stored without it, whether kept as sent or recompressed, its
// records' timestamps unchanged: a producer's horizon would let the next
// cleaning drop its tombstones before delete.retention.ms.
func TestProducedDeleteHorizonMarkIsCleared(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "as-sent", 1, nil)
	createTopic(t, c, "recompressed", 1, map[string]*string{"compression.type": kmsg.StringPtr("gzip")})
	r := dialRaw(t, c.Addrs()[0])
	for _, topic := range []string{"as-sent", "recompressed"} {
		b := recordBatch(t, 3, 10)
		h := batch.Header(b)
		base := h.BaseTimestamp()
		h.SetDeleteHorizon(base) // the records' deltas stay relative to it
		h.SetCRC()
		if p := produceRaw(r, 9, 1, topic, 0, b); p.ErrorCode != 0 {
			t.Fatalf("%s: produce: %v", topic, kerr.ErrorForCode(p.ErrorCode))
		}
		got := batch.Header(fetchOnce(r, topic, 0, 0, 0).RecordBatches)
		if _, ok := got.DeleteHorizon(); ok {
			t.Errorf("%s: stored with the producer's delete horizon mark (attributes %#x)", topic, got.Attributes())
		}
		if got.BaseTimestamp() != base {
			t.Errorf("%s: base timestamp %d, want %d", topic, got.BaseTimestamp(), base)
		}
	}
}
