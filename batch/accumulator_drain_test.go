package batch

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// accOneRecordBatches is a config where every record of accValue(_, 200)
// closes the batch before it: each batch holds one record and all have one
// size, accOneBatchBytes.
func accOneRecordBatches() AccumulatorConfig {
	cfg := DefaultAccumulatorConfig()
	cfg.BatchSize = 300
	cfg.LingerMs = 60000
	return cfg
}

var accOneBatchBytes = HeaderSize + RecordSize(&Record{Value: accValue(0, 200)})

func accParts(n int) []accTP {
	var out []accTP
	for i := range n {
		out = append(out, accTP{"t", int32(i)})
	}
	return out
}

func accPartsOf(bs []*accBatchForTest) []int32 {
	var out []int32
	for _, b := range bs {
		out = append(out, b.Partition.part)
	}
	return out
}

// Drain visits partitions in the order they first got a record, starting
// where the last drain for the same node stopped, so a request that cannot
// take every partition's batch leaves the rest first in line for the next.
func TestAccumulatorDrainRotatesFromWhereItStopped(t *testing.T) {
	a := newAccForTest(t, accOneRecordBatches(), newAccClock().now)
	ctx := context.Background()
	parts := accParts(4)
	for round := range 3 {
		for _, tp := range parts {
			accMust(t, a.Append(ctx, tp, 0, nil, accValue(round, 200), nil, round))
		}
	}
	// The caller's order of parts does not matter; partitions with
	// nothing are skipped.
	listed := append(slices.Clone(parts), accTP{"t", 9})
	slices.Reverse(listed)
	var order [][]int32
	for range 4 {
		got := a.Drain(1, listed, 3*accOneBatchBytes, nil, nil)
		order = append(order, accPartsOf(got))
	}
	want := [][]int32{{0, 1, 2}, {3, 0, 1}, {2, 3, 0}, {1, 2, 3}}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("drains took partitions %v, want %v", order, want)
	}
	// Another node has its own place in the rotation; and the first batch
	// goes even when it alone is larger than the limit.
	for _, tp := range parts {
		accMust(t, a.Append(ctx, tp, 0, nil, accValue(9, 200), nil, 9))
	}
	if got := accPartsOf(a.Drain(2, parts[2:], 1, nil, nil)); fmt.Sprint(got) != "[2]" {
		t.Fatalf("node 2's first drain took %v, want [2]", got)
	}
	if got := accPartsOf(a.Drain(2, parts, 1, nil, nil)); fmt.Sprint(got) != "[3]" {
		t.Fatalf("node 2's second drain took %v, want [3]", got)
	}
}

// Ready says which partitions have a batch that may go now: full (sealed),
// lingered, or anything while flushing or closed; and when the next one will.
func TestAccumulatorReadyReasons(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := accOneRecordBatches()
		cfg.LingerMs = 10
		a := newAccForTest(t, cfg, nil)
		ctx := context.Background()
		ready := func() (string, time.Duration, time.Duration) {
			pend, next, oldest := a.Ready(time.Now(), nil)
			var s []string
			for _, p := range pend {
				s = append(s, fmt.Sprintf("%d:%v", p.Partition.part, p.Ready))
			}
			var in, age time.Duration
			if !next.IsZero() {
				in = next.Sub(time.Now())
			}
			if !oldest.IsZero() {
				age = time.Since(oldest)
			}
			return fmt.Sprint(s), in, age
		}
		if got, next, oldest := ready(); got != "[]" || next != 0 || oldest != 0 {
			t.Fatalf("empty: %s, next in %v, oldest %v", got, next, oldest)
		}
		accMust(t, a.Append(ctx, accTP{"t", 0}, 0, nil, accValue(0, 200), nil, 0))
		time.Sleep(4 * time.Millisecond)
		accMust(t, a.Append(ctx, accTP{"t", 1}, 0, nil, accValue(0, 200), nil, 0))
		accMust(t, a.Append(ctx, accTP{"t", 1}, 0, nil, accValue(1, 200), nil, 1)) // seals the first
		if got, next, oldest := ready(); got != "[0:false 1:true]" || next != 6*time.Millisecond || oldest != 4*time.Millisecond {
			t.Fatalf("at 4ms: %s, next in %v, oldest %v; want [0:false 1:true], 6ms, 4ms", got, next, oldest)
		}
		time.Sleep(6 * time.Millisecond)
		if got, next, _ := ready(); got != "[0:true 1:true]" || next != 0 {
			t.Fatalf("at 10ms: %s, next in %v; want both ready, no deadline", got, next)
		}
		for _, b := range a.Drain(1, accParts(2), 1<<20, nil, nil) {
			a.Release(b)
		}
		// Partition 1's second batch lingers until 14ms, unless a flush
		// comes.
		if got, next, _ := ready(); got != "[1:false]" || next != 4*time.Millisecond {
			t.Fatalf("after a drain: %s, next in %v", got, next)
		}
		flushed := make(chan error)
		go func() { flushed <- a.Flush(ctx) }()
		synctest.Wait()
		if got, _, _ := ready(); got != "[1:true]" {
			t.Fatalf("while flushing: %s", got)
		}
		for _, b := range a.Drain(1, accParts(2), 1<<20, nil, nil) {
			a.Release(b)
		}
		synctest.Wait()
		select {
		case err := <-flushed:
			accMust(t, err)
		default:
			t.Fatal("flush still waits with every batch released")
		}
		// After Close everything is ready.
		accMust(t, a.Append(ctx, accTP{"t", 2}, 0, nil, accValue(0, 200), nil, 0))
		if got, _, _ := ready(); got != "[2:false]" {
			t.Fatalf("a new batch: %s", got)
		}
		a.Close()
		if got, _, _ := ready(); got != "[2:true]" {
			t.Fatalf("after Close: %s", got)
		}
	})
}

// Expire takes every undrained batch created at or before the deadline,
// oldest first per partition, and leaves younger ones.
func TestAccumulatorExpire(t *testing.T) {
	clk := newAccClock()
	a := newAccForTest(t, accOneRecordBatches(), clk.now)
	ctx := context.Background()
	start := clk.now()
	for i := range 3 {
		for _, tp := range accParts(2) {
			accMust(t, a.Append(ctx, tp, 0, nil, accValue(i, 200), nil, i))
		}
		clk.advance(time.Second)
	}
	got := a.Expire(start.Add(time.Second), nil)
	var desc []string
	for _, b := range got {
		desc = append(desc, fmt.Sprintf("%d/%d", b.Partition.part, b.Data[0]))
	}
	if fmt.Sprint(desc) != "[0/0 0/1 1/0 1/1]" {
		t.Fatalf("expired %v, want the first two batches of each partition", desc)
	}
	if n := a.Queued(accParts(3), nil); fmt.Sprint(n) != "[1 1 0]" {
		t.Fatalf("queued %v after expiry, want [1 1 0]", n)
	}
	for _, b := range got {
		a.Release(b)
	}
	for _, b := range a.DrainAll(nil) {
		a.Release(b)
	}
	if a.Buffered() != 0 || a.Unreleased() != 0 {
		t.Fatalf("after releasing everything: %d bytes, %d batches", a.Buffered(), a.Unreleased())
	}
}

// A node drained as a sender drains it: one request every requestTime while
// some partition is ready, each request taking at most perRequest batches
// (of one size), records arriving on random partitions with bursts on all of
// them. Fake time (synctest) makes the run exact. Two properties:
//
//   - No partition is drained later than its turn: while a partition holds a
//     batch, no other partition is drained twice.
//   - A batch waits at most linger.ms plus one round of drains over the
//     partitions (ceil(partitions/perRequest) requests) from its creation.
func TestAccumulatorDrainIsFair(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	synctest.Test(t, func(t *testing.T) {
		const (
			partitions  = 64
			perRequest  = 5
			requestTime = time.Millisecond
			ticks       = 3000
		)
		rng := rand.New(rand.NewPCG(seed, 1))
		cfg := DefaultAccumulatorConfig()
		cfg.BatchSize = 1 << 20
		cfg.BufferMemory = partitions << 20 // each open batch reserves batch.size
		cfg.LingerMs = 5
		linger := time.Duration(cfg.LingerMs) * time.Millisecond
		a := newAccForTest(t, cfg, nil) // time.Now: the bubble's clock
		ctx := context.Background()
		parts := accParts(partitions)
		round := time.Duration((partitions+perRequest-1)/perRequest) * requestTime
		var (
			pend        []Pending[accTP]
			listed      []accTP
			got         []*accBatchForTest
			servedWhile = make([]map[int32]int, partitions) // per waiting partition: drains of others
			worst       time.Duration
			drains      int
		)
		// addRecord opens a batch of one record, if the partition has none:
		// every batch then has one size, so perRequest of them fill a
		// request exactly.
		addRecord := func(tp accTP) {
			if a.Queued([]accTP{tp}, nil)[0] == 0 {
				accMust(t, a.Append(ctx, tp, 0, nil, accValue(0, 100), nil, 0))
			}
		}
		batchBytes := HeaderSize + RecordSize(&Record{Value: accValue(0, 100)})
		for tick := range ticks {
			if tick%200 == 0 {
				for _, tp := range parts {
					addRecord(tp)
				}
			}
			for range rng.IntN(4) {
				addRecord(parts[rng.IntN(partitions)])
			}
			pend, _, _ = a.Ready(time.Now(), pend[:0])
			anyReady := false
			listed = listed[:0]
			for _, p := range pend {
				anyReady = anyReady || p.Ready
				listed = append(listed, p.Partition)
			}
			if anyReady {
				drains++
				got = a.Drain(7, listed, perRequest*batchBytes, nil, got[:0])
				if len(got) != min(perRequest, len(listed)) {
					t.Fatalf("tick %d: drained %d batches of %d waiting, want %d", tick, len(got), len(listed), min(perRequest, len(listed)))
				}
				taken := map[int32]bool{}
				for _, b := range got {
					taken[b.Partition.part] = true
					if w := time.Since(b.Created()); w > worst {
						worst = w
					}
					if w := time.Since(b.Created()); w > linger+round {
						t.Fatalf("tick %d: partition %d's batch waited %v, more than linger.ms %v plus a round of drains %v",
							tick, b.Partition.part, w, linger, round)
					}
					a.Release(b)
				}
				for _, tp := range listed {
					p := tp.part
					if taken[p] {
						servedWhile[p] = nil
						continue
					}
					if servedWhile[p] == nil {
						servedWhile[p] = map[int32]int{}
					}
					for q := range taken {
						if servedWhile[p][q]++; servedWhile[p][q] > 1 {
							t.Fatalf("tick %d: partition %d drained twice while partition %d waited", tick, q, p)
						}
					}
				}
			}
			time.Sleep(requestTime)
		}
		t.Logf("%d drains; the longest wait was %v (bound %v)", drains, worst, linger+round)
		if worst <= linger {
			t.Fatalf("no batch waited past linger.ms: the load never made partitions take turns")
		}
	})
}

// Drain writes the producer fields stamp gives into each batch as it encodes
// it, once per batch and in order, under a valid CRC.
func TestAccumulatorDrainStamps(t *testing.T) {
	a := newAccForTest(t, accOneRecordBatches(), newAccClock().now)
	ctx := context.Background()
	for i := range 3 {
		for _, tp := range accParts(2) {
			accMust(t, a.Append(ctx, tp, 0, nil, accValue(i, 200), nil, i))
		}
	}
	next := map[int32]int32{}
	var calls []string
	stamp := func(p accTP, records int) (int64, int16, int32) {
		seq := next[p.part]
		next[p.part] += int32(records)
		calls = append(calls, fmt.Sprintf("%d@%d", p.part, seq))
		return 77, 3, seq
	}
	var got []*accBatchForTest
	for range 2 {
		got = a.Drain(1, accParts(2), 1<<20, stamp, got)
	}
	if fmt.Sprint(calls) != "[0@0 1@0 0@1 1@1]" {
		t.Fatalf("stamp calls %v", calls)
	}
	for i, b := range got {
		accDecodeDrained(t, b) // validates the CRC
		h := Header(b.Bytes())
		if h.ProducerID() != 77 || h.ProducerEpoch() != 3 || h.BaseSequence() != int32(i/2) {
			t.Fatalf("batch %d: producer fields %d/%d/%d", i, h.ProducerID(), h.ProducerEpoch(), h.BaseSequence())
		}
	}
}
