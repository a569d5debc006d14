package client

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

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
