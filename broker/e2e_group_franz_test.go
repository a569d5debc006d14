package broker_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"gregor/internal/testcluster"
)

// groupTracker follows how the members of one group consume one topic, as
// they report it from kgo's rebalance callbacks and their poll loops, and
// holds them to what a consumer group promises:
//
//   - a partition has one owner at a time;
//   - a new owner starts at the partition's last committed offset (the
//     start, 0, before any commit);
//   - an owner reads on from there with no gap;
//   - a commit never passes what its member has read.
//
// Once every record produced has been read, these say that no record was
// skipped and that a record was read twice only if it came after the last
// commit before its partition moved. The tests then check the exact count
// of reads of every offset.
type groupTracker struct {
	topic string

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every event
	parts   []*trackedPartition
	dead    map[string]bool // members killed: their late callbacks are ignored
	errs    []string
	// assignments counts each member's assignments; groupErrs are the
	// group errors kgo handed the members' polls (it rejoins after them).
	assignments map[string]int
	groupErrs   []string
}

type trackedPartition struct {
	owner     string
	next      int64 // the offset its owner reads next
	committed int64 // the last commit; 0 before any
	reads     []int // the times each offset produced was read
}

func newGroupTracker(topic string, partitions int) *groupTracker {
	tr := &groupTracker{topic: topic, changed: make(chan struct{}), dead: map[string]bool{}, assignments: map[string]int{}}
	for range partitions {
		tr.parts = append(tr.parts, &trackedPartition{})
	}
	return tr
}

// event runs fn under the lock and wakes the waiters.
func (tr *groupTracker) event(fn func()) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	fn()
	close(tr.changed)
	tr.changed = make(chan struct{})
}

func (tr *groupTracker) errorfLocked(format string, args ...any) {
	if len(tr.errs) < 20 {
		tr.errs = append(tr.errs, fmt.Sprintf(format, args...))
	}
}

func (tr *groupTracker) fail(format string, args ...any) {
	tr.event(func() { tr.errorfLocked(format, args...) })
}

func (tr *groupTracker) partition(p int32) *trackedPartition {
	if p < 0 || int(p) >= len(tr.parts) {
		return nil
	}
	return tr.parts[p]
}

func (tr *groupTracker) assigned(member string, ps []int32) {
	tr.event(func() {
		if tr.dead[member] {
			return
		}
		tr.assignments[member]++
		for _, p := range ps {
			tp := tr.partition(p)
			switch {
			case tp == nil:
				tr.errorfLocked("%s was assigned partition %d, which does not exist", member, p)
				continue
			case tp.owner != "" && !tr.dead[tp.owner]:
				tr.errorfLocked("partition %d was assigned to %s while %s still owns it", p, member, tp.owner)
			}
			tp.owner, tp.next = member, tp.committed
		}
	})
}

func (tr *groupTracker) revoked(member string, ps []int32) {
	tr.event(func() {
		for _, p := range ps {
			if tp := tr.partition(p); tp != nil && tp.owner == member {
				tp.owner = ""
			}
		}
	})
}

func recordValue(p int32, offset int64) string { return fmt.Sprintf("%d/%d", p, offset) }

func (tr *groupTracker) read(member string, recs []*kgo.Record) {
	if len(recs) == 0 {
		return
	}
	tr.event(func() {
		for _, r := range recs {
			tr.readLocked(member, r.Topic, r.Partition, r.Offset, r.Value)
		}
	})
}

// readOne records one record read by member.
func (tr *groupTracker) readOne(member, topic string, p int32, offset int64, value []byte) {
	tr.event(func() { tr.readLocked(member, topic, p, offset, value) })
}

func (tr *groupTracker) readLocked(member, topic string, p int32, offset int64, value []byte) {
	tp := tr.partition(p)
	switch {
	case topic != tr.topic || tp == nil:
		tr.errorfLocked("%s read %s-%d, not one of the group's partitions", member, topic, p)
		return
	case tp.owner != member:
		tr.errorfLocked("%s read partition %d at %d, which %q owns", member, p, offset, tp.owner)
	case offset != tp.next:
		tr.errorfLocked("%s read partition %d at %d, want %d (last commit %d)", member, p, offset, tp.next, tp.committed)
	case string(value) != recordValue(p, offset):
		tr.errorfLocked("%s read %q at partition %d offset %d, want %q", member, value, p, offset, recordValue(p, offset))
	}
	tp.next = offset + 1
	if offset < 0 || offset >= int64(len(tp.reads)) {
		tr.errorfLocked("%s read partition %d at %d, past the %d records produced", member, p, offset, len(tp.reads))
		return
	}
	tp.reads[offset]++
}

// committed records a commit of recs (the offset after the last of each
// partition) that member's client acknowledged.
func (tr *groupTracker) committed(member string, recs []*kgo.Record) {
	next := map[int32]int64{}
	for _, r := range recs {
		next[r.Partition] = max(next[r.Partition], r.Offset+1)
	}
	tr.committedAt(member, next)
}

// committedAt records a commit by member of the offsets next, by partition.
func (tr *groupTracker) committedAt(member string, next map[int32]int64) {
	tr.event(func() {
		for p, off := range next {
			tp := tr.partition(p)
			switch {
			case tp == nil:
				tr.errorfLocked("%s committed partition %d, which does not exist", member, p)
				continue
			case tp.owner != member:
				tr.errorfLocked("%s committed partition %d at %d, which %q owns", member, p, off, tp.owner)
			case off > tp.next:
				tr.errorfLocked("%s committed partition %d at %d, past what it read (%d)", member, p, off, tp.next)
			}
			tp.committed = off
		}
	})
}

func (tr *groupTracker) kill(member string) { tr.event(func() { tr.dead[member] = true }) }

func (tr *groupTracker) groupError(member string, err error) {
	tr.event(func() {
		if len(tr.groupErrs) < 20 {
			tr.groupErrs = append(tr.groupErrs, fmt.Sprintf("%s: %v", member, err))
		}
	})
}

// groupErrors returns the group errors the members' polls returned.
func (tr *groupTracker) groupErrors() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.groupErrs)
}

// assignmentCounts returns how many assignments each member has had.
func (tr *groupTracker) assignmentCounts() map[string]int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return maps.Clone(tr.assignments)
}

// reassigned says whether each of members has had an assignment since
// before (assignmentCounts). Called under the lock (by wait).
func (tr *groupTracker) reassigned(before map[string]int, members ...string) func() bool {
	return func() bool {
		for _, m := range members {
			if tr.assignments[m] <= before[m] {
				return false
			}
		}
		return true
	}
}

// owned returns the partitions member owns.
func (tr *groupTracker) owned(member string) []int32 {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.ownedLocked(member)
}

func (tr *groupTracker) ownedLocked(member string) []int32 {
	var ps []int32
	for p, tp := range tr.parts {
		if tp.owner == member {
			ps = append(ps, int32(p))
		}
	}
	return ps
}

// sharedBy says whether members, and only they, own the partitions, each
// at least one. Called under the lock (by wait).
func (tr *groupTracker) sharedBy(members ...string) func() bool {
	return func() bool {
		for _, tp := range tr.parts {
			if !slices.Contains(members, tp.owner) {
				return false
			}
		}
		for _, m := range members {
			if len(tr.ownedLocked(m)) == 0 {
				return false
			}
		}
		return true
	}
}

// readAll says whether every partition's owner has read every record.
func (tr *groupTracker) readAll() bool {
	for _, tp := range tr.parts {
		if tp.owner == "" || tp.next != int64(len(tp.reads)) {
			return false
		}
	}
	return true
}

// readAndCommitted says whether every record has been read and committed.
func (tr *groupTracker) readAndCommitted() bool {
	if !tr.readAll() {
		return false
	}
	for _, tp := range tr.parts {
		if tp.committed != int64(len(tp.reads)) {
			return false
		}
	}
	return true
}

func (tr *groupTracker) all(conds ...func() bool) func() bool {
	return func() bool {
		for _, c := range conds {
			if !c() {
				return false
			}
		}
		return true
	}
}

func (tr *groupTracker) stateLocked() string {
	var b strings.Builder
	for p, tp := range tr.parts {
		fmt.Fprintf(&b, "  partition %d: owner %q, next %d, committed %d, produced %d\n", p, tp.owner, tp.next, tp.committed, len(tp.reads))
	}
	return b.String()
}

// wait waits until cond (called under the lock) holds, failing the test
// at once if a member broke a rule, or when ctx ends.
func (tr *groupTracker) wait(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	waitGroupEvents(t, ctx, what, &tr.mu, func() (bool, []string, <-chan struct{}) {
		return cond(), slices.Clone(tr.errs), tr.changed
	}, tr.stateLocked)
}

// waitGroupEvents is the loop of the group tests' trackers: under mu, look
// says whether the wait is over, what rules were broken and the channel
// closed on the next event; state describes the members when ctx ends.
func waitGroupEvents(t *testing.T, ctx context.Context, what string, mu *sync.Mutex,
	look func() (ok bool, errs []string, changed <-chan struct{}), state func() string) {
	t.Helper()
	for {
		mu.Lock()
		ok, errs, changed := look()
		mu.Unlock()
		if len(errs) > 0 {
			t.Fatalf("waiting until %s:\n%s", what, strings.Join(errs, "\n"))
		}
		if ok {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			mu.Lock()
			s := state()
			mu.Unlock()
			t.Fatalf("waiting until %s: %v\n%s", what, ctx.Err(), s)
		}
	}
}

// checkReads checks that each offset was read exactly want(p, offset) times.
func (tr *groupTracker) checkReads(t *testing.T, want func(p int32, offset int64) int) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var bad []string
	for p, tp := range tr.parts {
		for off, n := range tp.reads {
			if w := want(int32(p), int64(off)); n != w && len(bad) < 20 {
				bad = append(bad, fmt.Sprintf("partition %d offset %d read %d times, want %d", p, off, n, w))
			}
		}
	}
	if len(bad) > 0 {
		t.Errorf("reads:\n%s", strings.Join(bad, "\n"))
	}
}

// produceEach produces n records to every partition of the tracker's topic;
// each record's value names its partition and offset.
func produceEach(t *testing.T, ctx context.Context, cl *kgo.Client, tr *groupTracker, n int) {
	t.Helper()
	var recs []*kgo.Record
	tr.event(func() {
		for p, tp := range tr.parts {
			for range n {
				off := int64(len(tp.reads))
				tp.reads = append(tp.reads, 0)
				recs = append(recs, &kgo.Record{Topic: tr.topic, Partition: int32(p), Value: []byte(recordValue(int32(p), off))})
			}
		}
	})
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("producing: %v", err)
	}
}

// manualProducer produces each record to the partition it names.
func manualProducer(t *testing.T, c *testcluster.Cluster) *kgo.Client {
	return newClient(t, c, kgo.RecordPartitioner(kgo.ManualPartitioner()))
}

// killSwitch is a dialer whose connections can all be cut at once, with
// every later dial refused: what a client sees of the network when its
// process dies.
type killSwitch struct {
	mu     sync.Mutex
	killed bool
	conns  []net.Conn
}

func (k *killSwitch) dial(ctx context.Context, network, host string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, host)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.killed {
		c.Close()
		return nil, errors.New("the member was killed")
	}
	k.conns = append(k.conns, c)
	return c, nil
}

func (k *killSwitch) kill() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.killed = true
	for _, c := range k.conns {
		c.Close()
	}
	k.conns = nil
}

func (k *killSwitch) isKilled() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.killed
}

// franzMember is one kgo group consumer reporting to a groupTracker. Its
// loop polls, reports the records, commits them (while commit is set) and
// only then lets a rebalance run (BlockRebalanceOnPoll), so what it reports
// is in the order the group saw it.
type franzMember struct {
	name      string
	cl        *kgo.Client
	commit    atomic.Bool
	cancel    context.CancelFunc
	done      chan struct{}
	net       *killSwitch
	closeOnce sync.Once
}

// startFranzMember starts a member: short heartbeats so that it learns of
// rebalances at once, a 10 s session (opts may shorten it).
func startFranzMember(t *testing.T, seeds []string, tr *groupTracker, group, name string, opts ...kgo.Opt) *franzMember {
	t.Helper()
	m := &franzMember{name: name, done: make(chan struct{}), net: &killSwitch{}}
	m.commit.Store(true)
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(seeds...), kgo.ClientID(name), kgo.Dialer(m.net.dial),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(tr.topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(10 * time.Second), kgo.RebalanceTimeout(10 * time.Second), kgo.HeartbeatInterval(100 * time.Millisecond),
		kgo.FetchMaxWait(200 * time.Millisecond), kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) { tr.assigned(name, a[tr.topic]) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) { tr.revoked(name, r[tr.topic]) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, l map[string][]int32) { tr.revoked(name, l[tr.topic]) }),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cl, m.cancel = cl, cancel
	go m.run(ctx, tr)
	t.Cleanup(m.close)
	return m
}

func (m *franzMember) run(ctx context.Context, tr *groupTracker) {
	defer close(m.done)
	for {
		fs := m.cl.PollRecords(ctx, 16)
		if ctx.Err() != nil {
			m.cl.AllowRebalance()
			return
		}
		fs.EachError(func(topic string, p int32, err error) {
			if _, ok := errors.AsType[*kgo.ErrGroupSession](err); ok {
				tr.groupError(m.name, err)
				return
			}
			tr.fail("%s: fetching %s-%d: %v", m.name, topic, p, err)
		})
		recs := fs.Records()
		tr.read(m.name, recs)
		if len(recs) > 0 && m.commit.Load() {
			if err := m.cl.CommitRecords(ctx, recs...); err != nil {
				if ctx.Err() == nil {
					tr.fail("%s: committing: %v", m.name, err)
				}
			} else {
				tr.committed(m.name, recs)
			}
		}
		m.cl.AllowRebalance()
	}
}

func (m *franzMember) memberID() string {
	id, _ := m.cl.GroupMetadata()
	return id
}

// close stops the loop and closes the client, which leaves the group (a
// killed member cannot: it gives up at once).
func (m *franzMember) close() {
	m.closeOnce.Do(func() {
		m.cancel()
		<-m.done
		if m.net.isKilled() {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_ = m.cl.LeaveGroupContext(ctx)
		}
		m.cl.Close()
	})
}

// kill makes the member die as a crashed process does: no LeaveGroup, no
// more heartbeats, its connections gone.
func (m *franzMember) kill(tr *groupTracker) {
	m.cancel()
	<-m.done
	tr.kill(m.name)
	m.net.kill()
}

// checkDescribed checks the coordinator's view of the group against the
// members': Stable, with exactly these members (by member id and client
// id), each assigned the partitions it owns.
//
// The two views are compared until they agree, again after each event the
// members report, within a bound: the coordinator can be Stable in a
// generation whose assignment a member's client has not yet applied (a
// cooperative rebalance taking a partition back in a second round), and
// the member's callbacks then bring the views together.
func checkDescribed(t *testing.T, ctx context.Context, adm *kadm.Client, group, protocol string, tr *groupTracker, members ...*franzMember) {
	t.Helper()
	bound := time.After(10 * time.Second)
	for {
		tr.mu.Lock()
		changed := tr.changed
		tr.mu.Unlock()
		wrong := describedMismatches(t, ctx, adm, group, protocol, tr, members)
		if len(wrong) == 0 {
			return
		}
		select {
		case <-changed:
		case <-bound:
			t.Fatalf("the coordinator's view of %s still differs from its members' after 10 s:\n%s", group, strings.Join(wrong, "\n"))
		case <-ctx.Done():
			t.Fatalf("the coordinator's view of %s differs from its members': %v\n%s", group, ctx.Err(), strings.Join(wrong, "\n"))
		}
	}
}

// describedMismatches lists how the coordinator's description of group
// differs from what checkDescribed expects.
func describedMismatches(t *testing.T, ctx context.Context, adm *kadm.Client, group, protocol string, tr *groupTracker, members []*franzMember) []string {
	t.Helper()
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatalf("describing %s: %v", group, err)
	}
	g := described[group]
	if g.Err != nil || g.State != "Stable" || g.ProtocolType != "consumer" || g.Protocol != protocol || len(g.Members) != len(members) {
		return []string{fmt.Sprintf("described %s: err %v, state %q, protocol %q/%q, %d members; want Stable, consumer/%s, %d members",
			group, g.Err, g.State, g.ProtocolType, g.Protocol, len(g.Members), protocol, len(members))}
	}
	var wrong []string
	for _, dm := range g.Members {
		i := slices.IndexFunc(members, func(m *franzMember) bool { return m.memberID() == dm.MemberID })
		if i < 0 {
			wrong = append(wrong, fmt.Sprintf("described member %s (client %s) is none of the live members", dm.MemberID, dm.ClientID))
			continue
		}
		m := members[i]
		if dm.ClientID != m.name || dm.ClientHost != "/127.0.0.1" {
			wrong = append(wrong, fmt.Sprintf("member %s: client %q host %q; want %q, /127.0.0.1", m.name, dm.ClientID, dm.ClientHost, m.name))
		}
		var got []int32
		if a, ok := dm.Assigned.AsConsumer(); ok {
			for _, at := range a.Topics {
				if at.Topic != tr.topic {
					wrong = append(wrong, fmt.Sprintf("member %s is assigned topic %q", m.name, at.Topic))
				}
				got = append(got, at.Partitions...)
			}
		}
		slices.Sort(got)
		if want := tr.owned(m.name); !slices.Equal(got, want) {
			wrong = append(wrong, fmt.Sprintf("the coordinator has %s assigned %v; it owns %v", m.name, got, want))
		}
	}
	return wrong
}

// TestGroupFranzShareLeaveAndDie runs a kgo consumer group through the
// life of a real one, eager and cooperative: three members share six
// partitions, each owned by one member; one member leaves (LeaveGroup), one
// joins, and the leader dies (it stops heartbeating without leaving), and
// each time the partitions move to the others, who resume from the last
// commit. The members that go read records past their last commit first,
// so exactly those are read twice; nothing is skipped.
func TestGroupFranzShareLeaveAndDie(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	for _, bal := range []struct {
		name     string
		balancer kgo.GroupBalancer
	}{
		{"eager-range", kgo.RangeBalancer()},
		{"cooperative-sticky", kgo.CooperativeStickyBalancer()},
	} {
		t.Run(bal.name, func(t *testing.T) { testFranzShareLeaveAndDie(t, c, bal.balancer) })
	}
}

func testFranzShareLeaveAndDie(t *testing.T, c *testcluster.Cluster, balancer kgo.GroupBalancer) {
	name := balancer.ProtocolName()
	topic, group := "share-"+name, "group-"+name
	createTopic(t, c, topic, 6, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tr := newGroupTracker(topic, 6)
	adm := kadm.NewClient(newClient(t, c))
	prod := manualProducer(t, c)
	bal := kgo.Balancers(balancer)

	// a joins first, so it leads the group (the coordinator keeps a
	// leader while it stays); it has a short session, since it dies last.
	a := startFranzMember(t, c.Addrs(), tr, group, "a", bal, kgo.SessionTimeout(1500*time.Millisecond))
	tr.wait(t, ctx, "a owns the partitions", tr.sharedBy("a"))
	b := startFranzMember(t, c.Addrs(), tr, group, "b", bal)
	cm := startFranzMember(t, c.Addrs(), tr, group, "c", bal)
	tr.wait(t, ctx, "a, b and c share the partitions", tr.sharedBy("a", "b", "c"))
	checkDescribed(t, ctx, adm, group, name, tr, a, b, cm)
	produceEach(t, ctx, prod, tr, 10) // offsets 0-9
	tr.wait(t, ctx, "a, b and c read and commit offsets 0-9", tr.readAndCommitted)

	// c reads offsets 10-19 of its partitions without committing them,
	// then leaves: a and b take its partitions over from offset 10.
	cm.commit.Store(false)
	produceEach(t, ctx, prod, tr, 10)
	tr.wait(t, ctx, "offsets 10-19 are read", tr.readAll)
	cParts := tr.owned("c")
	cm.close()
	tr.wait(t, ctx, "a and b share c's partitions and read them from its last commit", tr.all(tr.sharedBy("a", "b"), tr.readAndCommitted))
	checkDescribed(t, ctx, adm, group, name, tr, a, b)

	// d joins and takes its share.
	d := startFranzMember(t, c.Addrs(), tr, group, "d", bal)
	tr.wait(t, ctx, "a, b and d share the partitions", tr.sharedBy("a", "b", "d"))
	checkDescribed(t, ctx, adm, group, name, tr, a, b, d)
	produceEach(t, ctx, prod, tr, 10)
	tr.wait(t, ctx, "offsets 20-29 are read and committed", tr.readAndCommitted)

	// a, the leader, reads offsets 30-39 of its partitions without
	// committing them, and dies: once its session expires, b and d take
	// its partitions over from offset 30, one of them leading.
	a.commit.Store(false)
	produceEach(t, ctx, prod, tr, 10)
	tr.wait(t, ctx, "offsets 30-39 are read", tr.readAll)
	aParts := tr.owned("a")
	died := time.Now()
	a.kill(tr)
	tr.wait(t, ctx, "b and d share a's partitions once its session expires and read them from its last commit",
		tr.all(tr.sharedBy("b", "d"), tr.readAndCommitted))
	t.Logf("a's partitions %v moved %v after it died (session timeout 1.5s)", aParts, time.Since(died).Round(time.Millisecond))
	checkDescribed(t, ctx, adm, group, name, tr, b, d)

	if errs := tr.groupErrors(); len(errs) > 0 {
		t.Errorf("the members' polls returned group errors:\n%s", strings.Join(errs, "\n"))
	}
	tr.checkReads(t, func(p int32, off int64) int {
		n := 1
		if slices.Contains(cParts, p) && off >= 10 && off < 20 {
			n++
		}
		if slices.Contains(aParts, p) && off >= 30 && off < 40 {
			n++
		}
		return n
	})
}

// TestGroupFranzStaticMembers runs static members (KIP-345: kgo's
// InstanceID), which do not leave the group when they close. One restarts
// within its session: its new incarnation takes its instance id's place
// and gets its partitions back with no rebalance, the other member's
// assignment untouched. Later it dies for good, and once its session
// expires its partitions move, resumed from its last commit.
func TestGroupFranzStaticMembers(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	const topic, group = "static", "group-static"
	createTopic(t, c, topic, 4, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tr := newGroupTracker(topic, 4)
	adm := kadm.NewClient(newClient(t, c))
	prod := manualProducer(t, c)
	a := startFranzMember(t, c.Addrs(), tr, group, "a", kgo.InstanceID("instance-a"))
	b := startFranzMember(t, c.Addrs(), tr, group, "b", kgo.InstanceID("instance-b"))
	tr.wait(t, ctx, "a and b share the partitions", tr.sharedBy("a", "b"))
	produceEach(t, ctx, prod, tr, 10)
	tr.wait(t, ctx, "offsets 0-9 are read and committed", tr.readAndCommitted)
	aParts, counts := tr.owned("a"), tr.assignmentCounts()

	a.close() // no LeaveGroup: the coordinator keeps instance-a
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if g := described[group]; g.State != "Stable" || len(g.Members) != 2 {
		t.Fatalf("%s after a static member closed: %s with %d members, want Stable with 2", group, g.State, len(g.Members))
	}
	a2 := startFranzMember(t, c.Addrs(), tr, group, "a2", kgo.InstanceID("instance-a"), kgo.SessionTimeout(1500*time.Millisecond))
	tr.wait(t, ctx, "a's next incarnation gets a's partitions back", tr.sharedBy("a2", "b"))
	if got := tr.owned("a2"); !slices.Equal(got, aParts) {
		t.Errorf("a's next incarnation owns %v, a owned %v", got, aParts)
	}
	if got := tr.assignmentCounts()["b"]; got != counts["b"] {
		t.Errorf("b was assigned partitions %d times while a restarted, want 0 (no rebalance)", got-counts["b"])
	}
	described, err = adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	var instances []string
	for _, m := range described[group].Members {
		if m.InstanceID != nil {
			instances = append(instances, *m.InstanceID)
		}
		if m.InstanceID != nil && *m.InstanceID == "instance-a" && m.MemberID != a2.memberID() {
			t.Errorf("instance-a is member %s, want its new incarnation's id %s", m.MemberID, a2.memberID())
		}
	}
	if slices.Sort(instances); !slices.Equal(instances, []string{"instance-a", "instance-b"}) {
		t.Errorf("the group's instances: %v", instances)
	}
	produceEach(t, ctx, prod, tr, 10)
	tr.wait(t, ctx, "offsets 10-19 are read and committed", tr.readAndCommitted)

	a2.commit.Store(false)
	produceEach(t, ctx, prod, tr, 10)
	tr.wait(t, ctx, "offsets 20-29 are read", tr.readAll)
	a2.kill(tr)
	tr.wait(t, ctx, "b takes a's partitions over once its session expires", tr.all(tr.sharedBy("b"), tr.readAndCommitted))
	checkDescribed(t, ctx, adm, group, "cooperative-sticky", tr, b)
	tr.checkReads(t, func(p int32, off int64) int {
		if slices.Contains(aParts, p) && off >= 20 {
			return 2
		}
		return 1
	})
}
