package broker

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/raft"
	"gregor/segment"
)

// ListOffsets' special timestamps.
const (
	latestTimestamp   = -1 // the high watermark
	earliestTimestamp = -2 // the log start offset
	maxTimestamp      = -3 // the record with the largest timestamp (v7, KIP-734)
)

// handleListOffsets answers offsets by time (KIP-79: the first record whose
// timestamp is at least the one asked for), earliest, latest and the record
// with the largest timestamp, as seen by consumers (below the high
// watermark).
func (b *Broker) handleListOffsets(rq *request, req *kmsg.ListOffsetsRequest) {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	im := b.image()
	badIsolation := req.Version >= 2 && !validIsolationLevel(req.IsolationLevel)
	if badIsolation {
		rq.log().Info("refusing ListOffsets: isolation_level must be 0 (read_uncommitted) or 1 (read_committed)", "isolation_level", req.IsolationLevel)
	}
	// Kafka answers every entry of a partition named twice INVALID_REQUEST.
	named := make(map[segment.TopicPartition]int)
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			named[segment.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}]++
		}
	}
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
			switch {
			case badIsolation:
				// Kafka's IsolationLevel.forId throws on any other
				// id, which fails the whole request so.
				sp.ErrorCode = kerr.UnknownServerError.Code
			case named[segment.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}] > 1:
				sp.ErrorCode = kerr.InvalidRequest.Code
			case !timestampSupported(rp.Timestamp, req.Version):
				sp.ErrorCode = kerr.UnsupportedVersion.Code
			case req.Version == 0:
				b.listOffsetsV0(im, req, rt.Topic, rp, &sp)
			default:
				b.listOffset(im, rq, req, rt.Topic, rp, &sp)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	rq.reply(resp)
}

// validIsolationLevel reports whether level is one Kafka knows:
// read_uncommitted (0) or read_committed (1).
func validIsolationLevel(level int8) bool { return level == 0 || level == 1 }

// timestampSupported reports whether ListOffsets version v knows the
// special (negative) timestamp ts, as Kafka's ReplicaManager checks: -1 and
// -2 always, -3 from v7; others (-4 and -5 are v8 and v9's, past what
// Gregor serves) never.
func timestampSupported(ts int64, v int16) bool {
	return ts >= earliestTimestamp || (ts == maxTimestamp && v >= 7)
}

// listOffsetsV0 answers ListOffsets v0 as Kafka's legacy path does
// (UnifiedLog.legacyFetchOffsetsBefore): up to max_num_offsets offsets,
// newest first, from the segments' first offsets and the log end, paired
// with when each was last written: latest lists from the log end, earliest
// the log start, and a time from the last segment written by then.
func (b *Broker) listOffsetsV0(im *raft.Image, req *kmsg.ListOffsetsRequest, topic string, rp kmsg.ListOffsetsRequestTopicPartition, sp *kmsg.ListOffsetsResponseTopicPartition) {
	p, _, kerrCode := b.leaderFor(im, topic, rp.Partition, -1)
	if kerrCode != nil {
		sp.ErrorCode = kerrCode.Code
		return
	}
	segs, err := p.Log().ModTimes()
	if err != nil {
		sp.ErrorCode = errorCode(err)
		return
	}
	start := p.LogStartOffset()
	type point struct {
		offset int64
		at     time.Time
	}
	points := make([]point, 0, len(segs)+1)
	for _, s := range segs {
		points = append(points, point{max(s.BaseOffset, start), s.ModTime})
	}
	if end := p.LogEndOffset(); len(segs) > 0 && end > segs[len(segs)-1].BaseOffset {
		points = append(points, point{end, time.Now()})
	}
	from := -1
	switch rp.Timestamp {
	case latestTimestamp:
		from = len(points) - 1
	case earliestTimestamp:
		from = min(0, len(points)-1)
	default:
		for i := len(points) - 1; i >= 0 && from < 0; i-- {
			if points[i].at.UnixMilli() <= rp.Timestamp {
				from = i
			}
		}
	}
	sp.OldStyleOffsets = []int64{}
	hw := p.HighWatermark()
	for i := from; i >= 0 && len(sp.OldStyleOffsets) < int(rp.MaxNumOffsets); i-- {
		o := points[i].offset
		if req.ReplicaID < 0 && o > hw {
			o = hw // a consumer is told of committed offsets only
		}
		if n := len(sp.OldStyleOffsets); n == 0 || sp.OldStyleOffsets[n-1] != o {
			sp.OldStyleOffsets = append(sp.OldStyleOffsets, o)
		}
	}
}

func (b *Broker) listOffset(im *raft.Image, rq *request, req *kmsg.ListOffsetsRequest, topic string, rp kmsg.ListOffsetsRequestTopicPartition, sp *kmsg.ListOffsetsResponseTopicPartition) {
	p, _, kerrCode := b.leaderFor(im, topic, rp.Partition, rp.CurrentLeaderEpoch)
	if kerrCode != nil {
		sp.ErrorCode = kerrCode.Code
		return
	}
	epoch, _ := p.Leader()
	hw := p.HighWatermark()
	epochAt := func(offset int64) int32 {
		if e, ok := p.Log().LeaderEpochs().EpochForOffset(offset); ok {
			return e
		}
		return -1
	}
	var offset, ts int64 = -1, -1
	switch rp.Timestamp {
	case latestTimestamp:
		offset = hw
		if req.ReplicaID >= 0 {
			offset = p.LogEndOffset() // a follower asks for the log end
		}
	case earliestTimestamp:
		offset = p.LogStartOffset()
	case maxTimestamp:
		o, t, found, err := p.Log().OffsetForMaxTimestamp(b.maxDecompressed())
		if err != nil {
			sp.ErrorCode = errorCode(err)
			return
		}
		if found && o < hw {
			offset, ts = o, t
		}
	default:
		o, t, found, err := p.Log().OffsetForTimestamp(rp.Timestamp, b.maxDecompressed())
		if err != nil {
			sp.ErrorCode = errorCode(err)
			rq.log().Warn("listing an offset by time", "topic", topic, "partition", rp.Partition, "err", err)
			return
		}
		if found && o < hw {
			offset, ts = o, t
		}
	}
	sp.Offset, sp.Timestamp = offset, ts
	if offset >= 0 && req.Version >= 4 {
		if offset == hw || offset == p.LogEndOffset() {
			sp.LeaderEpoch = epoch
		} else {
			sp.LeaderEpoch = epochAt(offset)
		}
	}
}

// maxDecompressed bounds the decompression of one batch the broker must look
// inside (a timestamp lookup, a recompression).
func (b *Broker) maxDecompressed() int { return max(int(b.cfg.MessageMaxBytes), 1<<20) * 64 }
