package batch

import (
	"context"
	"fmt"
	"testing"
	"time"
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

// BenchmarkCompressLevel compresses a 1 MiB batch of JSON-like records at
// Kafka's levels (KIP-390) around each codec's default: what a topic's or
// producer's compression.<codec>.level trades between speed and ratio.
func BenchmarkCompressLevel(b *testing.B) {
	in := recordsSection(b, jsonRecords(1, 1024))
	for _, tc := range []struct {
		c      Codec
		levels []int
	}{
		{CodecGzip, []int{1, GzipDefaultLevel, 9}},
		{CodecLZ4, []int{LZ4DefaultLevel, 1, 17}},
		{CodecZstd, []int{1, ZstdDefaultLevel, 6, 10}},
	} {
		for _, level := range tc.levels {
			b.Run(fmt.Sprintf("codec=%s/level=%d", tc.c, level), func(b *testing.B) {
				out, err := CompressLevel(tc.c, level, nil, in)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(in)))
				b.ReportAllocs()
				for b.Loop() {
					out, _ = CompressLevel(tc.c, level, out[:0], in)
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

// BenchmarkAppendDrainRelease is a producer's whole path through the accumulator
// for 1 KiB JSON records spread over 16 partitions: Append (the copy of the
// value into the open batch), Drain of the sealed batches as a sender takes
// them (encoding, and compression for codecs other than none) and Release
// once acknowledged. One op is one record; the bytes are its value's.
func BenchmarkAppendDrainRelease(b *testing.B) {
	const partitions = 16
	values := jsonValues(1, 64)
	type tp struct {
		topic string
		part  int32
	}
	for _, bs := range []struct {
		name string
		size int
	}{{"16KiB", 16 << 10}, {"1MiB", 1 << 20}} {
		for _, c := range []Codec{CodecNone, CodecLZ4} {
			b.Run("batch="+bs.name+"/codec="+c.String(), func(b *testing.B) {
				cfg := DefaultAccumulatorConfig()
				cfg.BatchSize = bs.size
				cfg.LingerMs = 60000 // batches go when sealed, as at saturation
				cfg.BufferMemory = 64 << 20
				cfg.CompressionType = c
				a, err := NewAccumulator[tp, struct{}](cfg, nil)
				if err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				var (
					pend    []Pending[tp]
					ready   []tp
					drained []*ProducerBatch[tp, struct{}]
				)
				drain := func() {
					pend, _, _ = a.Ready(time.Now(), pend[:0])
					ready = ready[:0]
					for _, p := range pend {
						if p.Ready {
							ready = append(ready, p.Partition)
						}
					}
					if len(ready) == 0 {
						return
					}
					drained = a.Drain(0, ready, 100<<20, nil, drained[:0])
					for i, d := range drained {
						if d.Err != nil {
							b.Fatal(d.Err)
						}
						a.Release(d)
						drained[i] = nil
					}
				}
				p := tp{"bench", 0}
				b.SetBytes(int64(len(values[0])))
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					p.part = int32(i % partitions)
					if err := a.Append(ctx, p, 1700000000000, nil, values[i%len(values)], nil, struct{}{}); err != nil {
						b.Fatal(err)
					}
					if i++; i%256 == 0 {
						drain()
					}
				}
			})
		}
	}
}

// BenchmarkCRC32CCombine is the Builder's last step for an uncompressed
// batch: the header's CRC put in front of the records' (crc32cCombine),
// for records sections of 16 KiB, 1 MiB and 1 GiB.
func BenchmarkCRC32CCombine(b *testing.B) {
	for _, n := range []int{16 << 10, 1 << 20, 1 << 30} {
		b.Run(fmt.Sprintf("len=%d", n), func(b *testing.B) {
			crc := uint32(0x12345678)
			for b.Loop() {
				crc = crc32cCombine(crc, 0x9abcdef0, n)
			}
		})
	}
}
