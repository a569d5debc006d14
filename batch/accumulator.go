package batch

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// The producer accumulator.
//
// A producer hands records to the accumulator one at a time; the accumulator
// groups them into one open batch per partition and hands whole batches to the
// sender, which owns the network. It exists so that many small Produce calls
// become few large requests (batch.size, linger.ms), compressed once per batch
// (compression.type), while the memory all of this holds stays under
// buffer.memory: a producer that outruns its brokers blocks in Append, it does
// not grow without bound.
//
// Life of a batch:
//
//	open      records are appended (Append, TryAppend); one per partition
//	sealed    no more appends: it reached batch.size, or the next record
//	          did not fit; waiting for the sender
//	drained   Drain handed it to the sender, encoded and compressed; the
//	          sender sends it, maybe several times
//	released  the sender is done with it (acknowledged or failed); its
//	          memory returns to buffer.memory and its buffers to the pools
//
// Each partition's batches form a queue, oldest first, whose last batch may
// be open. Batches stay here until the sender can send them: the sender asks
// Ready which partitions have a batch ready, and Drain takes batches for one
// broker (node) only when that broker can take a request. So a batch goes on
// filling while the brokers are busy, and a batch that waits, waits here,
// where delivery.timeout.ms (Expire) and Flush see it.
//
// A partition's oldest batch is ready when it is sealed (full), has waited
// linger.ms, or at once while a Flush is in progress, after Close, or while an
// Append is blocked for memory (sending is the only way memory comes back).
// Drain, like Kafka's RecordAccumulator, visits the node's partitions in a
// fixed order starting where its last drain for that node stopped (Kafka's
// drainIndex), and takes the oldest batch of each (ready or not: it rides in a
// request that goes anyway) until the request is full. So every partition gets
// its turn: a partition's oldest batch is taken within one round of drains
// over the node's partitions once the node is being drained. Compression
// happens in Drain, on the sender's goroutine, so producers never pay for it.
//
// Bytes: a record's key, value and headers are copied once, by Append, into
// the open batch's builder, behind room kept for the batch header. Without
// compression Drain finishes the batch there (header and CRC; the CRC of a
// large batch's records runs as they are appended, while they are in the
// cache) and the builder's buffer becomes the batch, with no second copy;
// Gregor's client then writes it to the socket from where it lies (writev).
// With compression Drain compresses into a buffer of its own.
//
// Concurrency: one mutex guards all state (a `mu struct`). Append, TryAppend,
// Flush and Release may be called from any goroutine; Ready, Drain, Expire and
// DrainAll from one goroutine at a time (the sender). Encoding in Drain runs
// outside the lock.
//
// Memory accounting: an open batch holds the buffer it was given, batch.size
// (or its one larger record; never more than buffer.memory), as the Java
// client's RecordAccumulator takes it from its BufferPool, and its encoded
// size once drained. Compression can make a batch a few bytes larger than
// its records; that excess is counted
// but never waited for, so buffer.memory may be exceeded by a codec's framing
// overhead per batch. Idle buffers kept for reuse are outside the count and
// bounded separately, as the Java client's BufferPool does: at most
// buffer.memory bytes of them, none larger than twice batch.size.

// Millis is a setting in milliseconds as a Duration, saturating rather than
// overflowing: Java's max.block.ms=Long.MAX_VALUE, "block for ever", must
// not become a negative wait.
func Millis(ms int) time.Duration {
	if ms > math.MaxInt64/int(time.Millisecond) {
		return math.MaxInt64
	}
	return time.Duration(ms) * time.Millisecond
}

// AccumulatorConfig configures an Accumulator. The names are the Java
// producer's.
type AccumulatorConfig struct {
	// BatchSize is batch.size: a batch is closed when adding a record would
	// take its uncompressed size past it. A record larger than BatchSize gets
	// a batch of its own.
	BatchSize int
	// LingerMs is linger.ms: how long an open batch waits for more records
	// before it is ready to send.
	LingerMs int
	// BufferMemory is buffer.memory: the most bytes held in batches not yet
	// released, open or drained.
	BufferMemory int64
	// MaxBlockMs is max.block.ms: how long Append waits for memory before it
	// fails with ErrBufferFull.
	MaxBlockMs int
	// CompressionType is compression.type: the codec batches are written with.
	CompressionType Codec
	// CompressionLevel is CompressionType's level, on Kafka's scale (the
	// producer's compression.<codec>.level); 0 is the codec's default.
	CompressionLevel int
}

// DefaultAccumulatorConfig returns the Java producer's defaults.
func DefaultAccumulatorConfig() AccumulatorConfig {
	return AccumulatorConfig{
		BatchSize:       16384,
		LingerMs:        5,
		BufferMemory:    32 << 20,
		MaxBlockMs:      60000,
		CompressionType: CodecNone,
	}
}

// Validate reports every bad field with its value.
func (c AccumulatorConfig) Validate() error {
	var errs []error
	if c.BatchSize <= 0 {
		errs = append(errs, fmt.Errorf("batch.size = %d: must be > 0", c.BatchSize))
	}
	if c.LingerMs < 0 {
		errs = append(errs, fmt.Errorf("linger.ms = %d: must be >= 0", c.LingerMs))
	}
	if c.BufferMemory < int64(HeaderSize)+1 {
		errs = append(errs, fmt.Errorf("buffer.memory = %d: must hold at least one batch (> %d)", c.BufferMemory, HeaderSize))
	}
	if c.MaxBlockMs < 0 {
		errs = append(errs, fmt.Errorf("max.block.ms = %d: must be >= 0", c.MaxBlockMs))
	}
	if !c.CompressionType.Valid() {
		errs = append(errs, fmt.Errorf("compression.type = %d: not a codec Kafka defines", int8(c.CompressionType)))
	} else if c.CompressionLevel != 0 {
		if err := CheckLevel(c.CompressionType, c.CompressionLevel); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

var (
	// ErrBufferFull is returned by Append when buffer.memory stayed full for
	// max.block.ms: the brokers do not take records as fast as they come.
	ErrBufferFull = errors.New("batch: buffer.memory exhausted")
	// ErrAccumulatorClosed is returned by Append after Close.
	ErrAccumulatorClosed = errors.New("batch: accumulator closed")
)

// accPoolMin is the fewest batch structs the accumulator keeps for reuse
// whatever buffer.memory is.
const accPoolMin = 64

// ProducerBatch is one batch of one partition on its way through a producer.
// D is the caller's data for each record (typically its callback), kept in
// record order so that Data[i] belongs to offset baseOffset+i.
//
// A ProducerBatch belongs to the accumulator until Drain returns it, then to
// the sender until Release, after which it must not be touched: the
// accumulator reuses it.
type ProducerBatch[P comparable, D any] struct {
	// Partition is the partition the batch was appended for.
	Partition P
	// Data holds one entry per record, in order.
	Data []D
	// Err is set by Drain when the batch could not be encoded; such a batch
	// must be failed, not sent.
	Err error

	created      time.Time
	builder      *Builder // while open or sealed
	encoded      []byte   // once drained
	uncompressed int      // the encoded batch's size without compression
	reserved     int64    // bytes of buffer.memory this batch holds

	prev, next *ProducerBatch[P, D] // the accumulator's list of unreleased batches
	flushes    []*flushWait         // Flush calls waiting for this batch
}

// Records is the number of records in the batch.
func (b *ProducerBatch[P, D]) Records() int { return len(b.Data) }

// Created is when the batch's first record was appended: delivery.timeout.ms
// counts from here.
func (b *ProducerBatch[P, D]) Created() time.Time { return b.created }

// Bytes is the encoded RecordBatch, valid from Drain until Release.
func (b *ProducerBatch[P, D]) Bytes() []byte { return b.encoded }

// UncompressedSize is what Bytes would be without compression, from Drain
// on: with len(Bytes()), what the codec saved.
func (b *ProducerBatch[P, D]) UncompressedSize() int { return b.uncompressed }

// SetProducer rewrites the idempotence fields of the encoded batch and its
// CRC, which covers them. A producer assigns sequence numbers when it first
// sends a batch, not when it builds it, so that a batch retried after an
// epoch bump can be renumbered without being rebuilt.
func (b *ProducerBatch[P, D]) SetProducer(id int64, epoch int16, baseSequence int32) {
	h := Header(b.encoded)
	if len(h) < HeaderSize {
		return
	}
	if h.ProducerID() == id && h.ProducerEpoch() == epoch && h.BaseSequence() == baseSequence {
		return
	}
	binary.BigEndian.PutUint64(h[offProducerID:], uint64(id))
	binary.BigEndian.PutUint16(h[offProducerEpoch:], uint16(epoch))
	binary.BigEndian.PutUint32(h[offBaseSequence:], uint32(baseSequence))
	h.SetCRC()
}

// flushWait is one Flush call waiting for the batches that existed when it
// began.
type flushWait struct {
	remaining int
	done      chan struct{}
}

// accPartition is one partition's queue of batches not yet drained: sealed
// ones oldest first, then the open one.
type accPartition[P comparable, D any] struct {
	p P
	// slot is the partition's place in the accumulator's fixed order (the
	// order partitions first got a record), which drains rotate through.
	slot   int
	open   *ProducerBatch[P, D]
	sealed batchQueue[P, D]
}

// head is the partition's oldest undrained batch, nil when it has none.
func (q *accPartition[P, D]) head() *ProducerBatch[P, D] {
	if b := q.sealed.first(); b != nil {
		return b
	}
	return q.open
}

// popHead removes and returns the oldest undrained batch.
func (q *accPartition[P, D]) popHead() *ProducerBatch[P, D] {
	if b := q.sealed.pop(); b != nil {
		return b
	}
	b := q.open
	q.open = nil
	return b
}

// batchQueue is a FIFO of batches that reuses its backing array: a partition
// that fills many batches while its broker is busy must not make every drain
// shift or reallocate the rest.
type batchQueue[P comparable, D any] struct {
	buf   []*ProducerBatch[P, D]
	start int
}

func (q *batchQueue[P, D]) len() int { return len(q.buf) - q.start }

func (q *batchQueue[P, D]) first() *ProducerBatch[P, D] {
	if q.start == len(q.buf) {
		return nil
	}
	return q.buf[q.start]
}

func (q *batchQueue[P, D]) push(b *ProducerBatch[P, D]) {
	if q.start > 0 && len(q.buf) == cap(q.buf) {
		n := copy(q.buf, q.buf[q.start:])
		clear(q.buf[n:])
		q.buf, q.start = q.buf[:n], 0
	}
	q.buf = append(q.buf, b)
}

func (q *batchQueue[P, D]) pop() *ProducerBatch[P, D] {
	if q.start == len(q.buf) {
		return nil
	}
	b := q.buf[q.start]
	q.buf[q.start] = nil
	q.start++
	if q.start == len(q.buf) {
		q.buf, q.start = q.buf[:0], 0
	}
	return b
}

// Pending is one partition holding batches that are not drained, as Ready
// reports it.
type Pending[P comparable] struct {
	Partition P
	// Ready is whether its oldest batch may be sent now: it is full, it has
	// waited linger.ms, or the accumulator is flushing, closed, or out of
	// memory with an Append waiting.
	Ready bool
}

// Accumulator collects records into per-partition batches for a producer. P
// identifies a partition (the accumulator knows nothing else about it) and D
// is the caller's per-record data.
type Accumulator[P comparable, D any] struct {
	cfg      AccumulatorConfig
	opts     BuilderOptions
	linger   time.Duration
	maxBlock time.Duration
	now      func() time.Time
	// wake has room for one signal: the sender needs to know that
	// something changed, not how often.
	wake chan struct{}

	mu struct {
		sync.Mutex
		parts map[P]*accPartition[P, D]
		// order holds every partition by slot: the fixed order Ready
		// reports partitions in and Drain rotates through.
		order []*accPartition[P, D]
		// drainFrom is, per node, the slot its next Drain starts at.
		drainFrom map[int32]int
		slots     []int // Drain's scratch
		used      int64
		waiters   int           // Appends blocked for memory
		freed     chan struct{} // closed (and replaced) when memory is released and someone waits
		flushing  int
		closed    bool
		// head and tail of the unreleased batches, oldest first, so that
		// Flush can find every batch that exists when it starts.
		head, tail *ProducerBatch[P, D]

		freeBatches  []*ProducerBatch[P, D]
		freeBuilders []*Builder
		freeBufs     [][]byte
		pooledBytes  int64 // capacity of freeBuilders and freeBufs
	}
	maxFreeBatches int
}

// NewAccumulator returns an empty accumulator. now is its clock (time.Now
// when nil): batch creation and linger.ms are measured with it, so tests can
// drive linger with a fake clock.
func NewAccumulator[P comparable, D any](cfg AccumulatorConfig, now func() time.Time) (*Accumulator[P, D], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	a := &Accumulator[P, D]{
		cfg:      cfg,
		linger:   Millis(cfg.LingerMs),
		maxBlock: Millis(cfg.MaxBlockMs),
		now:      now,
		wake:     make(chan struct{}, 1),
	}
	a.maxFreeBatches = max(accPoolMin, int(cfg.BufferMemory/int64(cfg.BatchSize)))
	a.opts = DefaultBuilderOptions()
	a.opts.Codec, a.opts.Level = cfg.CompressionType, cfg.CompressionLevel
	a.mu.parts = make(map[P]*accPartition[P, D])
	a.mu.drainFrom = make(map[int32]int)
	a.mu.freed = make(chan struct{})
	return a, nil
}

// Config returns the accumulator's configuration.
func (a *Accumulator[P, D]) Config() AccumulatorConfig { return a.cfg }

// Wakeup is signalled whenever Drain may have something new to do: a batch
// was sealed or opened (a new linger deadline), a flush began, an Append is
// waiting for memory, or the accumulator closed.
func (a *Accumulator[P, D]) Wakeup() <-chan struct{} { return a.wake }

func (a *Accumulator[P, D]) signal() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// Append adds a record to p's open batch, opening a new batch when there is
// none or the record does not fit. When buffer.memory is full it blocks until
// the sender releases batches, ctx ends, or max.block.ms passes (ErrBufferFull).
// A record that alone exceeds buffer.memory fails at once with ErrTooLarge.
// The key, value and header bytes are copied.
func (a *Accumulator[P, D]) Append(ctx context.Context, p P, timestampMs int64, key, value []byte, headers []RecordHeader, d D) error {
	var timer *time.Timer
	a.mu.Lock()
	for {
		if a.mu.closed {
			a.mu.Unlock()
			stopTimer(timer)
			return ErrAccumulatorClosed
		}
		ok, err := a.appendLocked(p, timestampMs, key, value, headers, d, true)
		if ok || err != nil {
			a.mu.Unlock()
			stopTimer(timer)
			return err
		}
		// Out of memory: wait for a release. The timer starts at the first
		// wait, so Appends that never wait never create one.
		if timer == nil {
			timer = time.NewTimer(a.maxBlock)
		}
		freed := a.mu.freed
		a.mu.waiters++
		used := a.mu.used
		a.mu.Unlock()
		a.signal() // everything is ready now: sending frees memory
		var werr error
		select {
		case <-freed:
		case <-ctx.Done():
			werr = fmt.Errorf("%w: waiting for memory: %w", ErrBufferFull, ctx.Err())
		case <-timer.C:
			werr = fmt.Errorf("%w: waited max.block.ms=%d with %d of buffer.memory=%d bytes in use",
				ErrBufferFull, a.cfg.MaxBlockMs, used, a.cfg.BufferMemory)
		}
		a.mu.Lock()
		a.mu.waiters--
		if werr != nil {
			a.mu.Unlock()
			stopTimer(timer)
			return werr
		}
	}
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}

// TryAppend adds the record to p's open batch if there is one with room for
// it and memory for it is free now; it never opens a batch and never blocks.
// A sticky partitioner (KIP-480) uses it: a record that would open a new batch
// is the moment to move to another partition.
func (a *Accumulator[P, D]) TryAppend(p P, timestampMs int64, key, value []byte, headers []RecordHeader, d D) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.mu.closed {
		return false
	}
	ok, _ := a.appendLocked(p, timestampMs, key, value, headers, d, false)
	return ok
}

// appendLocked appends if memory allows, reporting false when the caller must
// wait for memory (or, without mayOpen, when a new batch would be needed).
func (a *Accumulator[P, D]) appendLocked(p P, ts int64, key, value []byte, headers []RecordHeader, d D, mayOpen bool) (bool, error) {
	q := a.mu.parts[p]
	if q == nil {
		if !mayOpen {
			return false, nil
		}
		q = &accPartition[P, D]{p: p, slot: len(a.mu.order)}
		a.mu.parts[p] = q
		a.mu.order = append(a.mu.order, q)
	}
	if b := q.open; b != nil {
		size := b.builder.SizeWith(ts, key, value, headers)
		if size <= a.cfg.BatchSize {
			// The batch holds its reservation from its opening (a
			// whole batch.size, unless buffer.memory is smaller).
			need := max(int64(size)-b.reserved, 0)
			if a.mu.used+need > a.cfg.BufferMemory {
				return false, nil
			}
			b.builder.Add(ts, key, value, headers)
			b.Data = append(b.Data, d)
			b.reserved += need
			a.mu.used += need
			if size == a.cfg.BatchSize {
				a.sealLocked(q)
			}
			return true, nil
		}
		if !mayOpen && b.builder.Records() > 0 {
			// The record does not fit: the batch is as full as it gets
			// and goes now, not after linger.ms, as Java's
			// closeForRecordAppends makes it ready; the sticky
			// partitioner moves on to another partition.
			a.sealLocked(q)
		}
	}
	if !mayOpen {
		return false, nil
	}
	r := Record{Key: key, Value: value, Headers: headers}
	recordNeed := int64(HeaderSize + RecordSize(&r))
	if recordNeed > a.cfg.BufferMemory {
		return false, fmt.Errorf("%w: a record of %d bytes exceeds buffer.memory=%d", ErrTooLarge, recordNeed, a.cfg.BufferMemory)
	}
	// A new batch reserves the buffer it is given, batch.size, as Java's
	// RecordAccumulator takes max(batch.size, record size) from its pool:
	// counting only the bytes written let open batches on many partitions
	// hold many times buffer.memory.
	need := min(max(int64(a.cfg.BatchSize), recordNeed), a.cfg.BufferMemory)
	if a.mu.used+need > a.cfg.BufferMemory {
		return false, nil
	}
	if q.open != nil {
		a.sealLocked(q)
	}
	b := a.newBatchLocked(p)
	b.builder.Add(ts, key, value, headers)
	b.Data = append(b.Data, d)
	b.reserved = need
	a.mu.used += need
	q.open = b
	if recordNeed >= int64(a.cfg.BatchSize) {
		a.sealLocked(q) // a record of batch.size or more travels alone
	} else {
		a.signal() // a new linger deadline
	}
	return true, nil
}

func (a *Accumulator[P, D]) sealLocked(q *accPartition[P, D]) {
	q.sealed.push(q.open)
	q.open = nil
	a.signal()
}

func (a *Accumulator[P, D]) newBatchLocked(p P) *ProducerBatch[P, D] {
	var b *ProducerBatch[P, D]
	if n := len(a.mu.freeBatches); n > 0 {
		b = a.mu.freeBatches[n-1]
		a.mu.freeBatches[n-1] = nil
		a.mu.freeBatches = a.mu.freeBatches[:n-1]
	} else {
		b = new(ProducerBatch[P, D])
	}
	b.Partition = p
	b.created = a.now()
	if n := len(a.mu.freeBuilders); n > 0 {
		b.builder = a.mu.freeBuilders[n-1]
		a.mu.freeBuilders[n-1] = nil
		a.mu.freeBuilders = a.mu.freeBuilders[:n-1]
		a.mu.pooledBytes -= int64(cap(b.builder.buf))
	} else {
		b.builder = new(Builder)
	}
	if cap(b.builder.buf) < a.cfg.BatchSize {
		// Without compression a drained batch takes its builder's buffer
		// with it (TakeBatch), and an idle one comes back through
		// Release: reuse it, or make one sized for a full batch at once
		// rather than grown by doubling.
		if n := len(a.mu.freeBufs); n > 0 && cap(a.mu.freeBufs[n-1]) >= a.cfg.BatchSize {
			b.builder.buf = a.mu.freeBufs[n-1][:0]
			a.mu.freeBufs[n-1] = nil
			a.mu.freeBufs = a.mu.freeBufs[:n-1]
			a.mu.pooledBytes -= int64(cap(b.builder.buf))
		} else {
			b.builder.buf = make([]byte, 0, a.cfg.BatchSize)
		}
	}
	b.builder.Reset(a.opts)
	// Append to the list of unreleased batches.
	b.prev, b.next = a.mu.tail, nil
	if a.mu.tail != nil {
		a.mu.tail.next = b
	} else {
		a.mu.head = b
	}
	a.mu.tail = b
	return b
}

// Ready appends to dst every partition that holds undrained batches, in the
// accumulator's fixed partition order, saying whether its oldest batch is
// ready at now. It returns when the first batch not ready yet will be ready by
// linger.ms (the zero time when there is none) and the creation time of the
// oldest undrained batch (zero when there is none), for delivery.timeout.ms.
// Call it from the draining goroutine.
func (a *Accumulator[P, D]) Ready(now time.Time, dst []Pending[P]) (out []Pending[P], next, oldest time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	all := a.mu.flushing > 0 || a.mu.closed || a.mu.waiters > 0
	for _, q := range a.mu.order {
		b := q.head()
		if b == nil {
			continue
		}
		ready := all || q.sealed.len() > 0
		if !ready {
			at := b.created.Add(a.linger)
			if ready = !now.Before(at); !ready && (next.IsZero() || at.Before(next)) {
				next = at
			}
		}
		if oldest.IsZero() || b.created.Before(oldest) {
			oldest = b.created
		}
		dst = append(dst, Pending[P]{Partition: q.p, Ready: ready})
	}
	return dst, next, oldest
}

// Stamp gives the producer id, epoch and base sequence a batch of records
// records for partition p is written with. An idempotent producer numbers a
// batch as it first sends it; writing the numbers as the batch is encoded
// spares rewriting them, and the CRC, afterwards (SetProducer).
type Stamp[P comparable] func(p P, records int) (producerID int64, epoch int16, baseSequence int32)

// Drain takes batches for one request to node: the oldest batch of each
// partition in parts that has one, visiting parts in the accumulator's fixed
// order and starting where the last Drain for node stopped, until the next
// batch would take the total past maxBytes (the first is taken whatever its
// size). parts are the partitions the caller may send to node now (those it
// leads, less any the caller holds back), typically from Ready. The batches
// are appended to dst encoded and compressed, with the producer fields stamp
// gives (called once per batch, in order, on the calling goroutine; nil
// writes none: -1); one whose encoding failed has Err set. Call it from the
// draining goroutine.
func (a *Accumulator[P, D]) Drain(node int32, parts []P, maxBytes int, stamp Stamp[P], dst []*ProducerBatch[P, D]) []*ProducerBatch[P, D] {
	if len(parts) == 0 {
		return dst
	}
	start := len(dst)
	a.mu.Lock()
	// Visit by slot: parts may come in any order and hold partitions that
	// have nothing, but the rotation must follow one fixed order.
	slots := a.mu.slots[:0]
	for _, tp := range parts {
		if q := a.mu.parts[tp]; q != nil && q.head() != nil {
			slots = append(slots, q.slot)
		}
	}
	slices.Sort(slots)
	slots = slices.Compact(slots)
	if len(slots) > 0 {
		from := a.mu.drainFrom[node]
		k, _ := slices.BinarySearch(slots, from)
		size, last := 0, -1
		for i := range slots {
			slot := slots[(k+i)%len(slots)]
			q := a.mu.order[slot]
			b := q.head()
			est := b.builder.UncompressedSize()
			if len(dst) > start && size+est > maxBytes {
				last = slot - 1 // the request is full: this one goes first next time
				break
			}
			size += est
			dst = append(dst, q.popHead())
			last = slot
		}
		a.mu.drainFrom[node] = last + 1
	}
	a.mu.slots = slots[:0]
	drained := dst[start:]
	for _, b := range drained {
		if a.cfg.CompressionType == CodecNone {
			break // each batch is written in its builder's buffer
		}
		if n := len(a.mu.freeBufs); n > 0 {
			b.encoded = a.mu.freeBufs[n-1]
			a.mu.freeBufs[n-1] = nil
			a.mu.freeBufs = a.mu.freeBufs[:n-1]
			a.mu.pooledBytes -= int64(cap(b.encoded))
		}
	}
	a.mu.Unlock()
	if len(drained) == 0 {
		return dst
	}

	// Compression happens here, outside the lock, on the sender's goroutine.
	// Without it, the batch is finished in place: the header goes into the
	// room its builder keeps in front of the records, and the builder's
	// buffer becomes the batch's, with no copy.
	for _, b := range drained {
		if stamp != nil {
			o := &b.builder.opts // reset with the builder for its next batch
			o.ProducerID, o.ProducerEpoch, o.BaseSequence = stamp(b.Partition, len(b.Data))
		}
		if b.encoded == nil && a.cfg.CompressionType != CodecNone {
			b.encoded = make([]byte, 0, b.builder.UncompressedSize())
		}
		b.uncompressed = b.builder.UncompressedSize() // before TakeBatch takes the buffer
		out, err := b.builder.TakeBatch(b.encoded)
		if err != nil {
			b.Err = err
			out = out[:0]
		}
		b.encoded = out
	}

	a.mu.Lock()
	shrunk := false
	for _, b := range drained {
		size := int64(len(b.encoded))
		if size < b.reserved {
			shrunk = true
		}
		a.mu.used += size - b.reserved
		b.reserved = size
		a.putBuilderLocked(b.builder)
		b.builder = nil
	}
	if shrunk {
		a.wakeWaitersLocked()
	}
	a.mu.Unlock()
	return dst
}

// Queued appends to dst, for each of parts, how many of its batches are
// waiting to be drained (sealed ones and the open one).
func (a *Accumulator[P, D]) Queued(parts []P, dst []int) []int {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range parts {
		n := 0
		if q := a.mu.parts[p]; q != nil {
			n = q.sealed.len()
			if q.open != nil {
				n++
			}
		}
		dst = append(dst, n)
	}
	return dst
}

// Expire takes, unencoded, every undrained batch created at or before
// deadline (now minus delivery.timeout.ms), for the caller to fail: they
// waited too long for a broker to take them. Call it from the draining
// goroutine.
func (a *Accumulator[P, D]) Expire(deadline time.Time, dst []*ProducerBatch[P, D]) []*ProducerBatch[P, D] {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, q := range a.mu.order {
		// A partition's batches are oldest first: stop at the first
		// younger one.
		for b := q.head(); b != nil && !b.created.After(deadline); b = q.head() {
			dst = append(dst, q.popHead())
		}
	}
	return dst
}

// DrainAll appends every batch, ready or not, to dst without encoding it: for
// a producer that must fail everything it holds (a fatal error, a forced
// close). Call it from the draining goroutine.
func (a *Accumulator[P, D]) DrainAll(dst []*ProducerBatch[P, D]) []*ProducerBatch[P, D] {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, q := range a.mu.order {
		for b := q.popHead(); b != nil; b = q.popHead() {
			dst = append(dst, b)
		}
	}
	return dst
}

// Release returns a drained batch's memory and buffers once the sender is done
// with it, acknowledged or failed, and completes the Flush calls waiting for
// it. b must not be used afterwards.
func (a *Accumulator[P, D]) Release(b *ProducerBatch[P, D]) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.mu.used -= b.reserved
	b.reserved = 0
	if b.prev != nil {
		b.prev.next = b.next
	} else {
		a.mu.head = b.next
	}
	if b.next != nil {
		b.next.prev = b.prev
	} else {
		a.mu.tail = b.prev
	}
	b.prev, b.next = nil, nil
	for _, f := range b.flushes {
		if f.remaining--; f.remaining == 0 {
			close(f.done)
		}
	}
	clear(b.flushes)
	b.flushes = b.flushes[:0]
	if b.builder != nil {
		a.putBuilderLocked(b.builder)
		b.builder = nil
	}
	if c := int64(cap(b.encoded)); c > 0 && c <= 2*int64(a.cfg.BatchSize)+HeaderSize && a.mu.pooledBytes+c <= a.cfg.BufferMemory {
		a.mu.freeBufs = append(a.mu.freeBufs, b.encoded[:0])
		a.mu.pooledBytes += c
	}
	b.encoded = nil
	clear(b.Data)
	b.Data = b.Data[:0]
	b.Err = nil
	var zero P
	b.Partition = zero
	if cap(b.Data) <= 2*a.cfg.BatchSize && len(a.mu.freeBatches) < a.maxFreeBatches {
		a.mu.freeBatches = append(a.mu.freeBatches, b)
	}
	a.wakeWaitersLocked()
}

func (a *Accumulator[P, D]) putBuilderLocked(bl *Builder) {
	if c := int64(cap(bl.buf)); c <= 2*int64(a.cfg.BatchSize) && a.mu.pooledBytes+c <= a.cfg.BufferMemory {
		bl.Reset(a.opts)
		a.mu.freeBuilders = append(a.mu.freeBuilders, bl)
		a.mu.pooledBytes += c
	}
}

func (a *Accumulator[P, D]) wakeWaitersLocked() {
	if a.mu.waiters > 0 {
		close(a.mu.freed)
		a.mu.freed = make(chan struct{})
	}
}

// Flush makes every batch ready at once and waits until all the batches that
// exist when it is called have been released, or ctx ends. While a flush is in
// progress, batches opened meanwhile are ready at once too.
func (a *Accumulator[P, D]) Flush(ctx context.Context) error {
	a.mu.Lock()
	f := &flushWait{done: make(chan struct{})}
	for b := a.mu.head; b != nil; b = b.next {
		b.flushes = append(b.flushes, f)
		f.remaining++
	}
	if f.remaining == 0 {
		a.mu.Unlock()
		return nil
	}
	a.mu.flushing++
	a.mu.Unlock()
	a.signal()
	var err error
	select {
	case <-f.done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	a.mu.Lock()
	a.mu.flushing--
	a.mu.Unlock()
	return err
}

// Close stops Append (blocked calls return ErrAccumulatorClosed) and makes
// every batch ready. Drain and Release keep working, so a producer can send
// what it holds before it stops.
func (a *Accumulator[P, D]) Close() {
	a.mu.Lock()
	a.mu.closed = true
	a.wakeWaitersLocked()
	a.mu.Unlock()
	a.signal()
}

// Buffered is the number of bytes of buffer.memory in use.
func (a *Accumulator[P, D]) Buffered() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.mu.used
}

// Unreleased is the number of batches appended to and not yet released.
func (a *Accumulator[P, D]) Unreleased() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for b := a.mu.head; b != nil; b = b.next {
		n++
	}
	return n
}
