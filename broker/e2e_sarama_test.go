package broker_test

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/broker"
	"gregor/internal/testcluster"
	"gregor/raft"
)

// saramaVersions are the Kafka versions sarama is told it talks to: a recent
// one, and an older one that makes it send older request versions
// (Produce v7, Fetch v10, Metadata v7, ListOffsets v4, ...).
var saramaVersions = []struct {
	name    string
	version sarama.KafkaVersion
}{
	{"v3.6", sarama.V3_6_0_0},
	{"v2.1", sarama.V2_1_0_0},
}

var saramaCodecs = []struct {
	name  string
	codec sarama.CompressionCodec
}{
	{"none", sarama.CompressionNone},
	{"gzip", sarama.CompressionGZIP},
	{"snappy", sarama.CompressionSnappy},
	{"lz4", sarama.CompressionLZ4},
	{"zstd", sarama.CompressionZSTD},
}

var saramaAcks = []struct {
	name string
	acks sarama.RequiredAcks
}{
	{"none", sarama.NoResponse},
	{"local", sarama.WaitForLocal},
	{"all", sarama.WaitForAll},
}

// saramaConfig is a sarama config with bounded network waits and quick
// retries, for version v.
func saramaConfig(v sarama.KafkaVersion) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = v
	cfg.ClientID = "gregor-e2e-sarama"
	cfg.Net.DialTimeout = 5 * time.Second
	cfg.Net.ReadTimeout = 10 * time.Second
	cfg.Net.WriteTimeout = 5 * time.Second
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	cfg.Admin.Timeout = 10 * time.Second
	cfg.Producer.Return.Successes = true
	cfg.Producer.Retry.Backoff = 50 * time.Millisecond
	cfg.Producer.Timeout = 5 * time.Second
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
	return cfg
}

func saramaClient(t *testing.T, c *testcluster.Cluster, cfg *sarama.Config) sarama.Client {
	t.Helper()
	cl, err := sarama.NewClient(c.Addrs(), cfg)
	if err != nil {
		t.Fatalf("sarama client: %v", err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

func saramaAdmin(t *testing.T, c *testcluster.Cluster, v sarama.KafkaVersion) sarama.ClusterAdmin {
	t.Helper()
	adm, err := sarama.NewClusterAdmin(c.Addrs(), saramaConfig(v))
	if err != nil {
		t.Fatalf("sarama admin: %v", err)
	}
	t.Cleanup(func() { _ = adm.Close() })
	return adm
}

func saramaCreateTopic(t *testing.T, c *testcluster.Cluster, v sarama.KafkaVersion, topic string, partitions int32) {
	t.Helper()
	err := saramaAdmin(t, c, v).CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false)
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	// Every broker learns of a topic a moment after the controller
	// answers, as in Kafka: with acks=0 a record sent to a leader that has
	// not yet learnt it is lost by design.
	c.WaitForTopic(topic)
}

// saramaProduced is where the producer was told a record went.
type saramaProduced struct {
	partition int32
	offset    int64
}

// saramaConsumeAll reads every partition of topic from the oldest offset
// with sarama's Consumer until it holds n records, and checks that each
// partition's offsets run 0, 1, 2, ... with nothing after them (the high
// watermarks add up to n). It returns the records of each partition in
// offset order.
func saramaConsumeAll(t *testing.T, cl sarama.Client, topic string, n int) map[int32][]*sarama.ConsumerMessage {
	t.Helper()
	consumer, err := sarama.NewConsumerFromClient(cl)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	partitions, err := consumer.Partitions(topic)
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	msgs := make(chan *sarama.ConsumerMessage)
	errs := make(chan error, len(partitions))
	done := make(chan struct{})
	defer close(done)
	pcs := make([]sarama.PartitionConsumer, 0, len(partitions))
	defer func() {
		for _, pc := range pcs {
			pc.AsyncClose()
		}
	}()
	for _, p := range partitions {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("consume %s-%d: %v", topic, p, err)
		}
		pcs = append(pcs, pc)
		go func() {
			perrs := pc.Errors()
			for {
				select {
				case m, ok := <-pc.Messages():
					if !ok {
						return
					}
					select {
					case msgs <- m:
					case <-done:
						return
					}
				case err, ok := <-perrs:
					if !ok {
						perrs = nil
						continue
					}
					select {
					case errs <- err:
					default:
					}
				case <-done:
					return
				}
			}
		}()
	}
	out := map[int32][]*sarama.ConsumerMessage{}
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for got := 0; got < n; got++ {
		select {
		case m := <-msgs:
			out[m.Partition] = append(out[m.Partition], m)
		case err := <-errs:
			t.Fatalf("consuming %s after %d of %d records: %v", topic, got, n, err)
		case <-timeout.C:
			t.Fatalf("consumed %d of %d records of %s in 30 s", got, n, topic)
		}
	}
	var hwSum int64
	for _, pc := range pcs {
		hwSum += pc.HighWaterMarkOffset()
	}
	for p, ms := range out {
		for i, m := range ms {
			if m.Offset != int64(i) {
				t.Fatalf("%s-%d: record %d has offset %d, want offsets 0, 1, 2, ... in order", topic, p, i, m.Offset)
			}
		}
	}
	// The consumer's high watermarks come from its latest fetches, which
	// saw at least the n records read; more means records beyond them.
	if hwSum != int64(n) {
		t.Fatalf("%s: high watermarks add up to %d, want %d records", topic, hwSum, n)
	}
	return out
}

// saramaCheckConsumed checks that the consumed records are exactly the
// values of want (value -> key), once each, that the records of one key
// are all in one partition, in the order they were produced (values end in
// their sequence number), and, when produced is not nil, that each landed
// where the producer was told it did.
func saramaCheckConsumed(t *testing.T, got map[int32][]*sarama.ConsumerMessage, want map[string]string, produced map[string]saramaProduced) {
	t.Helper()
	seen := map[string]bool{}
	keyPartition := map[string]int32{}
	for p, ms := range got {
		lastSeq := map[string]int{}
		for _, m := range ms {
			v := string(m.Value)
			key, ok := want[v]
			if !ok {
				t.Fatalf("partition %d offset %d: unexpected value %q", p, m.Offset, v)
			}
			if seen[v] {
				t.Fatalf("partition %d offset %d: value %q consumed twice", p, m.Offset, v)
			}
			seen[v] = true
			if string(m.Key) != key {
				t.Fatalf("partition %d offset %d: key %q, want %q", p, m.Offset, m.Key, key)
			}
			if kp, ok := keyPartition[key]; ok && kp != p {
				t.Fatalf("key %q is in partitions %d and %d", key, kp, p)
			}
			keyPartition[key] = p
			seq := saramaSeq(t, v)
			if last, ok := lastSeq[key]; ok && seq < last {
				t.Fatalf("partition %d offset %d: key %q record %d after record %d", p, m.Offset, key, seq, last)
			}
			lastSeq[key] = seq
			if pr, ok := produced[v]; ok && (pr.partition != p || pr.offset != m.Offset) {
				t.Fatalf("value %q: produced to %d@%d, consumed from %d@%d", v, pr.partition, pr.offset, p, m.Offset)
			}
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("consumed %d distinct values, want %d", len(seen), len(want))
	}
}

// saramaSeq is the sequence number a test value ends with ("…-<seq>").
func saramaSeq(t *testing.T, v string) int {
	t.Helper()
	for i := len(v) - 1; i >= 0; i-- {
		if v[i] == '-' {
			n, err := strconv.Atoi(v[i+1:])
			if err != nil {
				t.Fatalf("value %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatalf("value %q has no sequence number", v)
	return 0
}

// saramaMessages are n keyed test messages for topic (10 distinct keys)
// and the value -> key map to check them against.
func saramaMessages(topic, tag string, n int) ([]*sarama.ProducerMessage, map[string]string) {
	msgs := make([]*sarama.ProducerMessage, n)
	want := make(map[string]string, n)
	for i := range n {
		key := fmt.Sprintf("key-%d", i%10)
		v := fmt.Sprintf("value-%s-%d", tag, i)
		want[v] = key
		msgs[i] = &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key), Value: sarama.StringEncoder(v)}
	}
	return msgs, want
}

// saramaSyncProduce sends msgs with a SyncProducer: the first half one at
// a time, the rest in one SendMessages call (so they travel in batches).
func saramaSyncProduce(t *testing.T, cl sarama.Client, msgs []*sarama.ProducerMessage, acks sarama.RequiredAcks) map[string]saramaProduced {
	t.Helper()
	prod, err := sarama.NewSyncProducerFromClient(cl)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := prod.Close(); err != nil {
			t.Errorf("closing the producer: %v", err)
		}
	}()
	produced := map[string]saramaProduced{}
	half := len(msgs) / 2
	for _, m := range msgs[:half] {
		p, off, err := prod.SendMessage(m)
		if err != nil {
			t.Fatalf("send: %v", err)
		}
		if acks != sarama.NoResponse {
			produced[saramaValue(m)] = saramaProduced{p, off}
		}
	}
	if err := prod.SendMessages(msgs[half:]); err != nil {
		var pe sarama.ProducerErrors
		if errors.As(err, &pe) && len(pe) > 0 {
			t.Fatalf("send %d messages: %d failed, the first: %v", len(msgs)-half, len(pe), pe[0].Err)
		}
		t.Fatalf("send messages: %v", err)
	}
	if acks != sarama.NoResponse {
		for _, m := range msgs[half:] {
			produced[saramaValue(m)] = saramaProduced{m.Partition, m.Offset}
		}
	}
	return produced
}

// saramaAsyncProduce sends msgs with an AsyncProducer and waits for every
// success.
func saramaAsyncProduce(t *testing.T, cl sarama.Client, msgs []*sarama.ProducerMessage, acks sarama.RequiredAcks) map[string]saramaProduced {
	t.Helper()
	prod, err := sarama.NewAsyncProducerFromClient(cl)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.AsyncClose()
	produced := map[string]saramaProduced{}
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	sent, acked := 0, 0
	for acked < len(msgs) {
		in := prod.Input()
		if sent == len(msgs) {
			in = nil
		}
		var next *sarama.ProducerMessage
		if sent < len(msgs) {
			next = msgs[sent]
		}
		select {
		case in <- next:
			sent++
		case m := <-prod.Successes():
			acked++
			if acks != sarama.NoResponse {
				produced[saramaValue(m)] = saramaProduced{m.Partition, m.Offset}
			}
		case pe := <-prod.Errors():
			t.Fatalf("async produce: %v", pe.Err)
		case <-timeout.C:
			t.Fatalf("%d of %d messages acknowledged in 30 s", acked, len(msgs))
		}
	}
	return produced
}

func saramaValue(m *sarama.ProducerMessage) string {
	b, _ := m.Value.Encode()
	return string(b)
}

func TestSaramaAdmin(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	for _, v := range saramaVersions {
		t.Run(v.name, func(t *testing.T) {
			adm := saramaAdmin(t, c, v.version)
			topic := "sarama-admin-" + v.name
			retention := "3600000"
			err := adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1,
				ConfigEntries: map[string]*string{"retention.ms": &retention}}, false)
			if err != nil {
				t.Fatalf("create topic: %v", err)
			}
			err = adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false)
			if !errors.Is(err, sarama.ErrTopicAlreadyExists) {
				t.Fatalf("creating %s again: %v, want %v", topic, err, sarama.ErrTopicAlreadyExists)
			}
			err = adm.CreateTopic(topic+"-rf3", &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 3}, false)
			if !errors.Is(err, sarama.ErrInvalidReplicationFactor) {
				t.Fatalf("creating a topic with replication factor 3: %v, want %v", err, sarama.ErrInvalidReplicationFactor)
			}

			topics, err := adm.ListTopics()
			if err != nil {
				t.Fatalf("list topics: %v", err)
			}
			d, ok := topics[topic]
			if !ok {
				t.Fatalf("list topics: %s missing from %v", topic, topics)
			}
			if d.NumPartitions != 3 || d.ReplicationFactor != 1 {
				t.Fatalf("list topics: %s has %d partitions, replication factor %d; want 3 and 1", topic, d.NumPartitions, d.ReplicationFactor)
			}
			if got := d.ConfigEntries["retention.ms"]; got == nil || *got != retention {
				t.Fatalf("list topics: %s retention.ms %v, want %s", topic, got, retention)
			}
			if _, ok := topics[topic+"-rf3"]; ok {
				t.Fatalf("list topics: the refused topic %s-rf3 exists", topic)
			}

			mds, err := adm.DescribeTopics([]string{topic})
			if err != nil {
				t.Fatalf("describe topics: %v", err)
			}
			if len(mds) != 1 || !errors.Is(mds[0].Err, sarama.ErrNoError) || mds[0].Name != topic {
				t.Fatalf("describe topics: %+v", mds)
			}
			if len(mds[0].Partitions) != 3 {
				t.Fatalf("describe topics: %d partitions, want 3", len(mds[0].Partitions))
			}
			for _, p := range mds[0].Partitions {
				if !errors.Is(p.Err, sarama.ErrNoError) || p.Leader != 1 || !slices.Equal(p.Replicas, []int32{1}) || !slices.Equal(p.Isr, []int32{1}) {
					t.Fatalf("describe topics: partition %+v, want leader 1, replicas and ISR [1]", p)
				}
			}

			entries, err := adm.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
			if err != nil {
				t.Fatalf("describe config: %v", err)
			}
			cfgs := map[string]sarama.ConfigEntry{}
			for _, e := range entries {
				cfgs[e.Name] = e
			}
			if e := cfgs["retention.ms"]; e.Value != retention || e.Default {
				t.Fatalf("describe config: retention.ms %+v, want %s set on the topic", e, retention)
			}
			if e, ok := cfgs["cleanup.policy"]; !ok || e.Value != "delete" {
				t.Fatalf("describe config: cleanup.policy %+v, want delete", e)
			}

			if err := adm.DeleteTopic(topic); err != nil {
				t.Fatalf("delete topic: %v", err)
			}
			// The controller knows at once; the broker's metadata a moment
			// later (whether the very next request sees it is
			// TestSaramaAdminReadYourWrites).
			if err := adm.DeleteTopic(topic); !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
				t.Fatalf("deleting %s again: %v, want %v", topic, err, sarama.ErrUnknownTopicOrPartition)
			}
			c.WaitForImage(func(im *raft.Image) bool { _, ok := im.Topic(topic); return !ok })
			topics, err = adm.ListTopics()
			if err != nil {
				t.Fatalf("list topics: %v", err)
			}
			if _, ok := topics[topic]; ok {
				t.Fatalf("list topics after deleting %s: still there", topic)
			}
		})
	}
}

// TestSaramaAdminReadYourWrites checks that a change an admin request made
// is visible to the next request to the same broker, as it is after
// CreateTopics.
func TestSaramaAdminReadYourWrites(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	adm := saramaAdmin(t, c, sarama.V3_6_0_0)
	const topic = "sarama-ryw"
	saramaCreateTopic(t, c, sarama.V3_6_0_0, topic, 1)

	if err := adm.CreatePartitions(topic, 3, nil, false); err != nil {
		t.Fatalf("create partitions: %v", err)
	}
	mds, err := adm.DescribeTopics([]string{topic})
	if err != nil {
		t.Fatalf("describe topics: %v", err)
	}
	if len(mds) != 1 {
		t.Fatalf("describe topics: %d topics, want 1", len(mds))
	}
	if len(mds[0].Partitions) != 3 {
		t.Errorf("describe topics right after growing %s to 3 partitions: %d partitions", topic, len(mds[0].Partitions))
	}

	retention := "1234"
	err = adm.IncrementalAlterConfig(sarama.TopicResource, topic, map[string]sarama.IncrementalAlterConfigsEntry{
		"retention.ms": {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: &retention}}, false)
	if err != nil {
		t.Fatalf("incremental alter config: %v", err)
	}
	entries, err := adm.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic, ConfigNames: []string{"retention.ms"}})
	if err != nil {
		t.Fatalf("describe config: %v", err)
	}
	if len(entries) != 1 || entries[0].Value != retention {
		t.Errorf("describe config right after setting retention.ms=%s: %+v", retention, entries)
	}

	if err := adm.DeleteTopic(topic); err != nil {
		t.Fatalf("delete topic: %v", err)
	}
	topics, err := adm.ListTopics()
	if err != nil {
		t.Fatalf("list topics: %v", err)
	}
	if _, ok := topics[topic]; ok {
		t.Errorf("list topics right after deleting %s: still there", topic)
	}
}

func TestSaramaProduceConsume(t *testing.T) {
	for _, tc := range engineCases {
		t.Run(fmt.Sprintf("nodes=%d/engine=%s", tc.nodes, tc.engine), func(t *testing.T) { testSaramaProduceConsume(t, tc.nodes, tc.engine) })
	}
}

func testSaramaProduceConsume(t *testing.T, nodes int, engine string) {
	c := testcluster.Start(t, nodes, func(_ int, cfg *broker.Config) { cfg.Net.Engine = engine })
	const n = 200
	type produceFunc func(*testing.T, sarama.Client, []*sarama.ProducerMessage, sarama.RequiredAcks) map[string]saramaProduced
	producers := []struct {
		name    string
		produce produceFunc
	}{{"sync", saramaSyncProduce}, {"async", saramaAsyncProduce}}
	run := func(t *testing.T, v sarama.KafkaVersion, topic string, codec sarama.CompressionCodec, acks sarama.RequiredAcks, produce produceFunc) {
		saramaCreateTopic(t, c, v, topic, 3)
		cfg := saramaConfig(v)
		cfg.Producer.Compression = codec
		cfg.Producer.RequiredAcks = acks
		cfg.Producer.Flush.Frequency = 2 * time.Millisecond
		cl := saramaClient(t, c, cfg)
		msgs, want := saramaMessages(topic, topic, n)
		produced := produce(t, cl, msgs, acks)
		got := saramaConsumeAll(t, cl, topic, n)
		if len(got) < 2 {
			t.Fatalf("10 keys landed in %d partitions of 3", len(got))
		}
		saramaCheckConsumed(t, got, want, produced)
	}
	for _, pr := range producers {
		for _, codec := range saramaCodecs {
			for _, acks := range saramaAcks {
				t.Run(fmt.Sprintf("v3.6/%s/codec=%s/acks=%s", pr.name, codec.name, acks.name), func(t *testing.T) {
					run(t, sarama.V3_6_0_0, fmt.Sprintf("sarama-%s-%s-%s", pr.name, codec.name, acks.name), codec.codec, acks.acks, pr.produce)
				})
			}
		}
	}
	// Older request versions: Produce v7, Fetch v10, Metadata v7.
	for _, codec := range saramaCodecs {
		t.Run(fmt.Sprintf("v2.1/sync/codec=%s/acks=all", codec.name), func(t *testing.T) {
			run(t, sarama.V2_1_0_0, fmt.Sprintf("sarama-v21-%s", codec.name), codec.codec, sarama.WaitForAll, saramaSyncProduce)
		})
	}
	requireSendfile(t, c)
}

// requireSendfile fails the test unless every broker of c that led a
// partition sent record bytes by sendfile.
func requireSendfile(t *testing.T, c *testcluster.Cluster) {
	t.Helper()
	for _, b := range c.Brokers {
		if b.Image().PartitionsLedBy(b.NodeID()) == 0 {
			continue
		}
		if st := b.NetStats(); st.SendfileBytes == 0 {
			t.Errorf("broker %d: no record bytes went out through sendfile: %+v", b.NodeID(), st)
		}
	}
}

func TestSaramaIdempotentProducer(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	for _, v := range saramaVersions {
		for _, codec := range []struct {
			name  string
			codec sarama.CompressionCodec
		}{{"none", sarama.CompressionNone}, {"zstd", sarama.CompressionZSTD}} {
			t.Run(fmt.Sprintf("%s/codec=%s", v.name, codec.name), func(t *testing.T) {
				topic := fmt.Sprintf("sarama-idempotent-%s-%s", v.name, codec.name)
				saramaCreateTopic(t, c, v.version, topic, 3)
				cfg := saramaConfig(v.version)
				cfg.Producer.Idempotent = true
				cfg.Producer.RequiredAcks = sarama.WaitForAll
				cfg.Producer.Compression = codec.codec
				cfg.Producer.Flush.Frequency = 2 * time.Millisecond
				cfg.Net.MaxOpenRequests = 1
				cl := saramaClient(t, c, cfg)
				const n = 300
				msgs, want := saramaMessages(topic, topic, n)
				produced := saramaAsyncProduce(t, cl, msgs[:n/2], cfg.Producer.RequiredAcks)
				for k, v := range saramaSyncProduce(t, cl, msgs[n/2:], cfg.Producer.RequiredAcks) {
					produced[k] = v
				}
				saramaCheckConsumed(t, saramaConsumeAll(t, cl, topic, n), want, produced)
			})
		}
	}
}

func TestSaramaGetOffset(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	const n = 10
	const spacing = time.Second
	for _, v := range saramaVersions {
		// One batch per record, or all records in one compressed batch (the
		// broker must look inside it to find the offset for a time).
		for _, oneBatch := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/one-batch=%t", v.name, oneBatch), func(t *testing.T) {
				topic := fmt.Sprintf("sarama-offsets-%s-%t", v.name, oneBatch)
				saramaCreateTopic(t, c, v.version, topic, 1)
				cfg := saramaConfig(v.version)
				cfg.Producer.RequiredAcks = sarama.WaitForAll
				if oneBatch {
					cfg.Producer.Compression = sarama.CompressionGZIP
					cfg.Producer.Flush.Messages = n
				}
				cl := saramaClient(t, c, cfg)
				prod, err := sarama.NewSyncProducerFromClient(cl)
				if err != nil {
					t.Fatal(err)
				}
				defer prod.Close()

				for _, which := range []int64{sarama.OffsetOldest, sarama.OffsetNewest} {
					if off, err := cl.GetOffset(topic, 0, which); err != nil || off != 0 {
						t.Fatalf("GetOffset(%d) of an empty partition: %d, %v; want 0", which, off, err)
					}
				}

				msgs := make([]*sarama.ProducerMessage, n)
				for i := range msgs {
					msgs[i] = &sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(fmt.Sprint(i)),
						Timestamp: base.Add(time.Duration(i) * spacing)}
				}
				if oneBatch {
					if err := prod.SendMessages(msgs); err != nil {
						t.Fatal(err)
					}
				} else {
					for _, m := range msgs {
						if _, _, err := prod.SendMessage(m); err != nil {
							t.Fatal(err)
						}
					}
				}
				for i, m := range msgs {
					if m.Offset != int64(i) {
						t.Fatalf("record %d produced at offset %d", i, m.Offset)
					}
				}

				if off, err := cl.GetOffset(topic, 0, sarama.OffsetOldest); err != nil || off != 0 {
					t.Fatalf("GetOffset(oldest): %d, %v; want 0", off, err)
				}
				if off, err := cl.GetOffset(topic, 0, sarama.OffsetNewest); err != nil || off != n {
					t.Fatalf("GetOffset(newest): %d, %v; want %d", off, err, n)
				}
				ms := func(d time.Duration) int64 { return base.Add(d).UnixMilli() }
				for _, tc := range []struct {
					name string
					ts   int64
					want int64
				}{
					{"before the first", ms(-time.Minute), 0},
					{"the first", ms(0), 0},
					{"between 2 and 3", ms(2*spacing + spacing/2), 3},
					{"exactly 5", ms(5 * spacing), 5},
					{"just after 5", ms(5*spacing + time.Millisecond), 6},
					{"the last", ms((n - 1) * spacing), n - 1},
					{"after the last", ms(n * spacing), -1},
				} {
					off, err := cl.GetOffset(topic, 0, tc.ts)
					if err != nil || off != tc.want {
						t.Errorf("GetOffset(%s, %d): %d, %v; want %d", tc.name, tc.ts, off, err, tc.want)
					}
				}
			})
		}
	}
}

func TestSaramaRestart(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	const topic = "sarama-restart"
	const n = 300
	saramaCreateTopic(t, c, sarama.V3_6_0_0, topic, 3)
	cfg := saramaConfig(sarama.V3_6_0_0)
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Compression = sarama.CompressionSnappy
	cfg.Producer.Flush.Frequency = 2 * time.Millisecond
	cl, err := sarama.NewClient(c.Addrs(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	msgs, want := saramaMessages(topic, "restart", n)
	produced := saramaSyncProduce(t, cl, msgs, cfg.Producer.RequiredAcks)
	if err := cl.Close(); err != nil {
		t.Fatal(err)
	}

	c.Restart(0)

	cl = saramaClient(t, c, saramaConfig(sarama.V3_6_0_0))
	saramaCheckConsumed(t, saramaConsumeAll(t, cl, topic, n), want, produced)
	var newest int64
	for p := range int32(3) {
		off, err := cl.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		newest += off
	}
	if newest != n {
		t.Fatalf("after the restart the partitions end at offsets adding up to %d, want %d", newest, n)
	}
}

// TestSaramaAlterConfigReplacesTopicConfigs: sarama's ClusterAdmin.AlterConfig
// sends the legacy AlterConfigs, which replaces a topic's configs with those
// given, as Kafka's does: a config left out goes back to its default;
// validate_only changes nothing; an unknown topic is refused. The admin
// client talks to a broker-only node, which forwards the request to the
// controller and answers once its own image shows the change.
func TestSaramaAlterConfigReplacesTopicConfigs(t *testing.T) {
	c := testcluster.StartMixed(t, 1, 1, nil)
	createTopic(t, c, "legacy", 1, map[string]*string{
		"retention.ms": kmsg.StringPtr("3600000"), "max.message.bytes": kmsg.StringPtr("2000000"),
	})
	adm, err := sarama.NewClusterAdmin(c.Addrs()[1:], saramaConfig(sarama.V3_6_0_0))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	describe := func() map[string]sarama.ConfigEntry {
		t.Helper()
		entries, err := adm.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: "legacy"})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]sarama.ConfigEntry{}
		for _, e := range entries {
			out[e.Name] = e
		}
		return out
	}
	if err := adm.AlterConfig(sarama.TopicResource, "legacy", map[string]*string{"segment.ms": kmsg.StringPtr("60000")}, true); err != nil {
		t.Fatalf("validate only: %v", err)
	}
	if got := describe(); got["retention.ms"].Value != "3600000" || got["segment.ms"].Value == "60000" {
		t.Fatalf("validate_only changed the topic: retention.ms=%s segment.ms=%s", got["retention.ms"].Value, got["segment.ms"].Value)
	}
	if err := adm.AlterConfig(sarama.TopicResource, "legacy", map[string]*string{
		"segment.ms": kmsg.StringPtr("60000"), "max.message.bytes": kmsg.StringPtr("3000000"),
	}, false); err != nil {
		t.Fatal(err)
	}
	// The broker that answered shows the change at once; sarama may ask
	// the other for the description, whose image follows a moment later,
	// as a Kafka broker's metadata does.
	c.WaitForImage(func(im *raft.Image) bool {
		tp, ok := im.Topic("legacy")
		return ok && tp.Configs["segment.ms"] == "60000"
	})
	got := describe()
	for name, want := range map[string]string{"segment.ms": "60000", "max.message.bytes": "3000000", "retention.ms": "604800000"} {
		if got[name].Value != want {
			t.Errorf("after AlterConfig: %s=%s, want %s", name, got[name].Value, want)
		}
	}
	if got["retention.ms"].Source == sarama.SourceTopic {
		t.Errorf("retention.ms left out of AlterConfig is still the topic's own: %+v", got["retention.ms"])
	}
	// A client on the broker-only node reads its own write there, whatever
	// its version: v0 is forwarded at v2, whose answer carries the
	// metadata offset to wait for.
	r := dialRaw(t, c.Addrs()[1])
	for i, v := range []int16{0, 1, 2} {
		want := fmt.Sprint(1000 + i)
		alter := kmsg.NewPtrAlterConfigsRequest()
		alter.Version = v
		res := kmsg.NewAlterConfigsRequestResource()
		res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, "legacy"
		cfg := kmsg.NewAlterConfigsRequestResourceConfig()
		cfg.Name, cfg.Value = "segment.ms", kmsg.StringPtr(want)
		res.Configs = append(res.Configs, cfg)
		alter.Resources = append(alter.Resources, res)
		if code := r.do(alter).(*kmsg.AlterConfigsResponse).Resources[0].ErrorCode; code != 0 {
			t.Fatalf("AlterConfigs v%d: %v", v, kerr.ErrorForCode(code))
		}
		desc := kmsg.NewPtrDescribeConfigsRequest()
		dres := kmsg.NewDescribeConfigsRequestResource()
		dres.ResourceType, dres.ResourceName, dres.ConfigNames = kmsg.ConfigResourceTypeTopic, "legacy", []string{"segment.ms"}
		desc.Resources = append(desc.Resources, dres)
		got := r.do(desc).(*kmsg.DescribeConfigsResponse).Resources[0].Configs
		if len(got) != 1 || got[0].Value == nil || *got[0].Value != want {
			t.Errorf("AlterConfigs v%d then DescribeConfigs on the same broker: %v, want segment.ms=%s", v, got, want)
		}
	}
	err = adm.AlterConfig(sarama.TopicResource, "missing", map[string]*string{"segment.ms": kmsg.StringPtr("60000")}, false)
	if !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		t.Errorf("AlterConfig of an unknown topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
}
