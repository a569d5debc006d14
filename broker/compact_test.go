package broker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/batch"
	"gregor/broker"
	"gregor/internal/testcluster"
	"gregor/segment"
)

// TestCompactedTopicFranz produces repeated keys to a cleanup.policy=compact
// topic with small segments through franz-go (idempotent, so batches carry
// producer ids and sequences), lets the broker's cleaner run (a short
// log.cleaner.backoff.ms), and consumes from the start: exactly the newest
// value of each key, at the offset it was produced at.
func TestCompactedTopicFranz(t *testing.T) {
	c := testcluster.Start(t, 1, func(_ int, cfg *broker.Config) { cfg.Storage.Cleaner.BackoffMs = 20 })
	const topic = "compacted"
	createTopic(t, c, topic, 1, map[string]*string{
		"cleanup.policy":            kmsg.StringPtr("compact"),
		"segment.bytes":             kmsg.StringPtr("1024"),
		"min.cleanable.dirty.ratio": kmsg.StringPtr("0.01"),
	})
	cl := newClient(t, c, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0), kgo.ProducerBatchMaxBytes(512))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type produced struct {
		offset int64
		value  string
	}
	newest := map[string]produced{}
	produce := func(recs ...*kgo.Record) {
		t.Helper()
		for _, r := range cl.ProduceSync(ctx, recs...) {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			newest[string(r.Record.Key)] = produced{r.Record.Offset, string(r.Record.Value)}
		}
	}
	for round := range 15 {
		var recs []*kgo.Record
		for k := range 10 {
			recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "key-%d", k), Value: fmt.Appendf(nil, "round-%d-of-key-%d", round, k)})
		}
		produce(recs...)
	}
	// Roll the last round out of the active segment (which is never
	// cleaned) with records of fresh keys.
	p, ok := c.Brokers[0].Partition(topic, 0)
	if !ok {
		t.Fatal("the broker does not host the partition")
	}
	l := p.Log()
	last := newest["key-9"].offset
	for i := 0; activeBase(l) <= last; i++ {
		if i == 1000 {
			t.Fatal("the active segment does not roll")
		}
		produce(&kgo.Record{Key: fmt.Appendf(nil, "filler-%d", i), Value: []byte("x")})
	}
	target := activeBase(l)
	deadline := time.After(30 * time.Second)
	for {
		passed := l.Cleaned()
		if off, ok := l.CleanerCheckpoint(); ok && off >= target {
			break
		}
		select {
		case <-passed:
		case <-deadline:
			off, _ := l.CleanerCheckpoint()
			t.Fatalf("the cleaner reached %d in 30 s, want %d", off, target)
		}
	}

	got := consumeAll(t, c, topic, len(newest))
	seen := map[string]bool{}
	for _, r := range got {
		k := string(r.Key)
		want, ok := newest[k]
		if !ok || seen[k] || r.Offset != want.offset || string(r.Value) != want.value {
			t.Fatalf("consumed %s=%s at %d (seen before: %v); want only %s=%s at %d", k, r.Value, r.Offset, seen[k], k, want.value, want.offset)
		}
		seen[k] = true
	}
	if len(got) != len(newest) {
		t.Fatalf("consumed %d records, want the %d newest", len(got), len(newest))
	}
	t.Logf("%d records produced, %d consumed after cleaning; %d segments", l.LogEndOffset(), len(got), len(l.Segments()))
}

func activeBase(l *segment.Log) int64 {
	segs := l.Segments()
	return segs[len(segs)-1].BaseOffset
}

// TestProduceWithoutKeyToCompactedTopicIsInvalidRecord: a compacted topic
// (also "delete, compact") refuses a batch holding a record without a key,
// compressed or not, with INVALID_RECORD and Kafka's message, and appends
// nothing; keyed batches go in.
func TestProduceWithoutKeyToCompactedTopicIsInvalidRecord(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "ck", 1, map[string]*string{"cleanup.policy": kmsg.StringPtr("delete, compact")})
	r := dialRaw(t, c.Addrs()[0])
	keyed := func(codec batch.Codec, keys ...[]byte) []byte {
		opts := batch.DefaultBuilderOptions()
		opts.Codec = codec
		bld := batch.NewBuilder(opts)
		for _, k := range keys {
			bld.Add(time.Now().UnixMilli(), k, []byte("value"), nil)
		}
		b, err := bld.AppendBatch(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	const want = "Compacted topic cannot accept message without key in topic partition ck-0."
	for name, records := range map[string][]byte{
		"no keys":            recordBatch(t, 3, 10),
		"one of three, zstd": keyed(batch.CodecZstd, []byte("a"), nil, []byte("c")),
		"one of two, gzip":   keyed(batch.CodecGzip, nil, []byte("b")),
	} {
		p := produceRaw(r, 9, 1, "ck", 0, records)
		// Several keyless records are summed up, as Kafka does, the first
		// three quoted.
		if p.ErrorCode != kerr.InvalidRecord.Code || p.ErrorMessage == nil || !strings.Contains(*p.ErrorMessage, want) {
			t.Fatalf("%s: error %v %v, want INVALID_RECORD %q", name, kerr.ErrorForCode(p.ErrorCode), p.ErrorMessage, want)
		}
	}
	if p := produceRaw(r, 9, 1, "ck", 0, keyed(batch.CodecLZ4, []byte("a"), []byte{})); p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("keyed batch (an empty key is a key): %v at %d, want offset 0", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}
	// Through franz-go, as an application sees it.
	cl := newClient(t, c, kgo.DefaultProduceTopic("ck"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("no key")}).FirstErr(); !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("franz-go produce without a key: %v, want INVALID_RECORD", err)
	}
	// A topic without compact takes records without keys.
	createTopic(t, c, "plain", 1, nil)
	if p := produceRaw(r, 9, 1, "plain", 0, recordBatch(t, 3, 10)); p.ErrorCode != 0 {
		t.Fatalf("a delete-policy topic: %v", kerr.ErrorForCode(p.ErrorCode))
	}
}
