package broker

import "sync"

// decompressionBudget bounds the bytes that produce validation holds
// decompressed at once across the broker (Config.DecompressionMaxBytes).
//
// checkRecords decompresses a compressed batch's records whole, up to 64 ×
// max(max.message.bytes, 1 MiB) each, and the append lanes validate the
// partitions of a large Produce request side by side, so without a bound a
// request of a few hundred KiB holding small batches that expand to tens
// of MiB each could make the broker hold one such expansion per partition
// at once (40 partitions: over a GiB). Kafka validates with a streaming
// iterator on at most num.io.threads threads; here each decompression
// first takes its share, the size its framing declares (batch.SizeHint),
// and waits while the budget is spent.
//
// A share above the whole budget is cut to the budget: that batch waits
// until nothing else holds any and then runs alone, rather than never. The
// waiters are served in arrival order, so a large share is not starved by
// a stream of small ones (and small ones wait behind it). Holders never
// wait on anything but CPU work while they hold, so every wait ends.
type decompressionBudget struct {
	capacity int64

	mu struct {
		sync.Mutex
		used    int64 // the shares held, each cut to capacity
		waiters []budgetWaiter
		held    int64 // the shares held as asked for: the bytes being decompressed
		peak    int64 // the most held at once
		// onQueue and onCharge, when set (tests), are called when a
		// decompression starts to wait for its share and once it holds
		// it; onCharge may block to keep it held.
		onQueue, onCharge func()
	}
}

type budgetWaiter struct {
	n     int64
	ready chan struct{}
}

func newDecompressionBudget(capacity int64) *decompressionBudget {
	return &decompressionBudget{capacity: max(capacity, 1)}
}

// acquire takes a share of n bytes, waiting while the budget cannot give it.
// Every acquire must be followed by release(n).
func (d *decompressionBudget) acquire(n int64) {
	d.mu.Lock()
	onQueue, onCharge := d.mu.onQueue, d.mu.onCharge
	if len(d.mu.waiters) == 0 && d.mu.used+min(n, d.capacity) <= d.capacity {
		d.grantLocked(n)
		d.mu.Unlock()
	} else {
		w := budgetWaiter{n: n, ready: make(chan struct{})}
		d.mu.waiters = append(d.mu.waiters, w)
		d.mu.Unlock()
		if onQueue != nil {
			onQueue()
		}
		<-w.ready // release granted the share
	}
	if onCharge != nil {
		onCharge()
	}
}

// release gives back a share of n bytes and hands the budget to the
// waiters, in order, as far as it goes.
func (d *decompressionBudget) release(n int64) {
	if n == 0 {
		return // an uncompressed batch took nothing: no lock on every produce
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mu.used -= min(n, d.capacity)
	d.mu.held -= n
	for len(d.mu.waiters) > 0 {
		w := d.mu.waiters[0]
		if d.mu.used+min(w.n, d.capacity) > d.capacity {
			break
		}
		d.mu.waiters[0] = budgetWaiter{}
		d.mu.waiters = d.mu.waiters[1:]
		d.grantLocked(w.n)
		close(w.ready)
	}
}

func (d *decompressionBudget) grantLocked(n int64) {
	d.mu.used += min(n, d.capacity)
	d.mu.held += n
	d.mu.peak = max(d.mu.peak, d.mu.held)
}
