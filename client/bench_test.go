package client

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"gregor/internal/testcluster"
)

// benchValues are 1 KiB values that compress about as well as JSON events
// (small vocabulary, varying numbers), so codec figures mean something.
func benchValues(n int) [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"user", "click", "page_view", "checkout", "/home", "/cart", "android", "ios", "price", "qty", "sku", "session"}
	out := make([][]byte, n)
	for i := range out {
		v := make([]byte, 0, 1024)
		for len(v) < 1000 {
			v = fmt.Appendf(v, `"%s":%d,`, words[rng.IntN(len(words))], rng.IntN(100000))
		}
		out[i] = v[:1000]
		out[i] = append(out[i], make([]byte, 24)...)
	}
	return out
}

// BenchmarkProducerGregor produces 1 KiB records to a 3-partition topic of an
// in-process single-node Gregor, end to end (each run ends with a Flush, so
// every record is acknowledged), for a few codecs and acks. The franz-go
// run is the peer measured in the same process on the same broker: the
// ratio between them is this producer's overhead, the broker's being shared.
func BenchmarkProducerGregor(b *testing.B) {
	c := testcluster.Start(b, 1, nil)
	values := benchValues(256)
	cases := []struct {
		client, codec, acks string
	}{
		{"gregor", "none", "all"},
		{"gregor", "none", "1"},
		{"gregor", "lz4", "all"},
		{"gregor", "zstd", "all"},
		{"franz-go", "none", "all"},
		{"franz-go", "lz4", "all"},
	}
	for i, bc := range cases {
		topic := fmt.Sprintf("bench-%d", i)
		createTopic(b, c, topic, 3, 1)
		b.Run(fmt.Sprintf("client=%s/codec=%s/acks=%s", bc.client, bc.codec, bc.acks), func(b *testing.B) {
			if bc.client == "franz-go" {
				benchFranzGo(b, c.Addrs(), topic, bc.codec, values)
				return
			}
			cfg := DefaultProducerConfig()
			cfg.BootstrapServers = c.Addrs()
			cfg.CompressionType = bc.codec
			cfg.Acks = bc.acks
			cfg.EnableIdempotence = bc.acks == "all"
			p, err := NewProducer(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close(context.Background())
			ctx := context.Background()
			var failed atomic.Int64
			cb := func(_ RecordMetadata, err error) {
				if err != nil {
					failed.Add(1)
				}
			}
			b.SetBytes(int64(len(values[0])))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := p.Produce(ctx, &Record{Topic: topic, Partition: -1, Value: values[i%len(values)]}, cb); err != nil {
					b.Fatal(err)
				}
			}
			fctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			if err := p.Flush(fctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d records failed", n)
			}
			st := p.Stats()
			if st.Batches > 0 {
				b.ReportMetric(float64(st.RecordsSent)/float64(st.Batches), "records/batch")
			}
		})
	}
}

func benchFranzGo(b *testing.B, addrs []string, topic, codec string, values [][]byte) {
	codecs := map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "lz4": kgo.Lz4Compression()}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchCompression(codecs[codec]), kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchMaxBytes(16384))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	var failed atomic.Int64
	cb := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.Add(1)
		}
	}
	b.SetBytes(int64(len(values[0])))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		cl.Produce(ctx, &kgo.Record{Value: values[i%len(values)]}, cb)
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d records failed", n)
	}
}

// withFirstSendHook sets the producer's onFirstSend hook.
func withFirstSendHook(f func(tp TopicPartition, created, now time.Time)) Option {
	return func(o *options) { o.onFirstSend = f }
}

// satLatency collects, from callbacks that may run on several goroutines,
// each record's latency (from just before Produce to its callback, as
// kafka-producer-perf-test and the harness count it) and the records
// acknowledged per partition.
type satLatency struct {
	mu       sync.Mutex
	h        *hdrhistogram.Histogram // microseconds
	perPart  []int64
	perMaxUs []int64
	failed   int64
}

func newSatLatency(partitions int) *satLatency {
	return &satLatency{h: hdrhistogram.New(1, 600e6, 3), perPart: make([]int64, partitions), perMaxUs: make([]int64, partitions)}
}

// add takes the record's timestamp (set just before Produce, kept to the
// millisecond by the wire format, so latencies read up to 1 ms high).
func (l *satLatency) add(partition int32, tsMs int64, err error) {
	us := time.Now().UnixMicro() - tsMs*1000
	l.mu.Lock()
	if err != nil {
		l.failed++
	} else {
		l.h.RecordValue(max(us, 1))
		l.perPart[partition]++
		l.perMaxUs[partition] = max(l.perMaxUs[partition], us)
	}
	l.mu.Unlock()
}

func (l *satLatency) report(b *testing.B) {
	b.Helper()
	if l.failed > 0 {
		b.Fatalf("%d records failed", l.failed)
	}
	b.ReportMetric(float64(l.h.ValueAtQuantile(50))/1e3, "p50-ms")
	b.ReportMetric(float64(l.h.ValueAtQuantile(99))/1e3, "p99-ms")
	b.ReportMetric(float64(l.h.Max())/1e3, "max-ms")
	// The spread of the partitions' worst latencies: 1 when every
	// partition's slowest record waited as long as the others'.
	lo, hi := int64(math.MaxInt64), int64(0)
	for i, n := range l.perPart {
		if n == 0 {
			continue
		}
		lo, hi = min(lo, l.perMaxUs[i]), max(hi, l.perMaxUs[i])
	}
	if hi > 0 {
		b.ReportMetric(float64(hi)/float64(lo), "part-max-spread")
	}
}

// BenchmarkProducerSaturated produces 1 KiB records as fast as the producer
// takes them to a 16-partition topic of an in-process single-node Gregor,
// with Gregor's producer and with franz-go's on the same broker, and reports
// throughput with the record latency's p50, p99 and max. At this rate the
// buffer (buffer.memory) is always full, so the latency is mostly time
// spent queued in the client: the p99 shows whether some partitions' batches
// wait far longer than the others (drain order), and for Gregor's producer
// sendage-p99-ms/sendage-max-ms are how old batches are when first put
// into a request. Both clients have the same request limit
// (satMaxRequestSize).
func BenchmarkProducerSaturated(b *testing.B) {
	const partitions = 16
	c := testcluster.Start(b, 1, nil)
	values := benchValues(256)
	n := 0
	for _, batchSize := range []int{16384, 1 << 20} {
		for _, acks := range []string{"1", "all"} {
			for _, cl := range []string{"gregor", "franz-go"} {
				topic := fmt.Sprintf("sat-%d", n)
				n++
				createTopic(b, c, topic, partitions, 1)
				bufferMemory := int64(32 << 20)
				if batchSize > 1<<16 {
					bufferMemory = 64 << 20 // as workloads/clients.yaml
				}
				name := fmt.Sprintf("batch=%dKiB/acks=%s/client=%s", batchSize>>10, acks, cl)
				b.Run(name, func(b *testing.B) {
					lat := newSatLatency(partitions)
					if cl == "franz-go" {
						benchSaturatedFranz(b, c.Addrs(), topic, acks, batchSize, bufferMemory, values, lat)
					} else {
						benchSaturatedGregor(b, c.Addrs(), topic, acks, batchSize, bufferMemory, values, lat)
					}
					lat.report(b)
				})
			}
		}
	}
}

// satMaxRequestSize is both clients' request limit in
// BenchmarkProducerSaturated: max.request.size for Gregor's, BrokerMaxWriteBytes
// for franz-go's, at franz-go's default, Kafka's socket.request.max.bytes.
const satMaxRequestSize = 100 << 20

func benchSaturatedGregor(b *testing.B, addrs []string, topic, acks string, batchSize int, bufferMemory int64, values [][]byte, lat *satLatency) {
	cfg := DefaultProducerConfig()
	cfg.BootstrapServers = addrs
	cfg.Acks = acks
	cfg.EnableIdempotence = acks == "all"
	cfg.BatchSize = batchSize
	cfg.BufferMemory = bufferMemory
	// franz-go's request limit (its default BrokerMaxWriteBytes), so that
	// both clients may put every partition's batch in one request.
	cfg.MaxRequestSize = satMaxRequestSize
	ages := hdrhistogram.New(1, 600e6, 3) // only the sender goroutine writes
	p, err := NewProducer(cfg, withFirstSendHook(func(_ TopicPartition, created, now time.Time) {
		ages.RecordValue(max(now.Sub(created).Microseconds(), 1))
	}))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	// Metadata first, outside the measured time.
	if err := p.Produce(ctx, &Record{Topic: topic, Partition: 0, Value: values[0]}, nil); err != nil {
		b.Fatal(err)
	}
	if err := p.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	cb := func(md RecordMetadata, err error) { lat.add(md.Partition, md.Timestamp.UnixMilli(), err) }
	rec := &Record{Topic: topic, Partition: -1}
	b.SetBytes(int64(len(values[0])))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		rec.Value, rec.Timestamp = values[i%len(values)], time.Now()
		if err := p.Produce(ctx, rec, cb); err != nil {
			b.Fatal(err)
		}
	}
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := p.Flush(fctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if err := p.Close(ctx); err != nil {
		b.Fatal(err)
	}
	st := p.Stats()
	if st.Batches > 0 {
		b.ReportMetric(float64(st.RecordsSent)/float64(st.Batches), "records/batch")
	}
	b.ReportMetric(float64(ages.ValueAtQuantile(99))/1e3, "sendage-p99-ms")
	b.ReportMetric(float64(ages.Max())/1e3, "sendage-max-ms")
}

func benchSaturatedFranz(b *testing.B, addrs []string, topic, acks string, batchSize int, bufferMemory int64, values [][]byte, lat *satLatency) {
	opts := []kgo.Opt{kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(5 * time.Millisecond), kgo.ProducerBatchMaxBytes(int32(batchSize)),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxBufferedBytes(int(bufferMemory)), kgo.MaxBufferedRecords(1 << 20), kgo.BrokerMaxWriteBytes(satMaxRequestSize),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil))}
	if acks == "1" {
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(5))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: values[0]}).FirstErr(); err != nil {
		b.Fatal(err)
	}
	cb := func(r *kgo.Record, err error) { lat.add(r.Partition, r.Timestamp.UnixMilli(), err) }
	b.SetBytes(int64(len(values[0])))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		cl.Produce(ctx, &kgo.Record{Value: values[i%len(values)], Timestamp: time.Now()}, cb)
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
}
