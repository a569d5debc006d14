package replica

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"gregor/batch"
	"gregor/segment"
)

// ErrNotLeader is returned for a produce to a partition this broker does not
// lead (Kafka's NOT_LEADER_OR_FOLLOWER).
var ErrNotLeader = fmt.Errorf("replica: this broker is not the partition's leader: %w", kerr.NotLeaderForPartition)

// Partition is this broker's replica of one partition.
type Partition struct {
	tp  segment.TopicPartition
	log *segment.Log
	now func() time.Time

	appendMu  sync.Mutex
	producers producerStates // guarded by appendMu
	// producersChanged says the state differs from the newest snapshot's
	// (guarded by appendMu): Close writes one only then, so that a broker
	// with many partitions of plain producers does not fsync a snapshot
	// per partition on every shutdown.
	producersChanged bool
	// snapshots syncs the snapshots of rolls in the background.
	snapshots snapshotSyncer

	// hw is the high watermark: the offset below which every record is
	// committed and visible to consumers.
	hw atomic.Int64

	mu struct {
		sync.Mutex
		leader      bool
		leaderEpoch int32
		waiters     map[*Waiter]struct{}
	}
}

// New returns the replica of tp over its opened log; it leads nothing until
// BecomeLeader. now is the clock (time.Now when nil). producerIDExpiration
// is producer.id.expiration.ms: the producers of the snapshot loaded that
// have been idle that long are dropped (none when it is not positive).
func New(tp segment.TopicPartition, log *segment.Log, now func() time.Time, producerIDExpiration time.Duration) *Partition {
	if now == nil {
		now = time.Now
	}
	p := &Partition{tp: tp, log: log, now: now}
	p.snapshots.logger, p.snapshots.sync = log.Logger(), segment.SyncReplaced
	// A single-replica partition's committed data is its whole log.
	p.hw.Store(log.LogEndOffset())
	p.mu.leaderEpoch = -1
	p.loadProducers(producerIDExpiration)
	return p
}

// producerReplayReadBytes bounds each read of loadProducers' replay: one
// Log.Read returns regions of at most this many bytes, the last of which may
// end inside a batch, so a longer replay reads again from the first batch
// it has not seen whole. A variable so that a test crosses it with a small
// log rather than 2 GiB.
var producerReplayReadBytes = math.MaxInt32

// loadProducers rebuilds the idempotent producers' state, so that a
// producer retrying across a broker restart is still recognised: from the
// newest snapshot (written at each roll and at Close, as Kafka's are) and
// the batch headers after it, one 61-byte pread per batch. Without a
// snapshot (a log that never rolled, or whose snapshots were lost) it reads
// the active segment's headers; a producer whose last write lies before
// that is forgotten, as if expired, and may start again at any sequence.
//
// The state is never left stale: a producer it remembers with a batch that
// is not its last would have its next sequence refused as out of order,
// and a retry of its last batch appended twice. So:
//   - A snapshot older than the log start (retention or DeleteRecords
//     removed the batches after it, before or during the replay) is
//     dropped, and the replay starts again at the log start with no state,
//     as Kafka's truncateAndReload drops the snapshots below the log start.
//   - A batch header that cannot be read, or does not hold together (an
//     I/O error, ErrCorruption), fails the log: every later call on the
//     partition answers KAFKA_STORAGE_ERROR. Kafka fails the log's load
//     when its rebuild fails, and storage errors stop the partition (DESIGN
//     §5). Carrying on with the state dropped instead would lose only
//     deduplication, but silently: a retry across the restart appended
//     twice, with nothing for the client or the operator to see. The state
//     is dropped too, so that Close writes no snapshot of it.
//
// A snapshot that does not decode costs only a longer replay (loadSnapshot
// removes it and uses the one before).
//
// The snapshot's producers idle for expiration or longer are dropped, as
// Kafka's ProducerStateManager.loadFromSnapshot drops those that
// isProducerExpired: the ones ExpireProducers would have forgotten had
// the broker kept running, which would otherwise come back after a restart
// and refuse a producer's new start as out of order. The replayed ones are
// ExpireProducers' to forget, as in Kafka.
//
// A replayed batch dates its producer's last write by the batch's largest
// timestamp, as Kafka's ProducerStateManager does, capped at the load time:
// the header holds no other trace of when the append happened, and dating it
// at the load time instead would give every replayed producer a whole
// producer.id.expiration.ms more at each restart.
func (p *Partition) loadProducers(expiration time.Duration) {
	dir, end := p.log.Dir(), p.log.LogEndOffset()
	s, covered, older, found, err := loadSnapshot(dir, end)
	if err != nil {
		p.log.Logger().Warn("reading producer-state snapshots", "err", err)
	}
	from := covered
	if found {
		if expiration > 0 {
			s.expire(p.now().Add(-expiration).UnixMilli())
		}
		p.producers = s
		p.snapshots.durable = append(older, covered)
	} else if segs := p.log.Segments(); len(segs) > 0 {
		from = segs[len(segs)-1].BaseOffset
	}
	if err := p.replayProducers(from, covered, end); err != nil {
		p.producers, p.producersChanged = producerStates{}, false
		// Fail logs it, once.
		p.log.Fail(fmt.Errorf("replica: rebuilding the producer state of %s from its batch headers: %w", p.tp, err))
	}
}

// replayProducers records the idempotent batches from the one holding from
// up to end in p.producers, which holds every batch below covered already.
func (p *Partition) replayProducers(from, covered, end int64) error {
	nowMs := p.now().UnixMilli()
	for from < end {
		regions, err := p.log.Read(nil, from, producerReplayReadBytes, end)
		if start := p.log.LogStartOffset(); errors.Is(err, segment.ErrOffsetOutOfRange) && from < start {
			if len(p.producers.m) > 0 {
				p.log.Logger().Info("dropping the producer state replayed to below the log start: replaying from the log start",
					"partition", p.tp, "from", from, "log_start", start)
			}
			p.producers, covered, from = producerStates{}, 0, start
			continue
		}
		if err != nil {
			return err
		}
		next, err := p.replayRegions(regions, from, covered, nowMs)
		segment.ReleaseAll(regions)
		if err != nil {
			return err
		}
		if next <= from {
			return fmt.Errorf("%w: no whole batch at offset %d in %s", segment.ErrCorruption, from, p.log.Dir())
		}
		from = next
	}
	return nil
}

// replayRegions records the idempotent batches that lie whole in regions,
// the answer to a Read from offset from, and returns the offset after the
// last of them: the last region may end inside a batch, which the next
// read starts with.
func (p *Partition) replayRegions(regions []segment.Region, from, covered, nowMs int64) (next int64, err error) {
	var hdr [batch.HeaderSize]byte
	next = from
	for _, r := range regions {
		for pos := r.Position; pos+batch.HeaderSize <= r.Position+r.Length; {
			if _, err := r.File.OS().ReadAt(hdr[:], pos); err != nil {
				return next, fmt.Errorf("reading the batch header at position %d of %s: %w", pos, r.File.Name(), err)
			}
			h := batch.Header(hdr[:])
			size := int64(h.Size())
			// The first batch may begin before from (it holds from);
			// every later one follows the one before.
			if h.Magic() != 2 || size < batch.HeaderSize || h.LastOffsetDelta() < 0 || h.LastOffset() < next ||
				(next > from && h.BaseOffset() < next) {
				return next, fmt.Errorf("%w: batch header at position %d of %s: magic %d, %d bytes, offsets %d..%d after %d",
					segment.ErrCorruption, pos, r.File.Name(), h.Magic(), size, h.BaseOffset(), h.LastOffset(), next)
			}
			if pos+size > r.Position+r.Length {
				return next, nil
			}
			// The snapshot holds the batches below covered.
			if pid := h.ProducerID(); pid >= 0 && !h.Control() && h.BaseOffset() >= covered {
				first := h.BaseSequence()
				appendTime := int64(-1)
				if h.LogAppendTime() {
					appendTime = h.MaxTimestamp()
				}
				p.producers.record(pid, h.ProducerEpoch(), batchMeta{firstSeq: first, lastSeq: addSequence(first, h.LastOffsetDelta()),
					firstOffset: h.BaseOffset(), lastOffset: h.LastOffset(), appendTime: appendTime}, min(h.MaxTimestamp(), nowMs))
				p.producersChanged = true
			}
			next = h.NextOffset()
			pos += size
		}
	}
	return next, nil
}

// Close writes a snapshot of the producer state as of the log end, durably,
// once the background syncs of rolls are done, if the state changed since
// the last one written or a sync failed, so that a broker shutting down
// cleanly finds it whole on restart without reading the batches since. The
// caller closes the log afterwards.
func (p *Partition) Close() {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	if failed := p.snapshots.wait(); !p.producersChanged && !failed {
		return
	}
	end := p.log.LogEndOffset()
	if _, err := writeSnapshot(p.log.Dir(), &p.producers, end, true); err != nil {
		p.log.Logger().Warn("writing a producer-state snapshot", "err", err)
		return
	}
	p.producersChanged = false
	if err := p.snapshots.synced(p.log.Dir(), end); err != nil {
		p.log.Logger().Warn("pruning producer-state snapshots", "err", err)
	}
}

// Detach readies a partition this broker no longer hosts for its log's
// deletion: it leads no more (BecomeFollower(-1): parked fetches wake and
// appends are refused), and the appends and background snapshot syncs in
// progress are done, so that none of them fails on the renamed directory.
func (p *Partition) Detach() {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	p.becomeFollowerLocked(-1)
	p.snapshots.wait()
}

// TopicPartition names the partition.
func (p *Partition) TopicPartition() segment.TopicPartition { return p.tp }

// Log is the partition's log.
func (p *Partition) Log() *segment.Log { return p.log }

// BecomeLeader makes this broker the partition's leader in epoch and records
// the epoch's start at the log end. A new epoch wakes the parked fetches,
// so that one that named the old epoch as current answers
// FENCED_LEADER_EPOCH now rather than at its max_wait. An error is the
// log's: it has failed, and the partition answers every request with it.
func (p *Partition) BecomeLeader(epoch int32) error {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	p.mu.Lock()
	if p.mu.leaderEpoch != epoch {
		p.wakeLocked()
	}
	p.mu.leader, p.mu.leaderEpoch = true, epoch
	p.mu.Unlock()
	return p.log.StartLeaderEpoch(epoch)
}

// BecomeFollower makes this broker a follower in epoch: produces are refused
// and parked fetches are woken so that they answer NOT_LEADER_OR_FOLLOWER.
func (p *Partition) BecomeFollower(epoch int32) {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	p.becomeFollowerLocked(epoch)
}

// becomeFollowerLocked is BecomeFollower with appendMu held.
func (p *Partition) becomeFollowerLocked(epoch int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.leader, p.mu.leaderEpoch = false, epoch
	p.wakeLocked()
}

// Leader reports whether this broker leads the partition, and the leader
// epoch it knows.
func (p *Partition) Leader() (epoch int32, leader bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.leaderEpoch, p.mu.leader
}

// HighWatermark is the offset up to which consumers may read.
func (p *Partition) HighWatermark() int64 { return p.hw.Load() }

// LogStartOffset is the first offset the log holds.
func (p *Partition) LogStartOffset() int64 { return p.log.LogStartOffset() }

// LogEndOffset is the offset the next appended record gets.
func (p *Partition) LogEndOffset() int64 { return p.log.LogEndOffset() }

// AppendOptions say how a batch is appended.
type AppendOptions struct {
	// LogAppendTime stamps the batch with the broker's time
	// (message.timestamp.type=LogAppendTime).
	LogAppendTime bool
}

// AppendResult is what a produce answers for one partition.
type AppendResult struct {
	FirstOffset, LastOffset int64
	// LogAppendTime is the time stamped on the batch, or -1.
	LogAppendTime  int64
	LogStartOffset int64
	// Duplicate says the batch was a retry of one already appended: the
	// offsets are those of the original.
	Duplicate bool
}

// Append appends one validated batch (batch.Validate) as the leader. An
// idempotent batch is first checked against its producer's state: a retry of
// a batch the log already holds is not appended again but answered with the
// original offsets; an out-of-order or fenced one is a *SequenceError.
func (p *Partition) Append(b []byte, o AppendOptions) (AppendResult, error) {
	h := batch.Header(b)
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	epoch, leader := p.Leader()
	if !leader {
		return AppendResult{}, ErrNotLeader
	}
	pid := h.ProducerID()
	idempotent := pid >= 0
	var firstSeq, lastSeq int32
	if idempotent {
		firstSeq = h.BaseSequence()
		lastSeq = addSequence(firstSeq, h.LastOffsetDelta())
		dup, err := p.producers.check(pid, h.ProducerEpoch(), firstSeq, lastSeq, p.tp.String())
		if err != nil {
			return AppendResult{}, err
		}
		if dup != nil {
			return AppendResult{FirstOffset: dup.firstOffset, LastOffset: dup.lastOffset,
				LogAppendTime: dup.appendTime, LogStartOffset: p.log.LogStartOffset(), Duplicate: true}, nil
		}
	}
	nowMs := p.now().UnixMilli()
	appendTime := int64(-1)
	if o.LogAppendTime {
		h.SetMaxTimestampLogAppendTime(nowMs) // recomputes the CRC
		appendTime = nowMs
	}
	info, err := p.log.Append(b, epoch)
	if err != nil {
		return AppendResult{}, err
	}
	if idempotent {
		p.producers.record(pid, h.ProducerEpoch(), batchMeta{firstSeq: firstSeq, lastSeq: lastSeq,
			firstOffset: info.FirstOffset, lastOffset: info.LastOffset, appendTime: appendTime}, nowMs)
		p.producersChanged = true
	}
	if info.Rolled {
		// Written under appendMu, so that no append moves the log end
		// meanwhile; synced in the background.
		end := p.log.LogEndOffset()
		if path, err := writeSnapshot(p.log.Dir(), &p.producers, end, false); err != nil {
			p.log.Logger().Warn("writing a producer-state snapshot", "err", err)
		} else {
			p.snapshots.schedule(path, end)
			p.producersChanged = false
		}
	}
	p.advanceLocked(p.log.LogEndOffset())
	return AppendResult{FirstOffset: info.FirstOffset, LastOffset: info.LastOffset,
		LogAppendTime: appendTime, LogStartOffset: p.log.LogStartOffset()}, nil
}

// addSequence is Kafka's DefaultRecordBatch.incrementSequence: sequences wrap
// from MaxInt32 to 0.
func addSequence(seq, delta int32) int32 {
	if seq > math.MaxInt32-delta {
		return delta - (math.MaxInt32 - seq) - 1
	}
	return seq + delta
}

// advanceLocked moves the high watermark to hw and wakes parked fetches. With
// the ISR being the leader alone, the high watermark is the log end; follower
// replication will make it the minimum log end over the ISR. appendMu is held.
func (p *Partition) advanceLocked(hw int64) {
	if hw <= p.hw.Load() {
		return
	}
	p.hw.Store(hw)
	p.mu.Lock()
	p.wakeLocked()
	p.mu.Unlock()
}

func (p *Partition) wakeLocked() {
	for w := range p.mu.waiters {
		w.wake()
	}
	clear(p.mu.waiters)
}

// ExpireProducers forgets the idempotent producers whose last write is at
// or before cutoff, now less producer.id.expiration.ms (a producer idle for
// exactly that long is expired, as in Kafka), bounding the state.
func (p *Partition) ExpireProducers(cutoff time.Time) int {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	n := p.producers.expire(cutoff.UnixMilli())
	p.producersChanged = p.producersChanged || n > 0
	return n
}

// Producers lists the idempotent producers the partition remembers
// (DescribeProducers), sorted by id: those not yet expired.
func (p *Partition) Producers() []ProducerState {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	return p.producers.list()
}

// ErrRecordsNotDeletable is DeleteRecords on a partition whose topic's
// cleanup.policy has no delete (Kafka's POLICY_VIOLATION): a compacted log
// keeps the newest record of every key, whatever its offset.
var ErrRecordsNotDeletable = fmt.Errorf("replica: records cannot be deleted under the topic's cleanup.policy, which has no delete: %w", kerr.PolicyViolation)

// DeleteRecords raises the log start offset to offset as the leader, as
// Kafka's Partition.deleteRecordsOnLeader does: -1 means the high
// watermark; an offset past the high watermark, or negative otherwise, is
// OFFSET_OUT_OF_RANGE, and one at or below the log start changes nothing.
// It returns the low watermark, the lowest log start among the replicas,
// which with the leader as the only one is its own. The new start is in
// memory only: the caller makes it durable
// (segment.Manager.CheckpointLogStartOffsets) before it answers.
func (p *Partition) DeleteRecords(offset int64) (lowWatermark int64, err error) {
	// Under appendMu, so that the high watermark and the leadership hold
	// still while the start moves.
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	if _, leader := p.Leader(); !leader {
		return -1, ErrNotLeader
	}
	if cfg := p.log.Config(); !cfg.Deletes() {
		return -1, ErrRecordsNotDeletable
	}
	hw := p.hw.Load()
	if offset == -1 {
		offset = hw
	}
	if offset < 0 || offset > hw {
		return -1, fmt.Errorf("replica: cannot delete the records of %s below %d, outside [0, high watermark %d]: %w",
			p.tp, offset, hw, kerr.OffsetOutOfRange)
	}
	if _, err = p.log.AdvanceLogStart(offset); err != nil {
		return -1, err
	}
	return p.log.LogStartOffset(), nil
}

// ReadResult is one partition's part of a fetch.
type ReadResult struct {
	Regions        []segment.Region
	Bytes          int64
	HighWatermark  int64
	LogStartOffset int64
}

// Read returns the regions of the batches from offset, at most maxBytes
// beyond the first batch (KIP-74), below the high watermark. Regions are
// appended to dst; the caller releases them. An offset outside the log is
// segment.ErrOffsetOutOfRange.
func (p *Partition) Read(dst []segment.Region, offset int64, maxBytes int) (ReadResult, error) {
	hw := p.hw.Load()
	r := ReadResult{HighWatermark: hw, LogStartOffset: p.log.LogStartOffset()}
	if offset > hw && offset <= p.log.LogEndOffset() {
		// Appended but not yet committed: nothing to read, not an error.
		r.Regions = dst
		return r, nil
	}
	regions, err := p.log.Read(dst, offset, maxBytes, hw)
	if err != nil {
		return r, err
	}
	r.Regions = regions
	for _, rg := range regions[len(dst):] {
		r.Bytes += rg.Length
	}
	return r, nil
}

// Waiter is a fetch parked until one of its partitions has new data.
type Waiter struct{ c chan struct{} }

// NewWaiter returns a waiter; one waiter may be parked on many partitions.
func NewWaiter() *Waiter { return &Waiter{c: make(chan struct{}, 1)} }

// C receives once a partition the waiter is parked on has moved.
func (w *Waiter) C() <-chan struct{} { return w.c }

func (w *Waiter) wake() {
	select {
	case w.c <- struct{}{}:
	default:
	}
}

// Park parks w until the high watermark moves past seenHW or leadership or
// the leader epoch changes. It returns false, without parking, when that has already happened,
// so a fetch never sleeps through data that arrived while it was reading.
func (p *Partition) Park(w *Waiter, seenHW int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hw.Load() != seenHW || !p.mu.leader {
		return false
	}
	if p.mu.waiters == nil {
		p.mu.waiters = make(map[*Waiter]struct{})
	}
	p.mu.waiters[w] = struct{}{}
	return true
}

// Unpark removes w, when its fetch ends by timeout or otherwise.
func (p *Partition) Unpark(w *Waiter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.mu.waiters, w)
}

// IsSequenceError reports whether err is an idempotence check that failed.
func IsSequenceError(err error) bool {
	var se *SequenceError
	return errors.As(err, &se)
}
