package segment

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gregor/batch"
	"gregor/internal/testseed"
)

var errInjectedCrash = errors.New("injected crash")

func sameRecords(t testing.TB, what string, got, want []storedRecord) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d records, want %d", what, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.offset != w.offset || g.ts != w.ts || string(g.key) != string(w.key) || string(g.value) != string(w.value) || (g.value == nil) != (w.value == nil) {
			t.Fatalf("%s: record %d is %d %q=%q, want %d %q=%q", what, i, g.offset, g.key, g.value, w.offset, w.key, w.value)
		}
	}
}

// TestCleanCrashAtEachStep stops a swap at each of its steps as a crash
// would, then recovers the log (unclean shutdown, the broker's default
// delete policy, the dir's cleaner checkpoint listing the log) and checks it
// holds exactly the log before the clean (crash before the .swap commit
// point) or after it (crash at or after it), with no temporary file left,
// indexes equal to a rebuild, and a clean from there reaching the same end.
func TestCleanCrashAtEachStep(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(root, "src", "t-0")
	cfg := compactConfig()
	l := openLog(t, src, cfg, OpenOptions{})
	codecs := []batch.Codec{batch.CodecNone, batch.CodecZstd, batch.CodecLZ4}
	for i := range 60 {
		recs := []rec{kv(fmt.Sprintf("k%d", i%7), strings.Repeat("v", 40)), kv(fmt.Sprintf("j%d", i%3), fmt.Sprint(i))}
		if i%11 == 5 {
			recs = append(recs, tombstone(fmt.Sprintf("k%d", (i+1)%7)))
		}
		appendBatch(t, l, keyedBatch(t, codecs[i%len(codecs)], 1000+int64(i), recs...))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// One group: every closed segment merges into one cleaned segment, so
	// the swap replaces several segments.
	big := cfg
	big.SegmentBytes = 1 << 20
	now := time.UnixMilli(5000)

	ref := filepath.Join(root, "ref", "t-0")
	copyDir(t, src, ref)
	lr := openLog(t, ref, big, OpenOptions{CleanShutdown: true})
	before := readAll(t, lr)
	segsBefore := len(lr.Segments())
	st := clean(t, testCleaner(), lr, now)
	after := readAll(t, lr)
	if st.SegmentsCleaned < 3 || st.SegmentsWritten != 1 || len(after) >= len(before) || len(lr.Segments()) != 2 {
		t.Fatalf("reference clean: %+v, %d -> %d segments, %d -> %d records", st, segsBefore, len(lr.Segments()), len(before), len(after))
	}

	deleteCfg := big
	deleteCfg.CleanupPolicy = "delete"
	for i, step := range cleanSteps {
		t.Run(step, func(t *testing.T) {
			dir := filepath.Join(root, step, "t-0")
			copyDir(t, src, dir)
			l := openLog(t, dir, big, OpenOptions{CleanShutdown: true, HasCleanerCheckpoint: true})
			l.cleanHook = func(s string) error {
				if s == step {
					return errInjectedCrash
				}
				return nil
			}
			if _, err := testCleaner().Clean(l, now, nil); !errors.Is(err, errInjectedCrash) {
				t.Fatalf("clean stopped at %s: %v", step, err)
			}
			crash(l)

			l = openLog(t, dir, deleteCfg, OpenOptions{HasCleanerCheckpoint: true})
			want := before
			if i >= slices.Index(cleanSteps, stepSwap) {
				want = after
			}
			sameRecords(t, "recovered", readAll(t, l), want)
			assertNoCleanerFiles(t, dir)
			recovered := indexSnapshot(l)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			removeIndexes(t, dir)
			l = openLog(t, dir, big, OpenOptions{CleanShutdown: true, HasCleanerCheckpoint: true})
			if rebuilt := indexSnapshot(l); rebuilt != recovered {
				t.Fatalf("recovered indexes\n%s\ndiffer from a rebuild\n%s", recovered, rebuilt)
			}
			clean(t, testCleaner(), l, now)
			sameRecords(t, "cleaned again", readAll(t, l), after)
		})
	}
}

// TestCleanRandomizedAgainstModel appends random keyed records, tombstones
// and records without a key through random segment sizes and codecs, with
// cleaning passes (some with a map too small for the dirty part), restarts
// and a clock moving past delete.retention.ms in between, and checks after
// each pass that the log's key -> value view is the model's newest value per
// key, a tombstone being either there or, once expired, gone, never replaced
// by an older value.
func TestCleanRandomizedAgainstModel(t *testing.T) {
	seed := testseed.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 0xc1ea7))
	rounds := 8
	if testing.Short() {
		rounds = 3
	}
	codecs := []batch.Codec{batch.CodecNone, batch.CodecNone, batch.CodecGzip, batch.CodecSnappy, batch.CodecLZ4, batch.CodecZstd}
	defer func(c int) { cleanerReadChunk = c }(cleanerReadChunk)
	for round := range rounds {
		// Small reads make batches straddle them, and some exceed them.
		cleanerReadChunk = 20 + rng.IntN(1500)
		dir := filepath.Join(t.TempDir(), "t-0")
		cfg := compactConfig()
		cfg.SegmentBytes = int64(800 + rng.IntN(3000))
		cfg.IndexIntervalBytes = 1 + rng.IntN(400)
		cfg.DeleteRetentionMs = 1000
		cfg.MinCleanableDirtyRatio = rng.Float64()
		clock := newFakeClock(1_000_000)
		l := openLog(t, dir, cfg, OpenOptions{Now: clock.Now})
		ccfg := DefaultCleanerConfig()
		if rng.IntN(3) == 0 {
			ccfg.DedupeBufferSize = MinCleanerDedupeBufferSize + offsetSlotBytes*int64(rng.IntN(100))
		}
		c := NewCleaner(ccfg, discardLogger)
		model := map[string]entry{}
		keys := 1 + rng.IntN(40)
		what := fmt.Sprintf("round %d (segment.bytes %d, dedupe buffer %d, %d keys)", round, cfg.SegmentBytes, ccfg.DedupeBufferSize, keys)
		check := func(when string) {
			t.Helper()
			view := newestPerKey(readAll(t, l))
			for k, e := range view {
				m, ok := model[k]
				if !ok || m.offset != e.offset || string(m.value) != string(e.value) || (m.value == nil) != (e.value == nil) {
					t.Fatalf("%s, %s: key %s is %d=%q in the log, %d=%q (%v) in the model", what, when, k, e.offset, e.value, m.offset, m.value, ok)
				}
			}
			for k, m := range model {
				if _, ok := view[k]; !ok && m.value != nil {
					t.Fatalf("%s, %s: key %s (%d=%q) is gone", what, when, k, m.offset, m.value)
				}
			}
		}
		for op := range 30 + rng.IntN(70) {
			switch n := rng.IntN(20); {
			case n < 3:
				st, err := c.Clean(l, clock.Now(), nil)
				if err != nil {
					t.Fatalf("%s, op %d: %v", what, op, err)
				}
				check(fmt.Sprintf("op %d, a pass over [%d, %d)", op, st.FirstDirtyOffset, st.EndOffset))
			case n == 3:
				clock.Set(clock.Now().UnixMilli() + int64(rng.IntN(3000)))
			case n == 4:
				fd, listed := l.CleanerCheckpoint()
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				l = openLog(t, dir, cfg, OpenOptions{Now: clock.Now, CleanShutdown: true, CleanerCheckpoint: fd, HasCleanerCheckpoint: listed})
			default:
				var recs []rec
				for range 1 + rng.IntN(6) {
					k := fmt.Sprintf("key-%d", rng.IntN(keys))
					switch rng.IntN(10) {
					case 0:
						recs = append(recs, tombstone(k))
					case 1:
						recs = append(recs, noKey("nokey"))
					default:
						recs = append(recs, kv(k, fmt.Sprintf("%d-%s", op, strings.Repeat("v", rng.IntN(80)))))
					}
				}
				info := appendBatch(t, l, keyedBatch(t, codecs[rng.IntN(len(codecs))], clock.Now().UnixMilli(), recs...))
				for i, r := range recs {
					if r.key != nil {
						model[string(r.key)] = entry{info.FirstOffset + int64(i), r.value}
					}
				}
			}
		}
		// Clean to the end: then every key appears once below the active
		// segment.
		for {
			st, err := c.Clean(l, clock.Now(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !st.MapFull {
				break
			}
		}
		check("at the end")
		seen := map[string]bool{}
		fu := activeBase(l)
		for _, r := range readAll(t, l) {
			if r.key != nil && r.offset < fu {
				if seen[string(r.key)] {
					t.Fatalf("%s: key %s twice in the cleaned segments", what, r.key)
				}
				seen[string(r.key)] = true
			}
		}
	}
}

// TestCleanConcurrentAppendAndRead cleans over and over while one goroutine
// appends and others read (run it with -race): every read returns whole,
// valid batches, the first holding the requested offset or the first after
// it, even when the segment read is swapped out before the reader is done;
// and at the end the key view is the appender's.
func TestCleanConcurrentAppendAndRead(t *testing.T) {
	seed := testseed.Seed(t)
	cfg := compactConfig()
	cfg.SegmentBytes = 2048
	l := openLog(t, filepath.Join(t.TempDir(), "t-0"), cfg, OpenOptions{})
	model := map[string]entry{}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		rng := rand.New(rand.NewPCG(seed, 1))
		for i := range 800 {
			k := fmt.Sprintf("k%d", rng.IntN(30))
			v := fmt.Sprintf("%d-%s", i, strings.Repeat("v", rng.IntN(60)))
			info, err := l.Append(keyedBatch(t, batch.CodecNone, int64(i), kv(k, v)), 0)
			if err != nil {
				t.Error(err)
				return
			}
			model[k] = entry{info.FirstOffset, []byte(v)}
		}
	})
	for r := range 3 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(10+r)))
			var regions []Region
			var buf []byte
			for {
				select {
				case <-done:
					return
				default:
				}
				start, end := l.LogStartOffset(), l.LogEndOffset()
				if end == start {
					continue
				}
				off := start + rng.Int64N(end-start)
				var err error
				if regions, err = l.Read(regions[:0], off, 1024, end); err != nil {
					t.Error(err)
					return
				}
				buf = buf[:0]
				for _, rg := range regions {
					n := len(buf)
					buf = slices.Grow(buf, int(rg.Length))[:n+int(rg.Length)]
					if _, err := rg.File.OS().ReadAt(buf[n:], rg.Position); err != nil {
						t.Error(err)
					}
				}
				ReleaseAll(regions)
				it := batch.NewIter(buf)
				h, ok := it.Next()
				if !ok {
					continue
				}
				if err := validateStored(h, true); err != nil || h.LastOffset() < off {
					t.Errorf("read at %d: batch %d-%d: %v", off, h.BaseOffset(), h.LastOffset(), err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		c := testCleaner()
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := c.Clean(l, time.UnixMilli(1000), nil); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
	if t.Failed() {
		return
	}
	clean(t, testCleaner(), l, time.UnixMilli(1000))
	if got := newestPerKey(readAll(t, l)); !mapsEqual(got, model) {
		t.Fatalf("key view after concurrent cleaning:\n%v\nwant\n%v", got, model)
	}
}

// emptiedSegmentsLog builds a log whose cleaning empties whole segments:
//
//	segment 0: a=1              stays
//	segment 1: b=1              emptied by b=2 in segment 3: leads the next group
//	segment 2: c=<big>          too big to join segment 0's group
//	segment 3: b=2              stays
//	segment 4: tombstone q...   past the delete horizon an earlier pass stamped:
//	                            emptied, and last, so a group of its own
//	segment 5: z=1              active
//
// With segment.bytes 350 for the clean, the groups are [0], [1, 2], [3] and
// [4]: a group never ends with a segment that kept nothing, so that recovery
// can complete an interrupted swap exactly.
func emptiedSegmentsLog(t *testing.T, dir string) Config {
	cfg := compactConfig()
	cfg.SegmentBytes = 299 // a segment per batch
	cfg.DeleteRetentionMs = 1000
	l := openLog(t, dir, cfg, OpenOptions{})
	pad := strings.Repeat("p", 80)
	for _, r := range []rec{kv("a", pad), kv("b", pad), kv("c", strings.Repeat("c", 180)), kv("b", pad+"2"), tombstone(strings.Repeat("q", 150)), kv("z", pad)} {
		b := keyedBatch(t, batch.CodecNone, 1000, r)
		if r.value == nil {
			b = stampedBatch(t, 2000, 1000, r)
		}
		appendBatch(t, l, b)
	}
	if n := len(l.Segments()); n != 6 {
		t.Fatalf("%d segments, want 6", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	cfg.SegmentBytes = 350
	return cfg
}

// crashAt returns a hook that stops a swap at the n-th time (from 1) it
// reaches step.
func crashAt(step string, n int) func(string) error {
	seen := 0
	return func(s string) error {
		if s == step {
			if seen++; seen == n {
				return errInjectedCrash
			}
		}
		return nil
	}
}

// TestCleanEmptiedSegments checks the groups emptied segments make, and a
// crash at every step of every one of their swaps: recovery gives the log
// as it was after the swaps before (crash before the commit point) or after
// that swap.
func TestCleanEmptiedSegments(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(root, "src", "t-0")
	cfg := emptiedSegmentsLog(t, src)
	now := time.UnixMilli(100_000)
	const groups = 4
	// states[k] is the log after k swaps: a crash just before swap k+1.
	states := make([][]storedRecord, groups+1)
	for k := range groups + 1 {
		dir := filepath.Join(root, fmt.Sprintf("state-%d", k), "t-0")
		copyDir(t, src, dir)
		l := openLog(t, dir, cfg, OpenOptions{CleanShutdown: true})
		l.cleanHook = crashAt(stepCleaned, k+1)
		st, err := testCleaner().Clean(l, now, nil)
		if k < groups && !errors.Is(err, errInjectedCrash) || k == groups && err != nil {
			t.Fatalf("state %d: %v", k, err)
		}
		if k == groups {
			var bases []int64
			for _, s := range l.Segments() {
				bases = append(bases, s.BaseOffset)
			}
			if st.SegmentsWritten != groups || !slices.Equal(bases, []int64{0, 1, 3, 4, 5}) || l.Segments()[3].Size != 0 {
				t.Fatalf("%+v: segments %+v, want bases 0 1 3 4 5 with 4 empty", st, l.Segments())
			}
		}
		crash(l)
		l = openLog(t, dir, cfg, OpenOptions{HasCleanerCheckpoint: true})
		states[k] = readAll(t, l)
	}
	var keys []string
	for _, r := range states[groups] {
		keys = append(keys, string(r.key))
	}
	if !slices.Equal(keys, []string{"a", "c", "b", "z"}) {
		t.Fatalf("cleaned log holds %q", keys)
	}
	for k := 1; k <= groups; k++ {
		for i, step := range cleanSteps {
			dir := filepath.Join(root, fmt.Sprintf("%s-%d", step, k), "t-0")
			copyDir(t, src, dir)
			l := openLog(t, dir, cfg, OpenOptions{CleanShutdown: true})
			l.cleanHook = crashAt(step, k)
			if _, err := testCleaner().Clean(l, now, nil); !errors.Is(err, errInjectedCrash) {
				t.Fatalf("swap %d, step %s: %v", k, step, err)
			}
			crash(l)
			l = openLog(t, dir, cfg, OpenOptions{HasCleanerCheckpoint: true})
			want := states[k-1]
			if i >= slices.Index(cleanSteps, stepSwap) {
				want = states[k]
			}
			sameRecords(t, fmt.Sprintf("crash in swap %d at %s", k, step), readAll(t, l), want)
			assertNoCleanerFiles(t, dir)
		}
	}
}

// TestCleanAbortedByTruncationAndRetention: a truncation or a retention
// deletion between a pass's reads and its swap makes the pass give up that
// swap, leaving no file behind and the log as the truncation or retention
// left it; the next pass cleans it.
func TestCleanAbortedByTruncationAndRetention(t *testing.T) {
	for _, what := range []string{"truncation", "retention"} {
		t.Run(what, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "t-0")
			cfg := compactConfig()
			cfg.CleanupPolicy = "compact,delete"
			cfg.RetentionMs = -1
			l := openLog(t, dir, cfg, OpenOptions{})
			model := map[string]entry{}
			for i := range 40 {
				k := fmt.Sprintf("k%d", i%5)
				v := fmt.Sprint(i, strings.Repeat("v", 80))
				info := appendBatch(t, l, keyedBatch(t, batch.CodecNone, 1000, kv(k, v)))
				model[k] = entry{info.FirstOffset, []byte(v)}
			}
			l.cleanHook = func(step string) error {
				if step != stepCleaned {
					return nil
				}
				l.cleanHook = nil
				if what == "truncation" {
					return l.Truncate(l.LogEndOffset() - 3)
				}
				cfg.RetentionBytes = l.Size() / 2
				if err := l.SetConfig(cfg); err != nil {
					return err
				}
				_, err := l.EnforceRetention()
				return err
			}
			if _, err := testCleaner().Clean(l, time.UnixMilli(2000), nil); !errors.Is(err, errCleanAborted) {
				t.Fatalf("a pass overtaken by %s: %v", what, err)
			}
			assertNoCleanerFiles(t, dir)
			want := readAll(t, l)
			wantView := newestPerKey(want)
			for _, r := range want {
				if r.offset < activeBase(l) && wantView[string(r.key)].offset != r.offset {
					clean(t, testCleaner(), l, time.UnixMilli(2000))
					if got := newestPerKey(readAll(t, l)); !mapsEqual(got, wantView) {
						t.Fatalf("after %s and a new pass: key view\n%v\nwant\n%v", what, got, wantView)
					}
					return
				}
			}
			t.Fatal("nothing left to clean after the aborted pass")
		})
	}
}

// TestCleanTruncatedAfterLastSwap: a truncation after a pass's last swap,
// before the pass moves the first dirty offset to where it ended, keeps the
// first dirty offset it lowered: the offsets above the new log end will be
// written again, dirty, and the next pass must map them.
func TestCleanTruncatedAfterLastSwap(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "t-0")
	l := openLog(t, dir, compactConfig(), OpenOptions{})
	for i := range 40 {
		appendBatch(t, l, keyedBatch(t, batch.CodecNone, 1000, kv(fmt.Sprintf("k%d", i%5), fmt.Sprint(i, strings.Repeat("v", 80)))))
	}
	var truncated error
	l.cleanHook = func(step string) error {
		if step == stepPassEnd {
			l.cleanHook = nil
			truncated = l.Truncate(l.LogStartOffset() + 1)
		}
		return nil
	}
	st := clean(t, testCleaner(), l, time.UnixMilli(2000))
	if truncated != nil {
		t.Fatal(truncated)
	}
	if st.SegmentsWritten == 0 {
		t.Fatalf("the pass swapped nothing in: %+v", st)
	}
	if fd, _ := l.CleanerCheckpoint(); fd > l.LogEndOffset() || fd >= st.EndOffset {
		t.Fatalf("first dirty offset %d after the pass ended at %d, the log truncated to %d", fd, st.EndOffset, l.LogEndOffset())
	}
	// Written again, the truncated offsets are dirty: the next pass maps
	// them, and the view is the newest value of each key.
	model := newestPerKey(readAll(t, l))
	for i := range 40 {
		k, v := fmt.Sprintf("k%d", i%5), fmt.Sprint("again-", i)
		info := appendBatch(t, l, keyedBatch(t, batch.CodecNone, 3000, kv(k, v)))
		model[k] = entry{info.FirstOffset, []byte(v)}
	}
	clean(t, testCleaner(), l, time.UnixMilli(4000))
	if got := newestPerKey(readAll(t, l)); !mapsEqual(got, model) {
		t.Fatalf("after the truncation and a new pass: key view\n%v\nwant\n%v", got, model)
	}
}

// TestCleanStopsOnClose: Close stops a pass under way and waits for it.
func TestCleanStopsOnClose(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "t-0")
	l := openLog(t, dir, compactConfig(), OpenOptions{})
	for i := range 40 {
		appendBatch(t, l, keyedBatch(t, batch.CodecNone, 1000, kv(fmt.Sprintf("k%d", i%5), strings.Repeat("v", 80))))
	}
	closed := make(chan error, 1)
	l.cleanHook = func(step string) error {
		if step == stepDone {
			l.cleanHook = nil
			go func() { closed <- l.Close() }()
			// Close waits for this pass: it must not be done before it ends.
			select {
			case err := <-closed:
				return fmt.Errorf("Close returned %v during the pass", err)
			default:
			}
		}
		return nil
	}
	_, err := testCleaner().Clean(l, time.UnixMilli(2000), nil)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err != nil && !errors.Is(err, errCleanAborted) {
		t.Fatal(err)
	}
	assertNoCleanerFiles(t, dir)
}
