package broker

import (
	"errors"
	"fmt"
	"strings"
	"sync"
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
// next request is read meanwhile (and, unless it is a Produce too, waits
// for these appends: unfinishedProduces).
func (b *Broker) handleProduce(rq *request, req *kmsg.ProduceRequest) {
	b.produces.start(rq.conn.ConnID)
	call := &produceCall{b: b, rq: rq, req: req, im: b.image(), resp: req.ResponseKind().(*kmsg.ProduceResponse)}
	dedupeProduce(req)
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

// dedupeProduce rewrites a request that names a topic or a partition more
// than once as Kafka's map of batches by partition sees it: each topic
// once, in its first place, each partition once, with its last batch in
// its first place. A request without repeats, every client's, is left as
// it is without allocating.
func dedupeProduce(req *kmsg.ProduceRequest) {
	if !produceNamesTwice(req) {
		return
	}
	type place struct{ topic, partition int }
	at := make(map[segment.TopicPartition]place)
	var topics []kmsg.ProduceRequestTopic
	topicAt := make(map[string]int)
	for _, rt := range req.Topics {
		ti, ok := topicAt[rt.Topic]
		if !ok {
			ti = len(topics)
			topicAt[rt.Topic] = ti
			topics = append(topics, kmsg.ProduceRequestTopic{Topic: rt.Topic})
		}
		for _, rp := range rt.Partitions {
			tp := segment.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}
			if pl, ok := at[tp]; ok {
				topics[pl.topic].Partitions[pl.partition] = rp
				continue
			}
			at[tp] = place{ti, len(topics[ti].Partitions)}
			topics[ti].Partitions = append(topics[ti].Partitions, rp)
		}
	}
	req.Topics = topics
}

// produceNamesTwice reports whether a request names a topic in two entries
// or a partition twice in one, by comparing pairs (without allocating) where
// there are few, by a set where one topic has many partitions.
func produceNamesTwice(req *kmsg.ProduceRequest) bool {
	for i, rt := range req.Topics {
		for _, other := range req.Topics[i+1:] {
			if other.Topic == rt.Topic {
				return true
			}
		}
		if len(rt.Partitions) > 64 {
			seen := make(map[int32]bool, len(rt.Partitions))
			for _, rp := range rt.Partitions {
				if seen[rp.Partition] {
					return true
				}
				seen[rp.Partition] = true
			}
			continue
		}
		for j, a := range rt.Partitions {
			for _, b := range rt.Partitions[j+1:] {
				if a.Partition == b.Partition {
					return true
				}
			}
		}
	}
	return false
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
		j.out.BaseOffset, j.out.LogStartOffset = res.FirstOffset, res.LogStartOffset
		if re := (*recordErrors)(nil); errors.As(err, &re) {
			for _, f := range re.faults {
				e := kmsg.NewProduceResponseTopicPartitionErrorRecord()
				e.RelativeOffset, e.ErrorMessage = f.index, &f.msg
				j.out.ErrorRecords = append(j.out.ErrorRecords, e)
			}
		}
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

// finish answers the request; every job has run, so the connection's
// requests waiting for its appends may run. Nothing refers to the
// request's frame any more (the batches were written out, the response
// holds decoded copies), so its memory goes back to netio for a later
// request: a produce frame is the size of its batches.
func (c *produceCall) finish() {
	c.b.produces.finish(c.rq.conn.ConnID)
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

// producePartition checks and appends one partition's records. On failure
// the result's LogStartOffset is what the answer carries: -1 where Kafka
// refuses before it looks at the partition's log (refuseBeforeLog), the
// log's start offset for the failures Kafka reports with it.
func (b *Broker) producePartition(im *raft.Image, req *kmsg.ProduceRequest, topic string, partition int32, records []byte, s topicSettings) (replica.AppendResult, error) {
	failed := replica.AppendResult{FirstOffset: -1, LastOffset: -1, LogAppendTime: -1, LogStartOffset: -1}
	p, pi, kerrCode := b.leaderFor(im, topic, partition, -1)
	b1, err := refuseBeforeLog(req, topic, partition, records, kerrCode)
	if err != nil {
		return failed, err
	}
	res, err := appendChecked(p, pi, req, topic, partition, b1, s, b.decompressions)
	if err != nil {
		if !unknownLogAppend(errorCode(err)) {
			failed.LogStartOffset = p.LogStartOffset()
		}
		return failed, err
	}
	return res, nil
}

// refuseBeforeLog makes the checks Kafka makes before it finds a partition's
// log, in its order: the topic and partition exist and the request's records
// field holds one batch of magic 2 (KafkaApis), the acks are valid, the
// topic is not the internal one, and this broker leads the partition
// (ReplicaManager). leaderErr is leaderFor's verdict on the partition. It
// returns the batch oneBatch found.
func refuseBeforeLog(req *kmsg.ProduceRequest, topic string, partition int32, records []byte, leaderErr *kerr.Error) ([]byte, error) {
	if leaderErr == kerr.UnknownTopicOrPartition {
		return nil, kerrf(leaderErr, "%s-%d: %s", topic, partition, leaderErr.Description)
	}
	b, err := oneBatch(req.Version, records)
	if err != nil {
		return nil, err
	}
	switch req.Acks {
	case -1, 0, 1:
	default:
		return nil, kerrf(kerr.InvalidRequiredAcks, "acks must be -1, 0 or 1, not %d", req.Acks)
	}
	if topic == offsetsTopic {
		// Only the group coordinators write there: a client's records
		// would be read back as commits.
		return nil, kerrf(kerr.InvalidTopicException, "Cannot append to internal topic %s", topic)
	}
	if leaderErr != nil {
		return nil, kerrf(leaderErr, "%s-%d: %s", topic, partition, leaderErr.Description)
	}
	return b, nil
}

// oneBatch reads a Produce records field as Kafka's ProduceRequest does with
// its batch iterator, before any log is looked at: the field must hold one
// batch (nextBatch), of magic 2, not zstd before v7, and no second one.
// Whether the batch itself is whole and sound is the log's to check
// (appendChecked).
//
// It returns the batch without the bytes after it: bytes that are no whole
// batch are the end of the iteration to Kafka, and its log trims them
// (UnifiedLog.trimInvalidBytes) rather than refusing the append.
func oneBatch(version int16, records []byte) ([]byte, error) {
	n, err := nextBatch(records)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, kerrf(kerr.InvalidRecord, "Produce requests with version %d must have at least one record batch per partition", version)
	}
	h := batch.Header(records)
	if h.Magic() != 2 {
		return nil, kerrf(kerr.InvalidRecord, "Produce requests with version %d are only allowed to contain record batches with magic version 2", version)
	}
	if h.Codec() == batch.CodecZstd && version < 7 {
		return nil, kerrf(kerr.UnsupportedCompressionType, "Produce requests with version %d cannot carry zstd-compressed records (version 7 and later can)", version)
	}
	if more, err := nextBatch(records[n:]); err != nil {
		return nil, err
	} else if more > 0 {
		return nil, kerrf(kerr.InvalidRecord, "Produce requests with version %d are only allowed to contain exactly one record batch per partition", version)
	}
	return records[:n], nil
}

// nextBatch is the length of the batch b starts with, log overhead
// included, as Kafka's ByteBufferLogInputStream reads it: 0 when b is too
// short for a batch's length and magic, or for the length it announces (the
// iteration ends there); CORRUPT_MESSAGE for a length under the smallest
// record's (14) or a magic Kafka has never had.
func nextBatch(b []byte) (int, error) {
	const logOverhead, upToMagic, minRecordOverhead = 12, 17, 14
	if len(b) < logOverhead {
		return 0, nil
	}
	h := batch.Header(b)
	size := h.BatchLength()
	if size < minRecordOverhead {
		return 0, kerrf(kerr.CorruptMessage, "Record size %d is less than the minimum record overhead (%d)", size, minRecordOverhead)
	}
	if len(b) < upToMagic {
		return 0, nil
	}
	if m := h.Magic(); m < 0 || m > 2 {
		return 0, kerrf(kerr.CorruptMessage, "Invalid magic found in record: %d", m)
	}
	if int64(size)+logOverhead > int64(len(b)) {
		return 0, nil
	}
	return int(size) + logOverhead, nil
}

// appendChecked validates one partition's batch as Kafka's LogValidator
// does, against the topic's settings, and appends it to p, the partition's
// log, which this broker leads. A compressed batch's records are
// decompressed within budget (decompressionBudget) and given back before
// the append.
func appendChecked(p *replica.Partition, pi *raft.PartitionImage, req *kmsg.ProduceRequest, topic string, partition int32, records []byte, s topicSettings, budget *decompressionBudget) (replica.AppendResult, error) {
	if req.Acks == -1 && len(pi.ISR) < s.minInsyncReplicas {
		// Kafka refuses before appending: acks=all promises
		// min.insync.replicas copies, which the ISR cannot give.
		return replica.AppendResult{}, kerrf(kerr.NotEnoughReplicas, "The size of the current ISR %d is insufficient to satisfy the min.isr requirement of %d for partition %s-%d",
			len(pi.ISR), s.minInsyncReplicas, topic, partition)
	}
	h := batch.Header(records) // oneBatch has seen it to be whole, of magic 2
	if h.BaseOffset() != 0 {
		// Kafka 4 refuses it so, first of the log's checks: a client's
		// offsets are the broker's to give.
		return replica.AppendResult{}, kerrf(kerr.InvalidRecord, "The baseOffset of the record batch in the append to %s-%d should be 0, but it is %d", topic, partition, h.BaseOffset())
	}
	if len(records) > s.maxMessageBytes {
		// Checked here, not only by Validate, for which 0 means no limit:
		// a topic's max.message.bytes=0 refuses every batch, as Kafka's.
		return replica.AppendResult{}, kerrf(kerr.MessageTooLarge, "the batch is %d bytes, more than max.message.bytes %d", len(records), s.maxMessageBytes)
	}
	if err := batch.Validate(records, s.maxMessageBytes); err != nil {
		return replica.AppendResult{}, err
	}
	if h.Transactional() || h.Control() {
		return replica.AppendResult{}, kerrf(kerr.InvalidRecord, "transactional and control batches are not supported by this broker")
	}
	if _, ok := h.DeleteHorizon(); ok {
		// Only the cleaner marks a batch (KIP-534): a producer's mark, a
		// horizon in the past, would let the next cleaning drop the
		// batch's tombstones before delete.retention.ms. The records'
		// timestamps do not change.
		h.ClearDeleteHorizon()
	}
	if h.ProducerID() >= 0 && h.BaseSequence() < 0 {
		return replica.AppendResult{}, kerrf(kerr.InvalidRecord, "Invalid sequence number %d in record batch with producerId %d", h.BaseSequence(), h.ProducerID())
	}
	scratch := recordsScratch.Get().(*[]byte)
	defer putRecordsScratch(scratch)
	section, maxTs, held, renumber, err := checkRecords(h, topic, partition, s, time.Now().UnixMilli(), scratch, budget)
	if err != nil {
		return replica.AppendResult{}, err
	}
	if !s.logAppendTime && (maxTs != h.MaxTimestamp() || h.LogAppendTime()) {
		// The time index and ListOffsets trust the header's largest
		// timestamp; like Kafka's validator, set it from the records,
		// and the topic's CreateTime in place of a producer's
		// LogAppendTime, which would have every record read as the
		// largest timestamp.
		h.SetMaxTimestamp(maxTs)
	}
	recompress := s.recompresses(h.Codec())
	switch {
	case renumber:
		// Rebuilt in the topic's codec, or the producer's at its
		// default level; the renumbered copy holds a share of its own.
		codec, level := s.compression, s.level
		if !recompress {
			codec, level = h.Codec(), batch.DefaultLevel(h.Codec())
		}
		recompress = true
		budget.acquire(int64(len(section)))
		held += int64(len(section))
		var renumbered []byte
		if renumbered, err = renumberRecords(make([]byte, 0, len(section)), section, h.RecordCount()); err == nil {
			records, err = batch.RecompressRecords(nil, h, renumbered, codec, level)
		}
	case recompress:
		records, err = batch.RecompressRecords(nil, h, section, s.compression, s.level)
	}
	// Done with the section: its share goes back before the append, which
	// may wait on the log.
	budget.release(held)
	if err != nil {
		return replica.AppendResult{}, err
	}
	if recompress && len(records) > s.maxMessageBytes {
		return replica.AppendResult{}, kerrf(kerr.MessageTooLarge, "the batch is %d bytes once compressed with the topic's %s, more than max.message.bytes %d",
			len(records), s.compression, s.maxMessageBytes)
	}
	return p.Append(records, replica.AppendOptions{LogAppendTime: s.logAppendTime})
}

// checkRecords walks a batch's records, as Kafka's LogValidator does, so
// that a batch whose CRC holds but whose records do not parse, or number
// other than its header says, is refused (INVALID_RECORD; a compressed
// section that does not decompress, or decompresses past the bound of
// max(max.message.bytes, 1 MiB) x 64, is CORRUPT_MESSAGE) instead of stored
// for every consumer to fail on. Each record must also pass the topic's
// checks: a key on a compacted topic (compaction keeps the newest record per
// key, so a keyless record has no place there), a CreateTime timestamp
// within message.timestamp.before/after.max.ms of now (INVALID_TIMESTAMP),
// and no producer's LogAppendTime where the broker sets the time (a
// LogAppendTime topic, or a record without a time: INVALID_TIMESTAMP). The
// records that fail are gathered with their indexes (recordErrors), one
// error per record, the key's first.
//
// It returns the uncompressed records section (h's own bytes, or for a
// compressed batch the section decompressed into *scratch, which keeps the
// grown buffer for the next batch), the records' largest timestamp, the
// share of budget the section holds, which the caller gives back
// (release) once done with the section (on an error nothing is held), and
// whether a compressed batch's offset deltas are other than 0, 1, 2, …:
// Kafka rebuilds such a batch rather than refuse it (renumberRecords), and
// checks the deltas only inside compressed batches.
// Walking an uncompressed batch costs less than its CRC; a compressed one
// costs its decompression, which Kafka pays too (BenchmarkCheckRecords).
func checkRecords(h batch.Header, topic string, partition int32, s topicSettings, now int64, scratch *[]byte, budget *decompressionBudget) (section []byte, maxTs int64, held int64, renumber bool, err error) {
	section = h.Records()
	compressed := h.Codec() != batch.CodecNone
	if compressed {
		if section, held, err = decompressRecords(h, s, scratch, budget); err != nil {
			return nil, 0, 0, false, fmt.Errorf("%s-%d: %w", topic, partition, err)
		}
	}
	section, maxTs, renumber, err = walkRecords(h, section, compressed, topic, partition, s, now)
	if err != nil {
		budget.release(held)
		return nil, 0, 0, false, err
	}
	return section, maxTs, held, renumber, nil
}

// decompressRecords decompresses a compressed batch's records into
// *scratch once the budget gives it a share: the size the batch's framing
// declares (batch.SizeHint), twice that when the topic recompresses the
// records (the new batch is built while they are held), and never more
// than the batch's own bound of max(max.message.bytes, 1 MiB) × 64. The
// framing's size is also what the decoder may produce, so a batch that
// undersells itself (a gzip stream of several members, or a lie) stops
// there and is decided again with a share of the whole bound.
func decompressRecords(h batch.Header, s topicSettings, scratch *[]byte, budget *decompressionBudget) (section []byte, held int64, err error) {
	c, in := h.Codec(), h.Records()
	limit := max(s.maxMessageBytes, 1<<20) * 64
	share := int64(1)
	if s.recompresses(c) {
		share = 2
	}
	want := limit
	if n, ok := batch.SizeHint(c, in); ok && n < limit {
		want = n
	}
	budget.acquire(share * int64(want))
	out, err := batch.Decompress(c, (*scratch)[:0], in, want)
	if want < limit && errors.Is(err, batch.ErrDecompressSize) {
		budget.release(share * int64(want))
		want = limit
		budget.acquire(share * int64(want))
		out, err = batch.Decompress(c, (*scratch)[:0], in, want)
	}
	*scratch = out[:0]
	if err != nil {
		budget.release(share * int64(want))
		return nil, 0, err
	}
	return out, share * int64(want), nil
}

// walkRecords is checkRecords' walk over the uncompressed section. It
// reports whether a compressed batch's offset deltas are other than 0, 1,
// 2, … (renumber).
func walkRecords(h batch.Header, section []byte, compressed bool, topic string, partition int32, s topicSettings, now int64) (_ []byte, maxTs int64, renumber bool, _ error) {
	rr := batch.NewRecordReader(section, h.RecordCount())
	var r batch.Record
	var faults *recordErrors // nil until a record fails
	maxTs = -1               // Kafka's NO_TIMESTAMP
	for i := int32(0); rr.Next(&r); i++ {
		renumber = renumber || compressed && r.OffsetDelta != i
		if s.compacted && r.Key == nil {
			// One error per record: Kafka's validateRecord checks the
			// timestamp only of a record whose key passes.
			faults = faults.add(kerr.InvalidRecord, i, "Compacted topic cannot accept message without key in topic partition %s-%d.", topic, partition)
			continue
		}
		ts := h.BaseTimestamp() + r.TimestampDelta
		if h.LogAppendTime() {
			ts = h.MaxTimestamp() // every record of a LogAppendTime batch reads so
		}
		switch {
		case !s.logAppendTime && ts != -1:
			// Differences as unsigned, so that no timestamp overflows them.
			behind := ts < now && uint64(now)-uint64(ts) > uint64(s.tsBeforeMaxMs)
			ahead := ts > now && uint64(ts)-uint64(now) > uint64(s.tsAfterMaxMs)
			if behind || ahead {
				faults = faults.add(kerr.InvalidTimestamp, i, "Timestamp %d of message with offset %d is out of range: the broker's clock reads %d, and the timestamp must be within [%d ms before, %d ms after] it",
					ts, i, now, s.tsBeforeMaxMs, s.tsAfterMaxMs)
			}
		case h.LogAppendTime():
			// Kafka's validateTimestamp: the append time is the
			// broker's to set, on a LogAppendTime topic or for a
			// record without a time of its own.
			faults = faults.add(kerr.InvalidTimestamp, i, "Invalid timestamp type in message with offset %d in topic partition %s-%d. Producer should not set timestamp type to LogAppendTime.", i, topic, partition)
		}
		maxTs = max(maxTs, ts)
	}
	if err := rr.Err(); err != nil {
		return nil, 0, false, kerrf(kerr.InvalidRecord, "%s-%d: %v", topic, partition, err)
	}
	if faults != nil {
		return nil, 0, false, faults
	}
	return section, maxTs, renumber, nil
}

// renumberRecords appends to dst the records of section (count of them)
// with offset deltas 0, 1, 2, …, as Kafka's validator rebuilds a
// compressed batch whose inner offsets are not those ("some older clients
// do not implement the V1 internal offsets correctly").
func renumberRecords(dst, section []byte, count int32) ([]byte, error) {
	rr := batch.NewRecordReader(section, count)
	var r batch.Record
	for i := int32(0); rr.Next(&r); i++ {
		r.OffsetDelta = i
		dst = batch.AppendRecord(dst, &r)
	}
	return dst, rr.Err()
}

// recordErrors are the records of a batch that failed their checks, as
// Kafka's validator gathers them: Produce v8 and later answer each index in
// record_errors. The error is INVALID_TIMESTAMP when any timestamp failed,
// else INVALID_RECORD. At most maxRecordErrors are listed, so that a large
// batch of bad records cannot make a response many times its size (a
// client fails the records not listed with the batch, as it would anyway).
type recordErrors struct {
	faults    []recordFault
	n         int // faults found, listed or not
	timestamp bool
}

type recordFault struct {
	index int32
	msg   string
}

const maxRecordErrors = 1000

// add notes a failed record; on a nil e it makes the list. The message is
// formatted only for the records listed, so that a batch of many bad
// records costs no more than maxRecordErrors messages.
func (e *recordErrors) add(code *kerr.Error, index int32, format string, args ...any) *recordErrors {
	if e == nil {
		e = new(recordErrors)
	}
	e.n++
	e.timestamp = e.timestamp || code == kerr.InvalidTimestamp
	if len(e.faults) < maxRecordErrors {
		e.faults = append(e.faults, recordFault{index, fmt.Sprintf(format, args...)})
	}
	return e
}

func (e *recordErrors) Error() string {
	if e.n == 1 {
		return e.faults[0].msg
	}
	shown := e.faults[:min(len(e.faults), 3)]
	msgs := make([]string, len(shown))
	for i, f := range shown {
		msgs[i] = fmt.Sprintf("record %d: %s", f.index, f.msg)
	}
	return fmt.Sprintf("One or more records have been rejected due to %d record errors in total, and only showing the first three errors at most: %s", e.n, strings.Join(msgs, "; "))
}

func (e *recordErrors) Unwrap() error {
	if e.timestamp {
		return kerr.InvalidTimestamp
	}
	return kerr.InvalidRecord
}

// unknownLogAppend reports the errors Kafka answers without the
// partition's log start offset (its UNKNOWN_LOG_APPEND_INFO) even once it
// has found the partition's log.
func unknownLogAppend(code int16) bool {
	switch code {
	case kerr.UnknownTopicOrPartition.Code, kerr.NotLeaderForPartition.Code, kerr.MessageTooLarge.Code,
		kerr.RecordListTooLarge.Code, kerr.CorruptMessage.Code, kerr.KafkaStorageError.Code:
		return true
	}
	return false
}

// recordsScratch holds the buffers compressed batches are decompressed into
// for checkRecords, so that a steady stream of compressed produce requests
// reuses a few buffers instead of allocating one per batch.
var recordsScratch = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledScratch bounds what recordsScratch keeps: an unusually large
// batch's buffer goes to the collector rather than staying pooled.
const maxPooledScratch = 8 << 20

func putRecordsScratch(p *[]byte) {
	if cap(*p) <= maxPooledScratch {
		recordsScratch.Put(p)
	}
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
