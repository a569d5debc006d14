package broker

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

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
// after the append, so acks=1 and acks=-1 both answer once every partition
// is appended; acks=0 sends nothing, but closes the connection when a
// partition failed so the client refreshes its metadata (Kafka's
// behaviour). Each partition's batch is appended in its partition's turn
// (appendLanes): a small request before Serve returns, a large one's
// partitions side by side and after Serve returns, so that the connection's
// next request is read meanwhile.
func (b *Broker) handleProduce(rq *request, req *kmsg.ProduceRequest) {
	call := &produceCall{b: b, rq: rq, req: req, im: b.image(), resp: req.ResponseKind().(*kmsg.ProduceResponse)}
	total := 0
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		var settings topicSettings
		if t, ok := call.im.Topic(rt.Topic); ok {
			settings = b.topicSettings(t.Configs)
		}
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		for i, rp := range rt.Partitions {
			st.Partitions[i] = kmsg.NewProduceResponseTopicPartition()
			st.Partitions[i].Partition = rp.Partition
			call.jobs = append(call.jobs, produceJob{topic: rt.Topic, in: rp, settings: settings, out: &st.Partitions[i]})
			total += len(rp.Records)
		}
		call.resp.Topics = append(call.resp.Topics, st)
	}
	if len(call.jobs) == 0 {
		call.finish()
		return
	}
	inline := total < parallelProduceMinBytes
	call.pending.Store(int64(len(call.jobs)))
	for i := range call.jobs {
		j := &call.jobs[i]
		b.appends.enqueue(segment.TopicPartition{Topic: j.topic, Partition: j.in.Partition}, func() { call.run(j) }, inline)
	}
}

// parallelProduceMinBytes is the size of a Produce request from which its
// appends leave the connection's goroutine. Below it an append is short
// next to starting a goroutine, and appending before Serve returns keeps
// the connection's reading paused as long as the broker is busy with it.
const parallelProduceMinBytes = 256 << 10

// produceCall is one Produce request on its way through the lanes: it is
// answered when its last partition is appended.
type produceCall struct {
	b       *Broker
	rq      *request
	req     *kmsg.ProduceRequest
	im      *raft.Image
	resp    *kmsg.ProduceResponse
	jobs    []produceJob
	pending atomic.Int64
}

// produceJob is one partition's batch of a Produce request and the slot of
// the response that answers it.
type produceJob struct {
	topic    string
	in       kmsg.ProduceRequestTopicPartition
	settings topicSettings
	out      *kmsg.ProduceResponseTopicPartition
}

// run appends one partition's batch, fills in its answer, and answers the
// request when it was the last.
func (c *produceCall) run(j *produceJob) {
	res, err := c.b.producePartition(c.im, c.req, j.topic, j.in.Partition, j.in.Records, j.settings)
	if err != nil {
		j.out.ErrorCode = errorCode(err)
		msg := err.Error()
		j.out.ErrorMessage = &msg
		j.out.BaseOffset, j.out.LogStartOffset = -1, -1
		c.rq.log().Debug("produce failed", "topic", j.topic, "partition", j.in.Partition, "err", err)
	} else {
		j.out.BaseOffset = res.FirstOffset
		j.out.LogAppendTime = res.LogAppendTime
		j.out.LogStartOffset = res.LogStartOffset
		c.b.metrics.produced(len(j.in.Records))
	}
	if c.pending.Add(-1) == 0 {
		c.finish()
	}
}

// finish answers the request; every job has run. Nothing refers to the
// request's frame any more (the batches were written out, the response
// holds decoded copies), so its memory goes back to netio for a later
// request: a produce frame is the size of its batches.
func (c *produceCall) finish() {
	if c.req.Acks != 0 {
		c.rq.reply(c.resp)
	} else {
		failed := false
		for i := range c.jobs {
			failed = failed || c.jobs[i].out.ErrorCode != 0
		}
		c.rq.send(netio.Response{NoResponse: true, CloseAfter: failed})
	}
	c.rq.conn.Release()
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
	if len(records) == 0 {
		return replica.AppendResult{}, kerrf(kerr.InvalidRecord, "Produce requests with version %d must have at least one record batch per partition", req.Version)
	}
	if len(records) > s.maxMessageBytes {
		// Checked here, not only by Validate, for which 0 means no limit:
		// a topic's max.message.bytes=0 refuses every batch, as Kafka's.
		return replica.AppendResult{}, kerrf(kerr.MessageTooLarge, "the batch is %d bytes, more than max.message.bytes %d", len(records), s.maxMessageBytes)
	}
	if err := batch.Validate(records, s.maxMessageBytes); err != nil {
		if errors.Is(err, batch.ErrLength) && len(records) > batch.HeaderSize && int(batch.Header(records).BatchLength())+12 < len(records) {
			return replica.AppendResult{}, kerrf(kerr.InvalidRecord, "a produce request must carry exactly one record batch per partition")
		}
		return replica.AppendResult{}, err
	}
	h := batch.Header(records)
	if h.Transactional() || h.Control() {
		return replica.AppendResult{}, kerrf(kerr.InvalidRecord, "transactional and control batches are not supported by this broker")
	}
	if h.Codec() == batch.CodecZstd && req.Version < 7 {
		return replica.AppendResult{}, kerrf(kerr.UnsupportedCompressionType, "Produce requests with version %d cannot carry zstd-compressed records (version 7 and later can)", req.Version)
	}
	if h.ProducerID() >= 0 && h.BaseSequence() < 0 {
		return replica.AppendResult{}, kerrf(kerr.InvalidRecord, "Invalid sequence number %d in record batch with producerId %d", h.BaseSequence(), h.ProducerID())
	}
	if !s.logAppendTime {
		if err := checkTimestamps(h, time.Now().UnixMilli(), s.tsBeforeMaxMs, s.tsAfterMaxMs); err != nil {
			return replica.AppendResult{}, err
		}
	}
	maxDecompressed := max(s.maxMessageBytes, 1<<20) * 64
	if s.compacted || h.Codec() == batch.CodecNone {
		if err := checkRecords(h, topic, partition, s.compacted, maxDecompressed); err != nil {
			return replica.AppendResult{}, err
		}
	}
	if !s.keepCompression && h.Codec() != s.compression {
		var err error
		if records, err = batch.Recompress(nil, h, s.compression, maxDecompressed); err != nil {
			return replica.AppendResult{}, err
		}
		if len(records) > s.maxMessageBytes {
			return replica.AppendResult{}, kerrf(kerr.MessageTooLarge, "the batch is %d bytes once compressed with the topic's %s, more than max.message.bytes %d",
				len(records), s.compression, s.maxMessageBytes)
		}
	}
	res, err := p.Append(records, replica.AppendOptions{LogAppendTime: s.logAppendTime})
	if err != nil {
		return res, err
	}
	return res, nil
}

// checkRecords walks a batch's records, as Kafka's LogValidator does, so
// that a batch whose CRC holds but whose records do not parse is refused
// (INVALID_RECORD) instead of stored for every consumer to fail on. With
// requireKey (a compacted topic: compaction keeps the newest record per key,
// so a keyless record has no place there) every record must have a key.
// The caller walks uncompressed batches, which costs a few percent of the
// CRC, and compressed ones only for compacted topics: decompressing every
// batch kept as sent would cost more than the rest of the append (Kafka
// does it; Gregor leaves a compressed batch's records to its consumers).
func checkRecords(h batch.Header, topic string, partition int32, requireKey bool, maxDecompressed int) error {
	rr, _, err := batch.DecodeRecords(h, nil, maxDecompressed)
	if err != nil {
		return err
	}
	var r batch.Record
	for rr.Next(&r) {
		if requireKey && r.Key == nil {
			return kerrf(kerr.InvalidRecord, "Compacted topic cannot accept message without key in topic partition %s-%d.", topic, partition)
		}
	}
	if err := rr.Err(); err != nil {
		return kerrf(kerr.InvalidRecord, "%s-%d: %v", topic, partition, err)
	}
	return nil
}

// checkTimestamps refuses a CreateTime batch whose timestamps lie more than
// beforeMax behind or afterMax ahead of now (INVALID_TIMESTAMP), as Kafka's
// LogValidator does per record. Here the batch's first and largest
// timestamps are checked, from its header, so that a compressed batch need
// not be decompressed: a record timestamped before the batch's first one is
// the only one this can miss.
func checkTimestamps(h batch.Header, now, beforeMax, afterMax int64) error {
	for _, ts := range [2]int64{h.BaseTimestamp(), h.MaxTimestamp()} {
		// Differences as unsigned, so that no timestamp overflows them.
		behind := ts < now && uint64(now)-uint64(ts) > uint64(beforeMax)
		ahead := ts > now && uint64(ts)-uint64(now) > uint64(afterMax)
		if ts >= 0 && (behind || ahead) {
			return kerrf(kerr.InvalidTimestamp, "Timestamp %d of a record is out of range: the broker's clock reads %d, and the timestamp must be within [%d ms before, %d ms after] it",
				ts, now, beforeMax, afterMax)
		}
	}
	return nil
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
