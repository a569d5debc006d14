package raft

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Review tests (rev-raft): each states what Apache Kafka's KRaft controller
// does and fails where Gregor's differs.

// revHarness makes a controller harness with brokers 1..n registered and
// unfenced at time 0.
func revHarness(t *testing.T, n int32, cfg ControllerConfig) *controllerHarness {
	t.Helper()
	cfg.ClusterID = testClusterID
	h, err := newControllerHarness(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for id := int32(1); id <= n; id++ {
		recs, resp := h.c.RegisterBroker(h.im, registrationRequest(id, 1, ""), h.now)
		if resp.ErrorCode != 0 {
			t.Fatalf("register %d: %s", id, codeName(resp.ErrorCode))
		}
		if err := h.apply(recs); err != nil {
			t.Fatal(err)
		}
	}
	for id := int32(1); id <= n; id++ {
		revHeartbeat(t, h, id, false)
	}
	return h
}

// revHeartbeat sends a caught-up heartbeat from broker id (asking to be
// fenced with fence) and applies its records.
func revHeartbeat(t *testing.T, h *controllerHarness, id int32, fence bool) *kmsg.BrokerHeartbeatResponse {
	t.Helper()
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.BrokerID, req.BrokerEpoch = id, h.im.Brokers[id].Epoch
	req.CurrentMetadataOffset = int64(h.im.Offset)
	req.WantFence = fence
	recs, resp := h.c.Heartbeat(h.im, req, h.now)
	if resp.ErrorCode != 0 {
		t.Fatalf("heartbeat %d: %s", id, codeName(resp.ErrorCode))
	}
	if err := h.apply(recs); err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestRevStartNodeFailureClosesListener: a StartNode that fails once it has
// opened its TCP transport must close it again. A config Validate accepts
// (HeartbeatTimeout 1 s, ElectionTimeout left at its 150 ms default) is
// refused by hashicorp/raft's NewRaft (ElectionTimeout < HeartbeatTimeout),
// and the error path closes the stores but not the transport: the raft
// listener stays bound, so the address cannot be used again in the process.
func TestRevStartNodeFailureClosesListener(t *testing.T) {
	addr := freeLoopbackAddr(t)
	cfg := NodeConfig{NodeID: 1, Roles: "controller", Voters: []Voter{{ID: 1, Addr: addr}}, Addr: addr,
		Dir: t.TempDir(), HeartbeatTimeout: time.Second}
	n, err := StartNode(cfg, NodeOptions{Logger: slog.New(slog.DiscardHandler), RaftLog: io.Discard})
	if err == nil {
		n.Shutdown()
		t.Fatal("StartNode accepted ElectionTimeout below HeartbeatTimeout")
	}
	t.Logf("StartNode: %v", err)
	l, lerr := net.Listen("tcp", addr)
	if lerr != nil {
		t.Fatalf("after a failed StartNode the raft address %s is still bound: %v", addr, lerr)
	}
	l.Close()
}
