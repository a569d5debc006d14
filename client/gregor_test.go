package client

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"gregor/batch"
	"gregor/internal/testcluster"
)

// createTopic creates a topic on a Gregor cluster with franz-go's admin
// client and waits until every broker knows its leaders.
func createTopic(t testing.TB, c *testcluster.Cluster, topic string, partitions int32, replicas int16) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, replicas, nil, topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v %v", topic, err, resp.Err)
	}
	c.WaitForTopic(topic)
}

// Every codec with every acks against Gregor, keyed and unkeyed records, read
// back with this package's consumer.
func TestGregorProduceConsumeEveryCodecAndAcks(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	for _, codec := range codecs {
		for _, acks := range []string{"0", "1", "all"} {
			t.Run(fmt.Sprintf("codec=%s/acks=%s", codec, acks), func(t *testing.T) {
				topic := fmt.Sprintf("codec-%s-acks-%s", codec, acks)
				createTopic(t, c, topic, 3, 1)
				cfg := testProducerConfig(c.Addrs())
				cfg.CompressionType = codec
				cfg.Acks = acks
				cfg.EnableIdempotence = acks == "all"
				p := newTestProducer(t, cfg)
				keyed := produceValues(t, p, topic, 150, func(i int) []byte { return fmt.Appendf(nil, "key-%d", i%7) }, "keyed")
				for _, g := range keyed {
					if want := KeyPartition(fmt.Appendf(nil, "key-%d", g.seq%7), 3); g.md.Partition != want {
						t.Fatalf("key-%d went to partition %d, want %d", g.seq%7, g.md.Partition, want)
					}
				}
				checkCallbacksInOrder(t, keyed, acks == "0")
				unkeyed := produceValues(t, p, topic, 150, nil, "unkeyed")
				checkCallbacksInOrder(t, unkeyed, acks == "0")
				all := append(keyed, unkeyed...)
				for i := range unkeyed {
					all[len(keyed)+i].seq += len(keyed)
				}
				cons := newTestConsumer(t, testConsumerConfig(c.Addrs()), partitions(topic, 3)...)
				checkConsumed(t, consumeN(t, cons, len(all), 20*time.Second), all)
			})
		}
	}
}

// A franz-go consumer reads what this producer wrote, keys and headers
// included: the batches are what every Kafka client expects.
func TestGregorFranzGoReadsOurRecords(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "interop", 2, 1)
	cfg := testProducerConfig(c.Addrs())
	cfg.CompressionType = "zstd"
	p := newTestProducer(t, cfg)
	res := newResults()
	for i := range 20 {
		v := fmt.Sprint(i)
		must(t, p.Produce(context.Background(), &Record{Topic: "interop", Partition: -1, Key: []byte("k" + v), Value: []byte(v),
			Headers: []batch.RecordHeader{{Key: []byte("h"), Value: []byte(v)}}}, res.callback(i, v)))
	}
	got := res.wait(t, 20*time.Second)
	checkCallbacksInOrder(t, got, false)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.ConsumeTopics("interop"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	must(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n := 0
	for n < 20 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("franz-go consumed %d of 20: %v", n, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			n++
			if string(r.Key) != "k"+string(r.Value) || len(r.Headers) != 1 || string(r.Headers[0].Value) != string(r.Value) {
				t.Errorf("record %q key %q headers %v", r.Value, r.Key, r.Headers)
			}
			if want := KeyPartition(r.Key, 2); r.Partition != want {
				t.Errorf("key %q on partition %d, want %d", r.Key, r.Partition, want)
			}
		})
	}
}

// The broker restarts while an idempotent producer writes without pause:
// requests in flight fail with connection errors, the producer refreshes its
// metadata, reconnects when the broker is back, and the log holds every
// record once, in order. (Gregor does not replicate partitions yet, so a
// leader moving to another broker is tested against kfake.)
func TestGregorProducerSurvivesBrokerRestart(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "restart", 3, 1)
	cfg := testProducerConfig(c.Addrs())
	cfg.LingerMs = 1
	cfg.DeliveryTimeoutMs = 60000
	p := newTestProducer(t, cfg)
	res := newResults()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Produce before, during and after the restart: flushing every few
	// records keeps the stream going through it.
	restarted := make(chan struct{})
	n, after := 0, 0
	for after < 300 {
		if n == 300 {
			go func() { defer close(restarted); c.Restart(0) }()
		}
		select {
		case <-restarted:
			after++
		default:
		}
		v := fmt.Sprint(n)
		must(t, p.Produce(ctx, &Record{Topic: "restart", Partition: int32(n % 3), Value: []byte(v)}, res.callback(n, v)))
		n++
		if n%10 == 0 {
			must(t, p.Flush(ctx))
		}
	}
	got := res.wait(t, 60*time.Second)
	checkCallbacksInOrder(t, got, false)
	t.Logf("stats %+v", p.Stats())
	cons := newTestConsumer(t, testConsumerConfig(c.Addrs()), partitions("restart", 3)...)
	checkConsumed(t, consumeN(t, cons, n, 30*time.Second), got)
}
