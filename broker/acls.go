package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// noAuthorizer is what Kafka's AclApis answers every ACL request with on a
// broker without authorizer.class.name, which is what a Gregor broker is:
// it has no authentication, so there are no principals to authorize.
// Answering SECURITY_DISABLED rather than not advertising the APIs lets
// the admin tools and UIs that list ACLs (kafka-acls.sh, AKHQ, kafka-ui)
// tell "no ACLs here" from an old broker.
const noAuthorizer = "No Authorizer is configured."

func (b *Broker) handleDescribeACLs(rq *request, req *kmsg.DescribeACLsRequest) {
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	resp.ErrorCode, resp.ErrorMessage = kerr.SecurityDisabled.Code, kmsg.StringPtr(noAuthorizer)
	rq.reply(resp)
}

func (b *Broker) handleCreateACLs(rq *request, req *kmsg.CreateACLsRequest) {
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	for range req.Creations {
		r := kmsg.NewCreateACLsResponseResult()
		r.ErrorCode, r.ErrorMessage = kerr.SecurityDisabled.Code, kmsg.StringPtr(noAuthorizer)
		resp.Results = append(resp.Results, r)
	}
	rq.reply(resp)
}

func (b *Broker) handleDeleteACLs(rq *request, req *kmsg.DeleteACLsRequest) {
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	for range req.Filters {
		r := kmsg.NewDeleteACLsResponseResult()
		r.ErrorCode, r.ErrorMessage = kerr.SecurityDisabled.Code, kmsg.StringPtr(noAuthorizer)
		resp.Results = append(resp.Results, r)
	}
	rq.reply(resp)
}
