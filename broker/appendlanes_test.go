package broker

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"gregor/segment"
)

// TestAppendLanesOrderEachPartition queues jobs for a few partitions from
// several goroutines at once, as connections do, and checks that one
// partition never runs two jobs at once, that each sender's jobs for a
// partition run in the order it queued them, and that no lane is left
// behind.
func TestAppendLanesOrderEachPartition(t *testing.T) {
	const senders, partitions, perSender = 4, 3, 300
	var lanes appendLanes
	var running [partitions]atomic.Int32
	var mu sync.Mutex
	ran := map[string][]int{} // "sender/partition" -> sequence numbers in run order
	var done sync.WaitGroup
	done.Add(senders * perSender)
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for seq := range perSender {
				p := (seq * (s + 1)) % partitions
				tp := segment.TopicPartition{Topic: "t", Partition: int32(p)}
				lanes.enqueue(tp, func() {
					defer done.Done()
					if n := running[p].Add(1); n != 1 {
						t.Errorf("partition %d runs %d jobs at once", p, n)
					}
					mu.Lock()
					key := fmt.Sprintf("%d/%d", s, p)
					ran[key] = append(ran[key], seq)
					mu.Unlock()
					running[p].Add(-1)
				}, seq%3 == 0)
			}
		})
	}
	wg.Wait()
	done.Wait()
	for key, seqs := range ran {
		for i := 1; i < len(seqs); i++ {
			if seqs[i] <= seqs[i-1] {
				t.Fatalf("sender/partition %s ran %d after %d", key, seqs[i], seqs[i-1])
			}
		}
	}
	total := 0
	for _, seqs := range ran {
		total += len(seqs)
	}
	if total != senders*perSender {
		t.Fatalf("%d jobs ran, want %d", total, senders*perSender)
	}
	// The last drainer retires its lane after its job's Done; wait for
	// the map to empty, within a bound, rather than for a moment to pass.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		lanes.mu.Lock()
		n := len(lanes.mu.lanes)
		lanes.mu.Unlock()
		if n == 0 {
			return
		}
		runtime.Gosched()
	}
	t.Fatal("lanes left behind after every job ran")
}

// TestAppendLanesInlineRunsBeforeReturning: an idle lane started inline
// runs the job on the caller's goroutine, so a small Produce request is
// appended before Serve returns.
func TestAppendLanesInlineRunsBeforeReturning(t *testing.T) {
	var lanes appendLanes
	tp := segment.TopicPartition{Topic: "t"}
	ran := false
	lanes.enqueue(tp, func() { ran = true }, true)
	if !ran {
		t.Fatal("an inline job on an idle lane had not run when enqueue returned")
	}
	if len(lanes.mu.lanes) != 0 {
		t.Fatal("the lane was not retired")
	}
}

// TestAppendLanesInlineRunsOnlyItsOwnJob: a connection whose small Produce
// finds the lane idle runs its own job inline and returns, handing the
// jobs other connections queued on the lane meanwhile to a goroutine, in
// their order, rather than running them before it reads its next request.
func TestAppendLanesInlineRunsOnlyItsOwnJob(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var lanes appendLanes
		tp := segment.TopicPartition{Topic: "t"}
		release := make(chan struct{})
		var released sync.Once
		defer released.Do(func() { close(release) })
		var ran []string // in the lane's order: one job at a time
		other := func(name string) func() {
			return func() {
				<-release // another connection's append, still writing
				ran = append(ran, name)
			}
		}
		returned := make(chan struct{})
		go func() {
			lanes.enqueue(tp, func() {
				ran = append(ran, "own")
				// Other connections queue behind it while it runs.
				lanes.enqueue(tp, other("b"), false)
				lanes.enqueue(tp, other("c"), true)
			}, true)
			close(returned)
		}()
		synctest.Wait()
		select {
		case <-returned:
		default:
			t.Fatal("the inline enqueue did not return: it runs the jobs other connections queued on the lane")
		}
		released.Do(func() { close(release) })
		synctest.Wait()
		if want := []string{"own", "b", "c"}; !slices.Equal(ran, want) {
			t.Fatalf("jobs ran %v, want %v", ran, want)
		}
		if len(lanes.mu.lanes) != 0 {
			t.Fatal("the lane was not retired")
		}
	})
}
