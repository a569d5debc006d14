package main

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"gregor/broker"
	"gregor/raft"
)

// TestBrokerConfigDefaults: no settings at all is the documented
// single-node development cluster, exactly broker.DefaultConfig.
func TestBrokerConfigDefaults(t *testing.T) {
	for _, props := range []map[string]string{nil, {}} {
		cfg, warnings, err := brokerConfig(props)
		if err != nil {
			t.Fatal(err)
		}
		if len(warnings) > 0 {
			t.Errorf("warnings %q", warnings)
		}
		if want := broker.DefaultConfig(); !reflect.DeepEqual(cfg.broker, want) {
			t.Errorf("config\n%+v\nwant DefaultConfig\n%+v", cfg.broker, want)
		}
		if cfg.adminListener != "127.0.0.1:9094" {
			t.Errorf("admin listener %q", cfg.adminListener)
		}
		if err := cfg.broker.Validate(); err != nil {
			t.Error(err)
		}
	}
}

// hostname is what a listener with an empty host is advertised as.
var hostname = func() string {
	h, err := os.Hostname()
	if err != nil {
		panic(err)
	}
	return h
}()

// keyCases are, for each key brokerConfig understands, settings and the
// change they must make to the default config (and no other change).
var keyCases = []struct {
	name  string
	props map[string]string
	want  func(c *serveConfig)
}{
	{"node.id", map[string]string{"node.id": "3", "controller.quorum.voters": "3@127.0.0.1:9093"}, func(c *serveConfig) {
		c.broker.NodeID, c.broker.Quorum.NodeID = 3, 3
		c.broker.Quorum.Voters = []raft.Voter{{ID: 3, Addr: "127.0.0.1:9093"}}
	}},
	{"node.id 0 is a valid id", map[string]string{"node.id": "0"}, func(c *serveConfig) {
		c.broker.NodeID, c.broker.Quorum.NodeID = 0, 0
		c.broker.Quorum.Voters = []raft.Voter{{ID: 0, Addr: "127.0.0.1:9093"}}
	}},
	{"broker.id is node.id", map[string]string{"broker.id": "4"}, func(c *serveConfig) {
		c.broker.NodeID, c.broker.Quorum.NodeID = 4, 4
		c.broker.Quorum.Voters = []raft.Voter{{ID: 4, Addr: "127.0.0.1:9093"}}
	}},
	{"node.id and broker.id agreeing", map[string]string{"node.id": "5", "broker.id": " 5 "}, func(c *serveConfig) {
		c.broker.NodeID, c.broker.Quorum.NodeID = 5, 5
		c.broker.Quorum.Voters = []raft.Voter{{ID: 5, Addr: "127.0.0.1:9093"}}
	}},
	{"process.roles broker", map[string]string{"process.roles": "broker", "controller.quorum.voters": "2@127.0.0.1:9193"}, func(c *serveConfig) {
		c.broker.Quorum.Roles = "broker"
		c.broker.Quorum.Voters = []raft.Voter{{ID: 2, Addr: "127.0.0.1:9193"}}
	}},
	{"process.roles in any order", map[string]string{"process.roles": "controller, broker"}, func(*serveConfig) {}},
	{"process.roles controller", map[string]string{"process.roles": "controller"}, func(c *serveConfig) {
		c.broker.Quorum.Roles = "controller"
	}},
	{"controller.quorum.voters", map[string]string{"controller.quorum.voters": "1@127.0.0.1:9093,2@127.0.0.1:9193, 3@127.0.0.1:9293"}, func(c *serveConfig) {
		c.broker.Quorum.Voters = []raft.Voter{{ID: 1, Addr: "127.0.0.1:9093"}, {ID: 2, Addr: "127.0.0.1:9193"}, {ID: 3, Addr: "127.0.0.1:9293"}}
	}},
	{"controller.quorum.bootstrap.servers beside voters", map[string]string{
		"controller.quorum.voters": "1@127.0.0.1:9093", "controller.quorum.bootstrap.servers": "127.0.0.1:9093"}, func(*serveConfig) {}},
	// Naming only its own controller listener, a combined node forms the
	// single-voter quorum kafka-storage format --standalone sets up.
	{"controller.quorum.bootstrap.servers naming this node", map[string]string{"controller.quorum.bootstrap.servers": "127.0.0.1:9093"}, func(*serveConfig) {}},
	{"controller.quorum.bootstrap.servers naming this node as localhost", map[string]string{"controller.quorum.bootstrap.servers": " localhost:9093 "}, func(*serveConfig) {}},
	{"controller.quorum.bootstrap.servers naming a listener on every interface", map[string]string{
		"listeners": "PLAINTEXT://127.0.0.1:9092,CONTROLLER://:19093", "controller.quorum.bootstrap.servers": hostname + ":19093"}, func(c *serveConfig) {
		c.broker.Quorum.Addr = ":19093"
		c.broker.Quorum.Voters = []raft.Voter{{ID: 1, Addr: "127.0.0.1:19093"}}
	}},
	{"controller.quorum.bootstrap.servers naming the advertised controller listener", map[string]string{
		"advertised.listeners": "PLAINTEXT://127.0.0.1:9092,CONTROLLER://ctrl.example:19093", "controller.quorum.bootstrap.servers": "ctrl.example:19093"}, func(c *serveConfig) {
		c.broker.AdvertisedHost, c.broker.AdvertisedPort = "127.0.0.1", 9092
	}},
	{"listeners", map[string]string{"listeners": "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"}, func(c *serveConfig) {
		c.broker.Listener, c.broker.Quorum.Addr = "127.0.0.1:19092", "127.0.0.1:19093"
		c.broker.Quorum.Voters = []raft.Voter{{ID: 1, Addr: "127.0.0.1:19093"}}
	}},
	// An empty host is advertised as the host's name, as Kafka does.
	{"listeners on every interface", map[string]string{"listeners": "PLAINTEXT://:9092, CONTROLLER://0.0.0.0:9093"}, func(c *serveConfig) {
		c.broker.Listener, c.broker.Quorum.Addr = ":9092", "0.0.0.0:9093"
		c.broker.AdvertisedHost = hostname
		c.broker.Quorum.Voters = []raft.Voter{{ID: 1, Addr: "127.0.0.1:9093"}} // reached through loopback
	}},
	{"listeners IPv6, names in any case", map[string]string{"listeners": "plaintext://[::1]:9092,controller://[::1]:9093"}, func(c *serveConfig) {
		c.broker.Listener, c.broker.Quorum.Addr = "[::1]:9092", "[::1]:9093"
		c.broker.Quorum.Voters = []raft.Voter{{ID: 1, Addr: "[::1]:9093"}}
	}},
	{"controller.listener.names", map[string]string{"controller.listener.names": "CTRL", "listeners": "PLAINTEXT://127.0.0.1:9092,CTRL://127.0.0.1:9095"}, func(c *serveConfig) {
		c.broker.Quorum.Addr = "127.0.0.1:9095"
		c.broker.Quorum.Voters = []raft.Voter{{ID: 1, Addr: "127.0.0.1:9095"}}
	}},
	{"listener.security.protocol.map names the client listener", map[string]string{
		"listener.security.protocol.map": "INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT,SSL:SSL",
		"listeners":                      "INTERNAL://127.0.0.1:9096,CONTROLLER://127.0.0.1:9093",
		"inter.broker.listener.name":     "INTERNAL"}, func(c *serveConfig) {
		c.broker.Listener = "127.0.0.1:9096"
	}},
	{"inter.broker.listener.name", map[string]string{"inter.broker.listener.name": "PLAINTEXT"}, func(*serveConfig) {}},
	{"security.inter.broker.protocol", map[string]string{"security.inter.broker.protocol": "PLAINTEXT"}, func(*serveConfig) {}},
	{"advertised.listeners", map[string]string{"advertised.listeners": "PLAINTEXT://broker1.example:19092,CONTROLLER://broker1.example:19093"}, func(c *serveConfig) {
		c.broker.AdvertisedHost, c.broker.AdvertisedPort = "broker1.example", 19092
	}},
	{"advertised.listeners with an empty host", map[string]string{"advertised.listeners": "PLAINTEXT://:19092"}, func(c *serveConfig) {
		c.broker.AdvertisedHost, c.broker.AdvertisedPort = hostname, 19092
	}},
	{"advertised.listeners over a listener on 0.0.0.0", map[string]string{
		"listeners": "PLAINTEXT://0.0.0.0:9092,CONTROLLER://127.0.0.1:9093", "advertised.listeners": "PLAINTEXT://broker1.example:9092"}, func(c *serveConfig) {
		c.broker.Listener = "0.0.0.0:9092"
		c.broker.AdvertisedHost, c.broker.AdvertisedPort = "broker1.example", 9092
	}},
	{"log.dirs", map[string]string{"log.dirs": "/a, /b,"}, func(c *serveConfig) {
		c.broker.Storage.LogDirs = []string{"/a", "/b"}
		c.broker.Quorum.Dir = "/a/__cluster_metadata-0"
	}},
	{"log.dir", map[string]string{"log.dir": "/c"}, func(c *serveConfig) {
		c.broker.Storage.LogDirs = []string{"/c"}
		c.broker.Quorum.Dir = "/c/__cluster_metadata-0"
	}},
	{"log.dirs wins over log.dir", map[string]string{"log.dir": "/c", "log.dirs": "/d"}, func(c *serveConfig) {
		c.broker.Storage.LogDirs = []string{"/d"}
		c.broker.Quorum.Dir = "/d/__cluster_metadata-0"
	}},
	{"metadata.log.dir", map[string]string{"metadata.log.dir": "/meta/", "log.dirs": "/d"}, func(c *serveConfig) {
		c.broker.Storage.LogDirs = []string{"/d"}
		c.broker.Quorum.Dir = "/meta/__cluster_metadata-0"
	}},
	{"cluster.id", map[string]string{"cluster.id": "MkU3OEVBNTcwNTJENDM2Qg"}, func(c *serveConfig) {
		c.broker.ClusterID, c.broker.Controller.ClusterID = "MkU3OEVBNTcwNTJENDM2Qg", "MkU3OEVBNTcwNTJENDM2Qg"
	}},
	{"broker.rack", map[string]string{"broker.rack": "eu-west-1a"}, func(c *serveConfig) { c.broker.Rack = "eu-west-1a" }},
	{"num.partitions", map[string]string{"num.partitions": " 6 "}, func(c *serveConfig) { c.broker.Controller.NumPartitions = 6 }},
	// Only 1 is valid until partitions replicate; the bad cases show 3 is
	// read (and refused).
	{"default.replication.factor", map[string]string{"default.replication.factor": "1"}, func(c *serveConfig) { c.broker.Controller.DefaultReplicationFactor = 1 }},
	{"auto.create.topics.enable", map[string]string{"auto.create.topics.enable": "FALSE"}, func(c *serveConfig) { c.broker.AutoCreateTopicsEnable = false }},
	{"fetch.sendfile.enable", map[string]string{"fetch.sendfile.enable": "false"}, func(c *serveConfig) { c.broker.FetchSendfileEnable = false }},
	{"message.max.bytes", map[string]string{"message.max.bytes": "2000000"}, func(c *serveConfig) { c.broker.MessageMaxBytes = 2000000 }},
	{"fetch.max.bytes", map[string]string{"fetch.max.bytes": "1048576"}, func(c *serveConfig) { c.broker.FetchMaxBytes = 1 << 20 }},
	{"produce.decompression.max.bytes", map[string]string{"produce.decompression.max.bytes": "67108864"}, func(c *serveConfig) { c.broker.DecompressionMaxBytes = 64 << 20 }},
	{"compression.type", map[string]string{"compression.type": "zstd"}, func(c *serveConfig) { c.broker.CompressionType = "zstd" }},
	{"compression.gzip.level", map[string]string{"compression.gzip.level": "9"}, func(c *serveConfig) { c.broker.CompressionLevels.Gzip = 9 }},
	{"compression.lz4.level", map[string]string{"compression.lz4.level": "1"}, func(c *serveConfig) { c.broker.CompressionLevels.LZ4 = 1 }},
	{"compression.zstd.level", map[string]string{"compression.zstd.level": "-7"}, func(c *serveConfig) { c.broker.CompressionLevels.Zstd = -7 }},
	{"log.cleaner.delete.retention.ms", map[string]string{"log.cleaner.delete.retention.ms": "0"}, func(c *serveConfig) { c.broker.Storage.Log.DeleteRetentionMs = 1 }},
	{"log.cleaner.min.compaction.lag.ms", map[string]string{"log.cleaner.min.compaction.lag.ms": "60000"}, func(c *serveConfig) { c.broker.Storage.Log.MinCompactionLagMs = 60000 }},
	{"log.cleaner.max.compaction.lag.ms", map[string]string{"log.cleaner.max.compaction.lag.ms": "3600000"}, func(c *serveConfig) { c.broker.Storage.Log.MaxCompactionLagMs = 3600000 }},
	{"log.cleaner.min.cleanable.ratio", map[string]string{"log.cleaner.min.cleanable.ratio": "0.1"}, func(c *serveConfig) { c.broker.Storage.Log.MinCleanableDirtyRatio = 0.1 }},
	{"log.message.timestamp.type", map[string]string{"log.message.timestamp.type": "LogAppendTime"}, func(c *serveConfig) { c.broker.LogMessageTimestampType = "LogAppendTime" }},
	{"log.message.timestamp.before.max.ms", map[string]string{"log.message.timestamp.before.max.ms": "86400000"}, func(c *serveConfig) { c.broker.LogMessageTimestampBeforeMaxMs = 86400000 }},
	{"log.message.timestamp.after.max.ms 0", map[string]string{"log.message.timestamp.after.max.ms": "0"}, func(c *serveConfig) { c.broker.LogMessageTimestampAfterMaxMs = 1 }},
	{"min.insync.replicas", map[string]string{"min.insync.replicas": "2"}, func(c *serveConfig) { c.broker.MinInsyncReplicas = 2 }},
	{"broker.heartbeat.interval.ms", map[string]string{"broker.heartbeat.interval.ms": "500"}, func(c *serveConfig) { c.broker.BrokerHeartbeatInterval = 500 * time.Millisecond }},
	{"broker.session.timeout.ms", map[string]string{"broker.session.timeout.ms": "18000"}, func(c *serveConfig) { c.broker.Controller.BrokerSessionTimeoutMs = 18000 }},
	{"producer.id.expiration.ms", map[string]string{"producer.id.expiration.ms": "3600000"}, func(c *serveConfig) { c.broker.ProducerIDExpiration = time.Hour }},
	{"request.timeout.ms", map[string]string{"request.timeout.ms": "5000"}, func(c *serveConfig) { c.broker.RequestTimeout = 5 * time.Second }},
	{"log.cleaner.enable", map[string]string{"log.cleaner.enable": "false"}, func(c *serveConfig) { c.broker.Storage.Cleaner.Enable = false }},
	{"log.cleaner.backoff.ms", map[string]string{"log.cleaner.backoff.ms": "100"}, func(c *serveConfig) { c.broker.Storage.Cleaner.BackoffMs = 100 }},
	{"log.segment.delete.delay.ms", map[string]string{"log.segment.delete.delay.ms": "5000"}, func(c *serveConfig) { c.broker.Storage.Log.FileDeleteDelayMs = 5000 }},
	{"log.segment.delete.delay.ms 0 is 1 ms", map[string]string{"log.segment.delete.delay.ms": "0"}, func(c *serveConfig) { c.broker.Storage.Log.FileDeleteDelayMs = 1 }},
	{"log.preallocate false, Kafka's default", map[string]string{"log.preallocate": "false"}, func(c *serveConfig) {}},
	{"remote.log.storage.system.enable false, Kafka's default", map[string]string{"remote.log.storage.system.enable": "false"}, func(c *serveConfig) {}},
	{"log.cleaner.dedupe.buffer.size", map[string]string{"log.cleaner.dedupe.buffer.size": "1048576"}, func(c *serveConfig) { c.broker.Storage.Cleaner.DedupeBufferSize = 1 << 20 }},
	{"group.min.session.timeout.ms", map[string]string{"group.min.session.timeout.ms": "1000"}, func(c *serveConfig) { c.broker.Group.GroupMinSessionTimeoutMs = 1000 }},
	{"group.max.session.timeout.ms", map[string]string{"group.max.session.timeout.ms": "60000"}, func(c *serveConfig) { c.broker.Group.GroupMaxSessionTimeoutMs = 60000 }},
	{"group.initial.rebalance.delay.ms", map[string]string{"group.initial.rebalance.delay.ms": "0"}, func(c *serveConfig) { c.broker.Group.GroupInitialRebalanceDelayMs = 0 }},
	{"group.max.size", map[string]string{"group.max.size": "10"}, func(c *serveConfig) { c.broker.Group.GroupMaxSize = 10 }},
	{"offset.metadata.max.bytes", map[string]string{"offset.metadata.max.bytes": "100"}, func(c *serveConfig) { c.broker.Group.OffsetMetadataMaxBytes = 100 }},
	{"offsets.retention.minutes", map[string]string{"offsets.retention.minutes": "60"}, func(c *serveConfig) { c.broker.Group.OffsetsRetentionMs = 3600000 }},
	{"offsets.topic.num.partitions", map[string]string{"offsets.topic.num.partitions": "3"}, func(c *serveConfig) { c.broker.OffsetsTopicNumPartitions = 3 }},
	{"offsets.topic.replication.factor", map[string]string{"offsets.topic.replication.factor": "1"}, func(c *serveConfig) { c.broker.OffsetsTopicReplicationFactor = 1 }},
	{"offsets.topic.segment.bytes", map[string]string{"offsets.topic.segment.bytes": "1048576"}, func(c *serveConfig) { c.broker.OffsetsTopicSegmentBytes = 1 << 20 }},
	{"offsets.retention.check.interval.ms", map[string]string{"offsets.retention.check.interval.ms": "1000"}, func(c *serveConfig) { c.broker.OffsetsRetentionCheckInterval = time.Second }},
	{"unclean.leader.election.enable", map[string]string{"unclean.leader.election.enable": "true"}, func(c *serveConfig) { c.broker.Controller.UncleanLeaderElectionEnable = true }},
	{"auto.leader.rebalance.enable", map[string]string{"auto.leader.rebalance.enable": "false"}, func(c *serveConfig) { c.broker.Controller.AutoLeaderRebalanceEnable = false }},
	{"leader.imbalance.check.interval.seconds", map[string]string{"leader.imbalance.check.interval.seconds": "60"}, func(c *serveConfig) {
		c.broker.Controller.LeaderImbalanceCheckIntervalSeconds = 60
	}},
	{"log.segment.bytes", map[string]string{"log.segment.bytes": "1048576"}, func(c *serveConfig) { c.broker.Storage.Log.SegmentBytes = 1 << 20 }},
	{"log.roll.ms", map[string]string{"log.roll.ms": "60000"}, func(c *serveConfig) { c.broker.Storage.Log.SegmentMs = 60000 }},
	{"log.roll.hours", map[string]string{"log.roll.hours": "2"}, func(c *serveConfig) { c.broker.Storage.Log.SegmentMs = 2 * 3600000 }},
	{"log.roll.jitter.hours", map[string]string{"log.roll.jitter.hours": "1"}, func(c *serveConfig) { c.broker.Storage.Log.SegmentJitterMs = 3600000 }},
	{"log.roll.jitter.ms wins over log.roll.jitter.hours", map[string]string{"log.roll.jitter.hours": "1", "log.roll.jitter.ms": "60000"}, func(c *serveConfig) { c.broker.Storage.Log.SegmentJitterMs = 60000 }},
	{"log.roll.ms wins over log.roll.hours", map[string]string{"log.roll.hours": "2", "log.roll.ms": "1000"}, func(c *serveConfig) { c.broker.Storage.Log.SegmentMs = 1000 }},
	{"log.index.size.max.bytes", map[string]string{"log.index.size.max.bytes": "4096"}, func(c *serveConfig) { c.broker.Storage.Log.SegmentIndexBytes = 4096 }},
	{"log.index.interval.bytes", map[string]string{"log.index.interval.bytes": "1024"}, func(c *serveConfig) { c.broker.Storage.Log.IndexIntervalBytes = 1024 }},
	{"log.index.interval.bytes 0 indexes every batch", map[string]string{"log.index.interval.bytes": "0"}, func(c *serveConfig) { c.broker.Storage.Log.IndexIntervalBytes = 1 }},
	{"log.retention.ms", map[string]string{"log.retention.ms": "1000"}, func(c *serveConfig) { c.broker.Storage.Log.RetentionMs = 1000 }},
	{"log.retention.minutes", map[string]string{"log.retention.minutes": "5"}, func(c *serveConfig) { c.broker.Storage.Log.RetentionMs = 5 * 60000 }},
	{"log.retention.hours", map[string]string{"log.retention.hours": "48"}, func(c *serveConfig) { c.broker.Storage.Log.RetentionMs = 48 * 3600000 }},
	{"log.retention.ms wins over minutes and hours", map[string]string{"log.retention.hours": "48", "log.retention.minutes": "5", "log.retention.ms": "1234"},
		func(c *serveConfig) { c.broker.Storage.Log.RetentionMs = 1234 }},
	{"log.retention.minutes wins over hours", map[string]string{"log.retention.hours": "48", "log.retention.minutes": "5"},
		func(c *serveConfig) { c.broker.Storage.Log.RetentionMs = 5 * 60000 }},
	{"negative retention is forever", map[string]string{"log.retention.hours": "-1"}, func(c *serveConfig) { c.broker.Storage.Log.RetentionMs = -1 }},
	{"log.retention.ms 0", map[string]string{"log.retention.ms": "0"}, func(c *serveConfig) { c.broker.Storage.Log.RetentionMs = 1 }},
	{"log.retention.bytes", map[string]string{"log.retention.bytes": "1073741824"}, func(c *serveConfig) { c.broker.Storage.Log.RetentionBytes = 1 << 30 }},
	{"log.retention.bytes negative", map[string]string{"log.retention.bytes": "-5"}, func(c *serveConfig) { c.broker.Storage.Log.RetentionBytes = -1 }},
	{"log.retention.bytes 0", map[string]string{"log.retention.bytes": "0"}, func(c *serveConfig) { c.broker.Storage.Log.RetentionBytes = 1 }},
	{"log.flush.interval.messages", map[string]string{"log.flush.interval.messages": "10000"}, func(c *serveConfig) { c.broker.Storage.Log.FlushMessages = 10000 }},
	{"log.flush.interval.ms", map[string]string{"log.flush.interval.ms": "1000"}, func(c *serveConfig) { c.broker.Storage.Log.FlushMs = 1000 }},
	{"log.flush.interval.ms 0", map[string]string{"log.flush.interval.ms": "0"}, func(c *serveConfig) { c.broker.Storage.Log.FlushMs = 1 }},
	{"log.cleanup.policy", map[string]string{"log.cleanup.policy": "compact"}, func(c *serveConfig) { c.broker.Storage.Log.CleanupPolicy = "compact" }},
	{"log.cleanup.policy both", map[string]string{"log.cleanup.policy": "delete, compact"}, func(c *serveConfig) { c.broker.Storage.Log.CleanupPolicy = "compact,delete" }},
	{"log.retention.check.interval.ms", map[string]string{"log.retention.check.interval.ms": "60000"}, func(c *serveConfig) { c.broker.LogRetentionCheckInterval = time.Minute }},
	{"log.flush.scheduler.interval.ms", map[string]string{"log.flush.scheduler.interval.ms": "2000"}, func(c *serveConfig) { c.broker.LogFlushSchedulerInterval = 2 * time.Second }},
	{"log.flush.offset.checkpoint.interval.ms", map[string]string{"log.flush.offset.checkpoint.interval.ms": "30000"}, func(c *serveConfig) {
		c.broker.LogFlushOffsetCheckpointInterval = 30 * time.Second
	}},
	{"num.recovery.threads.per.data.dir", map[string]string{"num.recovery.threads.per.data.dir": "4"}, func(c *serveConfig) { c.broker.Storage.RecoveryThreadsPerDataDir = 4 }},
	{"socket.request.max.bytes", map[string]string{"socket.request.max.bytes": "1048576"}, func(c *serveConfig) { c.broker.Net.SocketRequestMaxBytes = 1 << 20 }},
	{"max.connections also bounds one address", map[string]string{"max.connections": "100"}, func(c *serveConfig) {
		c.broker.Net.MaxConnections, c.broker.Net.MaxConnectionsPerIP = 100, 100
	}},
	{"max.connections.per.ip", map[string]string{"max.connections.per.ip": "10"}, func(c *serveConfig) { c.broker.Net.MaxConnectionsPerIP = 10 }},
	{"connections.max.idle.ms", map[string]string{"connections.max.idle.ms": "60000"}, func(c *serveConfig) { c.broker.Net.ConnectionsMaxIdle = time.Minute }},
	{"connections.max.idle.ms negative: never, as in Kafka", map[string]string{"connections.max.idle.ms": "-1"}, func(c *serveConfig) { c.broker.Net.ConnectionsMaxIdle = -1 }},
	{"queued.max.requests", map[string]string{"queued.max.requests": "50"}, func(c *serveConfig) { c.broker.Net.QueuedMaxRequests = 50 }},
	{"network.engine", map[string]string{"network.engine": "netpoll"}, func(c *serveConfig) { c.broker.Net.Engine = "netpoll" }},
	{"admin.listener", map[string]string{"admin.listener": "127.0.0.1:19094"}, func(c *serveConfig) { c.adminListener = "127.0.0.1:19094" }},
	{"admin.listener none", map[string]string{"admin.listener": "none"}, func(c *serveConfig) { c.adminListener = "" }},
	{"admin.listener empty", map[string]string{"admin.listener": ""}, func(c *serveConfig) { c.adminListener = "" }},
}

func TestBrokerConfigKeys(t *testing.T) {
	for _, tt := range keyCases {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := brokerConfig(tt.props)
			if err != nil {
				t.Fatal(err)
			}
			want := serveConfig{broker: broker.DefaultConfig(), adminListener: defaultAdminListener}
			tt.want(&want)
			// Every key given is reported as the broker's static
			// config (DescribeConfigs), with its value as written.
			for k, v := range tt.props {
				if want.broker.StaticConfigs == nil {
					want.broker.StaticConfigs = map[string]string{}
				}
				want.broker.StaticConfigs[k] = strings.TrimSpace(v)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

// TestEveryKeyIsTested keeps keyCases in step with the parser.
func TestEveryKeyIsTested(t *testing.T) {
	tested := map[string]bool{}
	for _, tt := range keyCases {
		for k := range tt.props {
			tested[k] = true
		}
	}
	keys := serveConfigKeys()
	if len(keys) < 50 {
		t.Fatalf("only %d keys known: %q", len(keys), keys)
	}
	for _, k := range keys {
		if !tested[k] {
			t.Errorf("no case in keyCases sets %s", k)
		}
	}
}

func TestBrokerConfigWarnings(t *testing.T) {
	tests := []struct {
		name  string
		props map[string]string
		want  []string // one substring per warning, in order
	}{
		{"ignored Kafka keys", map[string]string{
			"num.network.threads": "3", "num.io.threads": "8", "socket.send.buffer.bytes": "102400",
			"socket.receive.buffer.bytes": "102400", "transaction.state.log.replication.factor": "1",
			"transaction.state.log.min.isr": "1"},
			[]string{`num.io.threads="8" ignored`, `num.network.threads="3" ignored`,
				"socket.receive.buffer.bytes", "socket.send.buffer.bytes",
				"transaction.state.log.min.isr", "transaction.state.log.replication.factor"}},
		{"leader.imbalance.per.broker.percentage, which KRaft ignores", map[string]string{"leader.imbalance.per.broker.percentage": "10"},
			[]string{`leader.imbalance.per.broker.percentage="10" ignored: as in KRaft`}},
		{"tiered storage off", map[string]string{"remote.log.storage.system.enable": "false",
			"log.local.retention.ms": "-2", "log.local.retention.bytes": "1000"},
			[]string{`log.local.retention.bytes="1000" ignored: Gregor has no tiered storage`, `log.local.retention.ms="-2" ignored`}},
		{"a deployment without voters", map[string]string{"node.id": "2"},
			[]string{"node 2 forms a single-node quorum of its own (2@127.0.0.1:9093)"}},
		{"bootstrap servers beside voters", map[string]string{"controller.quorum.voters": "1@127.0.0.1:9093", "controller.quorum.bootstrap.servers": "x:1"},
			[]string{"controller.quorum.bootstrap.servers"}},
		{"voter at another port than its listener", map[string]string{"controller.quorum.voters": "1@127.0.0.1:9999"},
			[]string{"lists node 1 at 127.0.0.1:9999 but its controller listener is on port 9093"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, warnings, err := brokerConfig(tt.props)
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) != len(tt.want) {
				t.Fatalf("warnings %q, want %d", warnings, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(warnings[i], w) {
					t.Errorf("warning %d = %q, want it to contain %q", i, warnings[i], w)
				}
			}
		})
	}
}

func TestBrokerConfigErrors(t *testing.T) {
	tests := []struct {
		name  string
		props map[string]string
		want  []string // each must appear in the error
	}{
		{"unknown keys, all named, sorted", map[string]string{"bogus.key": "1", "log.retention.hour": "1", "a.b": "c", "num.partitions": "2"},
			[]string{"unknown keys (misspelled, or not supported by Gregor): a.b, bogus.key, log.retention.hour"}},
		{"not an integer", map[string]string{"node.id": "one"}, []string{`node.id="one": not an integer`}},
		{"negative id", map[string]string{"node.id": "-1"}, []string{`node.id="-1": want at least 0`}},
		{"node.id and broker.id disagree", map[string]string{"node.id": "1", "broker.id": "2"}, []string{"node.id=1 and broker.id=2"}},
		{"unknown role", map[string]string{"process.roles": "broker,worker"}, []string{`process.roles="broker,worker": unknown role "worker"`}},
		{"no role", map[string]string{"process.roles": " "}, []string{`process.roles="": no role given`}},
		{"no controller listener", map[string]string{"listeners": "PLAINTEXT://127.0.0.1:9092"}, []string{`listeners="PLAINTEXT://127.0.0.1:9092": no controller listener`}},
		{"no client listener", map[string]string{"listeners": "CONTROLLER://127.0.0.1:9093"}, []string{"no client listener"}},
		{"two client listeners", map[string]string{"listeners": "PLAINTEXT://127.0.0.1:9092,SASL_PLAINTEXT://127.0.0.1:9095,CONTROLLER://127.0.0.1:9093"},
			[]string{"one listener, not 2", "SASL_PLAINTEXT uses SASL_PLAINTEXT: Gregor speaks only PLAINTEXT"}},
		{"TLS", map[string]string{"listeners": "SSL://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"}, []string{"listener SSL uses SSL"}},
		{"listener name without protocol", map[string]string{"listeners": "INTERNAL://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"},
			[]string{"listener INTERNAL is not in listener.security.protocol.map"}},
		{"bad protocol map", map[string]string{"listener.security.protocol.map": "CONTROLLER=PLAINTEXT"}, []string{`listener.security.protocol.map="CONTROLLER=PLAINTEXT": entry`}},
		{"listener without scheme", map[string]string{"listeners": "127.0.0.1:9092"}, []string{`listeners="127.0.0.1:9092": entry "127.0.0.1:9092": want NAME://host:port`}},
		{"listener port out of range", map[string]string{"listeners": "PLAINTEXT://127.0.0.1:99999,CONTROLLER://127.0.0.1:9093"}, []string{`port "99999"`}},
		{"listener name twice", map[string]string{"listeners": "PLAINTEXT://127.0.0.1:9092,PLAINTEXT://127.0.0.1:9094,CONTROLLER://127.0.0.1:9093"}, []string{"PLAINTEXT appears twice"}},
		{"one port for two listeners", map[string]string{"listeners": "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9092"}, []string{"port 9092 is used by two listeners"}},
		{"broker-only non-voter on every interface", map[string]string{"process.roles": "broker", "controller.quorum.voters": "1@127.0.0.1:9193",
			"listeners": "PLAINTEXT://:9092,CONTROLLER://:9093"}, []string{"a broker-only node's controller listener needs a concrete host"}},
		{"broker-only without voters", map[string]string{"process.roles": "broker"}, []string{"controller.quorum.voters: required on a broker-only node"}},
		// What a static quorum cannot do: join controllers found through
		// bootstrap servers.
		{"bootstrap servers naming another node", map[string]string{"controller.quorum.bootstrap.servers": "ctrl1.example:9093"},
			[]string{`controller.quorum.bootstrap.servers="ctrl1.example:9093": Gregor's quorum is static, so it takes bootstrap servers only on a node with the controller role that names its own controller listener alone`,
				"set controller.quorum.voters on every node instead (id@host:port of each controller; for this node alone: 1@127.0.0.1:9093)"}},
		{"bootstrap servers at another port", map[string]string{"controller.quorum.bootstrap.servers": "127.0.0.1:9193"},
			[]string{`controller.quorum.bootstrap.servers="127.0.0.1:9193": Gregor's quorum is static`}},
		{"bootstrap servers naming this node and another", map[string]string{"controller.quorum.bootstrap.servers": "127.0.0.1:9093,ctrl2.example:9093"},
			[]string{`controller.quorum.bootstrap.servers="127.0.0.1:9093,ctrl2.example:9093": Gregor's quorum is static`}},
		{"bootstrap servers on a broker-only node", map[string]string{"process.roles": "broker", "controller.quorum.bootstrap.servers": "127.0.0.1:9093"},
			[]string{`controller.quorum.bootstrap.servers="127.0.0.1:9093": Gregor's quorum is static`, "(id@host:port of each controller)"}},
		{"inter broker listener", map[string]string{"inter.broker.listener.name": "INTERNAL"}, []string{`inter.broker.listener.name="INTERNAL"`}},
		{"inter broker protocol", map[string]string{"security.inter.broker.protocol": "SSL"}, []string{`security.inter.broker.protocol="SSL"`}},
		// Kafka: "advertised.listeners cannot use the nonroutable
		// meta-address 0.0.0.0", whether advertised.listeners names it
		// or, unset, falls back to listeners.
		{"advertised on every interface", map[string]string{"advertised.listeners": "PLAINTEXT://0.0.0.0:9092"},
			[]string{`advertised.listeners="PLAINTEXT://0.0.0.0:9092": advertised.listeners cannot use the nonroutable meta-address 0.0.0.0. Use a routable IP address.`}},
		{"advertised on every IPv6 interface", map[string]string{"advertised.listeners": "PLAINTEXT://[::]:9092"},
			[]string{"advertised.listeners cannot use the nonroutable meta-address ::."}},
		{"listener on 0.0.0.0 advertised", map[string]string{"listeners": "PLAINTEXT://0.0.0.0:9092,CONTROLLER://127.0.0.1:9093"},
			[]string{`listeners="PLAINTEXT://0.0.0.0:9092,CONTROLLER://127.0.0.1:9093": advertised.listeners cannot use the nonroutable meta-address 0.0.0.0. Use a routable IP address.`,
				"set advertised.listeners=PLAINTEXT://<host>:9092"}},
		{"listener on :: advertised", map[string]string{"listeners": "PLAINTEXT://[::]:9092,CONTROLLER://127.0.0.1:9093"},
			[]string{"advertised.listeners cannot use the nonroutable meta-address ::."}},
		{"advertised port 0", map[string]string{"advertised.listeners": "PLAINTEXT://h:0"}, []string{"PLAINTEXT: clients need a concrete port"}},
		{"advertised unknown listener", map[string]string{"advertised.listeners": "EXTERNAL://h:9092"}, []string{"listener EXTERNAL is not in listeners"}},
		{"bad voters", map[string]string{"controller.quorum.voters": "x@y"}, []string{`controller.quorum.voters="x@y": controller.quorum.voters entry "x@y"`}},
		{"voter not among the voters", map[string]string{"controller.quorum.voters": "2@127.0.0.1:9193"},
			[]string{"node.id=1 has the controller role but is not in controller.quorum.voters"}},
		{"empty log.dirs", map[string]string{"log.dirs": " , "}, []string{`log.dirs=",": no directory given`}},
		{"empty log.dir", map[string]string{"log.dir": ""}, []string{`log.dir="": no directory given`}},
		{"log.dirs twice", map[string]string{"log.dirs": "a,./a"}, []string{"log.dirs lists"}},
		{"empty metadata.log.dir", map[string]string{"metadata.log.dir": ""}, []string{`metadata.log.dir="": must not be empty`}},
		{"empty cluster.id", map[string]string{"cluster.id": ""}, []string{`cluster.id="": must not be empty`}},
		{"segment too small", map[string]string{"log.segment.bytes": "10"}, []string{`log.segment.bytes="10": want at least 14`}},
		{"segment too large", map[string]string{"log.segment.bytes": "2147483648"}, []string{`log.segment.bytes="2147483648": want 14 to 2147483647`}},
		{"beyond int64", map[string]string{"log.retention.bytes": "9223372036854775808"}, []string{`log.retention.bytes="9223372036854775808": out of range`}},
		{"zero message.max.bytes", map[string]string{"message.max.bytes": "0"}, []string{`message.max.bytes="0": want at least 1`}},
		{"decompression budget under a batch", map[string]string{"produce.decompression.max.bytes": "65536"}, []string{`produce.decompression.max.bytes="65536": want at least 1048576`}},
		{"compression", map[string]string{"compression.type": "brotli"}, []string{`compression.type="brotli": want one of producer, uncompressed, gzip, snappy, lz4, zstd`}},
		{"gzip level 0", map[string]string{"compression.gzip.level": "0"}, []string{`compression.gzip.level="0": want 1 to 9, or -1`}},
		{"gzip level 10", map[string]string{"compression.gzip.level": "10"}, []string{`compression.gzip.level="10": want -1 to 9`}},
		{"lz4 level 18", map[string]string{"compression.lz4.level": "18"}, []string{`compression.lz4.level="18": want 1 to 17`}},
		{"zstd level 23", map[string]string{"compression.zstd.level": "23"}, []string{`compression.zstd.level="23": want -131072 to 22`}},
		{"timestamp type", map[string]string{"log.message.timestamp.type": "createtime"}, []string{`log.message.timestamp.type="createtime"`}},
		{"cleanable ratio above 1", map[string]string{"log.cleaner.min.cleanable.ratio": "1.5"}, []string{`log.cleaner.min.cleanable.ratio="1.5": want a number from 0 to 1`}},
		{"negative timestamp bound", map[string]string{"log.message.timestamp.before.max.ms": "-1"}, []string{`log.message.timestamp.before.max.ms="-1"`}},
		{"boolean", map[string]string{"auto.create.topics.enable": "yes"}, []string{`auto.create.topics.enable="yes": want true or false`}},
		{"min.insync.replicas", map[string]string{"min.insync.replicas": "0"}, []string{`min.insync.replicas="0": want at least 1`}},
		{"replication factor above 1", map[string]string{"default.replication.factor": "3"}, []string{"default.replication.factor 3: this broker does not replicate partitions yet"}},
		{"replication factor beyond int16", map[string]string{"default.replication.factor": "40000"}, []string{`default.replication.factor="40000": want 1 to 32767`}},
		{"heartbeat beyond session", map[string]string{"broker.heartbeat.interval.ms": "10000"}, []string{"broker.heartbeat.interval.ms=10000 exceeds broker.session.timeout.ms=9000"}},
		{"leader imbalance check interval", map[string]string{"leader.imbalance.check.interval.seconds": "0", "auto.leader.rebalance.enable": "yes"},
			[]string{`leader.imbalance.check.interval.seconds="0": want 1 to 9223372036`, `auto.leader.rebalance.enable="yes": want true or false`}},
		{"cleanup policy", map[string]string{"log.cleanup.policy": "shrink"}, []string{`log.cleanup.policy="shrink": unknown policy "shrink"`}},
		{"network engine", map[string]string{"network.engine": "epoll"}, []string{`network.engine="epoll": want one of std, netpoll`}},
		{"duration overflow", map[string]string{"log.retention.check.interval.ms": "9223372036854775807"}, []string{`log.retention.check.interval.ms="9223372036854775807": want 1 to`}},
		{"idle expiry of zero", map[string]string{"connections.max.idle.ms": "0"}, []string{`connections.max.idle.ms="0": want at least 1, or negative for never`}},
		{"admin.listener not host:port", map[string]string{"admin.listener": "9094"}, []string{`admin.listener="9094": address 9094: missing port in address`}},
		{"admin.listener on a listener's port", map[string]string{"admin.listener": "127.0.0.1:9092"}, []string{`admin.listener="127.0.0.1:9092": port 9092 is also in listeners`}},
		{"preallocation", map[string]string{"log.preallocate": "true"}, []string{`log.preallocate="true": Gregor does not preallocate`}},
		{"tiered storage", map[string]string{"remote.log.storage.system.enable": "true"},
			[]string{`remote.log.storage.system.enable="true": Gregor has no tiered storage`}},
		{"ZooKeeper", map[string]string{"zookeeper.connect": "localhost:2181"}, []string{`zookeeper.connect="localhost:2181": ZooKeeper mode is not supported`}},
		{"every bad value is reported", map[string]string{
			"num.partitions": "0", "log.retention.ms": "soon", "max.connections": "-3", "log.flush.interval.messages": "0", "bogus": "1"},
			[]string{`num.partitions="0"`, `log.retention.ms="soon"`, `max.connections="-3"`, `log.flush.interval.messages="0"`, "unknown keys (misspelled, or not supported by Gregor): bogus"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := brokerConfig(tt.props)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

// TestBrokerConfigNoVoterWarningWithoutVoters: the warning about where
// controller.quorum.voters puts this node is only about voters the user
// gave, never the default ones left in place when the quorum is refused.
func TestBrokerConfigNoVoterWarningWithoutVoters(t *testing.T) {
	_, warnings, err := brokerConfig(map[string]string{
		"listeners":                           "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093",
		"controller.quorum.bootstrap.servers": "ctrl1.example:19093",
	})
	if err == nil {
		t.Fatal("bootstrap servers naming another node accepted")
	}
	for _, w := range warnings {
		if strings.Contains(w, "controller.quorum.voters") {
			t.Errorf("warning %q, but controller.quorum.voters was not given", w)
		}
	}
}

// TestBrokerConfigKafkaServerProperties: the config/server.properties Kafka
// ships for a combined KRaft node works unchanged, the keys that mean nothing
// for Gregor coming back as warnings. Kafka 3.x's names its quorum with
// controller.quorum.voters; Kafka 4.0's finds it through
// controller.quorum.bootstrap.servers (formatted with kafka-storage format
// --standalone), and the node forms a quorum of its own.
func TestBrokerConfigKafkaServerProperties(t *testing.T) {
	for _, tc := range []struct {
		kafka    string
		file     string
		warnings int
		voter    string
	}{
		{"3.x", kafka3ServerProperties, 6, "localhost:9093"},
		{"4.0", kafka4ServerProperties, 8, "127.0.0.1:9093"},
	} {
		t.Run(tc.kafka, func(t *testing.T) {
			props, err := parseProperties("server.properties", []byte(tc.file))
			if err != nil {
				t.Fatal(err)
			}
			cfg, warnings, err := brokerConfig(props)
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) != tc.warnings {
				t.Errorf("warnings %q, want one per ignored key", warnings)
			}
			want := broker.DefaultConfig()
			want.Listener, want.Quorum.Addr = ":9092", ":9093"
			want.AdvertisedHost, want.AdvertisedPort = "localhost", 9092
			want.Quorum.Voters = []raft.Voter{{ID: 1, Addr: tc.voter}}
			want.Storage.LogDirs = []string{"/tmp/kraft-combined-logs"}
			want.Quorum.Dir = "/tmp/kraft-combined-logs/__cluster_metadata-0"
			want.Storage.RecoveryThreadsPerDataDir = 1
			want.Storage.Log.RetentionMs = 168 * 3600000
			want.OffsetsTopicReplicationFactor = 1
			got := cfg.broker.StaticConfigs
			if _, ignored := got["num.network.threads"]; ignored || got["log.retention.hours"] != "168" || len(got) < 10 {
				t.Errorf("static configs %v: want the file's keys, without those ignored", got)
			}
			cfg.broker.StaticConfigs = nil
			if !reflect.DeepEqual(cfg.broker, want) {
				t.Errorf("got\n%+v\nwant\n%+v", cfg.broker, want)
			}
		})
	}
}

// kafka3ServerProperties is config/kraft/server.properties of Kafka 3.x.
const kafka3ServerProperties = `# The role of this server. Setting this puts us in KRaft mode
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@localhost:9093
listeners=PLAINTEXT://:9092,CONTROLLER://:9093
inter.broker.listener.name=PLAINTEXT
advertised.listeners=PLAINTEXT://localhost:9092
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
log.dirs=/tmp/kraft-combined-logs
num.partitions=1
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
#log.flush.interval.messages=10000
#log.flush.interval.ms=1000
log.retention.hours=168
#log.retention.bytes=1073741824
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
`

// kafka4ServerProperties is config/server.properties of Kafka 4.0.
const kafka4ServerProperties = `# The role of this server. Setting this puts us in KRaft mode
process.roles=broker,controller
node.id=1
# List of controller endpoints used connect to the controller cluster
controller.quorum.bootstrap.servers=localhost:9093
listeners=PLAINTEXT://:9092,CONTROLLER://:9093
inter.broker.listener.name=PLAINTEXT
advertised.listeners=PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
log.dirs=/tmp/kraft-combined-logs
num.partitions=1
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
#log.flush.interval.messages=10000
#log.flush.interval.ms=1000
log.retention.hours=168
#log.retention.bytes=1073741824
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
`

// TestTopicConfigSynonymsAreBrokerKeys: every broker setting a topic config
// takes its default from (what DescribeConfigs lists as its synonym) is a
// key gregor serve reads, and its default value reads back as the default.
func TestTopicConfigSynonymsAreBrokerKeys(t *testing.T) {
	def := broker.DefaultConfig()
	props := broker.TopicConfigDefaults(&def)
	got, _, err := brokerConfig(props)
	if err != nil {
		t.Fatalf("the topic configs' broker synonyms, at their defaults: %v", err)
	}
	want := serveConfig{broker: broker.DefaultConfig(), adminListener: defaultAdminListener}
	want.broker.StaticConfigs = props
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the defaults read back as\n%+v\nwant\n%+v", got, want)
	}
}
