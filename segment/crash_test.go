package segment

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"gregor/batch"
	"gregor/internal/testseed"
)

// crash drops a log as a killed process would: its files are released without
// trimming the indexes, fsyncing or writing anything more.
func crash(l *Log) {
	l.background.Wait()
	l.mu.Lock()
	for _, s := range l.mu.segments {
		s.release()
	}
	l.mu.closed = true
	l.mu.Unlock()
}

// indexSnapshot is every segment's index entries, to compare two builds.
func indexSnapshot(l *Log) string {
	var b bytes.Buffer
	l.mu.RLock()
	defer l.mu.RUnlock()
	for _, s := range l.mu.segments {
		fmt.Fprintf(&b, "%d:", s.base)
		for i := range s.index.n {
			rel, pos := s.index.offsetEntry(i)
			fmt.Fprintf(&b, " %d@%d", rel, pos)
		}
		b.WriteString(" |")
		for i := range s.timeIndex.n {
			ts, rel := s.timeIndex.timeEntry(i)
			fmt.Fprintf(&b, " %d@%d", ts, rel)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// writtenBatch is the model's record of one appended batch.
type writtenBatch struct {
	segment int64 // base offset of the segment it went to
	pos     int64 // its position there
	bytes   []byte
}

// TestCrashRecoveryRandomized appends random batches, kills the log, damages
// the tail of its last segments (a torn tail, a zeroed tail, or a flipped bit),
// recovers it, and checks that the recovered log is exactly the longest prefix
// of batches that were not damaged, that its indexes equal a from-scratch
// build, and that it takes appends again.
func TestCrashRecoveryRandomized(t *testing.T) {
	seed := testseed.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 0xc0ffee))
	rounds := 40
	if testing.Short() {
		rounds = 10
	}
	defer func(c int64) { scanChunk = c }(scanChunk)
	codecs := []batch.Codec{batch.CodecNone, batch.CodecNone, batch.CodecGzip, batch.CodecSnappy, batch.CodecLZ4, batch.CodecZstd}
	for round := range rounds {
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("t-%d", round))
		cfg := testConfig()
		cfg.SegmentBytes = int64(800 + rng.IntN(4000))
		cfg.IndexIntervalBytes = 1 + rng.IntN(600)
		cfg.SegmentIndexBytes = 24 + 12*rng.IntN(20)
		// Small scan chunks make batches straddle them, and some exceed them.
		scanChunk = int64(20 + rng.IntN(1500))
		l, err := Open(dir, cfg, OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var model []writtenBatch
		epoch, ts := int32(0), int64(1_000_000)
		for range 5 + rng.IntN(60) {
			if rng.IntN(10) == 0 {
				epoch++
			}
			var buf []byte
			for range 1 + rng.IntN(3) {
				ts += int64(rng.IntN(50)) - 10 // mostly increasing, sometimes not
				buf = append(buf, buildBatch(t, batchSpec{records: 1 + rng.IntN(5), valueSize: rng.IntN(120), ts: ts, codec: codecs[rng.IntN(len(codecs))]})...)
			}
			if _, err := l.Append(buf, epoch); err != nil {
				t.Fatal(err)
			}
		}
		// Learn where each batch went from the log itself.
		for _, si := range l.Segments() {
			data := readSegmentFile(t, dir, si.BaseOffset)
			it := batch.NewIter(data)
			for h, ok := it.Next(); ok; h, ok = it.Next() {
				model = append(model, writtenBatch{si.BaseOffset, int64(it.Pos() - h.Size()), slices.Clone(h)})
			}
		}
		segs := l.Segments()
		crash(l)

		// Damage one of the last two segments.
		victim := segs[max(len(segs)-1-rng.IntN(2), 0)]
		path := filepath.Join(dir, segmentName(victim.BaseOffset)+logSuffix)
		data := readSegmentFile(t, dir, victim.BaseOffset)
		var what string
		if len(data) > 0 {
			at := rng.IntN(len(data))
			switch rng.IntN(3) {
			case 0:
				data, what = data[:at], fmt.Sprintf("torn at %d", at)
			case 1:
				clear(data[at:])
				what = fmt.Sprintf("zeroed from %d", at)
			case 2:
				// Skip the leader-epoch field: not under the CRC, a raised
				// epoch in the last batch is the one change no check can see.
				for inEpochField(model, victim.BaseOffset, int64(at)) {
					at = rng.IntN(len(data))
				}
				data[at] ^= 1 << rng.IntN(8)
				what = fmt.Sprintf("bit flipped at %d", at)
			}
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}

		// The longest prefix of batches whose bytes are intact.
		var want []byte
		wantEnd := int64(0)
		for _, w := range model {
			got := readSegmentFile(t, dir, w.segment)
			if w.pos+int64(len(w.bytes)) > int64(len(got)) || !bytes.Equal(got[w.pos:w.pos+int64(len(w.bytes))], w.bytes) {
				break
			}
			want = append(want, w.bytes...)
			wantEnd = batch.Header(w.bytes).NextOffset()
		}
		rp := rng.Int64N(victim.BaseOffset + 1)
		l, err = Open(dir, cfg, OpenOptions{RecoveryPoint: rp})
		if err != nil {
			t.Fatalf("round %d (%s): %v", round, what, err)
		}
		if got := l.LogEndOffset(); got != wantEnd {
			t.Fatalf("round %d (%s in segment %d, recovery point %d): log end %d, want %d", round, what, victim.BaseOffset, rp, got, wantEnd)
		}
		got, err := l.ReadBytes(nil, 0, 1<<30, 1<<62)
		if err != nil && wantEnd > 0 {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("round %d (%s): recovered %d bytes differ from the %d-byte valid prefix", round, what, len(got), len(want))
		}
		// The indexes equal a build from scratch.
		recovered := indexSnapshot(l)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		removeIndexes(t, dir)
		if l, err = Open(dir, cfg, OpenOptions{CleanShutdown: true}); err != nil {
			t.Fatal(err)
		}
		if rebuilt := indexSnapshot(l); rebuilt != recovered {
			t.Fatalf("round %d (%s): recovered indexes\n%s\ndiffer from a rebuild\n%s", round, what, recovered, rebuilt)
		}
		// And the log goes on.
		info, err := l.Append(buildBatch(t, batchSpec{records: 2, valueSize: 10, ts: ts}), epoch)
		if err != nil || info.FirstOffset != wantEnd {
			t.Fatalf("round %d: append after recovery: %+v, %v", round, info, err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAppendedIndexesEqualRebuild checks the index rule end to end: the
// indexes appends build, across rolls by size, full indexes and time, equal
// those a rebuild from the log bytes makes.
func TestAppendedIndexesEqualRebuild(t *testing.T) {
	seed := testseed.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 7))
	for round := range 10 {
		dir := filepath.Join(t.TempDir(), "t-0")
		cfg := testConfig()
		cfg.SegmentBytes = int64(1200 + rng.IntN(5000))
		cfg.IndexIntervalBytes = 1 + rng.IntN(800)
		cfg.SegmentIndexBytes = 24 + 12*rng.IntN(10)
		cfg.SegmentMs = int64(50 + rng.IntN(500))
		l, err := Open(dir, cfg, OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ts := int64(1000)
		for range 100 {
			ts += int64(rng.IntN(40)) - 8
			if _, err := l.Append(buildBatch(t, batchSpec{records: 1 + rng.IntN(4), valueSize: rng.IntN(200), ts: ts}), 0); err != nil {
				t.Fatal(err)
			}
		}
		appended := indexSnapshot(l)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		removeIndexes(t, dir)
		if l, err = Open(dir, cfg, OpenOptions{CleanShutdown: true}); err != nil {
			t.Fatal(err)
		}
		if rebuilt := indexSnapshot(l); rebuilt != appended {
			t.Fatalf("round %d: appended indexes\n%s\ndiffer from a rebuild\n%s", round, appended, rebuilt)
		}
		l.Close()
	}
}

func readSegmentFile(t *testing.T, dir string, base int64) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, segmentName(base)+logSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func removeIndexes(t *testing.T, dir string) {
	t.Helper()
	for _, pat := range []string{"*" + indexSuffix, "*" + timeIndexSuffix} {
		matches, _ := filepath.Glob(filepath.Join(dir, pat))
		for _, m := range matches {
			if err := os.Remove(m); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// inEpochField reports whether position at of a segment lies in a batch's
// partitionLeaderEpoch field.
func inEpochField(model []writtenBatch, segment, at int64) bool {
	for _, w := range model {
		if w.segment == segment && at >= w.pos+12 && at < w.pos+16 {
			return true
		}
	}
	return false
}

// TestCrashRecoveryLostTailAtBatchBoundary: a segment that lost its tail
// exactly at a batch boundary looks whole on its own; the next segment,
// which starts past where it now ends, shows the loss, and recovery drops
// it rather than leave a hole in the offsets: whether the recovery point
// lies before the loss, past it (a truncation that a crash cut short leaves
// segments the last checkpoint called durable), or the log was closed
// cleanly.
func TestCrashRecoveryLostTailAtBatchBoundary(t *testing.T) {
	for _, opening := range []string{"recovery point before", "recovery point past", "clean shutdown"} {
		t.Run(opening, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "t-0")
			cfg := testConfig()
			cfg.SegmentBytes = 600
			l, err := Open(dir, cfg, OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for range 12 {
				if _, err := l.Append(buildBatch(t, batchSpec{records: 2, valueSize: 100, ts: 1000}), 0); err != nil {
					t.Fatal(err)
				}
			}
			segs := l.Segments()
			if len(segs) < 3 {
				t.Fatalf("%d segments, want at least 3", len(segs))
			}
			o := OpenOptions{RecoveryPoint: 0}
			switch opening {
			case "recovery point past":
				o.RecoveryPoint = l.LogEndOffset()
				crash(l)
			case "clean shutdown":
				o.CleanShutdown = true
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
			default:
				crash(l)
			}
			// Cut the second segment after its first batch.
			victim := segs[1]
			data := readSegmentFile(t, dir, victim.BaseOffset)
			first := batch.Header(data)
			if err := os.WriteFile(filepath.Join(dir, segmentName(victim.BaseOffset)+logSuffix), data[:first.Size()], 0o644); err != nil {
				t.Fatal(err)
			}
			l, err = Open(dir, cfg, o)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if got, want := l.LogEndOffset(), first.NextOffset(); got != want {
				t.Fatalf("log end %d after recovery, want %d (the end of what the cut segment kept)", got, want)
			}
			if n := len(l.Segments()); n != 2 {
				t.Fatalf("%d segments after recovery, want 2", n)
			}
		})
	}
}

// TestTruncateInterruptedLeavesAPrefix: a crash in the middle of Truncate
// (here, as a stand-in, the rename of a middle segment to *.deleted fails)
// leaves a prefix of the log, compacted or not: the later segments go, the
// last first and durably, before the segment holding the new end is cut.
// Cut first, a crash left that segment short of the next one that survived,
// a hole with truncated records after it, which the recovery of a log that
// may have gaps (a compacted one) took for the log.
func TestTruncateInterruptedLeavesAPrefix(t *testing.T) {
	for _, compacted := range []bool{false, true} {
		t.Run(fmt.Sprintf("compacted=%v", compacted), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "t-0")
			cfg := testConfig()
			if compacted {
				cfg.CleanupPolicy = "compact"
			}
			l := openLog(t, dir, cfg, OpenOptions{})
			for len(l.Segments()) < 5 {
				appendBatch(t, l, offsetBatch(t, l.LogEndOffset(), 4))
			}
			before := readAll(t, l)
			segs := l.Segments()
			var obstacles []string
			for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
				o := filepath.Join(dir, segmentName(segs[2].BaseOffset)+suf+deletedSuffix)
				if err := os.MkdirAll(filepath.Join(o, "x"), 0o755); err != nil {
					t.Fatal(err)
				}
				obstacles = append(obstacles, o)
			}
			cut := segs[0].BaseOffset + 8
			if err := l.Truncate(cut); err == nil {
				t.Fatal("Truncate succeeded despite the failed rename")
			}
			crash(l)
			for _, o := range obstacles {
				if err := os.RemoveAll(o); err != nil {
					t.Fatal(err)
				}
			}
			l = openLog(t, dir, cfg, OpenOptions{HasCleanerCheckpoint: compacted})
			after := readAll(t, l)
			if len(after) < int(cut) || len(after) > len(before) {
				t.Fatalf("%d records after recovery, want from %d (what the truncation kept) to %d", len(after), cut, len(before))
			}
			sameRecords(t, "the recovered log against the log before the truncation", after, before[:len(after)])
			if end := l.LogEndOffset(); end != after[len(after)-1].offset+1 {
				t.Fatalf("log end %d after recovery, last record %d", end, after[len(after)-1].offset)
			}
		})
	}
}
