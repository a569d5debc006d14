package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleDescribeCluster lists the live brokers (KIP-700), as Metadata does.
func (b *Broker) handleDescribeCluster(rq *request, req *kmsg.DescribeClusterRequest) {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	im := b.image()
	resp.ClusterID = b.cfg.ClusterID
	resp.ControllerID = b.cfg.NodeID
	resp.EndpointType = 1 // brokers
	if req.EndpointType != 0 && req.EndpointType != 1 {
		resp.ErrorCode = 42 // INVALID_REQUEST: controllers are not described to clients
		resp.ErrorMessage = kmsg.StringPtr("Unsupported endpoint type " + string(rune('0'+req.EndpointType)))
		rq.reply(resp)
		return
	}
	for _, id := range sortedBrokerIDs(im) {
		bi := im.Brokers[id]
		if bi.Fenced {
			continue
		}
		ep, ok := endpoint(bi)
		if !ok {
			continue
		}
		rb := kmsg.NewDescribeClusterResponseBroker()
		rb.NodeID, rb.Host, rb.Port = bi.ID, ep.Host, int32(ep.Port)
		if bi.Rack != "" {
			rb.Rack = &bi.Rack
		}
		resp.Brokers = append(resp.Brokers, rb)
	}
	rq.reply(resp)
}
