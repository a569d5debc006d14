package segment

import (
	"encoding/binary"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

const (
	offsetEntrySize = 8  // relative offset u32, position u32
	timeEntrySize   = 12 // timestamp i64, relative offset u32
)

// mmapIndex is a file of fixed-size entries, mapped into memory. While its
// segment is active the file is preallocated to its full capacity so entries can
// be written into the mapping without growing anything; when the segment rolls or
// the log closes, the file is cut to the entries in use.
//
// Concurrency: the appender writes entries at [n, cap) and then publishes a new n
// under the Log's lock; readers search [0, n) under the Log's read lock. Unmapping
// (trim, close) happens only under the Log's write lock, so no reader can be inside
// the mapping when it goes away.
type mmapIndex struct {
	path      string
	entrySize int
	f         *os.File
	data      []byte // the mapping; len is the capacity in bytes
	n         int    // entries in use
}

// openIndex opens or creates an index file. A writable index is extended to
// maxBytes (rounded down to whole entries); the entries already in the file
// are taken as in use, to be checked by the caller, since after a crash the
// tail of a preallocated file is zeros.
func openIndex(path string, entrySize int, maxBytes int, writable bool) (*mmapIndex, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	ix := &mmapIndex{path: path, entrySize: entrySize, f: f}
	ix.n = int(st.Size()) / entrySize
	capBytes := ix.n * entrySize
	if writable {
		capBytes = max(maxBytes/entrySize*entrySize, capBytes)
	}
	if err := ix.mapBytes(capBytes); err != nil {
		f.Close()
		return nil, err
	}
	return ix, nil
}

func (ix *mmapIndex) mapBytes(capBytes int) error {
	if err := ix.f.Truncate(int64(capBytes)); err != nil {
		return fmt.Errorf("segment: sizing %s: %w", ix.path, err)
	}
	ix.data = nil
	if capBytes == 0 {
		return nil
	}
	data, err := unix.Mmap(int(ix.f.Fd()), 0, capBytes, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("segment: mmap %s: %w", ix.path, err)
	}
	// A page fault on a file mapping reads ahead around the faulting page,
	// and over the preallocated tail of an active index that is a hole, so
	// the kernel zeroes up to megabytes of page cache for one 8-byte entry:
	// writing the first entries of a new 10 MiB index made 8 MiB of it
	// resident, which cost new segments as much memory bandwidth as their
	// data and left every active partition holding megabytes of zeros in
	// the cache. Entries are written one page at a time and found by
	// binary search, neither of which gains from readahead. A mapping of
	// entries alone (a rolled segment's) has no hole and keeps the default.
	if capBytes > ix.n*ix.entrySize {
		if err := unix.Madvise(data, unix.MADV_RANDOM); err != nil {
			unix.Munmap(data)
			return fmt.Errorf("segment: madvise %s: %w", ix.path, err)
		}
	}
	ix.data = data
	return nil
}

func (ix *mmapIndex) unmap() error {
	if ix.data == nil {
		return nil
	}
	err := unix.Munmap(ix.data)
	ix.data = nil
	return err
}

// capacity is the number of entries the mapping can hold.
func (ix *mmapIndex) capacity() int { return len(ix.data) / ix.entrySize }

func (ix *mmapIndex) full() bool { return ix.n >= ix.capacity() }

// resize maps the file at a new capacity, keeping the first n entries.
func (ix *mmapIndex) resize(capBytes int) error {
	if err := ix.unmap(); err != nil {
		return err
	}
	return ix.mapBytes(capBytes)
}

// trim cuts the file to the entries in use: the index of a segment that is no
// longer written.
func (ix *mmapIndex) trim() error { return ix.resize(ix.n * ix.entrySize) }

// sync writes the mapping and the file's size to stable storage.
func (ix *mmapIndex) sync() error {
	if ix.data != nil {
		if err := unix.Msync(ix.data, unix.MS_SYNC); err != nil {
			return fmt.Errorf("segment: msync %s: %w", ix.path, err)
		}
	}
	return ix.f.Sync()
}

// close unmaps the index and cuts the file to its entries in use.
func (ix *mmapIndex) close() error {
	err := ix.unmap()
	if terr := ix.f.Truncate(int64(ix.n * ix.entrySize)); err == nil {
		err = terr
	}
	if cerr := ix.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// replace drops every entry and maps the file afresh, zeroed, at capBytes.
func (ix *mmapIndex) replace(capBytes int) error {
	ix.n = 0
	if err := ix.resize(0); err != nil {
		return err
	}
	return ix.resize(capBytes)
}

// Offset index entries: (offset - segment base) u32, position u32.

func (ix *mmapIndex) offsetEntry(i int) (rel uint32, pos uint32) {
	e := ix.data[i*offsetEntrySize:]
	return binary.BigEndian.Uint32(e), binary.BigEndian.Uint32(e[4:])
}

// putOffset writes entry n without publishing it; the caller advances n.
func (ix *mmapIndex) putOffset(i int, rel, pos uint32) {
	e := ix.data[i*offsetEntrySize:]
	binary.BigEndian.PutUint32(e, rel)
	binary.BigEndian.PutUint32(e[4:], pos)
}

// lookupOffset returns the position of the last entry whose relative offset is
// at most rel, or 0 when there is none (the start of the segment). A binary
// search over the mapping: no allocation, no system call.
func (ix *mmapIndex) lookupOffset(rel uint32) uint32 {
	lo, hi := 0, ix.n // find the first entry with offset > rel
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if r, _ := ix.offsetEntry(mid); r <= rel {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == 0 {
		return 0
	}
	_, pos := ix.offsetEntry(lo - 1)
	return pos
}

// Time index entries: timestamp i64, (offset - segment base) u32.

func (ix *mmapIndex) timeEntry(i int) (ts int64, rel uint32) {
	e := ix.data[i*timeEntrySize:]
	return int64(binary.BigEndian.Uint64(e)), binary.BigEndian.Uint32(e[8:])
}

func (ix *mmapIndex) putTime(i int, ts int64, rel uint32) {
	e := ix.data[i*timeEntrySize:]
	binary.BigEndian.PutUint64(e, uint64(ts))
	binary.BigEndian.PutUint32(e[8:], rel)
}

// lastTimestamp is the newest entry's timestamp, or -1 with no entries.
func (ix *mmapIndex) lastTimestamp() int64 {
	if ix.n == 0 {
		return -1
	}
	ts, _ := ix.timeEntry(ix.n - 1)
	return ts
}

// lookupTime returns the relative offset of the last entry whose timestamp is
// strictly below ts, and whether there is one. Every batch up to and including
// the one at that offset has a timestamp below ts, so a search for the first
// batch at or after ts may start there.
func (ix *mmapIndex) lookupTime(ts int64) (uint32, bool) {
	lo, hi := 0, ix.n // first entry with timestamp >= ts
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if t, _ := ix.timeEntry(mid); t < ts {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == 0 {
		return 0, false
	}
	_, rel := ix.timeEntry(lo - 1)
	return rel, true
}

// checkOffsetIndex reports whether the offset index is consistent with a log of
// logSize bytes: relative offsets and positions strictly increasing and inside
// the log. A zeroed tail (a crash before the index was trimmed) fails, since no
// entry can point at position 0.
func (ix *mmapIndex) checkOffsetIndex(logSize int64) error {
	var prevRel, prevPos uint32
	for i := range ix.n {
		rel, pos := ix.offsetEntry(i)
		if pos == 0 || int64(pos) >= logSize || (i > 0 && (rel <= prevRel || pos <= prevPos)) {
			return fmt.Errorf("%w: %s entry %d (offset +%d, position %d) after (+%d, %d), log %d bytes",
				ErrCorruption, ix.path, i, rel, pos, prevRel, prevPos, logSize)
		}
		prevRel, prevPos = rel, pos
	}
	return nil
}

// checkTimeIndex reports whether the time index is consistent: timestamps
// strictly increasing, offsets non-decreasing and no further than lastRel.
func (ix *mmapIndex) checkTimeIndex(lastRel uint32) error {
	var prevTs int64
	var prevRel uint32
	for i := range ix.n {
		ts, rel := ix.timeEntry(i)
		if rel > lastRel || (i > 0 && (ts <= prevTs || rel < prevRel)) {
			return fmt.Errorf("%w: %s entry %d (time %d, offset +%d) after (%d, +%d), last offset +%d",
				ErrCorruption, ix.path, i, ts, rel, prevTs, prevRel, lastRel)
		}
		prevTs, prevRel = ts, rel
	}
	return nil
}
