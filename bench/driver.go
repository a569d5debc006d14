package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"
)

// AnyPartition lets the client's partitioner choose: sticky for records
// without a key, murmur2 of the key otherwise, as Kafka's Java client does.
const AnyPartition int32 = -1

// Producer is the load generator's view of a Kafka producer. Implementations
// wrap one client library each (Gregor's own client and franz-go);
// the harness measures through this interface only, so every client is
// measured the same way.
type Producer interface {
	// Produce queues one record. partition is AnyPartition or a partition
	// to pin the record to. ts is the record's timestamp. done is called
	// exactly once, with nil when the record is acknowledged (as acks
	// asks) or with the reason it failed; it may run on any goroutine and
	// must not block. value must stay untouched until done is called. An
	// error return means the record was not queued and done is not called.
	// Produce may block while the client's buffer is full, until ctx ends.
	Produce(ctx context.Context, topic string, partition int32, key, value []byte, ts time.Time, done func(error)) error
	// Flush waits until every queued record has called done, or ctx ends.
	Flush(ctx context.Context) error
	// Close releases the client; records still queued fail.
	Close() error
}

// ProducerStats are a producer's own counters, for clients that keep them.
type ProducerStats struct {
	// Batches is the number of record batches the brokers accepted.
	Batches int64
	// UncompressedBytes and CompressedBytes add up those batches' sizes
	// before and after compression: whole RecordBatches, the 61-byte
	// header included, whatever the client library counts itself.
	UncompressedBytes, CompressedBytes int64
	// Retries counts produce requests or batches sent again after a
	// retriable error; -1 when the client does not say.
	Retries int64
}

// StatsProducer is a Producer that reports ProducerStats.
type StatsProducer interface {
	Producer
	Stats() ProducerStats
}

// ConsumedRecord is what a consumer hands the harness. Value is only valid
// during the callback.
type ConsumedRecord struct {
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time
	Value     []byte
}

// Consumer reads partitions assigned to it directly, from their beginning,
// or as a member of a consumer group (ConsumerConfig.Group) whatever the
// group gives it, from the group's committed offsets (the beginning when
// there are none).
type Consumer interface {
	// Poll waits for records (or for ctx to end) and calls fn for each
	// record received, on the calling goroutine. It returns after one
	// fetch's worth of records; an error is a fetch that failed.
	Poll(ctx context.Context, fn func(ConsumedRecord)) error
	// Close releases the client.
	Close() error
}

// ProducerConfig is what a driver needs to build a producer.
type ProducerConfig struct {
	Bootstrap []string
	Settings  ProducerSettings
	ClientID  string
}

// ConsumerConfig is what a driver needs to build a consumer: of the given
// partitions, read from the start, or, with Group set, a member of that
// consumer group subscribed to Topics.
type ConsumerConfig struct {
	Bootstrap  []string
	Partitions map[string][]int32
	ClientID   string
	// Group is the consumer group (group.id) to join; "" assigns
	// Partitions directly. Members use the Java client's default
	// partition.assignment.strategy (range, cooperative-sticky: so range,
	// eager) whatever the client's own default, so that clients compare.
	Group  string
	Topics []string
}

// GroupConsumer is a group member that says where it stands, so the harness
// can wait until every group has settled before it starts the load: a
// rebalance during the measured phase would be measured as the cluster's
// latency.
type GroupConsumer interface {
	Consumer
	// GroupState returns the generation the member last joined (-1 for
	// none) and how many partitions it owns now.
	GroupState() (generation int32, partitions int)
}

// Driver builds producers and consumers of one client library.
type Driver interface {
	NewProducer(ctx context.Context, cfg ProducerConfig) (Producer, error)
	NewConsumer(ctx context.Context, cfg ConsumerConfig) (Consumer, error)
}

// settingsChecker is a Driver that can tell, before a run starts, which
// producer settings its client cannot honour (Config.Check asks it about
// every scenario), rather than failing those scenarios one by one, or
// running them with other settings than the report names.
type settingsChecker interface {
	checkProducerSettings(s ProducerSettings) error
}

var (
	driversMu sync.Mutex
	drivers   = map[string]Driver{}
)

// RegisterDriver makes a client available under name (the --client flag's
// value). Adding a client library is one file whose init calls this.
func RegisterDriver(name string, d Driver) {
	driversMu.Lock()
	defer driversMu.Unlock()
	if _, dup := drivers[name]; dup {
		panic("bench: driver " + name + " registered twice")
	}
	drivers[name] = d
}

// ErrDriverNotAvailable is returned for a client that is planned but not
// built in yet.
var ErrDriverNotAvailable = errors.New("not available yet")

// plannedDrivers are clients the harness will have; naming one gives a
// clearer error than "unknown".
var plannedDrivers = map[string]string{}

// DriverNames lists the registered clients, sorted.
func DriverNames() []string {
	driversMu.Lock()
	defer driversMu.Unlock()
	var names []string
	for n := range drivers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// LookupDriver returns the driver registered under name.
func LookupDriver(name string) (Driver, error) {
	driversMu.Lock()
	d, ok := drivers[name]
	driversMu.Unlock()
	if ok {
		return d, nil
	}
	if why, planned := plannedDrivers[name]; planned {
		return nil, fmt.Errorf("client %q: %w: %s", name, ErrDriverNotAvailable, why)
	}
	names := DriverNames()
	return nil, fmt.Errorf("client %q: unknown; available: %s", name, joinOr(names))
}

func joinOr(names []string) string {
	names = slices.Clone(names)
	switch len(names) {
	case 0:
		return "none"
	case 1:
		return names[0]
	}
	s := ""
	for i, n := range names {
		switch {
		case i == 0:
			s = n
		case i == len(names)-1:
			s += " or " + n
		default:
			s += ", " + n
		}
	}
	return s
}
