package segment

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"gregor/batch"
)

// The hot paths do not allocate in steady state (DESIGN §5): appending a
// validated batch, finding and returning the regions of a read, and copying a
// read into the caller's buffer. Rolls, the first append of a leader epoch and
// errors may allocate; none happens inside the measured runs.

// openAllocLog opens an empty log in a fresh test directory.
func openAllocLog(t *testing.T, cfg Config) *Log {
	t.Helper()
	l, err := Open(t.TempDir(), cfg, OpenOptions{CleanShutdown: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	return l
}

func TestAllocAppend(t *testing.T) {
	cfg := DefaultConfig() // 1 GiB segments: no roll in the runs below
	cfg.SegmentIndexBytes = 1 << 20
	l := openAllocLog(t, cfg)
	data := benchBatch(t, 16<<10, 1)
	appendOnce := func() {
		if _, err := l.Append(data, 0); err != nil {
			t.Fatal(err)
		}
	}
	for range 4 { // warm-up: the first append records leader epoch 0
		appendOnce()
	}
	before := l.Segments()
	allocs := testing.AllocsPerRun(200, appendOnce)
	if after := l.Segments(); len(after) != len(before) {
		t.Fatalf("the log rolled during the measured runs: %d segments, then %d", len(before), len(after))
	}
	if allocs != 0 {
		t.Errorf("Log.Append of a %d-byte batch: %v allocations per call, want 0", len(data), allocs)
	}
}

// checkReadAllocs fails a read path that allocates, unless the allocations are
// the standard library's own: under the race detector, syscall.Pread hands the
// buffer it filled to the race runtime (race.WriteRange), which escape analysis
// cannot see through, so any stack buffer passed to (*os.File).ReadAt, such as
// the one segment.readHead reads each batch header into, moves to the heap.
// Built without -race the same code keeps it on the stack. The probe below
// shows which build this is rather than trusting a build tag.
func checkReadAllocs(t *testing.T, what string, allocs float64) {
	t.Helper()
	if allocs == 0 {
		return
	}
	if probe := stackPreadAllocs(t); probe != 0 {
		t.Skipf("%s: %v allocations per call, but in this build a pread into a stack buffer "+
			"itself allocates %v times (the race detector makes it escape); without -race it allocates 0 times",
			what, allocs, probe)
	}
	t.Errorf("%s: %v allocations per call, want 0", what, allocs)
}

// stackPreadAllocs is the number of allocations of one (*os.File).ReadAt of a
// batch header into a stack array, as segment.readHead does it.
func stackPreadAllocs(t *testing.T) float64 {
	t.Helper()
	path := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(path, make([]byte, batch.HeaderSize), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return testing.AllocsPerRun(20, func() {
		var buf [batch.HeaderSize]byte
		if _, err := f.ReadAt(buf[:], 0); err != nil {
			t.Fatal(err)
		}
	})
}

// readAllocLog returns a log of several small segments of about 4 KiB batches,
// indexed every 4096 bytes as by default.
func readAllocLog(t *testing.T) (*Log, []SegmentInfo) {
	t.Helper()
	l := openAllocLog(t, Config{
		SegmentBytes:       256 << 10,
		SegmentIndexBytes:  64 << 10,
		IndexIntervalBytes: 4096,
		RetentionMs:        -1,
		RetentionBytes:     -1,
	})
	data := benchBatch(t, 4<<10, 3)
	for range 200 {
		if _, err := l.Append(data, 0); err != nil {
			t.Fatal(err)
		}
	}
	segs := l.Segments()
	if len(segs) < 3 || segs[1].IndexEntries < 8 {
		t.Fatalf("want at least 3 segments of many indexed batches, have %+v", segs)
	}
	return l, segs
}

// allocReadCases are a read from the middle of a segment that stays inside it,
// and one that starts at the last record of a segment and runs into the next.
func allocReadCases(segs []SegmentInfo) []struct {
	name     string
	offset   int64
	maxBytes int
	regions  int
} {
	return []struct {
		name     string
		offset   int64
		maxBytes int
		regions  int
	}{
		{"mid-segment", (segs[1].BaseOffset + segs[1].NextOffset) / 2, 8 << 10, 1},
		{"across-segments", segs[0].NextOffset - 1, 16 << 10, 2},
	}
}

func TestAllocRead(t *testing.T) {
	l, segs := readAllocLog(t)
	for _, tc := range allocReadCases(segs) {
		t.Run(tc.name, func(t *testing.T) {
			dst := make([]Region, 0, 8)
			read := func() {
				var err error
				if dst, err = l.Read(dst[:0], tc.offset, tc.maxBytes, math.MaxInt64); err != nil {
					t.Fatal(err)
				}
				ReleaseAll(dst)
			}
			read()
			if len(dst) != tc.regions {
				t.Fatalf("Read(%d, %d): %d regions %+v, want %d", tc.offset, tc.maxBytes, len(dst), dst, tc.regions)
			}
			if tc.regions == 1 && dst[0].Position == 0 {
				t.Fatalf("Read(%d) starts at position 0: not a lookup inside the segment", tc.offset)
			}
			checkReadAllocs(t, fmt.Sprintf("Log.Read(%d, %d) into a reused dst", tc.offset, tc.maxBytes),
				testing.AllocsPerRun(200, read))
		})
	}
}

func TestAllocReadBytes(t *testing.T) {
	l, segs := readAllocLog(t)
	for _, tc := range allocReadCases(segs) {
		t.Run(tc.name, func(t *testing.T) {
			buf := make([]byte, 0, 2*tc.maxBytes)
			read := func() {
				var err error
				if buf, err = l.ReadBytes(buf[:0], tc.offset, tc.maxBytes, math.MaxInt64); err != nil {
					t.Fatal(err)
				}
			}
			read()
			if len(buf) != tc.maxBytes {
				t.Fatalf("ReadBytes(%d, %d): %d bytes", tc.offset, tc.maxBytes, len(buf))
			}
			checkReadAllocs(t, fmt.Sprintf("Log.ReadBytes(%d, %d) into a reused buffer", tc.offset, tc.maxBytes),
				testing.AllocsPerRun(200, read))
		})
	}
}
