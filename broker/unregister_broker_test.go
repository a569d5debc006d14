package broker_test

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/broker"
	"gregor/internal/testcluster"
	"gregor/raft"
)

// TestUnregisterBroker: a broker-only node taken out of the cluster is
// unregistered as in KRaft: the controller drops its registration, so
// Metadata and DescribeCluster stop listing it, and it leaves the quorum's
// non-voters; an id not registered gets BROKER_ID_NOT_REGISTERED.
func TestUnregisterBroker(t *testing.T) {
	c := testcluster.StartMixed(t, 1, 1, nil)
	until(t, "broker 2 is a non-voter", func() bool {
		ids, err := broker.QuorumObservers(c.Brokers[0])
		return err == nil && slices.Equal(ids, []int32{2})
	})
	c.Stop(1)
	c.WaitForImage(func(im *raft.Image) bool { b := im.Brokers[2]; return b != nil && b.Fenced })

	r := dialRaw(t, c.Addrs()[0])
	unregister := func(id int32) *kmsg.UnregisterBrokerResponse {
		req := kmsg.NewPtrUnregisterBrokerRequest()
		req.BrokerID = id
		return r.do(req).(*kmsg.UnregisterBrokerResponse)
	}
	if resp := unregister(9); resp.ErrorCode != kerr.BrokerIDNotRegistered.Code {
		t.Errorf("unregistering broker 9: %v, want BROKER_ID_NOT_REGISTERED", kerr.ErrorForCode(resp.ErrorCode))
	}
	if resp := unregister(2); resp.ErrorCode != 0 {
		t.Fatalf("unregistering broker 2: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	// Answered once the answering broker's image has it.
	if _, ok := c.Brokers[0].Image().Brokers[2]; ok {
		t.Error("broker 2 is still registered in the answering broker's image")
	}
	dc := kmsg.NewPtrDescribeClusterRequest()
	for _, b := range r.do(dc).(*kmsg.DescribeClusterResponse).Brokers {
		if b.NodeID == 2 {
			t.Error("DescribeCluster still lists broker 2")
		}
	}
	until(t, "broker 2 leaves the quorum's non-voters", func() bool {
		ids, err := broker.QuorumObservers(c.Brokers[0])
		return err == nil && len(ids) == 0
	})
	// A removal from the non-voters that failed after the unregistration
	// committed (leadership lost in between) is finished by the client's
	// retry, which is answered BROKER_ID_NOT_REGISTERED.
	if err := broker.AddQuorumObserver(c.Brokers[0], 2, c.Config(1).Quorum.Addr); err != nil {
		t.Fatal(err)
	}
	if resp := unregister(2); resp.ErrorCode != kerr.BrokerIDNotRegistered.Code {
		t.Errorf("unregistering broker 2 again: %v, want BROKER_ID_NOT_REGISTERED", kerr.ErrorForCode(resp.ErrorCode))
	}
	if ids, err := broker.QuorumObservers(c.Brokers[0]); err != nil || len(ids) != 0 {
		t.Errorf("non-voters after the retry: %v, %v; want none", ids, err)
	}
}
