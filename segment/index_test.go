package segment

import (
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestIndexFaultsOnlyPagesItWrites checks that writing the first entries of
// an active segment's preallocated index brings only the pages written into
// the page cache. Without MADV_RANDOM on the mapping, the first fault read
// ahead over the index's hole, and the kernel zeroed 8 MiB of a 10 MiB index
// (16 MiB per new segment counting the time index) for a page of entries.
func TestIndexFaultsOnlyPagesItWrites(t *testing.T) {
	cfg := DefaultConfig() // 10 MiB indexes
	dir := t.TempDir()
	l, err := Open(dir, cfg, OpenOptions{CleanShutdown: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	data := benchBatch(t, 16<<10, 1)
	const batches = 64 // one entry each (index.interval.bytes is 4 KiB): under a page
	for range batches {
		if _, err := l.Append(data, 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, suffix := range []string{indexSuffix, timeIndexSuffix} {
		path := filepath.Join(dir, "00000000000000000000"+suffix)
		size, resident := residentPages(t, path)
		if size < cfg.SegmentIndexBytes/os.Getpagesize() {
			t.Fatalf("%s: %d pages, want the preallocated %d bytes", suffix, size, cfg.SegmentIndexBytes)
		}
		// The entries fill one page; allow a neighbour in case the
		// kernel maps a pair.
		if resident > 2 {
			t.Errorf("%s: %d of %d pages in the page cache after %d entries, want at most 2", suffix, resident, size, batches)
		}
	}
}

// residentPages maps the file read-only and asks mincore(2) how many of its
// pages are in the page cache; mapping without touching faults nothing in.
func residentPages(t *testing.T, path string) (pages, resident int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() == 0 {
		return 0, 0
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	for _, v := range vec {
		resident += int(v & 1)
	}
	return len(vec), resident
}
