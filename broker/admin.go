package broker

import (
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
	// Until follower replication lands, a partition has one replica: refuse
	// more rather than acknowledge data only one broker holds.
	var keep []kmsg.CreateTopicsRequestTopic
	type refusal struct {
		code int16
		msg  string
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
		if t.Topic == offsetsTopic {
			// Its partition count and compaction are the group
			// coordinator's (offsets.topic.*): FindCoordinator makes it.
			refused[t.Topic] = refusal{kerr.InvalidRequest.Code, "Creation of internal topic " + offsetsTopic + " is prohibited."}
			continue
		}
		rf := int(t.ReplicationFactor)
		if rf == -1 {
			rf = int(b.cfg.Controller.DefaultReplicationFactor)
		}
		for _, a := range t.ReplicaAssignment {
			rf = len(a.Replicas)
		}
		if rf > 1 {
			refused[t.Topic] = refusal{kerr.InvalidReplicationFactor.Code, fmt.Sprintf("Replication factor %d: this broker does not replicate partitions yet; use 1.", rf)}
			continue
		}
		keep = append(keep, t)
	}
	fwd := *req
	fwd.Topics = keep
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	if len(keep) > 0 {
		out, ok := b.forward(rq, &fwd)
		if !ok {
			return
		}
		resp = out.(*kmsg.CreateTopicsResponse)
	}
	for _, t := range req.Topics {
		if r, ok := refused[t.Topic]; ok {
			rt := kmsg.NewCreateTopicsResponseTopic()
			rt.Topic, rt.ErrorCode, rt.ErrorMessage = t.Topic, r.code, &r.msg
			resp.Topics = append(resp.Topics, rt)
		}
	}
	b.waitForImage(rq.ctx(req.TimeoutMillis), func(im *raft.Image) bool {
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
	out, ok := b.forward(rq, req)
	if !ok {
		return
	}
	resp := out.(*kmsg.DeleteTopicsResponse)
	b.waitForImage(rq.ctx(req.TimeoutMillis), func(im *raft.Image) bool {
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
	out, ok := b.forward(rq, req)
	if !ok {
		return
	}
	resp := out.(*kmsg.CreatePartitionsResponse)
	want := map[string]int{}
	for _, t := range req.Topics {
		want[t.Topic] = int(t.Count)
	}
	if !req.ValidateOnly {
		b.waitForImage(rq.ctx(req.TimeoutMillis), func(im *raft.Image) bool {
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
	out, ok := b.forward(rq, req)
	if !ok {
		return
	}
	resp := out.(*kmsg.IncrementalAlterConfigsResponse)
	if !req.ValidateOnly {
		// The controller applied every resource that succeeded in one
		// proposal: once the image has the last such SET or DELETE of a
		// topic config, it has them all.
		b.waitForImage(rq.ctx(0), func(im *raft.Image) bool {
			for i, res := range req.Resources {
				if i >= len(resp.Resources) || resp.Resources[i].ErrorCode != 0 || res.ResourceType != kmsg.ConfigResourceTypeTopic {
					continue
				}
				t, ok := im.Topic(res.ResourceName)
				if !ok {
					continue
				}
				for _, c := range res.Configs {
					v, set := t.Configs[c.Name]
					switch c.Op {
					case kmsg.IncrementalAlterConfigOpSet:
						if !set || c.Value == nil || v != *c.Value {
							return false
						}
					case kmsg.IncrementalAlterConfigOpDelete:
						if set {
							return false
						}
					}
				}
			}
			return true
		})
	}
	rq.reply(resp)
}

// forward sends req to the active controller and returns its response. When
// no controller answers in time, every entry of the response carries
// REQUEST_TIMED_OUT (ok is then still true); ok is false only when the broker
// is closing and nothing can be answered.
func (b *Broker) forward(rq *request, req kmsg.Request) (kmsg.Response, bool) {
	timeout := int32(b.cfg.RequestTimeout.Milliseconds())
	if t, ok := req.(interface{ Timeout() int32 }); ok && t.Timeout() > 0 {
		timeout = t.Timeout()
	}
	req.SetVersion(rq.version)
	out, err := b.controller(rq.ctx(timeout), req)
	if err != nil {
		rq.log().Warn("forwarding to the controller", "err", err)
		return raft.ErrorResponse(req, kerr.RequestTimedOut.Code), true
	}
	out.SetVersion(rq.version)
	return out, true
}
