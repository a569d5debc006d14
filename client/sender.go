package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/batch"
)

// The sender is the producer's one goroutine that owns sending: for each
// broker that can take another request (fewer than
// max.in.flight.requests.per.connection outstanding) and leads a partition
// with a ready batch, it drains one request's worth of batches from the
// accumulator (one per partition, in the accumulator's rotating order, up to
// max.request.size), assigns sequence numbers, pipelines the request on the
// broker's connection, and decides what each response means for each batch
// (done, retry, fail, bump the epoch). Batches wait in the accumulator, not
// here, until a request can carry them: there they go on filling, their turn
// comes in rotation, and delivery.timeout.ms expires them. All its state is
// its own; connections and the InitProducerId helper talk to it through
// bounded channels.

// batch states, in the sender's per-partition queue.
const (
	batchQueued   = iota // waiting to be sent (again)
	batchInFlight        // in a request without an answer yet
	batchDone            // acknowledged or failed; waiting for earlier batches
)

// pbatch is the sender's record of one batch.
type pbatch struct {
	b        *producerBatch
	part     *partState
	state    int
	attempts int // times sent
	retryAt  time.Time
	lastErr  error

	// Sequence assigned on first send under its partition's (pid, epoch),
	// kept across retries, so that a resend of a batch that was written is
	// a duplicate the broker drops; -1 before that, or after its partition
	// restarted its sequences (startSequences).
	seq   int32
	pid   int64
	epoch int16

	// Result.
	err        error
	baseOffset int64
	appendTime int64
}

// partState is one partition's queue: every batch drained for it and not yet
// handed to the callbacks, oldest first. Callbacks run in this order whatever
// order responses come in, and a retried batch keeps its place, so it is sent
// before later ones.
type partState struct {
	tp       TopicPartition
	batches  []*pbatch
	inflight int
	dirty    bool // has a done batch that may be completable
	// retrying is set while the partition is on the sender's retrying
	// list: it may hold batches to send again (batchQueued) or a resent
	// batch in flight, and while it does, nothing newer is drained for it.
	retrying bool
	held     bool // has a batch to resend, or one resent in flight; set by sendAll each round

	// The producer id and epoch this partition's sequences belong to. After
	// a bump they stay the old ones while the partition has batches that
	// were numbered under them and are not settled (stale): those are
	// resent as they were, and nothing new is sent for the partition until
	// they settle, as Java keeps a partition on its old epoch while it has
	// batches in flight.
	pid   int64
	epoch int16
	stale bool
	// restart: the batch numbered restartSeq here failed, or must be sent
	// again under a new epoch; at the bump it and the batches after it are
	// numbered again from 0 (see markRestart).
	restart    bool
	restartSeq int32
	nextSeq    int32 // sequence for the next batch sent first time
	ackedSeq   int32 // sequence after the last acknowledged batch
	// firstAckedSeq is the sequence of the earliest batch acknowledged
	// under pid and epoch, -1 none: the broker had the producer's state
	// from there on (see writtenBefore).
	firstAckedSeq int32
}

// brokerState is one broker's in-flight count and sendAll's scratch for it.
type brokerState struct {
	inflight int
	// Per round of sendAll: the partitions it leads that may be drained
	// now (in the accumulator's order), whether any has a ready batch, and
	// batches to send again.
	parts   []TopicPartition
	ready   bool
	retries []*pbatch
}

// produceReq is one Produce request on its way, and its answer.
type produceReq struct {
	broker  int32
	batches []*pbatch
	resp    kmsg.Response
	err     error
}

type pidResult struct {
	id    int64
	epoch int16
	err   error
}

type sender struct {
	p   *Producer
	log *slog.Logger

	idempotent      bool
	acks            int16
	maxInFlight     int
	retries         int
	retryBackoff    time.Duration
	deliveryTimeout time.Duration
	requestTimeout  time.Duration
	maxRequestSize  int

	parts    map[TopicPartition]*partState
	brokers  map[int32]*brokerState
	dirty    []*partState
	retrying []*partState // partitions that may hold batches to send again
	stale    []*partState // partitions still on an older producer id

	results chan *produceReq
	pidCh   chan pidResult
	stopCh  chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup // InitProducerId goroutines

	pid         int64
	epoch       int16
	havePID     bool
	fetchingPID bool
	needBump    bool
	pidRetryAt  time.Time
	fatal       error

	nextWake   time.Time // earliest retry backoff end
	nextExpiry time.Time // earliest delivery.timeout.ms of a queued batch
	// From the accumulator's last Ready: when its next batch is ready by
	// linger.ms, and its oldest batch's creation (for delivery.timeout.ms).
	lingerNext, accOldest time.Time

	pending   []batch.Pending[TopicPartition]
	stampFn   batch.Stamp[TopicPartition] // s.stamp, nil unless idempotent
	stamped   []int32                     // sequences stamp gave, in order
	drained   []*producerBatch
	reqList   []*pbatch
	completed []*pbatch
}

func newSender(p *Producer) *sender {
	cfg := p.cfg
	s := &sender{
		p:               p,
		log:             p.log,
		idempotent:      cfg.EnableIdempotence,
		acks:            p.acks,
		maxInFlight:     cfg.MaxInFlightRequestsPerConnection,
		retries:         cfg.Retries,
		retryBackoff:    batch.Millis(cfg.RetryBackoffMs),
		deliveryTimeout: batch.Millis(cfg.DeliveryTimeoutMs),
		requestTimeout:  batch.Millis(cfg.RequestTimeoutMs),
		maxRequestSize:  cfg.MaxRequestSize,
		parts:           make(map[TopicPartition]*partState),
		brokers:         make(map[int32]*brokerState),
		// Connections deliver results here; the sender never blocks on
		// anything else for long, so a modest buffer suffices.
		results: make(chan *produceReq, 64),
		pidCh:   make(chan pidResult, 1),
		stopCh:  make(chan struct{}),
		done:    make(chan struct{}),
		pid:     -1,
		epoch:   -1,
	}
	if s.idempotent {
		s.stampFn = s.stamp
	}
	return s
}

func (s *sender) run() {
	defer close(s.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		// Taken before sendAll reads the metadata snapshot, so that
		// metadata published while it works wakes the select below.
		mdCh := s.p.cl.changedCh()
		now := time.Now()
		s.expire(now)
		s.maybeInitPID(now)
		s.sendAll(now)
		s.complete()

		// Sleep until the next deadline. Deadlines already past were acted
		// on in this pass (or cannot be yet, like a retry waiting for
		// batches in flight, or a ready batch whose broker has its fill of
		// requests, whose answers wake us): counting them would spin.
		var accExpiry time.Time
		if !s.accOldest.IsZero() {
			accExpiry = s.accOldest.Add(s.deliveryTimeout)
		}
		wake := earliest(after(now, s.lingerNext), after(now, s.nextWake), after(now, s.nextExpiry), after(now, accExpiry))
		if (!s.havePID || s.needBump) && !s.fetchingPID {
			wake = earliest(wake, after(now, s.pidRetryAt))
		}
		d := time.Hour
		if !wake.IsZero() {
			d = wake.Sub(now)
		}
		timer.Reset(d)
		select {
		case <-s.p.acc.Wakeup():
		case r := <-s.results:
			s.handleResult(r, time.Now())
			// Take whatever else has arrived before sending again, so
			// that one pass sends for all of it.
			for more := true; more; {
				select {
				case r := <-s.results:
					s.handleResult(r, time.Now())
				default:
					more = false
				}
			}
		case r := <-s.pidCh:
			s.handlePID(r, time.Now())
		case <-mdCh:
		case <-timer.C:
		case <-s.stopCh:
			s.failAll(ErrClosed)
			s.complete()
			return
		}
	}
}

// after is t if it is after now, else the zero time (no deadline).
func after(now, t time.Time) time.Time {
	if t.After(now) {
		return t
	}
	return time.Time{}
}

func earliest(ts ...time.Time) time.Time {
	var e time.Time
	for _, t := range ts {
		if !t.IsZero() && (e.IsZero() || t.Before(e)) {
			e = t
		}
	}
	return e
}

func (s *sender) part(tp TopicPartition) *partState {
	ps := s.parts[tp]
	if ps == nil {
		ps = &partState{tp: tp, pid: s.pid, epoch: s.epoch, firstAckedSeq: -1}
		s.parts[tp] = ps
	}
	return ps
}

// track makes a batch just taken from the accumulator the newest of its
// partition's queue.
func (s *sender) track(b *producerBatch) *pbatch {
	ps := s.part(b.Partition)
	pb := &pbatch{b: b, part: ps, seq: -1, baseOffset: -1, appendTime: -1}
	ps.batches = append(ps.batches, pb)
	return pb
}

func (s *sender) noteQueued(b *pbatch) {
	exp := b.b.Created().Add(s.deliveryTimeout)
	if s.nextExpiry.IsZero() || exp.Before(s.nextExpiry) {
		s.nextExpiry = exp
	}
}

// expire fails batches older than delivery.timeout.ms: those still in the
// accumulator, and those waiting here to be sent again. Batches in flight
// wait for their answer (bounded by request.timeout.ms), as in Java: failing
// them early could report a failure for a write that happened.
func (s *sender) expire(now time.Time) {
	if !s.accOldest.IsZero() && !now.Before(s.accOldest.Add(s.deliveryTimeout)) {
		s.drained = s.p.acc.Expire(now.Add(-s.deliveryTimeout), s.drained[:0])
		for i, b := range s.drained {
			pb := s.track(b)
			s.fail(pb, s.timeoutErr(pb, now))
			s.drained[i] = nil
		}
		s.accOldest = time.Time{} // the next Ready says
	}
	if s.nextExpiry.IsZero() || now.Before(s.nextExpiry) {
		return
	}
	s.nextExpiry = time.Time{}
	for _, ps := range s.retrying {
		for _, b := range ps.batches {
			if b.state != batchQueued {
				continue
			}
			if exp := b.b.Created().Add(s.deliveryTimeout); !now.Before(exp) {
				s.fail(b, s.timeoutErr(b, now))
			} else {
				s.noteQueued(b)
			}
		}
	}
}

func (s *sender) timeoutErr(b *pbatch, now time.Time) error {
	err := fmt.Errorf("%w: expiring %d record(s) for %s: %v since batch creation",
		ErrDeliveryTimeout, b.b.Records(), b.part.tp, now.Sub(b.b.Created()).Round(time.Millisecond))
	if b.lastErr != nil {
		err = fmt.Errorf("%w (last error: %w)", err, b.lastErr)
	}
	return err
}

// maybeInitPID starts an InitProducerId when the producer needs a producer id
// or a new epoch. A bump waits until nothing is in flight: sequence numbers
// restart at 0 under the new epoch, which is only safe once every batch sent
// under the old one has its answer.
func (s *sender) maybeInitPID(now time.Time) {
	if !s.idempotent || s.fatal != nil || s.fetchingPID || (s.havePID && !s.needBump) {
		return
	}
	if now.Before(s.pidRetryAt) {
		return
	}
	if s.needBump {
		for _, bs := range s.brokers {
			if bs.inflight > 0 {
				return
			}
		}
	}
	s.fetchingPID = true
	pid, epoch := s.pid, s.epoch
	s.wg.Go(func() {
		r := s.initProducerID(pid, epoch)
		select {
		case s.pidCh <- r:
		case <-s.done:
		}
	})
}

// initProducerID asks any broker for a producer id (v3+: bumping the epoch of
// the current one when there is one, KIP-360).
func (s *sender) initProducerID(pid int64, epoch int16) pidResult {
	cn, err := s.p.cl.anyConn()
	if err != nil {
		return pidResult{err: err}
	}
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionTimeoutMillis = 60000
	req.ProducerID, req.ProducerEpoch = pid, epoch
	// The cluster's context ends when the producer closes its connections.
	ctx, cancel := context.WithTimeout(s.p.cl.ctx, s.requestTimeout)
	defer cancel()
	resp, err := cn.do(ctx, req, -1, 0)
	if err != nil {
		return pidResult{err: err}
	}
	r := resp.(*kmsg.InitProducerIDResponse)
	if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
		return pidResult{err: err}
	}
	return pidResult{id: r.ProducerID, epoch: r.ProducerEpoch}
}

func (s *sender) handlePID(r pidResult, now time.Time) {
	s.fetchingPID = false
	if r.err != nil {
		var ke *kerr.Error
		if errors.As(r.err, &ke) && !ke.Retriable {
			s.setFatal(fmt.Errorf("client: InitProducerId: %w", r.err))
			return
		}
		s.log.Warn("InitProducerId failed; retrying", "err", r.err)
		s.pidRetryAt = now.Add(s.retryBackoff)
		s.p.cl.requestRefresh()
		return
	}
	bumped := s.havePID
	s.pid, s.epoch, s.havePID = r.id, r.epoch, true
	s.needBump = false
	// In a partition where a numbered batch failed, that batch and the
	// unsettled ones after it are numbered again from 0 under the new
	// producer id, when next sent, in queue order: the failure left a gap
	// the broker refuses every later batch for, so none of them is in the
	// log. Unsettled batches numbered before the failed one keep their
	// numbering, as do those of every other partition: one waiting to be
	// resent may have been written, and renumbered it would be written
	// twice. A partition with such batches stays on its old producer id
	// (stale) until they settle, then moves on. (A batch failed by
	// delivery.timeout.ms or retries, after an error that leaves open
	// whether it was written, may be in the log, and so may batches after
	// it that wait to be resent: those would be written twice. Java, which
	// renumbers them alike, has the same gap.)
	for _, ps := range s.parts {
		if ps.restart {
			for _, b := range ps.batches {
				if b.state != batchDone && b.seq >= 0 && !seqBefore(b.seq, ps.restartSeq) {
					b.seq = -1
					s.markRetrying(ps)
				}
			}
			ps.restart = false
		}
		if !ps.numberedUnsettled() {
			s.startSequences(ps)
		} else if !ps.stale {
			ps.stale = true
			s.stale = append(s.stale, ps)
		}
	}
	s.log.Debug("producer id", "id", r.id, "epoch", r.epoch, "bumped", bumped)
}

// numberedUnsettled reports whether the partition has a batch with a
// sequence number that is not settled yet.
func (ps *partState) numberedUnsettled() bool {
	for _, b := range ps.batches {
		if b.state != batchDone && b.seq >= 0 {
			return true
		}
	}
	return false
}

// startSequences moves the partition to the current producer id and epoch,
// at sequence 0; its unsettled batches are numbered again when next sent.
func (s *sender) startSequences(ps *partState) {
	ps.pid, ps.epoch, ps.stale, ps.restart = s.pid, s.epoch, false, false
	ps.nextSeq, ps.ackedSeq, ps.firstAckedSeq = 0, 0, -1
	for _, b := range ps.batches {
		if b.state != batchDone {
			b.seq = -1
			s.markRetrying(ps)
		}
	}
}

// refreshStale moves every stale partition whose old batches have all
// settled to the current producer id. It runs on every pass of the sender,
// so it walks only the stale partitions (none but after a bump).
func (s *sender) refreshStale() {
	keep := s.stale[:0]
	for _, ps := range s.stale {
		switch {
		case !ps.stale: // restarted by a later bump
		case ps.numberedUnsettled():
			keep = append(keep, ps)
		default:
			s.startSequences(ps)
		}
	}
	clear(s.stale[len(keep):])
	s.stale = keep
}

// nextSendable is the partition's next batch to send, or nil. Batches go in
// queue order. A batch that is being retried goes alone (nothing else of the
// partition in flight), so that once the broker has rejected one batch, the
// ones after it follow it in order rather than race it.
func (s *sender) nextSendable(ps *partState, now time.Time) *pbatch {
	if ps.inflight >= s.maxInFlight {
		return nil
	}
	for _, b := range ps.batches {
		if b.state != batchQueued {
			continue
		}
		if b.attempts > 0 && ps.inflight > 0 || b.seq < 0 && ps.stale {
			// A batch to be numbered anew waits until the partition
			// leaves its old producer id, which is only once the
			// batches before it have settled.
			return nil
		}
		if now.Before(b.retryAt) {
			if s.nextWake.IsZero() || b.retryAt.Before(s.nextWake) {
				s.nextWake = b.retryAt
			}
			return nil
		}
		return b
	}
	return nil
}

// sendAll sends every request it can. Per broker with fewer than
// max.in.flight.requests.per.connection requests outstanding: batches to send
// again first (the oldest there are), else, if a partition it leads has a
// ready batch, a request's worth drained from the accumulator (its rotating
// order, up to max.request.size, one batch per partition; partitions with a
// batch waiting to be resent or resent and in flight, or with
// max.in.flight.requests.per.connection batches in flight, are left out). It
// goes round again while some broker took a request, so that a broker with
// room for several pipelines them.
func (s *sender) sendAll(now time.Time) {
	s.nextWake = time.Time{}
	s.pending, s.lingerNext, s.accOldest = s.p.acc.Ready(now, s.pending[:0])
	if s.fatal != nil {
		if len(s.pending) > 0 {
			s.failAll(s.fatal) // appended as the producer failed
		}
		return
	}
	if s.idempotent && (!s.havePID || s.needBump) {
		return
	}
	s.refreshStale()
	md := s.p.cl.snapshot()
	for round := 0; ; round++ {
		if round > 0 {
			s.pending, s.lingerNext, s.accOldest = s.p.acc.Ready(now, s.pending[:0])
		}
		for _, bs := range s.brokers {
			bs.parts, bs.ready = bs.parts[:0], false
			clear(bs.retries)
			bs.retries = bs.retries[:0]
		}
		s.collectRetries(md, now)
		for _, pe := range s.pending {
			if ps := s.parts[pe.Partition]; ps != nil && (ps.held || ps.stale || ps.inflight >= s.maxInFlight) {
				continue
			}
			leader := md.leader(pe.Partition.Topic, pe.Partition.Partition)
			if leader < 0 {
				s.p.cl.needTopic(pe.Partition.Topic)
				continue
			}
			bs := s.broker(leader)
			if bs.inflight >= s.maxInFlight {
				continue
			}
			bs.parts = append(bs.parts, pe.Partition)
			bs.ready = bs.ready || pe.Ready
		}
		progress := false
		for id, bs := range s.brokers {
			if bs.inflight >= s.maxInFlight || (len(bs.retries) == 0 && !bs.ready) {
				continue
			}
			cn, err := s.p.cl.connTo(id)
			if err != nil {
				s.p.cl.requestRefresh()
				continue
			}
			list := s.reqList[:0]
			if len(bs.retries) > 0 {
				// Resent batches travel without new ones: they are
				// few, and the next round drains the rest.
				size := 0
				for _, b := range bs.retries {
					if len(list) > 0 && size+len(b.b.Bytes()) > s.maxRequestSize {
						break
					}
					size += len(b.b.Bytes())
					list = append(list, b)
				}
			} else {
				s.stamped = s.stamped[:0]
				s.drained = s.p.acc.Drain(id, bs.parts, s.maxRequestSize, s.stampFn, s.drained[:0])
				for i, b := range s.drained {
					pb := s.track(b)
					s.drained[i] = nil
					if s.idempotent {
						pb.seq, pb.pid, pb.epoch = s.stamped[i], pb.part.pid, pb.part.epoch
					}
					if b.Err != nil {
						s.fail(pb, fmt.Errorf("client: encoding a batch for %s: %w", pb.part.tp, b.Err))
						continue
					}
					list = append(list, pb)
				}
			}
			if len(list) > 0 {
				s.send(id, cn, list)
				progress = true
			}
			clear(list)
			s.reqList = list[:0]
		}
		if !progress {
			return
		}
	}
}

// stamp numbers a batch as Drain encodes it, just before its first send: the
// partition's next sequence under its producer id and epoch (the current
// ones: nothing is drained for a stale partition).
func (s *sender) stamp(tp TopicPartition, records int) (int64, int16, int32) {
	ps := s.part(tp)
	seq := ps.nextSeq
	ps.nextSeq = addSeq(seq, records)
	s.stamped = append(s.stamped, seq)
	return ps.pid, ps.epoch, seq
}

// collectRetries puts each retrying partition's next batch to resend on its
// leader's list, and marks the partitions that hold such batches, or a resent
// batch still in flight, so that nothing newer is drained for them meanwhile.
// Partitions with neither leave the retrying list.
//
// The hold lasts until the resend has its answer because the broker
// recognises a duplicate only among a producer's last five batches of the
// partition. When the batch first failed, at most
// max.in.flight.requests.per.connection (at most 5) batches of its partition
// were in flight, so the broker has written at most four after it; were new
// batches drained behind its resend, and the resend refused again (say
// NOT_LEADER_OR_FOLLOWER) while they were written, a batch that is in the log
// would fall out of that window and be refused with
// OUT_OF_ORDER_SEQUENCE_NUMBER on every resend after.
func (s *sender) collectRetries(md *metadata, now time.Time) {
	keep := s.retrying[:0]
	for _, ps := range s.retrying {
		ps.held = false
		for _, b := range ps.batches {
			if b.state == batchQueued || b.state == batchInFlight && b.attempts > 1 {
				ps.held = true
				break
			}
		}
		if !ps.held {
			ps.retrying = false
			continue
		}
		keep = append(keep, ps)
		b := s.nextSendable(ps, now)
		if b == nil {
			continue
		}
		leader := md.leader(ps.tp.Topic, ps.tp.Partition)
		if leader < 0 {
			s.p.cl.needTopic(ps.tp.Topic)
			continue
		}
		if bs := s.broker(leader); bs.inflight < s.maxInFlight {
			bs.retries = append(bs.retries, b)
		}
	}
	clear(s.retrying[len(keep):])
	s.retrying = keep
}

func (s *sender) markRetrying(ps *partState) {
	if !ps.retrying {
		ps.retrying = true
		s.retrying = append(s.retrying, ps)
	}
}

func (s *sender) broker(id int32) *brokerState {
	bs := s.brokers[id]
	if bs == nil {
		bs = &brokerState{}
		s.brokers[id] = bs
	}
	return bs
}

func (s *sender) send(id int32, cn *conn, list []*pbatch) {
	req := kmsg.NewPtrProduceRequest()
	req.Acks = s.acks
	req.TimeoutMillis = int32(s.requestTimeout / time.Millisecond)
	topicIdx := make(map[string]int, 1)
	pr := &produceReq{broker: id, batches: make([]*pbatch, len(list))}
	copy(pr.batches, list)
	for _, b := range list {
		ps := b.part
		if s.idempotent && b.seq < 0 {
			b.seq, b.pid, b.epoch = ps.nextSeq, ps.pid, ps.epoch
			ps.nextSeq = addSeq(ps.nextSeq, b.b.Records())
			b.b.SetProducer(b.pid, b.epoch, b.seq)
		}
		b.state = batchInFlight
		b.attempts++
		if b.attempts == 1 && s.p.onFirstSend != nil {
			s.p.onFirstSend(ps.tp, b.b.Created(), time.Now())
		}
		ps.inflight++
		ti, ok := topicIdx[ps.tp.Topic]
		if !ok {
			t := kmsg.NewProduceRequestTopic()
			t.Topic = ps.tp.Topic
			req.Topics = append(req.Topics, t)
			ti = len(req.Topics) - 1
			topicIdx[ps.tp.Topic] = ti
		}
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = ps.tp.Partition
		rp.Records = b.b.Bytes()
		req.Topics[ti].Partitions = append(req.Topics[ti].Partitions, rp)
	}
	s.broker(id).inflight++
	s.p.stats.requests.Add(1)
	cn.start(&call{req: req, maxVersion: -1, noResponse: s.acks == 0,
		onDone: func(resp kmsg.Response, err error) {
			pr.resp, pr.err = resp, err
			select {
			case s.results <- pr:
			case <-s.done:
			default:
				// Full. A dead connection calls this on the sender's
				// own goroutine, the one that empties results: waiting
				// here would wait for ever.
				go func() {
					select {
					case s.results <- pr:
					case <-s.done:
					}
				}()
			}
		}})
}

// addSeq adds n to a sequence number, wrapping past MaxInt32 to 0 as Kafka
// does.
func addSeq(seq int32, n int) int32 {
	if int64(seq)+int64(n) > math.MaxInt32 {
		return int32(int64(seq) + int64(n) - math.MaxInt32 - 1)
	}
	return seq + int32(n)
}

func (s *sender) handleResult(r *produceReq, now time.Time) {
	s.broker(r.broker).inflight--
	if errors.Is(r.err, ErrUnsupportedVersion) {
		// Nothing was sent, and the broker will not learn a version
		// meanwhile: Java's Sender fails such batches with
		// UNSUPPORTED_VERSION, which is not retriable.
		for _, b := range r.batches {
			if s.landed(b) {
				s.fail(b, fmt.Errorf("client: producing to %s: %w", b.part.tp, r.err))
			}
		}
		return
	}
	if r.err != nil {
		// The connection failed: nothing is known of these batches, so they
		// are resent; an idempotent producer's sequence numbers make a
		// resent batch that was written a duplicate the broker drops.
		s.p.cl.requestRefresh()
		for _, b := range r.batches {
			if s.landed(b) {
				s.retry(b, r.err, now)
			}
		}
		return
	}
	if s.acks == 0 {
		for _, b := range r.batches {
			if s.landed(b) {
				s.succeed(b, -1, -1)
			}
		}
		return
	}
	resp := r.resp.(*kmsg.ProduceResponse)
	answers := make(map[TopicPartition]*kmsg.ProduceResponseTopicPartition, len(r.batches))
	for i := range resp.Topics {
		t := &resp.Topics[i]
		for j := range t.Partitions {
			answers[TopicPartition{t.Topic, t.Partitions[j].Partition}] = &t.Partitions[j]
		}
	}
	for _, b := range r.batches {
		if !s.landed(b) {
			continue
		}
		a := answers[b.part.tp]
		if a == nil {
			s.retry(b, fmt.Errorf("client: broker %d did not answer for %s", r.broker, b.part.tp), now)
			continue
		}
		err := kerr.ErrorForCode(a.ErrorCode)
		if err == nil || errors.Is(err, kerr.DuplicateSequenceNumber) {
			s.succeed(b, a.BaseOffset, a.LogAppendTime)
			continue
		}
		if a.ErrorMessage != nil && *a.ErrorMessage != "" {
			err = fmt.Errorf("%w: %s", err, *a.ErrorMessage)
		}
		s.handleError(b, err, a, now)
	}
}

// landed marks a batch whose request has ended as no longer in flight,
// reporting false if it was already settled (by a fatal error or close).
func (s *sender) landed(b *pbatch) bool {
	if b.state != batchInFlight {
		return false
	}
	b.state = batchQueued
	b.part.inflight--
	return true
}

func (s *sender) succeed(b *pbatch, baseOffset, appendTime int64) {
	ps := b.part
	b.state = batchDone
	b.baseOffset, b.appendTime = baseOffset, appendTime
	if s.idempotent && b.pid == ps.pid && b.epoch == ps.epoch && b.seq >= 0 {
		// Answers may come out of order (a resent batch acknowledged after
		// a later one): keep the furthest point, allowing for wrap-around.
		end := addSeq(b.seq, b.b.Records())
		if d := int64(end) - int64(ps.ackedSeq); d > 0 || d < -(1<<30) {
			ps.ackedSeq = end
		}
		if ps.firstAckedSeq < 0 || !seqAtOrBefore(ps.firstAckedSeq, b.seq) {
			ps.firstAckedSeq = b.seq
		}
	}
	s.markDirty(ps)
}

// handleError decides a batch's fate from its partition's error code, as the
// Java producer does.
func (s *sender) handleError(b *pbatch, err error, a *kmsg.ProduceResponseTopicPartition, now time.Time) {
	ps := b.part
	switch {
	case errors.Is(err, kerr.InvalidProducerEpoch), errors.Is(err, kerr.ProducerFenced):
		// Another producer owns this id now: nothing this one sends can be
		// trusted to be ordered or unique any more.
		s.setFatal(fmt.Errorf("client: producer fenced on %s: %w", ps.tp, err))
	case s.idempotent && errors.Is(err, kerr.OutOfOrderSequenceNumber):
		if s.writtenBefore(b) {
			// A resend the broker no longer recognises as a duplicate (it
			// remembers a producer's last five batches only): the batch is
			// in the log, at an offset nobody can tell us now.
			s.log.Debug("out-of-order sequence for a batch the broker has passed; it was written",
				"partition", ps.tp, "seq", b.seq, "acked", ps.ackedSeq)
			s.succeed(b, -1, -1)
			return
		}
		if b.pid == ps.pid && b.epoch == ps.epoch && b.seq == ps.ackedSeq && !ps.restart {
			// The batch follows the last acknowledged one, yet the broker
			// says it does not: the broker lost the producer's state (an
			// unclean leader election, say). It refused the batch, so the
			// batch goes again under a new epoch, numbered from 0 with
			// those after it, as Java's idempotent producer does
			// (TransactionManager.canRetry, Kafka 3.x).
			s.log.Warn("out-of-order sequence on the next expected batch; retrying it under a new epoch",
				"partition", ps.tp, "seq", b.seq)
			s.markRestart(b)
		}
		// Otherwise an earlier batch failed or is being retried: this one
		// is out of order only because of it, and goes again after it.
		s.retry(b, err, now)
	case s.idempotent && errors.Is(err, kerr.UnknownProducerID):
		// The broker has no state for the producer (retention or
		// DeleteRecords removed its records, or it lost them) and refused
		// the batch. Java's idempotent producer (TransactionManager.canRetry,
		// Kafka 2.5+, KIP-360) always retries it: as it is while the answer
		// lacks the log start offset (the partition was moving), else
		// under a new epoch, so that no (epoch, sequence) is used twice.
		if a.LogStartOffset >= 0 {
			s.markRestart(b)
		}
		s.retry(b, err, now)
	case isMetadataErr(err):
		s.p.cl.requestRefresh()
		s.retry(b, err, now)
	case isRetriable(err):
		s.retry(b, err, now)
	default:
		s.fail(b, fmt.Errorf("client: producing to %s: %w", ps.tp, err))
	}
}

// writtenBefore reports whether the broker must have written b, numbered
// under its partition's producer id and epoch, because it has acknowledged
// batches that come after it. A broker appends a producer's batches to a
// partition only in sequence order, each starting where the one before ended,
// so once it has the producer's state an acknowledged batch means every
// sequence before it down to the first one it accepted is in the log. It
// accepts any first sequence from a producer it has no state for (Kafka 2.5+:
// a new producer id, or one whose records retention removed), so that first
// one need not follow anything: a batch refused before it and resent later is
// not in the log. Hence b counts as written only if it ends at or before the
// acknowledged sequence and a batch at or before it was acknowledged too. (A
// broker that loses the producer's state while it produces, with acknowledged
// records lost to an unclean leader election or deleted by DeleteRecords,
// loses this guarantee with it.)
func (s *sender) writtenBefore(b *pbatch) bool {
	ps := b.part
	return b.seq >= 0 && b.pid == ps.pid && b.epoch == ps.epoch && ps.firstAckedSeq >= 0 &&
		seqAtOrBefore(ps.firstAckedSeq, b.seq) && seqAtOrBefore(addSeq(b.seq, b.b.Records()), ps.ackedSeq)
}

// seqAtOrBefore reports whether sequence a comes at or before b, allowing for
// the wrap past MaxInt32 to 0 (the sequences a partition has unsettled span
// far less than half of the 2^31 there are).
func seqAtOrBefore(a, b int32) bool {
	return (int64(b)-int64(a))&math.MaxInt32 < 1<<30
}

// seqBefore reports whether sequence a comes before b (see seqAtOrBefore).
func seqBefore(a, b int32) bool { return a != b && seqAtOrBefore(a, b) }

func isMetadataErr(err error) bool {
	return errors.Is(err, kerr.NotLeaderForPartition) || errors.Is(err, kerr.UnknownTopicOrPartition) ||
		errors.Is(err, kerr.LeaderNotAvailable) || errors.Is(err, kerr.FencedLeaderEpoch) ||
		errors.Is(err, kerr.UnknownLeaderEpoch) || errors.Is(err, kerr.KafkaStorageError)
}

func isRetriable(err error) bool {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Retriable
	}
	var ce *ConnError
	return errors.As(err, &ce)
}

// retry queues a batch to be sent again after retry.backoff.ms, unless it
// has used up retries or delivery.timeout.ms.
func (s *sender) retry(b *pbatch, err error, now time.Time) {
	b.lastErr = err
	switch {
	case !now.Before(b.b.Created().Add(s.deliveryTimeout)):
		s.fail(b, s.timeoutErr(b, now))
	case b.attempts > s.retries:
		s.fail(b, fmt.Errorf("client: %s: giving up after %d attempts: %w", b.part.tp, b.attempts, err))
	default:
		b.state = batchQueued
		s.markRetrying(b.part)
		b.retryAt = now.Add(s.retryBackoff)
		if s.nextWake.IsZero() || b.retryAt.Before(s.nextWake) {
			s.nextWake = b.retryAt
		}
		s.noteQueued(b)
		s.p.stats.retries.Add(1)
		s.log.Debug("retrying batch", "partition", b.part.tp, "attempt", b.attempts, "err", err)
	}
}

// fail settles a batch with an error. A batch that had a sequence number
// leaves a gap the broker would reject every later batch of its partition
// for, so the producer moves to a new producer id under which the batches
// after it start again at sequence 0 (markRestart). (Java bumps the epoch
// and rewrites the sequences of every batch of the partition in flight, even
// of one before the failed batch that was written but answered with a
// retriable error, which its resend then writes again.)
func (s *sender) fail(b *pbatch, err error) {
	if b.state == batchDone {
		return
	}
	if b.state == batchInFlight {
		b.part.inflight--
	}
	b.state = batchDone
	b.err = err
	if s.fatal == nil {
		s.markRestart(b)
	}
	s.markDirty(b.part)
}

// markRestart asks for a new epoch after b, numbered under its partition's
// producer id and epoch, failed or must go again with a new number. At the
// bump b and the batches after it in its partition start again at sequence
// 0; those before it keep their numbering and settle first (handlePID).
// Batches under an older producer id than their partition's, or never
// numbered, leave no gap and ask for nothing.
func (s *sender) markRestart(b *pbatch) {
	ps := b.part
	if !s.idempotent || b.seq < 0 || b.pid != ps.pid || b.epoch != ps.epoch {
		return
	}
	s.needBump = true
	if !ps.restart || seqBefore(b.seq, ps.restartSeq) {
		ps.restart, ps.restartSeq = true, b.seq
	}
}

func (s *sender) setFatal(err error) {
	if s.fatal != nil {
		return
	}
	s.log.Error("producer failed", "err", err)
	s.fatal = err
	s.p.fatal.Store(&err)
	s.failAll(err)
}

// failAll settles every batch the producer holds, in the accumulator too.
func (s *sender) failAll(err error) {
	s.drained = s.p.acc.DrainAll(s.drained[:0])
	for i, b := range s.drained {
		ps := s.part(b.Partition)
		ps.batches = append(ps.batches, &pbatch{b: b, part: ps, seq: -1, baseOffset: -1, appendTime: -1})
		s.drained[i] = nil
	}
	for _, ps := range s.parts {
		for _, b := range ps.batches {
			s.fail(b, err)
		}
	}
}

func (s *sender) markDirty(ps *partState) {
	if !ps.dirty {
		ps.dirty = true
		s.dirty = append(s.dirty, ps)
	}
}

// complete hands each partition's settled batches at the head of its queue
// to the callback goroutine; a settled batch behind an unsettled one waits,
// which is what keeps callbacks in order per partition.
func (s *sender) complete() {
	if len(s.dirty) == 0 {
		return
	}
	s.completed = s.completed[:0]
	for _, ps := range s.dirty {
		ps.dirty = false
		n := 0
		for n < len(ps.batches) && ps.batches[n].state == batchDone {
			n++
		}
		if n == 0 {
			continue
		}
		s.completed = append(s.completed, ps.batches[:n]...)
		clear(ps.batches[:n])
		ps.batches = ps.batches[n:]
		if len(ps.batches) == 0 {
			ps.batches = nil // let the backing array go
		}
	}
	clear(s.dirty)
	s.dirty = s.dirty[:0]
	s.p.pushCompleted(s.completed)
	clear(s.completed)
}
