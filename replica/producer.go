package replica

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// producerBatchesKept is how many of a producer's latest batches a partition
// remembers for duplicate detection: Kafka keeps 5, which is why idempotent
// clients may have at most 5 requests in flight per connection.
const producerBatchesKept = 5

// noProducerEpoch is Kafka's NO_PRODUCER_EPOCH: a producer id written with
// it has no epoch, and its entry holds it to no sequence (check).
const noProducerEpoch = -1

// batchMeta is what a partition remembers of one idempotent batch: enough to
// recognise a retry of it and to answer the retry with the original offsets.
type batchMeta struct {
	firstSeq, lastSeq       int32
	firstOffset, lastOffset int64
	// appendTime is the broker's timestamp of a LogAppendTime batch, which
	// a duplicate is answered with as the original was; -1 for CreateTime.
	appendTime int64
}

// producerEntry is one producer id's state in a partition.
type producerEntry struct {
	epoch   int16
	batches [producerBatchesKept]batchMeta // a ring; next is the slot to fill
	n, next int
	// lastWriteMs is the time of the producer's last append, for expiry.
	lastWriteMs int64
}

func (e *producerEntry) last() *batchMeta {
	return &e.batches[(e.next+producerBatchesKept-1)%producerBatchesKept]
}

// producerStates is the idempotence state of one partition, keyed by producer
// id. It is bounded by expiry (producer.id.expiration.ms), as Kafka's is.
type producerStates struct {
	m map[int64]*producerEntry
}

// SequenceError is an idempotence check that failed: its Code is Kafka's
// error for it (OUT_OF_ORDER_SEQUENCE_NUMBER or INVALID_PRODUCER_EPOCH).
type SequenceError struct {
	Err     *kerr.Error
	Message string
}

func (e *SequenceError) Error() string { return e.Message }
func (e *SequenceError) Unwrap() error { return e.Err }

func inSequence(lastSeq, nextSeq int32) bool {
	return nextSeq == lastSeq+1 || (lastSeq == math.MaxInt32 && nextSeq == 0)
}

// check decides an idempotent batch (producer id pid, epoch, sequences
// firstSeq..lastSeq) as Kafka's ProducerAppendInfo does: a batch the
// partition already holds is a duplicate (dup is its metadata); an older
// epoch is fenced; a new epoch must start at sequence 0; within an epoch the
// batch must follow the last one. A producer the partition knows nothing of
// (never seen, or expired) may start at any sequence, and so may one whose
// entry has no epoch (noProducerEpoch), as Kafka's ProducerAppendInfo
// accepts any sequence after NO_PRODUCER_EPOCH; a retry of one of its
// batches is still a duplicate.
func (s *producerStates) check(pid int64, epoch int16, firstSeq, lastSeq int32, tp string) (dup *batchMeta, err error) {
	e := s.m[pid]
	if e == nil {
		return nil, nil
	}
	if epoch < e.epoch {
		return nil, &SequenceError{kerr.InvalidProducerEpoch, fmt.Sprintf(
			"Epoch of producer %d at partition %s is %d, which is smaller than the last seen epoch %d", pid, tp, epoch, e.epoch)}
	}
	if epoch > e.epoch {
		if firstSeq != 0 && e.epoch != noProducerEpoch {
			return nil, &SequenceError{kerr.OutOfOrderSequenceNumber, fmt.Sprintf(
				"Invalid sequence number for new epoch of producer %d in partition %s: %d (request epoch), %d (seq. number), %d (current producer epoch)",
				pid, tp, epoch, firstSeq, e.epoch)}
		}
		return nil, nil
	}
	for i := range e.n {
		b := &e.batches[i]
		if b.firstSeq == firstSeq && b.lastSeq == lastSeq {
			return b, nil
		}
	}
	if last := e.last(); e.epoch != noProducerEpoch && !inSequence(last.lastSeq, firstSeq) {
		return nil, &SequenceError{kerr.OutOfOrderSequenceNumber, fmt.Sprintf(
			"Out of order sequence number for producer %d in partition %s: %d (incoming seq. number), %d (current end sequence number)",
			pid, tp, firstSeq, last.lastSeq)}
	}
	return nil, nil
}

// record remembers an appended idempotent batch.
func (s *producerStates) record(pid int64, epoch int16, b batchMeta, nowMs int64) {
	if s.m == nil {
		s.m = make(map[int64]*producerEntry)
	}
	e := s.m[pid]
	if e == nil || epoch != e.epoch {
		e = &producerEntry{epoch: epoch}
		s.m[pid] = e
	}
	e.batches[e.next] = b
	e.next = (e.next + 1) % producerBatchesKept
	e.n = min(e.n+1, producerBatchesKept)
	e.lastWriteMs = max(e.lastWriteMs, nowMs)
}

// expire forgets the producers whose last write is at or before cutoffMs,
// now less producer.id.expiration.ms: Kafka's isProducerExpired holds a
// producer idle for exactly producer.id.expiration.ms expired.
func (s *producerStates) expire(cutoffMs int64) int {
	n := 0
	for pid, e := range s.m {
		if e.lastWriteMs <= cutoffMs {
			delete(s.m, pid)
			n++
		}
	}
	return n
}

// ProducerState is what a partition knows of one idempotent producer, as
// DescribeProducers lists it.
type ProducerState struct {
	ProducerID   int64
	Epoch        int16
	LastSequence int32 // of its last batch appended here
	// LastTimestampMs is when it last wrote here, ms: the append's time,
	// or, for a producer rebuilt from the log, its last batch's largest
	// timestamp (what expiry counts from, as Kafka's lastTimestamp).
	LastTimestampMs int64
}

// list returns the producers of s, sorted by id.
func (s *producerStates) list() []ProducerState {
	out := make([]ProducerState, 0, len(s.m))
	for pid, e := range s.m {
		out = append(out, ProducerState{ProducerID: pid, Epoch: e.epoch, LastSequence: e.last().lastSeq, LastTimestampMs: e.lastWriteMs})
	}
	slices.SortFunc(out, func(a, b ProducerState) int { return cmp.Compare(a.ProducerID, b.ProducerID) })
	return out
}
