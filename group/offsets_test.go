package group

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
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

// commitOne commits offset for topic's partition 0 as group's member at
// generation gen, with OffsetCommit version, and appends (replays) what the
// coordinator returns; it returns the partition's error code.
func commitOne(t *testing.T, c *Coordinator, now time.Time, version int16, group, member string, gen int32, topic string, offset int64) int16 {
	t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group, req.MemberID, req.Generation = version, group, member, gen
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Offset = offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, recs := c.CommitOffsets(now, req, func(string, int32) bool { return true })
	for _, r := range recs {
		if err := c.Replay(r); err != nil {
			t.Fatal(err)
		}
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

// TestCommitToAGroupKnownByItsOffsetsIsFromAnUnknownMember guards the
// answer to a member's commit to a group that exists only through its
// committed offsets (a standalone consumer's, or any group after a
// coordinator reload, since members are not persisted). Kafka holds such a
// group as an Empty ClassicGroup (made by the commit that created it,
// OffsetMetadataManager.validateOffsetCommit, or by the replay of its
// offsets), whose validateMember answers UNKNOWN_MEMBER_ID at every
// version, and clients rejoin on that. Gregor used to answer as for a
// group that does not exist: ILLEGAL_GENERATION (v8) and GROUP_ID_NOT_FOUND
// (v9), on which neither Kafka's consumer nor franz-go rejoins.
func TestCommitToAGroupKnownByItsOffsetsIsFromAnUnknownMember(t *testing.T) {
	c, err := NewCoordinator(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	now := time.UnixMilli(1000)
	if code := commitOne(t, c, now, 9, "g", "", -1, "t", 5); code != 0 {
		t.Fatalf("standalone commit: %v", kerr.ErrorForCode(code))
	}
	for _, v := range []int16{8, 9} {
		if code := commitOne(t, c, now, v, "g", "m-1", 3, "t", 6); code != kerr.UnknownMemberID.Code {
			t.Errorf("v%d commit at generation 3 to a group known by its offsets: %v, want UNKNOWN_MEMBER_ID", v, kerr.ErrorForCode(code))
		}
	}
	// A group that does not exist at all keeps Kafka's answers for that.
	if code := commitOne(t, c, now, 8, "none", "m-1", 3, "t", 6); code != kerr.IllegalGeneration.Code {
		t.Errorf("v8 commit at generation 3 to no group: %v, want ILLEGAL_GENERATION", kerr.ErrorForCode(code))
	}
	if code := commitOne(t, c, now, 9, "none", "m-1", 3, "t", 6); code != kerr.GroupIDNotFound.Code {
		t.Errorf("v9 commit at generation 3 to no group: %v, want GROUP_ID_NOT_FOUND", kerr.ErrorForCode(code))
	}
}

// subscription is a consumer's JoinGroup metadata subscribing to topics:
// a ConsumerProtocolSubscription, as Kafka's and franz-go's consumers send.
func subscription(topics ...string) []byte {
	md := kmsg.NewConsumerMemberMetadata()
	md.Version, md.Topics = 3, topics
	return md.AppendTo(nil)
}

// stableConsumerGroup returns a coordinator whose group g is Stable with
// one consumer member whose metadata is metadata, and the time. The group
// committed an offset of "old" earlier in its life (as a standalone
// consumer), and the member one of "live", each at the time returned.
func stableConsumerGroup(t *testing.T, cfg Config, metadata []byte) (*Coordinator, time.Time) {
	t.Helper()
	cfg.GroupInitialRebalanceDelayMs = 0
	c, err := NewCoordinator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.UnixMilli(1000)
	if code := commitOne(t, c, now, 9, "g", "", -1, "old", 7); code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	join := func(member string) *kmsg.JoinGroupRequest {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Version, req.Group, req.MemberID = 9, "g", member
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 45000, 60000
		req.ProtocolType = "consumer"
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "range", metadata
		req.Protocols = append(req.Protocols, p)
		return req
	}
	replies := c.Join(nil, now, 1, Client{ID: "c"}, join(""))
	id := replies[0].Resp.(*kmsg.JoinGroupResponse).MemberID
	c.Join(nil, now, 2, Client{ID: "c"}, join(id))
	if replies = c.Tick(nil, now.Add(time.Millisecond)); len(replies) != 1 {
		t.Fatalf("%d replies at the end of the join phase, want the JoinGroup's", len(replies))
	}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.MemberID, sync.Generation = "g", id, replies[0].Resp.(*kmsg.JoinGroupResponse).Generation
	c.Sync(nil, now, 3, sync)
	if g := c.groups["g"]; g.state != Stable {
		t.Fatalf("group g is %s, want Stable", g.state)
	}
	if code := commitOne(t, c, now, 9, "g", id, sync.Generation, "live", 3); code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	return c, now
}

// TestOffsetDeleteRefusesOnlySubscribedTopics guards KIP-496's OffsetDelete
// on a consumer group with members: as Kafka's
// OffsetMetadataManager.deleteOffsets (isSubscribedToTopic, from
// ClassicGroup.computeSubscribedTopics over the members' consumer protocol
// subscriptions), it refuses the topics the members subscribe to with
// GROUP_SUBSCRIBED_TO_TOPIC and deletes the offsets of the others. When a
// member's subscription does not decode, the group's subscriptions are not
// known, and every topic is refused. Gregor used to refuse every topic of
// a consumer group with members.
func TestOffsetDeleteRefusesOnlySubscribedTopics(t *testing.T) {
	deleteOldAndLive := func(c *Coordinator) (old, live int16, tombstones int) {
		req := kmsg.NewPtrOffsetDeleteRequest()
		req.Group = "g"
		for _, topic := range []string{"old", "live"} {
			rt := kmsg.NewOffsetDeleteRequestTopic()
			rt.Topic = topic
			rt.Partitions = append(rt.Partitions, kmsg.NewOffsetDeleteRequestTopicPartition())
			req.Topics = append(req.Topics, rt)
		}
		resp, recs := c.DeleteOffsets(req)
		return resp.Topics[0].Partitions[0].ErrorCode, resp.Topics[1].Partitions[0].ErrorCode, len(recs)
	}

	c, _ := stableConsumerGroup(t, DefaultConfig(), subscription("live"))
	old, live, n := deleteOldAndLive(c)
	if live != kerr.GroupSubscribedToTopic.Code {
		t.Errorf("live-0, subscribed: %v, want GROUP_SUBSCRIBED_TO_TOPIC", kerr.ErrorForCode(live))
	}
	if old != 0 || n != 1 {
		t.Errorf("old-0, not subscribed: %v with %d tombstones, want NONE and 1 tombstone", kerr.ErrorForCode(old), n)
	}

	c, _ = stableConsumerGroup(t, DefaultConfig(), []byte("not a subscription"))
	old, live, n = deleteOldAndLive(c)
	if old != kerr.GroupSubscribedToTopic.Code || live != kerr.GroupSubscribedToTopic.Code || n != 0 {
		t.Errorf("subscriptions not known: old-0 %v, live-0 %v, %d tombstones; want both GROUP_SUBSCRIBED_TO_TOPIC, none",
			kerr.ErrorForCode(old), kerr.ErrorForCode(live), n)
	}
}

// TestStableConsumerGroupExpiresUnsubscribedTopics guards the expiry of
// offsets in a consumer group with members: as Kafka's
// cleanupExpiredOffsets with ClassicGroup.offsetExpirationCondition, a
// Stable consumer group whose subscriptions are known loses, once
// offsets.retention.minutes have passed since their commit, the offsets of
// topics no member subscribes to, and keeps those of its subscribed topics
// whatever their age. One whose subscriptions are not known (a member's
// does not decode) expires nothing. Gregor used to keep every offset of a
// group with members for ever.
func TestStableConsumerGroupExpiresUnsubscribedTopics(t *testing.T) {
	cfg := DefaultConfig()
	cfg.OffsetsRetentionMs = 60000
	c, now := stableConsumerGroup(t, cfg, subscription("live"))
	if recs := c.ExpireOffsets(now.Add(time.Minute)); len(recs) != 0 {
		t.Errorf("%d tombstones at the retention time, want none yet", len(recs))
	}
	recs := c.ExpireOffsets(now.Add(10 * time.Minute))
	if len(recs) != 1 {
		t.Fatalf("%d tombstones, want 1: old-0's, committed 10 minutes ago, retention 1 minute", len(recs))
	}
	if _, tp, _, deleted, err := decodeOffsetCommit(recs[0].Key, recs[0].Value); err != nil || !deleted || tp != (TopicPartition{"old", 0}) {
		t.Errorf("expired %v (deleted %v, %v), want old-0", tp, deleted, err)
	}

	c, now = stableConsumerGroup(t, cfg, []byte("not a subscription"))
	if recs := c.ExpireOffsets(now.Add(10 * time.Minute)); len(recs) != 0 {
		t.Errorf("subscriptions not known: %d tombstones, want none", len(recs))
	}
}
