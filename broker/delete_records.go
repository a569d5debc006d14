package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleDeleteRecords deletes, per partition, the records below an offset
// (-1: the high watermark) by raising the log start, as Kafka's
// ReplicaManager.deleteRecords does (kafka-delete-records.sh, kadm's
// DeleteRecords, Kafka Streams purging its repartition topics). The records
// are unreadable at once; their segments go at the next retention check.
// The answer's low watermark is the new log start: with one replica per
// partition it needs no waiting for followers, so timeout_ms is not used.
// The log starts are checkpointed before any success is answered, so
// deleted records never come back after a crash (Kafka checkpoints them
// within a minute): after every request with a success, not only one that
// moved a start, since a retry (or a request racing this one) finds the
// start already moved by one whose checkpoint failed or is still being
// written.
func (b *Broker) handleDeleteRecords(rq *request, req *kmsg.DeleteRecordsRequest) {
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	im := b.image()
	succeeded := false
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition, sp.LowWatermark = rp.Partition, -1
			p, _, kerrCode := b.leaderFor(im, rt.Topic, rp.Partition, -1)
			switch {
			case kerrCode != nil:
				sp.ErrorCode = kerrCode.Code
			case rt.Topic == offsetsTopic:
				// As Kafka: an internal topic's records are the broker's.
				sp.ErrorCode = kerr.InvalidTopicException.Code
			default:
				low, err := p.DeleteRecords(rp.Offset)
				if err != nil {
					sp.ErrorCode = errorCode(err)
					break
				}
				sp.LowWatermark, succeeded = low, true
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if succeeded {
		if err := b.logs.CheckpointLogStartOffsets(); err != nil {
			// The starts moved in memory; the periodic checkpoint,
			// or the client's retry, tries again. The client must not
			// take the deletion as durable meanwhile.
			b.logger.Error("checkpointing log starts after DeleteRecords", "err", err)
			for i := range resp.Topics {
				for j := range resp.Topics[i].Partitions {
					if sp := &resp.Topics[i].Partitions[j]; sp.ErrorCode == 0 {
						sp.ErrorCode, sp.LowWatermark = kerr.KafkaStorageError.Code, -1
					}
				}
			}
		}
	}
	rq.reply(resp)
}
