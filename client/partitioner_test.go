package client

import (
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The known outputs of Kafka's Utils.murmur2, from Kafka's own UtilsTest
// (clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java,
// testMurmur2), so a mismatch here is a mismatch with the Java client.
func TestMurmur2MatchesKafkaUtilsTest(t *testing.T) {
	cases := []struct {
		in   []byte
		want int32
	}{
		{[]byte("21"), -973932308},
		{[]byte("foobar"), -790332482},
		{[]byte("a-little-bit-long-string"), -985981536},
		{[]byte("a-little-bit-longer-string"), -1486304829},
		{[]byte("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971},
		{[]byte{'a', 'b', 'c'}, 479470107},
	}
	for _, c := range cases {
		if got := murmur2(c.in); got != c.want {
			t.Errorf("murmur2(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

// Key -> partition for 3, 10 and 100 partitions, as the Java client computes
// Utils.toPositive(Utils.murmur2(key)) % numPartitions. The table was
// produced by running Kafka's Utils.murmur2 (transcribed verbatim into a Java
// class, run on OpenJDK 17) over the UTF-8 bytes of each key; it covers every
// tail length (0-3 bytes past a 4-byte word), multi-byte UTF-8, and bytes with
// the high bit set, where a sign-extension bug would show.
func TestKeyPartitionMatchesJavaClient(t *testing.T) {
	cases := []struct {
		key           string
		hash          int32
		p3, p10, p100 int32
	}{
		{"", 275646681, 0, 1, 81},
		{"a", -1563381124, 1, 4, 24},
		{"hello", 2132663229, 0, 9, 29},
		{"key-1", 193331640, 0, 0, 40},
		{"key-2", 852269702, 2, 2, 2},
		{"key-3", -1839136101, 2, 7, 47},
		{"key-42", -187086521, 0, 7, 27},
		{"user-1000", -1612455601, 1, 7, 47},
		{"21", -973932308, 0, 0, 40},
		{"foobar", -790332482, 0, 6, 66},
		{"été", -2101193575, 1, 3, 73},
		{"a-little-bit-long-string", -985981536, 2, 2, 12},
		{"\xff\x80\x7f\x00\xfe", -1958495739, 2, 9, 9},
	}
	for _, c := range cases {
		k := []byte(c.key)
		if got := murmur2(k); got != c.hash {
			t.Errorf("murmur2(%q) = %d, want %d", c.key, got, c.hash)
		}
		for _, pc := range []struct{ n, want int32 }{{3, c.p3}, {10, c.p10}, {100, c.p100}} {
			if got := KeyPartition(k, pc.n); got != pc.want {
				t.Errorf("KeyPartition(%q, %d) = %d, want %d", c.key, pc.n, got, pc.want)
			}
		}
	}
}

// franz-go's key partitioner is an independent implementation of the same
// Java rule: random keys must land on the same partitions.
func TestKeyPartitionAgreesWithFranzGo(t *testing.T) {
	part := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 10000 {
		key := make([]byte, rng.IntN(40))
		for j := range key {
			key[j] = byte(rng.Uint32())
		}
		n := 1 + rng.IntN(200)
		want := part.Partition(&kgo.Record{Key: key}, n)
		if got := KeyPartition(key, int32(n)); int(got) != want {
			t.Fatalf("case %d: KeyPartition(%x, %d) = %d, franz-go says %d", i, key, n, got, want)
		}
	}
}

// The sticky partitioner stays on a partition until told its batch closed,
// then moves to a different writable partition.
func TestStickyPartitionerMovesToAnotherWritablePartition(t *testing.T) {
	tm := &topicMeta{name: "t", parts: make([]partMeta, 4), writable: []int32{0, 2, 3}}
	var s stickyPartitions
	if s.current("t") != -1 {
		t.Fatal("a sticky partition before the first pick")
	}
	p := s.next("t", -1, tm)
	for range 100 {
		if s.current("t") != p {
			t.Fatal("sticky partition changed by itself")
		}
		q := s.next("t", p, tm)
		if q == p || q == 1 {
			t.Fatalf("moved from %d to %d; want another writable partition", p, q)
		}
		// A caller that saw the old partition does not move it twice.
		if r := s.next("t", p, tm); r != q {
			t.Fatalf("a stale move went from %d to %d", q, r)
		}
		p = q
	}
	one := &topicMeta{name: "u", parts: make([]partMeta, 1), writable: []int32{0}}
	if p := s.next("u", 0, one); p != 0 {
		t.Fatalf("single-partition topic: %d", p)
	}
}

// With queue lengths known, the next sticky partition is drawn against long
// queues (KIP-794's adaptive partitioning): a partition with max(q)+1-q[i]
// weight. Partitions 1 and 2 have 9 batches queued and partition 0 none, so
// partition 0 has weight 10 and the others 1 each: it is drawn 10 times in
// 12 (the chance that it is drawn fewer than half of 600 times is below
// 1e-60). The previous partition is never drawn.
func TestStickyPartitionerAvoidsLongQueues(t *testing.T) {
	tm := &topicMeta{name: "t", parts: make([]partMeta, 4), writable: []int32{0, 1, 2}}
	s := stickyPartitions{queued: func(tps []TopicPartition, dst []int) []int {
		for _, tp := range tps {
			dst = append(dst, map[int32]int{0: 0, 1: 9, 2: 9, 3: 50}[tp.Partition])
		}
		return dst
	}}
	counts := map[int32]int{}
	prev := s.next("t", -1, tm)
	for range 600 {
		p := s.next("t", prev, tm)
		if p == prev || p == 3 {
			t.Fatalf("moved from %d to %d; want another writable partition", prev, p)
		}
		counts[p]++
		// Move back off partition 0 so that it can be drawn again.
		if p == 0 {
			prev = s.next("t", 0, tm)
		} else {
			prev = p
		}
	}
	if counts[0] < 300 {
		t.Fatalf("partition 0 (no queue) drawn %d times, partitions 1 and 2 (9 batches each) %d and %d",
			counts[0], counts[1], counts[2])
	}
}
