package group

import (
	"bytes"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// State is a classic group's state. String gives Kafka's names, which
// DescribeGroups and ListGroups report and ListGroups filters on.
type State int8

const (
	// Empty: no members. The group may still have committed offsets (later)
	// and members that were told MEMBER_ID_REQUIRED but have not joined.
	Empty State = iota
	// PreparingRebalance: the join phase. Members must (re)join; the phase
	// ends when all have, or at the rebalance timeout.
	PreparingRebalance
	// CompletingRebalance: every member has its JoinGroup response for the
	// new generation; the group waits for the leader's assignment.
	CompletingRebalance
	// Stable: the leader's assignment was handed out; members heartbeat.
	Stable
	// Dead: the group was deleted or its coordinator unloaded it.
	Dead
)

func (s State) String() string {
	switch s {
	case Empty:
		return "Empty"
	case PreparingRebalance:
		return "PreparingRebalance"
	case CompletingRebalance:
		return "CompletingRebalance"
	case Stable:
		return "Stable"
	case Dead:
		return "Dead"
	}
	return "Unknown"
}

// validPrevious reports whether Kafka's ClassicGroupState allows moving
// from prev to s.
func (s State) validPrevious(prev State) bool {
	switch s {
	case PreparingRebalance:
		return prev == Stable || prev == CompletingRebalance || prev == Empty
	case CompletingRebalance:
		return prev == PreparingRebalance
	case Stable:
		return prev == CompletingRebalance
	case Empty:
		return prev == PreparingRebalance
	case Dead:
		return true
	}
	return false
}

// group is one classic group. Its members are kept in the order they
// joined, so that everything the coordinator decides by "any member" (a new
// leader, the order of the leader's member list, ties between protocols)
// comes out the same on every run.
type group struct {
	id         string
	state      State
	prevState  State
	generation int32

	// protocolType is set by the first member to join and kept when the
	// group empties (as Kafka keeps it); protocol is the protocol selected
	// for the current generation, "" when none. The pointers are what
	// responses carry, made anew on each change so that a response already
	// handed out never changes.
	protocolType, protocol   string
	protocolTypeP, protocolP *string

	leader  string // "" when the group has no members
	members []*member
	byID    map[string]*member
	static  map[string]*member  // group.instance.id -> its member
	pending map[string]*pending // member ids handed out with MEMBER_ID_REQUIRED

	// supported counts, per protocol name, the members that support it: a
	// protocol every member supports has count len(members).
	supported map[string]int
	// awaitingJoin counts members with a parked JoinGroup.
	awaitingJoin int
	// pendingSyncs counts members with pendingSync set.
	pendingSyncs int

	// newMemberAdded: a member joined during the initial rebalance's delay,
	// which extends the delay once more when it ends.
	newMemberAdded bool
	// initialDelay: the join timer is the initial rebalance delay, with
	// delayMs the current delay and remainingMs what the members' rebalance
	// timeout leaves for extensions (Kafka's InitialDelayedJoin).
	initialDelay         bool
	delayMs, remainingMs int64

	join timer // the join phase's deadline
	sync timer // the deadline for SyncGroups after a join phase
	// syncGeneration is the generation the sync timer was set for.
	syncGeneration int32
	// stateSince is when the group entered its state (Kafka's
	// currentStateTimestamp): an Empty group's offsets expire counting
	// from it.
	stateSince time.Time

	// subscribed is the topics the members of a consumer group subscribe
	// to, computed when a join phase completes (Kafka's
	// computeSubscribedTopics), valid only when subscriptionsKnown: not
	// for a group of another protocol type, one that has not completed a
	// join phase yet, or one a member's metadata of which does not decode.
	subscribed         map[string]bool
	subscriptionsKnown bool
}

// consumerProtocolType is the protocol type of consumer groups, whose
// members' metadata is a ConsumerProtocolSubscription.
const consumerProtocolType = "consumer"

// member is one member of a group.
type member struct {
	id         string
	instanceID *string // group.instance.id; nil for a dynamic member
	clientID   string
	clientHost string

	sessionTimeoutMs   int32
	rebalanceTimeoutMs int32
	protocolType       string
	protocols          []protocol // in the member's order of preference

	// assignment is what the leader assigned it in the current generation.
	// Never written in place: a response may still point at it.
	assignment []byte

	join parked // its JoinGroup, parked until the join phase ends
	sync parked // its SyncGroup, parked until the leader's SyncGroup

	// isNew: it joined and has not yet been through a completed join phase,
	// so its deadline is the new-member join timeout, not its session.
	isNew bool
	// pendingSync: it got its JoinGroup response for this generation but has
	// not sent SyncGroup yet.
	pendingSync bool

	session timer
}

// protocol is one (name, metadata) a member supports. metadata is the
// coordinator's own copy.
type protocol struct {
	name     string
	metadata []byte
}

// pending is a member id handed out with MEMBER_ID_REQUIRED, waiting for
// the JoinGroup that uses it.
type pending struct {
	id    string
	timer timer
}

// parked is a request whose response waits for the group to progress.
type parked struct {
	reqID   uint64
	version int16
	ok      bool
}

func newGroup(id string) *group {
	g := &group{
		id:        id,
		byID:      map[string]*member{},
		static:    map[string]*member{},
		pending:   map[string]*pending{},
		supported: map[string]int{},
	}
	g.join = timer{idx: -1, kind: joinTimer, g: g}
	g.sync = timer{idx: -1, kind: syncTimer, g: g}
	return g
}

func (g *group) setProtocolType(s string) {
	g.protocolType, g.protocolTypeP = s, strPtr(s)
}

func (g *group) setProtocol(s string) {
	g.protocol, g.protocolP = s, strPtr(s)
}

// strPtr returns a pointer to a copy of s, or nil for "": Kafka encodes an
// absent protocol (type) as null where the version allows it.
func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// isStatic reports whether m joined with a group.instance.id.
func (m *member) isStatic() bool { return m.instanceID != nil }

// matches is Kafka's ClassicGroupMember.matches: the same protocols, with
// the same metadata, in the same order (a repeated name counts at its first
// place, as m keeps it).
func (m *member) matches(ps []kmsg.JoinGroupRequestProtocol) bool {
	i := 0
	same := true
	eachFirst(ps, func(p kmsg.JoinGroupRequestProtocol) {
		if same = same && i < len(m.protocols) && p.Name == m.protocols[i].name && bytes.Equal(p.Metadata, m.protocols[i].metadata); same {
			i++
		}
	})
	return same && i == len(m.protocols)
}

// metadata returns m's metadata for protocol name.
func (m *member) metadata(name string) []byte {
	for _, p := range m.protocols {
		if p.name == name {
			return p.metadata
		}
	}
	return nil
}

// vote is Kafka's ClassicGroupMember.vote: the first protocol in m's own
// order that is among the candidates.
func (m *member) vote(candidate func(string) bool) string {
	for _, p := range m.protocols {
		if candidate(p.name) {
			return p.name
		}
	}
	return ""
}

// copyProtocols copies a request's protocols, bytes included, because the
// request's buffers belong to the caller. A name listed twice keeps its
// first place and metadata, which is all Kafka's keyed protocol collection
// ever finds: counted twice, it could make a protocol look supported by
// every member.
func copyProtocols(ps []kmsg.JoinGroupRequestProtocol) []protocol {
	out := make([]protocol, 0, len(ps))
	eachFirst(ps, func(p kmsg.JoinGroupRequestProtocol) {
		out = append(out, protocol{name: p.Name, metadata: bytes.Clone(p.Metadata)})
	})
	return out
}

// eachFirst calls fn with the first protocol of each name in ps, in order,
// in time linear in len(ps): a JoinGroup may list tens of thousands, and
// every group of the coordinator waits while one is counted.
func eachFirst(ps []kmsg.JoinGroupRequestProtocol, fn func(kmsg.JoinGroupRequestProtocol)) {
	const few = 8 // a member lists one to three; a scan beats a map
	if len(ps) <= few {
	next:
		for i, p := range ps {
			for _, q := range ps[:i] {
				if q.Name == p.Name {
					continue next
				}
			}
			fn(p)
		}
		return
	}
	seen := make(map[string]struct{}, len(ps))
	for _, p := range ps {
		if _, dup := seen[p.Name]; !dup {
			seen[p.Name] = struct{}{}
			fn(p)
		}
	}
}

// incSupported and decSupported count m's protocols, each name once (see
// copyProtocols), in g.supported.
func (g *group) incSupported(m *member) {
	for _, p := range m.protocols {
		g.supported[p.name]++
	}
}

func (g *group) decSupported(m *member) {
	for _, p := range m.protocols {
		if g.supported[p.name]--; g.supported[p.name] <= 0 {
			delete(g.supported, p.name)
		}
	}
}

// supportsProtocols is Kafka's ClassicGroup.supportsProtocols: an Empty
// group takes any non-empty protocol type with at least one protocol;
// otherwise the type must be the group's and one of the protocols must be
// supported by every member.
func (g *group) supportsProtocols(protocolType string, ps []kmsg.JoinGroupRequestProtocol) bool {
	if g.state == Empty {
		return protocolType != "" && len(ps) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range ps {
		if g.supported[p.Name] == len(g.members) {
			return true
		}
	}
	return false
}

// selectProtocol is Kafka's ClassicGroup.selectProtocol: among the protocols
// every member supports, each member votes for the first in its own order,
// and the most votes win. Kafka breaks ties by hash order; here the leader's
// preference breaks them, so that the choice is deterministic and is one the
// leader, who computes the assignment, prefers. The group must have members.
func (g *group) selectProtocol() string {
	n := len(g.members)
	candidate := func(name string) bool { return g.supported[name] == n }
	type tally struct {
		name  string
		votes int
	}
	var tallies []tally
	for _, m := range g.members {
		v := m.vote(candidate)
		found := false
		for i := range tallies {
			if tallies[i].name == v {
				tallies[i].votes++
				found = true
				break
			}
		}
		if !found {
			tallies = append(tallies, tally{v, 1})
		}
	}
	best := -1
	var leader *member
	if g.leader != "" {
		leader = g.byID[g.leader]
	}
	rank := func(name string) int {
		if leader != nil {
			for i, p := range leader.protocols {
				if p.name == name {
					return i
				}
			}
		}
		return len(g.members) + 1
	}
	for i, t := range tallies {
		if best < 0 || t.votes > tallies[best].votes ||
			(t.votes == tallies[best].votes && rank(t.name) < rank(tallies[best].name)) {
			best = i
		}
	}
	if best < 0 {
		return ""
	}
	return tallies[best].name
}

// rebalanceTimeoutMs is the longest of the members' rebalance timeouts, as
// Kafka's: the group waits for its slowest member.
func (g *group) rebalanceTimeoutMs() int64 {
	var longest int64
	for _, m := range g.members {
		longest = max(longest, int64(m.rebalanceTimeoutMs))
	}
	return longest
}

// hasAllMembersJoined: every member has a parked JoinGroup and no member id
// handed out with MEMBER_ID_REQUIRED is still unused.
func (g *group) hasAllMembersJoined() bool {
	return len(g.members) == g.awaitingJoin && len(g.pending) == 0
}

// canRebalance: the states PreparingRebalance may be entered from.
func (g *group) canRebalance() bool {
	return g.state == Stable || g.state == CompletingRebalance || g.state == Empty
}

// validateMember is Kafka's ClassicGroup.validateMember: an instance id must
// map to this member id (UNKNOWN_MEMBER_ID if it maps to none,
// FENCED_INSTANCE_ID if to another), and the member id must be a member.
func (g *group) validateMember(memberID string, instanceID *string) *kerr.Error {
	if instanceID != nil {
		m := g.static[*instanceID]
		if m == nil {
			return kerr.UnknownMemberID
		}
		if m.id != memberID {
			return kerr.FencedInstanceID
		}
	}
	if g.byID[memberID] == nil {
		return kerr.UnknownMemberID
	}
	return nil
}

// maybeElectNewJoinedLeader is Kafka's: keep the leader if it rejoined,
// else make the first member that rejoined the leader. False if nobody
// rejoined (or the group has no members).
func (g *group) maybeElectNewJoinedLeader() bool {
	if g.leader == "" {
		return false
	}
	if g.byID[g.leader].join.ok {
		return true
	}
	for _, m := range g.members {
		if m.join.ok {
			g.leader = m.id
			return true
		}
	}
	return false
}

// leaderMembers is the member list the leader's JoinGroup response carries:
// every member with its metadata for the selected protocol.
func (g *group) leaderMembers() []kmsg.JoinGroupResponseMember {
	out := make([]kmsg.JoinGroupResponseMember, 0, len(g.members))
	for _, m := range g.members {
		jm := kmsg.NewJoinGroupResponseMember()
		jm.MemberID = m.id
		jm.InstanceID = m.instanceID
		jm.ProtocolMetadata = m.metadata(g.protocol)
		out = append(out, jm)
	}
	return out
}

// computeSubscriptions is Kafka's ClassicGroup.computeSubscribedTopics, run
// when a join phase completes: the union of the topics the members'
// metadata for the selected protocol subscribes to, known only for a
// consumer group (none for one without members) and only if every
// member's metadata decodes.
func (g *group) computeSubscriptions() {
	g.subscribed, g.subscriptionsKnown = nil, false
	switch {
	case g.protocolType != consumerProtocolType:
		return
	case len(g.members) == 0:
		g.subscriptionsKnown = true
		return
	case g.protocol == "":
		return
	}
	topics := map[string]bool{}
	for _, m := range g.members {
		ts, ok := subscriptionTopics(m.metadata(g.protocol))
		if !ok {
			return
		}
		for _, t := range ts {
			topics[t] = true
		}
	}
	g.subscribed, g.subscriptionsKnown = topics, true
}

// subscriptionTopics decodes the topics of a consumer's
// ConsumerProtocolSubscription as Kafka's computeSubscribedTopics does: as
// version 0, the prefix of every version (whatever version it says it is,
// the fields later versions add after it are not read), so that a future
// version still decodes. ok is false if it does not decode.
func subscriptionTopics(metadata []byte) (topics []string, ok bool) {
	if len(metadata) < 2 {
		return nil, false
	}
	v0 := make([]byte, len(metadata))
	copy(v0[2:], metadata[2:]) // version 0
	var s kmsg.ConsumerMemberMetadata
	if err := s.ReadFrom(v0); err != nil {
		return nil, false
	}
	return s.Topics, true
}

// isSubscribedTo is Kafka's ClassicGroup.isSubscribedToTopic: whether the
// members subscribe to topic, as far as the group knows; a consumer group
// that does not know is taken as subscribed to every topic, any other
// group as subscribed to none.
func (g *group) isSubscribedTo(topic string) bool {
	if g.subscriptionsKnown {
		return g.subscribed[topic]
	}
	return g.protocolType == consumerProtocolType
}
