package broker

import (
	"testing"
	"testing/synctest"
)

// TestDecompressionBudget: shares are given while they fit, then in
// arrival order (a small share does not pass a large one that waits), and
// a share larger than the whole budget is given once nothing else is held,
// alone, instead of never. synctest.Wait lets every goroutine that can move
// move, so "still waiting" is a fact, not a guess about time.
func TestDecompressionBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newDecompressionBudget(10)
		got := make(map[string]bool)
		var order []string
		take := func(name string, n int64) {
			go func() {
				d.acquire(n)
				d.mu.Lock()
				got[name] = true
				order = append(order, name)
				d.mu.Unlock()
			}()
			synctest.Wait()
		}
		holds := func(want ...string) {
			t.Helper()
			d.mu.Lock()
			defer d.mu.Unlock()
			if len(got) != len(want) {
				t.Fatalf("granted %v, want %v", order, want)
			}
			for _, name := range want {
				if !got[name] {
					t.Fatalf("granted %v, want %v", order, want)
				}
			}
		}

		take("a6", 6)
		take("b6", 6) // 12 > 10: waits
		take("c3", 3) // would fit, but b6 is first in line
		holds("a6")
		d.release(6)
		synctest.Wait()
		holds("a6", "b6", "c3")

		take("big", 25) // over the whole budget: waits for b6 and c3
		take("d1", 1)   // behind big
		holds("a6", "b6", "c3")
		d.release(6)
		synctest.Wait()
		holds("a6", "b6", "c3")
		d.release(3)
		synctest.Wait()
		holds("a6", "b6", "c3", "big") // alone: d1 still waits
		d.mu.Lock()
		if d.mu.peak != 25 || d.mu.held != 25 {
			t.Errorf("held %d, peak %d: want both 25, the bytes big is decompressing", d.mu.held, d.mu.peak)
		}
		d.mu.Unlock()
		d.release(25)
		synctest.Wait()
		holds("a6", "b6", "c3", "big", "d1")
		d.release(1)
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.mu.used != 0 || d.mu.held != 0 || len(d.mu.waiters) != 0 {
			t.Errorf("after every release: used %d, held %d, %d waiting", d.mu.used, d.mu.held, len(d.mu.waiters))
		}
	})
}
