package broker

import "sync"

// unfinishedProduces counts, per connection, the Produce requests whose
// partitions are not all appended yet, so that the connection's next
// request of any other kind can wait for them (Serve).
//
// Kafka reads a connection's next request only once it has sent the answer
// to the current one, so a ListOffsets, Fetch or Metadata a client pipelines
// after a Produce on the same connection (sarama and kafka-go produce and
// read on one) always sees its records. Here a Produce of 256 KiB or more,
// or a smaller one whose partition's lane is busy, is appended on the lanes
// after Serve returns, and the connection's next request is read meanwhile:
// without this wait it could run before the appends it follows. Produce requests themselves do not
// wait: the lanes keep each partition's appends in request order, and
// letting them overlap is what the lanes are for.
//
// A connection is in the map only while it has a Produce unfinished, so a
// closed connection leaves nothing behind once its appends end. Its
// appends always end: a lane job waits on nothing but its log and the
// decompression budget, never on a connection.
type unfinishedProduces struct {
	mu struct {
		sync.Mutex
		conns map[uint64]unfinished
		// onWait, when set (tests), is called when a request starts to
		// wait.
		onWait func()
	}
}

type unfinished struct {
	n    int
	done chan struct{} // made by the first request to wait; closed when n drops to 0
}

// start counts a Produce request of conn that has begun.
func (u *unfinishedProduces) start(conn uint64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.mu.conns == nil {
		u.mu.conns = make(map[uint64]unfinished)
	}
	e := u.mu.conns[conn]
	e.n++
	u.mu.conns[conn] = e
}

// finish counts one of conn's Produce requests as appended, waking the
// request waiting for it when it was the last.
func (u *unfinishedProduces) finish(conn uint64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	e := u.mu.conns[conn]
	if e.n--; e.n > 0 {
		u.mu.conns[conn] = e
		return
	}
	delete(u.mu.conns, conn)
	if e.done != nil {
		close(e.done)
	}
}

// wait returns once conn has no Produce request unfinished, or stop is
// closed (the broker is closing; the request is answered as it stands).
func (u *unfinishedProduces) wait(conn uint64, stop <-chan struct{}) {
	u.mu.Lock()
	e, ok := u.mu.conns[conn]
	if !ok {
		u.mu.Unlock()
		return
	}
	if e.done == nil {
		e.done = make(chan struct{})
		u.mu.conns[conn] = e
	}
	onWait := u.mu.onWait
	u.mu.Unlock()
	if onWait != nil {
		onWait()
	}
	select {
	case <-e.done:
	case <-stop:
	}
}
