package replica

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"gregor/batch"
	"gregor/segment"
)

// testProducerIDExpiration is producer.id.expiration.ms's default.
const testProducerIDExpiration = 24 * time.Hour

func openPartition(t *testing.T) *Partition {
	t.Helper()
	log, err := segment.Open(t.TempDir(), segment.DefaultConfig(), segment.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	p := New(segment.TopicPartition{Topic: "t", Partition: 0}, log, func() time.Time { return time.UnixMilli(1_000_000) }, testProducerIDExpiration)
	p.BecomeLeader(3)
	return p
}

// idempotentBatch builds a batch of n records from producer pid/epoch with
// sequences starting at seq.
func idempotentBatch(t *testing.T, pid int64, epoch int16, seq int32, n int) []byte {
	t.Helper()
	o := batch.DefaultBuilderOptions()
	o.ProducerID, o.ProducerEpoch, o.BaseSequence = pid, epoch, seq
	bld := batch.NewBuilder(o)
	for i := range n {
		bld.Add(999_000, nil, []byte{byte(i)}, nil)
	}
	b, err := bld.AppendBatch(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestIdempotentAppend(t *testing.T) {
	p := openPartition(t)
	type step struct {
		pid    int64
		epoch  int16
		seq    int32
		n      int
		want   *kerr.Error
		offset int64 // expected first offset when accepted
		dup    bool
	}
	steps := []step{
		{pid: 7, epoch: 0, seq: 0, n: 3, offset: 0},
		{pid: 7, epoch: 0, seq: 3, n: 2, offset: 3},
		{pid: 7, epoch: 0, seq: 0, n: 3, offset: 0, dup: true}, // a retry of the first batch
		{pid: 7, epoch: 0, seq: 3, n: 2, offset: 3, dup: true},
		{pid: 7, epoch: 0, seq: 9, n: 1, want: kerr.OutOfOrderSequenceNumber}, // a gap
		{pid: 7, epoch: 0, seq: 4, n: 1, want: kerr.OutOfOrderSequenceNumber}, // overlaps, not a whole batch
		{pid: 8, epoch: 2, seq: 41, n: 1, offset: 5},                          // an unknown producer may start anywhere
		{pid: 8, epoch: 1, seq: 42, n: 1, want: kerr.InvalidProducerEpoch},    // fenced by epoch 2
		{pid: 8, epoch: 3, seq: 5, n: 1, want: kerr.OutOfOrderSequenceNumber}, // a new epoch starts at 0
		{pid: 8, epoch: 3, seq: 0, n: 1, offset: 6},
		{pid: 7, epoch: 0, seq: 5, n: 1, offset: 7},
		{pid: -1, epoch: -1, seq: -1, n: 2, offset: 8}, // not idempotent
		{pid: -1, epoch: -1, seq: -1, n: 2, offset: 10},
	}
	for i, s := range steps {
		res, err := p.Append(idempotentBatch(t, s.pid, s.epoch, s.seq, s.n), AppendOptions{})
		if s.want != nil {
			if !errors.Is(err, s.want) {
				t.Fatalf("step %d: err %v, want %v", i, err, s.want)
			}
			continue
		}
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if res.FirstOffset != s.offset || res.Duplicate != s.dup {
			t.Fatalf("step %d: offset %d dup %v, want %d %v", i, res.FirstOffset, res.Duplicate, s.offset, s.dup)
		}
	}
	if got := p.HighWatermark(); got != 12 {
		t.Fatalf("high watermark %d, want 12", got)
	}
}

// TestNoProducerEpochHoldsNoSequence: a producer id written with epoch -1
// (Kafka's NO_PRODUCER_EPOCH) is held to no sequence, as Kafka's
// ProducerAppendInfo has it, whether the next batch keeps epoch -1 or
// starts a real epoch; a retry of its batch is still a duplicate, and once
// it has a real epoch its sequences count.
func TestNoProducerEpochHoldsNoSequence(t *testing.T) {
	p := openPartition(t)
	steps := []struct {
		epoch  int16
		seq    int32
		want   *kerr.Error
		offset int64
		dup    bool
	}{
		{epoch: -1, seq: 0, offset: 0},
		{epoch: -1, seq: 0, offset: 0, dup: true},
		{epoch: -1, seq: 10, offset: 2}, // a gap
		{epoch: -1, seq: 3, offset: 4},  // backwards
		{epoch: 0, seq: 7, offset: 6},   // a real epoch, not from 0
		{epoch: 0, seq: 10, want: kerr.OutOfOrderSequenceNumber},
		{epoch: 0, seq: 9, offset: 8},
		{epoch: -1, seq: 11, want: kerr.InvalidProducerEpoch},
	}
	for i, s := range steps {
		res, err := p.Append(idempotentBatch(t, 9, s.epoch, s.seq, 2), AppendOptions{})
		if s.want != nil {
			if !errors.Is(err, s.want) {
				t.Fatalf("step %d: err %v, want %v", i, err, s.want)
			}
			continue
		}
		if err != nil || res.FirstOffset != s.offset || res.Duplicate != s.dup {
			t.Fatalf("step %d: %+v %v, want offset %d duplicate %v", i, res, err, s.offset, s.dup)
		}
	}
}

func TestDuplicateWindowIsFiveBatches(t *testing.T) {
	p := openPartition(t)
	for i := range 6 {
		if _, err := p.Append(idempotentBatch(t, 1, 0, int32(i), 1), AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Batches 1..5 are remembered; batch 0 fell out of the window, so its
	// retry is out of order rather than a silent duplicate.
	if res, err := p.Append(idempotentBatch(t, 1, 0, 1, 1), AppendOptions{}); err != nil || !res.Duplicate || res.FirstOffset != 1 {
		t.Fatalf("retry of batch 1: %+v %v", res, err)
	}
	if _, err := p.Append(idempotentBatch(t, 1, 0, 0, 1), AppendOptions{}); !errors.Is(err, kerr.OutOfOrderSequenceNumber) {
		t.Fatalf("retry of batch 0: %v, want OUT_OF_ORDER_SEQUENCE_NUMBER", err)
	}
}

func TestSequenceWraps(t *testing.T) {
	if got := addSequence(math.MaxInt32-1, 3); got != 1 {
		t.Fatalf("addSequence wraps to %d, want 1", got)
	}
	if !inSequence(math.MaxInt32, 0) || inSequence(math.MaxInt32, 1) {
		t.Fatal("sequence MaxInt32 must be followed by 0")
	}
	p := openPartition(t)
	if _, err := p.Append(idempotentBatch(t, 1, 0, math.MaxInt32-1, 2), AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Append(idempotentBatch(t, 1, 0, 0, 1), AppendOptions{}); err != nil {
		t.Fatalf("after MaxInt32 the next sequence is 0: %v", err)
	}
}

func TestNotLeader(t *testing.T) {
	p := openPartition(t)
	p.BecomeFollower(4)
	if _, err := p.Append(idempotentBatch(t, -1, -1, -1, 1), AppendOptions{}); !errors.Is(err, kerr.NotLeaderForPartition) {
		t.Fatalf("append on a follower: %v", err)
	}
}

func TestExpireProducers(t *testing.T) {
	p := openPartition(t)
	if _, err := p.Append(idempotentBatch(t, 1, 0, 0, 1), AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	// The cutoff is now - producer.id.expiration.ms: a producer idle for
	// exactly that long is expired, as Kafka's isProducerExpired has it.
	if n := p.ExpireProducers(time.UnixMilli(999_999)); n != 0 {
		t.Fatalf("expired %d producers that wrote after the cutoff", n)
	}
	if n := p.ExpireProducers(time.UnixMilli(1_000_000)); n != 1 {
		t.Fatalf("expired %d producers that wrote at the cutoff, want 1", n)
	}
	// Forgotten: any sequence is accepted again.
	if _, err := p.Append(idempotentBatch(t, 1, 0, 77, 1), AppendOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestLogAppendTime(t *testing.T) {
	p := openPartition(t)
	res, err := p.Append(idempotentBatch(t, -1, -1, -1, 2), AppendOptions{LogAppendTime: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.LogAppendTime != 1_000_000 {
		t.Fatalf("log append time %d", res.LogAppendTime)
	}
	b, err := p.Log().ReadBytes(nil, 0, 1<<20, p.HighWatermark())
	if err != nil {
		t.Fatal(err)
	}
	if err := batch.Validate(b, 0); err != nil {
		t.Fatalf("stamped batch no longer valid: %v", err)
	}
	if h := batch.Header(b); !h.LogAppendTime() || h.MaxTimestamp() != 1_000_000 {
		t.Fatalf("batch not stamped: logAppendTime %v max timestamp %d", h.LogAppendTime(), h.MaxTimestamp())
	}
}

func TestParkWakesOnAppend(t *testing.T) {
	p := openPartition(t)
	w := NewWaiter()
	if !p.Park(w, 0) {
		t.Fatal("Park refused with nothing new")
	}
	if p.Park(NewWaiter(), 5) {
		t.Fatal("Park accepted a stale high watermark")
	}
	if _, err := p.Append(idempotentBatch(t, -1, -1, -1, 1), AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.C():
	default:
		t.Fatal("append did not wake the parked fetch")
	}
	// Leadership loss wakes too, and a follower parks nobody.
	w2 := NewWaiter()
	if !p.Park(w2, p.HighWatermark()) {
		t.Fatal("Park refused")
	}
	p.BecomeFollower(4)
	select {
	case <-w2.C():
	default:
		t.Fatal("becoming a follower did not wake the parked fetch")
	}
	if p.Park(NewWaiter(), p.HighWatermark()) {
		t.Fatal("a follower parked a fetch")
	}
	p.BecomeLeader(5)
	w3 := NewWaiter()
	p.Park(w3, p.HighWatermark())
	p.Unpark(w3)
	if _, err := p.Append(idempotentBatch(t, -1, -1, -1, 1), AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w3.C():
		t.Fatal("an unparked waiter was woken")
	default:
	}
}

// TestNewLeaderEpochWakesParkedFetches: a leader that moves to a new epoch
// wakes its parked fetches, so that one that named the old epoch as
// current reads again and answers FENCED_LEADER_EPOCH at once; the same
// epoch again wakes none.
func TestNewLeaderEpochWakesParkedFetches(t *testing.T) {
	p := openPartition(t) // leader in epoch 3
	w := NewWaiter()
	if !p.Park(w, p.HighWatermark()) {
		t.Fatal("Park refused")
	}
	if err := p.BecomeLeader(3); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.C():
		t.Fatal("the same epoch again woke the parked fetch")
	default:
	}
	if err := p.BecomeLeader(4); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.C():
	default:
		t.Fatal("a new leader epoch did not wake the parked fetch")
	}
}

func TestProducerStateSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	tp := segment.TopicPartition{Topic: "t", Partition: 0}
	log, err := segment.Open(dir, segment.DefaultConfig(), segment.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := New(tp, log, nil, testProducerIDExpiration)
	p.BecomeLeader(1)
	for i := range 3 {
		if _, err := p.Append(idempotentBatch(t, 42, 0, int32(i*2), 2), AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	log, err = segment.Open(dir, segment.DefaultConfig(), segment.OpenOptions{CleanShutdown: true})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	p = New(tp, log, nil, testProducerIDExpiration)
	p.BecomeLeader(2)
	// A retry of the last batch from before the restart is a duplicate...
	if res, err := p.Append(idempotentBatch(t, 42, 0, 4, 2), AppendOptions{}); err != nil || !res.Duplicate || res.FirstOffset != 4 {
		t.Fatalf("retry after reopen: %+v %v", res, err)
	}
	// ...and a gap is still out of order.
	if _, err := p.Append(idempotentBatch(t, 42, 0, 9, 1), AppendOptions{}); !errors.Is(err, kerr.OutOfOrderSequenceNumber) {
		t.Fatalf("gap after reopen: %v", err)
	}
	if _, err := p.Append(idempotentBatch(t, 42, 0, 6, 1), AppendOptions{}); err != nil {
		t.Fatalf("the next sequence after reopen: %v", err)
	}
}

// A producer replayed from batch headers (no snapshot covers its batches) is
// dated by its batch's timestamp, not by when the log was reopened: a
// restart does not extend its producer.id.expiration.ms.
func TestReplayedProducerKeepsItsAge(t *testing.T) {
	dir := t.TempDir()
	tp := segment.TopicPartition{Topic: "t", Partition: 0}
	open := func(nowMs int64) (*Partition, *segment.Log) {
		log, err := segment.Open(dir, segment.DefaultConfig(), segment.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p := New(tp, log, func() time.Time { return time.UnixMilli(nowMs) }, testProducerIDExpiration)
		p.BecomeLeader(1)
		return p, log
	}
	p, log := open(1_000_000)
	// idempotentBatch's records carry timestamp 999_000.
	if _, err := p.Append(idempotentBatch(t, 42, 0, 0, 2), AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	// Closing the log but not the partition writes no snapshot, as after
	// a kill: the reopened partition replays the batch header.
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	p, log = open(5_000_000)
	defer log.Close()
	if n := p.ExpireProducers(time.UnixMilli(998_999)); n != 0 {
		t.Fatalf("expired %d producers that wrote after the cutoff", n)
	}
	if n := p.ExpireProducers(time.UnixMilli(999_000)); n != 1 {
		t.Fatalf("expired %d producers last written at 999000, the cutoff, want 1", n)
	}
}
