package segment

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
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
}

// Kafka's defaults.
const (
	DefaultSegmentBytes       = 1 << 30
	DefaultSegmentMs          = 7 * 24 * 60 * 60 * 1000
	DefaultSegmentIndexBytes  = 10 << 20
	DefaultIndexIntervalBytes = 4096
	DefaultRetentionMs        = 7 * 24 * 60 * 60 * 1000
	DefaultRetentionBytes     = -1
)

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	var c Config
	c.EnsureDefaults()
	return c
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
}

func setDefault[T int | int64](v *T, d T) {
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
	return errors.Join(errs...)
}

func (c *Config) deletes() bool  { return strings.Contains(c.CleanupPolicy, "delete") }
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
}
