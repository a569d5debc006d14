package broker

import (
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"gregor/raft"
	"gregor/replica"
	"gregor/segment"
)

// hosted is a partition this broker holds a replica of, and the topic id it
// belongs to (a topic deleted and created again under the same name is a
// different topic: its old log goes). The log records the id too
// (partition.metadata), so that a restart tells the old topic's log from
// the new one's.
type hosted struct {
	p       *replica.Partition
	topicID raft.UUID
}

// runMetadata makes the partitions this broker hosts follow the metadata
// image: it opens the logs of partitions assigned to it, makes it leader or
// follower in the epoch the image gives, applies topic config changes, and
// deletes the logs of partitions it no longer hosts. It reconciles with the
// whole image on each change rather than replaying deltas, so a change it
// has not seen yet can never be lost.
//
// A broker follows nothing until its image has caught up with the metadata
// log as it stood when the broker started: until then the image is an old
// one (on a restart, the last snapshot's, restored before the entries after
// it are committed again), in which the broker may lead partitions that
// have since moved, been deleted or been created again under another id.
// Acting on it would open those logs and take appends at stale leader
// epochs, serve Metadata from it, and delete the log of a topic created
// again as soon as the image moved on. So, as Kafka's broker waits for its
// metadata to catch up to the log's high watermark before it publishes
// (MetadataLoader) and serves (BrokerServer's initialCatchUpFuture), it
// waits for its own registration from this start (this incarnation) to be
// in the image: that entry was committed after the broker started, so
// every entry committed before is applied too. Until then heartbeats
// report metadata offset 0, so the controller keeps the broker fenced, and
// the client listener accepts no connection (servingClients), as Kafka's
// broker enables request processing only once caught up: a client's
// connection waits in the listener's backlog rather than being told, from
// the empty image, of no brokers and no topics.
func (b *Broker) runMetadata() {
	expire := time.NewTicker(time.Minute)
	defer expire.Stop()
	caughtUp := !b.IsBroker() // a controller-only node registers nothing and hosts nothing
	strays := b.IsBroker()    // the logs found at start-up are yet to be checked
	for {
		select {
		case <-b.stop:
			return
		case <-b.metadataChanged:
			runHook(&b.hooks.beforeFollow)
			im := b.node.Image()
			if !caughtUp {
				if bi, ok := im.Brokers[b.cfg.NodeID]; !ok || bi.Incarnation != b.incarnation {
					continue
				}
				caughtUp = true
				b.logger.Info("metadata caught up with the log", "offset", im.Offset)
			}
			b.reconcile(im, strays)
			if strays { // the first image since the catch-up is published
				close(b.servingClients)
			}
			strays = false
		case <-expire.C:
			cutoff := b.now().Add(-b.cfg.ProducerIDExpiration)
			for _, p := range b.hostedPartitions() {
				p.ExpireProducers(cutoff)
			}
		}
	}
}

func (b *Broker) hostedPartitions() []*replica.Partition {
	b.partitions.RLock()
	defer b.partitions.RUnlock()
	out := make([]*replica.Partition, 0, len(b.partitions.m))
	for _, h := range b.partitions.m {
		out = append(out, h.p)
	}
	return out
}

// reconcile makes the hosted partitions follow im. With strays (the first
// image after the catch-up gate), it also deletes the logs found at start-up
// that im does not give this broker (strayLogs); hostPartition has deleted
// those of partitions it does give whose recorded topic id is another's.
func (b *Broker) reconcile(im *raft.Image, strays bool) {
	me := b.cfg.NodeID
	want := map[segment.TopicPartition]bool{}
	for _, t := range im.Topics {
		cfg := b.logConfig(t.Configs)
		for i, pi := range t.Partitions {
			if !slices.Contains(pi.Replicas, me) {
				continue
			}
			tp := segment.TopicPartition{Topic: t.Name, Partition: int32(i)}
			want[tp] = true
			h, err := b.hostPartition(tp, t.ID, cfg)
			if err != nil {
				b.logger.Error("opening a partition's log", "partition", tp, "err", err)
				continue
			}
			if h.p.Log().Config() != cfg {
				if err := h.p.Log().SetConfig(cfg); err != nil {
					b.logger.Error("applying a topic config change", "partition", tp, "err", err)
				}
			}
			epoch, leader := h.p.Leader()
			switch {
			case pi.Leader == me && (!leader || epoch != pi.LeaderEpoch):
				if err := h.p.BecomeLeader(pi.LeaderEpoch); err != nil {
					b.logger.Error("starting a leader epoch", "partition", tp, "leader.epoch", pi.LeaderEpoch, "err", err)
				}
				b.logger.Debug("leading", "partition", tp, "leader.epoch", pi.LeaderEpoch)
			case pi.Leader != me && (leader || epoch != pi.LeaderEpoch):
				h.p.BecomeFollower(pi.LeaderEpoch)
			}
		}
	}
	b.partitions.Lock()
	gone := map[segment.TopicPartition]hosted{}
	for tp, h := range b.partitions.m {
		if !want[tp] {
			delete(b.partitions.m, tp)
			gone[tp] = h
		}
	}
	b.partitions.Unlock()
	if strays {
		// Before the image is published: a broker that serves it, and
		// so may be unfenced, has no stray log left.
		if tps := b.strayLogs(im, want); len(tps) > 0 {
			if err := b.logs.Delete(tps...); err != nil {
				b.logger.Error("deleting stray logs", "partitions", tps, "err", err)
			}
		}
	}
	b.metrics.partitions.Store(uint64(len(want)))
	b.reconcileCoordinators(im)
	// The image is served before the fetches parked on the partitions it
	// removed are woken, so that they read those as gone
	// (UNKNOWN_TOPIC_OR_PARTITION), not as led here: Kafka's publisher
	// sets its metadata cache before it applies the change to its
	// replicas.
	b.publish(im)
	b.noticeDeletedTopics(im)
	if len(gone) == 0 {
		return
	}
	tps := make([]segment.TopicPartition, 0, len(gone))
	for tp, h := range gone {
		h.p.Detach()
		tps = append(tps, tp)
	}
	// Fetches still holding regions of the logs keep reading them: the
	// files stay open until released. One call for them all rewrites each
	// log dir's checkpoints once, not once per partition.
	if err := b.logs.Delete(tps...); err != nil {
		b.logger.Error("deleting the logs of partitions this broker no longer hosts", "partitions", len(tps), "err", err)
	} else {
		b.logger.Info("deleted partitions this broker no longer hosts", "partitions", tps)
	}
}

// strayLogs returns the logs the Manager found at start-up that im, the
// first image caught up with the metadata log, does not give this broker
// (want holds those it gives), and logs why each is stray. Such a log was
// left by a partition deleted, or moved to other brokers, while this broker
// was down: kept, it is never trimmed (its config stays provisional), and a
// partition of the same name given to this broker later would take its
// records. Kafka's broker deletes them on its first metadata publish
// (BrokerMetadataPublisher.initializeManagers, LogManager
// .isStrayKraftReplica), and so does this one. A log of a partition this
// broker is given is never stray here: hostPartition has checked its
// topic id.
func (b *Broker) strayLogs(im *raft.Image, want map[segment.TopicPartition]bool) []segment.TopicPartition {
	var out []segment.TopicPartition
	for _, tp := range b.logs.Partitions() {
		if want[tp] {
			continue
		}
		attrs := []any{"partition", tp}
		if l, ok := b.logs.Get(tp); ok {
			if id, ok := l.TopicID(); ok {
				attrs = append(attrs, "log.topic.id", id)
			}
		}
		t, ok := im.Topic(tp.Topic)
		switch {
		case !ok:
			attrs = append(attrs, "reason", "its topic is not in the metadata: deleted")
		case int(tp.Partition) >= len(t.Partitions):
			attrs = append(attrs, "reason", fmt.Sprintf("its topic (id %s) has %d partitions", t.ID, len(t.Partitions)))
		default:
			attrs = append(attrs, "reason", fmt.Sprintf("the partition's replicas %v (topic id %s) do not include this broker",
				t.Partitions[tp.Partition].Replicas, t.ID))
		}
		b.logger.Info("deleting a stray log", attrs...)
		out = append(out, tp)
	}
	return out
}

// hostPartition returns the hosted replica of tp, opening or creating its
// log; a replica or a log left from an older topic of the same name is
// deleted first. The log records the topic's id before it is hosted: a log
// created by an older Gregor, which has none, is taken for the topic it is
// given (nothing else can tell), and one that records another id is stray.
func (b *Broker) hostPartition(tp segment.TopicPartition, id raft.UUID, cfg segment.Config) (hosted, error) {
	b.partitions.RLock()
	h, ok := b.partitions.m[tp]
	b.partitions.RUnlock()
	if ok && h.topicID == id {
		return h, nil
	}
	if ok {
		h.p.Detach()
		b.partitions.Lock()
		delete(b.partitions.m, tp)
		b.partitions.Unlock()
		if err := b.logs.Delete(tp); err != nil {
			return hosted{}, err
		}
	}
	log, err := b.logs.GetOrCreate(tp, cfg)
	if err != nil {
		return hosted{}, err
	}
	switch recorded, ok := log.TopicID(); {
	case ok && recorded != segment.TopicID(id):
		b.logger.Info("deleting a stray log", "partition", tp, "log.topic.id", recorded, "topic.id", id,
			"reason", "it holds a topic of the same name deleted since")
		if err := b.logs.Delete(tp); err != nil {
			return hosted{}, err
		}
		if log, err = b.logs.GetOrCreate(tp, cfg); err != nil {
			return hosted{}, err
		}
	case !ok && log.LogEndOffset() > 0:
		b.logger.Info("recording the topic id of a log that has none", "partition", tp, "topic.id", id)
	}
	if err := log.SetTopicID(segment.TopicID(id)); err != nil {
		return hosted{}, err
	}
	h = hosted{p: replica.New(tp, log, b.now, b.cfg.ProducerIDExpiration), topicID: id}
	b.partitions.Lock()
	b.partitions.m[tp] = h
	b.partitions.Unlock()
	return h, nil
}

// Partition is this broker's replica of a partition, if it hosts one.
func (b *Broker) Partition(topic string, partition int32) (*replica.Partition, bool) {
	b.partitions.RLock()
	defer b.partitions.RUnlock()
	h, ok := b.partitions.m[segment.TopicPartition{Topic: topic, Partition: partition}]
	return h.p, ok
}

// leaderFor finds the local replica a client request for topic/partition
// must go to: UNKNOWN_TOPIC_OR_PARTITION when the image has no such
// partition, NOT_LEADER_OR_FOLLOWER when this broker does not lead it, and,
// for a request that names the leader epoch it knows (KIP-320; -1 when it
// does not), FENCED_LEADER_EPOCH when that epoch is older than the leader's
// and UNKNOWN_LEADER_EPOCH when it is newer (this broker has not caught up).
// Only -1 means "not known", as in Kafka: any other negative epoch is older
// than every leader's, so fenced.
func (b *Broker) leaderFor(im *raft.Image, topic string, partition, currentLeaderEpoch int32) (*replica.Partition, *raft.PartitionImage, *kerr.Error) {
	t, ok := im.Topic(topic)
	if !ok || partition < 0 || int(partition) >= len(t.Partitions) {
		return nil, nil, kerr.UnknownTopicOrPartition
	}
	pi := t.Partitions[partition]
	if pi.Leader != b.cfg.NodeID {
		return nil, pi, kerr.NotLeaderForPartition
	}
	b.partitions.RLock()
	h, ok := b.partitions.m[segment.TopicPartition{Topic: topic, Partition: partition}]
	b.partitions.RUnlock()
	if !ok {
		// The image says so, but the log is not open yet: the client
		// retries after refreshing its metadata.
		return nil, pi, kerr.NotLeaderForPartition
	}
	if h.p.Log().Failed() != nil {
		// Kafka takes a partition whose log dir failed offline: every
		// request for it, whatever it asks, is KAFKA_STORAGE_ERROR.
		return nil, pi, kerr.KafkaStorageError
	}
	epoch, leader := h.p.Leader()
	switch {
	case !leader:
		return nil, pi, kerr.NotLeaderForPartition
	case currentLeaderEpoch != -1 && currentLeaderEpoch < epoch:
		return nil, pi, kerr.FencedLeaderEpoch
	case currentLeaderEpoch > epoch:
		return nil, pi, kerr.UnknownLeaderEpoch
	}
	return h.p, pi, nil
}
