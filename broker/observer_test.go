package broker_test

import (
	"slices"
	"testing"

	"gregor/broker"
	"gregor/internal/testcluster"
)

// TestBrokerOnlyNodeRejoinsTheNonVoters: a registered broker-only node that
// the quorum's non-voters lack (the add after its registration failed, as
// when leadership moves at that moment) is added back when the active
// controller decides its next heartbeat, and receives the metadata log
// again. Before, only the request handler of its registration added it:
// the broker's heartbeats went on succeeding, so it never registered again,
// and no metadata change reached it any more.
func TestBrokerOnlyNodeRejoinsTheNonVoters(t *testing.T) {
	c := testcluster.StartMixed(t, 1, 1, nil)
	observers := func() []int32 {
		ids, err := broker.QuorumObservers(c.Brokers[0])
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	until(t, "broker 2 is a non-voter", func() bool { return slices.Equal(observers(), []int32{2}) })
	if err := broker.RemoveQuorumObserver(c.Brokers[0], 2); err != nil {
		t.Fatal(err)
	}
	createTopic(t, c, "later", 2, nil) // waits for every broker, 2 included, to have it
	if ids := observers(); !slices.Equal(ids, []int32{2}) {
		t.Fatalf("non-voters %v, want [2]", ids)
	}
}
