package broker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"

	"gregor/internal/testcluster"
)

// kafkaGoGroup follows kafka-go Readers of one group. kafka-go has no
// rebalance callbacks; its log says when a reader joins a generation and
// which partitions it then reads from which offsets, so the readers' loggers
// report those.
type kafkaGoGroup struct {
	topic string

	mu      sync.Mutex
	changed chan struct{}
	readers map[string]*kafkaGoGroupReader
	reads   map[int32]map[int64][]string // partition -> offset -> readers
	errs    []string
}

type kafkaGoGroupReader struct {
	generation int32           // the last generation it joined
	subscribed map[int32]int64 // its partitions in that generation, from the offsets it starts at
	committed  map[int32]int64 // what its CommitMessages acknowledged
	// commitBelow: it commits only messages below this offset.
	commitBelow atomic.Int64
	// stopping: the test is closing it, and its errors are expected.
	stopping atomic.Bool
}

func (g *kafkaGoGroup) event(fn func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	fn()
	close(g.changed)
	g.changed = make(chan struct{})
}

func (g *kafkaGoGroup) fail(format string, args ...any) {
	g.event(func() {
		if len(g.errs) < 20 {
			g.errs = append(g.errs, fmt.Sprintf(format, args...))
		}
	})
}

// wait waits until cond (called under the lock) holds.
func (g *kafkaGoGroup) wait(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	waitGroupEvents(t, ctx, what, &g.mu, func() (bool, []string, <-chan struct{}) {
		return cond(), slices.Clone(g.errs), g.changed
	}, func() string {
		var b strings.Builder
		for name, r := range g.readers {
			fmt.Fprintf(&b, "  %s: generation %d, subscribed %v, committed %v\n", name, r.generation, r.subscribed, r.committed)
		}
		return b.String()
	})
}

// kafkaGoLogger turns one reader's log lines into events.
type kafkaGoLogger struct {
	g    *kafkaGoGroup
	name string
}

func (l kafkaGoLogger) Printf(format string, args ...any) {
	switch {
	case strings.HasPrefix(format, "Joined group %s as member %s in generation %d") && len(args) == 3:
		gen, ok := args[2].(int32)
		if !ok {
			l.g.fail("%s: a generation of type %T", l.name, args[2])
			return
		}
		l.g.event(func() { l.g.readers[l.name].generation = gen })
	case strings.HasPrefix(format, "subscribed to topics and partitions:") && len(args) == 1:
		// The map is kafka-go's map[topicPartition]int64, whose key's
		// fields are unexported: read them by reflection.
		subs := map[int32]int64{}
		v := reflect.ValueOf(args[0])
		if v.Kind() != reflect.Map {
			l.g.fail("%s: subscribed to a %T", l.name, args[0])
			return
		}
		for it := v.MapRange(); it.Next(); {
			if topic := it.Key().FieldByName("topic").String(); topic != l.g.topic {
				l.g.fail("%s: subscribed to topic %q", l.name, topic)
			}
			subs[int32(it.Key().FieldByName("partition").Int())] = it.Value().Int()
		}
		l.g.event(func() { l.g.readers[l.name].subscribed = subs })
	}
}

type kafkaGoErrorLogger struct {
	g    *kafkaGoGroup
	name string
}

func (l kafkaGoErrorLogger) Printf(format string, args ...any) {
	// kafka-go logs and retries; none of these should happen here but
	// while the reader closes; for a read that times out: its deadline
	// is MaxWait after it sent the fetch, whose wait it sets a quarter
	// shorter, so a broker slowed down (the race detector, a busy
	// machine) can miss it, and the reader reads the same offset again;
	// and for a join that comes while the group's coordinator is still
	// loading __consumer_offsets, which Kafka answers
	// COORDINATOR_LOAD_IN_PROGRESS too, and the reader joins again.
	msg := fmt.Sprintf(format, args...)
	l.g.mu.Lock()
	r := l.g.readers[l.name]
	l.g.mu.Unlock()
	if !r.stopping.Load() && !strings.Contains(msg, "i/o timeout") && !strings.Contains(msg, "Load In Progress") {
		l.g.fail("%s: kafka-go: %s", l.name, msg)
	}
}

// startReader starts a Reader in the group that reads, checks each message
// against its partition and offset, and commits it with CommitMessages
// (synchronous: CommitInterval 0) if it is below commitBelow.
func (g *kafkaGoGroup) startReader(t *testing.T, c *testcluster.Cluster, group, name string, commitBelow int64) (stop func()) {
	t.Helper()
	st := &kafkaGoGroupReader{committed: map[int32]int64{}}
	st.commitBelow.Store(commitBelow)
	g.event(func() { g.readers[name] = st })
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:           c.Addrs(),
		GroupID:           group,
		Topic:             g.topic,
		Dialer:            &kafka.Dialer{Timeout: 5 * time.Second, ClientID: name},
		MaxWait:           100 * time.Millisecond,
		HeartbeatInterval: 100 * time.Millisecond,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  5 * time.Second,
		JoinGroupBackoff:  100 * time.Millisecond,
		ReadBackoffMin:    10 * time.Millisecond,
		ReadBackoffMax:    100 * time.Millisecond,
		StartOffset:       kafka.FirstOffset,
		GroupBalancers:    []kafka.GroupBalancer{kafka.RangeGroupBalancer{}},
		Logger:            kafkaGoLogger{g, name},
		ErrorLogger:       kafkaGoErrorLogger{g, name},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			msg, err := r.FetchMessage(ctx)
			if err != nil {
				if ctx.Err() == nil && !errors.Is(err, io.EOF) {
					g.fail("%s: FetchMessage: %v", name, err)
				}
				return
			}
			p := int32(msg.Partition)
			g.event(func() {
				if string(msg.Value) != recordValue(p, msg.Offset) {
					g.errs = append(g.errs, fmt.Sprintf("%s read %q at partition %d offset %d", name, msg.Value, p, msg.Offset))
				}
				if g.reads[p] == nil {
					g.reads[p] = map[int64][]string{}
				}
				g.reads[p][msg.Offset] = append(g.reads[p][msg.Offset], name)
			})
			if msg.Offset >= st.commitBelow.Load() {
				continue
			}
			if err := r.CommitMessages(ctx, msg); err != nil {
				if ctx.Err() == nil {
					g.fail("%s: CommitMessages: %v", name, err)
				}
				return
			}
			g.event(func() { st.committed[p] = msg.Offset + 1 })
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			st.stopping.Store(true)
			cancel()
			<-done
			if err := r.Close(); err != nil { // leaves the group
				t.Errorf("closing reader %s: %v", name, err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// shared says whether readers, in one generation, read every partition
// between them, each from offset from, each at least one partition.
func (g *kafkaGoGroup) shared(partitions int32, from int64, readers ...string) func() bool {
	return func() bool {
		seen := map[int32]bool{}
		gen := g.readers[readers[0]].generation
		for _, name := range readers {
			r := g.readers[name]
			if r.generation != gen || len(r.subscribed) == 0 {
				return false
			}
			for p, off := range r.subscribed {
				if seen[p] || off != from {
					return false
				}
				seen[p] = true
			}
		}
		return len(seen) == int(partitions)
	}
}

// readTo says whether every offset below end of every partition has been
// read.
func (g *kafkaGoGroup) readTo(partitions int32, end int64) func() bool {
	return func() bool {
		for p := range partitions {
			if len(g.reads[p]) < int(end) {
				return false
			}
		}
		return true
	}
}

// committedTo says whether reader's commits of each of partitions reached
// offset.
func (g *kafkaGoGroup) committedTo(reader string, offset int64, partitions ...int32) func() bool {
	return func() bool {
		for _, p := range partitions {
			if g.readers[reader].committed[p] != offset {
				return false
			}
		}
		return true
	}
}

func allOf(conds ...func() bool) func() bool {
	return func() bool {
		for _, c := range conds {
			if !c() {
				return false
			}
		}
		return true
	}
}

// TestGroupKafkaGoReaders runs kafka-go Readers with a GroupID: a reader
// reads and commits (CommitMessages) a topic alone; a second joins and the
// two split the partitions between them in one generation, each starting
// from the commits, and read the next records exactly once; they leave,
// and a new reader resumes from the commits. It commits part of what it
// reads, and the reader after it starts from that point: those records,
// and only those, are read twice.
func TestGroupKafkaGoReaders(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	const topic, group, partitions = "kafkago-group", "group-kafkago", 4
	createTopic(t, c, topic, partitions, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	g := &kafkaGoGroup{topic: topic, changed: make(chan struct{}), readers: map[string]*kafkaGoGroupReader{}, reads: map[int32]map[int64][]string{}}
	tr := newGroupTracker(topic, partitions) // for produceEach only
	prod := manualProducer(t, c)
	adm := kadm.NewClient(newClient(t, c))

	stop1 := g.startReader(t, c, group, "r1", math.MaxInt64)
	g.wait(t, ctx, "r1 reads every partition from the start", g.shared(partitions, kafka.FirstOffset, "r1"))
	produceEach(t, ctx, prod, tr, 10)
	every := []int32{0, 1, 2, 3}
	g.wait(t, ctx, "r1 reads and commits offsets 0-9", allOf(g.readTo(partitions, 10), g.committedTo("r1", 10, every...)))

	stop2 := g.startReader(t, c, group, "r2", math.MaxInt64)
	g.wait(t, ctx, "r1 and r2 share the partitions from offset 10", g.shared(partitions, 10, "r1", "r2"))
	produceEach(t, ctx, prod, tr, 10)
	g.mu.Lock()
	owners := map[int32]string{}
	var parts1, parts2 []int32
	for p := range g.readers["r1"].subscribed {
		owners[p] = "r1"
		parts1 = append(parts1, p)
	}
	for p := range g.readers["r2"].subscribed {
		owners[p] = "r2"
		parts2 = append(parts2, p)
	}
	g.mu.Unlock()
	g.wait(t, ctx, "r1 and r2 read offsets 10-19 and commit them",
		allOf(g.readTo(partitions, 20), g.committedTo("r1", 20, parts1...), g.committedTo("r2", 20, parts2...)))
	stop1()
	stop2()

	// r3 reads offsets 20-29 and commits 20-24 only.
	produceEach(t, ctx, prod, tr, 10)
	stop3 := g.startReader(t, c, group, "r3", 25)
	g.wait(t, ctx, "r3 resumes at offset 20", g.shared(partitions, 20, "r3"))
	g.wait(t, ctx, "r3 reads offsets 20-29 and commits 20-24", allOf(g.readTo(partitions, 30), g.committedTo("r3", 25, every...)))
	stop3()
	g.startReader(t, c, group, "r4", math.MaxInt64)
	g.wait(t, ctx, "r4 resumes at offset 25", g.shared(partitions, 25, "r4"))
	g.wait(t, ctx, "r4 reads offsets 25-29 and commits them", allOf(g.readTo(partitions, 30), g.committedTo("r4", 30, every...)))

	g.mu.Lock()
	defer g.mu.Unlock()
	for p := range int32(partitions) {
		for off := range int64(30) {
			var want []string
			switch {
			case off < 10:
				want = []string{"r1"}
			case off < 20:
				want = []string{owners[p]}
			case off < 25:
				want = []string{"r3"}
			default:
				want = []string{"r3", "r4"}
			}
			if got := g.reads[p][off]; !slices.Equal(got, want) {
				t.Errorf("partition %d offset %d read by %v, want %v", p, off, got, want)
			}
		}
		if n := len(g.reads[p]); n != 30 {
			t.Errorf("partition %d: %d offsets read, want 30", p, n)
		}
	}
	if got := fetchedOffsets(t, ctx, adm, group); strings.Count(got, "@30(") != partitions {
		t.Errorf("offsets of %s: %s, want 30 on each partition", group, got)
	}
}
