package broker

import (
	"sync"

	"gregor/segment"
)

// appendLanes orders the appends of produce requests per partition: the
// jobs queued for one partition run one at a time, in the order they were
// queued, and jobs for different partitions run side by side.
//
// netio hands a connection's requests to the broker one at a time, in
// order, so a Produce request that appended before returning would keep a
// connection, and with it a client's whole pipeline of in-flight requests,
// to one core. Most of an append is the kernel copying the batch into
// page-cache pages; on these machines taking never-touched pages runs at
// about 0.4 GB/s on one core and nearly twice that on two. Queuing each
// partition's batch on its lane lets the next request be read and appended
// while the previous one is still being written, without reordering any
// partition: Serve queues a connection's requests in their order, and a
// lane never runs two jobs at once. netio still answers in request order.
//
// The queues are bounded by what netio holds: queued.max.requests requests
// across the broker, each of at most socket.request.max.bytes.
type appendLanes struct {
	mu struct {
		sync.Mutex
		lanes map[segment.TopicPartition]*appendLane
	}
}

// appendLane is one partition's queue, guarded by appendLanes.mu. A lane
// exists only while it has work: its drainer deletes it when the queue runs
// dry.
type appendLane struct {
	queue []func()
}

// enqueue queues job on tp's lane. When the lane was idle, this call
// starts it: inline (a small request is appended before Serve returns, as
// if there were no lanes) runs job on the caller's goroutine and then hands
// the jobs queued behind it meanwhile, other connections' requests, to a
// new goroutine, so that the caller's connection reads its next request
// rather than working through theirs; without inline the job runs on a new
// goroutine too. A busy lane's drainer runs the job in its turn.
func (l *appendLanes) enqueue(tp segment.TopicPartition, job func(), inline bool) {
	l.mu.Lock()
	if ln, busy := l.mu.lanes[tp]; busy {
		ln.queue = append(ln.queue, job)
		l.mu.Unlock()
		return
	}
	if l.mu.lanes == nil {
		l.mu.lanes = make(map[segment.TopicPartition]*appendLane)
	}
	ln := &appendLane{}
	l.mu.lanes[tp] = ln
	l.mu.Unlock()
	if !inline {
		go l.drain(tp, ln, job)
		return
	}
	job()
	// The lane stays registered meanwhile, so what comes next queues
	// behind these: the partition's order holds.
	if next, ok := l.next(tp, ln); ok {
		go l.drain(tp, ln, next)
	}
}

// drain runs job, then the lane's queued jobs in order until none is left,
// and retires the lane.
func (l *appendLanes) drain(tp segment.TopicPartition, ln *appendLane, job func()) {
	for ok := true; ok; job, ok = l.next(tp, ln) {
		job()
	}
}

// next takes the lane's next queued job, or, when none is queued, retires
// the lane.
func (l *appendLanes) next(tp segment.TopicPartition, ln *appendLane) (func(), bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(ln.queue) == 0 {
		delete(l.mu.lanes, tp)
		return nil, false
	}
	job := ln.queue[0]
	ln.queue[0] = nil
	ln.queue = ln.queue[1:]
	return job, true
}
