package broker_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/internal/testcluster"
	"gregor/segment"
)

// TestDeleteRecords: kadm's DeleteRecords raises a partition's log start, as
// Kafka's does: ListOffsets' earliest, the fetch response's log start and a
// consumer reading from the start all begin there; -1 means the high
// watermark; the new start is checkpointed before the answer and survives a
// restart; bad requests get Kafka's errors.
func TestDeleteRecords(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "purge", 2, nil)
	createTopic(t, c, "compacted", 1, map[string]*string{"cleanup.policy": kmsg.StringPtr("compact")})
	r := dialRaw(t, c.Addrs()[0])
	for _, part := range []int32{0, 1} {
		for range 2 {
			if p := produceRaw(r, 9, -1, "purge", part, recordBatch(t, 5, 10)); p.ErrorCode != 0 {
				t.Fatalf("produce: %v", kerr.ErrorForCode(p.ErrorCode))
			}
		}
	}
	adm := kadm.NewClient(newClient(t, c))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Offset 7 lies inside the second batch, 5-9.
	offsets := kadm.Offsets{}
	offsets.Add(kadm.Offset{Topic: "purge", Partition: 0, At: 7})
	offsets.Add(kadm.Offset{Topic: "purge", Partition: 1, At: -1})
	resp, err := adm.DeleteRecords(ctx, offsets)
	if err != nil {
		t.Fatal(err)
	}
	for part, want := range map[int32]int64{0: 7, 1: 10} {
		got, ok := resp.Lookup("purge", part)
		if !ok || got.Err != nil || got.LowWatermark != want {
			t.Fatalf("purge-%d: low watermark %d, %v; want %d", part, got.LowWatermark, got.Err, want)
		}
	}
	// Durable before the answer.
	cp, err := segment.ReadOffsetCheckpoint(filepath.Join(c.Config(0).Storage.LogDirs[0], segment.LogStartOffsetCheckpointFileName))
	if err != nil || len(cp) != 2 {
		t.Fatalf("log-start-offset-checkpoint after DeleteRecords: %v, %v", cp, err)
	}

	checkStart := func(when string) {
		t.Helper()
		starts, err := adm.ListStartOffsets(ctx, "purge")
		if err != nil {
			t.Fatal(err)
		}
		if o, _ := starts.Lookup("purge", 0); o.Err != nil || o.Offset != 7 {
			t.Fatalf("%s: earliest offset of purge-0 %d (%v), want 7", when, o.Offset, o.Err)
		}
		rr := dialRaw(t, c.Addrs()[0])
		if p := fetchOnce(rr, "purge", 6, 0, 0); p.ErrorCode != kerr.OffsetOutOfRange.Code {
			t.Fatalf("%s: fetch below the log start: %v", when, kerr.ErrorForCode(p.ErrorCode))
		}
		if p := fetchOnce(rr, "purge", 7, 0, 0); p.ErrorCode != 0 || p.LogStartOffset != 7 {
			t.Fatalf("%s: fetch at the log start: %v, log start %d", when, kerr.ErrorForCode(p.ErrorCode), p.LogStartOffset)
		}
		cl := newClient(t, c, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"purge": {0: kgo.NewOffset().AtStart()}}))
		var got []int64
		for len(got) < 3 && ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(rec *kgo.Record) { got = append(got, rec.Offset) })
		}
		if len(got) != 3 || got[0] != 7 || got[2] != 9 {
			t.Fatalf("%s: a consumer from the start read offsets %v, want 7 8 9", when, got)
		}
	}
	checkStart("after DeleteRecords")

	// Kafka's errors: past the high watermark, negative, unknown
	// partition, a compacted topic, the internal offsets topic.
	bad := kadm.Offsets{}
	bad.Add(kadm.Offset{Topic: "purge", Partition: 0, At: 11})
	bad.Add(kadm.Offset{Topic: "purge", Partition: 1, At: -2})
	bad.Add(kadm.Offset{Topic: "compacted", Partition: 0, At: 0})
	resp, err = adm.DeleteRecords(ctx, bad)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		topic     string
		partition int32
		want      error
	}{
		{"purge", 0, kerr.OffsetOutOfRange},
		{"purge", 1, kerr.OffsetOutOfRange},
		{"compacted", 0, kerr.PolicyViolation},
	} {
		got, _ := resp.Lookup(tc.topic, tc.partition)
		if !errors.Is(got.Err, tc.want) {
			t.Errorf("%s-%d: %v, want %v", tc.topic, tc.partition, got.Err, tc.want)
		}
	}
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.Version = 2
	for _, topic := range []string{"purge", "__consumer_offsets"} {
		rt := kmsg.NewDeleteRecordsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewDeleteRecordsRequestTopicPartition()
		rp.Partition, rp.Offset = 9, 1
		if topic == "__consumer_offsets" {
			rp.Partition = 0
		}
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	loadCoordinators(t, ctx, adm, "g")
	raw := r.do(req).(*kmsg.DeleteRecordsResponse)
	if code := raw.Topics[0].Partitions[0].ErrorCode; code != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("unknown partition: %v", kerr.ErrorForCode(code))
	}
	if code := raw.Topics[1].Partitions[0].ErrorCode; code != kerr.InvalidTopicException.Code {
		t.Errorf("__consumer_offsets: %v, want INVALID_TOPIC_EXCEPTION", kerr.ErrorForCode(code))
	}

	c.Restart(0)
	c.WaitForTopic("purge")
	checkStart("after a restart")
}

// TestDeleteRecordsRetryAfterCheckpointFailure: a DeleteRecords whose
// log-start checkpoint cannot be written answers KAFKA_STORAGE_ERROR, and
// so does its retry, which finds the start already moved in memory: no
// success is answered until the start is on disk. Once the file can be
// written again, the retry succeeds and the checkpoint holds the start.
func TestDeleteRecordsRetryAfterCheckpointFailure(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "purge", 1, nil)
	r := dialRaw(t, c.Addrs()[0])
	if p := produceRaw(r, 9, -1, "purge", 0, recordBatch(t, 10, 10)); p.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(p.ErrorCode))
	}
	cpPath := filepath.Join(c.Config(0).Storage.LogDirs[0], segment.LogStartOffsetCheckpointFileName)
	os.Remove(cpPath)
	if err := os.MkdirAll(filepath.Join(cpPath, "block"), 0o755); err != nil { // the rename onto it fails
		t.Fatal(err)
	}
	adm := kadm.NewClient(newClient(t, c))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	off := kadm.Offsets{}
	off.Add(kadm.Offset{Topic: "purge", Partition: 0, At: 5})
	deleteRecords := func() kadm.DeleteRecordsResponse {
		t.Helper()
		resp, err := adm.DeleteRecords(ctx, off)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := resp.Lookup("purge", 0)
		return got
	}
	for i := range 2 {
		if got := deleteRecords(); !errors.Is(got.Err, kerr.KafkaStorageError) {
			t.Errorf("attempt %d with the checkpoint unwritable: %v, low watermark %d; want KAFKA_STORAGE_ERROR", i, got.Err, got.LowWatermark)
		}
	}
	if err := os.RemoveAll(cpPath); err != nil {
		t.Fatal(err)
	}
	if got := deleteRecords(); got.Err != nil || got.LowWatermark != 5 {
		t.Fatalf("retry once the checkpoint is writable: %v, low watermark %d", got.Err, got.LowWatermark)
	}
	if cp, err := segment.ReadOffsetCheckpoint(cpPath); err != nil || len(cp) != 1 || cp[0].Offset != 5 {
		t.Fatalf("checkpoint after the retry: %v, %v", cp, err)
	}
}
