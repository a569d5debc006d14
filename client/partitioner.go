package client

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// murmur2 is Kafka's Utils.murmur2: the 32-bit MurmurHash2 with Kafka's seed,
// reading the input as little-endian 4-byte words. Java computes in signed
// 32-bit ints with unsigned shifts (>>>), which is what uint32 arithmetic
// gives; the result is returned as Java's int.
func murmur2(data []byte) int32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	length := len(data)
	h := seed ^ uint32(length)
	n := length / 4
	for i := range n {
		i4 := i * 4
		k := uint32(data[i4]) | uint32(data[i4+1])<<8 | uint32(data[i4+2])<<16 | uint32(data[i4+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n*4:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// toPositive is Kafka's Utils.toPositive: clear the sign bit (not abs, which
// would overflow for MinInt32).
func toPositive(n int32) int32 { return n & 0x7fffffff }

// KeyPartition is the partition the Java client's default partitioner picks
// for a record with this key: Utils.toPositive(Utils.murmur2(key)) %
// numPartitions. Every client that follows Java's rule puts a key on the same
// partition, which is what lets producers in different languages share keyed
// topics.
func KeyPartition(key []byte, numPartitions int32) int32 {
	return toPositive(murmur2(key)) % numPartitions
}

// stickyPartitions remembers, per topic, the partition that records without a
// key currently go to (KIP-480): all of them go to one partition, making
// batches fill up, until that partition's batch is closed; then another is
// chosen. Compared with round-robin it makes fewer, fuller batches at low
// rates, which is why Kafka switched to it.
//
// The next partition is drawn at random, weighted against partitions whose
// batches queue up (KIP-794's adaptive partitioning): with q[i] batches
// waiting to be sent in partition i, its weight is max(q)+1-q[i]. Drawn
// uniformly, the queues of a producer that outruns its brokers random-walk
// apart, and since each partition's oldest batch is sent in turn, the records
// at the end of the longest queue wait several times longer than the rest.
type stickyPartitions struct {
	// queued, when set, appends to dst the number of batches waiting to be
	// sent for each of tps (the accumulator's queues).
	queued func(tps []TopicPartition, dst []int) []int

	mu     sync.Mutex
	topics map[string]int32
	tps    []TopicPartition // scratch for queued
	lens   []int
}

// current returns the topic's sticky partition, or -1 before the first pick.
func (s *stickyPartitions) current(topic string) int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.topics[topic]; ok {
		return p
	}
	return -1
}

// next moves the topic away from prev (if prev is still its sticky partition;
// a concurrent caller may have moved it already) and returns the new sticky
// partition: one of the writable partitions (those with a leader), weighted
// against long queues, other than prev when there is a choice; any partition
// at random if none is writable.
func (s *stickyPartitions) next(topic string, prev int32, t *topicMeta) int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.topics == nil {
		s.topics = make(map[string]int32)
	}
	if cur, ok := s.topics[topic]; ok && cur != prev && cur >= 0 && int(cur) < len(t.parts) {
		return cur
	}
	var p int32
	switch n := len(t.writable); {
	case n == 1:
		p = t.writable[0]
	case n > 1 && s.queued != nil:
		p = s.weightedLocked(topic, prev, t.writable)
	case n > 1:
		p = t.writable[rand.IntN(n)]
		for p == prev {
			p = t.writable[rand.IntN(n)]
		}
	case len(t.parts) == 1:
		p = 0
	default:
		p = int32(rand.IntN(len(t.parts)))
		for p == prev {
			p = int32(rand.IntN(len(t.parts)))
		}
	}
	s.topics[topic] = p
	return p
}

// roundRobin is the round_robin partitioner: each record to the next
// writable partition.
type roundRobin struct {
	mu     sync.Mutex
	topics map[string]*atomic.Uint32
}

func (r *roundRobin) next(topic string, t *topicMeta) int32 {
	r.mu.Lock()
	if r.topics == nil {
		r.topics = make(map[string]*atomic.Uint32)
	}
	c := r.topics[topic]
	if c == nil {
		c = new(atomic.Uint32)
		r.topics[topic] = c
	}
	r.mu.Unlock()
	n := c.Add(1) - 1
	if len(t.writable) > 0 {
		return t.writable[n%uint32(len(t.writable))]
	}
	return int32(n % uint32(len(t.parts)))
}

// weightedLocked draws one of parts other than prev, with weight
// max(q)+1-q[i] for a partition with q[i] queued batches.
func (s *stickyPartitions) weightedLocked(topic string, prev int32, parts []int32) int32 {
	s.tps = s.tps[:0]
	for _, p := range parts {
		s.tps = append(s.tps, TopicPartition{Topic: topic, Partition: p})
	}
	s.lens = s.queued(s.tps, s.lens[:0])
	most := 0
	for _, q := range s.lens {
		most = max(most, q)
	}
	total := 0
	for i, p := range parts {
		if p != prev {
			total += most + 1 - s.lens[i]
		}
	}
	r := rand.IntN(total)
	for i, p := range parts {
		if p == prev {
			continue
		}
		if r -= most + 1 - s.lens[i]; r < 0 {
			return p
		}
	}
	return parts[len(parts)-1] // not reached
}
