package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/twmb/franz-go/pkg/kerr"

	"gregor/batch"
)

// offsetBatch builds a batch whose records carry their own offsets in their
// values, so a reader can check it got the right bytes for the right offsets.
func offsetBatch(tb testing.TB, first int64, records int) []byte {
	tb.Helper()
	b := batch.NewBuilder(batch.DefaultBuilderOptions())
	for i := range records {
		v := make([]byte, 64)
		binary.BigEndian.PutUint64(v, uint64(first)+uint64(i))
		b.Add(1000+first+int64(i), nil, v, nil)
	}
	out, err := b.AppendBatch(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// checkBatches verifies that data holds whole, valid batches (but perhaps a
// partial last one) whose records carry their offsets, starting with the batch
// that holds from, and returns the offset after the last whole batch.
func checkBatches(data []byte, from int64) (int64, error) {
	it := batch.NewIter(data)
	next := int64(-1)
	var r batch.Record
	for h, ok := it.Next(); ok; h, ok = it.Next() {
		if err := batch.Validate(h, 0); err != nil {
			return 0, err
		}
		if next == -1 {
			if from < h.BaseOffset() || from > h.LastOffset() {
				return 0, fmt.Errorf("first batch %d-%d does not hold %d", h.BaseOffset(), h.LastOffset(), from)
			}
		} else if h.BaseOffset() != next {
			return 0, fmt.Errorf("batch at %d after one ending at %d", h.BaseOffset(), next)
		}
		rr, _, err := batch.DecodeRecords(h, nil, 1<<20)
		if err != nil {
			return 0, err
		}
		for rr.Next(&r) {
			if got, want := int64(binary.BigEndian.Uint64(r.Value)), h.BaseOffset()+int64(r.OffsetDelta); got != want {
				return 0, fmt.Errorf("record at offset %d holds %d", want, got)
			}
		}
		if rr.Err() != nil {
			return 0, rr.Err()
		}
		next = h.NextOffset()
	}
	return next, nil
}

// TestConcurrentReaders runs one appender, retention deleting old segments,
// and many readers at once (run it with -race): every read returns whole,
// valid batches starting at the requested offset, even when the segment it
// read from is deleted before the reader is done with its regions.
func TestConcurrentReaders(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 8 << 10
	cfg.RetentionBytes = 64 << 10
	l, err := Open(filepath.Join(t.TempDir(), "t-0"), cfg, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const batches = 3000
	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		defer done.Store(true)
		for i := range batches {
			next := l.LogEndOffset()
			if _, err := l.Append(offsetBatch(t, next, 1+i%4), 1); err != nil {
				t.Error(err)
				return
			}
			if i%50 == 0 {
				if _, err := l.EnforceRetention(); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	var reads atomic.Int64
	for r := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 1))
			var regions []Region
			var buf []byte
			for !done.Load() || reads.Load() < 1000 {
				start, end := l.LogStartOffset(), l.LogEndOffset()
				if end == start {
					continue
				}
				off := start + rng.Int64N(end-start)
				var err error
				regions, err = l.Read(regions[:0], off, 1+rng.IntN(4096), end)
				if errors.Is(err, ErrOffsetOutOfRange) {
					continue // retention moved the log start past off
				}
				if err != nil {
					t.Error(err)
					return
				}
				buf = buf[:0]
				for _, rg := range regions {
					n := len(buf)
					buf = append(buf, make([]byte, rg.Length)...)
					if _, err := rg.File.OS().ReadAt(buf[n:], rg.Position); err != nil {
						t.Error(err)
						return
					}
				}
				ReleaseAll(regions)
				if _, err := checkBatches(buf, off); err != nil {
					t.Errorf("read at %d: %v", off, err)
					return
				}
				reads.Add(1)
			}
		})
	}
	wg.Wait()
	if l.LogStartOffset() == 0 {
		t.Fatal("retention never ran: the test did not exercise deleted segments")
	}
	t.Logf("%d reads; log [%d, %d)", reads.Load(), l.LogStartOffset(), l.LogEndOffset())
}

// TestRegionOutlivesDeletedSegment: a region taken before retention deletes
// its segment still reads the old bytes.
func TestRegionOutlivesDeletedSegment(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 400
	cfg.RetentionBytes = 1
	dir := filepath.Join(t.TempDir(), "t-0")
	l, err := Open(dir, cfg, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for range 4 {
		if _, err := l.Append(offsetBatch(t, l.LogEndOffset(), 3), 0); err != nil {
			t.Fatal(err)
		}
	}
	regions, err := l.Read(nil, 0, 100, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := l.EnforceRetention(); err != nil || n == 0 {
		t.Fatalf("retention deleted %d segments: %v", n, err)
	}
	if _, err := os.Stat(regions[0].File.Name()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the deleted segment's file is still there: %v", err)
	}
	buf := make([]byte, regions[0].Length)
	if _, err := regions[0].File.OS().ReadAt(buf, regions[0].Position); err != nil {
		t.Fatalf("reading a held region of a deleted segment: %v", err)
	}
	if _, err := checkBatches(buf, 0); err != nil {
		t.Fatal(err)
	}
	ReleaseAll(regions)
	if _, err := regions[0].File.OS().ReadAt(buf, 0); err == nil {
		t.Fatal("the file is still open after its last region was released")
	}
}

// faultyOps injects storage failures.
type faultyOps struct {
	osFileOps
	mu        sync.Mutex
	failWrite error // next writes fail with this
	tear      bool  // a failing write first writes half its bytes
	failSync  error
	syncs     int
	dirSyncs  int           // syncDirs that have returned
	syncGate  chan struct{} // when set, the first datasync waits on it
	dirGate   chan struct{} // when set, the first syncDir waits on it
}

func (f *faultyOps) syncDir(dir string) error {
	f.mu.Lock()
	gate := f.dirGate
	f.dirGate = nil
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	err := f.osFileOps.syncDir(dir)
	f.mu.Lock()
	f.dirSyncs++
	f.mu.Unlock()
	return err
}

func (f *faultyOps) dirSyncsDone() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dirSyncs
}

func (f *faultyOps) writeAt(file *os.File, b []byte, off int64) (int, error) {
	f.mu.Lock()
	err, tear := f.failWrite, f.tear
	f.mu.Unlock()
	if err == nil {
		return f.osFileOps.writeAt(file, b, off)
	}
	if tear {
		n, _ := f.osFileOps.writeAt(file, b[:len(b)/2], off)
		return n, err
	}
	return 0, err
}

func (f *faultyOps) datasync(file *os.File) error {
	f.mu.Lock()
	f.syncs++
	err, gate := f.failSync, f.syncGate
	f.syncGate = nil
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if err != nil {
		return err
	}
	return f.osFileOps.datasync(file)
}

// openFaulty opens a log in a test directory whose writes and fsyncs go
// through a faultyOps the test controls.
func openFaulty(t *testing.T, cfg Config, o OpenOptions) (*Log, *faultyOps) {
	t.Helper()
	l, err := Open(filepath.Join(t.TempDir(), "t-0"), cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ops := &faultyOps{}
	l.io = ops
	return l, ops
}

// TestWriteFailureStopsTheLog: a failed write marks the log failed; every
// later call returns that error (KAFKA_STORAGE_ERROR); acknowledged data
// survives, and the torn write is cut away by recovery.
func TestWriteFailureStopsTheLog(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "t-0")
	l, err := Open(dir, testConfig(), OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ops := &faultyOps{}
	l.io = ops
	for range 3 {
		if _, err := l.Append(offsetBatch(t, l.LogEndOffset(), 2), 0); err != nil {
			t.Fatal(err)
		}
	}
	ops.failWrite, ops.tear = errors.New("injected: no space left on device"), true
	_, err = l.Append(offsetBatch(t, 6, 2), 0)
	if !errors.Is(err, ErrLogFailed) || !errors.Is(err, kerr.KafkaStorageError) {
		t.Fatalf("append after a failed write: %v, want ErrLogFailed wrapping KAFKA_STORAGE_ERROR", err)
	}
	ops.failWrite = nil // the disk recovers, but the log stays failed
	if _, err2 := l.Append(offsetBatch(t, 6, 2), 0); !errors.Is(err2, ErrLogFailed) {
		t.Fatalf("append on a failed log: %v", err2)
	}
	if _, err2 := l.Read(nil, 0, 100, 1<<62); !errors.Is(err2, ErrLogFailed) {
		t.Fatalf("read on a failed log: %v", err2)
	}
	if err2 := l.Flush(); !errors.Is(err2, ErrLogFailed) {
		t.Fatalf("flush on a failed log: %v", err2)
	}
	if err2 := l.Truncate(2); !errors.Is(err2, ErrLogFailed) {
		t.Fatalf("truncate on a failed log: %v", err2)
	}
	if l.LogEndOffset() != 6 {
		t.Fatalf("log end %d after a failed append, want 6", l.LogEndOffset())
	}
	crash(l)
	l, err = Open(dir, testConfig(), OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.LogEndOffset() != 6 {
		t.Fatalf("recovered log end %d, want the 6 acknowledged records", l.LogEndOffset())
	}
	data, err := l.ReadBytes(nil, 0, 1<<20, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	if next, err := checkBatches(data, 0); err != nil || next != 6 {
		t.Fatalf("recovered data: next %d, %v", next, err)
	}
}

// TestFsyncFailureStopsTheLog: with flush.messages=1 an append waits for its
// fsync, and a failed fsync fails the append and the log.
func TestFsyncFailureStopsTheLog(t *testing.T) {
	cfg := testConfig()
	cfg.FlushMessages = 1
	l, ops := openFaulty(t, cfg, OpenOptions{})
	if _, err := l.Append(offsetBatch(t, 0, 2), 0); err != nil {
		t.Fatal(err)
	}
	if ops.syncs != 1 || l.RecoveryPoint() != 2 {
		t.Fatalf("after one append with flush.messages=1: %d fsyncs, recovery point %d", ops.syncs, l.RecoveryPoint())
	}
	ops.failSync = errors.New("injected: EIO")
	if _, err := l.Append(offsetBatch(t, 2, 2), 0); !errors.Is(err, ErrLogFailed) {
		t.Fatalf("append with a failing fsync: %v", err)
	}
	if _, err := l.Append(offsetBatch(t, 4, 2), 0); !errors.Is(err, ErrLogFailed) {
		t.Fatalf("append after a failed fsync: %v", err)
	}
	if l.RecoveryPoint() != 2 {
		t.Fatalf("recovery point moved to %d past a failed fsync", l.RecoveryPoint())
	}
}

// TestGroupCommit: appends that arrive while an fsync runs wait for it, and
// the next single fsync covers all of them.
func TestGroupCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.FlushMessages = 1
		cfg.SegmentBytes = 1 << 20
		l, ops := openFaulty(t, cfg, OpenOptions{})
		gate := make(chan struct{})
		ops.syncGate = gate
		const appenders = 10
		batches := make([][]byte, appenders)
		for i := range batches {
			batches[i] = offsetBatch(t, 0, 1)
		}
		var wg sync.WaitGroup
		for i := range appenders {
			wg.Go(func() {
				info, err := l.Append(batches[i], 0)
				if err != nil {
					t.Error(err)
				}
				if rp := l.RecoveryPoint(); rp <= info.LastOffset {
					t.Errorf("append of offset %d returned before an fsync covered it (recovery point %d)", info.LastOffset, rp)
				}
			})
		}
		synctest.Wait() // one appender is in fsync, the others wait on it
		close(gate)
		wg.Wait()
		if ops.syncs != 2 {
			t.Fatalf("%d appends took %d fsyncs, want 2 (the one running, then one for all that waited)", appenders, ops.syncs)
		}
	})
}

// TestFlushSyncsNewSegmentDir: with flush.messages=1, an append that rolls
// returns only once a directory fsync has covered the new segment's entry,
// not while the roll's background one is held up: an acknowledged record
// must not sit in a file a crash could unlink.
func TestFlushSyncsNewSegmentDir(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.FlushMessages = 1
		l, ops := openFaulty(t, cfg, OpenOptions{})
		b := offsetBatch(t, 0, 4)
		for l.Size()+int64(len(b)) <= cfg.SegmentBytes {
			appendBatch(t, l, offsetBatch(t, l.LogEndOffset(), 4))
		}
		synctest.Wait() // no directory fsync from before is still running
		before := ops.dirSyncsDone()
		gate := make(chan struct{})
		ops.mu.Lock()
		ops.dirGate = gate // whichever directory fsync comes first waits
		ops.mu.Unlock()
		done := make(chan struct{})
		go func() {
			defer close(done)
			info := appendBatch(t, l, offsetBatch(t, l.LogEndOffset(), 4))
			if !info.Rolled {
				t.Error("the append did not roll")
			}
			if n := ops.dirSyncsDone(); n == before {
				t.Errorf("an append with flush.messages=1 returned (recovery point %d, new segment at %d) before any directory fsync since its roll",
					l.RecoveryPoint(), info.FirstOffset)
			}
		}()
		synctest.Wait()
		close(gate)
		<-done
	})
}

// TestFlushRacingTruncate: a truncation while an fsync runs leaves the
// recovery point at or below the new log end, not at the end the fsync
// began with, so that later appends with flush.messages=1 are fsynced.
func TestFlushRacingTruncate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		l, ops := openFaulty(t, cfg, OpenOptions{})
		for range 20 {
			appendBatch(t, l, offsetBatch(t, l.LogEndOffset(), 4))
		}
		synctest.Wait() // the rolls' background fsyncs are done
		appendBatch(t, l, offsetBatch(t, l.LogEndOffset(), 4))
		if rp, end := l.RecoveryPoint(), l.LogEndOffset(); rp >= end || rp <= 8 {
			t.Fatalf("recovery point %d, log end %d: want the flush to have something to do, all above the cut", rp, end)
		}
		gate := make(chan struct{})
		ops.mu.Lock()
		ops.syncGate = gate
		ops.mu.Unlock()
		flushed := make(chan error)
		go func() { flushed <- l.Flush() }()
		synctest.Wait() // the flush waits in its first fsync
		if err := l.Truncate(8); err != nil {
			t.Fatal(err)
		}
		close(gate)
		if err := <-flushed; err != nil {
			t.Fatal(err)
		}
		if rp, end := l.RecoveryPoint(), l.LogEndOffset(); rp > end {
			t.Fatalf("recovery point %d past the log end %d after a flush raced a truncation", rp, end)
		}
		cfg.FlushMessages = 1
		if err := l.SetConfig(cfg); err != nil {
			t.Fatal(err)
		}
		ops.mu.Lock()
		before := ops.syncs
		ops.mu.Unlock()
		info := appendBatch(t, l, offsetBatch(t, l.LogEndOffset(), 4))
		ops.mu.Lock()
		after := ops.syncs
		ops.mu.Unlock()
		if after == before || l.RecoveryPoint() <= info.LastOffset {
			t.Fatalf("an append with flush.messages=1 after the race: %d fsyncs, recovery point %d, last offset %d", after-before, l.RecoveryPoint(), info.LastOffset)
		}
	})
}

// TestAppendRejects: what Append refuses, with nothing written.
func TestAppendRejects(t *testing.T) {
	cfg := testConfig()
	l, err := Open(filepath.Join(t.TempDir(), "t-0"), cfg, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	good := offsetBatch(t, 0, 2)
	big := buildBatch(t, batchSpec{records: 1, valueSize: int(cfg.SegmentBytes)})
	for _, tc := range []struct {
		name  string
		bytes []byte
		epoch int32
		want  error
	}{
		{"empty", nil, 0, kerr.InvalidRecord},
		{"torn", good[:len(good)-1], 0, batch.ErrLength},
		{"short", good[:30], 0, batch.ErrShort},
		{"good then torn", append(append([]byte{}, good...), good[:40]...), 0, batch.ErrShort},
		{"larger than a segment", big, 0, kerr.RecordListTooLarge},
	} {
		if _, err := l.Append(tc.bytes, tc.epoch); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if l.LogEndOffset() != 0 || l.Size() != 0 {
		t.Fatalf("rejected appends wrote something: log end %d, %d bytes", l.LogEndOffset(), l.Size())
	}
	if _, err := l.Append(good, 5); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(offsetBatch(t, 2, 1), 4); !errors.Is(err, kerr.FencedLeaderEpoch) {
		t.Fatalf("append with an older leader epoch: %v", err)
	}
}

// TestFlushMs: with flush.ms set, an append fsyncs once the last fsync is that
// old, and FlushIfDue (the periodic scheduler's call) fsyncs a quiet log.
func TestFlushMs(t *testing.T) {
	clock := newFakeClock(1_000_000)
	cfg := testConfig()
	cfg.FlushMs = 1000
	l, ops := openFaulty(t, cfg, OpenOptions{Now: clock.Now})
	if _, err := l.Append(offsetBatch(t, 0, 2), 0); err != nil {
		t.Fatal(err)
	}
	if ops.syncs != 0 || l.RecoveryPoint() != 0 {
		t.Fatalf("fsynced before flush.ms passed: %d fsyncs, recovery point %d", ops.syncs, l.RecoveryPoint())
	}
	if err := l.FlushIfDue(); err != nil || ops.syncs != 0 {
		t.Fatalf("FlushIfDue before flush.ms: %d fsyncs, %v", ops.syncs, err)
	}
	clock.Set(1_001_000)
	if err := l.FlushIfDue(); err != nil || ops.syncs != 1 || l.RecoveryPoint() != 2 {
		t.Fatalf("FlushIfDue after flush.ms: %d fsyncs, recovery point %d, %v", ops.syncs, l.RecoveryPoint(), err)
	}
	if err := l.FlushIfDue(); err != nil || ops.syncs != 1 {
		t.Fatalf("FlushIfDue with nothing new fsynced again: %d fsyncs, %v", ops.syncs, err)
	}
	clock.Set(1_002_500)
	if _, err := l.Append(offsetBatch(t, 2, 2), 0); err != nil {
		t.Fatal(err)
	}
	if ops.syncs != 2 || l.RecoveryPoint() != 4 {
		t.Fatalf("an append after flush.ms did not fsync: %d fsyncs, recovery point %d", ops.syncs, l.RecoveryPoint())
	}
}

// TestSegmentJitter: segment.jitter.ms rolls each segment up to that much
// before segment.ms, by an amount drawn per segment: never before
// segment.ms minus the jitter, always by segment.ms, and in between for
// some segments and not others.
func TestSegmentJitter(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentMs, cfg.SegmentJitterMs = 1000, 500
	l := openLog(t, filepath.Join(t.TempDir(), "t-0"), cfg, OpenOptions{})
	segments := func() int {
		l.mu.RLock()
		defer l.mu.RUnlock()
		return len(l.mu.segments)
	}
	at := func(ts int64) { appendBatch(t, l, keyedBatch(t, batch.CodecNone, ts, kv("k", "v"))) }
	// Each trial starts a segment at ts, appends at ts+span and reports
	// whether that rolled it; the next trial's first batch rolls for sure.
	ts := int64(10_000)
	rolled := func(span int64) bool {
		ts += 5000
		at(ts)
		n := segments()
		at(ts + span)
		return segments() > n
	}
	between := 0
	for range 40 {
		if rolled(500) {
			t.Fatal("a segment rolled within segment.ms minus segment.jitter.ms")
		}
		if !rolled(1001) {
			t.Fatal("a segment did not roll past segment.ms")
		}
		if rolled(800) {
			between++
		}
	}
	// Each of 40 segments rolls at 800 ms with probability 0.6: all or
	// none of them doing so has odds of about 1 in 10^9.
	if between == 0 || between == 40 {
		t.Fatalf("%d of 40 segments rolled at 800 ms, with segment.ms 1000 and segment.jitter.ms 500", between)
	}
}

// TestModTimes: one entry per segment, in order, each the segment's file
// time; the files' references are given back; a closed log answers
// ErrClosed.
func TestModTimes(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 400
	l := openLog(t, t.TempDir(), cfg, OpenOptions{})
	for range 4 {
		appendBatch(t, l, offsetBatch(t, l.LogEndOffset(), 3))
	}
	segs := l.Segments()
	if len(segs) < 3 {
		t.Fatalf("%d segments, the test needs rolls", len(segs))
	}
	// The rolls' background fsyncs hold references of their own.
	l.background.Wait()
	got, err := l.ModTimes()
	if err != nil || len(got) != len(segs) {
		t.Fatalf("ModTimes: %d entries, %v; want %d", len(got), err, len(segs))
	}
	l.mu.RLock()
	for i, s := range l.mu.segments {
		fi, err := os.Stat(s.file.Name())
		if err != nil {
			t.Fatal(err)
		}
		if got[i].BaseOffset != segs[i].BaseOffset || !got[i].ModTime.Equal(fi.ModTime()) {
			t.Errorf("segment %d: %+v, want base %d at %v", i, got[i], segs[i].BaseOffset, fi.ModTime())
		}
		if refs := s.file.refs.Load(); refs != 1 {
			t.Errorf("segment %d: %d references after ModTimes, want the log's one", i, refs)
		}
	}
	l.mu.RUnlock()
	l.Close()
	if _, err := l.ModTimes(); !errors.Is(err, ErrClosed) {
		t.Fatalf("ModTimes of a closed log: %v", err)
	}
}
