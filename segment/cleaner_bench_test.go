package segment

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gregor/batch"
)

// BenchmarkClean measures one cleaning pass over a compacted log with
// cleanBenchBytes of closed segments (1 KiB clickstream values, keys drawn
// from cleanBenchKeys users, so about one record in eight is the newest of
// its key), uncompressed and zstd: impl=clean is Cleaner.Clean, the offset
// map built, every closed segment rewritten, fsynced and swapped in;
// impl=decode reads the same bytes and decodes every record (CRC,
// decompression, record iteration), the least any cleaner must do twice;
// impl=read is the baseline, a plain sequential read of the same files. The
// log is restored from a copy before each pass, outside the timer. Bytes/s
// is over the closed segments' size.
//
//	go test -run='^$' -bench=BenchmarkClean -count=6 ./segment > new.txt
//	benchstat -col /impl new.txt
func BenchmarkClean(b *testing.B) {
	for _, codec := range []batch.Codec{batch.CodecNone, batch.CodecZstd} {
		b.Run("codec="+codec.String(), func(b *testing.B) {
			fixture := filepath.Join(b.TempDir(), "fixture-0")
			size := cleanBenchFixture(b, fixture, codec)
			work := filepath.Join(b.TempDir(), "work-0")
			b.Run("impl=clean", func(b *testing.B) { benchCleanPass(b, fixture, work, size) })
			b.Run("impl=decode", func(b *testing.B) { benchCleanRead(b, fixture, size, true) })
			b.Run("impl=read", func(b *testing.B) { benchCleanRead(b, fixture, size, false) })
		})
	}
}

const (
	cleanBenchBytes = 32 << 20
	cleanBenchKeys  = 4000
)

func cleanBenchConfig() Config {
	cfg := DefaultConfig()
	cfg.CleanupPolicy = "compact"
	cfg.SegmentBytes = 8 << 20
	return cfg
}

// cleanBenchFixture writes the fixture log and returns the size of its
// closed segments.
func cleanBenchFixture(b *testing.B, dir string, codec batch.Codec) int64 {
	rng := rand.New(rand.NewPCG(7, 11))
	l, err := Open(dir, cleanBenchConfig(), OpenOptions{Logger: discardLogger})
	if err != nil {
		b.Fatal(err)
	}
	opts := batch.DefaultBuilderOptions()
	opts.Codec = codec
	bld := batch.NewBuilder(opts)
	var key, val, out []byte
	ts := int64(1_700_000_000_000)
	for l.Size() < cleanBenchBytes+cleanBenchConfig().SegmentBytes/2 {
		bld.Reset(opts)
		for range 16 {
			ts++
			key = fmt.Appendf(key[:0], "user-%06d", rng.IntN(cleanBenchKeys))
			val = appendBenchValue(val[:0], rng, ts)
			bld.Add(ts, key, val, nil)
		}
		if out, err = bld.AppendBatch(out[:0]); err != nil {
			b.Fatal(err)
		}
		if _, err := l.Append(out, 0); err != nil {
			b.Fatal(err)
		}
	}
	var closed int64
	segs := l.Segments()
	for _, s := range segs[:len(segs)-1] {
		closed += s.Size
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	return closed
}

func benchCleanPass(b *testing.B, fixture, work string, size int64) {
	c := NewCleaner(DefaultCleanerConfig(), discardLogger)
	b.SetBytes(size)
	b.ReportAllocs()
	var st CleanStats
	for b.Loop() {
		b.StopTimer()
		if err := os.RemoveAll(work); err != nil {
			b.Fatal(err)
		}
		copyDir(b, fixture, work)
		l, err := Open(work, cleanBenchConfig(), OpenOptions{CleanShutdown: true, Logger: discardLogger})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if st, err = c.Clean(l, time.UnixMilli(1_800_000_000_000), nil); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(st.RecordsKept)/float64(st.RecordsRead), "kept/record")
	b.ReportMetric(float64(st.BytesWritten)/float64(st.BytesRead), "out/in")
}

// benchCleanRead reads the fixture's closed segments as the cleaner does,
// with its batchReader, decoding every record when decode is set.
func benchCleanRead(b *testing.B, fixture string, size int64, decode bool) {
	l, err := Open(fixture, cleanBenchConfig(), OpenOptions{CleanShutdown: true, Logger: discardLogger})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	l.mu.RLock()
	segs := l.mu.segments[:len(l.mu.segments)-1]
	l.mu.RUnlock()
	c := NewCleaner(DefaultCleanerConfig(), discardLogger)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		var n int64
		for _, s := range segs {
			c.rd.reset(s.file, 0, s.size)
			for {
				h, _, ok := c.rd.next()
				if !ok {
					break
				}
				n += int64(len(h))
				if !decode {
					continue
				}
				if err := validateStored(h, true); err != nil {
					b.Fatal(err)
				}
				records, err := c.records(h)
				if err != nil {
					b.Fatal(err)
				}
				rr := batch.NewRecordReader(records, h.RecordCount())
				for rr.Next(&c.rec) {
					benchSink += uint64(len(c.rec.Key))
				}
			}
			if c.rd.err != nil {
				b.Fatal(c.rd.err)
			}
		}
		if n != size {
			b.Fatalf("read %d bytes of %d", n, size)
		}
	}
}
