package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metadata is one immutable snapshot of the cluster as a Metadata response
// described it. Readers load it from an atomic pointer and never lock.
type metadata struct {
	brokers map[int32]string // node id -> host:port
	topics  map[string]*topicMeta
}

type topicMeta struct {
	name string
	id   [16]byte
	err  error // the topic's error, nil when usable
	// parts is indexed by partition id (Kafka's ids are 0..n-1).
	parts []partMeta
	// writable are the partitions with a leader: where the sticky and
	// round-robin partitioners send records without a key.
	writable []int32
	// used is set by each record produced to the topic (markUsed), and
	// cleared by the refresh that notes it (see clusterConfig.topicIdle).
	used atomic.Bool
}

// markUsed notes that a record was produced to t. It stores only when the
// flag is clear, so that the producers' goroutines do not all write the
// same cache line for every record.
func (t *topicMeta) markUsed() {
	if !t.used.Load() {
		t.used.Store(true)
	}
}

type partMeta struct {
	leader      int32 // -1 when unknown
	leaderEpoch int32
	err         error
}

// topicMeta is the topic's metadata, nil if m has none.
func (m *metadata) topicMeta(topic string) *topicMeta {
	if m == nil {
		return nil
	}
	return m.topics[topic]
}

// leader is the partition's leader, -1 when unknown.
func (m *metadata) leader(topic string, partition int32) int32 {
	if m == nil {
		return -1
	}
	t := m.topics[topic]
	if t == nil || partition < 0 || int(partition) >= len(t.parts) {
		return -1
	}
	return t.parts[partition].leader
}

// clusterConfig is what a producer or consumer tells its cluster.
type clusterConfig struct {
	seeds          []string
	conn           connConfig
	retryBackoff   time.Duration
	maxAge         time.Duration
	autoCreate     bool // Metadata's allow_auto_topic_creation
	metadataTopics func() []string
	// topicIdle, when set, is the producer's metadata.max.idle.ms: a topic
	// no record was produced to for this long is no longer asked for, as
	// Java's ProducerMetadata forgets it. A consumer keeps its topics.
	topicIdle time.Duration
	now       func() time.Time // the clock topicIdle runs on; time.Now when nil
}

// cluster owns a client's broker connections (one per broker) and its view of
// the metadata. One goroutine (loop) refreshes metadata, on request and every
// metadata.max.age.ms; each refresh publishes a new snapshot and closes the
// `changed` channel so waiters wake. Connections are dialed on first use and
// replaced when they die.
type cluster struct {
	cfg clusterConfig
	log *slog.Logger

	md      atomic.Pointer[metadata]
	trigger chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup // the loop and every connection's goroutines

	mu struct {
		sync.Mutex
		conns map[int32]*conn // seeds use negative ids: -1 is seeds[0]
		// topics are asked for in every refresh; each maps to the last
		// time it was known to be in use (see clusterConfig.topicIdle).
		topics map[string]time.Time
		// newTopic: a topic was added since the last refresh began, so
		// the next one goes at once, not a retry.backoff.ms after the
		// last (Kafka's Metadata.requestUpdateForNewTopics does the
		// same): a client's first record for a topic would otherwise
		// wait out the backoff after the refresh every client makes
		// when it starts.
		newTopic bool
		changed  chan struct{}
		err      error // the last refresh's error, nil after a success
		closed   bool
	}
}

func newCluster(cfg clusterConfig, log *slog.Logger) *cluster {
	c := &cluster{cfg: cfg, log: log, trigger: make(chan struct{}, 1)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.mu.conns = make(map[int32]*conn)
	c.mu.topics = make(map[string]time.Time)
	c.mu.changed = make(chan struct{})
	c.wg.Go(c.loop)
	c.requestRefresh()
	return c
}

func (c *cluster) close() {
	c.cancel()
	c.mu.Lock()
	c.mu.closed = true
	conns := c.mu.conns
	c.mu.conns = map[int32]*conn{}
	c.mu.Unlock()
	for _, cn := range conns {
		cn.close()
	}
	c.wg.Wait()
}

func (c *cluster) snapshot() *metadata { return c.md.Load() }

// now reads the clock topicIdle runs on.
func (c *cluster) now() time.Time {
	if c.cfg.now != nil {
		return c.cfg.now()
	}
	return time.Now()
}

// changedCh is closed at the next metadata update (or failed refresh).
func (c *cluster) changedCh() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.changed
}

func (c *cluster) requestRefresh() {
	select {
	case c.trigger <- struct{}{}:
	default:
	}
}

// addTopics makes topics part of every metadata request, refreshing at once
// if one is new.
func (c *cluster) addTopics(topics ...string) {
	now := c.now()
	c.mu.Lock()
	added := false
	for _, t := range topics {
		if _, ok := c.mu.topics[t]; !ok {
			added = true
		}
		c.mu.topics[t] = now
	}
	c.mu.newTopic = c.mu.newTopic || added
	c.mu.Unlock()
	if added {
		c.requestRefresh()
	}
}

// needTopic asks for a refresh with topic in it: the sender holds a batch
// for the topic and knows no leader for it, perhaps because the topic went
// idle (topicIdle) just as the record was produced.
func (c *cluster) needTopic(topic string) {
	c.addTopics(topic)
	c.requestRefresh()
}

func (c *cluster) lastErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.err
}

// connTo returns the live connection to broker node, dialing one if needed.
// Negative ids are seed brokers.
func (c *cluster) connTo(node int32) (*conn, error) {
	var addr string
	if node < 0 {
		i := int(-node) - 1
		if i >= len(c.cfg.seeds) {
			return nil, fmt.Errorf("client: no seed broker %d", node)
		}
		addr = c.cfg.seeds[i]
	} else {
		a, ok := c.snapshot().brokers[node]
		if !ok {
			return nil, fmt.Errorf("client: broker %d is not in the metadata", node)
		}
		addr = a
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return nil, ErrClosed
	}
	if cn := c.mu.conns[node]; cn != nil {
		if !cn.dead() && cn.addr == addr {
			return cn, nil
		}
		// The broker moved: close the old connection on another goroutine,
		// since failing its calls runs their callbacks, which may need the
		// goroutine calling us (the producer's sender) to make progress.
		c.wg.Go(cn.close)
	}
	cn := dialConn(addr, node, &c.cfg.conn, &c.wg)
	c.mu.conns[node] = cn
	return cn, nil
}

// anyConn returns a connection to some broker: a known one when metadata
// has brokers, else a seed. It prefers connections already open.
func (c *cluster) anyConn() (*conn, error) {
	ids := c.candidates()
	c.mu.Lock()
	for _, id := range ids {
		if cn := c.mu.conns[id]; cn != nil && !cn.dead() {
			c.mu.Unlock()
			return cn, nil
		}
	}
	c.mu.Unlock()
	return c.connTo(ids[0])
}

// candidates lists brokers to ask for metadata: the known ones in random
// order, then the seeds.
func (c *cluster) candidates() []int32 {
	var ids []int32
	if md := c.snapshot(); md != nil {
		for id := range md.brokers {
			ids = append(ids, id)
		}
		rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	}
	for i := range c.cfg.seeds {
		ids = append(ids, int32(-i-1))
	}
	return ids
}

func (c *cluster) loop() {
	maxAge := time.NewTimer(c.cfg.maxAge)
	defer maxAge.Stop()
	backoff := time.NewTimer(0)
	defer backoff.Stop()
	var last time.Time
	failures := 0
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.trigger:
		case <-maxAge.C:
		}
		// At most one refresh per retry.backoff.ms, doubling while refreshes
		// keep failing or leave something missing (up to 10x), so a missing
		// topic or a dead cluster costs a few requests a second, not a loop;
		// but a topic added meanwhile is asked for at once.
		wait := c.cfg.retryBackoff << min(failures, 3)
		wait = min(wait, 10*c.cfg.retryBackoff)
		if !c.waitBackoff(backoff, last.Add(wait)) {
			return
		}
		c.takeNewTopic() // this refresh asks for every topic added so far
		last = time.Now()
		incomplete, err := c.refresh()
		maxAge.Reset(c.cfg.maxAge)
		if err != nil || incomplete {
			failures++
			c.requestRefresh()
		} else {
			failures = 0
		}
	}
}

// waitBackoff waits on t until the time until, or until a topic is added;
// false if the cluster closes first.
func (c *cluster) waitBackoff(t *time.Timer, until time.Time) bool {
	for {
		d := time.Until(until)
		if d <= 0 || c.takeNewTopic() {
			return true
		}
		t.Reset(d)
		select {
		case <-c.ctx.Done():
			return false
		case <-t.C:
		case <-c.trigger: // perhaps a new topic
		}
	}
}

// takeNewTopic reports whether a topic was added since it last did.
func (c *cluster) takeNewTopic() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	added := c.mu.newTopic
	c.mu.newTopic = false
	return added
}

// refresh fetches metadata for the topics of interest from the first broker
// that answers. incomplete reports a topic or partition still without a leader
// (or being auto-created), worth asking again soon.
func (c *cluster) refresh() (incomplete bool, err error) {
	c.mu.Lock()
	topics := make([]string, 0, len(c.mu.topics))
	last, now := c.snapshot(), c.now()
	for t, used := range c.mu.topics {
		if c.cfg.topicIdle > 0 {
			if tm := last.topicMeta(t); tm != nil && tm.used.Swap(false) {
				used = now
				c.mu.topics[t] = now
			}
			if now.Sub(used) > c.cfg.topicIdle {
				// A record produced on the snapshot after this
				// look finds no leader for its batch; the
				// sender then asks for the topic again.
				delete(c.mu.topics, t)
				c.log.Debug("topic idle for metadata.max.idle.ms; no longer asking for it", "topic", t)
				continue
			}
		}
		topics = append(topics, t)
	}
	c.mu.Unlock()
	if c.cfg.metadataTopics != nil {
		topics = append(topics, c.cfg.metadataTopics()...)
	}
	slices.Sort(topics)
	topics = slices.Compact(topics)
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = make([]kmsg.MetadataRequestTopic, 0, len(topics)) // empty, not null: null asks for every topic
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	req.AllowAutoTopicCreation = c.cfg.autoCreate

	var resp *kmsg.MetadataResponse
	for _, id := range c.candidates() {
		cn, cerr := c.connTo(id)
		if cerr != nil {
			err = cerr
			continue
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.conn.requestTimeout)
		r, rerr := cn.do(ctx, req, -1, 0)
		cancel()
		if rerr != nil {
			err = rerr
			if c.ctx.Err() != nil {
				return false, rerr
			}
			continue
		}
		resp = r.(*kmsg.MetadataResponse)
		err = nil
		break
	}
	if resp == nil {
		if err == nil {
			err = errors.New("client: no broker to ask for metadata")
		}
		c.log.Warn("metadata refresh failed", "err", err)
		c.publish(nil, err)
		return true, err
	}
	md, incomplete := buildMetadata(resp)
	c.publish(md, nil)
	// Once real brokers are known, connections to the seed addresses are
	// closed: they duplicate a broker's, and a client has one per broker.
	c.mu.Lock()
	for id, cn := range c.mu.conns {
		if id < 0 && len(md.brokers) > 0 {
			cn.closeWhenIdle() // it may carry this very response's successors
			delete(c.mu.conns, id)
		}
	}
	c.mu.Unlock()
	return incomplete, nil
}

func (c *cluster) publish(md *metadata, err error) {
	if md != nil {
		c.md.Store(md)
	}
	c.mu.Lock()
	c.mu.err = err
	close(c.mu.changed)
	c.mu.changed = make(chan struct{})
	c.mu.Unlock()
}

func buildMetadata(resp *kmsg.MetadataResponse) (*metadata, bool) {
	md := &metadata{brokers: make(map[int32]string, len(resp.Brokers)), topics: make(map[string]*topicMeta, len(resp.Topics))}
	for _, b := range resp.Brokers {
		md.brokers[b.NodeID] = net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
	}
	incomplete := false
	for _, rt := range resp.Topics {
		if rt.Topic == nil {
			continue
		}
		t := &topicMeta{name: *rt.Topic, id: rt.TopicID, err: kerr.ErrorForCode(rt.ErrorCode)}
		n := 0
		for _, p := range rt.Partitions {
			n = max(n, int(p.Partition)+1)
		}
		if n > 1<<20 {
			n = 0 // not believable; treat the topic as unusable
			t.err = fmt.Errorf("client: topic %s: partition id out of range", t.name)
		}
		t.parts = make([]partMeta, n)
		for i := range t.parts {
			t.parts[i] = partMeta{leader: -1, leaderEpoch: -1, err: kerr.LeaderNotAvailable}
		}
		for _, p := range rt.Partitions {
			if int(p.Partition) >= n || p.Partition < 0 {
				continue
			}
			pm := partMeta{leader: p.Leader, leaderEpoch: p.LeaderEpoch, err: kerr.ErrorForCode(p.ErrorCode)}
			if _, ok := md.brokers[p.Leader]; !ok {
				pm.leader = -1
			}
			t.parts[p.Partition] = pm
		}
		for i, p := range t.parts {
			if p.leader >= 0 {
				t.writable = append(t.writable, int32(i))
			} else {
				incomplete = true
			}
		}
		if t.err != nil || len(t.parts) == 0 {
			incomplete = incomplete || retriableTopicErr(t.err) || t.err == nil
		}
		md.topics[t.name] = t
	}
	return md, incomplete
}

// retriableTopicErr reports whether a topic error may go away by itself: a
// topic being created (auto-create), a leader being elected.
func retriableTopicErr(err error) bool {
	if err == nil {
		return true
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Retriable || ke == kerr.UnknownTopicOrPartition
	}
	return false
}

// waitTopic waits until the metadata has topic with at least minParts
// partitions, asking for it first, and for a refresh while it has fewer.
// Errors that will not go away (an invalid name, no authorization) return
// at once.
func (c *cluster) waitTopic(ctx context.Context, topic string, minParts int) (*topicMeta, error) {
	asked := false
	for {
		ch := c.changedCh()
		short := false
		if md := c.snapshot(); md != nil {
			if t := md.topics[topic]; t != nil {
				if t.err == nil && len(t.parts) >= max(minParts, 1) {
					return t, nil
				}
				if !retriableTopicErr(t.err) {
					return nil, fmt.Errorf("client: topic %q: %w", topic, t.err)
				}
				short = t.err == nil && len(t.parts) > 0
			}
		}
		if !asked {
			c.addTopics(topic)
			asked = true
		}
		if short {
			// The partition may have been added since the last refresh;
			// refreshes come at most one per retry.backoff.ms.
			c.requestRefresh()
		}
		select {
		case <-ch:
		case <-ctx.Done():
			if md := c.snapshot(); short && md != nil && md.topics[topic] != nil {
				return nil, fmt.Errorf("client: partition %d of topic %q is not in the metadata (it has %d): %w: %w",
					minParts-1, topic, len(md.topics[topic].parts), kerr.UnknownTopicOrPartition, ctx.Err())
			}
			err := c.lastErr()
			if md := c.snapshot(); err == nil && md != nil && md.topics[topic] != nil {
				err = md.topics[topic].err
			}
			if err != nil {
				return nil, fmt.Errorf("client: metadata for topic %q not available: %w (last error: %w)", topic, ctx.Err(), err)
			}
			return nil, fmt.Errorf("client: metadata for topic %q not available: %w", topic, ctx.Err())
		case <-c.ctx.Done():
			return nil, ErrClosed
		}
	}
}
