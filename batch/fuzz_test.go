package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fuzz targets for every decoder of untrusted bytes. Their seed corpora (real
// batches from the Builder with every codec, batches encoded by franz-go's
// kmsg, and their compressed payloads) run under plain `go test`.

const fuzzMaxSize = 1 << 20

// seedBatches returns real batches: the Builder's with every codec and kmsg's.
func seedBatches(tb testing.TB) [][]byte {
	var out [][]byte
	recs := append(sampleRecords()[:4], jsonRecords(21, 3)...)
	for _, c := range allCodecs {
		o := codecOpts(c)
		o.ProducerID, o.ProducerEpoch, o.BaseSequence = 1, 2, 3
		out = append(out, buildBatch(tb, o, recs))
	}
	// A kmsg-encoded batch.
	var section []byte
	for i := range 3 {
		kr := kmsg.Record{OffsetDelta: int32(i), TimestampDelta64: int64(i * 10), Key: []byte("k"), Value: []byte("value"),
			Headers: []kmsg.Header{{Key: "h", Value: []byte("v")}}}
		kr.Length = int32(len(kr.AppendTo(nil)) - 1)
		section = kr.AppendTo(section)
	}
	kb := kmsg.RecordBatch{Magic: 2, LastOffsetDelta: 2, NumRecords: 3, FirstTimestamp: 1700000000000, MaxTimestamp: 1700000000020,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, Records: section}
	kb.Length = int32(49 + len(section))
	raw := kb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[offCRC:], CRC32C(raw[CRCStart:]))
	return append(out, raw)
}

// payloads returns the records sections of the seed batches, uncompressed.
func seedSections(tb testing.TB) [][]byte {
	var out [][]byte
	for _, b := range seedBatches(tb) {
		if Header(b).Codec() == CodecNone {
			out = append(out, Header(b).Records())
		}
	}
	return out
}

func FuzzValidate(f *testing.F) {
	batches := seedBatches(f)
	for _, b := range batches {
		f.Add(b)
	}
	f.Add(bytes.Join(batches, nil))
	f.Add(batches[0][:HeaderSize])
	torn := bytes.Join(batches[:2], nil)
	f.Add(torn[:len(torn)-7])
	var scratch, fixed []byte
	f.Fuzz(func(t *testing.T, data []byte) {
		// Random bytes almost never carry a right CRC, so also repair the
		// length, magic and CRC of a copy: that drives mutated headers,
		// codecs and records through DecodeRecords and RecordReader.
		if len(data) >= HeaderSize {
			fixed = append(fixed[:0], data...)
			binary.BigEndian.PutUint32(fixed[offBatchLength:], uint32(len(fixed)-LengthOverhead))
			fixed[offMagic] = Magic
			Header(fixed).SetCRC()
			if Validate(fixed, 0) == nil {
				var err error
				var rr RecordReader
				rr, scratch, err = DecodeRecords(Header(fixed), scratch, fuzzMaxSize)
				if err == nil {
					var r Record
					for rr.Next(&r) {
					}
					if rr.Err() != nil && !errors.Is(rr.Err(), ErrRecord) {
						t.Fatalf("RecordReader: %v", rr.Err())
					}
				} else if !errors.Is(err, ErrDecompress) && !errors.Is(err, ErrDecompressSize) {
					t.Fatalf("DecodeRecords: unexpected error %v", err)
				}
			}
		}
		for _, limit := range []int{0, len(data), len(data) / 2} {
			if err := Validate(data, limit); err != nil {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("Validate error %v is not a batch.Error", err)
				}
			}
		}
		it := NewIter(data)
		prev := 0
		for h, ok := it.Next(); ok; h, ok = it.Next() {
			if it.Pos() <= prev || len(h) < HeaderSize || h.Size() != len(h) {
				t.Fatalf("Iter returned a %d-byte batch ending at %d after %d", len(h), it.Pos(), prev)
			}
			prev = it.Pos()
			if Validate(h, 0) != nil {
				continue
			}
			var rr RecordReader
			var err error
			rr, scratch, err = DecodeRecords(h, scratch, fuzzMaxSize)
			if err != nil {
				if !errors.Is(err, ErrDecompress) && !errors.Is(err, ErrDecompressSize) {
					t.Fatalf("DecodeRecords: unexpected error %v", err)
				}
				continue
			}
			var r Record
			n := int32(0)
			for rr.Next(&r) {
				n++
			}
			if rr.Err() == nil && n != h.RecordCount() {
				t.Fatalf("read %d records without error, header says %d", n, h.RecordCount())
			}
		}
		if it.Err() == nil && it.Pos() != len(data) {
			t.Fatalf("Iter stopped at %d of %d without an error", it.Pos(), len(data))
		}
		if it.Err() != nil && !errors.Is(it.Err(), ErrShort) && !errors.Is(it.Err(), ErrLength) {
			t.Fatalf("Iter error %v", it.Err())
		}
	})
}

func FuzzRecords(f *testing.F) {
	for _, s := range seedSections(f) {
		f.Add(s, int32(7))
		f.Add(s, int32(3))
		f.Add(s, int32(0))
	}
	one := AppendRecord(nil, &Record{TimestampDelta: -1 << 40, OffsetDelta: 1 << 30, Key: []byte("k"),
		Headers: []RecordHeader{{Key: []byte("a"), Value: nil}}})
	f.Add(one, int32(1))
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, int32(1))
	f.Fuzz(func(t *testing.T, data []byte, count int32) {
		rr := NewRecordReader(data, count)
		var r Record
		var decoded []Record
		for rr.Next(&r) {
			c := r
			c.Headers = append([]RecordHeader(nil), r.Headers...)
			decoded = append(decoded, c)
			if int32(len(decoded)) > count {
				t.Fatalf("more than %d records", count)
			}
		}
		err := rr.Err()
		if err != nil {
			if !errors.Is(err, ErrRecord) {
				t.Fatalf("error %v does not wrap ErrRecord", err)
			}
			return
		}
		if int32(len(decoded)) != count {
			t.Fatalf("clean end after %d of %d records", len(decoded), count)
		}
		// Whatever decodes cleanly re-encodes to records that decode to the
		// same thing (the bytes may differ: non-minimal varints are legal).
		var again []byte
		for i := range decoded {
			again = AppendRecord(again, &decoded[i])
		}
		if len(again) > len(data) {
			t.Fatalf("re-encoding grew from %d to %d bytes", len(data), len(again))
		}
		rr = NewRecordReader(again, count)
		for i := 0; rr.Next(&r); i++ {
			if !sameRecord(&r, &decoded[i]) {
				t.Fatalf("record %d changed in a round trip: %+v vs %+v", i, r, decoded[i])
			}
		}
		if rr.Err() != nil {
			t.Fatalf("re-encoded records do not decode: %v", rr.Err())
		}
	})
}

// fuzzCodec checks Decompress on arbitrary input (no panic, bounded output,
// only this package's errors) and, treating the input as plain bytes, that it
// survives a round trip.
func fuzzCodec(f *testing.F, c Codec, extraSeeds ...[]byte) {
	seeds := append(seedSections(f), []byte{}, []byte("x"), bytes.Repeat([]byte("abc"), 1000))
	for _, s := range seeds {
		comp, err := Compress(c, nil, s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(comp)
		f.Add(s)
	}
	for _, b := range seedBatches(f) {
		if Header(b).Codec() == c {
			f.Add(Header(b).Records())
		}
	}
	for _, s := range extraSeeds {
		f.Add(s)
	}
	var out []byte
	f.Fuzz(func(t *testing.T, data []byte) {
		hint, hinted := SizeHint(c, data)
		for _, limit := range []int{fuzzMaxSize, 100} {
			var err error
			out, err = Decompress(c, out[:0], data, limit)
			if err != nil {
				if !errors.Is(err, ErrDecompress) && !errors.Is(err, ErrDecompressSize) {
					t.Fatalf("error %v is neither ErrDecompress nor ErrDecompressSize", err)
				}
			} else if len(out) > limit {
				t.Fatalf("%d bytes out, limit %d", len(out), limit)
			} else if hinted && hint < len(out) && c != CodecGzip {
				// gzip's hint is its last member's length only.
				t.Fatalf("%d bytes out, but the framing's hint was %d", len(out), hint)
			}
		}
		comp, err := Compress(c, nil, data)
		if err != nil {
			t.Fatal(err)
		}
		out, err = Decompress(c, out[:0], comp, len(data))
		if err != nil || !bytes.Equal(out, data) {
			t.Fatalf("round trip of %d bytes: %v", len(data), err)
		}
	})
}

func FuzzDecompressGzip(f *testing.F) { fuzzCodec(f, CodecGzip) }

func FuzzDecompressSnappy(f *testing.F) {
	in := bytes.Repeat([]byte("snappy xerial "), 5000)
	fuzzCodec(f, CodecSnappy, xerialFrame(in, 32<<10), xerialFrame(nil, 1), xerialFrame([]byte("tiny"), 2))
}

func FuzzDecompressLZ4(f *testing.F) { fuzzCodec(f, CodecLZ4) }

func FuzzDecompressZstd(f *testing.F) {
	in := bytes.Repeat([]byte("zstd stream "), 20000)
	fuzzCodec(f, CodecZstd, zstdStream(in), zstdEncode(in))
}
