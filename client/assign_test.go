package client

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	"gregor/internal/testseed"
)

// tps parses "t0p0 t1p2" into partitions.
func tps(s string) []TopicPartition {
	out := []TopicPartition{}
	for _, f := range strings.Fields(s) {
		i := strings.LastIndexByte(f, 'p')
		var p int32
		fmt.Sscan(f[i+1:], &p)
		out = append(out, TopicPartition{f[:i], p})
	}
	slices.SortFunc(out, compareTP)
	return out
}

func (a assignment) String() string {
	ids := make([]string, 0, len(a))
	for id := range a {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var b strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&b, "%s:", id)
		for _, tp := range a[id] {
			fmt.Fprintf(&b, " %sp%d", tp.Topic, tp.Partition)
		}
		b.WriteString("; ")
	}
	return b.String()
}

func member(id string, topics ...string) assignMember {
	return assignMember{id: id, topics: topics, generation: -1}
}

func owning(m assignMember, gen int32, owned string) assignMember {
	m.owned, m.generation = tps(owned), gen
	return m
}

// The examples in the Javadoc of Kafka's assignors, and the cases that pin
// down member order and cooperative handover.
func TestAssignorsTable(t *testing.T) {
	three := map[string]int32{"t0": 3, "t1": 3}
	unequal := map[string]int32{"t0": 1, "t1": 2, "t2": 3}
	four := map[string]int32{"t0": 2, "t1": 2, "t2": 2, "t3": 2}
	for _, tt := range []struct {
		name       string
		assign     func([]assignMember, map[string]int32) assignment
		members    []assignMember
		partitions map[string]int32
		want       map[string]string
	}{
		{"range: RangeAssignor Javadoc", assignRange,
			[]assignMember{member("C0", "t0", "t1"), member("C1", "t0", "t1")}, three,
			map[string]string{"C0": "t0p0 t0p1 t1p0 t1p1", "C1": "t0p2 t1p2"}},
		{"range: static members first, by instance id", assignRange,
			[]assignMember{member("a", "t0"), {id: "z", instanceID: "i0", topics: []string{"t0"}}}, map[string]int32{"t0": 3},
			map[string]string{"z": "t0p0 t0p1", "a": "t0p2"}},
		{"range: more members than partitions", assignRange,
			[]assignMember{member("C0", "t0"), member("C1", "t0"), member("C2", "t0")}, map[string]int32{"t0": 2},
			map[string]string{"C0": "t0p0", "C1": "t0p1", "C2": ""}},
		{"range: unknown topic", assignRange,
			[]assignMember{member("C0", "t0", "gone")}, map[string]int32{"t0": 1},
			map[string]string{"C0": "t0p0"}},
		{"roundrobin: RoundRobinAssignor Javadoc", assignRoundRobin,
			[]assignMember{member("C0", "t0", "t1"), member("C1", "t0", "t1")}, three,
			map[string]string{"C0": "t0p0 t0p2 t1p1", "C1": "t0p1 t1p0 t1p2"}},
		{"roundrobin: RoundRobinAssignor Javadoc, unequal subscriptions", assignRoundRobin,
			[]assignMember{member("C0", "t0"), member("C1", "t0", "t1"), member("C2", "t0", "t1", "t2")}, unequal,
			map[string]string{"C0": "t0p0", "C1": "t1p0", "C2": "t1p1 t2p0 t2p1 t2p2"}},
		{"cooperative-sticky: StickyAssignor Javadoc, first assignment", assignCooperativeSticky,
			[]assignMember{member("C0", "t0", "t1", "t2", "t3"), member("C1", "t0", "t1", "t2", "t3"), member("C2", "t0", "t1", "t2", "t3")}, four,
			map[string]string{"C0": "t0p0 t1p1 t3p0", "C1": "t0p1 t2p0 t3p1", "C2": "t1p0 t2p1"}},
		{"cooperative-sticky: StickyAssignor Javadoc, C1 leaves", assignCooperativeSticky,
			[]assignMember{owning(member("C0", "t0", "t1", "t2", "t3"), 1, "t0p0 t1p1 t3p0"), owning(member("C2", "t0", "t1", "t2", "t3"), 1, "t1p0 t2p1")}, four,
			map[string]string{"C0": "t0p0 t1p1 t2p0 t3p0", "C2": "t0p1 t1p0 t2p1 t3p1"}},
		{"cooperative-sticky: StickyAssignor Javadoc, unequal subscriptions", assignCooperativeSticky,
			[]assignMember{member("C0", "t0"), member("C1", "t0", "t1"), member("C2", "t0", "t1", "t2")}, unequal,
			map[string]string{"C0": "t0p0", "C1": "t1p0 t1p1", "C2": "t2p0 t2p1 t2p2"}},
		{"cooperative-sticky: StickyAssignor Javadoc, unequal subscriptions, C0 leaves", assignCooperativeSticky,
			[]assignMember{owning(member("C1", "t0", "t1"), 1, "t1p0 t1p1"), owning(member("C2", "t0", "t1", "t2"), 1, "t2p0 t2p1 t2p2")}, unequal,
			map[string]string{"C1": "t0p0 t1p0 t1p1", "C2": "t2p0 t2p1 t2p2"}},
		// KIP-429: a member joins a group whose only member owns all six
		// partitions. The owner keeps three and gives up three, which the
		// newcomer gets only in the next rebalance.
		{"cooperative-sticky: newcomer, first rebalance", assignCooperativeSticky,
			[]assignMember{owning(member("A", "t"), 1, "tp0 tp1 tp2 tp3 tp4 tp5"), member("B", "t")}, map[string]int32{"t": 6},
			map[string]string{"A": "tp0 tp1 tp2", "B": ""}},
		{"cooperative-sticky: newcomer, second rebalance", assignCooperativeSticky,
			[]assignMember{owning(member("A", "t"), 2, "tp0 tp1 tp2"), owning(member("B", "t"), 2, "")}, map[string]int32{"t": 6},
			map[string]string{"A": "tp0 tp1 tp2", "B": "tp3 tp4 tp5"}},
		// A claim from an older generation is stale: its member missed a
		// rebalance and the partition belongs to the newer claimant.
		{"cooperative-sticky: stale claim loses", assignCooperativeSticky,
			[]assignMember{owning(member("A", "t"), 3, "tp0"), owning(member("B", "t"), 2, "tp0 tp1")}, map[string]int32{"t": 2},
			map[string]string{"A": "tp0", "B": "tp1"}},
		// Two claims at one generation: no one keeps it, and it is withheld
		// until both have revoked it.
		{"cooperative-sticky: conflicting claims withhold", assignCooperativeSticky,
			[]assignMember{owning(member("A", "t"), 2, "tp0"), owning(member("B", "t"), 2, "tp0 tp1")}, map[string]int32{"t": 2},
			map[string]string{"A": "", "B": "tp1"}},
		// A partition of a topic its owner no longer subscribes to moves,
		// after the owner revokes it.
		{"cooperative-sticky: unsubscribed topic moves", assignCooperativeSticky,
			[]assignMember{owning(member("A", "u"), 1, "tp0"), member("B", "t"), member("C", "u")}, map[string]int32{"t": 1, "u": 2},
			map[string]string{"A": "up0", "B": "", "C": "up1"}},
		{"cooperative-sticky: shrunk topic", assignCooperativeSticky,
			[]assignMember{owning(member("A", "t"), 1, "tp0 tp5"), member("B", "t")}, map[string]int32{"t": 2},
			map[string]string{"A": "tp0", "B": "tp1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.assign(tt.members, tt.partitions)
			want := assignment{}
			for id, s := range tt.want {
				want[id] = tps(s)
			}
			if got.String() != want.String() {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func TestAssignorRegistry(t *testing.T) {
	for name, a := range assignors {
		if a.name != name {
			t.Errorf("%s registered as %s", a.name, name)
		}
	}
	if !assignors["cooperative-sticky"].cooperative || assignors["range"].cooperative || assignors["roundrobin"].cooperative {
		t.Error("only cooperative-sticky supports the cooperative protocol")
	}
	if got := stickyUserData(7); len(got) != 4 || got[3] != 7 {
		t.Errorf("user data %v", got)
	}
}

// randomGroup builds a group as a rebalance finds it: topics, members with
// subscriptions (identical ones when uniform), owning what a previous
// rebalance gave them, then churned: members gone, members new, topics
// grown or shrunk, a stale or conflicting claim now and then.
func randomGroup(rng *rand.Rand, uniform bool) ([]assignMember, map[string]int32) {
	partitions := map[string]int32{}
	var topics []string
	for i := range 1 + rng.IntN(4) {
		name := fmt.Sprintf("t%d", i)
		topics = append(topics, name)
		partitions[name] = int32(rng.IntN(13))
	}
	subscription := func() []string {
		if uniform {
			return topics
		}
		var s []string
		for _, t := range topics {
			if rng.IntN(2) == 0 {
				s = append(s, t)
			}
		}
		if len(s) == 0 {
			s = []string{topics[rng.IntN(len(topics))]}
		}
		return s
	}
	var members []assignMember
	for i := range 1 + rng.IntN(8) {
		m := assignMember{id: fmt.Sprintf("m%02d", rng.IntN(100)*100+i), topics: subscription(), generation: -1}
		if rng.IntN(4) == 0 {
			m.instanceID = fmt.Sprintf("i%d", i)
		}
		members = append(members, m)
	}
	// A previous generation's assignment, then churn.
	prev := assignSticky(members, partitions)
	gen := int32(1 + rng.IntN(5))
	for i := range members {
		members[i].owned, members[i].generation = prev[members[i].id], gen
	}
	rng.Shuffle(len(members), func(i, j int) { members[i], members[j] = members[j], members[i] })
	if len(members) > 1 && rng.IntN(2) == 0 {
		members = members[:1+rng.IntN(len(members)-1)]
	}
	for i := range rng.IntN(3) {
		members = append(members, assignMember{id: fmt.Sprintf("new%d", i), topics: subscription(), generation: -1})
	}
	for _, t := range topics {
		if rng.IntN(4) == 0 {
			partitions[t] = int32(rng.IntN(13))
		}
	}
	if !uniform && rng.IntN(3) == 0 {
		// A claim of another member's partition: stale or conflicting.
		a, b := &members[rng.IntN(len(members))], members[rng.IntN(len(members))]
		if len(b.owned) > 0 {
			a.owned = append(a.owned, b.owned[rng.IntN(len(b.owned))])
			a.generation = gen - int32(rng.IntN(2))
		}
	}
	return members, partitions
}

// checkComplete checks that a is a valid, complete assignment: every
// partition of every subscribed topic once, to a member subscribed to it.
func checkComplete(t *testing.T, members []assignMember, partitions map[string]int32, a assignment) {
	t.Helper()
	checkValid(t, members, partitions, a)
	n := 0
	for _, topic := range subscribedTopics(members, partitions) {
		n += int(partitions[topic])
	}
	got := 0
	for _, tps := range a {
		got += len(tps)
	}
	if got != n {
		t.Fatalf("%d of %d partitions assigned: %s", got, n, a)
	}
}

// checkValid checks that no partition is assigned twice, none that does not
// exist, and none to a member not subscribed to its topic.
func checkValid(t *testing.T, members []assignMember, partitions map[string]int32, a assignment) {
	t.Helper()
	if len(a) != len(members) {
		t.Fatalf("%d members assigned, %d in the group", len(a), len(members))
	}
	seen := map[TopicPartition]string{}
	for _, m := range members {
		tps, ok := a[m.id]
		if !ok {
			t.Fatalf("member %s has no assignment", m.id)
		}
		for _, tp := range tps {
			if prev, dup := seen[tp]; dup {
				t.Fatalf("%s assigned to %s and %s", tp, prev, m.id)
			}
			seen[tp] = m.id
			if !slices.Contains(m.topics, tp.Topic) || tp.Partition < 0 || tp.Partition >= partitions[tp.Topic] {
				t.Fatalf("%s assigned to %s, subscribed to %v (partitions %v)", tp, m.id, m.topics, partitions)
			}
		}
	}
}

// checkBalanced checks the balance Kafka's sticky assignor promises: no
// member could take a partition from another that has two or more
// partitions more (so with identical subscriptions, counts within one).
func checkBalanced(t *testing.T, members []assignMember, a assignment) {
	t.Helper()
	for _, r := range members {
		for _, d := range members {
			if len(a[d.id])-len(a[r.id]) < 2 {
				continue
			}
			for _, tp := range a[d.id] {
				if slices.Contains(r.topics, tp.Topic) {
					t.Fatalf("unbalanced: %s has %d, %s has %d and could take %s: %s", d.id, len(a[d.id]), r.id, len(a[r.id]), tp, a)
				}
			}
		}
	}
}

// validOwned is what m may keep: its claims that no one contests at the
// latest generation, of partitions that exist in topics it subscribes to.
func validOwned(members []assignMember, partitions map[string]int32, m assignMember) map[TopicPartition]bool {
	out := map[TopicPartition]bool{}
	sorted := sortedMembers(members)
	for tp, owners := range claims(sorted) {
		if len(owners) == 1 && sorted[owners[0]].id == m.id && slices.Contains(m.topics, tp.Topic) && tp.Partition < partitions[tp.Topic] {
			out[tp] = true
		}
	}
	return out
}

// TestAssignorsRandomized checks every assignor on random groups: each
// partition assigned exactly once to a subscriber, balance, and for
// cooperative-sticky, stickiness (with identical subscriptions, as few
// owned partitions move as balance allows) and the KIP-429 handover (what
// the first rebalance withholds, the second hands out, revoking nothing).
func TestAssignorsRandomized(t *testing.T) {
	seed := testseed.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 0))
	for iter := range 2000 {
		uniform := iter%2 == 0
		members, partitions := randomGroup(rng, uniform)
		t.Run("", func(t *testing.T) {
			t.Logf("iteration %d: partitions %v, members %+v", iter, partitions, members)

			rr := assignRoundRobin(members, partitions)
			checkComplete(t, members, partitions, rr)
			if uniform {
				checkBalanced(t, members, rr)
			}
			rg := assignRange(members, partitions)
			checkComplete(t, members, partitions, rg)
			for _, topic := range subscribedTopics(members, partitions) {
				lo, hi := int(partitions[topic]), 0
				for _, m := range members {
					if slices.Contains(m.topics, topic) {
						n := 0
						for _, tp := range rg[m.id] {
							if tp.Topic == topic {
								n++
							}
						}
						lo, hi = min(lo, n), max(hi, n)
					}
				}
				if hi-lo > 1 {
					t.Fatalf("range: topic %s counts from %d to %d: %s", topic, lo, hi, rg)
				}
			}

			target := assignSticky(members, partitions)
			checkComplete(t, members, partitions, target)
			checkBalanced(t, members, target)
			if uniform {
				// Every member keeps as much of what it owned as its
				// share allows, and the shares larger by one go to
				// those that owned most: the fewest moves balance allows.
				revoked, owned := 0, []int{}
				for _, m := range members {
					valid := validOwned(members, partitions, m)
					kept := 0
					for _, tp := range target[m.id] {
						if valid[tp] {
							kept++
						}
					}
					if want := min(len(valid), len(target[m.id])); kept != want {
						t.Fatalf("member %s kept %d of its %d partitions with %d assigned: %s", m.id, kept, len(valid), len(target[m.id]), target)
					}
					revoked += len(valid) - kept
					owned = append(owned, len(valid))
				}
				n := 0
				for _, tps := range target {
					n += len(tps)
				}
				slices.Sort(owned)
				slices.Reverse(owned)
				least := 0
				for i, o := range owned {
					share := n / len(members)
					if i < n%len(members) {
						share++
					}
					least += max(0, o-share)
				}
				if revoked != least {
					t.Fatalf("revoked %d partitions, balance needs only %d: %s", revoked, least, target)
				}
			}

			// KIP-429: the first rebalance hands out the target less what
			// changes owner; after the owners revoke that, the second
			// hands out everything without revoking anything.
			first := assignCooperativeSticky(members, partitions)
			checkValid(t, members, partitions, first)
			owners := claims(sortedMembers(members))
			for _, m := range members {
				for _, tp := range target[m.id] {
					moves := false
					for _, o := range owners[tp] {
						moves = moves || sortedMembers(members)[o].id != m.id
					}
					if slices.Contains(first[m.id], tp) == moves {
						t.Fatalf("%s to %s (claimed by %v): moves=%v, first %s, target %s", tp, m.id, owners[tp], moves, first, target)
					}
				}
				if len(first[m.id]) > len(target[m.id]) {
					t.Fatalf("first rebalance gives %s more than the target", m.id)
				}
			}
			// With identical subscriptions the second rebalance completes
			// the handover; with differing ones the local balance may
			// shift once more, so a few more rounds are allowed (Kafka's
			// assignor promises no bound there either). No round ever
			// revokes nothing while withholding something, or hands a
			// partition to a member while another still claims it.
			cur, a := slices.Clone(members), first
			for round := 2; ; round++ {
				for i := range cur {
					cur[i].owned, cur[i].generation = a[cur[i].id], int32(100+round)
				}
				a = assignCooperativeSticky(cur, partitions)
				checkValid(t, cur, partitions, a)
				revoked := 0
				for _, m := range cur {
					for _, tp := range m.owned {
						if !slices.Contains(a[m.id], tp) {
							revoked++
						}
					}
				}
				assigned, all := 0, 0
				for _, tps := range a {
					assigned += len(tps)
				}
				for _, topic := range subscribedTopics(cur, partitions) {
					all += int(partitions[topic])
				}
				if revoked == 0 {
					if assigned != all {
						t.Fatalf("round %d revokes nothing but assigns %d of %d partitions: %s", round, assigned, all, a)
					}
					checkBalanced(t, cur, a)
					break
				}
				if uniform {
					t.Fatalf("round %d revokes %d partitions with identical subscriptions: %s", round, revoked, a)
				}
				if round == 5 {
					t.Fatalf("no stable assignment after %d rebalances: %s", round, a)
				}
			}
		})
		if t.Failed() {
			break
		}
	}
}
