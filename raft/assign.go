package raft

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Replica assignment: which brokers hold each new partition, in which order
// (the first is the preferred leader).
//
// Kafka's ZooKeeper-era placer (AdminUtils.assignReplicasToBrokers) walks a
// rack-alternating broker list: leaders round-robin over it, followers at a
// shift after the leader that grows every round, skipping brokers whose rack
// already holds a replica; KRaft's StripedReplicaPlacer stripes over racks
// from random offsets. Both spread replicas evenly only over whole rounds of
// the brokers: 2 partitions with replication factor 3 on 5 brokers give the
// brokers 1, 2, 2, 1 and 0 replicas.
//
// AssignReplicas keeps the round-robin leaders but places followers at
// evenly spaced offsets: with n brokers in placement order, the partition
// at pattern position p (startIndex, startIndex+1, ...) holds the brokers at
//
//	p mod n,  (p + ⌊n/rf⌋) mod n,  (p + ⌊2n/rf⌋) mod n,  …,  (p + ⌊(rf-1)n/rf⌋) mod n
//
// which are distinct since n/rf >= 1. Any run of P consecutive positions
// gives broker x one replica for each j with (x - ⌊jn/rf⌋) mod n in the run:
// ⌊P/n⌋ per offset for whole rounds, and for the partial round of r
// positions, the number of points ⌊jn/rf⌋ in a cyclic window of r
// integers, which is the number of integers j in a real interval of length
// r·rf/n: ⌊r·rf/n⌋ or ⌈r·rf/n⌉. So every broker holds within one of the
// same number of replicas, and leads within one of the same number of
// partitions, for any startIndex and any count. Continuing a topic at
// startIndex = its partition count therefore keeps the whole topic balanced
// (when the brokers have not changed), which Kafka's placers do not.
//
// Racks. When every rack has the same number of brokers m (n = R·m), the
// placement order groups brokers by rack, so rack = position div m. Points
// ⌊jn/rf⌋ apart fall in a window of m positions ⌊rf/R⌋ or ⌈rf/R⌉ times (the
// same argument with a window of length m), so each partition has ⌊rf/R⌋ or
// ⌈rf/R⌉ replicas in every rack: distinct racks when rf <= R. Fixed offsets
// in Kafka's rack-alternating order cannot do both: with racks a, b, c of
// two brokers each and rf=2, the partitions led by a0, b0 and c0 must put
// their followers on a1, b1 and c1 to stay balanced, and no fixed offset in
// the list a0 b0 c0 a1 b1 c1 does that without a same-rack pair. The price
// of the grouped order: consecutive partitions are led from one rack, so a
// topic of fewer than m partitions has all its leaders in one rack (across
// topics, CreateTopics starts each topic where the cluster's partition
// count leaves off).
//
// When racks differ in size, balance and rack spread conflict (one broker
// alone in a rack must hold a replica of nearly every partition), and, as
// in Kafka, rack spread wins: the placement order is Kafka's rack-alternating
// list, leaders round-robin over it, and each follower is, in this order of
// preference: in the rack with the fewest replicas of the partition so far;
// a broker that must take this partition for the counts to come out as even
// as the leaders allow; one that still should take replicas, the most
// pressed first; the next after the leader in the list, with a shift that
// grows every round as Kafka's nextReplicaShift does. Only rack spread is
// guaranteed there, and leaders within one.
//
// The cost of even spacing: partitions led by the same broker have the same
// replica set (when rf divides n, the brokers fall into n/rf fixed groups).
// To spread failover, the order of the followers rotates every round of n
// partitions, so the partitions a failed broker led move to rf-1 different
// brokers rather than one.

// maxAssignPartitions bounds one AssignReplicas call: more is a request to
// refuse, not to allocate for.
const maxAssignPartitions = 1 << 20

// AssignReplicas returns the replicas of partitions new partitions with
// replicationFactor replicas each, on brokers (by id and rack; their fenced
// state is not looked at: pass the brokers that may take replicas). The
// first partition takes pattern position startIndex, the next
// startIndex+1, and so on; leaders round-robin over the placement order
// from there. Pass a topic's current partition count (plus the position of
// its first partition's leader) to continue its pattern.
//
// The result is a function of its arguments only. Errors unwrap to
// kerr.InvalidReplicationFactor when replicationFactor is not in
// [1, len(brokers)], kerr.InvalidPartitions for a count out of range, and
// kerr.InvalidRequest for a bad broker list or startIndex.
func AssignReplicas(brokers []*BrokerImage, partitions int, replicationFactor int, startIndex int) ([][]int32, error) {
	n := len(brokers)
	switch {
	case replicationFactor <= 0:
		return nil, assignErrorf(kerr.InvalidReplicationFactor, "replication factor %d: must be at least 1", replicationFactor)
	case replicationFactor > n:
		return nil, assignErrorf(kerr.InvalidReplicationFactor, "replication factor %d: only %d broker(s) to place on", replicationFactor, n)
	case partitions < 0 || partitions > maxAssignPartitions:
		return nil, assignErrorf(kerr.InvalidPartitions, "%d partitions: want 0 to %d", partitions, maxAssignPartitions)
	case startIndex < 0:
		return nil, assignErrorf(kerr.InvalidRequest, "start index %d is negative", startIndex)
	}
	l, err := newPlacementLayout(brokers)
	if err != nil {
		return nil, err
	}
	var positions [][]int
	if l.evenRacks {
		positions = spreadEvenly(n, partitions, replicationFactor, startIndex)
	} else {
		positions = spreadRacksFirst(l, partitions, replicationFactor, startIndex)
	}
	out := make([][]int32, partitions)
	for k, ps := range positions {
		out[k] = make([]int32, len(ps))
		for i, p := range ps {
			out[k][i] = l.order[p].ID
		}
	}
	return out, nil
}

// assignError is an AssignReplicas error: its message, unwrapping to the
// Kafka error code it maps to.
type assignError struct {
	code *kerr.Error
	msg  string
}

func assignErrorf(code *kerr.Error, format string, args ...any) error {
	return &assignError{code: code, msg: "raft: assign replicas: " + fmt.Sprintf(format, args...)}
}

func (e *assignError) Error() string { return e.msg }
func (e *assignError) Unwrap() error { return e.code }

// placementLayout is the order AssignReplicas walks brokers in.
type placementLayout struct {
	order     []*BrokerImage
	rack      []int // rack number (racks sorted by name) of each position
	racks     int
	evenRacks bool // every rack has the same number of brokers: order grouped by rack
}

// newPlacementLayout sorts brokers by rack name then id. With racks of
// equal size (or no racks: one rack named "") the order is grouped by rack;
// otherwise it is Kafka's rack-alternating list: the first broker of each
// rack, then the second of each, and so on.
func newPlacementLayout(brokers []*BrokerImage) (placementLayout, error) {
	byRack := map[string][]*BrokerImage{}
	seen := make(map[int32]bool, len(brokers))
	for i, b := range brokers {
		if b == nil {
			return placementLayout{}, assignErrorf(kerr.InvalidRequest, "broker %d of %d is nil", i, len(brokers))
		}
		if seen[b.ID] {
			return placementLayout{}, assignErrorf(kerr.InvalidRequest, "broker %d is listed twice", b.ID)
		}
		seen[b.ID] = true
		byRack[b.Rack] = append(byRack[b.Rack], b)
	}
	names := make([]string, 0, len(byRack))
	l := placementLayout{racks: len(byRack), evenRacks: true}
	for name, bs := range byRack {
		names = append(names, name)
		slices.SortFunc(bs, func(a, b *BrokerImage) int { return cmp.Compare(a.ID, b.ID) })
		if len(bs)*len(byRack) != len(brokers) {
			l.evenRacks = false
		}
	}
	slices.Sort(names)
	l.order = make([]*BrokerImage, 0, len(brokers))
	l.rack = make([]int, 0, len(brokers))
	if l.evenRacks {
		for r, name := range names {
			for _, b := range byRack[name] {
				l.order = append(l.order, b)
				l.rack = append(l.rack, r)
			}
		}
		return l, nil
	}
	for i := 0; len(l.order) < len(brokers); i++ {
		for r, name := range names {
			if bs := byRack[name]; i < len(bs) {
				l.order = append(l.order, bs[i])
				l.rack = append(l.rack, r)
			}
		}
	}
	return l, nil
}

// position returns the position in the layout of broker id, or of the first
// broker after it in id order when it is not there (as Kafka's
// createPartitions finds where a topic's pattern started).
func (l placementLayout) position(id int32) int {
	best, bestID := 0, int32(-1)
	for p, b := range l.order {
		if b.ID == id {
			return p
		}
		if b.ID > id && (bestID < 0 || b.ID < bestID) {
			best, bestID = p, b.ID
		}
	}
	return best
}

// spreadEvenly places followers at offsets ⌊jn/rf⌋ after the leader (see
// the comment at the top of this file), rotating the followers' order every
// round of n positions.
func spreadEvenly(n, partitions, rf, start int) [][]int {
	out := make([][]int, partitions)
	for k := range out {
		pos := start + k
		leader, round := pos%n, pos/n
		ps := make([]int, 1, rf)
		ps[0] = leader
		for i := range rf - 1 {
			j := 1 + (round+i)%(rf-1)
			ps = append(ps, (leader+j*n/rf)%n)
		}
		out[k] = ps
	}
	return out
}

// spreadRacksFirst places followers for racks of unequal sizes: rack spread
// first, then even replica counts where the racks allow, then Kafka's
// shifting order.
func spreadRacksFirst(l placementLayout, partitions, rf, start int) [][]int {
	n := len(l.order)
	// target: the replica count each position should end with, as even as
	// the leaders (fixed) allow. Followers fill up the emptiest positions,
	// in list order from just after the last leader.
	target := make([]int, n)
	leadsLeft := make([]int, n)
	for k := range partitions {
		target[(start+k)%n]++
		leadsLeft[(start+k)%n]++
	}
	quota := make([]int, n) // followers each position still should take
	from := (start + partitions) % n
	for range partitions * (rf - 1) {
		best := -1
		for i := range n {
			p := (from + i) % n
			if best < 0 || target[p] < target[best] {
				best = p
			}
		}
		target[best]++
		quota[best]++
	}

	out := make([][]int, partitions)
	member := make([]bool, n)
	inRack := make([]int, l.racks)
	for k := range partitions {
		pos := start + k
		leader := pos % n
		shift := (pos / n) * l.racks
		leadsLeft[leader]--
		clear(member)
		clear(inRack)
		member[leader] = true
		inRack[l.rack[leader]]++
		ps := make([]int, 1, rf)
		ps[0] = leader
		left := partitions - k // partitions from this one on
		for len(ps) < rf {
			best := -1
			var bestKey [5]int
			for p := range n {
				if member[p] {
					continue
				}
				// slack: partitions from this one on that p could follow,
				// beyond the followers it still should take.
				slack := left - leadsLeft[p] - quota[p]
				key := [5]int{
					inRack[l.rack[p]],
					boolInt(!(quota[p] > 0 && slack <= 0)), // must take this one
					boolInt(quota[p] <= 0),
					slack,
					((p-leader-1-shift)%n + 2*n) % n,
				}
				if best < 0 || slices.Compare(key[:], bestKey[:]) < 0 {
					best, bestKey = p, key
				}
			}
			member[best] = true
			inRack[l.rack[best]]++
			quota[best]--
			ps = append(ps, best)
		}
		out[k] = ps
	}
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
