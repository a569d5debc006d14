package client

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/batch"
)

// Offset is where Seek puts a partition: Earliest, Latest, At or AtTime.
type Offset struct {
	kind offsetKind
	at   int64 // offset for At, ms for AtTime
}

type offsetKind uint8

const (
	offsetAt offsetKind = iota
	offsetEarliest
	offsetLatest
	offsetTime
)

// Earliest is the partition's log start offset.
func Earliest() Offset { return Offset{kind: offsetEarliest} }

// Latest is the partition's end (the last stable offset for read_committed):
// only records produced from now on.
func Latest() Offset { return Offset{kind: offsetLatest} }

// At is offset n exactly.
func At(n int64) Offset { return Offset{kind: offsetAt, at: n} }

// AtTime is the first offset whose timestamp is at or after t (ListOffsets
// by time); the partition's end if every record is older.
func AtTime(t time.Time) Offset { return Offset{kind: offsetTime, at: t.UnixMilli()} }

func (o Offset) String() string {
	switch o.kind {
	case offsetEarliest:
		return "earliest"
	case offsetLatest:
		return "latest"
	case offsetTime:
		return fmt.Sprintf("time %d ms", o.at)
	}
	return fmt.Sprintf("offset %d", o.at)
}

// listOffsetsTimestamp is ListOffsets' encoding of o.
func (o Offset) listOffsetsTimestamp() int64 {
	switch o.kind {
	case offsetEarliest:
		return -2
	case offsetLatest:
		return -1
	}
	return o.at
}

// ConsumedRecord is one record read from a partition. Its byte slices belong
// to the caller: the consumer never reuses them.
type ConsumedRecord struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []batch.RecordHeader
	// Timestamp is the CreateTime, or the LogAppendTime for such topics.
	Timestamp time.Time
	// LeaderEpoch is the partition leader epoch of the record's batch.
	LeaderEpoch int32
}

// ErrNoOffset is reported by Poll for a partition that has no position and
// auto.offset.reset=none, or whose position was out of range: Seek it.
var ErrNoOffset = errors.New("client: partition has no valid position and auto.offset.reset is none")

// minDecompressedBatch is the least a single batch may decompress to: it
// must exceed the largest batch a producer makes (batch.size, message.max.bytes
// ~1 MiB) by any real compression ratio, while still stopping a bomb.
const minDecompressedBatch = 128 << 20

// Consumer reads records from partitions assigned to it by hand (Assign) or
// by its consumer group (Subscribe, with group.id). Its methods are safe for
// concurrent use. See the package documentation for its design.
type Consumer struct {
	cfg             ConsumerConfig
	log             *slog.Logger
	cl              *cluster
	isolation       int8
	maxDecompressed int
	retryBackoff    time.Duration
	grp             *group // nil without group.id

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		parts    map[TopicPartition]*cpart
		order    []*cpart // assignment order; Poll starts at next, for fairness
		next     int
		changed  chan struct{}
		errs     []error
		fetchers map[int32]bool
		closed   bool
		// subscribed: the group assigns the partitions, not Assign.
		subscribed bool
		// polls counts the Polls that set committable (in a group), so a
		// commit answered after a newer Poll does not set it back
		// (groupCommitted).
		polls uint64
	}
}

// cpart is one assigned partition.
type cpart struct {
	tp TopicPartition
	// gen changes on every Seek: a fetch or lookup begun before it is
	// dropped when it returns.
	gen         uint64
	position    int64   // next offset Poll returns; -1 while unknown
	reset       *Offset // a lookup (earliest, latest, time) to do
	fetchOffset int64   // next offset to fetch: past the buffered data
	buffered    []*chunk
	busy        bool  // in a fetch or lookup in flight
	err         error // fetching stopped until Seek
	maxBytes    int32 // max.partition.fetch.bytes, doubled while a batch does not fit
	// paused: Poll returns none of its records (a group partition before
	// the listener has heard of it, or being revoked).
	paused bool
	// epoch is the leader epoch of the last record returned, -1 unknown;
	// committable and committableEpoch are position and epoch as of the
	// latest Poll, what auto-commit commits: the application has handled
	// what earlier Polls returned once it polls again.
	epoch            int32
	committable      int64
	committableEpoch int32
}

// chunk is what one fetch returned for one partition.
type chunk struct {
	recs []*ConsumedRecord
	i    int
	next int64 // the partition's fetch offset after this chunk
}

// NewConsumer validates cfg and starts a consumer with no partitions.
func NewConsumer(cfg ConsumerConfig, opts ...Option) (*Consumer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	c := &Consumer{cfg: cfg, log: o.log,
		maxDecompressed: max(int(cfg.FetchMaxBytes), minDecompressedBatch),
		retryBackoff:    time.Duration(cfg.RetryBackoffMs) * time.Millisecond}
	if cfg.IsolationLevel == "read_committed" {
		c.isolation = 1
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.mu.parts = make(map[TopicPartition]*cpart)
	c.mu.changed = make(chan struct{})
	c.mu.fetchers = make(map[int32]bool)
	c.cl = newCluster(clusterConfig{
		seeds: cfg.BootstrapServers,
		conn: connConfig{clientID: cfg.ClientID, requestTimeout: time.Duration(cfg.RequestTimeoutMs) * time.Millisecond,
			maxResponseBytes: max(defaultMaxResponseBytes, cfg.FetchMaxBytes+16<<20), log: o.log},
		retryBackoff: c.retryBackoff,
		maxAge:       time.Duration(cfg.MetadataMaxAgeMs) * time.Millisecond,
	}, o.log)
	if cfg.GroupID != "" {
		c.grp = newGroup(c)
	}
	c.wg.Go(c.manage)
	return c, nil
}

// broadcastLocked wakes everyone waiting for a change: pollers and fetchers.
func (c *Consumer) broadcastLocked() {
	close(c.mu.changed)
	c.mu.changed = make(chan struct{})
}

func (c *Consumer) autoReset() *Offset {
	switch c.cfg.AutoOffsetReset {
	case "earliest":
		o := Earliest()
		return &o
	case "latest":
		o := Latest()
		return &o
	}
	return nil
}

// Assign replaces the set of partitions the consumer reads. Partitions kept
// keep their positions; new ones start, unless Seek says otherwise, at the
// group's committed offsets with group.id (as the Java consumer's do), and
// per auto.offset.reset where nothing is committed or without group.id.
// A consumer that has subscribed to a group cannot also assign partitions:
// the next Poll reports the attempt.
func (c *Consumer) Assign(partitions []TopicPartition) {
	if c.assign(partitions) {
		c.grp.lookUpAssigned() // after c.mu: group.mu comes first
	}
}

// assign is Assign under c.mu. It reports whether new partitions wait for
// their group's committed offsets.
func (c *Consumer) assign(partitions []TopicPartition) (lookUp bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.subscribed {
		c.mu.errs = append(c.mu.errs, errors.New("client: Assign on a consumer subscribed to a group"))
		c.broadcastLocked()
		return false
	}
	keep := make(map[TopicPartition]*cpart, len(partitions))
	order := make([]*cpart, 0, len(partitions))
	var topics []string
	for _, tp := range partitions {
		if keep[tp] != nil {
			continue
		}
		p := c.mu.parts[tp]
		if p == nil {
			p = &cpart{tp: tp, position: -1, fetchOffset: -1, maxBytes: c.cfg.MaxPartitionFetchBytes, epoch: -1, committable: -1, committableEpoch: -1}
			switch {
			case c.grp != nil:
				// No position and nothing to look up: it waits for
				// the group's committed offset (groupSetPositions).
				lookUp = true
			case c.autoReset() != nil:
				p.reset = c.autoReset()
			default:
				p.err = fmt.Errorf("%w: %s", ErrNoOffset, tp)
				c.mu.errs = append(c.mu.errs, p.err)
			}
		}
		keep[tp] = p
		order = append(order, p)
		topics = append(topics, tp.Topic)
	}
	for tp, p := range c.mu.parts {
		if keep[tp] == nil {
			p.gen++ // anything in flight for it is dropped
		}
	}
	c.mu.parts, c.mu.order, c.mu.next = keep, order, 0
	c.cl.addTopics(topics...)
	c.broadcastLocked()
	return lookUp
}

// Seek sets where an assigned partition is read from next; records buffered
// for it are dropped. Seeking a partition that is not assigned is reported
// by the next Poll.
func (c *Consumer) Seek(tp TopicPartition, o Offset) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.mu.parts[tp]
	if p == nil {
		c.mu.errs = append(c.mu.errs, fmt.Errorf("client: Seek of %s, which is not assigned", tp))
		c.broadcastLocked()
		return
	}
	p.gen++
	p.buffered = nil
	p.err = nil
	if o.kind == offsetAt {
		p.position, p.fetchOffset, p.reset = o.at, o.at, nil
	} else {
		p.position, p.fetchOffset, p.reset = -1, -1, &o
	}
	c.broadcastLocked()
}

// Position is the next offset Poll returns for tp, -1 while unknown.
func (c *Consumer) Position(tp TopicPartition) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.mu.parts[tp]; p != nil {
		return p.position
	}
	return -1
}

// Poll returns up to max.poll.records records, waiting until there are some
// or ctx ends (then it returns ctx's error). Records come in order within each
// partition; Poll rotates through partitions so that none starves. Errors the
// fetchers met (a partition out of range with auto.offset.reset=none, a
// corrupt batch, an authorization failure) are returned once each.
//
// Fetching runs ahead: while the application handles one Poll's records,
// the next fetch is already in flight.
//
// In a group, calling Poll also tells the group the application is alive
// (max.poll.interval.ms) and that it has handled the records earlier Polls
// returned, which auto-commit then commits.
func (c *Consumer) Poll(ctx context.Context) ([]*ConsumedRecord, error) {
	if c.grp != nil {
		c.grp.pollStart()
		defer c.grp.pollEnd()
		c.mu.Lock()
		c.mu.polls++
		for _, p := range c.mu.order {
			p.committable, p.committableEpoch = p.position, p.epoch
		}
		c.mu.Unlock()
	}
	for {
		c.mu.Lock()
		if c.mu.closed {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		if len(c.mu.errs) > 0 {
			err := errors.Join(c.mu.errs...)
			c.mu.errs = nil
			c.mu.Unlock()
			return nil, err
		}
		out := c.takeLocked(c.cfg.MaxPollRecords)
		ch := c.mu.changed
		c.mu.Unlock()
		if len(out) > 0 {
			return out, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (c *Consumer) takeLocked(n int) []*ConsumedRecord {
	var out []*ConsumedRecord
	order := c.mu.order
	freed := false
	for k := 0; k < len(order) && len(out) < n; k++ {
		i := (c.mu.next + k) % len(order)
		p := order[i]
		if p.paused {
			continue
		}
		before := len(out)
		for len(p.buffered) > 0 && len(out) < n {
			ch := p.buffered[0]
			take := min(n-len(out), len(ch.recs)-ch.i)
			if take > 0 {
				out = append(out, ch.recs[ch.i:ch.i+take]...)
				clear(ch.recs[ch.i : ch.i+take])
				ch.i += take
				p.position = out[len(out)-1].Offset + 1
				p.epoch = out[len(out)-1].LeaderEpoch
			}
			if ch.i == len(ch.recs) {
				p.position = ch.next
				p.buffered[0] = nil
				p.buffered = p.buffered[1:]
				freed = true
			}
		}
		if len(out) > before {
			c.mu.next = (i + 1) % len(order) // the next Poll starts after the last partition served
		}
	}
	if freed {
		c.broadcastLocked() // fetchers may fetch these partitions again
	}
	return out
}

// Close stops the consumer: its fetchers, its metadata goroutine and its
// connections. Poll returns ErrClosed afterwards. A group member first
// commits its positions (enable.auto.commit), tells its RebalanceListener
// the partitions are revoked and leaves the group (a static member stays),
// within request.timeout.ms. Close must not be called from a listener.
func (c *Consumer) Close() error {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return nil
	}
	c.mu.closed = true
	c.broadcastLocked()
	c.mu.Unlock()
	if c.grp != nil {
		c.grp.close()
	}
	c.cancel()
	c.cl.close()
	c.wg.Wait()
	return nil
}

// manage starts one fetcher per broker that leads an assigned partition and
// asks for metadata when a partition has no known leader.
func (c *Consumer) manage() {
	for {
		mdCh := c.cl.changedCh() // before the snapshot: no change is missed
		md := c.cl.snapshot()
		c.mu.Lock()
		ch := c.mu.changed
		missing := false
		for _, p := range c.mu.order {
			leader := md.leader(p.tp.Topic, p.tp.Partition)
			if leader < 0 {
				missing = true
				continue
			}
			if !c.mu.fetchers[leader] {
				c.mu.fetchers[leader] = true
				c.wg.Go(func() { c.fetcher(leader) })
			}
		}
		c.mu.Unlock()
		if missing {
			c.cl.requestRefresh()
		}
		select {
		case <-ch:
		case <-mdCh:
		case <-c.ctx.Done():
			return
		}
	}
}

// fetchPart is one partition in one fetch or lookup.
type fetchPart struct {
	p        *cpart
	gen      uint64
	offset   int64
	reset    Offset
	maxBytes int32
}

// fetcher is the loop of one broker: offset lookups for its partitions that
// need them, then one Fetch at a time for its partitions that have room in
// their buffers (fewer than two chunks waiting for Poll).
func (c *Consumer) fetcher(node int32) {
	backoff := time.NewTimer(0)
	defer backoff.Stop()
	for {
		if c.ctx.Err() != nil {
			return
		}
		mdCh := c.cl.changedCh() // before the snapshot: no change is missed
		md := c.cl.snapshot()
		var resets, fetches []fetchPart
		c.mu.Lock()
		ch := c.mu.changed
		for _, p := range c.mu.order {
			if p.busy || p.err != nil || md.leader(p.tp.Topic, p.tp.Partition) != node {
				continue
			}
			switch {
			case p.reset != nil:
				resets = append(resets, fetchPart{p: p, gen: p.gen, reset: *p.reset})
			case p.fetchOffset >= 0 && len(p.buffered) < 2:
				fetches = append(fetches, fetchPart{p: p, gen: p.gen, offset: p.fetchOffset, maxBytes: p.maxBytes})
			}
		}
		// One request per round, lookups first (a Fetch may wait out
		// fetch.max.wait.ms, and the partitions looked up join the next
		// one). Only the partitions of the request sent are marked busy:
		// one marked and left out would never be fetched again.
		if len(resets) > 0 {
			fetches = nil
		}
		for _, fp := range append(resets, fetches...) {
			fp.p.busy = true
		}
		c.mu.Unlock()
		var err error
		switch {
		case len(resets) > 0:
			err = c.listOffsets(node, resets)
			c.unbusy(resets)
		case len(fetches) > 0:
			err = c.fetch(node, md, fetches)
			c.unbusy(fetches)
		default:
			select {
			case <-ch:
			case <-mdCh:
			case <-c.ctx.Done():
			}
			continue
		}
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			c.log.Debug("fetcher", "node", node, "err", err)
			c.cl.requestRefresh()
			backoff.Reset(c.retryBackoff)
			select {
			case <-backoff.C:
			case <-c.ctx.Done():
				return
			}
		}
	}
}

func (c *Consumer) unbusy(fps []fetchPart) {
	c.mu.Lock()
	for _, fp := range fps {
		fp.p.busy = false
	}
	c.broadcastLocked()
	c.mu.Unlock()
}

func (c *Consumer) report(err error) {
	c.mu.Lock()
	c.mu.errs = append(c.mu.errs, err)
	c.mu.Unlock()
}

// listOffsets resolves pending Seek(Earliest/Latest/AtTime) and resets.
func (c *Consumer) listOffsets(node int32, fps []fetchPart) error {
	cn, err := c.cl.connTo(node)
	if err != nil {
		return err
	}
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	req.IsolationLevel = c.isolation
	idx := map[string]int{}
	for _, fp := range fps {
		ti, ok := idx[fp.p.tp.Topic]
		if !ok {
			t := kmsg.NewListOffsetsRequestTopic()
			t.Topic = fp.p.tp.Topic
			req.Topics = append(req.Topics, t)
			ti = len(req.Topics) - 1
			idx[fp.p.tp.Topic] = ti
		}
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = fp.p.tp.Partition
		rp.Timestamp = fp.reset.listOffsetsTimestamp()
		req.Topics[ti].Partitions = append(req.Topics[ti].Partitions, rp)
	}
	resp, err := cn.do(c.ctx, req, -1, 0)
	if err != nil {
		return err
	}
	answers := map[TopicPartition]*kmsg.ListOffsetsResponseTopicPartition{}
	for i := range resp.(*kmsg.ListOffsetsResponse).Topics {
		t := &resp.(*kmsg.ListOffsetsResponse).Topics[i]
		for j := range t.Partitions {
			answers[TopicPartition{t.Topic, t.Partitions[j].Partition}] = &t.Partitions[j]
		}
	}
	var retry error
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, fp := range fps {
		p := fp.p
		a := answers[p.tp]
		if p.gen != fp.gen {
			continue
		}
		if a == nil {
			retry = fmt.Errorf("ListOffsets: broker %d did not answer for %s", node, p.tp)
			continue
		}
		if err := kerr.ErrorForCode(a.ErrorCode); err != nil {
			if isRetriable(err) || errors.Is(err, kerr.UnknownTopicOrPartition) {
				retry = fmt.Errorf("ListOffsets %s: %w", p.tp, err)
				continue
			}
			p.err = fmt.Errorf("client: looking up %s of %s: %w", fp.reset, p.tp, err)
			c.mu.errs = append(c.mu.errs, p.err)
			continue
		}
		if a.Offset < 0 {
			// No record at or after the time: read from the end.
			o := Latest()
			p.reset = &o
			continue
		}
		p.position, p.fetchOffset, p.reset = a.Offset, a.Offset, nil
	}
	return retry
}

// fetch sends one Fetch for fps and hands what it returns to the partitions.
func (c *Consumer) fetch(node int32, md *metadata, fps []fetchPart) error {
	cn, err := c.cl.connTo(node)
	if err != nil {
		return err
	}
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = c.cfg.FetchMaxWaitMs
	req.MinBytes = c.cfg.FetchMinBytes
	req.MaxBytes = c.cfg.FetchMaxBytes
	req.IsolationLevel = c.isolation
	req.SessionID, req.SessionEpoch = 0, -1 // no fetch sessions: every fetch is full
	maxVersion := int16(-1)
	idx := map[string]int{}
	names := map[[16]byte]string{}
	for _, fp := range fps {
		tp := fp.p.tp
		ti, ok := idx[tp.Topic]
		if !ok {
			t := kmsg.NewFetchRequestTopic()
			t.Topic = tp.Topic
			if tm := md.topics[tp.Topic]; tm != nil {
				t.TopicID = tm.id
			}
			if t.TopicID == ([16]byte{}) {
				maxVersion = 12 // v13 names topics by id only
			}
			names[t.TopicID] = tp.Topic
			req.Topics = append(req.Topics, t)
			ti = len(req.Topics) - 1
			idx[tp.Topic] = ti
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = tp.Partition
		rp.FetchOffset = fp.offset
		rp.PartitionMaxBytes = fp.maxBytes
		req.Topics[ti].Partitions = append(req.Topics[ti].Partitions, rp)
	}
	r, err := cn.do(c.ctx, req, maxVersion, time.Duration(c.cfg.FetchMaxWaitMs)*time.Millisecond)
	if err != nil {
		return err
	}
	resp := r.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return fmt.Errorf("Fetch from broker %d: %w", node, err)
	}
	answers := map[TopicPartition]*kmsg.FetchResponseTopicPartition{}
	for i := range resp.Topics {
		t := &resp.Topics[i]
		name := t.Topic
		if resp.Version >= 13 {
			name = names[t.TopicID]
		}
		for j := range t.Partitions {
			answers[TopicPartition{name, t.Partitions[j].Partition}] = &t.Partitions[j]
		}
	}

	// Decode outside the lock: decompression is the expensive part.
	type decoded struct {
		ch       *chunk
		err      error
		tooLarge bool
	}
	out := make([]decoded, len(fps))
	var retry error
	for i, fp := range fps {
		a := answers[fp.p.tp]
		if a == nil {
			continue
		}
		if err := kerr.ErrorForCode(a.ErrorCode); err != nil {
			out[i].err = err
			continue
		}
		recs, next, tooLarge, err := c.decode(fp.p.tp, fp.offset, a)
		out[i] = decoded{ch: &chunk{recs: recs, next: next}, err: err, tooLarge: tooLarge}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	for i, fp := range fps {
		p, d := fp.p, out[i]
		if p.gen != fp.gen {
			continue
		}
		switch {
		case d.err == nil && d.ch == nil:
		case errors.Is(d.err, kerr.OffsetOutOfRange):
			// The reset decides where reading goes on: records fetched
			// ahead of it and not yet returned are dropped, as Java
			// drops a fetch for an offset it no longer reads from, so
			// none of them comes after the reset (a reset to earliest
			// would read them again; one to latest would move the
			// position back to them).
			clear(p.buffered)
			p.buffered = nil
			if reset := c.autoReset(); reset != nil {
				c.log.Info("offset out of range; resetting", "partition", p.tp, "offset", fp.offset, "to", reset.String())
				p.reset, p.position, p.fetchOffset = reset, -1, -1
			} else {
				p.err = fmt.Errorf("%w: %s offset %d is out of range", ErrNoOffset, p.tp, fp.offset)
				c.mu.errs = append(c.mu.errs, p.err)
			}
		case d.err != nil && (isMetadataErr(d.err) || errors.Is(d.err, kerr.ReplicaNotAvailable)):
			retry = fmt.Errorf("Fetch %s: %w", p.tp, d.err)
		case d.err != nil && d.ch == nil:
			if isRetriable(d.err) {
				retry = fmt.Errorf("Fetch %s: %w", p.tp, d.err)
			} else {
				c.mu.errs = append(c.mu.errs, fmt.Errorf("client: fetching %s at %d: %w", p.tp, fp.offset, d.err))
				retry = d.err
			}
		default:
			// Records decoded before a bad batch are delivered; the error
			// comes with the next Poll and the fetch resumes at the bad
			// batch (where it will fail again, as Java's does).
			if d.err != nil {
				c.mu.errs = append(c.mu.errs, fmt.Errorf("client: fetching %s at %d: %w", p.tp, d.ch.next, d.err))
				retry = d.err
			}
			if d.tooLarge {
				p.maxBytes = min(max(p.maxBytes, 1)*2, c.cfg.FetchMaxBytes)
			} else {
				p.maxBytes = c.cfg.MaxPartitionFetchBytes
			}
			if d.ch.next > p.fetchOffset {
				p.fetchOffset = d.ch.next
				p.buffered = append(p.buffered, d.ch)
			}
		}
	}
	return retry
}

// decode turns one partition's record batches into records at or after
// offset. A partial batch at the end (the broker cuts responses at the byte
// limits) is left for the next fetch; tooLarge reports that not even one
// whole batch fit.
func (c *Consumer) decode(tp TopicPartition, offset int64, a *kmsg.FetchResponseTopicPartition) (recs []*ConsumedRecord, next int64, tooLarge bool, err error) {
	next = offset
	readCommitted := c.isolation == 1
	var aborted abortedTxns
	if readCommitted {
		aborted.init(a.AbortedTransactions)
	}
	it := batch.NewIter(a.RecordBatches)
	whole := 0
	for h, ok := it.Next(); ok; h, ok = it.Next() {
		whole++
		if h.Magic() != batch.Magic {
			return recs, next, false, fmt.Errorf("%w: magic %d at offset %d", batch.ErrMagic, h.Magic(), h.BaseOffset())
		}
		// A compacted topic's batches may hold fewer records than
		// offsets, or none (ValidateFetched).
		if err := batch.ValidateFetched(h); err != nil {
			return recs, next, false, fmt.Errorf("batch at offset %d: %w", h.BaseOffset(), err)
		}
		if h.NextOffset() <= offset {
			continue
		}
		if readCommitted && h.ProducerID() >= 0 {
			aborted.upTo(h.LastOffset())
			if h.Control() {
				if controlType(h) == 0 { // ABORT marker ends the aborted transaction
					delete(aborted.active, h.ProducerID())
				}
				next = h.NextOffset()
				continue
			}
			if h.Transactional() && aborted.active[h.ProducerID()] {
				next = h.NextOffset()
				continue
			}
		}
		if h.Control() || h.RecordCount() == 0 {
			next = h.NextOffset()
			continue
		}
		rr, _, err := batch.DecodeRecords(h, nil, c.maxDecompressed)
		if err != nil {
			return recs, next, false, fmt.Errorf("batch at offset %d: %w", h.BaseOffset(), err)
		}
		n := int(h.RecordCount())
		store := make([]ConsumedRecord, 0, n)
		var r batch.Record
		for rr.Next(&r) {
			off := h.BaseOffset() + int64(r.OffsetDelta)
			if off < offset {
				continue
			}
			ts := h.BaseTimestamp() + r.TimestampDelta
			if h.LogAppendTime() {
				ts = h.MaxTimestamp()
			}
			cr := ConsumedRecord{Topic: tp.Topic, Partition: tp.Partition, Offset: off, Key: r.Key, Value: r.Value,
				Timestamp: time.UnixMilli(ts), LeaderEpoch: h.PartitionLeaderEpoch()}
			if len(r.Headers) > 0 {
				cr.Headers = append([]batch.RecordHeader(nil), r.Headers...)
			}
			store = append(store, cr)
			recs = append(recs, &store[len(store)-1])
		}
		if err := rr.Err(); err != nil {
			return recs, next, false, fmt.Errorf("batch at offset %d: %w", h.BaseOffset(), err)
		}
		next = h.NextOffset()
	}
	tooLarge = whole == 0 && len(a.RecordBatches) > 0
	return recs, next, tooLarge, nil
}

// controlType is the type of a control batch's marker: 0 abort, 1 commit
// (the record key is version int16, type int16).
func controlType(h batch.Header) int16 {
	rr, _, err := batch.DecodeRecords(h, nil, 1<<20)
	if err != nil {
		return -1
	}
	var r batch.Record
	if !rr.Next(&r) || len(r.Key) < 4 {
		return -1
	}
	return int16(binary.BigEndian.Uint16(r.Key[2:]))
}

// abortedTxns tracks read_committed filtering as the Java consumer does:
// the response lists aborted transactions by producer id and first offset;
// a producer's transactional batches from that offset on are skipped until
// its ABORT marker.
type abortedTxns struct {
	pending []kmsg.FetchResponseTopicPartitionAbortedTransaction // by first offset
	active  map[int64]bool
}

func (a *abortedTxns) init(txns []kmsg.FetchResponseTopicPartitionAbortedTransaction) {
	a.pending = append(a.pending[:0], txns...)
	// Usually sorted already; keep it simple and robust.
	for i := 1; i < len(a.pending); i++ {
		for j := i; j > 0 && a.pending[j].FirstOffset < a.pending[j-1].FirstOffset; j-- {
			a.pending[j], a.pending[j-1] = a.pending[j-1], a.pending[j]
		}
	}
	a.active = map[int64]bool{}
}

func (a *abortedTxns) upTo(offset int64) {
	for len(a.pending) > 0 && a.pending[0].FirstOffset <= offset {
		a.active[a.pending[0].ProducerID] = true
		a.pending = a.pending[1:]
	}
}
