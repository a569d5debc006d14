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
	var offset uint64
	if len(keep) > 0 {
		out, at, ok := b.forward(ctx, rq, &fwd)
		if !ok {
			return
		}
		resp, offset = out.(*kmsg.CreateTopicsResponse), at
	}
	for _, t := range req.Topics {
		if r, ok := refused[t.Topic]; ok {
			rt := kmsg.NewCreateTopicsResponseTopic()
			rt.Topic, rt.ErrorCode, rt.ErrorMessage = t.Topic, r.code, r.msg
			resp.Topics = append(resp.Topics, rt)
		}
	}
	b.awaitChange(ctx, offset, func(im *raft.Image) bool {
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
	out, offset, ok := b.forward(ctx, rq, req)
	if !ok {
		return
	}
	resp := out.(*kmsg.DeleteTopicsResponse)
	b.awaitChange(ctx, offset, func(im *raft.Image) bool {
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
	out, offset, ok := b.forward(ctx, rq, req)
	if !ok {
		return
	}
	resp := out.(*kmsg.CreatePartitionsResponse)
	want := map[string]int{}
	for _, t := range req.Topics {
		want[t.Topic] = int(t.Count)
	}
	if !req.ValidateOnly {
		b.awaitChange(ctx, offset, func(im *raft.Image) bool {
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
	// At v1 whatever the client's version (v0 has the same fields).
	fwd := *req
	fwd.Version = max(fwd.Version, 1)
	b.forwardAndAwait(rq, &fwd, func(kmsg.Response) bool { return !req.ValidateOnly })
}

// handleAlterConfigs is the legacy AlterConfigs (sarama's and kafka-go's
// admin clients): each resource's configs become exactly those given (see
// raft.Controller.AlterConfigs).
func (b *Broker) handleAlterConfigs(rq *request, req *kmsg.AlterConfigsRequest) {
	fwd := *req
	fwd.Version = 2 // the first flexible version
	b.forwardAndAwait(rq, &fwd, func(kmsg.Response) bool { return !req.ValidateOnly })
}

// handleUnregisterBroker removes a broker taken out of the cluster for
// good from the metadata (kafka-cluster.sh unregister, Admin's
// unregisterBroker), so that Metadata and DescribeCluster from here stop
// listing it when it is answered.
func (b *Broker) handleUnregisterBroker(rq *request, req *kmsg.UnregisterBrokerRequest) {
	b.forwardAndAwait(rq, req, func(out kmsg.Response) bool {
		return out.(*kmsg.UnregisterBrokerResponse).ErrorCode == 0
	})
}

// forwardAndAwait forwards req to the active controller and, when changed
// says the response reports a change, answers once this broker's image has
// reached the metadata offset the controller answered at: that image holds
// every change the response reports (whatever the op: a config's SET,
// DELETE, APPEND or SUBTRACT) and any decided before it, so a client that
// asks this broker next reads its own write. req must be at a flexible
// version: a remote controller's answer carries the offset in its header.
func (b *Broker) forwardAndAwait(rq *request, req kmsg.Request, changed func(kmsg.Response) bool) {
	ctx := rq.ctx(0)
	out, offset, ok := b.forward(ctx, rq, req)
	if !ok {
		return
	}
	if changed(out) {
		// Without an offset (the controller's answer did not come)
		// there is nothing to wait for.
		b.awaitChange(ctx, offset, func(*raft.Image) bool { return true })
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
