package group

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// harness drives a Coordinator the way the shell would: it numbers
// requests, keeps the clock (milliseconds from the Unix epoch, moved only
// by at=T) and prints every reply as it comes out.
type harness struct {
	c       *Coordinator
	now     int64
	nextReq uint64
	kinds   map[uint64]string // request id -> "join", "sync", "leave"
	buf     []Reply
	log     []Record // what the coordinator asked to append, as __consumer_offsets would hold it
}

// append does what the shell does with records the coordinator returns:
// appends them (to h.log) and replays them, and prints them.
func (h *harness) append(t *testing.T, b *strings.Builder, recs []Record) {
	for _, rec := range recs {
		group, tp, c, deleted, err := decodeOffsetCommit(rec.Key, rec.Value)
		if err != nil {
			t.Fatalf("a record the coordinator wrote does not decode: %v", err)
		}
		if deleted {
			fmt.Fprintf(b, "append: tombstone %s %s-%d\n", group, tp.Topic, tp.Partition)
		} else {
			fmt.Fprintf(b, "append: %s %s-%d offset=%d epoch=%d meta=%q ts=%d\n", group, tp.Topic, tp.Partition, c.Offset, c.LeaderEpoch, c.Metadata, c.CommitTimestamp)
		}
		if err := h.c.Replay(rec); err != nil {
			t.Fatalf("replaying: %v", err)
		}
		h.log = append(h.log, rec)
	}
}

func newHarness(cfg Config) (*harness, error) {
	c, err := NewCoordinator(cfg)
	if err != nil {
		return nil, err
	}
	var ids int
	c.SetMemberIDSuffix(func() string { ids++; return strconv.Itoa(ids) })
	c.observe = func(g *group, from, to State) {
		if !to.validPrevious(from) {
			panic(fmt.Sprintf("group %s: invalid transition %s -> %s", g.id, from, to))
		}
	}
	return &harness{c: c, kinds: map[uint64]string{}}, nil
}

func (h *harness) time() time.Time { return time.UnixMilli(h.now) }

func (h *harness) request(kind string) uint64 {
	h.nextReq++
	h.kinds[h.nextReq] = kind
	return h.nextReq
}

func errName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok {
		return e.Message
	}
	return strconv.Itoa(int(code))
}

func deref(s *string) string {
	if s == nil {
		return "<null>"
	}
	return *s
}

func formatResponse(r kmsg.Response) string {
	var b strings.Builder
	switch r := r.(type) {
	case *kmsg.JoinGroupResponse:
		fmt.Fprintf(&b, "join: %s member=%q", errName(r.ErrorCode), r.MemberID)
		if r.ErrorCode == 0 || r.Generation != -1 {
			fmt.Fprintf(&b, " gen=%d leader=%q type=%s protocol=%s", r.Generation, r.LeaderID, deref(r.ProtocolType), deref(r.Protocol))
		}
		if r.SkipAssignment {
			b.WriteString(" skip-assignment")
		}
		if len(r.Members) > 0 {
			b.WriteString(" members=[")
			for i, m := range r.Members {
				if i > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(m.MemberID)
				if m.InstanceID != nil {
					fmt.Fprintf(&b, "/%s", *m.InstanceID)
				}
				fmt.Fprintf(&b, ":%s", m.ProtocolMetadata)
			}
			b.WriteByte(']')
		}
	case *kmsg.SyncGroupResponse:
		fmt.Fprintf(&b, "sync: %s", errName(r.ErrorCode))
		if r.ErrorCode == 0 {
			fmt.Fprintf(&b, " type=%s protocol=%s assignment=%q", deref(r.ProtocolType), deref(r.Protocol), r.MemberAssignment)
		}
	case *kmsg.LeaveGroupResponse:
		fmt.Fprintf(&b, "leave: %s", errName(r.ErrorCode))
		if r.Version >= 3 {
			b.WriteString(" members=[")
			for i, m := range r.Members {
				if i > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "%q", m.MemberID)
				if m.InstanceID != nil {
					fmt.Fprintf(&b, "/%s", *m.InstanceID)
				}
				fmt.Fprintf(&b, ": %s", errName(m.ErrorCode))
			}
			b.WriteByte(']')
		}
	case *kmsg.HeartbeatResponse:
		fmt.Fprintf(&b, "heartbeat: %s", errName(r.ErrorCode))
	default:
		fmt.Fprintf(&b, "%T", r)
	}
	return b.String()
}

// replies prints the replies and says whether the request reqID was
// answered (0: nothing to check).
func (h *harness) replies(b *strings.Builder, reqID uint64, rs []Reply) {
	answered := false
	for _, r := range rs {
		if r.ReqID == reqID {
			answered = true
		}
		kind, ok := h.kinds[r.ReqID]
		if !ok {
			fmt.Fprintf(b, "error: reply to unknown or answered request #%d\n", r.ReqID)
		}
		if want := strings.SplitN(formatResponse(r.Resp), ":", 2)[0]; ok && want != kind {
			fmt.Fprintf(b, "error: #%d is a %s, got a %s response\n", r.ReqID, kind, want)
		}
		delete(h.kinds, r.ReqID)
		fmt.Fprintf(b, "#%d %s\n", r.ReqID, formatResponse(r.Resp))
	}
	if reqID != 0 && !answered {
		fmt.Fprintf(b, "#%d parked\n", reqID)
	}
}

// args reads a command's key=value arguments.
type args map[string]string

func cmdArgs(d *datadriven.TestData) args {
	a := args{}
	for _, arg := range d.CmdArgs {
		a[arg.Key] = strings.Join(arg.Vals, ",")
	}
	return a
}

func lineArgs(line string) args {
	a := args{}
	for _, f := range strings.Fields(line) {
		k, v, _ := strings.Cut(f, "=")
		a[k] = v
	}
	return a
}

func (a args) has(k string) bool { _, ok := a[k]; return ok }

func (a args) str(k, def string) string {
	if v, ok := a[k]; ok {
		return v
	}
	return def
}

func (a args) strPtr(k string) *string {
	if v, ok := a[k]; ok {
		return &v
	}
	return nil
}

func (a args) int(k string, def int64) int64 {
	v, ok := a[k]
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		panic(fmt.Sprintf("%s=%q: %v", k, v, err))
	}
	return n
}

func (a args) list(k string) []string {
	v, ok := a[k]
	if !ok || v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// TestCoordinatorDataDriven runs the scripts in testdata/. Commands (times
// are milliseconds; at=T moves the clock to T first, never back):
//
//	coordinator [min-session=MS] [max-session=MS] [initial-delay=MS]
//	            [max-size=N] [new-member-timeout=MS]
//	            [metadata-max=N] [retention=MS]
//	                        a new coordinator; Kafka's defaults otherwise
//	join group=G [client=C] [member=ID] [instance=I] [v=9] [session=10000]
//	     [rebalance=30000] [type=consumer] [protocols=NAME:META,…]
//	                        protocols defaults to range:C; "protocols="
//	                        sends none
//	sync group=G member=ID gen=N [instance=I] [v=4] [type=T] [protocol=P]
//	                        input lines: MEMBER ASSIGNMENT (the leader's)
//	heartbeat group=G member=ID gen=N [instance=I] [v=4]
//	leave group=G [v=5] [member=ID]
//	                        v3+: input lines [member=ID] [instance=I]
//	tick                    Tick, then the next deadline
//	deadline                the next deadline
//	describe groups=G,… [v=6]
//	list [states=S,…] [types=T,…] [v=5]
//	delete groups=G,…
//	commit group=G [member=ID] [gen=N] [instance=I]
//	                        ValidateCommit (gen defaults to -1)
//	offset-commit group=G [member=ID] [gen=-1] [instance=I] [v=9]
//	              [unknown=T-P,…] [fail=CODE]
//	                        input lines: topic=T p=P offset=O [epoch=E]
//	                        [meta=M] [meta-bytes=N]; the records are
//	                        appended and replayed unless fail= says the
//	                        append failed
//	offset-fetch group=G    input lines: TOPIC P…; none asks for all
//	offset-delete group=G   input lines: TOPIC P…
//	expire                  ExpireOffsets, its tombstones appended
//	delete-topics topics=T,…
//	                        DeleteTopicOffsets, its tombstones appended
//	reload                  a new coordinator replays every record appended
//	unload
//	state [group=G]         the groups' internal state
//
// Request commands print every reply that comes out, "#N parked" for the
// request itself if it is not among them.
func TestCoordinatorDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		var h *harness
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			if d.Cmd != "coordinator" && h == nil {
				d.Fatalf(t, "%s: no coordinator yet", d.Pos)
			}
			out, err := runCommand(t, &h, d)
			if err != nil {
				return out + "error: " + err.Error() + "\n"
			}
			if h != nil {
				if err := checkInvariants(h.c); err != nil {
					d.Fatalf(t, "%s: after %s: %v\n%s", d.Pos, d.Cmd, err, dumpState(h.c, ""))
				}
			}
			return out
		})
	})
}

func runCommand(t *testing.T, hp **harness, d *datadriven.TestData) (string, error) {
	a := cmdArgs(d)
	h := *hp
	if h != nil && a.has("at") {
		at := a.int("at", 0)
		if at < h.now {
			d.Fatalf(t, "%s: at=%d is before now (%d)", d.Pos, at, h.now)
		}
		h.now = at
	}
	var b strings.Builder
	switch d.Cmd {
	case "coordinator":
		cfg := DefaultConfig()
		cfg.GroupMinSessionTimeoutMs = int32(a.int("min-session", int64(cfg.GroupMinSessionTimeoutMs)))
		cfg.GroupMaxSessionTimeoutMs = int32(a.int("max-session", int64(cfg.GroupMaxSessionTimeoutMs)))
		cfg.GroupInitialRebalanceDelayMs = int32(a.int("initial-delay", int64(cfg.GroupInitialRebalanceDelayMs)))
		cfg.GroupMaxSize = int32(a.int("max-size", int64(cfg.GroupMaxSize)))
		cfg.NewMemberJoinTimeoutMs = int32(a.int("new-member-timeout", int64(cfg.NewMemberJoinTimeoutMs)))
		cfg.OffsetMetadataMaxBytes = int32(a.int("metadata-max", int64(cfg.OffsetMetadataMaxBytes)))
		cfg.OffsetsRetentionMs = a.int("retention", cfg.OffsetsRetentionMs)
		nh, err := newHarness(cfg)
		if err != nil {
			return "", err
		}
		*hp = nh
		c := nh.c.Config()
		fmt.Fprintf(&b, "group.min.session.timeout.ms=%d group.max.session.timeout.ms=%d group.initial.rebalance.delay.ms=%d group.max.size=%d new-member-timeout=%d\n",
			c.GroupMinSessionTimeoutMs, c.GroupMaxSessionTimeoutMs, c.GroupInitialRebalanceDelayMs, c.GroupMaxSize, c.NewMemberJoinTimeoutMs)

	case "join":
		client := a.str("client", "c")
		req := kmsg.NewPtrJoinGroupRequest()
		req.Version = int16(a.int("v", 9))
		req.Group = a.str("group", "g")
		req.MemberID = a.str("member", "")
		req.InstanceID = a.strPtr("instance")
		req.SessionTimeoutMillis = int32(a.int("session", 10000))
		req.RebalanceTimeoutMillis = int32(a.int("rebalance", 30000))
		req.ProtocolType = a.str("type", "consumer")
		for _, p := range strings.Split(a.str("protocols", "range:"+client), ",") {
			if p == "" {
				continue
			}
			name, meta, _ := strings.Cut(p, ":")
			jp := kmsg.NewJoinGroupRequestProtocol()
			jp.Name, jp.Metadata = name, []byte(meta)
			req.Protocols = append(req.Protocols, jp)
		}
		id := h.request("join")
		h.buf = h.c.Join(h.buf[:0], h.time(), id, Client{ID: client, Host: "/" + client}, req)
		h.replies(&b, id, h.buf)

	case "sync":
		req := kmsg.NewPtrSyncGroupRequest()
		req.Version = int16(a.int("v", 4))
		req.Group = a.str("group", "g")
		req.MemberID = a.str("member", "")
		req.Generation = int32(a.int("gen", 0))
		req.InstanceID = a.strPtr("instance")
		req.ProtocolType = a.strPtr("type")
		req.Protocol = a.strPtr("protocol")
		for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
			if line == "" {
				continue
			}
			member, assignment, _ := strings.Cut(line, " ")
			ga := kmsg.NewSyncGroupRequestGroupAssignment()
			ga.MemberID, ga.MemberAssignment = member, []byte(assignment)
			req.GroupAssignment = append(req.GroupAssignment, ga)
		}
		id := h.request("sync")
		h.buf = h.c.Sync(h.buf[:0], h.time(), id, req)
		h.replies(&b, id, h.buf)

	case "heartbeat":
		req := kmsg.NewPtrHeartbeatRequest()
		req.Version = int16(a.int("v", 4))
		req.Group = a.str("group", "g")
		req.MemberID = a.str("member", "")
		req.Generation = int32(a.int("gen", 0))
		req.InstanceID = a.strPtr("instance")
		fmt.Fprintln(&b, formatResponse(h.c.Heartbeat(h.time(), req)))

	case "leave":
		req := kmsg.NewPtrLeaveGroupRequest()
		req.Version = int16(a.int("v", 5))
		req.Group = a.str("group", "g")
		req.MemberID = a.str("member", "")
		for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
			if line == "" {
				continue
			}
			la := lineArgs(line)
			lm := kmsg.NewLeaveGroupRequestMember()
			lm.MemberID = la.str("member", "")
			lm.InstanceID = la.strPtr("instance")
			req.Members = append(req.Members, lm)
		}
		id := h.request("leave")
		h.buf = h.c.Leave(h.buf[:0], h.time(), id, req)
		h.replies(&b, id, h.buf)

	case "tick":
		h.buf = h.c.Tick(h.buf[:0], h.time())
		h.replies(&b, 0, h.buf)
		b.WriteString(h.deadline())

	case "deadline":
		b.WriteString(h.deadline())

	case "describe":
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Version = int16(a.int("v", 6))
		req.Groups = a.list("groups")
		resp := h.c.DescribeGroups(req)
		for _, g := range resp.Groups {
			fmt.Fprintf(&b, "%s: %s state=%s type=%q protocol=%q\n", g.Group, errName(g.ErrorCode), g.State, g.ProtocolType, g.Protocol)
			for _, m := range g.Members {
				fmt.Fprintf(&b, "  %s", m.MemberID)
				if m.InstanceID != nil {
					fmt.Fprintf(&b, " instance=%s", *m.InstanceID)
				}
				fmt.Fprintf(&b, " client=%s host=%s metadata=%q assignment=%q\n", m.ClientID, m.ClientHost, m.ProtocolMetadata, m.MemberAssignment)
			}
		}

	case "list":
		req := kmsg.NewPtrListGroupsRequest()
		req.Version = int16(a.int("v", 5))
		req.StatesFilter = a.list("states")
		req.TypesFilter = a.list("types")
		resp := h.c.ListGroups(req)
		fmt.Fprintf(&b, "%s\n", errName(resp.ErrorCode))
		for _, g := range resp.Groups {
			fmt.Fprintf(&b, "%s type=%q state=%s group-type=%s\n", g.Group, g.ProtocolType, g.GroupState, g.GroupType)
		}

	case "delete":
		req := kmsg.NewPtrDeleteGroupsRequest()
		req.Version = 2
		req.Groups = a.list("groups")
		resp, recs := h.c.DeleteGroups(req)
		for _, g := range resp.Groups {
			fmt.Fprintf(&b, "%s: %s\n", g.Group, errName(g.ErrorCode))
		}
		h.append(t, &b, recs)

	case "offset-commit":
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Version = int16(a.int("v", 9))
		req.Group, req.MemberID = a.str("group", "g"), a.str("member", "")
		req.Generation, req.InstanceID = int32(a.int("gen", -1)), a.strPtr("instance")
		for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
			la := lineArgs(line)
			p := kmsg.NewOffsetCommitRequestTopicPartition()
			p.Partition, p.Offset = int32(la.int("p", 0)), la.int("offset", 0)
			p.LeaderEpoch, p.Metadata = int32(la.int("epoch", -1)), la.strPtr("meta")
			if n := la.int("meta-bytes", -1); n >= 0 {
				p.Metadata = kmsg.StringPtr(strings.Repeat("m", int(n)))
			}
			if len(req.Topics) == 0 || req.Topics[len(req.Topics)-1].Topic != la.str("topic", "t") {
				rt := kmsg.NewOffsetCommitRequestTopic()
				rt.Topic = la.str("topic", "t")
				req.Topics = append(req.Topics, rt)
			}
			rt := &req.Topics[len(req.Topics)-1]
			rt.Partitions = append(rt.Partitions, p)
		}
		unknown := a.list("unknown")
		resp, recs := h.c.CommitOffsets(h.time(), req, func(topic string, partition int32) bool {
			return !slices.Contains(unknown, fmt.Sprintf("%s-%d", topic, partition))
		})
		if a.has("fail") {
			CommitFailed(resp, int16(a.int("fail", 0)))
			recs = nil
		}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				fmt.Fprintf(&b, "%s-%d: %s\n", rt.Topic, rp.Partition, errName(rp.ErrorCode))
			}
		}
		h.append(t, &b, recs)
		b.WriteString(h.deadline())

	case "offset-fetch":
		var topics []kmsg.OffsetFetchRequestGroupTopic
		if in := strings.TrimSpace(d.Input); in != "" {
			topics = []kmsg.OffsetFetchRequestGroupTopic{}
			for _, line := range strings.Split(in, "\n") {
				f := strings.Fields(line)
				rt := kmsg.NewOffsetFetchRequestGroupTopic()
				rt.Topic = f[0]
				for _, p := range f[1:] {
					n, _ := strconv.Atoi(p)
					rt.Partitions = append(rt.Partitions, int32(n))
				}
				topics = append(topics, rt)
			}
		}
		out, err := h.c.FetchGroupOffsets(a.str("group", "g"), topics)
		if err != nil {
			fmt.Fprintf(&b, "%s\n", err.Message)
		}
		for _, rt := range out {
			for _, rp := range rt.Partitions {
				fmt.Fprintf(&b, "%s-%d: offset=%d epoch=%d meta=%q\n", rt.Topic, rp.Partition, rp.Offset, rp.LeaderEpoch, *rp.Metadata)
			}
		}

	case "offset-delete":
		req := kmsg.NewPtrOffsetDeleteRequest()
		req.Group = a.str("group", "g")
		for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
			f := strings.Fields(line)
			rt := kmsg.NewOffsetDeleteRequestTopic()
			rt.Topic = f[0]
			for _, p := range f[1:] {
				n, _ := strconv.Atoi(p)
				rp := kmsg.NewOffsetDeleteRequestTopicPartition()
				rp.Partition = int32(n)
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		}
		resp, recs := h.c.DeleteOffsets(req)
		fmt.Fprintf(&b, "%s\n", errName(resp.ErrorCode))
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				fmt.Fprintf(&b, "%s-%d: %s\n", rt.Topic, rp.Partition, errName(rp.ErrorCode))
			}
		}
		h.append(t, &b, recs)

	case "expire":
		h.append(t, &b, h.c.ExpireOffsets(h.time()))

	case "delete-topics":
		gone := a.list("topics")
		h.append(t, &b, h.c.DeleteTopicOffsets(func(topic string) bool { return slices.Contains(gone, topic) }))

	case "reload":
		// A new coordinator (as after a failover) loads what was appended.
		c, err := NewCoordinator(h.c.Config())
		if err != nil {
			return "", err
		}
		for _, rec := range h.log {
			if err := c.Replay(rec); err != nil {
				return "", err
			}
		}
		var ids int
		c.SetMemberIDSuffix(func() string { ids++; return "r" + strconv.Itoa(ids) })
		h.c = c
		fmt.Fprintf(&b, "replayed %d records\n", len(h.log))

	case "commit":
		err := h.c.ValidateCommit(a.str("group", "g"), a.str("member", ""), int32(a.int("gen", -1)), a.strPtr("instance"))
		if err == nil {
			b.WriteString("NONE\n")
		} else {
			fmt.Fprintf(&b, "%s\n", err.Message)
		}

	case "unload":
		h.buf = h.c.Unload(h.buf[:0])
		h.replies(&b, 0, h.buf)
		b.WriteString(h.deadline())

	case "state":
		b.WriteString(dumpState(h.c, a.str("group", "")))

	default:
		d.Fatalf(t, "%s: unknown command %q", d.Pos, d.Cmd)
	}
	return b.String(), nil
}

func (h *harness) deadline() string {
	if at, ok := h.c.NextDeadline(); ok {
		return fmt.Sprintf("next deadline at %d\n", at.UnixMilli())
	}
	return "no deadline\n"
}

func deadlineString(t *timer) string {
	if !t.scheduled() {
		return "none"
	}
	return strconv.FormatInt(t.at.UnixMilli(), 10)
}

// dumpState prints the groups (or one group) as the coordinator holds them.
func dumpState(c *Coordinator, only string) string {
	var b strings.Builder
	for _, id := range slices.Sorted(maps.Keys(c.groups)) {
		if only != "" && id != only {
			continue
		}
		g := c.groups[id]
		fmt.Fprintf(&b, "group %s: %s gen=%d type=%q protocol=%q leader=%q\n", id, g.state, g.generation, g.protocolType, g.protocol, g.leader)
		for _, m := range g.members {
			fmt.Fprintf(&b, "  member %s", m.id)
			if m.instanceID != nil {
				fmt.Fprintf(&b, " instance=%s", *m.instanceID)
			}
			fmt.Fprintf(&b, " session=%d rebalance=%d", m.sessionTimeoutMs, m.rebalanceTimeoutMs)
			var ps []string
			for _, p := range m.protocols {
				ps = append(ps, p.name+":"+string(p.metadata))
			}
			fmt.Fprintf(&b, " protocols=%s assignment=%q deadline=%s", strings.Join(ps, ","), m.assignment, deadlineString(&m.session))
			if m.join.ok {
				fmt.Fprintf(&b, " joining=#%d", m.join.reqID)
			}
			if m.sync.ok {
				fmt.Fprintf(&b, " syncing=#%d", m.sync.reqID)
			}
			if m.isNew {
				b.WriteString(" new")
			}
			if m.pendingSync {
				b.WriteString(" awaiting-sync")
			}
			b.WriteByte('\n')
		}
		for _, pid := range slices.Sorted(maps.Keys(g.pending)) {
			fmt.Fprintf(&b, "  pending %s deadline=%s\n", pid, deadlineString(&g.pending[pid].timer))
		}
		if g.join.scheduled() {
			fmt.Fprintf(&b, "  join phase ends at %s", deadlineString(&g.join))
			if g.initialDelay {
				fmt.Fprintf(&b, " (initial delay %d, %d more allowed)", g.delayMs, g.remainingMs)
			}
			b.WriteByte('\n')
		}
		if g.sync.scheduled() {
			fmt.Fprintf(&b, "  syncs due by %s\n", deadlineString(&g.sync))
		}
	}
	if b.Len() == 0 {
		return "no groups\n"
	}
	return b.String()
}

// checkInvariants checks the coordinator's internal bookkeeping against
// what it summarizes: counters, indexes and timers.
func checkInvariants(c *Coordinator) error {
	for i, t := range c.timers {
		if t.idx != i {
			return fmt.Errorf("timer %d has index %d", i, t.idx)
		}
		if i > 0 && c.timers.less(i, (i-1)/2) {
			return fmt.Errorf("timer heap out of order at %d", i)
		}
	}
	scheduled := 0
	for id, g := range c.groups {
		if g.id != id {
			return fmt.Errorf("group %q filed under %q", g.id, id)
		}
		awaiting, pendingSyncs := 0, 0
		supported := map[string]int{}
		if len(g.byID) != len(g.members) {
			return fmt.Errorf("group %s: %d members, %d by id", id, len(g.members), len(g.byID))
		}
		statics := 0
		for _, m := range g.members {
			if g.byID[m.id] != m {
				return fmt.Errorf("group %s: member %s not indexed", id, m.id)
			}
			if m.instanceID != nil {
				statics++
				if g.static[*m.instanceID] != m {
					return fmt.Errorf("group %s: instance %s not indexed", id, *m.instanceID)
				}
			}
			if m.join.ok {
				awaiting++
			}
			if m.pendingSync {
				pendingSyncs++
			}
			seen := map[string]bool{}
			for _, p := range m.protocols {
				if !seen[p.name] {
					supported[p.name]++
					seen[p.name] = true
				}
			}
			if m.session.scheduled() {
				scheduled++
			} else if g.state != Dead && !m.join.ok && !m.sync.ok {
				return fmt.Errorf("group %s: member %s has no deadline and nothing parked", id, m.id)
			}
			if m.sync.ok && g.state != CompletingRebalance {
				return fmt.Errorf("group %s: member %s has a SyncGroup parked in %s", id, m.id, g.state)
			}
			if m.join.ok && g.state != PreparingRebalance {
				return fmt.Errorf("group %s: member %s has a JoinGroup parked in %s", id, m.id, g.state)
			}
		}
		if statics != len(g.static) {
			return fmt.Errorf("group %s: %d static members, %d instance ids", id, statics, len(g.static))
		}
		if awaiting != g.awaitingJoin {
			return fmt.Errorf("group %s: awaitingJoin %d, counted %d", id, g.awaitingJoin, awaiting)
		}
		if pendingSyncs != g.pendingSyncs {
			return fmt.Errorf("group %s: pendingSyncs %d, counted %d", id, g.pendingSyncs, pendingSyncs)
		}
		if !maps.Equal(supported, g.supported) {
			return fmt.Errorf("group %s: supported %v, counted %v", id, g.supported, supported)
		}
		if (g.leader == "") != (len(g.members) == 0) || (g.leader != "" && g.byID[g.leader] == nil) {
			return fmt.Errorf("group %s: leader %q is not a member", id, g.leader)
		}
		if (g.state == Empty) != (len(g.members) == 0) && g.state != PreparingRebalance && g.state != Dead {
			return fmt.Errorf("group %s: %s with %d members", id, g.state, len(g.members))
		}
		if g.join.scheduled() != (g.state == PreparingRebalance) {
			return fmt.Errorf("group %s: join deadline scheduled=%t in %s", id, g.join.scheduled(), g.state)
		}
		if g.join.scheduled() {
			scheduled++
		}
		if g.sync.scheduled() {
			scheduled++
			if g.pendingSyncs == 0 || (g.state != CompletingRebalance && g.state != Stable) {
				return fmt.Errorf("group %s: sync deadline with %d pending in %s", id, g.pendingSyncs, g.state)
			}
		}
		for pid, p := range g.pending {
			if p.id != pid || !p.timer.scheduled() {
				return fmt.Errorf("group %s: pending %s unscheduled", id, pid)
			}
			if g.byID[pid] != nil {
				return fmt.Errorf("group %s: %s both pending and member", id, pid)
			}
			scheduled++
		}
	}
	if scheduled != len(c.timers) {
		return fmt.Errorf("%d timers in the heap, %d owned by live groups", len(c.timers), scheduled)
	}
	return nil
}
