package segment

import (
	"fmt"
	"testing"

	"gregor/batch"
)

// TestOffsetMap: the newest offset per key wins; a full map refuses new keys
// but still updates the ones it holds; the table never outgrows its budget,
// and is no larger than the records it is sized for call for.
func TestOffsetMap(t *testing.T) {
	m := newOffsetMap(24 * 100)
	m.reset(1000)
	if len(m.slots) != 100 || m.maxEntries != 90 {
		t.Fatalf("a 2400-byte budget: %d slots, %d entries; want 100 and 90", len(m.slots), m.maxEntries)
	}
	if _, ok := m.get([]byte("absent")); ok {
		t.Fatal("an empty map found a key")
	}
	for i := range 90 {
		if !m.put(fmt.Appendf(nil, "key-%d", i), int64(i)) {
			t.Fatalf("put %d of 90 refused", i)
		}
	}
	if m.put([]byte("one too many"), 1000) {
		t.Fatal("a full map took a new key")
	}
	if _, ok := m.get([]byte("one too many")); ok {
		t.Fatal("a refused key is in the map")
	}
	for i := range 90 {
		if !m.put(fmt.Appendf(nil, "key-%d", i), int64(500+i)) {
			t.Fatalf("a full map refused to update key %d", i)
		}
	}
	for i := range 90 {
		if off, ok := m.get(fmt.Appendf(nil, "key-%d", i)); !ok || off != int64(500+i) {
			t.Fatalf("key-%d: %d %v, want %d", i, off, ok, 500+i)
		}
	}
	if m.size != 90 || !m.room(0) || m.room(1) {
		t.Fatalf("size %d, room(0) %v, room(1) %v", m.size, m.room(0), m.room(1))
	}
	// Offset 0 and the empty key are values like any other.
	m.reset(10)
	if len(m.slots) != minOffsetMapSlots {
		t.Fatalf("sized for 10 records: %d slots, want the minimum %d", len(m.slots), minOffsetMapSlots)
	}
	m.put([]byte{}, 0)
	if off, ok := m.get([]byte{}); !ok || off != 0 {
		t.Fatalf("the empty key at offset 0: %d %v", off, ok)
	}
	if _, ok := m.get([]byte("key-1")); ok {
		t.Fatal("reset left a key behind")
	}
}

// TestOffsetMapManyKeys checks a large map against Go's map.
func TestOffsetMapManyKeys(t *testing.T) {
	const n = 200_000
	m := newOffsetMap(DefaultCleanerDedupeBufferSize)
	m.reset(n)
	if int64(len(m.slots))*offsetSlotBytes > DefaultCleanerDedupeBufferSize || len(m.slots) > n*2 {
		t.Fatalf("%d slots for %d records", len(m.slots), n)
	}
	want := map[string]int64{}
	for i := range int64(n) {
		k := fmt.Sprintf("user-%d", i%70_000)
		if !m.put([]byte(k), i) {
			t.Fatalf("put %d refused", i)
		}
		want[k] = i
	}
	if m.size != len(want) {
		t.Fatalf("%d keys in the map, want %d", m.size, len(want))
	}
	for k, off := range want {
		if got, ok := m.get([]byte(k)); !ok || got != off {
			t.Fatalf("%s: %d %v, want %d", k, got, ok, off)
		}
	}
}

func TestAllocOffsetMap(t *testing.T) {
	m := newOffsetMap(1 << 20)
	m.reset(1000)
	key := []byte("some-key")
	allocs := testing.AllocsPerRun(100, func() {
		m.put(key, 7)
		m.get(key)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per put and get", allocs)
	}
}

// TestAllocCleanerBatch: once its buffers have grown, the cleaner maps and
// filters a batch, uncompressed or not, and stamps it with a delete horizon
// for the tombstone it keeps, without allocating.
func TestAllocCleanerBatch(t *testing.T) {
	for _, codec := range []batch.Codec{batch.CodecNone, batch.CodecZstd} {
		t.Run(codec.String(), func(t *testing.T) {
			if codec != batch.CodecNone && raceEnabled {
				t.Skip("the race detector empties the codec pools at random")
			}
			var recs []rec
			for i := range 50 {
				recs = append(recs, kv(fmt.Sprintf("key-%d", i%20), fmt.Sprintf("value-%d", i)))
			}
			recs = append(recs, tombstone("gone"))
			h := batch.Header(keyedBatch(t, codec, 1000, recs...))
			c := testCleaner()
			c.m.reset(1000)
			var st CleanStats
			out := make([]byte, 0, 4*len(h))
			run := func() {
				c.m.reset(50)
				c.mapBatch(h, 0)
				out = c.filterBatch(out[:0], h, 1<<40, 2000, 3000, &st)
			}
			run()
			hz, ok := batch.Header(out).DeleteHorizon()
			if got := batch.Header(out).RecordCount(); got != 21 || !ok || hz != 3000 {
				t.Fatalf("kept %d records, want 20 and the tombstone; horizon %d %v, want 3000", got, hz, ok)
			}
			if allocs := testing.AllocsPerRun(50, run); allocs != 0 {
				t.Fatalf("%v allocations per batch", allocs)
			}
		})
	}
}
