package segment

// The leader-epoch cache of one partition: for every leader epoch that wrote to
// the log, the first offset it wrote. Followers use it to find where their log
// diverges from the leader's (OffsetsForLeaderEpoch, KIP-101 and KIP-279).
//
//	<log.dir>/<topic>-<partition>/leader-epoch-checkpoint
//	    0\n            version
//	    3\n            entry count
//	    0 0\n          epoch SP startOffset
//	    2 120\n        epochs strictly increase, start offsets never decrease
//	    5 4000\n
//
// The file format and its atomic replacement are those of checkpoint.go. Every
// change is persisted before the call returns.

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
)

// LeaderEpochCheckpointFileName is the leader-epoch cache file in a partition
// directory.
const LeaderEpochCheckpointFileName = "leader-epoch-checkpoint"

// Kafka's UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET.
const (
	UndefinedEpoch       int32 = -1
	UndefinedEpochOffset int64 = -1
)

// EpochEntry says that leader epoch Epoch wrote its first batch at StartOffset.
type EpochEntry struct {
	Epoch       int32
	StartOffset int64
}

var epochCheckpointFormat = &checkpointFormat[EpochEntry]{
	what:    "leader epoch checkpoint",
	version: 0,
	appendEntry: func(dst []byte, e EpochEntry) []byte {
		dst = strconv.AppendInt(dst, int64(e.Epoch), 10)
		dst = append(dst, ' ')
		return strconv.AppendInt(dst, e.StartOffset, 10)
	},
	parseEntry: func(line string) (EpochEntry, error) {
		fields, err := checkpointFields(line, 2)
		if err != nil {
			return EpochEntry{}, err
		}
		epoch, err := strconv.ParseInt(fields[0], 10, 32)
		if err != nil || epoch < 0 {
			return EpochEntry{}, fmt.Errorf("epoch %q is not a non-negative int32", fields[0])
		}
		start, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil || start < 0 {
			return EpochEntry{}, fmt.Errorf("start offset %q is not a non-negative int64", fields[1])
		}
		return EpochEntry{Epoch: int32(epoch), StartOffset: start}, nil
	},
}

// LeaderEpochCache is the leader-epoch cache of one partition, backed by its
// leader-epoch-checkpoint file. It is safe for concurrent use: mu guards the
// entries and serializes the writes of the file.
//
// The first error persisting the file is sticky: every later change returns it
// without touching the entries or the file (a storage error stops the
// partition). The entries then hold the change that failed to persist, as the
// log they describe does; reads keep answering from them.
type LeaderEpochCache struct {
	path string
	mu   struct {
		sync.Mutex
		// entries have strictly increasing epochs and non-decreasing start
		// offsets.
		entries []EpochEntry
		failed  error
	}
}

// OpenLeaderEpochCache loads the leader-epoch-checkpoint in the partition
// directory dir. A missing file is an empty cache; the file is first written by
// the first change. A malformed file, or one whose epochs do not strictly
// increase or whose start offsets decrease, is an error wrapping ErrCorruption.
func OpenLeaderEpochCache(dir string) (*LeaderEpochCache, error) {
	path := filepath.Join(dir, LeaderEpochCheckpointFileName)
	entries, err := epochCheckpointFormat.read(path)
	if err != nil {
		return nil, err
	}
	for i := 1; i < len(entries); i++ {
		prev, cur := entries[i-1], entries[i]
		if cur.Epoch <= prev.Epoch || cur.StartOffset < prev.StartOffset {
			return nil, epochCheckpointFormat.corrupt(path, i+3,
				"entry (epoch %d, start %d) does not follow (epoch %d, start %d): epochs must increase and start offsets must not decrease",
				cur.Epoch, cur.StartOffset, prev.Epoch, prev.StartOffset)
		}
	}
	c := &LeaderEpochCache{path: path}
	c.mu.entries = entries
	return c, nil
}

// Assign records that epoch starts at startOffset, as Kafka's
// LeaderEpochFileCache.assign does. It is a no-op when epoch is the latest
// epoch and startOffset is not below its start (the leader appending more
// batches in its epoch). Otherwise every entry that conflicts with the new one
// (an epoch >= epoch or a start offset >= startOffset; they form a suffix) is
// removed, the new entry appended, and the file persisted.
func (c *LeaderEpochCache) Assign(epoch int32, startOffset int64) error {
	if epoch < 0 || startOffset < 0 {
		return fmt.Errorf("segment: leader epoch cache %s: assign epoch %d at offset %d: negative epoch or offset", c.path, epoch, startOffset)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.failed != nil {
		return c.mu.failed
	}
	entries, changed := assignEpoch(c.mu.entries, EpochEntry{Epoch: epoch, StartOffset: startOffset})
	if !changed {
		return nil
	}
	c.mu.entries = entries
	return c.persistLocked()
}

// Latest returns the entry of the latest epoch, and false if the cache is empty.
func (c *LeaderEpochCache) Latest() (EpochEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.mu.entries) == 0 {
		return EpochEntry{}, false
	}
	return c.mu.entries[len(c.mu.entries)-1], true
}

// Entries returns a copy of the entries, oldest first.
func (c *LeaderEpochCache) Entries() []EpochEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.mu.entries)
}

// EpochForOffset returns the epoch whose range holds offset: the latest epoch
// starting at or before it. Offsets past the latest start belong to the latest
// epoch. It returns false for an offset before the first entry or an empty
// cache.
func (c *LeaderEpochCache) EpochForOffset(offset int64) (int32, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	entries := c.mu.entries
	// The first entry starting after offset; the one before it holds offset.
	i := sort.Search(len(entries), func(i int) bool { return entries[i].StartOffset > offset })
	if i == 0 {
		return UndefinedEpoch, false
	}
	return entries[i-1].Epoch, true
}

// EndOffsetFor answers OffsetsForLeaderEpoch for epoch, as Kafka's
// LeaderEpochFileCache.endOffsetFor does:
//   - epoch is UNDEFINED_EPOCH, the cache is empty, or epoch is above the
//     latest epoch: (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
//   - epoch is the latest epoch: (epoch, logEndOffset);
//   - otherwise the end offset is the start offset of the first epoch above
//     epoch, and the epoch is the largest one <= epoch, or epoch itself when
//     epoch is older than every entry (its data was deleted by retention; the
//     answer lets the follower truncate to the leader's first epoch instead of
//     falling back to its high watermark).
func (c *LeaderEpochCache) EndOffsetFor(epoch int32, logEndOffset int64) (foundEpoch int32, endOffset int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	entries := c.mu.entries
	n := len(entries)
	if epoch == UndefinedEpoch || n == 0 {
		return UndefinedEpoch, UndefinedEpochOffset
	}
	if entries[n-1].Epoch == epoch {
		return epoch, logEndOffset
	}
	higher := sort.Search(n, func(i int) bool { return entries[i].Epoch > epoch })
	switch higher {
	case n:
		return UndefinedEpoch, UndefinedEpochOffset
	case 0:
		return epoch, entries[0].StartOffset
	default:
		return entries[higher-1].Epoch, entries[higher].StartOffset
	}
}

// TruncateFromEnd removes the entries starting at or after endOffset, for a log
// truncated to endOffset, and persists the file if anything was removed.
func (c *LeaderEpochCache) TruncateFromEnd(endOffset int64) error {
	if endOffset < 0 {
		return fmt.Errorf("segment: leader epoch cache %s: truncate from end at negative offset %d", c.path, endOffset)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.failed != nil {
		return c.mu.failed
	}
	entries := c.mu.entries
	keep := sort.Search(len(entries), func(i int) bool { return entries[i].StartOffset >= endOffset })
	if keep == len(entries) {
		return nil
	}
	c.mu.entries = slices.Clip(entries[:keep])
	return c.persistLocked()
}

// TruncateFromStart drops the epochs wholly before startOffset, for a log whose
// start advanced to startOffset: the latest entry starting at or before
// startOffset stays, with its start raised to startOffset, and the entries
// before it go. It persists the file if anything changed.
func (c *LeaderEpochCache) TruncateFromStart(startOffset int64) error {
	if startOffset < 0 {
		return fmt.Errorf("segment: leader epoch cache %s: truncate from start at negative offset %d", c.path, startOffset)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.failed != nil {
		return c.mu.failed
	}
	entries := c.mu.entries
	// entries[:after] start at or before startOffset.
	after := sort.Search(len(entries), func(i int) bool { return entries[i].StartOffset > startOffset })
	if after == 0 || (after == 1 && entries[0].StartOffset == startOffset) {
		return nil
	}
	kept := make([]EpochEntry, 0, len(entries)-after+1)
	kept = append(kept, EpochEntry{Epoch: entries[after-1].Epoch, StartOffset: startOffset})
	kept = append(kept, entries[after:]...)
	c.mu.entries = kept
	return c.persistLocked()
}

// Clear removes every entry and persists the empty file, for a log truncated
// fully and restarted at a new offset.
func (c *LeaderEpochCache) Clear() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.failed != nil {
		return c.mu.failed
	}
	c.mu.entries = nil
	return c.persistLocked()
}

// persistLocked writes the entries to the file. c.mu must be held, which also
// keeps two writes of the file from interleaving.
func (c *LeaderEpochCache) persistLocked() error {
	if err := epochCheckpointFormat.write(c.path, c.mu.entries); err != nil {
		c.mu.failed = err
		return err
	}
	return nil
}

// assignEpoch returns entries with e assigned by Kafka's rules, and whether
// anything changed. entries is not modified.
func assignEpoch(entries []EpochEntry, e EpochEntry) ([]EpochEntry, bool) {
	if n := len(entries); n > 0 {
		latest := entries[n-1]
		if e.Epoch == latest.Epoch && e.StartOffset >= latest.StartOffset {
			return entries, false
		}
	}
	// Entries are increasing in both fields, so the conflicting ones are a
	// suffix: keep the prefix below e in both.
	keep := len(entries)
	for keep > 0 && (entries[keep-1].Epoch >= e.Epoch || entries[keep-1].StartOffset >= e.StartOffset) {
		keep--
	}
	out := make([]EpochEntry, 0, keep+1)
	out = append(out, entries[:keep]...)
	return append(out, e), true
}
