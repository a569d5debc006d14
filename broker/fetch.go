package broker

import (
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/batch"
	"gregor/netio"
	"gregor/raft"
	"gregor/replica"
	"gregor/segment"
)

// fetch is one Fetch request being answered. Its record bytes stay in the
// segment files: the response is built from file regions (appendFetchResponse)
// and netio sends them with sendfile.
type fetch struct {
	b        *Broker
	rq       *request
	req      *kmsg.FetchRequest
	deadline time.Time

	resp     fetchResponse
	regions  []segment.Region // every region resp holds, to release
	bytes    int64
	full     bool     // data read, and no room left under the request's max_bytes
	failed   bool     // a partition's read failed: Kafka answers at once
	parkable []parked // partitions to wait on when there is too little data

	// unknown counts the partitions the image does not know (or, before
	// Fetch v10, that are zstd): Kafka sets them aside without ending the
	// long poll, but a partition that becomes unknown while the fetch
	// waits (its topic deleted) ends it. unknownAtStart is the first
	// read's count.
	unknown, unknownAtStart int
}

type parked struct {
	p      *replica.Partition
	seenHW int64
}

// handleFetch answers at once when there is at least min_bytes of data, an
// error, no room for more, or no wait; otherwise it parks the fetch on its
// partitions until appends bring min_bytes or max_wait_ms passes (each append
// that moves one of them wakes it to read them all again), and answers from
// another goroutine.
func (b *Broker) handleFetch(rq *request, req *kmsg.FetchRequest) {
	f := &fetch{b: b, rq: rq, req: req, deadline: rq.start.Add(time.Duration(max(req.MaxWaitMillis, 0)) * time.Millisecond)}
	if req.SessionEpoch != 0 && req.SessionEpoch != -1 {
		// This broker hands out no fetch sessions (it answers session id
		// 0, so clients send full fetches): an incremental fetch (any
		// epoch but 0 and -1) names a session it never gave. Epoch 0 or
		// -1 is a full fetch, whatever the id, as in Kafka's FetchManager.
		f.resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		f.send()
		return
	}
	if !validIsolationLevel(req.IsolationLevel) {
		rq.log().Info("refusing Fetch: isolation_level must be 0 (read_uncommitted) or 1 (read_committed)", "isolation_level", req.IsolationLevel)
		f.failAll(kerr.UnknownServerError.Code)
		f.send()
		return
	}
	dedupeFetch(req)
	f.read()
	f.unknownAtStart = f.unknown
	if f.enough() {
		f.send()
		return
	}
	// What was read is not sent: wait reads again when woken. Holding its
	// regions would keep segments that retention deletes meanwhile open,
	// their disk space held, for up to max_wait_ms (which a client may set
	// to weeks); Kafka's purgatory holds no log data either.
	f.release()
	// Waiting on appends, not on the broker: out of queued.max.requests.
	rq.conn.Park()
	go f.wait()
}

// failAll answers the whole request with one error, as Kafka's
// FetchRequest.getErrorResponse does for a request it cannot serve (Kafka's
// IsolationLevel.forId throws on an unknown level): at the top level and,
// before v13, in every partition named, without offsets.
func (f *fetch) failAll(code int16) {
	f.resp.ErrorCode = code
	if f.req.Version >= 13 {
		return
	}
	for _, rt := range f.req.Topics {
		ft := fetchTopic{Name: rt.Topic}
		for _, rp := range rt.Partitions {
			ft.Partitions = append(ft.Partitions, fetchPartition{Partition: rp.Partition, ErrorCode: code,
				HighWatermark: -1, LastStableOffset: -1, LogStartOffset: -1, PreferredReadReplica: -1})
		}
		f.resp.Topics = append(f.resp.Topics, ft)
	}
}

// enough reports whether the fetch should be answered now.
func (f *fetch) enough() bool {
	return f.failed || f.full || f.unknown > f.unknownAtStart || f.bytes >= int64(f.req.MinBytes) || !time.Now().Before(f.deadline) || len(f.parkable) == 0
}

// fetchNamesTwice reports whether the request names a partition twice, by
// comparing every pair: for the few partitions of most fetches this costs
// less than the map dedupeFetch builds, and allocates nothing.
func fetchNamesTwice(req *kmsg.FetchRequest) bool {
	sameTopic := func(a, b *kmsg.FetchRequestTopic) bool {
		if req.Version >= 13 {
			return a.TopicID == b.TopicID
		}
		return a.Topic == b.Topic
	}
	for ti := range req.Topics {
		rt := &req.Topics[ti]
		for pi, a := range rt.Partitions {
			for tj := ti; tj < len(req.Topics); tj++ {
				other := &req.Topics[tj]
				if !sameTopic(rt, other) {
					continue
				}
				rest := other.Partitions
				if tj == ti {
					rest = rest[pi+1:]
				}
				for _, b := range rest {
					if a.Partition == b.Partition {
						return true
					}
				}
			}
		}
	}
	return false
}

// dedupeFetch keeps one entry of each partition the request names more
// than once: the last, in the first one's place, as Kafka's map of fetch
// data does. A topic entry left empty goes.
func dedupeFetch(req *kmsg.FetchRequest) {
	n := 0
	for _, rt := range req.Topics {
		n += len(rt.Partitions)
	}
	if n < 2 || (n <= 64 && !fetchNamesTwice(req)) {
		return
	}
	type key struct {
		name      string
		id        [16]byte
		partition int32
	}
	keyOf := func(rt *kmsg.FetchRequestTopic, p int32) key {
		if req.Version >= 13 {
			return key{id: rt.TopicID, partition: p}
		}
		return key{name: rt.Topic, partition: p}
	}
	last := make(map[key]kmsg.FetchRequestTopicPartition, n)
	for i := range req.Topics {
		rt := &req.Topics[i]
		for _, rp := range rt.Partitions {
			last[keyOf(rt, rp.Partition)] = rp
		}
	}
	if len(last) == n {
		return
	}
	topics := req.Topics[:0]
	for i := range req.Topics {
		rt := req.Topics[i]
		kept := rt.Partitions[:0]
		for _, rp := range rt.Partitions {
			k := keyOf(&rt, rp.Partition)
			if v, ok := last[k]; ok {
				kept = append(kept, v)
				delete(last, k)
			}
		}
		if rt.Partitions = kept; len(kept) > 0 {
			topics = append(topics, rt)
		}
	}
	req.Topics = topics
}

// wait parks the fetch until appends may have brought it enough, reads
// again, and answers once it has enough or its time is up. It holds no file
// region while parked (handleFetch and each pass that is not enough release
// theirs), and reads afresh after every wake. A fetch whose connection
// closes ends at once and answers nothing: no one would read the answer,
// and waiting out max_wait_ms would only hold a goroutine and a timer.
func (f *fetch) wait() {
	f.b.metrics.fetchWaiting.Add(1)
	defer f.b.metrics.fetchWaiting.Add(-1)
	w := replica.NewWaiter()
	timer := time.NewTimer(time.Until(f.deadline))
	defer timer.Stop()
	gone := f.rq.conn.Done()
	for {
		parked := 0
		for _, pk := range f.parkable {
			if !pk.p.Park(w, pk.seenHW) {
				break
			}
			parked++
		}
		if parked == len(f.parkable) {
			select {
			case <-w.C():
			case <-timer.C:
			case <-f.b.stop:
			case <-gone:
			}
		}
		for _, pk := range f.parkable[:parked] {
			pk.p.Unpark(w)
		}
		select {
		case <-w.C(): // drain a wake that raced with the unpark
		default:
		}
		select {
		case <-gone:
			// The engine still wants an answer to account for the
			// request; it drops it.
			f.rq.send(netio.Response{NoResponse: true})
			return
		default:
		}
		f.read()
		if f.enough() || f.stopping() {
			break
		}
		f.release()
	}
	f.send()
}

// stopping reports whether the broker is closing: a waiting fetch then
// answers with what it has.
func (f *fetch) stopping() bool {
	select {
	case <-f.b.stop:
		return true
	default:
		return false
	}
}

// read builds the response from the partitions' current state.
func (f *fetch) read() {
	req, b := f.req, f.b
	im := b.image()
	f.resp = fetchResponse{SessionID: 0}
	f.bytes, f.full, f.failed, f.unknown, f.parkable = 0, false, false, 0, f.parkable[:0]
	remaining := int64(b.cfg.FetchMaxBytes)
	if req.Version >= 3 && req.MaxBytes >= 0 {
		remaining = min(remaining, int64(req.MaxBytes))
	}
	for _, rt := range req.Topics {
		ft := fetchTopic{Name: rt.Topic, ID: rt.TopicID}
		var t *raft.TopicImage
		if req.Version >= 13 {
			t = im.Topics[raft.UUID(rt.TopicID)]
			if t != nil {
				ft.Name = t.Name
			}
		} else {
			t, _ = im.Topic(rt.Topic)
		}
		// Kafka refuses Fetch before v10 on a topic whose
		// compression.type is zstd: older clients cannot read it.
		zstdTopic := false
		if t != nil && req.Version < 10 {
			s := b.topicSettings(t.Configs)
			zstdTopic = !s.keepCompression && s.compression == batch.CodecZstd
		}
		for _, rp := range rt.Partitions {
			fp := fetchPartition{Partition: rp.Partition, HighWatermark: -1, LastStableOffset: -1, LogStartOffset: -1, PreferredReadReplica: -1}
			if req.IsolationLevel == 1 {
				fp.AbortedTransactions = []fetchAborted{}
			}
			imageErr := true // the image, not the partition, answers
			switch {
			case t == nil && req.Version >= 13:
				fp.ErrorCode = kerr.UnknownTopicID.Code
			case t == nil || rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions):
				fp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case zstdTopic:
				fp.ErrorCode = kerr.UnsupportedCompressionType.Code
			default:
				imageErr = false
				f.readPartition(im, t.Name, rp, &fp, &remaining)
				f.failed = f.failed || fp.ErrorCode != 0
			}
			if imageErr {
				f.unknown++
			}
			ft.Partitions = append(ft.Partitions, fp)
		}
		f.resp.Topics = append(f.resp.Topics, ft)
	}
	// Room alone is not data: a fetch with max_bytes 0 and nothing to read
	// waits for min_bytes like any other, as in Kafka, which answers at
	// once only on data, an error or no wait. Full with data, it answers
	// now: more appends could not be sent in it.
	f.full = remaining <= 0 && f.bytes > 0
}

func (f *fetch) readPartition(im *raft.Image, topic string, rp kmsg.FetchRequestTopicPartition, fp *fetchPartition, remaining *int64) {
	// Fetch, unlike ListOffsets and OffsetForLeaderEpoch, reads any
	// negative current_leader_epoch as absent (Kafka's FetchRequest
	// optionalEpoch), not only -1.
	currentEpoch := rp.CurrentLeaderEpoch
	if currentEpoch < 0 {
		currentEpoch = -1
	}
	// Kafka fills current_leader only from Fetch v16 (KIP-951), past
	// what Gregor serves.
	p, _, kerrCode := f.b.leaderFor(im, topic, rp.Partition, currentEpoch)
	if kerrCode != nil {
		fp.ErrorCode = f.storageErrorByVersion(kerrCode.Code)
		return
	}
	if f.req.ReplicaID >= 0 {
		// A follower's fetch; with one replica per partition no broker
		// follows this one. Kafka's answer to a replica not in the set:
		fp.ErrorCode = kerr.NotLeaderForPartition.Code
		if currentEpoch != -1 { // given: leaderFor has checked it
			fp.ErrorCode = kerr.UnknownLeaderEpoch.Code
		}
		return
	}
	maxBytes := min(int64(rp.PartitionMaxBytes), *remaining)
	hw := p.HighWatermark()
	fp.HighWatermark, fp.LastStableOffset, fp.LogStartOffset = hw, hw, p.LogStartOffset()
	if maxBytes <= 0 && f.bytes > 0 {
		// The response is full; KIP-74's "first batch whole" applies to the
		// first partition with data only.
		return
	}
	start := len(f.regions)
	res, err := p.Read(f.regions, rp.FetchOffset, int(max(maxBytes, 0)))
	if err != nil {
		// Kafka answers a failed read without offsets.
		fp.HighWatermark, fp.LastStableOffset, fp.LogStartOffset = -1, -1, -1
		if errors.Is(err, segment.ErrOffsetOutOfRange) {
			fp.ErrorCode = kerr.OffsetOutOfRange.Code
		} else {
			fp.ErrorCode = f.storageErrorByVersion(errorCode(err))
			f.b.logger.Warn("fetch read failed", "partition", p.TopicPartition(), "err", err)
		}
		return
	}
	f.regions = res.Regions
	if f.bytes > 0 && res.Bytes > maxBytes {
		// Only the first partition with data has its first batch whole.
		// A later one whose first batch does not fit gets no records, as
		// Kafka's readFromLog replaces such an incomplete set with an
		// empty one: a piece of a batch alone makes the Java consumer
		// fail ("no complete records were found").
		keep := maxBytes
		if first, err := segment.FirstBatchBytes(f.regions[start:]); err != nil || first > maxBytes {
			keep = 0
		}
		f.regions = f.regions[:start+len(segment.Truncate(f.regions[start:], keep))]
		res.Bytes = keep
	}
	fp.Records = f.regions[start:len(f.regions):len(f.regions)]
	fp.HighWatermark, fp.LastStableOffset, fp.LogStartOffset = res.HighWatermark, res.HighWatermark, res.LogStartOffset
	f.bytes += res.Bytes
	*remaining -= res.Bytes
	// Every readable partition is watched, not only the empty ones: min_bytes
	// counts the whole response, so an append anywhere may complete it.
	f.parkable = append(f.parkable, parked{p: p, seenHW: res.HighWatermark})
}

// storageErrorByVersion answers KAFKA_STORAGE_ERROR as Kafka does: a client
// of Fetch v5 or older may not know it and would give up, where
// NOT_LEADER_OR_FOLLOWER makes it refresh its metadata and retry.
func (f *fetch) storageErrorByVersion(code int16) int16 {
	if code == kerr.KafkaStorageError.Code && f.req.Version <= 5 {
		return kerr.NotLeaderForPartition.Code
	}
	return code
}

// release gives back the regions of a response that will not be sent, and
// the response that refers to them, so that nothing sends a released region.
func (f *fetch) release() {
	segment.ReleaseAll(f.regions)
	clear(f.regions)
	f.regions = f.regions[:0]
	f.resp = fetchResponse{}
}

// send encodes the response and hands it to netio, which releases the
// regions once they are written.
func (f *fetch) send() {
	var parts []netio.Part
	_, parts = appendFetchResponse(nil, parts, f.req.Version, f.rq.corr, &f.resp)
	regions := f.regions
	f.b.metrics.fetched(f.bytes)
	if !f.b.cfg.FetchSendfileEnable {
		f.copyParts(parts)
	}
	f.rq.send(netio.Response{Parts: parts, Done: func() { segment.ReleaseAll(regions) }})
}

// copyParts replaces the file parts by their bytes read into memory: the
// copy path (fetch.sendfile.enable=false). A read error leaves the part to
// sendfile, which reports it.
func (f *fetch) copyParts(parts []netio.Part) {
	for i, p := range parts {
		if p.File == nil {
			continue
		}
		buf := make([]byte, p.Length)
		if _, err := p.File.ReadAt(buf, p.Offset); err != nil {
			continue
		}
		parts[i] = netio.Part{Bytes: buf}
	}
}
