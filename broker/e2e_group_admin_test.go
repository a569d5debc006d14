package broker_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/broker"
	"gregor/internal/testcluster"
	"gregor/raft"
)

// offsetFetchGroups renders an OffsetFetch v8+ response's groups as
// "group:err[topic-p@offset(metadata) ...]".
func offsetFetchGroups(resp *kmsg.OffsetFetchResponse) string {
	var out []string
	for _, g := range resp.Groups {
		var ps []string
		for _, t := range g.Topics {
			for _, p := range t.Partitions {
				meta := ""
				if p.Metadata != nil {
					meta = *p.Metadata
				}
				ps = append(ps, fmt.Sprintf("%s-%d@%d(%s)%s", t.Topic, p.Partition, p.Offset, meta, errSuffix(p.ErrorCode)))
			}
		}
		out = append(out, fmt.Sprintf("%s%s[%s]", g.Group, errSuffix(g.ErrorCode), strings.Join(ps, " ")))
	}
	return strings.Join(out, " ")
}

func errSuffix(code int16) string {
	if code == 0 {
		return ""
	}
	return ":" + kerr.ErrorForCode(code).(*kerr.Error).Message
}

// TestGroupAdmin drives the group admin APIs through kadm, as kcl and
// other tools do, against a group with a live member and a group that has
// offsets only: ListGroups, DescribeGroups (members, their subscriptions
// and assignments), Lag, FetchOffsets for several groups in one OffsetFetch
// v8 request, OffsetDelete and DeleteGroups, with the errors Kafka gives
// for a group in use and for one that does not exist.
func TestGroupAdmin(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	const topic, live, offsetsOnly, unknown = "admin", "group-live", "group-offsets-only", "group-unknown"
	createTopic(t, c, topic, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(newClient(t, c))
	tr := newGroupTracker(topic, 3)

	// A member that reads everything and commits offset 4 of each
	// partition: a lag of 6 each.
	m := startFranzMember(t, c.Addrs(), tr, live, "live")
	m.commit.Store(false)
	tr.wait(t, ctx, "the member joins", tr.sharedBy("live"))
	produceEach(t, ctx, manualProducer(t, c), tr, 10)
	tr.wait(t, ctx, "the member reads offsets 0-9", tr.readAll)
	var commitErr error
	m.cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{topic: {0: {Epoch: -1, Offset: 4}, 1: {Epoch: -1, Offset: 4}, 2: {Epoch: -1, Offset: 4}}},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			commitErr = err
			for _, rt := range resp.Topics {
				for _, rp := range rt.Partitions {
					commitErr = errors.Join(commitErr, kerr.ErrorForCode(rp.ErrorCode))
				}
			}
		})
	if commitErr != nil {
		t.Fatalf("the member's commit: %v", commitErr)
	}
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: topic, Partition: 0, At: 3, LeaderEpoch: -1, Metadata: "three"})
	os.Add(kadm.Offset{Topic: topic, Partition: 1, At: 6, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(ctx, offsetsOnly, os); err != nil {
		t.Fatalf("committing for %s: %v", offsetsOnly, err)
	}
	// An admin's commit (no member, no generation) to a group in use is
	// refused.
	if resp, err := adm.CommitOffsets(ctx, live, os); err != nil || !errors.Is(resp.Error(), kerr.UnknownMemberID) {
		t.Errorf("an admin commit to %s while it has a member: %v %v, want UNKNOWN_MEMBER_ID", live, err, resp.Error())
	}

	t.Run("ListGroups", func(t *testing.T) {
		listed, err := adm.ListGroups(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, g := range listed.Sorted() {
			got = append(got, fmt.Sprintf("%s %s %q node %d", g.Group, g.State, g.ProtocolType, g.Coordinator))
		}
		want := []string{live + ` Stable "consumer" node 1`, offsetsOnly + ` Empty "" node 1`}
		if !slices.Equal(got, want) {
			t.Errorf("ListGroups: %q, want %q", got, want)
		}
		stable, err := adm.ListGroups(ctx, "Stable")
		if err != nil || !slices.Equal(stable.Groups(), []string{live}) {
			t.Errorf("ListGroups of Stable groups: %v %v, want %s", stable.Groups(), err, live)
		}
	})

	t.Run("DescribeGroups", func(t *testing.T) {
		described, err := adm.DescribeGroups(ctx, live, offsetsOnly, unknown)
		if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
			t.Fatal(err)
		}
		g := described[live]
		if g.Err != nil || g.State != "Stable" || g.ProtocolType != "consumer" || g.Protocol != "cooperative-sticky" || len(g.Members) != 1 {
			t.Fatalf("%s: %v %s %s/%s, %d members; want Stable consumer/cooperative-sticky (kgo's default), one member",
				live, g.Err, g.State, g.ProtocolType, g.Protocol, len(g.Members))
		}
		dm := g.Members[0]
		if dm.MemberID != m.memberID() || dm.ClientID != "live" || dm.ClientHost != "/127.0.0.1" {
			t.Errorf("member %+v, want id %s, client live, host /127.0.0.1", dm, m.memberID())
		}
		if sub, ok := dm.Join.AsConsumer(); !ok || !slices.Equal(sub.Topics, []string{topic}) {
			t.Errorf("the member's subscription: %+v %v, want topic %s", sub, ok, topic)
		}
		if a, ok := dm.Assigned.AsConsumer(); !ok || len(a.Topics) != 1 || a.Topics[0].Topic != topic || !slices.Equal(slices.Sorted(slices.Values(a.Topics[0].Partitions)), []int32{0, 1, 2}) {
			t.Errorf("the member's assignment: %+v %v, want %s 0-2", a, ok, topic)
		}
		if g := described[offsetsOnly]; g.Err != nil || g.State != "Empty" || len(g.Members) != 0 {
			t.Errorf("%s: %v %s with %d members, want Empty with none", offsetsOnly, g.Err, g.State, len(g.Members))
		}
		if g := described[unknown]; !errors.Is(g.Err, kerr.GroupIDNotFound) || g.State != "Dead" {
			t.Errorf("%s: %v %s, want GROUP_ID_NOT_FOUND, Dead", unknown, g.Err, g.State)
		}
	})

	t.Run("Lag", func(t *testing.T) {
		lags, err := adm.Lag(ctx, live, offsetsOnly)
		if err != nil {
			t.Fatal(err)
		}
		l := lags[live]
		if l.Error() != nil || l.Lag.Total() != 18 {
			t.Fatalf("lag of %s: %v, total %d, want 18", live, l.Error(), l.Lag.Total())
		}
		for p := range int32(3) {
			ml, ok := l.Lag.Lookup(topic, p)
			if !ok || ml.Err != nil || ml.Commit.At != 4 || ml.End.Offset != 10 || ml.Lag != 6 || ml.Member == nil || ml.Member.MemberID != m.memberID() {
				t.Errorf("lag of %s partition %d: %+v, want commit 4, end 10, lag 6, the member", live, p, ml)
			}
		}
		e := lags[offsetsOnly]
		if e.Error() != nil || e.State != "Empty" {
			t.Fatalf("lag of %s: %v %s", offsetsOnly, e.Error(), e.State)
		}
		for p, want := range map[int32]int64{0: 7, 1: 4} {
			if ml, ok := e.Lag.Lookup(topic, p); !ok || ml.Lag != want || !ml.IsEmpty() {
				t.Errorf("lag of %s partition %d: %+v, want %d", offsetsOnly, p, ml, want)
			}
		}
	})

	t.Run("FetchOffsets of several groups", func(t *testing.T) {
		// kgo commits with the member id as metadata.
		id := m.memberID()
		many := adm.FetchManyOffsets(ctx, live, offsetsOnly, unknown)
		for g, want := range map[string]string{
			live:        fmt.Sprintf(`admin-0@4(-1,%[1]q) admin-1@4(-1,%[1]q) admin-2@4(-1,%[1]q)`, id),
			offsetsOnly: `admin-0@3(-1,"three") admin-1@6(-1,"")`,
			unknown:     ``,
		} {
			r := many[g]
			var got []string
			for _, o := range r.Fetched.Sorted() {
				got = append(got, fmt.Sprintf("%s-%d@%d(%d,%q)", o.Topic, o.Partition, o.At, o.LeaderEpoch, o.Metadata))
			}
			if r.Err != nil || strings.Join(got, " ") != want {
				t.Errorf("FetchManyOffsets %s: %v %s, want %s", g, r.Err, strings.Join(got, " "), want)
			}
		}
		// One OffsetFetch v8 request to the coordinator: every group is
		// answered, all partitions of one, some of another (one without
		// a commit: -1), none of an unknown group.
		for _, v := range []int16{8, 9} {
			req := kmsg.NewPtrOffsetFetchRequest()
			req.Version = v
			for _, g := range []string{live, offsetsOnly, unknown} {
				rg := kmsg.NewOffsetFetchRequestGroup()
				rg.Group = g
				if g == offsetsOnly {
					rt := kmsg.NewOffsetFetchRequestGroupTopic()
					rt.Topic, rt.Partitions = topic, []int32{1, 2}
					rg.Topics = append(rg.Topics, rt)
				}
				req.Groups = append(req.Groups, rg)
			}
			resp := dialRaw(t, c.Addrs()[0]).do(req).(*kmsg.OffsetFetchResponse)
			want := fmt.Sprintf("group-live[admin-0@4(%[1]s) admin-1@4(%[1]s) admin-2@4(%[1]s)] group-offsets-only[admin-1@6() admin-2@-1()] group-unknown[]", id)
			if got := offsetFetchGroups(resp); resp.ErrorCode != 0 || got != want {
				t.Errorf("OffsetFetch v%d of three groups: %v %s, want %s", v, kerr.ErrorForCode(resp.ErrorCode), got, want)
			}
		}
	})

	t.Run("DeleteGroups and OffsetDelete while in use", func(t *testing.T) {
		deleted, err := adm.DeleteGroups(ctx, live, unknown)
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(deleted[live].Err, kerr.NonEmptyGroup) || !errors.Is(deleted[unknown].Err, kerr.GroupIDNotFound) {
			t.Errorf("DeleteGroups: %s %v, %s %v; want NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND", live, deleted[live].Err, unknown, deleted[unknown].Err)
		}
		od, err := adm.DeleteOffsets(ctx, live, kadm.TopicsSet{topic: {0: {}}})
		if err != nil {
			t.Fatal(err)
		}
		if perr, _ := od.Lookup(topic, 0); !errors.Is(perr, kerr.GroupSubscribedToTopic) {
			t.Errorf("OffsetDelete on %s while its member reads %s: %v, want GROUP_SUBSCRIBED_TO_TOPIC", live, topic, perr)
		}
		// Only the topics the member subscribes to (from its franz-go
		// subscription metadata) are refused: an offset it committed
		// for another topic may go.
		createTopic(t, c, "admin-aside", 1, nil)
		var commitErr error
		m.cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{"admin-aside": {0: {Epoch: -1, Offset: 1}}},
			func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
				commitErr = err
				if err == nil {
					commitErr = kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
				}
			})
		if commitErr != nil {
			t.Fatalf("the member's commit of admin-aside: %v", commitErr)
		}
		od, err = adm.DeleteOffsets(ctx, live, kadm.TopicsSet{"admin-aside": {0: {}}})
		if err != nil || od.Error() != nil {
			t.Errorf("OffsetDelete on %s of a topic its member does not subscribe to: %v %v, want it deleted", live, err, od.Error())
		}
		if got, err := adm.FetchOffsets(ctx, live); err != nil {
			t.Error(err)
		} else if o, ok := got.Lookup("admin-aside", 0); ok && o.At >= 0 {
			t.Errorf("after OffsetDelete %s still has offset %d of admin-aside", live, o.At)
		}
		if _, err := adm.DeleteOffsets(ctx, unknown, kadm.TopicsSet{topic: {0: {}}}); !errors.Is(err, kerr.GroupIDNotFound) {
			t.Errorf("OffsetDelete on %s: %v, want GROUP_ID_NOT_FOUND", unknown, err)
		}
		od, err = adm.DeleteOffsets(ctx, offsetsOnly, kadm.TopicsSet{topic: {0: {}, 2: {}}})
		if err != nil || od.Error() != nil {
			t.Fatalf("OffsetDelete on %s: %v %v", offsetsOnly, err, od.Error())
		}
		if got := fetchedOffsets(t, ctx, adm, offsetsOnly); got != `admin-1@6(-1,"")` {
			t.Errorf("after OffsetDelete %s has %s, want admin-1@6 only", offsetsOnly, got)
		}
		if got := fetchedOffsets(t, ctx, adm, live); strings.Count(got, "@4(") != 3 {
			t.Errorf("after a refused OffsetDelete %s has %s, want 4 on each partition", live, got)
		}
	})

	t.Run("once the member leaves", func(t *testing.T) {
		m.close()
		described, err := adm.DescribeGroups(ctx, live)
		if err != nil {
			t.Fatal(err)
		}
		if g := described[live]; g.State != "Empty" || len(g.Members) != 0 || g.ProtocolType != "consumer" {
			t.Errorf("%s after its member left: %s, %d members, protocol type %q; want Empty, none, consumer", live, g.State, len(g.Members), g.ProtocolType)
		}
		od, err := adm.DeleteOffsets(ctx, live, kadm.TopicsSet{topic: {0: {}}})
		if err != nil || od.Error() != nil {
			t.Fatalf("OffsetDelete on %s once Empty: %v %v", live, err, od.Error())
		}
		deleted, err := adm.DeleteGroups(ctx, live, offsetsOnly)
		if err != nil || deleted.Error() != nil {
			t.Fatalf("DeleteGroups once Empty: %v %v", err, deleted.Error())
		}
		for _, g := range []string{live, offsetsOnly} {
			if got := fetchedOffsets(t, ctx, adm, g); got != "" {
				t.Errorf("%s deleted still has offsets %s", g, got)
			}
		}
		if got := listedGroups(t, ctx, adm); len(got) != 0 {
			t.Errorf("ListGroups after deleting every group: %v", got)
		}
	})
}

// TestDeletingATopicDropsItsCommittedOffsets: as Kafka's coordinator does
// when a topic is deleted, every group loses its offsets of the topic, so
// a topic created again under the same name starts without them; the
// group's offsets of other topics stay.
func TestDeletingATopicDropsItsCommittedOffsets(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "recreated", 2, nil)
	createTopic(t, c, "kept", 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(newClient(t, c))
	offs := kadm.Offsets{}
	offs.AddOffset("recreated", 0, 500, -1)
	offs.AddOffset("recreated", 1, 600, -1)
	offs.AddOffset("kept", 0, 7, -1)
	for _, g := range []string{"one", "two"} {
		resp, err := adm.CommitOffsets(ctx, g, offs)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Fatalf("committing %s's offsets: %v", g, err)
		}
	}
	if _, err := adm.DeleteTopics(ctx, "recreated"); err != nil {
		t.Fatal(err)
	}
	c.WaitForImage(func(im *raft.Image) bool { _, ok := im.Topic("recreated"); return !ok })
	createTopic(t, c, "recreated", 2, nil)
	for _, g := range []string{"one", "two"} {
		got, err := adm.FetchOffsets(ctx, g)
		if err == nil {
			err = got.Error()
		}
		if err != nil {
			t.Fatalf("fetching %s's offsets: %v", g, err)
		}
		if o, ok := got.Lookup("recreated", 0); ok && o.At >= 0 {
			t.Errorf("group %s: the new topic starts at the deleted one's committed offset %d", g, o.At)
		}
		if o, ok := got.Lookup("kept", 0); !ok || o.At != 7 {
			t.Errorf("group %s: kept-0 at %+v, want 7", g, o)
		}
	}
}

// TestExpiryOutgrowingABatchStillExpires: the tombstones of every expired
// offset of a coordinator go out in batches of at most message.max.bytes;
// as one batch they failed every check, and nothing ever expired.
func TestExpiryOutgrowingABatchStillExpires(t *testing.T) {
	c := testcluster.Start(t, 1, func(_ int, cfg *broker.Config) {
		cfg.OffsetsTopicNumPartitions = 1
		cfg.MessageMaxBytes = 10_000
		cfg.Group.OffsetsRetentionMs = 1
		cfg.OffsetsRetentionCheckInterval = 50 * time.Millisecond
	})
	createTopic(t, c, "wide", 100, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(newClient(t, c))
	// Six groups of 100 offsets: about 30 KB of tombstones.
	const groups = 6
	for g := range groups {
		offs := kadm.Offsets{}
		for p := range int32(100) {
			offs.AddOffset("wide", p, 7, -1)
		}
		resp, err := adm.CommitOffsets(ctx, fmt.Sprint("group-", g), offs)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
	for g := range groups {
		for {
			got, err := adm.FetchOffsets(ctx, fmt.Sprint("group-", g))
			if err == nil {
				err = got.Error()
			}
			if err != nil {
				t.Fatalf("group-%d: offsets committed with a 1 ms retention are not expired: %v", g, err)
			}
			if _, ok := got.Lookup("wide", 99); !ok {
				break
			}
		}
	}
}

// TestDescribeGroupsAuthorizedOperations guards DescribeGroups v3+ with
// IncludeAuthorizedOperations: each group described gets the operations
// the caller may perform on it, as Kafka's handleDescribeGroupsRequest
// sets them (authorizedOperations on the GROUP resource); with no
// authorizer, every operation a group supports: READ, DELETE and DESCRIBE
// (1<<3|1<<6|1<<8; Kafka 4 adds the group config operations Gregor has
// not). Not asked for, the field keeps its "not requested" value, Int32
// min. Gregor used to leave it so even when asked, though Metadata and
// DescribeCluster fill theirs.
func TestDescribeGroupsAuthorizedOperations(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "ops", 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(newClient(t, c))
	o := kadm.Offsets{}
	o.Add(kadm.Offset{Topic: "ops", Partition: 0, At: 1, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(ctx, "ops-group", o); err != nil {
		t.Fatal(err)
	}
	r := dialRaw(t, c.Addrs()[0])
	for _, include := range []bool{true, false} {
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Version = 5
		req.Groups = []string{"ops-group"}
		req.IncludeAuthorizedOperations = include
		g := r.do(req).(*kmsg.DescribeGroupsResponse).Groups[0]
		if g.ErrorCode != 0 {
			t.Fatalf("DescribeGroups: %s", code(g.ErrorCode))
		}
		want := int32(math.MinInt32)
		if include {
			want = 1<<3 | 1<<6 | 1<<8
		}
		if g.AuthorizedOperations != want {
			t.Errorf("IncludeAuthorizedOperations %v: AuthorizedOperations %d, want %d", include, g.AuthorizedOperations, want)
		}
	}
}
