package batch

import (
	"bytes"
	stdgzip "compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestBuilderRoundTripEveryCodec(t *testing.T) {
	recs := append(sampleRecords(), jsonRecords(9, 30)...)
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			checkBatchRecords(t, buildBatch(t, codecOpts(c), recs), recs)
		})
	}
}

func TestBuilderHeaderFields(t *testing.T) {
	b := NewBuilder(DefaultBuilderOptions())
	if o := b.Options(); o.ProducerID != -1 || o.ProducerEpoch != -1 || o.BaseSequence != -1 || o.PartitionLeaderEpoch != -1 || o.Codec != CodecNone || o.Transactional {
		t.Fatalf("defaults: %+v", o)
	}
	b.Add(1000, nil, []byte("a"), nil)
	b.Add(3000, nil, []byte("b"), nil)
	b.Add(2000, nil, []byte("c"), nil)
	out, err := b.AppendBatch([]byte("keep"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(out, []byte("keep")) {
		t.Fatal("AppendBatch overwrote dst")
	}
	h := Header(out[4:])
	if err := Validate(h, 0); err != nil {
		t.Fatal(err)
	}
	if h.BaseTimestamp() != 1000 || h.MaxTimestamp() != 3000 || h.RecordCount() != 3 || h.LastOffsetDelta() != 2 ||
		h.ProducerID() != -1 || h.ProducerEpoch() != -1 || h.BaseSequence() != -1 || h.PartitionLeaderEpoch() != -1 ||
		h.Attributes() != 0 || h.BaseOffset() != 0 {
		t.Fatalf("header % x", []byte(h[:HeaderSize]))
	}
	if b.Records() != 3 || b.UncompressedSize() != len(h) {
		t.Errorf("Records %d, UncompressedSize %d, batch %d", b.Records(), b.UncompressedSize(), len(h))
	}
	// The batch's deltas: 0, +2000, +1000.
	rr, _, _ := DecodeRecords(h, nil, 1<<20)
	var r Record
	for i, want := range []int64{0, 2000, 1000} {
		if !rr.Next(&r) || r.TimestampDelta != want || r.OffsetDelta != int32(i) {
			t.Fatalf("record %d: %+v", i, r)
		}
	}

	b.Reset(BuilderOptions{Codec: CodecZstd, ProducerID: 5, ProducerEpoch: 1, BaseSequence: 10, Transactional: true, PartitionLeaderEpoch: 2})
	if b.Records() != 0 || b.UncompressedSize() != HeaderSize {
		t.Fatal("Reset did not empty the builder")
	}
	if _, err := b.AppendBatch(nil); !errors.Is(err, ErrRecordCount) {
		t.Fatalf("empty batch: %v", err)
	}
	b.Add(-5, []byte("k"), nil, nil) // timestamps before the epoch are legal
	out, err = b.AppendBatch(nil)
	if err != nil {
		t.Fatal(err)
	}
	h = Header(out)
	if h.Codec() != CodecZstd || !h.Transactional() || h.ProducerID() != 5 || h.BaseSequence() != 10 || h.BaseTimestamp() != -5 || h.MaxTimestamp() != -5 {
		t.Fatalf("header % x", []byte(h[:HeaderSize]))
	}
	b.Reset(BuilderOptions{Codec: Codec(6)})
	b.Add(0, nil, nil, nil)
	if _, err := b.AppendBatch(nil); !errors.Is(err, ErrCodec) {
		t.Fatalf("codec 6: %v", err)
	}
}

func TestBuilderSizeWith(t *testing.T) {
	b := NewBuilder(DefaultBuilderOptions())
	for i, r := range append(sampleRecords(), jsonRecords(3, 5)...) {
		want := b.SizeWith(r.ts, r.key, r.value, r.headers)
		b.Add(r.ts, r.key, r.value, r.headers)
		if got := b.UncompressedSize(); got != want {
			t.Fatalf("record %d: SizeWith %d, size after Add %d", i, want, got)
		}
	}
}

func TestBuilderNoAllocs(t *testing.T) {
	b := NewBuilder(DefaultBuilderOptions())
	vals := jsonValues(1, 16)
	hdrs := []RecordHeader{{Key: []byte("content-type"), Value: []byte("application/json")}}
	buf := make([]byte, 0, 64<<10)
	build := func() {
		b.Reset(DefaultBuilderOptions())
		for i, v := range vals {
			b.Add(1700000000000+int64(i), []byte("key"), v, hdrs)
		}
		var err error
		if buf, err = b.AppendBatch(buf[:0]); err != nil {
			t.Fatal(err)
		}
	}
	build() // grow the buffers once
	if a := testing.AllocsPerRun(50, build); a != 0 {
		t.Fatalf("Builder allocates %.1f times per batch in steady state", a)
	}
}

// TakeBatch gives the bytes AppendBatch would, for every codec; without
// compression they are the builder's own buffer, handed over, and the
// builder goes on in the spare one. A zero Builder works too, and an empty
// one fails as AppendBatch does.
func TestBuilderTakeBatch(t *testing.T) {
	small := append(sampleRecords(), jsonRecords(4, 20)...)
	// Past crcFrom, the CRC runs as records are added: sizes that end
	// chunks anywhere.
	large := append(jsonRecords(5, 150), sampleRecords()...)
	large = append(large, jsonRecords(6, 77)...)
	for _, tc := range []struct {
		name string
		recs []testRecord
	}{{"small", small}, {"large", large}} {
		recs := tc.recs
		for _, c := range allCodecs {
			t.Run(tc.name+"/"+c.String(), func(t *testing.T) {
				opts := codecOpts(c)
				opts.ProducerID, opts.ProducerEpoch, opts.BaseSequence = 7, 1, 40
				b := NewBuilder(opts)
				for round := range 3 {
					b.Reset(opts)
					for _, r := range recs {
						b.Add(r.ts, r.key, r.value, r.headers)
					}
					want, err := b.AppendBatch(nil)
					if err != nil {
						t.Fatal(err)
					}
					own := b.buf
					spare := make([]byte, 5, 1<<20)
					got, err := b.TakeBatch(spare)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("round %d: TakeBatch differs from AppendBatch", round)
					}
					checkBatchRecords(t, got, recs)
					if c == CodecNone {
						if &got[0] != &own[0] {
							t.Error("uncompressed batch was copied")
						}
						if cap(b.buf) != cap(spare) || len(b.buf) != 0 {
							t.Errorf("builder did not take the spare buffer: len %d cap %d", len(b.buf), cap(b.buf))
						}
					} else if &got[0] != &spare[:1][0] {
						t.Error("compressed batch not written into spare")
					}
				}
			})
		}
	}
	var zero Builder
	zero.Add(1700000000000, nil, []byte("v"), nil)
	got, err := zero.TakeBatch(nil)
	if err != nil {
		t.Fatal(err)
	}
	checkBatchRecords(t, got, []testRecord{{ts: 1700000000000, value: []byte("v")}})
	zero.Reset(DefaultBuilderOptions())
	if _, err := zero.TakeBatch(nil); !errors.Is(err, ErrRecordCount) {
		t.Errorf("empty builder: %v", err)
	}
}

// kmsgRecords splits a records section into kmsg.Records the way a franz-go
// consumer does: read each record's varint length, then decode that span.
func kmsgRecords(t *testing.T, section []byte, count int) []kmsg.Record {
	t.Helper()
	var out []kmsg.Record
	for len(section) > 0 {
		l, n := binary.Varint(section)
		if n <= 0 || l < 0 || int(l) > len(section)-n {
			t.Fatalf("bad record length at record %d", len(out))
		}
		var r kmsg.Record
		if err := r.ReadFrom(section[:n+int(l)]); err != nil {
			t.Fatalf("kmsg.Record.ReadFrom: %v", err)
		}
		if int(r.Length) != int(l) {
			t.Fatalf("kmsg read length %d, want %d", r.Length, l)
		}
		out = append(out, r)
		section = section[n+int(l):]
	}
	if len(out) != count {
		t.Fatalf("kmsg found %d records, header says %d", len(out), count)
	}
	return out
}

// decompressIndependently decompresses with the codec libraries directly (and
// the standard library's gzip), not through this package, so a bug shared by
// our Compress and Decompress cannot hide.
func decompressIndependently(t *testing.T, c Codec, in []byte) []byte {
	t.Helper()
	var out []byte
	var err error
	switch c {
	case CodecNone:
		return in
	case CodecGzip:
		var r *stdgzip.Reader
		if r, err = stdgzip.NewReader(bytes.NewReader(in)); err == nil {
			out, err = io.ReadAll(r)
		}
	case CodecSnappy:
		out, err = s2.Decode(nil, in)
	case CodecLZ4:
		out, err = io.ReadAll(lz4.NewReader(bytes.NewReader(in)))
	case CodecZstd:
		var d *zstd.Decoder
		if d, err = zstd.NewReader(nil); err == nil {
			out, err = d.DecodeAll(in, nil)
			d.Close()
		}
	}
	if err != nil {
		t.Fatalf("%s: %v", c, err)
	}
	return out
}

// TestBuilderBatchesDecodeWithKmsg: franz-go's generated Kafka codec reads what
// Builder writes, field for field and record for record.
func TestBuilderBatchesDecodeWithKmsg(t *testing.T) {
	recs := append(sampleRecords(), jsonRecords(11, 20)...)
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			opts := BuilderOptions{Codec: c, ProducerID: 77, ProducerEpoch: 3, BaseSequence: 1000, Transactional: c == CodecLZ4, PartitionLeaderEpoch: 9}
			raw := buildBatch(t, opts, recs)
			var kb kmsg.RecordBatch
			if err := kb.ReadFrom(raw); err != nil {
				t.Fatalf("kmsg.RecordBatch.ReadFrom: %v", err)
			}
			wantAttrs := int16(c)
			if opts.Transactional {
				wantAttrs |= 0x10
			}
			if kb.FirstOffset != 0 || int(kb.Length) != len(raw)-12 || kb.PartitionLeaderEpoch != 9 || kb.Magic != 2 ||
				uint32(kb.CRC) != CRC32C(raw[21:]) || kb.Attributes != wantAttrs || kb.LastOffsetDelta != int32(len(recs)-1) ||
				kb.FirstTimestamp != recs[0].ts || kb.MaxTimestamp != 1700000000100 || kb.ProducerID != 77 ||
				kb.ProducerEpoch != 3 || kb.FirstSequence != 1000 || kb.NumRecords != int32(len(recs)) {
				t.Fatalf("kmsg sees %+v", kb)
			}
			section := decompressIndependently(t, c, kb.Records)
			for i, kr := range kmsgRecords(t, section, len(recs)) {
				want := recs[i]
				if kb.FirstTimestamp+kr.TimestampDelta64 != want.ts || kr.OffsetDelta != int32(i) ||
					!sameBytes(kr.Key, want.key) || !sameBytes(kr.Value, want.value) || len(kr.Headers) != len(want.headers) {
					t.Fatalf("record %d: kmsg sees %+v", i, kr)
				}
				for j, h := range kr.Headers {
					if h.Key != string(want.headers[j].Key) || !sameBytes(h.Value, want.headers[j].Value) {
						t.Fatalf("record %d header %d: %q=%q", i, j, h.Key, h.Value)
					}
				}
			}
		})
	}
}

// compressIndependently is the inverse of decompressIndependently: how other
// clients' libraries compress.
func compressIndependently(t *testing.T, c Codec, in []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch c {
	case CodecNone:
		return in
	case CodecGzip:
		w := stdgzip.NewWriter(&buf)
		w.Write(in)
		w.Close()
	case CodecSnappy:
		return xerialFrame(in, 32<<10) // as Java clients send it
	case CodecLZ4:
		w := lz4.NewWriter(&buf)
		w.Write(in)
		w.Close()
	case CodecZstd:
		w, _ := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
		w.Write(in)
		w.Close()
	}
	return buf.Bytes()
}

// TestKmsgBatchesValidateAndDecode: a batch franz-go's codec encodes (with the
// CRC computed as Kafka specifies) passes Validate and decodes with
// RecordReader.
func TestKmsgBatchesValidateAndDecode(t *testing.T) {
	recs := append(sampleRecords(), jsonRecords(12, 10)...)
	base := recs[0].ts
	var section []byte
	for i, r := range recs {
		kr := kmsg.Record{
			TimestampDelta64: r.ts - base,
			OffsetDelta:      int32(i),
			Key:              r.key,
			Value:            r.value,
		}
		for _, h := range r.headers {
			kr.Headers = append(kr.Headers, kmsg.Header{Key: string(h.Key), Value: h.Value})
		}
		body := kr.AppendTo(nil) // Length 0 here: measure the body
		kr.Length = int32(len(body) - 1)
		section = kr.AppendTo(section)
	}
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			kb := kmsg.RecordBatch{
				FirstOffset:          1234,
				PartitionLeaderEpoch: 5,
				Magic:                2,
				Attributes:           int16(c),
				LastOffsetDelta:      int32(len(recs) - 1),
				FirstTimestamp:       base,
				MaxTimestamp:         1700000000100,
				ProducerID:           -1,
				ProducerEpoch:        -1,
				FirstSequence:        -1,
				NumRecords:           int32(len(recs)),
				Records:              compressIndependently(t, c, section),
			}
			kb.Length = int32(49 + len(kb.Records))
			raw := kb.AppendTo(nil)
			kb.CRC = int32(CRC32C(raw[21:]))
			raw = kb.AppendTo(raw[:0])
			if err := Validate(raw, 0); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			h := Header(raw)
			if h.BaseOffset() != 1234 || h.LastOffset() != 1234+int64(len(recs)-1) || h.Codec() != c {
				t.Fatalf("header % x", raw[:HeaderSize])
			}
			checkBatchRecords(t, raw, recs)
		})
	}
}
