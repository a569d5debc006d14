package client

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/batch"
)

// encodeBatch builds one RecordBatch at baseOffset holding values.
func encodeBatch(t *testing.T, baseOffset int64, opts batch.BuilderOptions, values ...string) []byte {
	t.Helper()
	b := batch.NewBuilder(opts)
	for i, v := range values {
		b.Add(1700000000000+int64(i), nil, []byte(v), nil)
	}
	out, err := b.AppendBatch(nil)
	if err != nil {
		t.Fatal(err)
	}
	batch.Header(out).SetBaseOffset(baseOffset)
	return out
}

// controlBatch is a transaction marker (0 abort, 1 commit) for producer pid.
func controlBatch(t *testing.T, baseOffset, pid int64, typ int16) []byte {
	t.Helper()
	opts := batch.DefaultBuilderOptions()
	opts.ProducerID, opts.ProducerEpoch, opts.Transactional = pid, 0, true
	b := batch.NewBuilder(opts)
	key := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, 0), uint16(typ))
	b.Add(1700000000000, key, []byte{0, 0, 0, 0, 0, 0}, nil)
	out, err := b.AppendBatch(nil)
	if err != nil {
		t.Fatal(err)
	}
	h := batch.Header(out)
	h.SetBaseOffset(baseOffset)
	// Set the control bit (attributes bit 5) and fix the CRC.
	attrs := binary.BigEndian.Uint16(out[21:])
	binary.BigEndian.PutUint16(out[21:], attrs|0x20)
	h.SetCRC()
	return out
}

func values(recs []*ConsumedRecord) []string {
	var out []string
	for _, r := range recs {
		out = append(out, fmt.Sprintf("%d:%s", r.Offset, r.Value))
	}
	return out
}

func newDecodeConsumer(isolation int8) *Consumer {
	return &Consumer{isolation: isolation, maxDecompressed: 1 << 20}
}

// A fetch that starts inside a batch skips the records before the requested
// offset; a partial batch at the end (responses are cut at byte limits) is
// left for the next fetch; the next offset follows the last whole batch.
func TestDecodeSkipsEarlierRecordsAndPartialTrailingBatch(t *testing.T) {
	opts := batch.DefaultBuilderOptions()
	opts.Codec = batch.CodecLZ4
	b1 := encodeBatch(t, 10, opts, "a", "b", "c", "d")
	b2 := encodeBatch(t, 14, batch.DefaultBuilderOptions(), "e", "f")
	b3 := encodeBatch(t, 16, batch.DefaultBuilderOptions(), "g", "h")
	data := append(append(append([]byte{}, b1...), b2...), b3[:len(b3)-5]...)
	c := newDecodeConsumer(0)
	recs, next, tooLarge, err := c.decode(TopicPartition{"t", 0}, 12, &kmsg.FetchResponseTopicPartition{RecordBatches: data})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(values(recs)); got != "[12:c 13:d 14:e 15:f]" || next != 16 || tooLarge {
		t.Fatalf("got %s, next %d, tooLarge %v", got, next, tooLarge)
	}
	// Nothing but a partial batch: not even one fits.
	_, next, tooLarge, err = c.decode(TopicPartition{"t", 0}, 16, &kmsg.FetchResponseTopicPartition{RecordBatches: b3[:30]})
	if err != nil || !tooLarge || next != 16 {
		t.Fatalf("partial only: next %d, tooLarge %v, err %v", next, tooLarge, err)
	}
}

func TestDecodeRejectsCorruptBatch(t *testing.T) {
	b1 := encodeBatch(t, 0, batch.DefaultBuilderOptions(), "a", "b")
	b2 := encodeBatch(t, 2, batch.DefaultBuilderOptions(), "c")
	b2[len(b2)-1] ^= 0xff
	c := newDecodeConsumer(0)
	recs, next, _, err := c.decode(TopicPartition{"t", 0}, 0, &kmsg.FetchResponseTopicPartition{RecordBatches: append(b1, b2...)})
	if err == nil || len(recs) != 2 || next != 2 {
		t.Fatalf("corrupt second batch: %d records, next %d, err %v; want the first batch's records and an error", len(recs), next, err)
	}
}

// read_committed skips the batches of aborted transactions (listed in the
// response) up to their ABORT marker, and every control batch; committed
// transactions and plain batches pass.
func TestDecodeReadCommittedSkipsAbortedTransactions(t *testing.T) {
	txn := func(pid int64) batch.BuilderOptions {
		o := batch.DefaultBuilderOptions()
		o.ProducerID, o.ProducerEpoch, o.BaseSequence, o.Transactional = pid, 0, 0, true
		return o
	}
	var data []byte
	data = append(data, encodeBatch(t, 0, batch.DefaultBuilderOptions(), "plain0")...)
	data = append(data, encodeBatch(t, 1, txn(7), "aborted1", "aborted2")...)
	data = append(data, encodeBatch(t, 3, txn(8), "committed3")...)
	data = append(data, controlBatch(t, 4, 7, 0)...) // abort pid 7
	data = append(data, controlBatch(t, 5, 8, 1)...) // commit pid 8
	data = append(data, encodeBatch(t, 6, txn(7), "later6")...)
	data = append(data, controlBatch(t, 7, 7, 1)...) // commit pid 7's second transaction
	resp := &kmsg.FetchResponseTopicPartition{RecordBatches: data,
		AbortedTransactions: []kmsg.FetchResponseTopicPartitionAbortedTransaction{{ProducerID: 7, FirstOffset: 1}}}
	recs, next, _, err := newDecodeConsumer(1).decode(TopicPartition{"t", 0}, 0, resp)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(values(recs)); got != "[0:plain0 3:committed3 6:later6]" || next != 8 {
		t.Fatalf("read_committed: %s, next %d", got, next)
	}
	recs, _, _, err = newDecodeConsumer(0).decode(TopicPartition{"t", 0}, 0, resp)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(values(recs)); got != "[0:plain0 1:aborted1 2:aborted2 3:committed3 6:later6]" {
		t.Fatalf("read_uncommitted: %s", got)
	}
}

// emptyBatch is what Kafka's log cleaner leaves of an idempotent producer's
// last batch when compaction removed all its records (BatchRetention
// RETAIN_EMPTY, MemoryRecordsBuilder.writeEmptyHeader): a header with
// recordCount 0 that still spans its offsets.
func emptyBatch(baseOffset int64, lastOffsetDelta int32, pid int64) []byte {
	b := make([]byte, batch.HeaderSize)
	binary.BigEndian.PutUint64(b[0:], uint64(baseOffset))
	binary.BigEndian.PutUint32(b[8:], uint32(batch.HeaderSize-batch.LengthOverhead))
	b[16] = batch.Magic
	binary.BigEndian.PutUint32(b[23:], uint32(lastOffsetDelta))
	binary.BigEndian.PutUint64(b[27:], 1700000000000)
	binary.BigEndian.PutUint64(b[35:], 1700000000000)
	binary.BigEndian.PutUint64(b[43:], uint64(pid))
	binary.BigEndian.PutUint32(b[53:], 7) // baseSequence
	binary.BigEndian.PutUint32(b[57:], 0) // recordCount
	batch.Header(b).SetCRC()
	return b
}

// An empty batch the cleaner kept is read past, as Java's consumer does:
// the records after it come, and the fetch goes on after them.
func TestDecodeSkipsEmptyBatchTheCleanerKept(t *testing.T) {
	var data []byte
	data = append(data, encodeBatch(t, 0, batch.DefaultBuilderOptions(), "a", "b")...)
	data = append(data, emptyBatch(2, 2, 5)...)
	data = append(data, encodeBatch(t, 5, batch.DefaultBuilderOptions(), "f")...)
	for _, isolation := range []int8{0, 1} {
		recs, next, _, err := newDecodeConsumer(isolation).decode(TopicPartition{"t", 0}, 0, &kmsg.FetchResponseTopicPartition{RecordBatches: data})
		if got := fmt.Sprint(values(recs)); err != nil || got != "[0:a 1:b 5:f]" || next != 6 {
			t.Fatalf("isolation %d: got %s, next %d, err %v; want [0:a 1:b 5:f], next 6, no error", isolation, got, next, err)
		}
	}
	// Ending a response, it moves the fetch past its offsets.
	_, next, _, err := newDecodeConsumer(0).decode(TopicPartition{"t", 0}, 2, &kmsg.FetchResponseTopicPartition{RecordBatches: emptyBatch(2, 2, 5)})
	if err != nil || next != 5 {
		t.Fatalf("next %d, err %v; want 5, no error", next, err)
	}
}
