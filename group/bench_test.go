package group

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestConfigValidate(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	bad := Config{GroupMinSessionTimeoutMs: 0, GroupMaxSessionTimeoutMs: -1, GroupInitialRebalanceDelayMs: -1, GroupMaxSize: 0, NewMemberJoinTimeoutMs: 0}
	err := bad.Validate()
	if err == nil {
		t.Fatal("a zero Config validated")
	}
	for _, want := range []string{
		"group.min.session.timeout.ms=0", "group.max.session.timeout.ms=-1",
		"group.initial.rebalance.delay.ms=-1", "group.max.size=0", "new member join timeout 0ms",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, err := NewCoordinator(bad); err == nil {
		t.Fatal("NewCoordinator took a bad Config")
	}
}

func TestRandomMemberID(t *testing.T) {
	c, err := NewCoordinator(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	req := joinRequest("g", "", 10000)
	rs := c.Join(nil, time.UnixMilli(0), 1, Client{ID: "client"}, req)
	id := rs[0].Resp.(*kmsg.JoinGroupResponse).MemberID
	// As Kafka's: client id, "-", a version 4 UUID.
	if !regexp.MustCompile(`^client-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(id) {
		t.Fatalf("member id %q", id)
	}
	if again := c.Join(nil, time.UnixMilli(0), 2, Client{ID: "client"}, req)[0].Resp.(*kmsg.JoinGroupResponse).MemberID; again == id {
		t.Fatalf("two joins got member id %q", id)
	}
}

func joinRequest(group, memberID string, rebalanceMs int32) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = 9
	req.Group = group
	req.MemberID = memberID
	req.SessionTimeoutMillis = 45000
	req.RebalanceTimeoutMillis = rebalanceMs
	req.ProtocolType = "consumer"
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "range", []byte("subscription: topic-a, topic-b")
	req.Protocols = append(req.Protocols, p)
	return req
}

// stableGroup returns a coordinator with one Stable group of n members,
// their ids, the generation and the time it got there.
func stableGroup(tb testing.TB, n int) (*Coordinator, []string, int32, time.Time) {
	cfg := DefaultConfig()
	cfg.GroupInitialRebalanceDelayMs = 0
	c, err := NewCoordinator(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	var next int
	c.SetMemberIDSuffix(func() string { next++; return strconv.Itoa(next) })
	now := time.UnixMilli(0)
	var reqID uint64
	var buf []Reply
	ids := make([]string, n)
	for i := range n {
		reqID++
		buf = c.Join(buf[:0], now, reqID, Client{ID: "c"}, joinRequest("g", "", 60000))
		ids[i] = buf[0].Resp.(*kmsg.JoinGroupResponse).MemberID
		reqID++
		c.Join(buf[:0], now, reqID, Client{ID: "c"}, joinRequest("g", ids[i], 60000))
	}
	// The initial delay (zero here) ends, extended once if others joined.
	for range 3 {
		now = now.Add(time.Millisecond)
		if buf = c.Tick(buf[:0], now); len(buf) > 0 {
			break
		}
	}
	if len(buf) != n {
		tb.Fatalf("%d join responses, want %d", len(buf), n)
	}
	gen := buf[0].Resp.(*kmsg.JoinGroupResponse).Generation
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.Generation = "g", gen
	for _, id := range ids {
		a := kmsg.NewSyncGroupRequestGroupAssignment()
		a.MemberID, a.MemberAssignment = id, []byte("assignment of "+id)
		sync.GroupAssignment = append(sync.GroupAssignment, a)
	}
	sync.MemberID = ids[0]
	reqID++
	c.Sync(buf[:0], now, reqID, sync)
	if g := c.groups["g"]; g.state != Stable {
		tb.Fatalf("group %s, want Stable", g.state)
	}
	return c, ids, gen, now
}

// TestHeartbeatAllocs: a heartbeat allocates its response and nothing
// else: moving the member's deadline is a heap fix, not a new entry.
func TestHeartbeatAllocs(t *testing.T) {
	c, ids, gen, now := stableGroup(t, 10)
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.Generation = "g", gen
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		now = now.Add(time.Millisecond)
		req.MemberID = ids[i%len(ids)]
		i++
		if r := c.Heartbeat(now, req); r.ErrorCode != 0 {
			t.Fatalf("heartbeat: error %d", r.ErrorCode)
		}
	})
	if allocs > 1 {
		t.Fatalf("a heartbeat allocates %.1f times, want 1 (its response)", allocs)
	}
}

// BenchmarkHeartbeat heartbeats the members of a Stable group in turn,
// beside a bare map lookup of the member (the least any coordinator
// must do), for the ratio.
func BenchmarkHeartbeat(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			c, ids, gen, now := stableGroup(b, n)
			req := kmsg.NewPtrHeartbeatRequest()
			req.Group, req.Generation = "g", gen
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				now = now.Add(time.Microsecond)
				req.MemberID = ids[i%len(ids)]
				i++
				if r := c.Heartbeat(now, req); r.ErrorCode != 0 {
					b.Fatalf("heartbeat: error %d", r.ErrorCode)
				}
			}
		})
		b.Run(fmt.Sprintf("members=%d/map-lookup", n), func(b *testing.B) {
			c, ids, _, _ := stableGroup(b, n)
			g := c.groups["g"]
			b.ReportAllocs()
			i, found := 0, 0
			for b.Loop() {
				if g.byID[ids[i%len(ids)]] != nil {
					found++
				}
				i++
			}
			if found == 0 {
				b.Fatal("no member found")
			}
		})
	}
}

// BenchmarkJoin measures JoinGroup two ways: a whole rebalance of a Stable
// group of n members (the leader rejoins, the others rejoin, the leader
// hands out the assignment, the others sync), per rebalance; and a new
// member's handshake (MEMBER_ID_REQUIRED, then the join) into an Empty
// group, followed by its LeaveGroup, per member.
func BenchmarkJoin(b *testing.B) {
	for _, n := range []int{3, 100} {
		b.Run(fmt.Sprintf("rebalance/members=%d", n), func(b *testing.B) {
			c, ids, gen, now := stableGroup(b, n)
			joins := make([]*kmsg.JoinGroupRequest, n)
			for i, id := range ids {
				joins[i] = joinRequest("g", id, 60000)
			}
			sync := kmsg.NewPtrSyncGroupRequest()
			sync.Group = "g"
			for _, id := range ids {
				a := kmsg.NewSyncGroupRequestGroupAssignment()
				a.MemberID, a.MemberAssignment = id, []byte("assignment of "+id)
				sync.GroupAssignment = append(sync.GroupAssignment, a)
			}
			follower := kmsg.NewPtrSyncGroupRequest()
			follower.Group = "g"
			var buf []Reply
			var reqID uint64
			b.ReportAllocs()
			for b.Loop() {
				now = now.Add(time.Millisecond)
				for i := range joins {
					reqID++
					buf = c.Join(buf[:0], now, reqID, Client{ID: "c"}, joins[i])
				}
				if len(buf) != n {
					b.Fatalf("%d join responses, want %d", len(buf), n)
				}
				gen++
				sync.Generation, sync.MemberID = gen, ids[0]
				reqID++
				buf = c.Sync(buf[:0], now, reqID, sync)
				for _, id := range ids[1:] {
					follower.Generation, follower.MemberID = gen, id
					reqID++
					buf = c.Sync(buf[:0], now, reqID, follower)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/member")
		})
	}
	b.Run("handshake+leave", func(b *testing.B) {
		c, _, _, now := stableGroup(b, 1)
		leave := kmsg.NewPtrLeaveGroupRequest()
		leave.Version = 5
		leave.Group = "e"
		leave.Members = make([]kmsg.LeaveGroupRequestMember, 1)
		first := joinRequest("e", "", 60000)
		var buf []Reply
		var reqID uint64
		b.ReportAllocs()
		for b.Loop() {
			reqID++
			buf = c.Join(buf[:0], now, reqID, Client{ID: "c"}, first)
			id := buf[0].Resp.(*kmsg.JoinGroupResponse).MemberID
			reqID++
			buf = c.Join(buf[:0], now, reqID, Client{ID: "c"}, joinRequest("e", id, 60000))
			leave.Members[0].MemberID = id
			reqID++
			buf = c.Leave(buf[:0], now, reqID, leave)
			if len(buf) != 2 {
				b.Fatalf("%d replies to the leave, want 2", len(buf))
			}
		}
	})
}
