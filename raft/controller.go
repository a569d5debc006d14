package raft

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The active controller's decisions: KRaft's QuorumController,
// ClusterControlManager, ReplicationControlManager and
// ProducerIdControlManager, as pure functions (its
// ConfigurationControlManager is in configs.go).
//
// Each method takes the current image (and, where time matters, now in
// milliseconds) and returns the records to propose and the response to send
// once they are committed. Nothing here does I/O, starts goroutines or reads
// a clock. The only state outside the image is what KRaft's active
// controller keeps in memory too (its BrokerHeartbeatManager): each
// broker's last heartbeat, last reported metadata offset and controlled
// shutdown. A node makes a new Controller each time it becomes the active
// controller, as KRaft rebuilds that state on activation; a broker this
// controller has not heard from yet gets a full session from the first
// time the controller looks at it.
//
// Decisions must be made one at a time, each against the image that holds
// every record the previous decisions returned: propose, wait for the
// entry to apply, then decide the next request. (KRaft's controller
// applies its own records to its in-memory state before it decides again,
// to the same end.) Two decisions made against the same image could both
// raise one partition to the same new epoch, and Image.Apply rejects the
// second, which stops the node. Every decision is deterministic: topics,
// partitions and brokers are visited in sorted order, and maps are iterated
// only for sums and minimums.

// ControllerConfig is the active controller's configuration, under Kafka's
// names.
type ControllerConfig struct {
	// BrokerSessionTimeoutMs is broker.session.timeout.ms: a broker whose
	// last heartbeat is older than this is fenced. Default 9000.
	BrokerSessionTimeoutMs int64
	// NumPartitions is num.partitions: the partition count of a topic
	// created with NumPartitions -1. Default 1.
	NumPartitions int32
	// DefaultReplicationFactor is default.replication.factor: the
	// replication factor of a topic created with ReplicationFactor -1.
	// Default 1.
	DefaultReplicationFactor int16
	// UncleanLeaderElectionEnable is unclean.leader.election.enable: when a
	// partition has no live ISR member, make the first live replica its
	// leader (and only ISR member), losing whatever it had not copied. A
	// topic's own unclean.leader.election.enable config, or the cluster-wide
	// dynamic one (broker config resource ""), overrides it.
	UncleanLeaderElectionEnable bool
	// AutoLeaderRebalanceEnable is auto.leader.rebalance.enable: every
	// LeaderImbalanceCheckIntervalSeconds the active controller moves the
	// leadership of each partition back to its preferred replica, the first
	// of its replicas, where that one may lead (ElectPreferredLeaders).
	// Kafka's default is true, which a zero ControllerConfig cannot say:
	// DefaultControllerConfig sets it. Kafka's
	// leader.imbalance.per.broker.percentage has no counterpart: KRaft's
	// controller ignores it too, and balances every partition not led by its
	// preferred replica.
	AutoLeaderRebalanceEnable bool
	// LeaderImbalanceCheckIntervalSeconds is
	// leader.imbalance.check.interval.seconds: how often the preferred
	// leader election runs. Default 300.
	LeaderImbalanceCheckIntervalSeconds int64
	// ClusterID is the cluster's id: a broker registering with another is
	// refused (INCONSISTENT_CLUSTER_ID).
	ClusterID string
}

// The defaults, as Kafka's.
const (
	defaultBrokerSessionTimeoutMs              = 9000
	defaultNumPartitions                       = 1
	defaultDefaultReplicationFactor            = 1
	defaultLeaderImbalanceCheckIntervalSeconds = 300
)

// maxIntervalSeconds bounds an interval given in seconds, so that it can be
// counted in milliseconds (and in time.Duration).
const maxIntervalSeconds = math.MaxInt64 / int64(1e9)

// DefaultControllerConfig is Kafka's defaults, auto.leader.rebalance.enable
// (true) among them; ClusterID is left empty.
func DefaultControllerConfig() ControllerConfig {
	c := ControllerConfig{AutoLeaderRebalanceEnable: true}
	c.EnsureDefaults()
	return c
}

// uncleanLeaderElectionKey is the topic (and dynamic cluster) config key
// that overrides ControllerConfig.UncleanLeaderElectionEnable.
const uncleanLeaderElectionKey = "unclean.leader.election.enable"

// maxRecordsPerRequest bounds the records one CreateTopics or
// CreatePartitions request may make, as Kafka's MAX_RECORDS_PER_USER_OP:
// past it the whole request fails with POLICY_VIOLATION.
const maxRecordsPerRequest = 10000

// clusterMetadataTopic is the name Kafka reserves for its metadata log.
const clusterMetadataTopic = "__cluster_metadata"

// EnsureDefaults fills every zero field with its default.
func (c *ControllerConfig) EnsureDefaults() {
	if c.BrokerSessionTimeoutMs == 0 {
		c.BrokerSessionTimeoutMs = defaultBrokerSessionTimeoutMs
	}
	if c.NumPartitions == 0 {
		c.NumPartitions = defaultNumPartitions
	}
	if c.DefaultReplicationFactor == 0 {
		c.DefaultReplicationFactor = defaultDefaultReplicationFactor
	}
	if c.LeaderImbalanceCheckIntervalSeconds == 0 {
		c.LeaderImbalanceCheckIntervalSeconds = defaultLeaderImbalanceCheckIntervalSeconds
	}
}

// Validate reports every field out of range, with its value.
func (c *ControllerConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("raft: "+format, args...)) }
	if c.BrokerSessionTimeoutMs <= 0 {
		bad("broker.session.timeout.ms=%d: want at least 1", c.BrokerSessionTimeoutMs)
	}
	if c.NumPartitions <= 0 {
		bad("num.partitions=%d: want at least 1", c.NumPartitions)
	}
	if c.DefaultReplicationFactor <= 0 {
		bad("default.replication.factor=%d: want at least 1", c.DefaultReplicationFactor)
	}
	if c.LeaderImbalanceCheckIntervalSeconds <= 0 || c.LeaderImbalanceCheckIntervalSeconds > maxIntervalSeconds {
		bad("leader.imbalance.check.interval.seconds=%d: want 1 to %d", c.LeaderImbalanceCheckIntervalSeconds, maxIntervalSeconds)
	}
	if c.ClusterID == "" {
		bad("cluster id is empty")
	}
	return errors.Join(errs...)
}

// Controller is the active controller's volatile state: what KRaft keeps in
// its BrokerHeartbeatManager rather than in the log. It is not safe for
// concurrent use; one goroutine (the one that proposes) owns it.
type Controller struct {
	cfg      ControllerConfig
	sessions map[int32]*brokerSession
	configs  ConfigValidator // nil: every value is valid, none a list
}

// brokerSession is what the controller knows of one broker between
// heartbeats.
type brokerSession struct {
	lastContactMs int64
	// metadataOffset is the CurrentMetadataOffset of the broker's last
	// heartbeat, -1 before its first one to this controller.
	metadataOffset int64
	// shuttingDown: the broker asked to shut down while it led partitions,
	// and they are being moved away (KRaft's CONTROLLED_SHUTDOWN). It may no
	// longer lead or join an ISR.
	shuttingDown bool
	// shutdownOffset is the image offset at which the shutting-down broker
	// was first seen leading nothing, -1 before. It may stop once every
	// other live broker has caught up to it, so that the new leaders know
	// they lead before the old one goes (KRaft's controlledShutdownOffset).
	shutdownOffset int64
}

// NewController returns a Controller with no sessions, for a node that has
// just become the active controller. cfg's zero fields take their defaults.
// It validates no config values until given a ConfigValidator
// (SetConfigValidator).
func NewController(cfg ControllerConfig) (*Controller, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Controller{cfg: cfg, sessions: map[int32]*brokerSession{}}, nil
}

// Config returns the configuration, defaults filled in.
func (c *Controller) Config() ControllerConfig { return c.cfg }

// session returns broker id's session, starting one at now if the
// controller has none.
func (c *Controller) session(id int32, now int64) *brokerSession {
	s := c.sessions[id]
	if s == nil {
		s = &brokerSession{lastContactMs: now, metadataOffset: -1, shutdownOffset: -1}
		c.sessions[id] = s
	}
	return s
}

// hasValidSession is KRaft's BrokerHeartbeatManager.hasValidSession: an
// unfenced broker that heartbeated within the session timeout.
func (c *Controller) hasValidSession(b *BrokerImage, now int64) bool {
	return !b.Fenced && c.session(b.ID, now).lastContactMs+c.cfg.BrokerSessionTimeoutMs >= now
}

func (c *Controller) shuttingDown(id int32) bool {
	s := c.sessions[id]
	return s != nil && s.shuttingDown
}

// RegisterBroker handles a BrokerRegistration request.
//
// A registration with another cluster id is refused with
// INCONSISTENT_CLUSTER_ID, and one for an id whose current registration
// has another incarnation and a live session (unfenced, heartbeating) with
// DUPLICATE_BROKER_REGISTRATION. A registration that repeats the current
// one exactly (same incarnation, listeners and rack) changes nothing: no
// records, and the response, complete, carries the current epoch, as KRaft
// keeps the epoch when it amends a registration. Otherwise the records end
// with a BrokerRegistered; if the broker was unfenced they first move its
// leaderships and ISR places away, since the registration fences it.
//
// When records is not empty the caller sets the response's BrokerEpoch to
// the raft index of the entry that holds them, once applied: Image.Apply
// makes that index the broker's epoch, as KRaft uses the record's offset.
func (c *Controller) RegisterBroker(im *Image, req *kmsg.BrokerRegistrationRequest, now int64) ([]Record, *kmsg.BrokerRegistrationResponse) {
	resp := kmsg.NewPtrBrokerRegistrationResponse()
	resp.Version = req.Version
	if req.ClusterID != c.cfg.ClusterID {
		resp.ErrorCode = kerr.InconsistentClusterID.Code
		return nil, resp
	}
	if req.IsMigratingZkBroker {
		resp.ErrorCode = kerr.BrokerIDNotRegistered.Code
		return nil, resp
	}
	rec := &BrokerRegistered{BrokerID: req.BrokerID, Incarnation: UUID(req.IncarnationID)}
	for _, l := range req.Listeners {
		rec.Endpoints = append(rec.Endpoints, Endpoint{Name: l.Name, Host: l.Host, Port: l.Port, SecurityProtocol: l.SecurityProtocol})
	}
	if req.Rack != nil {
		rec.Rack = *req.Rack
	}
	if Validate(rec) != nil {
		resp.ErrorCode = kerr.InvalidRegistration.Code
		return nil, resp
	}
	existing := im.Brokers[req.BrokerID]
	if existing != nil {
		if existing.Incarnation != rec.Incarnation && c.hasValidSession(existing, now) {
			resp.ErrorCode = kerr.DuplicateBrokerRegistration.Code
			return nil, resp
		}
		if existing.Incarnation == rec.Incarnation && existing.Rack == rec.Rack && slices.Equal(existing.Endpoints, rec.Endpoints) {
			c.session(existing.ID, now).lastContactMs = now
			resp.BrokerEpoch = existing.Epoch
			return nil, resp
		}
	}
	var records []Record
	if existing != nil && !existing.Fenced {
		pl := c.newPlanner(im)
		pl.fencing[existing.ID] = true
		records = pl.removeFromPartitions([]int32{existing.ID})
	}
	records = append(records, rec)
	c.sessions[req.BrokerID] = &brokerSession{lastContactMs: now, metadataOffset: -1, shutdownOffset: -1}
	return records, resp
}

// UnregisterBroker handles an UnregisterBroker request (KIP-631), as
// KRaft's ReplicationControlManager.unregisterBroker does, for a broker
// taken out of the cluster for good: an unfenced broker first leaves its
// leaderships and ISR places as if fenced, then a BrokerUnregistered
// removes its registration. Its partitions keep it in their replica
// lists, offline while it led them alone, until a broker of that id
// registers again; a broker still running does so at its next heartbeat
// (STALE_BROKER_EPOCH). An id not registered gets BROKER_ID_NOT_REGISTERED.
func (c *Controller) UnregisterBroker(im *Image, req *kmsg.UnregisterBrokerRequest) ([]Record, *kmsg.UnregisterBrokerResponse) {
	resp := kmsg.NewPtrUnregisterBrokerResponse()
	resp.Version = req.Version
	b := im.Brokers[req.BrokerID]
	if b == nil {
		resp.ErrorCode = kerr.BrokerIDNotRegistered.Code
		resp.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("Broker ID %d is not currently registered", req.BrokerID))
		return nil, resp
	}
	var records []Record
	if !b.Fenced {
		pl := c.newPlanner(im)
		pl.fencing[b.ID] = true
		records = pl.removeFromPartitions([]int32{b.ID})
	}
	records = append(records, &BrokerUnregistered{BrokerID: b.ID, BrokerEpoch: b.Epoch})
	delete(c.sessions, b.ID)
	return records, resp
}

// Heartbeat handles a BrokerHeartbeat request, with KRaft's broker states:
//
//   - An unknown broker, or an epoch other than its registration's, gets
//     STALE_BROKER_EPOCH (as KRaft answers both).
//   - A fenced broker that asks to shut down may (ShouldShutdown). One that
//     does not want to stay fenced and has caught up with the log to its own
//     registration (CurrentMetadataOffset >= its epoch) is unfenced, and
//     leads the leaderless partitions it can.
//   - An unfenced broker that asks to be fenced is; one that asks to shut
//     down while it leads partitions enters controlled shutdown: it leaves
//     every ISR it is not the last member of, its leaderships move to other
//     ISR members, and once it leads nothing and the other live brokers have
//     caught up to that, it is fenced and told to shut down. One that leads
//     nothing is fenced and told to shut down at once.
//
// IsCaughtUp, IsFenced and ShouldShutdown are set as KRaft sets them, for
// the state after the records apply.
func (c *Controller) Heartbeat(im *Image, req *kmsg.BrokerHeartbeatRequest, now int64) ([]Record, *kmsg.BrokerHeartbeatResponse) {
	resp := kmsg.NewPtrBrokerHeartbeatResponse()
	resp.Version = req.Version
	b := im.Brokers[req.BrokerID]
	if b == nil || b.Epoch != req.BrokerEpoch {
		resp.ErrorCode = kerr.StaleBrokerEpoch.Code
		return nil, resp
	}
	s := c.session(b.ID, now)
	s.lastContactMs = now
	s.metadataOffset = req.CurrentMetadataOffset
	caughtUp := req.CurrentMetadataOffset >= b.Epoch
	resp.IsCaughtUp = caughtUp

	var records []Record
	fenced, shutdown := b.Fenced, false
	switch {
	case b.Fenced:
		s.shuttingDown, s.shutdownOffset = false, -1
		if req.WantShutdown {
			shutdown = true
		} else if !req.WantFence && caughtUp {
			records, fenced = c.unfence(im, b), false
		}
	case s.shuttingDown:
		if im.PartitionsLedBy(b.ID) > 0 || inSharedISR(im, b.ID) {
			// The moves never committed (their proposal failed): make
			// them again.
			records = c.newPlanner(im).removeFromPartitions([]int32{b.ID})
			break
		}
		if s.shutdownOffset < 0 {
			s.shutdownOffset = int64(min(im.Offset, math.MaxInt64))
		}
		if c.lowestActiveOffset(im, b.ID) >= s.shutdownOffset {
			records, fenced, shutdown = c.fence(im, []int32{b.ID}), true, true
		}
	case req.WantFence:
		records, fenced, shutdown = c.fence(im, []int32{b.ID}), true, req.WantShutdown
	case req.WantShutdown:
		if im.PartitionsLedBy(b.ID) > 0 {
			s.shuttingDown, s.shutdownOffset = true, -1
			records = c.newPlanner(im).removeFromPartitions([]int32{b.ID})
		} else {
			records, fenced, shutdown = c.fence(im, []int32{b.ID}), true, true
		}
	}
	resp.IsFenced, resp.ShouldShutdown = fenced, shutdown
	return records, resp
}

// ExpiredHeartbeat is KRaft's processExpiredBrokerHeartbeat, for a
// heartbeat whose caller gave up while it waited for the controller (its
// deadline passed in the queue): it is not decided, but it shows the broker
// alive, so a broker registered at the heartbeat's epoch gets its session
// refreshed (last contact now, and the metadata offset it reported). It
// makes no records.
func (c *Controller) ExpiredHeartbeat(im *Image, req *kmsg.BrokerHeartbeatRequest, now int64) {
	b := im.Brokers[req.BrokerID]
	if b == nil || b.Epoch != req.BrokerEpoch {
		return
	}
	s := c.session(b.ID, now)
	s.lastContactMs = now
	s.metadataOffset = req.CurrentMetadataOffset
}

// inSharedISR reports whether broker id is in an ISR with other members.
func inSharedISR(im *Image, id int32) bool {
	for _, t := range im.Topics {
		for _, p := range t.Partitions {
			if len(p.ISR) > 1 && slices.Contains(p.ISR, id) {
				return true
			}
		}
	}
	return false
}

// lowestActiveOffset is the lowest metadata offset reported by a live
// broker other than except: unfenced and not shutting down. A broker that
// has not heartbeated to this controller counts as -1; with no such broker
// it is MaxInt64.
func (c *Controller) lowestActiveOffset(im *Image, except int32) int64 {
	lowest := int64(math.MaxInt64)
	for id, b := range im.Brokers {
		if id == except || b.Fenced || c.shuttingDown(id) {
			continue
		}
		off := int64(-1)
		if s := c.sessions[id]; s != nil {
			off = s.metadataOffset
		}
		lowest = min(lowest, off)
	}
	return lowest
}

// FenceExpired fences every unfenced broker whose last heartbeat is older
// than broker.session.timeout.ms: each leaves the ISRs it is not the last
// member of (an ISR is never emptied: KRaft without ELR keeps the last
// member and leaves the partition leaderless), the partitions it led get
// new leaders, and then a BrokerFenced record for each. KRaft fences one
// broker per pass; this fences them all in one entry, removing them from
// ISRs in broker id order, which ends the same way.
func (c *Controller) FenceExpired(im *Image, now int64) []Record {
	for id := range c.sessions {
		if im.Brokers[id] == nil {
			delete(c.sessions, id)
		}
	}
	var expired []int32
	for _, b := range im.UnfencedBrokers() {
		if c.session(b.ID, now).lastContactMs+c.cfg.BrokerSessionTimeoutMs < now {
			expired = append(expired, b.ID)
		}
	}
	if len(expired) == 0 {
		return nil
	}
	return c.fence(im, expired)
}

// NextExpiry returns when FenceExpired will next have a broker to fence,
// if nothing is heard from it before: the earliest time at which an
// unfenced broker's session lapses. ok is false with no unfenced broker.
func (c *Controller) NextExpiry(im *Image, now int64) (at int64, ok bool) {
	for _, b := range im.UnfencedBrokers() {
		t := c.session(b.ID, now).lastContactMs + c.cfg.BrokerSessionTimeoutMs + 1
		if !ok || t < at {
			at, ok = t, true
		}
	}
	return at, ok
}

// fence returns the records that fence brokers ids (sorted, unfenced):
// partition changes, then a BrokerFenced for each.
func (c *Controller) fence(im *Image, ids []int32) []Record {
	pl := c.newPlanner(im)
	for _, id := range ids {
		pl.fencing[id] = true
	}
	records := pl.removeFromPartitions(ids)
	for _, id := range ids {
		records = append(records, &BrokerFenced{BrokerID: id, BrokerEpoch: im.Brokers[id].Epoch})
		if s := c.sessions[id]; s != nil {
			s.shuttingDown, s.shutdownOffset = false, -1
		}
	}
	return records
}

// unfence returns the records that unfence b: a BrokerUnfenced, then a
// leader for each leaderless partition that can now have one (b or
// another live broker from its ISR or, where unclean election is enabled,
// any live replica), as KRaft's handleBrokerUnfenced.
func (c *Controller) unfence(im *Image, b *BrokerImage) []Record {
	records := []Record{&BrokerUnfenced{BrokerID: b.ID, BrokerEpoch: b.Epoch}}
	pl := c.newPlanner(im)
	pl.unfencing = b.ID
	for _, t := range im.TopicsByName() {
		for i, p := range t.Partitions {
			if p.Leader == NoLeader {
				if r := pl.reelect(t, int32(i), nil); r != nil {
					records = append(records, r)
				}
			}
		}
	}
	return records
}

// maxElectionsPerPass bounds the partition changes one pass of
// ElectUncleanLeaders (or ElectPreferredLeaders) makes, as KRaft's
// MAX_ELECTIONS_PER_IMBALANCE: a pass that reaches it says so, and the
// shell runs the next one at once, so that no entry grows without bound.
const maxElectionsPerPass = 1000

// ElectUncleanLeaders is KRaft's
// ReplicationControlManager.maybeElectUncleanLeaders: each leaderless
// partition of a topic where unclean leader election is enabled (its
// unclean.leader.election.enable, else the cluster's, else the
// controller's) gets a leader if one may lead: a live ISR member if there
// is one, else the first live replica in assignment order, which becomes
// the whole ISR, losing whatever it had not copied. Fencing and unfencing
// elect so already; this is for a partition that went leaderless while
// unclean election was off and whose ISR is still gone when an operator
// enables it, the documented way to bring it back. The shell runs it right
// after a change of unclean.leader.election.enable and every five minutes
// (KRaft's unclean.leader.election.interval.ms). Partitions are visited in
// topic-name order; more is true when the pass stopped at
// maxElectionsPerPass.
func (c *Controller) ElectUncleanLeaders(im *Image) (records []Record, more bool) {
	pl := c.newPlanner(im)
	for _, t := range im.TopicsByName() {
		if !c.unclean(im, t) {
			continue
		}
		for i, p := range t.Partitions {
			if p.Leader != NoLeader {
				continue
			}
			if len(records) == maxElectionsPerPass {
				return records, true
			}
			if r := pl.reelect(t, int32(i), nil); r != nil {
				records = append(records, r)
			}
		}
	}
	return records, false
}

// ElectPreferredLeaders is KRaft's
// ReplicationControlManager.maybeBalancePartitionLeaders, which the shell
// runs every leader.imbalance.check.interval.seconds when
// auto.leader.rebalance.enable is set: each partition not led by its
// preferred replica, the first of its replicas, gets it as leader when it
// is in the ISR and may lead (registered, unfenced, not in controlled
// shutdown), as PartitionChangeBuilder's PREFERRED election chooses; see
// electPreferred for the rest. The ISR stays; a new leader raises the
// leader epoch and the partition epoch by one. So after a broker restarts
// and its leader takes it back into the ISR, it leads its partitions again,
// and a rolling restart does not leave every leader on the brokers that
// restarted first. Every such partition is balanced, as in KRaft, whatever
// leader.imbalance.per.broker.percentage says (only ZooKeeper's controller
// read it). Partitions are visited in topic-name order; more is true when
// the pass stopped at maxElectionsPerPass.
func (c *Controller) ElectPreferredLeaders(im *Image) (records []Record, more bool) {
	pl := c.newPlanner(im)
	for _, t := range im.TopicsByName() {
		for i, p := range t.Partitions {
			if len(p.Replicas) == 0 || p.Leader == p.Replicas[0] {
				continue
			}
			if len(records) == maxElectionsPerPass {
				return records, true
			}
			leader := electPreferred(p.Replicas, p.Leader, p.ISR, pl.usable)
			if leader == p.Leader {
				continue
			}
			records = append(records, &PartitionChange{TopicID: t.ID, Partition: int32(i), Leader: leader,
				ISR: slices.Clone(p.ISR), LeaderEpoch: p.LeaderEpoch + 1, PartitionEpoch: p.PartitionEpoch + 1})
		}
	}
	return records, false
}

// electPreferred is KRaft's PartitionChangeBuilder.electPreferredLeader
// without ELR: the preferred replica (the first) if it is in isr and
// usable; else the current leader if it still is; else the first other
// replica that is; else NoLeader.
func electPreferred(replicas []int32, current int32, isr []int32, usable func(int32) bool) int32 {
	valid := func(id int32) bool { return id != NoLeader && slices.Contains(isr, id) && usable(id) }
	switch {
	case valid(replicas[0]):
		return replicas[0]
	case valid(current):
		return current
	}
	for _, r := range replicas[1:] {
		if valid(r) {
			return r
		}
	}
	return NoLeader
}

// changesUncleanElection reports whether records change
// unclean.leader.election.enable anywhere, which may let ElectUncleanLeaders
// bring leaderless partitions back.
func changesUncleanElection(records []Record) bool {
	return slices.ContainsFunc(records, func(r Record) bool {
		ch, ok := r.(*ConfigChange)
		return ok && ch.Name == uncleanLeaderElectionKey
	})
}

// planner works out partition changes for one decision, seeing the brokers
// the decision fences or unfences as it will leave them.
type planner struct {
	c         *Controller
	im        *Image
	fencing   map[int32]bool // brokers this decision fences (or re-registers)
	unfencing int32          // the broker this decision unfences, or NoLeader
}

func (c *Controller) newPlanner(im *Image) *planner {
	return &planner{c: c, im: im, fencing: map[int32]bool{}, unfencing: NoLeader}
}

// usable reports whether broker id may lead or join an ISR once the
// decision applies: registered, unfenced, and not shutting down.
func (pl *planner) usable(id int32) bool {
	b := pl.im.Brokers[id]
	switch {
	case b == nil || pl.fencing[id] || pl.c.shuttingDown(id):
		return false
	case b.Fenced:
		return id == pl.unfencing
	}
	return true
}

// removeFromPartitions returns the changes of every partition that brokers
// ids (sorted) lead or are in the ISR of: they leave the ISR (unless last)
// and a leader among them is replaced.
func (pl *planner) removeFromPartitions(ids []int32) []Record {
	var records []Record
	for _, t := range pl.im.TopicsByName() {
		for i, p := range t.Partitions {
			if slices.ContainsFunc(ids, func(id int32) bool { return p.Leader == id || slices.Contains(p.ISR, id) }) {
				if r := pl.reelect(t, int32(i), ids); r != nil {
					records = append(records, r)
				}
			}
		}
	}
	return records
}

// reelect removes brokers remove (sorted) from partition i's ISR, one at a
// time and never the last member, and elects its leader; it returns the
// change, or nil when there is none. The leader epoch goes up by one when
// the leader changes, the partition epoch on any change.
func (pl *planner) reelect(t *TopicImage, i int32, remove []int32) Record {
	p := t.Partitions[i]
	isr := p.ISR
	for _, id := range remove {
		if slices.Contains(isr, id) && len(isr) > 1 {
			isr = slices.DeleteFunc(slices.Clone(isr), func(x int32) bool { return x == id })
		}
	}
	leader, isr := elect(p.Replicas, p.Leader, isr, pl.usable, pl.c.unclean(pl.im, t))
	if leader == p.Leader && slices.Equal(isr, p.ISR) {
		return nil
	}
	ch := &PartitionChange{
		TopicID:        t.ID,
		Partition:      i,
		Leader:         leader,
		ISR:            slices.Clone(isr),
		LeaderEpoch:    p.LeaderEpoch,
		PartitionEpoch: p.PartitionEpoch + 1,
	}
	if leader != p.Leader {
		ch.LeaderEpoch++
	}
	return ch
}

// elect is KRaft's PartitionChangeBuilder.electAnyLeader without ELR: the
// current leader if it is still in isr and usable, else the first replica
// in assignment order that is; else, if unclean election is enabled, the
// first usable replica, which becomes the whole ISR; else NoLeader, with
// the ISR unchanged.
func elect(replicas []int32, current int32, isr []int32, usable func(int32) bool, unclean bool) (int32, []int32) {
	if current != NoLeader && slices.Contains(isr, current) && usable(current) {
		return current, isr
	}
	for _, r := range replicas {
		if slices.Contains(isr, r) && usable(r) {
			return r, isr
		}
	}
	if unclean {
		for _, r := range replicas {
			if usable(r) {
				return r, []int32{r}
			}
		}
	}
	return NoLeader, isr
}

// electLeader returns the leader partition p gets when broker exclude
// (NoLeader for none) may no longer lead and leaves the ISR (unless it is
// the last member): see elect. Usable brokers are the image's unfenced
// ones.
func electLeader(im *Image, p *PartitionImage, exclude int32, unclean bool) int32 {
	isr := p.ISR
	if len(isr) > 1 {
		isr = slices.DeleteFunc(slices.Clone(isr), func(x int32) bool { return x == exclude })
	}
	usable := func(id int32) bool {
		b := im.Brokers[id]
		return id != exclude && b != nil && !b.Fenced
	}
	leader, _ := elect(p.Replicas, p.Leader, isr, usable, unclean)
	return leader
}

// unclean reports whether topic t may elect a leader from outside its ISR:
// its own unclean.leader.election.enable, else the cluster-wide dynamic
// one, else the controller's.
func (c *Controller) unclean(im *Image, t *TopicImage) bool {
	if v, ok := parseConfigBool(t.Configs[uncleanLeaderElectionKey]); ok {
		return v
	}
	if v, ok := parseConfigBool(im.BrokerConfigs[""][uncleanLeaderElectionKey]); ok {
		return v
	}
	return c.cfg.UncleanLeaderElectionEnable
}

// parseConfigBool parses a boolean config value as Kafka does (any case).
func parseConfigBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// placementBrokers returns the brokers new replicas may go to, as KRaft's
// BrokerHeartbeatManager.usableBrokers: every registered broker not in
// controlled shutdown, split into the live ones (unfenced: KRaft's
// isActive) and the fenced ones, each sorted by id.
func (c *Controller) placementBrokers(im *Image) (live, fenced []*BrokerImage) {
	for _, id := range slices.Sorted(maps.Keys(im.Brokers)) {
		switch b := im.Brokers[id]; {
		case c.shuttingDown(id):
		case b.Fenced:
			fenced = append(fenced, b)
		default:
			live = append(live, b)
		}
	}
	return live, fenced
}

// placeReplicas places partitions new partitions of rf replicas (rf >= 1),
// the first at pattern position start, as KRaft's StripedReplicaPlacer
// decides what is possible: there must be a live broker (the leader, each
// partition's first replica, is one) and rf at most the brokers that may
// take replicas, fenced ones included; its error messages are Kafka's.
// Fenced brokers are used only once the live ones run out: each partition
// then holds every live broker (AssignReplicas over them, with rf their
// number) followed by rf minus that many fenced ones (AssignReplicas over
// the fenced brokers), so that the fenced replicas spread evenly too. The
// caller makes the live replicas the ISR, as KRaft does: a fenced replica
// joins it once its broker returns and catches up (AlterPartition).
//
// Kafka's placer interleaves racks first and uses a rack's fenced brokers
// before another rack's second live one; this one keeps liveness first, so
// a partition gets as many replicas that can serve as there are live
// brokers.
func placeReplicas(live, fenced []*BrokerImage, partitions, rf, start int) ([][]int32, error) {
	switch {
	case len(live) == 0:
		return nil, errors.New("All brokers are currently fenced.")
	case rf > len(live)+len(fenced):
		return nil, fmt.Errorf("The target replication factor of %d cannot be reached because only %d broker(s) are registered.", rf, len(live)+len(fenced))
	case rf <= len(live):
		return AssignReplicas(live, partitions, rf, start)
	}
	assignment, err := AssignReplicas(live, partitions, len(live), start)
	if err != nil {
		return nil, err
	}
	extra, err := AssignReplicas(fenced, partitions, rf-len(live), start)
	if err != nil {
		return nil, err
	}
	for i := range assignment {
		assignment[i] = append(assignment[i], extra[i]...)
	}
	return assignment, nil
}

// placementError is an error of placeReplicas as Kafka words it: its own
// message, or AssignReplicas' without its prefix.
func placementError(err error) string {
	return strings.TrimPrefix(err.Error(), "raft: assign replicas: ")
}

// errTooLarge fails a whole request that would make more than
// maxRecordsPerRequest records, with KRaft's code and message.
var errTooLarge = failf(kerr.PolicyViolation, "Unable to perform excessively large batch operation.")

// apiError is one topic's (or partition's) failure.
type apiError struct {
	err *kerr.Error
	msg string
}

func failf(err *kerr.Error, format string, args ...any) *apiError {
	return &apiError{err: err, msg: fmt.Sprintf(format, args...)}
}

func (e *apiError) code() int16 {
	if e == nil {
		return 0
	}
	return e.err.Code
}

func (e *apiError) message() *string {
	if e == nil {
		return nil
	}
	return &e.msg
}

// CreateTopics handles a CreateTopics request as KRaft does. For each
// topic: a name used twice in the request gets INVALID_REQUEST (once), an
// invalid name or one that collides with an existing topic's once '.' and
// '_' are treated alike INVALID_TOPIC_EXCEPTION, an existing name
// TOPIC_ALREADY_EXISTS, a config without a name or value, or one the
// ConfigValidator rejects, INVALID_CONFIG (the validator's message). A
// manual assignment needs NumPartitions and ReplicationFactor -1
// (INVALID_REQUEST otherwise), partitions 0..n-1 each once, all of one
// length, with distinct registered brokers of which one at least is live
// (INVALID_REPLICA_ASSIGNMENT otherwise). Without one, ReplicationFactor
// and NumPartitions -1 take default.replication.factor and num.partitions,
// 0 or below -1 get INVALID_REPLICATION_FACTOR and INVALID_PARTITIONS, and,
// as in KRaft, no live broker or a replication factor above the number of
// registered brokers not in controlled shutdown (fenced ones count)
// INVALID_REPLICATION_FACTOR; placeReplicas places the replicas, live
// brokers first and fenced ones once those run out, starting at the
// cluster's partition count so that leaders spread across topics.
//
// Each topic created makes a Topic record and a Partition record per
// partition: the ISR is the live replicas, the leader the first of them
// (the first replica, when placed automatically), epochs 0. With ValidateOnly the response is the same and there are no
// records. From v5 a topic created (or that would be, with ValidateOnly)
// is answered with its configs, when the ConfigValidator is a
// ConfigDescriber. A request that would make more than 10000 records fails
// whole with POLICY_VIOLATION, as KRaft's does.
//
// newID makes topic ids; one that is zero or taken is drawn again.
func (c *Controller) CreateTopics(im *Image, req *kmsg.CreateTopicsRequest, newID func() UUID) ([]Record, *kmsg.CreateTopicsResponse) {
	resp := kmsg.NewPtrCreateTopicsResponse()
	resp.Version = req.Version

	count := map[string]int{}
	for _, t := range req.Topics {
		count[t.Topic]++
	}
	// Names made unique by unifying '.' and '_', for the collision check.
	unified := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(im.Names)) {
		if u := unifyCollisionChars(name); unified[u] == "" {
			unified[u] = name
		}
	}
	live, fenced := c.placementBrokers(im)
	start := 0
	for _, t := range im.Topics {
		start += len(t.Partitions)
	}
	created := map[UUID]bool{}
	var records []Record
	reported := map[string]bool{}
	tooMany := false
	for i := range req.Topics {
		rt := &req.Topics[i]
		if reported[rt.Topic] {
			continue
		}
		reported[rt.Topic] = true
		out := kmsg.NewCreateTopicsResponseTopic()
		out.Topic = rt.Topic
		var (
			fail  *apiError
			topic []Record
		)
		if count[rt.Topic] > 1 {
			fail = failf(kerr.InvalidRequest, "Duplicate topic name.")
		} else {
			topic, fail = c.createTopic(im, rt, live, fenced, start, unified, maxRecordsPerRequest-len(records))
		}
		if fail == nil && topic == nil {
			tooMany = true
			break
		}
		if fail == nil {
			tr := topic[0].(*Topic)
			id, ok := drawTopicID(im, created, newID)
			if !ok {
				fail = failf(kerr.UnknownServerError, "No unused topic id could be drawn.")
			} else {
				created[id] = true
				tr.ID = id
				for _, r := range topic[1:] {
					r.(*Partition).TopicID = id
				}
				out.TopicID = id
				out.NumPartitions = int32(len(topic) - 1)
				out.ReplicationFactor = int16(len(topic[1].(*Partition).Replicas))
				if req.Version >= 5 {
					out.Configs = c.describeNewTopicConfigs(tr.Configs)
				}
				records = append(records, topic...)
				unified[unifyCollisionChars(rt.Topic)] = rt.Topic
				start += len(topic) - 1
			}
		}
		out.ErrorCode, out.ErrorMessage = fail.code(), fail.message()
		resp.Topics = append(resp.Topics, out)
	}
	if tooMany {
		resp.Topics = resp.Topics[:0]
		for _, name := range distinctNames(len(req.Topics), func(i int) string { return req.Topics[i].Topic }) {
			out := kmsg.NewCreateTopicsResponseTopic()
			out.Topic = name
			out.ErrorCode, out.ErrorMessage = errTooLarge.code(), errTooLarge.message()
			resp.Topics = append(resp.Topics, out)
		}
		return nil, resp
	}
	if req.ValidateOnly {
		return nil, resp
	}
	return records, resp
}

// createTopic validates one topic of a CreateTopics request and returns
// its Topic record and Partition records (topic id not yet set), or why it
// cannot be created. It returns neither when the topic would take more
// than budget records.
func (c *Controller) createTopic(im *Image, rt *kmsg.CreateTopicsRequestTopic, live, fenced []*BrokerImage, start int, unified map[string]string, budget int) ([]Record, *apiError) {
	if err := ValidateTopicName(rt.Topic); err != nil {
		return nil, failf(kerr.InvalidTopicException, "%v", err)
	}
	if rt.Topic == clusterMetadataTopic {
		return nil, failf(kerr.InvalidRequest, "Creation of internal topic %s is prohibited.", clusterMetadataTopic)
	}
	if _, ok := im.Names[rt.Topic]; ok {
		return nil, failf(kerr.TopicAlreadyExists, "Topic '%s' already exists.", rt.Topic)
	}
	if other, ok := unified[unifyCollisionChars(rt.Topic)]; ok && other != rt.Topic {
		return nil, failf(kerr.InvalidTopicException, "Topic '%s' collides with existing topic: %s", rt.Topic, other)
	}
	configs := map[string]string{}
	var nullConfigs []string
	for _, cfg := range rt.Configs {
		switch {
		case cfg.Name == "":
			return nil, failf(kerr.InvalidConfig, "A topic config has an empty name.")
		case cfg.Value == nil:
			nullConfigs = append(nullConfigs, cfg.Name)
		default:
			configs[cfg.Name] = *cfg.Value
		}
	}
	if len(nullConfigs) > 0 {
		return nil, failf(kerr.InvalidConfig, "Null value not supported for topic configs: %s", strings.Join(nullConfigs, ","))
	}
	// Before the assignment, as KRaft checks a new topic's configs
	// (ConfigurationControlManager) before it places its replicas.
	if fail := c.validateTopicConfigs(configs); fail != nil {
		return nil, fail
	}

	var assignment [][]int32
	if len(rt.ReplicaAssignment) > 0 {
		if rt.ReplicationFactor != -1 {
			return nil, failf(kerr.InvalidRequest, "A manual partition assignment was specified, but replication factor was not set to -1.")
		}
		if rt.NumPartitions != -1 {
			return nil, failf(kerr.InvalidRequest, "A manual partition assignment was specified, but numPartitions was not set to -1.")
		}
		if len(rt.ReplicaAssignment)+1 > budget {
			return nil, nil
		}
		byPartition := map[int32][]int32{}
		rf := -1
		for _, a := range rt.ReplicaAssignment {
			if _, dup := byPartition[a.Partition]; dup {
				return nil, failf(kerr.InvalidReplicaAssignment, "Found multiple manual partition assignments for partition %d", a.Partition)
			}
			if fail := c.checkManualAssignment(im, a.Replicas, rf); fail != nil {
				return nil, fail
			}
			rf = len(a.Replicas)
			byPartition[a.Partition] = a.Replicas
		}
		for i := range int32(len(byPartition)) {
			if _, ok := byPartition[i]; !ok {
				return nil, failf(kerr.InvalidReplicaAssignment, "partitions should be a consecutive 0-based integer sequence")
			}
			assignment = append(assignment, byPartition[i])
		}
	} else {
		switch {
		case rt.ReplicationFactor < -1 || rt.ReplicationFactor == 0:
			return nil, failf(kerr.InvalidReplicationFactor, "Replication factor must be larger than 0, or -1 to use the default value.")
		case rt.NumPartitions < -1 || rt.NumPartitions == 0:
			return nil, failf(kerr.InvalidPartitions, "Number of partitions was set to an invalid non-positive value.")
		}
		partitions, rf := int(rt.NumPartitions), int(rt.ReplicationFactor)
		if partitions == -1 {
			partitions = int(c.cfg.NumPartitions)
		}
		if rf == -1 {
			rf = int(c.cfg.DefaultReplicationFactor)
		}
		if partitions+1 > budget {
			return nil, nil
		}
		var err error
		if assignment, err = placeReplicas(live, fenced, partitions, rf, start); err != nil {
			return nil, failf(kerr.InvalidReplicationFactor, "Unable to replicate the partition %d time(s): %s", rf, placementError(err))
		}
	}

	topic := &Topic{Name: rt.Topic}
	for _, name := range slices.Sorted(maps.Keys(configs)) {
		topic.Configs = append(topic.Configs, ConfigEntry{Name: name, Value: configs[name]})
	}
	records := make([]Record, 0, 1+len(assignment))
	records = append(records, topic)
	for i, replicas := range assignment {
		isr := slices.DeleteFunc(slices.Clone(replicas), func(id int32) bool { return !c.usable(im, id) })
		if len(isr) == 0 {
			return nil, failf(kerr.InvalidReplicaAssignment, "All brokers specified in the manual partition assignment for partition %d are fenced or in controlled shutdown.", i)
		}
		records = append(records, &Partition{Partition: int32(i), Replicas: slices.Clone(replicas), ISR: isr, Leader: isr[0]})
	}
	return records, nil
}

// usable reports whether broker id may lead or join an ISR: registered,
// unfenced, not shutting down.
func (c *Controller) usable(im *Image, id int32) bool {
	b := im.Brokers[id]
	return b != nil && !b.Fenced && !c.shuttingDown(id)
}

// checkManualAssignment is KRaft's validateManualPartitionAssignment: not
// empty, registered brokers, none twice, and rf replicas when rf >= 0.
func (c *Controller) checkManualAssignment(im *Image, replicas []int32, rf int) *apiError {
	if len(replicas) == 0 {
		return failf(kerr.InvalidReplicaAssignment, "The manual partition assignment includes an empty replica list.")
	}
	sorted := slices.Sorted(slices.Values(replicas))
	for i, id := range sorted {
		if im.Brokers[id] == nil {
			return failf(kerr.InvalidReplicaAssignment, "The manual partition assignment includes broker %d, but no such broker is registered.", id)
		}
		if i > 0 && sorted[i-1] == id {
			return failf(kerr.InvalidReplicaAssignment, "The manual partition assignment includes the broker %d more than once.", id)
		}
	}
	if rf >= 0 && len(replicas) != rf {
		return failf(kerr.InvalidReplicaAssignment, "The manual partition assignment includes a partition with %d replica(s), but this is not consistent with previous partitions, which have %d replica(s).", len(replicas), rf)
	}
	return nil
}

// drawTopicID calls newID until it returns an id that is neither zero nor
// taken, a few times at most.
func drawTopicID(im *Image, created map[UUID]bool, newID func() UUID) (UUID, bool) {
	for range 16 {
		id := newID()
		if id != (UUID{}) && im.Topics[id] == nil && !created[id] {
			return id, true
		}
	}
	return UUID{}, false
}

// unifyCollisionChars is Kafka's Topic.unifyCollisionChars: '.' and '_'
// may collide in metric names, so topics differing only there may not both
// exist.
func unifyCollisionChars(name string) string { return strings.ReplaceAll(name, ".", "_") }

// DeleteTopics handles a DeleteTopics request as KRaft does: topics named
// by TopicNames (v0-5) or Topics (v6+, by name or by id). An entry with
// neither name nor id, or with both, gets INVALID_REQUEST, as does a name
// or an id given twice (one response for all its entries), and a name
// given along with the id it maps to (both entries); an unknown name gets
// UNKNOWN_TOPIC_OR_PARTITION and an unknown id UNKNOWN_TOPIC_ID. Each topic
// deleted makes a TopicRemoved record, and its response names it by name
// and id. Responses follow the request's order (KRaft shuffles them).
func (c *Controller) DeleteTopics(im *Image, req *kmsg.DeleteTopicsRequest) ([]Record, *kmsg.DeleteTopicsResponse) {
	resp := kmsg.NewPtrDeleteTopicsResponse()
	resp.Version = req.Version
	type entry struct {
		name  *string
		id    UUID
		byID  bool
		fail  *apiError
		found bool // the name or id is a topic
	}
	var entries []*entry
	for i := range req.TopicNames {
		entries = append(entries, &entry{name: &req.TopicNames[i]})
	}
	for _, t := range req.Topics {
		e := &entry{name: t.Topic, id: UUID(t.TopicID), byID: t.Topic == nil}
		switch {
		case t.Topic == nil && e.id == (UUID{}):
			e.fail = failf(kerr.InvalidRequest, "Neither topic name nor id were specified.")
		case t.Topic != nil && e.id != (UUID{}):
			e.fail = failf(kerr.InvalidRequest, "You may not specify both topic name and topic id.")
		}
		entries = append(entries, e)
	}
	names, ids := map[string]int{}, map[UUID]int{}
	for _, e := range entries {
		switch {
		case e.fail != nil:
		case e.byID:
			ids[e.id]++
		default:
			names[*e.name]++
		}
	}
	// Resolve names to ids, and the ids to names; count how each topic is
	// asked for.
	asked := map[UUID]int{}
	for _, e := range entries {
		switch {
		case e.fail != nil:
		case e.byID:
			if t := im.Topics[e.id]; t != nil {
				name := t.Name
				e.name, e.found = &name, true
			}
		default:
			if id, ok := im.Names[*e.name]; ok {
				e.id, e.found = id, true
			}
		}
		single := e.byID && ids[e.id] == 1 || !e.byID && names[deref(e.name)] == 1
		if e.fail == nil && e.found && single {
			asked[e.id]++
		}
	}
	var records []Record
	reportedName, reportedID := map[string]bool{}, map[UUID]bool{}
	for _, e := range entries {
		if e.fail == nil {
			switch {
			case !e.byID && names[*e.name] > 1:
				if reportedName[*e.name] {
					continue
				}
				reportedName[*e.name] = true
				e.id = UUID{}
				e.fail = failf(kerr.InvalidRequest, "Duplicate topic name.")
			case e.byID && ids[e.id] > 1:
				if reportedID[e.id] {
					continue
				}
				reportedID[e.id] = true
				e.name = nil
				e.fail = failf(kerr.InvalidRequest, "Duplicate topic id.")
			case !e.found && e.byID:
				e.fail = failf(kerr.UnknownTopicID, "This server does not host this topic ID.")
			case !e.found:
				e.fail = failf(kerr.UnknownTopicOrPartition, "This server does not host this topic-partition.")
			case asked[e.id] > 1:
				e.fail = failf(kerr.InvalidRequest, "The provided topic name maps to an ID that was already supplied.")
			default:
				records = append(records, &TopicRemoved{ID: e.id})
			}
		}
		rt := kmsg.NewDeleteTopicsResponseTopic()
		rt.Topic, rt.TopicID = e.name, e.id
		rt.ErrorCode, rt.ErrorMessage = e.fail.code(), e.fail.message()
		resp.Topics = append(resp.Topics, rt)
	}
	return records, resp
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// CreatePartitions handles a CreatePartitions request as KRaft does: a
// name given twice gets INVALID_REQUEST, an unknown topic
// UNKNOWN_TOPIC_OR_PARTITION, a count not above the current one
// INVALID_PARTITIONS. A manual assignment must give one replica list per
// new partition, each valid as in CreateTopics and of the topic's
// replication factor (INVALID_REPLICA_ASSIGNMENT); without one,
// placeReplicas continues the topic's pattern over the live brokers (and
// the fenced ones once those run out, as in CreateTopics): its leaders
// round-robin on from where partition 0's leader sits in the placement
// order. The new partitions' ISR is their live replicas, the leader the
// first of them. With
// ValidateOnly there are no records; past 10000 records the whole request
// fails with POLICY_VIOLATION.
func (c *Controller) CreatePartitions(im *Image, req *kmsg.CreatePartitionsRequest) ([]Record, *kmsg.CreatePartitionsResponse) {
	resp := kmsg.NewPtrCreatePartitionsResponse()
	resp.Version = req.Version
	count := map[string]int{}
	for _, t := range req.Topics {
		count[t.Topic]++
	}
	live, fenced := c.placementBrokers(im)
	reported := map[string]bool{}
	var records []Record
	for i := range req.Topics {
		rt := &req.Topics[i]
		if reported[rt.Topic] {
			continue
		}
		reported[rt.Topic] = true
		var fail *apiError
		if count[rt.Topic] > 1 {
			fail = failf(kerr.InvalidRequest, "Duplicate topic name.")
		} else {
			var more []Record
			more, fail = c.createPartitions(im, rt, live, fenced, maxRecordsPerRequest-len(records))
			if fail == nil && more == nil {
				resp.Topics = resp.Topics[:0]
				for _, name := range distinctNames(len(req.Topics), func(i int) string { return req.Topics[i].Topic }) {
					out := kmsg.NewCreatePartitionsResponseTopic()
					out.Topic = name
					out.ErrorCode, out.ErrorMessage = errTooLarge.code(), errTooLarge.message()
					resp.Topics = append(resp.Topics, out)
				}
				return nil, resp
			}
			records = append(records, more...)
		}
		r := kmsg.NewCreatePartitionsResponseTopic()
		r.Topic = rt.Topic
		r.ErrorCode, r.ErrorMessage = fail.code(), fail.message()
		resp.Topics = append(resp.Topics, r)
	}
	if req.ValidateOnly {
		return nil, resp
	}
	return records, resp
}

// distinctNames returns the distinct names among name(0..n-1), in order.
func distinctNames(n int, name func(int) string) []string {
	var names []string
	seen := map[string]bool{}
	for i := range n {
		if s := name(i); !seen[s] {
			seen[s] = true
			names = append(names, s)
		}
	}
	return names
}

// createPartitions validates one topic of a CreatePartitions request and
// returns its new Partition records, or why not; neither when they would
// take more than budget records.
func (c *Controller) createPartitions(im *Image, rt *kmsg.CreatePartitionsRequestTopic, live, fenced []*BrokerImage, budget int) ([]Record, *apiError) {
	t, ok := im.Topic(rt.Topic)
	if !ok {
		return nil, failf(kerr.UnknownTopicOrPartition, "This server does not host this topic-partition.")
	}
	current := len(t.Partitions)
	switch {
	case int(rt.Count) == current:
		return nil, failf(kerr.InvalidPartitions, "Topic already has %d partition(s).", current)
	case int(rt.Count) < current:
		return nil, failf(kerr.InvalidPartitions, "The topic %s currently has %d partition(s); %d would not be an increase.", rt.Topic, current, rt.Count)
	case current == 0:
		return nil, failf(kerr.UnknownServerError, "Invalid state: topic %s appears to have no partitions.", rt.Topic)
	}
	additional := int(rt.Count) - current
	if rt.Assignment != nil && len(rt.Assignment) != additional {
		return nil, failf(kerr.InvalidReplicaAssignment, "Attempted to add %d additional partition(s), but only %d assignment(s) were specified.", additional, len(rt.Assignment))
	}
	if additional > budget {
		return nil, nil
	}
	rf := len(t.Partitions[0].Replicas)
	var assignment [][]int32
	if rt.Assignment != nil {
		for _, a := range rt.Assignment {
			if fail := c.checkManualAssignment(im, a.Replicas, rf); fail != nil {
				return nil, fail
			}
			assignment = append(assignment, a.Replicas)
		}
	} else {
		// The pattern continues from where partition 0's leader sits among
		// the live brokers, which lead the new partitions.
		l, err := newPlacementLayout(live)
		if err == nil {
			start := l.position(t.Partitions[0].Replicas[0]) + current
			assignment, err = placeReplicas(live, fenced, additional, rf, start)
		}
		if err != nil {
			// Kafka lets the placer's message through unprefixed here.
			return nil, failf(kerr.InvalidReplicationFactor, "%s", placementError(err))
		}
	}
	records := make([]Record, 0, len(assignment))
	for i, replicas := range assignment {
		isr := slices.DeleteFunc(slices.Clone(replicas), func(id int32) bool { return !c.usable(im, id) })
		if len(isr) == 0 {
			if rt.Assignment != nil {
				return nil, failf(kerr.InvalidReplicaAssignment, "All brokers specified in the manual partition assignment for partition %d are fenced or in controlled shutdown.", current+i)
			}
			return nil, failf(kerr.InvalidReplicationFactor, "Unable to replicate the partition %d time(s): All brokers are currently fenced or in controlled shutdown.", rf)
		}
		records = append(records, &Partition{TopicID: t.ID, Partition: int32(current + i), Replicas: slices.Clone(replicas), ISR: isr, Leader: isr[0]})
	}
	return records, nil
}

// producerIDBlockSize is how many producer ids one AllocateProducerIDs
// hands a broker: Kafka's ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE.
const producerIDBlockSize = 1000

// AllocateProducerIDs handles an AllocateProducerIDs request (KIP-730): a
// broker that has handed out its block of producer ids (InitProducerId)
// asks for the next. A broker that is not registered at the request's
// epoch gets STALE_BROKER_EPOCH. A fenced one may allocate: Kafka checks
// only the epoch, since ids are unique whoever holds them and a broker asks
// ahead of need (it fetches its next block before the current one runs
// out), perhaps while it is still catching up. Otherwise
// the block is the 1000 ids from Image.NextProducerID, and the record
// moves NextProducerID past them, so the next request, from any broker and
// under any controller, gets the block after. When a block would pass the
// largest int64 there are no more ids: UNKNOWN_SERVER_ERROR, as Kafka.
//
// The response holds only once the record is committed: a block answered
// but never committed would be handed out again.
func (c *Controller) AllocateProducerIDs(im *Image, req *kmsg.AllocateProducerIDsRequest) ([]Record, *kmsg.AllocateProducerIDsResponse) {
	resp := kmsg.NewPtrAllocateProducerIDsResponse()
	resp.Version = req.Version
	if b := im.Brokers[req.BrokerID]; b == nil || b.Epoch != req.BrokerEpoch {
		resp.ErrorCode = kerr.StaleBrokerEpoch.Code
		return nil, resp
	}
	start := im.NextProducerID
	if start > math.MaxInt64-producerIDBlockSize {
		resp.ErrorCode = kerr.UnknownServerError.Code
		return nil, resp
	}
	resp.ProducerIDStart, resp.ProducerIDLen = start, producerIDBlockSize
	return []Record{&ProducerIDsAllocated{BrokerID: req.BrokerID, BrokerEpoch: req.BrokerEpoch,
		NextProducerID: start + producerIDBlockSize}}, resp
}

// Leader recovery states of AlterPartition v1+.
const (
	leaderRecovered  int8 = 0
	leaderRecovering int8 = 1
)

// AlterPartition handles an AlterPartition request: a partition leader
// asking to change its ISR, checked as KRaft's
// validateAlterPartitionData, in its order. The requester's broker epoch
// must be its registration's (STALE_BROKER_EPOCH for the whole response
// otherwise). Per topic (by name before v2, by id from v2), an unknown one
// gets UNKNOWN_TOPIC_OR_PARTITION or UNKNOWN_TOPIC_ID; per partition:
//
//   - unknown partition: UNKNOWN_TOPIC_OR_PARTITION
//   - leader or partition epoch above the controller's: NOT_CONTROLLER (the
//     requester has seen a newer controller)
//   - leader epoch below: FENCED_LEADER_EPOCH
//   - requester not the leader: INVALID_REQUEST
//   - partition epoch below: INVALID_UPDATE_VERSION
//   - ISR with a non-replica, a duplicate, without the leader, or a leader
//     recovery state other than RECOVERED: INVALID_REQUEST
//   - ISR with a broker unregistered, fenced, shutting down or (v3+) of
//     another epoch: INELIGIBLE_REPLICA (OPERATION_NOT_ATTEMPTED before v2)
//
// On success a PartitionChange with the new ISR (leader and leader epoch
// unchanged, partition epoch + 1) and the response carries the new state;
// an ISR equal to the current one (as a set) changes nothing and the
// response carries the current state.
func (c *Controller) AlterPartition(im *Image, req *kmsg.AlterPartitionRequest) ([]Record, *kmsg.AlterPartitionResponse) {
	resp := kmsg.NewPtrAlterPartitionResponse()
	resp.Version = req.Version
	if b := im.Brokers[req.BrokerID]; b == nil || b.Epoch != req.BrokerEpoch {
		resp.ErrorCode = kerr.StaleBrokerEpoch.Code
		return nil, resp
	}
	type key struct {
		topic     UUID
		partition int32
	}
	changed := map[key]*PartitionImage{}
	var records []Record
	for _, rt := range req.Topics {
		out := kmsg.NewAlterPartitionResponseTopic()
		out.Topic, out.TopidID = rt.Topic, rt.TopicID
		var t *TopicImage
		if req.Version >= 2 {
			t = im.Topics[UUID(rt.TopicID)]
		} else {
			t, _ = im.Topic(rt.Topic)
		}
		for _, rp := range rt.Partitions {
			op := kmsg.NewAlterPartitionResponseTopicPartition()
			op.Partition = rp.Partition
			if t == nil {
				op.ErrorCode = kerr.UnknownTopicOrPartition.Code
				if req.Version >= 2 {
					op.ErrorCode = kerr.UnknownTopicID.Code
				}
				out.Partitions = append(out.Partitions, op)
				continue
			}
			k := key{t.ID, rp.Partition}
			p := changed[k]
			if p == nil {
				p, _ = im.Partition(t.ID, rp.Partition)
			}
			isr, epochs := alterPartitionISR(req.Version, &rp)
			if e := c.checkAlterPartition(im, req, p, &rp, isr, epochs); e != nil {
				op.ErrorCode = e.Code
				out.Partitions = append(out.Partitions, op)
				continue
			}
			if !sameSet(isr, p.ISR) {
				next := &PartitionImage{Replicas: p.Replicas, ISR: isr, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch + 1}
				changed[k] = next
				records = append(records, &PartitionChange{TopicID: t.ID, Partition: rp.Partition, Leader: next.Leader,
					ISR: slices.Clone(isr), LeaderEpoch: next.LeaderEpoch, PartitionEpoch: next.PartitionEpoch})
				p = next
			}
			op.LeaderID, op.LeaderEpoch, op.PartitionEpoch = p.Leader, p.LeaderEpoch, p.PartitionEpoch
			op.ISR = slices.Clone(p.ISR)
			op.LeaderRecoveryState = leaderRecovered
			out.Partitions = append(out.Partitions, op)
		}
		resp.Topics = append(resp.Topics, out)
	}
	return records, resp
}

// alterPartitionISR returns the requested ISR and the broker epochs given
// with it (-1: not checked): NewEpochISR from v3, NewISR before.
func alterPartitionISR(version int16, rp *kmsg.AlterPartitionRequestTopicPartition) ([]int32, []int64) {
	if version >= 3 {
		isr := make([]int32, len(rp.NewEpochISR))
		epochs := make([]int64, len(rp.NewEpochISR))
		for i, b := range rp.NewEpochISR {
			isr[i], epochs[i] = b.BrokerID, b.BrokerEpoch
		}
		return isr, epochs
	}
	epochs := make([]int64, len(rp.NewISR))
	for i := range epochs {
		epochs[i] = -1
	}
	return slices.Clone(rp.NewISR), epochs
}

// checkAlterPartition is KRaft's validateAlterPartitionData.
func (c *Controller) checkAlterPartition(im *Image, req *kmsg.AlterPartitionRequest, p *PartitionImage, rp *kmsg.AlterPartitionRequestTopicPartition, isr []int32, epochs []int64) *kerr.Error {
	switch {
	case p == nil:
		return kerr.UnknownTopicOrPartition
	case rp.LeaderEpoch > p.LeaderEpoch, rp.PartitionEpoch > p.PartitionEpoch:
		return kerr.NotController
	case rp.LeaderEpoch < p.LeaderEpoch:
		return kerr.FencedLeaderEpoch
	case req.BrokerID != p.Leader:
		return kerr.InvalidRequest
	case rp.PartitionEpoch < p.PartitionEpoch:
		return kerr.InvalidUpdateVersion
	}
	for i, id := range isr {
		if id < 0 || !slices.Contains(p.Replicas, id) || slices.Contains(isr[:i], id) {
			return kerr.InvalidRequest
		}
	}
	switch {
	case !slices.Contains(isr, p.Leader):
		return kerr.InvalidRequest
	case rp.LeaderRecoveryState == leaderRecovering && len(isr) > 1:
		return kerr.InvalidRequest
	case rp.LeaderRecoveryState != leaderRecovered:
		// The image has no recovery state: every partition is RECOVERED,
		// and may not go back to RECOVERING.
		return kerr.InvalidRequest
	}
	for i, id := range isr {
		b := im.Brokers[id]
		if b == nil || b.Fenced || c.shuttingDown(id) || (epochs[i] != -1 && epochs[i] != b.Epoch) {
			if req.Version > 1 {
				return kerr.IneligibleReplica
			}
			return kerr.OperationNotAttempted
		}
	}
	return nil
}

// sameSet reports whether a and b (each without duplicates) hold the same
// brokers.
func sameSet(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
