package group

import (
	"crypto/rand"
	"encoding/hex"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Reply is a response that is ready to send: ReqID is the id the shell gave
// the request when it handed it in.
type Reply struct {
	ReqID uint64
	Resp  kmsg.Response
}

// Client is who sent a JoinGroup: the client id from the request header and
// the connection's remote host. The coordinator records them for
// DescribeGroups and builds new member ids from the client id.
type Client struct {
	ID   string
	Host string
}

// Coordinator is the state of every classic group one coordinator owns, and
// the decisions Kafka's group coordinator makes on it. It is not safe for
// concurrent use: one goroutine owns it (see the package documentation).
type Coordinator struct {
	cfg    Config
	groups map[string]*group
	// offsets holds each group's committed offsets, by group id. A group
	// may have offsets and no entry in groups (a consumer that assigns its
	// own partitions, or a group loaded from the log): it is Empty to
	// ListGroups, DescribeGroups and DeleteGroups.
	offsets map[string]map[TopicPartition]Committed
	timers  timerHeap
	seq     uint64 // timer schedule order
	suffix  func() string
	// unloaded: Unload ran. The groups stay, Dead, so that requests for
	// them get COORDINATOR_NOT_AVAILABLE; other groups get NOT_COORDINATOR.
	unloaded bool

	// now and out hold the current call's clock and replies, so that the
	// decisions below need not pass them through every call.
	now time.Time
	out []Reply

	// observe, when set (by tests), sees every state transition.
	observe func(g *group, from, to State)
}

// NewCoordinator returns a Coordinator with no groups. New member ids end in
// a random UUID, as Kafka's do, so that ids handed out by an earlier
// coordinator of the same groups never come back.
func NewCoordinator(cfg Config) (*Coordinator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Coordinator{cfg: cfg, groups: map[string]*group{}, offsets: map[string]map[TopicPartition]Committed{}, suffix: randomUUID}, nil
}

// Config returns the configuration.
func (c *Coordinator) Config() Config { return c.cfg }

// SetMemberIDSuffix replaces the source of the part of new member ids after
// the client (or instance) id and "-". Tests use it to get readable ids;
// every suffix must be new.
func (c *Coordinator) SetMemberIDSuffix(f func() string) { c.suffix = f }

func randomUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// NextDeadline returns the earliest moment at which Tick has work, and false
// if nothing is scheduled. The shell sets its one timer to it after every
// call.
func (c *Coordinator) NextDeadline() (time.Time, bool) {
	if len(c.timers) == 0 {
		return time.Time{}, false
	}
	return c.timers[0].at, true
}

// Tick runs every deadline due at now, in deadline order: expired sessions,
// unused MEMBER_ID_REQUIRED member ids, join phases that end by timeout,
// and SyncGroups that did not come. It appends to dst the replies that are
// now complete (parked JoinGroups answered because a join phase ended or
// their member was removed, parked SyncGroups answered because a rebalance
// started) and returns it.
func (c *Coordinator) Tick(dst []Reply, now time.Time) []Reply {
	c.begin(dst, now)
	// Every deadline a timer sets is at least 1ms after now (schedule), so
	// this loop ends.
	for t := c.timers.popDue(now); t != nil; t = c.timers.popDue(now) {
		switch t.kind {
		case sessionTimer:
			c.expireSession(t.g, t.m)
		case pendingTimer:
			c.expirePending(t.g, t.p)
		case joinTimer:
			c.joinDeadline(t.g)
		case syncTimer:
			c.expirePendingSync(t.g)
		}
	}
	return c.end()
}

func (c *Coordinator) begin(dst []Reply, now time.Time) {
	c.out, c.now = dst, now
}

func (c *Coordinator) end() []Reply {
	out := c.out
	c.out = nil
	return out
}

func (c *Coordinator) reply(reqID uint64, resp kmsg.Response) {
	c.out = append(c.out, Reply{ReqID: reqID, Resp: resp})
}

// schedule sets t to fire delayMs after now. A deadline is never earlier
// than 1ms after now, so that a zero or negative timeout (a client may send
// a rebalance timeout of 0) cannot make Tick loop at one instant.
func (c *Coordinator) schedule(t *timer, delayMs int64) {
	delayMs = max(delayMs, 1)
	c.seq++
	c.timers.set(t, c.now.Add(time.Duration(delayMs)*time.Millisecond), c.seq)
}

func (c *Coordinator) transition(g *group, to State) {
	from := g.state
	g.prevState, g.state = from, to
	g.stateSince = c.now
	if c.observe != nil {
		c.observe(g, from, to)
	}
}

// Response constructors. Kafka's error responses carry generation -1, no
// protocol and no leader, which the kmsg defaults are.

func joinResponse(version int16, memberID string, code int16) *kmsg.JoinGroupResponse {
	r := kmsg.NewPtrJoinGroupResponse()
	r.Version, r.MemberID, r.ErrorCode = version, memberID, code
	return r
}

// joinSuccess is the JoinGroup response for m in g's current generation.
// members is the leader's member list (nil for followers).
func joinSuccess(version int16, g *group, m *member, leader string, members []kmsg.JoinGroupResponseMember) *kmsg.JoinGroupResponse {
	r := joinResponse(version, m.id, 0)
	r.Generation = g.generation
	r.ProtocolType = g.protocolTypeP
	r.Protocol = g.protocolP
	r.LeaderID = leader
	r.Members = members
	return r
}

func syncResponse(version int16, code int16) *kmsg.SyncGroupResponse {
	r := kmsg.NewPtrSyncGroupResponse()
	r.Version, r.ErrorCode = version, code
	return r
}

func heartbeatResponse(version int16, err *kerr.Error) *kmsg.HeartbeatResponse {
	r := kmsg.NewPtrHeartbeatResponse()
	r.Version = version
	if err != nil {
		r.ErrorCode = err.Code
	}
	return r
}

// Join handles a JoinGroup request (versions 0-9), as Kafka's
// GroupMetadataManager.classicGroupJoin does. It appends to dst the replies
// that are complete, which may include other members' parked JoinGroups if
// this one ends the join phase, and returns it. If the reply for reqID is
// not among them, the request is parked: its reply comes from a later call.
//
// client is who sent it (the client id names new member ids).
func (c *Coordinator) Join(dst []Reply, now time.Time, reqID uint64, client Client, req *kmsg.JoinGroupRequest) []Reply {
	c.begin(dst, now)
	c.join(reqID, client, req)
	return c.end()
}

func (c *Coordinator) join(reqID uint64, client Client, req *kmsg.JoinGroupRequest) {
	v := req.Version
	if v < 5 && req.InstanceID != nil {
		// Fields a version does not have are ignored, so a request built
		// by hand means what the same request off the wire would.
		r := *req
		r.InstanceID = nil
		req = &r
	}
	fail := func(memberID string, err *kerr.Error) { c.reply(reqID, joinResponse(v, memberID, err.Code)) }
	if req.Group == "" {
		fail(req.MemberID, kerr.InvalidGroupID)
		return
	}
	if s := req.SessionTimeoutMillis; s < c.cfg.GroupMinSessionTimeoutMs || s > c.cfg.GroupMaxSessionTimeoutMs {
		fail(req.MemberID, kerr.InvalidSessionTimeout)
		return
	}
	unknown := req.MemberID == ""
	g := c.groups[req.Group]
	created := false
	if g == nil {
		if c.unloaded {
			fail(req.MemberID, kerr.NotCoordinator)
			return
		}
		// Only a join without a member id creates a group: a member id
		// for a group that does not exist is stale.
		if !unknown {
			fail(req.MemberID, kerr.UnknownMemberID)
			return
		}
		g = newGroup(req.Group)
		g.stateSince = c.now // Empty, as Kafka creates a group
		c.groups[req.Group] = g
		created = true
	}
	j := joinCall{reqID: reqID, version: v, client: client, req: req, rebalanceTimeoutMs: req.RebalanceTimeoutMillis}
	if v == 0 {
		// v0 has no rebalance timeout; Kafka uses the session timeout.
		j.rebalanceTimeoutMs = req.SessionTimeoutMillis
	}
	switch {
	case !c.acceptJoiningMember(g, req.MemberID):
		// Kafka drops the member (one that has not rejoined in time) and
		// tells it the group is full.
		if m := g.byID[req.MemberID]; m != nil {
			c.remove(g, m)
		} else if p := g.pending[req.MemberID]; p != nil {
			c.removePending(g, p)
		}
		fail("", kerr.GroupMaxSizeReached)
	case unknown:
		c.joinNewMember(g, &j)
	default:
		c.joinExistingMember(g, &j)
	}
	// Kafka keeps a group a failed join created (it writes it to the log);
	// one that holds nothing is not worth the memory, so it goes.
	if created && len(g.members) == 0 && len(g.pending) == 0 {
		delete(c.groups, g.id)
	}
}

// joinCall is one JoinGroup being handled.
type joinCall struct {
	reqID              uint64
	version            int16
	client             Client
	req                *kmsg.JoinGroupRequest
	rebalanceTimeoutMs int32
}

func (j *joinCall) park() parked { return parked{reqID: j.reqID, version: j.version, ok: true} }

// acceptJoiningMember is Kafka's group.max.size rule: while members rejoin,
// an existing member that already rejoined is accepted and a new one only if
// fewer than group.max.size have rejoined (which sheds the last members of a
// group that is over the limit); otherwise existing members are accepted and
// new ones up to group.max.size.
func (c *Coordinator) acceptJoiningMember(g *group, memberID string) bool {
	limit := int(c.cfg.GroupMaxSize)
	switch g.state {
	case PreparingRebalance:
		m := g.byID[memberID]
		return (m != nil && m.join.ok) || g.awaitingJoin < limit
	case CompletingRebalance, Stable:
		return g.byID[memberID] != nil || len(g.members) < limit
	}
	return true
}

// joinNewMember handles a JoinGroup without a member id.
func (c *Coordinator) joinNewMember(g *group, j *joinCall) {
	req := j.req
	if g.state == Dead {
		c.reply(j.reqID, joinResponse(j.version, "", kerr.CoordinatorNotAvailable.Code))
		return
	}
	if !g.supportsProtocols(req.ProtocolType, req.Protocols) {
		c.reply(j.reqID, joinResponse(j.version, "", kerr.InconsistentGroupProtocol.Code))
		return
	}
	prefix := j.client.ID
	if req.InstanceID != nil {
		prefix = *req.InstanceID
	}
	newID := prefix + "-" + c.suffix()
	if req.InstanceID != nil {
		// A static member needs no handshake: its instance id already
		// says who it is, and a known one replaces its old member id.
		if old := g.static[*req.InstanceID]; old != nil {
			c.replaceStaticMember(g, old, newID, j)
		} else {
			c.addMember(g, newID, j)
		}
		return
	}
	if j.version >= 4 {
		// KIP-394: hand out the id and make the client come back with it,
		// so that a client whose JoinGroup times out and is retried does
		// not leave a ghost member behind for every attempt. The id waits
		// one session timeout.
		p := &pending{id: newID}
		p.timer = timer{idx: -1, kind: pendingTimer, g: g, p: p}
		g.pending[newID] = p
		c.schedule(&p.timer, int64(req.SessionTimeoutMillis))
		c.reply(j.reqID, joinResponse(j.version, newID, kerr.MemberIDRequired.Code))
		return
	}
	c.addMember(g, newID, j)
}

// joinExistingMember handles a JoinGroup with a member id.
func (c *Coordinator) joinExistingMember(g *group, j *joinCall) {
	req := j.req
	fail := func(err *kerr.Error) { c.reply(j.reqID, joinResponse(j.version, req.MemberID, err.Code)) }
	if g.state == Dead {
		fail(kerr.CoordinatorNotAvailable)
		return
	}
	if !g.supportsProtocols(req.ProtocolType, req.Protocols) {
		fail(kerr.InconsistentGroupProtocol)
		return
	}
	if g.pending[req.MemberID] != nil && req.InstanceID == nil {
		// The second half of the MEMBER_ID_REQUIRED handshake. (A pending
		// id with an instance id is impossible from a real client: Kafka
		// fails it as an illegal state; here validateMember refuses it.)
		c.addMember(g, req.MemberID, j)
		return
	}
	if err := g.validateMember(req.MemberID, req.InstanceID); err != nil {
		fail(err)
		return
	}
	m := g.byID[req.MemberID]
	switch g.state {
	case PreparingRebalance:
		c.updateMember(g, m, j)
		c.maybeCompleteJoinPhase(g)
	case CompletingRebalance:
		if m.matches(req.Protocols) {
			// Most likely it never got the JoinGroup response: send it
			// again.
			var members []kmsg.JoinGroupResponseMember
			if g.leader == m.id {
				members = g.leaderMembers()
			}
			c.reply(j.reqID, joinSuccess(j.version, g, m, g.leader, members))
			return
		}
		c.updateMember(g, m, j)
		c.prepareRebalance(g)
	case Stable:
		// A rejoining leader forces a rebalance even with the same
		// metadata: that is how a leader asks for one when something the
		// assignment depends on changed outside the metadata (a topic's
		// partition count, for consumers). A follower with the same
		// metadata only needs the current generation to sync with.
		if g.leader != m.id && m.matches(req.Protocols) {
			c.reply(j.reqID, joinSuccess(j.version, g, m, g.leader, nil))
			return
		}
		c.updateMember(g, m, j)
		c.prepareRebalance(g)
	default:
		fail(kerr.UnknownMemberID)
	}
}

// addMember adds a member with a parked JoinGroup and starts or advances
// the rebalance (Kafka's addMemberThenRebalanceOrCompleteJoin).
func (c *Coordinator) addMember(g *group, id string, j *joinCall) {
	req := j.req
	m := &member{
		id:                 id,
		clientID:           j.client.ID,
		clientHost:         j.client.Host,
		sessionTimeoutMs:   req.SessionTimeoutMillis,
		rebalanceTimeoutMs: j.rebalanceTimeoutMs,
		protocolType:       req.ProtocolType,
		protocols:          copyProtocols(req.Protocols),
		isNew:              true,
	}
	if req.InstanceID != nil {
		inst := *req.InstanceID
		m.instanceID = &inst
		g.static[inst] = m
	}
	m.session = timer{idx: -1, kind: sessionTimer, g: g, m: m}
	if g.state == PreparingRebalance && g.prevState == Empty {
		g.newMemberAdded = true
	}
	if len(g.members) == 0 {
		g.setProtocolType(m.protocolType)
	}
	if g.leader == "" {
		g.leader = id
	}
	g.members = append(g.members, m)
	g.byID[id] = m
	g.incSupported(m)
	m.join = j.park()
	g.awaitingJoin++
	if p := g.pending[id]; p != nil {
		c.removePending(g, p)
	}
	c.schedule(&m.session, int64(c.cfg.NewMemberJoinTimeoutMs))
	c.maybePrepareRebalanceOrCompleteJoin(g)
}

// updateMember records a known member's new JoinGroup and parks it. A
// JoinGroup it had parked already is answered REBALANCE_IN_PROGRESS: Kafka
// drops it unanswered, but a request left unanswered would hold up every
// later response on its connection.
func (c *Coordinator) updateMember(g *group, m *member, j *joinCall) {
	g.decSupported(m)
	m.protocols = copyProtocols(j.req.Protocols)
	g.incSupported(m)
	m.rebalanceTimeoutMs = j.rebalanceTimeoutMs
	m.sessionTimeoutMs = j.req.SessionTimeoutMillis
	if m.join.ok {
		c.reply(m.join.reqID, joinResponse(m.join.version, m.id, kerr.RebalanceInProgress.Code))
	} else {
		g.awaitingJoin++
	}
	m.join = j.park()
}

// replaceStaticMember gives a known group.instance.id the new member id
// newID (KIP-345): the old id is fenced, and requests it had parked are
// answered FENCED_INSTANCE_ID. The member keeps its assignment, so a static
// member that restarts within its session timeout does not cause a
// rebalance unless it changes the protocol the group would select.
func (c *Coordinator) replaceStaticMember(g *group, m *member, newID string, j *joinCall) {
	currentLeader := g.leader
	if m.join.ok {
		r := joinResponse(m.join.version, m.id, kerr.FencedInstanceID.Code)
		c.reply(m.join.reqID, r)
		m.join = parked{}
		g.awaitingJoin--
	}
	if m.sync.ok {
		c.reply(m.sync.reqID, syncResponse(m.sync.version, kerr.FencedInstanceID.Code))
		m.sync = parked{}
	}
	oldID := m.id
	delete(g.byID, oldID)
	m.id = newID
	g.byID[newID] = m
	if g.leader == oldID {
		g.leader = newID
	}
	// Kafka's replacement keeps the old client id and host, and is not new.
	m.isNew = false
	c.updateMember(g, m, j)
	// Its session starts now, with the timeout the new incarnation asked
	// for. (Kafka restarts it before taking the new timeout, so the first
	// deadline uses the old one.)
	c.schedule(&m.session, int64(m.sessionTimeoutMs))

	switch g.state {
	case Stable:
		if g.protocol != g.selectProtocol() {
			c.maybePrepareRebalanceOrCompleteJoin(g)
			return
		}
		m.join = parked{}
		g.awaitingJoin--
		if j.version >= 9 {
			// KIP-814: tell a returning leader it leads, with the
			// members, but that the assignment stands (SkipAssignment).
			var members []kmsg.JoinGroupResponseMember
			isLeader := g.leader == m.id
			if isLeader {
				members = g.leaderMembers()
			}
			r := joinSuccess(j.version, g, m, g.leader, members)
			r.SkipAssignment = isLeader
			c.reply(j.reqID, r)
			return
		}
		// Older clients would run the assignor if told they lead, and a
		// Stable group would not hand out the result; so they are told
		// the old leader id, which is not theirs.
		c.reply(j.reqID, joinSuccess(j.version, g, m, currentLeader, nil))
	case CompletingRebalance:
		// The leader may be assigning to the old member id already: only
		// a new join phase gets the new id an assignment.
		c.prepareRebalance(g)
	default:
		c.maybeCompleteJoinPhase(g)
	}
}

// remove takes m out of g without starting a rebalance (Kafka's
// ClassicGroup.remove). A JoinGroup it had parked is answered
// UNKNOWN_MEMBER_ID with no member id, as Kafka answers it, so that a client
// still waiting starts over; so is a parked SyncGroup, which Kafka would
// leave unanswered.
func (c *Coordinator) remove(g *group, m *member) {
	if m.join.ok {
		c.reply(m.join.reqID, joinResponse(m.join.version, "", kerr.UnknownMemberID.Code))
		m.join = parked{}
		g.awaitingJoin--
	}
	if m.sync.ok {
		c.reply(m.sync.reqID, syncResponse(m.sync.version, kerr.UnknownMemberID.Code))
		m.sync = parked{}
	}
	g.decSupported(m)
	if m.instanceID != nil && g.static[*m.instanceID] == m {
		delete(g.static, *m.instanceID)
	}
	delete(g.byID, m.id)
	if i := slices.Index(g.members, m); i >= 0 {
		g.members = slices.Delete(g.members, i, i+1)
	}
	if m.pendingSync {
		m.pendingSync = false
		g.pendingSyncs--
	}
	c.timers.remove(&m.session)
	if g.leader == m.id {
		g.leader = ""
		if len(g.members) > 0 {
			g.leader = g.members[0].id
		}
	}
}

func (c *Coordinator) removePending(g *group, p *pending) {
	delete(g.pending, p.id)
	c.timers.remove(&p.timer)
}

// maybePrepareRebalanceOrCompleteJoin starts a rebalance if the group may
// start one, and otherwise (it is in one) checks whether the join phase is
// over.
func (c *Coordinator) maybePrepareRebalanceOrCompleteJoin(g *group) {
	if g.canRebalance() {
		c.prepareRebalance(g)
	} else {
		c.maybeCompleteJoinPhase(g)
	}
}

// maybeCompleteJoinPhase ends the join phase if every member has rejoined,
// except during the initial delay, whose point is to wait.
func (c *Coordinator) maybeCompleteJoinPhase(g *group) {
	if g.state != PreparingRebalance || g.prevState == Empty || !g.hasAllMembersJoined() {
		return
	}
	c.completeJoin(g)
}

// prepareRebalance starts a join phase. SyncGroups parked in the previous
// generation are answered REBALANCE_IN_PROGRESS (their members must
// rejoin). An Empty group waits group.initial.rebalance.delay.ms for more
// members; otherwise the phase ends when every member has rejoined or at the
// rebalance timeout.
func (c *Coordinator) prepareRebalance(g *group) {
	if g.state == CompletingRebalance {
		c.resetAndPropagateAssignment(g, kerr.RebalanceInProgress)
	}
	c.clearPendingSync(g)
	initial := g.state == Empty
	if initial {
		g.initialDelay = true
		g.delayMs = int64(c.cfg.GroupInitialRebalanceDelayMs)
		g.remainingMs = max(g.rebalanceTimeoutMs()-g.delayMs, 0)
		c.schedule(&g.join, g.delayMs)
	}
	c.transition(g, PreparingRebalance)
	if initial {
		return
	}
	if g.hasAllMembersJoined() {
		c.completeJoin(g)
		return
	}
	g.initialDelay = false
	c.schedule(&g.join, g.rebalanceTimeoutMs())
}

// joinDeadline runs when the join timer fires. During the initial delay,
// a member that arrived in the last delay extends it once more, while the
// rebalance timeout allows (Kafka's InitialDelayedJoin); otherwise the join
// phase ends with whoever has rejoined.
func (c *Coordinator) joinDeadline(g *group) {
	if g.state != PreparingRebalance {
		return
	}
	if g.initialDelay && g.newMemberAdded && g.remainingMs != 0 {
		g.newMemberAdded = false
		delay := min(int64(c.cfg.GroupInitialRebalanceDelayMs), g.remainingMs)
		g.remainingMs = max(g.remainingMs-g.delayMs, 0)
		g.delayMs = delay
		c.schedule(&g.join, delay)
		return
	}
	c.completeJoin(g)
}

// completeJoin ends the join phase (Kafka's completeClassicGroupJoin).
// Dynamic members that did not rejoin are removed; static ones stay, as
// their instance may be restarting and will be back within its session
// timeout. If nobody rejoined but members remain (all static), the phase is
// extended by the rebalance timeout until their sessions expire. Otherwise
// the generation goes up by one, the protocol is selected, every parked
// JoinGroup is answered (the leader's with every member's metadata), and
// each member has the rebalance timeout to send its SyncGroup.
func (c *Coordinator) completeJoin(g *group) {
	c.timers.remove(&g.join)
	g.initialDelay = false
	for i := 0; i < len(g.members); {
		m := g.members[i]
		if !m.join.ok && !m.isStatic() {
			c.remove(g, m)
			continue
		}
		i++
	}
	if g.state == Dead {
		return
	}
	if !g.maybeElectNewJoinedLeader() && len(g.members) > 0 {
		c.schedule(&g.join, g.rebalanceTimeoutMs())
		return
	}
	g.generation++
	c.clearPendingSync(g)
	if len(g.members) == 0 {
		g.setProtocol("")
		g.computeSubscriptions()
		c.transition(g, Empty)
		return
	}
	g.setProtocol(g.selectProtocol())
	g.computeSubscriptions()
	c.transition(g, CompletingRebalance)
	leaderMembers := g.leaderMembers()
	for _, m := range g.members {
		if m.join.ok {
			var members []kmsg.JoinGroupResponseMember
			if m.id == g.leader {
				members = leaderMembers
			}
			c.reply(m.join.reqID, joinSuccess(m.join.version, g, m, g.leader, members))
			m.join = parked{}
			g.awaitingJoin--
		}
		c.schedule(&m.session, int64(m.sessionTimeoutMs))
		m.isNew = false
		m.pendingSync = true
		g.pendingSyncs++
	}
	g.syncGeneration = g.generation
	c.schedule(&g.sync, g.rebalanceTimeoutMs())
}

// clearPendingSync forgets who has yet to send SyncGroup, and the deadline.
func (c *Coordinator) clearPendingSync(g *group) {
	for _, m := range g.members {
		m.pendingSync = false
	}
	g.pendingSyncs = 0
	c.timers.remove(&g.sync)
}

// removePendingSync records m's SyncGroup; the sync deadline goes once
// every member has sent one.
func (c *Coordinator) removePendingSync(g *group, m *member) {
	if m.pendingSync {
		m.pendingSync = false
		g.pendingSyncs--
	}
	if g.pendingSyncs == 0 || (g.state != CompletingRebalance && g.state != Stable) {
		c.timers.remove(&g.sync)
	}
}

// expirePendingSync removes the members that got their JoinGroup response
// but sent no SyncGroup within the rebalance timeout, and rebalances.
func (c *Coordinator) expirePendingSync(g *group) {
	if g.syncGeneration != g.generation || (g.state != CompletingRebalance && g.state != Stable) || g.pendingSyncs == 0 {
		return
	}
	for i := 0; i < len(g.members); {
		m := g.members[i]
		if m.pendingSync {
			c.remove(g, m)
			continue
		}
		i++
	}
	c.prepareRebalance(g)
}

// resetAndPropagateAssignment clears every assignment and answers the
// parked SyncGroups with err.
func (c *Coordinator) resetAndPropagateAssignment(g *group, err *kerr.Error) {
	for _, m := range g.members {
		m.assignment = nil
	}
	c.propagateAssignment(g, err)
}

// propagateAssignment answers every parked SyncGroup: with the member's
// assignment, or with err. Each answered member's session starts again
// from now: while its SyncGroup was parked its session could not expire.
func (c *Coordinator) propagateAssignment(g *group, err *kerr.Error) {
	for _, m := range g.members {
		if !m.sync.ok {
			continue
		}
		r := syncResponse(m.sync.version, 0)
		if err != nil {
			r.ErrorCode = err.Code
		} else {
			r.ProtocolType, r.Protocol = g.protocolTypeP, g.protocolP
			r.MemberAssignment = m.assignment
		}
		c.reply(m.sync.reqID, r)
		m.sync = parked{}
		c.schedule(&m.session, int64(m.sessionTimeoutMs))
	}
}

// Sync handles a SyncGroup request (versions 0-5), as Kafka's
// classicGroupSync does. A follower's SyncGroup during CompletingRebalance
// is parked until the leader's arrives; the leader's hands out every
// assignment (members it left out get an empty one) and makes the group
// Stable. It appends the complete replies to dst and returns it.
func (c *Coordinator) Sync(dst []Reply, now time.Time, reqID uint64, req *kmsg.SyncGroupRequest) []Reply {
	c.begin(dst, now)
	c.syncGroup(reqID, req)
	return c.end()
}

func (c *Coordinator) syncGroup(reqID uint64, req *kmsg.SyncGroupRequest) {
	v := req.Version
	instanceID, protocolType, protocol := req.InstanceID, req.ProtocolType, req.Protocol
	if v < 3 {
		instanceID = nil
	}
	if v < 5 {
		protocolType, protocol = nil, nil
	}
	fail := func(err *kerr.Error) { c.reply(reqID, syncResponse(v, err.Code)) }
	// v5 (KIP-559): the client says which protocol type and name it
	// assigned for, and must say both (Kafka checks this first, in
	// KafkaApis); a mismatch with the group's means it used another
	// generation's.
	if v >= 5 && (protocolType == nil || protocol == nil) {
		fail(kerr.InconsistentGroupProtocol)
		return
	}
	if req.Group == "" {
		fail(kerr.InvalidGroupID)
		return
	}
	g := c.groups[req.Group]
	switch {
	case g == nil && c.unloaded:
		fail(kerr.NotCoordinator)
		return
	case g == nil:
		fail(kerr.UnknownMemberID)
		return
	case g.state == Dead:
		fail(kerr.CoordinatorNotAvailable)
		return
	}
	if err := g.validateMember(req.MemberID, instanceID); err != nil {
		fail(err)
		return
	}
	if req.Generation != g.generation {
		fail(kerr.IllegalGeneration)
		return
	}
	if inconsistent(protocolType, g.protocolType) || inconsistent(protocol, g.protocol) {
		fail(kerr.InconsistentGroupProtocol)
		return
	}
	m := g.byID[req.MemberID]
	switch g.state {
	case Empty:
		fail(kerr.UnknownMemberID)
	case PreparingRebalance:
		fail(kerr.RebalanceInProgress)
	case CompletingRebalance:
		if m.sync.ok {
			c.reply(m.sync.reqID, syncResponse(m.sync.version, kerr.RebalanceInProgress.Code))
		}
		m.sync = parked{reqID: reqID, version: v, ok: true}
		c.removePendingSync(g, m)
		if g.leader != m.id {
			return
		}
		for _, mm := range g.members {
			mm.assignment = nil
		}
		// Later entries for one member win, as in Kafka's map; entries for
		// non-members are ignored.
		for _, a := range req.GroupAssignment {
			if mm := g.byID[a.MemberID]; mm != nil {
				mm.assignment = append([]byte{}, a.MemberAssignment...)
			}
		}
		c.propagateAssignment(g, nil)
		c.transition(g, Stable)
	case Stable:
		c.removePendingSync(g, m)
		r := syncResponse(v, 0)
		r.ProtocolType, r.Protocol = g.protocolTypeP, g.protocolP
		r.MemberAssignment = m.assignment
		c.reply(reqID, r)
		c.schedule(&m.session, int64(m.sessionTimeoutMs))
	}
}

// inconsistent reports whether a protocol type or name from a request
// contradicts the group's. Before v5 the request has none, and a group
// that has none (Empty) contradicts nothing.
func inconsistent(fromRequest *string, groups string) bool {
	return fromRequest != nil && groups != "" && *fromRequest != groups
}

// Heartbeat handles a Heartbeat request (versions 0-4), as Kafka's
// classicGroupHeartbeat does. A valid heartbeat moves the member's session
// deadline to now plus its session timeout. During the join phase the
// answer is REBALANCE_IN_PROGRESS, which tells the member to rejoin; between
// the JoinGroup response and the assignment (CompletingRebalance) it is
// NONE, since a member that has its JoinGroup response has already rejoined.
func (c *Coordinator) Heartbeat(now time.Time, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	c.begin(nil, now)
	defer c.end()
	v := req.Version
	instanceID := req.InstanceID
	if v < 3 {
		instanceID = nil
	}
	if req.Group == "" {
		return heartbeatResponse(v, kerr.InvalidGroupID)
	}
	g := c.groups[req.Group]
	switch {
	case g == nil && c.unloaded:
		return heartbeatResponse(v, kerr.NotCoordinator)
	case g == nil:
		return heartbeatResponse(v, kerr.UnknownMemberID)
	case g.state == Dead:
		return heartbeatResponse(v, kerr.CoordinatorNotAvailable)
	}
	if err := g.validateMember(req.MemberID, instanceID); err != nil {
		return heartbeatResponse(v, err)
	}
	if req.Generation != g.generation {
		return heartbeatResponse(v, kerr.IllegalGeneration)
	}
	m := g.byID[req.MemberID]
	switch g.state {
	case PreparingRebalance:
		c.schedule(&m.session, int64(m.sessionTimeoutMs))
		return heartbeatResponse(v, kerr.RebalanceInProgress)
	case CompletingRebalance, Stable:
		c.schedule(&m.session, int64(m.sessionTimeoutMs))
		return heartbeatResponse(v, nil)
	}
	return heartbeatResponse(v, kerr.UnknownMemberID)
}

// Leave handles a LeaveGroup request (versions 0-5; v3+ carries a batch of
// members, each answered on its own), as Kafka's classicGroupLeave does. A
// member may be named by its member id, by its group.instance.id (v3+, with
// no member id: how an administrator removes a static member), or both. The
// members that leave trigger one rebalance. It appends the complete replies
// to dst, the LeaveGroup's own last, and returns it.
func (c *Coordinator) Leave(dst []Reply, now time.Time, reqID uint64, req *kmsg.LeaveGroupRequest) []Reply {
	c.begin(dst, now)
	resp := c.leave(req)
	if req.Version < 3 {
		// v0-2 name one member and answer with a top-level error only.
		if resp.ErrorCode == 0 && len(resp.Members) == 1 {
			resp.ErrorCode = resp.Members[0].ErrorCode
		}
		resp.Members = nil
	}
	c.reply(reqID, resp)
	return c.end()
}

func (c *Coordinator) leave(req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := kmsg.NewPtrLeaveGroupResponse()
	resp.Version = req.Version
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	g := c.groups[req.Group]
	switch {
	case g == nil && c.unloaded:
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	case g != nil && g.state == Dead:
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp
	}
	left := 0
	for _, lm := range leaving {
		r := kmsg.NewLeaveGroupResponseMember()
		r.MemberID, r.InstanceID = lm.MemberID, lm.InstanceID
		switch {
		case g == nil:
			r.ErrorCode = kerr.UnknownMemberID.Code
		case lm.MemberID == "":
			if m := instance(g, lm.InstanceID); m != nil {
				c.remove(g, m)
				left++
			} else {
				r.ErrorCode = kerr.UnknownMemberID.Code
			}
		case g.pending[lm.MemberID] != nil:
			c.removePending(g, g.pending[lm.MemberID])
			left++
		default:
			if err := g.validateMember(lm.MemberID, lm.InstanceID); err != nil {
				r.ErrorCode = err.Code
			} else {
				c.remove(g, g.byID[lm.MemberID])
				left++
			}
		}
		resp.Members = append(resp.Members, r)
	}
	if left > 0 {
		switch g.state {
		case Stable, CompletingRebalance:
			c.maybePrepareRebalanceOrCompleteJoin(g)
		case PreparingRebalance:
			c.maybeCompleteJoinPhase(g)
		}
	}
	return resp
}

func instance(g *group, instanceID *string) *member {
	if instanceID == nil {
		return nil
	}
	return g.static[*instanceID]
}

// expireSession runs when a member's deadline passes without a heartbeat.
// A member with a parked JoinGroup or SyncGroup is waiting on the group,
// not failing, so it stays (its session starts again when the request is
// answered) unless it is new: a new member's deadline is the new-member
// join timeout, which parked or not it has missed.
func (c *Coordinator) expireSession(g *group, m *member) {
	if g.state == Dead {
		return
	}
	if !m.isNew && (m.join.ok || m.sync.ok) {
		return
	}
	c.remove(g, m)
	switch g.state {
	case Stable, CompletingRebalance:
		c.maybePrepareRebalanceOrCompleteJoin(g)
	case PreparingRebalance:
		if g.hasAllMembersJoined() {
			c.completeJoin(g)
		}
	}
}

// expirePending forgets a member id handed out with MEMBER_ID_REQUIRED and
// never used; a join phase that waited for it may now end.
func (c *Coordinator) expirePending(g *group, p *pending) {
	delete(g.pending, p.id)
	if g.state == PreparingRebalance && g.hasAllMembersJoined() {
		c.completeJoin(g)
	}
}

// ValidateCommit applies Kafka's rules for an OffsetCommit from memberID
// (with instanceID, if static) at generation to the group's current state,
// and returns nil if the commit may be stored:
//
//   - generation < 0 (-1 in practice) with no member id: a consumer that
//     assigns partitions itself, or an admin client. Allowed while the group
//     is Empty or does not exist (the commit then creates it); otherwise
//     UNKNOWN_MEMBER_ID, since the group is in use.
//   - otherwise the member must be the group's (UNKNOWN_MEMBER_ID,
//     FENCED_INSTANCE_ID) at its current generation (ILLEGAL_GENERATION),
//     and not between its JoinGroup response and its assignment
//     (REBALANCE_IN_PROGRESS). A group known only by its committed offsets
//     (a standalone consumer's, or any after a reload) is an Empty group
//     with no members, as in Kafka, so a member of it is unknown
//     (UNKNOWN_MEMBER_ID, which sends a consumer to rejoin). A generation
//     >= 0 for a group that does not exist at all is ILLEGAL_GENERATION,
//     which OffsetCommit v9+ answers as GROUP_ID_NOT_FOUND instead (the
//     caller knows the version).
//
// It changes nothing. (A valid commit in Stable or PreparingRebalance also
// restarts the member's session, as in Kafka: CommitOffsets does that.)
func (c *Coordinator) ValidateCommit(groupID, memberID string, generation int32, instanceID *string) *kerr.Error {
	if groupID == "" {
		return kerr.InvalidGroupID
	}
	g := c.groups[groupID]
	if g == nil {
		switch {
		case c.unloaded:
			return kerr.NotCoordinator
		case generation < 0:
			return nil
		case c.offsets[groupID] != nil:
			// Kafka's ClassicGroup.validateOffsetCommit on an Empty
			// group: validateMember finds no such member.
			return kerr.UnknownMemberID
		}
		return kerr.IllegalGeneration
	}
	if g.state == Dead {
		return kerr.CoordinatorNotAvailable
	}
	if generation < 0 && g.state == Empty {
		return nil
	}
	if generation >= 0 || memberID != "" || instanceID != nil {
		if err := g.validateMember(memberID, instanceID); err != nil {
			return err
		}
		if generation != g.generation {
			return kerr.IllegalGeneration
		}
	} else if g.state != Empty {
		return kerr.UnknownMemberID
	}
	if g.state == CompletingRebalance {
		return kerr.RebalanceInProgress
	}
	return nil
}

// DescribeGroups answers a DescribeGroups request (versions 0-6) from the
// state. Members' metadata and assignments are only shown for a Stable
// group, as Kafka shows them: before that they belong to a generation not
// yet handed out. A group that does not exist is Dead, with
// GROUP_ID_NOT_FOUND from v6 (KIP-1043). AuthorizedOperations is left for
// the caller, which knows the principal.
func (c *Coordinator) DescribeGroups(req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := kmsg.NewPtrDescribeGroupsResponse()
	resp.Version = req.Version
	for _, id := range req.Groups {
		rg := kmsg.NewDescribeGroupsResponseGroup()
		rg.Group = id
		g := c.groups[id]
		switch {
		case c.unloaded:
			rg.ErrorCode = kerr.NotCoordinator.Code
		case g == nil && c.offsets[id] != nil:
			rg.State = Empty.String()
		case g == nil:
			rg.State = Dead.String()
			if req.Version >= 6 {
				rg.ErrorCode = kerr.GroupIDNotFound.Code
			}
		default:
			rg.State = g.state.String()
			rg.ProtocolType = g.protocolType
			stable := g.state == Stable
			if stable {
				rg.Protocol = g.protocol
			}
			for _, m := range g.members {
				dm := kmsg.NewDescribeGroupsResponseGroupMember()
				dm.MemberID, dm.InstanceID = m.id, m.instanceID
				dm.ClientID, dm.ClientHost = m.clientID, m.clientHost
				if stable {
					dm.ProtocolMetadata = m.metadata(g.protocol)
					dm.MemberAssignment = m.assignment
				}
				rg.Members = append(rg.Members, dm)
			}
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

// groupType is what ListGroups v5+ calls a classic group.
const groupType = "classic"

// ListGroups answers a ListGroups request (versions 0-5): every group, by
// id, filtered by state (v4+) and type (v5+), both case-insensitive as in
// Kafka.
func (c *Coordinator) ListGroups(req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := kmsg.NewPtrListGroupsResponse()
	resp.Version = req.Version
	if c.unloaded {
		return resp
	}
	if len(req.TypesFilter) > 0 && !slices.ContainsFunc(req.TypesFilter, func(t string) bool {
		return strings.EqualFold(strings.TrimSpace(t), groupType)
	}) {
		return resp
	}
	ids := slices.Collect(maps.Keys(c.groups))
	for id := range c.offsets {
		if c.groups[id] == nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		state, protocolType := Empty, ""
		if g := c.groups[id]; g != nil {
			state, protocolType = g.state, g.protocolType
		}
		if state == Dead {
			continue
		}
		if len(req.StatesFilter) > 0 && !slices.ContainsFunc(req.StatesFilter, func(s string) bool {
			return strings.EqualFold(strings.TrimSpace(s), state.String())
		}) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.ProtocolType = id, protocolType
		lg.GroupState, lg.GroupType = state.String(), groupType
		resp.Groups = append(resp.Groups, lg)
	}
	return resp
}

// DeleteGroups answers a DeleteGroups request (versions 0-3). Only an
// Empty group may be deleted (NON_EMPTY_GROUP otherwise), so no member and
// no parked request goes with it; one that does not exist is
// GROUP_ID_NOT_FOUND. Its committed offsets go with it: it returns their
// tombstones, which the shell appends and then replays (as Kafka, it
// answers once they are written).
func (c *Coordinator) DeleteGroups(req *kmsg.DeleteGroupsRequest) (*kmsg.DeleteGroupsResponse, []Record) {
	resp := kmsg.NewPtrDeleteGroupsResponse()
	resp.Version = req.Version
	var recs []Record
	for _, id := range req.Groups {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group = id
		g := c.groups[id]
		switch {
		case c.unloaded:
			rg.ErrorCode = kerr.NotCoordinator.Code
		case g == nil && c.offsets[id] != nil:
			recs = append(recs, c.deleteGroupOffsets(id)...)
		case g == nil || g.state == Dead:
			rg.ErrorCode = kerr.GroupIDNotFound.Code
		case g.state != Empty:
			rg.ErrorCode = kerr.NonEmptyGroup.Code
		default:
			for _, p := range g.pending {
				c.removePending(g, p)
			}
			c.timers.remove(&g.join)
			c.timers.remove(&g.sync)
			c.transition(g, Dead)
			delete(c.groups, id)
			recs = append(recs, c.deleteGroupOffsets(id)...)
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return resp, recs
}

// Unload gives up every group, as a coordinator does when it stops leading
// its __consumer_offsets partition: each group becomes Dead, and every
// parked request is answered NOT_COORDINATOR, which sends its client to
// find the new coordinator. Afterwards requests for these groups get
// COORDINATOR_NOT_AVAILABLE and requests for other groups NOT_COORDINATOR.
// It appends the replies to dst and returns it.
func (c *Coordinator) Unload(dst []Reply) []Reply {
	c.begin(dst, c.now)
	for _, id := range slices.Sorted(maps.Keys(c.groups)) {
		g := c.groups[id]
		for _, m := range g.members {
			if m.join.ok {
				c.reply(m.join.reqID, joinResponse(m.join.version, m.id, kerr.NotCoordinator.Code))
				m.join = parked{}
			}
			if m.sync.ok {
				c.reply(m.sync.reqID, syncResponse(m.sync.version, kerr.NotCoordinator.Code))
				m.sync = parked{}
			}
		}
		g.awaitingJoin = 0
		clear(g.pending)
		if g.state != Dead {
			c.transition(g, Dead)
		}
	}
	for len(c.timers) > 0 {
		c.timers.remove(c.timers[0])
	}
	c.unloaded = true
	return c.end()
}
