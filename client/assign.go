package client

import (
	"cmp"
	"encoding/binary"
	"slices"
)

// Partition assignors: the group leader's choice of which member reads which
// partition, named as the Java client names them (partition.assignment.strategy).
// Each is a pure function of the members' subscriptions (and, for
// cooperative-sticky, what they own now) and the partition counts, so they
// are tested without a cluster.

// assignMember is one group member as the leader sees it in JoinGroup's
// response: its ConsumerProtocolSubscription, decoded.
type assignMember struct {
	id         string // member.id
	instanceID string // group.instance.id, "" for a dynamic member
	topics     []string
	// owned are the partitions the member owns now (KIP-429), as of
	// generation; only the cooperative protocol reports any.
	owned      []TopicPartition
	generation int32 // -1 when unknown
}

// assignment maps member ids to their partitions, sorted; every member has
// an entry, possibly empty.
type assignment map[string][]TopicPartition

// assignor is one partition.assignment.strategy.
type assignor struct {
	name string
	// cooperative reports support for the COOPERATIVE rebalance protocol
	// (KIP-429): members keep their partitions while the group rebalances.
	// Every assignor supports EAGER.
	cooperative bool
	assign      func(members []assignMember, partitions map[string]int32) assignment
	// userData is the subscription's user data for a member whose
	// partitions are of generation gen.
	userData func(gen int32) []byte
}

// The assignors, by name.
var assignors = map[string]*assignor{
	"range":              {name: "range", assign: assignRange},
	"roundrobin":         {name: "roundrobin", assign: assignRoundRobin},
	"cooperative-sticky": {name: "cooperative-sticky", cooperative: true, assign: assignCooperativeSticky, userData: stickyUserData},
}

// stickyUserData is the Java CooperativeStickyAssignor's user data: the
// generation, for members whose subscription version predates the
// generation field. Sending it keeps Java members in the same group able
// to weigh our claims.
func stickyUserData(gen int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(gen)) }

// sortedMembers orders members as the Java client's MemberInfo does: static
// members first, by group.instance.id, then dynamic ones by member id. The
// order decides who gets the extra partitions, so keeping Java's makes mixed
// groups agree on it.
func sortedMembers(members []assignMember) []assignMember {
	out := slices.Clone(members)
	slices.SortStableFunc(out, func(a, b assignMember) int {
		switch {
		case a.instanceID != "" && b.instanceID != "":
			return cmp.Or(cmp.Compare(a.instanceID, b.instanceID), cmp.Compare(a.id, b.id))
		case a.instanceID != "":
			return -1
		case b.instanceID != "":
			return 1
		}
		return cmp.Compare(a.id, b.id)
	})
	return out
}

func emptyAssignment(members []assignMember) assignment {
	out := make(assignment, len(members))
	for _, m := range members {
		out[m.id] = []TopicPartition{}
	}
	return out
}

func (a assignment) sort() assignment {
	for _, tps := range a {
		slices.SortFunc(tps, compareTP)
	}
	return a
}

func compareTP(a, b TopicPartition) int {
	return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
}

// subscribedTopics lists the topics any member subscribes to that have
// partitions, sorted.
func subscribedTopics(members []assignMember, partitions map[string]int32) []string {
	var topics []string
	for _, m := range members {
		for _, t := range m.topics {
			if partitions[t] > 0 {
				topics = append(topics, t)
			}
		}
	}
	slices.Sort(topics)
	return slices.Compact(topics)
}

// assignRange is Kafka's RangeAssignor: per topic, the members subscribed to
// it (in MemberInfo order) each take a contiguous range of partitions, the
// first n%members taking one extra.
func assignRange(members []assignMember, partitions map[string]int32) assignment {
	out := emptyAssignment(members)
	sorted := sortedMembers(members)
	for _, topic := range subscribedTopics(members, partitions) {
		var subs []string
		for _, m := range sorted {
			if slices.Contains(m.topics, topic) {
				subs = append(subs, m.id)
			}
		}
		n, c := int(partitions[topic]), len(subs)
		per, extra := n/c, n%c
		for i, id := range subs {
			start, length := per*i+min(i, extra), per
			if i < extra {
				length++
			}
			for p := start; p < start+length; p++ {
				out[id] = append(out[id], TopicPartition{topic, int32(p)})
			}
		}
	}
	return out.sort()
}

// assignRoundRobin is Kafka's RoundRobinAssignor: every partition of every
// subscribed topic, sorted, dealt in turn to the members (in MemberInfo
// order), skipping members not subscribed to its topic.
func assignRoundRobin(members []assignMember, partitions map[string]int32) assignment {
	out := emptyAssignment(members)
	sorted := sortedMembers(members)
	next := 0
	for _, topic := range subscribedTopics(members, partitions) {
		for p := range partitions[topic] {
			for !slices.Contains(sorted[next].topics, topic) {
				next = (next + 1) % len(sorted)
			}
			out[sorted[next].id] = append(out[sorted[next].id], TopicPartition{topic, p})
			next = (next + 1) % len(sorted)
		}
	}
	return out.sort()
}

// claims resolves who owns what from the members' reports (KIP-429): for
// each partition, the members claiming it at the highest generation any
// claim has. A lower generation's claim is stale: that member lost the
// partition in a rebalance it missed.
func claims(sorted []assignMember) map[TopicPartition][]int {
	type claim struct {
		gen     int32
		members []int
	}
	best := map[TopicPartition]*claim{}
	for i, m := range sorted {
		for _, tp := range m.owned {
			c := best[tp]
			switch {
			case c == nil || m.generation > c.gen:
				best[tp] = &claim{gen: m.generation, members: []int{i}}
			case m.generation == c.gen && !slices.Contains(c.members, i):
				c.members = append(c.members, i)
			}
		}
	}
	out := make(map[TopicPartition][]int, len(best))
	for tp, c := range best {
		out[tp] = c.members
	}
	return out
}

// assignSticky computes the balanced assignment that moves the fewest
// owned partitions: each member keeps what it validly owns (subscribed,
// existing, claimed by it alone at the latest generation), partitions no one
// keeps go to the least loaded member subscribed to their topic, and then
// partitions move from a member to another subscribed to their topic while
// the two differ by two or more. The result is balanced in that sense (with
// identical subscriptions: counts within one of each other), and with
// identical subscriptions no member gives up more than balance requires.
func assignSticky(members []assignMember, partitions map[string]int32) assignment {
	sorted := sortedMembers(members)
	subscribed := make([]map[string]bool, len(sorted))
	for i, m := range sorted {
		subscribed[i] = map[string]bool{}
		for _, t := range m.topics {
			subscribed[i][t] = true
		}
	}
	valid := func(i int, tp TopicPartition) bool {
		return subscribed[i][tp.Topic] && tp.Partition >= 0 && tp.Partition < partitions[tp.Topic]
	}
	cur := make([][]TopicPartition, len(sorted))
	kept := map[TopicPartition]int{} // partition -> the member that kept it
	for tp, owners := range claims(sorted) {
		if len(owners) == 1 && valid(owners[0], tp) {
			kept[tp] = owners[0]
			cur[owners[0]] = append(cur[owners[0]], tp)
		}
	}
	for i := range cur {
		slices.SortFunc(cur[i], compareTP)
	}

	// Partitions no one keeps go to the least loaded subscriber, those of
	// the topics with the fewest subscribers first: they have the fewest
	// places to go.
	topics := subscribedTopics(sorted, partitions)
	subscribers := map[string]int{}
	for _, t := range topics {
		for i := range sorted {
			if subscribed[i][t] {
				subscribers[t]++
			}
		}
	}
	slices.SortStableFunc(topics, func(a, b string) int { return cmp.Compare(subscribers[a], subscribers[b]) })
	for _, topic := range topics {
		for p := range partitions[topic] {
			tp := TopicPartition{topic, p}
			if _, ok := kept[tp]; ok {
				continue
			}
			best := -1
			for i := range sorted {
				if subscribed[i][topic] && (best < 0 || len(cur[i]) < len(cur[best])) {
					best = i
				}
			}
			cur[best] = append(cur[best], tp)
		}
	}

	// Balance: move one partition at a time from the most loaded member to
	// the least loaded one that can take it, while they differ by two or
	// more. Each move lowers the sum of squared counts, so this ends.
	order := make([]int, len(sorted))
	for {
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(len(cur[a]), len(cur[b])) })
		moved := false
		// A move that revokes nothing first, from any member that may
		// give; only when there is none, one that revokes.
	search:
		for _, free := range []bool{true, false} {
			for di := len(order) - 1; di > 0; di-- {
				d := order[di]
				for _, r := range order[:di] {
					if len(cur[d])-len(cur[r]) < 2 {
						break
					}
					if k := movable(cur[d], d, subscribed[r], kept, free); k >= 0 {
						tp := cur[d][k]
						cur[d] = slices.Delete(cur[d], k, k+1)
						cur[r] = append(cur[r], tp)
						moved = true
						break search
					}
				}
			}
		}
		if !moved {
			break
		}
	}
	out := make(assignment, len(sorted))
	for i, m := range sorted {
		out[m.id] = cur[i]
	}
	return out.sort()
}

// movable picks which of member d's partitions to hand to a member
// subscribed to topics: preferably one d did not own before this
// rebalance (moving it revokes nothing), else, unless free, its last. -1 if
// none fits.
func movable(parts []TopicPartition, d int, topics map[string]bool, kept map[TopicPartition]int, free bool) int {
	fallback := -1
	for k := len(parts) - 1; k >= 0; k-- {
		if !topics[parts[k].Topic] {
			continue
		}
		if owner, ok := kept[parts[k]]; !ok || owner != d {
			return k
		}
		if fallback < 0 && !free {
			fallback = k
		}
	}
	return fallback
}

// assignCooperativeSticky is Kafka's CooperativeStickyAssignor: the sticky
// assignment, less every partition that changes owner (KIP-429). Such a
// partition is revoked by its owner in this rebalance and handed to its new
// owner in the next one, which the revoking member triggers by rejoining; so
// no partition is ever read by two members at once.
func assignCooperativeSticky(members []assignMember, partitions map[string]int32) assignment {
	target := assignSticky(members, partitions)
	owners := claims(sortedMembers(members))
	ids := sortedMembers(members)
	for id, tps := range target {
		target[id] = slices.DeleteFunc(tps, func(tp TopicPartition) bool {
			o := owners[tp]
			return len(o) > 0 && (len(o) > 1 || ids[o[0]].id != id)
		})
	}
	return target
}
