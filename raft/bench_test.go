package raft

import (
	"fmt"
	"testing"
)

// benchImage builds an image of brokers registered and unfenced, and topics
// with partitions of three replicas each.
func benchImage(b *testing.B, topics, partitions int) *Image {
	b.Helper()
	im := NewImage()
	var offset uint64
	apply := func(records ...Record) {
		offset++
		var err error
		if im, _, err = im.Apply(offset, 1, records); err != nil {
			b.Fatal(err)
		}
	}
	for id := int32(1); id <= 3; id++ {
		apply(registration(id))
		apply(&BrokerUnfenced{BrokerID: id, BrokerEpoch: int64(offset)})
	}
	for t := range topics {
		id := UUID{byte(t >> 8), byte(t), 0xbe}
		records := []Record{&Topic{Name: fmt.Sprintf("topic-%05d", t), ID: id}}
		for p := range partitions {
			records = append(records, &Partition{TopicID: id, Partition: int32(p), Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}, Leader: int32(p%3 + 1)})
		}
		apply(records...)
	}
	return im
}

// BenchmarkApplyPartitionChange measures applying one ISR change to an image
// of 1,000 topics x 10 partitions, next to rebuilding the whole image from its
// snapshot (what an image that is not copy-on-write would pay per change).
func BenchmarkApplyPartitionChange(b *testing.B) {
	im := benchImage(b, 1000, 10)
	tid := UUID{0, 7, 0xbe}
	change := []Record{&PartitionChange{TopicID: tid, Partition: 3, Leader: 1, ISR: []int32{1, 2}, LeaderEpoch: 0, PartitionEpoch: 1}}
	b.Run("impl=cow", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := im.Apply(im.Offset+1, im.Epoch, change); err != nil {
				b.Fatal(err)
			}
		}
	})
	snap := im.AppendSnapshot(nil)
	b.Run("impl=rebuild", func(b *testing.B) {
		b.SetBytes(int64(len(snap)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeSnapshot(snap); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkEntryCodec measures encoding and decoding the entry of a
// 100-partition CreateTopics (a Topic and 100 Partition records).
func BenchmarkEntryCodec(b *testing.B) {
	id := UUID{1, 2, 3}
	records := []Record{&Topic{Name: "orders", ID: id, Configs: []ConfigEntry{{"retention.ms", "86400000"}}}}
	for p := range 100 {
		records = append(records, &Partition{TopicID: id, Partition: int32(p), Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}, Leader: int32(p%3 + 1)})
	}
	data, err := EncodeEntry(nil, records)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("op=encode", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		buf := make([]byte, 0, len(data))
		for b.Loop() {
			if buf, err = EncodeEntry(buf[:0], records); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("op=decode", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeEntry(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
