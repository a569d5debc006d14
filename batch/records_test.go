package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
	"unsafe"
)

func roundTripRecords() []Record {
	return []Record{
		{},
		{Key: []byte{}, Value: []byte{}},
		{Key: []byte("key"), Value: []byte("value")},
		{Attributes: 0x7f, TimestampDelta: math.MaxInt64, OffsetDelta: math.MaxInt32, Key: nil, Value: []byte("x")},
		{Attributes: -128, TimestampDelta: math.MinInt64, OffsetDelta: math.MinInt32, Key: []byte("k"), Value: nil},
		{TimestampDelta: -1, OffsetDelta: -1},
		{TimestampDelta: 1 << 40, OffsetDelta: 1 << 20, Key: bytes.Repeat([]byte("k"), 200), Value: bytes.Repeat([]byte("v"), 70000)},
		{Key: []byte("h"), Headers: []RecordHeader{
			{Key: []byte("a"), Value: []byte("1")},
			{Key: []byte("null-value"), Value: nil},
			{Key: []byte{}, Value: []byte{}},
			{Key: bytes.Repeat([]byte("x"), 130), Value: bytes.Repeat([]byte("y"), 130)},
		}},
	}
}

func sameRecord(a, b *Record) bool {
	return a.Attributes == b.Attributes && a.TimestampDelta == b.TimestampDelta &&
		a.OffsetDelta == b.OffsetDelta && sameBytes(a.Key, b.Key) && sameBytes(a.Value, b.Value) &&
		sameHeaders(a.Headers, b.Headers)
}

func TestRecordRoundTrip(t *testing.T) {
	recs := roundTripRecords()
	var section []byte
	for i := range recs {
		before := len(section)
		section = AppendRecord(section, &recs[i])
		if got, want := len(section)-before, RecordSize(&recs[i]); got != want {
			t.Errorf("record %d: AppendRecord wrote %d bytes, RecordSize says %d", i, got, want)
		}
	}
	rr := NewRecordReader(section, int32(len(recs)))
	var r Record
	n := 0
	for rr.Next(&r) {
		if !sameRecord(&r, &recs[n]) {
			t.Errorf("record %d: got %+v, want %+v", n, r, recs[n])
		}
		n++
	}
	if err := rr.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(recs) || rr.Remaining() != 0 {
		t.Fatalf("read %d records, want %d (remaining %d)", n, len(recs), rr.Remaining())
	}
}

func TestRecordAliasesInput(t *testing.T) {
	section := AppendRecord(nil, &Record{Key: []byte("key"), Value: []byte("value"),
		Headers: []RecordHeader{{Key: []byte("hk"), Value: []byte("hv")}}})
	rr := NewRecordReader(section, 1)
	var r Record
	if !rr.Next(&r) {
		t.Fatal(rr.Err())
	}
	lo, hi := uintptr(unsafe.Pointer(&section[0])), uintptr(unsafe.Pointer(&section[len(section)-1]))
	for _, b := range [][]byte{r.Key, r.Value, r.Headers[0].Key, r.Headers[0].Value} {
		if p := uintptr(unsafe.Pointer(&b[0])); p < lo || p > hi {
			t.Fatalf("decoded slice %q does not alias the input", b)
		}
		if cap(b) != len(b) {
			t.Fatalf("decoded slice %q has spare capacity %d: an append would overwrite the input", b, cap(b)-len(b))
		}
	}
}

func TestVarints(t *testing.T) {
	vals32 := []int32{0, 1, -1, 63, -64, 64, -65, 8191, -8192, 1 << 20, math.MaxInt32, math.MinInt32}
	for _, v := range vals32 {
		enc := binary.AppendVarint(nil, int64(v))
		got, n := readVarint(enc)
		if n != len(enc) || got != v || varintSize(int64(v)) != len(enc) {
			t.Errorf("varint %d: encoded % x, decoded %d in %d bytes, size %d", v, enc, got, n, varintSize(int64(v)))
		}
		if _, n := readVarint(enc[:len(enc)-1]); n != 0 {
			t.Errorf("varint %d truncated: n = %d, want 0", v, n)
		}
	}
	vals64 := []int64{0, 1, -1, 1 << 35, -(1 << 35), math.MaxInt64, math.MinInt64}
	for _, v := range vals64 {
		enc := binary.AppendVarint(nil, v)
		got, n := readVarlong(enc)
		if n != len(enc) || got != v || varintSize(v) != len(enc) {
			t.Errorf("varlong %d: encoded % x, decoded %d in %d bytes", v, enc, got, n)
		}
	}
	// Too long or overflowing.
	for _, enc := range [][]byte{
		{0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, // 6 bytes
		{0xff, 0xff, 0xff, 0xff, 0x1f},       // 33 bits
	} {
		if _, n := readVarint(enc); n >= 0 {
			t.Errorf("readVarint(% x) accepted (n=%d)", enc, n)
		}
	}
	if _, n := readVarlong([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}); n >= 0 {
		t.Errorf("readVarlong accepted a 65-bit value")
	}
	// Non-minimal encodings are accepted, as Kafka's own reader does.
	if v, n := readVarint([]byte{0x82, 0x80, 0x00}); v != 1 || n != 3 {
		t.Errorf("non-minimal varint: %d, %d", v, n)
	}
}

// rec builds a raw record from fields, with a correct length prefix unless
// lengthAdjust is non-zero.
func rawRecord(lengthAdjust int64, fields ...[]byte) []byte {
	body := bytes.Join(fields, nil)
	return append(putVarint(nil, int64(len(body))+lengthAdjust), body...)
}

func vint(x int64) []byte { return putVarint(nil, x) }

func TestRecordReaderMalformed(t *testing.T) {
	attrs := []byte{0}
	good := rawRecord(0, attrs, vint(0), vint(0), vint(-1), vint(-1), vint(0))
	cases := []struct {
		name    string
		section []byte
		count   int32
		msg     string
	}{
		{"empty section, one record declared", nil, 1, "ends after 0 records"},
		{"fewer records than count", good, 2, "ends after 1 records"},
		{"trailing bytes", append(bytes.Clone(good), 0), 1, "1 trailing bytes"},
		{"more records than count", append(bytes.Clone(good), good...), 1, "trailing bytes"},
		{"bytes with count 0", good, 0, "trailing bytes"},
		{"negative count", good, -1, "negative record count"},
		{"truncated length varint", []byte{0x80}, 1, "record length varint truncated"},
		{"overlong length varint", []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 1, "record length varint too long"},
		{"negative length", vint(-2), 1, "record length -2"},
		{"length past the end", rawRecord(5, attrs, vint(0), vint(0), vint(-1), vint(-1), vint(0)), 1, "record length 11, but 6 bytes remain"},
		{"zero length", vint(0), 1, "holds no attributes"},
		{"length longer than fields", rawRecord(0, attrs, vint(0), vint(0), vint(-1), vint(-1), vint(0), []byte{9}), 1, "fields end after 6 bytes"},
		{"length shorter than fields", rawRecord(-1, attrs, vint(0), vint(0), vint(1), []byte("k"), vint(-1), vint(0)), 1, "header count varint truncated"},
		{"truncated timestamp", rawRecord(0, attrs, []byte{0x80}), 1, "timestampDelta varlong truncated"},
		{"truncated offsetDelta", rawRecord(0, attrs, vint(0)), 1, "offsetDelta varint truncated"},
		{"key length below -1", rawRecord(0, attrs, vint(0), vint(0), vint(-2), vint(-1), vint(0)), 1, "key length -2"},
		{"key longer than record", rawRecord(0, attrs, vint(0), vint(0), vint(10), []byte("abc")), 1, "key length 10, but 3 bytes remain"},
		{"value length below -1", rawRecord(0, attrs, vint(0), vint(0), vint(-1), vint(-7), vint(0)), 1, "value length -7"},
		{"missing header count", rawRecord(0, attrs, vint(0), vint(0), vint(-1), vint(-1)), 1, "header count varint truncated"},
		{"negative header count", rawRecord(0, attrs, vint(0), vint(0), vint(-1), vint(-1), vint(-1)), 1, "header count -1"},
		{"header count beyond bytes", rawRecord(0, attrs, vint(0), vint(0), vint(-1), vint(-1), vint(1000000), vint(0), vint(0)), 1, "header count 1000000"},
		{"null header key", rawRecord(0, attrs, vint(0), vint(0), vint(-1), vint(-1), vint(1), vint(-1), vint(-1)), 1, "header 0 key length -1"},
		{"header value too long", rawRecord(0, attrs, vint(0), vint(0), vint(-1), vint(-1), vint(1), vint(1), []byte("k"), vint(5), []byte("x")), 1, "header value length 5"},
		{"second record bad", append(bytes.Clone(good), vint(-5)...), 2, "record 1 of 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rr := NewRecordReader(tc.section, tc.count)
			var r Record
			for rr.Next(&r) {
			}
			err := rr.Err()
			if !errors.Is(err, ErrRecord) {
				t.Fatalf("err = %v, want ErrRecord", err)
			}
			if KafkaCode(err) != 2 {
				t.Errorf("KafkaCode = %d, want 2 (CORRUPT_MESSAGE)", KafkaCode(err))
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %q, want it to mention %q", err, tc.msg)
			}
			if rr.Next(&r) {
				t.Error("Next returned true after an error")
			}
		})
	}
}

// TestRecordReaderEveryPrefixAndByte cuts a valid section at every length and
// changes every byte to a few values: the reader must fail cleanly or succeed,
// never panic.
func TestRecordReaderEveryPrefixAndByte(t *testing.T) {
	recs := roundTripRecords()[:6]
	var section []byte
	for i := range recs {
		section = AppendRecord(section, &recs[i])
	}
	count := int32(len(recs))
	var r Record
	drain := func(b []byte) error {
		rr := NewRecordReader(b, count)
		for rr.Next(&r) {
		}
		return rr.Err()
	}
	for n := 0; n < len(section); n++ {
		if err := drain(section[:n]); !errors.Is(err, ErrRecord) {
			t.Fatalf("prefix of %d bytes: err = %v, want ErrRecord", n, err)
		}
	}
	buf := make([]byte, len(section))
	for i := range section {
		for _, x := range []byte{0x00, 0x01, 0x7f, 0x80, 0xff} {
			copy(buf, section)
			buf[i] = x
			if err := drain(buf); err != nil && !errors.Is(err, ErrRecord) {
				t.Fatalf("byte %d = %#x: err = %v, not ErrRecord", i, x, err)
			}
		}
	}
}

func TestRecordReaderNoAllocs(t *testing.T) {
	var section []byte
	for i := range 10 {
		section = AppendRecord(section, &Record{OffsetDelta: int32(i), Key: []byte("key"), Value: []byte("some value"),
			Headers: []RecordHeader{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("b"), Value: nil}}})
	}
	var r Record
	r.Headers = make([]RecordHeader, 0, 4)
	allocs := testing.AllocsPerRun(100, func() {
		rr := NewRecordReader(section, 10)
		for rr.Next(&r) {
		}
		if rr.Err() != nil {
			t.Fatal(rr.Err())
		}
	})
	if allocs != 0 {
		t.Fatalf("RecordReader allocates %.1f times per batch, want 0", allocs)
	}
}

func TestDecodeRecordsEveryCodec(t *testing.T) {
	recs := append(sampleRecords(), jsonRecords(1, 50)...)
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			b := buildBatch(t, codecOpts(c), recs)
			if got := Header(b).Codec(); got != c {
				t.Fatalf("codec %s in the header, want %s", got, c)
			}
			checkBatchRecords(t, b, recs)

			// The scratch buffer is returned for reuse; a limit below the
			// records' size is an ErrDecompressSize.
			var scratch []byte
			rr, scratch, err := DecodeRecords(Header(b), scratch, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if c != CodecNone && cap(scratch) == 0 {
				t.Error("scratch was not returned grown")
			}
			_ = rr
			if c != CodecNone {
				if _, _, err := DecodeRecords(Header(b), scratch, 1000); !errors.Is(err, ErrDecompressSize) {
					t.Errorf("maxSize 1000: err = %v, want ErrDecompressSize", err)
				}
			}
		})
	}
}

func TestDecodeRecordsBadHeader(t *testing.T) {
	b := buildBatch(t, codecOpts(CodecNone), sampleRecords())
	if _, _, err := DecodeRecords(Header(b[:20]), nil, 1<<20); !errors.Is(err, ErrShort) {
		t.Errorf("short: %v", err)
	}
	if _, _, err := DecodeRecords(Header(b[:len(b)-1]), nil, 1<<20); !errors.Is(err, ErrLength) {
		t.Errorf("truncated: %v", err)
	}
	bad := bytes.Clone(b)
	bad[offAttributes+1] = 7
	if _, _, err := DecodeRecords(Header(bad), nil, 1<<20); !errors.Is(err, ErrCodec) {
		t.Errorf("codec 7: %v", err)
	}
	bad = bytes.Clone(b)
	binary.BigEndian.PutUint32(bad[offBatchLength:], 10)
	if _, _, err := DecodeRecords(Header(bad), nil, 1<<20); !errors.Is(err, ErrLength) {
		t.Errorf("batchLength 10: %v", err)
	}
	// A corrupt compressed payload.
	gz := buildBatch(t, codecOpts(CodecGzip), sampleRecords())
	gz[HeaderSize+12] ^= 0xff
	if _, _, err := DecodeRecords(Header(gz), nil, 1<<20); !errors.Is(err, ErrDecompress) {
		t.Errorf("corrupt gzip: %v", err)
	}
}
