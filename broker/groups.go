package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/batch"
	"gregor/group"
	"gregor/raft"
	"gregor/replica"
)

// offsetsTopic holds the groups' committed offsets, one coordinator per
// partition: the partition's leader.
const offsetsTopic = "__consumer_offsets"

// maxOffsetsBatch bounds the decompression of one batch of offsetsTopic
// while a coordinator loads it (Gregor writes them uncompressed).
const maxOffsetsBatch = 64 << 20

// coordinators are the group coordinators this broker runs, one per
// partition of offsetsTopic it leads, by partition.
type coordinators struct {
	mu       sync.Mutex
	shards   map[int32]*shard
	closed   bool       // the broker is closing: start no more
	creating sync.Mutex // one creation of offsetsTopic at a time
	// stopped are coordinators unloaded since their partition left this
	// broker, kept until they end so that one started should the partition
	// come back loads only after their last append.
	stopped map[int32]*shard
	// topicIDs are the topics of the last image noticed
	// (noticeDeletedTopics), by name.
	topicIDs map[string]raft.UUID
}

// shard is the group coordinator of one partition of offsetsTopic. One
// goroutine (run) owns the group.Coordinator and appends to the
// partition; handlers hand it work as functions over an unbuffered channel,
// so nothing queues inside the broker (a handler waits, and netio's bounds
// hold the requests behind it), and nothing handed over is ever left
// unanswered: once the goroutine stops receiving, stopping is closed and a
// handler's send fails over to NOT_COORDINATOR.
type shard struct {
	b         *Broker
	partition int32
	epoch     int32 // the leader epoch it was started for
	p         *replica.Partition
	prev      *shard // the partition's previous coordinator, finished before this one loads

	in       chan func()
	deleted  chan struct{} // a send: topics were deleted (takeDeleted)
	quit     chan struct{} // closed to unload it
	stopping chan struct{} // closed once it receives no more work
	done     chan struct{} // closed when it has ended
	loaded   atomic.Bool

	gone struct {
		sync.Mutex
		topics map[string]bool // deleted topics not yet dropped
	}
	// undropped are deleted topics whose tombstones failed to append,
	// tried again at the next retention check. Owned by run.
	undropped map[string]bool

	// Owned by run.
	c       *group.Coordinator
	waiting map[uint64]*request // parked JoinGroup, SyncGroup and LeaveGroup requests, by id
	nextID  uint64
	replies []group.Reply
	builder *batch.Builder
	buf     []byte
	timer   *time.Timer
}

// reconcileCoordinators starts a coordinator for every partition of
// offsetsTopic this broker leads (at the leader epoch the image gives) and
// stops the others. It runs after reconcile, so the partitions are open.
func (b *Broker) reconcileCoordinators(im *raft.Image) {
	want := map[int32]int32{} // partition -> leader epoch
	if t, ok := im.Topic(offsetsTopic); ok {
		for i, pi := range t.Partitions {
			if pi.Leader == b.cfg.NodeID {
				want[int32(i)] = pi.LeaderEpoch
			}
		}
	}
	cs := &b.coords
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.closed {
		return
	}
	for i, s := range cs.stopped {
		select {
		case <-s.done:
			delete(cs.stopped, i)
		default:
		}
	}
	for i, s := range cs.shards {
		if epoch, ok := want[i]; !ok || epoch != s.epoch {
			s.unload()
			if !ok {
				delete(cs.shards, i)
				if cs.stopped == nil {
					cs.stopped = map[int32]*shard{}
				}
				cs.stopped[i] = s
			}
		}
	}
	for i, epoch := range want {
		if s := cs.shards[i]; s != nil && s.epoch == epoch {
			continue
		}
		p, ok := b.Partition(offsetsTopic, i)
		if !ok {
			continue
		}
		c, err := group.NewCoordinator(b.cfg.Group)
		if err != nil { // the config was validated at Start
			b.logger.Error("starting a group coordinator", "err", err)
			continue
		}
		prev := cs.shards[i]
		if prev == nil {
			prev = cs.stopped[i]
		}
		delete(cs.stopped, i)
		s := &shard{b: b, partition: i, epoch: epoch, p: p, prev: prev, c: c,
			in: make(chan func()), deleted: make(chan struct{}, 1), quit: make(chan struct{}), stopping: make(chan struct{}), done: make(chan struct{}),
			waiting: map[uint64]*request{}, builder: batch.NewBuilder(batch.DefaultBuilderOptions())}
		cs.shards[i] = s
		b.wg.Add(1)
		go func() { defer b.wg.Done(); s.run() }()
	}
}

// noticeDeletedTopics tells every coordinator the topics that im no longer
// has under the id the last image noticed gave them (deleted, or deleted
// and created again), so that they drop those topics' committed offsets as
// Kafka's onPartitionsDeleted does. It runs once im is published, so a
// commit served after the drop is checked against im and cannot bring a
// deleted topic's offsets back.
func (b *Broker) noticeDeletedTopics(im *raft.Image) {
	cs := &b.coords
	cs.mu.Lock()
	defer cs.mu.Unlock()
	var deleted []string
	for name, id := range cs.topicIDs {
		if t, ok := im.Topic(name); !ok || t.ID != id {
			deleted = append(deleted, name)
		}
	}
	cs.topicIDs = make(map[string]raft.UUID, len(im.Topics))
	for _, t := range im.Topics {
		cs.topicIDs[t.Name] = t.ID
	}
	if len(deleted) == 0 {
		return
	}
	for _, s := range cs.shards {
		s.gone.Lock()
		if s.gone.topics == nil {
			s.gone.topics = map[string]bool{}
		}
		for _, name := range deleted {
			s.gone.topics[name] = true
		}
		s.gone.Unlock()
		select {
		case s.deleted <- struct{}{}:
		default: // it has yet to take an earlier notice, which takes these too
		}
	}
}

// takeDeleted returns the deleted topics noticed since the last call.
func (s *shard) takeDeleted() map[string]bool {
	s.gone.Lock()
	defer s.gone.Unlock()
	topics := s.gone.topics
	s.gone.topics = nil
	return topics
}

// dropTopics drops every group's committed offsets of topics, which this
// broker saw deleted. Should the tombstones fail to append, the topics are
// tried again at the next retention check (retryDrops).
func (s *shard) dropTopics(log *slog.Logger, topics map[string]bool) {
	if len(topics) == 0 {
		return
	}
	recs := s.c.DeleteTopicOffsets(func(topic string) bool { return topics[topic] })
	if len(recs) == 0 {
		return
	}
	if err := s.appendInBatches(recs); err != nil {
		log.Warn("writing the tombstones of deleted topics' offsets", "err", err)
		if s.undropped == nil {
			s.undropped = map[string]bool{}
		}
		maps.Copy(s.undropped, topics)
		return
	}
	log.Info("dropped the committed offsets of deleted topics", "offsets", len(recs))
}

// retryDrops drops again the offsets of deleted topics whose tombstones
// failed to append, but not of those created again since: the offsets of
// a topic that exists are not to be dropped, whichever topic they were
// committed for.
func (s *shard) retryDrops(log *slog.Logger) {
	topics := s.undropped
	s.undropped = nil
	im := s.b.image()
	for name := range topics {
		if _, ok := im.Topic(name); ok {
			delete(topics, name)
		}
	}
	s.dropTopics(log, topics)
}

// stopCoordinators unloads every coordinator (the broker is closing).
func (b *Broker) stopCoordinators() {
	b.coords.mu.Lock()
	defer b.coords.mu.Unlock()
	b.coords.closed = true
	for i, s := range b.coords.shards {
		s.unload()
		delete(b.coords.shards, i)
	}
}

func (s *shard) unload() {
	select {
	case <-s.quit:
	default:
		close(s.quit)
	}
}

// run loads the partition's groups, then serves work and deadlines until
// unloaded.
func (s *shard) run() {
	defer close(s.done)
	if s.prev != nil {
		<-s.prev.done // its last appends are in the log this one loads
		s.prev = nil
	}
	log := s.b.logger.With("coordinator", s.partition, "leader.epoch", s.epoch)
	start := time.Now()
	n, err := s.load()
	if err != nil {
		// The log cannot be read: serving would answer with offsets
		// that are not the committed ones. Stay unloaded; the
		// partition's storage error also stops its leadership.
		log.Error("loading committed offsets; not serving these groups", "err", err)
		close(s.stopping)
		return
	}
	// Nothing is dropped for topics the image lacks: only deletions seen
	// in a change of the image (noticeDeletedTopics) drop offsets, as
	// Kafka's coordinator drops them only for the topics a metadata delta
	// deletes (onPartitionsDeleted). A topic merely absent from an image
	// may well exist: one created after the snapshot a restarting broker's
	// first image comes from, or one this broker has not heard of yet.
	// Offsets of a topic deleted while no coordinator of this partition
	// ran stay until they expire, as in Kafka.
	s.loaded.Store(true)
	log.Info("group coordinator loaded", "records", n, "groups.with.offsets", s.c.GroupsWithOffsets(), "took", time.Since(start))

	s.timer = time.NewTimer(time.Hour)
	s.timer.Stop()
	defer s.timer.Stop()
	expire := time.NewTicker(s.b.cfg.OffsetsRetentionCheckInterval)
	defer expire.Stop()
	for {
		select {
		case fn := <-s.in:
			// Work handed over after a deletion was noticed sees it done.
			s.dropTopics(log, s.takeDeleted())
			fn()
		case <-s.timer.C:
			s.flush(s.c.Tick(s.replies[:0], s.b.now()))
		case <-s.deleted:
			s.dropTopics(log, s.takeDeleted())
		case <-expire.C:
			if recs := s.c.ExpireOffsets(s.b.now()); len(recs) > 0 {
				if err := s.appendInBatches(recs); err != nil {
					log.Warn("writing the tombstones of expired offsets", "err", err)
				} else {
					log.Info("expired committed offsets", "offsets", len(recs))
				}
			}
			s.retryDrops(log)
		case <-s.quit:
			s.flush(s.c.Unload(s.replies[:0]))
			close(s.stopping)
			log.Info("group coordinator unloaded")
			return
		}
		s.rearm()
	}
}

// load replays the partition's records from its start to its end.
func (s *shard) load() (records int, err error) {
	l := s.p.Log()
	offset, end := l.LogStartOffset(), l.LogEndOffset()
	var buf, scratch []byte
	for offset < end {
		if buf, err = l.ReadBytes(buf[:0], offset, 1<<20, end); err != nil {
			return records, err
		}
		if len(buf) == 0 {
			break
		}
		it := batch.NewIter(buf)
		for h, ok := it.Next(); ok; h, ok = it.Next() {
			offset = h.NextOffset()
			if h.Control() {
				continue
			}
			var rr batch.RecordReader
			if rr, scratch, err = batch.DecodeRecords(h, scratch, maxOffsetsBatch); err != nil {
				return records, err
			}
			var r batch.Record
			for rr.Next(&r) {
				records++
				if err := s.c.Replay(group.Record{Key: r.Key, Value: r.Value}); err != nil {
					s.b.logger.Warn("skipping an undecodable record of "+offsetsTopic, "partition", s.partition, "err", err)
				}
			}
			if err := rr.Err(); err != nil {
				return records, err
			}
		}
		if err := it.Err(); err != nil {
			// Only the first batch of a read is whole (KIP-74): the
			// read may end inside a later one, which the next read
			// starts with. A first batch that is not whole is damage.
			if it.Pos() > 0 && (errors.Is(err, batch.ErrShort) || errors.Is(err, batch.ErrLength)) {
				continue
			}
			return records, err
		}
	}
	return records, nil
}

// rearm sets the timer to the coordinator's next deadline.
func (s *shard) rearm() {
	if at, ok := s.c.NextDeadline(); ok {
		s.timer.Reset(max(time.Until(at), 0))
	} else {
		s.timer.Stop()
	}
}

// park numbers a request that may be answered later. Such a request waits
// on its group (a join or sync phase may last the rebalance timeout), not on
// the broker, so it leaves queued.max.requests, as Kafka holds joins in
// purgatory outside its request queue: a group of as many members as that
// bound would otherwise stop every connection, its own late joiners and its
// leader's SyncGroup among them.
func (s *shard) park(rq *request) uint64 {
	if rq.conn != nil {
		rq.conn.Park()
	}
	s.nextID++
	s.waiting[s.nextID] = rq
	return s.nextID
}

// flush sends the replies that are complete.
func (s *shard) flush(replies []group.Reply) {
	for _, r := range replies {
		if rq := s.waiting[r.ReqID]; rq != nil {
			delete(s.waiting, r.ReqID)
			rq.reply(r.Resp)
		}
	}
	s.replies = replies[:0]
}

// submit hands fn to the coordinator's goroutine; false when it has
// stopped (or has not loaded its groups and never will).
func (s *shard) submit(fn func()) bool {
	select {
	case s.in <- fn:
		return true
	case <-s.stopping:
		return false
	}
}

// call runs fn on the coordinator's goroutine and waits for it.
func (s *shard) call(fn func()) bool {
	ran := make(chan struct{})
	if !s.submit(func() { fn(); close(ran) }) {
		return false
	}
	<-ran
	return true
}

// errAppend is an append to offsetsTopic that failed, with the error code
// the records' requests get (as Kafka's GroupMetadataManager maps them).
type errAppend struct {
	code *kerr.Error
	err  error
}

func (e *errAppend) Error() string { return e.code.Message + ": " + e.err.Error() }

// appendInBatches appends recs in as many batches as message.max.bytes
// needs, one after another, as Kafka writes its coordinator's cleanup: the
// tombstones of a partition's expired offsets can outgrow one batch, and a
// batch too large would fail every round, for ever. A failure leaves the
// batches before it written.
func (s *shard) appendInBatches(recs []group.Record) error {
	// A RecordBatch v2 header, and a record's varints at their longest
	// with its attributes and header count.
	const batchOverhead, recordOverhead = 61, 32
	limit := int(s.b.cfg.MessageMaxBytes) - batchOverhead
	for len(recs) > 0 {
		n, size := 0, 0
		for ; n < len(recs); n++ {
			size += recordOverhead + len(recs[n].Key) + len(recs[n].Value)
			if n > 0 && size > limit {
				break
			}
		}
		if err := s.append(recs[:n]); err != nil {
			return err
		}
		recs = recs[n:]
	}
	return nil
}

// append writes recs to the partition as one batch and, once the high
// watermark covers them (acks=all), replays them into the coordinator.
func (s *shard) append(recs []group.Record) error {
	if len(recs) == 0 {
		return nil
	}
	now := s.b.now().UnixMilli()
	s.builder.Reset(batch.DefaultBuilderOptions())
	for _, r := range recs {
		s.builder.Add(now, r.Key, r.Value, nil)
	}
	buf, err := s.builder.AppendBatch(s.buf[:0])
	if err != nil {
		return &errAppend{kerr.UnknownServerError, err}
	}
	s.buf = buf
	if len(buf) > int(s.b.cfg.MessageMaxBytes) {
		return &errAppend{kerr.InvalidCommitOffsetSize, errors.New("the records are larger than message.max.bytes")}
	}
	res, err := s.p.Append(buf, replica.AppendOptions{})
	if err != nil {
		if epoch, leader := s.p.Leader(); !leader || epoch != s.epoch {
			return &errAppend{kerr.NotCoordinator, err}
		}
		s.b.logger.Error("appending to "+offsetsTopic, "partition", s.partition, "err", err)
		return &errAppend{kerr.UnknownServerError, err}
	}
	// Until follower replication lands every partition has one replica, so
	// the leader's append moves the high watermark past the records.
	if hw := s.p.HighWatermark(); hw <= res.LastOffset {
		return &errAppend{kerr.CoordinatorNotAvailable, errors.New("the high watermark does not cover the records")}
	}
	for _, r := range recs {
		if err := s.c.Replay(r); err != nil {
			return &errAppend{kerr.UnknownServerError, err}
		}
	}
	return nil
}

func appendCode(err error) int16 {
	var ea *errAppend
	if errors.As(err, &ea) {
		return ea.code.Code
	}
	return kerr.UnknownServerError.Code
}

// coordinatorFor finds the coordinator of groupID on this broker:
// NOT_COORDINATOR when this broker is not it (or offsetsTopic does not exist
// yet: FindCoordinator creates it), COORDINATOR_LOAD_IN_PROGRESS while it
// loads.
func (b *Broker) coordinatorFor(groupID string) (*shard, *kerr.Error) {
	t, ok := b.image().Topic(offsetsTopic)
	if !ok || len(t.Partitions) == 0 {
		return nil, kerr.NotCoordinator
	}
	b.coords.mu.Lock()
	s := b.coords.shards[group.PartitionFor(groupID, len(t.Partitions))]
	b.coords.mu.Unlock()
	switch {
	case s == nil:
		return nil, kerr.NotCoordinator
	case !s.loaded.Load():
		select {
		case <-s.stopping:
			return nil, kerr.NotCoordinator
		default:
			return nil, kerr.CoordinatorLoadInProgress
		}
	}
	return s, nil
}

// clientOf is who sent rq, as DescribeGroups shows members: the client id
// and "/" and the address, as Kafka's InetAddress.toString prints it.
func clientOf(rq *request) group.Client {
	host := ""
	if rq.conn != nil && rq.conn.RemoteAddr != nil {
		host = rq.conn.RemoteAddr.String()
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
	}
	return group.Client{ID: rq.clientID, Host: "/" + host}
}

// atCoordinator runs serve on groupID's coordinator goroutine, or, when
// this broker is not the group's coordinator (or it is loading, or it stops
// before taking the request), answers with fail's response for the code.
func (b *Broker) atCoordinator(rq *request, groupID string, serve func(s *shard), fail func(code int16) kmsg.Response) {
	s, kerrr := b.coordinatorFor(groupID)
	if kerrr == nil {
		if s.submit(func() { serve(s) }) {
			return
		}
		kerrr = kerr.NotCoordinator
	}
	rq.reply(fail(kerrr.Code))
}

func (b *Broker) handleJoinGroup(rq *request, req *kmsg.JoinGroupRequest) {
	b.atCoordinator(rq, req.Group, func(s *shard) {
		s.flush(s.c.Join(s.replies[:0], b.now(), s.park(rq), clientOf(rq), req))
	}, func(code int16) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode, resp.MemberID, resp.Generation = code, req.MemberID, -1
		return resp
	})
}

func (b *Broker) handleSyncGroup(rq *request, req *kmsg.SyncGroupRequest) {
	b.atCoordinator(rq, req.Group, func(s *shard) {
		s.flush(s.c.Sync(s.replies[:0], b.now(), s.park(rq), req))
	}, func(code int16) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = code
		return resp
	})
}

// handleHeartbeat answers a Heartbeat at the group's coordinator. While
// the coordinator loads its partition the answer is NONE, as Kafka's
// GroupCoordinatorService.heartbeat gives ("the group is still loading, so
// blindly respond"): the members of a group whose coordinator moves or
// restarts keep consuming until it has loaded, and then learn what it
// knows (UNKNOWN_MEMBER_ID here, since members are not persisted), rather
// than stopping to look for a coordinator that is already found.
func (b *Broker) handleHeartbeat(rq *request, req *kmsg.HeartbeatRequest) {
	b.atCoordinator(rq, req.Group, func(s *shard) {
		rq.reply(s.c.Heartbeat(b.now(), req))
	}, func(code int16) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		switch {
		case code != kerr.CoordinatorLoadInProgress.Code:
			resp.ErrorCode = code
		case req.Group == "":
			// Kafka checks the id before it looks for the group.
			resp.ErrorCode = kerr.InvalidGroupID.Code
		}
		return resp
	})
}

func (b *Broker) handleLeaveGroup(rq *request, req *kmsg.LeaveGroupRequest) {
	b.atCoordinator(rq, req.Group, func(s *shard) {
		s.flush(s.c.Leave(s.replies[:0], b.now(), s.park(rq), req))
	}, func(code int16) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = code
		return resp
	})
}

// handleOffsetCommit stores the offsets as records in the group's partition
// of offsetsTopic and answers once they are appended under acks=all.
func (b *Broker) handleOffsetCommit(rq *request, req *kmsg.OffsetCommitRequest) {
	b.atCoordinator(rq, req.Group, func(s *shard) {
		im := b.image()
		resp, recs := s.c.CommitOffsets(b.now(), req, func(topic string, partition int32) bool {
			t, ok := im.Topic(topic)
			return ok && partition >= 0 && int(partition) < len(t.Partitions)
		})
		if err := s.append(recs); err != nil {
			rq.log().Warn("committing offsets", "group", req.Group, "err", err)
			group.CommitFailed(resp, appendCode(err))
		}
		rq.reply(resp)
	}, func(code int16) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, t := range req.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	})
}

// fetchGroupOffsets is one group's part of an OffsetFetch, from its
// coordinator on this broker.
func (b *Broker) fetchGroupOffsets(groupID string, topics []kmsg.OffsetFetchRequestGroupTopic) ([]kmsg.OffsetFetchResponseGroupTopic, *kerr.Error) {
	s, kerrr := b.coordinatorFor(groupID)
	if kerrr != nil {
		return nil, kerrr
	}
	var out []kmsg.OffsetFetchResponseGroupTopic
	if !s.call(func() { out, kerrr = s.c.FetchGroupOffsets(groupID, topics) }) {
		return nil, kerr.NotCoordinator
	}
	return out, kerrr
}

// handleOffsetFetch answers OffsetFetch: v1-7 for one group (v1 has no
// group-level error, so it goes on every partition), v8+ for several,
// each from its own coordinator. It runs on its own goroutine, since it
// waits on coordinators.
func (b *Broker) handleOffsetFetch(rq *request, req *kmsg.OffsetFetchRequest) {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version >= 8 {
		for _, g := range req.Groups {
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group = g.Group
			var kerrr *kerr.Error
			rg.Topics, kerrr = b.fetchGroupOffsets(g.Group, g.Topics) // nil: every partition
			if kerrr != nil {
				rg.ErrorCode = kerrr.Code
			}
			resp.Groups = append(resp.Groups, rg)
		}
		rq.reply(resp)
		return
	}
	var topics []kmsg.OffsetFetchRequestGroupTopic
	if req.Topics != nil || req.Version < 2 {
		topics = []kmsg.OffsetFetchRequestGroupTopic{}
		for _, t := range req.Topics {
			gt := kmsg.NewOffsetFetchRequestGroupTopic()
			gt.Topic, gt.Partitions = t.Topic, t.Partitions
			topics = append(topics, gt)
		}
	}
	out, kerrr := b.fetchGroupOffsets(req.Group, topics)
	for _, t := range out {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetFetchResponseTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata, rp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if kerrr != nil {
		if req.Version >= 2 {
			resp.ErrorCode = kerrr.Code
		}
		// Before v2 the error goes on each partition asked for.
		resp.Topics = resp.Topics[:0]
		for _, t := range req.Topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch, rp.ErrorCode = p, -1, -1, kerrr.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
	}
	rq.reply(resp)
}

func (b *Broker) handleOffsetDelete(rq *request, req *kmsg.OffsetDeleteRequest) {
	b.atCoordinator(rq, req.Group, func(s *shard) {
		resp, recs := s.c.DeleteOffsets(req)
		if err := s.append(recs); err != nil {
			rq.log().Warn("deleting offsets", "group", req.Group, "err", err)
			resp.ErrorCode = appendCode(err)
		}
		rq.reply(resp)
	}, func(code int16) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.ErrorCode = code
		return resp
	})
}

// eachGroup answers a request that names several groups, each at its own
// coordinator: one runs on the coordinator's goroutine and returns the
// group's entry, fail builds the entry for a group this broker does not
// coordinate. It runs on the request's own goroutine, since it waits.
func eachGroup[G any](b *Broker, ids []string, one func(s *shard, id string) G, fail func(id string, code int16) G) []G {
	out := make([]G, 0, len(ids))
	for _, id := range ids {
		var g G
		s, kerrr := b.coordinatorFor(id)
		if kerrr == nil && !s.call(func() { g = one(s, id) }) {
			kerrr = kerr.NotCoordinator
		}
		if kerrr != nil {
			g = fail(id, kerrr.Code)
		}
		out = append(out, g)
	}
	return out
}

// handleDescribeGroups describes each group at its coordinator. Asked for
// (v3+), a group described without error carries the operations the
// caller may perform on it, as Kafka's handleDescribeGroupsRequest sets
// them: with no authorizer, every operation on a group.
func (b *Broker) handleDescribeGroups(rq *request, req *kmsg.DescribeGroupsRequest) {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	resp.Groups = eachGroup(b, req.Groups, func(s *shard, id string) kmsg.DescribeGroupsResponseGroup {
		one := *req
		one.Groups = []string{id}
		return s.c.DescribeGroups(&one).Groups[0]
	}, func(id string, code int16) kmsg.DescribeGroupsResponseGroup {
		rg := kmsg.NewDescribeGroupsResponseGroup()
		rg.Group, rg.ErrorCode = id, code
		return rg
	})
	if req.Version >= 3 && req.IncludeAuthorizedOperations {
		for i := range resp.Groups {
			if resp.Groups[i].ErrorCode == 0 {
				resp.Groups[i].AuthorizedOperations = groupOperations
			}
		}
	}
	rq.reply(resp)
}

// handleListGroups gathers the groups of every coordinator on this broker,
// as Kafka's does (a client asks every broker); while one loads, the answer
// carries COORDINATOR_LOAD_IN_PROGRESS. On its own goroutine.
func (b *Broker) handleListGroups(rq *request, req *kmsg.ListGroupsRequest) {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	b.coords.mu.Lock()
	shards := make([]*shard, 0, len(b.coords.shards))
	for _, s := range b.coords.shards {
		shards = append(shards, s)
	}
	b.coords.mu.Unlock()
	for _, s := range shards {
		if !s.loaded.Load() {
			resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
			continue
		}
		s.call(func() { resp.Groups = append(resp.Groups, s.c.ListGroups(req).Groups...) })
	}
	rq.reply(resp)
}

// handleDeleteGroups deletes each group at its coordinator, which writes
// the tombstones of its offsets.
func (b *Broker) handleDeleteGroups(rq *request, req *kmsg.DeleteGroupsRequest) {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	resp.Groups = eachGroup(b, req.Groups, func(s *shard, id string) kmsg.DeleteGroupsResponseGroup {
		one := *req
		one.Groups = []string{id}
		out, recs := s.c.DeleteGroups(&one)
		rg := out.Groups[0]
		if err := s.append(recs); err != nil {
			rq.log().Warn("deleting a group's offsets", "group", id, "err", err)
			rg.ErrorCode = appendCode(err)
		}
		return rg
	}, func(id string, code int16) kmsg.DeleteGroupsResponseGroup {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group, rg.ErrorCode = id, code
		return rg
	})
	rq.reply(resp)
}

// handleFindCoordinator answers where each group's coordinator is: the
// leader of its partition of offsetsTopic, which is created on first use.
// Transactions are not supported: a transactional key gets
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED, as InitProducerId answers a
// transactional id, which Kafka's clients (Java, librdkafka) take as fatal
// at once, where a retriable answer would leave their init_transactions
// retrying until it times out. Other key types (share groups) get
// INVALID_REQUEST, as from a Kafka broker without a share coordinator. On its
// own goroutine, since creating the topic waits on the controller.
func (b *Broker) handleFindCoordinator(rq *request, req *kmsg.FindCoordinatorRequest) {
	keys := req.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	type answer struct {
		node       int32
		host       string
		port       int32
		code       int16
		errMessage *string
	}
	answers := make([]answer, len(keys))
	switch req.CoordinatorType {
	case 0:
		t, err := b.ensureOffsetsTopic(rq)
		for i, key := range keys {
			a := &answers[i]
			a.node, a.port = -1, -1
			if err != nil {
				a.code, a.errMessage = kerr.CoordinatorNotAvailable.Code, kmsg.StringPtr(err.Error())
				continue
			}
			pi := t.Partitions[group.PartitionFor(key, len(t.Partitions))]
			a.code = kerr.CoordinatorNotAvailable.Code
			if pi.Leader == raft.NoLeader {
				continue
			}
			for _, lb := range liveBrokers(b.image()) {
				if lb.id == pi.Leader {
					a.node, a.host, a.port, a.code = lb.id, lb.host, lb.port, 0
				}
			}
		}
	case 1:
		for i := range answers {
			answers[i] = answer{node: -1, port: -1, code: kerr.TransactionalIDAuthorizationFailed.Code,
				errMessage: kmsg.StringPtr("Gregor does not support transactions: there is no transaction coordinator")}
		}
	default:
		for i := range answers {
			answers[i] = answer{node: -1, port: -1, code: kerr.InvalidRequest.Code,
				errMessage: kmsg.StringPtr(fmt.Sprintf("no coordinator of type %d: Gregor coordinates consumer groups (type 0) only", req.CoordinatorType))}
		}
	}
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	if req.Version >= 4 {
		for i, key := range keys {
			a := answers[i]
			c := kmsg.NewFindCoordinatorResponseCoordinator()
			c.Key, c.NodeID, c.Host, c.Port, c.ErrorCode, c.ErrorMessage = key, a.node, a.host, a.port, a.code, a.errMessage
			resp.Coordinators = append(resp.Coordinators, c)
		}
	} else {
		a := answers[0]
		resp.NodeID, resp.Host, resp.Port, resp.ErrorCode, resp.ErrorMessage = a.node, a.host, a.port, a.code, a.errMessage
	}
	rq.reply(resp)
}

// ensureOffsetsTopic returns offsetsTopic from the local image, creating it
// first if it does not exist: offsets.topic.num.partitions partitions,
// compacted, with offsets.topic.segment.bytes segments. Its replication
// factor is offsets.topic.replication.factor capped at the live brokers,
// and at 1 until follower replication lands.
func (b *Broker) ensureOffsetsTopic(rq *request) (*raft.TopicImage, error) {
	if t, ok := b.image().Topic(offsetsTopic); ok {
		return t, nil
	}
	b.coords.creating.Lock()
	defer b.coords.creating.Unlock()
	if t, ok := b.image().Topic(offsetsTopic); ok {
		return t, nil
	}
	rf := min(b.cfg.OffsetsTopicReplicationFactor, int16(len(liveBrokers(b.image()))), 1)
	if rf < 1 {
		return nil, errors.New("no live brokers to host " + offsetsTopic)
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = int32(b.cfg.RequestTimeout.Milliseconds())
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = offsetsTopic, b.cfg.OffsetsTopicNumPartitions, rf
	for k, v := range map[string]string{
		"cleanup.policy":   "compact",
		"compression.type": "producer",
		"segment.bytes":    i64(b.cfg.OffsetsTopicSegmentBytes),
	} {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		t.Configs = append(t.Configs, c)
	}
	req.Topics = append(req.Topics, t)
	ctx := rq.ctx(0)
	resp, err := b.controller(ctx, req)
	if err != nil {
		return nil, err
	}
	if code := resp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode; code != 0 && code != kerr.TopicAlreadyExists.Code {
		return nil, kerr.ErrorForCode(code)
	}
	b.logger.Info("created "+offsetsTopic, "partitions", b.cfg.OffsetsTopicNumPartitions, "replication.factor", rf)
	b.waitForImage(ctx, func(im *raft.Image) bool { _, ok := im.Topic(offsetsTopic); return ok })
	if t, ok := b.image().Topic(offsetsTopic); ok {
		return t, nil
	}
	return nil, errors.New("timed out waiting for " + offsetsTopic + " to be created")
}

// GroupCoordinatorLoaded says whether this broker coordinates groupID and
// has loaded its partition (tests).
func (b *Broker) GroupCoordinatorLoaded(groupID string) bool {
	_, err := b.coordinatorFor(groupID)
	return err == nil
}
