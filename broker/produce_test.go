package broker_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

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
