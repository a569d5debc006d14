package broker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	hraft "github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/netio"
	"gregor/raft"
	"gregor/segment"
)

// Broker is one Gregor node: the partitions it hosts, its member of the
// metadata quorum (a voter that may be the active controller, or a
// non-voter following the log), and its client listener.
type Broker struct {
	cfg    Config
	logger *slog.Logger
	now    func() time.Time

	logs    *segment.Manager
	node    *raft.Node
	ctrl    *raft.QuorumController // nil on a broker-only node
	ctrlNet *controllerServer      // the controller listener's Kafka side; nil on a broker-only node
	net     netio.Engine
	ln      net.Listener
	metrics *metrics

	incarnation raft.UUID
	epoch       atomic.Int64 // the broker epoch the controller gave this incarnation; 0 before
	fenced      atomic.Bool
	// leaving is set when a controlled shutdown begins: from then on every
	// heartbeat, the lifecycle loop's too, asks to shut down, as Kafka's
	// BrokerLifecycleManager does. A heartbeat that did not would unfence
	// the broker the controller has just fenced for its shutdown, and the
	// controller would place new partitions on a stopped broker.
	leaving atomic.Bool
	// heartbeatMu lets one heartbeat at a time be on its way, as Kafka's
	// BrokerLifecycleManager sends them from one queue: a lifecycle
	// heartbeat built before leaving was set must be answered before the
	// shutdown's first is sent, or it could reach the controller after the
	// fence and undo it.
	heartbeatMu sync.Mutex
	ready       chan struct{} // closed once registered and unfenced
	readyOnce   sync.Once
	// failed is closed when the broker stops serving on its own, before
	// Close; failErr, written once before, says why.
	failed   chan struct{}
	failOnce sync.Once
	failErr  error

	partitions struct {
		sync.RWMutex
		m map[segment.TopicPartition]hosted
	}
	producerIDs struct {
		sync.Mutex
		next, end int64
	}
	coords  coordinators
	appends appendLanes
	// decompressions bounds the produced records being decompressed at
	// once (DecompressionMaxBytes).
	decompressions *decompressionBudget
	// produces holds back a connection's other requests while its Produce
	// requests are being appended.
	produces unfinishedProduces

	metadataChanged chan struct{} // cap 1: the image moved, reconcile
	// servingClients is closed once the first image after the catch-up is
	// published (runMetadata): the client listener accepts from then on.
	servingClients chan struct{}
	published      atomic.Pointer[raft.Image]
	imageMu        sync.Mutex
	imageCh        chan struct{} // closed on the next image change
	stop           chan struct{}
	stopOnce       sync.Once
	wg             sync.WaitGroup

	// hooks let tests stop the broker's goroutines at chosen points
	// (export_test.go); nil outside tests.
	hooks struct {
		beforeFollow atomic.Pointer[func()] // runMetadata, on a new image, before it follows it
		imageWait    atomic.Pointer[func()] // waitForImage, as it starts to wait
	}
}

// runHook calls the hook h holds, if any.
func runHook(h *atomic.Pointer[func()]) {
	if f := h.Load(); f != nil {
		(*f)()
	}
}

// Options are a broker's collaborators.
type Options struct {
	Logger *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Transport replaces the quorum's TCP transport (tests).
	Transport hraft.Transport
	// RaftLog receives hashicorp/raft's own output; standard error when nil.
	RaftLog interface{ Write([]byte) (int, error) }
	// ClientListener and ControllerListener, when set, are used instead of
	// listening on Config.Listener and the quorum address: a test binds
	// port 0 first so that it knows the addresses to put in the config.
	ClientListener, ControllerListener net.Listener
}

// Start opens the storage, joins the metadata quorum, binds the listener and
// starts serving; it does not wait for the broker to be registered and
// unfenced (WaitReady does).
func Start(cfg Config, o Options) (_ *Broker, err error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	b := &Broker{cfg: cfg, logger: o.Logger.With("node", cfg.NodeID), now: o.Now,
		ready: make(chan struct{}), imageCh: make(chan struct{}), metadataChanged: make(chan struct{}, 1),
		servingClients: make(chan struct{}), stop: make(chan struct{}), failed: make(chan struct{})}
	b.metrics = newMetrics(b)
	b.decompressions = newDecompressionBudget(cfg.DecompressionMaxBytes)
	b.partitions.m = make(map[segment.TopicPartition]hosted)
	b.coords.shards = make(map[int32]*shard)
	rand.Read(b.incarnation[:])
	b.fenced.Store(true)
	defer func() {
		if err != nil {
			b.Close()
		}
	}()

	isBroker := cfg.Quorum.IsBroker()
	if isBroker {
		// Without ConfigFor: the topics' configs are in the metadata quorum,
		// which may answer late, so the logs found here wait, untouched by
		// retention and the cleaner, until reconcile gives them theirs.
		if b.logs, err = segment.OpenManager(cfg.Storage, segment.ManagerOptions{Now: o.Now, Logger: b.logger}); err != nil {
			return nil, err
		}
		if b.ln = o.ClientListener; b.ln == nil {
			if b.ln, err = net.Listen("tcp", cfg.Listener); err != nil {
				return nil, fmt.Errorf("broker: listen on %s: %w", cfg.Listener, err)
			}
		}
	} else if o.ClientListener != nil {
		o.ClientListener.Close()
	}
	// Every node has a controller listener: a voter's carries the quorum
	// and the brokers' controller requests; a broker-only node's receives
	// the metadata log as a raft non-voter.
	{
		ln := o.ControllerListener
		if ln == nil {
			if ln, err = net.Listen("tcp", cfg.Quorum.Addr); err != nil {
				return nil, fmt.Errorf("broker: controller listener on %s: %w", cfg.Quorum.Addr, err)
			}
		}
		b.ctrlNet = newControllerServer(b, ln)
		if o.Transport == nil {
			o.Transport = b.ctrlNet.raftTransport()
		}
	}
	nodeOpts := raft.NodeOptions{Transport: o.Transport, Logger: o.Logger, OnApply: func(*raft.Image, *raft.Delta) { b.notifyMetadata() }}
	if o.RaftLog != nil {
		nodeOpts.RaftLog = o.RaftLog
	}
	if b.node, err = raft.StartNode(cfg.Quorum, nodeOpts); err != nil {
		return nil, err
	}
	if cfg.Quorum.IsVoter() {
		if b.ctrl, err = raft.NewQuorumController(b.node, cfg.Controller, raft.QuorumControllerOptions{
			Now: o.Now, Logger: b.logger, Configs: topicConfigValidator{cfg: &b.cfg}, ObserverAddr: observerAddr}); err != nil {
			return nil, err
		}
	}
	b.ctrlNet.serve()
	b.wg.Add(2)
	go func() { defer b.wg.Done(); b.runMetadata() }()
	go func() {
		defer b.wg.Done()
		select {
		case <-b.node.Stopped():
			err := b.node.Err()
			if err == nil {
				err = errors.New("shut down")
			}
			b.fail(fmt.Errorf("metadata quorum node stopped: %w", err))
		case <-b.stop:
		}
	}()
	b.notifyMetadata()
	if !isBroker {
		// A controller-only node serves no clients and hosts no partitions:
		// it is ready once it is part of the quorum.
		b.readyOnce.Do(func() { close(b.ready) })
		b.logger.Info("controller started", "controller.listener", b.ctrlNet.ln.Addr())
		return b, nil
	}
	if b.net, err = netio.New(cfg.Net, b, netio.Options{Logger: b.logger}); err != nil {
		return nil, err
	}
	b.wg.Add(3)
	go func() {
		defer b.wg.Done()
		// Bound already, so clients connecting meanwhile wait in the
		// backlog; Serve after Close closes the listener.
		select {
		case <-b.servingClients:
		case <-b.stop:
		}
		if err := b.net.Serve(b.ln); err != nil && !errors.Is(err, netio.ErrServerClosed) {
			b.logger.Error("client listener stopped", "err", err)
			b.fail(fmt.Errorf("client listener stopped: %w", err))
		}
	}()
	go func() { defer b.wg.Done(); b.runLifecycle() }()
	go func() {
		defer b.wg.Done()
		b.logs.Run(b.stop, cfg.LogFlushSchedulerInterval, cfg.LogRetentionCheckInterval, cfg.LogFlushOffsetCheckpointInterval)
	}()
	b.logger.Info("broker started", "listener", b.ln.Addr(), "roles", cfg.Quorum.Roles, "log.dirs", cfg.Storage.LogDirs)
	return b, nil
}

// Addr is the client listener's address; nil on a controller-only node.
func (b *Broker) Addr() net.Addr {
	if b.ln == nil {
		return nil
	}
	return b.ln.Addr()
}

// IsBroker reports whether the node has the broker role (serves clients
// and hosts partitions).
func (b *Broker) IsBroker() bool { return b.ln != nil }

// ControllerAddr is the controller listener's address.
func (b *Broker) ControllerAddr() net.Addr { return b.ctrlNet.ln.Addr() }

// controllerListenerName names the controller listener in a broker's
// registration.
const controllerListenerName = "CONTROLLER"

// observerAddr is the raft address of a broker-only node, from its
// registration: its controller listener, which only broker-only nodes
// register (register). The active controller keeps such a node among the
// quorum's non-voters at that address (raft.QuorumControllerOptions), so
// that the metadata log reaches it.
func observerAddr(b *raft.BrokerImage) (string, bool) {
	for _, e := range b.Endpoints {
		if e.Name == controllerListenerName {
			return net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port))), true
		}
	}
	return "", false
}

// IsActiveController reports whether this node is the active controller.
func (b *Broker) IsActiveController() bool {
	if b.ctrl == nil {
		return false
	}
	_, ok := b.node.Active()
	return ok
}

// NodeID is node.id.
func (b *Broker) NodeID() int32 { return b.cfg.NodeID }

// NetStats are the network layer's counters (bytes sent by sendfile and by
// copy, connections).
func (b *Broker) NetStats() netio.Stats {
	if b.net == nil {
		return netio.Stats{}
	}
	return b.net.Stats()
}

// Ready is closed once the broker is registered and its published image
// shows it unfenced: it may lead partitions, and Metadata lists it.
func (b *Broker) Ready() <-chan struct{} { return b.ready }

// WaitReady waits until the broker is registered and unfenced.
func (b *Broker) WaitReady(ctx context.Context) error {
	select {
	case <-b.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("broker %d: not ready: %w", b.cfg.NodeID, ctx.Err())
	case <-b.stop:
		return errors.New("broker: closed")
	}
}

// Failed is closed when the broker stops serving on its own rather than by
// Close: its client or controller listener stopped accepting connections,
// or its metadata quorum node stopped. Err says why. The broker still has
// to be closed.
func (b *Broker) Failed() <-chan struct{} { return b.failed }

// Err is why the broker stopped serving on its own; nil while Failed is
// open.
func (b *Broker) Err() error {
	select {
	case <-b.failed:
		return b.failErr
	default:
		return nil
	}
}

// fail records that the broker stopped serving on its own. Once Close has
// begun stopping it, nothing is a failure.
func (b *Broker) fail(err error) {
	select {
	case <-b.stop:
		return
	default:
	}
	b.failOnce.Do(func() {
		b.failErr = err
		close(b.failed)
	})
}

// Image is the metadata image this broker serves from.
func (b *Broker) Image() *raft.Image { return b.image() }

// Close shuts the broker down in order: a controlled shutdown (the
// controller moves leadership away and fences the broker), then the
// listener, the metadata work, the quorum member, and the logs (writing the
// clean-shutdown marker).
func (b *Broker) Close() error {
	var errs []error
	b.stopOnce.Do(func() {
		if b.node != nil && b.epoch.Load() > 0 {
			b.controlledShutdown()
		}
		close(b.stop)
		// Parked JoinGroup and SyncGroup requests are answered
		// (NOT_COORDINATOR) before the network layer waits for every
		// answer.
		b.stopCoordinators()
		if b.net != nil {
			errs = append(errs, b.net.Close())
		} else if b.ln != nil {
			b.ln.Close()
		}
		b.partitions.Lock()
		for _, h := range b.partitions.m {
			h.p.BecomeFollower(-1)
		}
		b.partitions.Unlock()
		b.wg.Wait()
		if b.ctrl != nil {
			b.ctrl.Close()
		}
		if b.node != nil {
			errs = append(errs, b.node.Shutdown())
		}
		if b.ctrlNet != nil {
			b.ctrlNet.close()
		}
		if b.logs != nil {
			// Each partition's producer state goes to a snapshot
			// before its log closes.
			b.partitions.Lock()
			for _, h := range b.partitions.m {
				h.p.Close()
			}
			b.partitions.Unlock()
			errs = append(errs, b.logs.Close())
		}
	})
	return errors.Join(errs...)
}

// notifyMetadata asks the metadata goroutine to reconcile with the image.
func (b *Broker) notifyMetadata() {
	select {
	case b.metadataChanged <- struct{}{}:
	default:
	}
}

// publish makes im the image requests are served from, once the partitions
// follow it, and wakes those waiting for the image to change. Serving the
// raw latest image instead would tell clients of leaders whose logs are not
// open yet.
func (b *Broker) publish(im *raft.Image) {
	b.published.Store(im)
	// Ready once the image clients are served from lists this broker as
	// live: before that, Metadata would not name it.
	if bi, ok := im.Brokers[b.cfg.NodeID]; ok && !bi.Fenced && bi.Epoch == b.epoch.Load() && b.IsBroker() {
		b.readyOnce.Do(func() { close(b.ready) })
	}
	b.imageMu.Lock()
	close(b.imageCh)
	b.imageCh = make(chan struct{})
	b.imageMu.Unlock()
}

// image is the published metadata image.
func (b *Broker) image() *raft.Image {
	if im := b.published.Load(); im != nil {
		return im
	}
	return raft.NewImage()
}

// ImageChanged is closed when the published image next changes.
func (b *Broker) ImageChanged() <-chan struct{} { return b.imageWaiter() }

// imageWaiter is closed when the image next changes.
func (b *Broker) imageWaiter() <-chan struct{} {
	b.imageMu.Lock()
	defer b.imageMu.Unlock()
	return b.imageCh
}

// controller sends a request to the active controller: the local one on a
// voter that is active, otherwise over the controller listener of the
// quorum's leader.
func (b *Broker) controller(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	resp, _, err := b.controllerAt(ctx, req)
	return resp, err
}

// controllerAt is controller that also returns the metadata offset the
// response reflects (raft.QuorumController.HandleAt); 0 when the
// controller's answer did not carry it (a response of a version without
// tagged fields, over the controller listener).
func (b *Broker) controllerAt(ctx context.Context, req kmsg.Request) (kmsg.Response, uint64, error) {
	for attempt := 0; ; attempt++ {
		resp, offset, err := b.controllerOnce(ctx, req)
		if err == nil && !notControllerResponse(resp) {
			return resp, offset, nil
		}
		if err != nil {
			b.logger.Debug("controller request failed", "api", kmsg.NameForKey(req.Key()), "err", err)
		}
		// Wait for the quorum to settle on an active controller: the next
		// leadership change, or a short backoff.
		backoff := time.Duration(min(attempt+1, 10)) * 50 * time.Millisecond
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			if err == nil {
				return resp, 0, nil // NOT_CONTROLLER: the client retries
			}
			return nil, 0, fmt.Errorf("broker: no active controller answered: %w", errors.Join(err, ctx.Err()))
		case <-b.stop:
			t.Stop()
			return nil, 0, errors.New("broker: closed")
		case <-t.C:
		}
	}
}

func (b *Broker) controllerOnce(ctx context.Context, req kmsg.Request) (kmsg.Response, uint64, error) {
	if b.ctrl != nil {
		if _, ok := b.node.Active(); ok {
			return b.ctrl.HandleAt(ctx, req)
		}
	}
	if id, ok := b.node.Leader(); ok {
		for _, v := range b.cfg.Quorum.Voters {
			if v.ID == id && v.ID != b.cfg.NodeID {
				return requestController(ctx, v.Addr, b.cfg.NodeID, req)
			}
		}
	}
	// The leader is unknown here: a broker-only node learns it only once
	// it follows the log, which needs its registration first. Ask each
	// voter; the inactive ones answer NOT_CONTROLLER.
	var errs []error
	for _, v := range b.cfg.Quorum.Voters {
		if v.ID == b.cfg.NodeID {
			continue
		}
		resp, offset, err := requestController(ctx, v.Addr, b.cfg.NodeID, req)
		if err == nil && !notControllerResponse(resp) {
			return resp, offset, nil
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("controller %d at %s: %w", v.ID, v.Addr, err))
		}
	}
	if len(errs) == 0 {
		return nil, 0, errors.New("no voter is the active controller")
	}
	return nil, 0, errors.Join(errs...)
}

// notControllerResponse reports whether a controller answered NOT_CONTROLLER
// (it lost leadership between the lookup and the request).
func notControllerResponse(resp kmsg.Response) bool {
	code := int16(0)
	switch r := resp.(type) {
	case *kmsg.BrokerRegistrationResponse:
		code = r.ErrorCode
	case *kmsg.BrokerHeartbeatResponse:
		code = r.ErrorCode
	case *kmsg.AllocateProducerIDsResponse:
		code = r.ErrorCode
	case *kmsg.CreateTopicsResponse:
		if len(r.Topics) > 0 {
			code = r.Topics[0].ErrorCode
		}
	case *kmsg.DeleteTopicsResponse:
		if len(r.Topics) > 0 {
			code = r.Topics[0].ErrorCode
		}
	case *kmsg.CreatePartitionsResponse:
		if len(r.Topics) > 0 {
			code = r.Topics[0].ErrorCode
		}
	case *kmsg.IncrementalAlterConfigsResponse:
		if len(r.Resources) > 0 {
			code = r.Resources[0].ErrorCode
		}
	case *kmsg.AlterConfigsResponse:
		if len(r.Resources) > 0 {
			code = r.Resources[0].ErrorCode
		}
	case *kmsg.UnregisterBrokerResponse:
		code = r.ErrorCode
	}
	return code == kerr.NotController.Code
}

// runLifecycle registers the broker with the controller and heartbeats,
// unfencing it once its metadata has caught up, until Close.
func (b *Broker) runLifecycle() {
	t := time.NewTicker(b.cfg.BrokerHeartbeatInterval / 4)
	defer t.Stop()
	last := time.Time{}
	for {
		// Not registered yet, or the controller forgot this incarnation
		// (a heartbeat answered STALE_BROKER_EPOCH): register, here and
		// only here, so that two registrations never race.
		// Not once a shutdown has begun: the broker is leaving.
		for b.epoch.Load() == 0 {
			if b.leaving.Load() || !b.register() {
				return
			}
		}
		interval := b.cfg.BrokerHeartbeatInterval
		if b.fenced.Load() {
			// Ask to be unfenced as soon as the metadata has caught up.
			interval /= 4
		}
		if time.Since(last) >= interval {
			b.heartbeat()
			last = time.Now()
		}
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
	}
}

func (b *Broker) register() bool {
	req := kmsg.NewPtrBrokerRegistrationRequest()
	req.Version = 1
	req.BrokerID = b.cfg.NodeID
	req.ClusterID = b.cfg.ClusterID
	req.IncarnationID = b.incarnation
	host, port := b.advertised()
	l := kmsg.NewBrokerRegistrationRequestListener()
	l.Name, l.Host, l.Port, l.SecurityProtocol = "PLAINTEXT", host, uint16(port), 0
	req.Listeners = append(req.Listeners, l)
	if !b.cfg.Quorum.IsVoter() {
		// The active controller adds a broker-only node to the quorum as a
		// non-voter at this address (observerAddr), so the metadata log
		// reaches it: after the registration, and at any heartbeat while
		// the quorum lacks it (an add that failed, an address that moved).
		chost, cport, _ := net.SplitHostPort(b.ctrlNet.ln.Addr().String())
		p, _ := strconv.Atoi(cport)
		cl := kmsg.NewBrokerRegistrationRequestListener()
		cl.Name, cl.Host, cl.Port, cl.SecurityProtocol = controllerListenerName, chost, uint16(p), 0
		req.Listeners = append(req.Listeners, cl)
	}
	if b.cfg.Rack != "" {
		req.Rack = &b.cfg.Rack
	}
	ctx, cancel := b.stopContext(b.cfg.RequestTimeout)
	defer cancel()
	resp, err := b.controller(ctx, req)
	if err != nil {
		select {
		case <-b.stop:
			return false
		default:
		}
		b.logger.Warn("registering with the controller", "err", err)
		return true
	}
	r := resp.(*kmsg.BrokerRegistrationResponse)
	if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
		b.logger.Error("the controller refused the registration", "err", err)
		select {
		case <-b.stop:
			return false
		case <-time.After(b.cfg.BrokerHeartbeatInterval):
			return true
		}
	}
	b.epoch.Store(r.BrokerEpoch)
	b.logger.Info("registered with the controller", "broker.epoch", r.BrokerEpoch)
	return true
}

// heartbeat sends one BrokerHeartbeat (asking to shut down once the broker
// is leaving) and notes whether the controller has the broker fenced. nil
// means no answer came.
func (b *Broker) heartbeat() *kmsg.BrokerHeartbeatResponse {
	b.heartbeatMu.Lock()
	defer b.heartbeatMu.Unlock()
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.BrokerID = b.cfg.NodeID
	req.BrokerEpoch = b.epoch.Load()
	req.CurrentMetadataOffset = int64(b.image().Offset)
	req.WantShutdown = b.leaving.Load()
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.BrokerHeartbeatInterval)
	defer cancel()
	resp, _, err := b.controllerOnce(ctx, req)
	if err != nil {
		b.logger.Debug("heartbeat", "err", err)
		return nil
	}
	r := resp.(*kmsg.BrokerHeartbeatResponse)
	switch r.ErrorCode {
	case 0:
	case kerr.StaleBrokerEpoch.Code:
		// The controller no longer knows this incarnation (it was
		// unregistered): register again.
		b.logger.Warn("the controller does not know this broker epoch; registering again")
		b.epoch.Store(0)
		return r
	default:
		b.logger.Debug("heartbeat", "err", kerr.ErrorForCode(r.ErrorCode))
		return r
	}
	wasFenced := b.fenced.Swap(r.IsFenced)
	if wasFenced && !r.IsFenced {
		b.logger.Info("unfenced: serving")
	} else if !wasFenced && r.IsFenced {
		b.logger.Warn("fenced by the controller")
	}
	return r
}

// controlledShutdown asks the controller to move this broker's leadership
// away and fence it, as Kafka's controlled shutdown does, so clients move
// to the new leaders before the listener closes.
func (b *Broker) controlledShutdown() {
	b.leaving.Store(true)
	deadline := time.Now().Add(b.cfg.ControlledShutdownTimeout)
	for time.Now().Before(deadline) {
		r := b.heartbeat()
		if r != nil && r.ShouldShutdown {
			b.logger.Info("controlled shutdown complete")
			return
		}
		if r != nil && r.ErrorCode == kerr.StaleBrokerEpoch.Code {
			return
		}
		if _, ok := b.node.Leader(); !ok {
			// No quorum to ask (the last voter is stopping): nothing moves.
			return
		}
		// Ask again once the controller's moves reach this broker's image,
		// or after a short wait if they do not.
		t := time.NewTimer(b.cfg.BrokerHeartbeatInterval / 4)
		select {
		case <-b.imageWaiter():
		case <-t.C:
		}
		t.Stop()
	}
	b.logger.Warn("controlled shutdown timed out", "timeout", b.cfg.ControlledShutdownTimeout)
}

// stopContext is a context that ends after d or when the broker closes.
func (b *Broker) stopContext(d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	go func() {
		select {
		case <-b.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// advertised is the host and port Metadata gives clients for this broker.
func (b *Broker) advertised() (string, int) {
	host, portStr, _ := net.SplitHostPort(b.ln.Addr().String())
	port, _ := strconv.Atoi(portStr)
	if b.cfg.AdvertisedHost != "" {
		host = b.cfg.AdvertisedHost
	}
	if b.cfg.AdvertisedPort != 0 {
		port = b.cfg.AdvertisedPort
	}
	return host, port
}
