package raft

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// serviceCluster is a 3-voter in-memory quorum with a QuorumController on
// every node and one fake clock.
type serviceCluster struct {
	*testCluster
	clock *fakeMs
	cfg   ControllerConfig
	ctrls map[int32]*QuorumController
}

// fakeMs is a clock the test moves by hand.
type fakeMs struct{ ms atomic.Int64 }

func (f *fakeMs) now() time.Time  { return time.UnixMilli(f.ms.Load()) }
func (f *fakeMs) advance(d int64) { f.ms.Add(d) }

// newServiceCluster starts the cluster, its controllers' config
// (broker.session.timeout.ms 9000) changed by each of configure.
func newServiceCluster(t *testing.T, configure ...func(*ControllerConfig)) *serviceCluster {
	sc := &serviceCluster{testCluster: newTestCluster(t, 3, false), clock: &fakeMs{}, ctrls: map[int32]*QuorumController{},
		cfg: ControllerConfig{ClusterID: "test-cluster", BrokerSessionTimeoutMs: 9000}}
	for _, f := range configure {
		f(&sc.cfg)
	}
	sc.clock.ms.Store(1_000_000)
	for id := range sc.nodes {
		sc.startController(id)
	}
	return sc
}

func (sc *serviceCluster) startController(id int32) {
	var next byte
	q, err := NewQuorumController(sc.nodes[id].node, sc.cfg, QuorumControllerOptions{
		Now:          sc.clock.now,
		NewID:        func() UUID { next++; return UUID{0xaa, byte(id), next} },
		Configs:      fakeConfigValidator{},
		ObserverAddr: testObserverAddr,
	})
	if err != nil {
		sc.t.Fatal(err)
	}
	sc.ctrls[id] = q
	sc.t.Cleanup(q.Close)
}

// handle sends req to the active controller's shell.
func (sc *serviceCluster) handle(req kmsg.Request) kmsg.Response {
	sc.t.Helper()
	resp, _ := sc.handleAt(req)
	return resp
}

// handleAt sends req to the active controller's shell and returns the
// response and the offset HandleAt answers at.
func (sc *serviceCluster) handleAt(req kmsg.Request) (kmsg.Response, uint64) {
	sc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for range 20 {
		active := sc.active()
		resp, offset, err := sc.ctrls[active.id].HandleAt(ctx, req)
		if err != nil {
			sc.t.Fatal(err)
		}
		if !isNotController(resp) {
			return resp, offset
		}
	}
	sc.t.Fatal("the active controller kept changing")
	return nil, 0
}

// checkSessions has the active controller fence the brokers whose sessions
// expired, on the controller active after a failover if one comes first.
func (sc *serviceCluster) checkSessions() {
	sc.t.Helper()
	sc.timed((*QuorumController).CheckSessions)
}

// tick has the active controller do the timed work that is due (Tick), on
// the controller active after a failover if one comes first. Its return
// also tells that the active shell has finished whatever it did before.
func (sc *serviceCluster) tick() {
	sc.t.Helper()
	sc.timed((*QuorumController).Tick)
}

func (sc *serviceCluster) timed(f func(*QuorumController, context.Context) error) {
	sc.t.Helper()
	for range 20 {
		err := f(sc.ctrls[sc.active().id], context.Background())
		if err == nil {
			return
		}
		if !errors.Is(err, ErrNotController) {
			sc.t.Fatal(err)
		}
	}
	sc.t.Fatal("the active controller kept changing")
}

// startBrokers registers brokers 1..n and heartbeats each until unfenced; it
// returns their epochs.
func (sc *serviceCluster) startBrokers(n int32) map[int32]int64 {
	sc.t.Helper()
	epochs := map[int32]int64{}
	for id := int32(1); id <= n; id++ {
		epochs[id] = sc.register(id)
	}
	for id := int32(1); id <= n; id++ {
		for range 3 { // caught up once its metadata offset covers its registration
			if !sc.heartbeat(id, epochs[id]).IsFenced {
				break
			}
		}
	}
	return epochs
}

// aliveFor moves the clock on by ms in steps of a second, the brokers
// of epochs heartbeating at every step, the active controller doing its
// timed work (Tick) after each.
func (sc *serviceCluster) aliveFor(ms int64, epochs map[int32]int64) {
	sc.t.Helper()
	for ; ms > 0; ms -= 1000 {
		sc.clock.advance(min(ms, 1000))
		for _, id := range slices.Sorted(maps.Keys(epochs)) {
			sc.heartbeat(id, epochs[id])
		}
		sc.tick()
	}
}

// offlinePartition creates topic with replicas [3 1 2] and ISR [3] (its
// leader, 3, has shrunk the ISR to itself), then stops broker 3's
// heartbeats until it is fenced: the partition is left without a leader,
// unclean election being off. Brokers 1 and 2 heartbeat all along.
func (sc *serviceCluster) offlinePartition(topic string, epochs map[int32]int64) {
	sc.t.Helper()
	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = topic, -1, -1
	ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	ra.Partition, ra.Replicas = 0, []int32{3, 1, 2}
	ct.ReplicaAssignment = append(ct.ReplicaAssignment, ra)
	create.Topics = append(create.Topics, ct)
	if cr := sc.handle(create).(*kmsg.CreateTopicsResponse); cr.Topics[0].ErrorCode != 0 {
		sc.t.Fatalf("create: %s", codeName(cr.Topics[0].ErrorCode))
	}
	tp, _ := sc.active().node.Image().Topic(topic)
	sc.alterISR(3, epochs, tp.ID, tp.Partitions[0], 3)
	live := maps.Clone(epochs)
	delete(live, 3)
	for round := 0; !sc.active().node.Image().Brokers[3].Fenced; round++ {
		if round == 30 {
			sc.t.Fatal("broker 3 was not fenced")
		}
		sc.aliveFor(1000, live)
	}
	if p := sc.partition(topic, 0); p.Leader != NoLeader {
		sc.t.Fatalf("%s-0 led by %d with its only ISR member fenced", topic, p.Leader)
	}
}

// partition is partition i of topic in the active controller's image.
func (sc *serviceCluster) partition(topic string, i int) *PartitionImage {
	sc.t.Helper()
	tp, ok := sc.active().node.Image().Topic(topic)
	if !ok {
		sc.t.Fatalf("no topic %s", topic)
	}
	return tp.Partitions[i]
}

func isNotController(resp kmsg.Response) bool {
	switch r := resp.(type) {
	case *kmsg.BrokerRegistrationResponse:
		return r.ErrorCode == kerr.NotController.Code
	case *kmsg.BrokerHeartbeatResponse:
		return r.ErrorCode == kerr.NotController.Code
	case *kmsg.CreateTopicsResponse:
		return len(r.Topics) > 0 && r.Topics[0].ErrorCode == kerr.NotController.Code
	case *kmsg.AllocateProducerIDsResponse:
		return r.ErrorCode == kerr.NotController.Code
	case *kmsg.IncrementalAlterConfigsResponse:
		return len(r.Resources) > 0 && r.Resources[0].ErrorCode == kerr.NotController.Code
	}
	return false
}

func (sc *serviceCluster) register(id int32) int64 {
	sc.t.Helper()
	req := kmsg.NewPtrBrokerRegistrationRequest()
	req.BrokerID, req.ClusterID, req.IncarnationID = id, "test-cluster", [16]byte{byte(id), 9}
	l := kmsg.NewBrokerRegistrationRequestListener()
	l.Name, l.Host, l.Port = "PLAINTEXT", "127.0.0.1", uint16(9090+id)
	req.Listeners = append(req.Listeners, l)
	resp := sc.handle(req).(*kmsg.BrokerRegistrationResponse)
	if resp.ErrorCode != 0 || resp.BrokerEpoch <= 0 {
		sc.t.Fatalf("registering broker %d: error %d, epoch %d", id, resp.ErrorCode, resp.BrokerEpoch)
	}
	return resp.BrokerEpoch
}

func (sc *serviceCluster) heartbeat(id int32, epoch int64) *kmsg.BrokerHeartbeatResponse {
	sc.t.Helper()
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.BrokerID, req.BrokerEpoch = id, epoch
	req.CurrentMetadataOffset = int64(sc.active().node.Image().Offset)
	return sc.handle(req).(*kmsg.BrokerHeartbeatResponse)
}

// TestQuorumControllerEndToEnd drives the controller through its Kafka APIs on
// a real quorum: brokers register and are unfenced once caught up, a topic is
// created and spread over them, a broker whose heartbeats stop is fenced and
// loses its leaderships, non-active nodes answer NOT_CONTROLLER, and after a
// failover the new controller carries on.
func TestQuorumControllerEndToEnd(t *testing.T) {
	sc := newServiceCluster(t)
	epochs := map[int32]int64{}
	for id := int32(1); id <= 3; id++ {
		epochs[id] = sc.register(id)
	}
	for id := int32(1); id <= 3; id++ {
		var resp *kmsg.BrokerHeartbeatResponse
		for range 3 { // caught up once its metadata offset covers its registration
			if resp = sc.heartbeat(id, epochs[id]); !resp.IsFenced {
				break
			}
		}
		if resp.ErrorCode != 0 || resp.IsFenced {
			t.Fatalf("broker %d still fenced after heartbeats: error %d", id, resp.ErrorCode)
		}
	}

	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "orders", 6, 3
	create.Topics = append(create.Topics, ct)
	cr := sc.handle(create).(*kmsg.CreateTopicsResponse)
	if len(cr.Topics) != 1 || cr.Topics[0].ErrorCode != 0 {
		t.Fatalf("create topic: %+v", cr.Topics)
	}
	im := sc.active().node.Image()
	topic, ok := im.Topic("orders")
	if !ok || len(topic.Partitions) != 6 {
		t.Fatal("the topic is not in the image")
	}
	if led := im.PartitionsLedBy(3); led != 2 {
		t.Fatalf("broker 3 leads %d of 6 partitions over 3 brokers, want 2", led)
	}

	// A node that is not active answers NOT_CONTROLLER.
	for id, q := range sc.ctrls {
		if id == sc.active().id {
			continue
		}
		resp, err := q.Handle(context.Background(), create)
		if err != nil || !isNotController(resp) {
			t.Fatalf("node %d (not active): %v, %v", id, resp, err)
		}
		break
	}

	// Broker 3 stops heartbeating; the others go on. Past the session
	// timeout it is fenced and its partitions move to ISR members. The
	// quorum runs on the real clock: should it elect a new leader
	// meanwhile (a loaded machine), the new controller gives every broker
	// a whole session before fencing it, so the round is played again.
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
			t.Fatal("broker 3 was not fenced after its session expired")
		}
	}
	if led := im.PartitionsLedBy(3); led != 0 {
		t.Fatalf("fenced broker 3 still leads %d partitions", led)
	}
	topic, _ = im.Topic("orders")
	for i, p := range topic.Partitions {
		if p.Leader == NoLeader || p.Leader == 3 {
			t.Fatalf("partition %d: leader %d", i, p.Leader)
		}
	}

	// Failover: the new active controller serves requests, and does not
	// fence brokers merely because it has not heard from them yet.
	old := sc.active()
	sc.ctrls[old.id].Close()
	sc.kill(old.id)
	sc.checkSessions()
	if sc.active().node.Image().Brokers[1].Fenced {
		t.Fatal("the new controller fenced a live broker it had not heard from yet")
	}
	ct.Topic = "payments"
	create.Topics = []kmsg.CreateTopicsRequestTopic{ct}
	create.Topics[0].ReplicationFactor = 2
	cr = sc.handle(create).(*kmsg.CreateTopicsResponse)
	if cr.Topics[0].ErrorCode != 0 {
		t.Fatalf("create after failover: error %d", cr.Topics[0].ErrorCode)
	}
	// Replication factor 3 with broker 3 fenced: as in KRaft, its third
	// replica goes to broker 3, outside the ISR until it returns. Four
	// replicas are more than the brokers registered.
	ct.Topic, ct.ReplicationFactor = "audit", 3
	create.Topics = []kmsg.CreateTopicsRequestTopic{ct}
	cr = sc.handle(create).(*kmsg.CreateTopicsResponse)
	if cr.Topics[0].ErrorCode != 0 {
		t.Fatalf("rf 3 over 2 unfenced brokers and a fenced one: error %d", cr.Topics[0].ErrorCode)
	}
	topic, _ = sc.active().node.Image().Topic("audit")
	for i, p := range topic.Partitions {
		if len(p.Replicas) != 3 || p.Replicas[2] != 3 || len(p.ISR) != 2 || slices.Contains(p.ISR, 3) || p.Leader != p.Replicas[0] {
			t.Fatalf("audit-%d: %+v, want the fenced broker last, outside the ISR", i, *p)
		}
	}
	ct.Topic, ct.ReplicationFactor = "wide", 4
	create.Topics = []kmsg.CreateTopicsRequestTopic{ct}
	cr = sc.handle(create).(*kmsg.CreateTopicsResponse)
	if cr.Topics[0].ErrorCode != kerr.InvalidReplicationFactor.Code {
		t.Fatalf("rf 4 over 3 registered brokers: error %d, want INVALID_REPLICATION_FACTOR", cr.Topics[0].ErrorCode)
	}
	sc.checkOneActivePerEpoch()
}

func (sc *serviceCluster) allocateProducerIDs(id int32, epoch int64) *kmsg.AllocateProducerIDsResponse {
	sc.t.Helper()
	req := kmsg.NewPtrAllocateProducerIDsRequest()
	req.BrokerID, req.BrokerEpoch = id, epoch
	return sc.handle(req).(*kmsg.AllocateProducerIDsResponse)
}

// alterConfig makes an IncrementalAlterConfigs request of one config per
// resource.
func alterConfig(resources ...kmsg.IncrementalAlterConfigsRequestResource) *kmsg.IncrementalAlterConfigsRequest {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.Version = 1
	req.Resources = resources
	return req
}

func configResource(typ kmsg.ConfigResourceType, name string, op kmsg.IncrementalAlterConfigOp, key, value string) kmsg.IncrementalAlterConfigsRequestResource {
	r := kmsg.NewIncrementalAlterConfigsRequestResource()
	r.ResourceType, r.ResourceName = typ, name
	c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	c.Name, c.Op, c.Value = key, op, kmsg.StringPtr(value)
	r.Configs = append(r.Configs, c)
	return r
}

// TestQuorumControllerProducerIDsAndConfigs drives AllocateProducerIDs and
// IncrementalAlterConfigs through Handle on a real quorum: blocks are
// disjoint and in order, across brokers and across a failover; config
// changes reach every node's image; the ConfigValidator of the options
// decides, on the first controller and on the next; non-active nodes answer
// NOT_CONTROLLER.
func TestQuorumControllerProducerIDsAndConfigs(t *testing.T) {
	sc := newServiceCluster(t)
	epochs := map[int32]int64{}
	for id := int32(1); id <= 2; id++ {
		epochs[id] = sc.register(id)
	}

	// Registered brokers (still fenced) get consecutive blocks.
	a := sc.allocateProducerIDs(1, epochs[1])
	b := sc.allocateProducerIDs(2, epochs[2])
	for _, r := range []*kmsg.AllocateProducerIDsResponse{a, b} {
		if r.ErrorCode != 0 || r.ProducerIDLen != producerIDBlockSize {
			t.Fatalf("allocate: %s start %d len %d", codeName(r.ErrorCode), r.ProducerIDStart, r.ProducerIDLen)
		}
	}
	if a.ProducerIDStart != 0 || b.ProducerIDStart != a.ProducerIDStart+int64(a.ProducerIDLen) {
		t.Fatalf("blocks at %d and %d, want 0 and %d", a.ProducerIDStart, b.ProducerIDStart, producerIDBlockSize)
	}
	im := sc.active().node.Image()
	if im.NextProducerID != b.ProducerIDStart+int64(b.ProducerIDLen) {
		t.Fatalf("the image's next producer id is %d after blocks at %d and %d", im.NextProducerID, a.ProducerIDStart, b.ProducerIDStart)
	}
	sc.converge(im.Offset) // every node agrees, NextProducerID included (Hash)
	if r := sc.allocateProducerIDs(1, epochs[1]+100); r.ErrorCode != kerr.StaleBrokerEpoch.Code {
		t.Fatalf("allocate at a wrong epoch: %s, want STALE_BROKER_EPOCH", codeName(r.ErrorCode))
	}

	// A topic to configure.
	for id := int32(1); id <= 2; id++ {
		for range 3 {
			if !sc.heartbeat(id, epochs[id]).IsFenced {
				break
			}
		}
	}
	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "orders", 1, 2
	cfg := kmsg.NewCreateTopicsRequestTopicConfig()
	cfg.Name, cfg.Value = "retention.ms", kmsg.StringPtr("1000")
	ct.Configs = append(ct.Configs, cfg)
	create.Topics = append(create.Topics, ct)
	if cr := sc.handle(create).(*kmsg.CreateTopicsResponse); cr.Topics[0].ErrorCode != 0 {
		t.Fatalf("create topic: %s", codeName(cr.Topics[0].ErrorCode))
	}

	alter := alterConfig(
		configResource(kmsg.ConfigResourceTypeTopic, "orders", kmsg.IncrementalAlterConfigOpSet, "retention.ms", "2000"),
		configResource(kmsg.ConfigResourceTypeTopic, "nope", kmsg.IncrementalAlterConfigOpSet, "retention.ms", "1"),
		configResource(kmsg.ConfigResourceTypeBroker, "", kmsg.IncrementalAlterConfigOpAppend, "log.cleanup.policy", "compact"),
	)
	out, at := sc.handleAt(alter)
	ar := out.(*kmsg.IncrementalAlterConfigsResponse)
	want := []int16{0, kerr.UnknownTopicOrPartition.Code, 0}
	for i, r := range ar.Resources {
		if r.ErrorCode != want[i] {
			t.Fatalf("alter configs, resource %d: %s, want %s", i, codeName(r.ErrorCode), codeName(want[i]))
		}
	}
	im = sc.active().node.Image()
	topic, _ := im.Topic("orders")
	if topic.Configs["retention.ms"] != "2000" || im.BrokerConfigs[""]["log.cleanup.policy"] != "compact" {
		t.Fatalf("after alter configs: topic %v, cluster %v", topic.Configs, im.BrokerConfigs[""])
	}
	// HandleAt answers at the entry that carried the changes; a request
	// that changes nothing, at the image it was decided on, which holds
	// the earlier change it repeats.
	if at != im.Offset {
		t.Fatalf("alter configs answered at offset %d, applied at %d", at, im.Offset)
	}
	if _, again := sc.handleAt(alter); again != im.Offset {
		t.Fatalf("the same alter configs again answered at offset %d, want the image's %d", again, im.Offset)
	}
	sc.converge(im.Offset)

	// The validator of the options decides.
	bad := alterConfig(configResource(kmsg.ConfigResourceTypeTopic, "orders", kmsg.IncrementalAlterConfigOpSet, "retention.ms", "soon"))
	if r := sc.handle(bad).(*kmsg.IncrementalAlterConfigsResponse); r.Resources[0].ErrorCode != kerr.InvalidConfig.Code {
		t.Fatalf("an invalid value: %s, want INVALID_CONFIG", codeName(r.Resources[0].ErrorCode))
	}

	// Nodes that are not active answer NOT_CONTROLLER, for every resource.
	for id, q := range sc.ctrls {
		if id == sc.active().id {
			continue
		}
		for _, req := range []kmsg.Request{alter, func() kmsg.Request {
			r := kmsg.NewPtrAllocateProducerIDsRequest()
			r.BrokerID, r.BrokerEpoch = 1, epochs[1]
			return r
		}()} {
			resp, err := q.Handle(context.Background(), req)
			if err != nil || !isNotController(resp) {
				t.Fatalf("node %d (not active): %+v, %v", id, resp, err)
			}
			if r, ok := resp.(*kmsg.IncrementalAlterConfigsResponse); ok && len(r.Resources) != len(alter.Resources) {
				t.Fatalf("node %d (not active) answered %d of %d resources", id, len(r.Resources), len(alter.Resources))
			}
		}
	}

	// After a failover the new controller hands out the block after the
	// last committed one, and validates with the same validator.
	old := sc.active()
	sc.ctrls[old.id].Close()
	sc.kill(old.id)
	sc.active()
	c := sc.allocateProducerIDs(2, epochs[2])
	if c.ErrorCode != 0 || c.ProducerIDStart != b.ProducerIDStart+int64(b.ProducerIDLen) {
		t.Fatalf("allocate after failover: %s start %d, want %d", codeName(c.ErrorCode), c.ProducerIDStart, b.ProducerIDStart+int64(b.ProducerIDLen))
	}
	if r := sc.handle(bad).(*kmsg.IncrementalAlterConfigsResponse); r.Resources[0].ErrorCode != kerr.InvalidConfig.Code {
		t.Fatalf("an invalid value after failover: %s, want INVALID_CONFIG", codeName(r.Resources[0].ErrorCode))
	}
	sc.checkOneActivePerEpoch()
}

// TestQuorumControllerFinishesProposalsItsCallersAbandon: a caller that gives
// up (a client's short timeout_ms) does not make the shell give up on the
// entry it proposed, which commits anyway. Deciding the retry on an image
// without that entry proposed a second topic of the same name, an entry no
// node could apply: every voter stopped, and stopped again on restart. The
// callers' deadlines are spread over the time a proposal takes, so that some
// end before the shell takes their request and some while their entry is in
// flight.
func TestQuorumControllerFinishesProposalsItsCallersAbandon(t *testing.T) {
	sc := newServiceCluster(t)
	e := sc.register(1)
	for range 3 {
		if !sc.heartbeat(1, e).IsFenced {
			break
		}
	}
	for i := range 40 {
		req := kmsg.NewPtrCreateTopicsRequest()
		ct := kmsg.NewCreateTopicsRequestTopic()
		ct.Topic, ct.NumPartitions, ct.ReplicationFactor = fmt.Sprintf("t%d", i), 1, 1
		req.Topics = append(req.Topics, ct)
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%8)*250*time.Microsecond)
		sc.ctrls[sc.active().id].Handle(ctx, req) // the client gives up
		cancel()
		resp := sc.handle(req).(*kmsg.CreateTopicsResponse) // and retries
		if c := resp.Topics[0].ErrorCode; c != 0 && c != kerr.TopicAlreadyExists.Code {
			t.Fatalf("retry %d: %v", i, kerr.ErrorForCode(c))
		}
		for _, n := range sc.nodes {
			if err := n.node.Err(); err != nil {
				t.Fatalf("retry %d: node %d stopped: %v", i, n.id, err)
			}
		}
	}
}

// TestQuorumControllerUncleanElectionOnConfigChange: a partition whose last
// ISR member is gone stays offline with unclean election off. Enabling
// unclean.leader.election.enable on its topic, the documented way to bring
// it back from its live replicas, makes the shell run ElectUncleanLeaders
// right after the change commits, as KRaft's controller schedules
// maybeElectUncleanLeaders after a write while partitions are leaderless:
// a live replica leads, alone in the ISR. Before, only fencing and
// unfencing elected, so the partition stayed offline for as long as the
// dead broker stayed away.
func TestQuorumControllerUncleanElectionOnConfigChange(t *testing.T) {
	sc := newServiceCluster(t)
	epochs := sc.startBrokers(3)
	sc.offlinePartition("t", epochs)

	alter := alterConfig(configResource(kmsg.ConfigResourceTypeTopic, "t", kmsg.IncrementalAlterConfigOpSet, uncleanLeaderElectionKey, "true"))
	if r := sc.handle(alter).(*kmsg.IncrementalAlterConfigsResponse); r.Resources[0].ErrorCode != 0 {
		t.Fatalf("alter configs: %s", codeName(r.Resources[0].ErrorCode))
	}
	sc.checkSessions() // the shell elects before it takes this: no clock moves
	if p := sc.partition("t", 0); p.Leader != 1 || !slices.Equal(p.ISR, []int32{1}) {
		t.Fatalf("t-0 replicas %v isr %v leader %d after unclean.leader.election.enable=true; want 1, its first live replica, alone in the ISR", p.Replicas, p.ISR, p.Leader)
	}
}

// TestQuorumControllerElectsUncleanLeadersPeriodically: the shell also runs
// ElectUncleanLeaders every five minutes, as KRaft reruns it every
// unclean.leader.election.interval.ms, for a change that committed without
// the election after it (a controller that failed in between). Here the
// cluster-wide config is written straight to the log, as if by such a
// controller: nothing happens until five minutes have passed.
func TestQuorumControllerElectsUncleanLeadersPeriodically(t *testing.T) {
	sc := newServiceCluster(t)
	epochs := sc.startBrokers(3)
	sc.offlinePartition("t", epochs)
	live := map[int32]int64{1: epochs[1], 2: epochs[2]}

	sc.propose(&ConfigChange{ResourceType: ResourceBroker, Name: uncleanLeaderElectionKey, Value: "true"})
	sc.tick()
	if p := sc.partition("t", 0); p.Leader != NoLeader {
		t.Fatalf("t-0 led by %d before the periodic election was due", p.Leader)
	}
	// A failover restarts the five minutes: give it two rounds.
	for round := 0; sc.partition("t", 0).Leader == NoLeader; round++ {
		if round == 2*uncleanLeaderElectionIntervalMs/1000 {
			t.Fatalf("t-0 still offline (isr %v) ten minutes after the cluster enabled unclean election", sc.partition("t", 0).ISR)
		}
		sc.aliveFor(1000, live)
	}
	if p := sc.partition("t", 0); p.Leader != 1 || !slices.Equal(p.ISR, []int32{1}) {
		t.Fatalf("t-0 isr %v leader %d, want 1 alone", p.ISR, p.Leader)
	}
}

// TestQuorumControllerRestoresPreferredLeaders: with
// auto.leader.rebalance.enable (Kafka's default), the shell moves each
// partition's leadership back to its preferred replica, the first of its
// replicas, every leader.imbalance.check.interval.seconds, once that replica
// is back in the ISR, as KRaft's controller runs
// maybeBalancePartitionLeaders. Before, nothing did: after a broker
// restarted its partitions stayed led by the others for good, and a rolling
// restart left every leader on the brokers that restarted first. With the
// switch off nothing moves.
func TestQuorumControllerRestoresPreferredLeaders(t *testing.T) {
	for _, enabled := range []bool{true, false} {
		t.Run(fmt.Sprintf("auto.leader.rebalance.enable=%t", enabled), func(t *testing.T) {
			sc := newServiceCluster(t, func(c *ControllerConfig) {
				c.AutoLeaderRebalanceEnable, c.LeaderImbalanceCheckIntervalSeconds = enabled, 60
			})
			epochs := sc.startBrokers(2)
			create := kmsg.NewPtrCreateTopicsRequest()
			ct := kmsg.NewCreateTopicsRequestTopic()
			ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "t", -1, -1
			ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
			ra.Partition, ra.Replicas = 0, []int32{1, 2}
			ct.ReplicaAssignment = append(ct.ReplicaAssignment, ra)
			create.Topics = append(create.Topics, ct)
			if cr := sc.handle(create).(*kmsg.CreateTopicsResponse); cr.Topics[0].ErrorCode != 0 {
				t.Fatalf("create: %s", codeName(cr.Topics[0].ErrorCode))
			}

			// Broker 1, the preferred leader, bounces: fenced, the
			// leadership moves to 2; back, leader 2 takes it into the ISR
			// again.
			bounce := kmsg.NewPtrBrokerHeartbeatRequest()
			bounce.BrokerID, bounce.BrokerEpoch, bounce.WantFence = 1, epochs[1], true
			bounce.CurrentMetadataOffset = int64(sc.active().node.Image().Offset)
			if r := sc.handle(bounce).(*kmsg.BrokerHeartbeatResponse); r.ErrorCode != 0 || !r.IsFenced {
				t.Fatalf("fencing broker 1: %+v", r)
			}
			if r := sc.heartbeat(1, epochs[1]); r.ErrorCode != 0 || r.IsFenced {
				t.Fatalf("unfencing broker 1: %+v", r)
			}
			p := sc.partition("t", 0)
			if p.Leader != 2 {
				t.Fatalf("t-0 led by %d after broker 1 was fenced, want 2", p.Leader)
			}
			tp, _ := sc.active().node.Image().Topic("t")
			sc.alterISR(2, epochs, tp.ID, p, 2, 1)
			before := sc.partition("t", 0)

			// Within the interval nothing moves; past it (twice, should a
			// failover restart it) leadership is back on broker 1.
			sc.aliveFor(30_000, epochs)
			if l := sc.partition("t", 0).Leader; l != 2 {
				t.Fatalf("t-0 led by %d before the check interval passed", l)
			}
			sc.aliveFor(90_000, epochs)
			p = sc.partition("t", 0)
			if !enabled {
				if p.Leader != 2 {
					t.Fatalf("t-0 led by %d with auto.leader.rebalance.enable=false", p.Leader)
				}
				return
			}
			if p.Leader != 1 || !slices.Equal(p.ISR, before.ISR) || p.LeaderEpoch != before.LeaderEpoch+1 || p.PartitionEpoch != before.PartitionEpoch+1 {
				t.Fatalf("t-0 leader %d isr %v epochs %d/%d, want 1, the ISR kept (%v), epochs %d/%d",
					p.Leader, p.ISR, p.LeaderEpoch, p.PartitionEpoch, before.ISR, before.LeaderEpoch+1, before.PartitionEpoch+1)
			}
		})
	}
}

// TestQuorumControllerExpiredHeartbeatKeepsSession: a heartbeat whose
// caller gave up while it waited in the shell's queue (its deadline passed
// behind a slow decision) is not decided, but it still refreshes its
// broker's session, as KRaft's processExpiredBrokerHeartbeat does. Before,
// it was dropped: a controller too busy to answer heartbeats in time went
// on to fence the live brokers sending them.
func TestQuorumControllerExpiredHeartbeatKeepsSession(t *testing.T) {
	sc := newServiceCluster(t)
	epochs := sc.startBrokers(1) // session of 9 s from now

	sc.clock.advance(8000)
	hb := kmsg.NewPtrBrokerHeartbeatRequest()
	hb.BrokerID, hb.BrokerEpoch = 1, epochs[1]
	hb.CurrentMetadataOffset = int64(sc.active().node.Image().Offset)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // its deadline has passed by the time the shell takes it
	call := &controllerCall{ctx: ctx, req: hb, reply: make(chan controllerReply, 1)}
	sc.ctrls[sc.active().id].reqs <- call
	select {
	case r := <-call.reply:
		if !errors.Is(r.err, context.Canceled) {
			t.Fatalf("expired heartbeat answered %+v", r)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the shell did not take the heartbeat")
	}

	// 10 s after the last decided heartbeat, 2 s after the expired one.
	sc.clock.advance(2000)
	sc.checkSessions()
	if sc.active().node.Image().Brokers[1].Fenced {
		t.Fatal("broker 1 fenced 2 s after a heartbeat that expired in the queue; its session should have been refreshed")
	}
}

// testObserverAddr is the shell's ObserverAddr in these tests: a broker-only
// node's registration names its in-memory raft address as the host of its
// RAFT endpoint.
func testObserverAddr(b *BrokerImage) (string, bool) {
	for _, e := range b.Endpoints {
		if e.Name == "RAFT" {
			return e.Host, true
		}
	}
	return "", false
}

// startObserver starts broker-only node id, a raft non-voter once the
// active controller adds it, at in-memory address inmem-<id>.
func (sc *serviceCluster) startObserver(id int32) {
	sc.t.Helper()
	sc.nodes[id] = &testNode{id: id, dir: filepath.Join(sc.t.TempDir(), fmt.Sprint(id)), addr: fmt.Sprintf("inmem-%d", id)}
	sc.start(id, "broker")
}

// observerRegistration is broker-only node id's registration, its raft
// address in the RAFT endpoint (testObserverAddr): inmem-<id>, or addr
// when given, a start of incarnation inc.
func observerRegistration(id int32, inc byte, addr string) *kmsg.BrokerRegistrationRequest {
	if addr == "" {
		addr = fmt.Sprintf("inmem-%d", id)
	}
	req := kmsg.NewPtrBrokerRegistrationRequest()
	req.BrokerID, req.ClusterID, req.IncarnationID = id, "test-cluster", [16]byte{byte(id), inc}
	l := kmsg.NewBrokerRegistrationRequestListener()
	l.Name, l.Host, l.Port = "PLAINTEXT", "127.0.0.1", uint16(9090+id)
	req.Listeners = append(req.Listeners, l)
	l.Name, l.Host, l.Port = "RAFT", addr, 1
	req.Listeners = append(req.Listeners, l)
	return req
}

// observerHeartbeat is a heartbeat from broker-only node id, reporting the
// offset of its own image, as a broker does.
func (sc *serviceCluster) observerHeartbeat(id int32, epoch int64) *kmsg.BrokerHeartbeatResponse {
	sc.t.Helper()
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.BrokerID, req.BrokerEpoch = id, epoch
	req.CurrentMetadataOffset = int64(sc.nodes[id].node.Image().Offset)
	return sc.handle(req).(*kmsg.BrokerHeartbeatResponse)
}

// observers are the quorum's non-voters, as the active controller has them.
func (sc *serviceCluster) observers() []int32 {
	sc.t.Helper()
	ids, err := sc.active().node.Observers()
	if err != nil {
		sc.t.Fatal(err)
	}
	return ids
}

// TestQuorumControllerRetriesObserverOnHeartbeat: a broker-only node whose
// add to the quorum's non-voters fails after its registration committed
// (an injected error here; a leadership change or a timeout in life) is
// added when the shell decides its next heartbeat, and then catches up and
// is unfenced. Before, the broker's request handler made the add once,
// after the registration: the node never received the log, and since its
// heartbeats still succeeded it never registered again, so it stayed
// fenced for good. The next active controller after a failover knows the
// non-voter from the replicated raft configuration.
func TestQuorumControllerRetriesObserverOnHeartbeat(t *testing.T) {
	sc := newServiceCluster(t)
	var failed atomic.Bool
	for _, q := range sc.ctrls {
		add := q.addObserver
		q.addObserver = func(id int32, addr string) error {
			if failed.CompareAndSwap(false, true) {
				return errors.New("injected: leadership lost while adding the non-voter")
			}
			return add(id, addr)
		}
	}
	sc.startObserver(4)
	resp := sc.handle(observerRegistration(4, 1, "")).(*kmsg.BrokerRegistrationResponse)
	if resp.ErrorCode != 0 {
		t.Fatalf("registering broker 4: %s", codeName(resp.ErrorCode))
	}
	epoch := resp.BrokerEpoch
	if !failed.Load() {
		t.Fatal("the registration did not try to add broker 4 to the non-voters")
	}
	if ids := sc.observers(); len(ids) != 0 {
		t.Fatalf("non-voters %v after the add failed, want none", ids)
	}

	// Without the log the node reports an offset short of its epoch and
	// stays fenced; deciding its heartbeat, the shell adds it.
	if hb := sc.observerHeartbeat(4, epoch); hb.ErrorCode != 0 || !hb.IsFenced {
		t.Fatalf("heartbeat before catching up: %s, fenced %t; want fenced", codeName(hb.ErrorCode), hb.IsFenced)
	}
	if ids := sc.observers(); !slices.Equal(ids, []int32{4}) {
		t.Fatalf("non-voters %v after broker 4's heartbeat, want [4]", ids)
	}
	sc.converge(uint64(epoch)) // node 4 included: it receives the log
	if hb := sc.observerHeartbeat(4, epoch); hb.ErrorCode != 0 || hb.IsFenced {
		t.Fatalf("heartbeat once caught up: %s, fenced %t; want unfenced", codeName(hb.ErrorCode), hb.IsFenced)
	}

	// The raft configuration is replicated: the next active controller
	// has the non-voter before it hears from the broker, and goes on
	// sending it the log.
	old := sc.active()
	sc.ctrls[old.id].Close()
	sc.kill(old.id)
	if ids := sc.observers(); !slices.Equal(ids, []int32{4}) {
		t.Fatalf("non-voters %v after a failover, want [4]", ids)
	}
	sc.converge(sc.propose(&NoOp{}).Offset)
}

// TestQuorumControllerRegistrationThenUnregistration: a broker-only node's
// registration and an UnregisterBroker of it, decided back to back, leave
// it out of the quorum's non-voters. Before, the broker's request handler
// added the node after the shell had answered the registration, outside
// the shell's loop, while the removal ran inside it: an unregistration
// decided in between removed nothing, and the add that came after it left
// a non-voter that no registration stood for. The hook on the add holds
// it until the unregistration is queued behind the registration, so the
// two are decided back to back; an add made once the registration has been
// answered (as the handler's was) it holds until the unregistration has
// been answered too, the interleaving that re-added the node, so that
// moving the add out of the shell's loop again fails here every time.
func TestQuorumControllerRegistrationThenUnregistration(t *testing.T) {
	sc := newServiceCluster(t)
	sc.startObserver(4)
	addedBefore := false // by an attempt whose unregistration was not decided
	for attempt := 0; ; attempt++ {
		if attempt == 5 {
			t.Fatal("the active controller kept changing")
		}
		q := sc.ctrls[sc.active().id]
		unregister := kmsg.NewPtrUnregisterBrokerRequest()
		unregister.BrokerID = 4
		reg := &controllerCall{ctx: context.Background(), req: observerRegistration(4, 1, ""), reply: make(chan controllerReply, 1)}
		unreg := &controllerCall{ctx: context.Background(), req: unregister, reply: make(chan controllerReply, 1)}
		queued, unregAnswered, added := make(chan struct{}), make(chan struct{}), make(chan struct{})
		add := q.addObserver
		q.addObserver = func(id int32, addr string) error {
			defer close(added)
			if len(reg.reply) == 0 {
				<-queued
			} else {
				<-unregAnswered
			}
			return add(id, addr)
		}
		q.reqs <- reg
		q.reqs <- unreg
		close(queued)
		// The unregistration's answer first: the registration's stays in
		// its buffer, where the hook sees it if the add comes after it.
		unregReply := awaitReply(t, unreg)
		close(unregAnswered)
		regReply := awaitReply(t, reg)
		if regReply.err != nil || unregReply.err != nil {
			t.Fatalf("registration: %v; unregistration: %v", regReply.err, unregReply.err)
		}
		if isNotController(regReply.resp) || unregReply.resp.(*kmsg.UnregisterBrokerResponse).ErrorCode == kerr.NotController.Code {
			q.addObserver = add // not decided: try again on the active controller
			select {
			case <-added:
				addedBefore = true
			default:
			}
			continue
		}
		if code := regReply.resp.(*kmsg.BrokerRegistrationResponse).ErrorCode; code != 0 {
			t.Fatalf("registration: %s", codeName(code))
		}
		if code := unregReply.resp.(*kmsg.UnregisterBrokerResponse).ErrorCode; code != 0 {
			t.Fatalf("unregistration: %s", codeName(code))
		}
		if !addedBefore {
			select {
			case <-added:
			case <-time.After(waitTimeout):
				t.Fatal("the registration never added broker 4 to the non-voters")
			}
		}
		break
	}
	if ids := sc.observers(); len(ids) != 0 {
		t.Fatalf("non-voters %v after broker 4 registered and was unregistered, want none", ids)
	}
	if _, ok := sc.active().node.Image().Brokers[4]; ok {
		t.Fatal("broker 4 still registered")
	}
}

// awaitReply is the shell's answer to c, a call the test put in its queue.
func awaitReply(t *testing.T, c *controllerCall) controllerReply {
	t.Helper()
	select {
	case r := <-c.reply:
		return r
	case <-time.After(waitTimeout):
		t.Fatal("the shell did not answer")
		return controllerReply{}
	}
}

// TestQuorumControllerMovesObserver: a broker-only node that restarts with
// its raft transport at another address, and registers it, is moved to
// that address among the quorum's non-voters (AddNonvoter of the same id),
// and catches up there.
func TestQuorumControllerMovesObserver(t *testing.T) {
	sc := newServiceCluster(t)
	sc.startObserver(4)
	resp := sc.handle(observerRegistration(4, 1, "")).(*kmsg.BrokerRegistrationResponse)
	if resp.ErrorCode != 0 {
		t.Fatalf("registering broker 4: %s", codeName(resp.ErrorCode))
	}
	sc.converge(uint64(resp.BrokerEpoch))

	sc.kill(4)
	sc.nodes[4].addr = "inmem-4b"
	sc.start(4, "broker")
	sc.clock.advance(10_000) // the old incarnation's session has expired
	resp = sc.handle(observerRegistration(4, 2, "inmem-4b")).(*kmsg.BrokerRegistrationResponse)
	if resp.ErrorCode != 0 {
		t.Fatalf("registering broker 4 again: %s", codeName(resp.ErrorCode))
	}
	if ok, err := sc.active().node.observerAt(4, "inmem-4b"); err != nil || !ok {
		t.Fatalf("broker 4 not a non-voter at its new address: %v, %v", ok, err)
	}
	sc.converge(uint64(resp.BrokerEpoch))
	if hb := sc.observerHeartbeat(4, resp.BrokerEpoch); hb.ErrorCode != 0 || hb.IsFenced {
		t.Fatalf("heartbeat once caught up: %s, fenced %t; want unfenced", codeName(hb.ErrorCode), hb.IsFenced)
	}
}

// alterISR has leader, with its broker epoch in epochs, set partition p of
// topic id's ISR to isr (AlterPartition v3), and fails the test unless the
// controller takes it.
func (sc *serviceCluster) alterISR(leader int32, epochs map[int32]int64, id UUID, p *PartitionImage, isr ...int32) {
	sc.t.Helper()
	ap := kmsg.NewPtrAlterPartitionRequest()
	ap.Version = 3
	ap.BrokerID, ap.BrokerEpoch = leader, epochs[leader]
	apt := kmsg.NewAlterPartitionRequestTopic()
	apt.TopicID = id
	app := kmsg.NewAlterPartitionRequestTopicPartition()
	app.LeaderEpoch, app.PartitionEpoch = p.LeaderEpoch, p.PartitionEpoch
	for _, b := range isr {
		e := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
		e.BrokerID, e.BrokerEpoch = b, epochs[b]
		app.NewEpochISR = append(app.NewEpochISR, e)
	}
	apt.Partitions = append(apt.Partitions, app)
	ap.Topics = append(ap.Topics, apt)
	if r := sc.handle(ap).(*kmsg.AlterPartitionResponse); r.ErrorCode != 0 || r.Topics[0].Partitions[0].ErrorCode != 0 {
		sc.t.Fatalf("alter partition: %+v", r)
	}
}
