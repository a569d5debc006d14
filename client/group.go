package client

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Consumer group membership: Kafka's classic group protocol as the Java
// consumer speaks it. See the package documentation for the design.

// RebalanceListener is told what the group gives and takes, as the Java
// client's ConsumerRebalanceListener is. Its functions run on the group's
// goroutine, one at a time, while heartbeats go on; they may call the
// Consumer's methods (Position, Seek, CommitOffsets, CommitSync) but not
// Close. A nil function is skipped.
type RebalanceListener struct {
	// OnPartitionsAssigned runs after every rebalance this member took
	// part in, with the partitions it gained (possibly none). Their
	// positions are known by then (the committed offsets, else
	// auto.offset.reset) and a Seek overrides them; Poll returns none of
	// their records before this returns.
	OnPartitionsAssigned func(ctx context.Context, partitions []TopicPartition)
	// OnPartitionsRevoked runs when partitions are taken away in an orderly
	// way: before an eager rebalance (all of them), after a cooperative one
	// (those that move), and on Close. Poll returns none of their records
	// from before this is called, and with enable.auto.commit their
	// positions are committed by then; the member still owns them, so a
	// commit of its own succeeds.
	OnPartitionsRevoked func(ctx context.Context, partitions []TopicPartition)
	// OnPartitionsLost runs instead of OnPartitionsRevoked when the member
	// learns it was no longer in the group (its session expired, it was
	// fenced, max.poll.interval.ms passed): the partitions may already be
	// another member's, so nothing is committed. nil falls back to
	// OnPartitionsRevoked, as in the Java client.
	OnPartitionsLost func(ctx context.Context, partitions []TopicPartition)
}

// ConsumerGroupMetadata is who the consumer is in its group now, as the Java
// client's Consumer.groupMetadata() reports it.
type ConsumerGroupMetadata struct {
	GroupID string
	// GenerationID is the generation joined last, -1 when none.
	GenerationID    int32
	MemberID        string
	GroupInstanceID string
}

var (
	// ErrNoGroup is returned by Subscribe and the commit methods of a
	// consumer configured without group.id.
	ErrNoGroup = errors.New("client: no group.id configured")
	// ErrCommitFailed is returned by a commit that the group refused because
	// it rebalanced: the partitions may belong to another member now. The
	// consumer rejoins by itself; the error unwraps to the broker's
	// (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS).
	ErrCommitFailed = errors.New("client: commit failed: the group has rebalanced")
)

// consumerProtocolType is the protocol type of consumer groups; Kafka
// Connect and others use the same protocol with other types.
const consumerProtocolType = "consumer"

// The highest versions of the group APIs this client knows the meaning of.
// Later versions of OffsetCommit and OffsetFetch name topics by id and
// belong to the KIP-848 protocol.
const (
	maxJoinGroupVersion       = 9
	maxSyncGroupVersion       = 5
	maxHeartbeatVersion       = 4
	maxLeaveGroupVersion      = 5
	maxOffsetCommitVersion    = 8
	maxOffsetFetchVersion     = 8
	maxFindCoordinatorVersion = 5
)

// memberState is where the member is in the protocol.
type memberState uint8

const (
	stateUnjoined memberState = iota // no generation
	stateJoining                     // JoinGroup in flight
	stateSyncing                     // JoinGroup answered, SyncGroup in flight
	stateStable                      // has its generation's assignment
)

// commitOffset is one partition's offset to commit.
type commitOffset struct {
	offset int64
	epoch  int32 // leader epoch of the last record consumed, -1 unknown
}

// group is a consumer's membership of its group. The run goroutine owns
// the protocol: it joins, syncs, applies assignments, runs the listener and
// auto-commits. The heartbeat goroutine heartbeats while the member is
// stable and enforces max.poll.interval.ms. Commits may come from any
// goroutine. What they share is under mu; commitMu serializes commits so
// they land in the order they were made. Lock order: group.mu before
// Consumer.mu.
type group struct {
	c                                               *Consumer
	log                                             *slog.Logger
	id                                              string
	instanceID                                      *string
	protocols                                       []*assignor // partition.assignment.strategy, in preference order
	cooperative                                     bool
	autoCommit                                      bool
	sessionTimeout, rebalanceTimeout, maxPoll       time.Duration
	heartbeatInterval, autoCommitInterval           time.Duration
	retryBackoff, requestTimeout, metadataWaitLimit time.Duration

	ctx    context.Context // canceled by close
	cancel context.CancelFunc
	wg     sync.WaitGroup // run and heartbeat, or assigned
	connWG sync.WaitGroup // coordinator connections
	wake   chan struct{}  // the run goroutine has something to look at
	// assignedWake: Assign added partitions that wait for their committed
	// offsets (the assigned goroutine).
	assignedWake chan struct{}

	findMu   sync.Mutex // one coordinator lookup at a time
	commitMu sync.Mutex

	// watched are partition counts the last assignment was made from (all
	// the group's topics for the leader, the subscription for others): a
	// change means a rebalance. Owned by the run goroutine.
	watched map[string]int32

	mu struct {
		sync.Mutex
		started    bool // run and heartbeat: Subscribe was called
		assigned   bool // the assigned goroutine runs: Assign was called
		closed     bool
		topics     []string // the subscription, sorted
		listener   *RebalanceListener
		memberID   string
		generation int32 // -1 when not in a generation
		state      memberState
		rejoin     string // why a rejoin is due; "" when none
		coord      *conn
		owned      map[TopicPartition]bool // assigned by the group and not yet given up
		ownedGen   int32                   // the generation that assigned them
		committed  map[TopicPartition]int64
		polling    int // Polls in progress
		lastPoll   time.Time
		pollLapsed bool // left for max.poll.interval.ms: rejoin at the next Poll
		fatal      error
		connsDone  bool // closed: no more coordinator connections
	}
}

func newGroup(c *Consumer) *group {
	cfg := &c.cfg
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	g := &group{c: c, log: c.log.With("group", cfg.GroupID), id: cfg.GroupID,
		cooperative: true, autoCommit: cfg.EnableAutoCommit,
		sessionTimeout: ms(cfg.SessionTimeoutMs), rebalanceTimeout: ms(cfg.MaxPollIntervalMs), maxPoll: ms(cfg.MaxPollIntervalMs),
		heartbeatInterval: ms(cfg.HeartbeatIntervalMs), autoCommitInterval: ms(cfg.AutoCommitIntervalMs),
		retryBackoff: max(ms(cfg.RetryBackoffMs), time.Millisecond), requestTimeout: ms(cfg.RequestTimeoutMs),
		wake: make(chan struct{}, 1), assignedWake: make(chan struct{}, 1)}
	// The leader must answer within the session timeout; waiting for
	// metadata of a topic that does not come is bounded well below it.
	g.metadataWaitLimit = min(g.requestTimeout, g.sessionTimeout/3)
	if cfg.GroupInstanceID != "" {
		g.instanceID = &cfg.GroupInstanceID
	}
	for _, name := range cfg.PartitionAssignmentStrategy {
		a := assignors[name]
		g.protocols = append(g.protocols, a)
		// As in the Java client: the cooperative protocol only when every
		// assignor supports it, so members of an upgrading group agree.
		g.cooperative = g.cooperative && a.cooperative
	}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.mu.generation, g.mu.ownedGen = -1, -1
	g.mu.owned = map[TopicPartition]bool{}
	g.mu.committed = map[TopicPartition]int64{}
	return g
}

func (g *group) wakeup() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// Subscribe joins the consumer's group (group.id) to read topics, replacing
// any earlier subscription (a change rebalances the group). The group's
// assignor decides which partitions this consumer reads; listener, which
// may be nil, is told as partitions come and go. A consumer either
// subscribes or assigns partitions by hand (Assign), not both.
func (c *Consumer) Subscribe(topics []string, listener *RebalanceListener) error {
	if c.grp == nil {
		return ErrNoGroup
	}
	if len(topics) == 0 {
		return errors.New("client: Subscribe needs at least one topic")
	}
	for _, t := range topics {
		if err := validateTopicName(t); err != nil {
			return err
		}
	}
	topics = slices.Clone(topics)
	slices.Sort(topics)
	topics = slices.Compact(topics)
	c.mu.Lock()
	switch {
	case c.mu.closed:
		c.mu.Unlock()
		return ErrClosed
	case !c.mu.subscribed && len(c.mu.parts) > 0:
		c.mu.Unlock()
		return errors.New("client: Subscribe on a consumer with partitions assigned by hand")
	}
	c.mu.subscribed = true
	c.mu.Unlock()
	return c.grp.subscribe(topics, listener)
}

// validateTopicName applies Kafka's rules for topic names.
func validateTopicName(t string) error {
	if t == "" || t == "." || t == ".." || len(t) > 249 {
		return fmt.Errorf("client: topic name %q is not valid", t)
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("client: topic name %q is not valid", t)
		}
	}
	return nil
}

func (g *group) subscribe(topics []string, listener *RebalanceListener) error {
	g.c.cl.addTopics(topics...)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.mu.closed {
		return ErrClosed
	}
	if g.mu.started && !slices.Equal(g.mu.topics, topics) && g.mu.rejoin == "" {
		g.mu.rejoin = "the subscription changed"
	}
	g.mu.topics, g.mu.listener = topics, listener
	if !g.mu.started {
		// Started under mu, so that close, which sets closed under mu
		// before it waits, never waits while they start.
		g.mu.started = true
		g.mu.lastPoll = time.Now()
		g.wg.Go(g.run)
		g.wg.Go(g.heartbeat)
	}
	g.wakeup()
	return nil
}

// GroupMetadata reports the consumer's place in its group.
func (c *Consumer) GroupMetadata() ConsumerGroupMetadata {
	if c.grp == nil {
		return ConsumerGroupMetadata{GenerationID: -1}
	}
	g := c.grp
	g.mu.Lock()
	defer g.mu.Unlock()
	md := ConsumerGroupMetadata{GroupID: g.id, GenerationID: g.mu.generation, MemberID: g.mu.memberID}
	if g.instanceID != nil {
		md.GroupInstanceID = *g.instanceID
	}
	return md
}

// Assignment lists the partitions the consumer reads now, sorted: those its
// group assigned it, or those assigned by hand.
func (c *Consumer) Assignment() []TopicPartition {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]TopicPartition, 0, len(c.mu.parts))
	for tp := range c.mu.parts {
		out = append(out, tp)
	}
	slices.SortFunc(out, compareTP)
	return out
}

// CommitSync commits, for every partition the group assigned (or, before
// Subscribe, every partition assigned by hand), the position: the offset
// after the last record Poll returned. It waits for the answer, finding the
// coordinator again and retrying while it moves, until ctx ends.
func (c *Consumer) CommitSync(ctx context.Context) error {
	if err := c.groupUsable(); err != nil {
		return err
	}
	g := c.grp
	return g.commitFrom(ctx, func() map[TopicPartition]commitOffset {
		return c.groupPositions(g.commitParts(), false, nil)
	})
}

// CommitOffsets commits offsets for the consumer's group: for each
// partition, the next offset to read, as Kafka stores it. A consumer that
// has not subscribed commits as a simple client (no generation), as the Java
// client does with assigned partitions.
func (c *Consumer) CommitOffsets(ctx context.Context, offsets map[TopicPartition]int64) error {
	if err := c.groupUsable(); err != nil {
		return err
	}
	out := make(map[TopicPartition]commitOffset, len(offsets))
	for tp, o := range offsets {
		if o < 0 {
			return fmt.Errorf("client: commit of offset %d for %s", o, tp)
		}
		out[tp] = commitOffset{offset: o, epoch: -1}
	}
	return c.grp.commit(ctx, out)
}

func (c *Consumer) groupUsable() error {
	if c.grp == nil {
		return ErrNoGroup
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return ErrClosed
	}
	return nil
}

// pollStart and pollEnd bracket a Poll: max.poll.interval.ms counts the
// time between Polls, during which the application holds records.
func (g *group) pollStart() {
	g.mu.Lock()
	g.mu.polling++
	g.mu.lastPoll = time.Now()
	lapsed := g.mu.pollLapsed
	g.mu.pollLapsed = false
	g.mu.Unlock()
	if lapsed {
		g.wakeup()
	}
}

func (g *group) pollEnd() {
	g.mu.Lock()
	g.mu.polling--
	g.mu.lastPoll = time.Now()
	g.mu.Unlock()
}

// commitParts are the partitions whose positions CommitSync and auto-commit
// commit: those the group assigned, or, on a consumer that has not
// subscribed, those assigned by hand, as the Java consumer commits every
// assigned partition's position (SubscriptionState.allConsumed).
func (g *group) commitParts() []TopicPartition {
	if tps, ok := g.c.assignedList(); ok {
		return tps
	}
	return g.ownedList()
}

func (g *group) ownedList() []TopicPartition {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ownedLocked()
}

func (g *group) ownedLocked() []TopicPartition {
	out := make([]TopicPartition, 0, len(g.mu.owned))
	for tp := range g.mu.owned {
		out = append(out, tp)
	}
	slices.SortFunc(out, compareTP)
	return out
}

func (g *group) listener() *RebalanceListener {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.mu.listener == nil {
		return &RebalanceListener{}
	}
	return g.mu.listener
}

// requestRejoin asks for a rebalance, unless the generation it concerns
// (gen, or any when gen < 0) is already gone.
func (g *group) requestRejoin(gen int32, why string) {
	g.mu.Lock()
	if (gen < 0 || gen == g.mu.generation) && g.mu.rejoin == "" {
		g.mu.rejoin = why
	}
	g.mu.Unlock()
	g.wakeup()
}

// resetGeneration handles a broker's word that the member's generation
// (ILLEGAL_GENERATION) or membership (UNKNOWN_MEMBER_ID) is over: its
// partitions may be someone else's now, so their records stop at once and
// the run goroutine reports them lost and rejoins. Answers about a
// generation already left are ignored.
func (g *group) resetGeneration(gen int32, memberID string, dropMember bool, why error) {
	g.mu.Lock()
	if g.mu.generation != gen || g.mu.memberID != memberID {
		g.mu.Unlock()
		return
	}
	g.log.Info("group generation lost; rejoining", "generation", gen, "member", memberID, "reason", why)
	g.mu.generation, g.mu.state = -1, stateUnjoined
	if dropMember {
		g.mu.memberID = ""
	}
	if g.mu.rejoin == "" {
		g.mu.rejoin = why.Error()
	}
	owned := g.ownedLocked()
	g.c.groupPause(owned)
	g.mu.Unlock()
	g.wakeup()
}

// fail stops the member for good (FENCED_INSTANCE_ID, an authorization
// failure, a protocol the group cannot agree on): Poll reports err once and
// the partitions are given up as lost.
func (g *group) fail(err error) {
	g.mu.Lock()
	if g.mu.fatal != nil {
		g.mu.Unlock()
		return
	}
	g.log.Error("group membership failed", "err", err)
	g.mu.fatal = err
	g.mu.generation, g.mu.state = -1, stateUnjoined
	owned := g.ownedLocked()
	g.c.groupPause(owned)
	g.mu.Unlock()
	g.c.reportErr(fmt.Errorf("client: group %s: %w", g.id, err))
	g.wakeup()
}

// sleep waits d or until ctx ends, reporting whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// isCoordinatorErr reports errors after which the coordinator must be
// found again.
func isCoordinatorErr(err error) bool {
	var ce *ConnError
	return errors.Is(err, kerr.NotCoordinator) || errors.Is(err, kerr.CoordinatorNotAvailable) || errors.As(err, &ce)
}

// --- the coordinator ---------------------------------------------------

// coordinator returns the connection to the group's coordinator, finding
// it (FindCoordinator, key type 0) when unknown and retrying every
// retry.backoff.ms until ctx ends. It has a connection of its own, as in the
// Java client: a JoinGroup parked for a rebalance must not hold up fetches.
func (g *group) coordinator(ctx context.Context) (*conn, error) {
	for {
		g.mu.Lock()
		cn := g.mu.coord
		g.mu.Unlock()
		if cn != nil && !cn.dead() {
			return cn, nil
		}
		g.findMu.Lock()
		g.mu.Lock()
		cn = g.mu.coord
		g.mu.Unlock()
		if cn != nil && !cn.dead() {
			g.findMu.Unlock()
			return cn, nil
		}
		cn, err := g.findCoordinator(ctx)
		if err == nil {
			g.mu.Lock()
			old, done := g.mu.coord, g.mu.connsDone
			if done {
				// close has taken the connections while this one was
				// dialed: it waits for this one to end too.
				old, err = cn, ErrClosed
			} else {
				g.mu.coord = cn
			}
			g.mu.Unlock()
			if old != nil {
				old.close()
			}
			g.findMu.Unlock()
			if err != nil {
				return nil, err
			}
			return cn, nil
		}
		g.findMu.Unlock()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ke *kerr.Error
		if errors.As(err, &ke) && !ke.Retriable || errors.Is(err, ErrClosed) {
			return nil, err
		}
		g.log.Debug("finding the group coordinator", "err", err)
		g.c.cl.requestRefresh()
		if !sleep(ctx, g.retryBackoff) {
			return nil, ctx.Err()
		}
	}
}

func (g *group) findCoordinator(ctx context.Context) (*conn, error) {
	cn, err := g.c.cl.anyConn()
	if err != nil {
		return nil, err
	}
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKey, req.CoordinatorType = g.id, 0
	req.CoordinatorKeys = []string{g.id}
	r, err := cn.do(ctx, req, maxFindCoordinatorVersion, 0)
	if err != nil {
		return nil, err
	}
	resp := r.(*kmsg.FindCoordinatorResponse)
	code, node, host, port := resp.ErrorCode, resp.NodeID, resp.Host, resp.Port
	if resp.Version >= 4 {
		if len(resp.Coordinators) != 1 || resp.Coordinators[0].Key != g.id {
			return nil, fmt.Errorf("FindCoordinator: %d coordinators in the answer for one group", len(resp.Coordinators))
		}
		k := resp.Coordinators[0]
		code, node, host, port = k.ErrorCode, k.NodeID, k.Host, k.Port
	}
	if err := kerr.ErrorForCode(code); err != nil {
		return nil, fmt.Errorf("FindCoordinator: %w", err)
	}
	addr := net.JoinHostPort(host, strconv.Itoa(int(port)))
	g.log.Debug("group coordinator", "node", node, "addr", addr)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.mu.connsDone {
		return nil, ErrClosed
	}
	return dialConn(addr, node, &g.c.cl.cfg.conn, &g.connWG), nil
}

// coordinatorFailed forgets a coordinator connection that failed or
// answered NOT_COORDINATOR; the next request finds the coordinator again.
func (g *group) coordinatorFailed(cn *conn) {
	g.mu.Lock()
	if g.mu.coord == cn {
		g.mu.coord = nil
	}
	g.mu.Unlock()
	cn.close()
}

// --- the run goroutine -------------------------------------------------

func (g *group) run() {
	for {
		if !g.waitRunnable() {
			return
		}
		err := g.rebalance()
		if g.ctx.Err() != nil {
			return
		}
		if err != nil {
			g.log.Debug("rebalance", "err", err)
			if !sleep(g.ctx, g.retryBackoff) {
				return
			}
			continue
		}
		g.stable()
	}
}

// waitRunnable waits while the member may not join: after a fatal error
// (until close) or after max.poll.interval.ms lapsed (until the next Poll).
// Partitions held then are given up as lost first.
func (g *group) waitRunnable() bool {
	for {
		g.mu.Lock()
		blocked := g.mu.fatal != nil || g.mu.pollLapsed
		g.mu.Unlock()
		if !blocked {
			return g.ctx.Err() == nil
		}
		g.giveUp(g.ctx, g.ownedList(), true, false)
		select {
		case <-g.wake:
		case <-g.ctx.Done():
			return false
		}
	}
}

// rebalance is one pass of the protocol: give up what must go before
// joining, JoinGroup (the leader computes the assignment), SyncGroup, and
// take on the result.
func (g *group) rebalance() error {
	g.watched = nil
	g.prepare()
	cn, join, err := g.join()
	if err != nil {
		return err
	}
	assigned, err := g.sync(cn, join)
	if err != nil {
		return err
	}
	g.apply(join.Generation, assigned)
	return nil
}

// prepare gives up partitions before JoinGroup: all of them as lost when
// the generation is gone; all of them, revoked, under the eager protocol;
// under the cooperative protocol only those of topics no longer subscribed.
func (g *group) prepare() {
	g.mu.Lock()
	lost := g.mu.generation < 0
	owned := g.ownedLocked()
	topics := g.mu.topics
	g.mu.Unlock()
	switch {
	case len(owned) == 0:
	case lost:
		g.giveUp(g.ctx, owned, true, false)
	case !g.cooperative:
		g.giveUp(g.ctx, owned, false, g.autoCommit)
	default:
		var gone []TopicPartition
		for _, tp := range owned {
			if !slices.Contains(topics, tp.Topic) {
				gone = append(gone, tp)
			}
		}
		g.giveUp(g.ctx, gone, false, g.autoCommit)
	}
}

// giveUp takes partitions away: their records stop at once; when revoked
// (not lost) and commit is set, their positions as of the latest Poll are
// committed before the listener hears of it; then they go.
func (g *group) giveUp(ctx context.Context, tps []TopicPartition, lost, commit bool) {
	if len(tps) == 0 {
		return
	}
	g.c.groupPause(tps)
	l := g.listener()
	if lost {
		g.log.Info("partitions lost", "partitions", len(tps))
		switch {
		case l.OnPartitionsLost != nil:
			l.OnPartitionsLost(ctx, tps)
		case l.OnPartitionsRevoked != nil:
			l.OnPartitionsRevoked(ctx, tps)
		}
	} else {
		g.log.Debug("revoking partitions", "partitions", len(tps))
		if commit {
			cctx, cancel := context.WithTimeout(ctx, g.requestTimeout)
			if err := g.commitFrom(cctx, func() map[TopicPartition]commitOffset { return g.c.groupPositions(tps, true, nil) }); err != nil {
				g.log.Warn("committing revoked partitions", "err", err)
			}
			cancel()
		}
		if l.OnPartitionsRevoked != nil {
			l.OnPartitionsRevoked(ctx, tps)
		}
	}
	g.c.groupRemove(tps)
	g.mu.Lock()
	for _, tp := range tps {
		delete(g.mu.owned, tp)
		delete(g.mu.committed, tp)
	}
	g.mu.Unlock()
}

// subscriptionMetadata is this member's ConsumerProtocolSubscription for
// one assignor (v3, as the Java client sends it).
func (g *group) subscriptionMetadata(a *assignor, topics []string, owned []TopicPartition, gen int32) []byte {
	// The generation qualifies owned partitions; without any it says
	// nothing, and leaving it out (-1) lets a restarted static member's
	// subscription match its predecessor's byte for byte, which some
	// coordinators require to skip the rebalance (KIP-345).
	if len(owned) == 0 {
		gen = -1
	}
	md := kmsg.NewConsumerMemberMetadata()
	md.Version = 3
	md.Topics = topics
	md.Generation = gen
	if a.userData != nil {
		md.UserData = a.userData(gen)
	}
	for _, tp := range owned {
		if n := len(md.OwnedPartitions); n == 0 || md.OwnedPartitions[n-1].Topic != tp.Topic {
			op := kmsg.NewConsumerMemberMetadataOwnedPartition()
			op.Topic = tp.Topic
			md.OwnedPartitions = append(md.OwnedPartitions, op)
		}
		last := &md.OwnedPartitions[len(md.OwnedPartitions)-1]
		last.Partitions = append(last.Partitions, tp.Partition)
	}
	return md.AppendTo(nil)
}

// join sends JoinGroup until the member is in a generation: with an empty
// member id first, then (v4+) with the one the coordinator requires
// (MEMBER_ID_REQUIRED). It waits up to the rebalance timeout for the
// others.
func (g *group) join() (*conn, *kmsg.JoinGroupResponse, error) {
	for {
		cn, err := g.coordinator(g.ctx)
		if err != nil {
			g.failIfFatal(err)
			return nil, nil, err
		}
		g.mu.Lock()
		memberID, topics, why := g.mu.memberID, g.mu.topics, g.mu.rejoin
		var owned []TopicPartition
		if g.cooperative {
			owned = g.ownedLocked()
		}
		ownedGen, prev := g.mu.ownedGen, g.mu.state
		g.mu.state, g.mu.rejoin = stateJoining, ""
		g.mu.Unlock()
		if why == "" {
			why = "joining"
		}

		req := kmsg.NewPtrJoinGroupRequest()
		req.Group = g.id
		req.SessionTimeoutMillis = int32(g.sessionTimeout.Milliseconds())
		req.RebalanceTimeoutMillis = int32(g.rebalanceTimeout.Milliseconds())
		req.MemberID = memberID
		req.InstanceID = g.instanceID
		req.ProtocolType = consumerProtocolType
		req.Reason = kmsg.StringPtr(why)
		for _, a := range g.protocols {
			p := kmsg.NewJoinGroupRequestProtocol()
			p.Name = a.name
			p.Metadata = g.subscriptionMetadata(a, topics, owned, ownedGen)
			req.Protocols = append(req.Protocols, p)
		}
		g.log.Debug("JoinGroup", "member", memberID, "reason", why)
		r, err := cn.do(g.ctx, req, maxJoinGroupVersion, g.rebalanceTimeout+5*time.Second)
		if err != nil {
			g.setState(stateJoining, prev)
			// The request may still be parked at the coordinator: its
			// connection is of no use until it answers.
			g.coordinatorFailed(cn)
			if g.ctx.Err() != nil || !isCoordinatorErr(err) {
				g.failIfFatal(err)
				return nil, nil, err
			}
			if !sleep(g.ctx, g.retryBackoff) {
				return nil, nil, g.ctx.Err()
			}
			continue
		}
		resp := r.(*kmsg.JoinGroupResponse)
		err = kerr.ErrorForCode(resp.ErrorCode)
		g.mu.Lock()
		if g.mu.state == stateJoining {
			g.mu.state = prev // until told otherwise below
		}
		switch {
		case err == nil:
			g.mu.memberID, g.mu.generation, g.mu.state = resp.MemberID, resp.Generation, stateSyncing
			g.mu.Unlock()
			g.log.Debug("joined", "generation", resp.Generation, "member", resp.MemberID, "leader", resp.LeaderID == resp.MemberID)
			return cn, resp, nil
		case errors.Is(err, kerr.MemberIDRequired):
			g.mu.memberID = resp.MemberID
			g.mu.Unlock()
			continue
		case errors.Is(err, kerr.UnknownMemberID):
			// The coordinator has forgotten the member: what it owns
			// may be another's by now. Back to the run loop, which
			// gives it up as lost before joining anew.
			gen := g.mu.generation
			g.mu.Unlock()
			g.resetGeneration(gen, memberID, true, fmt.Errorf("JoinGroup: %w", err))
			g.mu.Lock()
			g.mu.memberID, g.mu.generation, g.mu.state = "", -1, stateUnjoined
			g.mu.Unlock()
			return nil, nil, err
		}
		g.mu.Unlock()
		switch {
		case isCoordinatorErr(err):
			g.coordinatorFailed(cn)
		case errors.Is(err, kerr.CoordinatorLoadInProgress), errors.Is(err, kerr.RebalanceInProgress):
		default:
			// FENCED_INSTANCE_ID, INCONSISTENT_GROUP_PROTOCOL,
			// INVALID_SESSION_TIMEOUT, GROUP_AUTHORIZATION_FAILED,
			// GROUP_MAX_SIZE_REACHED, ...: joining again will not help.
			g.fail(fmt.Errorf("JoinGroup: %w", err))
			return nil, nil, err
		}
		if !sleep(g.ctx, g.retryBackoff) {
			return nil, nil, g.ctx.Err()
		}
	}
}

// failIfFatal stops the member on an error that retrying cannot cure.
func (g *group) failIfFatal(err error) {
	var ke *kerr.Error
	if errors.Is(err, ErrUnsupportedVersion) || errors.As(err, &ke) && !ke.Retriable {
		g.fail(err)
	}
}

func (g *group) setState(from, to memberState) {
	g.mu.Lock()
	if g.mu.state == from {
		g.mu.state = to
	}
	g.mu.Unlock()
}

// sync sends SyncGroup, with the assignment when this member leads, and
// returns this member's partitions.
func (g *group) sync(cn *conn, join *kmsg.JoinGroupResponse) ([]TopicPartition, error) {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Group, req.Generation, req.MemberID, req.InstanceID = g.id, join.Generation, join.MemberID, g.instanceID
	req.ProtocolType = kmsg.StringPtr(consumerProtocolType)
	req.Protocol = join.Protocol
	if join.LeaderID == join.MemberID && !join.SkipAssignment {
		// (SkipAssignment, KIP-814: a static leader rejoined without a
		// rebalance; the coordinator keeps the current assignment.)
		plan, err := g.lead(join)
		if err != nil {
			g.fail(err)
			return nil, err
		}
		for _, m := range join.Members {
			a := kmsg.NewConsumerMemberAssignment()
			for _, tp := range plan[m.MemberID] {
				if n := len(a.Topics); n == 0 || a.Topics[n-1].Topic != tp.Topic {
					t := kmsg.NewConsumerMemberAssignmentTopic()
					t.Topic = tp.Topic
					a.Topics = append(a.Topics, t)
				}
				last := &a.Topics[len(a.Topics)-1]
				last.Partitions = append(last.Partitions, tp.Partition)
			}
			sa := kmsg.NewSyncGroupRequestGroupAssignment()
			sa.MemberID, sa.MemberAssignment = m.MemberID, a.AppendTo(nil)
			req.GroupAssignment = append(req.GroupAssignment, sa)
		}
	}
	r, err := cn.do(g.ctx, req, maxSyncGroupVersion, g.rebalanceTimeout+5*time.Second)
	if err != nil {
		g.coordinatorFailed(cn)
		g.requestRejoin(join.Generation, "SyncGroup failed")
		g.failIfFatal(err)
		return nil, err
	}
	resp := r.(*kmsg.SyncGroupResponse)
	switch err := kerr.ErrorForCode(resp.ErrorCode); {
	case err == nil:
	case errors.Is(err, kerr.RebalanceInProgress):
		g.requestRejoin(join.Generation, "the group rebalanced during SyncGroup")
		return nil, err
	case errors.Is(err, kerr.IllegalGeneration):
		g.resetGeneration(join.Generation, join.MemberID, false, err)
		return nil, err
	case errors.Is(err, kerr.UnknownMemberID):
		g.resetGeneration(join.Generation, join.MemberID, true, err)
		return nil, err
	case isCoordinatorErr(err):
		g.coordinatorFailed(cn)
		g.requestRejoin(join.Generation, "the coordinator moved during SyncGroup")
		return nil, err
	default:
		g.fail(fmt.Errorf("SyncGroup: %w", err))
		return nil, err
	}
	var a kmsg.ConsumerMemberAssignment
	var out []TopicPartition
	if len(resp.MemberAssignment) > 0 {
		if err := a.ReadFrom(resp.MemberAssignment); err != nil {
			err = fmt.Errorf("SyncGroup: undecodable assignment: %w", err)
			g.fail(err)
			return nil, err
		}
	}
	for _, t := range a.Topics {
		for _, p := range t.Partitions {
			out = append(out, TopicPartition{t.Topic, p})
		}
	}
	slices.SortFunc(out, compareTP)
	out = slices.Compact(out)
	g.mu.Lock()
	if g.mu.generation == join.Generation && g.mu.state == stateSyncing {
		g.mu.state = stateStable
	}
	g.mu.Unlock()
	return out, nil
}

// lead computes the group's assignment with the protocol the coordinator
// chose, from every member's subscription and the partition counts of
// their topics.
func (g *group) lead(join *kmsg.JoinGroupResponse) (assignment, error) {
	name := ""
	if join.Protocol != nil {
		name = *join.Protocol
	}
	a := assignors[name]
	if a == nil || !slices.Contains(g.protocols, a) {
		return nil, fmt.Errorf("the coordinator chose assignor %q, which this member did not offer", name)
	}
	members := make([]assignMember, 0, len(join.Members))
	var topics []string
	for _, m := range join.Members {
		am := assignMember{id: m.MemberID, generation: -1}
		if m.InstanceID != nil {
			am.instanceID = *m.InstanceID
		}
		var md kmsg.ConsumerMemberMetadata
		if err := md.ReadFrom(m.ProtocolMetadata); err != nil {
			// A member we cannot read gets nothing rather than stopping
			// the whole group.
			g.log.Warn("undecodable subscription; the member gets no partitions", "member", m.MemberID, "err", err)
		} else {
			am.topics = md.Topics
			for _, op := range md.OwnedPartitions {
				for _, p := range op.Partitions {
					am.owned = append(am.owned, TopicPartition{op.Topic, p})
				}
			}
			switch {
			case md.Version >= 2:
				am.generation = md.Generation
			case a.userData != nil && len(md.UserData) == 4:
				am.generation = int32(binary.BigEndian.Uint32(md.UserData))
			}
			topics = append(topics, md.Topics...)
		}
		members = append(members, am)
	}
	slices.Sort(topics)
	topics = slices.Compact(topics)
	counts := g.partitionCounts(topics)
	g.watched = counts
	plan := a.assign(members, counts)
	g.log.Debug("assigned", "assignor", name, "members", len(members), "topics", len(topics))
	return plan, nil
}

// partitionCounts waits (briefly) until the metadata knows every topic,
// then returns their partition counts; a topic that does not exist counts
// zero.
func (g *group) partitionCounts(topics []string) map[string]int32 {
	g.c.cl.addTopics(topics...)
	t := time.NewTimer(g.metadataWaitLimit)
	defer t.Stop()
	for {
		ch := g.c.cl.changedCh()
		counts, missing := countsOf(g.c.cl.snapshot(), topics)
		if !missing {
			return counts
		}
		select {
		case <-ch:
		case <-t.C:
			return counts
		case <-g.ctx.Done():
			return counts
		}
	}
}

func countsOf(md *metadata, topics []string) (map[string]int32, bool) {
	counts := make(map[string]int32, len(topics))
	missing := false
	for _, topic := range topics {
		var tm *topicMeta
		if md != nil {
			tm = md.topics[topic]
		}
		switch {
		case tm == nil:
			missing = true
		case tm.err == nil:
			counts[topic] = int32(len(tm.parts))
		default:
			counts[topic] = 0
		}
	}
	return counts, missing
}

// apply takes on a generation's assignment: under the cooperative protocol
// it revokes what the member owned and no longer has, and asks for the
// rebalance that hands those partitions to their new owners; it adds the
// new partitions (paused), looks up their committed offsets, runs the
// listener, and only then lets Poll return their records.
func (g *group) apply(gen int32, assigned []TopicPartition) {
	owned := g.ownedList()
	var revoked, added []TopicPartition
	for _, tp := range owned {
		if _, ok := slices.BinarySearchFunc(assigned, tp, compareTP); !ok {
			revoked = append(revoked, tp)
		}
	}
	for _, tp := range assigned {
		if _, ok := slices.BinarySearchFunc(owned, tp, compareTP); !ok {
			added = append(added, tp)
		}
	}
	g.log.Info("assignment", "generation", gen, "partitions", len(assigned), "added", len(added), "revoked", len(revoked))
	if len(revoked) > 0 {
		g.giveUp(g.ctx, revoked, false, g.autoCommit)
		g.requestRejoin(gen, "partitions were revoked and must be reassigned")
	}
	g.mu.Lock()
	g.mu.ownedGen = gen
	for _, tp := range added {
		g.mu.owned[tp] = true
	}
	topics := g.mu.topics
	g.mu.Unlock()
	if g.watched == nil { // not the leader: watch the own subscription
		g.watched, _ = countsOf(g.c.cl.snapshot(), topics)
	}
	g.c.groupAdd(added)
	g.fetchCommitted(gen)
	if l := g.listener(); l.OnPartitionsAssigned != nil {
		l.OnPartitionsAssigned(g.ctx, added)
	}
	g.mu.Lock()
	if g.mu.generation == gen {
		g.c.groupResume(g.ownedLocked())
	}
	g.mu.Unlock()
}

// lookUpAssigned has the partitions assigned by hand (Assign) that have no
// position start at the group's committed offsets, on the assigned
// goroutine, which it starts the first time.
func (g *group) lookUpAssigned() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.mu.closed {
		return
	}
	if !g.mu.assigned {
		// Started under mu, as run is (subscribe): close sets closed
		// under mu before it waits.
		g.mu.assigned = true
		g.wg.Go(g.assignedRun)
		if g.autoCommit {
			g.wg.Go(g.assignedAutoCommit)
		}
	}
	select {
	case g.assignedWake <- struct{}{}:
	default:
	}
}

// assignedRun sets the position of every partition assigned by hand that
// has none to its committed offset (OffsetFetch), or else per
// auto.offset.reset, as the Java consumer with a group.id does for assign()ed
// partitions (updateFetchPositions: refreshCommittedOffsetsIfNeeded). It
// looks up whatever lacks a position each time Assign adds partitions,
// retrying every retry.backoff.ms until it succeeds, until the group fails
// for good (Poll has reported why) or the consumer closes.
func (g *group) assignedRun() {
	for {
		select {
		case <-g.assignedWake:
		case <-g.ctx.Done():
			return
		}
		ok := g.fetchPositions("OffsetFetch for assigned partitions", func() map[TopicPartition]uint64 {
			g.mu.Lock()
			fatal := g.mu.fatal
			g.mu.Unlock()
			if fatal != nil {
				return nil
			}
			return g.c.assignedNeedPositions()
		})
		if !ok {
			return
		}
	}
}

// assignedAutoCommit commits the positions of the partitions assigned by
// hand as of the latest Poll every auto.commit.interval.ms
// (enable.auto.commit), outside any generation, as Java's consumer does.
// It runs beside assignedRun, so that a committed offset being looked up
// again and again (UNSTABLE_OFFSET_COMMIT while a transaction is pending)
// does not hold up the commits of the other partitions, and it stops once
// the consumer subscribes: the group's own loop commits then.
func (g *group) assignedAutoCommit() {
	t := time.NewTicker(g.autoCommitInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-g.ctx.Done():
			return
		}
		if _, ok := g.c.assignedList(); !ok {
			return
		}
		g.commitAuto()
	}
}

// fetchCommitted sets the position of every owned partition that has none
// to its committed offset (OffsetFetch, waiting for pending transactional
// commits), or else per auto.offset.reset. It retries until it succeeds or
// the generation is over.
func (g *group) fetchCommitted(gen int32) {
	g.fetchPositions("OffsetFetch", func() map[TopicPartition]uint64 {
		g.mu.Lock()
		current := g.mu.generation == gen
		owned := g.ownedLocked()
		g.mu.Unlock()
		if !current || g.ctx.Err() != nil {
			return nil
		}
		return g.c.groupNeedPositions(owned)
	})
}

// fetchPositions sets the positions of the partitions need returns to
// their committed offsets (offsetFetch), asking again every
// retry.backoff.ms until a lookup succeeds or need returns none (nothing
// lacks a position, or the caller must stop). It reports false when the
// group closed meanwhile.
func (g *group) fetchPositions(what string, need func() map[TopicPartition]uint64) bool {
	for {
		n := need()
		if len(n) == 0 {
			return true
		}
		err := g.offsetFetch(n)
		if err == nil {
			return true
		}
		g.log.Debug(what, "err", err)
		if !sleep(g.ctx, g.retryBackoff) {
			return false
		}
	}
}

func (g *group) offsetFetch(need map[TopicPartition]uint64) error {
	cn, err := g.coordinator(g.ctx)
	if err != nil {
		return err
	}
	tps := make([]TopicPartition, 0, len(need))
	for tp := range need {
		tps = append(tps, tp)
	}
	slices.SortFunc(tps, compareTP)
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group, req.RequireStable = g.id, true
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = g.id
	for _, tp := range tps {
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != tp.Topic {
			t := kmsg.NewOffsetFetchRequestTopic()
			t.Topic = tp.Topic
			req.Topics = append(req.Topics, t)
			gt := kmsg.NewOffsetFetchRequestGroupTopic()
			gt.Topic = tp.Topic
			rg.Topics = append(rg.Topics, gt)
		}
		req.Topics[len(req.Topics)-1].Partitions = append(req.Topics[len(req.Topics)-1].Partitions, tp.Partition)
		rg.Topics[len(rg.Topics)-1].Partitions = append(rg.Topics[len(rg.Topics)-1].Partitions, tp.Partition)
	}
	req.Groups = []kmsg.OffsetFetchRequestGroup{rg}
	r, err := cn.do(g.ctx, req, maxOffsetFetchVersion, 0)
	if err != nil {
		if isCoordinatorErr(err) {
			g.coordinatorFailed(cn)
		}
		return err
	}
	resp := r.(*kmsg.OffsetFetchResponse)
	type committed struct {
		offset int64
		epoch  int32
		err    error
	}
	answers := map[TopicPartition]committed{}
	code := resp.ErrorCode
	if resp.Version >= 8 {
		if len(resp.Groups) != 1 {
			return fmt.Errorf("OffsetFetch: %d groups in the answer for one", len(resp.Groups))
		}
		code = resp.Groups[0].ErrorCode
		for _, t := range resp.Groups[0].Topics {
			for _, p := range t.Partitions {
				answers[TopicPartition{t.Topic, p.Partition}] = committed{p.Offset, p.LeaderEpoch, kerr.ErrorForCode(p.ErrorCode)}
			}
		}
	} else {
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				answers[TopicPartition{t.Topic, p.Partition}] = committed{p.Offset, p.LeaderEpoch, kerr.ErrorForCode(p.ErrorCode)}
			}
		}
	}
	if err := kerr.ErrorForCode(code); errors.Is(err, kerr.GroupIDNotFound) {
		// A group that does not exist has nothing committed. Kafka
		// answers each partition with -1 (OffsetMetadataManager's
		// fetchOffsets); franz-go's kfake answers the group so.
		for _, tp := range tps {
			answers[tp] = committed{offset: -1, epoch: -1}
		}
	} else if err != nil {
		switch {
		case isCoordinatorErr(err):
			g.coordinatorFailed(cn)
		case isRetriable(err):
		default:
			g.fail(fmt.Errorf("OffsetFetch: %w", err))
		}
		return fmt.Errorf("OffsetFetch: %w", err)
	}
	var retry error
	offsets := map[TopicPartition]commitOffset{}
	for _, tp := range tps {
		a, ok := answers[tp]
		switch {
		case !ok:
			retry = fmt.Errorf("OffsetFetch: no answer for %s", tp)
		case a.err != nil && isRetriable(a.err):
			retry = fmt.Errorf("OffsetFetch %s: %w", tp, a.err)
		case a.err != nil:
			g.c.reportErr(fmt.Errorf("client: committed offset of %s: %w", tp, a.err))
			offsets[tp] = commitOffset{offset: -1, epoch: -1}
		default:
			offsets[tp] = commitOffset{offset: a.offset, epoch: a.epoch}
		}
	}
	g.c.groupSetPositions(need, offsets)
	return retry
}

// stable waits, auto-committing every auto.commit.interval.ms, until a
// rebalance is due: asked for by a heartbeat, a commit, the subscription,
// or a change in the partition count of a topic the assignment was made
// from.
func (g *group) stable() {
	var tick <-chan time.Time
	if g.autoCommit {
		t := time.NewTicker(g.autoCommitInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		mdCh := g.c.cl.changedCh()
		g.mu.Lock()
		done := g.mu.rejoin != "" || g.mu.fatal != nil || g.mu.pollLapsed || g.mu.generation < 0
		gen := g.mu.generation
		g.mu.Unlock()
		if done || g.ctx.Err() != nil {
			return
		}
		if topic, changed := g.metadataChanged(); changed {
			g.requestRejoin(gen, fmt.Sprintf("the partitions of topic %s changed", topic))
			continue
		}
		select {
		case <-g.wake:
		case <-mdCh:
		case <-tick:
			g.commitAuto()
		case <-g.ctx.Done():
			return
		}
	}
}

func (g *group) metadataChanged() (string, bool) {
	md := g.c.cl.snapshot()
	if md == nil {
		return "", false
	}
	for topic, n := range g.watched {
		tm := md.topics[topic]
		if tm == nil {
			continue
		}
		now := int32(0)
		if tm.err == nil {
			now = int32(len(tm.parts))
		}
		if now != n {
			return topic, true
		}
	}
	return "", false
}

// commitAuto commits the positions of owned partitions (or those assigned
// by hand, commitParts) as of the latest Poll (enable.auto.commit): the
// records the application has had and come back for more after, so none is
// counted consumed before it is handled.
func (g *group) commitAuto() {
	ctx, cancel := context.WithTimeout(g.ctx, g.requestTimeout)
	defer cancel()
	err := g.commitFrom(ctx, func() map[TopicPartition]commitOffset {
		tps := g.commitParts()
		g.mu.Lock()
		committed := maps.Clone(g.mu.committed)
		g.mu.Unlock()
		return g.c.groupPositions(tps, true, committed)
	})
	if err != nil && g.ctx.Err() == nil {
		g.log.Warn("auto-commit failed", "err", err)
	}
}

// --- commits -----------------------------------------------------------

// commit sends OffsetCommit with the member's generation and id, retrying
// (after finding the coordinator again when it moved) until ctx ends. A
// generation the group has left fails it with ErrCommitFailed and makes the
// member rejoin.
func (g *group) commit(ctx context.Context, offsets map[TopicPartition]commitOffset) error {
	return g.commitFrom(ctx, func() map[TopicPartition]commitOffset { return offsets })
}

// commitFrom is commit of the offsets that offsets returns, called once it
// is this commit's turn: offsets read from positions are then read after
// every earlier commit has been answered (and has moved what auto-commit
// may commit, groupCommitted), never before one that commits later
// offsets.
func (g *group) commitFrom(ctx context.Context, offsetsFn func() map[TopicPartition]commitOffset) error {
	g.commitMu.Lock()
	defer g.commitMu.Unlock()
	polls := g.c.groupPolls() // before the offsets: a Poll after it wins
	offsets := offsetsFn()
	if len(offsets) == 0 {
		return nil
	}
	tps := make([]TopicPartition, 0, len(offsets))
	for tp := range offsets {
		tps = append(tps, tp)
	}
	slices.SortFunc(tps, compareTP)
	for {
		g.mu.Lock()
		memberID, gen, state, started := g.mu.memberID, g.mu.generation, g.mu.state, g.mu.started
		g.mu.Unlock()
		if started {
			switch {
			case gen < 0:
				return fmt.Errorf("%w: %w", ErrCommitFailed, kerr.UnknownMemberID)
			case state != stateStable:
				return fmt.Errorf("%w: %w", ErrCommitFailed, kerr.RebalanceInProgress)
			}
		} else {
			memberID, gen = "", -1 // a simple commit, outside any generation
		}
		cn, err := g.coordinator(ctx)
		if err != nil {
			return err
		}
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.Generation, req.MemberID, req.InstanceID = g.id, gen, memberID, g.instanceID
		for _, tp := range tps {
			if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != tp.Topic {
				t := kmsg.NewOffsetCommitRequestTopic()
				t.Topic = tp.Topic
				req.Topics = append(req.Topics, t)
			}
			p := kmsg.NewOffsetCommitRequestTopicPartition()
			p.Partition, p.Offset, p.LeaderEpoch = tp.Partition, offsets[tp].offset, offsets[tp].epoch
			p.Metadata = kmsg.StringPtr("")
			t := &req.Topics[len(req.Topics)-1]
			t.Partitions = append(t.Partitions, p)
		}
		r, err := cn.do(ctx, req, maxOffsetCommitVersion, 0)
		if err == nil {
			err = g.commitAnswer(r.(*kmsg.OffsetCommitResponse), offsets, polls, gen, memberID)
			if err == nil {
				return nil
			}
		}
		switch {
		case ctx.Err() != nil:
			return fmt.Errorf("client: commit: %w (last error: %w)", ctx.Err(), err)
		case isCoordinatorErr(err):
			g.coordinatorFailed(cn)
		case errors.Is(err, kerr.CoordinatorLoadInProgress), errors.Is(err, kerr.RequestTimedOut):
		default:
			return err
		}
		g.log.Debug("commit will be retried", "err", err)
		if !sleep(ctx, g.retryBackoff) {
			return fmt.Errorf("client: commit: %w (last error: %w)", ctx.Err(), err)
		}
	}
}

// commitAnswer records what was committed and acts on the errors: a lost
// generation or membership rejoins, a fenced static member stops.
func (g *group) commitAnswer(resp *kmsg.OffsetCommitResponse, offsets map[TopicPartition]commitOffset, polls uint64, gen int32, memberID string) error {
	var first error
	done := make(map[TopicPartition]commitOffset, len(offsets))
	g.mu.Lock()
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			tp := TopicPartition{t.Topic, p.Partition}
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				if first == nil {
					first = fmt.Errorf("OffsetCommit %s: %w", tp, err)
				}
				continue
			}
			if o, ok := offsets[tp]; ok {
				g.mu.committed[tp] = o.offset
				done[tp] = o
			}
		}
	}
	g.mu.Unlock()
	g.c.groupCommitted(done, polls)
	switch {
	case first == nil:
		return nil
	case errors.Is(first, kerr.IllegalGeneration):
		g.resetGeneration(gen, memberID, false, first)
	case errors.Is(first, kerr.UnknownMemberID):
		g.resetGeneration(gen, memberID, true, first)
	case errors.Is(first, kerr.RebalanceInProgress):
		g.requestRejoin(gen, "the group is rebalancing")
	case errors.Is(first, kerr.FencedInstanceID):
		g.fail(first)
		return first
	default:
		return first
	}
	return fmt.Errorf("%w: %w", ErrCommitFailed, first)
}

// --- heartbeats --------------------------------------------------------

// heartbeat sends a Heartbeat every heartbeat.interval.ms while the member
// is stable, so the coordinator keeps it in the group while the application
// works, and leaves the group when the application has not polled for
// max.poll.interval.ms (it is stuck, and its partitions are better read by
// another member).
func (g *group) heartbeat() {
	t := time.NewTimer(g.heartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-t.C:
		}
		next := g.heartbeatInterval
		g.mu.Lock()
		state, memberID, gen := g.mu.state, g.mu.memberID, g.mu.generation
		lapsed := g.mu.polling == 0 && time.Since(g.mu.lastPoll) > g.maxPoll
		g.mu.Unlock()
		switch {
		case state != stateStable || gen < 0:
		case lapsed:
			g.pollLapsed(memberID, gen)
		default:
			if !g.sendHeartbeat(memberID, gen) {
				next = g.retryBackoff
			}
		}
		t.Reset(next)
	}
}

func (g *group) sendHeartbeat(memberID string, gen int32) bool {
	cn, err := g.coordinator(g.ctx)
	if err != nil {
		g.failIfFatal(err)
		return false
	}
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.Generation, req.MemberID, req.InstanceID = g.id, gen, memberID, g.instanceID
	r, err := cn.do(g.ctx, req, maxHeartbeatVersion, 0)
	if err == nil {
		err = kerr.ErrorForCode(r.(*kmsg.HeartbeatResponse).ErrorCode)
	}
	switch {
	case err == nil:
		return true
	case g.ctx.Err() != nil:
	case errors.Is(err, kerr.RebalanceInProgress):
		g.requestRejoin(gen, "the group is rebalancing")
		return true
	case errors.Is(err, kerr.IllegalGeneration):
		g.resetGeneration(gen, memberID, false, fmt.Errorf("Heartbeat: %w", err))
	case errors.Is(err, kerr.UnknownMemberID):
		g.resetGeneration(gen, memberID, true, fmt.Errorf("Heartbeat: %w", err))
	case isCoordinatorErr(err):
		g.coordinatorFailed(cn)
	case isRetriable(err):
	default:
		g.fail(fmt.Errorf("Heartbeat: %w", err))
	}
	g.log.Debug("heartbeat", "err", err)
	return false
}

// pollLapsed handles max.poll.interval.ms passing without a Poll: as in the
// Java client, a dynamic member leaves the group (a static one lets its
// session lapse), and the member joins again at the next Poll.
func (g *group) pollLapsed(memberID string, gen int32) {
	g.log.Warn("max.poll.interval.ms passed without a Poll; leaving the group until the next Poll", "generation", gen)
	g.mu.Lock()
	if g.mu.generation != gen || g.mu.memberID != memberID {
		g.mu.Unlock()
		return
	}
	g.mu.generation, g.mu.state, g.mu.memberID, g.mu.pollLapsed = -1, stateUnjoined, "", true
	owned := g.ownedLocked()
	g.c.groupPause(owned)
	g.mu.Unlock()
	g.wakeup()
	if g.instanceID == nil {
		ctx, cancel := context.WithTimeout(g.ctx, g.requestTimeout)
		g.leaveGroup(ctx, memberID, "max.poll.interval.ms passed without a Poll")
		cancel()
	}
}

// leaveGroup tells the coordinator the member is going, so the group
// rebalances now rather than after session.timeout.ms.
func (g *group) leaveGroup(ctx context.Context, memberID, why string) {
	if memberID == "" {
		return
	}
	cn, err := g.coordinator(ctx)
	if err != nil {
		g.log.Debug("LeaveGroup: no coordinator", "err", err)
		return
	}
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group, req.MemberID = g.id, memberID
	m := kmsg.NewLeaveGroupRequestMember()
	m.MemberID, m.Reason = memberID, kmsg.StringPtr(why)
	req.Members = []kmsg.LeaveGroupRequestMember{m}
	r, err := cn.do(ctx, req, maxLeaveGroupVersion, 0)
	if err == nil {
		resp := r.(*kmsg.LeaveGroupResponse)
		err = kerr.ErrorForCode(resp.ErrorCode)
		for _, m := range resp.Members {
			if err == nil {
				err = kerr.ErrorForCode(m.ErrorCode)
			}
		}
	}
	if err != nil {
		g.log.Debug("LeaveGroup", "err", err)
	}
}

// close ends the membership when the consumer closes: the run and heartbeat
// goroutines stop (a listener call in progress finishes first); then, within
// request.timeout.ms, the positions of owned partitions are committed
// (enable.auto.commit), the listener hears they are revoked, and a dynamic
// member leaves the group. A static member does not leave: if it comes back
// within session.timeout.ms it gets its partitions back without a rebalance
// (KIP-345). A consumer that never subscribed commits the positions of the
// partitions assigned by hand (enable.auto.commit).
func (g *group) close() {
	g.mu.Lock()
	g.mu.closed = true
	started, assigned := g.mu.started, g.mu.assigned
	g.mu.Unlock()
	g.cancel()
	g.wg.Wait()
	switch {
	case !started && assigned && g.autoCommit:
		// Partitions assigned by hand: their positions, outside any
		// generation, as Java's close commits them.
		tps, _ := g.c.assignedList()
		ctx, cancel := context.WithTimeout(context.Background(), g.requestTimeout)
		if err := g.commit(ctx, g.c.groupPositions(tps, false, nil)); err != nil {
			g.log.Warn("commit on close", "err", err)
		}
		cancel()
	case started:
		ctx, cancel := context.WithTimeout(context.Background(), g.requestTimeout)
		g.mu.Lock()
		gen, memberID, fatal := g.mu.generation, g.mu.memberID, g.mu.fatal
		owned := g.ownedLocked()
		g.mu.Unlock()
		if len(owned) > 0 {
			if gen >= 0 && g.autoCommit {
				if err := g.commit(ctx, g.c.groupPositions(owned, false, nil)); err != nil {
					g.log.Warn("commit on close", "err", err)
				}
			}
			g.giveUp(ctx, owned, gen < 0, false) // committed just above
		}
		if g.instanceID == nil && fatal == nil {
			g.leaveGroup(ctx, memberID, "the consumer is closing")
		}
		cancel()
	}
	g.mu.Lock()
	cn := g.mu.coord
	g.mu.coord, g.mu.connsDone = nil, true
	g.mu.Unlock()
	if cn != nil {
		cn.close()
	}
	g.connWG.Wait()
}

// --- the Consumer's side -------------------------------------------------

// groupAdd adds partitions the group assigned, paused and without a
// position until their committed offsets are known.
func (c *Consumer) groupAdd(tps []TopicPartition) {
	if len(tps) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var topics []string
	for _, tp := range tps {
		if c.mu.parts[tp] != nil {
			continue
		}
		p := &cpart{tp: tp, position: -1, fetchOffset: -1, maxBytes: c.cfg.MaxPartitionFetchBytes,
			paused: true, committable: -1, epoch: -1, committableEpoch: -1}
		c.mu.parts[tp] = p
		c.mu.order = append(c.mu.order, p)
		topics = append(topics, tp.Topic)
	}
	c.cl.addTopics(topics...)
	c.broadcastLocked()
}

// groupPause stops Poll from returning records of tps.
func (c *Consumer) groupPause(tps []TopicPartition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tp := range tps {
		if p := c.mu.parts[tp]; p != nil {
			p.paused = true
		}
	}
}

func (c *Consumer) groupResume(tps []TopicPartition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tp := range tps {
		if p := c.mu.parts[tp]; p != nil {
			p.paused = false
		}
	}
	c.broadcastLocked()
}

// groupRemove drops partitions; anything in flight for them is dropped
// when it returns.
func (c *Consumer) groupRemove(tps []TopicPartition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tp := range tps {
		if p := c.mu.parts[tp]; p != nil {
			p.gen++
			p.buffered = nil
			delete(c.mu.parts, tp)
		}
	}
	c.mu.order = slices.DeleteFunc(c.mu.order, func(p *cpart) bool { return c.mu.parts[p.tp] != p })
	if c.mu.next >= len(c.mu.order) {
		c.mu.next = 0
	}
	c.broadcastLocked()
}

// groupPolls is the count of Polls that set the committable offsets.
func (c *Consumer) groupPolls() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.polls
}

// groupCommitted makes offsets, just committed, what auto-commit and a
// revocation commit until the next Poll: a commit the application made
// after a Poll says what it has handled, and committing the positions as of
// that Poll afterwards would move its offsets back (Java's auto-commit runs
// inside poll, so it never commits behind a commitSync made since). A
// commit read before the latest Poll (polls, counted before its offsets
// were read) changes nothing: that Poll's positions are newer.
func (c *Consumer) groupCommitted(offsets map[TopicPartition]commitOffset, polls uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.polls != polls {
		return
	}
	for tp, o := range offsets {
		if p := c.mu.parts[tp]; p != nil {
			p.committable, p.committableEpoch = o.offset, o.epoch
		}
	}
}

// groupPositions returns the offsets to commit for tps: their positions,
// or with asOfPoll their positions as of the latest Poll. Partitions
// without one are left out, and so are those whose offset equals skip's.
func (c *Consumer) groupPositions(tps []TopicPartition, asOfPoll bool, skip map[TopicPartition]int64) map[TopicPartition]commitOffset {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[TopicPartition]commitOffset, len(tps))
	for _, tp := range tps {
		p := c.mu.parts[tp]
		if p == nil {
			continue
		}
		o := commitOffset{p.position, p.epoch}
		if asOfPoll {
			o = commitOffset{p.committable, p.committableEpoch}
		}
		if o.offset < 0 {
			continue
		}
		if s, ok := skip[tp]; ok && s == o.offset {
			continue
		}
		out[tp] = o
	}
	return out
}

// groupNeedPositions lists the partitions among tps that have no position
// and none on the way (no Seek, no reset pending), with their Seek
// generations.
func (c *Consumer) groupNeedPositions(tps []TopicPartition) map[TopicPartition]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[TopicPartition]uint64{}
	for _, tp := range tps {
		if p := c.mu.parts[tp]; p != nil && p.position < 0 && p.reset == nil && p.err == nil && p.fetchOffset < 0 {
			out[tp] = p.gen
		}
	}
	return out
}

// assignedList lists the partitions assigned by hand; ok is false once the
// consumer has subscribed (its partitions are the group's).
func (c *Consumer) assignedList() (tps []TopicPartition, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.subscribed {
		return nil, false
	}
	tps = make([]TopicPartition, 0, len(c.mu.order))
	for _, p := range c.mu.order {
		tps = append(tps, p.tp)
	}
	return tps, true
}

// assignedNeedPositions is groupNeedPositions for the partitions assigned by
// hand: none once the consumer has subscribed.
func (c *Consumer) assignedNeedPositions() map[TopicPartition]uint64 {
	tps, ok := c.assignedList()
	if !ok {
		return nil
	}
	return c.groupNeedPositions(tps)
}

// groupSetPositions starts partitions at their committed offsets, or per
// auto.offset.reset where there is none (offset -1), unless a Seek came
// first.
func (c *Consumer) groupSetPositions(gens map[TopicPartition]uint64, offsets map[TopicPartition]commitOffset) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for tp, o := range offsets {
		p := c.mu.parts[tp]
		if p == nil || p.gen != gens[tp] {
			continue
		}
		p.gen++
		if o.offset >= 0 {
			p.position, p.fetchOffset, p.epoch = o.offset, o.offset, o.epoch
			p.committable, p.committableEpoch = o.offset, o.epoch
			continue
		}
		if p.reset = c.autoReset(); p.reset == nil {
			p.err = fmt.Errorf("%w: %s has no committed offset", ErrNoOffset, tp)
			c.mu.errs = append(c.mu.errs, p.err)
		}
	}
	c.broadcastLocked()
}

// reportErr hands an error to the next Poll.
func (c *Consumer) reportErr(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.errs = append(c.mu.errs, err)
	c.broadcastLocked()
}
