package group

import (
	"errors"
	"fmt"
	"iter"
	"maps"
	"math"
	"slices"
	"time"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Record is one record of __consumer_offsets as the coordinator writes and
// reads it: Kafka's key and value schemas (see the package documentation),
// Value nil for a tombstone.
type Record struct {
	Key, Value []byte
}

// TopicPartition names a partition whose offset a group committed.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Committed is one committed offset, as OffsetCommitValue holds it.
type Committed struct {
	Offset      int64
	LeaderEpoch int32 // -1 when the client did not say
	Metadata    string
	// CommitTimestamp is when the coordinator accepted the commit, in
	// milliseconds since the epoch: offsets.retention.minutes counts from
	// it.
	CommitTimestamp int64
}

// Key versions of __consumer_offsets records: 0 and 1 are an offset commit
// (the same layout), 2 is a group's metadata. Kafka's newer versions (the
// KIP-848 consumer protocol's records) are skipped on load.
const (
	keyOffsetCommitV0   = 0
	keyOffsetCommitV1   = 1
	keyGroupMetadata    = 2
	offsetCommitValueV3 = 3 // what Kafka 2.1+ writes when no expire timestamp is set
)

// errNotMine is a record for another key version: not an error, skipped.
var errNotMine = errors.New("not an offset commit or group record")

// EncodeOffsetCommit returns the record that commits c for group on tp.
func EncodeOffsetCommit(group string, tp TopicPartition, c Committed) Record {
	k := kmsg.NewOffsetCommitKey()
	k.Version, k.Group, k.Topic, k.Partition = keyOffsetCommitV1, group, tp.Topic, tp.Partition
	v := kmsg.NewOffsetCommitValue()
	v.Version = offsetCommitValueV3
	v.Offset, v.LeaderEpoch, v.Metadata, v.CommitTimestamp = c.Offset, c.LeaderEpoch, c.Metadata, c.CommitTimestamp
	return Record{Key: k.AppendTo(nil), Value: v.AppendTo(nil)}
}

// offsetTombstone is the record that deletes group's offset of tp.
func offsetTombstone(group string, tp TopicPartition) Record {
	k := kmsg.NewOffsetCommitKey()
	k.Version, k.Group, k.Topic, k.Partition = keyOffsetCommitV1, group, tp.Topic, tp.Partition
	return Record{Key: k.AppendTo(nil)}
}

// decodeOffsetCommit decodes an offset commit record; value nil is a
// tombstone (ok, with a zero Committed and deleted set).
func decodeOffsetCommit(key, value []byte) (group string, tp TopicPartition, c Committed, deleted bool, err error) {
	r := kbin.Reader{Src: key}
	switch version := r.Int16(); {
	case !r.Ok():
		return "", tp, c, false, fmt.Errorf("a key of %d bytes", len(key))
	case version != keyOffsetCommitV0 && version != keyOffsetCommitV1:
		return "", tp, c, false, errNotMine
	}
	var k kmsg.OffsetCommitKey
	if err := k.ReadFrom(key); err != nil {
		return "", tp, c, false, fmt.Errorf("an offset commit key: %w", err)
	}
	tp = TopicPartition{Topic: k.Topic, Partition: k.Partition}
	if value == nil {
		return k.Group, tp, c, true, nil
	}
	var v kmsg.OffsetCommitValue
	if err := v.ReadFrom(value); err != nil {
		return "", tp, c, false, fmt.Errorf("the offset commit value of group %q, %s-%d: %w", k.Group, k.Topic, k.Partition, err)
	}
	// LeaderEpoch is in value v3+; before, the zero value would read as
	// epoch 0, which is a real epoch.
	epoch := v.LeaderEpoch
	if v.Version < 3 {
		epoch = -1
	}
	return k.Group, tp, Committed{Offset: v.Offset, LeaderEpoch: epoch, Metadata: v.Metadata, CommitTimestamp: v.CommitTimestamp}, false, nil
}

// Replay applies one record of __consumer_offsets to the state: the shell
// calls it for every record when it loads a partition it now leads, and for
// the records of a commit once they are appended. Records of other kinds
// (group metadata, which this coordinator does not write, and key versions
// from Kafka's newer protocols) are skipped; a record that cannot be decoded
// is an error the shell logs, and is skipped too, since one bad record must
// not cost every group its offsets.
func (c *Coordinator) Replay(rec Record) error {
	group, tp, cm, deleted, err := decodeOffsetCommit(rec.Key, rec.Value)
	switch {
	case errors.Is(err, errNotMine):
		return nil
	case err != nil:
		return err
	case deleted:
		if offs := c.offsets[group]; offs != nil {
			delete(offs, tp)
			if len(offs) == 0 {
				delete(c.offsets, group)
			}
		}
		return nil
	}
	offs := c.offsets[group]
	if offs == nil {
		offs = map[TopicPartition]Committed{}
		c.offsets[group] = offs
	}
	offs[tp] = cm
	return nil
}

// CommitOffsets decides an OffsetCommit request (versions 2-9), as Kafka's
// handleOffsetCommit does for a classic group: the commit must come from
// the group's member at its current generation (see ValidateCommit), or,
// with generation -1 and no member id, from a consumer that assigns its own
// partitions to a group that is Empty or does not exist. exists says whether
// a partition exists (UNKNOWN_TOPIC_OR_PARTITION otherwise), and metadata
// longer than offset.metadata.max.bytes gets OFFSET_METADATA_TOO_LARGE
// (its length as Kafka measures it: see javaLength).
//
// It returns the response and the records to append: the partitions whose
// entry has error code 0 are committed only once the shell has appended the
// records and replayed them; if the append fails, the shell sets the error
// on those entries with CommitFailed. A valid commit from a member restarts
// its session, as a heartbeat does.
func (c *Coordinator) CommitOffsets(now time.Time, req *kmsg.OffsetCommitRequest, exists func(topic string, partition int32) bool) (*kmsg.OffsetCommitResponse, []Record) {
	c.begin(nil, now)
	defer c.end()
	resp := kmsg.NewPtrOffsetCommitResponse()
	resp.Version = req.Version
	instanceID := req.InstanceID
	if req.Version < 7 {
		instanceID = nil
	}
	verdict := c.ValidateCommit(req.Group, req.MemberID, req.Generation, instanceID)
	if verdict == kerr.IllegalGeneration && req.Version >= 9 && c.groups[req.Group] == nil {
		verdict = kerr.GroupIDNotFound
	}
	if verdict == nil && req.Generation >= 0 {
		g := c.groups[req.Group]
		if m := g.byID[req.MemberID]; m != nil && (g.state == Stable || g.state == PreparingRebalance) {
			c.schedule(&m.session, int64(m.sessionTimeoutMs))
		}
	}
	var recs []Record
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			switch {
			case verdict != nil:
				sp.ErrorCode = verdict.Code
			case !exists(rt.Topic, rp.Partition):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case rp.Metadata != nil && javaLength(*rp.Metadata) > int(c.cfg.OffsetMetadataMaxBytes):
				sp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			default:
				cm := Committed{Offset: rp.Offset, LeaderEpoch: -1, CommitTimestamp: now.UnixMilli()}
				if req.Version >= 6 {
					cm.LeaderEpoch = rp.LeaderEpoch
				}
				if rp.Metadata != nil {
					cm.Metadata = *rp.Metadata
				}
				recs = append(recs, EncodeOffsetCommit(req.Group, TopicPartition{rt.Topic, rp.Partition}, cm))
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, recs
}

// javaLength is the length of s as Java's String.length counts it, in
// UTF-16 code units: what Kafka compares with offset.metadata.max.bytes,
// despite the name.
func javaLength(s string) int {
	n := 0
	for range utf16Units(s) {
		n++
	}
	return n
}

// utf16Units yields s as Java holds a string: UTF-16 code units, a rune
// past U+FFFF as a surrogate pair, a byte of invalid UTF-8 as U+FFFD (what
// Java decodes it to). It allocates nothing.
func utf16Units(s string) iter.Seq[uint16] {
	return func(yield func(uint16) bool) {
		for _, r := range s {
			if r > 0xFFFF {
				hi, lo := utf16.EncodeRune(r)
				if !yield(uint16(hi)) || !yield(uint16(lo)) {
					return
				}
				continue
			}
			if !yield(uint16(r)) {
				return
			}
		}
	}
}

// PartitionFor is the partition of __consumer_offsets that holds groupID's
// records, and whose leader coordinates it: Kafka's
// GroupMetadataManager.partitionFor, the group id's Java String.hashCode
// (over UTF-16 code units, wrapping at 32 bits) made non-negative by Kafka's
// Utils.abs (which maps MinInt32 to 0), modulo the partitions. Clients never
// compute it, but any tool reading __consumer_offsets expects a group's
// records in this partition.
func PartitionFor(groupID string, partitions int) int32 {
	var h int32
	for u := range utf16Units(groupID) {
		h = 31*h + int32(u)
	}
	switch {
	case h == math.MinInt32:
		h = 0
	case h < 0:
		h = -h
	}
	return h % int32(partitions)
}

// CommitFailed marks the partitions of resp that were to be committed
// (error code 0) with code: the append of their records failed.
func CommitFailed(resp *kmsg.OffsetCommitResponse, code int16) {
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			if p := &resp.Topics[i].Partitions[j]; p.ErrorCode == 0 {
				p.ErrorCode = code
			}
		}
	}
}

// FetchGroupOffsets answers one group of an OffsetFetch: the committed
// offset of each partition asked for (every partition with one when topics
// is nil), -1 with no error for a partition without one, as Kafka answers.
// The error is the group's: NOT_COORDINATOR after Unload, INVALID_GROUP_ID
// for an empty id.
func (c *Coordinator) FetchGroupOffsets(group string, topics []kmsg.OffsetFetchRequestGroupTopic) ([]kmsg.OffsetFetchResponseGroupTopic, *kerr.Error) {
	switch {
	case c.unloaded:
		return nil, kerr.NotCoordinator
	case group == "":
		return nil, kerr.InvalidGroupID
	}
	offs := c.offsets[group]
	var out []kmsg.OffsetFetchResponseGroupTopic
	add := func(topic string, partition int32) {
		if len(out) == 0 || out[len(out)-1].Topic != topic {
			t := kmsg.NewOffsetFetchResponseGroupTopic()
			t.Topic = topic
			out = append(out, t)
		}
		p := kmsg.NewOffsetFetchResponseGroupTopicPartition()
		p.Partition, p.Offset, p.LeaderEpoch, p.Metadata = partition, -1, -1, kmsg.StringPtr("")
		if cm, ok := offs[TopicPartition{topic, partition}]; ok {
			p.Offset, p.LeaderEpoch, p.Metadata = cm.Offset, cm.LeaderEpoch, kmsg.StringPtr(cm.Metadata)
		}
		t := &out[len(out)-1]
		t.Partitions = append(t.Partitions, p)
	}
	if topics == nil {
		for _, tp := range sortedPartitions(offs) {
			add(tp.Topic, tp.Partition)
		}
		return out, nil
	}
	for _, t := range topics {
		for _, p := range t.Partitions {
			add(t.Topic, p)
		}
	}
	return out, nil
}

func sortedPartitions(offs map[TopicPartition]Committed) []TopicPartition {
	return slices.SortedFunc(maps.Keys(offs), func(a, b TopicPartition) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return int(a.Partition) - int(b.Partition)
	})
}

// GroupsWithOffsets counts the groups with committed offsets.
func (c *Coordinator) GroupsWithOffsets() int { return len(c.offsets) }

// Offsets returns the offsets group has committed (a copy), for tests and
// admin tools.
func (c *Coordinator) Offsets(group string) map[TopicPartition]Committed {
	return maps.Clone(c.offsets[group])
}

// DeleteOffsets answers an OffsetDelete request (versions 0-1), as Kafka's
// OffsetMetadataManager.deleteOffsets: the group's offsets of the
// partitions named go (tombstones returned for the shell to append, then
// replay), except those of a topic the group's consumers subscribe to,
// which get GROUP_SUBSCRIBED_TO_TOPIC. The subscriptions are the members'
// ConsumerProtocolSubscriptions as of the last completed join phase; a
// consumer group whose subscriptions are not known (one of them does not
// decode, or no join phase has completed) is taken as subscribed to every
// topic, as in Kafka. A group of another protocol type with members gets
// NON_EMPTY_GROUP.
func (c *Coordinator) DeleteOffsets(req *kmsg.OffsetDeleteRequest) (*kmsg.OffsetDeleteResponse, []Record) {
	resp := kmsg.NewPtrOffsetDeleteResponse()
	resp.Version = req.Version
	g := c.groups[req.Group]
	switch {
	case c.unloaded:
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp, nil
	case req.Group == "":
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp, nil
	case g != nil && g.state == Dead:
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil
	case (g == nil || g.state == Empty) && c.offsets[req.Group] == nil:
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return resp, nil
	case g != nil && g.state != Empty && g.protocolType != consumerProtocolType:
		resp.ErrorCode = kerr.NonEmptyGroup.Code
		return resp, nil
	}
	var recs []Record
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetDeleteResponseTopic()
		st.Topic = rt.Topic
		subscribed := g != nil && g.isSubscribedTo(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetDeleteResponseTopicPartition()
			sp.Partition = rp.Partition
			tp := TopicPartition{rt.Topic, rp.Partition}
			switch _, ok := c.offsets[req.Group][tp]; {
			case subscribed:
				sp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			case ok:
				recs = append(recs, offsetTombstone(req.Group, tp))
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, recs
}

// deleteGroupOffsets returns the tombstones of every offset group has.
func (c *Coordinator) deleteGroupOffsets(group string) []Record {
	var recs []Record
	for _, tp := range sortedPartitions(c.offsets[group]) {
		recs = append(recs, offsetTombstone(group, tp))
	}
	return recs
}

// DeleteTopicOffsets returns the tombstones of every group's committed
// offsets of the topics gone says were deleted, as Kafka's
// onPartitionsDeleted writes them: a topic created again under the same
// name starts without the old one's offsets, and a group in use does not
// keep those of a topic it can no longer read. The shell appends the
// tombstones, then replays them.
func (c *Coordinator) DeleteTopicOffsets(gone func(topic string) bool) []Record {
	if c.unloaded {
		return nil
	}
	var recs []Record
	for _, id := range slices.Sorted(maps.Keys(c.offsets)) {
		for _, tp := range sortedPartitions(c.offsets[id]) {
			if gone(tp.Topic) {
				recs = append(recs, offsetTombstone(id, tp))
			}
		}
	}
	return recs
}

// ExpireOffsets returns the tombstones of offsets past
// offsets.retention.minutes, as Kafka's cleanupExpiredOffsets and
// offsetExpirationCondition count it (KIP-211, KIP-496): an Empty group of
// a protocol type (consumers) loses them all once it has been Empty that
// long, however long ago they were committed, since a client commits only
// the offsets that moved; a Stable consumer group whose subscriptions are
// known loses, by their commit timestamp, the offsets of topics no member
// subscribes to; offsets of a group that exists only through them (a
// standalone consumer's, or any after a reload: group metadata is not
// persisted) expire by their commit timestamp; and a group otherwise in
// use (rebalancing, of another protocol type, or whose subscriptions are
// not known) keeps its offsets whatever their age. The offsets of a topic
// the group subscribes to never expire. It also forgets Empty groups with
// no offsets left, as Kafka's cleanup does, so that groups whose members
// have all gone do not stay in memory for ever. The shell appends the
// tombstones, then replays them.
func (c *Coordinator) ExpireOffsets(now time.Time) []Record {
	if c.unloaded {
		return nil
	}
	horizon := now.UnixMilli() - c.cfg.OffsetsRetentionMs
	var recs []Record
	for _, id := range slices.Sorted(maps.Keys(c.offsets)) {
		g := c.groups[id]
		sinceEmptied := false // otherwise since the commit
		switch {
		case g == nil || g.protocolType == "":
		case g.state == Empty:
			sinceEmptied = true
		case g.protocolType == consumerProtocolType && g.subscriptionsKnown && g.state == Stable:
		default:
			continue
		}
		offs := c.offsets[id]
		for _, tp := range sortedPartitions(offs) {
			if g != nil && g.isSubscribedTo(tp.Topic) {
				continue
			}
			since := offs[tp].CommitTimestamp
			if sinceEmptied {
				since = g.stateSince.UnixMilli()
			}
			if since < horizon {
				recs = append(recs, offsetTombstone(id, tp))
			}
		}
	}
	for id, g := range c.groups {
		if g.state == Empty && len(c.offsets[id]) == 0 && len(g.pending) == 0 {
			c.transition(g, Dead)
			delete(c.groups, id)
		}
	}
	return recs
}
