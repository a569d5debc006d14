package batch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// accClock is a clock a test moves by hand, for linger.ms.
type accClock struct {
	mu sync.Mutex
	t  time.Time
}

func newAccClock() *accClock { return &accClock{t: time.Unix(1700000000, 0)} }

func (c *accClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *accClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type accTP struct {
	topic string
	part  int32
}

type accForTest = Accumulator[accTP, int]
type accBatchForTest = ProducerBatch[accTP, int]

func newAccForTest(t testing.TB, cfg AccumulatorConfig, now func() time.Time) *accForTest {
	t.Helper()
	a, err := NewAccumulator[accTP, int](cfg, now)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// accDecodeDrained checks that a drained batch is a valid RecordBatch v2 and
// returns its values.
func accDecodeDrained(t testing.TB, b *accBatchForTest) [][]byte {
	t.Helper()
	if b.Err != nil {
		t.Fatalf("drained batch has error: %v", b.Err)
	}
	if err := Validate(b.Bytes(), 0); err != nil {
		t.Fatalf("drained batch does not validate: %v", err)
	}
	h := Header(b.Bytes())
	if int(h.RecordCount()) != b.Records() {
		t.Fatalf("batch holds %d records, Data has %d", h.RecordCount(), b.Records())
	}
	rr, _, err := DecodeRecords(h, nil, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	var r Record
	for rr.Next(&r) {
		out = append(out, append([]byte(nil), r.Value...))
	}
	if err := rr.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// accDrainReady drains every ready batch, whatever its partition, as a
// sender with one broker and no limit on request size would, and returns
// when the next batch will be ready by linger.ms.
func accDrainReady(a *accForTest, now time.Time, dst []*accBatchForTest) ([]*accBatchForTest, time.Time) {
	var pend []Pending[accTP]
	var next time.Time
	for {
		pend, next, _ = a.Ready(now, pend[:0])
		var ready []accTP
		for _, p := range pend {
			if p.Ready {
				ready = append(ready, p.Partition)
			}
		}
		if len(ready) == 0 {
			return dst, next
		}
		dst = a.Drain(0, ready, math.MaxInt, nil, dst)
	}
}

func accValue(i, size int) []byte {
	v := make([]byte, size)
	copy(v, fmt.Sprintf("v%08d", i))
	return v
}

func TestAccumulatorConfigValidateReportsEveryField(t *testing.T) {
	err := AccumulatorConfig{BatchSize: 0, LingerMs: -1, BufferMemory: 10, MaxBlockMs: -5, CompressionType: 9}.Validate()
	if err == nil {
		t.Fatal("bad config validated")
	}
	cfg := DefaultAccumulatorConfig()
	cfg.CompressionType, cfg.CompressionLevel = CodecZstd, 23
	if err := cfg.Validate(); !errors.Is(err, ErrLevel) {
		t.Errorf("zstd level 23: %v, want ErrLevel", err)
	}
	for _, want := range []string{"batch.size = 0", "linger.ms = -1", "buffer.memory = 10", "max.block.ms = -5", "compression.type = 9"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if err := DefaultAccumulatorConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

// A batch closes when the next record would take it past batch.size; sealed
// batches are ready at once, the open one only after linger.ms.
func TestAccumulatorClosesBatchAtBatchSize(t *testing.T) {
	clk := newAccClock()
	cfg := DefaultAccumulatorConfig()
	cfg.BatchSize = 1024
	cfg.LingerMs = 100
	a := newAccForTest(t, cfg, clk.now)
	tp := accTP{"t", 0}
	const n = 50
	for i := range n {
		if err := a.Append(context.Background(), tp, 1000, nil, accValue(i, 100), nil, i); err != nil {
			t.Fatal(err)
		}
	}
	got, next := accDrainReady(a, clk.now(), nil)
	if len(got) == 0 {
		t.Fatal("no sealed batch was ready")
	}
	if next.IsZero() || next.Sub(clk.now()) != 100*time.Millisecond {
		t.Fatalf("next linger deadline %v, want now+100ms", next)
	}
	seen := 0
	for _, b := range got {
		vals := accDecodeDrained(t, b)
		if size := b.Records(); size == 0 {
			t.Fatal("empty batch")
		}
		// Sealed batches are full: one more record would not have fitted.
		if len(b.Bytes()) > cfg.BatchSize || len(b.Bytes())+110 <= cfg.BatchSize {
			t.Fatalf("sealed batch of %d bytes for batch.size %d", len(b.Bytes()), cfg.BatchSize)
		}
		for i, v := range vals {
			if b.Data[i] != seen || string(v[:9]) != fmt.Sprintf("v%08d", seen) {
				t.Fatalf("record %d of the partition is %q (data %d)", seen, v[:9], b.Data[i])
			}
			seen++
		}
	}
	if seen == n {
		t.Fatal("the open batch was drained before linger.ms")
	}
	clk.advance(100 * time.Millisecond)
	rest, next := accDrainReady(a, clk.now(), nil)
	if len(rest) != 1 || !next.IsZero() {
		t.Fatalf("after linger: %d batches, next %v; want the open one and no deadline", len(rest), next)
	}
	for _, v := range accDecodeDrained(t, rest[0]) {
		if string(v[:9]) != fmt.Sprintf("v%08d", seen) {
			t.Fatalf("record %d is %q", seen, v[:9])
		}
		seen++
	}
	if seen != n {
		t.Fatalf("drained %d records, want %d", seen, n)
	}
	for _, b := range append(got, rest...) {
		a.Release(b)
	}
	if a.Buffered() != 0 || a.Unreleased() != 0 {
		t.Fatalf("after releasing everything: %d bytes, %d batches", a.Buffered(), a.Unreleased())
	}
}

func TestAccumulatorLargeRecordTravelsAlone(t *testing.T) {
	clk := newAccClock()
	cfg := DefaultAccumulatorConfig()
	cfg.BatchSize = 1024
	a := newAccForTest(t, cfg, clk.now)
	tp := accTP{"t", 0}
	ctx := context.Background()
	accMust(t, a.Append(ctx, tp, 0, nil, accValue(0, 10), nil, 0))
	accMust(t, a.Append(ctx, tp, 0, nil, accValue(1, 5000), nil, 1))
	accMust(t, a.Append(ctx, tp, 0, nil, accValue(2, 10), nil, 2))
	got, _ := accDrainReady(a, clk.now(), nil)
	if len(got) != 2 {
		t.Fatalf("%d ready batches, want 2 (the small one closed by the large one, and the large one)", len(got))
	}
	if got[0].Records() != 1 || got[1].Records() != 1 || got[1].Data[0] != 1 || len(got[1].Bytes()) < 5000 {
		t.Fatalf("batches %d and %d records; second holds %v", got[0].Records(), got[1].Records(), got[1].Data)
	}
}

func accMust(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Each partition has its own open batch and its own linger deadline.
func TestAccumulatorLingerPerPartition(t *testing.T) {
	clk := newAccClock()
	cfg := DefaultAccumulatorConfig()
	cfg.LingerMs = 10
	a := newAccForTest(t, cfg, clk.now)
	ctx := context.Background()
	accMust(t, a.Append(ctx, accTP{"t", 0}, 0, nil, []byte("a"), nil, 0))
	clk.advance(6 * time.Millisecond)
	accMust(t, a.Append(ctx, accTP{"t", 1}, 0, nil, []byte("b"), nil, 1))
	if got, next := accDrainReady(a, clk.now(), nil); len(got) != 0 || next.Sub(clk.now()) != 4*time.Millisecond {
		t.Fatalf("at 6ms: %d ready, next in %v; want none, 4ms", len(got), next.Sub(clk.now()))
	}
	clk.advance(4 * time.Millisecond)
	got, next := accDrainReady(a, clk.now(), nil)
	if len(got) != 1 || got[0].Partition.part != 0 || next.Sub(clk.now()) != 6*time.Millisecond {
		t.Fatalf("at 10ms: %d ready, next in %v; want partition 0, 6ms", len(got), next.Sub(clk.now()))
	}
	clk.advance(6 * time.Millisecond)
	if got, next := accDrainReady(a, clk.now(), nil); len(got) != 1 || got[0].Partition.part != 1 || !next.IsZero() {
		t.Fatalf("at 16ms: %d ready, next %v", len(got), next)
	}
}

func TestAccumulatorEveryCodecRoundTrips(t *testing.T) {
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			clk := newAccClock()
			cfg := DefaultAccumulatorConfig()
			cfg.CompressionType = c
			a := newAccForTest(t, cfg, clk.now)
			vals := jsonValues(7, 40)
			for i, v := range vals {
				accMust(t, a.Append(context.Background(), accTP{"t", 0}, int64(1000+i), []byte("k"), v, []RecordHeader{{Key: []byte("h"), Value: []byte("v")}}, i))
			}
			clk.advance(time.Hour)
			got, _ := accDrainReady(a, clk.now(), nil)
			var all [][]byte
			uncompressed := 0
			for _, b := range got {
				if Header(b.Bytes()).Codec() != c {
					t.Fatalf("batch codec %v, want %v", Header(b.Bytes()).Codec(), c)
				}
				all = append(all, accDecodeDrained(t, b)...)
				uncompressed += HeaderSize
			}
			if len(all) != len(vals) {
				t.Fatalf("%d records, want %d", len(all), len(vals))
			}
			for i := range vals {
				if string(all[i]) != string(vals[i]) {
					t.Fatalf("record %d differs", i)
				}
			}
			// Memory accounting follows the encoded (compressed) size.
			var enc int64
			for _, b := range got {
				enc += int64(len(b.Bytes()))
			}
			if a.Buffered() != enc {
				t.Fatalf("buffered %d, want the encoded size %d", a.Buffered(), enc)
			}
			for _, b := range got {
				a.Release(b)
			}
			if a.Buffered() != 0 {
				t.Fatalf("buffered %d after release", a.Buffered())
			}
		})
	}
}

// The producer's compression level (compression.<codec>.level) reaches the
// encoder: each drained batch's records are exactly what CompressLevel
// writes at that level, and 0 is the codec's default.
func TestAccumulatorCompressionLevel(t *testing.T) {
	for _, tc := range []struct {
		c            Codec
		level, wantL int
	}{{CodecGzip, 9, 9}, {CodecGzip, 0, GzipDefaultLevel}, {CodecLZ4, 3, 3}, {CodecZstd, 12, 12}, {CodecZstd, 0, ZstdDefaultLevel}} {
		t.Run(fmt.Sprintf("%s/%d", tc.c, tc.level), func(t *testing.T) {
			clk := newAccClock()
			cfg := DefaultAccumulatorConfig()
			cfg.CompressionType, cfg.CompressionLevel = tc.c, tc.level
			a := newAccForTest(t, cfg, clk.now)
			for i, v := range jsonValues(9, 40) {
				accMust(t, a.Append(context.Background(), accTP{"t", 0}, int64(1000+i), nil, v, nil, i))
			}
			clk.advance(time.Hour)
			got, _ := accDrainReady(a, clk.now(), nil)
			if len(got) == 0 {
				t.Fatal("nothing drained")
			}
			for _, b := range got {
				h := Header(b.Bytes())
				records, err := Decompress(tc.c, nil, h.Records(), 64<<20)
				if err != nil {
					t.Fatal(err)
				}
				want, err := CompressLevel(tc.c, tc.wantL, nil, records)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(h.Records(), want) {
					t.Fatalf("records compressed to %d bytes, want %s level %d's %d", len(h.Records()), tc.c, tc.wantL, len(want))
				}
				a.Release(b)
			}
		})
	}
}

func TestAccumulatorSetProducerKeepsCRCValid(t *testing.T) {
	clk := newAccClock()
	a := newAccForTest(t, DefaultAccumulatorConfig(), clk.now)
	accMust(t, a.Append(context.Background(), accTP{"t", 0}, 5, nil, []byte("x"), nil, 0))
	accMust(t, a.Append(context.Background(), accTP{"t", 0}, 5, nil, []byte("y"), nil, 1))
	clk.advance(time.Second)
	got, _ := accDrainReady(a, clk.now(), nil)
	b := got[0]
	h := Header(b.Bytes())
	if h.ProducerID() != -1 || h.ProducerEpoch() != -1 || h.BaseSequence() != -1 {
		t.Fatalf("fresh batch has producer fields %d/%d/%d", h.ProducerID(), h.ProducerEpoch(), h.BaseSequence())
	}
	b.SetProducer(42, 3, 1000)
	if err := Validate(b.Bytes(), 0); err != nil {
		t.Fatal(err)
	}
	if h.ProducerID() != 42 || h.ProducerEpoch() != 3 || h.BaseSequence() != 1000 {
		t.Fatalf("producer fields %d/%d/%d", h.ProducerID(), h.ProducerEpoch(), h.BaseSequence())
	}
}

// TryAppend joins an open batch with room and never opens one: the sticky
// partitioner's signal to move on.
func TestAccumulatorTryAppend(t *testing.T) {
	clk := newAccClock()
	cfg := DefaultAccumulatorConfig()
	cfg.BatchSize = 300
	a := newAccForTest(t, cfg, clk.now)
	tp := accTP{"t", 0}
	if a.TryAppend(tp, 0, nil, accValue(0, 100), nil, 0) {
		t.Fatal("TryAppend opened a batch")
	}
	accMust(t, a.Append(context.Background(), tp, 0, nil, accValue(0, 100), nil, 0))
	if !a.TryAppend(tp, 0, nil, accValue(1, 100), nil, 1) {
		t.Fatal("TryAppend did not join the open batch")
	}
	if a.TryAppend(tp, 0, nil, accValue(2, 100), nil, 2) {
		t.Fatal("TryAppend went past batch.size")
	}
}

func TestAccumulatorRecordLargerThanBufferMemory(t *testing.T) {
	cfg := DefaultAccumulatorConfig()
	cfg.BufferMemory = 1000
	a := newAccForTest(t, cfg, nil)
	err := a.Append(context.Background(), accTP{"t", 0}, 0, nil, make([]byte, 2000), nil, 0)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
}

// With buffer.memory full, Append blocks; a release lets it through; with no
// release it fails after max.block.ms, or when its context ends.
func TestAccumulatorBufferMemoryBlocksThenFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultAccumulatorConfig()
		cfg.BatchSize = 200
		cfg.BufferMemory = 1000
		cfg.MaxBlockMs = 2000
		a := newAccForTest(t, cfg, nil)
		ctx := context.Background()
		tp := accTP{"t", 0}
		n := 0
		for a.Buffered()+200 <= cfg.BufferMemory {
			accMust(t, a.Append(ctx, tp, 0, nil, accValue(n, 120), nil, n))
			n++
		}

		// Blocks, then a release frees it.
		start := time.Now()
		done := make(chan error)
		go func() { done <- a.Append(ctx, tp, 0, nil, accValue(n, 120), nil, n) }()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Append returned %v with the buffer full", err)
		default:
		}
		// A blocked Append makes everything ready, linger or not.
		got, _ := accDrainReady(a, time.Now(), nil)
		if len(got) == 0 {
			t.Fatal("nothing ready while an Append waits for memory")
		}
		time.Sleep(500 * time.Millisecond) // fake time: the waiter is still blocked
		a.Release(got[0])
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited != 500*time.Millisecond {
			t.Fatalf("waited %v, want 500ms", waited)
		}
		for _, b := range got[1:] {
			a.Release(b)
		}

		// Fill again; with no release, max.block.ms ends the wait.
		for {
			err := a.Append(ctx, tp, 0, nil, accValue(n, 120), nil, n)
			if err != nil {
				if !errors.Is(err, ErrBufferFull) {
					t.Fatalf("got %v, want ErrBufferFull", err)
				}
				break
			}
			n++
		}
		start = time.Now()
		err := a.Append(ctx, tp, 0, nil, accValue(n, 120), nil, n)
		if !errors.Is(err, ErrBufferFull) || time.Since(start) != 2*time.Second {
			t.Fatalf("got %v after %v, want ErrBufferFull after max.block.ms", err, time.Since(start))
		}

		// A context that ends first wins.
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		start = time.Now()
		err = a.Append(cctx, tp, 0, nil, accValue(n, 120), nil, n)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 100*time.Millisecond {
			t.Fatalf("got %v after %v, want the context's deadline", err, time.Since(start))
		}

		// Close releases blocked appenders at once.
		go func() { done <- a.Append(ctx, tp, 0, nil, accValue(n, 120), nil, n) }()
		synctest.Wait()
		a.Close()
		if err := <-done; !errors.Is(err, ErrAccumulatorClosed) {
			t.Fatalf("got %v, want ErrAccumulatorClosed", err)
		}
	})
}

// Flush makes open batches ready and waits for the batches that existed when
// it began, not for later ones.
func TestAccumulatorFlushWaitsForExistingBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultAccumulatorConfig()
		cfg.LingerMs = 60000
		a := newAccForTest(t, cfg, nil)
		ctx := context.Background()
		accMust(t, a.Append(ctx, accTP{"t", 0}, 0, nil, []byte("a"), nil, 0))
		accMust(t, a.Append(ctx, accTP{"t", 1}, 0, nil, []byte("b"), nil, 1))
		flushed := make(chan error)
		go func() { flushed <- a.Flush(ctx) }()
		synctest.Wait()
		got, _ := accDrainReady(a, time.Now(), nil)
		if len(got) != 2 {
			t.Fatalf("flush made %d batches ready, want 2", len(got))
		}
		accMust(t, a.Append(ctx, accTP{"t", 2}, 0, nil, []byte("c"), nil, 2))
		a.Release(got[0])
		synctest.Wait()
		select {
		case <-flushed:
			t.Fatal("flush returned with a batch unreleased")
		default:
		}
		a.Release(got[1])
		if err := <-flushed; err != nil {
			t.Fatal(err)
		}
		// A flush with nothing to wait for returns at once.
		b, _ := accDrainReady(a, time.Now(), nil) // not ready: linger is a minute
		if len(b) != 0 {
			t.Fatal("a batch opened after the flush ended was ready before linger")
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := a.Flush(cctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("flush of an unsent batch: %v, want the context's deadline", err)
		}
	})
}

// Appending into an open batch that has room does not allocate once the
// accumulator's buffers have grown: the hot path of a producer.
func TestAccumulatorAppendIntoOpenBatchDoesNotAllocate(t *testing.T) {
	clk := newAccClock()
	cfg := DefaultAccumulatorConfig()
	cfg.BatchSize = 1 << 20
	a := newAccForTest(t, cfg, clk.now)
	tp := accTP{"topic", 3}
	ctx := context.Background()
	v := make([]byte, 100)
	// Warm up: grow a builder and a batch to batch.size, then recycle them.
	for range 3 {
		accMust(t, a.Append(ctx, tp, 0, nil, v, nil, 0))
		for a.TryAppend(tp, 0, nil, v, nil, 0) {
		}
		clk.advance(time.Hour)
		got, _ := accDrainReady(a, clk.now(), nil)
		for _, b := range got {
			a.Release(b)
		}
	}
	accMust(t, a.Append(ctx, tp, 0, nil, v, nil, 0))
	allocs := testing.AllocsPerRun(1000, func() {
		if err := a.Append(ctx, tp, 0, nil, v, nil, 1); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Append into an open batch allocates %.1f times", allocs)
	}
}

// A whole batch's cycle, appends until it seals, Drain and Release, allocates
// nothing in steady state without compression: the drained batch is its
// builder's buffer, which comes back through Release for a later batch.
func TestAccumulatorCycleDoesNotAllocate(t *testing.T) {
	clk := newAccClock()
	cfg := DefaultAccumulatorConfig()
	cfg.BatchSize = 64 << 10
	a := newAccForTest(t, cfg, clk.now)
	ctx := context.Background()
	v := make([]byte, 1000)
	var (
		got   []*accBatchForTest
		pend  []Pending[accTP]
		ready []accTP
	)
	cycle := func() {
		for p := range int32(4) {
			tp := accTP{"topic", p}
			accMust(t, a.Append(ctx, tp, 0, nil, v, nil, 0))
			for a.TryAppend(tp, 0, nil, v, nil, 0) {
			}
		}
		clk.advance(time.Second) // linger.ms has passed
		pend, _, _ = a.Ready(clk.now(), pend[:0])
		ready = ready[:0]
		for _, p := range pend {
			ready = append(ready, p.Partition)
		}
		got = a.Drain(0, ready, math.MaxInt, nil, got[:0])
		if len(got) != 4 {
			t.Fatalf("drained %d batches, want 4", len(got))
		}
		for i, b := range got {
			if err := Validate(b.Bytes(), 0); err != nil {
				t.Fatal(err)
			}
			a.Release(b)
			got[i] = nil
		}
	}
	for range 3 {
		cycle() // grow the pools
	}
	if allocs := testing.AllocsPerRun(20, cycle); allocs != 0 {
		t.Fatalf("a batch cycle allocates %.1f times", allocs)
	}
}

// A random mix of appends (random partitions and sizes), drains and releases
// in random order, checked against a model: each partition's records come out
// in order, exactly once, and memory returns to zero.
func TestAccumulatorRandomOperations(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	clk := newAccClock()
	cfg := DefaultAccumulatorConfig()
	cfg.BatchSize = 2000
	cfg.BufferMemory = 1 << 20
	cfg.LingerMs = 3
	cfg.CompressionType = allCodecs[rng.IntN(len(allCodecs))]
	a := newAccForTest(t, cfg, clk.now)
	next := map[int32]int{} // next record id per partition, as appended
	seen := map[int32]int{} // next record id per partition, as drained
	var held []*accBatchForTest
	ctx := context.Background()
	for op := range 5000 {
		switch r := rng.IntN(10); {
		case r < 6:
			p := int32(rng.IntN(4))
			id := next[p]
			next[p]++
			accMust(t, a.Append(ctx, accTP{"t", p}, int64(op), nil, accValue(id, 9+rng.IntN(900)), nil, id))
		case r < 8:
			clk.advance(time.Duration(rng.IntN(3)) * time.Millisecond)
			var got []*accBatchForTest
			got, _ = accDrainReady(a, clk.now(), got)
			for _, b := range got {
				vals := accDecodeDrained(t, b)
				for i, v := range vals {
					want := seen[b.Partition.part]
					if b.Data[i] != want || string(v[:9]) != fmt.Sprintf("v%08d", want) {
						t.Fatalf("op %d partition %d: got record %d (%q), want %d", op, b.Partition.part, b.Data[i], v[:9], want)
					}
					seen[b.Partition.part]++
				}
			}
			held = append(held, got...)
		default:
			if len(held) > 0 {
				i := rng.IntN(len(held))
				a.Release(held[i])
				held[i] = held[len(held)-1]
				held = held[:len(held)-1]
			}
		}
	}
	a.Close()
	got, _ := accDrainReady(a, clk.now(), nil)
	for _, b := range got {
		for i := range b.Data {
			if b.Data[i] != seen[b.Partition.part] {
				t.Fatalf("final drain: partition %d record %d, want %d", b.Partition.part, b.Data[i], seen[b.Partition.part])
			}
			seen[b.Partition.part]++
		}
	}
	for p, n := range next {
		if seen[p] != n {
			t.Fatalf("partition %d: drained %d of %d records", p, seen[p], n)
		}
	}
	for _, b := range append(held, got...) {
		a.Release(b)
	}
	if a.Buffered() != 0 || a.Unreleased() != 0 {
		t.Fatalf("after releasing everything: %d bytes, %d batches", a.Buffered(), a.Unreleased())
	}
}

// BenchmarkAccumulatorAppend appends 1 KiB records from the benchmark's
// goroutine while a second goroutine drains and releases, as a sender does.
func BenchmarkAccumulatorAppend(b *testing.B) {
	cfg := DefaultAccumulatorConfig()
	a, err := NewAccumulator[accTP, int](cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var got []*accBatchForTest
		for {
			select {
			case <-a.Wakeup():
			case <-stop:
				return
			}
			got, _ = accDrainReady(a, time.Now(), got[:0])
			for _, bt := range got {
				a.Release(bt)
			}
		}
	})
	vals := jsonValues(1, 64)
	tps := []accTP{{"bench", 0}, {"bench", 1}, {"bench", 2}}
	ctx := context.Background()
	b.SetBytes(int64(len(vals[0])))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := a.Append(ctx, tps[i%3], 1700000000000, nil, vals[i%len(vals)], nil, i); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
}

// BenchmarkAccumulatorDrain fills one 16 KiB batch of 1 KiB JSON records and
// drains it (close and compress) per iteration, for each codec; the codec
// "none" run is the baseline the others compare with.
func BenchmarkAccumulatorDrain(b *testing.B) {
	vals := jsonValues(1, 16)
	total := 0
	for _, v := range vals {
		total += len(v)
	}
	for _, c := range allCodecs {
		b.Run("codec="+c.String(), func(b *testing.B) {
			cfg := DefaultAccumulatorConfig()
			cfg.BatchSize = 1 << 20
			cfg.CompressionType = c
			clk := newAccClock()
			a, err := NewAccumulator[accTP, int](cfg, clk.now)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			tp := accTP{"bench", 0}
			var got []*accBatchForTest
			b.SetBytes(int64(total))
			b.ReportAllocs()
			compressed := 0
			for b.Loop() {
				for i, v := range vals {
					if err := a.Append(ctx, tp, 1700000000000, nil, v, nil, i); err != nil {
						b.Fatal(err)
					}
				}
				clk.advance(time.Second)
				got, _ = accDrainReady(a, clk.now(), got[:0])
				for _, bt := range got {
					compressed += len(bt.Bytes())
					a.Release(bt)
				}
			}
			b.ReportMetric(float64(total)*float64(b.N)/float64(compressed), "ratio")
		})
	}
}

// TestAccumulatorOpenBatchesReserveBatchSize: every open batch is given a
// buffer of batch.size, and only the bytes written into it were counted
// against buffer.memory, so open batches on many partitions held many
// times buffer.memory and Append never blocked. As Java's RecordAccumulator
// takes max(batch.size, record size) from its pool for each new batch, a
// new batch now reserves batch.size: the fifth of 1 MiB within 4 MiB waits.
func TestAccumulatorOpenBatchesReserveBatchSize(t *testing.T) {
	cfg := DefaultAccumulatorConfig()
	cfg.BatchSize, cfg.BufferMemory, cfg.LingerMs = 1<<20, 4<<20, 60000
	a := newAccForTest(t, cfg, newAccClock().now)
	ctx := context.Background()
	for p := range int32(4) {
		accMust(t, a.Append(ctx, accTP{"t", p}, 0, nil, []byte("small"), nil, 0))
	}
	if got := a.Buffered(); got != 4<<20 {
		t.Errorf("4 open batches hold %d bytes of buffer.memory, want 4 MiB", got)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := a.Append(cancelled, accTP{"t", 4}, 0, nil, []byte("small"), nil, 0); !errors.Is(err, ErrBufferFull) {
		t.Errorf("a fifth batch of 1 MiB within 4 MiB of buffer.memory: %v, want ErrBufferFull", err)
	}
	// A record into an open batch needs no more.
	accMust(t, a.Append(cancelled, accTP{"t", 0}, 0, nil, []byte("more"), nil, 0))
}

// TestAccumulatorTryAppendSealsAFullBatch: a record that does not fit the
// open batch makes the sticky partitioner move on (TryAppend fails); the
// batch it leaves can take no more, and waited out linger.ms all the same.
// Java's closeForRecordAppends makes it ready at once, and so does Gregor's
// accumulator now.
func TestAccumulatorTryAppendSealsAFullBatch(t *testing.T) {
	clk := newAccClock()
	cfg := DefaultAccumulatorConfig()
	cfg.BatchSize, cfg.LingerMs = 1000, 60000
	a := newAccForTest(t, cfg, clk.now)
	tp := accTP{"t", 0}
	accMust(t, a.Append(context.Background(), tp, 0, nil, accValue(0, 300), nil, 0))
	for a.TryAppend(tp, 0, nil, accValue(1, 300), nil, 0) {
	}
	got, _ := accDrainReady(a, clk.now(), nil)
	if len(got) != 1 || got[0].Records() != 3 {
		t.Fatalf("drained %d batches before linger.ms; want the full batch of 3 records", len(got))
	}
}
