package broker_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/broker"
	"gregor/internal/testcluster"
)

// loadCoordinators makes sure the coordinators of groups exist and have
// loaded, so that raw requests get the answers the tests expect rather
// than COORDINATOR_LOAD_IN_PROGRESS: FindCoordinator creates
// __consumer_offsets, and kgo retries an OffsetFetch until the coordinator
// answers.
func loadCoordinators(t *testing.T, ctx context.Context, adm *kadm.Client, groups ...string) {
	t.Helper()
	for _, g := range groups {
		if _, err := adm.FetchOffsets(ctx, g); err != nil {
			t.Fatalf("fetching the offsets of %s: %v", g, err)
		}
	}
}

func code(c int16) string {
	if c == 0 {
		return "NONE"
	}
	return kerr.ErrorForCode(c).(*kerr.Error).Message
}

// rawJoin sends a JoinGroup v5 for a consumer subscribed to topic.
func rawJoin(r *rawConn, group, memberID string, sessionMs int32, protocolType string) *kmsg.JoinGroupResponse {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = 5
	req.Group, req.MemberID, req.ProtocolType = group, memberID, protocolType
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = sessionMs, 5000
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{"bad"}
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "range", meta.AppendTo(nil)
	req.Protocols = append(req.Protocols, p)
	return r.do(req).(*kmsg.JoinGroupResponse)
}

func rawHeartbeat(r *rawConn, group, memberID string, generation int32) int16 {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 4
	req.Group, req.MemberID, req.Generation = group, memberID, generation
	return r.do(req).(*kmsg.HeartbeatResponse).ErrorCode
}

func rawSync(r *rawConn, group, memberID string, generation int32, assignment []byte) *kmsg.SyncGroupResponse {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 3
	req.Group, req.MemberID, req.Generation = group, memberID, generation
	if assignment != nil {
		a := kmsg.NewSyncGroupRequestGroupAssignment()
		a.MemberID, a.MemberAssignment = memberID, assignment
		req.GroupAssignment = append(req.GroupAssignment, a)
	}
	return r.do(req).(*kmsg.SyncGroupResponse)
}

// commitPartition is one partition of a raw OffsetCommit.
type commitPartition struct {
	topic     string
	partition int32
	offset    int64
	metadata  *string
}

// rawCommit sends an OffsetCommit of version and returns each partition's
// error as "topic-p:ERROR", in order.
func rawCommit(r *rawConn, version int16, group, memberID string, generation int32, ps ...commitPartition) string {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = version
	req.Group, req.MemberID, req.Generation = group, memberID, generation
	for _, p := range ps {
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != p.topic {
			rt := kmsg.NewOffsetCommitRequestTopic()
			rt.Topic = p.topic
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.Metadata = p.partition, p.offset, p.metadata
		rt := &req.Topics[len(req.Topics)-1]
		rt.Partitions = append(rt.Partitions, rp)
	}
	resp := r.do(req).(*kmsg.OffsetCommitResponse)
	var out []string
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out = append(out, fmt.Sprintf("%s-%d:%s", t.Topic, p.Partition, code(p.ErrorCode)))
		}
	}
	return strings.Join(out, " ")
}

// TestGroupBadInput sends the group APIs what a broken or stale client
// would, by hand, and checks Kafka's error code for each.
func TestGroupBadInput(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "bad", 2, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(newClient(t, c))
	const group, other = "group-bad", "group-bad-commits"
	loadCoordinators(t, ctx, adm, group, other, "group-never-seen")
	r := dialRaw(t, c.Addrs()[0])
	minSession, maxSession := c.Config(0).Group.GroupMinSessionTimeoutMs, c.Config(0).Group.GroupMaxSessionTimeoutMs

	t.Run("session timeout out of range", func(t *testing.T) {
		for _, ms := range []int32{minSession - 1, maxSession + 1, 0, -1} {
			resp := rawJoin(r, group, "", ms, "consumer")
			if resp.ErrorCode != kerr.InvalidSessionTimeout.Code || resp.Generation != -1 || resp.MemberID != "" {
				t.Errorf("JoinGroup with session timeout %dms (allowed %d-%d): %s, generation %d, member %q; want INVALID_SESSION_TIMEOUT, -1, none",
					ms, minSession, maxSession, code(resp.ErrorCode), resp.Generation, resp.MemberID)
			}
		}
	})

	t.Run("empty group id", func(t *testing.T) {
		if resp := rawJoin(r, "", "", 10000, "consumer"); resp.ErrorCode != kerr.InvalidGroupID.Code {
			t.Errorf("JoinGroup with an empty group id: %s, want INVALID_GROUP_ID", code(resp.ErrorCode))
		}
		if got := rawCommit(r, 8, "", "", -1, commitPartition{"bad", 0, 1, nil}); got != "bad-0:"+code(kerr.InvalidGroupID.Code) {
			t.Errorf("OffsetCommit with an empty group id: %s, want INVALID_GROUP_ID", got)
		}
	})

	// One member, joined and synced by hand (MEMBER_ID_REQUIRED first, as
	// JoinGroup v4+ asks of a new member).
	first := rawJoin(r, group, "", 10000, "consumer")
	if first.ErrorCode != kerr.MemberIDRequired.Code || first.MemberID == "" {
		t.Fatalf("first JoinGroup: %s, member %q; want MEMBER_ID_REQUIRED with a member id", code(first.ErrorCode), first.MemberID)
	}
	member := first.MemberID
	joined := rawJoin(r, group, member, 10000, "consumer")
	if joined.ErrorCode != 0 || joined.Generation != 1 || joined.LeaderID != member || len(joined.Members) != 1 {
		t.Fatalf("JoinGroup with the member id: %s, generation %d, leader %q, %d members; want generation 1, led by %s, one member",
			code(joined.ErrorCode), joined.Generation, joined.LeaderID, len(joined.Members), member)
	}
	assignment := []byte("assignment")
	if resp := rawSync(r, group, member, 1, assignment); resp.ErrorCode != 0 || string(resp.MemberAssignment) != "assignment" {
		t.Fatalf("SyncGroup: %s %q", code(resp.ErrorCode), resp.MemberAssignment)
	}
	if ec := rawHeartbeat(r, group, member, 1); ec != 0 {
		t.Fatalf("Heartbeat: %s", code(ec))
	}

	t.Run("unknown member", func(t *testing.T) {
		for _, g := range []string{group, "group-never-seen"} {
			if ec := rawHeartbeat(r, g, "no-such-member", 1); ec != kerr.UnknownMemberID.Code {
				t.Errorf("Heartbeat to %s from an unknown member: %s, want UNKNOWN_MEMBER_ID", g, code(ec))
			}
		}
		if resp := rawSync(r, group, "no-such-member", 1, nil); resp.ErrorCode != kerr.UnknownMemberID.Code {
			t.Errorf("SyncGroup from an unknown member: %s, want UNKNOWN_MEMBER_ID", code(resp.ErrorCode))
		}
		if resp := rawJoin(r, group, "no-such-member", 10000, "consumer"); resp.ErrorCode != kerr.UnknownMemberID.Code {
			t.Errorf("JoinGroup with an unknown member id: %s, want UNKNOWN_MEMBER_ID", code(resp.ErrorCode))
		}
		if got := rawCommit(r, 8, group, "no-such-member", 1, commitPartition{"bad", 0, 1, nil}); got != "bad-0:"+code(kerr.UnknownMemberID.Code) {
			t.Errorf("OffsetCommit from an unknown member: %s, want UNKNOWN_MEMBER_ID", got)
		}
	})

	t.Run("wrong generation", func(t *testing.T) {
		for _, gen := range []int32{0, 2} {
			if ec := rawHeartbeat(r, group, member, gen); ec != kerr.IllegalGeneration.Code {
				t.Errorf("Heartbeat at generation %d (the group's is 1): %s, want ILLEGAL_GENERATION", gen, code(ec))
			}
			if resp := rawSync(r, group, member, gen, nil); resp.ErrorCode != kerr.IllegalGeneration.Code {
				t.Errorf("SyncGroup at generation %d: %s, want ILLEGAL_GENERATION", gen, code(resp.ErrorCode))
			}
			if got := rawCommit(r, 8, group, member, gen, commitPartition{"bad", 0, 1, nil}); got != "bad-0:"+code(kerr.IllegalGeneration.Code) {
				t.Errorf("OffsetCommit at generation %d: %s, want ILLEGAL_GENERATION", gen, got)
			}
		}
		// A generation for a group that does not exist: v8 says
		// ILLEGAL_GENERATION, v9 GROUP_ID_NOT_FOUND (KIP-848).
		if got := rawCommit(r, 8, "group-never-seen", "m", 1, commitPartition{"bad", 0, 1, nil}); got != "bad-0:"+code(kerr.IllegalGeneration.Code) {
			t.Errorf("OffsetCommit v8 at generation 1 of a group that does not exist: %s, want ILLEGAL_GENERATION", got)
		}
		if got := rawCommit(r, 9, "group-never-seen", "m", 1, commitPartition{"bad", 0, 1, nil}); got != "bad-0:"+code(kerr.GroupIDNotFound.Code) {
			t.Errorf("OffsetCommit v9 at generation 1 of a group that does not exist: %s, want GROUP_ID_NOT_FOUND", got)
		}
		// The right generation commits.
		if got := rawCommit(r, 8, group, member, 1, commitPartition{"bad", 0, 1, nil}); got != "bad-0:NONE" {
			t.Errorf("OffsetCommit at generation 1: %s", got)
		}
	})

	t.Run("inconsistent protocol type", func(t *testing.T) {
		if resp := rawJoin(r, group, "", 10000, "connect"); resp.ErrorCode != kerr.InconsistentGroupProtocol.Code {
			t.Errorf("JoinGroup of a connect worker to a consumer group: %s, want INCONSISTENT_GROUP_PROTOCOL", code(resp.ErrorCode))
		}
	})

	t.Run("unknown topic or partition, metadata too large", func(t *testing.T) {
		// offset.metadata.max.bytes (4096) bounds the metadata's length as
		// Java's String.length counts it, in UTF-16 code units, which is
		// what Kafka compares: 4096 "é" fit (8192 bytes of UTF-8), and
		// 2048 "😀" (two units each).
		fits, tooLarge := strings.Repeat("m", 4096), strings.Repeat("m", 4097)
		fitsAccents, tooManyAccents := strings.Repeat("\u00e9", 4096), strings.Repeat("\u00e9", 4097)
		fitsEmoji, tooManyEmoji := strings.Repeat("\U0001F600", 2048), strings.Repeat("\U0001F600", 2048)+"m"
		got := rawCommit(r, 8, other, "", -1,
			commitPartition{"no-such-topic", 0, 1, nil},
			commitPartition{"bad", 2, 1, nil},
			commitPartition{"bad", -1, 1, nil},
			commitPartition{"bad", 0, 5, &tooLarge},
			commitPartition{"bad", 0, 5, &tooManyAccents},
			commitPartition{"bad", 0, 5, &tooManyEmoji},
			commitPartition{"bad", 1, 6, &fitsAccents},
			commitPartition{"bad", 1, 6, &fitsEmoji},
			commitPartition{"bad", 1, 6, &fits},
		)
		tooLargeCode := " bad-0:" + code(kerr.OffsetMetadataTooLarge.Code)
		want := "no-such-topic-0:" + code(kerr.UnknownTopicOrPartition.Code) +
			" bad-2:" + code(kerr.UnknownTopicOrPartition.Code) +
			" bad--1:" + code(kerr.UnknownTopicOrPartition.Code) +
			tooLargeCode + tooLargeCode + tooLargeCode +
			" bad-1:NONE bad-1:NONE bad-1:NONE"
		if got != want {
			t.Errorf("OffsetCommit:\n got %s\nwant %s", got, want)
		}
		// Only the partition that was accepted is stored, with the last
		// of its entries.
		if got := fetchedOffsets(t, ctx, adm, other); got != fmt.Sprintf("bad-1@6(-1,%q)", fits) {
			t.Errorf("offsets of %s: %.80s..., want bad-1@6 with 4096 bytes of metadata only", other, got)
		}
	})

	t.Run("leave, then heartbeat", func(t *testing.T) {
		req := kmsg.NewPtrLeaveGroupRequest()
		req.Version, req.Group = 3, group
		lm := kmsg.NewLeaveGroupRequestMember()
		lm.MemberID = member
		req.Members = append(req.Members, lm)
		resp := r.do(req).(*kmsg.LeaveGroupResponse)
		if resp.ErrorCode != 0 || len(resp.Members) != 1 || resp.Members[0].ErrorCode != 0 {
			t.Fatalf("LeaveGroup: %s %+v", code(resp.ErrorCode), resp.Members)
		}
		if ec := rawHeartbeat(r, group, member, 1); ec != kerr.UnknownMemberID.Code {
			t.Errorf("Heartbeat after leaving: %s, want UNKNOWN_MEMBER_ID", code(ec))
		}
	})

	// Transactions are not supported: a transactional id is refused as
	// InitProducerId refuses it, with an error Kafka's clients take as
	// fatal; an unknown key type is a bad request.
	t.Run("transactional coordinator", func(t *testing.T) {
		for _, c := range []struct {
			keyType int8
			want    int16
		}{{1, kerr.TransactionalIDAuthorizationFailed.Code}, {2, kerr.InvalidRequest.Code}} {
			for _, v := range []int16{1, 3} {
				req := kmsg.NewPtrFindCoordinatorRequest()
				req.Version, req.CoordinatorType, req.CoordinatorKey = v, c.keyType, "a-transactional-id"
				resp := r.do(req).(*kmsg.FindCoordinatorResponse)
				if resp.ErrorCode != c.want || resp.NodeID != -1 || resp.ErrorMessage == nil {
					t.Errorf("FindCoordinator v%d for key type %d: %s node %d message %v, want %s, -1, a message",
						v, c.keyType, code(resp.ErrorCode), resp.NodeID, resp.ErrorMessage, code(c.want))
				}
			}
			req := kmsg.NewPtrFindCoordinatorRequest()
			req.Version, req.CoordinatorType, req.CoordinatorKeys = 4, c.keyType, []string{"txn-1", "txn-2"}
			resp := r.do(req).(*kmsg.FindCoordinatorResponse)
			if len(resp.Coordinators) != 2 {
				t.Fatalf("FindCoordinator v4 for two keys of type %d: %d answers", c.keyType, len(resp.Coordinators))
			}
			for i, co := range resp.Coordinators {
				if co.Key != req.CoordinatorKeys[i] || co.ErrorCode != c.want || co.NodeID != -1 || co.ErrorMessage == nil {
					t.Errorf("FindCoordinator v4 for %s of type %d: key %q %s node %d, want %s, -1, a message",
						req.CoordinatorKeys[i], c.keyType, co.Key, code(co.ErrorCode), co.NodeID, code(c.want))
				}
			}
		}
	})
}

// Java's String.hashCode of group ids, as a JVM computed them, and the
// partition of a 5-partition __consumer_offsets Kafka's partitionFor
// (Utils.abs(hashCode) % partitions, Utils.abs(Integer.MIN_VALUE) being 0)
// puts each in.
var javaGroupPartitions = []struct {
	group     string
	hashCode  int32
	partition int32
}{
	{"hello", 99162322, 2},
	{"polygenelubricants", -2147483648, 0},
	{"group-three", -328887088, 3},
	{"console-consumer-12345", 158455506, 1},
	{"my-group", -1906497762, 2},
	{"\u00e9t\u00e9", 227742, 2},
	{"\U0001F600-group", -1198440043, 3},
	{"zzzzzzzzzz", -1580979136, 1},
	{"group-c", 293427349, 4},
	{"orders-consumer", -1204742690, 0},
}

// TestGroupCoordinatorsOnThreeNodes checks where a three-node cluster puts
// group coordinators: FindCoordinator v4 answers a batch of keys one by
// one, each with the leader of the partition Kafka's formula maps it to,
// the same from every broker and as v3 answers a single key; and every
// broker but a group's coordinator answers its requests NOT_COORDINATOR.
func TestGroupCoordinatorsOnThreeNodes(t *testing.T) {
	c := testcluster.Start(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(newClient(t, c))
	const group = "group-c" // partition 4
	loadCoordinators(t, ctx, adm, group)
	c.WaitForTopic("__consumer_offsets")
	im := c.Brokers[0].Image()
	offsets, _ := im.Topic("__consumer_offsets")
	if len(offsets.Partitions) != 5 {
		t.Fatalf("__consumer_offsets has %d partitions, want 5 (testcluster's offsets.topic.num.partitions)", len(offsets.Partitions))
	}
	addrOf := map[int32]string{}
	for _, b := range c.Brokers {
		addrOf[b.NodeID()] = b.Addr().String()
	}

	t.Run("FindCoordinator", func(t *testing.T) {
		var keys []string
		for _, g := range javaGroupPartitions {
			keys = append(keys, g.group)
		}
		for _, addr := range c.Addrs() {
			r := dialRaw(t, addr)
			req := kmsg.NewPtrFindCoordinatorRequest()
			req.Version, req.CoordinatorKeys = 4, keys
			resp := r.do(req).(*kmsg.FindCoordinatorResponse)
			if len(resp.Coordinators) != len(keys) {
				t.Fatalf("%s: FindCoordinator v4 with %d keys: %d answers", addr, len(keys), len(resp.Coordinators))
			}
			for i, g := range javaGroupPartitions {
				got := resp.Coordinators[i]
				leader := offsets.Partitions[g.partition].Leader
				if got.Key != g.group || got.ErrorCode != 0 || got.NodeID != leader || net.JoinHostPort(got.Host, strconv.Itoa(int(got.Port))) != addrOf[leader] {
					t.Errorf("%s: FindCoordinator v4 for %q (hashCode %d, partition %d led by node %d at %s): key %q %s node %d at %s:%d",
						addr, g.group, g.hashCode, g.partition, leader, addrOf[leader], got.Key, code(got.ErrorCode), got.NodeID, got.Host, got.Port)
				}
				one := kmsg.NewPtrFindCoordinatorRequest()
				one.Version, one.CoordinatorKey = 3, g.group
				if resp := r.do(one).(*kmsg.FindCoordinatorResponse); resp.ErrorCode != 0 || resp.NodeID != leader {
					t.Errorf("%s: FindCoordinator v3 for %q: %s node %d, want node %d", addr, g.group, code(resp.ErrorCode), resp.NodeID, leader)
				}
			}
		}
	})

	t.Run("ListGroups", func(t *testing.T) {
		// Each broker lists the groups it coordinates; kadm asks them
		// all.
		createTopic(t, c, "placed", 1, nil)
		os := kadm.Offsets{}
		os.Add(kadm.Offset{Topic: "placed", Partition: 0, At: 1, LeaderEpoch: -1})
		want := map[string]int32{}
		for _, g := range javaGroupPartitions {
			if err := adm.CommitAllOffsets(ctx, g.group, os); err != nil {
				t.Fatalf("committing for %q: %v", g.group, err)
			}
			want[g.group] = offsets.Partitions[g.partition].Leader
		}
		listed, err := adm.ListGroups(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int32{}
		for _, l := range listed {
			got[l.Group] = l.Coordinator
			if l.State != "Empty" {
				t.Errorf("%q is %s, want Empty", l.Group, l.State)
			}
		}
		if !maps.Equal(got, want) {
			t.Errorf("ListGroups (group: coordinator): %v, want %v", got, want)
		}
	})

	t.Run("NOT_COORDINATOR", func(t *testing.T) {
		coord := offsets.Partitions[4].Leader
		for _, b := range c.Brokers {
			if b.NodeID() == coord {
				continue
			}
			r := dialRaw(t, b.Addr().String())
			var got []string
			note := func(api string, ec int16) {
				if ec != kerr.NotCoordinator.Code {
					got = append(got, api+" "+code(ec))
				}
			}
			note("JoinGroup", rawJoin(r, group, "", 10000, "consumer").ErrorCode)
			note("SyncGroup", rawSync(r, group, "m", 1, nil).ErrorCode)
			note("Heartbeat", rawHeartbeat(r, group, "m", 1))
			leave := kmsg.NewPtrLeaveGroupRequest()
			leave.Version, leave.Group, leave.MemberID = 0, group, "m"
			note("LeaveGroup", r.do(leave).(*kmsg.LeaveGroupResponse).ErrorCode)
			if got := rawCommit(r, 8, group, "", -1, commitPartition{"t", 0, 1, nil}); got != "t-0:"+code(kerr.NotCoordinator.Code) {
				note("OffsetCommit "+got, 0)
			}
			fetch := kmsg.NewPtrOffsetFetchRequest()
			fetch.Version, fetch.Group = 7, group
			note("OffsetFetch v7", r.do(fetch).(*kmsg.OffsetFetchResponse).ErrorCode)
			fetch8 := kmsg.NewPtrOffsetFetchRequest()
			fetch8.Version = 8
			fg := kmsg.NewOffsetFetchRequestGroup()
			fg.Group = group
			fetch8.Groups = append(fetch8.Groups, fg)
			if resp := r.do(fetch8).(*kmsg.OffsetFetchResponse); len(resp.Groups) != 1 {
				got = append(got, fmt.Sprintf("OffsetFetch v8: %d groups", len(resp.Groups)))
			} else {
				note("OffsetFetch v8", resp.Groups[0].ErrorCode)
			}
			od := kmsg.NewPtrOffsetDeleteRequest()
			od.Group = group
			note("OffsetDelete", r.do(od).(*kmsg.OffsetDeleteResponse).ErrorCode)
			dg := kmsg.NewPtrDescribeGroupsRequest()
			dg.Version, dg.Groups = 5, []string{group}
			note("DescribeGroups", r.do(dg).(*kmsg.DescribeGroupsResponse).Groups[0].ErrorCode)
			del := kmsg.NewPtrDeleteGroupsRequest()
			del.Version, del.Groups = 2, []string{group}
			note("DeleteGroups", r.do(del).(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode)
			if len(got) > 0 {
				t.Errorf("node %d, which does not coordinate %s (node %d does), answered: %s; want NOT_COORDINATOR for each",
					b.NodeID(), group, coord, strings.Join(got, ", "))
			}
		}
		// The coordinator itself serves the group.
		r := dialRaw(t, addrOf[coord])
		if resp := rawJoin(r, group, "", 10000, "consumer"); resp.ErrorCode != kerr.MemberIDRequired.Code {
			t.Errorf("JoinGroup at the coordinator: %s, want MEMBER_ID_REQUIRED", code(resp.ErrorCode))
		}
	})
}

// TestJoinsWaitingOnAGroupLeaveTheRequestBound: JoinGroups waiting out a
// join phase do not hold queued.max.requests, so a group with more members
// than that bound does not stop the broker reading its connections.
func TestJoinsWaitingOnAGroupLeaveTheRequestBound(t *testing.T) {
	const bound = 4
	c := testcluster.Start(t, 1, func(_ int, cfg *broker.Config) {
		cfg.Net.QueuedMaxRequests = bound
		// The join phase outlasts the test: every JoinGroup waits.
		cfg.Group.GroupInitialRebalanceDelayMs = 300_000
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(newClient(t, c))
	loadCoordinators(t, ctx, adm, "big")
	const members = bound + 1
	for i := range members {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Version = 5
		req.Group, req.ProtocolType = "big", "consumer"
		// Static members join without MEMBER_ID_REQUIRED's round trip.
		req.InstanceID = kmsg.StringPtr(fmt.Sprint("member-", i))
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 30_000, 300_000
		p := kmsg.NewJoinGroupRequestProtocol()
		meta := kmsg.NewConsumerMemberMetadata()
		p.Name, p.Metadata = "range", meta.AppendTo(nil)
		req.Protocols = append(req.Protocols, p)
		r := dialRaw(t, c.Addrs()[0])
		r.write(r.frameOf(req))
	}
	// The broker answers while every member waits in the join phase.
	for {
		described, err := adm.DescribeGroups(ctx, "big")
		if err == nil {
			err = described.Error()
		}
		if errors.Is(err, kerr.GroupIDNotFound) && ctx.Err() == nil {
			continue // no JoinGroup has reached the coordinator yet
		}
		if err != nil {
			t.Fatalf("describing a group whose JoinGroups wait: %v", err)
		}
		g := described["big"]
		if len(g.Members) == members {
			if g.State != "PreparingRebalance" {
				t.Fatalf("group state %s, want PreparingRebalance", g.State)
			}
			return
		}
	}
}

// TestHeartbeatWhileTheCoordinatorLoads guards the answer to a Heartbeat
// that reaches a coordinator still loading its partition: NONE, as Kafka's
// GroupCoordinatorService.heartbeat answers ("the group is still loading,
// so blindly respond"), so that members are not disturbed while their
// coordinator moves or restarts; the requests that need the group's state,
// a JoinGroup here, still get COORDINATOR_LOAD_IN_PROGRESS. Gregor used to
// answer the Heartbeat COORDINATOR_LOAD_IN_PROGRESS too.
func TestHeartbeatWhileTheCoordinatorLoads(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(newClient(t, c))
	const g = "hb-loading"
	loadCoordinators(t, ctx, adm, g)
	broker.SetCoordinatorLoaded(c.Brokers[0], g, false)
	defer broker.SetCoordinatorLoaded(c.Brokers[0], g, true)
	r := dialRaw(t, c.Addrs()[0])
	if got := rawHeartbeat(r, g, "member-1", 1); got != 0 {
		t.Errorf("Heartbeat while the coordinator loads: %s, want NONE", code(got))
	}
	if got := rawJoin(r, g, "", 10000, "consumer").ErrorCode; got != kerr.CoordinatorLoadInProgress.Code {
		t.Errorf("JoinGroup while the coordinator loads: %s, want COORDINATOR_LOAD_IN_PROGRESS", code(got))
	}
}
