package broker

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
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
		// Controllers are not described to clients.
		resp.ErrorCode = kerr.InvalidRequest.Code
		resp.ErrorMessage = kmsg.StringPtr("Unsupported endpoint type " + strconv.Itoa(int(req.EndpointType)))
		rq.reply(resp)
		return
	}
	for _, lb := range liveBrokers(im) {
		rb := kmsg.NewDescribeClusterResponseBroker()
		rb.NodeID, rb.Host, rb.Port, rb.Rack = lb.id, lb.host, lb.port, lb.rack
		resp.Brokers = append(resp.Brokers, rb)
	}
	rq.reply(resp)
}
