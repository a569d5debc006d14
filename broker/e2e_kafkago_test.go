package broker_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"gregor/broker"
	"gregor/internal/testcluster"
)

var kafkaGoCodecs = []struct {
	name  string
	codec kafka.Compression
}{
	{"none", 0},
	{"gzip", kafka.Gzip},
	{"snappy", kafka.Snappy},
	{"lz4", kafka.Lz4},
	{"zstd", kafka.Zstd},
}

var kafkaGoAcks = []struct {
	name string
	acks kafka.RequiredAcks
}{
	{"none", kafka.RequireNone},
	{"one", kafka.RequireOne},
	{"all", kafka.RequireAll},
}

// kafkaGoTransport is a transport of the test's own, so that no pooled
// connection outlives the test (or a broker restart) in kafka.DefaultTransport.
func kafkaGoTransport(t *testing.T) *kafka.Transport {
	tr := &kafka.Transport{DialTimeout: 5 * time.Second, ClientID: "gregor-e2e-kafka-go"}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func kafkaGoClient(t *testing.T, c *testcluster.Cluster) *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(c.Addrs()...), Timeout: 10 * time.Second, Transport: kafkaGoTransport(t)}
}

func kafkaGoCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func kafkaGoCreateTopic(t *testing.T, c *testcluster.Cluster, topic string, partitions int) {
	t.Helper()
	resp, err := kafkaGoClient(t, c).CreateTopics(kafkaGoCtx(t, 20*time.Second), &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}},
	})
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if err := resp.Errors[topic]; err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	c.WaitForTopic(topic) // as saramaCreateTopic does
}

// kafkaGoWriter is a Writer that sends batches at once (kafka-go's default
// BatchTimeout is a second) and gives up within the test's time.
func kafkaGoWriter(t *testing.T, c *testcluster.Cluster, topic string) *kafka.Writer {
	return &kafka.Writer{
		Addr:         kafka.TCP(c.Addrs()...),
		Topic:        topic,
		Transport:    kafkaGoTransport(t),
		BatchTimeout: 2 * time.Millisecond,
		BatchSize:    50,
		ReadTimeout:  10 * time.Second,
		WriteTimeout: 10 * time.Second,
		MaxAttempts:  5,
	}
}

// kafkaGoWrite writes msgs with w in two calls (so that more than one
// request is sent per partition) and closes w.
func kafkaGoWrite(t *testing.T, w *kafka.Writer, msgs []kafka.Message) {
	t.Helper()
	ctx := kafkaGoCtx(t, 30*time.Second)
	half := len(msgs) / 2
	for _, part := range [][]kafka.Message{msgs[:half], msgs[half:]} {
		if err := w.WriteMessages(ctx, part...); err != nil {
			var we kafka.WriteErrors
			if errors.As(err, &we) {
				t.Fatalf("write: %d of %d messages failed: %v", we.Count(), len(part), err)
			}
			t.Fatalf("write: %v", err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("closing the writer: %v", err)
	}
}

// kafkaGoMessages are n keyed messages (10 distinct keys) and the value ->
// key map to check them against.
func kafkaGoMessages(tag string, n int) ([]kafka.Message, map[string]string) {
	msgs := make([]kafka.Message, n)
	want := make(map[string]string, n)
	for i := range n {
		key := fmt.Sprintf("key-%d", i%10)
		v := fmt.Sprintf("value-%s-%d", tag, i)
		want[v] = key
		msgs[i] = kafka.Message{Key: []byte(key), Value: []byte(v)}
	}
	return msgs, want
}

// kafkaGoErrors collects what kafka-go readers log as errors (they retry
// on their own), to show when a read times out.
type kafkaGoErrors struct {
	mu   sync.Mutex
	msgs []string
}

func (e *kafkaGoErrors) Printf(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.msgs) < 20 {
		e.msgs = append(e.msgs, fmt.Sprintf(format, args...))
	}
}

func (e *kafkaGoErrors) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return fmt.Sprint(e.msgs)
}

// kafkaGoReadAll reads every partition of topic from its first offset with
// one Reader (no consumer group) per partition until it holds n records,
// checks that each partition's offsets run 0, 1, 2, ..., and that the
// partitions hold nothing more (their last offsets add up to n). It returns
// each partition's records in offset order.
func kafkaGoReadAll(t *testing.T, c *testcluster.Cluster, topic string, partitions, n int) map[int][]kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	logged := &kafkaGoErrors{}
	msgs := make(chan kafka.Message)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for p := range partitions {
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers:     c.Addrs(),
			Topic:       topic,
			Partition:   p,
			StartOffset: kafka.FirstOffset,
			MinBytes:    1,
			MaxBytes:    1 << 20,
			MaxWait:     100 * time.Millisecond,
			ErrorLogger: logged,
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					return
				}
				select {
				case msgs <- m:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	out := map[int][]kafka.Message{}
	for got := 0; got < n; got++ {
		select {
		case m := <-msgs:
			out[m.Partition] = append(out[m.Partition], m)
		case <-ctx.Done():
			t.Fatalf("read %d of %d records of %s: %v; reader errors: %s", got, n, topic, ctx.Err(), logged)
		}
	}
	for p, ms := range out {
		for i, m := range ms {
			if m.Offset != int64(i) {
				t.Fatalf("%s-%d: record %d has offset %d, want offsets 0, 1, 2, ... in order", topic, p, i, m.Offset)
			}
		}
	}
	var reqs []kafka.OffsetRequest
	for p := range partitions {
		reqs = append(reqs, kafka.LastOffsetOf(p))
	}
	resp, err := kafkaGoClient(t, c).ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	var last int64
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			t.Fatalf("list offsets %s-%d: %v", topic, po.Partition, po.Error)
		}
		last += po.LastOffset
	}
	if last != int64(n) {
		t.Fatalf("%s: last offsets add up to %d, want %d records", topic, last, n)
	}
	return out
}

// kafkaGoCheckRead checks that the records read are exactly the values of
// want (value -> key), once each, and, when keyed, that each key's records
// are in one partition (and, when ordered, in the order they were written).
func kafkaGoCheckRead(t *testing.T, got map[int][]kafka.Message, want map[string]string, keyed, ordered bool) {
	t.Helper()
	seen := map[string]bool{}
	keyPartition := map[string]int{}
	for p, ms := range got {
		lastSeq := map[string]int{}
		for _, m := range ms {
			v := string(m.Value)
			key, ok := want[v]
			if !ok {
				t.Fatalf("partition %d offset %d: unexpected value %q", p, m.Offset, v)
			}
			if seen[v] {
				t.Fatalf("partition %d offset %d: value %q read twice", p, m.Offset, v)
			}
			seen[v] = true
			if string(m.Key) != key {
				t.Fatalf("partition %d offset %d: key %q, want %q", p, m.Offset, m.Key, key)
			}
			if !keyed {
				continue
			}
			if kp, ok := keyPartition[key]; ok && kp != p {
				t.Fatalf("key %q is in partitions %d and %d", key, kp, p)
			}
			keyPartition[key] = p
			seq := saramaSeq(t, v)
			if last, ok := lastSeq[key]; ok && ordered && seq < last {
				t.Fatalf("partition %d offset %d: key %q record %d after record %d", p, m.Offset, key, seq, last)
			}
			lastSeq[key] = seq
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("read %d distinct values, want %d", len(seen), len(want))
	}
}

func TestKafkaGoAdminMetadataListOffsets(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	ctx := kafkaGoCtx(t, 30*time.Second)
	cl := kafkaGoClient(t, c)

	// CreateTopics through kafka.Client (the negotiated version) and
	// through kafka.Conn to the controller (CreateTopics v0).
	resp, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: "kafkago-client", NumPartitions: 3, ReplicationFactor: 1,
			ConfigEntries: []kafka.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: "3600000"}}},
		{Topic: "kafkago-rf3", NumPartitions: 1, ReplicationFactor: 3},
	}})
	if err != nil {
		t.Fatalf("create topics: %v", err)
	}
	if err := resp.Errors["kafkago-client"]; err != nil {
		t.Fatalf("create topic kafkago-client: %v", err)
	}
	if err := resp.Errors["kafkago-rf3"]; !errors.Is(err, kafka.InvalidReplicationFactor) {
		t.Fatalf("create topic with replication factor 3: %v, want %v", err, kafka.InvalidReplicationFactor)
	}

	conn, err := kafka.DialContext(ctx, "tcp", c.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	ctrl, err := conn.Controller()
	if err != nil {
		t.Fatalf("controller: %v", err)
	}
	ctrlConn, err := kafka.DialContext(ctx, "tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	if err != nil {
		t.Fatalf("dialing the controller %+v: %v", ctrl, err)
	}
	defer ctrlConn.Close()
	if err := ctrlConn.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := ctrlConn.CreateTopics(kafka.TopicConfig{Topic: "kafkago-conn", NumPartitions: 2, ReplicationFactor: 1}); err != nil {
		t.Fatalf("conn create topics: %v", err)
	}
	// kafka.Conn drops TOPIC_ALREADY_EXISTS on purpose; kafka.Client does not.
	again, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: "kafkago-conn", NumPartitions: 2, ReplicationFactor: 1}}})
	if err != nil || !errors.Is(again.Errors["kafkago-conn"], kafka.TopicAlreadyExists) {
		t.Fatalf("creating kafkago-conn again: %v %+v, want %v", err, again, kafka.TopicAlreadyExists)
	}
	if err := ctrlConn.CreateTopics(kafka.TopicConfig{Topic: "kafkago-conn-rf3", NumPartitions: 1, ReplicationFactor: 3}); !errors.Is(err, kafka.InvalidReplicationFactor) {
		t.Fatalf("conn create topics with replication factor 3: %v, want %v", err, kafka.InvalidReplicationFactor)
	}
	parts, err := conn.ReadPartitions("kafkago-conn")
	if err != nil {
		t.Fatalf("read partitions: %v", err)
	}
	if len(parts) != 2 {
		t.Fatalf("kafkago-conn has %d partitions, want 2: %+v", len(parts), parts)
	}

	md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{"kafkago-client", "kafkago-conn", "kafkago-missing"}})
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	if len(md.Brokers) != 1 || md.Brokers[0].ID != 1 || md.Controller.ID != 1 || md.ClusterID == "" {
		t.Fatalf("metadata: brokers %+v, controller %+v, cluster id %q", md.Brokers, md.Controller, md.ClusterID)
	}
	wantParts := map[string]int{"kafkago-client": 3, "kafkago-conn": 2}
	for _, tm := range md.Topics {
		if tm.Name == "kafkago-missing" {
			// kafka.Client asks without auto-creation (Metadata v4+).
			if !errors.Is(tm.Error, kafka.UnknownTopicOrPartition) {
				t.Fatalf("metadata of a missing topic: %v, want %v", tm.Error, kafka.UnknownTopicOrPartition)
			}
			continue
		}
		if tm.Error != nil {
			t.Fatalf("metadata %s: %v", tm.Name, tm.Error)
		}
		if len(tm.Partitions) != wantParts[tm.Name] {
			t.Fatalf("metadata %s: %d partitions, want %d", tm.Name, len(tm.Partitions), wantParts[tm.Name])
		}
		delete(wantParts, tm.Name)
		for _, p := range tm.Partitions {
			if p.Error != nil || p.Leader.ID != 1 || len(p.Replicas) != 1 || len(p.Isr) != 1 {
				t.Fatalf("metadata %s-%d: %+v", tm.Name, p.ID, p)
			}
		}
	}
	if len(wantParts) != 0 {
		t.Fatalf("metadata: topics %v missing from %+v", wantParts, md.Topics)
	}

	// ListOffsets: empty partitions, then by time over records written with
	// explicit timestamps a second apart, in one gzip batch.
	const topic = "kafkago-offsets"
	kafkaGoCreateTopic(t, c, topic, 1)
	offsets, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		topic: {kafka.FirstOffsetOf(0), kafka.LastOffsetOf(0)}}})
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	if po := offsets.Topics[topic]; len(po) != 1 || po[0].Error != nil || po[0].FirstOffset != 0 || po[0].LastOffset != 0 {
		t.Fatalf("list offsets of an empty partition: %+v", po)
	}
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	const n = 10
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Value: []byte(strconv.Itoa(i)), Time: base.Add(time.Duration(i) * time.Second)}
	}
	w := kafkaGoWriter(t, c, topic)
	w.Compression = kafka.Gzip
	w.RequiredAcks = kafka.RequireAll
	w.BatchSize = n
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	leader, err := kafka.DialLeader(ctx, "tcp", c.Addrs()[0], topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer leader.Close()
	if err := leader.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if first, last, err := leader.ReadOffsets(); err != nil || first != 0 || last != n {
		t.Fatalf("conn read offsets: %d, %d, %v; want 0, %d", first, last, err, n)
	}
	for _, tc := range []struct {
		name string
		at   time.Duration
		want int64
	}{
		{"before the first", -time.Minute, 0},
		{"the first", 0, 0},
		{"between 2 and 3", 2500 * time.Millisecond, 3},
		{"exactly 5", 5 * time.Second, 5},
		{"just after 5", 5*time.Second + time.Millisecond, 6},
		{"the last", (n - 1) * time.Second, n - 1},
		{"after the last", n * time.Second, -1},
	} {
		at := base.Add(tc.at)
		res, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.TimeOffsetOf(0, at)}}})
		if err != nil {
			t.Fatalf("list offsets (%s): %v", tc.name, err)
		}
		po := res.Topics[topic]
		if len(po) != 1 || po[0].Error != nil || len(po[0].Offsets) != 1 {
			t.Fatalf("list offsets (%s): %+v", tc.name, po)
		}
		for off := range po[0].Offsets {
			if off != tc.want {
				t.Errorf("client list offsets (%s): offset %d, want %d", tc.name, off, tc.want)
			}
		}
		if off, err := leader.ReadOffset(at); err != nil || off != tc.want {
			t.Errorf("conn read offset (%s): %d, %v; want %d", tc.name, off, err, tc.want)
		}
	}

	// The records read back keep their timestamps.
	got := kafkaGoReadAll(t, c, topic, 1, n)
	for i, m := range got[0] {
		if want := base.Add(time.Duration(i) * time.Second); !m.Time.Equal(want) {
			t.Fatalf("record %d: time %v, want %v", i, m.Time, want)
		}
	}
}

func TestKafkaGoWriterReader(t *testing.T) {
	for _, tc := range engineCases {
		t.Run(fmt.Sprintf("nodes=%d/engine=%s", tc.nodes, tc.engine), func(t *testing.T) { testKafkaGoWriterReader(t, tc.nodes, tc.engine) })
	}
}

func testKafkaGoWriterReader(t *testing.T, nodes int, engine string) {
	c := testcluster.Start(t, nodes, func(_ int, cfg *broker.Config) { cfg.Net.Engine = engine })
	const n = 200
	balancers := []struct {
		name  string
		keyed bool
		make  func() kafka.Balancer
	}{
		{"hash", true, func() kafka.Balancer { return &kafka.Hash{} }},
		{"leastbytes", false, func() kafka.Balancer { return &kafka.LeastBytes{} }},
	}
	for _, bal := range balancers {
		for _, codec := range kafkaGoCodecs {
			for _, acks := range kafkaGoAcks {
				t.Run(fmt.Sprintf("balancer=%s/codec=%s/acks=%s", bal.name, codec.name, acks.name), func(t *testing.T) {
					topic := fmt.Sprintf("kafkago-%s-%s-%s", bal.name, codec.name, acks.name)
					kafkaGoCreateTopic(t, c, topic, 3)
					w := kafkaGoWriter(t, c, topic)
					w.Balancer, w.Compression, w.RequiredAcks = bal.make(), codec.codec, acks.acks
					msgs, want := kafkaGoMessages(topic, n)
					kafkaGoWrite(t, w, msgs)
					got := kafkaGoReadAll(t, c, topic, 3, n)
					if len(got) < 2 {
						t.Fatalf("records landed in %d partitions of 3", len(got))
					}
					// kafka-go's Transport pools connections, and with acks=0 a
					// request is done once written, so the second call's batch
					// may leave on another connection before the broker has
					// read the first: Kafka orders requests per connection
					// only, so order is checked only when acks wait.
					kafkaGoCheckRead(t, got, want, bal.keyed, acks.acks != kafka.RequireNone)
				})
			}
		}
	}
	requireSendfile(t, c)
}

func TestKafkaGoAutoCreateTopic(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	const topic = "kafkago-auto-created"
	const n = 100
	w := kafkaGoWriter(t, c, topic)
	w.AllowAutoTopicCreation = true
	w.RequiredAcks = kafka.RequireAll
	msgs, want := kafkaGoMessages(topic, n)
	kafkaGoWrite(t, w, msgs)

	md, err := kafkaGoClient(t, c).Metadata(kafkaGoCtx(t, 10*time.Second), &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil || len(md.Topics[0].Partitions) != 1 {
		t.Fatalf("metadata of the auto-created topic: %+v, want 1 partition (num.partitions)", md.Topics)
	}
	kafkaGoCheckRead(t, kafkaGoReadAll(t, c, topic, 1, n), want, true, true)
}

func TestKafkaGoRestart(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	const topic = "kafkago-restart"
	const n = 300
	kafkaGoCreateTopic(t, c, topic, 3)
	w := kafkaGoWriter(t, c, topic)
	w.Balancer, w.Compression, w.RequiredAcks = &kafka.Hash{}, kafka.Lz4, kafka.RequireAll
	msgs, want := kafkaGoMessages("restart", n)
	kafkaGoWrite(t, w, msgs)

	c.Restart(0)

	kafkaGoCheckRead(t, kafkaGoReadAll(t, c, topic, 3, n), want, true, true)
}
