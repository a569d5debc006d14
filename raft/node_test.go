package raft

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	hraft "github.com/hashicorp/raft"
)

// waitTimeout bounds every wait on a condition in these tests. Conditions are
// signalled (by applies and activations), never polled on a timer; the bound
// only turns a hang into a failure.
const waitTimeout = 30 * time.Second

// testNode is a node of a test cluster with what the tests watch.
type testNode struct {
	id    int32
	dir   string
	addr  string
	node  *Node
	inmem *hraft.InmemTransport

	mu       sync.Mutex
	applied  chan struct{} // closed at the next apply
	restored bool          // a snapshot was restored (OnApply with a nil Delta)
}

func (tn *testNode) appliedCh() <-chan struct{} {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	return tn.applied
}

func (tn *testNode) onApply(_ *Image, d *Delta) {
	tn.mu.Lock()
	if d == nil {
		tn.restored = true
	}
	close(tn.applied)
	tn.applied = make(chan struct{})
	tn.mu.Unlock()
}

// testCluster is a quorum of voters (and perhaps observers) in one process,
// over raft's in-memory transport or real TCP on loopback.
type testCluster struct {
	t      *testing.T
	tcp    bool
	voters []Voter
	nodes  map[int32]*testNode

	mu          sync.Mutex
	activations map[uint64][]int32 // controller epoch -> nodes that were active in it
}

func newTestCluster(t *testing.T, voters int, tcp bool) *testCluster {
	c := &testCluster{t: t, tcp: tcp, nodes: map[int32]*testNode{}, activations: map[uint64][]int32{}}
	for id := int32(1); id <= int32(voters); id++ {
		addr := fmt.Sprintf("inmem-%d", id)
		if tcp {
			addr = freeLoopbackAddr(t)
		}
		c.voters = append(c.voters, Voter{ID: id, Addr: addr})
		c.nodes[id] = &testNode{id: id, dir: filepath.Join(t.TempDir(), fmt.Sprint(id)), addr: addr}
	}
	for id := range c.nodes {
		c.start(id, "controller")
	}
	t.Cleanup(func() {
		for _, tn := range c.nodes {
			if tn.node != nil {
				tn.node.Shutdown()
			}
		}
	})
	return c
}

// freeLoopbackAddr finds a free TCP port on 127.0.0.1.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start (re)starts node id, keeping its directory.
func (c *testCluster) start(id int32, roles string) {
	c.t.Helper()
	tn := c.nodes[id]
	tn.applied, tn.restored = make(chan struct{}), false
	cfg := NodeConfig{NodeID: id, Roles: roles, Voters: c.voters, Addr: tn.addr, Dir: tn.dir, WALSegmentBytes: 1 << 20}
	opts := NodeOptions{OnApply: tn.onApply, Logger: slog.New(slog.DiscardHandler), RaftLog: io.Discard}
	if !c.tcp {
		_, tn.inmem = hraft.NewInmemTransport(hraft.ServerAddress(tn.addr))
		opts.Transport = tn.inmem
		for _, other := range c.nodes {
			if other.node != nil && other.inmem != nil && other.id != id {
				tn.inmem.Connect(hraft.ServerAddress(other.addr), other.inmem)
				other.inmem.Connect(hraft.ServerAddress(tn.addr), tn.inmem)
			}
		}
	}
	n, err := StartNode(cfg, opts)
	if err != nil {
		c.t.Fatalf("starting node %d: %v", id, err)
	}
	tn.node = n
	go c.watchActivations(tn, n)
}

// watchActivations records every epoch in which a node was active, to check
// that no two nodes are ever active in the same epoch.
func (c *testCluster) watchActivations(tn *testNode, n *Node) {
	for {
		ch := n.ActiveChanged()
		if epoch, ok := n.Active(); ok {
			c.mu.Lock()
			if !slices.Contains(c.activations[epoch], tn.id) {
				c.activations[epoch] = append(c.activations[epoch], tn.id)
			}
			c.mu.Unlock()
		}
		select {
		case <-ch:
		case <-n.stop:
			return
		}
	}
}

// kill stops a node as a crash would: its transport goes away with it.
func (c *testCluster) kill(id int32) {
	tn := c.nodes[id]
	if tn.inmem != nil {
		for _, other := range c.nodes {
			if other.inmem != nil && other.id != id {
				other.inmem.Disconnect(hraft.ServerAddress(tn.addr))
			}
		}
	}
	if err := tn.node.Shutdown(); err != nil {
		c.t.Logf("shutting node %d down: %v", id, err)
	}
	tn.node = nil
}

// active waits for a live node to be the active controller and returns it.
func (c *testCluster) active() *testNode {
	c.t.Helper()
	deadline := time.After(waitTimeout)
	for {
		var chans []<-chan struct{}
		for _, tn := range c.nodes {
			if tn.node == nil {
				continue
			}
			if _, ok := tn.node.Active(); ok {
				return tn
			}
			chans = append(chans, tn.node.ActiveChanged())
		}
		if !waitAny(chans, deadline) {
			c.t.Fatal("no active controller within the time limit")
		}
	}
}

// waitAny waits for one of chans to close; false when the deadline passes.
func waitAny(chans []<-chan struct{}, deadline <-chan time.Time) bool {
	done := make(chan struct{})
	var once sync.Once
	for _, ch := range chans {
		go func() {
			select {
			case <-ch:
				once.Do(func() { close(done) })
			case <-done:
			}
		}()
	}
	select {
	case <-done:
		return true
	case <-deadline:
		once.Do(func() { close(done) })
		return false
	}
}

// propose commits records through whichever node is active, retrying when
// leadership moves under it.
func (c *testCluster) propose(records ...Record) *Image {
	c.t.Helper()
	for range 20 {
		tn := c.active()
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		im, err := tn.node.Propose(ctx, records)
		cancel()
		if errors.Is(err, ErrNotController) {
			continue
		}
		if err != nil {
			c.t.Fatalf("proposing through node %d: %v", tn.id, err)
		}
		return im
	}
	c.t.Fatal("could not propose: leadership kept moving")
	return nil
}

// converge waits until every live node has applied at least offset and
// checks that their images are identical.
func (c *testCluster) converge(offset uint64) [32]byte {
	c.t.Helper()
	deadline := time.After(waitTimeout)
	var want [32]byte
	for _, id := range c.ids() {
		tn := c.nodes[id]
		if tn.node == nil {
			continue
		}
		for {
			ch := tn.appliedCh()
			if tn.node.Image().Offset >= offset {
				break
			}
			if !waitAny([]<-chan struct{}{ch}, deadline) {
				c.t.Fatalf("node %d did not apply offset %d in time (at %d)", id, offset, tn.node.Image().Offset)
			}
		}
	}
	first := true
	for _, id := range c.ids() {
		tn := c.nodes[id]
		if tn.node == nil {
			continue
		}
		im := tn.node.Image()
		if im.Offset != offset {
			// A later entry (a NoOp of a new controller) may have followed.
			continue
		}
		h := im.Hash()
		if first {
			want, first = h, false
		} else if h != want {
			c.t.Fatalf("node %d's image at offset %d differs from another node's", id, offset)
		}
	}
	return want
}

func (c *testCluster) ids() []int32 {
	var ids []int32
	for id := range c.nodes {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// checkOneActivePerEpoch fails if two nodes were ever active in one epoch.
func (c *testCluster) checkOneActivePerEpoch() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for epoch, ids := range c.activations {
		if len(ids) > 1 {
			c.t.Fatalf("nodes %v were all active controllers in epoch %d", ids, epoch)
		}
	}
}

func testTopic(name string, id byte) (*Topic, *Partition) {
	tid := UUID{id}
	return &Topic{Name: name, ID: tid},
		&Partition{TopicID: tid, Partition: 0, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}, Leader: 1}
}

func registration(id int32) *BrokerRegistered {
	return &BrokerRegistered{BrokerID: id, Incarnation: UUID{byte(id), 1},
		Endpoints: []Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: uint16(9090 + id)}}}
}

func runClusterScenario(t *testing.T, tcp bool) {
	c := newTestCluster(t, 3, tcp)
	first := c.active()
	epoch1, _ := first.node.Active()
	im := c.propose(registration(1), registration(2), registration(3))
	c.converge(im.Offset)
	topic, part := testTopic("orders", 1)
	im = c.propose(topic, part)
	c.converge(im.Offset)

	// A node that is not the active controller refuses writes.
	for _, tn := range c.nodes {
		if tn != first {
			if _, err := tn.node.Propose(context.Background(), []Record{&NoOp{}}); !errors.Is(err, ErrNotController) {
				t.Fatalf("node %d (not active) accepted a proposal: %v", tn.id, err)
			}
		}
	}

	// Kill the active controller: another takes over in a later epoch and
	// its image holds everything committed before.
	c.kill(first.id)
	second := c.active()
	epoch2, _ := second.node.Active()
	if second == first || epoch2 <= epoch1 {
		t.Fatalf("after killing node %d (epoch %d), node %d is active in epoch %d", first.id, epoch1, second.id, epoch2)
	}
	if _, ok := second.node.Image().Topic("orders"); !ok {
		t.Fatal("the new active controller's image lost a committed topic")
	}
	// Records decided in an earlier epoch are refused, even by the node
	// active now: they were decided on an image a later epoch may have
	// moved past.
	if _, err := second.node.ProposeIn(context.Background(), epoch1, []Record{&NoOp{}}); !errors.Is(err, ErrNotController) {
		t.Fatalf("node %d, active in epoch %d, accepted records decided in epoch %d: %v", second.id, epoch2, epoch1, err)
	}
	topic2, part2 := testTopic("payments", 2)
	im = c.propose(topic2, part2)
	c.converge(im.Offset)

	// The killed node restarts from its log and catches up.
	c.start(first.id, "controller")
	im = c.propose(&NoOp{})
	c.converge(im.Offset)
	if _, ok := c.nodes[first.id].node.Image().Topic("payments"); !ok {
		t.Fatal("the restarted node did not catch up")
	}
	c.checkOneActivePerEpoch()
}

// TestInmemCluster: three voters over raft's in-memory transport.
func TestInmemCluster(t *testing.T) { runClusterScenario(t, false) }

// TestTCPCluster: three voters over TCP on loopback.
func TestTCPCluster(t *testing.T) { runClusterScenario(t, true) }

// TestDisconnectedVoter: with one voter cut off, the other two still commit;
// reconnected, it catches up.
func TestDisconnectedVoter(t *testing.T) {
	c := newTestCluster(t, 3, false)
	active := c.active()
	var cut *testNode
	for _, tn := range c.nodes {
		if tn != active {
			cut = tn
			break
		}
	}
	for _, tn := range c.nodes {
		if tn != cut {
			tn.inmem.Disconnect(hraft.ServerAddress(cut.addr))
			cut.inmem.Disconnect(hraft.ServerAddress(tn.addr))
		}
	}
	im := c.propose(registration(7))
	for _, tn := range c.nodes {
		if tn != cut {
			tn.inmem.Connect(hraft.ServerAddress(cut.addr), cut.inmem)
			cut.inmem.Connect(hraft.ServerAddress(tn.addr), tn.inmem)
		}
	}
	c.converge(im.Offset)
	if _, ok := cut.node.Image().Brokers[7]; !ok {
		t.Fatal("the reconnected voter did not catch up")
	}
	c.checkOneActivePerEpoch()
}

// TestSnapshotRestart: a node restarted after a snapshot restores its image
// from it, plus the entries after it.
func TestSnapshotRestart(t *testing.T) {
	c := newTestCluster(t, 3, false)
	c.propose(registration(1))
	topic, part := testTopic("orders", 1)
	c.converge(c.propose(topic, part).Offset)
	var other *testNode
	for _, tn := range c.nodes {
		if tn != c.active() {
			other = tn
			break
		}
	}
	if err := other.node.Snapshot(); err != nil {
		t.Fatal(err)
	}
	im := c.propose(registration(2))
	c.converge(im.Offset)
	c.kill(other.id)
	c.start(other.id, "controller")
	im = c.propose(&NoOp{})
	c.converge(im.Offset)
	if _, ok := other.node.Image().Brokers[2]; !ok {
		t.Fatal("the restarted node lost an entry after its snapshot")
	}
	other.mu.Lock()
	restored := other.restored
	other.mu.Unlock()
	if !restored {
		t.Fatal("the restarted node did not restore its snapshot")
	}
}

// TestObserverFollowsLog: a broker-only node, added by the active controller
// as a non-voter, receives the log and keeps the same image.
func TestObserverFollowsLog(t *testing.T) {
	c := newTestCluster(t, 3, false)
	c.nodes[4] = &testNode{id: 4, dir: filepath.Join(t.TempDir(), "4"), addr: "inmem-4"}
	c.start(4, "broker")
	im := c.propose(registration(4))
	active := c.active()
	if err := active.node.AddObserver(4, "inmem-4"); err != nil {
		t.Fatal(err)
	}
	c.converge(im.Offset)
	topic, part := testTopic("orders", 1)
	im = c.propose(topic, part)
	c.converge(im.Offset)
	if _, ok := c.nodes[4].node.Image().Topic("orders"); !ok {
		t.Fatal("the observer does not have the topic")
	}
	if _, ok := c.nodes[4].node.Active(); ok {
		t.Fatal("an observer became the active controller")
	}
}

// TestAddObserverAddressAndVoters: AddObserver of a non-voter already
// there moves it to the new address (a broker-only node that restarted with
// another controller listener), as the only non-voter of that id, and
// AddObserver of a voter is refused:
// hashicorp/raft's AddNonvoter would keep it a voter but rewrite its address,
// cutting it off the quorum.
func TestAddObserverAddressAndVoters(t *testing.T) {
	c := newTestCluster(t, 3, false)
	active := c.active()
	if err := active.node.AddObserver(4, "inmem-4"); err != nil {
		t.Fatal(err)
	}
	if err := active.node.AddObserver(4, "inmem-4b"); err != nil {
		t.Fatal(err)
	}
	if ok, err := active.node.observerAt(4, "inmem-4b"); err != nil || !ok {
		t.Fatalf("non-voter 4 not moved to its new address: %v, %v", ok, err)
	}
	if ids, err := active.node.Observers(); err != nil || !slices.Equal(ids, []int32{4}) {
		t.Fatalf("non-voters %v, %v; want [4]", ids, err)
	}
	if err := active.node.AddObserver(1, "elsewhere"); err == nil {
		t.Fatal("AddObserver of voter 1 succeeded")
	}
	srv, ok, err := active.node.member(1)
	if err != nil || !ok || srv.Suffrage != hraft.Voter || srv.Address != "inmem-1" {
		t.Fatalf("voter 1 is now %+v (%v, %v), want a voter at inmem-1", srv, ok, err)
	}
}

// TestUndecodableEntryStopsNode: an entry that cannot be applied (it slipped
// past validation, written straight into raft here) stops each node that
// reaches it rather than being applied or skipped; no node's image passes it.
func TestUndecodableEntryStopsNode(t *testing.T) {
	c := newTestCluster(t, 3, false)
	active := c.active()
	im := c.propose(registration(1))
	c.converge(im.Offset)
	if err := active.node.raft.Apply([]byte{0xff, 0x01, 0x02}, waitTimeout).Error(); err != nil {
		t.Fatal(err)
	}
	// The entry committed, so a majority has it: wait for the leader that
	// applied it and one more node to stop. (The last may never learn of the
	// commit once the other two have stopped.)
	deadline := time.After(waitTimeout)
	for {
		var stopped int
		var running []<-chan struct{}
		for _, tn := range c.nodes {
			if tn.node.Err() != nil {
				stopped++
			} else {
				running = append(running, tn.node.stop, tn.appliedCh())
			}
		}
		if stopped >= 2 {
			break
		}
		if !waitAny(running, deadline) {
			t.Fatalf("only %d nodes stopped on the bad entry", stopped)
		}
	}
	if active.node.Err() == nil {
		t.Fatal("the leader applied the bad entry without stopping")
	}
	for _, tn := range c.nodes {
		if got := tn.node.Image().Offset; got != im.Offset {
			t.Fatalf("node %d applied past the bad entry: image at %d, want %d", tn.id, got, im.Offset)
		}
	}
}

// TestFailoverTime reports how long the quorum takes, after the active
// controller dies, to have a new one that has committed a record: over TCP on
// loopback, 10 trials, median and max. A figure, not an assertion.
func TestFailoverTime(t *testing.T) {
	if testing.Short() {
		t.Skip("reports a figure; takes a few seconds")
	}
	const trials = 10
	c := newTestCluster(t, 3, true)
	var took []time.Duration
	for range trials {
		old := c.active()
		im := c.propose(&NoOp{})
		c.converge(im.Offset)
		start := time.Now()
		c.kill(old.id)
		c.active()
		took = append(took, time.Since(start))
		c.start(old.id, "controller")
	}
	slices.Sort(took)
	t.Logf("controller failover over %d trials (3 voters, TCP on loopback, heartbeat/election timeouts 150 ms): median %v, max %v",
		trials, took[trials/2].Round(time.Millisecond), took[trials-1].Round(time.Millisecond))
	c.checkOneActivePerEpoch()
}

// blockedFuture is a raft future nobody ever answers, as hashicorp/raft
// leaves one whose entry was in flight when it shut down.
type blockedFuture struct{ release chan struct{} }

func (f blockedFuture) Error() error { <-f.release; return nil }

// TestWaitGivesUpOnStop: a future left unanswered by a shutdown must not hang
// the node's waiters (and Shutdown behind them); a cancelled context ends the
// wait too, and an answer that is there wins.
func TestWaitGivesUpOnStop(t *testing.T) {
	f := blockedFuture{release: make(chan struct{})}
	defer close(f.release)

	n := &Node{stop: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := n.wait(ctx, f); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait with a cancelled context: %v, want %v", err, context.Canceled)
	}
	close(n.stop)
	if err := n.wait(context.Background(), f); !errors.Is(err, hraft.ErrRaftShutdown) {
		t.Fatalf("wait on a stopped node: %v, want %v", err, hraft.ErrRaftShutdown)
	}
	answered := blockedFuture{release: make(chan struct{})}
	close(answered.release)
	if err := (&Node{stop: make(chan struct{})}).wait(context.Background(), answered); err != nil {
		t.Fatalf("wait on an answered future: %v", err)
	}
}

// TestStartNodeFailureClosesListener: a StartNode that fails once it has
// opened its TCP transport closes it again, with the stores. The failure
// here is hashicorp/raft's NewRaft refusing a metadata dir whose only
// snapshot does not decode. Before, that path closed the stores but not the
// transport: the raft listener stayed bound, and the address could not be
// used again in the process (a retry, or the next node of a test).
func TestStartNodeFailureClosesListener(t *testing.T) {
	dir := t.TempDir()
	snaps, err := hraft.NewFileSnapshotStore(dir, 1, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	addr := freeLoopbackAddr(t)
	voters := hraft.Configuration{Servers: []hraft.Server{{Suffrage: hraft.Voter, ID: serverID(1), Address: hraft.ServerAddress(addr)}}}
	_, encoder := hraft.NewInmemTransport(hraft.ServerAddress(addr)) // only encodes the voters
	sink, err := snaps.Create(hraft.SnapshotVersionMax, 10, 1, voters, 1, encoder)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sink.Write([]byte("not an image")); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}

	cfg := NodeConfig{NodeID: 1, Roles: "controller", Voters: []Voter{{ID: 1, Addr: addr}}, Addr: addr, Dir: dir}
	for attempt := range 2 { // the second finds the address free, and the stores unlocked
		n, err := StartNode(cfg, NodeOptions{Logger: slog.New(slog.DiscardHandler), RaftLog: io.Discard})
		if err == nil {
			n.Shutdown()
			t.Fatal("StartNode restored a snapshot that does not decode")
		}
		if attempt == 0 && !strings.Contains(err.Error(), "snapshot") {
			t.Fatalf("StartNode: %v, want the snapshot refused", err)
		}
		l, lerr := net.Listen("tcp", addr)
		if lerr != nil {
			t.Fatalf("attempt %d: after a failed StartNode the raft address %s is still bound: %v", attempt, addr, lerr)
		}
		l.Close()
	}
}

// TestStartNodeAddressInUse: when the raft address cannot be bound,
// StartNode returns the error and closes the stores it opened, so a start
// once the address is free succeeds. hashicorp/raft's TCP transport
// constructor returns a nil *NetworkTransport on failure; kept in the
// Transport interface, that typed nil made the failure cleanup call Close
// on it and panic.
func TestStartNodeAddressInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	cfg := NodeConfig{NodeID: 1, Roles: "controller", Voters: []Voter{{ID: 1, Addr: addr}}, Addr: addr, Dir: t.TempDir()}
	opts := NodeOptions{Logger: slog.New(slog.DiscardHandler), RaftLog: io.Discard}
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("StartNode on an address in use panicked: %v", r)
			}
		}()
		if n, err := StartNode(cfg, opts); err == nil {
			n.Shutdown()
			t.Fatal("StartNode bound an address already in use")
		} else if !strings.Contains(err.Error(), "listening on") {
			t.Fatalf("StartNode: %v, want the listen error", err)
		}
	}()
	l.Close()
	n, err := StartNode(cfg, opts)
	if err != nil {
		t.Fatalf("StartNode once the address is free: %v (stores left locked?)", err)
	}
	n.Shutdown()
}
