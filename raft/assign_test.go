package raft

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"gregor/internal/testseed"
)

// assignBrokers makes n brokers with ids 3i+1 (so that ids are not
// positions); racks[i] is broker i's rack, "" for none.
func assignBrokers(n int, racks func(i int) string) []*BrokerImage {
	bs := make([]*BrokerImage, n)
	for i := range bs {
		bs[i] = &BrokerImage{ID: int32(3*i + 1)}
		if racks != nil {
			bs[i].Rack = racks(i)
		}
	}
	return bs
}

// assignFacts is what checkAssignment learned about one assignment.
type assignFacts struct {
	replicas, leaders map[int32]int
}

func (f assignFacts) spread(brokers []*BrokerImage, m map[int32]int) int {
	lo, hi := -1, 0
	for _, b := range brokers {
		c := m[b.ID]
		if lo < 0 || c < lo {
			lo = c
		}
		hi = max(hi, c)
	}
	return hi - lo
}

// checkAssignment checks the properties every assignment has: the right
// shape, distinct known brokers per partition, leaders round-robin within
// one, and each partition's replicas spread over racks as evenly as the
// racks allow (no rack holds two more than another that still has a
// broker to spare).
func checkAssignment(t *testing.T, name string, brokers []*BrokerImage, got [][]int32, partitions, rf int) (assignFacts, bool) {
	t.Helper()
	fail := func(format string, args ...any) (assignFacts, bool) {
		t.Errorf("%s: "+format+"\nassignment: %v", append(append([]any{name}, args...), got)...)
		return assignFacts{}, false
	}
	rackOf := map[int32]string{}
	rackSize := map[string]int{}
	for _, b := range brokers {
		rackOf[b.ID] = b.Rack
		rackSize[b.Rack]++
	}
	if len(got) != partitions {
		return fail("%d partitions, want %d", len(got), partitions)
	}
	f := assignFacts{replicas: map[int32]int{}, leaders: map[int32]int{}}
	for k, rs := range got {
		if len(rs) != rf {
			return fail("partition %d has %d replicas, want %d", k, len(rs), rf)
		}
		inRack := map[string]int{}
		for i, id := range rs {
			if _, ok := rackOf[id]; !ok {
				return fail("partition %d: unknown broker %d", k, id)
			}
			if slices.Contains(rs[:i], id) {
				return fail("partition %d lists broker %d twice", k, id)
			}
			inRack[rackOf[id]]++
			f.replicas[id]++
		}
		f.leaders[rs[0]]++
		for r1 := range rackSize {
			for r2 := range rackSize {
				if inRack[r1] > inRack[r2]+1 && inRack[r2] < rackSize[r2] {
					return fail("partition %d: %d replicas in rack %q but %d in rack %q", k, inRack[r1], r1, inRack[r2], r2)
				}
			}
		}
	}
	if s := f.spread(brokers, f.leaders); s > 1 {
		return fail("leader counts %v differ by %d", f.leaders, s)
	}
	return f, true
}

// TestAssignReplicasEvenExhaustive checks every small case without racks
// and with racks of equal sizes: replica and leader counts within one,
// racks spread exactly, the leader of position p at p mod n, and any call
// a continuation of the call from position 0.
func TestAssignReplicasEvenExhaustive(t *testing.T) {
	type cluster struct {
		name    string
		brokers []*BrokerImage
	}
	var clusters []cluster
	for n := 1; n <= 9; n++ {
		clusters = append(clusters, cluster{fmt.Sprintf("n=%d", n), assignBrokers(n, nil)})
	}
	for racks := 2; racks <= 4; racks++ {
		for per := 1; per <= 3; per++ {
			// Racks interleaved by id, so that the layout must regroup them.
			bs := assignBrokers(racks*per, func(i int) string { return fmt.Sprintf("r%d", (i*5)%racks) })
			clusters = append(clusters, cluster{fmt.Sprintf("racks=%dx%d", racks, per), bs})
		}
	}
	failures := 0
	for _, cl := range clusters {
		n := len(cl.brokers)
		for rf := 1; rf <= n; rf++ {
			for partitions := 0; partitions <= 2*n+3; partitions++ {
				for start := 0; start < 2*n; start++ {
					name := fmt.Sprintf("%s rf=%d partitions=%d start=%d", cl.name, rf, partitions, start)
					got, err := AssignReplicas(cl.brokers, partitions, rf, start)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					f, ok := checkAssignment(t, name, cl.brokers, got, partitions, rf)
					if ok {
						if s := f.spread(cl.brokers, f.replicas); s > 1 {
							t.Errorf("%s: replica counts %v differ by %d\nassignment: %v", name, f.replicas, s, got)
							ok = false
						}
						whole, _ := AssignReplicas(cl.brokers, start+partitions, rf, 0)
						if !slices.EqualFunc(whole[start:], got, slices.Equal) {
							t.Errorf("%s: not the continuation of the assignment from 0:\n%v\n%v", name, got, whole[start:])
							ok = false
						}
						l, _ := newPlacementLayout(cl.brokers)
						for k, rs := range got {
							if want := l.order[(start+k)%n].ID; rs[0] != want {
								t.Errorf("%s: partition %d led by %d, want %d", name, k, rs[0], want)
								ok = false
								break
							}
						}
					}
					if !ok {
						if failures++; failures > 5 {
							t.FailNow()
						}
					}
				}
			}
		}
	}
}

// TestAssignReplicasRandomized checks the properties over random clusters:
// random ids, racks of equal or unequal sizes or none, in random order.
// The result does not depend on the order brokers are passed in.
func TestAssignReplicasRandomized(t *testing.T) {
	seed := testseed.Seed(t)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for iter := range 3000 {
		n := 1 + rng.IntN(24)
		ids := rng.Perm(1000)[:n]
		brokers := make([]*BrokerImage, n)
		racks := 0
		switch rng.IntN(3) {
		case 1: // unequal racks
			racks = 1 + rng.IntN(5)
		case 2: // equal racks
			for _, r := range []int{5, 4, 3, 2} {
				if n%r == 0 {
					racks = r
					break
				}
			}
		}
		for i := range brokers {
			brokers[i] = &BrokerImage{ID: int32(ids[i])}
			switch {
			case racks == 0:
			case n%racks == 0 && rng.IntN(2) == 0:
				brokers[i].Rack = fmt.Sprintf("rack-%d", i%racks)
			default:
				brokers[i].Rack = fmt.Sprintf("rack-%d", rng.IntN(racks))
			}
		}
		rf := 1 + rng.IntN(n)
		partitions := rng.IntN(4*n + 1)
		start := rng.IntN(1000)
		name := fmt.Sprintf("iteration %d: %d brokers, rf=%d partitions=%d start=%d", iter, n, rf, partitions, start)
		got, err := AssignReplicas(brokers, partitions, rf, start)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		f, ok := checkAssignment(t, name, brokers, got, partitions, rf)
		if !ok {
			t.FailNow()
		}
		if l, _ := newPlacementLayout(brokers); l.evenRacks {
			if s := f.spread(brokers, f.replicas); s > 1 {
				t.Fatalf("%s: replica counts %v differ by %d", name, f.replicas, s)
			}
		}
		shuffled := slices.Clone(brokers)
		rng.Shuffle(n, func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		again, err := AssignReplicas(shuffled, partitions, rf, start)
		if err != nil || !slices.EqualFunc(got, again, slices.Equal) {
			t.Fatalf("%s: the order of the brokers changed the assignment:\n%v\n%v (%v)", name, got, again, err)
		}
	}
}

// TestAssignReplicasKafkaPartialRound is the case Kafka's placer leaves
// uneven: 2 partitions, replication factor 3, 5 brokers.
func TestAssignReplicasKafkaPartialRound(t *testing.T) {
	brokers := assignBrokers(5, nil)
	got, err := AssignReplicas(brokers, 2, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Kafka: [1 4 7] [4 7 10], giving 1, 2, 2, 1, 0 replicas; followers
	// at offsets 1 and 3 give 1, 2, 1, 1, 1.
	want := [][]int32{{1, 4, 10}, {4, 7, 13}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// TestAssignReplicasRackSpread shows racks at work: three racks of two,
// replication factor 2, three partitions (the case Kafka's alternating
// list cannot balance), and unequal racks where one rack has one broker.
func TestAssignReplicasRackSpread(t *testing.T) {
	even := []*BrokerImage{
		{ID: 1, Rack: "a"}, {ID: 2, Rack: "b"}, {ID: 3, Rack: "c"},
		{ID: 4, Rack: "a"}, {ID: 5, Rack: "b"}, {ID: 6, Rack: "c"},
	}
	got, err := AssignReplicas(even, 3, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Layout a: 1 4, b: 2 5, c: 3 6; followers 3 positions on.
	if want := [][]int32{{1, 5}, {4, 3}, {2, 6}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("even racks: got %v, want %v", got, want)
	}
	uneven := []*BrokerImage{
		{ID: 1, Rack: "a"}, {ID: 2, Rack: "a"}, {ID: 3, Rack: "a"}, {ID: 4, Rack: "b"}, {ID: 5, Rack: "b"}, {ID: 6, Rack: "c"},
	}
	got, err = AssignReplicas(uneven, 6, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	f, ok := checkAssignment(t, "uneven", uneven, got, 6, 3)
	if !ok {
		t.FailNow()
	}
	// Every partition needs a replica in rack c, which has one broker.
	if f.replicas[6] != 6 {
		t.Fatalf("broker 6, alone in rack c, holds %d replicas, want 6: %v", f.replicas[6], got)
	}
}

func TestAssignReplicasErrors(t *testing.T) {
	brokers := assignBrokers(3, nil)
	for _, tc := range []struct {
		brokers               []*BrokerImage
		partitions, rf, start int
		want                  *kerr.Error
	}{
		{brokers, 1, 0, 0, kerr.InvalidReplicationFactor},
		{brokers, 1, -1, 0, kerr.InvalidReplicationFactor},
		{brokers, 1, 4, 0, kerr.InvalidReplicationFactor},
		{nil, 1, 1, 0, kerr.InvalidReplicationFactor},
		{brokers, -1, 1, 0, kerr.InvalidPartitions},
		{brokers, maxAssignPartitions + 1, 1, 0, kerr.InvalidPartitions},
		{brokers, 1, 1, -1, kerr.InvalidRequest},
		{[]*BrokerImage{{ID: 1}, {ID: 1}}, 1, 1, 0, kerr.InvalidRequest},
		{[]*BrokerImage{{ID: 1}, nil}, 1, 1, 0, kerr.InvalidRequest},
	} {
		_, err := AssignReplicas(tc.brokers, tc.partitions, tc.rf, tc.start)
		if !errors.Is(err, tc.want) {
			t.Errorf("AssignReplicas(%d brokers, %d, %d, %d) = %v, want %s", len(tc.brokers), tc.partitions, tc.rf, tc.start, err, tc.want.Message)
		}
	}
	if got, err := AssignReplicas(brokers, 0, 3, 0); err != nil || len(got) != 0 {
		t.Errorf("no partitions: %v, %v", got, err)
	}
}
