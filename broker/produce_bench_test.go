package broker

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"gregor/batch"
)

// BenchmarkCheckRecords measures the record walk every produced batch gets
// (checkRecords: decompression, then each record parsed) for each codec,
// next to batch.Validate (header checks and the CRC) on the same batch in
// the same run. Bytes are the batch as produced, so MB/s compare with the
// produce rate. The batch is 1 MiB of ~1 KiB JSON-like records before
// compression.
func BenchmarkCheckRecords(b *testing.B) {
	for _, codec := range []batch.Codec{batch.CodecNone, batch.CodecGzip, batch.CodecSnappy, batch.CodecLZ4, batch.CodecZstd} {
		raw := jsonBatch(b, codec, 1000)
		b.Run(fmt.Sprintf("codec=%s/check=validate", codec), func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				if err := batch.Validate(raw, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("codec=%s/check=records", codec), func(b *testing.B) {
			s := topicSettings{maxMessageBytes: 1 << 20, keepCompression: true, tsBeforeMaxMs: math.MaxInt64, tsAfterMaxMs: math.MaxInt64}
			now := time.Now().UnixMilli()
			scratch := recordsScratch.Get().(*[]byte)
			defer putRecordsScratch(scratch)
			budget := newDecompressionBudget(DefaultDecompressionMaxBytes)
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				_, _, held, _, err := checkRecords(batch.Header(raw), "t", 0, s, now, scratch, budget)
				if err != nil {
					b.Fatal(err)
				}
				budget.release(held)
			}
		})
	}
}

// jsonBatch builds a batch of n JSON-like events of about 1 KiB, compressed
// with codec: repetitive field names, varying values, as real events are.
func jsonBatch(b *testing.B, codec batch.Codec, n int) []byte {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	o := batch.DefaultBuilderOptions()
	o.Codec = codec
	bld := batch.NewBuilder(o)
	now := time.Now().UnixMilli()
	for i := range n {
		v := fmt.Appendf(nil, `{"id":%d,"user":"user-%d","session":"%016x","event":"page_view","path":"/products/%d","ref":"https://example.com/search?q=%d","items":[`,
			i, rng.IntN(10000), rng.Uint64(), rng.IntN(5000), rng.IntN(1e6))
		for j := 0; len(v) < 1000; j++ {
			v = fmt.Appendf(v, `{"sku":"SKU-%06d","qty":%d,"price":%d.%02d},`, rng.IntN(1e6), rng.IntN(9)+1, rng.IntN(500), rng.IntN(100))
		}
		v = append(v[:len(v)-1], "]}"...)
		bld.Add(now+int64(i), fmt.Appendf(nil, "user-%d", i%100), v, nil)
	}
	out, err := bld.AppendBatch(nil)
	if err != nil {
		b.Fatal(err)
	}
	return out
}
