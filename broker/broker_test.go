package broker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/batch"
	"gregor/broker"
	"gregor/internal/testcluster"
	"gregor/raft"
	"gregor/segment"
)

func idempotentBatch(t *testing.T, pid int64, epoch int16, seq int32, n int) []byte {
	return idempotentBatchOf(t, pid, epoch, seq, n, 0)
}

// idempotentBatchOf builds an idempotent producer's batch of n records
// whose values are their sequence numbers, zero-padded to valueSize bytes.
func idempotentBatchOf(t *testing.T, pid int64, epoch int16, seq int32, n, valueSize int) []byte {
	t.Helper()
	o := batch.DefaultBuilderOptions()
	o.ProducerID, o.ProducerEpoch, o.BaseSequence = pid, epoch, seq
	bld := batch.NewBuilder(o)
	for i := range n {
		v := []byte(fmt.Sprint(int(seq) + i))
		if len(v) < valueSize {
			v = append(v, make([]byte, valueSize-len(v))...)
		}
		bld.Add(time.Now().UnixMilli(), nil, v, nil)
	}
	b, err := bld.AppendBatch(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestIdempotentProducerRetriesAndGaps(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "idem", 1, nil)
	r := dialRaw(t, c.Addrs()[0])
	ids := map[int64]bool{}
	var pid int64
	for range 3 {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.Version = 4
		resp := r.do(req).(*kmsg.InitProducerIDResponse)
		if resp.ErrorCode != 0 || resp.ProducerEpoch != 0 || ids[resp.ProducerID] {
			t.Fatalf("InitProducerId: error %v id %d epoch %d", kerr.ErrorForCode(resp.ErrorCode), resp.ProducerID, resp.ProducerEpoch)
		}
		ids[resp.ProducerID], pid = true, resp.ProducerID
	}
	first := idempotentBatch(t, pid, 0, 0, 4)
	if p := produceRaw(r, 9, -1, "idem", 0, first); p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("first batch: %v at %d", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}
	if p := produceRaw(r, 9, -1, "idem", 0, idempotentBatch(t, pid, 0, 4, 2)); p.ErrorCode != 0 || p.BaseOffset != 4 {
		t.Fatalf("second batch: %v at %d", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}
	// A retry of the first batch (the client never saw its response) is
	// answered with its original offset and not appended again.
	if p := produceRaw(r, 9, -1, "idem", 0, idempotentBatch(t, pid, 0, 0, 4)); p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("retried batch: %v at %d, want offset 0", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}
	if p := produceRaw(r, 9, -1, "idem", 0, idempotentBatch(t, pid, 0, 9, 1)); p.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("a sequence gap: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	if p := produceRaw(r, 9, -1, "idem", 0, recordBatch(t, 1, 1)); p.BaseOffset != 6 {
		t.Fatalf("log end after the retry and the gap: %d, want 6", p.BaseOffset)
	}
}

// TestRestartedBrokerFollowsNoMetadataBeforeCatchingUp guards a restarting
// broker against acting on the image it starts from (its last metadata
// snapshot's) before it has caught up with the metadata log: it must not
// lead the partitions that image gives it, at stale leader epochs, take
// appends for them, or answer Metadata from it (nor from an empty one), as
// Kafka's broker neither publishes its metadata nor serves before catching
// up. Broker 2's
// snapshot here has a topic that was deleted and created again since, and
// broker 2 restarts while the only controller is down, so it cannot catch
// up. It used to lead the old topic's partition from the snapshot and take
// a Produce for it, then, once caught up, delete the log of the topic
// created again (its id differs), and its records with it.
func TestRestartedBrokerFollowsNoMetadataBeforeCatchingUp(t *testing.T) {
	c := testcluster.StartMixed(t, 1, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	createTopicOn(t, c, "moved", []int32{2})
	if err := broker.SnapshotMetadata(c.Brokers[1]); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	adm := kadm.NewClient(newClient(t, c))
	if _, err := adm.DeleteTopics(ctx, "moved"); err != nil {
		t.Fatal(err)
	}
	c.WaitForImage(func(im *raft.Image) bool { _, ok := im.Topic("moved"); return !ok })
	createTopicOn(t, c, "moved", []int32{2})
	again, _ := c.Brokers[1].Image().Topic("moved")
	newID := again.ID
	r := dialRaw(t, c.Addrs()[1])
	if p := produceRaw(r, 9, -1, "moved", 0, recordBatch(t, 3, 10)); p.ErrorCode != 0 {
		t.Fatalf("producing to the topic created again: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	cfg := c.Config(1)
	c.Stop(1)
	c.Stop(0)

	// Alone, broker 2 has the snapshot's image for as long as it likes.
	b2, err := broker.Start(cfg, broker.Options{Logger: testcluster.Logger().With("node", 2), RaftLog: io.Discard})
	if err != nil {
		t.Fatalf("restarting broker 2: %v", err)
	}
	t.Cleanup(func() { b2.Close() })
	broker.SettleMetadata(b2)
	if _, ok := b2.Partition("moved", 0); ok {
		t.Errorf("before catching up, broker 2 hosts moved-0, as its snapshot has it")
	}
	// Nor does it serve clients: requests sent now are answered once it
	// has caught up, from the image it caught up to, neither from its
	// snapshot's nor from an empty one (no brokers, no topics).
	r = dialRaw(t, b2.Addr().String())
	produce := produceRequest(9, 1, producePart{"moved", 0, recordBatch(t, 1, 10)})
	r.write(r.frameOf(produce))
	produceCorr := r.corr
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("moved")
	md.Topics = append(md.Topics, mt)
	r.write(r.frameOf(md))
	mdCorr := r.corr
	if n := b2.NetStats().Connections; n != 0 {
		t.Errorf("before catching up, broker 2 has accepted %d client connections", n)
	}

	c.Restart(0)
	p := r.answer(produce, produceCorr).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	if p.ErrorCode == 0 && p.BaseOffset != 3 {
		t.Errorf("broker 2 appended to moved-0 at offset %d, want 3: not the log of the topic created again", p.BaseOffset)
	}
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil && !kerr.IsRetriable(err) {
		t.Errorf("producing to moved-0 as broker 2 caught up: %v", err)
	}
	moved := r.answer(md, mdCorr).(*kmsg.MetadataResponse).Topics[0]
	if moved.ErrorCode != 0 || raft.UUID(moved.TopicID) != newID {
		t.Errorf("broker 2 answered Metadata for moved with %v and topic id %s, want the topic created again, %s",
			kerr.ErrorForCode(moved.ErrorCode), raft.UUID(moved.TopicID), newID)
	}
	if err := b2.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	for {
		changed := b2.ImageChanged()
		if tp, ok := b2.Image().Topic("moved"); ok && tp.Partitions[0].Leader == 2 {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatal("broker 2 does not lead moved-0 after catching up")
		}
	}
	if p, ok := b2.Partition("moved", 0); !ok || p.Log().LogEndOffset() != 3 {
		t.Errorf("after catching up, moved-0 on broker 2 is not the log of its 3 records")
	}
}

// TestPartitionOfATopicCreatedAgainStartsEmpty: nothing removed the logs a
// broker finds at start-up that its caught-up image does not give it.
// Here reborn-1 lived on broker 2, which was down while reborn was deleted
// and created again with one partition elsewhere; its old log stayed. When
// reborn grew a partition 1 on broker 2, that log, the deleted topic's
// records included, became the new partition: a consumer read records of a
// topic deleted long ago. Kafka's broker deletes such a stray log on its
// first metadata publish (LogManager.isStrayKraftReplica,
// BrokerMetadataPublisher.initializeManagers), and so does Gregor's, before
// it serves: the new partition starts empty.
func TestPartitionOfATopicCreatedAgainStartsEmpty(t *testing.T) {
	c := testcluster.StartMixed(t, 1, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	createTopicOn(t, c, "reborn", []int32{1, 2})
	r := dialRaw(t, c.Addrs()[1])
	if p := produceRaw(r, 9, -1, "reborn", 1, recordBatch(t, 3, 10)); p.ErrorCode != 0 {
		t.Fatalf("producing: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	c.Stop(1)

	adm := kadm.NewClient(newClient(t, c))
	if _, err := adm.DeleteTopics(ctx, "reborn"); err != nil {
		t.Fatal(err)
	}
	c.WaitForImage(func(im *raft.Image) bool { _, ok := im.Topic("reborn"); return !ok })
	createTopicOn(t, c, "reborn", []int32{1})
	c.Restart(1)
	logDir := c.Config(1).Storage.LogDirs[0]
	if _, err := os.Stat(filepath.Join(logDir, "reborn-1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ready after a restart, broker 2 still has the deleted topic's reborn-1: %v", err)
	}
	if dirs := deleteDirsOf(t, logDir, "reborn-1"); len(dirs) != 1 {
		t.Errorf("log dir holds %v, want one reborn-1.<id>-delete directory", dirs)
	}

	req := kmsg.NewPtrCreatePartitionsRequest()
	req.TimeoutMillis = 10000
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = "reborn", 2
	a := kmsg.NewCreatePartitionsRequestTopicAssignment()
	a.Replicas = []int32{2}
	rt.Assignment = append(rt.Assignment, a)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, newClient(t, c))
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		t.Fatalf("adding reborn-1 on broker 2: %v", err)
	}
	c.WaitForTopic("reborn")
	c.WaitForImage(func(im *raft.Image) bool {
		tp, _ := im.Topic("reborn")
		return len(tp.Partitions) == 2 && tp.Partitions[1].Leader == 2
	})
	until(t, "broker 2 to host reborn-1", func() bool { _, ok := c.Brokers[1].Partition("reborn", 1); return ok })
	p, _ := c.Brokers[1].Partition("reborn", 1)
	if end := p.Log().LogEndOffset(); end != 0 {
		t.Errorf("reborn-1, just created, has log end %d: it is the deleted topic's log, records and all", end)
	}
}

// TestLogOfADeletedTopicIsNotTakenForTheNewOne: a broker that crashes
// stays unfenced for broker.session.timeout.ms, so a topic deleted and
// created again meanwhile may put its partition on that broker again; when
// it restarts, the image gives it the partition by name, and the log on
// disk holds the deleted topic's records, which it used to serve as the
// new topic's. The log's partition.metadata names the deleted topic's id:
// hosting the partition deletes the log and starts the partition empty.
// Here the broker is stopped and the file given another id, as the
// deleted topic's log would have it.
func TestLogOfADeletedTopicIsNotTakenForTheNewOne(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "reborn", 1, nil)
	r := dialRaw(t, c.Addrs()[0])
	if p := produceRaw(r, 9, -1, "reborn", 0, recordBatch(t, 3, 10)); p.ErrorCode != 0 {
		t.Fatalf("producing: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	c.Stop(0)
	logDir := c.Config(0).Storage.LogDirs[0]
	deleted := "version: 0\ntopic_id: " + (raft.UUID{1, 2, 3}).String()
	if err := os.WriteFile(filepath.Join(logDir, "reborn-0", segment.PartitionMetadataFileName), []byte(deleted), 0o644); err != nil {
		t.Fatal(err)
	}
	c.Restart(0)
	p, ok := c.Brokers[0].Partition("reborn", 0)
	if !ok {
		t.Fatal("ready after a restart, the broker does not host reborn-0")
	}
	if end := p.Log().LogEndOffset(); end != 0 {
		t.Errorf("reborn-0 has log end %d: it is the deleted topic's log", end)
	}
	tp, _ := c.Brokers[0].Image().Topic("reborn")
	if id, ok := p.Log().TopicID(); !ok || id != segment.TopicID(tp.ID) {
		t.Errorf("reborn-0 records topic id %s (%v), want %s", id, ok, tp.ID)
	}
	if dirs := deleteDirsOf(t, logDir, "reborn-0"); len(dirs) != 1 {
		t.Errorf("log dir holds %v, want one reborn-0.<id>-delete directory", dirs)
	}
}

// TestLogsWithoutATopicIDAfterAnUpgrade: a Gregor that kept no
// partition.metadata left logs without a topic id. Restarted, a broker
// keeps such a log, records and all, for the partition of that name it is
// given, and records the topic's id in it; one of a topic deleted while it
// was down is stray, and goes.
func TestLogsWithoutATopicIDAfterAnUpgrade(t *testing.T) {
	c := testcluster.StartMixed(t, 1, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	createTopicOn(t, c, "kept", []int32{2})
	createTopicOn(t, c, "gone", []int32{2})
	r := dialRaw(t, c.Addrs()[1])
	for _, topic := range []string{"kept", "gone"} {
		if p := produceRaw(r, 9, -1, topic, 0, recordBatch(t, 3, 10)); p.ErrorCode != 0 {
			t.Fatalf("producing to %s: %v", topic, kerr.ErrorForCode(p.ErrorCode))
		}
	}
	c.Stop(1)
	logDir := c.Config(1).Storage.LogDirs[0]
	for _, tp := range []string{"kept-0", "gone-0"} {
		if err := os.Remove(filepath.Join(logDir, tp, segment.PartitionMetadataFileName)); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(newClient(t, c))
	if _, err := adm.DeleteTopics(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	c.WaitForImage(func(im *raft.Image) bool { _, ok := im.Topic("gone"); return !ok })
	c.Restart(1)

	if dirs := deleteDirsOf(t, logDir, "gone-0"); len(dirs) != 1 {
		t.Errorf("log dir holds %v, want one gone-0.<id>-delete directory", dirs)
	}
	until(t, "broker 2 to host kept-0", func() bool { _, ok := c.Brokers[1].Partition("kept", 0); return ok })
	p, _ := c.Brokers[1].Partition("kept", 0)
	if end := p.Log().LogEndOffset(); end != 3 {
		t.Errorf("kept-0 has log end %d after the restart, want its 3 records", end)
	}
	tp, _ := c.Brokers[1].Image().Topic("kept")
	data, err := os.ReadFile(filepath.Join(logDir, "kept-0", segment.PartitionMetadataFileName))
	if want := "version: 0\ntopic_id: " + tp.ID.String(); err != nil || string(data) != want {
		t.Errorf("kept-0's partition.metadata: %q, %v; want %q", data, err, want)
	}
}

// deleteDirsOf lists the <tp>.<id>-delete directories in logDir.
func deleteDirsOf(t *testing.T, logDir, tp string) []string {
	t.Helper()
	entries, err := os.ReadDir(logDir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tp+".") && strings.HasSuffix(e.Name(), "-delete") {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestProducerStateSurvivesRestart: after a restart, a producer whose
// batches lie in rolled segments is still known: a retry is a duplicate, a
// gap is out of order, an older epoch is fenced (the producer-state
// snapshot of the clean shutdown).
func TestProducerStateSurvivesRestart(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "roll", 1, map[string]*string{"segment.bytes": kmsg.StringPtr("1024")})
	r := dialRaw(t, c.Addrs()[0])
	retried := idempotentBatch(t, 11, 0, 0, 2)
	for i, b := range [][]byte{retried, idempotentBatch(t, 12, 0, 0, 1), idempotentBatch(t, 13, 5, 0, 1), recordBatch(t, 1, 900)} {
		if p := produceRaw(r, 9, -1, "roll", 0, b); p.ErrorCode != 0 {
			t.Fatalf("batch %d: %v", i, kerr.ErrorForCode(p.ErrorCode))
		}
	}
	c.Restart(0)
	r = dialRaw(t, c.Addrs()[0])
	if p := produceRaw(r, 9, -1, "roll", 0, retried); p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Errorf("retry after restart: %v at %d, want a duplicate at 0", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}
	if p := produceRaw(r, 9, -1, "roll", 0, idempotentBatch(t, 12, 0, 50, 1)); p.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Errorf("gap after restart: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	if p := produceRaw(r, 9, -1, "roll", 0, idempotentBatch(t, 13, 4, 0, 1)); p.ErrorCode != kerr.InvalidProducerEpoch.Code {
		t.Errorf("older epoch after restart: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	if p := produceRaw(r, 9, -1, "roll", 0, recordBatch(t, 1, 1)); p.BaseOffset != 5 {
		t.Errorf("log end %d, want 5: something was appended twice or not at all", p.BaseOffset)
	}
}

func TestTransactionalProducerIsRefused(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	r := dialRaw(t, c.Addrs()[0])
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version, req.TransactionalID = 4, kmsg.StringPtr("tx")
	if resp := r.do(req).(*kmsg.InitProducerIDResponse); resp.ErrorCode == 0 {
		t.Fatal("a transactional producer got a producer id")
	}
}

// TestInitProducerIDTakesBothOrNeither: producer_id and producer_epoch (v3+)
// are both -1 (a new producer) or both set (one bumping its epoch, which
// gets a new id here, as Kafka gives a producer without a transactional
// id); only one of them set is INVALID_REQUEST, as in Kafka.
func TestInitProducerIDTakesBothOrNeither(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	r := dialRaw(t, c.Addrs()[0])
	for _, tc := range []struct {
		id    int64
		epoch int16
		want  *kerr.Error
	}{
		{-1, 3, kerr.InvalidRequest},
		{5, -1, kerr.InvalidRequest},
		{-1, -1, nil},
		{5, 3, nil},
	} {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.Version, req.ProducerID, req.ProducerEpoch = 4, tc.id, tc.epoch
		resp := r.do(req).(*kmsg.InitProducerIDResponse)
		switch {
		case tc.want != nil && (resp.ErrorCode != tc.want.Code || resp.ProducerID != -1):
			t.Errorf("producer_id %d epoch %d: %s, id %d; want %s and no id", tc.id, tc.epoch, code(resp.ErrorCode), resp.ProducerID, tc.want.Message)
		case tc.want == nil && (resp.ErrorCode != 0 || resp.ProducerID < 0 || resp.ProducerEpoch != 0):
			t.Errorf("producer_id %d epoch %d: %s, id %d epoch %d; want a new id at epoch 0", tc.id, tc.epoch, code(resp.ErrorCode), resp.ProducerID, resp.ProducerEpoch)
		}
	}
}

func fetchOnce(r *rawConn, topic string, offset int64, minBytes, maxWaitMs int32) kmsg.FetchResponseTopicPartition {
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.MaxBytes, req.MinBytes, req.MaxWaitMillis, req.SessionEpoch = 12, 1<<20, minBytes, maxWaitMs, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset, rp.PartitionMaxBytes = offset, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return r.do(req).(*kmsg.FetchResponse).Topics[0].Partitions[0]
}

func TestLongPollIsWokenByAppend(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "poll", 1, nil)
	consumer := dialRaw(t, c.Addrs()[0])
	// The fetch waits up to a minute; the connection's deadline (20 s)
	// fails the test unless the append wakes it.
	got := make(chan kmsg.FetchResponseTopicPartition, 1)
	go func() { got <- fetchOnce(consumer, "poll", 0, 1, 60_000) }()
	producer := dialRaw(t, c.Addrs()[0])
	produceRaw(producer, 9, 1, "poll", 0, recordBatch(t, 2, 100))
	select {
	case p := <-got:
		if p.ErrorCode != 0 || p.HighWatermark != 2 || len(p.RecordBatches) == 0 {
			t.Fatalf("woken fetch: %v hw %d, %d bytes", kerr.ErrorForCode(p.ErrorCode), p.HighWatermark, len(p.RecordBatches))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the parked fetch was not woken by the append")
	}
	// With nothing new, the fetch answers empty once max_wait_ms passes.
	if p := fetchOnce(consumer, "poll", 2, 1, 100); p.ErrorCode != 0 || len(p.RecordBatches) != 0 {
		t.Fatalf("timed-out fetch: %v, %d bytes", kerr.ErrorForCode(p.ErrorCode), len(p.RecordBatches))
	}
}

func TestFetchFirstBatchWholeAndMaxBytes(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "big", 1, nil)
	r := dialRaw(t, c.Addrs()[0])
	big := recordBatch(t, 1, 64<<10)
	produceRaw(r, 9, 1, "big", 0, big)
	produceRaw(r, 9, 1, "big", 0, recordBatch(t, 1, 64<<10))
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.MaxBytes, req.SessionEpoch = 12, 1024, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "big"
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 1024
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	p := r.do(req).(*kmsg.FetchResponse).Topics[0].Partitions[0]
	// KIP-74: the first batch comes whole although it is larger than both
	// limits, so a consumer can always make progress; nothing more comes.
	if len(p.RecordBatches) != len(big) {
		t.Fatalf("fetched %d bytes, want exactly the first batch (%d)", len(p.RecordBatches), len(big))
	}
}

// TestFetchFirstBatchWholeOnlyInFirstPartition: KIP-74 lets the first
// partition with data exceed the limits by its first batch; every later
// partition stays within its own max and what is left of the total. One
// whose first batch does not fit gets no records: it was sent a piece of
// that batch, but Kafka sends none (ReplicaManager.readFromLog replaces
// an incomplete set with an empty one), and the Java consumer fails on a
// partition holding bytes but no whole batch ("no complete records were
// found").
func TestFetchFirstBatchWholeOnlyInFirstPartition(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "kip74", 2, nil)
	r := dialRaw(t, c.Addrs()[0])
	big := recordBatch(t, 1, 64<<10)
	for p := range int32(2) {
		produceRaw(r, 9, 1, "kip74", p, big)
	}
	fetch := func(maxBytes, partitionMaxBytes int32) []int {
		req := kmsg.NewPtrFetchRequest()
		req.Version, req.MaxBytes, req.SessionEpoch = 12, maxBytes, -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "kip74"
		for p := range int32(2) {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.PartitionMaxBytes = p, partitionMaxBytes
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		var got []int
		for _, p := range r.do(req).(*kmsg.FetchResponse).Topics[0].Partitions {
			got = append(got, len(p.RecordBatches))
		}
		return got
	}
	if got := fetch(100<<10, 1<<20); got[0] != len(big) || got[1] != 0 {
		t.Errorf("max_bytes 100 KiB: fetched %v bytes, want [%d 0]", got, len(big))
	}
	if got := fetch(1<<20, 1024); got[0] != len(big) || got[1] != 0 {
		t.Errorf("partition_max_bytes 1 KiB: fetched %v bytes, want [%d 0]", got, len(big))
	}
	if got := fetch(1<<20, 1<<20); got[0] != len(big) || got[1] != len(big) {
		t.Errorf("room for both: fetched %v bytes, want [%d %d]", got, len(big), len(big))
	}
}

// TestFetchWaitsForMinBytes: a fetch with some data but less than
// min_bytes waits for appends to bring the rest.
func TestFetchWaitsForMinBytes(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "minbytes", 1, nil)
	producer, consumer := dialRaw(t, c.Addrs()[0]), dialRaw(t, c.Addrs()[0])
	first := recordBatch(t, 1, 100)
	produceRaw(producer, 9, 1, "minbytes", 0, first)
	got := make(chan kmsg.FetchResponseTopicPartition, 1)
	go func() { got <- fetchOnce(consumer, "minbytes", 0, int32(len(first)+1), 60_000) }()
	waitFetchesWaiting(t, c.Brokers[0], 1)
	second := recordBatch(t, 1, 100)
	produceRaw(producer, 9, 1, "minbytes", 0, second)
	select {
	case p := <-got:
		if p.ErrorCode != 0 || len(p.RecordBatches) != len(first)+len(second) {
			t.Fatalf("fetch: %v, %d bytes, want both batches (%d)", kerr.ErrorForCode(p.ErrorCode), len(p.RecordBatches), len(first)+len(second))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the append did not complete the fetch")
	}
}

// waitFetchesWaiting waits, within a bound, until b has n fetches parked.
func waitFetchesWaiting(t *testing.T, b *broker.Broker, n int64) {
	t.Helper()
	if err := fetchesWaiting(b, n); err != nil {
		t.Fatal(err)
	}
}

// fetchesWaiting waits up to 20 s until b has n fetches parked; safe to
// call from any goroutine.
func fetchesWaiting(b *broker.Broker, n int64) error {
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		if b.FetchesWaiting() == n {
			return nil
		}
		runtime.Gosched()
	}
	return fmt.Errorf("%d fetches waiting, want %d", b.FetchesWaiting(), n)
}

// until waits for cond, failing the test if it does not hold within 20 s:
// a bounded wait on a condition the test cannot be told of otherwise.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("waited 20s for %s", what)
		}
		runtime.Gosched()
	}
}

// TestOffsetForLeaderEpoch: a leader records its epoch at the log end when
// elected, so the current epoch ends at the log end even before anything is
// appended in it, and an earlier epoch ends where the next one starts.
func TestOffsetForLeaderEpoch(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "epochs", 1, nil)
	leaderEpoch := func() int32 {
		tp, _ := c.Brokers[0].Image().Topic("epochs")
		return tp.Partitions[0].LeaderEpoch
	}
	endOf := func(epoch int32) [2]int64 {
		t.Helper()
		p := dialRaw(t, c.Addrs()[0]).do(offsetForLeaderEpochRequest("epochs", -1, epoch)).(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0]
		if p.ErrorCode != 0 {
			t.Fatalf("OffsetForLeaderEpoch(%d): %v", epoch, kerr.ErrorForCode(p.ErrorCode))
		}
		return [2]int64{int64(p.LeaderEpoch), p.EndOffset}
	}
	first := leaderEpoch()
	if got, want := endOf(first), [2]int64{int64(first), 0}; got != want {
		t.Fatalf("empty log, epoch %d: (epoch, end) %v, want %v", first, got, want)
	}
	produceRaw(dialRaw(t, c.Addrs()[0]), 9, 1, "epochs", 0, recordBatch(t, 3, 10))

	c.Restart(0)
	c.WaitForImage(func(im *raft.Image) bool {
		tp, ok := im.Topic("epochs")
		return ok && tp.Partitions[0].Leader == 1 && tp.Partitions[0].LeaderEpoch > first
	})
	second := leaderEpoch()
	for _, tc := range []struct {
		epoch int32
		want  [2]int64
	}{
		{second, [2]int64{int64(second), 3}}, // elected, nothing appended yet
		{first, [2]int64{int64(first), 3}},
		{second + 1, [2]int64{-1, -1}}, // an epoch this log has not reached
	} {
		if got := endOf(tc.epoch); got != tc.want {
			t.Errorf("after the restart, epoch %d: (epoch, end) %v, want %v", tc.epoch, got, tc.want)
		}
	}
	produceRaw(dialRaw(t, c.Addrs()[0]), 9, 1, "epochs", 0, recordBatch(t, 2, 10))
	if got, want := endOf(second), [2]int64{int64(second), 5}; got != want {
		t.Errorf("after appending in epoch %d: (epoch, end) %v, want %v", second, got, want)
	}
	if got, want := endOf(first), [2]int64{int64(first), 3}; got != want {
		t.Errorf("after appending, epoch %d: (epoch, end) %v, want %v", first, got, want)
	}
}

func TestThreeBrokersSpreadLeadersAndRouteClients(t *testing.T) {
	c := testcluster.Start(t, 3, nil)
	createTopic(t, c, "spread", 6, nil)
	im := c.Brokers[0].Image()
	leaders := map[int32]int{}
	tp, _ := im.Topic("spread")
	for _, p := range tp.Partitions {
		leaders[p.Leader]++
	}
	if len(leaders) != 3 {
		t.Fatalf("leaders of 6 partitions on 3 brokers: %v", leaders)
	}
	// A produce to a broker that does not lead the partition is refused.
	for i, p := range tp.Partitions {
		other := (int(p.Leader) % 3) // index of a broker that is not the leader (ids are 1..3)
		r := dialRaw(t, c.Addrs()[other])
		got := produceRaw(r, 9, 1, "spread", int32(i), recordBatch(t, 1, 1))
		if got.ErrorCode != kerr.NotLeaderForPartition.Code {
			t.Fatalf("produce to broker %d for partition %d led by %d: %v", other+1, i, p.Leader, kerr.ErrorForCode(got.ErrorCode))
		}
	}
	// A client following Metadata reaches every leader.
	cl := newClient(t, c, kgo.DefaultProduceTopic("spread"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 300
	for i := range n {
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if got := consumeAll(t, c, "spread", n); len(got) != n {
		t.Fatalf("consumed %d of %d", len(got), n)
	}
}

func TestBrokerOnlyNodeFollowsTheQuorum(t *testing.T) {
	c := testcluster.StartMixed(t, 1, 2, nil)
	createTopic(t, c, "mixed", 6, nil)
	tp, _ := c.Brokers[2].Image().Topic("mixed")
	leaders := map[int32]bool{}
	for _, p := range tp.Partitions {
		leaders[p.Leader] = true
	}
	if len(leaders) != 3 {
		t.Fatalf("partitions led by %v; want all three nodes", leaders)
	}
	cl := newClient(t, c, kgo.DefaultProduceTopic("mixed"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 120
	for i := range n {
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if got := consumeAll(t, c, "mixed", n); len(got) != n {
		t.Fatalf("consumed %d of %d", len(got), n)
	}
}

func TestFetchCopyPathWhenSendfileDisabled(t *testing.T) {
	c := testcluster.Start(t, 1, func(_ int, cfg *broker.Config) { cfg.FetchSendfileEnable = false })
	createTopic(t, c, "copy", 1, nil)
	cl := newClient(t, c, kgo.DefaultProduceTopic("copy"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 50 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if got := consumeAll(t, c, "copy", 50); len(got) != 50 {
		t.Fatalf("consumed %d of 50", len(got))
	}
	if st := c.Brokers[0].NetStats(); st.SendfileBytes != 0 || st.CopiedBytes == 0 {
		t.Fatalf("with fetch.sendfile.enable=false: %+v", st)
	}
}

// alterTopic changes topic's configs and returns the request's error or
// the topic's, if any.
func alterTopic(ctx context.Context, adm *kadm.Client, topic string, changes ...kadm.AlterConfig) error {
	resps, err := adm.AlterTopicConfigs(ctx, changes, topic)
	if err == nil {
		var r kadm.AlterConfigsResponse
		r, err = resps.On(topic, nil)
		err = errors.Join(err, r.Err)
	}
	return err
}

func TestTopicConfigsApplyToLogs(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "cfg", 1, map[string]*string{"segment.bytes": kmsg.StringPtr("1048576")})
	p, ok := c.Brokers[0].Partition("cfg", 0)
	if !ok {
		t.Fatal("the broker does not host cfg-0")
	}
	if got := p.Log().Config().SegmentBytes; got != 1<<20 {
		t.Fatalf("segment.bytes of the new log: %d", got)
	}
	adm := kadm.NewClient(newClient(t, c))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	alter := func(changes ...kadm.AlterConfig) error { return alterTopic(ctx, adm, "cfg", changes...) }
	if err := alter(
		kadm.AlterConfig{Op: kadm.SetConfig, Name: "retention.ms", Value: kmsg.StringPtr("60000")},
		kadm.AlterConfig{Op: kadm.SetConfig, Name: "max.compaction.lag.ms", Value: kmsg.StringPtr("3600000")},
		kadm.AlterConfig{Op: kadm.SetConfig, Name: "segment.jitter.ms", Value: kmsg.StringPtr("60000")},
		kadm.AlterConfig{Op: kadm.SetConfig, Name: "file.delete.delay.ms", Value: kmsg.StringPtr("0")},
		kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "segment.bytes"},
	); err != nil {
		t.Fatal(err)
	}
	// The change reaches the log once the broker has published it. Kafka's
	// file.delete.delay.ms=0 is 1 ms (zero is "the default" in segment.Config).
	c.WaitForImage(func(*raft.Image) bool {
		cfg := p.Log().Config()
		return cfg.RetentionMs == 60000 && cfg.MaxCompactionLagMs == 3600000 && cfg.SegmentJitterMs == 60000 &&
			cfg.FileDeleteDelayMs == 1 && cfg.SegmentBytes == segment.DefaultSegmentBytes
	})
	if err := alter(kadm.AlterConfig{Op: kadm.SetConfig, Name: "retention.ms", Value: kmsg.StringPtr("soon")}); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("a non-numeric retention.ms: %v, want INVALID_CONFIG", err)
	}
	// Kafka refuses a min.compaction.lag.ms above max.compaction.lag.ms,
	// at creation and as an alteration would leave the topic.
	if err := alter(kadm.AlterConfig{Op: kadm.SetConfig, Name: "min.compaction.lag.ms", Value: kmsg.StringPtr("7200000")}); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("min.compaction.lag.ms above the topic's max.compaction.lag.ms: %v, want INVALID_CONFIG", err)
	}
	created, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"min.compaction.lag.ms": kmsg.StringPtr("2"), "max.compaction.lag.ms": kmsg.StringPtr("1")}, "lags")
	if err == nil {
		err = created.Err
	}
	if !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("a topic created with min.compaction.lag.ms above max.compaction.lag.ms: %v, want INVALID_CONFIG", err)
	}
}

// TestActiveControllerFailover stops the node that is the active controller
// of a three-node cluster: another voter takes over, the survivors keep
// serving the partitions they lead, and admin requests work again.
func TestActiveControllerFailover(t *testing.T) {
	c := testcluster.Start(t, 3, nil)
	createTopic(t, c, "before", 6, nil)
	var active int
	for i, b := range c.Brokers {
		if b.IsActiveController() {
			active = i
		}
	}
	c.Stop(active)
	survivor := (active + 1) % 3
	// A topic created after the failover lands on the surviving brokers.
	createTopic(t, c, "after", 4, nil)
	im := c.Brokers[survivor].Image()
	tp, _ := im.Topic("after")
	for i, p := range tp.Partitions {
		if p.Leader == int32(active+1) {
			t.Fatalf("partition %d of a topic created after the failover is led by the stopped broker", i)
		}
	}
	cl := newClient(t, c, kgo.DefaultProduceTopic("after"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 40 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if got := consumeAll(t, c, "after", 40); len(got) != 40 {
		t.Fatalf("consumed %d of 40", len(got))
	}
	// The stopped broker's partitions of the old topic have no leader (one
	// replica each); the others still take writes.
	old, _ := c.Brokers[survivor].Image().Topic("before")
	for i, p := range old.Partitions {
		switch {
		case p.Leader == int32(active+1):
			t.Fatalf("partition %d still led by the stopped broker", i)
		case p.Leader < 0:
			continue
		}
		r := dialRaw(t, c.Brokers[p.Leader-1].Addr().String())
		if got := produceRaw(r, 9, 1, "before", int32(i), recordBatch(t, 1, 1)); got.ErrorCode != 0 {
			t.Fatalf("produce to partition %d on broker %d after the failover: %v", i, p.Leader, kerr.ErrorForCode(got.ErrorCode))
		}
	}
}

// TestHeartbeatsKeepALeavingBrokerFenced: once a controlled shutdown has
// fenced a broker, the heartbeats its lifecycle loop sends until Close stops
// the loop keep it fenced. One that did not ask to shut down unfenced it, and
// a controller that took over then placed new partitions on the stopped
// broker (TestActiveControllerFailover failed so in CI).
func TestHeartbeatsKeepALeavingBrokerFenced(t *testing.T) {
	c := testcluster.StartMixed(t, 1, 1, nil)
	b := c.Brokers[1]
	b.ControlledShutdown()
	r := b.Heartbeat()
	if r == nil || r.ErrorCode != 0 || !r.IsFenced || !r.ShouldShutdown {
		t.Fatalf("a heartbeat after the controlled shutdown got %+v, want fenced and told to shut down", r)
	}
	// The controller's node applied the fencing before it answered; each
	// broker's published image follows a moment later.
	c.WaitForImage(func(im *raft.Image) bool { bi := im.Brokers[2]; return bi != nil && bi.Fenced })
}

func TestControllerOnlyNode(t *testing.T) {
	c := testcluster.StartMixed(t, 1, 2, func(i int, cfg *broker.Config) {
		if i == 0 {
			cfg.Quorum.Roles = "controller"
		}
	})
	if c.Brokers[0].IsBroker() || c.Brokers[0].Addr() != nil {
		t.Fatal("a controller-only node serves clients")
	}
	createTopic(t, c, "dedicated", 4, nil)
	tp, _ := c.Brokers[1].Image().Topic("dedicated")
	for i, p := range tp.Partitions {
		if p.Leader == 1 {
			t.Fatalf("partition %d is led by the controller-only node", i)
		}
	}
	if _, ok := c.Brokers[1].Image().Brokers[1]; ok {
		t.Fatal("the controller-only node registered as a broker")
	}
	cl := newClient(t, c, kgo.DefaultProduceTopic("dedicated"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 40 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if got := consumeAll(t, c, "dedicated", 40); len(got) != 40 {
		t.Fatalf("consumed %d of 40", len(got))
	}
}

// TestDuplicateAnsweredWithItsAppendTime: on a LogAppendTime topic, a
// retried idempotent batch is answered with the broker's timestamp of the
// original append, before and after a restart rebuilds the producer state
// from the log.
func TestDuplicateAnsweredWithItsAppendTime(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "stamped", 1, map[string]*string{"message.timestamp.type": kmsg.StringPtr("LogAppendTime")})
	r := dialRaw(t, c.Addrs()[0])
	init := kmsg.NewPtrInitProducerIDRequest()
	init.Version = 4
	pid := r.do(init).(*kmsg.InitProducerIDResponse).ProducerID
	b := idempotentBatch(t, pid, 0, 0, 3)
	first := produceRaw(r, 9, -1, "stamped", 0, append([]byte(nil), b...))
	if first.ErrorCode != 0 || first.LogAppendTime < 0 {
		t.Fatalf("first append: %v, log append time %d", kerr.ErrorForCode(first.ErrorCode), first.LogAppendTime)
	}
	if p := produceRaw(r, 9, -1, "stamped", 0, append([]byte(nil), b...)); p.ErrorCode != 0 || p.BaseOffset != 0 || p.LogAppendTime != first.LogAppendTime {
		t.Fatalf("retry: %v at %d, log append time %d, want %d", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset, p.LogAppendTime, first.LogAppendTime)
	}
	c.Restart(0)
	c.WaitForTopic("stamped")
	r = dialRaw(t, c.Addrs()[0])
	if p := produceRaw(r, 9, -1, "stamped", 0, append([]byte(nil), b...)); p.ErrorCode != 0 || p.BaseOffset != 0 || p.LogAppendTime != first.LogAppendTime {
		t.Fatalf("retry after a restart: %v at %d, log append time %d, want %d", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset, p.LogAppendTime, first.LogAppendTime)
	}
}

// TestFailedWhenTheQuorumNodeStops: a broker whose metadata quorum node
// stops under it (as one does on an entry it cannot apply) reports that it
// has stopped serving, so that what runs it can exit rather than look
// healthy; a broker that is closed reports nothing.
func TestFailedWhenTheQuorumNodeStops(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	b := c.Brokers[0]
	select {
	case <-b.Failed():
		t.Fatalf("failed before anything stopped: %v", b.Err())
	default:
	}
	if err := broker.StopQuorumNode(b); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.Failed():
	case <-time.After(30 * time.Second):
		t.Fatal("no failure reported 30s after the quorum node stopped")
	}
	if err := b.Err(); err == nil || !strings.Contains(err.Error(), "metadata quorum node stopped") {
		t.Errorf("Err() = %v", err)
	}
	start := time.Now()
	c.Stop(0)
	t.Logf("closed in %v after the quorum node stopped", time.Since(start))

	c2 := testcluster.Start(t, 1, nil)
	b2 := c2.Brokers[0]
	c2.Stop(0)
	select {
	case <-b2.Failed():
		t.Errorf("a closed broker reports a failure: %v", b2.Err())
	default:
	}
}
