package group

import "time"

// timerKind says what a deadline is for.
type timerKind uint8

const (
	// sessionTimer: a member's session (or, for a new member, its join)
	// runs out.
	sessionTimer timerKind = iota
	// pendingTimer: a member id handed out with MEMBER_ID_REQUIRED was not
	// used to join within the session timeout.
	pendingTimer
	// joinTimer: the join phase of a rebalance ends (the initial delay, or
	// the rebalance timeout).
	joinTimer
	// syncTimer: members that got their JoinGroup response have not all
	// sent SyncGroup within the rebalance timeout.
	syncTimer
)

// timer is one deadline in the coordinator's heap. Each owner embeds its
// timers (a member its session, a group its join and sync deadlines), so
// scheduling, moving and cancelling them never allocates, and a heartbeat
// moves its member's deadline in O(log n) instead of leaving a stale entry
// behind.
type timer struct {
	at   time.Time
	seq  uint64 // when it was (re)scheduled: orders equal deadlines
	idx  int    // its index in the heap, -1 when not scheduled
	kind timerKind
	g    *group
	m    *member  // sessionTimer
	p    *pending // pendingTimer
}

func (t *timer) scheduled() bool { return t.idx >= 0 }

// timerHeap is a min-heap of timers by (at, seq). Ties go to the timer
// scheduled first, so that Tick is deterministic.
type timerHeap []*timer

func (h timerHeap) less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}

func (h timerHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx = i
	h[j].idx = j
}

func (h timerHeap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		j = i
	}
}

func (h timerHeap) down(i int) bool {
	i0 := i
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && h.less(r, l) {
			j = r
		}
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}

// set schedules t at at, moving it if it is already scheduled.
func (h *timerHeap) set(t *timer, at time.Time, seq uint64) {
	t.at, t.seq = at, seq
	if t.idx >= 0 {
		if !h.down(t.idx) {
			h.up(t.idx)
		}
		return
	}
	t.idx = len(*h)
	*h = append(*h, t)
	h.up(t.idx)
}

// remove unschedules t; it does nothing to a timer that is not scheduled.
func (h *timerHeap) remove(t *timer) {
	i := t.idx
	if i < 0 {
		return
	}
	old := *h
	n := len(old) - 1
	if i != n {
		old.swap(i, n)
	}
	old[n] = nil
	*h = old[:n]
	t.idx = -1
	if i != n {
		if !h.down(i) {
			h.up(i)
		}
	}
}

// popDue removes and returns the earliest timer if it is due at now.
func (h *timerHeap) popDue(now time.Time) *timer {
	if len(*h) == 0 || (*h)[0].at.After(now) {
		return nil
	}
	t := (*h)[0]
	h.remove(t)
	return t
}
