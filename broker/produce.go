package broker

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/batch"
	"gregor/netio"
	"gregor/raft"
	"gregor/replica"
	"gregor/segment"
)

// handleProduce validates each partition's batch in place and appends it.
// With one replica per partition the high watermark is the leader's log end
// after the append, so acks=1 and acks=-1 both answer at once; acks=0 sends
// nothing, but closes the connection when a partition failed so the client
// refreshes its metadata (Kafka's behaviour).
func (b *Broker) handleProduce(rq *request, req *kmsg.ProduceRequest) {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	im := b.image()
	failed := false
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		var settings topicSettings
		if t, ok := im.Topic(rt.Topic); ok {
			settings = b.topicSettings(t.Configs)
		}
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			res, err := b.producePartition(im, req, rt.Topic, rp.Partition, rp.Records, settings)
			if err != nil {
				failed = true
				sp.ErrorCode = errorCode(err)
				msg := err.Error()
				sp.ErrorMessage = &msg
				sp.BaseOffset, sp.LogStartOffset = -1, -1
				rq.log().Debug("produce failed", "topic", rt.Topic, "partition", rp.Partition, "err", err)
			} else {
				sp.BaseOffset = res.FirstOffset
				sp.LogAppendTime = res.LogAppendTime
				sp.LogStartOffset = res.LogStartOffset
				b.metrics.produced(len(rp.Records))
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if req.Acks == 0 {
		rq.send(netio.Response{NoResponse: true, CloseAfter: failed})
		return
	}
	rq.reply(resp)
}

// producePartition checks and appends one partition's records.
func (b *Broker) producePartition(im *raft.Image, req *kmsg.ProduceRequest, topic string, partition int32, records []byte, s topicSettings) (replica.AppendResult, error) {
	switch req.Acks {
	case -1, 0, 1:
	default:
		return replica.AppendResult{}, kerrf(kerr.InvalidRequiredAcks, "acks must be -1, 0 or 1, not %d", req.Acks)
	}
	p, pi, kerrCode := b.leaderFor(im, topic, partition, -1)
	if kerrCode != nil {
		return replica.AppendResult{}, kerrf(kerrCode, "%s-%d: %s", topic, partition, kerrCode.Description)
	}
	if topic == offsetsTopic {
		// Only the group coordinators write there: a client's records
		// would be read back as commits.
		return replica.AppendResult{}, kerrf(kerr.InvalidTopicException, "Cannot append to internal topic %s", topic)
	}
	if req.Acks == -1 && len(pi.ISR) < s.minInsyncReplicas {
		// Kafka refuses before appending: acks=all promises
		// min.insync.replicas copies, which the ISR cannot give.
		return replica.AppendResult{}, kerrf(kerr.NotEnoughReplicas, "The size of the current ISR %d is insufficient to satisfy the min.isr requirement of %d for partition %s-%d",
			len(pi.ISR), s.minInsyncReplicas, topic, partition)
	}
	if req.TransactionID != nil {
		return replica.AppendResult{}, kerrf(kerr.TransactionalIDAuthorizationFailed, "transactions are not supported by this broker")
	}
	if err := batch.Validate(records, s.maxMessageBytes); err != nil {
		if errors.Is(err, batch.ErrTooLarge) || len(records) > s.maxMessageBytes {
			return replica.AppendResult{}, kerrf(kerr.MessageTooLarge, "the batch is %d bytes, more than max.message.bytes %d", len(records), s.maxMessageBytes)
		}
		if errors.Is(err, batch.ErrLength) && len(records) > batch.HeaderSize && int(batch.Header(records).BatchLength())+12 < len(records) {
			return replica.AppendResult{}, kerrf(kerr.InvalidRecord, "a produce request must carry exactly one record batch per partition")
		}
		return replica.AppendResult{}, err
	}
	h := batch.Header(records)
	if h.Transactional() || h.Control() {
		return replica.AppendResult{}, kerrf(kerr.InvalidRecord, "transactional and control batches are not supported by this broker")
	}
	if s.compacted {
		if err := requireKeys(h, topic, partition, max(s.maxMessageBytes, 1<<20)*64); err != nil {
			return replica.AppendResult{}, err
		}
	}
	if !s.keepCompression && h.Codec() != s.compression {
		var err error
		if records, err = batch.Recompress(nil, h, s.compression, max(s.maxMessageBytes, 1<<20)*64); err != nil {
			return replica.AppendResult{}, err
		}
	}
	res, err := p.Append(records, replica.AppendOptions{LogAppendTime: s.logAppendTime})
	if err != nil {
		return res, err
	}
	return res, nil
}

// kerrf is a Kafka error with a message for the client.
func kerrf(code *kerr.Error, format string, args ...any) error {
	return &codedError{code: code, msg: fmt.Sprintf(format, args...)}
}

type codedError struct {
	code *kerr.Error
	msg  string
}

func (e *codedError) Error() string { return e.msg }
func (e *codedError) Unwrap() error { return e.code }

// errorCode maps an error to Kafka's code: the kerr.Error it wraps (batch,
// replica and broker errors all do), the log's own errors, or
// UNKNOWN_SERVER_ERROR.
func errorCode(err error) int16 {
	var ke *kerr.Error
	switch {
	case errors.As(err, &ke):
		return ke.Code
	case errors.Is(err, segment.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, segment.ErrLogFailed), errors.Is(err, segment.ErrCorruption), errors.Is(err, segment.ErrClosed):
		return kerr.KafkaStorageError.Code
	}
	return batch.KafkaCode(err)
}
