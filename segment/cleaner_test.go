package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gregor/batch"
)

// rec is one record of a test batch: a nil key or value is null.
type rec struct{ key, value []byte }

func kv(k, v string) rec     { return rec{[]byte(k), []byte(v)} }
func tombstone(k string) rec { return rec{key: []byte(k)} }
func noKey(v string) rec     { return rec{value: []byte(v)} }

// keyedBatch builds one batch of recs, timestamps ts, ts+1, ...
func keyedBatch(tb testing.TB, codec batch.Codec, ts int64, recs ...rec) []byte {
	tb.Helper()
	opts := batch.DefaultBuilderOptions()
	opts.Codec = codec
	b := batch.NewBuilder(opts)
	for i, r := range recs {
		b.Add(ts+int64(i), r.key, r.value, nil)
	}
	out, err := b.AppendBatch(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// controlBatch builds a control batch (a transaction marker's shape).
func controlBatch(tb testing.TB, ts int64) []byte {
	tb.Helper()
	b := keyedBatch(tb, batch.CodecNone, ts, kv("\x00\x00\x00\x01", "\x00\x00\x00\x00\x00\x00"))
	h := batch.Header(b)
	binary.BigEndian.PutUint16(b[21:], uint16(h.Attributes()|0x20))
	h.SetCRC()
	return b
}

// compactConfig is testConfig for a compacted log.
func compactConfig() Config {
	c := testConfig()
	c.CleanupPolicy = "compact"
	c.SegmentBytes = 1024
	c.IndexIntervalBytes = 128
	return c
}

// storedRecord is one record as read back from a log.
type storedRecord struct {
	offset, ts    int64
	key, value    []byte
	control       bool
	batchBase     int64
	batchLastDelt int32
}

// readAll reads the whole log and checks what a consumer relies on: every
// batch valid (cleaned batches may hold fewer records than offsets), records
// inside their batch's offset range, offsets strictly increasing.
func readAll(t testing.TB, l *Log) []storedRecord {
	t.Helper()
	data, err := l.ReadBytes(nil, l.LogStartOffset(), 1<<30, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	var out []storedRecord
	it := batch.NewIter(data)
	last := int64(-1)
	var r batch.Record
	for h, ok := it.Next(); ok; h, ok = it.Next() {
		if err := validateStored(h, true); err != nil {
			t.Fatalf("batch at %d: %v", h.BaseOffset(), err)
		}
		rr, _, err := batch.DecodeRecords(h, nil, 1<<24)
		if err != nil {
			t.Fatal(err)
		}
		for rr.Next(&r) {
			off := h.BaseOffset() + int64(r.OffsetDelta)
			if off <= last || off > h.LastOffset() {
				t.Fatalf("record at offset %d after %d, batch %d-%d", off, last, h.BaseOffset(), h.LastOffset())
			}
			last = off
			out = append(out, storedRecord{offset: off, ts: h.BaseTimestamp() + r.TimestampDelta,
				key: bytes.Clone(r.Key), value: bytes.Clone(r.Value), control: h.Control(),
				batchBase: h.BaseOffset(), batchLastDelt: h.LastOffsetDelta()})
		}
		if err := rr.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// entry is a key's newest record in a model or a log view.
type entry struct {
	offset int64
	value  []byte // nil: a tombstone
}

// newestPerKey is the log's key -> value view: what a consumer reading the
// whole log and applying each record ends up with (tombstones included, as
// entries with a nil value).
func newestPerKey(recs []storedRecord) map[string]entry {
	view := map[string]entry{}
	for _, r := range recs {
		if r.key != nil && !r.control {
			view[string(r.key)] = entry{r.offset, r.value}
		}
	}
	return view
}

func appendBatch(t testing.TB, l *Log, b []byte) AppendInfo {
	t.Helper()
	info, err := l.Append(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func openLog(t testing.TB, dir string, cfg Config, o OpenOptions) *Log {
	t.Helper()
	if o.Logger == nil {
		o.Logger = discardLogger
	}
	l, err := Open(dir, cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func testCleaner() *Cleaner {
	return NewCleaner(DefaultCleanerConfig(), discardLogger)
}

func clean(t testing.TB, c *Cleaner, l *Log, now time.Time) CleanStats {
	t.Helper()
	st, err := c.Clean(l, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// activeBase is the base offset of the log's active segment.
func activeBase(l *Log) int64 {
	segs := l.Segments()
	return segs[len(segs)-1].BaseOffset
}

// TestCleanKeepsNewestPerKey: after a pass, the closed segments hold only
// the newest record of each key, at its original offset and timestamp, in a
// batch that kept its base offset and last offset delta; records without a
// key and control batches stay; the active segment is untouched; indexes
// equal a rebuild; and the checkpoint moves to the active segment's base.
func TestCleanKeepsNewestPerKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "t-0")
	l := openLog(t, dir, compactConfig(), OpenOptions{})
	ts := int64(1_000_000)
	for round := range 20 {
		var recs []rec
		for k := range 5 {
			recs = append(recs, kv(fmt.Sprintf("k%d", k), fmt.Sprintf("v%d-%d-%s", k, round, strings.Repeat("x", 20))))
		}
		if round == 3 {
			recs = append(recs, noKey("no key"))
		}
		appendBatch(t, l, keyedBatch(t, batch.CodecNone, ts, recs...))
		if round == 5 {
			appendBatch(t, l, controlBatch(t, ts))
		}
		ts += 10
	}
	before := readAll(t, l)
	beforeByOffset := map[int64]storedRecord{}
	for _, r := range before {
		beforeByOffset[r.offset] = r
	}
	active := activeBase(l)
	if len(l.Segments()) < 3 {
		t.Fatalf("only %d segments: the test needs closed ones", len(l.Segments()))
	}
	st := clean(t, testCleaner(), l, time.UnixMilli(ts))
	if st.FirstDirtyOffset != 0 || st.EndOffset != active || st.MapFull {
		t.Fatalf("stats %+v: want the map to cover [0, %d)", st, active)
	}
	if off, ok := l.CleanerCheckpoint(); off != active || !ok {
		t.Fatalf("checkpoint %d %v, want %d", off, ok, active)
	}
	after := readAll(t, l)
	closedKeys := map[string]int{}
	var sawNoKey, sawControl bool
	for _, r := range after {
		b, ok := beforeByOffset[r.offset]
		if !ok || !bytes.Equal(b.key, r.key) || !bytes.Equal(b.value, r.value) || b.ts != r.ts {
			t.Fatalf("record at %d: %q=%q @%d, before the clean %q=%q @%d", r.offset, r.key, r.value, r.ts, b.key, b.value, b.ts)
		}
		if b.batchBase != r.batchBase || b.batchLastDelt != r.batchLastDelt {
			t.Fatalf("record at %d: batch %d+%d, before %d+%d", r.offset, r.batchBase, r.batchLastDelt, b.batchBase, b.batchLastDelt)
		}
		switch {
		case r.control:
			sawControl = true
		case r.key == nil:
			sawNoKey = true
		case r.offset < active:
			closedKeys[string(r.key)]++
		}
	}
	if !sawNoKey || !sawControl {
		t.Fatalf("a record without a key (%v) or the control batch (%v) was dropped", sawNoKey, sawControl)
	}
	for k, n := range closedKeys {
		if n != 1 {
			t.Fatalf("key %s appears %d times in the cleaned segments", k, n)
		}
	}
	if got, want := newestPerKey(after), newestPerKey(before); !mapsEqual(got, want) {
		t.Fatalf("the key view changed:\n%v\nwant\n%v", got, want)
	}
	for _, r := range before {
		if r.offset >= active && !slices.ContainsFunc(after, func(a storedRecord) bool { return a.offset == r.offset }) {
			t.Fatalf("record %d of the active segment went", r.offset)
		}
	}
	// Indexes equal a rebuild from the cleaned files.
	cleaned := indexSnapshot(l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	removeIndexes(t, dir)
	l = openLog(t, dir, compactConfig(), OpenOptions{CleanShutdown: true})
	if rebuilt := indexSnapshot(l); rebuilt != cleaned {
		t.Fatalf("cleaned indexes\n%s\ndiffer from a rebuild\n%s", cleaned, rebuilt)
	}
}

func mapsEqual(a, b map[string]entry) bool {
	if len(a) != len(b) {
		return false
	}
	for k, x := range a {
		y, ok := b[k]
		if !ok || x.offset != y.offset || !bytes.Equal(x.value, y.value) || (x.value == nil) != (y.value == nil) {
			return false
		}
	}
	return true
}

// deleteHorizonOf returns the delete horizon of the batch holding offset,
// if the cleaner stamped one.
func deleteHorizonOf(t testing.TB, l *Log, offset int64) (int64, bool) {
	t.Helper()
	data, err := l.ReadBytes(nil, offset, 1, 1<<62)
	if err != nil || len(data) < batch.HeaderSize {
		t.Fatalf("reading the batch at %d: %d bytes, %v", offset, len(data), err)
	}
	h := batch.Header(data)
	if offset < h.BaseOffset() || offset > h.LastOffset() {
		t.Fatalf("offset %d is in no batch: the next is %d-%d", offset, h.BaseOffset(), h.LastOffset())
	}
	return h.DeleteHorizon()
}

// stampedBatch is keyedBatch as an earlier cleaning pass leaves a batch that
// kept a tombstone: stamped with a delete horizon, its records' timestamps
// unchanged.
func stampedBatch(tb testing.TB, horizon, ts int64, recs ...rec) []byte {
	tb.Helper()
	b := keyedBatch(tb, batch.CodecNone, ts, recs...)
	h := batch.Header(b)
	out := slices.Clone(b[:batch.HeaderSize])
	rr := batch.NewRecordReader(h.Records(), h.RecordCount())
	var r batch.Record
	for rr.Next(&r) {
		r.TimestampDelta += h.BaseTimestamp() - horizon
		out = batch.AppendRecord(out, &r)
	}
	if err := rr.Err(); err != nil {
		tb.Fatal(err)
	}
	binary.BigEndian.PutUint32(out[batchLengthOffset:], uint32(len(out)-batch.LengthOverhead))
	nh := batch.Header(out)
	nh.SetDeleteHorizon(horizon)
	nh.SetCRC()
	return out
}

// TestCleanTombstones: a tombstone replaces its key's older records at once
// and stays delete.retention.ms after the first pass that keeps it, however
// old its own timestamp (KIP-534): that pass stamps its batch with the delete
// horizon, leaving the records' timestamps as they were; a pass before the
// horizon keeps it and the horizon; a pass at the horizon drops it. A
// consumer that read a=1 before the first pass and goes on after it finds the
// delete.
func TestCleanTombstones(t *testing.T) {
	cfg := compactConfig()
	const retention = 60_000
	cfg.DeleteRetentionMs = retention
	l := openLog(t, filepath.Join(t.TempDir(), "t-0"), cfg, OpenOptions{})
	ts := int64(1_000_000)
	appendBatch(t, l, keyedBatch(t, batch.CodecNone, ts, kv("a", "1"), kv("b", "1"), kv("c", "1")))
	appendBatch(t, l, keyedBatch(t, batch.CodecNone, ts+10, tombstone("a"), kv("b", "2")))
	for i := range 20 { // roll past them
		appendBatch(t, l, keyedBatch(t, batch.CodecNone, ts+20, kv(fmt.Sprintf("filler-%d", i), strings.Repeat("x", 100))))
	}
	c := testCleaner()
	// The first pass ever, long after the tombstone was written.
	first := ts + 10*retention
	st := clean(t, c, l, time.UnixMilli(first))
	var sawTombstone bool
	for _, r := range readAll(t, l) {
		if string(r.key) != "a" {
			continue
		}
		if r.value != nil {
			t.Fatalf("a's old value survived its tombstone: %+v", r)
		}
		if r.offset != 3 || r.ts != ts+10 {
			t.Fatalf("a's tombstone is at offset %d with timestamp %d, want 3 and %d", r.offset, r.ts, ts+10)
		}
		sawTombstone = true
	}
	if !sawTombstone || st.TombstonesDropped != 0 || st.BatchesMarked != 1 {
		t.Fatalf("the first pass over an old tombstone: kept it %v, %d dropped, %d batches marked", sawTombstone, st.TombstonesDropped, st.BatchesMarked)
	}
	if hz, ok := deleteHorizonOf(t, l, 3); !ok || hz != first+retention {
		t.Fatalf("the tombstone's batch has horizon %d (%v), want %d", hz, ok, first+retention)
	}
	if hz, ok := deleteHorizonOf(t, l, 0); ok {
		t.Fatalf("a batch without a tombstone got horizon %d", hz)
	}
	// Passes before the horizon, with nothing new: it stays, and its horizon
	// does not move.
	for _, now := range []int64{first + 1, first + retention - 1} {
		if st := clean(t, c, l, time.UnixMilli(now)); st.TombstonesDropped != 0 || st.BatchesMarked != 0 {
			t.Fatalf("pass at %d: %+v", now, st)
		}
		if _, ok := newestPerKey(readAll(t, l))["a"]; !ok {
			t.Fatalf("a's tombstone went at %d, before its horizon %d", now, first+retention)
		}
		if hz, _ := deleteHorizonOf(t, l, 3); hz != first+retention {
			t.Fatalf("pass at %d moved the horizon to %d", now, hz)
		}
	}
	st = clean(t, c, l, time.UnixMilli(first+retention))
	view := newestPerKey(readAll(t, l))
	if _, ok := view["a"]; ok || st.TombstonesDropped != 1 {
		t.Fatalf("a at its delete horizon: still %+v, %d dropped", view["a"], st.TombstonesDropped)
	}
	if string(view["b"].value) != "2" || string(view["c"].value) != "1" {
		t.Fatalf("b=%q c=%q, want 2 and 1", view["b"].value, view["c"].value)
	}
}

// TestCleanTombstoneOrdering: what a tombstone deletes and what follows it
// keep their order through passes and horizons. A value written after a
// tombstone outlives it; a tombstone after a value keeps the key deleted
// until its horizon, then the key is gone, never back at an older value.
func TestCleanTombstoneOrdering(t *testing.T) {
	cfg := compactConfig()
	cfg.DeleteRetentionMs = 1000
	l := openLog(t, filepath.Join(t.TempDir(), "t-0"), cfg, OpenOptions{})
	ts := int64(1_000_000)
	appendBatch(t, l, keyedBatch(t, batch.CodecNone, ts, kv("a", "1"), kv("b", "1")))
	appendBatch(t, l, keyedBatch(t, batch.CodecNone, ts, tombstone("a"), tombstone("b")))
	appendBatch(t, l, keyedBatch(t, batch.CodecNone, ts, kv("b", "2")))
	for i := range 20 {
		appendBatch(t, l, keyedBatch(t, batch.CodecNone, ts, kv(fmt.Sprintf("filler-%d", i), strings.Repeat("x", 100))))
	}
	c := testCleaner()
	for i, now := range []int64{ts, ts + 999, ts + 1000, ts + 5000} {
		clean(t, c, l, time.UnixMilli(now))
		var keys []string
		for _, r := range readAll(t, l) {
			if k := string(r.key); k == "a" || k == "b" {
				v := "∅"
				if r.value != nil {
					v = string(r.value)
				}
				keys = append(keys, fmt.Sprintf("%d:%s=%s", r.offset, k, v))
			}
		}
		want := []string{"2:a=∅", "4:b=2"} // the tombstone's horizon is ts+1000
		if i >= 2 {
			want = []string{"4:b=2"}
		}
		if !slices.Equal(keys, want) {
			t.Fatalf("after a pass at %d: %q, want %q", now, keys, want)
		}
	}
}

// TestCleanTombstonePastMapEnd: a pass whose offset map fills before a
// tombstone rewrites the tombstone's segment without stamping its batch:
// the tombstone has not yet removed the older values of its key, and a
// horizon running from then could drop it in the very pass that does. The
// pass whose map reaches it stamps it.
func TestCleanTombstonePastMapEnd(t *testing.T) {
	cfg := compactConfig()
	cfg.SegmentBytes = 64 << 10 // every key in one segment
	cfg.DeleteRetentionMs = 1000
	l := openLog(t, filepath.Join(t.TempDir(), "t-0"), cfg, OpenOptions{})
	ts := int64(1_000_000)
	appendBatch(t, l, keyedBatch(t, batch.CodecNone, ts, kv("a", "1")))
	for k := range 60 {
		appendBatch(t, l, keyedBatch(t, batch.CodecNone, ts, kv(fmt.Sprintf("key-%d", k), "v")))
	}
	tomb := appendBatch(t, l, keyedBatch(t, batch.CodecNone, ts, tombstone("a"))).FirstOffset
	appendBatch(t, l, keyedBatch(t, batch.CodecNone, ts, kv("roll", strings.Repeat("r", 63<<10))))
	if n := len(l.Segments()); n != 2 {
		t.Fatalf("%d segments, want the keys in one closed segment and an active one", n)
	}
	ccfg := DefaultCleanerConfig()
	ccfg.DedupeBufferSize = MinCleanerDedupeBufferSize // 37 keys
	c := NewCleaner(ccfg, discardLogger)
	st := clean(t, c, l, time.UnixMilli(ts))
	if !st.MapFull || st.EndOffset > tomb || st.SegmentsCleaned != 1 {
		t.Fatalf("first pass %+v: want a full map ending before the tombstone at %d, its segment rewritten", st, tomb)
	}
	if hz, ok := deleteHorizonOf(t, l, tomb); ok {
		t.Fatalf("a tombstone past the map's end got horizon %d", hz)
	}
	// Long after: the pass that removes a=1 stamps the tombstone, and keeps it.
	st = clean(t, c, l, time.UnixMilli(ts+10_000))
	if st.MapFull {
		t.Fatalf("second pass %+v: want it to reach the active segment", st)
	}
	view := newestPerKey(readAll(t, l))
	if e, ok := view["a"]; !ok || e.value != nil || e.offset != tomb {
		t.Fatalf("a after the pass that removed a=1: %+v %v, want the tombstone at %d", e, ok, tomb)
	}
	if hz, ok := deleteHorizonOf(t, l, tomb); !ok || hz != ts+11_000 {
		t.Fatalf("the tombstone's horizon: %d %v, want %d", hz, ok, ts+11_000)
	}
}

// TestCleanEveryCodec: a batch that loses some records is re-encoded with
// only those that stay, compressed with its own codec, with a good CRC and
// its original base offset, last offset delta, base timestamp and producer
// fields, and the max timestamp of the records it kept; a batch that keeps
// all its records is the same bytes.
func TestCleanEveryCodec(t *testing.T) {
	for _, codec := range []batch.Codec{batch.CodecNone, batch.CodecGzip, batch.CodecSnappy, batch.CodecLZ4, batch.CodecZstd} {
		t.Run(codec.String(), func(t *testing.T) {
			l := openLog(t, filepath.Join(t.TempDir(), "t-0"), compactConfig(), OpenOptions{})
			ts := int64(1_000_000)
			// Batch 1: keys a..h; batch 2 updates b, d, f, h; batch 3 all new.
			var first, second []rec
			for i, k := range "abcdefgh" {
				first = append(first, kv(string(k), strings.Repeat(string(k), 50)))
				if i%2 == 1 {
					second = append(second, kv(string(k), "new"))
				}
			}
			opts := batch.DefaultBuilderOptions()
			opts.Codec, opts.ProducerID, opts.ProducerEpoch, opts.BaseSequence = codec, 42, 3, 0
			bld := batch.NewBuilder(opts)
			for i, r := range first {
				bld.Add(ts+int64(i), r.key, r.value, []batch.RecordHeader{{Key: []byte("h"), Value: []byte("v")}})
			}
			b1, err := bld.AppendBatch(nil)
			if err != nil {
				t.Fatal(err)
			}
			orig := slices.Clone(b1)
			appendBatch(t, l, b1)
			b2 := keyedBatch(t, codec, ts+100, second...)
			appendBatch(t, l, b2)
			b3 := keyedBatch(t, codec, ts+200, kv("x", "1"), kv("y", "2"))
			appendBatch(t, l, b3)
			for i := range 30 {
				appendBatch(t, l, keyedBatch(t, codec, ts+300, kv(fmt.Sprintf("z%d", i), strings.Repeat("z", 100))))
			}
			clean(t, testCleaner(), l, time.UnixMilli(ts+1000))
			data, err := l.ReadBytes(nil, 0, 1<<20, activeBase(l))
			if err != nil {
				t.Fatal(err)
			}
			it := batch.NewIter(data)
			h, _ := it.Next()
			if err := validateStored(h, true); err != nil {
				t.Fatal(err)
			}
			if h.Codec() != codec || h.RecordCount() != 4 || h.BaseOffset() != 0 || h.LastOffsetDelta() != 7 ||
				h.BaseTimestamp() != ts || h.MaxTimestamp() != ts+6 || h.ProducerID() != 42 || h.ProducerEpoch() != 3 || h.BaseSequence() != 0 {
				t.Fatalf("cleaned batch: codec %v, %d records, base %d, delta %d, ts %d/%d, producer %d/%d/%d",
					h.Codec(), h.RecordCount(), h.BaseOffset(), h.LastOffsetDelta(), h.BaseTimestamp(), h.MaxTimestamp(),
					h.ProducerID(), h.ProducerEpoch(), h.BaseSequence())
			}
			// h@ts+7 went: the max timestamp is g's, ts+6.
			if !bytes.Equal(h[batch.CRCStart:maxTimestampOffset], orig[batch.CRCStart:maxTimestampOffset]) ||
				!bytes.Equal(h[maxTimestampOffset+8:recordCountOffset], orig[maxTimestampOffset+8:recordCountOffset]) {
				t.Fatal("header fields under the CRC changed beyond the max timestamp and the record count")
			}
			rr, _, err := batch.DecodeRecords(h, nil, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			var r batch.Record
			var got []string
			for rr.Next(&r) {
				if len(r.Headers) != 1 || string(r.Headers[0].Key) != "h" {
					t.Fatalf("record headers %v", r.Headers)
				}
				got = append(got, fmt.Sprintf("%d:%s", r.OffsetDelta, r.Key))
			}
			if want := []string{"0:a", "2:c", "4:e", "6:g"}; !slices.Equal(got, want) {
				t.Fatalf("kept %v, want %v", got, want)
			}
			// The second batch is whole, the third untouched.
			h2, _ := it.Next()
			h3, _ := it.Next()
			if !bytes.Equal(h2[batch.LengthOverhead:], b2[batch.LengthOverhead:]) || h3.BaseOffset() != 12 || !bytes.Equal(h3[batch.CRCStart:], b3[batch.CRCStart:]) {
				t.Fatal("batches that keep every record changed")
			}
		})
	}
}

// TestCleanReadsInGaps: a Read at an offset the cleaner removed returns the
// next batch at a higher offset, in the same segment or the next; a batch
// left with no records is dropped.
func TestCleanReadsInGaps(t *testing.T) {
	cfg := compactConfig()
	cfg.SegmentBytes = 400
	l := openLog(t, filepath.Join(t.TempDir(), "t-0"), cfg, OpenOptions{})
	ts := int64(1_000_000)
	var offsets []int64
	for i := range 30 {
		k := fmt.Sprintf("k%d", i%3)
		if i >= 27 {
			k = fmt.Sprintf("last%d", i)
		}
		info := appendBatch(t, l, keyedBatch(t, batch.CodecNone, ts, kv(k, strings.Repeat("v", 60)), kv(k, strings.Repeat("w", 60))))
		offsets = append(offsets, info.FirstOffset)
	}
	segsBefore := len(l.Segments())
	st := clean(t, testCleaner(), l, time.UnixMilli(ts))
	if st.BatchesDropped == 0 {
		t.Fatalf("no batch dropped: %+v", st)
	}
	if len(l.Segments()) >= segsBefore {
		t.Fatalf("%d segments after cleaning, %d before: small cleaned segments should merge", len(l.Segments()), segsBefore)
	}
	recs := readAll(t, l)
	present := map[int64]bool{}
	for _, r := range recs {
		present[r.offset] = true
	}
	for off := int64(0); off < l.LogEndOffset(); off++ {
		data, err := l.ReadBytes(nil, off, 1, 1<<62)
		if err != nil {
			t.Fatal(err)
		}
		h := batch.Header(data)
		var want int64 = -1
		for _, r := range recs {
			if r.offset >= off {
				want = r.batchBase
				break
			}
		}
		if len(data) == 0 || h.BaseOffset() != want || h.LastOffset() < off {
			t.Fatalf("read at %d (present %v): batch %d-%d, want the batch at %d", off, present[off], h.BaseOffset(), h.LastOffset(), want)
		}
	}
}

// TestOffsetForTimestampAnswersOnlyKeptRecords guards ListOffsets by time
// after cleaning: a batch the cleaner thinned may have a header (max
// timestamp, base offset) that speaks of records it removed, and the lookup
// must answer the first record that is still in the log, as Kafka's
// FileRecords.searchForTimestamp does, never an offset or a timestamp only
// the header has.
func TestOffsetForTimestampAnswersOnlyKeptRecords(t *testing.T) {
	big := strings.Repeat("x", 900)
	rollTwice := func(t *testing.T, l *Log, ts int64) {
		appendBatch(t, l, keyedBatch(t, batch.CodecNone, ts, kv("f", big)))   // rolls
		appendBatch(t, l, keyedBatch(t, batch.CodecNone, ts+1, kv("g", big))) // rolls
	}
	removed := func(t *testing.T, l *Log, offset int64) {
		t.Helper()
		for _, r := range readAll(t, l) {
			if r.offset == offset {
				t.Fatalf("offset %d survived cleaning", offset)
			}
		}
	}
	lookup := func(t *testing.T, l *Log, ts, wantOffset, wantTs int64) {
		t.Helper()
		off, got, found, err := l.OffsetForTimestamp(ts, 1<<20)
		if err != nil || !found || off != wantOffset || got != wantTs {
			t.Fatalf("OffsetForTimestamp(%d) = offset %d timestamp %d found %v (%v); want offset %d timestamp %d",
				ts, off, got, found, err, wantOffset, wantTs)
		}
	}

	// CreateTime: the batch {a@1000, b@5000} loses b@5000 to b@6000, and
	// its header keeps max timestamp 5000.
	t.Run("create-time", func(t *testing.T) {
		l := openLog(t, filepath.Join(t.TempDir(), "t-0"), compactConfig(), OpenOptions{})
		bld := batch.NewBuilder(batch.DefaultBuilderOptions())
		bld.Add(1000, []byte("a"), []byte("1"), nil)
		bld.Add(5000, []byte("b"), []byte("1"), nil)
		ab, err := bld.AppendBatch(nil)
		if err != nil {
			t.Fatal(err)
		}
		appendBatch(t, l, ab)                                                 // offsets 0, 1
		appendBatch(t, l, keyedBatch(t, batch.CodecNone, 6000, kv("b", "2"))) // offset 2
		rollTwice(t, l, 8000)
		if activeBase(l) != 4 {
			t.Fatalf("segments %+v", l.Segments())
		}
		clean(t, testCleaner(), l, time.UnixMilli(10_000))
		removed(t, l, 1)
		lookup(t, l, 3000, 2, 6000)
		lookup(t, l, 1000, 0, 1000)
	})

	// LogAppendTime: every record of the batch {a, b} reads as its append
	// time, 5000; a@0, the batch's base offset, goes to a@2.
	t.Run("log-append-time", func(t *testing.T) {
		l := openLog(t, filepath.Join(t.TempDir(), "t-0"), compactConfig(), OpenOptions{})
		ab := keyedBatch(t, batch.CodecNone, 1000, kv("a", "1"), kv("b", "1"))
		batch.Header(ab).SetMaxTimestampLogAppendTime(5000)
		appendBatch(t, l, ab)                                                 // offsets 0, 1
		appendBatch(t, l, keyedBatch(t, batch.CodecNone, 6000, kv("a", "2"))) // offset 2
		rollTwice(t, l, 8000)
		lookup(t, l, 5000, 0, 5000)
		clean(t, testCleaner(), l, time.UnixMilli(10_000))
		removed(t, l, 0)
		lookup(t, l, 5000, 1, 5000)
		lookup(t, l, 5001, 2, 6000)
	})
}

// TestCleanSetsMaxTimestampFromKeptRecords guards what the time index,
// retention and ListOffsets MAX_TIMESTAMP go by after cleaning: as Kafka's
// cleaner, which rebuilds the batches it keeps, a CreateTime batch the
// cleaner rewrites has the max timestamp of the records it kept (also one
// kept whole whose header disagrees with its records, as an earlier
// cleaner that kept the old header left it), and a LogAppendTime batch
// keeps its append time. OffsetForMaxTimestamp then answers a record the
// log holds.
func TestCleanSetsMaxTimestampFromKeptRecords(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), "t-0"), compactConfig(), OpenOptions{})
	type tk struct {
		ts  int64
		key string
	}
	add := func(recs ...tk) []byte {
		bld := batch.NewBuilder(batch.DefaultBuilderOptions())
		for _, r := range recs {
			bld.Add(r.ts, []byte(r.key), []byte("v"), nil)
		}
		b, err := bld.AppendBatch(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	appendBatch(t, l, add(tk{1000, "a"}, tk{9000, "b"})) // 0, 1: b@9000 goes to b@2
	appendBatch(t, l, add(tk{2000, "b"}))                // 2
	stale := add(tk{3000, "c"}, tk{4000, "d"})           // 3, 4: kept whole
	batch.Header(stale).SetMaxTimestamp(8000)            // a header that speaks of a removed record
	appendBatch(t, l, stale)
	lat := add(tk{1000, "e"}, tk{1001, "f"}) // 5, 6: e goes to e@7
	batch.Header(lat).SetMaxTimestampLogAppendTime(7000)
	appendBatch(t, l, lat)
	appendBatch(t, l, add(tk{1500, "e"}))                                                     // 7
	appendBatch(t, l, keyedBatch(t, batch.CodecNone, 100, kv("r", strings.Repeat("x", 900)))) // 8: rolls
	appendBatch(t, l, keyedBatch(t, batch.CodecNone, 100, kv("s", strings.Repeat("x", 900)))) // 9: rolls
	if activeBase(l) != 9 {
		t.Fatalf("segments %+v", l.Segments())
	}
	if off, ts, found, err := l.OffsetForMaxTimestamp(1 << 20); err != nil || !found || off != 1 || ts != 9000 {
		t.Fatalf("before cleaning, OffsetForMaxTimestamp = offset %d timestamp %d found %v (%v); want b@9000 at 1", off, ts, found, err)
	}
	clean(t, testCleaner(), l, time.UnixMilli(10_000))
	want := map[int64]int64{0: 1000, 2: 2000, 3: 4000, 5: 7000, 7: 1500, 8: 100}
	data, err := l.ReadBytes(nil, 0, 1<<20, 9)
	if err != nil {
		t.Fatal(err)
	}
	it := batch.NewIter(data)
	for h, ok := it.Next(); ok; h, ok = it.Next() {
		if w, ok := want[h.BaseOffset()]; !ok || h.MaxTimestamp() != w {
			t.Errorf("batch at %d: max timestamp %d, want %d (%v)", h.BaseOffset(), h.MaxTimestamp(), w, ok)
		}
		delete(want, h.BaseOffset())
	}
	if len(want) > 0 {
		t.Errorf("batches missing after cleaning: %v", want)
	}
	if segs := l.Segments(); segs[0].MaxTimestamp != 7000 {
		t.Errorf("cleaned segments %+v: want the first's max timestamp 7000, the LogAppendTime batch's", segs)
	}
	if off, ts, found, err := l.OffsetForMaxTimestamp(1 << 20); err != nil || !found || off != 6 || ts != 7000 {
		t.Fatalf("after cleaning, OffsetForMaxTimestamp = offset %d timestamp %d found %v (%v); want f at 6, appended at 7000", off, ts, found, err)
	}
}

// TestCleanKeepsReplacedFilesOpenForReaders: a reader holding a region of a
// segment the cleaner replaces keeps reading it; the file closes with the
// reader's release.
func TestCleanKeepsReplacedFilesOpenForReaders(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), "t-0"), compactConfig(), OpenOptions{})
	for i := range 40 {
		appendBatch(t, l, keyedBatch(t, batch.CodecNone, 1000, kv(fmt.Sprintf("k%d", i%4), strings.Repeat("v", 80))))
	}
	regions, err := l.Read(nil, 0, 1<<20, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	first := regions[0]
	want := make([]byte, first.Length)
	if _, err := first.File.OS().ReadAt(want, first.Position); err != nil {
		t.Fatal(err)
	}
	clean(t, testCleaner(), l, time.UnixMilli(2000))
	if l.Segments()[0].Size >= first.Length {
		t.Fatal("the first segment was not rewritten")
	}
	got := make([]byte, first.Length)
	if _, err := first.File.OS().ReadAt(got, first.Position); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the replaced segment changed under its reader: %v", err)
	}
	ReleaseAll(regions)
	if _, err := first.File.OS().ReadAt(got, 0); err == nil {
		t.Fatal("the replaced file is still open after its last reader released it")
	}
}

// TestCleanMapFull: a dedupe buffer too small for the dirty part cleans up
// to where it filled, checkpoints there, and the next passes go on from it;
// nothing is lost on the way.
func TestCleanMapFull(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), "t-0"), compactConfig(), OpenOptions{})
	ts := int64(1_000_000)
	for round := range 3 {
		for k := range 60 {
			appendBatch(t, l, keyedBatch(t, batch.CodecNone, ts, kv(fmt.Sprintf("key-%d", k), fmt.Sprintf("round-%d-%s", round, strings.Repeat("x", 20)))))
		}
	}
	appendBatch(t, l, keyedBatch(t, batch.CodecNone, ts, kv("roll", strings.Repeat("r", 900))))
	appendBatch(t, l, keyedBatch(t, batch.CodecNone, ts, kv("roll", strings.Repeat("r", 900))))
	want := newestPerKey(readAll(t, l))
	cfg := DefaultCleanerConfig()
	cfg.DedupeBufferSize = MinCleanerDedupeBufferSize // 42 slots, 37 keys
	c := NewCleaner(cfg, discardLogger)
	fu := activeBase(l)
	var prev int64
	for pass := 0; ; pass++ {
		st := clean(t, c, l, time.UnixMilli(ts))
		if st.FirstDirtyOffset != prev {
			t.Fatalf("pass %d started at %d, the last ended at %d", pass, st.FirstDirtyOffset, prev)
		}
		if got := newestPerKey(readAll(t, l)); !mapsEqual(got, want) {
			t.Fatalf("pass %d changed the key view", pass)
		}
		prev = st.EndOffset
		if !st.MapFull {
			if st.EndOffset != fu || pass < 3 {
				t.Fatalf("pass %d ended at %d (first uncleanable %d) without filling the map", pass, st.EndOffset, fu)
			}
			break
		}
		if st.MapKeys > 37 || st.EndOffset <= st.FirstDirtyOffset || st.EndOffset >= fu {
			t.Fatalf("pass %d: a full map (%d keys) covered [%d, %d)", pass, st.MapKeys, st.FirstDirtyOffset, st.EndOffset)
		}
		if pass > 20 {
			t.Fatal("no end in sight")
		}
	}
	// Fully cleaned now: one record per key below the active segment.
	seen := map[string]bool{}
	for _, r := range readAll(t, l) {
		if r.offset < fu && seen[string(r.key)] {
			t.Fatalf("key %s twice after the last pass", r.key)
		}
		seen[string(r.key)] = true
	}
}

// TestCleanMapsFromLogStartInsideBatch guards the offset map's sizing
// against a first dirty offset inside a batch: a compact,delete log whose
// start a DeleteRecords raised into the middle of a 200-record batch. The map
// is sized by the dirty offsets (20 here), so it must take only the records
// at or after the log start, as Kafka's buildOffsetMapForSegment does;
// mapping the whole batch failed the pass with "too few keys" whatever the
// dedupe buffer, and the Manager then left the log uncleaned until restart.
func TestCleanMapsFromLogStartInsideBatch(t *testing.T) {
	cfg := compactConfig()
	cfg.CleanupPolicy = "compact,delete"
	cfg.SegmentBytes = 5300
	l := openLog(t, filepath.Join(t.TempDir(), "t-0"), cfg, OpenOptions{})
	ts := int64(1_000_000)
	mk := func(prefix string) []byte {
		var recs []rec
		for i := range 200 {
			recs = append(recs, kv(fmt.Sprintf("%s%d", prefix, i), "v"))
		}
		return keyedBatch(t, batch.CodecNone, ts, recs...)
	}
	appendBatch(t, l, mk("a")) // offsets 0..199, segment 0
	appendBatch(t, l, mk("b")) // offsets 200..399
	appendBatch(t, l, mk("c")) // rolls: offsets 400..599 in the active segment
	if got := activeBase(l); got != 400 {
		t.Fatalf("active segment at %d, want 400 (segments %+v)", got, l.Segments())
	}
	if _, err := l.AdvanceLogStart(380); err != nil { // DeleteRecords(380)
		t.Fatal(err)
	}
	before := readAll(t, l)
	st, err := testCleaner().Clean(l, time.UnixMilli(ts), nil)
	if err != nil {
		t.Fatalf("clean with a 128 MiB dedupe buffer: %v (stats %+v)", err, st)
	}
	if st.FirstDirtyOffset != 380 || st.EndOffset != 400 || st.MapFull || st.MapKeys != 20 {
		t.Fatalf("stats %+v: want the 20 keys of offsets [380, 400) mapped", st)
	}
	if got, want := newestPerKey(readAll(t, l)), newestPerKey(before); !mapsEqual(got, want) {
		t.Fatalf("the key view changed:\n%v\nwant\n%v", got, want)
	}
}

// TestCleanOnlyCompactedLogsAndNoRetention: a delete-only log is not cleaned;
// retention does not delete a compact-only log's segments, and does delete
// those of a compact,delete log.
func TestCleanOnlyCompactedLogsAndNoRetention(t *testing.T) {
	cfg := compactConfig()
	cfg.RetentionMs = 1
	clock := newFakeClock(1_000_000)
	l := openLog(t, filepath.Join(t.TempDir(), "t-0"), cfg, OpenOptions{Now: clock.Now})
	for i := range 30 {
		appendBatch(t, l, keyedBatch(t, batch.CodecNone, 1000, kv(fmt.Sprintf("k%d", i), strings.Repeat("v", 80))))
	}
	if n, err := l.EnforceRetention(); n != 0 || err != nil {
		t.Fatalf("retention deleted %d segments of a compact-only log: %v", n, err)
	}
	cfg.CleanupPolicy = "compact,delete"
	if err := l.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if n, err := l.EnforceRetention(); n == 0 || err != nil {
		t.Fatalf("retention of a compact,delete log: %d, %v", n, err)
	}
	cfg.CleanupPolicy = "delete"
	if err := l.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if l.NeedsCleaning(clock.Now()) {
		t.Fatal("a delete-only log needs cleaning")
	}
	if _, err := testCleaner().Clean(l, clock.Now(), nil); err == nil {
		t.Fatal("cleaned a delete-only log")
	}
}

// TestCleanableRatio: a log is due once min.cleanable.dirty.ratio of its
// closed bytes are dirty, and not while min.compaction.lag.ms holds its
// dirty segments back.
func TestCleanableRatio(t *testing.T) {
	cfg := compactConfig()
	cfg.MinCleanableDirtyRatio = 0.5
	l := openLog(t, filepath.Join(t.TempDir(), "t-0"), cfg, OpenOptions{})
	now := time.UnixMilli(10_000)
	if l.NeedsCleaning(now) {
		t.Fatal("an empty log needs cleaning")
	}
	fill := func(n int) {
		for range n {
			appendBatch(t, l, keyedBatch(t, batch.CodecNone, 1000, kv("same", strings.Repeat("v", 200))))
		}
	}
	fill(20)
	if tc := l.LogToClean(now); tc.CleanableRatio != 1 || !l.NeedsCleaning(now) {
		t.Fatalf("never cleaned: %+v, want ratio 1", tc)
	}
	clean(t, testCleaner(), l, now)
	if tc := l.LogToClean(now); tc.DirtyBytes != 0 || l.NeedsCleaning(now) {
		t.Fatalf("just cleaned: %+v", tc)
	}
	fill(4)
	tc := l.LogToClean(now)
	if tc.DirtyBytes == 0 || tc.CleanBytes == 0 {
		t.Fatalf("%+v: want clean and dirty bytes", tc)
	}
	if got := l.NeedsCleaning(now); got != (tc.CleanableRatio >= 0.5) {
		t.Fatalf("ratio %v: needs cleaning %v", tc.CleanableRatio, got)
	}
	cfg.MinCompactionLagMs = 1_000_000
	if err := l.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if tc := l.LogToClean(now); tc.FirstUncleanableOffset != tc.FirstDirtyOffset && l.NeedsCleaning(now) {
		t.Fatalf("min.compaction.lag.ms holds young segments back: %+v", tc)
	}
}

// TestCleanedLogRecoversWithoutItsPolicy: a cleaned log opened after a crash
// by a broker that does not know its topic's cleanup.policy yet (the log dir's
// cleaner checkpoint lists it) keeps its gaps and shortened batches; without
// that entry they would read as damage.
func TestCleanedLogRecoversWithoutItsPolicy(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "t-0")
	l := openLog(t, dir, compactConfig(), OpenOptions{})
	for i := range 60 {
		appendBatch(t, l, keyedBatch(t, batch.CodecZstd, 1000, kv(fmt.Sprintf("k%d", i%5), "v"), kv(fmt.Sprintf("k%d", i%7), "w")))
	}
	st := clean(t, testCleaner(), l, time.UnixMilli(2000))
	want := readAll(t, l)
	end := l.LogEndOffset()
	crash(l)
	deleteCfg := compactConfig()
	deleteCfg.CleanupPolicy = "delete"
	l = openLog(t, dir, deleteCfg, OpenOptions{HasCleanerCheckpoint: true, CleanerCheckpoint: st.EndOffset})
	if l.LogEndOffset() != end {
		t.Fatalf("recovery cut the cleaned log to %d of %d", l.LogEndOffset(), end)
	}
	if got := readAll(t, l); len(got) != len(want) {
		t.Fatalf("%d records after recovery, %d before", len(got), len(want))
	}
	if off, ok := l.CleanerCheckpoint(); off != st.EndOffset || !ok {
		t.Fatalf("checkpoint %d %v after reopening", off, ok)
	}
}

// TestCleanWriteFailureStopsTheLog: a failed write of a cleaned segment is a
// storage error; the log stops, and reopens as it was.
func TestCleanWriteFailureStopsTheLog(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "t-0")
	l := openLog(t, dir, compactConfig(), OpenOptions{})
	for i := range 40 {
		appendBatch(t, l, keyedBatch(t, batch.CodecNone, 1000, kv(fmt.Sprintf("k%d", i%4), strings.Repeat("v", 80))))
	}
	want := readAll(t, l)
	l.background.Wait() // the rolls' fsyncs read l.io
	ops := &faultyOps{failWrite: errors.New("injected: no space left on device")}
	l.io = ops
	if _, err := testCleaner().Clean(l, time.UnixMilli(2000), nil); !errors.Is(err, ErrLogFailed) {
		t.Fatalf("clean with failing writes: %v", err)
	}
	if _, err := l.Append(keyedBatch(t, batch.CodecNone, 1000, kv("x", "y")), 0); !errors.Is(err, ErrLogFailed) {
		t.Fatalf("append after the cleaner's failed write: %v", err)
	}
	crash(l)
	l = openLog(t, dir, compactConfig(), OpenOptions{})
	if got := readAll(t, l); len(got) != len(want) {
		t.Fatalf("%d records after reopening, %d before", len(got), len(want))
	}
	assertNoCleanerFiles(t, dir)
}

// assertNoCleanerFiles: no .cleaned or .swap file is left. (Replaced
// segments' *.deleted files wait out file.delete.delay.ms by design;
// TestFileDeleteDelay sees them go.)
func assertNoCleanerFiles(t testing.TB, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), cleanedSuffix) || strings.HasSuffix(e.Name(), swapSuffix) {
			t.Fatalf("%s left behind", e.Name())
		}
	}
}

// copyDir copies the regular files of src into a new dir dst.
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		in, err := os.Open(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dst, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			t.Fatal(err)
		}
		in.Close()
		out.Close()
	}
}

// TestCleanKeepsUndecodableBatches: a batch whose records decompress past
// the bound is kept whole, and so are the older records of its keys (the
// map never saw its keys): the log is left less clean, never wrong.
func TestCleanKeepsUndecodableBatches(t *testing.T) {
	defer func(n int) { cleanerMaxDecompressed = n }(cleanerMaxDecompressed)
	cleanerMaxDecompressed = 200
	l := openLog(t, filepath.Join(t.TempDir(), "t-0"), compactConfig(), OpenOptions{})
	appendBatch(t, l, keyedBatch(t, batch.CodecNone, 1000, kv("a", "old"), kv("b", "old")))
	big := keyedBatch(t, batch.CodecGzip, 1000, kv("a", strings.Repeat("new", 100)), kv("c", "1"))
	appendBatch(t, l, big)
	appendBatch(t, l, keyedBatch(t, batch.CodecNone, 1000, kv("b", "new")))
	for i := range 20 {
		appendBatch(t, l, keyedBatch(t, batch.CodecNone, 1000, kv(fmt.Sprintf("f%d", i), strings.Repeat("f", 100))))
	}
	st := clean(t, testCleaner(), l, time.UnixMilli(2000))
	if st.BatchesUndecodable != 1 {
		t.Fatalf("stats %+v: want one undecodable batch", st)
	}
	var got []string
	for _, r := range readAll(t, l) {
		if r.offset < 4 {
			got = append(got, fmt.Sprintf("%d:%s", r.offset, r.key))
		}
	}
	if want := []string{"0:a", "2:a", "3:c"}; !slices.Equal(got, want) {
		// b's old value went (b=new at 4 superseded it); a's stayed.
		t.Fatalf("records below 4: %v, want %v", got, want)
	}
}

// TestMaxCompactionLag: a compacted log whose oldest dirty segment began
// longer than max.compaction.lag.ms ago is due for cleaning whatever its
// dirty ratio, and its active segment rolls at that age.
func TestMaxCompactionLag(t *testing.T) {
	cfg := compactConfig()
	cfg.MinCleanableDirtyRatio = 0.99
	l := openLog(t, filepath.Join(t.TempDir(), "t-0"), cfg, OpenOptions{})
	fill := func(n int, ts int64) {
		for range n {
			appendBatch(t, l, keyedBatch(t, batch.CodecNone, ts, kv("same", strings.Repeat("v", 200))))
		}
	}
	fill(20, 5000)
	clean(t, testCleaner(), l, time.UnixMilli(5000))
	fill(8, 5000)
	if tc := l.LogToClean(time.UnixMilli(10_000)); tc.DirtyBytes == 0 || tc.CleanableRatio >= 0.99 || l.NeedsCleaning(time.UnixMilli(10_000)) {
		t.Fatalf("%+v: want a little dirt, not enough to clean for the ratio", tc)
	}
	cfg.MaxCompactionLagMs = 3000
	if err := l.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if tc := l.LogToClean(time.UnixMilli(7000)); tc.OverdueMs != 0 || l.NeedsCleaning(time.UnixMilli(7000)) {
		t.Fatalf("2 s after its first batch, 3 s allowed: %+v", tc)
	}
	if tc := l.LogToClean(time.UnixMilli(10_000)); tc.OverdueMs != 2000 || !l.NeedsCleaning(time.UnixMilli(10_000)) {
		t.Fatalf("5 s after its first batch, 3 s allowed: %+v, want 2000 ms overdue", tc)
	}

	segments := func() int {
		l.mu.RLock()
		defer l.mu.RUnlock()
		return len(l.mu.segments)
	}
	fill(1, 20_000)
	before := segments()
	fill(1, 22_000)
	if segments() != before {
		t.Fatal("the active segment rolled within max.compaction.lag.ms")
	}
	fill(1, 23_500)
	if segments() != before+1 {
		t.Fatalf("%d segments, want %d: the active segment did not roll past max.compaction.lag.ms", segments(), before+1)
	}
}
