package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"gregor/batch"
)

// The franz-go (kgo) driver: --client franz.

func init() { RegisterDriver("franz", franzDriver{}) }

type franzDriver struct{}

// franzCodec maps compression.type and its level on Kafka's scale (0: the
// codec's default) to kgo's codec. kgo compresses with the libraries
// Gregor's client uses and takes their levels, so batch.LibraryLevel gives
// both clients the same library level (kgo's own lz4 default is the fast
// compressor, as Kafka's default level 9 is). The frames still differ
// beyond gzip: kgo writes lz4 in 4 MiB blocks where Gregor writes 64 KiB
// ones, and gives zstd a 64 KiB window where Gregor's is 1 MiB, so the
// same level compresses a little differently.
func franzCodec(name string, level int) (kgo.CompressionCodec, error) {
	if name == "" {
		name = "none"
	}
	c, err := batch.ParseCodec(name)
	if err != nil {
		return kgo.CompressionCodec{}, fmt.Errorf("compression.type %q: unknown codec", name)
	}
	var codec kgo.CompressionCodec
	switch c {
	case batch.CodecNone:
		return kgo.NoCompression(), nil
	case batch.CodecSnappy:
		return kgo.SnappyCompression(), nil
	case batch.CodecGzip:
		codec = kgo.GzipCompression()
	case batch.CodecLZ4:
		codec = kgo.Lz4Compression()
	case batch.CodecZstd:
		codec = kgo.ZstdCompression()
	}
	if err := batch.CheckLevel(c, level); level != 0 && err != nil {
		return kgo.CompressionCodec{}, fmt.Errorf("%s: %w", c.LevelConfig(), err)
	}
	return codec.WithLevel(batch.LibraryLevel(c, level)), nil
}

// franzProducerOpts translates Kafka's producer settings into kgo options.
// Differences from the Java client, which the report should be read with:
// kgo's batch limit (ProducerBatchMaxBytes) is a maximum where batch.size
// is a target. max.in.flight.requests.per.connection becomes kgo's
// MaxProduceRequestsInflightPerBroker without idempotence; with it, kgo
// keeps up to franzIdempotentInFlight produce requests in flight per
// broker and takes no other limit, so only that value is accepted there
// (Gregor's client, like Java's, honours any value up to 5): anything
// else would compare the clients at different depths of pipelining.
// max.request.size becomes kgo's
// BrokerMaxWriteBytes, the most bytes of one Produce request on the wire
// (kgo's default is 100 MiB): kgo counts the request's framing in it, where
// the Java client and Gregor's count the batches, a difference of some
// bytes per partition. kgo refuses a batch limit above it, so batch.size is
// capped at max.request.size, and it refuses a request limit below 1 KiB.
func franzProducerOpts(cfg ProducerConfig) ([]kgo.Opt, error) {
	s := cfg.Settings
	codec, err := franzCodec(s.CompressionType, s.Level())
	if err != nil {
		return nil, err
	}
	batchMax := s.BatchSize
	if s.MaxRequestSize > 0 {
		batchMax = min(batchMax, s.MaxRequestSize)
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Bootstrap...),
		kgo.ClientID(cfg.ClientID),
		kgo.ProducerLinger(time.Duration(s.LingerMs) * time.Millisecond),
		kgo.ProducerBatchMaxBytes(int32(batchMax)),
		kgo.ProducerBatchCompression(codec),
		// buffer.memory bounds the buffer; the record count limit is
		// set high enough never to be the one that binds first.
		kgo.MaxBufferedBytes(int(s.BufferMemory)),
		kgo.MaxBufferedRecords(1 << 20),
		kgo.ProduceRequestTimeout(time.Duration(s.RequestTimeoutMs) * time.Millisecond),
		kgo.RecordDeliveryTimeout(time.Duration(s.DeliveryTimeoutMs) * time.Millisecond),
		// Sticky for records without a key and murmur2 for keyed ones,
		// as Kafka's Java client did before KIP-794.
		kgo.RecordPartitioner(pinningPartitioner{kgo.StickyKeyPartitioner(nil)}),
		// Topics are created just before the load starts: a short
		// metadata age lets the client find their leaders quickly.
		kgo.MetadataMinAge(250 * time.Millisecond),
	}
	if s.MaxRequestSize > 0 { // 0: kgo's default
		opts = append(opts, kgo.BrokerMaxWriteBytes(int32(s.MaxRequestSize)))
	}
	switch s.Acks {
	case AcksAll:
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case AcksLeader:
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()))
	case AcksNone:
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()))
	}
	if s.EnableIdempotence {
		if s.Acks != AcksAll {
			return nil, errors.New("enable.idempotence=true needs acks=all")
		}
		if s.MaxInFlight != franzIdempotentInFlight {
			return nil, fmt.Errorf("max.in.flight.requests.per.connection=%d with enable.idempotence=true: franz-go keeps up to %d produce requests in flight per broker with idempotence and cannot be given another limit; set enable.idempotence: false to run it with %d",
				s.MaxInFlight, franzIdempotentInFlight, s.MaxInFlight)
		}
	} else {
		opts = append(opts, kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(s.MaxInFlight))
	}
	return opts, nil
}

// franzIdempotentInFlight is how many produce requests kgo keeps in flight
// per broker with idempotence: Kafka's limit for idempotent producers
// (the broker remembers five batches per producer and partition), once a
// broker has answered a Produce request of version 4 or later, which
// Gregor's brokers do. kgo's MaxProduceRequestsInflightPerBroker applies
// only without idempotence.
const franzIdempotentInFlight = 5

// checkProducerSettings refuses, before a run, settings kgo cannot
// honour.
func (franzDriver) checkProducerSettings(s ProducerSettings) error {
	_, err := franzProducerOpts(ProducerConfig{Settings: s})
	return err
}

func (franzDriver) NewProducer(_ context.Context, cfg ProducerConfig) (Producer, error) {
	opts, err := franzProducerOpts(cfg)
	if err != nil {
		return nil, err
	}
	p := &franzProducer{}
	opts = append(opts, kgo.WithHooks(&p.hooks), kgo.WithLogger(&p.hooks))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	p.cl = cl
	return p, nil
}

type franzProducer struct {
	cl    *kgo.Client
	hooks franzHooks
}

func (p *franzProducer) Produce(ctx context.Context, topic string, partition int32, key, value []byte, ts time.Time, done func(error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &kgo.Record{Topic: topic, Partition: partition, Key: key, Value: value, Timestamp: ts}
	p.cl.Produce(ctx, r, func(_ *kgo.Record, err error) { done(err) })
	return nil
}

func (p *franzProducer) Flush(ctx context.Context) error { return p.cl.Flush(ctx) }

func (p *franzProducer) Close() error {
	p.cl.Close()
	return nil
}

func (p *franzProducer) Stats() ProducerStats {
	return ProducerStats{
		Batches:           p.hooks.batches.Load(),
		UncompressedBytes: p.hooks.uncompressed.Load(),
		CompressedBytes:   p.hooks.compressed.Load(),
		Retries:           p.hooks.retries.Load(),
	}
}

// franzHooks counts accepted batches and their sizes (a kgo hook), and
// retries. kgo's ProduceBatchMetrics count a batch's records section alone,
// before and after compression; ProducerStats, like Gregor's client, counts
// whole batches, so the hook adds the RecordBatch header to both sizes.
// Otherwise the two clients' compression ratios (and the wire bytes the
// report sets against the machine's limits) would differ for byte-identical
// batches, most where batches are small. kgo keeps no retry counter, but it
// logs, at info level or above, each produce request and each batch it will
// send again after a retriable error; counting those lines is the only view
// it gives.
type franzHooks struct {
	batches, uncompressed, compressed, retries atomic.Int64
	// written, when a test sets it before producing, hears of each batch
	// counted: kgo calls the hook on its own goroutine, not necessarily
	// before the records' callbacks, so Stats read after the last
	// callback can miss the last batch.
	written chan<- struct{}
}

func (h *franzHooks) OnProduceBatchWritten(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.ProduceBatchMetrics) {
	h.batches.Add(1)
	h.uncompressed.Add(int64(batch.HeaderSize + m.UncompressedBytes))
	h.compressed.Add(int64(batch.HeaderSize + m.CompressedBytes))
	if h.written != nil {
		h.written <- struct{}{}
	}
}

func (h *franzHooks) Level() kgo.LogLevel { return kgo.LogLevelInfo }

func (h *franzHooks) Log(_ kgo.LogLevel, msg string, keyvals ...any) {
	switch {
	case strings.HasPrefix(msg, "produce request failed"), strings.HasPrefix(msg, "random error while producing"):
		h.retries.Add(1)
	case msg == "batch in a produce request failed":
		for i := 0; i+1 < len(keyvals); i += 2 {
			if keyvals[i] == "err_is_retryable" && keyvals[i+1] == true {
				h.retries.Add(1)
			}
		}
	}
}

// pinningPartitioner honours a record's partition when the harness pins
// one (Partition >= 0) and otherwise defers to the wrapped partitioner.
type pinningPartitioner struct{ inner kgo.Partitioner }

func (p pinningPartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	return &pinningTopicPartitioner{inner: p.inner.ForTopic(topic)}
}

type pinningTopicPartitioner struct{ inner kgo.TopicPartitioner }

func (p *pinningTopicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	return r.Partition >= 0 || p.inner.RequiresConsistency(r)
}

func (p *pinningTopicPartitioner) Partition(r *kgo.Record, n int) int {
	if r.Partition >= 0 {
		return int(r.Partition) % n
	}
	return p.inner.Partition(r, n)
}

// OnNewBatch forwards to a sticky inner partitioner, which moves on to a
// new partition whenever a batch fills.
func (p *pinningTopicPartitioner) OnNewBatch() {
	if nb, ok := p.inner.(kgo.TopicPartitionerOnNewBatch); ok {
		nb.OnNewBatch()
	}
}

func (franzDriver) NewConsumer(_ context.Context, cfg ConsumerConfig) (Consumer, error) {
	c := &franzConsumer{owned: map[string]map[int32]bool{}}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Bootstrap...),
		kgo.ClientID(cfg.ClientID),
		// A fetch waits at most this long for data; the broker answers
		// as soon as an append arrives, so this only bounds idle polls.
		kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.FetchMaxBytes(64 << 20),
		kgo.FetchMaxPartitionBytes(8 << 20),
	}
	if cfg.Group != "" {
		opts = append(opts,
			kgo.ConsumerGroup(cfg.Group),
			kgo.ConsumeTopics(cfg.Topics...),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			// The Java client's default partition.assignment.strategy,
			// which Gregor's driver uses too (kgo's own default is
			// cooperative-sticky alone).
			kgo.Balancers(kgo.RangeBalancer(), kgo.CooperativeStickyBalancer()),
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { c.track(m, true) }),
			// Setting a revoke callback replaces kgo's default one, which
			// commits before the partitions go; this one commits too.
			kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
				cl.CommitUncommittedOffsets(ctx)
				c.track(m, false)
			}),
			kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { c.track(m, false) }),
		)
	} else {
		assign := map[string]map[int32]kgo.Offset{}
		for topic, parts := range cfg.Partitions {
			m := map[int32]kgo.Offset{}
			for _, p := range parts {
				m[p] = kgo.NewOffset().AtStart()
			}
			assign[topic] = m
		}
		opts = append(opts, kgo.ConsumePartitions(assign))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	c.cl = cl
	return c, nil
}

type franzConsumer struct {
	cl *kgo.Client

	mu    sync.Mutex
	owned map[string]map[int32]bool // a group member's partitions, from kgo's callbacks
}

func (c *franzConsumer) track(m map[string][]int32, add bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for topic, parts := range m {
		if c.owned[topic] == nil {
			c.owned[topic] = map[int32]bool{}
		}
		for _, p := range parts {
			if add {
				c.owned[topic][p] = true
			} else {
				delete(c.owned[topic], p)
			}
		}
	}
}

func (c *franzConsumer) GroupState() (int32, int) {
	_, gen := c.cl.GroupMetadata()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, parts := range c.owned {
		n += len(parts)
	}
	return gen, n
}

func (c *franzConsumer) Poll(ctx context.Context, fn func(ConsumedRecord)) error {
	fs := c.cl.PollRecords(ctx, 10000)
	if fs.IsClientClosed() {
		return kgo.ErrClientClosed
	}
	var firstErr error
	fs.EachError(func(topic string, p int32, err error) {
		if firstErr == nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			firstErr = fmt.Errorf("fetch %s-%d: %w", topic, p, err)
		}
	})
	fs.EachRecord(func(r *kgo.Record) {
		fn(ConsumedRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp, Value: r.Value})
	})
	return firstErr
}

func (c *franzConsumer) Close() error {
	c.cl.Close()
	return nil
}
