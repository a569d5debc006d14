package broker_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"gregor/broker"
	"gregor/internal/testcluster"
	"gregor/netio"
)

func newClient(t *testing.T, c *testcluster.Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Addrs()...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func createTopic(t *testing.T, c *testcluster.Cluster, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	adm := kadm.NewClient(newClient(t, c))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, partitions, 1, configs, topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v %v", topic, err, resp.Err)
	}
	c.WaitForTopic(topic)
}

// consumeAll reads n records from the start of every partition of topic.
func consumeAll(t *testing.T, c *testcluster.Cluster, topic string, n int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl := newClient(t, c, append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(out), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s-%d: %v", topic, p, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

// engineCases are the clusters the clients' produce and consume tests run
// on: one node and three with the default engine, and one node with netpoll,
// whose reading and writing differ most from std's.
var engineCases = []struct {
	nodes  int
	engine string
}{{1, netio.EngineStd}, {3, netio.EngineStd}, {1, netio.EngineNetpoll}}

func TestFranzProduceConsumeEveryCodecAndAcks(t *testing.T) {
	for _, tc := range engineCases {
		t.Run(fmt.Sprintf("nodes=%d/engine=%s", tc.nodes, tc.engine), func(t *testing.T) { testFranzEveryCodecAndAcks(t, tc.nodes, tc.engine) })
	}
}

func testFranzEveryCodecAndAcks(t *testing.T, nodes int, engine string) {
	c := testcluster.Start(t, nodes, func(_ int, cfg *broker.Config) { cfg.Net.Engine = engine })
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	acks := map[string]kgo.Acks{"0": kgo.NoAck(), "1": kgo.LeaderAck(), "all": kgo.AllISRAcks()}
	for codecName, codec := range codecs {
		for acksName, ack := range acks {
			t.Run(fmt.Sprintf("codec=%s/acks=%s", codecName, acksName), func(t *testing.T) {
				topic := fmt.Sprintf("t-%s-%s", codecName, acksName)
				createTopic(t, c, topic, 3, nil)
				opts := []kgo.Opt{kgo.ProducerBatchCompression(codec), kgo.RequiredAcks(ack), kgo.ProducerLinger(5 * time.Millisecond)}
				if acksName != "all" {
					opts = append(opts, kgo.DisableIdempotentWrite())
				}
				cl := newClient(t, c, opts...)
				const n = 500
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				want := map[string]bool{}
				for i := range n {
					v := fmt.Sprintf("value-%d-%s", i, codecName)
					want[v] = true
					cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(i % 7)), Value: []byte(v)}, func(r *kgo.Record, err error) {
						if err != nil {
							t.Errorf("produce: %v", err)
						}
					})
				}
				if err := cl.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				got := consumeAll(t, c, topic, n)
				if len(got) != n {
					t.Fatalf("consumed %d records, want %d", len(got), n)
				}
				perPartition := map[int32][]int64{}
				for _, r := range got {
					if !want[string(r.Value)] {
						t.Fatalf("unexpected record %q", r.Value)
					}
					delete(want, string(r.Value))
					perPartition[r.Partition] = append(perPartition[r.Partition], r.Offset)
				}
				for p, offs := range perPartition {
					if !slices.IsSorted(offs) || offs[0] != 0 || offs[len(offs)-1] != int64(len(offs)-1) {
						t.Fatalf("partition %d offsets not 0..n-1 in order: %v", p, offs)
					}
				}
			})
		}
	}
	requireSendfile(t, c)
}
