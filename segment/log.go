package segment

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"golang.org/x/sys/unix"

	"gregor/batch"
)

// Log is the log of one partition: an ordered list of segments, the last of
// which (the active segment) takes appends.
//
// Concurrency (DESIGN §5): appendMu serialises every change (append, roll,
// truncation, retention, close) so there is one appender at a time; mu guards
// what readers see (the segment list, each segment's published size and index
// entry counts, the log start and end offsets). Readers hold mu's read lock for
// the length of one lookup, never across I/O that waits on the network. The
// appender writes file bytes and index entries beyond what is published without
// mu, then publishes them under mu, so readers never wait for a write(2).
// fsyncs run under their own lock so that one fsync covers every append that
// waits on it (group commit) while appends continue.
//
// The cleaner (cleaner.go) reads and writes without any of these locks; it
// changes the log only to swap cleaned segments in for the closed segments
// they replace. swapMu serialises that swap with the other changes to closed
// segments (truncation, retention, close), which take it first; appends and
// rolls, which touch only the active segment, never wait for it. cleanMu
// makes cleaning passes over one log take turns, and lets Close wait for a
// pass it has asked to stop. Locks are taken in the order cleanMu, swapMu,
// appendMu, flush, mu.
type Log struct {
	dir    string
	now    func() time.Time
	logger *slog.Logger
	epochs *LeaderEpochCache

	cleanMu    sync.Mutex
	cleanAbort atomic.Bool // Close asks a running cleaning pass to stop
	swapMu     sync.Mutex
	// truncations counts truncations (under swapMu): a cleaning pass that
	// sees it change gives up its work, which read segments since cut.
	truncations uint64

	appendMu sync.Mutex
	cfg      Config // appendMu

	mu struct {
		sync.RWMutex
		segments []*segment
		logStart int64
		logEnd   int64
		closed   bool
	}

	flush struct {
		sync.Mutex
		cond          sync.Cond
		running       bool
		recoveryPoint int64 // offsets below it are on stable storage
		lastMs        int64 // when the last fsync began
		// truncations counts the truncations that lowered recoveryPoint:
		// an fsync that saw it change while it ran covered a log end
		// that may no longer exist, and raises nothing.
		truncations uint64
	}
	background sync.WaitGroup // fsyncs of rolled segments

	failed atomic.Pointer[error]

	// retiring holds the files of deleted segments until
	// file.delete.delay.ms has passed (delete.go).
	retiring struct {
		sync.Mutex
		pending map[*retired]struct{}
		closed  bool
	}

	// cleaner is the log's place in compaction: the offset below which it is
	// clean (its cleaner-offset-checkpoint entry) and a channel closed at the
	// end of each cleaning pass.
	cleaner struct {
		sync.Mutex
		firstDirty int64
		listed     bool // has a cleaner-offset-checkpoint entry
		done       chan struct{}
	}

	// topic is the id of the partition's topic, as its partition.metadata
	// file records it (partmeta.go).
	topic struct {
		sync.Mutex
		id    TopicID
		known bool
	}

	io fileOps
	// cleanHook, when set (tests), is called at each step of a swap of
	// cleaned segments; an error stops the swap there, as a crash would.
	cleanHook func(step string) error
}

// fileOps are the calls through which a log writes and syncs its data, so that
// tests can make them fail or tear (fault injection); osFileOps in production.
type fileOps interface {
	writeAt(f *os.File, b []byte, off int64) (int, error)
	datasync(f *os.File) error
	syncDir(dir string) error // a rolled segment's directory entry
}

type osFileOps struct{}

func (osFileOps) writeAt(f *os.File, b []byte, off int64) (int, error) { return f.WriteAt(b, off) }
func (osFileOps) datasync(f *os.File) error                            { return unix.Fdatasync(int(f.Fd())) }
func (osFileOps) syncDir(dir string) error                             { return syncDir(dir) }

// AppendInfo describes what an Append added.
type AppendInfo struct {
	FirstOffset  int64
	LastOffset   int64
	MaxTimestamp int64 // -1 when no batch carries a timestamp
	Batches      int
	Records      int64
	Bytes        int
	// Rolled says the append started a new segment: the moment a caller
	// keeping state beside the log (a replica's producer state) writes a
	// snapshot of it, as Kafka does at each roll.
	Rolled bool
}

// Open opens (creating if needed) the log in dir, recovering it if it was not
// shut down cleanly: every segment from the one holding the recovery point on is
// scanned, each batch checked, the log truncated at the first bad byte and the
// indexes rebuilt. Indexes that are missing or disagree with their log are
// rebuilt in any case.
func Open(dir string, cfg Config, o OpenOptions) (*Log, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l := &Log{dir: dir, cfg: cfg, now: o.Now, logger: o.Logger, io: osFileOps{}}
	if l.now == nil {
		l.now = time.Now
	}
	if l.logger == nil {
		l.logger = slog.Default()
	}
	l.logger = l.logger.With("log", filepath.Base(dir))
	l.flush.cond.L = &l.flush.Mutex
	l.cleaner.firstDirty, l.cleaner.listed = o.CleanerCheckpoint, o.HasCleanerCheckpoint
	l.cleaner.done = make(chan struct{})
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var err error
	if l.topic.id, l.topic.known, err = readPartitionMetadata(dir); err != nil {
		return nil, fmt.Errorf("segment: opening %s: %w", dir, err)
	}
	segs, err := l.load(o)
	if err != nil {
		return nil, fmt.Errorf("segment: opening %s: %w", dir, err)
	}
	l.mu.segments = segs
	segs[len(segs)-1].rollJitter = cfg.rollJitter()
	l.mu.logStart = segs[0].base
	l.mu.logEnd = segs[len(segs)-1].next
	l.flush.recoveryPoint = l.mu.logEnd
	l.flush.lastMs = l.now().UnixMilli()
	if l.epochs, err = OpenLeaderEpochCache(dir); err == nil {
		if err = l.epochs.TruncateFromEnd(l.mu.logEnd); err == nil {
			err = l.epochs.TruncateFromStart(l.mu.logStart)
		}
	}
	if err == nil && o.LogStartOffset > l.mu.logStart {
		if o.LogStartOffset > l.mu.logEnd {
			l.logger.Warn("the log ends below its checkpointed start: starting it again, empty, there",
				"log_end", l.mu.logEnd, "log_start", o.LogStartOffset)
			err = l.truncateFullyLocked(o.LogStartOffset)
		} else {
			l.mu.logStart = o.LogStartOffset
			err = l.epochs.TruncateFromStart(l.mu.logStart)
		}
	}
	if err == nil && o.CleanerCheckpointLost && !o.HasCleanerCheckpoint {
		var marked bool
		if marked, err = holdsCleanerMarks(l.mu.segments); marked {
			// The entry the lost checkpoint held is listed again, at
			// the log start: the log is cleaned from there, and its
			// gaps stay the cleaner's at every later start.
			l.cleaner.firstDirty, l.cleaner.listed = l.mu.logStart, true
			l.logger.Info("the log holds the cleaner's gaps: listing it in the cleaner checkpoint again, to be cleaned from its start",
				"log_start", l.mu.logStart)
		}
	}
	if err != nil {
		for _, s := range l.mu.segments {
			s.close()
		}
		return nil, err
	}
	return l, nil
}

// holdsCleanerMarks reports whether segs hold what only the cleaner leaves
// in a log: a gap between one batch's offsets and the next's (within a
// segment or across two), or a batch holding fewer records than its
// offsets span. A log opened with a lost cleaner checkpoint is walked so,
// one pread of a batch header per batch, stopping at the first mark, to
// tell the logs the cleaner had listed from those it never touched.
func holdsCleanerMarks(segs []*segment) (bool, error) {
	var buf [batch.HeaderSize]byte
	next, seen := int64(0), false
	for _, s := range segs {
		if seen && s.base != next {
			return true, nil
		}
		next, seen = s.base, true
		for pos := int64(0); pos < s.size; {
			if _, err := s.file.f.ReadAt(buf[:], pos); err != nil {
				return false, fmt.Errorf("segment: reading %s for the cleaner's marks: %w", s.file.Name(), err)
			}
			h := batch.Header(buf[:])
			if h.Size() < batch.HeaderSize || pos+int64(h.Size()) > s.size {
				// Damage a load after a clean shutdown does not look
				// for: the walk cannot go on, and allowing for gaps
				// cuts nothing that may be the cleaner's.
				return true, nil
			}
			if h.BaseOffset() != next || int64(h.RecordCount()) < int64(h.LastOffsetDelta())+1 {
				return true, nil
			}
			next, pos = h.NextOffset(), pos+int64(h.Size())
		}
	}
	return false, nil
}

// load opens the segments found in l.dir, recovering what needs it.
func (l *Log) load(o OpenOptions) ([]*segment, error) {
	bases, err := l.listSegments()
	if err != nil {
		return nil, err
	}
	if len(bases) == 0 {
		s, err := createSegment(l.dir, 0, &l.cfg)
		if err != nil {
			return nil, err
		}
		return []*segment{s}, nil
	}
	segs := make([]*segment, 0, len(bases))
	sizes := make([]int64, 0, len(bases))
	closeAll := func() {
		for _, s := range segs {
			s.close()
		}
	}
	for _, b := range bases {
		s, size, err := openSegmentFile(l.dir, b)
		if err != nil {
			closeAll()
			return nil, err
		}
		segs, sizes = append(segs, s), append(sizes, size)
	}
	recoverFrom := len(segs)
	if !o.CleanShutdown {
		recoverFrom = 0
		for i, s := range segs {
			if s.base <= o.RecoveryPoint {
				recoverFrom = i
			}
		}
		l.logger.Info("recovering log after an unclean shutdown", "recovery_point", o.RecoveryPoint,
			"segments", len(segs)-recoverFrom)
	}
	// A log with a cleaner checkpoint has been cleaned, whatever its policy
	// is now (the broker opens logs before it knows their topics' configs).
	rc := recoveryCheck{epoch: -1, compact: l.cfg.compacts() || o.HasCleanerCheckpoint || o.CleanerCheckpointLost}
	repaired := false
	for i := 0; i < len(segs); i++ {
		s, active := segs[i], i == len(segs)-1
		// In a log whose offsets are contiguous, a segment that does not
		// start where the one before it ended follows a loss (a file gone,
		// a truncation a crash cut short), below the recovery point or
		// after a clean shutdown as much as above: the scan finds it, and
		// the log is cut there rather than resume past a hole.
		gap := rc.seen && !rc.compact && s.base != rc.next
		if i < recoverFrom && s.base >= rc.next && !gap {
			ok, err := s.load(sizes[i], &l.cfg, active)
			if err != nil {
				closeAll()
				return nil, err
			}
			if ok {
				rc.next, rc.seen = s.next, true
				if e, ok := s.lastEpoch(); ok {
					rc.epoch = e
				}
				continue
			}
			l.logger.Warn("rebuilding the indexes of a segment", "segment", s.base)
		}
		res, err := s.scan(sizes[i], &l.cfg, &rc, active)
		if err != nil {
			closeAll()
			return nil, err
		}
		if res.bad == nil {
			continue
		}
		repaired = true
		// Truncate at the first bad byte and drop everything after it. A
		// segment left empty goes too, unless it is the first.
		l.logger.Warn("truncating the log at the first bad byte", "segment", s.base, "position", res.valid,
			"dropped_bytes", sizes[i]-res.valid, "dropped_segments", len(segs)-i-1, "cause", res.bad)
		if err := s.file.f.Truncate(res.valid); err != nil {
			closeAll()
			return nil, err
		}
		sizes[i] = res.valid
		keep := i + 1
		if res.valid == 0 && i > 0 {
			keep = i
		}
		for _, d := range segs[keep:] {
			if err := d.remove(); err != nil {
				l.logger.Error("removing a segment after the truncation point", "segment", d.base, "err", err)
			}
		}
		segs, sizes = segs[:keep], sizes[:keep]
		last := len(segs) - 1
		if _, err := segs[last].scan(sizes[last], &l.cfg, nil, true); err != nil {
			closeAll()
			return nil, err
		}
		break
	}
	if recoverFrom < len(segs) || repaired {
		// What recovery kept is now the recovery point: make it durable,
		// with the directory entries of its segments (some may have been
		// created just before the crash) and of those it removed.
		for _, s := range segs[min(recoverFrom, len(segs)-1):] {
			if err := l.io.datasync(s.file.f); err != nil {
				closeAll()
				return nil, err
			}
		}
		if err := l.io.syncDir(l.dir); err != nil {
			closeAll()
			return nil, err
		}
	}
	return segs, nil
}

// listSegments returns the base offsets of the segments in l.dir in order, and
// removes what a crash may leave behind: temporary files and indexes whose log
// file is gone.
func (l *Log) listSegments() ([]int64, error) {
	if err := l.completeSwaps(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, err
	}
	logs := map[int64]bool{}
	var bases []int64
	for _, e := range entries {
		if b, ok := parseSegmentName(e.Name(), logSuffix); ok && e.Type().IsRegular() {
			logs[b] = true
			bases = append(bases, b)
		}
	}
	for _, e := range entries {
		name := e.Name()
		var orphan bool
		for _, suf := range []string{indexSuffix, timeIndexSuffix} {
			if b, ok := parseSegmentName(name, suf); ok && !logs[b] {
				orphan = true
			}
		}
		if orphan || strings.HasSuffix(name, ".tmp") || strings.HasSuffix(name, deletedSuffix) {
			if err := os.Remove(filepath.Join(l.dir, name)); err != nil {
				return nil, err
			}
		}
	}
	slices.Sort(bases)
	return bases, nil
}

// usableLocked reports a failed or closed log. Call with mu held.
func (l *Log) usableLocked() error {
	if p := l.failed.Load(); p != nil {
		return *p
	}
	if l.mu.closed {
		return ErrClosed
	}
	return nil
}

// Failed returns the storage error that failed the log, nil while it has
// not failed (a closed log has not failed). It takes no lock.
func (l *Log) Failed() error {
	if p := l.failed.Load(); p != nil {
		return *p
	}
	return nil
}

func (l *Log) usable() error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.usableLocked()
}

// fail marks the log failed by a storage error; every later call returns the
// first such error.
func (l *Log) fail(err error) error {
	wrapped := fmt.Errorf("%w: %s: %w", ErrLogFailed, l.dir, err)
	if l.failed.CompareAndSwap(nil, &wrapped) {
		l.logger.Error("log failed: the partition stops", "err", err)
	}
	return *l.failed.Load()
}

// Fail stops the log for a storage error that its owner found in it: every
// later call returns ErrLogFailed (KAFKA_STORAGE_ERROR) wrapping the first
// such error, as after a failed write. The replica fails a log whose batch
// headers it cannot read back to rebuild its producer state.
func (l *Log) Fail(err error) error { return l.fail(err) }

// Append assigns offsets to the batches laid end to end in batches, starting at
// the log end offset, and writes them to the active segment, rolling it first
// when a batch would not fit (segment.bytes, segment.ms, a full index). The
// offsets and leaderEpoch are written into the caller's bytes in place (neither
// is covered by the CRC); nothing else changes, so the bytes on disk are the
// bytes that came off the wire. The batches must already be validated
// (batch.Validate); Append checks only what it needs to stay consistent. With
// flush.messages or flush.ms set, Append returns once an fsync covers it.
func (l *Log) Append(batches []byte, leaderEpoch int32) (AppendInfo, error) {
	l.appendMu.Lock()
	info, err := l.appendLocked(batches, leaderEpoch)
	cfg := l.cfg
	l.appendMu.Unlock()
	if err != nil {
		return info, err
	}
	if cfg.FlushMessages != math.MaxInt64 || cfg.FlushMs != math.MaxInt64 {
		end := info.LastOffset + 1
		l.flush.Lock()
		due := end-l.flush.recoveryPoint >= cfg.FlushMessages || l.now().UnixMilli()-l.flush.lastMs >= cfg.FlushMs
		l.flush.Unlock()
		if due {
			return info, l.flushTo(end)
		}
	}
	return info, nil
}

// StartLeaderEpoch records that leaderEpoch starts at the log end offset, as
// Kafka's leader does on election (Partition.makeLeader): OffsetForLeaderEpoch
// then answers the new epoch with the log end before anything is appended in
// it, instead of an undefined epoch that makes consumers reset. An epoch not
// above the latest one recorded changes nothing.
func (l *Log) StartLeaderEpoch(leaderEpoch int32) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	return l.startEpochLocked(leaderEpoch)
}

// startEpochLocked records leaderEpoch at the log end if it is above the
// latest epoch. The caller holds appendMu.
func (l *Log) startEpochLocked(leaderEpoch int32) error {
	if latest, ok := l.epochs.Latest(); leaderEpoch < 0 || ok && leaderEpoch <= latest.Epoch {
		return nil
	}
	l.mu.RLock()
	end := l.mu.logEnd
	l.mu.RUnlock()
	if err := l.epochs.Assign(leaderEpoch, end); err != nil {
		return l.fail(err)
	}
	return nil
}

func (l *Log) appendLocked(batches []byte, leaderEpoch int32) (AppendInfo, error) {
	if err := l.usable(); err != nil {
		return AppendInfo{}, err
	}
	info := AppendInfo{FirstOffset: l.mu.logEnd, MaxTimestamp: -1}
	it := batch.NewIter(batches)
	for h, ok := it.Next(); ok; h, ok = it.Next() {
		if int64(h.Size()) > l.cfg.SegmentBytes {
			return AppendInfo{}, fmt.Errorf("%w: a %d-byte batch exceeds segment.bytes=%d", kerr.RecordListTooLarge, h.Size(), l.cfg.SegmentBytes)
		}
		info.Batches++
		info.Records += int64(h.LastOffsetDelta()) + 1
		info.MaxTimestamp = max(info.MaxTimestamp, h.MaxTimestamp())
	}
	if err := it.Err(); err != nil {
		return AppendInfo{}, err
	}
	if info.Batches == 0 {
		return AppendInfo{}, fmt.Errorf("%w: no record batches to append", kerr.InvalidRecord)
	}
	if latest, ok := l.epochs.Latest(); ok && leaderEpoch < latest.Epoch {
		return AppendInfo{}, fmt.Errorf("%w: append with leader epoch %d, the log is at epoch %d", kerr.FencedLeaderEpoch, leaderEpoch, latest.Epoch)
	}
	if err := l.startEpochLocked(leaderEpoch); err != nil {
		return AppendInfo{}, err
	}

	// The cleaner may swap closed segments in the list meanwhile: read it
	// under the lock. The active segment is the appender's alone.
	l.mu.RLock()
	s := l.mu.segments[len(l.mu.segments)-1]
	l.mu.RUnlock()
	next := info.FirstOffset
	groupStart, pos := 0, s.size
	nOff, nTime := s.index.n, s.timeIndex.n
	it = batch.NewIter(batches)
	for h, ok := it.Next(); ok; h, ok = it.Next() {
		start, size := it.Pos()-h.Size(), int64(h.Size())
		if l.shouldRoll(s, h, next, pos, nOff, nTime) {
			if err := l.publish(s, batches[groupStart:start], pos, nOff, nTime, next); err != nil {
				return AppendInfo{}, err
			}
			var err error
			if s, err = l.roll(s, next); err != nil {
				return AppendInfo{}, err
			}
			info.Rolled = true
			groupStart, pos = start, 0
			nOff, nTime = s.index.n, s.timeIndex.n
		}
		h.SetBaseOffset(next)
		h.SetPartitionLeaderEpoch(leaderEpoch)
		off, tim, ts, tsOff := s.ix.step(pos, size, next, h.MaxTimestamp())
		if off {
			s.index.putOffset(nOff, uint32(next-s.base), uint32(pos))
			nOff++
		}
		if tim {
			s.timeIndex.putTime(nTime, ts, uint32(tsOff-s.base))
			nTime++
		}
		next = h.NextOffset()
		pos += size
	}
	if err := l.publish(s, batches[groupStart:], pos, nOff, nTime, next); err != nil {
		return AppendInfo{}, err
	}
	info.LastOffset = next - 1
	info.Bytes = len(batches)
	return info, nil
}

// shouldRoll reports whether batch h, about to get offset next at position pos,
// must go to a new segment. An empty segment never rolls.
func (l *Log) shouldRoll(s *segment, h batch.Header, next, pos int64, nOff, nTime int) bool {
	if pos == 0 {
		return false
	}
	size := int64(h.Size())
	switch {
	case pos+size > l.cfg.SegmentBytes:
		return true
	case s.ix.firstTs >= 0 && h.MaxTimestamp()-s.ix.firstTs > l.cfg.rollMs()-s.rollJitter:
		return true
	case next+int64(h.LastOffsetDelta())-s.base > math.MaxInt32:
		return true
	}
	probe := s.ix
	off, tim, _, _ := probe.step(pos, size, next, h.MaxTimestamp())
	// One time index slot stays free for the entry a segment gets when it rolls.
	return (off && nOff >= s.index.capacity()) || (tim && nTime >= s.timeIndex.capacity()-1)
}

// publish writes the bytes of a run of batches that end at position end of s,
// then makes them, and the index entries staged for them, visible to readers.
func (l *Log) publish(s *segment, b []byte, end int64, nOff, nTime int, next int64) error {
	if len(b) == 0 {
		return nil
	}
	if _, err := l.io.writeAt(s.file.f, b, end-int64(len(b))); err != nil {
		return l.fail(err)
	}
	l.mu.Lock()
	s.size, s.next, s.maxTimestamp = end, next, s.ix.maxTs
	s.index.n, s.timeIndex.n = nOff, nTime
	l.mu.logEnd = next
	l.mu.Unlock()
	return nil
}

// roll closes the active segment old to appends and starts a new one at
// offset next. The old segment's indexes get their final entry and are
// trimmed; its data is fsynced in the background, as Kafka does, so the
// appender does not wait for a whole segment's writeback.
func (l *Log) roll(old *segment, next int64) (*segment, error) {
	ns, err := createSegment(l.dir, next, &l.cfg)
	if err != nil {
		return nil, l.fail(err)
	}
	l.mu.Lock()
	if ok, ts, tsOff := old.ix.final(); ok {
		if old.timeIndex.full() {
			err = old.timeIndex.resize((old.timeIndex.n + 1) * timeEntrySize)
		}
		if err == nil {
			old.timeIndex.putTime(old.timeIndex.n, ts, uint32(tsOff-old.base))
			old.timeIndex.n++
		}
	}
	err = errors.Join(err, old.index.trim(), old.timeIndex.trim())
	l.mu.segments = append(l.mu.segments, ns)
	l.mu.Unlock()
	if err != nil {
		return nil, l.fail(err)
	}
	l.background.Add(1)
	go func() {
		defer l.background.Done()
		if err := l.io.syncDir(l.dir); err != nil {
			// A log closed without a flush (deleted) may have had its
			// directory renamed or removed: nothing failed.
			if l.usable() == nil {
				l.fail(err)
			}
			return
		}
		// Once the log is closed, flushTo ends with ErrClosed, or finishes
		// an fsync of files it holds a reference to.
		l.flushTo(next)
	}()
	return ns, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}

// Flush fsyncs everything appended so far.
func (l *Log) Flush() error { return l.flushTo(l.LogEndOffset()) }

// FlushIfDue fsyncs the log when flush.ms has passed since the last fsync and
// there is something to flush; a periodic scheduler calls it.
func (l *Log) FlushIfDue() error {
	l.appendMu.Lock()
	flushMs := l.cfg.FlushMs
	l.appendMu.Unlock()
	end := l.LogEndOffset()
	l.flush.Lock()
	due := flushMs != math.MaxInt64 && end > l.flush.recoveryPoint && l.now().UnixMilli()-l.flush.lastMs >= flushMs
	l.flush.Unlock()
	if !due {
		return nil
	}
	return l.flushTo(end)
}

// flushTo returns once every offset below target is on stable storage. One
// caller at a time runs fdatasync; the others wait for it and find their
// offsets covered, or start the next one for all of them (group commit).
func (l *Log) flushTo(target int64) error {
	f := &l.flush
	f.Lock()
	defer f.Unlock()
	for f.recoveryPoint < target {
		if p := l.failed.Load(); p != nil {
			return *p
		}
		if f.running {
			f.cond.Wait()
			continue
		}
		f.running = true
		from, gen := f.recoveryPoint, f.truncations
		f.lastMs = l.now().UnixMilli()
		f.Unlock()
		end, err := l.syncFrom(from)
		f.Lock()
		f.running = false
		f.cond.Broadcast()
		if errors.Is(err, ErrClosed) {
			return err
		}
		if err != nil {
			return l.fail(err)
		}
		if f.truncations != gen {
			// Truncated under the fsync, which covered the old end: the
			// next round syncs from the lowered recovery point.
			continue
		}
		if end <= from { // truncated below target meanwhile
			return nil
		}
		// A truncation that has cut the log but not yet lowered the
		// recovery point is behind us; the cap keeps the point at or
		// below the log end it leaves.
		f.recoveryPoint = max(f.recoveryPoint, min(end, l.LogEndOffset()))
	}
	return nil
}

// syncFrom fdatasyncs every segment holding offsets at or after from and
// returns the log end offset it covered. Indexes are not synced: an index
// write lost in a crash leaves zeros, which the check at open catches, or
// missing entries, which only make lookups scan further.
//
// A segment that starts at or after from may have been created since the
// last fsync, and its directory entry with it: the directory is fsynced too,
// as Kafka's LocalLog.flush does, so that the recovery point never covers a
// file a crash could unlink. The roll's own directory fsync runs in the
// background, and nothing waits for it.
func (l *Log) syncFrom(from int64) (int64, error) {
	var files [8]*File
	pending := files[:0]
	l.mu.RLock()
	if err := l.usableLocked(); err != nil {
		l.mu.RUnlock()
		return 0, err
	}
	end := l.mu.logEnd
	created := false
	for _, s := range l.mu.segments {
		if s.next > from || s.base >= from {
			s.file.acquire()
			pending = append(pending, s.file)
			created = created || s.base >= from
		}
	}
	l.mu.RUnlock()
	var err error
	for _, f := range pending {
		if err == nil {
			err = l.io.datasync(f.f)
		}
		f.Release()
	}
	if err == nil && created {
		if err = l.io.syncDir(l.dir); err != nil && l.usable() != nil {
			// Closed meanwhile to be deleted: its directory may have
			// been renamed or removed, and nothing failed.
			err = l.usable()
		}
	}
	return end, err
}

// Read returns the file regions that hold the batches from the one containing
// offset, up to maxBytes in all, never reaching maxOffset (exclusive: the high
// watermark for consumers, the log end for followers). The first batch is
// returned whole even when it is larger than maxBytes (KIP-74); later regions
// may end inside a batch, which clients discard, as with Kafka. Regions are
// appended to dst, which a caller reuses so that Read does not allocate; the
// caller must Release each region it gets. Offsets below the log start or past
// the log end are ErrOffsetOutOfRange; an offset at maxOffset reads nothing.
func (l *Log) Read(dst []Region, offset int64, maxBytes int, maxOffset int64) ([]Region, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if err := l.usableLocked(); err != nil {
		return dst, err
	}
	if offset < l.mu.logStart || offset > l.mu.logEnd {
		return dst, fmt.Errorf("%w: offset %d, log %s holds [%d, %d)", ErrOffsetOutOfRange, offset, l.dir, l.mu.logStart, l.mu.logEnd)
	}
	maxOffset = min(maxOffset, l.mu.logEnd)
	if offset >= maxOffset {
		return dst, nil
	}
	segs := l.mu.segments
	// The bound: the start of the first batch that reaches maxOffset.
	bi, bpos := len(segs)-1, segs[len(segs)-1].size
	if maxOffset < l.mu.logEnd {
		bi = segmentFor(segs, maxOffset)
		p, _, _, err := segs[bi].find(maxOffset, segs[bi].size)
		if err != nil {
			return dst, err
		}
		bpos = p
	}
	limit := func(i int) int64 {
		if i == bi {
			return bpos
		}
		return segs[i].size
	}
	i := segmentFor(segs, offset)
	var pos int64
	var head batchHead
	for ; i <= bi; i++ {
		p, h, found, err := segs[i].find(offset, limit(i))
		if err != nil {
			return dst, err
		}
		if found {
			pos, head = p, h
			break
		}
	}
	remaining := int64(max(maxBytes, 0))
	for first := true; i <= bi && (first || remaining > 0); i, pos = i+1, 0 {
		n := min(limit(i)-pos, remaining)
		if first {
			n = min(limit(i)-pos, max(remaining, head.size))
			first = false
		}
		if n <= 0 {
			continue
		}
		segs[i].file.acquire()
		dst = append(dst, Region{File: segs[i].file, Position: pos, Length: n})
		remaining -= n
	}
	return dst, nil
}

// segmentFor returns the index of the segment holding offset: the last whose
// base offset is at most offset.
func segmentFor(segs []*segment, offset int64) int {
	lo, hi := 0, len(segs)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if segs[mid].base <= offset {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return max(lo-1, 0)
}

// ReadBytes is Read for callers that need the bytes themselves: it appends them
// to dst.
func (l *Log) ReadBytes(dst []byte, offset int64, maxBytes int, maxOffset int64) ([]byte, error) {
	var arr [4]Region
	rs, err := l.Read(arr[:0], offset, maxBytes, maxOffset)
	defer ReleaseAll(rs)
	if err != nil {
		return dst, err
	}
	for _, r := range rs {
		n := len(dst)
		dst = slices.Grow(dst, int(r.Length))[:n+int(r.Length)]
		if _, err := r.File.f.ReadAt(dst[n:], r.Position); err != nil {
			return dst[:n], err
		}
	}
	return dst, nil
}

// OffsetForTimestamp returns the offset and timestamp of the first record whose
// timestamp is at least ts (ListOffsets by time), or found=false when no record
// is that new. maxDecompressed bounds the decompression of the one batch it
// must look inside.
func (l *Log) OffsetForTimestamp(ts int64, maxDecompressed int) (offset, timestamp int64, found bool, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if err := l.usableLocked(); err != nil {
		return 0, 0, false, err
	}
	return l.offsetForTimestampLocked(ts, maxDecompressed)
}

// OffsetForMaxTimestamp returns the offset and timestamp of the first
// record with the log's largest timestamp (ListOffsets MAX_TIMESTAMP,
// KIP-734), or found=false when the log has no record with a timestamp.
// The largest timestamp is the segments' (their batches' max timestamps,
// which, as in Kafka, the cleaner recomputes from the records it keeps),
// and the answer is a record the log holds.
func (l *Log) OffsetForMaxTimestamp(maxDecompressed int) (offset, timestamp int64, found bool, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if err := l.usableLocked(); err != nil {
		return 0, 0, false, err
	}
	var maxTs int64 = -1
	for _, s := range l.mu.segments {
		maxTs = max(maxTs, s.maxTimestamp)
	}
	if maxTs < 0 {
		return 0, 0, false, nil
	}
	return l.offsetForTimestampLocked(maxTs, maxDecompressed)
}

func (l *Log) offsetForTimestampLocked(ts int64, maxDecompressed int) (offset, timestamp int64, found bool, err error) {
	for _, s := range l.mu.segments {
		if s.maxTimestamp < ts {
			continue
		}
		var pos int64
		if rel, ok := s.timeIndex.lookupTime(ts); ok {
			if pos, _, _, err = s.find(s.base+int64(rel), s.size); err != nil {
				return 0, 0, false, err
			}
		}
		for pos < s.size {
			h, err := s.readHead(pos, s.size)
			if err != nil {
				return 0, 0, false, err
			}
			if h.maxTs >= ts && h.last >= l.mu.logStart {
				offset, timestamp, found, err := s.firstRecordAtOrAfter(pos, h, ts, l.mu.logStart, maxDecompressed)
				if found || err != nil {
					return offset, timestamp, found, err
				}
			}
			pos += h.size
		}
	}
	return 0, 0, false, nil
}

// firstRecordAtOrAfter looks inside the batch at pos for its first record,
// at or after offset from (the log start, which a DeleteRecords may have put
// inside the batch), with a timestamp of at least ts. It finds none when the
// records that made the header's max timestamp that new are below from or
// were removed by the cleaner (which may leave a batch whose header speaks
// of records it no longer holds): as Kafka's FileRecords.searchForTimestamp,
// the caller then goes on to the next batch, never answering an offset or a
// timestamp that only the header has.
func (s *segment) firstRecordAtOrAfter(pos int64, h batchHead, ts, from int64, maxDecompressed int) (int64, int64, bool, error) {
	buf := make([]byte, h.size)
	if _, err := s.file.f.ReadAt(buf, pos); err != nil {
		return 0, 0, false, err
	}
	hdr := batch.Header(buf)
	logAppendTime := hdr.LogAppendTime()
	if logAppendTime && int64(hdr.RecordCount()) == int64(hdr.LastOffsetDelta())+1 {
		// Every record has the header's timestamp, and the batch has every
		// offset it spans: none is decoded.
		return max(hdr.BaseOffset(), from), hdr.MaxTimestamp(), true, nil
	}
	rr, _, err := batch.DecodeRecords(hdr, nil, maxDecompressed)
	if err != nil {
		return 0, 0, false, fmt.Errorf("%w: %s at position %d: %w", ErrCorruption, s.file.Name(), pos, err)
	}
	var r batch.Record
	for rr.Next(&r) {
		off := hdr.BaseOffset() + int64(r.OffsetDelta)
		t := hdr.BaseTimestamp() + r.TimestampDelta
		if logAppendTime {
			t = hdr.MaxTimestamp()
		}
		if t >= ts && off >= from {
			return off, t, true, nil
		}
	}
	if err := rr.Err(); err != nil {
		return 0, 0, false, fmt.Errorf("%w: %s at position %d: %w", ErrCorruption, s.file.Name(), pos, err)
	}
	return 0, 0, false, nil
}

// Truncate removes every batch that holds an offset at or after offset, so the
// log end becomes the base offset of the batch that held it (a follower
// truncating to where its epochs diverge from the leader's). Below the log
// start it is TruncateFullyAndStartAt.
func (l *Log) Truncate(offset int64) error {
	l.swapMu.Lock()
	defer l.swapMu.Unlock()
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	if offset >= l.mu.logEnd {
		return nil
	}
	if offset < l.mu.logStart {
		return l.truncateFullyLocked(offset)
	}
	segs := l.mu.segments
	j := segmentFor(segs, offset)
	s := segs[j]
	cut, _, _, err := s.find(offset, s.size)
	if err != nil {
		return l.fail(err)
	}
	removed := slices.Clone(segs[j+1:])
	l.truncations++
	// The later segments go first, the last first, and durably, before
	// segment j is cut, as Kafka's LocalLog.truncateTo removes them first:
	// a crash at any point then leaves a prefix of the log. Cutting first,
	// a crash before the renames left a hole with the truncated records
	// after it, which recovery took for the log (a compacted log may have
	// gaps) or had to find. Readers go on reading the renamed segments
	// through their open files until the list changes below.
	for i := len(removed) - 1; i >= 0; i-- {
		if err := l.retire(removed[i], l.cfg.fileDeleteDelay()); err != nil {
			return l.fail(err)
		}
	}
	if len(removed) > 0 {
		if err := l.io.syncDir(l.dir); err != nil {
			return l.fail(err)
		}
	}
	l.mu.Lock()
	l.mu.segments = segs[:j+1]
	err = s.file.f.Truncate(cut)
	if err == nil {
		_, err = s.scan(cut, &l.cfg, nil, true)
	}
	l.mu.logEnd = s.next
	// The cut is at the start of the batch holding offset, which may lie
	// below a log start a DeleteRecords put inside that batch: the start
	// never passes the end.
	l.mu.logStart = min(l.mu.logStart, l.mu.logEnd)
	end := s.next
	l.mu.Unlock()
	for _, d := range removed {
		d.release()
	}
	if err != nil {
		return l.fail(err)
	}
	l.flush.Lock()
	l.flush.recoveryPoint = min(l.flush.recoveryPoint, end)
	l.flush.truncations++
	l.flush.Unlock()
	l.cleaner.Lock()
	l.cleaner.firstDirty = min(l.cleaner.firstDirty, end)
	l.cleaner.Unlock()
	if err := l.epochs.TruncateFromEnd(end); err != nil {
		return l.fail(err)
	}
	return nil
}

// TruncateFullyAndStartAt deletes the whole log and starts it again, empty, at
// offset (a follower that has fallen behind the leader's log start).
func (l *Log) TruncateFullyAndStartAt(offset int64) error {
	l.swapMu.Lock()
	defer l.swapMu.Unlock()
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	return l.truncateFullyLocked(offset)
}

func (l *Log) truncateFullyLocked(offset int64) error {
	if offset < 0 {
		return fmt.Errorf("segment: cannot start a log at offset %d", offset)
	}
	old := l.mu.segments
	l.truncations++
	var err error
	for _, s := range old {
		err = errors.Join(err, l.retire(s, l.cfg.fileDeleteDelay()))
	}
	if err != nil {
		return l.fail(err)
	}
	ns, err := createSegment(l.dir, offset, &l.cfg)
	if err != nil {
		return l.fail(err)
	}
	l.mu.Lock()
	l.mu.segments = []*segment{ns}
	l.mu.logStart, l.mu.logEnd = offset, offset
	for _, s := range old {
		s.release()
	}
	l.mu.Unlock()
	l.flush.Lock()
	l.flush.recoveryPoint = offset
	l.flush.truncations++
	l.flush.Unlock()
	l.cleaner.Lock()
	l.cleaner.firstDirty = offset
	l.cleaner.Unlock()
	if err := l.epochs.Clear(); err != nil {
		return l.fail(err)
	}
	return nil
}

// EnforceRetention deletes the oldest segments that retention.ms or
// retention.bytes no longer keep, never the active one, and advances the log
// start offset. It returns how many segments it deleted.
func (l *Log) EnforceRetention() (int, error) {
	l.swapMu.Lock()
	defer l.swapMu.Unlock()
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if err := l.usable(); err != nil {
		return 0, err
	}
	nowMs := l.now().UnixMilli()
	segs := l.mu.segments
	var total int64
	for _, s := range segs {
		total += s.size
	}
	n := 0
	for ; n < len(segs)-1; n++ {
		s := segs[n]
		// A log whose topic's config is not known yet keeps its segments:
		// the defaults it has may delete those of a compacted topic, or
		// of one that keeps its records longer.
		retains := l.cfg.Deletes() && !l.cfg.provisional
		expired := retains && l.cfg.RetentionMs >= 0 && nowMs-s.largestTimestamp() > l.cfg.RetentionMs
		oversize := retains && l.cfg.RetentionBytes >= 0 && total-s.size >= l.cfg.RetentionBytes
		// Below the log start a DeleteRecords left, whatever the policy,
		// as Kafka's deleteLogStartOffsetBreachedSegments.
		deleted := segs[n+1].base <= l.mu.logStart
		if !expired && !oversize && !deleted {
			break
		}
		total -= s.size
	}
	if n == 0 {
		return 0, nil
	}
	removed := slices.Clone(segs[:n])
	l.mu.Lock()
	l.mu.segments = slices.Delete(segs, 0, n)
	l.mu.logStart = max(l.mu.logStart, l.mu.segments[0].base)
	start := l.mu.logStart
	l.mu.Unlock()
	for _, s := range removed {
		err := l.retire(s, l.cfg.fileDeleteDelay())
		s.release()
		if err != nil {
			return n, l.fail(err)
		}
		l.logger.Info("deleted a segment past retention", "segment", s.base, "log_start", start)
	}
	if err := l.epochs.TruncateFromStart(start); err != nil {
		return n, l.fail(err)
	}
	return n, nil
}

// AdvanceLogStart raises the log start offset to offset, as Kafka's
// maybeIncrementLogStartOffset does for DeleteRecords: the records below it
// are no longer read, listed or found by time at once, and the segments
// wholly below it are deleted at the next EnforceRetention. The new start
// may fall inside a batch, which reads still return whole (a consumer skips
// the records before its offset). An offset at or below the start changes
// nothing; one past the log end is ErrOffsetOutOfRange (the caller bounds
// it by the high watermark first). It reports whether the start moved.
func (l *Log) AdvanceLogStart(offset int64) (bool, error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if err := l.usable(); err != nil {
		return false, err
	}
	l.mu.Lock()
	start, end := l.mu.logStart, l.mu.logEnd
	if offset > end {
		l.mu.Unlock()
		return false, fmt.Errorf("%w: cannot start log %s at %d past its end %d", ErrOffsetOutOfRange, l.dir, offset, end)
	}
	if offset <= start {
		l.mu.Unlock()
		return false, nil
	}
	l.mu.logStart = offset
	l.mu.Unlock()
	if err := l.epochs.TruncateFromStart(offset); err != nil {
		return true, l.fail(err)
	}
	l.logger.Info("advanced the log start", "from", start, "to", offset)
	return true, nil
}

// logStartCheckpoint is the log's entry in the log-start-offset-checkpoint:
// its start, when a DeleteRecords left it above the first segment's base
// (the first segment's base says it otherwise, as Kafka writes it).
func (l *Log) logStartCheckpoint() (int64, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.mu.logStart, len(l.mu.segments) > 0 && l.mu.logStart > l.mu.segments[0].base
}

// largestTimestamp is what retention.ms compares: the newest batch timestamp,
// or the file's modification time when no batch has one, as Kafka does.
func (s *segment) largestTimestamp() int64 {
	if s.maxTimestamp >= 0 {
		return s.maxTimestamp
	}
	if st, err := s.file.f.Stat(); err == nil {
		return st.ModTime().UnixMilli()
	}
	return math.MaxInt64 // cannot tell: keep it
}

// Close fsyncs the log and closes its files, trimming the active segment's
// indexes. Regions still held by readers stay readable until released. A
// cleaning pass under way is stopped first; what it had not swapped in is
// dropped.
func (l *Log) Close() error { return l.close(true) }

// close is Close, without the fsync when flush is false: a log about to be
// deleted (Manager.Delete) does not write its pages back first, as Kafka's
// asyncDelete only closes the handles of its log.
func (l *Log) close(flush bool) error {
	l.cleanAbort.Store(true)
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	l.swapMu.Lock()
	defer l.swapMu.Unlock()
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.RLock()
	closed := l.mu.closed
	l.mu.RUnlock()
	if closed {
		return nil
	}
	// Closing with a flush waits for the rolled segments' fsyncs under
	// way; without (a deleted log), their goroutines finish on their own,
	// each holding the files it syncs, so a deletion does not wait for a
	// whole segment's writeback.
	var err error
	if flush {
		l.background.Wait()
		err = l.flushTo(l.mu.logEnd)
	}
	l.mu.Lock()
	l.mu.closed = true
	for _, s := range l.mu.segments {
		err = errors.Join(err, s.close())
	}
	l.mu.Unlock()
	l.removeAllRetired()
	return err
}

// SetConfig changes the log's settings (a topic config change, or the
// topic's config given at last to a log the Manager found at start-up
// without it). Segments that exist keep their indexes; new ones use the new
// sizes.
func (l *Log) SetConfig(cfg Config) error {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg.provisional = false
	l.appendMu.Lock()
	l.cfg = cfg
	l.appendMu.Unlock()
	return nil
}

// Config returns the log's settings. Those of a log the Manager opened
// without its topic's config (ManagerOptions.ConfigFor) are the defaults,
// marked provisional until SetConfig: they equal no Config built elsewhere.
func (l *Log) Config() Config {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	return l.cfg
}

// Dir is the partition directory.
func (l *Log) Dir() string { return l.dir }

// Logger is where the log reports, for those keeping state beside it.
func (l *Log) Logger() *slog.Logger { return l.logger }

// LogStartOffset is the first offset the log holds.
func (l *Log) LogStartOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.mu.logStart
}

// LogEndOffset is the offset the next appended record gets.
func (l *Log) LogEndOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.mu.logEnd
}

// RecoveryPoint is the offset below which the log is on stable storage.
func (l *Log) RecoveryPoint() int64 {
	l.flush.Lock()
	defer l.flush.Unlock()
	return l.flush.recoveryPoint
}

// Size is the number of bytes in all segments.
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var n int64
	for _, s := range l.mu.segments {
		n += s.size
	}
	return n
}

// SegmentInfo describes one segment, for tools and tests.
type SegmentInfo struct {
	BaseOffset   int64
	NextOffset   int64
	Size         int64
	MaxTimestamp int64
	IndexEntries int
	TimeEntries  int
}

// Segments describes the segments in order; the last is the active one.
func (l *Log) Segments() []SegmentInfo {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]SegmentInfo, len(l.mu.segments))
	for i, s := range l.mu.segments {
		out[i] = SegmentInfo{s.base, s.next, s.size, s.maxTimestamp, s.index.n, s.timeIndex.n}
	}
	return out
}

// SegmentModTime is a segment's first offset and when its file was last
// written.
type SegmentModTime struct {
	BaseOffset int64
	ModTime    time.Time
}

// ModTimes lists each segment's file modification time, in order: what
// Kafka's ListOffsets v0 answers timestamps by (its offsets "before" a time
// are the segments last written by then).
//
// The files are held, not the lock, while they are stat'ed: an fstat per
// segment of a long log would hold up every append meanwhile.
func (l *Log) ModTimes() ([]SegmentModTime, error) {
	type held struct {
		base int64
		file *File
	}
	l.mu.RLock()
	if l.mu.closed {
		l.mu.RUnlock()
		return nil, ErrClosed
	}
	files := make([]held, len(l.mu.segments))
	for i, s := range l.mu.segments {
		s.file.acquire()
		files[i] = held{s.base, s.file}
	}
	l.mu.RUnlock()
	defer func() {
		for _, h := range files {
			h.file.Release()
		}
	}()
	out := make([]SegmentModTime, len(files))
	for i, h := range files {
		fi, err := h.file.OS().Stat()
		if err != nil {
			return nil, err
		}
		out[i] = SegmentModTime{h.base, fi.ModTime()}
	}
	return out, nil
}

// LeaderEpochs is the partition's leader-epoch cache, kept in step with the log.
func (l *Log) LeaderEpochs() *LeaderEpochCache { return l.epochs }
