package client

import (
	"errors"
	"fmt"
	"math"
	"net"

	"gregor/batch"
)

// ProducerConfig configures a Producer. Each field is the Java producer's
// config of the same name (in the comment), with its default from
// DefaultProducerConfig.
type ProducerConfig struct {
	// BootstrapServers is bootstrap.servers: host:port pairs to fetch the
	// first metadata from. Required.
	BootstrapServers []string
	// ClientID is client.id, sent with every request.
	ClientID string
	// Acks is acks: "all" (or "-1") waits for the in-sync replicas, "1" for
	// the leader, "0" for nothing (no response is sent). Default "all".
	Acks string
	// LingerMs is linger.ms: how long a batch waits for more records. 5.
	LingerMs int
	// BatchSize is batch.size: a batch closes before it would pass this
	// many bytes (uncompressed). 16384.
	BatchSize int
	// CompressionType is compression.type: none, gzip, snappy, lz4 or zstd.
	CompressionType string
	// CompressionLevels are compression.gzip.level, .lz4.level and
	// .zstd.level (KIP-390): the level of the codec compression.type
	// names, on Kafka's scale. -1, 9 and 3; 0 is the codec's default.
	CompressionLevels batch.Levels
	// BufferMemory is buffer.memory: the bytes of records the producer may
	// hold before Produce blocks. 32 MiB.
	BufferMemory int64
	// MaxBlockMs is max.block.ms: how long Produce may block for metadata or
	// buffer space. 60000.
	MaxBlockMs int
	// EnableIdempotence is enable.idempotence: producer id, epoch and
	// sequence numbers, so retries neither duplicate nor reorder records.
	// Requires acks=all and max.in.flight.requests.per.connection <= 5.
	// Default true.
	EnableIdempotence bool
	// MaxInFlightRequestsPerConnection is
	// max.in.flight.requests.per.connection: Produce requests pipelined on
	// one broker connection. 5.
	MaxInFlightRequestsPerConnection int
	// Retries is retries: how many times a batch is resent after a
	// retriable error (delivery.timeout.ms bounds it too). MaxInt32.
	Retries int
	// RetryBackoffMs is retry.backoff.ms: the wait before a batch is resent
	// and between metadata refreshes. 100.
	RetryBackoffMs int
	// DeliveryTimeoutMs is delivery.timeout.ms: the most time between
	// Produce and the callback, retries included. Must be at least
	// linger.ms + request.timeout.ms. 120000.
	DeliveryTimeoutMs int
	// RequestTimeoutMs is request.timeout.ms: how long to wait for a
	// response before the connection is deemed dead. 30000.
	RequestTimeoutMs int
	// Partitioner is partitioner.class, by name: "default" (murmur2 of the
	// key like the Java client, the KIP-480 sticky partitioner for records
	// without a key, moving on to a partition chosen against long queues as
	// KIP-794's adaptive partitioning does), "uniform_sticky" (sticky for
	// every record, keys ignored) or "round_robin".
	Partitioner string
	// MetadataMaxAgeMs is metadata.max.age.ms: metadata is refreshed at
	// least this often. 300000.
	MetadataMaxAgeMs int
	// MetadataMaxIdleMs is metadata.max.idle.ms: a topic not produced to
	// for this long leaves the metadata requests, so that a producer that
	// moves from topic to topic (one a day, say) does not ask for every
	// one it ever used. The next record for it asks again. 300000, at
	// least 5000, as in Java.
	MetadataMaxIdleMs int
	// MaxRequestSize is max.request.size: the largest Produce request, and
	// so the largest record. 1048576.
	MaxRequestSize int
}

// DefaultProducerConfig returns the Java producer's defaults. BootstrapServers
// is left empty: there is no sensible default.
func DefaultProducerConfig() ProducerConfig {
	return ProducerConfig{
		ClientID:                         "gregor",
		Acks:                             "all",
		LingerMs:                         5,
		BatchSize:                        16384,
		CompressionType:                  "none",
		CompressionLevels:                batch.DefaultLevels(),
		BufferMemory:                     32 << 20,
		MaxBlockMs:                       60000,
		EnableIdempotence:                true,
		MaxInFlightRequestsPerConnection: 5,
		Retries:                          math.MaxInt32,
		RetryBackoffMs:                   100,
		DeliveryTimeoutMs:                120000,
		RequestTimeoutMs:                 30000,
		Partitioner:                      "default",
		MetadataMaxAgeMs:                 300000,
		MetadataMaxIdleMs:                300000,
		MaxRequestSize:                   1 << 20,
	}
}

// Validate reports every bad field with its value.
func (c ProducerConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	errs = append(errs, validateBootstrap(c.BootstrapServers)...)
	acks, err := parseAcks(c.Acks)
	if err != nil {
		errs = append(errs, err)
	}
	if c.LingerMs < 0 {
		bad("linger.ms = %d: must be >= 0", c.LingerMs)
	}
	if c.BatchSize <= 0 {
		bad("batch.size = %d: must be > 0", c.BatchSize)
	}
	if _, err := batch.ParseCodec(c.CompressionType); err != nil {
		bad("compression.type = %q: must be none, gzip, snappy, lz4 or zstd", c.CompressionType)
	}
	if err := c.CompressionLevels.Check(); err != nil {
		errs = append(errs, err)
	}
	if c.BufferMemory <= batch.HeaderSize {
		bad("buffer.memory = %d: must be > %d", c.BufferMemory, batch.HeaderSize)
	}
	if c.MaxBlockMs < 0 {
		bad("max.block.ms = %d: must be >= 0", c.MaxBlockMs)
	}
	if c.MaxInFlightRequestsPerConnection < 1 {
		bad("max.in.flight.requests.per.connection = %d: must be >= 1", c.MaxInFlightRequestsPerConnection)
	}
	if c.EnableIdempotence {
		if err == nil && acks != -1 {
			bad("enable.idempotence = true requires acks=all, have acks = %q", c.Acks)
		}
		if c.MaxInFlightRequestsPerConnection > 5 {
			bad("enable.idempotence = true requires max.in.flight.requests.per.connection <= 5, have %d", c.MaxInFlightRequestsPerConnection)
		}
		if c.Retries == 0 {
			// As Java's ProducerConfig: the idempotent producer recovers
			// from a lost answer or a broker that lost its state only by
			// sending the batch again.
			bad("enable.idempotence = true requires retries > 0, have 0")
		}
	}
	if c.Retries < 0 {
		bad("retries = %d: must be >= 0", c.Retries)
	}
	if c.RetryBackoffMs < 0 {
		bad("retry.backoff.ms = %d: must be >= 0", c.RetryBackoffMs)
	}
	// Java's INT settings: a Produce request carries its timeout as int32.
	if c.RequestTimeoutMs <= 0 || c.RequestTimeoutMs > math.MaxInt32 {
		bad("request.timeout.ms = %d: must be > 0 and <= %d", c.RequestTimeoutMs, math.MaxInt32)
	}
	if c.DeliveryTimeoutMs > math.MaxInt32 {
		bad("delivery.timeout.ms = %d: must be <= %d", c.DeliveryTimeoutMs, math.MaxInt32)
	} else if c.LingerMs > c.DeliveryTimeoutMs-c.RequestTimeoutMs { // no sum to overflow
		bad("delivery.timeout.ms = %d: must be >= linger.ms + request.timeout.ms = %d + %d", c.DeliveryTimeoutMs, c.LingerMs, c.RequestTimeoutMs)
	}
	switch c.Partitioner {
	case "default", "uniform_sticky", "round_robin":
	default:
		bad("partitioner = %q: must be default, uniform_sticky or round_robin", c.Partitioner)
	}
	if c.MetadataMaxAgeMs <= 0 {
		bad("metadata.max.age.ms = %d: must be > 0", c.MetadataMaxAgeMs)
	}
	if c.MetadataMaxIdleMs < 5000 {
		bad("metadata.max.idle.ms = %d: must be >= 5000", c.MetadataMaxIdleMs)
	}
	if c.MaxRequestSize <= batch.HeaderSize {
		bad("max.request.size = %d: must be > %d", c.MaxRequestSize, batch.HeaderSize)
	}
	return errors.Join(errs...)
}

func validateBootstrap(servers []string) []error {
	if len(servers) == 0 {
		return []error{errors.New("bootstrap.servers is empty: at least one host:port is needed")}
	}
	var errs []error
	for _, s := range servers {
		if _, port, err := net.SplitHostPort(s); err != nil || port == "" {
			errs = append(errs, fmt.Errorf("bootstrap.servers entry %q: not host:port", s))
		}
	}
	return errs
}

// parseAcks maps acks to the wire value.
func parseAcks(s string) (int16, error) {
	switch s {
	case "all", "-1":
		return -1, nil
	case "1":
		return 1, nil
	case "0":
		return 0, nil
	}
	return 0, fmt.Errorf("acks = %q: must be all, -1, 1 or 0", s)
}

// ConsumerConfig configures a Consumer. Each field is the Java consumer's
// config of the same name, with its default from DefaultConsumerConfig.
type ConsumerConfig struct {
	// BootstrapServers is bootstrap.servers. Required.
	BootstrapServers []string
	// ClientID is client.id.
	ClientID string
	// MaxPollRecords is max.poll.records: the most records one Poll
	// returns. 500.
	MaxPollRecords int
	// FetchMinBytes is fetch.min.bytes: the broker waits for this much data
	// (or fetch.max.wait.ms). 1.
	FetchMinBytes int32
	// FetchMaxBytes is fetch.max.bytes: the most data one Fetch response
	// should hold (the first batch is returned whole even if larger).
	// 52428800. It also bounds the decompressed size of one batch.
	FetchMaxBytes int32
	// MaxPartitionFetchBytes is max.partition.fetch.bytes: the most data
	// per partition in one Fetch response. 1048576.
	MaxPartitionFetchBytes int32
	// FetchMaxWaitMs is fetch.max.wait.ms: how long the broker may hold a
	// Fetch waiting for fetch.min.bytes. 500.
	FetchMaxWaitMs int32
	// IsolationLevel is isolation.level: read_uncommitted or
	// read_committed.
	IsolationLevel string
	// AutoOffsetReset is auto.offset.reset: where to start a partition with
	// no position, or after OFFSET_OUT_OF_RANGE: earliest, latest or none
	// (Poll reports an error). Default latest.
	AutoOffsetReset string
	// RequestTimeoutMs is request.timeout.ms. 30000.
	RequestTimeoutMs int
	// RetryBackoffMs is retry.backoff.ms: the wait after a failed fetch and
	// between metadata refreshes. 100.
	RetryBackoffMs int
	// MetadataMaxAgeMs is metadata.max.age.ms. 300000.
	MetadataMaxAgeMs int

	// GroupID is group.id: the consumer group Subscribe joins and commits
	// go to. "" (the default) means no group: partitions are assigned by
	// hand.
	GroupID string
	// GroupInstanceID is group.instance.id: set, the consumer is a static
	// member (KIP-345). It does not leave the group on Close, and if it
	// comes back within session.timeout.ms it gets its partitions back
	// without a rebalance. Needs group.id.
	GroupInstanceID string
	// SessionTimeoutMs is session.timeout.ms: a member whose heartbeats stop
	// for this long is removed from the group. The broker bounds it
	// (group.min.session.timeout.ms, group.max.session.timeout.ms). 45000.
	SessionTimeoutMs int
	// HeartbeatIntervalMs is heartbeat.interval.ms: how often a member
	// heartbeats; below session.timeout.ms, usually a third of it or less.
	// 3000.
	HeartbeatIntervalMs int
	// MaxPollIntervalMs is max.poll.interval.ms: a member that does not
	// Poll for this long leaves the group, so a stuck application does not
	// hold partitions. It is also the rebalance timeout JoinGroup sends:
	// how long the group waits for its members to rejoin. 300000.
	MaxPollIntervalMs int
	// PartitionAssignmentStrategy is partition.assignment.strategy: the
	// assignors this member supports, preferred first: range, roundrobin,
	// cooperative-sticky. The group uses the first one every member
	// supports, and the cooperative protocol (KIP-429) only if every one
	// listed here is cooperative. Default range, cooperative-sticky.
	PartitionAssignmentStrategy []string
	// EnableAutoCommit is enable.auto.commit: commit the positions of the
	// group's partitions every auto.commit.interval.ms, before they are
	// revoked and on Close. Default true.
	EnableAutoCommit bool
	// AutoCommitIntervalMs is auto.commit.interval.ms. 5000.
	AutoCommitIntervalMs int
}

// DefaultConsumerConfig returns the Java consumer's defaults.
func DefaultConsumerConfig() ConsumerConfig {
	return ConsumerConfig{
		ClientID:               "gregor",
		MaxPollRecords:         500,
		FetchMinBytes:          1,
		FetchMaxBytes:          52428800,
		MaxPartitionFetchBytes: 1048576,
		FetchMaxWaitMs:         500,
		IsolationLevel:         "read_uncommitted",
		AutoOffsetReset:        "latest",
		RequestTimeoutMs:       30000,
		RetryBackoffMs:         100,
		MetadataMaxAgeMs:       300000,

		SessionTimeoutMs:            45000,
		HeartbeatIntervalMs:         3000,
		MaxPollIntervalMs:           300000,
		PartitionAssignmentStrategy: []string{"range", "cooperative-sticky"},
		EnableAutoCommit:            true,
		AutoCommitIntervalMs:        5000,
	}
}

// Validate reports every bad field with its value.
func (c ConsumerConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	errs = append(errs, validateBootstrap(c.BootstrapServers)...)
	if c.MaxPollRecords < 1 {
		bad("max.poll.records = %d: must be >= 1", c.MaxPollRecords)
	}
	if c.FetchMinBytes < 0 {
		bad("fetch.min.bytes = %d: must be >= 0", c.FetchMinBytes)
	}
	if c.FetchMaxBytes < 1 {
		bad("fetch.max.bytes = %d: must be >= 1", c.FetchMaxBytes)
	}
	if c.MaxPartitionFetchBytes < 1 {
		bad("max.partition.fetch.bytes = %d: must be >= 1", c.MaxPartitionFetchBytes)
	}
	if c.FetchMaxWaitMs < 0 {
		bad("fetch.max.wait.ms = %d: must be >= 0", c.FetchMaxWaitMs)
	}
	switch c.IsolationLevel {
	case "read_uncommitted", "read_committed":
	default:
		bad("isolation.level = %q: must be read_uncommitted or read_committed", c.IsolationLevel)
	}
	switch c.AutoOffsetReset {
	case "earliest", "latest", "none":
	default:
		bad("auto.offset.reset = %q: must be earliest, latest or none", c.AutoOffsetReset)
	}
	if c.RequestTimeoutMs <= 0 {
		bad("request.timeout.ms = %d: must be > 0", c.RequestTimeoutMs)
	} else if int64(c.RequestTimeoutMs) <= int64(c.FetchMaxWaitMs) {
		bad("request.timeout.ms = %d: must be > fetch.max.wait.ms = %d", c.RequestTimeoutMs, c.FetchMaxWaitMs)
	}
	if c.RetryBackoffMs < 0 {
		bad("retry.backoff.ms = %d: must be >= 0", c.RetryBackoffMs)
	}
	if c.MetadataMaxAgeMs <= 0 {
		bad("metadata.max.age.ms = %d: must be > 0", c.MetadataMaxAgeMs)
	}
	errs = append(errs, c.validateGroup()...)
	return errors.Join(errs...)
}

// validateGroup checks the group settings, whether or not group.id is set,
// so a mistake shows before it matters.
func (c ConsumerConfig) validateGroup() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.GroupInstanceID != "" {
		if c.GroupID == "" {
			bad("group.instance.id = %q: needs group.id", c.GroupInstanceID)
		}
		// Kafka's rules for an instance id are those for a topic name.
		if err := validateTopicName(c.GroupInstanceID); err != nil {
			bad("group.instance.id = %q: at most 249 of a-z, A-Z, 0-9, '.', '_' and '-'", c.GroupInstanceID)
		}
	}
	if c.SessionTimeoutMs <= 0 {
		bad("session.timeout.ms = %d: must be > 0", c.SessionTimeoutMs)
	}
	if c.HeartbeatIntervalMs <= 0 {
		bad("heartbeat.interval.ms = %d: must be > 0", c.HeartbeatIntervalMs)
	} else if c.SessionTimeoutMs > 0 && c.HeartbeatIntervalMs >= c.SessionTimeoutMs {
		bad("heartbeat.interval.ms = %d: must be < session.timeout.ms = %d", c.HeartbeatIntervalMs, c.SessionTimeoutMs)
	}
	if c.MaxPollIntervalMs <= 0 {
		bad("max.poll.interval.ms = %d: must be > 0", c.MaxPollIntervalMs)
	}
	if len(c.PartitionAssignmentStrategy) == 0 {
		bad("partition.assignment.strategy is empty: want range, roundrobin or cooperative-sticky")
	}
	seen := map[string]bool{}
	for _, name := range c.PartitionAssignmentStrategy {
		switch {
		case assignors[name] == nil:
			bad("partition.assignment.strategy entry %q: want range, roundrobin or cooperative-sticky", name)
		case seen[name]:
			bad("partition.assignment.strategy entry %q: listed twice", name)
		}
		seen[name] = true
	}
	// A ticker needs a period; Java's 0 (commit at every poll) is not
	// offered.
	if c.AutoCommitIntervalMs <= 0 {
		bad("auto.commit.interval.ms = %d: must be > 0", c.AutoCommitIntervalMs)
	}
	return errs
}
