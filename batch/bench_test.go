package batch

import (
	"testing"
)

// Benchmark payloads are deterministic JSON events of about 1 KiB (see
// jsonEvent): 16 of them make a ~16 KiB batch, 1000 a ~1 MiB one.
var benchSizes = []struct {
	name    string
	records int
}{
	{"16KiB", 16},
	{"1MiB", 1000},
}

// BenchmarkValidate runs Validate next to a bare CRC-32C of the same bytes, so
// one run shows how close validation is to the checksum's own cost.
func BenchmarkValidate(b *testing.B) {
	for _, sz := range benchSizes {
		batch := buildBatch(b, codecOpts(CodecNone), jsonRecords(1, sz.records))
		b.Run("size="+sz.name+"/impl=validate", func(b *testing.B) {
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			for b.Loop() {
				if err := Validate(batch, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("size="+sz.name+"/impl=crc32c", func(b *testing.B) {
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			var sink uint32
			for b.Loop() {
				sink += CRC32C(batch)
			}
			_ = sink
		})
	}
}

func BenchmarkIterAndRecords(b *testing.B) {
	for _, sz := range benchSizes {
		batch := buildBatch(b, codecOpts(CodecNone), jsonRecords(1, sz.records))
		b.Run("size="+sz.name, func(b *testing.B) {
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			var r Record
			for b.Loop() {
				it := NewIter(batch)
				for h, ok := it.Next(); ok; h, ok = it.Next() {
					rr := NewRecordReader(h.Records(), h.RecordCount())
					for rr.Next(&r) {
					}
					if rr.Err() != nil {
						b.Fatal(rr.Err())
					}
				}
			}
		})
	}
}

func BenchmarkCompress(b *testing.B) {
	for _, sz := range benchSizes {
		in := recordsSection(b, jsonRecords(1, sz.records))
		for _, c := range allCodecs[1:] {
			b.Run("codec="+c.String()+"/size="+sz.name, func(b *testing.B) {
				out, err := Compress(c, nil, in)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(in)))
				b.ReportAllocs()
				for b.Loop() {
					out, _ = Compress(c, out[:0], in)
				}
				b.ReportMetric(float64(len(in))/float64(len(out)), "ratio")
			})
		}
	}
}

func BenchmarkDecompress(b *testing.B) {
	for _, sz := range benchSizes {
		in := recordsSection(b, jsonRecords(1, sz.records))
		for _, c := range allCodecs[1:] {
			b.Run("codec="+c.String()+"/size="+sz.name, func(b *testing.B) {
				comp, err := Compress(c, nil, in)
				if err != nil {
					b.Fatal(err)
				}
				out, err := Decompress(c, nil, comp, len(in))
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(in)))
				b.ReportAllocs()
				for b.Loop() {
					if out, err = Decompress(c, out[:0], comp, len(in)); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(in))/float64(len(comp)), "ratio")
			})
		}
	}
}

// BenchmarkBuilder builds a ~16 KiB batch of 16 JSON records per iteration,
// compressing it once for the codecs other than none.
func BenchmarkBuilder(b *testing.B) {
	recs := jsonRecords(1, 16)
	for _, c := range allCodecs {
		b.Run("codec="+c.String()+"/size=16KiB", func(b *testing.B) {
			bl := NewBuilder(codecOpts(c))
			var out []byte
			build := func() {
				bl.Reset(codecOpts(c))
				for _, r := range recs {
					bl.Add(r.ts, r.key, r.value, r.headers)
				}
				var err error
				if out, err = bl.AppendBatch(out[:0]); err != nil {
					b.Fatal(err)
				}
			}
			build()
			size := bl.UncompressedSize()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				build()
			}
			b.ReportMetric(float64(size)/float64(len(out)), "ratio")
		})
	}
}
