package broker

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/raft"
)

// handleMetadata answers Metadata from the local image. Topics that do not
// exist are created when auto.create.topics.enable and the request allow it
// (v4+ asks; older versions always allow), which needs the controller, so
// such a request is answered from another goroutine.
func (b *Broker) handleMetadata(rq *request, req *kmsg.MetadataRequest) {
	im := b.image()
	var missing []string
	if b.cfg.AutoCreateTopicsEnable && (req.Version < 4 || req.AllowAutoTopicCreation) && req.Topics != nil && !idsBeforeV12(req) {
		asked := map[string]bool{}
		for _, t := range req.Topics {
			if t.Topic == nil {
				continue
			}
			if _, ok := im.Names[*t.Topic]; !ok && !asked[*t.Topic] && raft.ValidateTopicName(*t.Topic) == nil {
				// A name asked twice is created once.
				asked[*t.Topic] = true
				missing = append(missing, *t.Topic)
			}
		}
	}
	if len(missing) == 0 {
		rq.reply(b.metadata(im, req, nil))
		return
	}
	go func() {
		// __consumer_offsets is made as the group coordinator needs it
		// (offsets.topic.*), not with the defaults.
		internal := slices.Index(missing, offsetsTopic)
		if internal >= 0 {
			missing = slices.Delete(missing, internal, internal+1)
		}
		created := map[string]int16{}
		if len(missing) > 0 {
			created = b.autoCreate(missing)
		}
		if internal >= 0 {
			created[offsetsTopic] = 0
			if _, err := b.ensureOffsetsTopic(rq); err != nil {
				created[offsetsTopic] = kerr.LeaderNotAvailable.Code
			}
		}
		rq.reply(b.metadata(b.image(), req, created))
	}()
}

// autoCreate creates topics with the broker's defaults; it returns each
// topic's error code (0 when created or created meanwhile by someone else).
func (b *Broker) autoCreate(topics []string) map[string]int16 {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = int32(b.cfg.RequestTimeout.Milliseconds())
	for _, name := range topics {
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = name, -1, -1
		req.Topics = append(req.Topics, t)
	}
	out := make(map[string]int16, len(topics))
	ctx, cancel := b.stopContext(b.cfg.RequestTimeout)
	defer cancel()
	resp, offset, err := b.controllerAt(ctx, req)
	if err != nil {
		b.logger.Warn("auto-creating topics", "topics", topics, "err", err)
		for _, name := range topics {
			out[name] = kerr.LeaderNotAvailable.Code
		}
		return out
	}
	for _, t := range resp.(*kmsg.CreateTopicsResponse).Topics {
		code := t.ErrorCode
		if code == kerr.TopicAlreadyExists.Code {
			code = 0
		}
		if code != 0 {
			b.logger.Warn("auto-creating a topic", "topic", t.Topic, "err", kerr.ErrorForCode(code))
		} else {
			b.logger.Info("auto-created a topic", "topic", t.Topic)
		}
		out[t.Topic] = code
	}
	b.awaitChange(ctx, offset, func(im *raft.Image) bool {
		for name, code := range out {
			if _, ok := im.Names[name]; code == 0 && !ok {
				return false
			}
		}
		return true
	})
	return out
}

// idsBeforeV12 reports whether req names a topic by id (or by neither name
// nor id) in a version before 12, which brought topic ids to Metadata.
// Kafka refuses such a request whole, before anything else, auto-creation
// of the names beside the id included.
func idsBeforeV12(req *kmsg.MetadataRequest) bool {
	return req.Version < 12 && slices.ContainsFunc(req.Topics, func(rt kmsg.MetadataRequestTopic) bool {
		return rt.Topic == nil || rt.TopicID != [16]byte{}
	})
}

// awaitChange waits until this broker's image holds a change that the
// active controller answered at metadata offset offset (controllerAt), and
// with it everything decided before: a topic deleted and then created
// again under its name through another broker is the new topic here, not
// the old one this image may still hold. An offset of 0 is a remote
// controller's answer at a version without tagged fields to carry it; then
// shows, which must hold once the change is in, is what is waited for.
func (b *Broker) awaitChange(ctx context.Context, offset uint64, shows func(*raft.Image) bool) {
	if offset > 0 {
		shows = func(im *raft.Image) bool { return im.Offset >= offset }
	}
	b.waitForImage(ctx, shows)
}

// waitForImage waits until cond holds for the local image (a broker-only
// node applies the controller's records a moment after it answers), or ctx
// ends.
func (b *Broker) waitForImage(ctx context.Context, cond func(*raft.Image) bool) {
	for !cond(b.image()) {
		w := b.imageWaiter()
		if cond(b.image()) {
			return
		}
		runHook(&b.hooks.imageWait)
		select {
		case <-w:
		case <-ctx.Done():
			return
		}
	}
}

// metadata builds the Metadata response from im. created holds the codes of
// topics this request tried to create.
func (b *Broker) metadata(im *raft.Image, req *kmsg.MetadataRequest, created map[string]int16) *kmsg.MetadataResponse {
	resp := kmsg.NewPtrMetadataResponse()
	resp.Version = req.Version
	for _, lb := range liveBrokers(im) {
		mb := kmsg.NewMetadataResponseBroker()
		mb.NodeID, mb.Host, mb.Port, mb.Rack = lb.id, lb.host, lb.port, lb.rack
		resp.Brokers = append(resp.Brokers, mb)
	}
	resp.ClusterID = &b.cfg.ClusterID
	// Clients cannot reach KRaft controllers; like Kafka, name a live broker
	// (this one, which forwards admin requests to the active controller).
	resp.ControllerID = b.cfg.NodeID

	if req.IncludeClusterAuthorizedOperations && req.Version <= 10 {
		resp.AuthorizedOperations = clusterOperations
	}
	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	if all {
		for _, t := range im.TopicsByName() {
			resp.Topics = append(resp.Topics, b.topicMetadata(im, t, req))
		}
		return resp
	}
	if idsBeforeV12(req) {
		for _, rt := range req.Topics {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic, mt.TopicID, mt.ErrorCode = rt.Topic, rt.TopicID, kerr.InvalidRequest.Code
			resp.Topics = append(resp.Topics, mt)
		}
		return resp
	}
	// Kafka answers the set of topics asked for: a name or id asked twice
	// is answered once.
	type asked struct {
		name string
		id   [16]byte
	}
	seen := make(map[asked]bool, len(req.Topics))
	for _, rt := range req.Topics {
		k := asked{id: rt.TopicID}
		if rt.Topic != nil {
			k = asked{name: *rt.Topic}
		}
		if seen[k] {
			continue
		}
		seen[k] = true
		var t *raft.TopicImage
		var name string
		switch {
		case rt.Topic != nil:
			name = *rt.Topic
			t, _ = im.Topic(name)
		case rt.TopicID != [16]byte{}:
			t = im.Topics[raft.UUID(rt.TopicID)]
		}
		if t != nil {
			resp.Topics = append(resp.Topics, b.topicMetadata(im, t, req))
			continue
		}
		mt := kmsg.NewMetadataResponseTopic()
		mt.TopicID = rt.TopicID
		if rt.Topic != nil {
			mt.Topic = kmsg.StringPtr(name)
		}
		switch code, tried := created[name]; {
		case rt.Topic == nil:
			mt.ErrorCode = kerr.UnknownTopicID.Code
		case raft.ValidateTopicName(name) != nil:
			mt.ErrorCode = kerr.InvalidTopicException.Code
		case tried && code == 0:
			// Created, but not in this broker's image yet.
			mt.ErrorCode = kerr.LeaderNotAvailable.Code
		case tried:
			mt.ErrorCode = code
		default:
			mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
		}
		resp.Topics = append(resp.Topics, mt)
	}
	return resp
}

func (b *Broker) topicMetadata(im *raft.Image, t *raft.TopicImage, req *kmsg.MetadataRequest) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	mt.Topic = kmsg.StringPtr(t.Name)
	mt.TopicID = t.ID
	mt.IsInternal = t.Name == offsetsTopic
	if req.IncludeTopicAuthorizedOperations {
		mt.AuthorizedOperations = topicOperations
	}
	for i, pi := range t.Partitions {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = int32(i)
		mp.Leader, mp.LeaderEpoch = pi.Leader, pi.LeaderEpoch
		mp.Replicas = slices.Clone(pi.Replicas)
		mp.ISR = slices.Clone(pi.ISR)
		for _, r := range pi.Replicas {
			if bi, ok := im.Brokers[r]; !ok || bi.Fenced {
				mp.OfflineReplicas = append(mp.OfflineReplicas, r)
			}
		}
		if pi.Leader == raft.NoLeader {
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}

// Authorized operations, as Kafka's bit fields of ACL operation codes
// (AclOperation: READ 3, WRITE 4, CREATE 5, DELETE 6, ALTER 7, DESCRIBE 8,
// CLUSTER_ACTION 9, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11, IDEMPOTENT_WRITE
// 12). Without an authorizer Kafka answers every operation a resource type
// supports (AclEntry.supportedOperations), and Gregor has none. A group's
// are Kafka 3's: Kafka 4 adds DESCRIBE_CONFIGS and ALTER_CONFIGS with
// group configs (KAFKA-14510), which Gregor does not have.
const (
	topicOperations   = 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<10 | 1<<11
	clusterOperations = 1<<5 | 1<<7 | 1<<8 | 1<<9 | 1<<10 | 1<<11 | 1<<12
	groupOperations   = 1<<3 | 1<<6 | 1<<8
)

// liveBroker is what Metadata and DescribeCluster tell clients of a broker.
type liveBroker struct {
	id   int32
	host string
	port int32
	rack *string
}

// liveBrokers are the unfenced brokers with a client listener, by id: the
// brokers clients may use.
func liveBrokers(im *raft.Image) []liveBroker {
	ids := make([]int32, 0, len(im.Brokers))
	for id := range im.Brokers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var out []liveBroker
	for _, id := range ids {
		bi := im.Brokers[id]
		ep, ok := endpoint(bi)
		if bi.Fenced || !ok {
			continue
		}
		lb := liveBroker{id: id, host: ep.Host, port: int32(ep.Port)}
		if bi.Rack != "" {
			lb.rack = &bi.Rack
		}
		out = append(out, lb)
	}
	return out
}

// endpoint is a broker's PLAINTEXT listener.
func endpoint(bi *raft.BrokerImage) (raft.Endpoint, bool) {
	for _, ep := range bi.Endpoints {
		if ep.Name == "PLAINTEXT" {
			return ep, true
		}
	}
	if len(bi.Endpoints) > 0 {
		return bi.Endpoints[0], true
	}
	return raft.Endpoint{}, false
}
