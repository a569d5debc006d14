package group

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestOffsetCommitRecordRoundTrip checks the records against kmsg's
// decoding of Kafka's schemas, field by field.
func TestOffsetCommitRecordRoundTrip(t *testing.T) {
	want := Committed{Offset: 42, LeaderEpoch: 7, Metadata: "m", CommitTimestamp: 1700000000000}
	rec := EncodeOffsetCommit("g", TopicPartition{"t", 3}, want)
	var k kmsg.OffsetCommitKey
	if err := k.ReadFrom(rec.Key); err != nil || k.Version != 1 || k.Group != "g" || k.Topic != "t" || k.Partition != 3 {
		t.Fatalf("key %+v, %v", k, err)
	}
	var v kmsg.OffsetCommitValue
	if err := v.ReadFrom(rec.Value); err != nil || v.Version != 3 || v.Offset != 42 || v.LeaderEpoch != 7 || v.Metadata != "m" || v.CommitTimestamp != want.CommitTimestamp {
		t.Fatalf("value %+v, %v", v, err)
	}
	group, tp, got, deleted, err := decodeOffsetCommit(rec.Key, rec.Value)
	if err != nil || deleted || group != "g" || tp != (TopicPartition{"t", 3}) || got != want {
		t.Fatalf("decoded %q %v %+v deleted=%v err=%v", group, tp, got, deleted, err)
	}
	// Value v1 (with an expire timestamp, as Kafka writes when a client
	// asked for a retention time) has no leader epoch.
	v1 := kmsg.NewOffsetCommitValue()
	v1.Version, v1.Offset, v1.Metadata, v1.CommitTimestamp, v1.ExpireTimestamp = 1, 9, "x", 5, 6
	if _, _, got, _, err := decodeOffsetCommit(rec.Key, v1.AppendTo(nil)); err != nil || got != (Committed{Offset: 9, LeaderEpoch: -1, Metadata: "x", CommitTimestamp: 5}) {
		t.Fatalf("value v1: %+v, %v", got, err)
	}
}

// FuzzReplay feeds the coordinator records as a corrupt or foreign
// __consumer_offsets could hold them: it must never panic, and a record it
// accepts must read back as what it holds.
func FuzzReplay(f *testing.F) {
	rec := EncodeOffsetCommit("g", TopicPartition{"t", 1}, Committed{Offset: 5, LeaderEpoch: -1})
	f.Add(rec.Key, rec.Value)
	f.Add(rec.Key, []byte(nil))
	gm := kmsg.NewGroupMetadataKey()
	gm.Version, gm.Group = 2, "g"
	f.Add(gm.AppendTo(nil), []byte{0, 3})
	f.Add([]byte{0}, []byte{})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		c, err := NewCoordinator(DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Replay(Record{Key: key, Value: value}); err != nil {
			return
		}
		group, tp, cm, deleted, err := decodeOffsetCommit(key, value)
		if err != nil || deleted {
			return
		}
		if got, ok := c.Offsets(group)[tp]; !ok || got != cm {
			t.Fatalf("replayed %q %v %+v; the coordinator holds %+v (%v)", group, tp, cm, got, ok)
		}
	})
}
