package broker_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/broker"
	"gregor/internal/testcluster"
	"gregor/netio"
	"gregor/raft"
)

// The read path's corners where Kafka has a rule (KafkaApis.handleFetchRequest,
// ReplicaManager, FetchManager, handleListOffsetRequest,
// handleTopicMetadataRequest), each found by an audit against Kafka's source.

func fetchRequest(version int16, topic string, partitions ...int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.ReplicaID, req.MaxBytes, req.SessionEpoch = version, -1, 1<<20, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	for _, p := range partitions {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = p, 1<<20, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

// whenParked runs wake from another goroutine once b has a fetch parked,
// and reports wake's error.
func whenParked(b *broker.Broker, wake func() error) <-chan error {
	done := make(chan error, 1)
	go func() {
		if err := fetchesWaiting(b, 1); err != nil {
			done <- err
			return
		}
		done <- wake()
	}()
	return done
}

// TestFetchUnknownPartitionsKeepLongPoll: a partition the metadata does
// not know is answered with its error, but does not end the long poll of
// the partitions it does know: the fetch parks, and an append wakes it.
func TestFetchUnknownPartitionsKeepLongPoll(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "lp", 1, nil)
	r := dialRaw(t, c.Addrs()[0])
	cl := newClient(t, c, kgo.DefaultProduceTopic("lp"))
	tp, _ := c.Brokers[0].Image().Topic("lp")
	for _, tc := range []struct {
		name string
		add  func(*kmsg.FetchRequest)
		want int16
	}{
		{"unknown topic", func(req *kmsg.FetchRequest) {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.Partitions = "nope", slices.Clone(req.Topics[0].Partitions)
			req.Topics = append(req.Topics, rt)
		}, kerr.UnknownTopicOrPartition.Code},
		{"unknown partition", func(req *kmsg.FetchRequest) {
			p := req.Topics[0].Partitions[0]
			p.Partition = 7
			req.Topics[0].Partitions = append(req.Topics[0].Partitions, p)
		}, kerr.UnknownTopicOrPartition.Code},
		{"unknown topic id", func(req *kmsg.FetchRequest) {
			req.Version, req.Topics[0].TopicID = 13, tp.ID
			rt := kmsg.NewFetchRequestTopic()
			rt.TopicID, rt.Partitions = [16]byte{9, 9, 9}, slices.Clone(req.Topics[0].Partitions)
			req.Topics = append(req.Topics, rt)
		}, kerr.UnknownTopicID.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := c.Brokers[0].Partition("lp", 0)
			req := fetchRequest(12, "lp", 0)
			req.Topics[0].Partitions[0].FetchOffset = p.LogEndOffset()
			req.MinBytes, req.MaxWaitMillis = 1, 60_000
			tc.add(req)
			done := whenParked(c.Brokers[0], func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				return cl.ProduceSync(ctx, &kgo.Record{Value: []byte("wake")}).FirstErr()
			})
			resp := r.do(req).(*kmsg.FetchResponse)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			known, unknown := resp.Topics[0].Partitions[0], resp.Topics[len(resp.Topics)-1].Partitions[len(resp.Topics[len(resp.Topics)-1].Partitions)-1]
			if known.ErrorCode != 0 || len(known.RecordBatches) == 0 || unknown.ErrorCode != tc.want {
				t.Fatalf("known partition: %v, %d bytes; unknown one: %v, want %v",
					kerr.ErrorForCode(known.ErrorCode), len(known.RecordBatches), kerr.ErrorForCode(unknown.ErrorCode), kerr.ErrorForCode(tc.want))
			}
		})
	}
}

// TestFetchMaxBytesZeroLongPolls: a fetch whose max_bytes is 0 has no room,
// but room is not data: with nothing to read it waits for min_bytes like any
// other (Kafka answers at once only on data, an error or no wait), and the
// append that wakes it is sent whole, as KIP-74's first batch.
func TestFetchMaxBytesZeroLongPolls(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "zero", 1, nil)
	r := dialRaw(t, c.Addrs()[0])
	cl := newClient(t, c, kgo.DefaultProduceTopic("zero"))
	req := fetchRequest(12, "zero", 0)
	req.MaxBytes, req.MinBytes, req.MaxWaitMillis = 0, 1, 60_000
	done := whenParked(c.Brokers[0], func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return cl.ProduceSync(ctx, &kgo.Record{Value: []byte("wake")}).FirstErr()
	})
	resp := r.do(req).(*kmsg.FetchResponse)
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 || len(p.RecordBatches) == 0 {
		t.Fatalf("fetch with max_bytes 0: %v, %d record bytes; want the record that woke it", kerr.ErrorForCode(p.ErrorCode), len(p.RecordBatches))
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestParkedFetchOnDeletedTopic: a fetch parked on a topic that is then
// deleted is answered at once with UNKNOWN_TOPIC_OR_PARTITION (not
// NOT_LEADER_OR_FOLLOWER naming this broker, from the image before the
// deletion), and without a current_leader (Kafka fills it from Fetch v16).
func TestParkedFetchOnDeletedTopic(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "del", 1, nil)
	r := dialRaw(t, c.Addrs()[0])
	adm := kadm.NewClient(newClient(t, c))
	req := fetchRequest(12, "del", 0)
	req.MinBytes, req.MaxWaitMillis = 1, 120_000
	done := whenParked(c.Brokers[0], func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		resp, err := adm.DeleteTopics(ctx, "del")
		if err == nil {
			err = resp.Error()
		}
		return err
	})
	fp := r.do(req).(*kmsg.FetchResponse).Topics[0].Partitions[0]
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if fp.ErrorCode != kerr.UnknownTopicOrPartition.Code || fp.CurrentLeader.LeaderID >= 0 {
		t.Fatalf("parked fetch of a deleted topic: %v, current leader %d/%d", kerr.ErrorForCode(fp.ErrorCode), fp.CurrentLeader.LeaderID, fp.CurrentLeader.LeaderEpoch)
	}
}

// deletedSegmentsOpen counts this process's descriptors open on segment
// .log files under dir that retention has deleted (renamed *.deleted, or
// already removed): disk space a reader keeps from being freed.
func deletedSegmentsOpen(t *testing.T, dir string) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd to count open files: %v", err)
	}
	n := 0
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(target, dir+string(filepath.Separator)) && strings.Contains(target, ".log.deleted") {
			n++
		}
	}
	return n
}

// TestParkedFetchHoldsNoSegmentOpen: a fetch that found data but less than
// min_bytes waits holding none of the segment files it read, and reads
// again when woken, as Kafka's purgatory does; otherwise the segments
// retention deletes meanwhile would stay open, their disk space held, for
// up to max_wait_ms, which a client may set to weeks. It holds none after
// its first read, nor after an append that woke it without bringing
// min_bytes.
func TestParkedFetchHoldsNoSegmentOpen(t *testing.T) {
	for _, tc := range []struct {
		name  string
		woken bool
	}{{"parked after its first read", false}, {"parked again after a wake", true}} {
		t.Run(tc.name, func(t *testing.T) {
			c := testcluster.Start(t, 1, func(_ int, cfg *broker.Config) { cfg.LogRetentionCheckInterval = 100 * time.Millisecond })
			createTopic(t, c, "pin", 1, map[string]*string{"segment.bytes": kmsg.StringPtr("2048"), "file.delete.delay.ms": kmsg.StringPtr("0")})
			createTopic(t, c, "waker", 1, nil)
			b := c.Brokers[0]
			producer := dialRaw(t, c.Addrs()[0])
			for range 7 { // a segment each
				produceRaw(producer, 9, 1, "pin", 0, recordBatch(t, 1, 1500))
			}
			// A long poll that finds the seven batches, wants 10 MiB,
			// may wait a day, and also watches an empty partition.
			req := fetchRequest(12, "pin", 0)
			waker := kmsg.NewFetchRequestTopic()
			waker.Topic, waker.Partitions = "waker", slices.Clone(req.Topics[0].Partitions)
			req.Topics = append(req.Topics, waker)
			req.MinBytes, req.MaxWaitMillis = 10<<20, 86_400_000
			consumer := dialRaw(t, c.Addrs()[0])
			consumer.write(consumer.frameOf(req))
			waitFetchesWaiting(t, b, 1)
			if tc.woken {
				// The fetch reads both partitions again, still short
				// of min_bytes, and parks again.
				produceRaw(producer, 9, 1, "waker", 0, recordBatch(t, 1, 10))
			}
			// Retention now keeps about one segment and deletes the others.
			adm := kadm.NewClient(newClient(t, c))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := alterTopic(ctx, adm, "pin", kadm.AlterConfig{Op: kadm.SetConfig, Name: "retention.bytes", Value: kmsg.StringPtr("2048")}); err != nil {
				t.Fatal(err)
			}
			p, _ := b.Partition("pin", 0)
			until(t, "retention to delete segments", func() bool { return p.LogStartOffset() > 0 })
			dir, err := filepath.EvalSymlinks(filepath.Join(c.Config(0).Storage.LogDirs[0], "pin-0"))
			if err != nil {
				t.Fatal(err)
			}
			until(t, "the deleted segments to be closed", func() bool {
				return deletedSegmentsOpen(t, dir) == 0 || b.FetchesWaiting() == 0
			})
			if b.FetchesWaiting() == 0 {
				// Nothing tells the test when the woken fetch has read
				// again: it did only after retention ran, found offset 0
				// gone and answered, holding nothing.
				if !tc.woken {
					t.Fatal("the long poll ended")
				}
				t.Skip("the woken fetch read again only after retention ran; nothing to check")
			}
		})
	}
}

// TestParkedFetchEndsWithItsConnection: a parked fetch whose client closes
// the connection ends at once, under either network engine, instead of
// holding its goroutine and timer until max_wait_ms for an answer no one
// would read; and closing the broker still ends a parked fetch.
func TestParkedFetchEndsWithItsConnection(t *testing.T) {
	for _, engine := range []string{netio.EngineStd, netio.EngineNetpoll} {
		t.Run(engine, func(t *testing.T) {
			c := testcluster.Start(t, 1, func(_ int, cfg *broker.Config) { cfg.Net.Engine = engine })
			createTopic(t, c, "gone", 1, nil)
			b := c.Brokers[0]
			// A long poll of an empty partition that may wait a day.
			req := fetchRequest(12, "gone", 0)
			req.MinBytes, req.MaxWaitMillis = 1, 86_400_000
			leaving := dialRaw(t, c.Addrs()[0])
			leaving.write(leaving.frameOf(req))
			waitFetchesWaiting(t, b, 1)
			leaving.c.Close()
			waitFetchesWaiting(t, b, 0)

			staying := dialRaw(t, c.Addrs()[0])
			staying.write(staying.frameOf(req))
			waitFetchesWaiting(t, b, 1)
			closed := make(chan error, 1)
			go func() { closed <- b.Close() }()
			select {
			case err := <-closed:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the broker did not close with a fetch parked")
			}
			if n := b.FetchesWaiting(); n != 0 {
				t.Fatalf("%d fetches waiting after the broker closed", n)
			}
		})
	}
}

// TestDeletedTopicRecreatedEmpty: a topic deleted and created again at once
// under the same name starts empty, while the old partition's files wait in
// a renamed <topic>-<partition>.<id>-delete directory for
// file.delete.delay.ms, as Kafka's do, instead of being removed on the
// metadata path.
func TestDeletedTopicRecreatedEmpty(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "again", 1, nil)
	r := dialRaw(t, c.Addrs()[0])
	if p := produceRaw(r, 9, 1, "again", 0, recordBatch(t, 3, 10)); p.ErrorCode != 0 {
		t.Fatalf("produce: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	adm := kadm.NewClient(newClient(t, c))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if resp, err := adm.DeleteTopics(ctx, "again"); err != nil || resp.Error() != nil {
		t.Fatalf("delete: %v %v", err, resp.Error())
	}
	c.WaitForImage(func(im *raft.Image) bool { _, ok := im.Topic("again"); return !ok })
	createTopic(t, c, "again", 1, nil)
	if fp := fetchOnce(r, "again", 0, 0, 0); fp.ErrorCode != 0 || fp.HighWatermark != 0 || len(fp.RecordBatches) != 0 {
		t.Fatalf("the topic created again: %v, high watermark %d, %d bytes; want it empty",
			kerr.ErrorForCode(fp.ErrorCode), fp.HighWatermark, len(fp.RecordBatches))
	}
	logDir := c.Config(0).Storage.LogDirs[0]
	entries, err := os.ReadDir(logDir)
	if err != nil {
		t.Fatal(err)
	}
	var waiting []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "again-0.") && strings.HasSuffix(e.Name(), "-delete") {
			waiting = append(waiting, e.Name())
		}
	}
	if len(waiting) != 1 {
		t.Fatalf("log dir %v: want one again-0.<id>-delete directory", entries)
	}
	if st, err := os.Stat(filepath.Join(logDir, waiting[0], "00000000000000000000.log")); err != nil || st.Size() == 0 {
		t.Fatalf("the deleted partition's records: %v", err)
	}
}

// TestFetchSessionsAndReplicas: without fetch sessions, epoch 0 or -1 is
// a full fetch whatever the session id, and a positive epoch names a
// session the broker never gave; a fetch from a replica id (no broker
// follows this one) is NOT_LEADER_OR_FOLLOWER, or UNKNOWN_LEADER_EPOCH
// with an epoch; a partition named twice is answered once; a failed read
// carries no offsets.
func TestFetchSessionsAndReplicas(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "f", 1, nil)
	r := dialRaw(t, c.Addrs()[0])
	produceRaw(r, 9, 1, "f", 0, recordBatch(t, 3, 10))
	for _, tc := range []struct {
		id, epoch int32
		want      int16
	}{{1234, -1, 0}, {1234, 0, 0}, {0, 5, kerr.FetchSessionIDNotFound.Code}, {1234, 5, kerr.FetchSessionIDNotFound.Code}, {0, -5, kerr.FetchSessionIDNotFound.Code}} {
		req := fetchRequest(12, "f", 0)
		req.SessionID, req.SessionEpoch = tc.id, tc.epoch
		if got := r.do(req).(*kmsg.FetchResponse).ErrorCode; got != tc.want {
			t.Errorf("session %d epoch %d: %v, want %v", tc.id, tc.epoch, kerr.ErrorForCode(got), kerr.ErrorForCode(tc.want))
		}
	}

	tp, _ := c.Brokers[0].Image().Topic("f")
	for epoch, want := range map[int32]int16{tp.Partitions[0].LeaderEpoch: kerr.UnknownLeaderEpoch.Code, -1: kerr.NotLeaderForPartition.Code} {
		req := fetchRequest(12, "f", 0)
		req.ReplicaID = 7
		req.Topics[0].Partitions[0].CurrentLeaderEpoch = epoch
		if fp := r.do(req).(*kmsg.FetchResponse).Topics[0].Partitions[0]; fp.ErrorCode != want || len(fp.RecordBatches) != 0 {
			t.Errorf("replica 7, current epoch %d: %v with %d bytes, want %v", epoch, kerr.ErrorForCode(fp.ErrorCode), len(fp.RecordBatches), kerr.ErrorForCode(want))
		}
	}

	if ps := r.do(fetchRequest(12, "f", 0, 0)).(*kmsg.FetchResponse).Topics[0].Partitions; len(ps) != 1 {
		t.Errorf("partition 0 named twice: %d answers", len(ps))
	}

	req := fetchRequest(12, "f", 0)
	req.Topics[0].Partitions[0].FetchOffset = 99
	if fp := r.do(req).(*kmsg.FetchResponse).Topics[0].Partitions[0]; fp.ErrorCode != kerr.OffsetOutOfRange.Code ||
		fp.HighWatermark != -1 || fp.LastStableOffset != -1 || fp.LogStartOffset != -1 {
		t.Errorf("past the end: %v, high watermark %d, last stable %d, log start %d, want OFFSET_OUT_OF_RANGE and -1s",
			kerr.ErrorForCode(fp.ErrorCode), fp.HighWatermark, fp.LastStableOffset, fp.LogStartOffset)
	}
}

// TestFetchStorageErrorByVersion: a partition whose log has failed answers
// Fetch with KAFKA_STORAGE_ERROR from v6, the version that brought the
// error, and NOT_LEADER_OR_FOLLOWER before it, as Kafka does, so that an
// older client retries rather than gives up.
func TestFetchStorageErrorByVersion(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "se", 1, nil)
	r := dialRaw(t, c.Addrs()[0])
	produceRaw(r, 9, 1, "se", 0, recordBatch(t, 3, 10))
	p, ok := c.Brokers[0].Partition("se", 0)
	if !ok {
		t.Fatal("partition se-0 not hosted")
	}
	// A closed log answers as a failed one: KAFKA_STORAGE_ERROR.
	if err := p.Log().Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		version int16
		want    *kerr.Error
	}{{4, kerr.NotLeaderForPartition}, {5, kerr.NotLeaderForPartition}, {6, kerr.KafkaStorageError}, {13, kerr.KafkaStorageError}} {
		req := fetchRequest(tc.version, "se", 0)
		if tc.version >= 13 {
			tp, _ := c.Brokers[0].Image().Topic("se")
			req.Topics[0].TopicID = tp.ID
		}
		if got := r.do(req).(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode; got != tc.want.Code {
			t.Errorf("Fetch v%d on a failed log: %v, want %v", tc.version, kerr.ErrorForCode(got), tc.want)
		}
	}
}

// TestFailedLogAnswersStorageErrorEverywhere: a partition whose log failed
// is offline, as Kafka takes a failed log dir's partitions offline: every
// request for it is KAFKA_STORAGE_ERROR (Fetch before v6 excepted, above),
// not only the reads that touch the log. ListOffsets and OffsetForLeaderEpoch
// answered from the offsets the broker still held, so a consumer resetting
// or validating its position was told the dead partition was fine.
func TestFailedLogAnswersStorageErrorEverywhere(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "dead", 1, nil)
	r := dialRaw(t, c.Addrs()[0])
	produceRaw(r, 9, 1, "dead", 0, recordBatch(t, 3, 10))
	p, _ := c.Brokers[0].Partition("dead", 0)
	p.Log().Fail(errors.New("injected I/O error"))
	want := kerr.KafkaStorageError.Code
	for _, tc := range []struct {
		version int16
		ts      int64
	}{{0, -1}, {7, -1}, {7, -2}, {7, time.Now().Add(-time.Hour).UnixMilli()}} {
		if sp := r.do(listOffsetsRequest(tc.version, "dead", 1, tc.ts)).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]; sp.ErrorCode != want {
			t.Errorf("ListOffsets v%d for %d: %v, offset %d %v; want %v", tc.version, tc.ts, kerr.ErrorForCode(sp.ErrorCode), sp.Offset, sp.OldStyleOffsets, kerr.ErrorForCode(want))
		}
	}
	if got := r.do(offsetForLeaderEpochRequest("dead", -1, 0)).(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0]; got.ErrorCode != want || got.EndOffset != -1 {
		t.Errorf("OffsetForLeaderEpoch: %v, end offset %d; want %v, -1", kerr.ErrorForCode(got.ErrorCode), got.EndOffset, kerr.ErrorForCode(want))
	}
	if got := r.do(fetchRequest(12, "dead", 0)).(*kmsg.FetchResponse).Topics[0].Partitions[0]; got.ErrorCode != want || got.HighWatermark != -1 {
		t.Errorf("Fetch v12: %v, high watermark %d; want %v, -1", kerr.ErrorForCode(got.ErrorCode), got.HighWatermark, kerr.ErrorForCode(want))
	}
	if got := produceRaw(r, 9, 1, "dead", 0, recordBatch(t, 1, 10)); got.ErrorCode != want {
		t.Errorf("Produce: %v, want %v", kerr.ErrorForCode(got.ErrorCode), kerr.ErrorForCode(want))
	}
}

// TestUnknownIsolationLevel: Fetch and ListOffsets (v2+) with an
// isolation_level other than 0 and 1 fail as a whole, as in Kafka, whose
// IsolationLevel.forId throws: UNKNOWN_SERVER_ERROR in every partition
// (Fetch v13 at the top level only), no offsets. Before, the level was read
// as read_uncommitted.
func TestUnknownIsolationLevel(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "iso", 2, nil)
	r := dialRaw(t, c.Addrs()[0])
	produceRaw(r, 9, 1, "iso", 0, recordBatch(t, 3, 10))
	want := kerr.UnknownServerError.Code
	list := listOffsetsRequest(5, "iso", 1, -1)
	list.IsolationLevel = 7
	if sp := r.do(list).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]; sp.ErrorCode != want || sp.Offset != -1 {
		t.Errorf("ListOffsets, isolation_level 7: %v, offset %d; want %v, -1", kerr.ErrorForCode(sp.ErrorCode), sp.Offset, kerr.ErrorForCode(want))
	}
	fetch := fetchRequest(12, "iso", 0, 1)
	fetch.IsolationLevel = -1
	resp := r.do(fetch).(*kmsg.FetchResponse)
	if resp.ErrorCode != want || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 2 {
		t.Fatalf("Fetch v12, isolation_level -1: %v with %d topics; want %v in each partition", kerr.ErrorForCode(resp.ErrorCode), len(resp.Topics), kerr.ErrorForCode(want))
	}
	for _, fp := range resp.Topics[0].Partitions {
		if fp.ErrorCode != want || fp.HighWatermark != -1 || len(fp.RecordBatches) != 0 {
			t.Errorf("Fetch v12, isolation_level -1, partition %d: %v, high watermark %d, %d bytes", fp.Partition, kerr.ErrorForCode(fp.ErrorCode), fp.HighWatermark, len(fp.RecordBatches))
		}
	}
	fetch.Version = 13
	tp, _ := c.Brokers[0].Image().Topic("iso")
	fetch.Topics[0].TopicID = tp.ID
	if resp := r.do(fetch).(*kmsg.FetchResponse); resp.ErrorCode != want || len(resp.Topics) != 0 {
		t.Errorf("Fetch v13, isolation_level -1: %v with %d topics; want %v and none", kerr.ErrorForCode(resp.ErrorCode), len(resp.Topics), kerr.ErrorForCode(want))
	}
}

// TestCurrentLeaderEpoch: Fetch, ListOffsets and OffsetForLeaderEpoch check
// the leader epoch a client names (KIP-320) as Kafka does: -1 is "not
// known" and passes, the leader's own passes, a newer one is
// UNKNOWN_LEADER_EPOCH and an older one FENCED_LEADER_EPOCH. Any other
// negative is older for ListOffsets and OffsetForLeaderEpoch, but "not
// known" for Fetch (Kafka's FetchRequest reads every negative as absent).
func TestCurrentLeaderEpoch(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "le", 1, nil)
	r := dialRaw(t, c.Addrs()[0])
	produceRaw(r, 9, 1, "le", 0, recordBatch(t, 3, 10))
	tp, _ := c.Brokers[0].Image().Topic("le")
	epoch := tp.Partitions[0].LeaderEpoch
	for _, tc := range []struct {
		current   int32
		want      int16
		wantFetch int16 // Fetch reads any negative epoch as absent
	}{
		{-1, 0, 0},
		{epoch, 0, 0},
		{epoch + 1, kerr.UnknownLeaderEpoch.Code, kerr.UnknownLeaderEpoch.Code},
		{-2, kerr.FencedLeaderEpoch.Code, 0},
		{math.MinInt32, kerr.FencedLeaderEpoch.Code, 0},
	} {
		fetch := fetchRequest(12, "le", 0)
		fetch.Topics[0].Partitions[0].CurrentLeaderEpoch = tc.current
		list := listOffsetsRequest(7, "le", 1, -1)
		list.Topics[0].Partitions[0].CurrentLeaderEpoch = tc.current
		ofle := offsetForLeaderEpochRequest("le", tc.current, epoch)
		for api, got := range map[string]int16{
			"Fetch":                r.do(fetch).(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode,
			"ListOffsets":          r.do(list).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].ErrorCode,
			"OffsetForLeaderEpoch": r.do(ofle).(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0].ErrorCode,
		} {
			want := tc.want
			if api == "Fetch" {
				want = tc.wantFetch
			}
			if got != want {
				t.Errorf("%s naming epoch %d (the leader's is %d): %v, want %v", api, tc.current, epoch, kerr.ErrorForCode(got), kerr.ErrorForCode(want))
			}
		}
	}
}

// offsetForLeaderEpochRequest is a consumer's OffsetForLeaderEpoch v4 for
// partition 0 of topic.
func offsetForLeaderEpochRequest(topic string, currentEpoch, epoch int32) *kmsg.OffsetForLeaderEpochRequest {
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.Version, req.ReplicaID = 4, -1
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	rp.CurrentLeaderEpoch, rp.LeaderEpoch = currentEpoch, epoch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func listOffsetsRequest(version int16, topic string, maxNum int32, timestamps ...int64) *kmsg.ListOffsetsRequest {
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version, req.ReplicaID = version, -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for _, ts := range timestamps {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp, rp.CurrentLeaderEpoch, rp.MaxNumOffsets = ts, -1, maxNum
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

// TestListOffsetsVersionsAndDuplicates: a special timestamp the version
// does not know is UNSUPPORTED_VERSION; a partition named twice is
// INVALID_REQUEST in every entry; v0 lists, newest first and up to
// max_num_offsets, the log end and each segment's first offset.
func TestListOffsetsVersionsAndDuplicates(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "lo", 1, map[string]*string{"segment.bytes": kmsg.StringPtr("1024")})
	r := dialRaw(t, c.Addrs()[0])
	for range 4 {
		produceRaw(r, 9, 1, "lo", 0, recordBatch(t, 2, 400))
	}
	for _, tc := range []struct {
		version int16
		ts      int64
	}{{6, -3}, {7, -4}, {7, -10}, {0, -3}} {
		sp := r.do(listOffsetsRequest(tc.version, "lo", 1, tc.ts)).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
		if sp.ErrorCode != kerr.UnsupportedVersion.Code {
			t.Errorf("v%d timestamp %d: %v, want UNSUPPORTED_VERSION", tc.version, tc.ts, kerr.ErrorForCode(sp.ErrorCode))
		}
	}
	if sp := r.do(listOffsetsRequest(7, "lo", 1, -3)).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]; sp.ErrorCode != 0 {
		t.Errorf("v7 max timestamp: %v", kerr.ErrorForCode(sp.ErrorCode))
	}
	for _, sp := range r.do(listOffsetsRequest(7, "lo", 1, -1, -1)).(*kmsg.ListOffsetsResponse).Topics[0].Partitions {
		if sp.ErrorCode != kerr.InvalidRequest.Code {
			t.Errorf("partition 0 named twice: %v, want INVALID_REQUEST", kerr.ErrorForCode(sp.ErrorCode))
		}
	}

	p, _ := c.Brokers[0].Partition("lo", 0)
	want := []int64{p.LogEndOffset()}
	segs := p.Log().Segments()
	for i := len(segs) - 1; i >= 0; i-- {
		if segs[i].BaseOffset < want[len(want)-1] {
			want = append(want, segs[i].BaseOffset)
		}
	}
	if len(want) < 4 {
		t.Fatalf("offsets %v: the test needs several segments", want)
	}
	for _, tc := range []struct {
		ts     int64
		maxNum int32
		want   []int64
	}{
		{-1, 100, want},
		{-1, 2, want[:2]},
		{-2, 100, []int64{0}},
		{time.Now().Add(time.Hour).UnixMilli(), 100, want},
		{time.Now().Add(-time.Hour).UnixMilli(), 100, []int64{}},
	} {
		sp := r.do(listOffsetsRequest(0, "lo", tc.maxNum, tc.ts)).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
		if sp.ErrorCode != 0 || !slices.Equal(sp.OldStyleOffsets, tc.want) {
			t.Errorf("v0 timestamp %d, max %d: %v %v, want %v", tc.ts, tc.maxNum, kerr.ErrorForCode(sp.ErrorCode), sp.OldStyleOffsets, tc.want)
		}
	}
}

// TestMetadataSetsAndOperations: Metadata answers the set of topics asked
// for (a name twice, once); topic ids before v12 are INVALID_REQUEST; the
// authorized operations asked for are every operation the resource type
// has (no authorizer), in Metadata and DescribeCluster.
func TestMetadataSetsAndOperations(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "md", 1, nil)
	r := dialRaw(t, c.Addrs()[0])
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	for _, name := range []string{"md", "md", "absent", "absent"} {
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(name)
		md.Topics = append(md.Topics, mt)
	}
	if ts := r.do(md).(*kmsg.MetadataResponse).Topics; len(ts) != 2 {
		t.Errorf("two names asked twice each: %d topics answered", len(ts))
	}

	tp, _ := c.Brokers[0].Image().Topic("md")
	// A refused request has no side effects: the name beside the id is
	// not auto-created.
	md = kmsg.NewPtrMetadataRequest()
	md.Version, md.AllowAutoTopicCreation = 10, true
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("not-made")
	md.Topics = append(md.Topics, mt)
	mt = kmsg.NewMetadataRequestTopic()
	mt.TopicID = tp.ID
	md.Topics = append(md.Topics, mt)
	for _, got := range r.do(md).(*kmsg.MetadataResponse).Topics {
		if got.ErrorCode != kerr.InvalidRequest.Code {
			t.Errorf("Metadata v10 by topic id: %v, want INVALID_REQUEST", kerr.ErrorForCode(got.ErrorCode))
		}
	}
	if _, ok := c.Brokers[0].Image().Topic("not-made"); ok {
		t.Error("a Metadata request refused as INVALID_REQUEST auto-created the topic it named")
	}

	const topicOps, clusterOps = 0b1101_1111_1000, 0b1_1111_1010_0000
	md = kmsg.NewPtrMetadataRequest()
	md.Version, md.IncludeTopicAuthorizedOperations, md.IncludeClusterAuthorizedOperations = 10, true, true
	mt = kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("md")
	md.Topics = append(md.Topics, mt)
	resp := r.do(md).(*kmsg.MetadataResponse)
	if resp.AuthorizedOperations != clusterOps || resp.Topics[0].AuthorizedOperations != topicOps {
		t.Errorf("authorized operations: cluster %b, topic %b", resp.AuthorizedOperations, resp.Topics[0].AuthorizedOperations)
	}
	dc := kmsg.NewPtrDescribeClusterRequest()
	dc.IncludeClusterAuthorizedOperations = true
	if got := r.do(dc).(*kmsg.DescribeClusterResponse).ClusterAuthorizedOperations; got != clusterOps {
		t.Errorf("DescribeCluster authorized operations %b", got)
	}
	md.IncludeTopicAuthorizedOperations, md.IncludeClusterAuthorizedOperations = false, false
	if resp := r.do(md).(*kmsg.MetadataResponse); resp.Topics[0].AuthorizedOperations != -2147483648 {
		t.Errorf("authorized operations not asked for: %d, want Kafka's INT_MIN", resp.Topics[0].AuthorizedOperations)
	}
}
