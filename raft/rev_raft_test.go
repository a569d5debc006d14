package raft

import (
	"context"
	"errors"
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

// TestRevUncleanElectionEnabledOnOfflinePartition: a partition whose last
// ISR member is gone stays offline with unclean election off. An operator
// then sets unclean.leader.election.enable=true on the topic to bring it
// back from its live replicas (the documented recovery step). KRaft's
// QuorumController schedules maybeElectUncleanLeaders after every write
// while some partition is leaderless, and reruns it every
// uncleanLeaderElectionCheckIntervalMs (5 min): the partition gets a live
// replica as leader (ReplicationControlManager.maybeElectUncleanLeaders).
// Gregor elects uncleanly only while fencing or unfencing a broker, so the
// partition stays offline for as long as the dead broker stays away.
func TestRevUncleanElectionEnabledOnOfflinePartition(t *testing.T) {
	sc := newServiceCluster(t)
	epochs := map[int32]int64{}
	for id := int32(1); id <= 3; id++ {
		epochs[id] = sc.register(id)
	}
	for id := int32(1); id <= 3; id++ {
		for range 3 {
			if !sc.heartbeat(id, epochs[id]).IsFenced {
				break
			}
		}
	}
	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "t", -1, -1
	ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	ra.Partition, ra.Replicas = 0, []int32{3, 1, 2}
	ct.ReplicaAssignment = append(ct.ReplicaAssignment, ra)
	create.Topics = append(create.Topics, ct)
	if cr := sc.handle(create).(*kmsg.CreateTopicsResponse); cr.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %s", codeName(cr.Topics[0].ErrorCode))
	}
	// Leader 3 shrinks the ISR to itself (its followers lag).
	im := sc.active().node.Image()
	topic, _ := im.Topic("t")
	p := topic.Partitions[0]
	ap := kmsg.NewPtrAlterPartitionRequest()
	ap.Version = 3
	ap.BrokerID, ap.BrokerEpoch = 3, epochs[3]
	apt := kmsg.NewAlterPartitionRequestTopic()
	apt.TopicID = topic.ID
	app := kmsg.NewAlterPartitionRequestTopicPartition()
	app.LeaderEpoch, app.PartitionEpoch = p.LeaderEpoch, p.PartitionEpoch
	e := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
	e.BrokerID, e.BrokerEpoch = 3, epochs[3]
	app.NewEpochISR = append(app.NewEpochISR, e)
	apt.Partitions = append(apt.Partitions, app)
	ap.Topics = append(ap.Topics, apt)
	if r := sc.handle(ap).(*kmsg.AlterPartitionResponse); r.ErrorCode != 0 || r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("alter partition: %+v", r)
	}
	// Broker 3 dies: fenced once its session lapses; t-0 is offline.
	for round := 0; ; round++ {
		sc.clock.advance(6000)
		sc.heartbeat(1, epochs[1])
		sc.heartbeat(2, epochs[2])
		sc.clock.advance(4000)
		sc.checkSessions()
		if im = sc.active().node.Image(); im.Brokers[3].Fenced {
			break
		}
		if round == 4 {
			t.Fatal("broker 3 was not fenced")
		}
	}
	topic, _ = im.Topic("t")
	if l := topic.Partitions[0].Leader; l != NoLeader {
		t.Fatalf("t-0 led by %d with its only ISR member fenced", l)
	}

	alter := alterConfig(configResource(kmsg.ConfigResourceTypeTopic, "t", kmsg.IncrementalAlterConfigOpSet, uncleanLeaderElectionKey, "true"))
	if r := sc.handle(alter).(*kmsg.IncrementalAlterConfigsResponse); r.Resources[0].ErrorCode != 0 {
		t.Fatalf("alter configs: %s", codeName(r.Resources[0].ErrorCode))
	}
	// Ten minutes pass (twice Kafka's check interval); brokers 1 and 2
	// heartbeat all along, and the controller checks its brokers.
	for range 120 {
		sc.clock.advance(5000)
		sc.heartbeat(1, epochs[1])
		sc.heartbeat(2, epochs[2])
		if err := sc.ctrls[sc.active().id].CheckSessions(context.Background()); err != nil && !errorsIsNotController(err) {
			t.Fatal(err)
		}
	}
	im = sc.active().node.Image()
	topic, _ = im.Topic("t")
	if p := topic.Partitions[0]; p.Leader == NoLeader {
		t.Fatalf("t-0 still offline (isr %v) 10 minutes after unclean.leader.election.enable=true with live replicas 1 and 2; Kafka elects one", p.ISR)
	}
}

func errorsIsNotController(err error) bool {
	return errors.Is(err, ErrNotController)
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
