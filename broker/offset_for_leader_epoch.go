package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleOffsetForLeaderEpoch answers, per partition, where the asked leader
// epoch ends in this leader's log (KIP-101/279): consumers use it to detect
// log truncation after an unclean leader change (KIP-320), followers to find
// where their log diverges.
func (b *Broker) handleOffsetForLeaderEpoch(rq *request, req *kmsg.OffsetForLeaderEpochRequest) {
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	im := b.image()
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			if p, _, kerrCode := b.leaderFor(im, rt.Topic, rp.Partition, rp.CurrentLeaderEpoch); kerrCode != nil {
				sp.ErrorCode = kerrCode.Code
			} else {
				sp.LeaderEpoch, sp.EndOffset = p.Log().LeaderEpochs().EndOffsetFor(rp.LeaderEpoch, p.LogEndOffset())
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	rq.reply(resp)
}
