package broker

import (
	"errors"
	"fmt"
	"math"
	"net"
	"time"

	"gregor/batch"
	"gregor/group"
	"gregor/netio"
	"gregor/raft"
	"gregor/segment"
)

// Config holds a broker's settings, under Kafka's broker config names. Start
// from DefaultConfig: booleans whose Kafka default is true cannot be told
// apart from "unset" in a zero value.
type Config struct {
	// NodeID is node.id.
	NodeID int32
	// ClusterID is the cluster's id, shared by every node.
	ClusterID string
	// Listener is the address clients connect to: the host:port of the
	// PLAINTEXT listener in listeners. Port 0 picks a free port (tests).
	Listener string
	// AdvertisedHost and AdvertisedPort are what Metadata tells clients
	// (advertised.listeners); empty and 0 mean the listener's own address.
	AdvertisedHost string
	AdvertisedPort int
	// Rack is broker.rack ("" when unset).
	Rack string

	// Quorum holds process.roles, controller.quorum.voters, the controller
	// listener and metadata.log.dir.
	Quorum raft.NodeConfig
	// Controller holds the active controller's settings (num.partitions,
	// default.replication.factor, broker.session.timeout.ms, ...).
	Controller raft.ControllerConfig
	// Storage holds log.dirs, the log.* defaults of every partition, and the
	// log cleaner's settings (log.cleaner.enable, log.cleaner.backoff.ms,
	// log.cleaner.dedupe.buffer.size in Storage.Cleaner).
	Storage segment.ManagerConfig
	// Net holds the network settings (socket.request.max.bytes,
	// max.connections, queued.max.requests, network.engine, ...).
	Net netio.Config
	// StaticConfigs are the keys the broker's properties (a server.properties
	// file, --set) gave, by Kafka's names, with their values as written:
	// what DescribeConfigs reports as STATIC_BROKER_CONFIG, as Kafka
	// reports every key of its file, even one written at its default. Nil
	// for a Config built in code, which does not say: a setting then counts
	// as static when it differs from Kafka's default.
	StaticConfigs map[string]string

	// AutoCreateTopicsEnable is auto.create.topics.enable (default true).
	AutoCreateTopicsEnable bool
	// FetchSendfileEnable is Gregor's fetch.sendfile.enable (default true):
	// fetched record bytes go from the page cache to the socket with
	// sendfile(2). false reads them into memory and writes them from there,
	// as a broker without zero copy does: the baseline the zero-copy path
	// is measured against.
	FetchSendfileEnable bool
	// MessageMaxBytes is message.max.bytes: the largest record batch a
	// topic accepts unless its max.message.bytes says otherwise. 1048588.
	MessageMaxBytes int32
	// FetchMaxBytes is fetch.max.bytes: the most a fetch response carries,
	// whatever the request asks for. 55 MiB.
	FetchMaxBytes int32
	// DecompressionMaxBytes is Gregor's produce.decompression.max.bytes:
	// the most bytes of produced records the broker holds decompressed at
	// once to check them, across all partitions and connections (a
	// batch's share is the size its compression framing declares). Kafka
	// checks compressed batches with a streaming iterator on its
	// num.io.threads (8) threads; Gregor decompresses a batch whole, so it
	// bounds the total instead. 256 MiB: four batches at the largest a
	// batch may expand to under the default max.message.bytes (64 × 1
	// MiB), or hundreds of the usual few-MiB ones, more than a machine has
	// cores to decompress at once. A batch that declares more than the
	// whole bound waits until it can run alone.
	DecompressionMaxBytes int64
	// CompressionType is compression.type, the default of the topic config
	// of that name: "producer" keeps batches as the producer compressed them.
	CompressionType string
	// CompressionLevels are compression.gzip.level, .lz4.level and
	// .zstd.level (KIP-390): the levels a topic recompresses at by default,
	// on Kafka's scale. -1, 9 and 3.
	CompressionLevels batch.Levels
	// LogMessageTimestampType is log.message.timestamp.type: CreateTime or
	// LogAppendTime.
	LogMessageTimestampType string
	// LogMessageTimestampBeforeMaxMs and LogMessageTimestampAfterMaxMs are
	// log.message.timestamp.before.max.ms and .after.max.ms (KIP-937): how
	// far a CreateTime timestamp may lie behind and ahead of the broker's
	// clock. Unbounded by default, as in Kafka 3.
	LogMessageTimestampBeforeMaxMs int64
	LogMessageTimestampAfterMaxMs  int64
	// MinInsyncReplicas is min.insync.replicas (default 1).
	MinInsyncReplicas int
	// BrokerHeartbeatInterval is broker.heartbeat.interval.ms, 2 s.
	BrokerHeartbeatInterval time.Duration
	// ProducerIDExpiration is producer.id.expiration.ms: a partition
	// forgets an idempotent producer this long after its last write. 1 day.
	ProducerIDExpiration time.Duration
	// RequestTimeout bounds how long a broker waits for the controller on a
	// client's behalf (request.timeout.ms, 30 s).
	RequestTimeout time.Duration
	// LogRetentionCheckInterval is log.retention.check.interval.ms, 5 min.
	LogRetentionCheckInterval time.Duration
	// LogFlushSchedulerInterval is log.flush.scheduler.interval.ms: how often
	// flush.ms is checked. Gregor's default is 1 s.
	LogFlushSchedulerInterval time.Duration
	// LogFlushOffsetCheckpointInterval is
	// log.flush.offset.checkpoint.interval.ms, 60 s.
	LogFlushOffsetCheckpointInterval time.Duration
	// ControlledShutdownTimeout bounds how long Close waits for the
	// controller to move leadership away (controlled.shutdown), 30 s.
	ControlledShutdownTimeout time.Duration

	// Group holds the group coordinator's settings: group.min.session.timeout.ms,
	// group.max.session.timeout.ms, group.initial.rebalance.delay.ms,
	// group.max.size, offset.metadata.max.bytes, offsets.retention.minutes.
	Group group.Config
	// OffsetsTopicNumPartitions is offsets.topic.num.partitions: the
	// partitions of __consumer_offsets, created on first use (50). Fixed
	// once the topic exists: a group's coordinator is its hash modulo it.
	OffsetsTopicNumPartitions int32
	// OffsetsTopicReplicationFactor is offsets.topic.replication.factor (3),
	// capped at the live brokers when the topic is created.
	OffsetsTopicReplicationFactor int16
	// OffsetsTopicSegmentBytes is offsets.topic.segment.bytes, the
	// segment.bytes of __consumer_offsets (100 MiB): small segments let
	// compaction reach commits sooner.
	OffsetsTopicSegmentBytes int64
	// OffsetsRetentionCheckInterval is offsets.retention.check.interval.ms:
	// how often coordinators expire old offsets (10 min).
	OffsetsRetentionCheckInterval time.Duration
}

// Kafka's defaults.
const (
	DefaultMessageMaxBytes = 1048588
	DefaultFetchMaxBytes   = 55 << 20
	// DefaultDecompressionMaxBytes is Gregor's, not Kafka's (see
	// Config.DecompressionMaxBytes).
	DefaultDecompressionMaxBytes = 256 << 20
)

// DefaultConfig returns a single combined broker+controller node's settings:
// node 1, clients on 127.0.0.1:9092, the controller on 127.0.0.1:9093, data
// in ./data.
func DefaultConfig() Config {
	c := Config{
		NodeID:                 1,
		ClusterID:              "gregor-cluster",
		Listener:               "127.0.0.1:9092",
		AutoCreateTopicsEnable: true,
		FetchSendfileEnable:    true,
		Quorum: raft.NodeConfig{
			NodeID: 1,
			Roles:  "broker,controller",
			Voters: []raft.Voter{{ID: 1, Addr: "127.0.0.1:9093"}},
			Addr:   "127.0.0.1:9093",
			Dir:    "data/" + segment.MetadataTopic + "-0",
		},
		// auto.leader.rebalance.enable and log.cleaner.enable are true by
		// default, which a zero ControllerConfig and CleanerConfig cannot
		// say.
		Controller: raft.DefaultControllerConfig(),
		Storage:    segment.ManagerConfig{LogDirs: []string{"data"}, Cleaner: segment.DefaultCleanerConfig()},
		Group:      group.DefaultConfig(),
	}
	c.EnsureDefaults()
	return c
}

// EnsureDefaults fills every zero field with its default.
func (c *Config) EnsureDefaults() {
	setDefault(&c.MessageMaxBytes, DefaultMessageMaxBytes)
	setDefault(&c.FetchMaxBytes, DefaultFetchMaxBytes)
	setDefault(&c.DecompressionMaxBytes, DefaultDecompressionMaxBytes)
	setDefault(&c.CompressionType, "producer")
	def := batch.DefaultLevels()
	setDefault(&c.CompressionLevels.Gzip, def.Gzip)
	setDefault(&c.CompressionLevels.LZ4, def.LZ4)
	setDefault(&c.CompressionLevels.Zstd, def.Zstd)
	setDefault(&c.LogMessageTimestampType, "CreateTime")
	setDefault(&c.LogMessageTimestampBeforeMaxMs, math.MaxInt64)
	setDefault(&c.LogMessageTimestampAfterMaxMs, math.MaxInt64)
	setDefault(&c.MinInsyncReplicas, 1)
	setDefault(&c.BrokerHeartbeatInterval, 2*time.Second)
	setDefault(&c.ProducerIDExpiration, 24*time.Hour)
	setDefault(&c.RequestTimeout, 30*time.Second)
	setDefault(&c.LogRetentionCheckInterval, 5*time.Minute)
	setDefault(&c.LogFlushSchedulerInterval, time.Second)
	setDefault(&c.LogFlushOffsetCheckpointInterval, time.Minute)
	setDefault(&c.ControlledShutdownTimeout, 30*time.Second)
	c.Group.EnsureDefaults()
	setDefault(&c.OffsetsTopicNumPartitions, 50)
	setDefault(&c.OffsetsTopicReplicationFactor, 3)
	setDefault(&c.OffsetsTopicSegmentBytes, 100<<20)
	setDefault(&c.OffsetsRetentionCheckInterval, 10*time.Minute)
	if c.Quorum.NodeID == 0 {
		c.Quorum.NodeID = c.NodeID
	}
	c.Quorum.EnsureDefaults()
	if c.Controller.ClusterID == "" {
		c.Controller.ClusterID = c.ClusterID
	}
	c.Controller.EnsureDefaults()
	c.Storage.EnsureDefaults()
	c.Net.EnsureDefaults()
}

// checkTopicDefault checks a broker setting that is the default of topic
// config name: a value the topic config takes, written in the form the
// broker reads (cmd/gregor trims what a file gives).
func checkTopicDefault(name, value string) error {
	normal, err := validateTopicConfig(name, value)
	if err == nil && normal != value {
		err = fmt.Errorf("%q: write it as %q", value, normal)
	}
	return err
}

func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// Validate reports every field out of range, with its value.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.NodeID < 0 {
		bad("node.id %d: must be at least 0", c.NodeID)
	}
	if c.Quorum.NodeID != c.NodeID {
		bad("node.id %d: the quorum's node id is %d", c.NodeID, c.Quorum.NodeID)
	}
	if c.ClusterID == "" {
		bad("cluster id: must not be empty")
	}
	if c.Controller.ClusterID != c.ClusterID {
		bad("cluster id %q: the controller's is %q", c.ClusterID, c.Controller.ClusterID)
	}
	if _, _, err := net.SplitHostPort(c.Listener); err != nil {
		bad("listeners %q: %v", c.Listener, err)
	}
	if c.AdvertisedPort < 0 || c.AdvertisedPort > 65535 {
		bad("advertised port %d: must be in [0, 65535]", c.AdvertisedPort)
	}
	if c.MessageMaxBytes < 0 {
		bad("message.max.bytes %d: must be at least 0", c.MessageMaxBytes)
	}
	if c.FetchMaxBytes < 0 {
		bad("fetch.max.bytes %d: must be at least 0", c.FetchMaxBytes)
	}
	if c.DecompressionMaxBytes < 1<<20 {
		// Below a typical batch every compressed batch would run alone.
		bad("produce.decompression.max.bytes %d: must be at least 1048576", c.DecompressionMaxBytes)
	}
	if err := checkTopicDefault("compression.type", c.CompressionType); err != nil {
		bad("compression.type: %v", err)
	}
	if err := c.CompressionLevels.Check(); err != nil {
		bad("%v", err)
	}
	if err := checkTopicDefault("message.timestamp.type", c.LogMessageTimestampType); err != nil {
		bad("log.message.timestamp.type: %v", err)
	}
	if rf := c.Controller.DefaultReplicationFactor; rf > 1 {
		// Auto-created topics take it: refuse it here, as CreateTopics
		// refuses rf > 1, rather than acknowledge data one broker holds.
		bad("default.replication.factor %d: this broker does not replicate partitions yet; use 1", rf)
	}
	if c.LogMessageTimestampBeforeMaxMs < 0 || c.LogMessageTimestampAfterMaxMs < 0 {
		bad("log.message.timestamp.before.max.ms %d, after.max.ms %d: must be at least 0", c.LogMessageTimestampBeforeMaxMs, c.LogMessageTimestampAfterMaxMs)
	}
	if c.MinInsyncReplicas < 1 {
		bad("min.insync.replicas %d: must be at least 1", c.MinInsyncReplicas)
	}
	for name, d := range map[string]time.Duration{
		"broker.heartbeat.interval.ms":            c.BrokerHeartbeatInterval,
		"producer.id.expiration.ms":               c.ProducerIDExpiration,
		"request.timeout.ms":                      c.RequestTimeout,
		"log.retention.check.interval.ms":         c.LogRetentionCheckInterval,
		"log.flush.scheduler.interval.ms":         c.LogFlushSchedulerInterval,
		"log.flush.offset.checkpoint.interval.ms": c.LogFlushOffsetCheckpointInterval,
		"controlled.shutdown.timeout":             c.ControlledShutdownTimeout,
		"offsets.retention.check.interval.ms":     c.OffsetsRetentionCheckInterval,
	} {
		if d <= 0 {
			bad("%s %d: must be positive", name, d.Milliseconds())
		}
	}
	if c.OffsetsTopicNumPartitions < 1 {
		bad("offsets.topic.num.partitions %d: must be at least 1", c.OffsetsTopicNumPartitions)
	}
	if c.OffsetsTopicReplicationFactor < 1 {
		bad("offsets.topic.replication.factor %d: must be at least 1", c.OffsetsTopicReplicationFactor)
	}
	if c.OffsetsTopicSegmentBytes < 1 {
		bad("offsets.topic.segment.bytes %d: must be at least 1", c.OffsetsTopicSegmentBytes)
	}
	for _, v := range []interface{ Validate() error }{&c.Quorum, &c.Controller, &c.Storage, &c.Net, &c.Group} {
		if err := v.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
