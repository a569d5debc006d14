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

// TestRevPreferredLeaderNeverRestored: Kafka's controller moves leadership
// back to each partition's preferred replica (the first in its assignment)
// once that replica is back in the ISR: auto.leader.rebalance.enable is true
// by default and QuorumController runs maybeBalancePartitionLeaders
// (ReplicationControlManager, Election.PREFERRED) every
// leader.imbalance.check.interval.seconds (300 s). Gregor has no preferred
// election at all (nor the ElectLeaders API), so after a broker restarts its
// partitions stay led by the others forever, and a rolling restart leaves
// all leaders piled on the brokers that restarted first.
func TestRevPreferredLeaderNeverRestored(t *testing.T) {
	h := revHarness(t, 2, ControllerConfig{BrokerSessionTimeoutMs: 1000})
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 7
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "t", -1, -1
	ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	ra.Partition, ra.Replicas = 0, []int32{1, 2}
	ct.ReplicaAssignment = append(ct.ReplicaAssignment, ra)
	req.Topics = append(req.Topics, ct)
	recs, resp := h.c.CreateTopics(h.im, req, h.newID)
	if resp.Topics[0].ErrorCode != 0 {
		t.Fatal(codeName(resp.Topics[0].ErrorCode))
	}
	if err := h.apply(recs); err != nil {
		t.Fatal(err)
	}
	// Broker 1 (preferred leader) bounces: fenced, leadership moves to 2.
	revHeartbeat(t, h, 1, true)
	revHeartbeat(t, h, 1, false)
	tp, _ := h.im.Topic("t")
	if tp.Partitions[0].Leader != 2 {
		t.Fatalf("leader %d after broker 1 was fenced", tp.Partitions[0].Leader)
	}
	// Leader 2 takes broker 1 back into the ISR once it has caught up.
	p := tp.Partitions[0]
	ap := kmsg.NewPtrAlterPartitionRequest()
	ap.Version = 3
	ap.BrokerID, ap.BrokerEpoch = 2, h.im.Brokers[2].Epoch
	apt := kmsg.NewAlterPartitionRequestTopic()
	apt.TopicID = tp.ID
	app := kmsg.NewAlterPartitionRequestTopicPartition()
	app.LeaderEpoch, app.PartitionEpoch = p.LeaderEpoch, p.PartitionEpoch
	for _, id := range []int32{2, 1} {
		e := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
		e.BrokerID, e.BrokerEpoch = id, h.im.Brokers[id].Epoch
		app.NewEpochISR = append(app.NewEpochISR, e)
	}
	apt.Partitions = append(apt.Partitions, app)
	ap.Topics = append(ap.Topics, apt)
	recs, aresp := h.c.AlterPartition(h.im, ap)
	if aresp.ErrorCode != 0 || aresp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("alter partition: %+v", aresp)
	}
	if err := h.apply(recs); err != nil {
		t.Fatal(err)
	}
	// Ten minutes of heartbeats and session checks.
	for range 600 {
		h.now += 1000
		revHeartbeat(t, h, 1, false)
		revHeartbeat(t, h, 2, false)
		if err := h.apply(h.c.FenceExpired(h.im, h.now)); err != nil {
			t.Fatal(err)
		}
	}
	tp, _ = h.im.Topic("t")
	if p := tp.Partitions[0]; p.Leader != 1 {
		t.Fatalf("t-0 replicas %v isr %v still led by %d ten minutes after preferred replica 1 rejoined the ISR; Kafka moves it back to 1", p.Replicas, p.ISR, p.Leader)
	}
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
