package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleDescribeProducers lists, per partition this broker leads, the
// idempotent producers it remembers (KIP-664: kafka-transactions.sh
// describe-producers, Admin's describeProducers): id, epoch, the last
// sequence appended and when. Gregor has no transactions, so every
// producer's coordinator epoch and transaction start offset are -1.
func (b *Broker) handleDescribeProducers(rq *request, req *kmsg.DescribeProducersRequest) {
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	im := b.image()
	for _, rt := range req.Topics {
		st := kmsg.NewDescribeProducersResponseTopic()
		st.Topic = rt.Topic
		for _, part := range rt.Partitions {
			sp := kmsg.NewDescribeProducersResponseTopicPartition()
			sp.Partition = part
			p, _, kerrCode := b.leaderFor(im, rt.Topic, part, -1)
			if kerrCode != nil {
				sp.ErrorCode = kerrCode.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			for _, ps := range p.Producers() {
				ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
				ap.ProducerID, ap.ProducerEpoch, ap.LastSequence, ap.LastTimestamp = ps.ProducerID, int32(ps.Epoch), ps.LastSequence, ps.LastTimestampMs
				ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = -1, -1
				sp.ActiveProducers = append(sp.ActiveProducers, ap)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	rq.reply(resp)
}
