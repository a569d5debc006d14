package group

import (
	"errors"
	"fmt"
	"math"
)

// Config is the classic group coordinator's configuration, under Kafka's
// names. Zero is a meaningful value for GroupInitialRebalanceDelayMs (no
// initial delay, a common test setting), so start from DefaultConfig rather
// than from a zero Config.
type Config struct {
	// GroupMinSessionTimeoutMs is group.min.session.timeout.ms: a JoinGroup
	// asking for a shorter session timeout gets INVALID_SESSION_TIMEOUT.
	// A floor keeps a misconfigured client from making the coordinator
	// expire and rebalance its group over and over. Default 6000.
	GroupMinSessionTimeoutMs int32
	// GroupMaxSessionTimeoutMs is group.max.session.timeout.ms: a JoinGroup
	// asking for a longer one gets INVALID_SESSION_TIMEOUT. A ceiling bounds
	// how long a dead consumer can keep its partitions. Default 1800000.
	GroupMaxSessionTimeoutMs int32
	// GroupInitialRebalanceDelayMs is group.initial.rebalance.delay.ms: how
	// long the first rebalance of an Empty group waits for more members, and
	// how much longer it waits each time one more arrives (up to the
	// members' rebalance timeout), so that consumers started together get one
	// rebalance instead of one each. Default 3000.
	GroupInitialRebalanceDelayMs int32
	// GroupMaxSize is group.max.size: a new member beyond it gets
	// GROUP_MAX_SIZE_REACHED. It bounds a group's members, and with them its
	// parked requests (at most a JoinGroup and a SyncGroup per member).
	// Default math.MaxInt32, as Kafka's.
	GroupMaxSize int32
	// NewMemberJoinTimeoutMs is how long a member that has joined but never
	// completed a join phase may stay. Such a member cannot heartbeat yet
	// (it has no generation), and its JoinGroup is parked, so its session
	// timeout cannot apply; a client that gave up on the JoinGroup would
	// otherwise stay in the group for ever. Kafka's constant
	// (CLASSIC_GROUP_NEW_MEMBER_JOIN_TIMEOUT_MS) is 300000.
	NewMemberJoinTimeoutMs int32
	// OffsetMetadataMaxBytes is offset.metadata.max.bytes: a commit whose
	// metadata string is longer gets OFFSET_METADATA_TOO_LARGE, which
	// bounds what a group's offsets can hold. Like Kafka, it counts UTF-16
	// code units (Java's String.length), not bytes, so metadata may take
	// up to three times as many bytes of UTF-8. Default 4096.
	OffsetMetadataMaxBytes int32
	// OffsetsRetentionMs is offsets.retention.minutes in milliseconds: the
	// committed offsets of a group without members expire this long after
	// they were committed (KIP-211). Default 7 days.
	OffsetsRetentionMs int64
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		GroupMinSessionTimeoutMs:     6000,
		GroupMaxSessionTimeoutMs:     1800000,
		GroupInitialRebalanceDelayMs: 3000,
		GroupMaxSize:                 math.MaxInt32,
		NewMemberJoinTimeoutMs:       300000,
		OffsetMetadataMaxBytes:       4096,
		OffsetsRetentionMs:           7 * 24 * 60 * 60 * 1000,
	}
}

// EnsureDefaults fills every zero field but GroupInitialRebalanceDelayMs,
// whose zero is a setting, with Kafka's default.
func (c *Config) EnsureDefaults() {
	d := DefaultConfig()
	setDefault(&c.GroupMinSessionTimeoutMs, d.GroupMinSessionTimeoutMs)
	setDefault(&c.GroupMaxSessionTimeoutMs, d.GroupMaxSessionTimeoutMs)
	setDefault(&c.GroupMaxSize, d.GroupMaxSize)
	setDefault(&c.NewMemberJoinTimeoutMs, d.NewMemberJoinTimeoutMs)
	setDefault(&c.OffsetMetadataMaxBytes, d.OffsetMetadataMaxBytes)
	setDefault(&c.OffsetsRetentionMs, d.OffsetsRetentionMs)
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
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("group: "+format, args...)) }
	if c.GroupMinSessionTimeoutMs <= 0 {
		bad("group.min.session.timeout.ms=%d: want at least 1", c.GroupMinSessionTimeoutMs)
	}
	if c.GroupMaxSessionTimeoutMs < c.GroupMinSessionTimeoutMs {
		bad("group.max.session.timeout.ms=%d: want at least group.min.session.timeout.ms=%d",
			c.GroupMaxSessionTimeoutMs, c.GroupMinSessionTimeoutMs)
	}
	if c.GroupInitialRebalanceDelayMs < 0 {
		bad("group.initial.rebalance.delay.ms=%d: want at least 0", c.GroupInitialRebalanceDelayMs)
	}
	if c.GroupMaxSize <= 0 {
		bad("group.max.size=%d: want at least 1", c.GroupMaxSize)
	}
	if c.NewMemberJoinTimeoutMs <= 0 {
		bad("new member join timeout %dms: want at least 1", c.NewMemberJoinTimeoutMs)
	}
	if c.OffsetMetadataMaxBytes < 0 {
		bad("offset.metadata.max.bytes=%d: want at least 0", c.OffsetMetadataMaxBytes)
	}
	if c.OffsetsRetentionMs <= 0 {
		bad("offsets.retention.minutes: %dms, want more than 0", c.OffsetsRetentionMs)
	}
	return errors.Join(errs...)
}
