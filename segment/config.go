package segment

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// Config holds the settings of one partition log. The names are Kafka's topic
// configuration keys (broker-wide defaults in brackets); a zero field takes
// Kafka's default through EnsureDefaults.
type Config struct {
	// SegmentBytes rolls the active segment when the next batch would take it
	// past this size: segment.bytes [log.segment.bytes], 1 GiB. At most 2 GiB-1,
	// since index positions are 32-bit.
	SegmentBytes int64
	// SegmentMs rolls the active segment once the timestamps of its batches span
	// this long: segment.ms [log.roll.ms], 7 days.
	SegmentMs int64
	// SegmentJitterMs is the most a segment's roll age is shortened by, at
	// random per segment, so that the partitions of a topic created together
	// do not all roll at once: segment.jitter.ms [log.roll.jitter.ms], 0.
	SegmentJitterMs int64
	// SegmentIndexBytes is the preallocated size of each index file; a full index
	// rolls the segment: segment.index.bytes [log.index.size.max.bytes], 10 MiB.
	SegmentIndexBytes int
	// IndexIntervalBytes is how many bytes of log lie between offset index
	// entries: index.interval.bytes [log.index.interval.bytes], 4096. As zero
	// means the default here, 1 indexes every batch.
	IndexIntervalBytes int
	// RetentionMs deletes old segments whose newest timestamp is older than this;
	// -1 keeps them forever: retention.ms [log.retention.ms], 7 days.
	RetentionMs int64
	// RetentionBytes deletes old segments while the log is larger than this;
	// -1 for no limit: retention.bytes [log.retention.bytes], -1.
	RetentionBytes int64
	// FlushMessages fsyncs the log after this many records:
	// flush.messages [log.flush.interval.messages]. Like Kafka the default is
	// MaxInt64 (never): durability comes from replication.
	FlushMessages int64
	// CleanupPolicy is cleanup.policy [log.cleanup.policy]: "delete" (the
	// default: retention deletes old segments), "compact" (offsets may have
	// gaps; retention does not apply), or both, comma-separated.
	CleanupPolicy string
	// FlushMs fsyncs the log when the last fsync is this old:
	// flush.ms [log.flush.interval.ms], default MaxInt64 (never).
	FlushMs int64
	// DeleteRetentionMs is how long the cleaner keeps tombstones (records
	// with a null value) in a compacted log, so that a consumer reading from
	// the start sees a delete it would otherwise miss: delete.retention.ms
	// [log.cleaner.delete.retention.ms], 1 day. As zero means the default
	// here, 1 ms stands for Kafka's 0.
	DeleteRetentionMs int64
	// MinCleanableDirtyRatio is how much of a compacted log's closed
	// segments must be dirty (written since the last clean) before it is
	// cleaned again, trading cleaning work for space:
	// min.cleanable.dirty.ratio [log.cleaner.min.cleanable.ratio], 0.5. As
	// zero means the default here, a tiny positive ratio stands for Kafka's 0.
	MinCleanableDirtyRatio float64
	// MinCompactionLagMs keeps a record uncleaned until it is at least this
	// old (by its segment's newest timestamp), so consumers see every update
	// of the recent past: min.compaction.lag.ms
	// [log.cleaner.min.compaction.lag.ms], 0.
	MinCompactionLagMs int64
	// MaxCompactionLagMs bounds how long a record stays uncleaned (KIP-354):
	// a compacted log whose oldest dirty segment began longer ago than this
	// is cleaned whatever its dirty ratio, and its active segment rolls at
	// this age so that its records can be: max.compaction.lag.ms
	// [log.cleaner.max.compaction.lag.ms], unbounded.
	MaxCompactionLagMs int64
	// FileDeleteDelayMs is how long the files of a segment that retention,
	// truncation or the cleaner deleted stay on disk, renamed *.deleted,
	// before they are removed: file.delete.delay.ms
	// [log.segment.delete.delay.ms], 1 minute. Readers already hold what they
	// read (reference-counted regions), so the delay is Kafka's for the
	// operator: space comes back that long after a deletion. As zero means
	// the default here, 1 ms stands for Kafka's 0.
	FileDeleteDelayMs int64

	// provisional marks the defaults a log found at start-up was opened
	// with while its topic's config is not known yet (ManagerOptions
	// .ConfigFor nil): retention by time and size and the cleaner leave the
	// log alone until SetConfig gives it a config. Unexported, so that no
	// Config a caller builds equals a provisional one: a caller that applies
	// its topic's config whenever it differs from the log's always applies
	// it to such a log.
	provisional bool
}

// Kafka's defaults.
const (
	DefaultSegmentBytes       = 1 << 30
	DefaultSegmentMs          = 7 * 24 * 60 * 60 * 1000
	DefaultSegmentIndexBytes  = 10 << 20
	DefaultIndexIntervalBytes = 4096
	DefaultRetentionMs        = 7 * 24 * 60 * 60 * 1000
	DefaultRetentionBytes     = -1
	DefaultDeleteRetentionMs  = 24 * 60 * 60 * 1000
	DefaultFileDeleteDelayMs  = 60 * 1000
	// DefaultMinCleanableDirtyRatio is min.cleanable.dirty.ratio's default.
	DefaultMinCleanableDirtyRatio = 0.5
)

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	var c Config
	c.EnsureDefaults()
	return c
}

// KafkaRetention maps a Kafka retention limit (retention.ms,
// retention.bytes and their log.* defaults) onto Config's, which reads zero
// as unset: Kafka's 0 (delete every closed segment) is 1, which behaves the
// same, and any negative value is -1, no limit.
func KafkaRetention(n int64) int64 {
	switch {
	case n < 0:
		return -1
	case n == 0:
		return 1
	}
	return n
}

// EnsureDefaults fills every zero field with its default.
func (c *Config) EnsureDefaults() {
	setDefault(&c.SegmentBytes, DefaultSegmentBytes)
	setDefault(&c.SegmentMs, DefaultSegmentMs)
	setDefault(&c.SegmentIndexBytes, DefaultSegmentIndexBytes)
	setDefault(&c.IndexIntervalBytes, DefaultIndexIntervalBytes)
	setDefault(&c.RetentionMs, DefaultRetentionMs)
	setDefault(&c.RetentionBytes, DefaultRetentionBytes)
	if c.CleanupPolicy == "" {
		c.CleanupPolicy = "delete"
	}
	setDefault(&c.FlushMessages, math.MaxInt64)
	setDefault(&c.FlushMs, math.MaxInt64)
	setDefault(&c.DeleteRetentionMs, DefaultDeleteRetentionMs)
	setDefault(&c.MinCleanableDirtyRatio, DefaultMinCleanableDirtyRatio)
	setDefault(&c.MaxCompactionLagMs, math.MaxInt64)
	setDefault(&c.FileDeleteDelayMs, DefaultFileDeleteDelayMs)
}

func setDefault[T int | int64 | float64](v *T, d T) {
	if *v == 0 {
		*v = d
	}
}

// Validate reports every field out of range, with its value.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key string, v any, want string) {
		errs = append(errs, fmt.Errorf("segment: %s=%v: %s", key, v, want))
	}
	if c.SegmentBytes < 14 || c.SegmentBytes > math.MaxInt32 {
		bad("segment.bytes", c.SegmentBytes, "want 14 to 2147483647")
	}
	if c.SegmentJitterMs < 0 {
		bad("segment.jitter.ms", c.SegmentJitterMs, "want at least 0")
	}
	if c.SegmentMs < 1 {
		bad("segment.ms", c.SegmentMs, "want at least 1")
	}
	if c.SegmentIndexBytes < 2*timeEntrySize {
		bad("segment.index.bytes", c.SegmentIndexBytes, fmt.Sprintf("want at least %d", 2*timeEntrySize))
	}
	if c.IndexIntervalBytes < 0 {
		bad("index.interval.bytes", c.IndexIntervalBytes, "want at least 0")
	}
	if c.RetentionMs < -1 {
		bad("retention.ms", c.RetentionMs, "want -1 (forever) or more")
	}
	if c.RetentionBytes < -1 {
		bad("retention.bytes", c.RetentionBytes, "want -1 (no limit) or more")
	}
	switch c.CleanupPolicy {
	case "delete", "compact", "compact,delete", "delete,compact":
	default:
		bad("cleanup.policy", c.CleanupPolicy, `want "delete", "compact" or "compact,delete"`)
	}
	if c.FlushMessages < 1 {
		bad("flush.messages", c.FlushMessages, "want at least 1")
	}
	if c.FlushMs < 0 {
		bad("flush.ms", c.FlushMs, "want at least 0")
	}
	if c.DeleteRetentionMs < 0 {
		bad("delete.retention.ms", c.DeleteRetentionMs, "want at least 0")
	}
	if !(c.MinCleanableDirtyRatio >= 0 && c.MinCleanableDirtyRatio <= 1) { // NaN fails too
		bad("min.cleanable.dirty.ratio", c.MinCleanableDirtyRatio, "want 0 to 1")
	}
	if c.MinCompactionLagMs < 0 {
		bad("min.compaction.lag.ms", c.MinCompactionLagMs, "want at least 0")
	}
	if c.MaxCompactionLagMs < 1 {
		bad("max.compaction.lag.ms", c.MaxCompactionLagMs, "want at least 1")
	}
	if c.FileDeleteDelayMs < 0 {
		bad("file.delete.delay.ms", c.FileDeleteDelayMs, "want at least 0")
	}
	return errors.Join(errs...)
}

// fileDeleteDelay is FileDeleteDelayMs as a duration, the largest one for
// delays beyond it (centuries).
func (c *Config) fileDeleteDelay() time.Duration {
	return time.Duration(min(c.FileDeleteDelayMs, math.MaxInt64/int64(time.Millisecond))) * time.Millisecond
}

// Deletes reports whether cleanup.policy has delete: retention applies, and
// DeleteRecords may remove records below the high watermark.
func (c *Config) Deletes() bool { return strings.Contains(c.CleanupPolicy, "delete") }

// rollJitter draws a segment's roll jitter, as Kafka's randomSegmentJitter:
// uniform below min(segment.jitter.ms, the roll age), 0 without jitter.
func (c *Config) rollJitter() int64 {
	if c.SegmentJitterMs <= 0 {
		return 0
	}
	return rand.Int64N(min(c.SegmentJitterMs, c.rollMs()))
}

// rollMs is the age at which the active segment rolls: segment.ms, or
// max.compaction.lag.ms when that is sooner and the log compacts, so that
// no record waits in the active segment, which is never cleaned, past it.
func (c *Config) rollMs() int64 {
	if c.compacts() {
		return min(c.SegmentMs, c.MaxCompactionLagMs)
	}
	return c.SegmentMs
}
func (c *Config) compacts() bool { return strings.Contains(c.CleanupPolicy, "compact") }

// OpenOptions says how a log is being opened, as opposed to how it behaves.
type OpenOptions struct {
	// RecoveryPoint is the offset below which the log is known to be on stable
	// storage (from the log dir's recovery-point-offset-checkpoint).
	RecoveryPoint int64
	// CleanShutdown skips the recovery scan: the log was closed cleanly.
	CleanShutdown bool
	// Now is the clock; time.Now when nil. Tests pass a fake one.
	Now func() time.Time
	// Logger receives recovery and failure reports; slog.Default when nil.
	Logger *slog.Logger
	// CleanerCheckpoint is the log's entry in its dir's
	// cleaner-offset-checkpoint: the offset below which the log is clean.
	// HasCleanerCheckpoint says there is one. A log that has one may hold
	// cleaned batches (gaps between offsets, fewer records than offsets), so
	// recovery allows for them whatever the log's cleanup.policy is now.
	CleanerCheckpoint    int64
	HasCleanerCheckpoint bool
	// CleanerCheckpointLost says the dir's cleaner-offset-checkpoint was
	// set aside (it did not parse): the log may hold the cleaner's gaps
	// though it has no entry, so recovery allows for them and does not cut
	// a cleaned log at them as damage. Then the log's batch headers are
	// walked for the cleaner's marks (a gap between offsets, a batch
	// holding fewer records than its offsets span); a log that has them is
	// listed again at its log start (CleanerCheckpoint), so that the next
	// start allows for its gaps too, and one that has none is not listed,
	// so a delete topic's log does not stay gap-tolerant.
	CleanerCheckpointLost bool
	// LogStartOffset is the log's entry in its dir's
	// log-start-offset-checkpoint (0 when it has none): where a
	// DeleteRecords left the log start, above its first segment's base. One
	// past the log end (segments lost, or a crash that cut the log below
	// it) empties the log and starts it there, as Kafka's LogLoader does.
	LogStartOffset int64
}

// CleanerConfig holds the log cleaner's broker-wide settings, under Kafka's
// log.cleaner.* names. Enable's Kafka default is true, which a zero
// CleanerConfig cannot say: start from DefaultCleanerConfig.
type CleanerConfig struct {
	// Enable runs the cleaner on every log whose cleanup.policy has
	// compact: log.cleaner.enable.
	Enable bool
	// BackoffMs is how long the cleaner waits after a round that found no
	// log to clean: log.cleaner.backoff.ms, 15000.
	BackoffMs int64
	// DedupeBufferSize bounds the memory of the offset map (key hash ->
	// newest offset) that one cleaning pass builds over the dirty part of a
	// log: log.cleaner.dedupe.buffer.size, 128 MiB. At 24 bytes an entry and
	// a load factor of 0.9 (log.cleaner.io.buffer.load.factor), the default
	// holds about 5 million keys; a dirty part with more distinct keys is
	// cleaned in several passes. It is allocated when first needed, no larger
	// than the dirty part's offsets call for.
	DedupeBufferSize int64
}

// The log cleaner's defaults (Kafka's).
const (
	DefaultCleanerBackoffMs        = 15000
	DefaultCleanerDedupeBufferSize = 128 << 20
	// MinCleanerDedupeBufferSize is the smallest offset map Validate
	// accepts: a few dozen keys, enough to make progress batch by batch.
	MinCleanerDedupeBufferSize = 1 << 10
)

// DefaultCleanerConfig returns Kafka's defaults: the cleaner enabled.
func DefaultCleanerConfig() CleanerConfig {
	c := CleanerConfig{Enable: true}
	c.EnsureDefaults()
	return c
}

// EnsureDefaults fills every zero numeric field with its default.
func (c *CleanerConfig) EnsureDefaults() {
	setDefault(&c.BackoffMs, DefaultCleanerBackoffMs)
	setDefault(&c.DedupeBufferSize, DefaultCleanerDedupeBufferSize)
}

// Validate reports every field out of range, with its value.
func (c *CleanerConfig) Validate() error {
	var errs []error
	if c.BackoffMs < 1 {
		errs = append(errs, fmt.Errorf("segment: log.cleaner.backoff.ms=%d: want at least 1", c.BackoffMs))
	}
	if c.DedupeBufferSize < MinCleanerDedupeBufferSize {
		errs = append(errs, fmt.Errorf("segment: log.cleaner.dedupe.buffer.size=%d: want at least %d", c.DedupeBufferSize, MinCleanerDedupeBufferSize))
	}
	return errors.Join(errs...)
}
