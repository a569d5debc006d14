package replica

import (
	"slices"
	"testing"
	"time"

	"gregor/batch"
	"gregor/segment"
)

// BenchmarkAppendRolling measures Partition.Append of 64 KiB batches from
// an idempotent producer into 4 MiB segments, so that every 64th append
// rolls a segment and snapshots the producer state. Besides the mean it
// reports the median latency of the appends that rolled and of those that
// did not: the roll's cost, which the mean spreads thin.
func BenchmarkAppendRolling(b *testing.B) {
	const batchBytes, segmentBytes = 64 << 10, 4 << 20
	cfg := segment.DefaultConfig()
	cfg.SegmentBytes = segmentBytes
	log, err := segment.Open(b.TempDir(), cfg, segment.OpenOptions{})
	if err != nil {
		b.Fatal(err)
	}
	p := New(segment.TopicPartition{Topic: "t", Partition: 0}, log, nil, testProducerIDExpiration)
	if err := p.BecomeLeader(0); err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 1000)
	const perBatch = batchBytes / 1024
	build := func(seq int32) []byte {
		o := batch.DefaultBuilderOptions()
		o.ProducerID, o.ProducerEpoch, o.BaseSequence = 1, 0, seq
		bld := batch.NewBuilder(o)
		for range perBatch {
			bld.Add(time.Now().UnixMilli(), nil, value, nil)
		}
		out, err := bld.AppendBatch(nil)
		if err != nil {
			b.Fatal(err)
		}
		return out
	}
	var rolled, plain []time.Duration
	b.SetBytes(int64(len(build(0))))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		data := build(int32(i * perBatch))
		segs := len(log.Segments())
		b.StartTimer()
		start := time.Now()
		if _, err := p.Append(data, AppendOptions{}); err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		b.StopTimer()
		if len(log.Segments()) != segs {
			rolled = append(rolled, took)
		} else {
			plain = append(plain, took)
		}
		b.StartTimer()
	}
	b.StopTimer()
	median := func(d []time.Duration) float64 {
		if len(d) == 0 {
			return 0
		}
		slices.Sort(d)
		return float64(d[len(d)/2].Microseconds())
	}
	b.ReportMetric(median(rolled), "roll-p50-µs")
	b.ReportMetric(median(plain), "other-p50-µs")
	p.Close()
	if err := log.Close(); err != nil {
		b.Fatal(err)
	}
}
