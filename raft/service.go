package raft

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// QuorumController is the thin I/O shell around the pure decisions of
// Controller: it hands each request the node's current image and the time,
// proposes the records the decision returns, and answers once they are
// applied. One goroutine owns the Controller (DESIGN §5: one owner per piece of
// state); requests reach it through a bounded queue, so decisions are made one
// at a time, each on the image that includes the previous one.
//
// On a node that is not the active controller every request is answered with
// NOT_CONTROLLER, and the caller retries against Node.Leader. When the node
// becomes active it starts a fresh Controller, so every broker gets a full
// session timeout to reach the new controller before it is fenced, as KRaft
// does after a failover.
type QuorumController struct {
	node    *Node
	cfg     ControllerConfig
	now     func() time.Time
	start   time.Time // now() when the shell started: see nowMs
	newID   func() UUID
	configs ConfigValidator
	logger  *slog.Logger
	// epoch is the active epoch the run goroutine decides in (0 when
	// not active); only that goroutine touches it. Its proposals go in
	// that epoch only (Node.ProposeIn).
	epoch uint64
	// observerAddr is QuorumControllerOptions.ObserverAddr.
	observerAddr func(*BrokerImage) (string, bool)
	// addObserver is node.AddObserver; tests replace it before the first
	// request, to make it fail or wait.
	addObserver func(id int32, addr string) error

	reqs     chan *controllerCall
	stop     chan struct{}
	stopOnce sync.Once
	done     sync.WaitGroup
}

// QuorumControllerOptions are the shell's collaborators.
type QuorumControllerOptions struct {
	// Now is the clock; time.Now when nil. The shell measures time as the
	// duration since its first reading (time.Time.Sub), which uses the
	// monotonic reading time.Now carries, so that a step of the wall clock
	// does not move broker sessions; a fake clock's times, without one, are
	// compared by their wall clock.
	Now func() time.Time
	// NewID draws topic ids; random when nil.
	NewID func() UUID
	// QueueSize bounds the requests waiting for a decision (default 1024);
	// callers beyond it wait, up to their context's deadline.
	QueueSize int
	// Configs checks the config values CreateTopics and
	// IncrementalAlterConfigs store, and says which are lists; the broker
	// supplies it, since it knows what the names mean. nil accepts every
	// value and treats no config as a list. Only the shell's goroutine
	// calls it, while it decides a request.
	Configs ConfigValidator
	// ObserverAddr is the raft address at which a registered broker-only
	// node receives the metadata log, from its registration; false when
	// the registration gives none. The broker supplies it, since it knows
	// its listeners' names. The shell makes such a broker a non-voter of
	// the quorum at that address (hashicorp/raft pushes the log to the
	// non-voters the leader knows; a KRaft observer would fetch it): right
	// after its registration is decided, and again whenever it decides a
	// heartbeat from it while the raft configuration does not list it
	// there (an earlier add that failed, an address that changed). Voters
	// are never added. nil: the shell adds no non-voters. Only the shell's
	// goroutine calls it.
	ObserverAddr func(*BrokerImage) (addr string, ok bool)
	Logger       *slog.Logger
}

type controllerCall struct {
	ctx context.Context
	req kmsg.Request // nil: timed work, see tick
	// tick: with req nil, all the timed work that is due (Tick), not only
	// the session check (CheckSessions).
	tick  bool
	reply chan controllerReply
}

type controllerReply struct {
	resp   kmsg.Response
	offset uint64 // see HandleAt
	err    error
}

// NewQuorumController starts the shell on node.
func NewQuorumController(node *Node, cfg ControllerConfig, o QuorumControllerOptions) (*QuorumController, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.NewID == nil {
		o.NewID = randomUUID
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 1024
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	q := &QuorumController{node: node, cfg: cfg, now: o.Now, start: o.Now(), newID: o.NewID, configs: o.Configs, logger: o.Logger,
		observerAddr: o.ObserverAddr, addObserver: node.AddObserver,
		reqs: make(chan *controllerCall, o.QueueSize), stop: make(chan struct{})}
	q.done.Add(1)
	go q.run()
	return q, nil
}

func randomUUID() UUID {
	var u UUID
	rand.Read(u[:])
	return u
}

// Handle decides one controller request: BrokerRegistration, BrokerHeartbeat,
// CreateTopics, DeleteTopics, CreatePartitions, AlterPartition,
// AllocateProducerIDs, IncrementalAlterConfigs, AlterConfigs or
// UnregisterBroker. Errors a Kafka client
// should see are in the response; the error return is for requests that
// could not be decided at all (an unsupported API, a cancelled context, a
// stopped controller, a proposal that failed). A response with no error
// means its records are committed and applied: the node's Image holds them.
func (q *QuorumController) Handle(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	resp, _, err := q.HandleAt(ctx, req)
	return resp, err
}

// HandleAt is Handle that also returns the metadata offset the response
// reflects: the raft index of the entry that carried the request's records
// or, when it made none (nothing changed, validate_only, an error), of the
// last entry in the image it was decided on. An image at that offset or
// later shows everything the response reports, and every change decided
// before it: what a broker waits for before it answers its client, so that
// the client reads its own write from that broker. 0 with NOT_CONTROLLER.
func (q *QuorumController) HandleAt(ctx context.Context, req kmsg.Request) (kmsg.Response, uint64, error) {
	switch req.(type) {
	case *kmsg.BrokerRegistrationRequest, *kmsg.BrokerHeartbeatRequest, *kmsg.CreateTopicsRequest,
		*kmsg.DeleteTopicsRequest, *kmsg.CreatePartitionsRequest, *kmsg.AlterPartitionRequest,
		*kmsg.AllocateProducerIDsRequest, *kmsg.IncrementalAlterConfigsRequest, *kmsg.AlterConfigsRequest,
		*kmsg.UnregisterBrokerRequest:
	default:
		return nil, 0, fmt.Errorf("raft: the controller does not handle %T", req)
	}
	r, err := q.call(ctx, req, false)
	return r.resp, r.offset, err
}

// CheckSessions fences the brokers whose sessions have expired now. The shell
// does so by itself when the next session expires; tests with a fake clock
// call it.
func (q *QuorumController) CheckSessions(ctx context.Context) error {
	_, err := q.call(ctx, nil, false)
	return err
}

// Tick does the timed work that is due now on the shell's clock, as its
// own timer does: it fences the brokers whose sessions have expired, runs
// the unclean leader election (Controller.ElectUncleanLeaders) once five
// minutes have passed since its last run, or since the node became the
// active controller, and, with auto.leader.rebalance.enable, the preferred
// leader election (Controller.ElectPreferredLeaders) likewise every
// leader.imbalance.check.interval.seconds. Tests with a fake clock call it
// after moving the clock.
func (q *QuorumController) Tick(ctx context.Context) error {
	_, err := q.call(ctx, nil, true)
	return err
}

// uncleanLeaderElectionIntervalMs is how often the shell runs
// ElectUncleanLeaders: Kafka's unclean.leader.election.interval.ms (an
// internal config), at its default.
const uncleanLeaderElectionIntervalMs = 5 * 60 * 1000

func (q *QuorumController) call(ctx context.Context, req kmsg.Request, tick bool) (controllerReply, error) {
	c := &controllerCall{ctx: ctx, req: req, tick: tick, reply: make(chan controllerReply, 1)}
	select {
	case q.reqs <- c:
	case <-ctx.Done():
		return controllerReply{}, ctx.Err()
	case <-q.stop:
		return controllerReply{}, ErrClosed
	}
	select {
	case r := <-c.reply:
		return r, r.err
	case <-ctx.Done():
		return controllerReply{}, ctx.Err()
	case <-q.stop:
		return controllerReply{}, ErrClosed
	}
}

// ErrClosed is returned by a stopped QuorumController.
var ErrClosed = errors.New("raft: controller stopped")

// Close stops the shell (not the node). It is safe to call twice.
func (q *QuorumController) Close() {
	q.stopOnce.Do(func() { close(q.stop) })
	q.done.Wait()
}

// timedWork is when the shell's periodic work is next due, in milliseconds
// on its clock. It is reset whenever the node becomes the active
// controller, as KRaft schedules its periodic work on activation.
type timedWork struct {
	uncleanAt int64 // the next ElectUncleanLeaders
	balanceAt int64 // the next ElectPreferredLeaders; MaxInt64 when auto.leader.rebalance.enable is off
}

// newTimedWork is the schedule of a controller that becomes active now.
func (q *QuorumController) newTimedWork(now int64) timedWork {
	due := timedWork{uncleanAt: now + uncleanLeaderElectionIntervalMs, balanceAt: math.MaxInt64}
	if q.cfg.AutoLeaderRebalanceEnable {
		due.balanceAt = now + q.balanceIntervalMs()
	}
	return due
}

func (q *QuorumController) balanceIntervalMs() int64 {
	return q.cfg.LeaderImbalanceCheckIntervalSeconds * 1000
}

// next is when the earliest of the work is due.
func (d timedWork) next() int64 { return min(d.uncleanAt, d.balanceAt) }

func (q *QuorumController) run() {
	defer q.done.Done()
	var ctrl *Controller
	var due timedWork
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		activeCh := q.node.ActiveChanged()
		if e, ok := q.node.Active(); ok && e != q.epoch {
			ctrl, _ = NewController(q.cfg) // cfg is validated
			ctrl.SetConfigValidator(q.configs)
			q.epoch = e
			due = q.newTimedWork(q.nowMs())
		} else if !ok {
			ctrl, q.epoch = nil, 0
		}
		if ctrl != nil {
			now := q.nowMs()
			at := due.next()
			if expiry, ok := ctrl.NextExpiry(q.node.Image(), now); ok {
				at = min(at, expiry)
			}
			timer.Reset(time.Duration(max(at-now, 0)+1) * time.Millisecond)
		}
		select {
		case <-q.stop:
			return
		case <-activeCh:
		case <-timer.C:
			if ctrl != nil {
				q.runTimedWork(context.Background(), ctrl, &due)
			}
		case c := <-q.reqs:
			if err := c.ctx.Err(); err != nil {
				// Its caller has gone: deciding it would only write
				// records no one waits for (KRaft fails an event past its
				// deadline the same way). A heartbeat still shows that its
				// broker is alive: its session is refreshed, as KRaft's
				// processExpiredBrokerHeartbeat does, so that a controller
				// too busy to answer heartbeats in time does not go on to
				// fence the brokers sending them.
				if hb, ok := c.req.(*kmsg.BrokerHeartbeatRequest); ok && ctrl != nil {
					ctrl.ExpiredHeartbeat(q.node.Image(), hb, q.nowMs())
				}
				c.reply <- controllerReply{err: err}
				continue
			}
			if c.req == nil {
				var err error
				switch {
				case ctrl == nil:
					err = ErrNotController
				case c.tick:
					err = q.runTimedWork(c.ctx, ctrl, &due)
				default:
					err = q.fenceExpired(c.ctx, ctrl)
				}
				c.reply <- controllerReply{err: err}
				continue
			}
			resp, offset, committed, err := q.decide(c.ctx, ctrl, c.req)
			c.reply <- controllerReply{resp, offset, err}
			if changesUncleanElection(committed) {
				// A topic or the cluster may now allow unclean election:
				// bring back what it can at once, as an operator who
				// enables it expects, not at the next periodic run. The
				// caller has its answer already; the election is the
				// shell's own proposal, as KRaft's is its own event.
				q.electUncleanLeaders(context.Background(), ctrl, &due)
			}
		}
	}
}

// nowMs is the shell's clock for the Controller's decisions: milliseconds
// since the shell started, on the monotonic clock when Now gives one
// (time.Now does). Wall-clock milliseconds (UnixMilli drops the monotonic
// reading) would let an NTP step forward of more than
// broker.session.timeout.ms expire every broker's session at once, and a
// step back keep dead brokers unfenced.
func (q *QuorumController) nowMs() int64 { return q.now().Sub(q.start).Milliseconds() }

// runTimedWork does the timed work that is due: the session check always,
// the unclean and preferred leader elections once their intervals have
// passed.
func (q *QuorumController) runTimedWork(ctx context.Context, ctrl *Controller, due *timedWork) error {
	err := q.fenceExpired(ctx, ctrl)
	if q.nowMs() >= due.uncleanAt {
		err = errors.Join(err, q.electUncleanLeaders(ctx, ctrl, due))
	}
	if q.nowMs() >= due.balanceAt {
		err = errors.Join(err, q.electPreferredLeaders(ctx, ctrl, due))
	}
	return err
}

// electPreferredLeaders runs one pass of ElectPreferredLeaders
// (electLeaders).
func (q *QuorumController) electPreferredLeaders(ctx context.Context, ctrl *Controller, due *timedWork) error {
	return q.electLeaders(ctx, "moving leaderships back to preferred replicas", slog.LevelInfo,
		ctrl.ElectPreferredLeaders, &due.balanceAt, q.balanceIntervalMs())
}

// electUncleanLeaders runs one pass of ElectUncleanLeaders (electLeaders).
func (q *QuorumController) electUncleanLeaders(ctx context.Context, ctrl *Controller, due *timedWork) error {
	return q.electLeaders(ctx, "electing leaders of leaderless partitions where unclean.leader.election.enable allows it", slog.LevelWarn,
		ctrl.ElectUncleanLeaders, &due.uncleanAt, uncleanLeaderElectionIntervalMs)
}

// electLeaders runs one pass of an election, logged as what at level, and
// sets when the next is due (*next): at once when the pass stopped at its
// bound, else after intervalMs.
func (q *QuorumController) electLeaders(ctx context.Context, what string, level slog.Level,
	elect func(*Image) ([]Record, bool), next *int64, intervalMs int64) error {
	records, more := elect(q.node.Image())
	*next = q.nowMs() + intervalMs
	if more {
		*next = q.nowMs()
	}
	if len(records) == 0 {
		return nil
	}
	q.logger.Log(ctx, level, what, "partitions", len(records))
	_, err := q.node.ProposeIn(context.WithoutCancel(ctx), q.epoch, records) // see decide
	if err != nil {
		q.logger.Warn(what, "err", err)
	}
	return err
}

func (q *QuorumController) fenceExpired(ctx context.Context, ctrl *Controller) error {
	records := ctrl.FenceExpired(q.node.Image(), q.nowMs())
	if len(records) == 0 {
		return nil
	}
	_, err := q.node.ProposeIn(context.WithoutCancel(ctx), q.epoch, records) // see decide
	if err != nil {
		q.logger.Warn("fencing brokers whose sessions expired", "err", err)
	}
	return err
}

// decide runs one request's decision and proposes its records. It returns
// the offset HandleAt does, and the records once they are committed.
func (q *QuorumController) decide(ctx context.Context, ctrl *Controller, req kmsg.Request) (kmsg.Response, uint64, []Record, error) {
	if ctrl == nil {
		return notController(req), 0, nil, nil
	}
	im, now := q.node.Image(), q.nowMs()
	var records []Record
	var resp kmsg.Response
	switch r := req.(type) {
	case *kmsg.BrokerRegistrationRequest:
		rs, out := ctrl.RegisterBroker(im, r, now)
		records, resp = rs, out
	case *kmsg.BrokerHeartbeatRequest:
		records, resp = ctrl.Heartbeat(im, r, now)
	case *kmsg.CreateTopicsRequest:
		records, resp = ctrl.CreateTopics(im, r, q.newID)
	case *kmsg.DeleteTopicsRequest:
		records, resp = ctrl.DeleteTopics(im, r)
	case *kmsg.CreatePartitionsRequest:
		records, resp = ctrl.CreatePartitions(im, r)
	case *kmsg.AlterPartitionRequest:
		records, resp = ctrl.AlterPartition(im, r)
	case *kmsg.AllocateProducerIDsRequest:
		records, resp = ctrl.AllocateProducerIDs(im, r)
	case *kmsg.IncrementalAlterConfigsRequest:
		records, resp = ctrl.IncrementalAlterConfigs(im, r)
	case *kmsg.AlterConfigsRequest:
		records, resp = ctrl.AlterConfigs(im, r)
	case *kmsg.UnregisterBrokerRequest:
		records, resp = ctrl.UnregisterBroker(im, r)
	}
	if len(records) == 0 {
		if r, ok := req.(*kmsg.UnregisterBrokerRequest); ok && im.Brokers[r.BrokerID] == nil {
			// Not registered: a retry finishes a removal from the
			// non-voters that failed after the unregistration committed.
			q.removeObserver(r.BrokerID)
		}
		q.ensureObserver(im, req, resp)
		return resp, im.Offset, nil, nil
	}
	// The shell waits for the entry even if the caller gives up (call
	// answers the caller when its context ends): the entry commits anyway,
	// and the next decision must be made on an image that holds it, or it
	// can contradict it (a second topic of the same name), in an entry no
	// node can apply. Propose still ends if the node loses leadership or
	// stops.
	applied, err := q.node.ProposeIn(context.WithoutCancel(ctx), q.epoch, records)
	if errors.Is(err, ErrNotController) {
		return notController(req), 0, nil, nil
	}
	if err != nil {
		return nil, 0, nil, err
	}
	if r, ok := req.(*kmsg.UnregisterBrokerRequest); ok {
		q.removeObserver(r.BrokerID)
	}
	if r, ok := resp.(*kmsg.BrokerRegistrationResponse); ok {
		if b, ok := applied.Brokers[req.(*kmsg.BrokerRegistrationRequest).BrokerID]; ok {
			r.BrokerEpoch = b.Epoch
		}
	}
	q.ensureObserver(applied, req, resp)
	return resp, applied.Offset, records, nil
}

// ensureObserver makes the broker that req (a BrokerRegistration or a
// BrokerHeartbeat answered without error) comes from a non-voter of the
// quorum, at the address ObserverAddr gives for its registration in im,
// unless it is a voter or the latest raft configuration lists it there
// already. It runs in the controller's loop, as removeObserver does, so
// adds and removals happen in the order their requests were decided: a
// registration decided just before an UnregisterBroker cannot add the
// node back after the unregistration took it out, and a heartbeat from an
// unregistered broker is answered STALE_BROKER_EPOCH and adds nothing.
//
// Checking on every heartbeat is what makes the add self-healing: a
// broker-only node whose add failed after its registration committed
// (leadership lost, a timeout) gets no log, so it stays fenced but its
// heartbeats succeed and it never registers again; its next heartbeat
// adds it. The check reads raft's latest configuration, which is cheap
// (see Node.member), and a configuration change is made only when the
// node is missing or listed at another address. A failure is logged and
// the next heartbeat tries again.
func (q *QuorumController) ensureObserver(im *Image, req kmsg.Request, resp kmsg.Response) {
	if q.observerAddr == nil {
		return
	}
	var id int32
	switch r := req.(type) {
	case *kmsg.BrokerRegistrationRequest:
		if resp.(*kmsg.BrokerRegistrationResponse).ErrorCode != 0 {
			return
		}
		id = r.BrokerID
	case *kmsg.BrokerHeartbeatRequest:
		if resp.(*kmsg.BrokerHeartbeatResponse).ErrorCode != 0 {
			return
		}
		id = r.BrokerID
	default:
		return
	}
	b := im.Brokers[id]
	if b == nil || q.node.isVoter(id) {
		return
	}
	addr, ok := q.observerAddr(b)
	if !ok {
		return
	}
	if there, err := q.node.observerAt(id, addr); err != nil || there {
		return
	}
	if err := q.addObserver(id, addr); err != nil {
		q.logger.Warn("adding a broker-only node to the quorum's non-voters; its next heartbeat tries again", "broker", id, "addr", addr, "err", err)
	}
}

// removeObserver takes an unregistered broker-only node out of the
// quorum's non-voters, so the leader stops sending the log to an address
// that is gone. It runs in the controller's loop, before the next request
// is decided: a broker still running registers again at its next
// heartbeat and is added back then (ensureObserver), which must come after
// this removal, not before it. A failure is logged; the client's retry of
// the UnregisterBroker, answered BROKER_ID_NOT_REGISTERED, tries again.
func (q *QuorumController) removeObserver(id int32) {
	if err := q.node.RemoveObserver(id); err != nil {
		q.logger.Warn("removing an unregistered broker from the quorum's non-voters", "broker", id, "err", err)
	}
}

// notController is the request's response with NOT_CONTROLLER everywhere an
// error code goes.
func notController(req kmsg.Request) kmsg.Response {
	return ErrorResponse(req, kerr.NotController.Code)
}

// ErrorResponse is the response to one of the requests Handle decides with
// code everywhere an error code goes: what a caller answers when the request
// could not be decided (no controller reachable in time).
func ErrorResponse(req kmsg.Request, code int16) kmsg.Response {
	resp := req.ResponseKind()
	switch r := resp.(type) {
	case *kmsg.BrokerRegistrationResponse:
		r.ErrorCode = code
	case *kmsg.BrokerHeartbeatResponse:
		r.ErrorCode = code
	case *kmsg.AlterPartitionResponse:
		r.ErrorCode = code
	case *kmsg.AllocateProducerIDsResponse:
		r.ErrorCode = code
	case *kmsg.UnregisterBrokerResponse:
		r.ErrorCode = code
	case *kmsg.IncrementalAlterConfigsResponse:
		for _, res := range req.(*kmsg.IncrementalAlterConfigsRequest).Resources {
			rr := kmsg.NewIncrementalAlterConfigsResponseResource()
			rr.ResourceType, rr.ResourceName, rr.ErrorCode = res.ResourceType, res.ResourceName, code
			r.Resources = append(r.Resources, rr)
		}
	case *kmsg.AlterConfigsResponse:
		for _, res := range req.(*kmsg.AlterConfigsRequest).Resources {
			rr := kmsg.NewAlterConfigsResponseResource()
			rr.ResourceType, rr.ResourceName, rr.ErrorCode = res.ResourceType, res.ResourceName, code
			r.Resources = append(r.Resources, rr)
		}
	case *kmsg.CreateTopicsResponse:
		for _, t := range req.(*kmsg.CreateTopicsRequest).Topics {
			rt := kmsg.NewCreateTopicsResponseTopic()
			rt.Topic, rt.ErrorCode = t.Topic, code
			r.Topics = append(r.Topics, rt)
		}
	case *kmsg.DeleteTopicsResponse:
		dr := req.(*kmsg.DeleteTopicsRequest)
		for _, name := range dr.TopicNames {
			rt := kmsg.NewDeleteTopicsResponseTopic()
			rt.Topic, rt.ErrorCode = kmsg.StringPtr(name), code
			r.Topics = append(r.Topics, rt)
		}
		for _, t := range dr.Topics {
			rt := kmsg.NewDeleteTopicsResponseTopic()
			rt.Topic, rt.TopicID, rt.ErrorCode = t.Topic, t.TopicID, code
			r.Topics = append(r.Topics, rt)
		}
	case *kmsg.CreatePartitionsResponse:
		for _, t := range req.(*kmsg.CreatePartitionsRequest).Topics {
			rt := kmsg.NewCreatePartitionsResponseTopic()
			rt.Topic, rt.ErrorCode = t.Topic, code
			r.Topics = append(r.Topics, rt)
		}
	}
	return resp
}
