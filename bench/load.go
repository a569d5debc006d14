package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Pacer gives each record of a fixed-rate producer its intended send time:
// start + n/rate. The load loop latency is measured from that time, not
// from when the record was actually handed to the client, so a stall that
// delays sending is charged to the records it delayed. Without this
// (coordinated omission) a stalled broker also stalls the measuring, and
// the stall's cost all but vanishes from the percentiles (Gil Tene, "How
// NOT to measure latency"; wrk2 and the OpenMessaging Benchmark do the
// same).
type Pacer struct {
	start time.Time
	rate  float64
	n     int64
}

// NewPacer paces records at rate per second from start.
func NewPacer(start time.Time, rate float64) *Pacer {
	return &Pacer{start: start, rate: rate}
}

// Next returns the intended send time of the next record.
func (p *Pacer) Next() time.Time {
	t := p.start.Add(time.Duration(float64(p.n) * float64(time.Second) / p.rate))
	p.n++
	return t
}

// loadStats gathers one scenario's figures from every producer and
// consumer. Counters are atomics and histograms lock inside, because
// acknowledgements and fetches arrive on the clients' goroutines.
//
// The measured window is [windowStart, windowEnd). A record belongs to it
// by its intended send time (latency figures) or by when its
// acknowledgement or delivery happened (throughput figures), so that
// throughput is what the cluster sustained in the window and latency is
// what the window's records saw, however late they were answered.
type loadStats struct {
	windowStart time.Time
	// windowEnd is the planned end of the measured phase, or the time of
	// an interrupt once endWindow has moved it there: the acknowledgements
	// and deliveries of the drain that follows an interrupt must not count
	// toward a phase that ended with it. An atomic, since the clients'
	// goroutines read it while the harness moves it.
	windowEnd atomic.Pointer[time.Time]

	produceLat, e2eLat *Recorder

	sent, acked, errors                     atomic.Int64
	ackedInWindow, ackedBytesInWindow       atomic.Int64
	consumed, consumeErrors                 atomic.Int64
	consumedInWindow, consumedBytesInWindow atomic.Int64

	// notSent are records a fixed-rate producer gave up on, never sending
	// them (producerLoop.giveUp); refused are records Produce refused up
	// front. Neither is in sent, and errors counts only failures answered
	// through done, so that sent - acked - errors is what went unanswered.
	notSent, refused atomic.Int64

	// redelivered are records a consumer group handed out again after a
	// rebalance: counted once, when first delivered.
	redelivered atomic.Int64

	// consumeTarget is how many deliveries mean the consumers have
	// everything (set once the producers have flushed); caughtUp closes
	// when consumed reaches it.
	consumeTarget atomic.Int64
	caughtUp      chan struct{}
	caughtOnce    sync.Once

	mu struct {
		sync.Mutex
		// firstErrors keeps a few distinct error texts; a dead broker
		// fails every record the same way.
		firstErrors []string
		// The progress window, reset at each progress line.
		ivAcks, ivSumUs, ivMaxUs, ivBytes int64
		ivStart                           time.Time
	}
}

// maxErrorTexts bounds how many error texts a scenario keeps.
const maxErrorTexts = 5

func newLoadStats(windowStart, windowEnd time.Time) *loadStats {
	s := &loadStats{windowStart: windowStart, produceLat: NewRecorder(), e2eLat: NewRecorder(),
		caughtUp: make(chan struct{})}
	s.windowEnd.Store(&windowEnd)
	s.consumeTarget.Store(math.MaxInt64)
	s.mu.ivStart = time.Now()
	return s
}

func (s *loadStats) inWindow(t time.Time) bool {
	return !t.Before(s.windowStart) && t.Before(*s.windowEnd.Load())
}

// endWindow ends the measured window at t, if that is sooner than its end:
// an interrupt ends the measured phase.
func (s *loadStats) endWindow(t time.Time) {
	if t.Before(*s.windowEnd.Load()) {
		s.windowEnd.Store(&t)
	}
}

func (s *loadStats) noteError(err error) {
	msg := err.Error()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.mu.firstErrors) >= maxErrorTexts {
		return
	}
	for _, m := range s.mu.firstErrors {
		if m == msg {
			return
		}
	}
	s.mu.firstErrors = append(s.mu.firstErrors, msg)
}

// ack records one acknowledgement (or failure) of a record intended to be
// sent at intended.
func (s *loadStats) ack(intended, at time.Time, size int, err error) {
	if err != nil {
		s.errors.Add(1)
		s.noteError(err)
		return
	}
	s.acked.Add(1)
	lat := at.Sub(intended)
	if s.inWindow(intended) {
		s.produceLat.Record(lat)
	}
	if s.inWindow(at) {
		s.ackedInWindow.Add(1)
		s.ackedBytesInWindow.Add(int64(size))
	}
	us := lat.Microseconds()
	s.mu.Lock()
	s.mu.ivAcks++
	s.mu.ivSumUs += us
	s.mu.ivMaxUs = max(s.mu.ivMaxUs, us)
	s.mu.ivBytes += int64(size)
	s.mu.Unlock()
}

// delivered records one record received by a consumer at at.
func (s *loadStats) delivered(sentAt, at time.Time, size int) {
	if s.inWindow(sentAt) {
		s.e2eLat.Record(at.Sub(sentAt))
	}
	if s.inWindow(at) {
		s.consumedInWindow.Add(1)
		s.consumedBytesInWindow.Add(int64(size))
	}
	if s.consumed.Add(1) >= s.consumeTarget.Load() {
		s.caughtOnce.Do(func() { close(s.caughtUp) })
	}
}

// expectDeliveries sets how many deliveries complete the scenario.
func (s *loadStats) expectDeliveries(n int64) {
	s.consumeTarget.Store(n)
	if s.consumed.Load() >= n {
		s.caughtOnce.Do(func() { close(s.caughtUp) })
	}
}

// progressLine returns the window since the last call in the form of
// kafka-producer-perf-test's periodic lines, and starts a new window.
func (s *loadStats) progressLine(now time.Time) string {
	s.mu.Lock()
	n, sum, mx, b, start := s.mu.ivAcks, s.mu.ivSumUs, s.mu.ivMaxUs, s.mu.ivBytes, s.mu.ivStart
	s.mu.ivAcks, s.mu.ivSumUs, s.mu.ivMaxUs, s.mu.ivBytes, s.mu.ivStart = 0, 0, 0, 0, now
	s.mu.Unlock()
	secs := now.Sub(start).Seconds()
	if secs <= 0 {
		secs = 1e-9
	}
	avg := 0.0
	if n > 0 {
		avg = float64(sum) / float64(n) / 1000
	}
	return fmt.Sprintf("%d records sent, %.1f records/sec (%.2f MB/sec), %.1f ms avg latency, %.1f ms max latency.",
		n, float64(n)/secs, float64(b)/secs/(1<<20), avg, float64(mx)/1000)
}

func (s *loadStats) errorTexts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.mu.firstErrors...)
}

// keySource hands out keys as the OpenMessaging Benchmark's key
// distributors do: 10,000 distinct 7-byte keys, cycled in order
// (KEY_ROUND_ROBIN) or picked at random (RANDOM_NANO); NO_KEY gives nil.
type keySource struct {
	kind KeyDistributor
	keys [][]byte
	next int
	rng  *rand.Rand
}

const (
	uniqueKeys = 10000
	keyBytes   = 7
)

func newKeySource(kind KeyDistributor, seed uint64) *keySource {
	k := &keySource{kind: kind, rng: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))}
	if kind == NoKey {
		return k
	}
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	k.keys = make([][]byte, uniqueKeys)
	for i := range k.keys {
		b := make([]byte, keyBytes)
		for j := range b {
			b[j] = alphabet[k.rng.IntN(len(alphabet))]
		}
		k.keys[i] = b
	}
	return k
}

func (k *keySource) key() []byte {
	switch k.kind {
	case KeyRoundRobin:
		b := k.keys[k.next]
		k.next = (k.next + 1) % len(k.keys)
		return b
	case RandomNano:
		return k.keys[k.rng.IntN(len(k.keys))]
	}
	return nil
}

// payloadSource makes record values from a pool of distinct templates of
// messageSize bytes, cycled, whose first 8 bytes are replaced by the
// record's intended send time in Unix nanoseconds, so a consumer measures
// end-to-end latency to the microsecond rather than to the millisecond of
// the record timestamp. Distinct templates matter for compression: a
// batch of copies of one record compresses 60-90x, which no real stream
// does. Values are recycled once acknowledged: a pool keeps the harness
// from allocating a record's worth of garbage per send.
type payloadSource struct {
	templates [][]byte
	next      atomic.Uint64
	pool      sync.Pool
}

// stampBytes is how much of a value carries the send time.
const stampBytes = 8

// Bounds on the template pool: enough distinct records that a batch (at
// most a few hundred records) never repeats one, at most 64 MiB in all.
const (
	maxTemplates     = 1024
	maxTemplateBytes = 64 << 20
)

func newPayloadSource(templates ...[]byte) *payloadSource {
	ps := &payloadSource{templates: templates}
	size := len(templates[0])
	ps.pool.New = func() any { b := make([]byte, size); return &b }
	return ps
}

// makePayloads builds the template pool for a workload: the payload file's
// bytes alone, or distinct generated records.
func makePayloads(w *Workload, seed uint64) [][]byte {
	if w.payload != nil {
		return [][]byte{w.payload}
	}
	n := min(maxTemplates, max(1, maxTemplateBytes/w.MessageSize))
	out := make([][]byte, n)
	for i := range out {
		out[i] = makePayload(w.Payload, w.MessageSize, seed*maxTemplates+uint64(i))
	}
	return out
}

func (ps *payloadSource) get(sentAt time.Time) *[]byte {
	bp := ps.pool.Get().(*[]byte)
	b := *bp
	copy(b, ps.templates[(ps.next.Add(1)-1)%uint64(len(ps.templates))])
	if len(b) >= stampBytes {
		binary.LittleEndian.PutUint64(b, uint64(sentAt.UnixNano()))
	}
	return bp
}

func (ps *payloadSource) put(bp *[]byte) { ps.pool.Put(bp) }

// sentTime reads the send time a value carries, falling back to the record
// timestamp for values too short to carry one, or not made by this
// harness (a stamp more than a day from now).
func sentTime(r ConsumedRecord, now time.Time) time.Time {
	if len(r.Value) >= stampBytes {
		t := time.Unix(0, int64(binary.LittleEndian.Uint64(r.Value)))
		if d := now.Sub(t); d > -24*time.Hour && d < 24*time.Hour {
			return t
		}
	}
	return r.Timestamp
}

// makePayload builds a value template. Text compresses roughly as JSON
// logs do (3-4x with zstd or gzip); random bytes do not compress at all.
func makePayload(kind PayloadKind, size int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, 0, size+64)
	if kind == PayloadRandom {
		b = b[:size]
		for i := 0; i+8 <= size; i += 8 {
			binary.LittleEndian.PutUint64(b[i:], rng.Uint64())
		}
		for i := size &^ 7; i < size; i++ {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	words := []string{"order", "user", "click", "view", "cart", "checkout", "session", "region", "eu-west",
		"us-east", "status", "ok", "error", "latency", "amount", "currency", "EUR", "USD", "device", "mobile"}
	for len(b) < size {
		b = fmt.Appendf(b, `{"id":%d,"%s":"%s","%s":%d,"%s":"%s"}`+"\n", rng.IntN(1e6),
			words[rng.IntN(len(words))], words[rng.IntN(len(words))], words[rng.IntN(len(words))], rng.IntN(1e4),
			words[rng.IntN(len(words))], words[rng.IntN(len(words))])
	}
	return b[:size]
}

// lateSlack is how far past its end a fixed-rate producer that has fallen
// behind may keep sending: scheduling jitter, not a backlog.
const lateSlack = 100 * time.Millisecond

// producerLoop is one producer's load: records at a fixed rate (or as fast
// as the client takes them) from start until end, at most maxRecords.
type producerLoop struct {
	p          Producer
	topic      string
	rate       float64 // records per second; 0 means as fast as possible
	start, end time.Time
	maxRecords int64
	keys       *keySource
	payload    *payloadSource
	stats      *loadStats
}

// run sends until end, maxRecords or ctx, whichever comes first. At a
// fixed rate it waits for each record's intended time; when behind
// schedule it sends at once, and the lateness counts in the latency. A
// fixed-rate loop still behind schedule lateSlack after end, or whose ctx
// passes its deadline (the harness's bound on a producer blocked in
// Produce), gives up on the records left (giveUp).
func (l *producerLoop) run(ctx context.Context) error {
	var pacer *Pacer
	if l.rate > 0 {
		pacer = NewPacer(l.start, l.rate)
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	// stopped ends the loop when ctx has ended, with the record intended
	// at intended and n-1 more still to send.
	stopped := func(intended time.Time, n int64) error {
		if pacer != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			l.giveUp(pacer, intended, n)
		}
		return ctx.Err()
	}
	for i := range l.maxRecords {
		var intended time.Time
		if pacer != nil {
			intended = pacer.Next()
			if !intended.Before(l.end) {
				return nil
			}
			if d := time.Until(intended); d > 0 {
				timer.Reset(d)
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-timer.C:
				}
			} else if -d > 0 && time.Now().After(l.end.Add(lateSlack)) {
				// Behind schedule past the end: the rate was not met.
				// Stop rather than run on, giving up on the records
				// left, which count in the latencies all the same.
				l.giveUp(pacer, intended, l.maxRecords-i)
				return nil
			}
		} else {
			// As fast as possible: latency counts from just before the
			// send, including any time Produce blocks on a full buffer,
			// as kafka-producer-perf-test counts it.
			intended = time.Now()
			if !intended.Before(l.end) {
				return nil
			}
		}
		if ctx.Err() != nil {
			return stopped(intended, l.maxRecords-i)
		}
		bp := l.payload.get(intended)
		size := len(*bp)
		err := l.p.Produce(ctx, l.topic, AnyPartition, l.keys.key(), *bp, intended, func(err error) {
			l.stats.ack(intended, time.Now(), size, err)
			l.payload.put(bp)
		})
		if err != nil {
			l.payload.put(bp)
			if ctx.Err() != nil {
				return stopped(intended, l.maxRecords-i)
			}
			l.stats.refused.Add(1)
			l.stats.noteError(err)
			continue
		}
		l.stats.sent.Add(1)
	}
	return nil
}

// giveUp counts the records from the one intended at intended (at most n,
// those intended before end) as not sent, and records for each one in the
// window the latency it has seen so far, now - intended: a lower bound, as
// wrk2 records it. These are the records that waited longest; leaving them
// out would hide the very backlog that stopped the producer (coordinated
// omission at the end of the run).
func (l *producerLoop) giveUp(pacer *Pacer, intended time.Time, n int64) {
	now := time.Now()
	var count int64
	for t := intended; count < n && t.Before(l.end); t = pacer.Next() {
		count++
		if l.stats.inWindow(t) {
			l.stats.produceLat.Record(now.Sub(t))
		}
	}
	l.stats.notSent.Add(count)
}

// groupOffsets is what a consumer group has delivered: one past the highest
// offset per partition. A group may hand records out again after a
// rebalance (committed offsets trail what was read: at least once); those
// are counted as redelivered, not as deliveries, so that every
// subscription's count still ends at the number of records stored.
type groupOffsets struct {
	next []atomic.Int64 // by partition
}

func newGroupOffsets(partitions int) *groupOffsets {
	return &groupOffsets{next: make([]atomic.Int64, partitions)}
}

// first reports whether the record at offset of partition is delivered
// for the first time, and notes it.
func (g *groupOffsets) first(partition int32, offset int64) bool {
	if partition < 0 || int(partition) >= len(g.next) {
		return true
	}
	p := &g.next[partition]
	for {
		cur := p.Load()
		if offset < cur {
			return false
		}
		if p.CompareAndSwap(cur, offset+1) {
			return true
		}
	}
}

// consumeLoop delivers records to stats until ctx ends (the harness gives
// it a deadline). Fetch errors are counted and the loop goes on after a
// pause: the client retries them itself, and a client that fails at once
// every time must not spin a core. group, for a member of a consumer
// group, is what the group has delivered; nil otherwise.
func consumeLoop(ctx context.Context, c Consumer, stats *loadStats, group *groupOffsets) {
	pause := time.NewTimer(time.Hour)
	pause.Stop()
	defer pause.Stop()
	for ctx.Err() == nil {
		err := c.Poll(ctx, func(r ConsumedRecord) {
			if group != nil && !group.first(r.Partition, r.Offset) {
				stats.redelivered.Add(1)
				return
			}
			now := time.Now()
			stats.delivered(sentTime(r, now), now, len(r.Value))
		})
		if err != nil && ctx.Err() == nil {
			stats.consumeErrors.Add(1)
			stats.noteError(err)
			pause.Reset(consumeErrorPause)
			select {
			case <-ctx.Done():
			case <-pause.C:
			}
		}
	}
}

// consumeErrorPause is how long a consumer waits after a failed fetch.
const consumeErrorPause = 100 * time.Millisecond
