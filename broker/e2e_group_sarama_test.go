package broker_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"

	"gregor/internal/testcluster"
)

// saramaMember is one sarama ConsumerGroup reporting to a groupTracker: a
// session's claims are its assignment (Setup) until the session ends
// (Cleanup, which sarama runs before it rejoins). Each message is marked
// with metadata naming the member, and the marks are committed (Commit,
// synchronous) whenever the member has read all that sarama fetched.
type saramaMember struct {
	name    string
	cg      sarama.ConsumerGroup
	cancel  context.CancelFunc
	done    sync.WaitGroup
	once    sync.Once
	closing atomic.Bool // errors while it closes are expected
}

type saramaHandler struct {
	name string
	tr   *groupTracker
}

func (h saramaHandler) Setup(s sarama.ConsumerGroupSession) error {
	h.tr.assigned(h.name, s.Claims()[h.tr.topic])
	return nil
}

func (h saramaHandler) Cleanup(s sarama.ConsumerGroupSession) error {
	h.tr.revoked(h.name, s.Claims()[h.tr.topic])
	return nil
}

func (h saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	// A claim starts at the group's committed offset, the tracker's; with
	// none, at Consumer.Offsets.Initial (OffsetOldest).
	h.tr.event(func() {
		tp := h.tr.partition(claim.Partition())
		if tp == nil {
			return
		}
		if want := tp.committed; claim.InitialOffset() != want && (want != 0 || claim.InitialOffset() != sarama.OffsetOldest) {
			h.tr.errorfLocked("%s claims partition %d from %d; the last commit is %d", h.name, claim.Partition(), claim.InitialOffset(), tp.committed)
		}
	})
	for {
		select {
		case msg, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			h.tr.readOne(h.name, msg.Topic, msg.Partition, msg.Offset, msg.Value)
			s.MarkMessage(msg, "by "+h.name)
			if len(claim.Messages()) > 0 {
				continue // commit once what sarama has fetched is read
			}
			// Commit is synchronous; a failure goes to the group's
			// Errors channel, which fails the test.
			s.Commit()
			h.tr.committedAt(h.name, map[int32]int64{msg.Partition: msg.Offset + 1})
		case <-s.Context().Done():
			return nil
		}
	}
}

func startSaramaMember(t *testing.T, c *testcluster.Cluster, v sarama.KafkaVersion, tr *groupTracker, group, name string) *saramaMember {
	t.Helper()
	cfg := saramaConfig(v)
	cfg.ClientID = name
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Group.Session.Timeout = 10 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 100 * time.Millisecond
	cfg.Consumer.Group.Rebalance.Timeout = 10 * time.Second
	cfg.Consumer.Group.Rebalance.Retry.Backoff = 100 * time.Millisecond
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	cg, err := sarama.NewConsumerGroup(c.Addrs(), group, cfg)
	if err != nil {
		t.Fatalf("sarama consumer group %s: %v", name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &saramaMember{name: name, cg: cg, cancel: cancel}
	m.done.Add(2)
	go func() {
		defer m.done.Done()
		for err := range cg.Errors() {
			if !m.closing.Load() {
				tr.fail("%s: %v", name, err)
			}
		}
	}()
	go func() {
		defer m.done.Done()
		for ctx.Err() == nil {
			// Consume returns when a rebalance ends the session; it is
			// called again to rejoin.
			if err := cg.Consume(ctx, []string{tr.topic}, saramaHandler{name: name, tr: tr}); err != nil && ctx.Err() == nil {
				if errors.Is(err, sarama.ErrClosedConsumerGroup) {
					return
				}
				if !m.closing.Load() {
					tr.fail("%s: consume: %v", name, err)
				}
				return
			}
		}
	}()
	t.Cleanup(m.close)
	return m
}

// close ends the session and closes the group consumer, which leaves the
// group.
func (m *saramaMember) close() {
	m.once.Do(func() {
		m.closing.Store(true)
		m.cancel()
		_ = m.cg.Close()
		m.done.Wait()
	})
}

// TestGroupSaramaConsumerGroup runs sarama's ConsumerGroup, the handler
// API with MarkMessage and synchronous commits: one member reads the topic,
// a second joins and they share it, the second leaves, and a new process
// of the first resumes. Each claim starts at the last commit, every record
// is read exactly once, and the coordinator stores the metadata each
// member marked. It runs as sarama talks to Kafka 3.6 and to Kafka 2.1,
// whose group requests are older versions (JoinGroup v3, without KIP-394's
// MEMBER_ID_REQUIRED; OffsetCommit v6).
func TestGroupSaramaConsumerGroup(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	for _, v := range saramaVersions {
		t.Run(v.name, func(t *testing.T) { testSaramaConsumerGroup(t, c, v.version, v.name) })
	}
}

func testSaramaConsumerGroup(t *testing.T, c *testcluster.Cluster, v sarama.KafkaVersion, name string) {
	topic, group := "sarama-group-"+name, "group-sarama-"+name
	createTopic(t, c, topic, 4, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tr := newGroupTracker(topic, 4)
	adm := kadm.NewClient(newClient(t, c))
	prod := manualProducer(t, c)

	a := startSaramaMember(t, c, v, tr, group, "a")
	tr.wait(t, ctx, "a owns the partitions", tr.sharedBy("a"))
	produceEach(t, ctx, prod, tr, 10)
	tr.wait(t, ctx, "a reads and commits offsets 0-9", tr.readAndCommitted)

	b := startSaramaMember(t, c, v, tr, group, "b")
	tr.wait(t, ctx, "a and b share the partitions", tr.sharedBy("a", "b"))
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if g := described[group]; g.State != "Stable" || g.Protocol != "range" || len(g.Members) != 2 {
		t.Fatalf("described %s: %s, protocol %q, %d members; want Stable, range, 2", group, g.State, g.Protocol, len(g.Members))
	}
	produceEach(t, ctx, prod, tr, 10)
	tr.wait(t, ctx, "a and b read and commit offsets 10-19", tr.readAndCommitted)
	fetched, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	bParts := tr.owned("b")
	for p := range int32(4) {
		owner := "a"
		if slices.Contains(bParts, p) {
			owner = "b"
		}
		if o, ok := fetched.Lookup(topic, p); !ok || o.Err != nil || o.At != 20 || o.Metadata != "by "+owner {
			t.Errorf("committed offset of partition %d: %+v, want 20 with metadata %q", p, o, "by "+owner)
		}
	}

	b.close()
	tr.wait(t, ctx, "a takes b's partitions over", tr.sharedBy("a"))
	produceEach(t, ctx, prod, tr, 10)
	tr.wait(t, ctx, "a reads and commits offsets 20-29", tr.readAndCommitted)

	a.close()
	produceEach(t, ctx, prod, tr, 10)
	a2 := startSaramaMember(t, c, v, tr, group, "a2")
	tr.wait(t, ctx, "a new member resumes from the commits and reads offsets 30-39", tr.all(tr.sharedBy("a2"), tr.readAndCommitted))
	tr.checkReads(t, func(int32, int64) int { return 1 })

	// sarama's admin sees the group as it is, and deletes it once empty.
	sadm := saramaAdmin(t, c, v)
	listed, err := sadm.ListConsumerGroups()
	if err != nil || listed[group] != "consumer" {
		t.Errorf("ListConsumerGroups: %v %v, want %s of type consumer", listed, err, group)
	}
	descs, err := sadm.DescribeConsumerGroups([]string{group})
	if err != nil || len(descs) != 1 {
		t.Fatalf("DescribeConsumerGroups: %v, %d groups", err, len(descs))
	}
	if d := descs[0]; d.GroupId != group || d.State != "Stable" || d.ProtocolType != "consumer" || d.Protocol != "range" || len(d.Members) != 1 {
		t.Errorf("DescribeConsumerGroups: %+v, want %s Stable consumer/range with one member", d, group)
	} else {
		for _, m := range d.Members {
			a, err := m.GetMemberAssignment()
			if m.ClientId != "a2" || err != nil || !slices.Equal(a.Topics[topic], []int32{0, 1, 2, 3}) {
				t.Errorf("the member: client %q, assignment %+v %v; want a2, %s 0-3", m.ClientId, a, err, topic)
			}
		}
	}
	offs, err := sadm.ListConsumerGroupOffsets(group, nil)
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(4) {
		if b := offs.GetBlock(topic, p); b == nil || b.Offset != 40 || b.Metadata != "by a2" || b.Err != sarama.ErrNoError {
			t.Errorf("ListConsumerGroupOffsets partition %d: %+v, want 40 by a2", p, b)
		}
	}
	if err := sadm.DeleteConsumerGroup(group); !errors.Is(err, sarama.ErrNonEmptyGroup) {
		t.Errorf("DeleteConsumerGroup with a member in: %v, want NON_EMPTY_GROUP", err)
	}
	a2.close()
	if v.IsAtLeast(sarama.V2_4_0_0) { // OffsetDelete came with Kafka 2.4
		if err := sadm.DeleteConsumerGroupOffset(group, topic, 0); err != nil {
			t.Errorf("DeleteConsumerGroupOffset: %v", err)
		}
		offs, err := sadm.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1}})
		if err != nil || offs.GetBlock(topic, 0) == nil || offs.GetBlock(topic, 0).Offset != -1 || offs.GetBlock(topic, 1) == nil || offs.GetBlock(topic, 1).Offset != 40 {
			t.Errorf("after DeleteConsumerGroupOffset of partition 0: %v %+v, want 0 at -1 and 1 at 40", err, offs)
		}
	}
	if err := sadm.DeleteConsumerGroup(group); err != nil {
		t.Errorf("DeleteConsumerGroup once empty: %v", err)
	}
	if listed, err := sadm.ListConsumerGroups(); err != nil || slices.Contains(slices.Collect(maps.Keys(listed)), group) {
		t.Errorf("ListConsumerGroups after DeleteConsumerGroup: %v %v", listed, err)
	}
}
