package raft

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	hraft "github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/twmb/franz-go/pkg/kerr"
)

// ErrNotController is returned for a write proposed to a node that is not the
// active controller. It unwraps to NOT_CONTROLLER; Node.Leader says where the
// active controller is.
var ErrNotController = fmt.Errorf("raft: not the active controller: %w", kerr.NotController)

// Node is one member of the metadata quorum: a voter (process.roles includes
// controller) or a non-voter that follows the log (a broker-only node). Every
// node folds the committed log into an Image that any goroutine may read
// without locks (Image). The raft leader is the active controller once it has
// committed a record of its own term (a NoOp), which proves its image is
// current; the raft term is the controller epoch.
type Node struct {
	cfg       NodeConfig
	logger    *slog.Logger
	raft      *hraft.Raft
	fsm       *fsm
	transport hraft.Transport
	wal       *wal.WAL
	meta      *metadb.BoltMetaDB

	mu struct {
		sync.Mutex
		activeEpoch uint64        // the term in which this node became active; 0 if not active
		changed     chan struct{} // closed at the next change of activeEpoch
	}
	stop     chan struct{}
	stopOnce sync.Once
	done     sync.WaitGroup
}

// NodeOptions are a node's collaborators.
type NodeOptions struct {
	// Transport replaces the TCP transport (tests pass raft's in-memory one).
	Transport hraft.Transport
	// Logger receives the node's reports; slog.Default when nil.
	Logger *slog.Logger
	// RaftLog receives hashicorp/raft's own warnings and errors; standard
	// error when nil.
	RaftLog io.Writer
	// OnApply is called after each entry is applied, in log order, with the
	// new image and what changed; after a snapshot is restored it is called
	// with a nil Delta (re-read everything). It runs on raft's apply
	// goroutine and must not block.
	OnApply func(*Image, *Delta)
}

// StartNode opens (or creates) the node's raft log and snapshots in
// cfg.Dir and joins the quorum. A voter starting for the first time
// bootstraps with the voter set of controller.quorum.voters, as every voter
// does, so they agree; on later starts it recovers from its log and snapshot.
//
// The node owns its transport, o.Transport or the TCP one it makes: Shutdown
// closes it, and so does a StartNode that fails, along with everything else
// it opened, so that a failed start leaves no listener bound.
func StartNode(cfg NodeConfig, o NodeOptions) (_ *Node, err error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	n := &Node{cfg: cfg, logger: o.Logger.With("node", cfg.NodeID), stop: make(chan struct{}), transport: o.Transport}
	n.mu.changed = make(chan struct{})
	running := false // raft runs: Shutdown closes everything
	defer func() {
		if err == nil || running {
			return
		}
		if c, ok := n.transport.(io.Closer); ok {
			c.Close()
		}
		if n.wal != nil {
			n.wal.Close()
		}
		if n.meta != nil {
			n.meta.Close()
		}
	}()
	if o.RaftLog == nil {
		o.RaftLog = os.Stderr
	}
	hlog := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: o.RaftLog})
	walDir := filepath.Join(cfg.Dir, "wal")
	if err := os.MkdirAll(walDir, 0o755); err != nil {
		return nil, err
	}
	// The meta store is passed in because WAL.Close does not close the one it
	// would make itself, whose file lock would then block a restart.
	n.meta = &metadb.BoltMetaDB{}
	if n.wal, err = wal.Open(walDir, wal.WithSegmentSize(cfg.WALSegmentBytes), wal.WithLogger(hlog), wal.WithMetaStore(n.meta)); err != nil {
		return nil, fmt.Errorf("raft: opening the log in %s: %w", cfg.Dir, err)
	}
	snaps, err := hraft.NewFileSnapshotStoreWithLogger(cfg.Dir, cfg.SnapshotRetain, hlog)
	if err != nil {
		return nil, err
	}
	if n.transport == nil {
		// Assigned only on success: on failure hashicorp/raft returns a
		// nil *NetworkTransport, which in the interface would not be
		// nil, and the cleanup above would call Close on it.
		tcp, err := hraft.NewTCPTransportWithLogger(cfg.Addr, nil, 3, 5*time.Second, hlog)
		if err != nil {
			return nil, fmt.Errorf("raft: listening on %s: %w", cfg.Addr, err)
		}
		n.transport = tcp
	}
	rc := raftConfig(&cfg)
	rc.Logger = hlog
	n.fsm = &fsm{logger: n.logger, onApply: o.OnApply, stop: n.fail}
	n.fsm.image.Store(NewImage())
	if n.raft, err = hraft.NewRaft(rc, n.fsm, n.wal, n.wal, snaps, n.transport); err != nil {
		return nil, err
	}
	running = true
	if cfg.IsVoter() {
		has, err := hraft.HasExistingState(n.wal, n.wal, snaps)
		if err != nil {
			n.Shutdown()
			return nil, err
		}
		if !has {
			var servers []hraft.Server
			for _, v := range cfg.Voters {
				servers = append(servers, hraft.Server{Suffrage: hraft.Voter, ID: serverID(v.ID), Address: hraft.ServerAddress(v.Addr)})
			}
			if err := n.raft.BootstrapCluster(hraft.Configuration{Servers: servers}).Error(); err != nil && !errors.Is(err, hraft.ErrCantBootstrap) {
				n.Shutdown()
				return nil, fmt.Errorf("raft: bootstrapping: %w", err)
			}
		}
	}
	n.done.Add(1)
	go n.watchLeadership()
	return n, nil
}

func serverID(id int32) hraft.ServerID { return hraft.ServerID(strconv.Itoa(int(id))) }

// raftConfig is hashicorp/raft's configuration for cfg (defaults filled
// in), but for its logger.
func raftConfig(cfg *NodeConfig) *hraft.Config {
	rc := hraft.DefaultConfig()
	rc.LocalID = serverID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	return rc
}

// watchLeadership makes the node the active controller when raft makes it
// leader: it first commits a NoOp, which, once applied, proves every earlier
// entry is in its image.
func (n *Node) watchLeadership() {
	defer n.done.Done()
	for {
		select {
		case <-n.stop:
			n.setActive(0)
			return
		case leader := <-n.raft.LeaderCh():
			n.setActive(0)
			if !leader {
				continue
			}
			term := n.raft.CurrentTerm()
			data, _ := EncodeEntry(nil, []Record{&NoOp{}})
			if err := n.wait(context.Background(), n.raft.Apply(data, 5*n.cfg.ElectionTimeout+time.Second)); err != nil {
				n.logger.Warn("lost leadership before committing as active controller", "term", term, "err", err)
				continue
			}
			if n.raft.State() == hraft.Leader && n.raft.CurrentTerm() == term {
				n.setActive(term)
				n.logger.Info("active controller", "epoch", term)
			}
		}
	}
}

func (n *Node) setActive(epoch uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.activeEpoch != epoch {
		n.mu.activeEpoch = epoch
		close(n.mu.changed)
		n.mu.changed = make(chan struct{})
	}
}

// Active returns the controller epoch if this node is the active controller.
func (n *Node) Active() (epoch uint64, ok bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mu.activeEpoch, n.mu.activeEpoch != 0
}

// ActiveChanged returns a channel closed when this node next becomes, or
// stops being, the active controller.
func (n *Node) ActiveChanged() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mu.changed
}

// Leader returns the node id of the raft leader, as far as this node knows.
func (n *Node) Leader() (int32, bool) {
	_, id := n.raft.LeaderWithID()
	v, err := strconv.ParseInt(string(id), 10, 32)
	return int32(v), id != "" && err == nil
}

// Image is the metadata as of the last entry this node applied.
func (n *Node) Image() *Image { return n.fsm.image.Load() }

// Propose validates the records, commits them as one entry and returns the
// image once this node has applied it. Only the active controller may
// propose; others get ErrNotController, and so does a controller that loses
// leadership before the entry commits (the entry may still commit: callers
// retry against the new controller, whose decisions see it).
func (n *Node) Propose(ctx context.Context, records []Record) (*Image, error) {
	epoch, ok := n.Active()
	if !ok {
		return nil, ErrNotController
	}
	return n.ProposeIn(ctx, epoch, records)
}

// ProposeIn is Propose for records decided in the active epoch epoch: if
// this node is no longer active in that epoch (it lost leadership, perhaps
// to regain it in a later one), they are refused with ErrNotController, for
// they were decided on an image, and on controller state, that a later
// epoch may have moved past.
func (n *Node) ProposeIn(ctx context.Context, epoch uint64, records []Record) (*Image, error) {
	if active, ok := n.Active(); !ok || active != epoch {
		return nil, ErrNotController
	}
	data, err := EncodeEntry(nil, records)
	if err != nil {
		return nil, err
	}
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	f := n.raft.Apply(data, timeout)
	if err := n.wait(ctx, f); err != nil {
		if errors.Is(err, hraft.ErrNotLeader) || errors.Is(err, hraft.ErrLeadershipLost) || errors.Is(err, hraft.ErrLeadershipTransferInProgress) {
			return nil, fmt.Errorf("%w (epoch %d ended: %v)", ErrNotController, epoch, err)
		}
		return nil, fmt.Errorf("raft: proposing: %w", err)
	}
	res := f.Response().(applyResult)
	return res.image, res.err
}

// AddObserver adds broker-only node id to the quorum's non-voters at addr,
// so that the log is replicated to it and it keeps its own image. A
// non-voter of that id listed at another address (the node restarted with
// another controller listener) is removed and added again at addr:
// hashicorp/raft's AddNonvoter would move it in place, but rewrites the
// peer its replication goroutine reads without a lock (hashicorp/raft#681,
// a data race), while a removal stops that goroutine and the add starts a
// new one. A voter is refused: AddNonvoter would rewrite a voter's
// address. Only the active controller may.
func (n *Node) AddObserver(id int32, addr string) error {
	if _, ok := n.Active(); !ok {
		return ErrNotController
	}
	srv, ok, err := n.member(id)
	if err != nil {
		return err
	}
	if n.isVoter(id) || ok && srv.Suffrage != hraft.Nonvoter {
		return fmt.Errorf("raft: node %d is a voter, not an observer", id)
	}
	if ok && string(srv.Address) != addr {
		if err := n.wait(context.Background(), n.raft.RemoveServer(srv.ID, 0, 10*time.Second)); err != nil {
			if errors.Is(err, hraft.ErrNotLeader) {
				return ErrNotController
			}
			return fmt.Errorf("raft: moving observer %d from %s to %s: %w", id, srv.Address, addr, err)
		}
	}
	if err := n.wait(context.Background(), n.raft.AddNonvoter(serverID(id), hraft.ServerAddress(addr), 0, 10*time.Second)); err != nil {
		if errors.Is(err, hraft.ErrNotLeader) {
			return ErrNotController
		}
		return fmt.Errorf("raft: adding observer %d at %s: %w", id, addr, err)
	}
	return nil
}

// RemoveObserver removes broker id from the quorum's non-voters, once it
// is unregistered; a voter, or an id that is no member, is left alone. Only
// the active controller may.
func (n *Node) RemoveObserver(id int32) error {
	if _, ok := n.Active(); !ok {
		return ErrNotController
	}
	srv, ok, err := n.member(id)
	if err != nil || !ok || srv.Suffrage != hraft.Nonvoter {
		return err
	}
	err = n.wait(context.Background(), n.raft.RemoveServer(srv.ID, 0, 10*time.Second))
	if errors.Is(err, hraft.ErrNotLeader) {
		return ErrNotController
	}
	return err
}

// isVoter reports whether id is one of controller.quorum.voters.
func (n *Node) isVoter(id int32) bool {
	return slices.ContainsFunc(n.cfg.Voters, func(v Voter) bool { return v.ID == id })
}

// observerAt reports whether the latest raft configuration, as this node
// has it, lists broker id as a non-voter at addr.
func (n *Node) observerAt(id int32, addr string) (bool, error) {
	srv, ok, err := n.member(id)
	return ok && srv.Suffrage == hraft.Nonvoter && string(srv.Address) == addr, err
}

// member is server id of the latest raft configuration, as this node has
// it: on the leader that includes a change not yet committed. It is cheap:
// hashicorp/raft (v1.8) answers GetConfiguration from an atomic copy of its
// latest configuration, without a round trip through its main loop.
func (n *Node) member(id int32) (hraft.Server, bool, error) {
	servers, err := n.servers()
	if err != nil {
		return hraft.Server{}, false, err
	}
	for _, srv := range servers {
		if srv.ID == serverID(id) {
			return srv, true, nil
		}
	}
	return hraft.Server{}, false, nil
}

// servers are the members of the latest raft configuration, as this node
// has it.
func (n *Node) servers() ([]hraft.Server, error) {
	f := n.raft.GetConfiguration()
	if err := n.wait(context.Background(), f); err != nil {
		return nil, err
	}
	return f.Configuration().Servers, nil
}

// Observers lists the quorum's non-voters (broker-only nodes) by id, as
// this node's latest raft configuration has them.
func (n *Node) Observers() ([]int32, error) {
	servers, err := n.servers()
	if err != nil {
		return nil, err
	}
	var ids []int32
	for _, srv := range servers {
		if srv.Suffrage != hraft.Nonvoter {
			continue
		}
		if id, err := strconv.ParseInt(string(srv.ID), 10, 32); err == nil {
			ids = append(ids, int32(id))
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// Snapshot takes a snapshot of the image now (raft also does so by itself
// every SnapshotThreshold entries) and compacts the log behind it.
func (n *Node) Snapshot() error { return n.wait(context.Background(), n.raft.Snapshot()) }

// wait returns f's error, or gives up when ctx ends or the node stops.
// hashicorp/raft answers a future only while it runs: an entry still queued
// for the leader, or on its way to the FSM, when raft shuts down is never
// answered (hashicorp/raft#498), and waiting on it alone would hang the
// caller, and Shutdown behind it, forever. Giving up leaves one goroutine
// parked on such a future; that is all that can outlive the node.
func (n *Node) wait(ctx context.Context, f hraft.Future) error {
	errc := make(chan error, 1)
	go func() { errc <- f.Error() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-n.stop:
		select {
		case err := <-errc: // answered as the node stopped: keep the answer
			return err
		default:
			return hraft.ErrRaftShutdown
		}
	}
}

// Stopped is closed once the node has stopped: by Shutdown, or on its own
// after an entry it could not apply (Err says which).
func (n *Node) Stopped() <-chan struct{} { return n.stop }

// Err is the error that stopped the node, if one did: an entry in the log
// that could not be decoded or applied.
func (n *Node) Err() error {
	if p := n.fsm.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// fail stops the node after an entry it cannot apply.
func (n *Node) fail(err error) {
	n.logger.Error("metadata quorum node stops", "err", err)
	go n.Shutdown()
}

// Shutdown leaves the quorum and closes the log. It is safe to call twice.
func (n *Node) Shutdown() error {
	var err error
	n.stopOnce.Do(func() {
		close(n.stop)
		err = n.raft.Shutdown().Error()
		n.done.Wait()
		if c, ok := n.transport.(io.Closer); ok {
			err = errors.Join(err, c.Close())
		}
		err = errors.Join(err, n.closeStores())
	})
	return err
}

func (n *Node) closeStores() error { return errors.Join(n.wal.Close(), n.meta.Close()) }

// applyResult is what the FSM returns for each entry.
type applyResult struct {
	image *Image
	err   error
}

// fsm folds committed entries into the image. raft calls Apply, Snapshot and
// Restore from one goroutine; the image pointer is published atomically so
// readers never lock.
type fsm struct {
	image   atomic.Pointer[Image]
	failed  atomic.Pointer[error]
	logger  *slog.Logger
	onApply func(*Image, *Delta)
	stop    func(error)
}

func (f *fsm) Apply(l *hraft.Log) any {
	if p := f.failed.Load(); p != nil {
		return applyResult{err: *p}
	}
	records, err := DecodeEntry(l.Data)
	var im *Image
	var d *Delta
	if err == nil {
		im, d, err = f.image.Load().Apply(l.Index, l.Term, records)
	}
	if err != nil {
		// An entry that every node committed but none can apply: applying
		// anything after it would build an image that is wrong, so stop.
		e := fmt.Errorf("raft: the entry at index %d (term %d) cannot be applied: %w", l.Index, l.Term, err)
		if f.failed.CompareAndSwap(nil, &e) {
			f.stop(e)
		}
		return applyResult{err: e}
	}
	f.image.Store(im)
	if f.onApply != nil {
		f.onApply(im, d)
	}
	return applyResult{image: im}
}

func (f *fsm) Snapshot() (hraft.FSMSnapshot, error) {
	return imageSnapshot{f.image.Load()}, nil
}

// maxSnapshotBytes bounds what Restore reads.
const maxSnapshotBytes = 1 << 30

func (f *fsm) Restore(r io.ReadCloser) error {
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, maxSnapshotBytes+1))
	if err != nil {
		return err
	}
	if len(data) > maxSnapshotBytes {
		return fmt.Errorf("raft: snapshot larger than %d bytes", maxSnapshotBytes)
	}
	im, err := DecodeSnapshot(data)
	if err != nil {
		return err
	}
	f.image.Store(im)
	if f.onApply != nil {
		f.onApply(im, nil)
	}
	return nil
}

// imageSnapshot persists an image. Images are immutable, so the snapshot is
// just a pointer: raft may write it out while later entries are applied.
type imageSnapshot struct{ im *Image }

func (s imageSnapshot) Persist(sink hraft.SnapshotSink) error {
	if _, err := sink.Write(s.im.AppendSnapshot(nil)); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (imageSnapshot) Release() {}
