package batch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

var allCodecs = []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd}

var (
	vocabUsers  = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter"}
	vocabEvents = []string{"page_view", "click", "add_to_cart", "checkout", "login", "logout", "search", "purchase", "refund"}
	vocabOS     = []string{"android", "ios", "linux", "macos", "windows"}
	vocabPages  = []string{"/", "/home", "/search", "/cart", "/checkout", "/account", "/products/shoes", "/products/hats", "/help"}
	vocabWords  = []string{"fast", "blue", "order", "shipping", "size", "large", "small", "discount", "gift", "return", "express", "color", "red", "green", "wool", "cotton"}
	vocabTags   = []string{"new", "promo", "mobile", "returning", "vip", "ab-test-b", "newsletter"}
)

// jsonEvent appends one deterministic, realistic-looking JSON event of about
// 1 KiB: ids and numbers vary, names and fields come from small vocabularies,
// so compression ratios resemble production traffic rather than random bytes
// or zeros.
func jsonEvent(dst []byte, rng *rand.Rand, seq int) []byte {
	start := len(dst)
	pick := func(v []string) string { return v[rng.IntN(len(v))] }
	dst = fmt.Appendf(dst, `{"id":"%016x%016x","seq":%d,"ts":%d,"type":%q,"user":{"name":%q,"id":%d,"tags":[%q,%q]},`,
		rng.Uint64(), rng.Uint64(), seq, 1700000000000+int64(seq)*37+rng.Int64N(1000),
		pick(vocabEvents), pick(vocabUsers), rng.IntN(100000), pick(vocabTags), pick(vocabTags))
	dst = fmt.Appendf(dst, `"device":{"os":%q,"version":"%d.%d.%d","ip":"10.%d.%d.%d","screen":{"w":%d,"h":%d}},"page":%q,"items":[`,
		pick(vocabOS), rng.IntN(15), rng.IntN(10), rng.IntN(100), rng.IntN(256), rng.IntN(256), rng.IntN(256),
		360+rng.IntN(3000), 640+rng.IntN(1500), pick(vocabPages))
	for i := 0; len(dst)-start < 900; i++ {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = fmt.Appendf(dst, `{"sku":"SKU-%06d","qty":%d,"price":%d.%02d,"note":"%s %s %s"}`,
			rng.IntN(1000000), 1+rng.IntN(5), rng.IntN(500), rng.IntN(100), pick(vocabWords), pick(vocabWords), pick(vocabWords))
	}
	return append(dst, `]}`...)
}

// jsonValues returns n deterministic JSON events.
func jsonValues(seed uint64, n int) [][]byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([][]byte, n)
	for i := range out {
		out[i] = jsonEvent(nil, rng, i)
	}
	return out
}

// testRecord is what a test adds to a Builder and expects back.
type testRecord struct {
	ts      int64
	key     []byte
	value   []byte
	headers []RecordHeader
}

// sampleRecords covers null and empty keys and values, headers with null and
// empty values, and timestamps that go backwards.
func sampleRecords() []testRecord {
	return []testRecord{
		{ts: 1700000000000, key: []byte("k0"), value: []byte("hello")},
		{ts: 1700000000005, key: nil, value: []byte("null key")},
		{ts: 1699999999990, key: []byte{}, value: nil},
		{ts: 1700000000100, key: []byte("k3"), value: []byte{}, headers: []RecordHeader{
			{Key: []byte("trace-id"), Value: []byte("abc123")},
			{Key: []byte("null"), Value: nil},
			{Key: []byte("empty"), Value: []byte{}},
		}},
		{ts: 1700000000050, key: bytes.Repeat([]byte("K"), 300), value: bytes.Repeat([]byte("v"), 20000)},
	}
}

// jsonRecords turns n JSON events into records with keys and a header.
func jsonRecords(seed uint64, n int) []testRecord {
	vals := jsonValues(seed, n)
	out := make([]testRecord, n)
	for i, v := range vals {
		out[i] = testRecord{
			ts:      1700000000000 + int64(i),
			key:     []byte("user-" + strconv.Itoa(i%97)),
			value:   v,
			headers: []RecordHeader{{Key: []byte("content-type"), Value: []byte("application/json")}},
		}
	}
	return out
}

func buildBatch(tb testing.TB, opts BuilderOptions, recs []testRecord) []byte {
	tb.Helper()
	b := NewBuilder(opts)
	for _, r := range recs {
		b.Add(r.ts, r.key, r.value, r.headers)
	}
	out, err := b.AppendBatch(nil)
	if err != nil {
		tb.Fatalf("AppendBatch(%s): %v", opts.Codec, err)
	}
	return out
}

func codecOpts(c Codec) BuilderOptions {
	o := DefaultBuilderOptions()
	o.Codec = c
	return o
}

// recordsSection returns the uncompressed records section a Builder writes for
// recs, for codec tests and benchmarks.
func recordsSection(tb testing.TB, recs []testRecord) []byte {
	tb.Helper()
	return slices.Clone(Header(buildBatch(tb, codecOpts(CodecNone), recs)).Records())
}

// sameBytes compares nullable byte strings: nil and empty differ.
func sameBytes(a, b []byte) bool {
	return (a == nil) == (b == nil) && bytes.Equal(a, b)
}

func sameHeaders(a, b []RecordHeader) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i].Key, b[i].Key) || !sameBytes(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

// checkBatchRecords decodes batch and compares it with recs.
func checkBatchRecords(tb testing.TB, batch []byte, recs []testRecord) {
	tb.Helper()
	if err := Validate(batch, 0); err != nil {
		tb.Fatalf("Validate: %v", err)
	}
	h := Header(batch)
	rr, _, err := DecodeRecords(h, nil, 64<<20)
	if err != nil {
		tb.Fatalf("DecodeRecords: %v", err)
	}
	var r Record
	i := 0
	for ; rr.Next(&r); i++ {
		if i >= len(recs) {
			tb.Fatalf("more records than the %d added", len(recs))
		}
		want := recs[i]
		if got := h.BaseTimestamp() + r.TimestampDelta; got != want.ts {
			tb.Errorf("record %d: timestamp %d, want %d", i, got, want.ts)
		}
		if r.OffsetDelta != int32(i) {
			tb.Errorf("record %d: offsetDelta %d", i, r.OffsetDelta)
		}
		if !sameBytes(r.Key, want.key) || !sameBytes(r.Value, want.value) {
			tb.Errorf("record %d: key/value differ (nil key %v/%v, nil value %v/%v)", i, r.Key == nil, want.key == nil, r.Value == nil, want.value == nil)
		}
		if !sameHeaders(r.Headers, want.headers) {
			tb.Errorf("record %d: headers %q, want %q", i, r.Headers, want.headers)
		}
	}
	if err := rr.Err(); err != nil {
		tb.Fatalf("RecordReader: %v", err)
	}
	if i != len(recs) {
		tb.Fatalf("decoded %d records, want %d", i, len(recs))
	}
}

// putVarint appends a zigzag varint the way Kafka encodes it.
func putVarint(dst []byte, v int64) []byte { return binary.AppendVarint(dst, v) }
