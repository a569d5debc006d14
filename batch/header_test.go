package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

var sentinels = []*Error{ErrShort, ErrLength, ErrCRC, ErrMagic, ErrOffsetDelta, ErrRecordCount,
	ErrCodec, ErrTooLarge, ErrRecord, ErrDecompressSize, ErrDecompress}

func TestValidateGoodBatch(t *testing.T) {
	for _, c := range allCodecs {
		b := buildBatch(t, codecOpts(c), sampleRecords())
		if err := Validate(b, 0); err != nil {
			t.Errorf("%s: %v", c, err)
		}
		if err := Validate(b, len(b)); err != nil {
			t.Errorf("%s with maxBytes = its size: %v", c, err)
		}
	}
}

// TestValidateFailures breaks one thing at a time and expects that failure's
// own sentinel, and no other, with its Kafka error code.
func TestValidateFailures(t *testing.T) {
	good := buildBatch(t, codecOpts(CodecNone), sampleRecords())
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	resign := func(b []byte) []byte { Header(b).SetCRC(); return b }
	cases := []struct {
		name     string
		b        []byte
		maxBytes int
		want     *Error
		code     int16
		kerr     *kerr.Error
	}{
		{"shorter than a header", good[:HeaderSize-1], 0, ErrShort, 2, kerr.CorruptMessage},
		{"empty", nil, 0, ErrShort, 2, kerr.CorruptMessage},
		{"truncated", good[:len(good)-1], 0, ErrLength, 2, kerr.CorruptMessage},
		{"trailing byte", append(bytes.Clone(good), 0), 0, ErrLength, 2, kerr.CorruptMessage},
		{"negative batchLength", mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offBatchLength:], 0xffffffff)
			return b
		}), 0, ErrLength, 2, kerr.CorruptMessage},
		{"bad CRC", mutate(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), 0, ErrCRC, 2, kerr.CorruptMessage},
		{"CRC field changed", mutate(func(b []byte) []byte { b[offCRC] ^= 0x80; return b }), 0, ErrCRC, 2, kerr.CorruptMessage},
		{"magic 1", mutate(func(b []byte) []byte { b[offMagic] = 1; return b }), 0, ErrMagic, 87, kerr.InvalidRecord},
		{"lastOffsetDelta off by one", mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offLastOffsetDelta:], uint32(Header(b).RecordCount()))
			return resign(b)
		}), 0, ErrOffsetDelta, 87, kerr.InvalidRecord},
		{"zero records", mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offRecordCount:], 0)
			binary.BigEndian.PutUint32(b[offLastOffsetDelta:], 0xffffffff)
			return resign(b)
		}), 0, ErrRecordCount, 87, kerr.InvalidRecord},
		{"negative record count", mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offRecordCount:], 0x80000000)
			return resign(b)
		}), 0, ErrRecordCount, 87, kerr.InvalidRecord},
		{"codec 5", mutate(func(b []byte) []byte { b[offAttributes+1] |= 5; return resign(b) }), 0, ErrCodec, 76, kerr.UnsupportedCompressionType},
		{"codec 7", mutate(func(b []byte) []byte { b[offAttributes+1] |= 7; return resign(b) }), 0, ErrCodec, 76, kerr.UnsupportedCompressionType},
		{"over maxBytes", good, len(good) - 1, ErrTooLarge, 10, kerr.MessageTooLarge},
		{"declares more than maxBytes", good[:HeaderSize], len(good) - 1, ErrTooLarge, 10, kerr.MessageTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.b, tc.maxBytes)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			for _, s := range sentinels {
				if s != tc.want && errors.Is(err, s) {
					t.Errorf("err %v also matches %v", err, s)
				}
			}
			if got := KafkaCode(err); got != tc.code {
				t.Errorf("KafkaCode = %d, want %d", got, tc.code)
			}
			if !errors.Is(err, tc.kerr) {
				t.Errorf("err does not unwrap to %v", tc.kerr)
			}
		})
	}
}

func TestKafkaCode(t *testing.T) {
	if KafkaCode(nil) != 0 {
		t.Error("nil")
	}
	if KafkaCode(errors.New("x")) != -1 {
		t.Error("plain error should be UNKNOWN_SERVER_ERROR (-1)")
	}
	if KafkaCode(ErrDecompressSize) != 2 || KafkaCode(ErrCodec) != 76 || KafkaCode(ErrTooLarge) != 10 || KafkaCode(ErrMagic) != 87 {
		t.Error("sentinel codes")
	}
}

func TestHeaderFieldsAndRewrites(t *testing.T) {
	opts := BuilderOptions{Codec: CodecLZ4, ProducerID: 12345, ProducerEpoch: 7, BaseSequence: 99, Transactional: true, PartitionLeaderEpoch: 3}
	recs := sampleRecords()
	b := buildBatch(t, opts, recs)
	h := Header(b)
	if h.BaseOffset() != 0 || h.Magic() != 2 || h.PartitionLeaderEpoch() != 3 || h.Codec() != CodecLZ4 ||
		!h.Transactional() || h.Control() || h.LogAppendTime() || h.ProducerID() != 12345 ||
		h.ProducerEpoch() != 7 || h.BaseSequence() != 99 || h.RecordCount() != int32(len(recs)) ||
		h.LastOffsetDelta() != int32(len(recs)-1) || h.Size() != len(b) {
		t.Fatalf("header fields wrong: % x", b[:HeaderSize])
	}
	if h.BaseTimestamp() != recs[0].ts || h.MaxTimestamp() != 1700000000100 {
		t.Errorf("timestamps base %d max %d", h.BaseTimestamp(), h.MaxTimestamp())
	}
	// A leader assigns offsets and its epoch without touching the CRC.
	crc := h.CRC()
	h.SetBaseOffset(1 << 40)
	h.SetPartitionLeaderEpoch(42)
	if err := Validate(b, 0); err != nil || h.CRC() != crc {
		t.Fatalf("after offset/epoch rewrite: %v (crc %08x -> %08x)", err, crc, h.CRC())
	}
	if h.BaseOffset() != 1<<40 || h.LastOffset() != 1<<40+int64(len(recs)-1) || h.NextOffset() != h.LastOffset()+1 {
		t.Error("offsets")
	}
	h.SetMaxTimestamp(1700000000200)
	if err := Validate(b, 0); err != nil || h.LogAppendTime() || h.MaxTimestamp() != 1700000000200 {
		t.Fatalf("after SetMaxTimestamp: %v, max %d", err, h.MaxTimestamp())
	}
	h.SetMaxTimestampLogAppendTime(1800000000000)
	if err := Validate(b, 0); err != nil || !h.LogAppendTime() || h.MaxTimestamp() != 1800000000000 || h.Codec() != CodecLZ4 {
		t.Fatalf("after LogAppendTime: %v", err)
	}
	// SetMaxTimestamp is CreateTime's: it clears a LogAppendTime mark.
	h.SetMaxTimestamp(1700000000300)
	if err := Validate(b, 0); err != nil || h.LogAppendTime() || h.MaxTimestamp() != 1700000000300 || h.Codec() != CodecLZ4 || !h.Transactional() {
		t.Fatalf("SetMaxTimestamp after LogAppendTime: %v, LogAppendTime %v, max %d", err, h.LogAppendTime(), h.MaxTimestamp())
	}
	h.SetMaxTimestampLogAppendTime(1800000000000)
	// A cleaner's delete horizon takes baseTimestamp's place, under bit 6,
	// and leaves the other attributes alone.
	if _, ok := h.DeleteHorizon(); ok {
		t.Fatal("a producer's batch has a delete horizon")
	}
	h.SetDeleteHorizon(1900000000000)
	h.SetCRC()
	hz, ok := h.DeleteHorizon()
	if err := Validate(b, 0); err != nil || !ok || hz != 1900000000000 || h.BaseTimestamp() != hz ||
		h.Attributes()&attrDeleteHorizon == 0 || !h.LogAppendTime() || !h.Transactional() || h.Control() || h.Codec() != CodecLZ4 {
		t.Fatalf("after SetDeleteHorizon: %v, horizon %d %v, attributes %#x", err, hz, ok, h.Attributes())
	}
}

func TestParseCodec(t *testing.T) {
	for _, c := range allCodecs {
		got, err := ParseCodec(c.String())
		if err != nil || got != c || !c.Valid() {
			t.Errorf("%s: %v %v", c, got, err)
		}
	}
	if _, err := ParseCodec("brotli"); err == nil {
		t.Error("brotli parsed")
	}
	if Codec(5).Valid() || Codec(5).String() != "codec(5)" {
		t.Error("codec 5")
	}
}

func threeBatches(t *testing.T) ([]byte, []int) {
	var all []byte
	var starts []int
	for i, c := range []Codec{CodecNone, CodecZstd, CodecSnappy} {
		starts = append(starts, len(all))
		all = append(all, buildBatch(t, codecOpts(c), jsonRecords(uint64(i), 3))...)
	}
	return all, starts
}

func TestIterCleanEnd(t *testing.T) {
	all, starts := threeBatches(t)
	it := NewIter(all)
	n := 0
	for h, ok := it.Next(); ok; h, ok = it.Next() {
		if err := Validate(h, 0); err != nil {
			t.Fatalf("batch %d: %v", n, err)
		}
		if n+1 < len(starts) && it.Pos() != starts[n+1] {
			t.Fatalf("batch %d: Pos %d, want %d", n, it.Pos(), starts[n+1])
		}
		if cap(h) != len(h) {
			t.Error("batch view has capacity past its end")
		}
		n++
	}
	if it.Err() != nil || n != 3 || it.Pos() != len(all) {
		t.Fatalf("n=%d err=%v pos=%d", n, it.Err(), it.Pos())
	}
	// Nothing at all is a clean end too.
	it = NewIter(nil)
	if _, ok := it.Next(); ok || it.Err() != nil {
		t.Fatal("empty input")
	}
}

func TestIterTrailingPartialHeader(t *testing.T) {
	all, _ := threeBatches(t)
	end := len(all)
	all = append(all, make([]byte, 30)...)
	it := NewIter(all)
	n := 0
	for _, ok := it.Next(); ok; _, ok = it.Next() {
		n++
	}
	if n != 3 || !errors.Is(it.Err(), ErrShort) || it.Pos() != end {
		t.Fatalf("n=%d err=%v pos=%d, want 3 batches, ErrShort at %d", n, it.Err(), it.Pos(), end)
	}
}

func TestIterTrailingPartialBatch(t *testing.T) {
	all, starts := threeBatches(t)
	torn := all[:len(all)-5] // the third batch lost its last bytes
	it := NewIter(torn)
	n := 0
	for _, ok := it.Next(); ok; _, ok = it.Next() {
		n++
	}
	if n != 2 || !errors.Is(it.Err(), ErrLength) || it.Pos() != starts[2] {
		t.Fatalf("n=%d err=%v pos=%d, want 2 batches, ErrLength at %d", n, it.Err(), it.Pos(), starts[2])
	}
	if _, ok := it.Next(); ok {
		t.Fatal("Next after an error")
	}
	// A batchLength too small to hold a header stops the walk as well.
	bad := bytes.Clone(all)
	binary.BigEndian.PutUint32(bad[starts[1]+offBatchLength:], 10)
	it = NewIter(bad)
	for _, ok := it.Next(); ok; _, ok = it.Next() {
	}
	if !errors.Is(it.Err(), ErrLength) || it.Pos() != starts[1] {
		t.Fatalf("err=%v pos=%d", it.Err(), it.Pos())
	}
}

func TestValidateAndIterNoAllocs(t *testing.T) {
	all, _ := threeBatches(t)
	first := Header(all[:Header(all).Size()])
	if a := testing.AllocsPerRun(100, func() {
		if Validate(first, 1<<20) != nil {
			t.Fatal("invalid")
		}
	}); a != 0 {
		t.Errorf("Validate allocates %.1f times", a)
	}
	if a := testing.AllocsPerRun(100, func() {
		it := NewIter(all)
		for _, ok := it.Next(); ok; _, ok = it.Next() {
		}
		if it.Err() != nil {
			t.Fatal(it.Err())
		}
	}); a != 0 {
		t.Errorf("Iter allocates %.1f times", a)
	}
}
