package segment

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"gregor/batch"
)

// File name suffixes, as Kafka names them.
const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
)

// segmentName is the 20-digit, zero-padded base offset that names a segment's files.
func segmentName(base int64) string { return fmt.Sprintf("%020d", base) }

func parseSegmentName(name, suffix string) (int64, bool) {
	stem, ok := cutSuffix(name, suffix)
	if !ok || len(stem) != 20 {
		return 0, false
	}
	base, err := strconv.ParseInt(stem, 10, 64)
	return base, err == nil && base >= 0
}

func cutSuffix(s, suffix string) (string, bool) {
	if len(s) < len(suffix) || s[len(s)-len(suffix):] != suffix {
		return s, false
	}
	return s[:len(s)-len(suffix)], true
}

// indexer decides, batch by batch, which index entries a segment gets. It is the
// one rule behind both appends and rebuilds, so an index rebuilt from the log
// equals, entry for entry, the index that appending built.
//
// Before a batch at position pos > 0 is added, if at least IndexIntervalBytes of
// log were added since the last offset entry, the batch gets an offset entry
// (its base offset, pos), and the time index gets (largest timestamp so far, the
// base offset of the batch that holds it) if that timestamp is newer than the
// time index's last entry. A segment that stops being active gets one final time
// entry (see final).
type indexer struct {
	interval   int64
	bytesSince int64 // log bytes since the last offset entry
	maxTs      int64 // largest batch max timestamp so far, -1 if none
	maxTsOff   int64 // base offset of the batch holding maxTs
	lastTimeTs int64 // timestamp of the time index's last entry, -1 if none
	firstTs    int64 // max timestamp of the first batch, for segment.ms
}

func newIndexer(interval int) indexer {
	return indexer{interval: int64(interval), maxTs: -1, lastTimeTs: -1, firstTs: -1}
}

// step records a batch about to be added at pos and returns the entries it gets.
func (x *indexer) step(pos, size, base, maxTs int64) (offEntry, timeEntry bool, ts, tsOff int64) {
	if pos > 0 && x.bytesSince >= x.interval {
		offEntry = true
		x.bytesSince = 0
		if x.maxTs > x.lastTimeTs {
			timeEntry, ts, tsOff = true, x.maxTs, x.maxTsOff
			x.lastTimeTs = x.maxTs
		}
	}
	x.bytesSince += size
	if maxTs > x.maxTs {
		x.maxTs, x.maxTsOff = maxTs, base
	}
	if pos == 0 {
		x.firstTs = maxTs
	}
	return
}

// final returns the time entry a segment gets when it stops being active.
func (x *indexer) final() (ok bool, ts, tsOff int64) {
	if x.maxTs > x.lastTimeTs {
		x.lastTimeTs = x.maxTs
		return true, x.maxTs, x.maxTsOff
	}
	return false, 0, 0
}

// segment is one .log file and its two indexes. Fields marked "published" are
// written by the appender under Log.mu and read by readers under Log.mu's read
// lock; the rest belong to the appender (who holds Log.appendMu).
type segment struct {
	base      int64
	file      *File
	index     *mmapIndex // offset index
	timeIndex *mmapIndex

	size         int64 // published: bytes of whole batches in the file
	next         int64 // published: the offset after the last batch (base when empty)
	maxTimestamp int64 // published: largest batch max timestamp, -1 if none

	ix indexer // appender's: the index rule's running state
	// rollJitter is how much sooner than its roll age this segment rolls
	// (segment.jitter.ms), drawn when it becomes the active segment.
	rollJitter int64
}

func (s *segment) path(suffix string) string {
	return filepath.Join(filepath.Dir(s.file.Name()), segmentName(s.base)+suffix)
}

// createSegment makes a new, empty active segment.
func createSegment(dir string, base int64, cfg *Config) (*segment, error) {
	name := filepath.Join(dir, segmentName(base))
	f, err := os.OpenFile(name+logSuffix, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	s := &segment{base: base, file: newFile(f), next: base, maxTimestamp: -1, ix: newIndexer(cfg.IndexIntervalBytes),
		rollJitter: cfg.rollJitter()}
	for _, p := range []string{name + indexSuffix, name + timeIndexSuffix} {
		os.Remove(p) // stale index of an earlier segment with this base
	}
	if s.index, err = openIndex(name+indexSuffix, offsetEntrySize, cfg.SegmentIndexBytes, true); err != nil {
		s.close()
		return nil, err
	}
	if s.timeIndex, err = openIndex(name+timeIndexSuffix, timeEntrySize, cfg.SegmentIndexBytes, true); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// openSegmentFile opens an existing segment's log file; indexes come later.
func openSegmentFile(dir string, base int64) (*segment, int64, error) {
	f, err := os.OpenFile(filepath.Join(dir, segmentName(base)+logSuffix), os.O_RDWR, 0)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return &segment{base: base, file: newFile(f), next: base, maxTimestamp: -1}, st.Size(), nil
}

// close releases the Log's reference to the file and closes the indexes,
// trimming them to their entries in use.
func (s *segment) close() error {
	var err error
	for _, ix := range []*mmapIndex{s.index, s.timeIndex} {
		if ix != nil {
			err = errors.Join(err, ix.close())
		}
	}
	s.file.Release()
	return err
}

// remove deletes the segment's files. Readers holding regions of the log file
// keep reading it until they release them.
func (s *segment) remove() error {
	err := s.unlink()
	s.release()
	return err
}

// paths are the names of the segment's files: log, offset index, time index.
func (s *segment) paths() []string {
	return []string{s.file.Name(), s.path(indexSuffix), s.path(timeIndexSuffix)}
}

// unlink deletes the segment's file names; the open files stay usable.
func (s *segment) unlink() error {
	var err error
	for _, p := range s.paths() {
		if rerr := os.Remove(p); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}
	return err
}

// release unmaps and closes the indexes without trimming them (their files are
// gone or about to be rewritten) and drops the Log's reference to the log file.
func (s *segment) release() {
	for _, ix := range []*mmapIndex{s.index, s.timeIndex} {
		if ix != nil {
			ix.unmap()
			ix.f.Close()
		}
	}
	s.file.Release()
}

// batchHead is what a reader needs of a batch header.
type batchHead struct {
	base, last, size, maxTs int64
}

// readHead reads the header of the batch at pos with one pread into the
// caller's stack buffer.
func (s *segment) readHead(pos, limit int64) (batchHead, error) {
	var buf [batch.HeaderSize]byte
	if _, err := s.file.f.ReadAt(buf[:], pos); err != nil {
		if errors.Is(err, io.EOF) {
			return batchHead{}, fmt.Errorf("%w: %s: batch header at %d past the end of the file", ErrCorruption, s.file.Name(), pos)
		}
		return batchHead{}, err
	}
	h := batch.Header(buf[:])
	size := int64(h.BatchLength()) + batch.LengthOverhead
	if size < batch.HeaderSize || pos+size > limit {
		return batchHead{}, fmt.Errorf("%w: %s: batch at %d declares %d bytes, %d remain", ErrCorruption, s.file.Name(), pos, size, limit-pos)
	}
	return batchHead{base: h.BaseOffset(), last: h.LastOffset(), size: size, maxTs: h.MaxTimestamp()}, nil
}

// find returns the position and header of the first batch in the segment whose
// last offset is at least offset, scanning forward from the offset index's
// hint; found is false when every batch ends before offset. It must be called
// with the log's read lock held, with size the segment's published size.
func (s *segment) find(offset, size int64) (pos int64, head batchHead, found bool, err error) {
	rel := offset - s.base
	if rel > math.MaxUint32 {
		rel = math.MaxUint32
	}
	if rel > 0 {
		pos = int64(s.index.lookupOffset(uint32(rel)))
	}
	for pos < size {
		if head, err = s.readHead(pos, size); err != nil {
			return 0, head, false, err
		}
		if head.last >= offset {
			return pos, head, true, nil
		}
		pos += head.size
	}
	return size, head, false, nil
}

// rebuildResult is what a scan of a segment's log file learned.
type rebuildResult struct {
	valid int64 // bytes of good batches from the start of the file
	next  int64 // offset after the last good batch
	bad   error // why the scan stopped before the end of the file, or nil
}

// recoveryCheck carries what recovery checks from one batch to the next, across
// segments.
type recoveryCheck struct {
	next    int64 // where the next batch starts (at the least, in a compacted log)
	epoch   int32 // the largest leader epoch so far
	compact bool  // cleanup.policy=compact: offsets may have gaps
	seen    bool  // a segment before this one was loaded or scanned: next is where it ended
}

// check is recovery's check of one batch: everything batch.Validate checks, then
// offsets that follow on from the previous batch (contiguous, unless compaction
// may have left gaps), fit the segment's 32-bit relative offsets, and leader
// epochs that never decrease. baseOffset and partitionLeaderEpoch are not under
// the CRC; these are what catches damage there (a raised epoch in the very last
// batch is the one change no check can see).
func (c *recoveryCheck) check(h batch.Header, segBase int64) error {
	if err := validateStored(h, c.compact); err != nil {
		return err
	}
	if b := h.BaseOffset(); b < c.next || (!c.compact && b != c.next) {
		return fmt.Errorf("base offset %d where %d was expected", b, c.next)
	}
	if rel := h.LastOffset() - segBase; rel > math.MaxInt32 {
		return fmt.Errorf("last offset %d too far from the segment's base %d", h.LastOffset(), segBase)
	}
	if e := h.PartitionLeaderEpoch(); e < c.epoch {
		return fmt.Errorf("leader epoch %d after epoch %d", e, c.epoch)
	}
	c.next, c.epoch = h.NextOffset(), h.PartitionLeaderEpoch()
	return nil
}

// validateStored is batch.Validate for a batch read back from a segment. In a
// log that may have been cleaned, a batch may hold fewer records than its
// offsets span: the cleaner drops records but keeps baseOffset and
// lastOffsetDelta, so offsets never move and producer sequences stay intact
// (as Kafka's cleaner does).
func validateStored(h batch.Header, compacted bool) error {
	if compacted {
		return batch.ValidateStored(h)
	}
	return batch.Validate(h, 0)
}

// scanChunk is how much of a segment file a scan reads at a time: large enough
// that the reads cost little next to the CRC, small enough to stay in cache.
// A variable so tests can make batches straddle chunks.
var scanChunk int64 = 1 << 20

// scan walks the whole log file from position 0 with the index rule, and
// rewrites both indexes from what it finds. With rc, every batch gets
// recovery's checks; without, only the lengths and magic are checked (an index
// rebuild). The walk stops at the first bad byte, which it reports in bad; the
// caller truncates. It reads the file in sequential chunks into one buffer:
// measured on a 1 GiB segment, that is faster than mapping the file, whose
// page-table set-up and tear-down cost a third of the scan.
func (s *segment) scan(size int64, cfg *Config, rc *recoveryCheck, active bool) (rebuildResult, error) {
	res := rebuildResult{next: s.base}
	if rc != nil && rc.next < s.base {
		if rc.seen && !rc.compact {
			// The log before this segment ends short of its first offset:
			// the previous segment lost its tail at a batch boundary, which
			// no check of its own bytes can see. Nothing after the loss can
			// be kept.
			res.bad = fmt.Errorf("%w: %s starts at offset %d, but the log before it ends at %d", ErrCorruption, s.file.Name(), s.base, rc.next)
			return res, nil
		}
		rc.next = s.base // a segment's name is its first offset
	}
	if rc != nil {
		rc.seen = true
	}
	x := newIndexer(cfg.IndexIntervalBytes)
	guess := min(size/int64(max(cfg.IndexIntervalBytes, batch.HeaderSize)), 1<<20)
	offs := make([]uint32, 0, 2*guess) // rel, pos pairs
	times := make([]int64, 0, 2*guess) // ts, rel pairs
	buf := make([]byte, max(min(size, scanChunk), batch.HeaderSize))
	var bufPos int64 // file position of buf[0]
	filled := 0
	for res.bad == nil && bufPos+int64(filled) < size {
		n, err := s.file.f.ReadAt(buf[filled:min(int64(len(buf)), size-bufPos)], bufPos+int64(filled))
		if err != nil && !(errors.Is(err, io.EOF) && n > 0) {
			return res, fmt.Errorf("segment: reading %s for a scan: %w", s.file.Name(), err)
		}
		filled += n
		it := batch.NewIter(buf[:filled])
		for h, ok := it.Next(); ok; h, ok = it.Next() {
			pos := bufPos + int64(it.Pos()-h.Size())
			var err error
			if rc != nil {
				err = rc.check(h, s.base)
			} else if h.Magic() != batch.Magic {
				err = batch.ErrMagic
			}
			if err != nil {
				res.bad = fmt.Errorf("%w: %s at position %d: %w", ErrCorruption, s.file.Name(), pos, err)
				break
			}
			off, tim, ts, tsOff := x.step(pos, int64(h.Size()), h.BaseOffset(), h.MaxTimestamp())
			if off {
				offs = append(offs, uint32(h.BaseOffset()-s.base), uint32(pos))
			}
			if tim {
				times = append(times, ts, tsOff-s.base)
			}
			res.valid = bufPos + int64(it.Pos())
			res.next = h.NextOffset()
		}
		if res.bad != nil {
			break
		}
		// Carry a batch cut by the end of the buffer over to the next read,
		// unless the file ends first or its length cannot be right.
		used := it.Pos()
		rest := buf[used:filled]
		if len(rest) >= batch.HeaderSize {
			need := int64(batch.Header(rest).BatchLength()) + batch.LengthOverhead
			if need < batch.HeaderSize || bufPos+int64(used)+need > size {
				res.bad = fmt.Errorf("%w: %s at position %d: a batch declaring %d bytes, %d remain in the file",
					ErrCorruption, s.file.Name(), bufPos+int64(used), need, size-bufPos-int64(used))
				break
			}
			if need > int64(len(buf)) {
				buf = append(buf, make([]byte, need-int64(len(buf)))...)
			}
		}
		copy(buf, rest)
		bufPos += int64(used)
		filled = len(rest)
		if filled > 0 && bufPos+int64(filled) == size {
			res.bad = fmt.Errorf("%w: %s at position %d: %d trailing bytes, less than a batch header",
				ErrCorruption, s.file.Name(), bufPos, filled)
		}
	}
	if !active {
		if ok, ts, tsOff := x.final(); ok {
			times = append(times, ts, tsOff-s.base)
		}
	}
	if err := s.writeIndexes(cfg, offs, times, active); err != nil {
		return res, err
	}
	s.size, s.next, s.maxTimestamp, s.ix = res.valid, res.next, x.maxTs, x
	return res, nil
}

// writeIndexes replaces both index files with the given entries. An active
// segment's indexes get their full preallocated capacity; others are exact.
func (s *segment) writeIndexes(cfg *Config, offs []uint32, times []int64, active bool) error {
	name := filepath.Join(filepath.Dir(s.file.Name()), segmentName(s.base))
	var err error
	if s.index == nil {
		if s.index, err = openIndex(name+indexSuffix, offsetEntrySize, 0, false); err != nil {
			return err
		}
	}
	if s.timeIndex == nil {
		if s.timeIndex, err = openIndex(name+timeIndexSuffix, timeEntrySize, 0, false); err != nil {
			return err
		}
	}
	nOff, nTime := len(offs)/2, len(times)/2
	offBytes, timeBytes := nOff*offsetEntrySize, nTime*timeEntrySize
	if active {
		offBytes = max(offBytes, cfg.SegmentIndexBytes/offsetEntrySize*offsetEntrySize)
		timeBytes = max(timeBytes+timeEntrySize, cfg.SegmentIndexBytes/timeEntrySize*timeEntrySize)
	}
	if err := s.index.replace(offBytes); err != nil {
		return err
	}
	for i := range nOff {
		s.index.putOffset(i, offs[2*i], offs[2*i+1])
	}
	s.index.n = nOff
	if err := s.timeIndex.replace(timeBytes); err != nil {
		return err
	}
	for i := range nTime {
		s.timeIndex.putTime(i, times[2*i], uint32(times[2*i+1]))
	}
	s.timeIndex.n = nTime
	return nil
}

// load opens a segment's existing indexes and checks them against the log;
// it reports false when they are missing or inconsistent and must be rebuilt.
// On success it resumes the index rule's state by reading the batch headers
// after the last offset entry, which is at most index.interval.bytes and a batch.
func (s *segment) load(size int64, cfg *Config, active bool) (bool, error) {
	name := filepath.Join(filepath.Dir(s.file.Name()), segmentName(s.base))
	for _, p := range []string{name + indexSuffix, name + timeIndexSuffix} {
		if _, err := os.Stat(p); err != nil {
			return false, nil
		}
	}
	var err error
	if s.index, err = openIndex(name+indexSuffix, offsetEntrySize, cfg.SegmentIndexBytes, active); err != nil {
		return false, err
	}
	if s.timeIndex, err = openIndex(name+timeIndexSuffix, timeEntrySize, cfg.SegmentIndexBytes, active); err != nil {
		return false, err
	}
	if s.index.checkOffsetIndex(size) != nil {
		return false, nil
	}
	x := newIndexer(cfg.IndexIntervalBytes)
	var pos int64
	next := s.base
	if s.index.n > 0 {
		rel, p := s.index.offsetEntry(s.index.n - 1)
		pos, next = int64(p), s.base+int64(rel)
	}
	x.bytesSince = size - pos
	x.lastTimeTs = s.timeIndex.lastTimestamp()
	if s.timeIndex.n > 0 {
		ts, rel := s.timeIndex.timeEntry(s.timeIndex.n - 1)
		x.maxTs, x.maxTsOff = ts, s.base+int64(rel)
	}
	if size > 0 {
		first, err := s.readHead(0, size)
		if err != nil {
			return false, nil
		}
		x.firstTs = first.maxTs
	}
	for pos < size {
		h, err := s.readHead(pos, size)
		if err != nil || h.base < next {
			return false, nil
		}
		if h.maxTs > x.maxTs {
			x.maxTs, x.maxTsOff = h.maxTs, h.base
		}
		pos, next = pos+h.size, h.last+1
	}
	if next-s.base-1 > math.MaxUint32 || s.timeIndex.checkTimeIndex(uint32(max(next-s.base-1, 0))) != nil {
		return false, nil
	}
	s.size, s.next, s.maxTimestamp, s.ix = size, next, x.maxTs, x
	return true, nil
}

// lastEpoch reads the leader epoch of the segment's last batch.
func (s *segment) lastEpoch() (int32, bool) {
	if s.size == 0 {
		return 0, false
	}
	pos := int64(0)
	if s.index.n > 0 {
		_, p := s.index.offsetEntry(s.index.n - 1)
		pos = int64(p)
	}
	var buf [batch.HeaderSize]byte
	var epoch int32
	for pos < s.size {
		if _, err := s.file.f.ReadAt(buf[:], pos); err != nil {
			return 0, false
		}
		h := batch.Header(buf[:])
		epoch = h.PartitionLeaderEpoch()
		pos += int64(h.Size())
	}
	return epoch, true
}
