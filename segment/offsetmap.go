package segment

import (
	"hash/maphash"
	"math/bits"
)

// offsetMap is the cleaner's dedupe buffer, Kafka's SkimpyOffsetMap: a
// fixed-size open-addressing hash table from the 128-bit hash of a record key
// to the newest offset seen for that key. Keys themselves are not kept, so
// memory depends only on how many distinct keys the map holds (24 bytes a
// slot), never on how long they are; the budget (log.cleaner.dedupe.buffer.size)
// bounds it, and the table never grows: a pass whose dirty part has more keys
// than fit stops where the map fills and cleans only up to there.
//
// 128 bits of hash make two keys taken for one (and the older record of one
// dropped for the newer of the other) as unlikely as Kafka's MD5 does, at a
// fraction of the cost: two hash/maphash sums with independent seeds. The
// seeds are per process, which is all a map rebuilt for every pass needs.
//
// An offsetMap belongs to one cleaner goroutine.
type offsetMap struct {
	seeds      [2]maphash.Seed
	budget     int64 // bytes the slots may take
	slots      []offsetSlot
	size       int // slots in use
	maxEntries int // size allowed by the load factor
}

// offsetSlot is one entry; off is the offset plus one, so that the zero
// value, which make and clear give, is an empty slot.
type offsetSlot struct {
	h0, h1 uint64
	off    int64
}

const (
	offsetSlotBytes = 24
	// offsetMapLoadFactor is log.cleaner.io.buffer.load.factor's default:
	// linear probing stays short below it.
	offsetMapLoadFactor = 0.9
	// minOffsetMapSlots keeps a tiny pass from reallocating for every log.
	minOffsetMapSlots = 64
)

func newOffsetMap(budget int64) *offsetMap {
	return &offsetMap{seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}, budget: budget}
}

// reset empties the map and sizes it for up to records keys, within the
// budget. A dirty part spanning n offsets holds at most n records, so the
// table need not be larger than that: a small log does not cost the whole
// budget. The slots are kept for the next pass.
func (m *offsetMap) reset(records int64) {
	n := max(m.budget/offsetSlotBytes, 2)
	if want := int64(float64(records)/offsetMapLoadFactor) + 1; want < n {
		n = min(max(want, minOffsetMapSlots), n)
	}
	if int64(cap(m.slots)) >= n {
		m.slots = m.slots[:n]
		clear(m.slots)
	} else {
		m.slots = nil // let the old table go before the new one is made
		m.slots = make([]offsetSlot, n)
	}
	m.size = 0
	// At least one slot stays empty, which is what ends every probe.
	m.maxEntries = max(min(int(float64(n)*offsetMapLoadFactor), int(n)-1), 1)
}

// room reports whether n more keys surely fit.
func (m *offsetMap) room(n int) bool { return m.size+n <= m.maxEntries }

// find returns the slot holding key's hash, or the empty slot where it goes.
func (m *offsetMap) find(key []byte) (*offsetSlot, uint64, uint64) {
	h0, h1 := maphash.Bytes(m.seeds[0], key), maphash.Bytes(m.seeds[1], key)
	n := uint64(len(m.slots))
	i, _ := bits.Mul64(h0, n) // h0 scaled onto [0, n): no modulo, no power of two
	for {
		s := &m.slots[i]
		if s.off == 0 || (s.h0 == h0 && s.h1 == h1) {
			return s, h0, h1
		}
		if i++; i == n {
			i = 0
		}
	}
}

// put records offset as key's newest. It reports false, changing nothing,
// when key is new and the map is full.
func (m *offsetMap) put(key []byte, offset int64) bool {
	s, h0, h1 := m.find(key)
	if s.off == 0 {
		if m.size >= m.maxEntries {
			return false
		}
		m.size++
		s.h0, s.h1 = h0, h1
	}
	s.off = offset + 1
	return true
}

// get returns the newest offset recorded for key.
func (m *offsetMap) get(key []byte) (int64, bool) {
	if len(m.slots) == 0 {
		return 0, false
	}
	s, _, _ := m.find(key)
	return s.off - 1, s.off != 0
}
