package batch

import "testing"

func TestRecompress(t *testing.T) {
	recs := jsonRecords(1, 40)
	for _, from := range []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
		opts := codecOpts(from)
		opts.ProducerID, opts.ProducerEpoch, opts.BaseSequence = 9, 2, 100
		src := buildBatch(t, opts, recs)
		for _, to := range []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
			prefix := []byte("keep")
			out, err := Recompress(prefix, Header(src), to, DefaultLevel(to), 1<<20)
			if err != nil {
				t.Fatalf("%v -> %v: %v", from, to, err)
			}
			if string(out[:4]) != "keep" {
				t.Fatalf("%v -> %v: dst prefix overwritten", from, to)
			}
			b := out[4:]
			if err := Validate(b, 0); err != nil {
				t.Fatalf("%v -> %v: result invalid: %v", from, to, err)
			}
			h, sh := Header(b), Header(src)
			if h.Codec() != to || h.ProducerID() != 9 || h.BaseSequence() != 100 || h.RecordCount() != sh.RecordCount() ||
				h.MaxTimestamp() != sh.MaxTimestamp() || h.LastOffsetDelta() != sh.LastOffsetDelta() {
				t.Fatalf("%v -> %v: header changed beyond the codec", from, to)
			}
			checkBatchRecords(t, b, recs)
		}
	}
}

func TestRecompressBomb(t *testing.T) {
	src := buildBatch(t, codecOpts(CodecZstd), jsonRecords(2, 200))
	if _, err := Recompress(nil, Header(src), CodecNone, 0, 100); err == nil {
		t.Fatal("records over the decompression bound were recompressed")
	}
}
