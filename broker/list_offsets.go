package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/raft"
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
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
			b.listOffset(im, rq, req, rt.Topic, rp, &sp)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	rq.reply(resp)
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
		var maxTs int64 = -1
		for _, s := range p.Log().Segments() {
			maxTs = max(maxTs, s.MaxTimestamp)
		}
		if maxTs >= 0 {
			o, t, found, err := p.Log().OffsetForTimestamp(maxTs, b.maxDecompressed())
			if err != nil {
				sp.ErrorCode = errorCode(err)
				return
			}
			if found && o < hw {
				offset, ts = o, t
			}
		}
	default:
		if rp.Timestamp < 0 {
			sp.ErrorCode = kerr.InvalidRequest.Code
			return
		}
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
	if req.Version == 0 {
		// v0 answers a list of offsets before the timestamp; the one
		// offset is what every client asks for.
		if offset >= 0 && rp.MaxNumOffsets > 0 {
			sp.OldStyleOffsets = []int64{offset}
		}
	}
}

// maxDecompressed bounds the decompression of one batch the broker must look
// inside (a timestamp lookup, a recompression).
func (b *Broker) maxDecompressed() int { return max(int(b.cfg.MessageMaxBytes), 1<<20) * 64 }
