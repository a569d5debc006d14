package segment

import (
	"os"
	"sync/atomic"

	"gregor/batch"
)

// File is a segment's .log file, shared by the Log and by every reader that holds
// a Region of it. It is reference counted: the Log holds one reference while the
// segment is part of the log, and Read takes one per Region it returns. A segment
// deleted by retention or truncation is unlinked at once but its descriptor stays
// open, and its bytes readable, until the last Region is released.
type File struct {
	f    *os.File
	name string
	refs atomic.Int64
}

func newFile(f *os.File) *File { return newFileNamed(f, f.Name()) }

// newFileNamed is newFile for a file opened under a temporary name that it
// will have been renamed from by the time anyone asks (a cleaned segment).
func newFileNamed(f *os.File, name string) *File {
	sf := &File{f: f, name: name}
	sf.refs.Store(1)
	return sf
}

// OS returns the open file, for sendfile(2) (its descriptor) or ReadAt at
// explicit positions. It must not be closed, seeked or written.
func (f *File) OS() *os.File { return f.f }

// Name is the file's path.
func (f *File) Name() string { return f.name }

func (f *File) acquire() { f.refs.Add(1) }

// Release drops one reference; the last closes the descriptor.
func (f *File) Release() {
	if n := f.refs.Add(-1); n == 0 {
		f.f.Close()
	} else if n < 0 {
		panic("segment: File released more often than acquired")
	}
}

// Region is a byte range of a segment file: what Read returns instead of bytes,
// so that a fetch can hand it to sendfile(2). The holder must call Release once
// it no longer needs the bytes.
type Region struct {
	File     *File
	Position int64
	Length   int64
}

// Release drops the region's reference on its file.
func (r Region) Release() { r.File.Release() }

// Truncate shortens rs to n bytes in all, the last region kept ending inside
// it if need be, and releases the regions it drops. A Fetch response applies
// it to every partition after the first with data: KIP-74 sends only that one's
// first batch whole, later ones end at their limit even inside a batch (which
// clients discard), as Kafka's do, or send nothing when their first batch
// does not fit (FirstBatchBytes).
func Truncate(rs []Region, n int64) []Region {
	for i, r := range rs {
		if n <= 0 {
			ReleaseAll(rs[i:])
			return rs[:i]
		}
		if r.Length > n {
			rs[i].Length = n
		}
		n -= rs[i].Length
	}
	return rs
}

// FirstBatchBytes is the size of the batch rs starts with, read from its
// header (one pread): what a Fetch response needs to tell whether a
// partition's first batch fits in what is left of its limits.
func FirstBatchBytes(rs []Region) (int64, error) {
	if len(rs) == 0 {
		return 0, nil
	}
	var hdr [batch.LengthOverhead]byte
	if _, err := rs[0].File.OS().ReadAt(hdr[:], rs[0].Position); err != nil {
		return 0, err
	}
	return int64(batch.Header(hdr[:]).BatchLength()) + batch.LengthOverhead, nil
}

// ReleaseAll releases every region in rs.
func ReleaseAll(rs []Region) {
	for _, r := range rs {
		r.File.Release()
	}
}
