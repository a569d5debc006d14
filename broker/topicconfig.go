package broker

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/batch"
	"gregor/raft"
	"gregor/segment"
)

// configKind is the type of a config value, as DescribeConfigs v3+ reports
// it (Kafka's ConfigType).
type configKind int8

const (
	kindBoolean configKind = 1
	kindString  configKind = 2
	kindInt     configKind = 3
	kindLong    configKind = 5
	kindDouble  configKind = 6
	kindList    configKind = 7
)

// topicConfig is one topic-level config Gregor understands: its name, the
// broker config that holds its default, its type, and what values it takes.
type topicConfig struct {
	// brokerName is empty for a config with no broker synonym, whose
	// default is fixed.
	name, brokerName string
	kind             configKind
	doc              string
	// check validates a value beyond its type; nil accepts any value of it.
	check func(string) error
	// brokerDefault reads the broker's value (the default of the config).
	brokerDefault func(*Config) string
}

// verbatimError is a check's error that Kafka reports as it stands, not as
// "Invalid value v for configuration name: why".
type verbatimError string

func (e verbatimError) Error() string { return string(e) }

// fixed is the default of a config that has no broker synonym.
func fixed(v string) func(*Config) string { return func(*Config) string { return v } }

// tieredStorageOff refuses remote.storage.enable=true as a Kafka broker
// without tiered storage (remote.log.storage.system.enable=false, its
// default) does; Gregor has none to turn on.
func tieredStorageOff(v string) error {
	if v == "true" {
		return verbatimError("Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage.")
	}
	return nil
}

func atLeast(lo int64) func(string) error {
	return func(v string) error {
		n, _ := strconv.ParseInt(v, 10, 64)
		if n < lo {
			return fmt.Errorf("Value must be at least %d", lo)
		}
		return nil
	}
}

func oneOf(values ...string) func(string) error {
	return func(v string) error {
		if !slices.Contains(values, v) {
			return fmt.Errorf("String must be one of: %s", strings.Join(values, ", "))
		}
		return nil
	}
}

func i64(v int64) string { return strconv.FormatInt(v, 10) }

// level checks a compression level for c on Kafka's scale (KIP-390).
func level(c batch.Codec) func(string) error {
	return func(v string) error {
		n, _ := strconv.ParseInt(v, 10, 32)
		if batch.CheckLevel(c, int(n)) == nil {
			return nil
		}
		lo, hi := batch.LevelRange(c)
		if c == batch.CodecGzip {
			return fmt.Errorf("Value must be between %d and %d, or %d for the codec's default", lo, hi, batch.GzipDefaultLevel)
		}
		return fmt.Errorf("Value must be between %d and %d", lo, hi)
	}
}

// onlyDefault takes a config Gregor does not implement at its default value
// alone, whose behaviour is Gregor's: why says what Gregor lacks.
func onlyDefault(def, why string) func(string) error {
	return func(v string) error {
		if v != def {
			return fmt.Errorf("%s; only %q is taken", why, def)
		}
		return nil
	}
}

// topicConfigs are the topic configs, in the order DescribeConfigs lists them.
var topicConfigs = []topicConfig{
	{name: "cleanup.policy", brokerName: "log.cleanup.policy", kind: kindList,
		doc: "delete: remove old segments by retention; compact: keep the newest record per key",
		check: func(v string) error {
			for _, p := range strings.Split(v, ",") {
				if p != "delete" && p != "compact" {
					return fmt.Errorf("Invalid value %s for configuration cleanup.policy: String must be one of: compact, delete", p)
				}
			}
			return nil
		},
		brokerDefault: func(c *Config) string { return c.Storage.Log.CleanupPolicy }},
	{name: "compression.gzip.level", brokerName: "compression.gzip.level", kind: kindInt,
		doc:   "the level a topic of compression.type gzip recompresses at: 1 (fastest) to 9 (smallest), or -1, the codec's default",
		check: level(batch.CodecGzip), brokerDefault: func(c *Config) string { return strconv.Itoa(c.CompressionLevels.Gzip) }},
	{name: "compression.lz4.level", brokerName: "compression.lz4.level", kind: kindInt,
		doc:   "the level a topic of compression.type lz4 recompresses at: 1 to 17; 9, the default, is the fast compressor",
		check: level(batch.CodecLZ4), brokerDefault: func(c *Config) string { return strconv.Itoa(c.CompressionLevels.LZ4) }},
	{name: "compression.type", brokerName: "compression.type", kind: kindString,
		doc:           "producer keeps batches as the producer compressed them; otherwise the broker recompresses",
		check:         oneOf("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
		brokerDefault: func(c *Config) string { return c.CompressionType }},
	{name: "compression.zstd.level", brokerName: "compression.zstd.level", kind: kindInt,
		doc:   "the level a topic of compression.type zstd recompresses at: -131072 to 22",
		check: level(batch.CodecZstd), brokerDefault: func(c *Config) string { return strconv.Itoa(c.CompressionLevels.Zstd) }},
	{name: "delete.retention.ms", brokerName: "log.cleaner.delete.retention.ms", kind: kindLong,
		doc: "how long the cleaner keeps tombstones (null values) in compacted topics", check: atLeast(0),
		brokerDefault: func(c *Config) string { return i64(c.Storage.Log.DeleteRetentionMs) }},
	{name: "file.delete.delay.ms", brokerName: "log.segment.delete.delay.ms", kind: kindLong,
		doc: "how long a deleted segment's files stay on disk, renamed *.deleted, before they are removed", check: atLeast(0),
		brokerDefault: func(c *Config) string { return i64(c.Storage.Log.FileDeleteDelayMs) }},
	{name: "flush.messages", brokerName: "log.flush.interval.messages", kind: kindLong,
		doc: "fsync after this many records", check: atLeast(1),
		brokerDefault: func(c *Config) string { return i64(c.Storage.Log.FlushMessages) }},
	{name: "flush.ms", brokerName: "log.flush.interval.ms", kind: kindLong,
		doc: "fsync when the last fsync is this old", check: atLeast(0),
		brokerDefault: func(c *Config) string { return i64(c.Storage.Log.FlushMs) }},
	{name: "follower.replication.throttled.replicas", kind: kindList,
		doc:   "the replicas whose fetching from the leader is throttled; Gregor has no replication throttles",
		check: onlyDefault("", "Gregor has no replication throttles"), brokerDefault: fixed("")},
	{name: "index.interval.bytes", brokerName: "log.index.interval.bytes", kind: kindInt,
		doc: "bytes of log between offset index entries", check: atLeast(0),
		brokerDefault: func(c *Config) string { return i64(int64(c.Storage.Log.IndexIntervalBytes)) }},
	{name: "leader.replication.throttled.replicas", kind: kindList,
		doc:   "the replicas whose serving of followers is throttled; Gregor has no replication throttles",
		check: onlyDefault("", "Gregor has no replication throttles"), brokerDefault: fixed("")},
	{name: "local.retention.bytes", kind: kindLong,
		doc: "with tiered storage, the bytes a partition keeps on local disk; -2 for retention.bytes. Gregor has no tiered storage, so retention.bytes governs, as on a Kafka broker without it", check: atLeast(-2),
		brokerDefault: fixed("-2")},
	{name: "local.retention.ms", kind: kindLong,
		doc: "with tiered storage, how long a partition keeps records on local disk; -2 for retention.ms. Gregor has no tiered storage, so retention.ms governs, as on a Kafka broker without it", check: atLeast(-2),
		brokerDefault: fixed("-2")},
	{name: "max.compaction.lag.ms", brokerName: "log.cleaner.max.compaction.lag.ms", kind: kindLong,
		doc: "the longest time a record stays uncompacted: older dirty segments are cleaned whatever the dirty ratio", check: atLeast(1),
		brokerDefault: func(c *Config) string { return i64(c.Storage.Log.MaxCompactionLagMs) }},
	{name: "max.message.bytes", brokerName: "message.max.bytes", kind: kindInt,
		doc: "the largest record batch the topic accepts", check: atLeast(0),
		brokerDefault: func(c *Config) string { return i64(int64(c.MessageMaxBytes)) }},
	{name: "message.timestamp.after.max.ms", brokerName: "log.message.timestamp.after.max.ms", kind: kindLong,
		doc: "how far ahead of the broker's clock a CreateTime timestamp may be", check: atLeast(0),
		brokerDefault: func(c *Config) string { return i64(c.LogMessageTimestampAfterMaxMs) }},
	{name: "message.timestamp.before.max.ms", brokerName: "log.message.timestamp.before.max.ms", kind: kindLong,
		doc: "how far behind the broker's clock a CreateTime timestamp may be", check: atLeast(0),
		brokerDefault: func(c *Config) string { return i64(c.LogMessageTimestampBeforeMaxMs) }},
	{name: "message.timestamp.type", brokerName: "log.message.timestamp.type", kind: kindString,
		doc: "CreateTime keeps the producer's timestamps; LogAppendTime stamps the broker's", check: oneOf("CreateTime", "LogAppendTime"),
		brokerDefault: func(c *Config) string { return c.LogMessageTimestampType }},
	{name: "min.cleanable.dirty.ratio", brokerName: "log.cleaner.min.cleanable.ratio", kind: kindDouble,
		doc: "the share of a compacted log written since its last cleaning that gets it cleaned again",
		check: func(v string) error {
			if f, err := strconv.ParseFloat(v, 64); err != nil || f < 0 || f > 1 {
				return fmt.Errorf("Value must be between 0 and 1")
			}
			return nil
		},
		brokerDefault: func(c *Config) string {
			return javaDouble(c.Storage.Log.MinCleanableDirtyRatio)
		}},
	{name: "min.compaction.lag.ms", brokerName: "log.cleaner.min.compaction.lag.ms", kind: kindLong,
		doc: "the least time a record stays uncompacted", check: atLeast(0),
		brokerDefault: func(c *Config) string { return i64(c.Storage.Log.MinCompactionLagMs) }},
	{name: "min.insync.replicas", brokerName: "min.insync.replicas", kind: kindInt,
		doc: "the ISR size an acks=all produce needs", check: atLeast(1),
		brokerDefault: func(c *Config) string { return i64(int64(c.MinInsyncReplicas)) }},
	{name: "preallocate", brokerName: "log.preallocate", kind: kindBoolean,
		doc:   "preallocate each new segment file to segment.bytes; Gregor does not",
		check: onlyDefault("false", "Gregor does not preallocate segment files"), brokerDefault: fixed("false")},
	{name: "remote.log.copy.disable", kind: kindBoolean,
		doc: "with tiered storage, stop copying segments to remote storage; Gregor has none", brokerDefault: fixed("false")},
	{name: "remote.log.delete.on.disable", kind: kindBoolean,
		doc: "with tiered storage, delete the remote copies when it is turned off; Gregor has none", brokerDefault: fixed("false")},
	{name: "remote.storage.enable", kind: kindBoolean,
		doc:   "tier the topic's old segments to remote storage (KIP-405); Gregor has no tiered storage, so only false is taken, as by a Kafka broker without it",
		check: tieredStorageOff, brokerDefault: fixed("false")},
	{name: "retention.bytes", brokerName: "log.retention.bytes", kind: kindLong,
		doc:           "delete old segments while the partition is larger than this; negative (-1) for no limit",
		brokerDefault: func(c *Config) string { return i64(c.Storage.Log.RetentionBytes) }},
	{name: "retention.ms", brokerName: "log.retention.ms", kind: kindLong,
		doc: "delete old segments whose records are older than this; -1 keeps them", check: atLeast(-1),
		brokerDefault: func(c *Config) string { return i64(c.Storage.Log.RetentionMs) }},
	{name: "segment.bytes", brokerName: "log.segment.bytes", kind: kindInt,
		doc: "roll the active segment at this size", check: atLeast(14),
		brokerDefault: func(c *Config) string { return i64(c.Storage.Log.SegmentBytes) }},
	{name: "segment.index.bytes", brokerName: "log.index.size.max.bytes", kind: kindInt,
		doc: "the size of each index file", check: atLeast(4),
		brokerDefault: func(c *Config) string { return i64(int64(c.Storage.Log.SegmentIndexBytes)) }},
	{name: "segment.jitter.ms", brokerName: "log.roll.jitter.ms", kind: kindLong,
		doc: "the most each segment's roll is brought forward, at random, so that partitions do not roll together", check: atLeast(0),
		brokerDefault: func(c *Config) string { return i64(c.Storage.Log.SegmentJitterMs) }},
	{name: "segment.ms", brokerName: "log.roll.ms", kind: kindLong,
		doc: "roll the active segment once its records span this long", check: atLeast(1),
		brokerDefault: func(c *Config) string { return i64(c.Storage.Log.SegmentMs) }},
	{name: "unclean.leader.election.enable", brokerName: "unclean.leader.election.enable", kind: kindBoolean,
		doc:           "let a replica outside the ISR lead when no ISR member is live, losing data",
		brokerDefault: func(c *Config) string { return strconv.FormatBool(c.Controller.UncleanLeaderElectionEnable) }},
}

// TopicConfigDefaults are the broker settings that give every topic config
// its default (Kafka's synonyms: log.retention.ms for retention.ms, ...),
// by name, with their values in c.
func TopicConfigDefaults(c *Config) map[string]string {
	out := make(map[string]string, len(topicConfigs))
	for _, tc := range topicConfigs {
		if tc.brokerName != "" {
			out[tc.brokerName] = tc.brokerDefault(c)
		}
	}
	return out
}

func lookupTopicConfig(name string) (*topicConfig, bool) {
	for i := range topicConfigs {
		if topicConfigs[i].name == name {
			return &topicConfigs[i], true
		}
	}
	return nil, false
}

// validateTopicConfig checks a topic config value by its type and range,
// and returns it in its normal form, as Kafka's ConfigDef reads a value
// (parseType: trimmed of the characters up to ' ', as Java's String.trim
// does; booleans in any case; a list split at commas and the blanks around
// them) and spells it back (convertToString): booleans lower case, numbers
// as Java prints them, lists joined by bare commas. The controller stores
// that form, so readers of the image parse nothing else.
func validateTopicConfig(name, value string) (string, error) {
	tc, ok := lookupTopicConfig(name)
	if !ok {
		return "", fmt.Errorf("Unknown topic config name: %s", name)
	}
	invalid := func(why string) error {
		return fmt.Errorf("Invalid value %s for configuration %s: %s", value, name, why)
	}
	normal := strings.TrimFunc(value, func(r rune) bool { return r <= ' ' })
	switch tc.kind {
	case kindBoolean:
		switch {
		case strings.EqualFold(normal, "true"):
			normal = "true"
		case strings.EqualFold(normal, "false"):
			normal = "false"
		default:
			return "", invalid("Expected value to be either true or false")
		}
	case kindInt:
		n, err := strconv.ParseInt(normal, 10, 32)
		if err != nil {
			return "", invalid("Not a number of type INT")
		}
		normal = strconv.FormatInt(n, 10)
	case kindLong:
		n, err := strconv.ParseInt(normal, 10, 64)
		if err != nil {
			return "", invalid("Not a number of type LONG")
		}
		normal = strconv.FormatInt(n, 10)
	case kindDouble:
		f, err := strconv.ParseFloat(normal, 64)
		if err != nil {
			return "", invalid("Not a number of type DOUBLE")
		}
		normal = javaDouble(f)
	case kindList:
		if normal != "" {
			normal = strings.Join(listSeparator.Split(normal, -1), ",")
		}
	}
	if tc.check != nil {
		if err := tc.check(normal); err != nil {
			var verbatim verbatimError
			if strings.HasPrefix(err.Error(), "Invalid value") || errors.As(err, &verbatim) {
				return "", err
			}
			return "", invalid(err.Error())
		}
	}
	return normal, nil
}

// listSeparator is where Kafka's ConfigDef splits a list value: a comma
// and the whitespace (Java's \s) around it.
var listSeparator = regexp.MustCompile(`[ \t\n\x0B\f\r]*,[ \t\n\x0B\f\r]*`)

// javaDouble spells f as Java's Double.toString, which Kafka's
// convertToString uses: plain decimal with at least one digit after the
// point from 10^-3 up to 10^7, computerized scientific notation (1.0E-4)
// otherwise.
func javaDouble(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	if abs := math.Abs(f); f == 0 || abs >= 1e-3 && abs < 1e7 {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	mantissa, exp, _ := strings.Cut(strconv.FormatFloat(f, 'E', -1, 64), "E")
	if !strings.Contains(mantissa, ".") {
		mantissa += ".0"
	}
	e, _ := strconv.Atoi(exp)
	return mantissa + "E" + strconv.Itoa(e)
}

// topicConfigValidator lets the controller check and describe topic
// configs without knowing what they mean.
type topicConfigValidator struct {
	// cfg is the controller node's broker config, whose settings are the
	// defaults DescribeNewTopicConfigs reports, as a Kafka controller
	// reports its own.
	cfg *Config
}

func (topicConfigValidator) ValidateConfig(resourceType int8, name, value string) (string, error) {
	if resourceType != raft.ResourceTopic {
		return "", fmt.Errorf("Dynamic broker configs are not supported: %s", name)
	}
	return validateTopicConfig(name, value)
}

// ValidateConfigSet checks the rules between a topic's configs that Kafka
// checks: min.compaction.lag.ms not above max.compaction.lag.ms, when the
// topic sets both (the broker defaults are not the controller's to know).
func (topicConfigValidator) ValidateConfigSet(resourceType int8, configs map[string]string) error {
	if resourceType != raft.ResourceTopic {
		return nil
	}
	minLag, minErr := strconv.ParseInt(configs["min.compaction.lag.ms"], 10, 64)
	maxLag, maxErr := strconv.ParseInt(configs["max.compaction.lag.ms"], 10, 64)
	if minErr == nil && maxErr == nil && minLag > maxLag {
		return fmt.Errorf("conflict topic config setting min.compaction.lag.ms (%d) > max.compaction.lag.ms (%d)", minLag, maxLag)
	}
	return nil
}

// ConfigDefault is a topic config's default on a broker left at Kafka's
// defaults: Kafka's static default, which APPEND and SUBTRACT start from.
func (topicConfigValidator) ConfigDefault(resourceType int8, name string) (string, bool) {
	tc, ok := lookupTopicConfig(name)
	if !ok || resourceType != raft.ResourceTopic || tc.brokerDefault == nil {
		return "", false
	}
	return tc.brokerDefault(kafkaDefaults()), true
}

// DescribeNewTopicConfigs is every topic config a new topic with configs
// takes, as DescribeConfigs would describe it (topicConfigs is sorted by
// name, as Kafka sorts them).
func (v topicConfigValidator) DescribeNewTopicConfigs(configs map[string]string) []kmsg.CreateTopicsResponseTopicConfig {
	cfg := v.cfg
	if cfg == nil {
		def := DefaultConfig()
		cfg = &def
	}
	out := make([]kmsg.CreateTopicsResponseTopicConfig, 0, len(topicConfigs))
	for i := range topicConfigs {
		tc := &topicConfigs[i]
		d := describeTopicConfig(tc, configs, cfg)
		c := kmsg.NewCreateTopicsResponseTopicConfig()
		c.Name, c.Value, c.Source = tc.name, kmsg.StringPtr(d.value), int8(d.source)
		out = append(out, c)
	}
	return out
}

func (topicConfigValidator) IsListConfig(resourceType int8, name string) bool {
	tc, ok := lookupTopicConfig(name)
	return ok && resourceType == raft.ResourceTopic && tc.kind == kindList
}

// overrideNum is a topic's numeric override of name, if it sets one.
func overrideNum(overrides map[string]string, name string) (int64, bool) {
	v, ok := overrides[name]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// logConfig is a topic's log settings: the broker's log.* defaults with the
// topic's overrides on top. Values were validated when stored.
//
// segment.Config reads zero as "the default" (retention of 7 days, no size
// limit, no timed flush), where Kafka's 0 means the opposite: retention.ms=0
// deletes every closed segment at once, retention.bytes=0 every closed
// segment, flush.ms=0 fsyncs at every check. Those map to the nearest value
// that is not zero, which behaves the same, as cmd/gregor maps the
// broker-wide log.* keys (segment.KafkaRetention); any negative retention
// is -1, no limit, as in Kafka.
func (b *Broker) logConfig(overrides map[string]string) segment.Config {
	c := b.cfg.Storage.Log
	num := func(name string) (int64, bool) { return overrideNum(overrides, name) }
	if n, ok := num("segment.bytes"); ok {
		c.SegmentBytes = n
	}
	if n, ok := num("segment.ms"); ok {
		c.SegmentMs = n
	}
	if n, ok := num("segment.jitter.ms"); ok {
		c.SegmentJitterMs = n
	}
	if n, ok := num("segment.index.bytes"); ok && n <= math.MaxInt32 {
		c.SegmentIndexBytes = int(n)
	}
	if n, ok := num("index.interval.bytes"); ok && n <= math.MaxInt32 {
		c.IndexIntervalBytes = max(int(n), 1)
	}
	if n, ok := num("retention.ms"); ok {
		c.RetentionMs = segment.KafkaRetention(n)
	}
	if n, ok := num("retention.bytes"); ok {
		c.RetentionBytes = segment.KafkaRetention(n)
	}
	if n, ok := num("flush.messages"); ok {
		c.FlushMessages = n
	}
	if n, ok := num("flush.ms"); ok {
		c.FlushMs = max(n, 1)
	}
	if v, ok := overrides["cleanup.policy"]; ok {
		c.CleanupPolicy = normalizeCleanupPolicy(v)
	}
	// Zero again: see above.
	if n, ok := num("delete.retention.ms"); ok {
		c.DeleteRetentionMs = max(n, 1)
	}
	if v, ok := overrides["min.cleanable.dirty.ratio"]; ok {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			if f == 0 {
				f = math.SmallestNonzeroFloat64
			}
			c.MinCleanableDirtyRatio = f
		}
	}
	if n, ok := num("file.delete.delay.ms"); ok {
		c.FileDeleteDelayMs = max(n, 1)
	}
	if n, ok := num("min.compaction.lag.ms"); ok {
		c.MinCompactionLagMs = n
	}
	if n, ok := num("max.compaction.lag.ms"); ok {
		c.MaxCompactionLagMs = n
	}
	c.EnsureDefaults()
	return c
}

// normalizeCleanupPolicy spells a cleanup.policy list the way segment.Config
// takes it: Kafka accepts "compact, delete", with blanks and in any order.
func normalizeCleanupPolicy(v string) string {
	var del, compact bool
	for _, p := range strings.Split(v, ",") {
		switch strings.TrimSpace(p) {
		case "delete":
			del = true
		case "compact":
			compact = true
		}
	}
	switch {
	case del && compact:
		return "compact,delete"
	case compact:
		return "compact"
	}
	return "delete"
}

// topicSettings are the produce-time settings of a topic.
type topicSettings struct {
	maxMessageBytes int
	compression     batch.Codec
	level           int  // compression's level, on Kafka's scale
	keepCompression bool // compression.type=producer
	logAppendTime   bool
	// tsBeforeMaxMs and tsAfterMaxMs bound CreateTime timestamps around
	// the broker's clock (message.timestamp.before/after.max.ms).
	tsBeforeMaxMs, tsAfterMaxMs int64
	minInsyncReplicas           int
	// compacted: cleanup.policy has compact, so every record needs a key.
	compacted bool
}

// recompresses reports whether a batch compressed with c is rewritten
// with the topic's compression.type before it is stored.
func (s topicSettings) recompresses(c batch.Codec) bool {
	return !s.keepCompression && c != s.compression
}

func (b *Broker) topicSettings(overrides map[string]string) topicSettings {
	s := topicSettings{maxMessageBytes: int(b.cfg.MessageMaxBytes), minInsyncReplicas: b.cfg.MinInsyncReplicas,
		tsBeforeMaxMs: b.cfg.LogMessageTimestampBeforeMaxMs, tsAfterMaxMs: b.cfg.LogMessageTimestampAfterMaxMs}
	if n, ok := overrideNum(overrides, "max.message.bytes"); ok {
		s.maxMessageBytes = int(n)
	}
	if n, ok := overrideNum(overrides, "min.insync.replicas"); ok {
		s.minInsyncReplicas = int(n)
	}
	if n, ok := overrideNum(overrides, "message.timestamp.before.max.ms"); ok {
		s.tsBeforeMaxMs = n
	}
	if n, ok := overrideNum(overrides, "message.timestamp.after.max.ms"); ok {
		s.tsAfterMaxMs = n
	}
	ts := b.cfg.LogMessageTimestampType
	if v, ok := overrides["message.timestamp.type"]; ok {
		ts = v
	}
	s.logAppendTime = ts == "LogAppendTime"
	policy := b.cfg.Storage.Log.CleanupPolicy
	if v, ok := overrides["cleanup.policy"]; ok {
		policy = v
	}
	s.compacted = normalizeCleanupPolicy(policy) != "delete"
	ct := b.cfg.CompressionType
	if v, ok := overrides["compression.type"]; ok {
		ct = v
	}
	switch ct {
	case "producer":
		s.keepCompression = true
	case "uncompressed":
		s.compression = batch.CodecNone
	default:
		c, err := batch.ParseCodec(ct)
		if err != nil {
			s.keepCompression = true
		}
		s.compression = c
	}
	// The topic's compression.<codec>.level, or the broker's.
	s.level = b.cfg.CompressionLevels.Of(s.compression)
	if n, ok := overrideNum(overrides, s.compression.LevelConfig()); ok {
		s.level = int(n)
	}
	return s
}
