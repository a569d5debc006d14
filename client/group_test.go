package client

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/internal/testcluster"
)

// groupClusters are the brokers the group tests run against: franz-go's
// fake cluster, the reference, and Gregor once its broker serves groups.
// start returns the bootstrap addresses with topic created.
var groupClusters = []struct {
	name  string
	start func(t *testing.T, topic string, partitions int32) []string
}{
	{"kfake", func(t *testing.T, topic string, partitions int32) []string {
		return newFake(t, kfake.SeedTopics(partitions, topic), kfake.GroupMinSessionTimeout(100*time.Millisecond)).ListenAddrs()
	}},
	{"gregor", func(t *testing.T, topic string, partitions int32) []string {
		c := testcluster.Start(t, 1, nil)
		skipWithoutGroups(t, c.Addrs())
		createTopic(t, c, topic, partitions, 1)
		return c.Addrs()
	}},
}

// skipWithoutGroups skips a test against a broker that does not serve the
// classic group protocol (Gregor's, until its group handlers land).
func skipWithoutGroups(t *testing.T, addrs []string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	must(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	must(t, err)
	need := map[int16]bool{kmsg.FindCoordinator.Int16(): true, kmsg.JoinGroup.Int16(): true, kmsg.SyncGroup.Int16(): true,
		kmsg.Heartbeat.Int16(): true, kmsg.LeaveGroup.Int16(): true, kmsg.OffsetCommit.Int16(): true, kmsg.OffsetFetch.Int16(): true}
	for _, k := range resp.ApiKeys {
		delete(need, k.ApiKey)
	}
	if len(need) > 0 {
		t.Skipf("the broker does not serve consumer groups yet (missing %d of the group APIs)", len(need))
	}
}

// groupConfig is a member's config for tests: heartbeats every 100 ms so
// rebalances start quickly.
func groupConfig(addrs []string, group string) ConsumerConfig {
	cfg := testConsumerConfig(addrs)
	cfg.GroupID = group
	cfg.HeartbeatIntervalMs = 100
	return cfg
}

// events wakes whoever waits for a member's state to change.
type events struct {
	mu sync.Mutex
	ch chan struct{}
}

func newEvents() *events { return &events{ch: make(chan struct{})} }

func (e *events) signal() {
	e.mu.Lock()
	close(e.ch)
	e.ch = make(chan struct{})
	e.mu.Unlock()
}

func (e *events) wait() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ch
}

// waitUntil waits, at most 20 seconds, until cond holds.
func (e *events) waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		ch := e.wait()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

// testMember is a subscribed consumer whose listener and poll loop record
// what happens, and check that no Poll that began after a partition's
// revocation returns its records.
type testMember struct {
	t    *testing.T
	name string
	c    *Consumer
	ev   *events

	mu       sync.Mutex
	owned    map[TopicPartition]bool
	assigned [][]TopicPartition // each OnPartitionsAssigned call
	revoked  [][]TopicPartition
	lost     [][]TopicPartition
	seq      int
	// the seq at which each partition was last revoked (or lost) and
	// assigned
	revokedAt, assignedAt map[TopicPartition]int
	records               map[TopicPartition][]int64
	values                []string
	errs                  []error

	cancelPoll context.CancelFunc
	polling    sync.WaitGroup
}

func newMember(t *testing.T, ev *events, name string, cfg ConsumerConfig, topics ...string) *testMember {
	t.Helper()
	c, err := NewConsumer(cfg, WithLogger(testLogger().With("member", name)))
	must(t, err)
	m := &testMember{t: t, name: name, c: c, ev: ev, owned: map[TopicPartition]bool{},
		revokedAt: map[TopicPartition]int{}, assignedAt: map[TopicPartition]int{}, records: map[TopicPartition][]int64{}}
	t.Cleanup(m.close)
	must(t, c.Subscribe(topics, &RebalanceListener{
		OnPartitionsAssigned: func(_ context.Context, tps []TopicPartition) {
			m.mu.Lock()
			m.seq++
			m.assigned = append(m.assigned, tps)
			for _, tp := range tps {
				m.owned[tp] = true
				m.assignedAt[tp] = m.seq
			}
			m.mu.Unlock()
			ev.signal()
		},
		OnPartitionsRevoked: func(_ context.Context, tps []TopicPartition) { m.giveUp(&m.revoked, tps) },
		OnPartitionsLost:    func(_ context.Context, tps []TopicPartition) { m.giveUp(&m.lost, tps) },
	}))
	return m
}

func (m *testMember) giveUp(log *[][]TopicPartition, tps []TopicPartition) {
	m.mu.Lock()
	m.seq++
	*log = append(*log, tps)
	for _, tp := range tps {
		delete(m.owned, tp)
		m.revokedAt[tp] = m.seq
	}
	m.mu.Unlock()
	m.ev.signal()
}

// startPolling polls on a goroutine until the member closes.
func (m *testMember) startPolling() {
	ctx, cancel := context.WithCancel(context.Background())
	m.cancelPoll = cancel
	m.polling.Go(func() {
		for {
			m.mu.Lock()
			before := m.seq
			m.mu.Unlock()
			recs, err := m.c.Poll(ctx)
			if errors.Is(err, ErrClosed) || ctx.Err() != nil {
				return
			}
			m.mu.Lock()
			if err != nil {
				m.errs = append(m.errs, err)
			}
			for _, r := range recs {
				tp := TopicPartition{r.Topic, r.Partition}
				if at, ok := m.revokedAt[tp]; ok && at <= before && m.assignedAt[tp] < at {
					m.errs = append(m.errs, fmt.Errorf("%s: record %d of %s returned by a Poll begun after its revocation", m.name, r.Offset, tp))
				}
				m.records[tp] = append(m.records[tp], r.Offset)
				m.values = append(m.values, string(r.Value))
			}
			m.mu.Unlock()
			m.ev.signal()
		}
	})
}

func (m *testMember) close() {
	m.c.Close()
	if m.cancelPoll != nil {
		m.cancelPoll()
	}
	m.polling.Wait()
}

func (m *testMember) ownedNow() []TopicPartition {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.SortedFunc(maps.Keys(m.owned), compareTP)
}

func (m *testMember) consumed() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.values)
}

func (m *testMember) checkNoErrors() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, err := range m.errs {
		m.t.Errorf("%s: %v", m.name, err)
	}
}

// shared reports whether the members' assignments are disjoint, cover all
// n partitions, each has at least min, and all are in one generation.
func shared(n, least int, ms ...*testMember) bool {
	seen := map[TopicPartition]bool{}
	gen := ms[0].c.GroupMetadata().GenerationID
	for _, m := range ms {
		if m.c.GroupMetadata().GenerationID != gen {
			return false
		}
		owned := m.ownedNow()
		if len(owned) < least || !slices.Equal(owned, m.c.Assignment()) {
			return false
		}
		for _, tp := range owned {
			if seen[tp] {
				return false
			}
			seen[tp] = true
		}
	}
	return len(seen) == n
}

// produceSpread writes n records to topic, record i to partition i%parts,
// valued prefix-i, and waits for them.
func produceSpread(t *testing.T, addrs []string, topic string, parts, n int, prefix string) {
	t.Helper()
	p := newTestProducer(t, testProducerConfig(addrs))
	res := newResults()
	for i := range n {
		v := fmt.Sprintf("%s-%d", prefix, i)
		must(t, p.Produce(context.Background(), &Record{Topic: topic, Partition: int32(i % parts), Value: []byte(v)}, res.callback(i, v)))
	}
	for _, r := range res.wait(t, 20*time.Second) {
		must(t, r.err)
	}
}

// checkAllOnce checks that the members together consumed every record of
// every partition from offset 0 to its end (ends[p]) exactly once, each
// from a partition it owned.
func checkAllOnce(t *testing.T, ends map[TopicPartition]int64, ms ...*testMember) {
	t.Helper()
	got := map[TopicPartition][]int64{}
	for _, m := range ms {
		m.mu.Lock()
		for tp, offs := range m.records {
			got[tp] = append(got[tp], offs...)
		}
		m.mu.Unlock()
	}
	for tp, end := range ends {
		offs := got[tp]
		slices.Sort(offs)
		if int64(len(offs)) != end {
			t.Errorf("%s: consumed %d records, the partition has %d (offsets %v)", tp, len(offs), end, offs)
			continue
		}
		for i, o := range offs {
			if o != int64(i) {
				t.Errorf("%s: offsets %v: a record skipped or read twice", tp, offs)
				break
			}
		}
	}
}

func spreadEnds(topic string, parts, n int) map[TopicPartition]int64 {
	ends := map[TopicPartition]int64{}
	for i := range n {
		ends[TopicPartition{topic, int32(i % parts)}]++
	}
	return ends
}

// Two, then three members of a group share a topic's partitions with every
// assignor, and together read each record once, each from its own
// partitions.
func TestGroupMembersSharePartitions(t *testing.T) {
	for _, cl := range groupClusters {
		for _, strategy := range []string{"range", "roundrobin", "cooperative-sticky"} {
			t.Run(cl.name+"/"+strategy, func(t *testing.T) {
				const topic, parts = "share", 6
				addrs := cl.start(t, topic, parts)
				cfg := groupConfig(addrs, "share-"+strategy)
				cfg.PartitionAssignmentStrategy = []string{strategy}
				ev := newEvents()
				a := newMember(t, ev, "a", cfg, topic)
				a.startPolling()
				ev.waitUntil(t, "a owns every partition", func() bool { return shared(parts, parts, a) })
				b := newMember(t, ev, "b", cfg, topic)
				b.startPolling()
				ev.waitUntil(t, "a and b share the partitions", func() bool { return shared(parts, 3, a, b) })
				c := newMember(t, ev, "c", cfg, topic)
				c.startPolling()
				ev.waitUntil(t, "a, b and c share the partitions", func() bool { return shared(parts, 2, a, b, c) })

				produceSpread(t, addrs, topic, parts, 300, "v")
				ev.waitUntil(t, "300 records consumed", func() bool { return a.consumed()+b.consumed()+c.consumed() >= 300 })
				checkAllOnce(t, spreadEnds(topic, parts, 300), a, b, c)
				for _, m := range []*testMember{a, b, c} {
					for tp := range m.records {
						if !slices.Contains(m.ownedNow(), tp) {
							t.Errorf("%s read %s, which it does not own", m.name, tp)
						}
					}
					m.checkNoErrors()
				}
			})
		}
	}
}

// A member that closes leaves the group (LeaveGroup, so at once rather
// than after session.timeout.ms): its partitions move to the others, which
// resume where it committed on Close, skipping nothing and reading nothing
// twice.
func TestGroupMemberClosePartitionsMove(t *testing.T) {
	for _, cl := range groupClusters {
		t.Run(cl.name, func(t *testing.T) {
			const topic, parts = "close", 4
			addrs := cl.start(t, topic, parts)
			cfg := groupConfig(addrs, "close")
			cfg.SessionTimeoutMs = 60000 // a move before this is LeaveGroup's doing
			ev := newEvents()
			a := newMember(t, ev, "a", cfg, topic)
			a.startPolling()
			b := newMember(t, ev, "b", cfg, topic)
			b.startPolling()
			ev.waitUntil(t, "a and b share the partitions", func() bool { return shared(parts, 2, a, b) })
			produceSpread(t, addrs, topic, parts, 100, "before")
			ev.waitUntil(t, "100 records consumed", func() bool { return a.consumed()+b.consumed() >= 100 })
			aOwned := a.ownedNow()
			a.close()
			if len(a.revoked) == 0 || !slices.Equal(a.revoked[len(a.revoked)-1], aOwned) {
				t.Errorf("a revoked %v on Close, owned %v", a.revoked, aOwned)
			}
			ev.waitUntil(t, "b owns every partition", func() bool { return shared(parts, parts, b) })
			produceSpread(t, addrs, topic, parts, 100, "after")
			ev.waitUntil(t, "200 records consumed", func() bool { return a.consumed()+b.consumed() >= 200 })
			checkAllOnce(t, spreadEnds(topic, parts, 200), a, b)
			a.checkNoErrors()
			b.checkNoErrors()
		})
	}
}

// Committed offsets outlive the consumer that committed them: a new member
// of the group resumes exactly there, whether the offsets came from
// CommitSync, from CommitOffsets or from auto-commit on Close.
func TestGroupCommitsSurviveNewConsumer(t *testing.T) {
	for _, cl := range groupClusters {
		t.Run(cl.name, func(t *testing.T) {
			const topic, parts = "commits", 2
			addrs := cl.start(t, topic, parts)
			produceSpread(t, addrs, topic, parts, 100, "v")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()

			// CommitSync of what has been read, without auto-commit:
			// the next member starts at exactly those positions.
			cfg := groupConfig(addrs, "commits")
			cfg.EnableAutoCommit = false
			cfg.MaxPollRecords = 7
			ev := newEvents()
			a := newMember(t, ev, "a", cfg, topic)
			first := consumeN(t, a.c, 30, 20*time.Second)
			must(t, a.c.CommitSync(ctx))
			pos := map[TopicPartition]int64{}
			for _, tp := range partitions(topic, parts) {
				pos[tp] = a.c.Position(tp)
			}
			consumeN(t, a.c, 10, 20*time.Second) // read, never committed
			a.close()

			b := newMember(t, ev, "b", cfg, topic)
			rest := consumeN(t, b.c, 100-len(first), 20*time.Second)
			seen := map[TopicPartition]int64{}
			for _, r := range rest {
				tp := TopicPartition{r.Topic, r.Partition}
				if _, ok := seen[tp]; !ok && r.Offset != max(pos[tp], 0) { // -1: none read, none committed
					t.Errorf("%s: resumed at %d, committed %d", tp, r.Offset, pos[tp])
				}
				seen[tp] = r.Offset
			}
			all := map[TopicPartition][]int64{}
			for _, r := range append(first, rest...) {
				all[TopicPartition{r.Topic, r.Partition}] = append(all[TopicPartition{r.Topic, r.Partition}], r.Offset)
			}
			for tp, offs := range all {
				for i, o := range offs {
					if o != int64(i) {
						t.Fatalf("%s: offsets %v: a record skipped or read twice", tp, offs)
					}
				}
			}

			// CommitOffsets by hand, then a new member starts there.
			must(t, b.c.CommitOffsets(ctx, map[TopicPartition]int64{{topic, 0}: 5, {topic, 1}: 45}))
			b.close()
			c := newMember(t, ev, "c", cfg, topic)
			recs := consumeN(t, c.c, 50, 20*time.Second)
			starts := map[int32]int64{}
			for _, r := range recs {
				if _, ok := starts[r.Partition]; !ok {
					starts[r.Partition] = r.Offset
				}
			}
			if starts[0] != 5 || starts[1] != 45 {
				t.Fatalf("after CommitOffsets(5, 45): started at %v", starts)
			}
			c.close()

			// Auto-commit on Close: what was read is not read again.
			cfg.EnableAutoCommit = true
			d := newMember(t, ev, "d", cfg, topic)
			consumeN(t, d.c, 50, 20*time.Second) // 45 left on partition 0, 5 on 1
			d.close()
			produceSpread(t, addrs, topic, parts, 2, "late")
			e := newMember(t, ev, "e", cfg, topic)
			late := consumeN(t, e.c, 2, 20*time.Second)
			for _, r := range late {
				if !strings.HasPrefix(string(r.Value), "late-") {
					t.Fatalf("after auto-commit on Close, read %q at %s-%d again", r.Value, r.Topic, r.Partition)
				}
			}
		})
	}
}

// TestAutoCommitNeverUndoesACommitSync: a Poll returns records 5..9 (the
// position as of it is 5); the application handles them and commits with
// CommitSync (10). An auto-commit before the next Poll then has nothing to
// commit; it used to commit 5, so a restart read 5..9 again. After the next
// Poll it commits that Poll's position as before.
func TestAutoCommitNeverUndoesACommitSync(t *testing.T) {
	addrs := newFake(t, kfake.SeedTopics(1, "back")).ListenAddrs()
	c := autoCommitMember(t, addrs, "back")
	committed := func() int64 { return committedOffset(t, addrs, "back") }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	must(t, c.CommitSync(ctx))
	if got := committed(); got != 10 {
		t.Fatalf("CommitSync committed %d, want 10", got)
	}
	c.grp.commitAuto()
	if got := committed(); got != 10 {
		t.Fatalf("auto-commit after CommitSync moved the committed offset from 10 to %d", got)
	}
	consumeN(t, c, 5, 20*time.Second) // the Poll that returns 10..14 starts at 10
	consumeN(t, c, 1, 20*time.Second) // and this one at 15
	c.grp.commitAuto()
	if got := committed(); got != 15 {
		t.Fatalf("auto-commit after two more Polls committed %d, want 15", got)
	}
}

// TestCommitAnsweredAfterAPollKeepsThatPoll: an auto-commit sends the
// position as of one Poll (5); while its OffsetCommit is on the way, the
// application Polls again (its position then: 10). The answer does not set
// what auto-commit commits back to 5, so the next auto-commit commits 10.
func TestCommitAnsweredAfterAPollKeepsThatPoll(t *testing.T) {
	c := newFake(t, kfake.SeedTopics(1, "racing"))
	addrs := c.ListenAddrs()
	cons := autoCommitMember(t, addrs, "racing")
	arrived, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	c.ControlKey(int16(kmsg.OffsetCommit), func(kmsg.Request) (kmsg.Response, error, bool) {
		once.Do(func() {
			close(arrived)
			c.SleepControl(func() { <-release })
		})
		return nil, nil, false
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		cons.grp.commitAuto()
	}()
	select {
	case <-arrived:
	case <-time.After(20 * time.Second):
		t.Fatal("no auto-commit reached the broker within 20s")
	}
	consumeN(t, cons, 1, 20*time.Second) // a Poll starting at 10
	close(release)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the held auto-commit was not answered within 20s")
	}
	cons.grp.commitAuto()
	if got := committedOffset(t, addrs, "racing"); got != 10 {
		t.Fatalf("after a Poll made while a commit was answered, auto-commit committed %d, want 10", got)
	}
}

// autoCommitMember is a member of group (auto-commit on, its timer an
// hour: the test calls commitAuto itself) on partition 0 of topic group,
// filled with 20 records, after two Polls of 5: the position as of the
// latest Poll is 5, the position 10.
func autoCommitMember(t *testing.T, addrs []string, group string) *Consumer {
	t.Helper()
	produceSpread(t, addrs, group, 1, 20, "v")
	cfg := groupConfig(addrs, group)
	cfg.EnableAutoCommit = true
	cfg.AutoCommitIntervalMs = int(time.Hour / time.Millisecond)
	cfg.MaxPollRecords = 5
	c := newTestConsumer(t, cfg)
	must(t, c.Subscribe([]string{group}, nil))
	consumeN(t, c, 5, 20*time.Second)
	consumeN(t, c, 5, 20*time.Second)
	return c
}

// committedOffset is group's committed offset of partition 0 of topic
// group, -1 for none, as franz-go's admin client reads it.
func committedOffset(t *testing.T, addrs []string, group string) int64 {
	t.Helper()
	adm, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	must(t, err)
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := kadm.NewClient(adm).FetchOffsets(ctx, group)
	must(t, err)
	o, ok := offs.Lookup(group, 0)
	if !ok {
		return -1
	}
	return o.At
}

// KIP-429: with cooperative-sticky, a member joining a group takes half of
// the partitions without the owner giving up the other half: the owner
// revokes only what moves, and a second rebalance hands that over. No
// record of a revoked partition is returned after its revocation, and no
// record is skipped or read twice.
func TestGroupCooperativeStickyRevokesOnlyWhatMoves(t *testing.T) {
	for _, cl := range groupClusters {
		t.Run(cl.name, func(t *testing.T) {
			const topic, parts = "coop", 6
			addrs := cl.start(t, topic, parts)
			cfg := groupConfig(addrs, "coop")
			cfg.PartitionAssignmentStrategy = []string{"cooperative-sticky"}
			ev := newEvents()
			a := newMember(t, ev, "a", cfg, topic)
			a.startPolling()
			ev.waitUntil(t, "a owns every partition", func() bool { return shared(parts, parts, a) })
			produceSpread(t, addrs, topic, parts, 120, "before")
			ev.waitUntil(t, "120 records consumed", func() bool { return a.consumed() >= 120 })

			b := newMember(t, ev, "b", cfg, topic)
			b.startPolling()
			ev.waitUntil(t, "a and b share the partitions", func() bool { return shared(parts, 3, a, b) })
			produceSpread(t, addrs, topic, parts, 120, "after")
			ev.waitUntil(t, "240 records consumed", func() bool { return a.consumed()+b.consumed() >= 240 })
			checkAllOnce(t, spreadEnds(topic, parts, 240), a, b)

			a.mu.Lock()
			defer a.mu.Unlock()
			var revoked []TopicPartition
			for _, r := range a.revoked {
				revoked = append(revoked, r...)
			}
			slices.SortFunc(revoked, compareTP)
			if len(a.lost) > 0 || len(revoked) != 3 || !slices.Equal(revoked, b.ownedNow()) {
				t.Errorf("a revoked %v and lost %v; b owns %v: only what moved should be revoked", a.revoked, a.lost, b.ownedNow())
			}
			if len(a.assigned) < 2 || len(a.assigned[0]) != parts || len(a.assigned[len(a.assigned)-1]) != 0 {
				t.Errorf("a was assigned %v: all, then nothing more", a.assigned)
			}
			a.checkNoErrorsLocked()
			b.checkNoErrors()
		})
	}
}

func (m *testMember) checkNoErrorsLocked() {
	m.t.Helper()
	for _, err := range m.errs {
		m.t.Errorf("%s: %v", m.name, err)
	}
}

// A static member (group.instance.id) that closes does not leave: the
// others keep their partitions, and when it comes back within
// session.timeout.ms it gets its own back without a rebalance, resuming
// where it committed.
func TestGroupStaticMemberRejoins(t *testing.T) {
	for _, cl := range groupClusters {
		t.Run(cl.name, func(t *testing.T) {
			const topic, parts = "static", 4
			addrs := cl.start(t, topic, parts)
			cfg := groupConfig(addrs, "static")
			cfg.SessionTimeoutMs = 60000
			ev := newEvents()
			cfgA, cfgB := cfg, cfg
			cfgA.GroupInstanceID, cfgB.GroupInstanceID = "instance-a", "instance-b"
			a := newMember(t, ev, "a", cfgA, topic)
			a.startPolling()
			b := newMember(t, ev, "b", cfgB, topic)
			b.startPolling()
			ev.waitUntil(t, "a and b share the partitions", func() bool { return shared(parts, 2, a, b) })
			produceSpread(t, addrs, topic, parts, 80, "before")
			ev.waitUntil(t, "80 records consumed", func() bool { return a.consumed()+b.consumed() >= 80 })
			aOwned := a.ownedNow()
			gen := b.c.GroupMetadata().GenerationID
			b.mu.Lock()
			bCalls := len(b.assigned) + len(b.revoked) + len(b.lost)
			b.mu.Unlock()
			a.close()

			a2 := newMember(t, ev, "a2", cfgA, topic)
			a2.startPolling()
			ev.waitUntil(t, "a2 owns a's partitions", func() bool { return slices.Equal(a2.ownedNow(), aOwned) })
			produceSpread(t, addrs, topic, parts, 80, "after")
			ev.waitUntil(t, "160 records consumed", func() bool { return a.consumed()+a2.consumed()+b.consumed() >= 160 })
			checkAllOnce(t, spreadEnds(topic, parts, 160), a, a2, b)
			b.mu.Lock()
			if n := len(b.assigned) + len(b.revoked) + len(b.lost); n != bCalls {
				t.Errorf("b saw a rebalance: assigned %v, revoked %v, lost %v", b.assigned, b.revoked, b.lost)
			}
			b.mu.Unlock()
			if g := b.c.GroupMetadata().GenerationID; g != gen {
				t.Errorf("generation %d, was %d: the group rebalanced", g, gen)
			}
			a.checkNoErrors()
			a2.checkNoErrors()
			b.checkNoErrors()
		})
	}
}

// A static member that closes and stays away is removed once its session
// times out, and its partitions move.
func TestGroupSessionTimeout(t *testing.T) {
	for _, cl := range groupClusters {
		t.Run(cl.name, func(t *testing.T) {
			const topic, parts = "session", 4
			addrs := cl.start(t, topic, parts)
			cfg := groupConfig(addrs, "session")
			cfg.SessionTimeoutMs = 1000
			cfg.GroupInstanceID = "gone"
			ev := newEvents()
			a := newMember(t, ev, "a", cfg, topic)
			cfg.GroupInstanceID = "stays"
			b := newMember(t, ev, "b", cfg, topic)
			ev.waitUntil(t, "a and b share the partitions", func() bool { return shared(parts, 2, a, b) })
			a.close()
			ev.waitUntil(t, "b owns every partition", func() bool { return shared(parts, parts, b) })
		})
	}
}

// A member that does not Poll for max.poll.interval.ms leaves the group, so
// the others take its partitions; its next Poll brings it back.
func TestGroupMaxPollInterval(t *testing.T) {
	for _, cl := range groupClusters {
		t.Run(cl.name, func(t *testing.T) {
			const topic, parts = "maxpoll", 4
			addrs := cl.start(t, topic, parts)
			cfg := groupConfig(addrs, "maxpoll")
			ev := newEvents()
			b := newMember(t, ev, "b", cfg, topic)
			b.startPolling()
			cfg.MaxPollIntervalMs = 1500
			a := newMember(t, ev, "a", cfg, topic) // never polls, at first
			ev.waitUntil(t, "a was in the group and lost its partitions", func() bool {
				a.mu.Lock()
				defer a.mu.Unlock()
				return len(a.lost) > 0
			})
			ev.waitUntil(t, "b owns every partition", func() bool { return shared(parts, parts, b) })
			a.startPolling()
			ev.waitUntil(t, "a is back", func() bool { return shared(parts, 2, a, b) })
			a.checkNoErrors()
			b.checkNoErrors()
		})
	}
}

// Coordinator trouble (it moves, it loads, it is not there yet) is met by
// finding it again and retrying; a commit or heartbeat the group refuses
// (the generation is over, the member unknown) makes the member rejoin.
// None of it reaches Poll, and no record is skipped.
func TestKfakeGroupCoordinatorErrors(t *testing.T) {
	const topic, parts = "faults", 2
	c := newFake(t, kfake.SeedTopics(parts, topic), kfake.GroupMinSessionTimeout(100*time.Millisecond))
	addrs := c.ListenAddrs()
	produceSpread(t, addrs, topic, parts, 40, "v")
	k := func(keys ...kmsg.Key) []kmsg.Key { return keys }
	retried := []*kfake.FaultHandle{
		c.Fault(kfake.Fault{Keys: k(kmsg.FindCoordinator), Err: kerr.CoordinatorNotAvailable, Count: 2}),
		c.Fault(kfake.Fault{Keys: k(kmsg.JoinGroup), Err: kerr.CoordinatorLoadInProgress}),
		c.Fault(kfake.Fault{Keys: k(kmsg.JoinGroup), Err: kerr.NotCoordinator}),
		c.Fault(kfake.Fault{Keys: k(kmsg.OffsetFetch), Err: kerr.CoordinatorLoadInProgress, TopLevel: true}),
		c.Fault(kfake.Fault{Keys: k(kmsg.Heartbeat), Err: kerr.NotCoordinator, Count: 2}),
	}
	cfg := groupConfig(addrs, "faults")
	cfg.EnableAutoCommit = false
	// The faked UNKNOWN_MEMBER_ID leaves the member's old self in the
	// group; the rebalance waits for its session to end.
	cfg.SessionTimeoutMs = 1000
	ev := newEvents()
	m := newMember(t, ev, "m", cfg, topic)
	m.startPolling()
	ev.waitUntil(t, "40 records consumed", func() bool { return m.consumed() >= 40 })
	hbDone := retried[len(retried)-1]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	must(t, hbDone.Wait(ctx, 2))

	retried = append(retried,
		c.Fault(kfake.Fault{Keys: k(kmsg.OffsetCommit), Err: kerr.NotCoordinator}),
		c.Fault(kfake.Fault{Keys: k(kmsg.OffsetCommit), Err: kerr.CoordinatorLoadInProgress}))
	must(t, m.c.CommitSync(ctx))
	for i, f := range retried {
		if f.Hits() == 0 {
			t.Errorf("fault %d never hit", i)
		}
	}

	// The generation is over: the commit fails, the member gives its
	// partitions up as lost and joins again.
	c.Fault(kfake.Fault{Keys: k(kmsg.OffsetCommit), Err: kerr.IllegalGeneration})
	if err := m.c.CommitSync(ctx); !errors.Is(err, ErrCommitFailed) || !errors.Is(err, kerr.IllegalGeneration) {
		t.Fatalf("commit with ILLEGAL_GENERATION: %v", err)
	}
	ev.waitUntil(t, "the member lost its partitions and got them back", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return len(m.lost) == 1 && len(m.owned) == parts
	})
	// The member is unknown: the heartbeat says so, and it rejoins anew.
	unknown := c.Fault(kfake.Fault{Keys: k(kmsg.Heartbeat), Err: kerr.UnknownMemberID})
	must(t, unknown.Wait(ctx, 1))
	ev.waitUntil(t, "the member lost its partitions again and got them back", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return len(m.lost) == 2 && len(m.owned) == parts
	})
	must(t, m.c.CommitSync(ctx))
	produceSpread(t, addrs, topic, parts, 40, "w")
	// Nothing was committed before the first CommitSync, so the records
	// come again from its positions after each loss: at least once.
	ev.waitUntil(t, "the new records consumed", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return slices.ContainsFunc(m.values, func(v string) bool { return v == "w-38" }) &&
			slices.ContainsFunc(m.values, func(v string) bool { return v == "w-39" })
	})
	m.checkNoErrors()
}

func TestGroupSubscribeMisuse(t *testing.T) {
	addrs := newFake(t, kfake.SeedTopics(1, "misuse")).ListenAddrs()
	plain := newTestConsumer(t, testConsumerConfig(addrs))
	if err := plain.Subscribe([]string{"misuse"}, nil); !errors.Is(err, ErrNoGroup) {
		t.Errorf("Subscribe without group.id: %v", err)
	}
	if err := plain.CommitSync(context.Background()); !errors.Is(err, ErrNoGroup) {
		t.Errorf("CommitSync without group.id: %v", err)
	}
	manual := newTestConsumer(t, groupConfig(addrs, "misuse"), TopicPartition{"misuse", 0})
	if err := manual.Subscribe([]string{"misuse"}, nil); err == nil {
		t.Error("Subscribe after Assign accepted")
	}
	sub := newTestConsumer(t, groupConfig(addrs, "misuse"))
	for _, topics := range [][]string{nil, {""}, {"a/b"}} {
		if err := sub.Subscribe(topics, nil); err == nil {
			t.Errorf("Subscribe(%q) accepted", topics)
		}
	}
	must(t, sub.Subscribe([]string{"misuse"}, nil))
	sub.Assign([]TopicPartition{{"misuse", 0}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := sub.Poll(ctx); err == nil || !strings.Contains(err.Error(), "Assign on a consumer subscribed") {
		t.Errorf("Assign after Subscribe: Poll says %v", err)
	}
	sub.Close()
	if err := sub.CommitSync(ctx); err == nil {
		t.Error("CommitSync after Close succeeded")
	}
}

func TestConsumerGroupConfig(t *testing.T) {
	c := DefaultConsumerConfig()
	if c.GroupID != "" || c.SessionTimeoutMs != 45000 || c.HeartbeatIntervalMs != 3000 || c.MaxPollIntervalMs != 300000 ||
		!slices.Equal(c.PartitionAssignmentStrategy, []string{"range", "cooperative-sticky"}) || !c.EnableAutoCommit || c.AutoCommitIntervalMs != 5000 {
		t.Fatalf("group defaults differ from the Java consumer's: %+v", c)
	}
	c.BootstrapServers = []string{"127.0.0.1:9092"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.GroupInstanceID = "bad id"
	c.SessionTimeoutMs = 1000
	c.HeartbeatIntervalMs = 1000
	c.MaxPollIntervalMs = 0
	c.PartitionAssignmentStrategy = []string{"sticky", "range", "range"}
	c.AutoCommitIntervalMs = -1
	err := c.Validate()
	if err == nil {
		t.Fatal("validated")
	}
	for _, want := range []string{`group.instance.id = "bad id": needs group.id`, `group.instance.id = "bad id": at most 249`,
		"heartbeat.interval.ms = 1000: must be < session.timeout.ms = 1000", "max.poll.interval.ms = 0",
		`partition.assignment.strategy entry "sticky"`, `partition.assignment.strategy entry "range": listed twice`,
		"auto.commit.interval.ms = -1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	c = DefaultConsumerConfig()
	c.BootstrapServers = []string{"127.0.0.1:9092"}
	c.SessionTimeoutMs, c.HeartbeatIntervalMs, c.PartitionAssignmentStrategy = 0, 0, nil
	err = c.Validate()
	for _, want := range []string{"session.timeout.ms = 0", "heartbeat.interval.ms = 0", "partition.assignment.strategy is empty"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
}

// TestAssignedPartitionsAreCommitted: a consumer with group.id that assigns
// partitions by hand commits their positions as the Java consumer does:
// auto-commit (as of the latest Poll) on its timer, CommitSync, and Close,
// each outside any generation. Before, all three committed only partitions
// the group had assigned, so a restarted consumer read again what it had
// handled.
func TestAssignedPartitionsAreCommitted(t *testing.T) {
	c := newFake(t, kfake.SeedTopics(1, "hand"))
	addrs := c.ListenAddrs()
	produceSpread(t, addrs, "hand", 1, 20, "v")
	tp := TopicPartition{"hand", 0}
	cfg := groupConfig(addrs, "hand") // auto.offset.reset=earliest
	cfg.EnableAutoCommit = true
	cfg.AutoCommitIntervalMs = 10
	cfg.MaxPollRecords = 5

	// The timer's commit: the first OffsetCommit that reaches the broker,
	// a simple one (generation -1, no member), of the position as of the
	// latest Poll.
	commits := watchCommits(c)
	cons := newTestConsumer(t, cfg, tp)
	consumeN(t, cons, 5, 20*time.Second)
	consumeN(t, cons, 5, 20*time.Second) // position 10; 5 as of this Poll
	deadline := time.After(20 * time.Second)
	for {
		var req *kmsg.OffsetCommitRequest
		select {
		case req = <-commits:
		case <-deadline:
			t.Fatal("no auto-commit of a partition assigned by hand within 20s")
		}
		if req.Generation != -1 || req.MemberID != "" || len(req.Topics) != 1 || len(req.Topics[0].Partitions) != 1 {
			t.Fatalf("auto-commit %+v: want one partition, generation -1, no member", req)
		}
		if off := req.Topics[0].Partitions[0].Offset; off == 5 {
			break
		} else if off != 0 {
			t.Fatalf("auto-committed %d, want 5 (the position as of the latest Poll)", off)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	must(t, cons.CommitSync(ctx))
	if got := committedOffset(t, addrs, "hand"); got != 10 {
		t.Fatalf("CommitSync committed %d, want the position 10", got)
	}
	consumeN(t, cons, 5, 20*time.Second)
	must(t, cons.Close())
	if got := committedOffset(t, addrs, "hand"); got != 15 {
		t.Fatalf("Close committed %d, want the position 15", got)
	}
}

// TestAssignedAutoCommitNotHeldUpByALookup: while the committed offset of
// one partition assigned by hand cannot be read yet (a retriable
// UNSTABLE_OFFSET_COMMIT, as a pending transactional commit gives for up to
// transaction.timeout.ms), the positions of the partitions already being
// read are still auto-committed, as the Java consumer's poll runs
// maybeAutoCommitOffsetsAsync whatever refreshCommittedOffsetsIfNeeded
// waits for. The auto-commit once ran on the goroutine that retries the
// lookup, and never came.
func TestAssignedAutoCommitNotHeldUpByALookup(t *testing.T) {
	c := newFake(t, kfake.SeedTopics(2, "hand"))
	addrs := c.ListenAddrs()
	produceToPartition(t, addrs, "hand", 0, 10)
	cfg := testConsumerConfig(addrs)
	cfg.GroupID = "hand"
	cfg.EnableAutoCommit = true
	cfg.AutoCommitIntervalMs = 10
	cfg.MaxPollRecords = 5

	// hand-0 has nothing committed; hand-1's committed offset stays
	// unstable.
	c.ControlKey(int16(kmsg.OffsetFetch), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := r.(*kmsg.OffsetFetchRequest)
		resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
		resp.Version = req.Version
		answer := func(p int32) (int64, int16) {
			if p == 1 {
				return -1, kerr.UnstableOffsetCommit.Code
			}
			return -1, 0
		}
		// The client asks at v8 (maxOffsetFetchVersion), which lists groups.
		for _, g := range req.Groups {
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group = g.Group
			for _, gt := range g.Topics {
				rt := kmsg.NewOffsetFetchResponseGroupTopic()
				rt.Topic = gt.Topic
				for _, p := range gt.Partitions {
					rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					rp.Partition, rp.LeaderEpoch = p, -1
					rp.Offset, rp.ErrorCode = answer(p)
					rt.Partitions = append(rt.Partitions, rp)
				}
				rg.Topics = append(rg.Topics, rt)
			}
			resp.Groups = append(resp.Groups, rg)
		}
		return resp, nil, true
	})
	commits := watchCommits(c)

	cons := newTestConsumer(t, cfg, TopicPartition{"hand", 0}, TopicPartition{"hand", 1})
	consumeN(t, cons, 5, 20*time.Second)
	consumeN(t, cons, 5, 20*time.Second) // hand-0 at 10, 5 as of this Poll
	select {
	case req := <-commits:
		t.Logf("auto-commit %+v", req.Topics)
	case <-time.After(5 * time.Second): // 500 auto-commit intervals
		t.Fatal("no auto-commit of hand-0 in 5s (500 intervals): the assigned goroutine is stuck retrying hand-1's OffsetFetch")
	}
}

// produceToPartition produces n records to one partition of topic.
func produceToPartition(t *testing.T, addrs []string, topic string, partition int32, n int) {
	t.Helper()
	p := newTestProducer(t, testProducerConfig(addrs))
	res := newResults()
	for i := range n {
		v := "v" + string(rune('a'+i%26))
		must(t, p.Produce(t.Context(), &Record{Topic: topic, Partition: partition, Value: []byte(v)}, res.callback(i, v)))
	}
	for _, r := range res.wait(t, 20*time.Second) {
		must(t, r.err)
	}
}

// watchCommits passes on the OffsetCommit requests that reach c (those that
// come while the last is still unread are not passed on), and lets c answer
// them.
func watchCommits(c *kfake.Cluster) <-chan *kmsg.OffsetCommitRequest {
	commits := make(chan *kmsg.OffsetCommitRequest, 1)
	c.ControlKey(int16(kmsg.OffsetCommit), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		select {
		case commits <- r.(*kmsg.OffsetCommitRequest):
		default:
		}
		return nil, nil, false
	})
	return commits
}
