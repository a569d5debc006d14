package group

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/internal/testseed"
)

// TestRandomized drives one group with a few simulated consumers through
// random joins, syncs, heartbeats, leaves, crashes, restarts (static
// members come back under their instance id), laziness and clock jumps, and
// after every call checks the coordinator against a model of what Kafka's
// protocol promises:
//
//   - the coordinator's bookkeeping is consistent (checkInvariants), with
//     at most one leader, who is a member;
//   - states only move as Kafka's state machine allows, and the generation
//     goes up by exactly one each time a join phase completes, and never
//     otherwise;
//   - in a Stable group every member holds the assignment the leader gave
//     it (or its instance) in the current generation, and a SyncGroup
//     answered NONE is for the current generation and carries it;
//   - no member outlives its session without a heartbeat (or a response
//     that restarts it), unless a request of its is parked;
//   - a member whose client always answers promptly is never removed
//     (unless fenced by its own restart);
//   - a join phase ends without the dynamic members that did not rejoin;
//   - the members claiming to lead the current generation are its leader;
//   - every request is answered exactly once; once every client stops, the
//     group's own deadlines answer whatever was parked and empty the
//     group, and unloading leaves nothing outstanding.
func TestRandomized(t *testing.T) {
	seed := testseed.Seed(t)
	for run := range 20 {
		s := newSim(t, seed+uint64(run))
		for range 1500 {
			s.step()
		}
		s.finish()
		if t.Failed() {
			t.Fatalf("run %d failed (seed %d)", run, seed)
		}
	}
}

const simGroup = "g"

type simPhase int

const (
	phaseOut      simPhase = iota // not in the group; next: JoinGroup
	phaseNeedJoin                 // has a member id (or a pending one); next: JoinGroup
	phaseNeedSync                 // has its JoinGroup response; next: SyncGroup
	phaseStable                   // has its assignment; next: Heartbeat
	phaseWaiting                  // a JoinGroup or SyncGroup is outstanding
)

// simClient is one consumer process: a Kafka client's group membership
// state, reduced to what the protocol needs.
type simClient struct {
	name     string
	instance *string
	version  int16
	inc      int // incarnation: replies to an older one are ignored
	crashed  bool
	// diligent clients act on every response at once and heartbeat in
	// time; alwaysDiligent has been so since it got its member id.
	diligent, alwaysDiligent bool

	sessionMs, rebalanceMs int32
	protocols              []kmsg.JoinGroupRequestProtocol

	phase      simPhase
	memberID   string
	generation int32
	protocol   string // the generation's, from the JoinGroup response
	leads      bool
	members    []kmsg.JoinGroupResponseMember // the leader's member list
	lastHb     int64
	busy       bool // a request is outstanding
}

type simReq struct {
	cl       *simClient
	inc      int
	kind     string
	memberID string
	gen      int32
}

type sim struct {
	t   *testing.T
	rng *rand.Rand
	c   *Coordinator
	cfg Config
	now int64

	nextReq     uint64
	outstanding map[uint64]simReq
	buf         []Reply
	clients     []*simClient

	// The model.
	gen      map[*group]int32 // generation at the last transition seen
	lastLive map[string]int64 // member id -> when its session last (re)started
	claims   map[string]int32 // member id -> generation it was told it leads
	failures int
	trace    []string // the last calls and replies, printed on failure
}

func (s *sim) tracef(format string, args ...any) {
	if len(s.trace) == 80 {
		s.trace = s.trace[1:]
	}
	s.trace = append(s.trace, fmt.Sprintf("%d: ", s.now)+fmt.Sprintf(format, args...))
}

func newSim(t *testing.T, seed uint64) *sim {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	cfg := DefaultConfig()
	cfg.GroupInitialRebalanceDelayMs = int32(rng.IntN(2) * 3000)
	c, err := NewCoordinator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var ids int
	c.SetMemberIDSuffix(func() string { ids++; return strconv.Itoa(ids) })
	s := &sim{
		t: t, rng: rng, c: c, cfg: cfg, now: 1_000_000,
		outstanding: map[uint64]simReq{},
		gen:         map[*group]int32{},
		lastLive:    map[string]int64{},
		claims:      map[string]int32{},
	}
	c.observe = s.observe
	for i := range 4 {
		cl := &simClient{name: fmt.Sprintf("c%d", i), diligent: true, alwaysDiligent: true}
		if i >= 2 {
			inst := fmt.Sprintf("i%d", i)
			cl.instance = &inst
		}
		s.restart(cl)
		s.clients = append(s.clients, cl)
	}
	return s
}

func (s *sim) fail(format string, args ...any) {
	s.t.Helper()
	s.failures++
	if s.failures == 1 {
		s.t.Logf("last calls and replies:\n%s", strings.Join(s.trace, "\n"))
	}
	if s.failures <= 5 {
		s.t.Errorf("at %d: "+format+"\n%s", append([]any{s.now}, append(args, dumpState(s.c, ""))...)...)
	}
}

// restart makes cl a fresh process: new incarnation, no membership (a
// static one keeps its instance id), new settings.
func (s *sim) restart(cl *simClient) {
	cl.inc++
	cl.crashed = false
	cl.phase, cl.memberID, cl.generation, cl.leads, cl.members, cl.busy = phaseOut, "", -1, false, nil, false
	cl.diligent = s.rng.IntN(4) != 0
	cl.alwaysDiligent = cl.diligent
	versions := []int16{3, 4, 9}
	if cl.instance != nil {
		versions = []int16{5, 8, 9}
	}
	cl.version = versions[s.rng.IntN(len(versions))]
	cl.sessionMs = int32(6000 + s.rng.IntN(9000))
	cl.rebalanceMs = int32(6000 + s.rng.IntN(15000))
	s.reprotocol(cl)
}

func (s *sim) reprotocol(cl *simClient) {
	names := []string{"range", "sticky"}
	if s.rng.IntN(2) == 0 {
		names = []string{"sticky", "range"}
	}
	cl.protocols = nil
	for _, n := range names {
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = n, []byte(fmt.Sprintf("%s/%d", cl.name, cl.inc))
		cl.protocols = append(cl.protocols, p)
	}
}

func (s *sim) time() time.Time { return time.UnixMilli(s.now) }

func (s *sim) request(cl *simClient, kind, memberID string, gen int32) uint64 {
	s.nextReq++
	s.outstanding[s.nextReq] = simReq{cl: cl, inc: cl.inc, kind: kind, memberID: memberID, gen: gen}
	cl.busy = kind == "join" || kind == "sync"
	return s.nextReq
}

// key is what the leader's assignment is for: a static member's instance,
// whose assignment survives its restarts, or else the member id.
func key(memberID string, instance *string) string {
	if instance != nil {
		return *instance
	}
	return memberID
}

func (s *sim) step() {
	switch r := s.rng.IntN(100); {
	case r < 35:
		s.now += int64(1 + s.rng.IntN(2000))
		s.tracef("tick")
		s.buf = s.c.Tick(s.buf[:0], s.time())
		s.deliver(s.buf)
	case r < 70:
		s.act(s.clients[s.rng.IntN(len(s.clients))])
	case r < 74:
		s.leave(s.clients[s.rng.IntN(len(s.clients))])
	case r < 78:
		cl := s.clients[s.rng.IntN(len(s.clients))]
		cl.crashed, cl.alwaysDiligent = true, false
		s.tracef("%s crashes", cl.name)
	case r < 84:
		if cl := s.clients[s.rng.IntN(len(s.clients))]; cl.crashed {
			s.restart(cl)
			s.tracef("%s restarts, diligent=%t", cl.name, cl.diligent)
		}
	case r < 88:
		cl := s.clients[s.rng.IntN(len(s.clients))]
		cl.diligent = !cl.diligent
		cl.alwaysDiligent = cl.alwaysDiligent && cl.diligent
		s.tracef("%s diligent=%t", cl.name, cl.diligent)
	case r < 91:
		// A member changes its metadata: its next JoinGroup rebalances.
		cl := s.clients[s.rng.IntN(len(s.clients))]
		s.reprotocol(cl)
		s.tracef("%s changes its metadata", cl.name)
		if cl.phase == phaseStable {
			cl.phase = phaseNeedJoin
		}
	case r < 93:
		s.c.DescribeGroups(&kmsg.DescribeGroupsRequest{Version: 6, Groups: []string{simGroup}})
		s.c.ListGroups(&kmsg.ListGroupsRequest{Version: 5})
	case r < 95:
		r, _ := s.c.DeleteGroups(&kmsg.DeleteGroupsRequest{Version: 2, Groups: []string{simGroup}})
		s.tracef("delete: %s", errName(r.Groups[0].ErrorCode))
	default:
		// A heartbeat whether due or not, maybe from a crashed process
		// (its last breath).
		cl := s.clients[s.rng.IntN(len(s.clients))]
		if cl.memberID != "" && !cl.busy {
			s.heartbeat(cl)
		}
	}
	s.check()
	s.settle()
}

// settle lets the diligent clients act on what they have heard, and
// heartbeat when a third of their session or rebalance timeout (whichever
// is shorter) has passed: often enough, with the clock moving at most 2s a
// step, to hear of a rebalance and rejoin before it times out.
func (s *sim) settle() {
	for range 10 {
		acted := false
		for _, cl := range s.clients {
			if cl.crashed || !cl.diligent || cl.busy {
				continue
			}
			switch cl.phase {
			case phaseOut, phaseNeedJoin, phaseNeedSync:
				s.act(cl)
				acted = true
			case phaseStable:
				if s.now-cl.lastHb >= int64(min(cl.sessionMs, cl.rebalanceMs)/3) {
					s.heartbeat(cl)
					acted = true
				}
			}
		}
		if !acted {
			return
		}
	}
}

func (s *sim) act(cl *simClient) {
	if cl.crashed || cl.busy {
		return
	}
	switch cl.phase {
	case phaseOut, phaseNeedJoin:
		req := kmsg.NewPtrJoinGroupRequest()
		req.Version = cl.version
		req.Group = simGroup
		req.MemberID = cl.memberID
		req.InstanceID = cl.instance
		req.SessionTimeoutMillis = cl.sessionMs
		req.RebalanceTimeoutMillis = cl.rebalanceMs
		req.ProtocolType = "consumer"
		req.Protocols = cl.protocols
		id := s.request(cl, "join", cl.memberID, -1)
		s.tracef("#%d %s join member=%q v%d session=%d rebalance=%d", id, cl.name, cl.memberID, cl.version, cl.sessionMs, cl.rebalanceMs)
		cl.phase = phaseWaiting
		s.buf = s.c.Join(s.buf[:0], s.time(), id, Client{ID: cl.name, Host: "/" + cl.name}, req)
		s.deliver(s.buf)
	case phaseNeedSync:
		req := kmsg.NewPtrSyncGroupRequest()
		req.Version = 5
		req.Group = simGroup
		req.MemberID = cl.memberID
		req.InstanceID = cl.instance
		req.Generation = cl.generation
		req.ProtocolType = kmsg.StringPtr("consumer")
		req.Protocol = kmsg.StringPtr(cl.protocol)
		if cl.leads {
			for _, m := range cl.members {
				a := kmsg.NewSyncGroupRequestGroupAssignment()
				a.MemberID = m.MemberID
				a.MemberAssignment = []byte(fmt.Sprintf("g%d/%s", cl.generation, key(m.MemberID, m.InstanceID)))
				req.GroupAssignment = append(req.GroupAssignment, a)
			}
		}
		id := s.request(cl, "sync", cl.memberID, cl.generation)
		s.tracef("#%d %s sync member=%q gen=%d leads=%t", id, cl.name, cl.memberID, cl.generation, cl.leads)
		cl.phase = phaseWaiting
		s.buf = s.c.Sync(s.buf[:0], s.time(), id, req)
		s.deliver(s.buf)
	case phaseStable:
		s.heartbeat(cl)
	}
}

func (s *sim) heartbeat(cl *simClient) {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 4
	req.Group = simGroup
	req.MemberID = cl.memberID
	req.InstanceID = cl.instance
	req.Generation = cl.generation
	id := s.request(cl, "heartbeat", cl.memberID, cl.generation)
	s.tracef("#%d %s heartbeat member=%q gen=%d", id, cl.name, cl.memberID, cl.generation)
	resp := s.c.Heartbeat(s.time(), req)
	s.deliver([]Reply{{ReqID: id, Resp: resp}})
}

func (s *sim) leave(cl *simClient) {
	if cl.crashed || cl.memberID == "" {
		return
	}
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version = 1
	req.Group = simGroup
	req.MemberID = cl.memberID
	if cl.instance != nil || s.rng.IntN(2) == 0 {
		req.Version = 5
		m := kmsg.NewLeaveGroupRequestMember()
		m.MemberID, m.InstanceID = cl.memberID, cl.instance
		req.Members = append(req.Members, m)
	}
	id := s.request(cl, "leave", cl.memberID, -1)
	s.tracef("#%d %s leave member=%q", id, cl.name, cl.memberID)
	// The client is done with its membership: whatever it had
	// outstanding no longer concerns it.
	cl.inc++
	cl.phase, cl.memberID, cl.generation, cl.leads, cl.busy = phaseOut, "", -1, false, false
	cl.alwaysDiligent = cl.diligent
	s.buf = s.c.Leave(s.buf[:0], s.time(), id, req)
	s.deliver(s.buf)
}

// deliver checks that each reply answers an outstanding request, once, and
// hands it to its client.
func (s *sim) deliver(rs []Reply) {
	for _, r := range rs {
		req, ok := s.outstanding[r.ReqID]
		if !ok {
			s.fail("reply to request %d, which is not outstanding", r.ReqID)
			continue
		}
		delete(s.outstanding, r.ReqID)
		s.tracef("  #%d %s", r.ReqID, formatResponse(r.Resp))
		s.observeReply(req, r.Resp)
		cl := req.cl
		if req.inc != cl.inc || cl.crashed {
			continue
		}
		cl.busy = false
		s.handle(cl, req, r.Resp)
	}
	s.check()
}

// observeReply updates the model from a reply, whoever gets it: the
// responses after which the coordinator restarts a member's session.
func (s *sim) observeReply(req simReq, resp kmsg.Response) {
	g := s.c.groups[simGroup]
	switch r := resp.(type) {
	case *kmsg.JoinGroupResponse:
		if r.ErrorCode == 0 {
			s.lastLive[r.MemberID] = s.now
			if r.LeaderID == r.MemberID {
				s.claims[r.MemberID] = r.Generation
			}
		}
	case *kmsg.SyncGroupResponse:
		if r.ErrorCode == 0 || r.ErrorCode == kerr.RebalanceInProgress.Code {
			s.lastLive[req.memberID] = s.now
		}
		if r.ErrorCode == 0 {
			if g == nil || g.state != Stable || req.gen != g.generation {
				s.fail("SyncGroup NONE for generation %d of a group not Stable in it", req.gen)
			} else if m := g.byID[req.memberID]; m == nil {
				s.fail("SyncGroup NONE for %s, not a member", req.memberID)
			} else if want := fmt.Sprintf("g%d/%s", g.generation, key(m.id, m.instanceID)); string(r.MemberAssignment) != want {
				s.fail("SyncGroup NONE for %s with assignment %q, want %q", m.id, r.MemberAssignment, want)
			}
		}
	case *kmsg.HeartbeatResponse:
		if r.ErrorCode == 0 || r.ErrorCode == kerr.RebalanceInProgress.Code {
			s.lastLive[req.memberID] = s.now
		}
	}
}

// handle is the client's reaction to a response, as a Kafka consumer's.
func (s *sim) handle(cl *simClient, req simReq, resp kmsg.Response) {
	var code int16
	switch r := resp.(type) {
	case *kmsg.JoinGroupResponse:
		code = r.ErrorCode
		switch code {
		case 0:
			cl.memberID, cl.generation = r.MemberID, r.Generation
			if r.Protocol != nil {
				cl.protocol = *r.Protocol
			}
			cl.leads = r.LeaderID == r.MemberID && !r.SkipAssignment
			cl.members = r.Members
			cl.phase = phaseNeedSync
			return
		case kerr.MemberIDRequired.Code:
			cl.memberID = r.MemberID
			cl.phase = phaseNeedJoin
			return
		}
	case *kmsg.SyncGroupResponse:
		code = r.ErrorCode
		if code == 0 {
			cl.phase, cl.lastHb = phaseStable, s.now
			return
		}
	case *kmsg.HeartbeatResponse:
		code = r.ErrorCode
		if code == 0 {
			cl.lastHb = s.now
			return
		}
	case *kmsg.LeaveGroupResponse:
		return
	}
	switch code {
	case kerr.RebalanceInProgress.Code, kerr.IllegalGeneration.Code:
		cl.phase = phaseNeedJoin
		if resp, ok := resp.(*kmsg.HeartbeatResponse); ok && resp.ErrorCode == kerr.RebalanceInProgress.Code {
			cl.lastHb = s.now
		}
	case kerr.UnknownMemberID.Code:
		if cl.alwaysDiligent && req.memberID != "" && s.c.groups[simGroup] != nil && s.wasMember(req.memberID) {
			s.fail("%s (member %s), always prompt, was removed", cl.name, req.memberID)
		}
		cl.phase, cl.memberID, cl.generation, cl.leads = phaseOut, "", -1, false
	case kerr.FencedInstanceID.Code:
		// Another process has this instance id: a Kafka client stops.
		cl.crashed = true
	case kerr.NotCoordinator.Code:
		// The coordinator unloaded (finish): the client would look for
		// the new one.
		cl.phase = phaseNeedJoin
	default:
		s.fail("%s: unexpected %s", cl.name, kerr.ErrorForCode(code))
	}
}

// wasMember reports whether memberID is an id the group made a member (not
// just one handed out with MEMBER_ID_REQUIRED, which a deleted group
// forgets).
func (s *sim) wasMember(memberID string) bool {
	_, ok := s.lastLive[memberID]
	return ok
}

// observe sees every state transition: it checks Kafka's transition rules
// and the generation, and notes that completing a join phase restarts every
// member's session.
func (s *sim) observe(g *group, from, to State) {
	if !to.validPrevious(from) {
		s.fail("invalid transition %s -> %s", from, to)
	}
	want := s.gen[g]
	if from == PreparingRebalance && (to == CompletingRebalance || to == Empty) {
		want++
	}
	if g.generation != want && to != Dead {
		s.fail("%s -> %s at generation %d, want %d", from, to, g.generation, want)
	}
	s.gen[g] = g.generation
	if to == CompletingRebalance {
		for _, m := range g.members {
			s.lastLive[m.id] = s.now
			// The join phase removes the dynamic members that did
			// not rejoin; static ones may be restarting and stay.
			if !m.join.ok && !m.isStatic() {
				s.fail("member %s did not rejoin but is in generation %d", m.id, g.generation)
			}
		}
	}
}

func (s *sim) check() {
	if err := checkInvariants(s.c); err != nil {
		s.fail("%v", err)
		return
	}
	g := s.c.groups[simGroup]
	if g == nil || g.state == Dead {
		return
	}
	if g.generation != s.gen[g] {
		s.fail("generation %d changed without a transition (was %d)", g.generation, s.gen[g])
	}
	for _, m := range g.members {
		if !m.join.ok && !m.sync.ok {
			if live, ok := s.lastLive[m.id]; !ok || live+int64(m.sessionTimeoutMs) < s.now {
				s.fail("member %s outlived its session: last alive at %d, session %d", m.id, live, m.sessionTimeoutMs)
			}
		}
		if g.state == Stable {
			if want := fmt.Sprintf("g%d/%s", g.generation, key(m.id, m.instanceID)); string(m.assignment) != want {
				s.fail("Stable member %s has assignment %q, want %q", m.id, m.assignment, want)
			}
		}
		if gen, ok := s.claims[m.id]; ok && gen == g.generation && m.id != g.leader &&
			(g.state == CompletingRebalance || g.state == Stable) {
			s.fail("member %s was told it leads generation %d, but %s does", m.id, gen, g.leader)
		}
	}
}

// finish stops every client and lets time pass: every parked request must
// be answered by the group's own deadlines, and the group must end up
// Empty. Then it unloads the coordinator, which must leave nothing
// outstanding.
func (s *sim) finish() {
	for _, cl := range s.clients {
		cl.crashed = true
	}
	for range 400 {
		s.now += 10000
		s.buf = s.c.Tick(s.buf[:0], s.time())
		s.deliver(s.buf)
	}
	if len(s.outstanding) > 0 {
		s.fail("parked for ever: %s", s.outstandingList())
	}
	if g := s.c.groups[simGroup]; g != nil && (g.state != Empty || len(g.members) > 0) {
		s.fail("the group is %s with %d members after every client stopped", g.state, len(g.members))
	}
	if _, ok := s.c.NextDeadline(); ok {
		s.fail("a deadline is left with every client gone")
	}
	s.buf = s.c.Unload(s.buf[:0])
	s.deliver(s.buf)
	if len(s.outstanding) > 0 {
		s.fail("never answered: %s", s.outstandingList())
	}
}

func (s *sim) outstandingList() string {
	var ids []string
	for _, id := range slices.Sorted(maps.Keys(s.outstanding)) {
		ids = append(ids, fmt.Sprintf("#%d %s", id, s.outstanding[id].kind))
	}
	return strings.Join(ids, ", ")
}
