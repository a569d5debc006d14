package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/raft"
)

// The admin requests a client sends to any broker are forwarded to the
// active controller, which decides them on the metadata image and answers
// once its records are committed (KIP-590's forwarding, without the
// envelope: brokers and controller trust each other on this listener).

func (b *Broker) handleCreateTopics(rq *request, req *kmsg.CreateTopicsRequest) {
	ctx := rq.ctx(req.TimeoutMillis)
	// This broker refuses what the controller would take: more than one
	// replica (until follower replication lands, a partition has one; more
	// would acknowledge data only one broker holds) and __consumer_offsets
	// (its partition count and compaction are the group coordinator's,
	// offsets.topic.*: FindCoordinator makes it). Those refusals come last,
	// as Kafka's placement does: the controller first says, in a
	// validate_only request, whether the name, its existence or the configs
	// fail the topic.
	var keep, refusedTopics []kmsg.CreateTopicsRequestTopic
	type refusal struct {
		code int16
		msg  *string
	}
	refused := map[string]refusal{}
	count := map[string]int{}
	for _, t := range req.Topics {
		count[t.Topic]++
	}
	for _, t := range req.Topics {
		if count[t.Topic] > 1 {
			// The controller answers a name given twice with one
			// INVALID_REQUEST and creates neither, as Kafka does.
			keep = append(keep, t)
			continue
		}
		rf := int(t.ReplicationFactor)
		if rf == -1 {
			rf = int(b.cfg.Controller.DefaultReplicationFactor)
		}
		for _, a := range t.ReplicaAssignment {
			rf = len(a.Replicas)
		}
		switch {
		case t.Topic == offsetsTopic:
			refused[t.Topic] = refusal{kerr.InvalidRequest.Code, kmsg.StringPtr("Creation of internal topic " + offsetsTopic + " is prohibited.")}
		case rf > 1:
			refused[t.Topic] = refusal{kerr.InvalidReplicationFactor.Code, kmsg.StringPtr(fmt.Sprintf("Replication factor %d: this broker does not replicate partitions yet; use 1.", rf))}
		default:
			keep = append(keep, t)
			continue
		}
		refusedTopics = append(refusedTopics, t)
	}
	if len(refusedTopics) > 0 {
		check := *req
		check.Topics, check.ValidateOnly = refusedTopics, true
		out, _, ok := b.forward(ctx, rq, &check)
		if !ok {
			return
		}
		for _, t := range out.(*kmsg.CreateTopicsResponse).Topics {
			if _, ok := refused[t.Topic]; ok && t.ErrorCode != 0 {
				refused[t.Topic] = refusal{t.ErrorCode, t.ErrorMessage}
			}
		}
	}
	fwd := *req
	fwd.Topics = keep
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	if len(keep) > 0 {
		out, _, ok := b.forward(ctx, rq, &fwd)
		if !ok {
			return
		}
		resp = out.(*kmsg.CreateTopicsResponse)
	}
	for _, t := range req.Topics {
		if r, ok := refused[t.Topic]; ok {
			rt := kmsg.NewCreateTopicsResponseTopic()
			rt.Topic, rt.ErrorCode, rt.ErrorMessage = t.Topic, r.code, r.msg
			resp.Topics = append(resp.Topics, rt)
		}
	}
	b.waitForImage(ctx, func(im *raft.Image) bool {
		for _, t := range resp.Topics {
			if _, ok := im.Names[t.Topic]; t.ErrorCode == 0 && !req.ValidateOnly && !ok {
				return false
			}
		}
		return true
	})
	rq.reply(resp)
}

// The admin handlers answer once this broker's published image shows the
// change, so a client that asks the same broker next reads its own write.

func (b *Broker) handleDeleteTopics(rq *request, req *kmsg.DeleteTopicsRequest) {
	ctx := rq.ctx(req.TimeoutMillis)
	out, _, ok := b.forward(ctx, rq, req)
	if !ok {
		return
	}
	resp := out.(*kmsg.DeleteTopicsResponse)
	b.waitForImage(ctx, func(im *raft.Image) bool {
		for _, t := range resp.Topics {
			if t.ErrorCode != 0 {
				continue
			}
			if t.Topic != nil {
				if _, ok := im.Names[*t.Topic]; ok {
					return false
				}
			}
			if _, ok := im.Topics[raft.UUID(t.TopicID)]; ok {
				return false
			}
		}
		return true
	})
	rq.reply(resp)
}

func (b *Broker) handleCreatePartitions(rq *request, req *kmsg.CreatePartitionsRequest) {
	ctx := rq.ctx(req.TimeoutMillis)
	out, _, ok := b.forward(ctx, rq, req)
	if !ok {
		return
	}
	resp := out.(*kmsg.CreatePartitionsResponse)
	want := map[string]int{}
	for _, t := range req.Topics {
		want[t.Topic] = int(t.Count)
	}
	if !req.ValidateOnly {
		b.waitForImage(ctx, func(im *raft.Image) bool {
			for _, t := range resp.Topics {
				if ti, ok := im.Topic(t.Topic); t.ErrorCode == 0 && (!ok || len(ti.Partitions) < want[t.Topic]) {
					return false
				}
			}
			return true
		})
	}
	rq.reply(resp)
}

func (b *Broker) handleIncrementalAlterConfigs(rq *request, req *kmsg.IncrementalAlterConfigsRequest) {
	ctx := rq.ctx(0)
	// Forwarded at v1 whatever the client's version (v0 has the same
	// fields), so that a remote controller's answer carries the metadata
	// offset in its flexible header.
	fwd := *req
	fwd.Version = max(fwd.Version, 1)
	out, offset, ok := b.forward(ctx, rq, &fwd)
	if !ok {
		return
	}
	resp := out.(*kmsg.IncrementalAlterConfigsResponse)
	if !req.ValidateOnly {
		// The image at the offset the controller answered at holds every
		// change the response reports, whatever its op (SET, DELETE,
		// APPEND, SUBTRACT), and any decided before it.
		b.waitForImage(ctx, func(im *raft.Image) bool { return im.Offset >= offset })
	}
	rq.reply(resp)
}

// handleAlterConfigs is the legacy AlterConfigs (sarama's and kafka-go's
// admin clients): each resource's configs become exactly those given (see
// raft.Controller.AlterConfigs). Forwarded and answered as
// IncrementalAlterConfigs is.
func (b *Broker) handleAlterConfigs(rq *request, req *kmsg.AlterConfigsRequest) {
	ctx := rq.ctx(0)
	fwd := *req
	fwd.Version = 2 // the first flexible version: its answer carries the metadata offset
	out, offset, ok := b.forward(ctx, rq, &fwd)
	if !ok {
		return
	}
	if !req.ValidateOnly {
		b.waitForImage(ctx, func(im *raft.Image) bool { return im.Offset >= offset })
	}
	rq.reply(out)
}

// handleUnregisterBroker removes a broker taken out of the cluster for
// good from the metadata (kafka-cluster.sh unregister, Admin's
// unregisterBroker): forwarded to the active controller, and answered
// once this broker's image no longer lists it, so Metadata and
// DescribeCluster from here agree.
func (b *Broker) handleUnregisterBroker(rq *request, req *kmsg.UnregisterBrokerRequest) {
	ctx := rq.ctx(0)
	out, offset, ok := b.forward(ctx, rq, req)
	if !ok {
		return
	}
	if out.(*kmsg.UnregisterBrokerResponse).ErrorCode == 0 {
		b.waitForImage(ctx, func(im *raft.Image) bool { return im.Offset >= offset })
	}
	rq.reply(out)
}

// forward sends req, at its version, to the active controller and returns
// its response (at the client's version) and the metadata offset it
// reflects (see Broker.controllerAt), waiting until ctx ends (the
// request's timeout, which bounds the whole handler). When no controller
// answers in time, every entry of the response carries REQUEST_TIMED_OUT
// (ok is then still true); ok is false only when the broker is closing and
// nothing can be answered.
func (b *Broker) forward(ctx context.Context, rq *request, req kmsg.Request) (kmsg.Response, uint64, bool) {
	out, offset, err := b.controllerAt(ctx, req)
	if err != nil {
		rq.log().Warn("forwarding to the controller", "err", err)
		out, offset = raft.ErrorResponse(req, kerr.RequestTimedOut.Code), 0
	}
	out.SetVersion(rq.version)
	return out, offset, true
}
