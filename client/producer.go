package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"gregor/batch"
)

// TopicPartition names one partition of one topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp TopicPartition) String() string { return fmt.Sprintf("%s-%d", tp.Topic, tp.Partition) }

// Record is a record to produce.
type Record struct {
	Topic string
	// Partition is the partition to write to; -1 (any negative value) lets
	// the partitioner choose. Note that the zero value, 0, is partition 0.
	Partition int32
	// Key and Value; nil is null. A record with a nil key is spread by the
	// sticky partitioner, one with a key (even empty) goes to murmur2(key).
	Key, Value []byte
	Headers    []batch.RecordHeader
	// Timestamp is the record's CreateTime; the zero time means now.
	Timestamp time.Time
}

// RecordMetadata is where a record was written.
type RecordMetadata struct {
	Topic     string
	Partition int32
	// Offset is the record's offset, -1 when unknown: with acks=0, or for
	// a resent batch the broker had written but no longer remembered (it
	// answered OUT_OF_ORDER_SEQUENCE_NUMBER, and later batches of the
	// partition were acknowledged).
	Offset int64
	// Timestamp is the record's timestamp: its CreateTime, or the broker's
	// LogAppendTime for topics with message.timestamp.type=LogAppendTime.
	Timestamp time.Time
}

// ProducerStats are running totals, read with atomic loads: cheap enough for
// a benchmark harness to sample while the producer runs.
type ProducerStats struct {
	// RecordsSent are records acknowledged by the broker (written, for
	// acks=0).
	RecordsSent int64
	// RecordErrors are records whose callback got an error.
	RecordErrors int64
	// Batches and Bytes are the acknowledged batches and their encoded
	// (compressed) size; UncompressedBytes is what those batches would
	// have been without compression.
	Batches           int64
	Bytes             int64
	UncompressedBytes int64
	// Requests are Produce requests sent, retries included.
	Requests int64
	// Retries are batch resends.
	Retries int64
	// BufferedBytes is the part of buffer.memory in use now.
	BufferedBytes int64
}

var (
	// ErrDeliveryTimeout fails records not acknowledged within
	// delivery.timeout.ms of their batch's creation.
	ErrDeliveryTimeout = errors.New("client: delivery.timeout.ms expired")
	// ErrBufferFull is returned by Produce when buffer.memory stayed full
	// for max.block.ms.
	ErrBufferFull = batch.ErrBufferFull
	// ErrRecordTooLarge is returned by Produce for a record larger than
	// max.request.size or buffer.memory; it unwraps to MESSAGE_TOO_LARGE.
	ErrRecordTooLarge = fmt.Errorf("client: record too large: %w", kerr.MessageTooLarge)
	// ErrInvalidTopic is returned by Produce for an empty or illegal topic
	// name; it unwraps to INVALID_TOPIC_EXCEPTION.
	ErrInvalidTopic = fmt.Errorf("client: invalid topic: %w", kerr.InvalidTopicException)
)

// Option adjusts a Producer or Consumer.
type Option func(*options)

type options struct {
	log *slog.Logger
	now func() time.Time
	// onFirstSend, when set, is told when each batch is first put into a
	// Produce request: benchmarks measure how long batches wait with it.
	// It runs on the sender's goroutine and must be quick.
	onFirstSend func(tp TopicPartition, created, now time.Time)
}

// WithLogger sets where the client logs (nowhere by default).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithClock replaces time.Now for the timestamps of records produced without
// one, so tests can pin them. Timing (linger.ms, backoffs, timeouts) stays on
// the real clock: a clock that does not move must not stall the producer.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

func buildOptions(opts []Option) options {
	o := options{}
	for _, f := range opts {
		f(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.now == nil {
		o.now = time.Now
	}
	return o
}

// recordMeta is what the producer keeps per record until its callback runs.
type recordMeta struct {
	cb   func(RecordMetadata, error)
	tsMs int64
}

type producerBatch = batch.ProducerBatch[TopicPartition, recordMeta]

// Producer sends records to a Kafka-compatible cluster. Its methods are safe
// for concurrent use. See the package documentation for its design.
type Producer struct {
	cfg      ProducerConfig
	acks     int16
	log      *slog.Logger
	now      func() time.Time
	maxBlock time.Duration

	cl          *cluster
	acc         *batch.Accumulator[TopicPartition, recordMeta]
	snd         *sender
	onFirstSend func(tp TopicPartition, created, now time.Time)

	sticky stickyPartitions
	rr     roundRobin

	closed atomic.Bool
	fatal  atomic.Pointer[error]
	// The first Close shuts down; the others wait for closeDone, after
	// which closeErr is the first's error.
	closing   atomic.Bool
	closeDone chan struct{}
	closeErr  error

	// The callback goroutine's queue: batches completed by the sender, in
	// order. Bounded by buffer.memory, since each batch in it still holds
	// its memory until its callbacks have run.
	cbq struct {
		sync.Mutex
		batches []*pbatch
	}
	cbSignal chan struct{}
	cbStop   chan struct{}
	cbDone   chan struct{}
	cbGoid   atomic.Uint64 // the callback goroutine's id (goid)

	stats struct {
		recordsSent, recordErrors, batches, bytes, uncompressed, requests, retries atomic.Int64
	}
}

// NewProducer validates cfg and starts a producer: its metadata goroutine,
// its sender and its callback goroutine. It does not wait for the cluster;
// the first Produce to a topic waits (up to max.block.ms) for its metadata.
func NewProducer(cfg ProducerConfig, opts ...Option) (*Producer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	acks, _ := parseAcks(cfg.Acks)
	codec, _ := batch.ParseCodec(cfg.CompressionType)
	p := &Producer{cfg: cfg, acks: acks, log: o.log, now: o.now, onFirstSend: o.onFirstSend,
		maxBlock: batch.Millis(cfg.MaxBlockMs),
		cbSignal: make(chan struct{}, 1), cbStop: make(chan struct{}), cbDone: make(chan struct{}),
		closeDone: make(chan struct{})}
	var err error
	p.acc, err = batch.NewAccumulator[TopicPartition, recordMeta](batch.AccumulatorConfig{
		BatchSize:        cfg.BatchSize,
		LingerMs:         cfg.LingerMs,
		BufferMemory:     cfg.BufferMemory,
		MaxBlockMs:       cfg.MaxBlockMs,
		CompressionType:  codec,
		CompressionLevel: cfg.CompressionLevels.Of(codec),
	}, nil)
	if err != nil {
		return nil, err
	}
	p.sticky.queued = p.acc.Queued
	p.cl = newCluster(clusterConfig{
		seeds: cfg.BootstrapServers,
		conn: connConfig{clientID: cfg.ClientID, requestTimeout: batch.Millis(cfg.RequestTimeoutMs),
			maxResponseBytes: defaultMaxResponseBytes, log: o.log},
		retryBackoff: batch.Millis(cfg.RetryBackoffMs),
		maxAge:       batch.Millis(cfg.MetadataMaxAgeMs),
		topicIdle:    batch.Millis(cfg.MetadataMaxIdleMs),
		now:          o.now,
		autoCreate:   true,
	}, o.log)
	p.snd = newSender(p)
	go p.snd.run()
	go p.runCallbacks()
	return p, nil
}

// Produce hands r to the producer and returns once it is buffered; cb runs
// later, exactly once, with where the record was written or why it was not.
// Callbacks run on the producer's callback goroutine, in order within each
// partition; a slow callback delays the others and, through buffer.memory,
// eventually Produce.
//
// Produce returns an error, and then never calls cb, only if the record
// cannot be buffered: the producer is closed or has failed, the topic is
// invalid or its metadata did not come within max.block.ms, the record is
// larger than max.request.size or buffer.memory, or buffer.memory stayed full
// for max.block.ms (ErrBufferFull). ctx bounds the wait as well.
//
// The key, value and headers are copied before Produce returns.
func (p *Producer) Produce(ctx context.Context, r *Record, cb func(RecordMetadata, error)) error {
	if p.closed.Load() {
		return ErrClosed
	}
	if err := p.fatal.Load(); err != nil {
		return *err
	}
	if r == nil {
		return errors.New("client: Produce of a nil record")
	}
	// A topic the metadata holds has a name the broker accepted: only
	// others need checking, and waiting for.
	var t *topicMeta
	if md := p.cl.snapshot(); md != nil {
		if tm := md.topics[r.Topic]; tm != nil && tm.err == nil && len(tm.parts) > max(int(r.Partition), 0) {
			t = tm
		}
	}
	if t == nil {
		if err := validateTopic(r.Topic); err != nil {
			return err
		}
	}
	if err := p.checkSize(r); err != nil {
		return err
	}
	if t == nil {
		return p.produceWaiting(ctx, r, cb)
	}
	return p.produce(ctx, t, r, cb)
}

// maxRecordOverhead bounds what a record without headers adds to its key and
// value in a batch: its length, attributes, timestamp and offset deltas, key
// and value lengths and header count, as varints.
const maxRecordOverhead = 5 + 1 + 10 + 5 + 5 + 5 + 1

// checkSize fails a record larger than max.request.size or buffer.memory
// with its batch header.
func (p *Producer) checkSize(r *Record) error {
	limit := min(int64(p.cfg.MaxRequestSize), p.cfg.BufferMemory)
	if len(r.Headers) == 0 && int64(batch.HeaderSize+maxRecordOverhead+len(r.Key)+len(r.Value)) <= limit {
		return nil // the common case, without the exact size
	}
	size := batch.HeaderSize + batch.RecordSize(&batch.Record{Key: r.Key, Value: r.Value, Headers: r.Headers})
	if size > p.cfg.MaxRequestSize {
		return fmt.Errorf("%w: %d bytes with its batch header, max.request.size is %d", ErrRecordTooLarge, size, p.cfg.MaxRequestSize)
	}
	if int64(size) > p.cfg.BufferMemory {
		return fmt.Errorf("%w: %d bytes with its batch header, buffer.memory is %d", ErrRecordTooLarge, size, p.cfg.BufferMemory)
	}
	return nil
}

// produceWaiting is Produce for a topic whose metadata is not known yet, or
// that has not the record's partition yet (added since the last refresh,
// as Java's waitOnMetadata waits for it): max.block.ms covers the wait for
// metadata and the wait for memory together, as in Java. Only this path
// pays for a timer.
func (p *Producer) produceWaiting(ctx context.Context, r *Record, cb func(RecordMetadata, error)) error {
	ctx, cancel := context.WithTimeout(ctx, p.maxBlock)
	defer cancel()
	t, err := p.cl.waitTopic(ctx, r.Topic, max(int(r.Partition)+1, 1))
	if err != nil {
		return err
	}
	return p.produce(ctx, t, r, cb)
}

// produce partitions r among t's partitions and appends it.
func (p *Producer) produce(ctx context.Context, t *topicMeta, r *Record, cb func(RecordMetadata, error)) error {
	t.markUsed()
	ts := r.Timestamp
	if ts.IsZero() {
		ts = p.now()
	}
	tsMs := ts.UnixMilli()
	d := recordMeta{cb: cb, tsMs: tsMs}
	tp := TopicPartition{Topic: r.Topic, Partition: r.Partition}
	switch {
	case r.Partition >= 0:
		if int(r.Partition) >= len(t.parts) {
			return fmt.Errorf("client: partition %d of topic %q does not exist (it has %d): %w",
				r.Partition, r.Topic, len(t.parts), kerr.UnknownTopicOrPartition)
		}
	case r.Key != nil && p.cfg.Partitioner == "default":
		tp.Partition = KeyPartition(r.Key, int32(len(t.parts)))
	case p.cfg.Partitioner == "round_robin":
		tp.Partition = p.rr.next(r.Topic, t)
	default:
		// KIP-480: stay on the current partition while its batch has room;
		// a record that would open a new batch moves the topic on.
		cur := p.sticky.current(r.Topic)
		if cur >= 0 && int(cur) < len(t.parts) {
			tp.Partition = cur
			if p.acc.TryAppend(tp, tsMs, r.Key, r.Value, r.Headers, d) {
				return nil
			}
		}
		tp.Partition = p.sticky.next(r.Topic, cur, t)
	}
	if err := p.acc.Append(ctx, tp, tsMs, r.Key, r.Value, r.Headers, d); err != nil {
		if errors.Is(err, batch.ErrAccumulatorClosed) {
			return ErrClosed
		}
		if errors.Is(err, batch.ErrTooLarge) {
			return fmt.Errorf("%w: %w", ErrRecordTooLarge, err)
		}
		return err
	}
	return nil
}

// validateTopic applies Kafka's rules for topic names.
func validateTopic(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > 249 {
		return fmt.Errorf("%w: %q", ErrInvalidTopic, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q has %q (legal: a-z A-Z 0-9 . _ -)", ErrInvalidTopic, name, c)
		}
	}
	return nil
}

// Flush sends every buffered record at once, ignoring linger.ms, and waits
// until the callbacks of all records produced before the call have run, or
// ctx ends. Called from a callback it returns ErrFlushInCallback at once:
// that callback's own record is among those it would wait for.
func (p *Producer) Flush(ctx context.Context) error {
	if p.inCallback() {
		return ErrFlushInCallback
	}
	if err := p.acc.Flush(ctx); err != nil {
		return err
	}
	if err := p.fatal.Load(); err != nil {
		return *err
	}
	return nil
}

// Close stops accepting records, flushes what is buffered, and stops. If ctx
// ends first, records not yet acknowledged fail with ErrClosed (their
// callbacks still run) and Close returns ctx's error. Close is idempotent: a
// later or concurrent call waits for the first (or for its own ctx) and
// returns the same error.
//
// Called from a callback, Close cannot wait for the callbacks: it would wait
// on itself. As Java's KafkaProducer overrides the timeout of such a close
// to 0, it then waits for nothing: records not yet acknowledged fail with
// ErrClosed (unless a Close begun elsewhere is still delivering them), their
// callbacks run once the calling one returns, and Close returns
// ErrCloseInCallback.
func (p *Producer) Close(ctx context.Context) error {
	if p.inCallback() {
		p.log.Warn("client: Close called from a produce callback: closing without waiting, as Java's producer does")
		if p.closing.CompareAndSwap(false, true) {
			ended, cancel := context.WithCancel(ctx)
			cancel()
			p.shutdown(ended)
			p.closeErr = ErrCloseInCallback
			close(p.closeDone)
		}
		return ErrCloseInCallback
	}
	if p.closing.CompareAndSwap(false, true) {
		p.closeErr = p.shutdown(ctx)
		close(p.closeDone)
	} else {
		select {
		case <-p.closeDone:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	select {
	case <-p.cbDone:
		return p.closeErr
	case <-ctx.Done():
		return cmp.Or(p.closeErr, ctx.Err())
	}
}

// shutdown stops the producer: it flushes what is buffered until ctx ends,
// fails what is left with ErrClosed, and stops the sender, the connections
// and then the callback goroutine once it has run every callback queued. It
// does not wait for the callbacks, so that it can run on their goroutine.
func (p *Producer) shutdown(ctx context.Context) error {
	p.closed.Store(true)
	p.acc.Close()
	err := p.acc.Flush(ctx)
	// Whatever the flush left (nothing, unless ctx ended) fails now.
	close(p.snd.stopCh)
	<-p.snd.done
	p.cl.close()
	p.snd.wg.Wait()
	close(p.cbStop)
	return err
}

// inCallback reports whether the caller is the callback goroutine.
func (p *Producer) inCallback() bool {
	id := p.cbGoid.Load()
	return id != 0 && goid() == id
}

// Stats returns the running totals.
func (p *Producer) Stats() ProducerStats {
	return ProducerStats{
		RecordsSent:       p.stats.recordsSent.Load(),
		RecordErrors:      p.stats.recordErrors.Load(),
		Batches:           p.stats.batches.Load(),
		Bytes:             p.stats.bytes.Load(),
		UncompressedBytes: p.stats.uncompressed.Load(),
		Requests:          p.stats.requests.Load(),
		Retries:           p.stats.retries.Load(),
		BufferedBytes:     p.acc.Buffered(),
	}
}

// pushCompleted queues completed batches, in order, for the callback
// goroutine.
func (p *Producer) pushCompleted(bs []*pbatch) {
	if len(bs) == 0 {
		return
	}
	p.cbq.Lock()
	p.cbq.batches = append(p.cbq.batches, bs...)
	p.cbq.Unlock()
	select {
	case p.cbSignal <- struct{}{}:
	default:
	}
}

// runCallbacks is the producer's callback goroutine: it runs each completed
// batch's callbacks in record order, then releases the batch's memory.
func (p *Producer) runCallbacks() {
	defer close(p.cbDone)
	p.cbGoid.Store(goid())
	var work []*pbatch
	for {
		stopping := false
		select {
		case <-p.cbSignal:
		case <-p.cbStop:
			stopping = true
		}
		for {
			p.cbq.Lock()
			work, p.cbq.batches = p.cbq.batches, work[:0]
			p.cbq.Unlock()
			if len(work) == 0 {
				break
			}
			for i, b := range work {
				p.complete(b)
				work[i] = nil
			}
		}
		if stopping {
			return
		}
	}
}

func (p *Producer) complete(b *pbatch) {
	pb := b.b
	tp := pb.Partition
	n := int64(pb.Records())
	if b.err != nil {
		p.stats.recordErrors.Add(n)
	} else {
		p.stats.recordsSent.Add(n)
		p.stats.batches.Add(1)
		p.stats.bytes.Add(int64(len(pb.Bytes())))
		p.stats.uncompressed.Add(int64(pb.UncompressedSize()))
	}
	for i := range pb.Data {
		d := &pb.Data[i]
		if d.cb == nil {
			continue
		}
		md := RecordMetadata{Topic: tp.Topic, Partition: tp.Partition, Offset: -1, Timestamp: time.UnixMilli(d.tsMs)}
		if b.err == nil {
			if b.baseOffset >= 0 {
				md.Offset = b.baseOffset + int64(i)
			}
			if b.appendTime >= 0 {
				md.Timestamp = time.UnixMilli(b.appendTime)
			}
		}
		d.cb(md, b.err)
	}
	p.acc.Release(pb)
}
