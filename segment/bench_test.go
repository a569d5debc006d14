package segment

import (
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"gregor/batch"
)

// Benchmarks of the log's hot paths, each next to a baseline measured in the
// same run (DESIGN §5), so that the figure worth reading is a ratio:
//
//	go test -run='^$' -bench=. -benchtime=2s -count=6 ./segment > new.txt
//	benchstat -filter '.name:/^Append/' -col /impl new.txt   # and OffsetLookup, RecoveryScan
//
// Page-cache writes are noisy on shared or virtual machines (free memory handed
// back to the host, neighbours' load), and -count runs one sub-benchmark
// several times in a row; running the binary several times with -count=1
// interleaves log and file runs so drift hits both alike.
//
// BenchmarkAppend compares Log.Append with (*os.File).Write of the same bytes;
// BenchmarkOffsetLookup compares the index search and a whole Read lookup with
// the one pread(2) a lookup cannot avoid; BenchmarkRecoveryScan compares
// recovery of a full segment with CRC-32C over the same bytes in memory.

const (
	// benchValueBytes is the size of every record value the benchmarks write.
	benchValueBytes = 1 << 10
	// benchCycleBytes bounds what one Append benchmark log or file holds before
	// it is deleted and started again (outside the timer), so a long run does
	// not fill the disk. It is half the default segment.bytes, so no roll
	// happens while the timer runs: a roll starts a background fsync of the
	// whole old segment (as Kafka's does), which competes with the appends that
	// follow for the disk (measured: about half the plain write's speed);
	// that is the cost of flushing on roll, not of the append path this
	// benchmark compares with a plain write.
	benchCycleBytes = DefaultSegmentBytes / 2
	// fixtureBatchBytes is the batch size of the full-segment fixture.
	fixtureBatchBytes = 16 << 10
)

// discardLogger silences the recovery reports of benchmarks that recover a
// log over and over.
var discardLogger = slog.New(slog.DiscardHandler)

// benchSink keeps results alive so that the compiler cannot drop the work.
var benchSink uint64

var benchEvents = [...]string{"page_view", "search", "add_to_cart", "checkout", "login", "logout"}

const benchAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"

// appendBenchValue appends a benchValueBytes JSON event of the kind a
// clickstream producer sends: a few varied fields and an opaque payload, so
// the bytes are neither constant nor incompressible.
func appendBenchValue(dst []byte, rng *rand.Rand, tsMs int64) []byte {
	start := len(dst)
	dst = fmt.Appendf(dst, `{"ts":%d,"user":"user-%06d","event":"%s","path":"/catalog/item/%d","latency_us":%d,"payload":"`,
		tsMs, rng.IntN(1_000_000), benchEvents[rng.IntN(len(benchEvents))], rng.IntN(100_000), rng.IntN(50_000))
	for len(dst)-start < benchValueBytes-2 {
		dst = append(dst, benchAlphabet[rng.IntN(len(benchAlphabet))])
	}
	return append(dst, `"}`...)
}

// benchBatch returns one uncompressed RecordBatch v2 of 1 KiB records, as
// large as fits in targetBytes (at least one record), built with
// batch.Builder as a producer builds it. The same seed gives the same bytes.
func benchBatch(tb testing.TB, targetBytes int, seed uint64) []byte {
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	bld := batch.NewBuilder(batch.DefaultBuilderOptions())
	const baseTsMs = 1_700_000_000_000
	var key, val []byte
	for i := 0; ; i++ {
		ts := baseTsMs + int64(i)
		key = fmt.Appendf(key[:0], "user-%06d", rng.IntN(1_000_000))
		val = appendBenchValue(val[:0], rng, ts)
		if bld.Records() > 0 && bld.SizeWith(ts, key, val, nil) > targetBytes {
			break
		}
		bld.Add(ts, key, val, nil)
	}
	out, err := bld.AppendBatch(nil)
	if err != nil {
		tb.Fatal(err)
	}
	if err := batch.Validate(out, 0); err != nil {
		tb.Fatal(err)
	}
	return out
}

// BenchmarkAppend measures Log.Append of one batch per op with the default
// Config (1 GiB segments; no roll inside the timer, see benchCycleBytes), next to (*os.File).Write of the same
// bytes to a plain file in the same directory. Both are deleted and started
// again every benchCycleBytes, outside the timer, after an fsync (which closing
// the log does anyway), so both start every cycle with the same page-cache
// state.
func BenchmarkAppend(b *testing.B) {
	for _, size := range []struct {
		name  string
		bytes int
	}{{"16KiB", 16 << 10}, {"1MiB", 1 << 20}} {
		b.Run("size="+size.name, func(b *testing.B) {
			data := benchBatch(b, size.bytes, 1)
			b.Logf("batch: %d bytes, %d records", len(data), batch.Header(data).RecordCount())
			dir := b.TempDir()
			b.Run("impl=log", func(b *testing.B) { benchAppendLog(b, filepath.Join(dir, "bench-0"), data) })
			b.Run("impl=file", func(b *testing.B) { benchAppendFile(b, filepath.Join(dir, "plain.bin"), data) })
		})
	}
}

func benchAppendLog(b *testing.B, dir string, data []byte) {
	open := func() *Log {
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		l, err := Open(dir, DefaultConfig(), OpenOptions{CleanShutdown: true})
		if err != nil {
			b.Fatal(err)
		}
		return l
	}
	closeLog := func(l *Log) {
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
	}
	l := open()
	// Warm-up: a new log's first append records leader epoch 0 in its
	// checkpoint file, a cost paid once per log, not per append.
	if _, err := l.Append(data, 0); err != nil {
		b.Fatal(err)
	}
	written := int64(len(data))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Append(data, 0); err != nil {
			b.Fatal(err)
		}
		if written += int64(len(data)); written >= benchCycleBytes {
			b.StopTimer()
			closeLog(l)
			l, written = open(), 0
			b.StartTimer()
		}
	}
	closeLog(l)
	if err := os.RemoveAll(dir); err != nil {
		b.Fatal(err)
	}
}

func benchAppendFile(b *testing.B, path string, data []byte) {
	create := func() *os.File {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			b.Fatal(err)
		}
		return f
	}
	closeFile := func(f *os.File) {
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		if err := os.Remove(path); err != nil {
			b.Fatal(err)
		}
	}
	f := create()
	if _, err := f.Write(data); err != nil { // as the log's warm-up
		b.Fatal(err)
	}
	written := int64(len(data))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Write(data); err != nil {
			b.Fatal(err)
		}
		if written += int64(len(data)); written >= benchCycleBytes {
			b.StopTimer()
			closeFile(f)
			f, written = create(), 0
			b.StartTimer()
		}
	}
	closeFile(f)
}

// fullSegment is a log directory, shared by the benchmarks that need it and
// built by the first of them: a full default-size (1 GiB) segment of
// fixtureBatchBytes batches with index.interval.bytes 4096, then an active
// segment holding the batch that rolled it. The log is closed cleanly, so its
// data is on disk and in the page cache. TestMain deletes it.
var fullSegment struct {
	once   sync.Once
	tmp    string // the directory to delete
	logDir string
	err    error
}

func fullSegmentFixture(b *testing.B) string {
	b.Helper()
	fullSegment.once.Do(func() {
		fullSegment.tmp, fullSegment.err = os.MkdirTemp("", "gregor-segment-bench-")
		if fullSegment.err == nil {
			fullSegment.logDir = filepath.Join(fullSegment.tmp, "bench-0")
			fullSegment.err = buildFullSegment(b, fullSegment.logDir)
		}
	})
	if fullSegment.err != nil {
		b.Fatalf("building the full-segment fixture: %v", fullSegment.err)
	}
	return fullSegment.logDir
}

func buildFullSegment(tb testing.TB, dir string) error {
	cfg := DefaultConfig()
	if cfg.IndexIntervalBytes != 4096 || cfg.SegmentBytes != 1<<30 {
		return fmt.Errorf("the fixture assumes Kafka's defaults, have %+v", cfg)
	}
	l, err := Open(dir, cfg, OpenOptions{CleanShutdown: true})
	if err != nil {
		return err
	}
	data := benchBatch(tb, fixtureBatchBytes, 2)
	for len(l.Segments()) < 2 {
		if _, err := l.Append(data, 0); err != nil {
			l.Close()
			return err
		}
	}
	return l.Close()
}

func removeBenchFixtures() {
	if fullSegment.tmp != "" {
		os.RemoveAll(fullSegment.tmp)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	removeBenchFixtures()
	os.Exit(code)
}

// openFixture opens the full-segment fixture without a recovery scan and
// returns the log and its full (first) segment.
func openFixture(b *testing.B) (*Log, *segment) {
	b.Helper()
	l, err := Open(fullSegmentFixture(b), DefaultConfig(), OpenOptions{CleanShutdown: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := l.Close(); err != nil {
			b.Error(err)
		}
	})
	s := l.mu.segments[0]
	if len(l.mu.segments) != 2 || s.size < DefaultSegmentBytes-fixtureBatchBytes {
		b.Fatalf("fixture: want a full segment and an active one, have %+v", l.Segments())
	}
	return l, s
}

// BenchmarkOffsetLookup measures finding a random offset in a full 1 GiB
// segment: impl=index is the offset index's binary search alone; impl=read is
// a whole Log.Read position lookup (locks, segment search, index search, one
// header pread, a region acquired and released); impl=pread is the baseline,
// the bare pread(2) of one batch header at a known position that every lookup
// ends with. Point lookups move no bytes to speak of, so these report ns/op
// and no throughput.
func BenchmarkOffsetLookup(b *testing.B) {
	l, s := openFixture(b)
	rng := rand.New(rand.NewPCG(42, 7))
	const mask = 1<<12 - 1
	offsets := make([]int64, mask+1)
	positions := make([]int64, mask+1)
	for i := range offsets {
		offsets[i] = s.base + rng.Int64N(s.next-s.base)
		positions[i] = int64(s.index.lookupOffset(uint32(offsets[i] - s.base)))
	}
	b.Logf("segment: %d bytes, offsets [%d, %d), %d index entries", s.size, s.base, s.next, s.index.n)
	// Bring the headers the lookups read into the page cache, which may have
	// dropped them since the fixture was written: this measures lookups, not
	// the disk.
	var warm []Region
	for _, off := range offsets {
		var err error
		if warm, err = l.Read(warm[:0], off, 1, math.MaxInt64); err != nil {
			b.Fatal(err)
		}
		ReleaseAll(warm)
	}

	b.Run("impl=index", func(b *testing.B) {
		b.ReportAllocs()
		var sum uint64
		i := 0
		for b.Loop() {
			sum += uint64(s.index.lookupOffset(uint32(offsets[i&mask] - s.base)))
			i++
		}
		benchSink += sum
	})
	b.Run("impl=read", func(b *testing.B) {
		b.ReportAllocs()
		dst := make([]Region, 0, 4)
		var err error
		i := 0
		for b.Loop() {
			off := offsets[i&mask]
			if dst, err = l.Read(dst[:0], off, 1, math.MaxInt64); err != nil || len(dst) != 1 {
				b.Fatalf("Read(%d): %d regions, %v", off, len(dst), err)
			}
			benchSink += uint64(dst[0].Position)
			ReleaseAll(dst)
			i++
		}
	})
	b.Run("impl=pread", func(b *testing.B) {
		b.ReportAllocs()
		var buf [batch.HeaderSize]byte
		f := s.file.OS()
		i := 0
		for b.Loop() {
			if _, err := f.ReadAt(buf[:], positions[i&mask]); err != nil {
				b.Fatal(err)
			}
			benchSink += uint64(buf[0])
			i++
		}
	})
}

// BenchmarkRecoveryScan measures recovery after an unclean shutdown over the
// full 1 GiB segment: impl=scan is segment.scan with recovery's checks (every
// batch validated, CRC included, and both indexes rebuilt); impl=open is the
// whole of Open with CleanShutdown false and recovery point 0, over the log
// (the full segment and the one-batch active segment; the Close after each op
// is outside the timer); impl=crc is the baseline, CRC-32C over the same
// segment's bytes read into memory once. The segment is in the page cache, so
// this is the CPU cost of recovery, not the disk's.
func BenchmarkRecoveryScan(b *testing.B) {
	dir := fullSegmentFixture(b)

	b.Run("impl=crc", func(b *testing.B) {
		data, err := os.ReadFile(filepath.Join(dir, segmentName(0)+logSuffix))
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			benchSink += uint64(batch.CRC32C(data))
		}
	})
	b.Run("impl=scan", func(b *testing.B) {
		l, s := openFixture(b)
		size, next := s.size, s.next
		cfg := l.Config()
		scan := func() {
			rc := recoveryCheck{epoch: -1, compact: cfg.compacts()}
			res, err := s.scan(size, &cfg, &rc, false)
			if err != nil {
				b.Fatal(err)
			}
			if res.bad != nil || res.valid != size || res.next != next {
				b.Fatalf("scan: valid %d next %d bad %v, want valid %d next %d", res.valid, res.next, res.bad, size, next)
			}
		}
		scan() // warm-up: the page cache may have dropped the segment
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			scan()
		}
	})
	b.Run("impl=open", func(b *testing.B) {
		var size, end int64
		{ // also the warm-up: the page cache may have dropped the segment
			l, err := Open(dir, DefaultConfig(), OpenOptions{CleanShutdown: false, RecoveryPoint: 0, Logger: discardLogger})
			if err != nil {
				b.Fatal(err)
			}
			size, end = l.Size(), l.LogEndOffset()
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			l, err := Open(dir, DefaultConfig(), OpenOptions{CleanShutdown: false, RecoveryPoint: 0, Logger: discardLogger})
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if l.Size() != size || l.LogEndOffset() != end {
				b.Fatalf("recovery changed the log: %d bytes to %d, end %d to %d", size, l.Size(), end, l.LogEndOffset())
			}
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
}
