package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gregor/batch"
)

// Log compaction (cleanup.policy=compact), the way Kafka's LogCleaner does it,
// sized for Gregor. The file names and the swap protocol are drawn in doc.go.
//
// A pass over one log:
//
//  1. Snapshot: the closed segments (never the active one), with references
//     on their files so that retention or truncation meanwhile cannot close
//     them under the cleaner. The log is clean below its first dirty offset
//     (its cleaner-offset-checkpoint entry) and cleanable up to the first
//     uncleanable offset: the active segment's base, or the base of the
//     first segment not yet min.compaction.lag.ms old.
//  2. Offset map: every keyed record of the dirty part, key hash -> newest
//     offset (offsetMap, bounded by log.cleaner.dedupe.buffer.size and sized
//     by the dirty offsets). The dirty part starts at the first dirty offset
//     even inside a batch (a log start a DeleteRecords raised). When the
//     map fills, the pass cleans only up to the offset it covered.
//  3. Rewrite every closed segment below that offset, in groups whose sizes
//     sum to at most segment.bytes, so small cleaned segments merge. A record
//     stays unless the map holds a newer offset for its key, or it is a
//     tombstone (null value) in a batch whose delete horizon has passed.
//     Records without a key (which produce refuses for compacted topics) and
//     control batches stay. A batch keeps its header (baseOffset,
//     lastOffsetDelta, baseTimestamp, attributes, producer fields) and is
//     re-encoded with only the records that stay, compressed with its own
//     codec; one left with no records goes; one left whole is copied as is.
//     As in Kafka, a CreateTime batch's maxTimestamp becomes the largest of
//     the records it keeps, so that the time index and lookups by time see
//     only records that exist.
//
//     Tombstones follow Kafka's KIP-534: a pass that keeps a tombstone in a
//     batch with no delete horizon yet stamps the batch with one, now +
//     delete.retention.ms (attribute bit 6, baseTimestamp = the horizon, the
//     records' timestamp deltas rebased on it so their timestamps do not
//     change); a later pass at or after the horizon drops them. So a
//     tombstone outlives, by delete.retention.ms at least, the pass that
//     removed the values it deletes, and a consumer that read one of those
//     values before that pass finds the tombstone after it, however old the
//     tombstone's own timestamp. (The rule before KIP-534, a tombstone in a
//     segment older than delete.retention.ms goes, dropped an old tombstone
//     in the very pass that dropped its value.) Only batches that the map
//     has been compared with are stamped: a tombstone past the map's end
//     has not yet removed the older values of its key.
//  4. Each group goes to <base>.log.cleaned with its indexes, is fsynced,
//     renamed to .swap, swapped into the segment list and renamed to its
//     final names; the segments it replaces are deleted, and closed only once
//     their last reader is done (their Files are reference counted).
//  5. The first dirty offset advances to where the map ended.
//
// Nothing here holds the log's locks while it reads or writes segment data:
// appends and fetches go on during a pass. The swap takes swapMu (which
// retention, truncation and Close also take) and the segment list's lock
// for the moment the list changes.

// File suffixes of the swap protocol, as Kafka names them.
const (
	cleanedSuffix = ".cleaned"
	swapSuffix    = ".swap"
	deletedSuffix = ".deleted"
)

// The steps of a swap, at which tests stop it as a crash would.
const (
	stepCleaned      = "cleaned"       // .cleaned files written and fsynced
	stepSwapIndexes  = "swap-indexes"  // indexes renamed to .swap
	stepSwap         = "swap"          // the log renamed to .swap: committed
	stepSwapped      = "swapped"       // the segment list changed
	stepDeleted      = "deleted"       // the other replaced segments deleted
	stepRenamedIndex = "renamed-index" // indexes renamed to their final names
	stepDone         = "done"          // the log renamed to its final name
	// stepPassEnd is not a step of a swap: the pass, its swaps done, is
	// about to move the first dirty offset.
	stepPassEnd = "pass-end"
)

var cleanSteps = []string{stepCleaned, stepSwapIndexes, stepSwap, stepSwapped, stepDeleted, stepRenamedIndex, stepDone}

// errCleanAborted stops a pass that retention, truncation, Close or the
// cleaner's stop channel overtook. Nothing it did is lost or half done: what
// it had swapped in stays, the rest is dropped and redone by a later pass.
var errCleanAborted = errors.New("segment: cleaning pass aborted")

// Variables so that tests can make batches straddle reads and exceed the
// bound.
var (
	// cleanerReadChunk is how much of a segment a pass reads at a time.
	cleanerReadChunk = 1 << 20
	// cleanerMaxDecompressed bounds the records of one batch once
	// decompressed. Produce does not decompress what it stores, so a stored
	// batch may claim any size; one past this bound is kept whole, uncleaned.
	cleanerMaxDecompressed = 64 << 20
)

const (
	// cleanerWriteChunk is how much cleaned output is buffered per write.
	cleanerWriteChunk = 1 << 20
	// Byte offsets of RecordBatch v2 fields the cleaner rewrites (drawn in
	// package batch's doc).
	batchLengthOffset  = 8
	maxTimestampOffset = 35
	recordCountOffset  = 57
)

// LogToClean is what the cleaner knows of a log before it cleans it (Kafka's
// LogToClean): where its clean part ends, where cleaning must stop, and how
// many bytes of closed segments lie on each side.
type LogToClean struct {
	// FirstDirtyOffset is where the clean part ends (the cleaner checkpoint,
	// or the log start when that is out of range).
	FirstDirtyOffset int64
	// FirstUncleanableOffset is where cleaning stops: the active segment's
	// base, or that of the first segment not min.compaction.lag.ms old.
	FirstUncleanableOffset int64
	// CleanBytes and DirtyBytes are the sizes of the closed segments wholly
	// below the first dirty offset, and of the others below the first
	// uncleanable offset.
	CleanBytes, DirtyBytes int64
	// CleanableRatio is DirtyBytes / (CleanBytes + DirtyBytes), what
	// min.cleanable.dirty.ratio is compared with.
	CleanableRatio float64
	// OverdueMs is how long ago max.compaction.lag.ms passed for the
	// oldest cleanable dirty segment (by its first batch's timestamp), or
	// 0 if it has not: a log with OverdueMs > 0 is cleaned whatever its
	// ratio, the most overdue first (Kafka's maxCompactionDelay).
	OverdueMs int64
}

// LogToClean returns the log's cleaning state at time now.
func (l *Log) LogToClean(now time.Time) LogToClean {
	cfg := l.Config()
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.logToCleanLocked(&cfg, now.UnixMilli())
}

func (l *Log) logToCleanLocked(cfg *Config, nowMs int64) LogToClean {
	segs := l.mu.segments
	closed := segs[:len(segs)-1]
	fd, _ := l.CleanerCheckpoint()
	if fd < l.mu.logStart || fd > l.mu.logEnd {
		fd = l.mu.logStart // as Kafka: an invalid checkpoint restarts at the log start
	}
	fu := segs[len(segs)-1].base
	if cfg.MinCompactionLagMs > 0 {
		for _, s := range closed {
			if s.next > fd && s.largestTimestamp() > nowMs-cfg.MinCompactionLagMs {
				fu = min(fu, s.base)
				break
			}
		}
	}
	t := LogToClean{FirstDirtyOffset: fd, FirstUncleanableOffset: fu}
	for _, s := range closed {
		if s.next <= fd {
			t.CleanBytes += s.size
		} else if s.base < fu {
			t.DirtyBytes += s.size
		}
	}
	if total := t.CleanBytes + t.DirtyBytes; total > 0 {
		t.CleanableRatio = float64(t.DirtyBytes) / float64(total)
	}
	if cfg.MaxCompactionLagMs < math.MaxInt64 {
		for _, s := range closed {
			if s.next <= fd || s.base >= fu {
				continue
			}
			first := s.ix.firstTs
			if first < 0 {
				first = s.largestTimestamp()
			}
			if late := nowMs - first - cfg.MaxCompactionLagMs; first <= nowMs && late > 0 {
				t.OverdueMs = late
			}
			break
		}
	}
	return t
}

// NeedsCleaning reports whether a compacting log is dirty enough at time now
// to be cleaned: min.cleanable.dirty.ratio reached or max.compaction.lag.ms
// passed, with something to clean. A log whose topic's config is not known
// yet (see ManagerOptions.ConfigFor) never is.
func (l *Log) NeedsCleaning(now time.Time) bool {
	cfg := l.Config()
	if !cfg.compacts() || cfg.provisional {
		return false
	}
	t := l.LogToClean(now)
	return t.DirtyBytes > 0 && t.FirstDirtyOffset < t.FirstUncleanableOffset &&
		(t.CleanableRatio >= cfg.MinCleanableDirtyRatio || t.OverdueMs > 0)
}

// CleanerCheckpoint returns the offset below which the log is clean, and
// whether the log has a cleaner-offset-checkpoint entry at all.
func (l *Log) CleanerCheckpoint() (int64, bool) {
	l.cleaner.Lock()
	defer l.cleaner.Unlock()
	return l.cleaner.firstDirty, l.cleaner.listed
}

// listCleanerCheckpoint gives the log a cleaner checkpoint entry if it has
// none, and reports whether it did: the entry must be on disk before the
// first cleaned segment is, so that recovery knows to expect gaps. If
// writing it fails, the caller takes it back with unlistCleanerCheckpoint.
func (l *Log) listCleanerCheckpoint() bool {
	l.cleaner.Lock()
	defer l.cleaner.Unlock()
	if l.cleaner.listed {
		return false
	}
	l.cleaner.listed = true
	return true
}

func (l *Log) unlistCleanerCheckpoint() {
	l.cleaner.Lock()
	l.cleaner.listed = false
	l.cleaner.Unlock()
}

// Cleaned returns a channel that is closed when the cleaning pass over the
// log after this call ends, with or without success. A caller waiting for
// the log to be clean to some offset checks, then waits on the channel it
// took before checking.
func (l *Log) Cleaned() <-chan struct{} {
	l.cleaner.Lock()
	defer l.cleaner.Unlock()
	return l.cleaner.done
}

// endCleaningPass ends a pass that began at truncation count gen, moving
// the first dirty offset to firstDirty if it succeeded. A truncation since,
// even one after the pass's last swap, lowered the first dirty offset to its
// new log end, which the pass's end must not raise back: the offsets between
// may be written again, dirty. swapMu, under which truncations count and
// Truncate lowers the first dirty offset, makes the check and the move one.
func (l *Log) endCleaningPass(firstDirty int64, ok bool, gen uint64) {
	l.swapMu.Lock()
	defer l.swapMu.Unlock()
	l.cleaner.Lock()
	if ok && l.truncations == gen {
		l.cleaner.firstDirty, l.cleaner.listed = firstDirty, true
	}
	close(l.cleaner.done)
	l.cleaner.done = make(chan struct{})
	l.cleaner.Unlock()
}

// CleanStats describes one cleaning pass.
type CleanStats struct {
	// FirstDirtyOffset is where the pass's offset map started; EndOffset is
	// where it ended, the log's new first dirty offset.
	FirstDirtyOffset, EndOffset int64
	// MapFull says the offset map filled before the first uncleanable
	// offset: the pass cleaned up to EndOffset only.
	MapFull bool
	// MapKeys is how many distinct keys the map held.
	MapKeys int
	// SegmentsCleaned were rewritten into SegmentsWritten segments.
	SegmentsCleaned, SegmentsWritten int
	BytesRead, BytesWritten          int64
	// RecordsRead and RecordsKept count the records of data batches.
	RecordsRead, RecordsKept int64
	// TombstonesDropped counts tombstones whose delete horizon had passed.
	TombstonesDropped int64
	// BatchesMarked counts batches stamped with a delete horizon: they kept
	// tombstones, which a pass from then on may drop.
	BatchesMarked int64
	// BatchesDropped were left with no records.
	BatchesDropped int64
	// BatchesUndecodable could not be decoded (beyond the decompression
	// bound, or malformed inside a good CRC) and were kept whole.
	BatchesUndecodable int64
}

// Cleaner runs cleaning passes, one at a time, reusing its offset map and
// buffers from pass to pass and log to log: Kafka's cleaner thread. The
// Manager owns one; tests make their own.
type Cleaner struct {
	cfg    CleanerConfig
	logger *slog.Logger
	m      *offsetMap

	rd      batchReader
	scratch []byte       // decompressed records
	recs    []byte       // re-encoded records that stay
	keep    []bool       // per record of the batch at hand
	rec     batch.Record // the record being read
	group   cleanGroup
}

// NewCleaner returns a cleaner whose offset map may take up to
// cfg.DedupeBufferSize bytes, allocated at the first pass that needs it.
func NewCleaner(cfg CleanerConfig, logger *slog.Logger) *Cleaner {
	cfg.EnsureDefaults()
	if logger == nil {
		logger = slog.Default()
	}
	return &Cleaner{cfg: cfg, logger: logger, m: newOffsetMap(cfg.DedupeBufferSize)}
}

// cleanSource is a closed segment as the pass saw it, with a reference on
// its file held until the pass ends.
type cleanSource struct {
	s                *segment
	base, next, size int64
	largestTs        int64
}

// cleanSnapshot is what a pass reads.
type cleanSnapshot struct {
	srcs     []cleanSource
	gen      uint64 // the log's truncation count
	toClean  LogToClean
	dirtyPos int64 // position of the batch holding the first dirty offset
}

func (sn *cleanSnapshot) release() {
	for _, src := range sn.srcs {
		src.s.file.Release()
	}
	sn.srcs = nil
}

func (l *Log) cleanSnapshot(cfg *Config, nowMs int64) (*cleanSnapshot, error) {
	sn := &cleanSnapshot{}
	l.swapMu.Lock()
	defer l.swapMu.Unlock()
	sn.gen = l.truncations
	l.mu.RLock()
	defer l.mu.RUnlock()
	if err := l.usableLocked(); err != nil {
		return nil, err
	}
	sn.toClean = l.logToCleanLocked(cfg, nowMs)
	segs := l.mu.segments
	for _, s := range segs[:len(segs)-1] {
		s.file.acquire()
		sn.srcs = append(sn.srcs, cleanSource{s: s, base: s.base, next: s.next, size: s.size, largestTs: s.largestTimestamp()})
	}
	fd := sn.toClean.FirstDirtyOffset
	for _, src := range sn.srcs {
		if src.next > fd {
			pos, _, _, err := src.s.find(fd, src.size)
			if err != nil {
				sn.release()
				return nil, err
			}
			sn.dirtyPos = pos
			break
		}
	}
	return sn, nil
}

// Clean runs one cleaning pass over l at time now (the clock that stamps
// delete horizons and decides which have passed), whatever its dirty ratio. It
// stops early, returning errCleanAborted, when stop is closed or the log is
// closed or truncated meanwhile. A read or write error fails the log, as any
// storage error does; a malformed batch is ErrCorruption and leaves the log
// as it was.
func (c *Cleaner) Clean(l *Log, now time.Time, stop <-chan struct{}) (CleanStats, error) {
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	if l.cleanAbort.Load() {
		return CleanStats{}, ErrClosed
	}
	if err := l.usable(); err != nil {
		return CleanStats{}, err
	}
	cfg := l.Config()
	if !cfg.compacts() {
		return CleanStats{}, fmt.Errorf("segment: %s: cleanup.policy=%s does not compact", l.dir, cfg.CleanupPolicy)
	}
	if cfg.provisional {
		return CleanStats{}, fmt.Errorf("segment: %s: its topic's config is not known yet", l.dir)
	}
	nowMs := now.UnixMilli()
	sn, err := l.cleanSnapshot(&cfg, nowMs)
	if err != nil {
		return CleanStats{}, err
	}
	defer sn.release()
	fd, fu := sn.toClean.FirstDirtyOffset, sn.toClean.FirstUncleanableOffset
	st := CleanStats{FirstDirtyOffset: fd, EndOffset: fd}
	ok := false
	defer func() {
		_ = l.cleanStep(stepPassEnd) // nothing is left to stop
		l.endCleaningPass(st.EndOffset, ok, sn.gen)
	}()
	// With nothing dirty (the Manager does not ask for such a pass, but a
	// caller may), the map stays empty and the pass only drops tombstones
	// whose delete horizon has passed since the last one.
	end, limit := fd, min(fd, fu)
	if fd < fu {
		var err error
		if end, err = c.buildOffsetMap(l, sn, stop, &st); err != nil {
			return st, c.passError(l, sn, err)
		}
		limit = end
	} else {
		c.m.reset(0)
	}
	if err := c.cleanSegments(l, sn, &cfg, end, limit, nowMs, stop, &st); err != nil {
		return st, c.passError(l, sn, err)
	}
	st.EndOffset, ok = end, true
	if st.BatchesUndecodable > 0 {
		c.logger.Warn("kept batches the cleaner could not decode whole", "log", l.dir, "batches", st.BatchesUndecodable,
			"max_decompressed_bytes", cleanerMaxDecompressed)
	}
	return st, nil
}

// passError turns a failed read into an abort when the log was truncated or
// closed under the pass (the segment it read may have been cut, or cut and
// written again, and then reads as damage), into a log failure when it is a
// storage error, and leaves damage (ErrCorruption) and a map too small
// (cleanerError) as they are: the log stays usable.
func (c *Cleaner) passError(l *Log, sn *cleanSnapshot, err error) error {
	if errors.Is(err, errCleanAborted) || errors.Is(err, ErrLogFailed) || errors.Is(err, ErrClosed) {
		return err
	}
	l.swapMu.Lock()
	overtaken := l.truncations != sn.gen || l.cleanAbort.Load()
	l.swapMu.Unlock()
	if overtaken {
		return errCleanAborted
	}
	var cerr *cleanerError
	if errors.Is(err, ErrCorruption) || errors.As(err, &cerr) {
		return err
	}
	return l.fail(err)
}

// cleanerError is a pass that cannot proceed for a reason other than the
// disk: the log stays usable.
type cleanerError struct{ msg string }

func (e *cleanerError) Error() string { return e.msg }

func (c *Cleaner) stopped(l *Log, stop <-chan struct{}) bool {
	if l.cleanAbort.Load() {
		return true
	}
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// records returns the (decompressed) records section of h.
func (c *Cleaner) records(h batch.Header) ([]byte, error) {
	if h.Codec() == batch.CodecNone {
		return h.Records(), nil
	}
	out, err := batch.Decompress(h.Codec(), c.scratch[:0], h.Records(), cleanerMaxDecompressed)
	c.scratch = out[:0]
	return out, err
}

// buildOffsetMap fills the offset map from the dirty part, the records at
// offsets [first dirty, first uncleanable), and returns the offset it covers
// up to: the first uncleanable offset, or, when the map fills, the end of the
// last batch that fit. As Kafka's buildOffsetMapForSegment, it maps no record
// below the first dirty offset, which may lie inside a batch when it is a log
// start a DeleteRecords raised: those records are deleted, and the map, sized
// by the dirty offsets, has no room for them.
func (c *Cleaner) buildOffsetMap(l *Log, sn *cleanSnapshot, stop <-chan struct{}, st *CleanStats) (int64, error) {
	fd, fu := sn.toClean.FirstDirtyOffset, sn.toClean.FirstUncleanableOffset
	c.m.reset(fu - fd)
	end := fd
	first := true
	for _, src := range sn.srcs {
		if src.next <= fd || src.base >= fu {
			continue
		}
		from := int64(0)
		if first {
			from, first = sn.dirtyPos, false
		}
		c.rd.reset(src.s.file, from, src.size)
		for {
			h, pos, ok := c.rd.next()
			if !ok {
				break
			}
			if h.LastOffset() < fd {
				continue
			}
			if c.stopped(l, stop) {
				return end, errCleanAborted
			}
			if err := validateStored(h, true); err != nil {
				return end, fmt.Errorf("%w: %s at position %d: %w", ErrCorruption, src.s.file.Name(), pos, err)
			}
			if !h.Control() {
				// The records of the batch at or after fd: at most
				// its record count, and at most the offsets it spans
				// from fd.
				n := min(int64(h.RecordCount()), h.LastOffset()-max(h.BaseOffset(), fd)+1)
				if !c.m.room(int(n)) {
					st.MapFull, st.MapKeys = true, c.m.size
					if end == fd {
						return end, &cleanerError{fmt.Sprintf("segment: %s: log.cleaner.dedupe.buffer.size=%d holds %d keys, too few for the %d records of the batch at offset %d",
							l.dir, c.cfg.DedupeBufferSize, c.m.maxEntries, n, h.BaseOffset())}
					}
					return end, nil
				}
				c.mapBatch(h, fd)
			}
			end = h.NextOffset()
		}
		if err := c.rd.err; err != nil {
			return end, err
		}
	}
	st.MapKeys = c.m.size
	return fu, nil
}

// mapBatch records the keys of the records of one batch at or after offset
// from. A batch that does not decode is left out: its records are kept
// whole by the rewrite, and the older records of its keys too, which only
// leaves the log less clean.
func (c *Cleaner) mapBatch(h batch.Header, from int64) {
	records, err := c.records(h)
	if err != nil {
		return
	}
	base := h.BaseOffset()
	rr := batch.NewRecordReader(records, h.RecordCount())
	for rr.Next(&c.rec) {
		if off := base + int64(c.rec.OffsetDelta); c.rec.Key != nil && off >= from {
			c.m.put(c.rec.Key, off)
		}
	}
}

// What the cleaner's rule does with one record.
const (
	recordKept = iota
	recordSuperseded
	recordTombstoneExpired
)

// retain is the cleaner's rule for one record; dropTombstones says its
// batch's delete horizon has passed.
func (c *Cleaner) retain(offset int64, key, value []byte, end int64, dropTombstones bool) int {
	if key == nil {
		return recordKept
	}
	if newest, ok := c.m.get(key); ok && offset < newest {
		return recordSuperseded
	}
	// A tombstone past the map's end stays: the older records of its key
	// below the end were not compared with it, and would come back.
	if value == nil && dropTombstones && offset < end {
		return recordTombstoneExpired
	}
	return recordKept
}

// filterBatch appends to dst what of batch h stays, and counts what it
// dropped in st. At nowMs, the tombstones of a batch stamped with a delete
// horizon go once it has passed; a batch below end that keeps tombstones and
// has no horizon yet is stamped with horizon (KIP-534, see the top of this
// file).
func (c *Cleaner) filterBatch(dst []byte, h batch.Header, end, nowMs, horizon int64, st *CleanStats) []byte {
	if h.Control() {
		return append(dst, h...)
	}
	records, err := c.records(h)
	if err != nil {
		st.BatchesUndecodable++
		return append(dst, h...)
	}
	stamped, marked := h.DeleteHorizon()
	dropTombstones := marked && nowMs >= stamped
	base, count := h.BaseOffset(), h.RecordCount()
	c.keep = c.keep[:0]
	kept, tombstones, keptTombstones := 0, 0, 0
	var maxTs int64 = -1 // the kept records' largest timestamp; -1 is Kafka's NO_TIMESTAMP
	rr := batch.NewRecordReader(records, count)
	for rr.Next(&c.rec) {
		verdict := c.retain(base+int64(c.rec.OffsetDelta), c.rec.Key, c.rec.Value, end, dropTombstones)
		c.keep = append(c.keep, verdict == recordKept)
		switch verdict {
		case recordKept:
			kept++
			maxTs = max(maxTs, h.BaseTimestamp()+c.rec.TimestampDelta)
			if c.rec.Key != nil && c.rec.Value == nil {
				keptTombstones++
			}
		case recordTombstoneExpired:
			tombstones++
		}
	}
	if rr.Err() != nil {
		st.BatchesUndecodable++
		return append(dst, h...)
	}
	st.RecordsRead += int64(len(c.keep))
	st.RecordsKept += int64(kept)
	st.TombstonesDropped += int64(tombstones)
	// The map end is a batch boundary: a batch below it was compared whole.
	mark := !marked && keptTombstones > 0 && h.LastOffset() < end
	// A CreateTime batch's max timestamp is its records' (Kafka's cleaner
	// rebuilds the batches it thins so), which the time index, the
	// segment's largest timestamp and ListOffsets go by: one the cleaner
	// removed must not stay in the header. A LogAppendTime batch's is the
	// append time of every record and stays. A batch kept whole whose
	// header disagrees with its records (thinned by a cleaner that kept
	// the old max timestamp) has it put right.
	setMaxTs := !h.LogAppendTime() && maxTs != h.MaxTimestamp()
	switch {
	case kept == len(c.keep) && !mark && !setMaxTs:
		return append(dst, h...)
	case kept == 0:
		st.BatchesDropped++
		return dst
	case kept == len(c.keep) && !mark:
		start := len(dst)
		dst = append(dst, h...)
		batch.Header(dst[start:]).SetMaxTimestamp(maxTs)
		return dst
	}
	// Record timestamps are baseTimestamp + timestampDelta: with the
	// horizon in baseTimestamp's place, the deltas move the other way.
	var rebase int64
	if mark {
		rebase = h.BaseTimestamp() - horizon
	}
	c.recs = c.recs[:0]
	rr = batch.NewRecordReader(records, count)
	for i := 0; rr.Next(&c.rec); i++ {
		if c.keep[i] {
			c.rec.TimestampDelta += rebase
			c.recs = batch.AppendRecord(c.recs, &c.rec)
		}
	}
	start := len(dst)
	dst = append(dst, h[:batch.HeaderSize]...)
	if dst, err = batch.Compress(h.Codec(), dst, c.recs); err != nil {
		st.BatchesUndecodable++
		return append(dst[:start], h...)
	}
	nh := batch.Header(dst[start:])
	binary.BigEndian.PutUint32(nh[batchLengthOffset:], uint32(len(nh)-batch.LengthOverhead))
	binary.BigEndian.PutUint32(nh[recordCountOffset:], uint32(kept))
	if setMaxTs {
		binary.BigEndian.PutUint64(nh[maxTimestampOffset:], uint64(maxTs))
	}
	if mark {
		nh.SetDeleteHorizon(horizon)
		st.BatchesMarked++
	}
	nh.SetCRC()
	return dst
}

// cleanGroup is the output of one group of source segments being merged into
// one cleaned segment.
type cleanGroup struct {
	srcs     []cleanSource
	lastKept int // index in srcs of the last source with output; -1 for none
	f        *os.File
	written  int64  // bytes written to f
	pending  []byte // output not yet written
	next     int64  // offset after the last output batch
	x        indexer
	offs     []uint32 // offset index entries: rel, pos pairs
	times    []int64  // time index entries: ts, rel pairs
}

func (g *cleanGroup) reset(interval int) {
	g.srcs = g.srcs[:0]
	g.lastKept = -1
	g.f = nil
	g.written = 0
	g.pending = g.pending[:0]
	g.x = newIndexer(interval)
	g.offs, g.times = g.offs[:0], g.times[:0]
}

func (g *cleanGroup) base() int64 { return g.srcs[0].base }

func (g *cleanGroup) outBytes() int64 { return g.written + int64(len(g.pending)) }

// admits is Kafka's grouping rule: a segment joins the group if the group's
// output so far and the whole segment (its size before cleaning, so the sum
// can only shrink) fit in segment.bytes, and its offsets fit the 32-bit
// relative offsets of one segment.
func (g *cleanGroup) admits(src cleanSource, cfg *Config) bool {
	if len(g.srcs) == 0 {
		return true
	}
	return g.outBytes()+src.size <= cfg.SegmentBytes && src.next-1-g.base() <= math.MaxInt32
}

// cleanSegments rewrites every closed segment whose base is below limit,
// with the map covering offsets up to end.
func (c *Cleaner) cleanSegments(l *Log, sn *cleanSnapshot, cfg *Config, end, limit, nowMs int64, stop <-chan struct{}, st *CleanStats) error {
	// The delete horizon this pass stamps; it saturates, so that a
	// retention of centuries keeps tombstones instead of wrapping around.
	horizon := nowMs + cfg.DeleteRetentionMs
	if horizon < nowMs {
		horizon = math.MaxInt64
	}
	g := &c.group
	g.reset(cfg.IndexIntervalBytes)
	defer c.dropGroupFile(l, g)
	for _, src := range sn.srcs {
		if src.base >= limit {
			break
		}
		if !g.admits(src, cfg) {
			if err := c.closeGroup(l, sn, cfg, g, st); err != nil {
				return err
			}
			if !g.admits(src, cfg) {
				if err := c.commitEach(l, sn, cfg, g, st); err != nil {
					return err
				}
			}
		}
		g.srcs = append(g.srcs, src)
		c.rd.reset(src.s.file, 0, src.size)
		output := false
		for {
			h, pos, ok := c.rd.next()
			if !ok {
				break
			}
			if c.stopped(l, stop) {
				return errCleanAborted
			}
			if err := validateStored(h, true); err != nil {
				return fmt.Errorf("%w: %s at position %d: %w", ErrCorruption, src.s.file.Name(), pos, err)
			}
			st.BytesRead += int64(len(h))
			at := len(g.pending)
			g.pending = c.filterBatch(g.pending, h, end, nowMs, horizon, st)
			if len(g.pending) == at {
				continue
			}
			output = true
			oh := batch.Header(g.pending[at:])
			opos := g.written + int64(at)
			off, tim, ts, tsOff := g.x.step(opos, int64(len(oh)), oh.BaseOffset(), oh.MaxTimestamp())
			if off {
				g.offs = append(g.offs, uint32(oh.BaseOffset()-g.base()), uint32(opos))
			}
			if tim {
				g.times = append(g.times, ts, tsOff-g.base())
			}
			g.next = oh.NextOffset()
			if len(g.pending) >= cleanerWriteChunk {
				if err := c.flushGroup(l, g, st); err != nil {
					return err
				}
			}
		}
		if err := c.rd.err; err != nil {
			return err
		}
		if output {
			g.lastKept = len(g.srcs) - 1
		}
		st.SegmentsCleaned++
	}
	if err := c.closeGroup(l, sn, cfg, g, st); err != nil {
		return err
	}
	return c.commitEach(l, sn, cfg, g, st)
}

// closeGroup swaps the group's output in for its sources up to the last
// that had output, and leaves the group holding the sources after it, which
// had none (a fresh group whose output is still empty). It keeps the swap
// exact: recovery completes an interrupted swap by deleting the segments
// whose base offsets lie between the cleaned segment's base and its next
// offset, so the last segment a cleaned segment replaces must have kept a
// record.
func (c *Cleaner) closeGroup(l *Log, sn *cleanSnapshot, cfg *Config, g *cleanGroup, st *CleanStats) error {
	if g.lastKept < 0 {
		return nil
	}
	n := g.lastKept + 1
	if err := c.commit(l, sn, g, n, st); err != nil {
		return err
	}
	rest := slices.Clone(g.srcs[n:])
	g.reset(cfg.IndexIntervalBytes)
	g.srcs = append(g.srcs, rest...)
	return nil
}

// commitEach replaces each source of an output-less group by an empty
// segment of its own, and empties the group.
func (c *Cleaner) commitEach(l *Log, sn *cleanSnapshot, cfg *Config, g *cleanGroup, st *CleanStats) error {
	srcs := slices.Clone(g.srcs)
	for _, src := range srcs {
		g.reset(cfg.IndexIntervalBytes)
		g.srcs = append(g.srcs, src)
		if err := c.commit(l, sn, g, 1, st); err != nil {
			return err
		}
	}
	g.reset(cfg.IndexIntervalBytes)
	return nil
}

// segmentPaths are the final names of a segment's three files.
func segmentPaths(dir string, base int64) (log, index, timeIndex string) {
	name := filepath.Join(dir, segmentName(base))
	return name + logSuffix, name + indexSuffix, name + timeIndexSuffix
}

// flushGroup writes the group's pending output to its .cleaned file.
func (c *Cleaner) flushGroup(l *Log, g *cleanGroup, st *CleanStats) error {
	if g.f == nil {
		logPath, _, _ := segmentPaths(l.dir, g.base())
		f, err := os.OpenFile(logPath+cleanedSuffix, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		g.f = f
	}
	if len(g.pending) == 0 {
		return nil
	}
	if _, err := l.io.writeAt(g.f, g.pending, g.written); err != nil {
		return err
	}
	g.written += int64(len(g.pending))
	st.BytesWritten += int64(len(g.pending))
	g.pending = g.pending[:0]
	return nil
}

// dropGroupFile removes the .cleaned file of a group a pass gives up on.
func (c *Cleaner) dropGroupFile(l *Log, g *cleanGroup) {
	if g.f == nil {
		return
	}
	name := g.f.Name()
	g.f.Close()
	g.f = nil
	os.Remove(name)
}

// commit writes the cleaned segment of the group's first n sources (all its
// output belongs to them) with its indexes, fsyncs it, and swaps it in.
func (c *Cleaner) commit(l *Log, sn *cleanSnapshot, g *cleanGroup, n int, st *CleanStats) error {
	if err := c.flushGroup(l, g, st); err != nil {
		return err
	}
	base := g.base()
	logPath, indexPath, timePath := segmentPaths(l.dir, base)
	if err := l.io.datasync(g.f); err != nil {
		return err
	}
	srcs := g.srcs[:n]
	if g.x.maxTs < 0 {
		// No timestamp in the output: retention falls back on the file's
		// modification time, which must be the replaced segments', not now.
		var newest int64 = math.MinInt64
		for _, src := range srcs {
			newest = max(newest, src.largestTs)
		}
		if newest > 0 && newest < math.MaxInt64 {
			t := time.UnixMilli(newest)
			if err := os.Chtimes(logPath+cleanedSuffix, t, t); err != nil {
				return err
			}
		}
	}
	if ok, ts, tsOff := g.x.final(); ok {
		g.times = append(g.times, ts, tsOff-base)
	}
	offBuf := make([]byte, 0, len(g.offs)/2*offsetEntrySize)
	for i := 0; i < len(g.offs); i += 2 {
		offBuf = binary.BigEndian.AppendUint32(offBuf, g.offs[i])
		offBuf = binary.BigEndian.AppendUint32(offBuf, g.offs[i+1])
	}
	timeBuf := make([]byte, 0, len(g.times)/2*timeEntrySize)
	for i := 0; i < len(g.times); i += 2 {
		timeBuf = binary.BigEndian.AppendUint64(timeBuf, uint64(g.times[i]))
		timeBuf = binary.BigEndian.AppendUint32(timeBuf, uint32(g.times[i+1]))
	}
	ns := &segment{base: base, file: newFileNamed(g.f, logPath), size: g.written, next: base, maxTimestamp: g.x.maxTs, ix: g.x}
	g.f = nil // the segment owns it now
	if g.written > 0 {
		ns.next = g.next
	}
	var err error
	if ns.index, err = l.writeCleanedIndex(indexPath, offBuf, offsetEntrySize); err == nil {
		ns.timeIndex, err = l.writeCleanedIndex(timePath, timeBuf, timeEntrySize)
	}
	if err != nil {
		ns.release()
		removeCleaned(logPath, indexPath, timePath)
		return err
	}
	if err := l.cleanStep(stepCleaned); err != nil {
		return err
	}
	if err := l.swapCleaned(srcs, sn.gen, ns); err != nil {
		return err
	}
	st.SegmentsWritten++
	return nil
}

func removeCleaned(paths ...string) {
	for _, p := range paths {
		os.Remove(p + cleanedSuffix)
	}
}

// writeCleanedIndex writes a cleaned segment's index to path.cleaned,
// fsyncs it and maps it. Its messages name the final path.
func (l *Log) writeCleanedIndex(path string, data []byte, entrySize int) (*mmapIndex, error) {
	f, err := os.OpenFile(path+cleanedSuffix, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	if len(data) > 0 {
		_, err = l.io.writeAt(f, data, 0)
	}
	if err == nil {
		err = l.io.datasync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	ix, err := openIndex(path+cleanedSuffix, entrySize, 0, false)
	if err != nil {
		return nil, err
	}
	ix.path = path
	return ix, nil
}

func (l *Log) cleanStep(step string) error {
	if l.cleanHook == nil {
		return nil
	}
	return l.cleanHook(step)
}

// swapCleaned replaces srcs, consecutive closed segments of the log, by ns,
// whose files are named <base>.*.cleaned, crash-safely:
//
//  1. rename the indexes, then the log, from .cleaned to .swap, and fsync
//     the directory. The log's .swap file is the commit point: from then on
//     recovery completes the swap (completeSwaps).
//  2. put ns in the segment list in place of srcs.
//  3. rename the other replaced segments' files *.deleted (removed after
//     file.delete.delay.ms); fsync the directory.
//  4. rename the indexes, then the log, to their final names, replacing the
//     first replaced segment's files; fsync the directory.
//
// The replaced segments' files stay open for readers that hold regions of
// them, and close when the last is released. If retention, truncation or
// Close changed the log since the pass's snapshot, nothing is swapped.
func (l *Log) swapCleaned(srcs []cleanSource, gen uint64, ns *segment) error {
	logPath, indexPath, timePath := segmentPaths(l.dir, ns.base)
	cfg := l.Config()
	delay := cfg.fileDeleteDelay()
	l.swapMu.Lock()
	defer l.swapMu.Unlock()
	l.mu.RLock()
	i := slices.Index(l.mu.segments, srcs[0].s)
	valid := l.usableLocked() == nil && !l.cleanAbort.Load() && l.truncations == gen &&
		i >= 0 && i+len(srcs) < len(l.mu.segments) // the active segment is never replaced
	for j := 1; valid && j < len(srcs); j++ {
		valid = l.mu.segments[i+j] == srcs[j].s
	}
	l.mu.RUnlock()
	if !valid {
		ns.release()
		removeCleaned(logPath, indexPath, timePath)
		return errCleanAborted
	}
	for _, p := range []string{indexPath, timePath} {
		if err := os.Rename(p+cleanedSuffix, p+swapSuffix); err != nil {
			return l.fail(err)
		}
	}
	if err := l.cleanStep(stepSwapIndexes); err != nil {
		return err
	}
	if err := os.Rename(logPath+cleanedSuffix, logPath+swapSuffix); err != nil {
		return l.fail(err)
	}
	if err := syncDir(l.dir); err != nil {
		return l.fail(err)
	}
	if err := l.cleanStep(stepSwap); err != nil {
		return err
	}

	l.mu.Lock()
	l.mu.segments = slices.Concat(l.mu.segments[:i], []*segment{ns}, l.mu.segments[i+len(srcs):])
	l.mu.Unlock()
	if err := l.cleanStep(stepSwapped); err != nil {
		return err
	}

	for _, src := range srcs[1:] {
		if err := l.retire(src.s, delay); err != nil {
			return l.fail(err)
		}
	}
	if len(srcs) > 1 {
		if err := syncDir(l.dir); err != nil {
			return l.fail(err)
		}
	}
	if err := l.cleanStep(stepDeleted); err != nil {
		return err
	}
	for _, p := range []string{indexPath, timePath} {
		if err := os.Rename(p+swapSuffix, p); err != nil {
			return l.fail(err)
		}
	}
	if err := l.cleanStep(stepRenamedIndex); err != nil {
		return err
	}
	if err := os.Rename(logPath+swapSuffix, logPath); err != nil {
		return l.fail(err)
	}
	if err := syncDir(l.dir); err != nil {
		return l.fail(err)
	}
	if err := l.cleanStep(stepDone); err != nil {
		return err
	}
	// No reader reaches the replaced segments through the list any more;
	// those holding regions of their files keep them open until released.
	for _, src := range srcs {
		src.s.release()
	}
	return nil
}

// completeSwaps finishes, at open, what a crash interrupted (doc.go): a
// .cleaned file was never committed and goes; a <base>.log.swap was, and
// replaces the segments whose base offsets lie in [base, its next offset),
// after which its files take their final names. Index .swap files without a
// log .swap belong to an uncommitted swap and go too.
func (l *Log) completeSwaps() error {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return err
	}
	var swaps, logs []int64
	changed := false
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, cleanedSuffix) {
			if err := os.Remove(filepath.Join(l.dir, name)); err != nil {
				return err
			}
			changed = true
		}
		if b, ok := parseSegmentName(name, logSuffix+swapSuffix); ok {
			swaps = append(swaps, b)
		}
		if b, ok := parseSegmentName(name, logSuffix); ok {
			logs = append(logs, b)
		}
	}
	slices.Sort(swaps)
	for _, b := range swaps {
		logPath, indexPath, timePath := segmentPaths(l.dir, b)
		next, err := swapNextOffset(logPath + swapSuffix)
		if err != nil {
			return err
		}
		for _, o := range logs {
			if o > b && o < next {
				oLog, oIndex, oTime := segmentPaths(l.dir, o)
				for _, p := range []string{oLog, oIndex, oTime} {
					if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
						return err
					}
				}
			}
		}
		for _, p := range []string{indexPath, timePath} {
			if err := os.Rename(p+swapSuffix, p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		if err := os.Rename(logPath+swapSuffix, logPath); err != nil {
			return err
		}
		changed = true
		l.logger.Warn("completed the swap of a cleaned segment that a crash interrupted", "segment", b, "replaced_below", next)
	}
	for _, e := range entries {
		for _, suf := range []string{indexSuffix + swapSuffix, timeIndexSuffix + swapSuffix} {
			if b, ok := parseSegmentName(e.Name(), suf); ok && !slices.Contains(swaps, b) {
				if err := os.Remove(filepath.Join(l.dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
					return err
				}
				changed = true
			}
		}
	}
	if changed {
		return syncDir(l.dir)
	}
	return nil
}

// swapNextOffset reads the batch headers of a committed .swap file (fsynced
// before it was named so) and returns the offset after its last batch, or
// its base when it is empty.
func swapNextOffset(path string) (int64, error) {
	base, _ := parseSegmentName(filepath.Base(strings.TrimSuffix(path, swapSuffix)), logSuffix)
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	s := &segment{base: base, file: &File{f: f, name: path}}
	next := base
	for pos := int64(0); pos < st.Size(); {
		h, err := s.readHead(pos, st.Size())
		if err != nil {
			return 0, err
		}
		next, pos = h.last+1, pos+h.size
	}
	return next, nil
}

// batchReader hands out the whole batches of a byte range of a segment
// file, in place, reading the file in large sequential chunks. A batch
// stays valid until the next call.
type batchReader struct {
	f        *os.File
	name     string
	pos, end int64 // file position of buf[off], end of the range
	buf      []byte
	off, n   int // unread bytes: buf[off:n]
	err      error
}

func (r *batchReader) reset(f *File, from, end int64) {
	r.f, r.name = f.f, f.Name()
	r.pos, r.end = from, end
	r.off, r.n, r.err = 0, 0, nil
	if r.buf == nil {
		r.buf = make([]byte, cleanerReadChunk)
	}
}

// next returns the next batch and its position; false at the end of the
// range or on an error, which err keeps.
func (r *batchReader) next() (batch.Header, int64, bool) {
	if r.err != nil || r.pos >= r.end {
		return nil, 0, false
	}
	if r.end-r.pos < batch.HeaderSize {
		r.err = fmt.Errorf("%w: %s at position %d: %d trailing bytes, less than a batch header", ErrCorruption, r.name, r.pos, r.end-r.pos)
		return nil, 0, false
	}
	if r.n-r.off < batch.HeaderSize && !r.fill(batch.HeaderSize) {
		return nil, 0, false
	}
	size := int64(batch.Header(r.buf[r.off:r.n]).BatchLength()) + batch.LengthOverhead
	if size < batch.HeaderSize || r.pos+size > r.end {
		r.err = fmt.Errorf("%w: %s at position %d: a batch declaring %d bytes, %d remain", ErrCorruption, r.name, r.pos, size, r.end-r.pos)
		return nil, 0, false
	}
	if int64(r.n-r.off) < size && !r.fill(int(size)) {
		return nil, 0, false
	}
	h := batch.Header(r.buf[r.off : r.off+int(size) : r.off+int(size)])
	pos := r.pos
	r.off += int(size)
	r.pos += size
	return h, pos, true
}

// fill makes at least need bytes available at buf[off:], moving what is
// unread to the front and reading ahead as far as the buffer and the range
// allow.
func (r *batchReader) fill(need int) bool {
	r.n = copy(r.buf, r.buf[r.off:r.n])
	r.off = 0
	if need > len(r.buf) {
		r.buf = append(r.buf, make([]byte, need-len(r.buf))...)
	}
	for r.n < need {
		want := min(int64(len(r.buf)-r.n), r.end-r.pos-int64(r.n))
		k, err := r.f.ReadAt(r.buf[r.n:r.n+int(want)], r.pos+int64(r.n))
		r.n += k
		if r.n >= need {
			break
		}
		if err == nil && k == 0 {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // the file is shorter than the segment was
			}
			r.err = fmt.Errorf("segment: reading %s to clean it: %w", r.name, err)
			return false
		}
	}
	return true
}
