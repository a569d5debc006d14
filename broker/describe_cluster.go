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
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = clusterOperations
	}
	if req.EndpointType != 1 {
		// Only brokers are described here (v0 has no endpoint type: it
		// decodes as kmsg's default, brokers). Kafka's codes: controllers
		// are the other listener's (MISMATCHED_ENDPOINT_TYPE), any other
		// type is unknown (UNSUPPORTED_ENDPOINT_TYPE).
		code, msg := kerr.UnsupportedEndpointType, "Unsupported endpoint type "+strconv.Itoa(int(req.EndpointType))
		if req.EndpointType == 2 {
			code, msg = kerr.MismatchedEndpointType, "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER"
		}
		resp.ErrorCode, resp.ErrorMessage = code.Code, kmsg.StringPtr(msg)
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
