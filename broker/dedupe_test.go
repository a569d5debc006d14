package broker

import (
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDedupeFetch: a partition named twice keeps its last entry in its
// first place, across topic entries too, by name before v13 and by id
// from it, with few partitions (pairwise check) and many (map).
func TestDedupeFetch(t *testing.T) {
	// entry is "topic:partition@offset"; a request lists topic entries.
	build := func(version int16, topics ...[]string) *kmsg.FetchRequest {
		req := kmsg.NewPtrFetchRequest()
		req.Version = version
		for _, entries := range topics {
			rt := kmsg.NewFetchRequestTopic()
			for _, e := range entries {
				var name string
				var p int32
				var off int64
				if _, err := fmt.Sscanf(e, "%1s:%d@%d", &name, &p, &off); err != nil {
					t.Fatal(err)
				}
				rt.Topic, rt.TopicID = name, [16]byte{name[0]}
				rp := kmsg.NewFetchRequestTopicPartition()
				rp.Partition, rp.FetchOffset = p, off
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		}
		return req
	}
	show := func(req *kmsg.FetchRequest) [][]string {
		var out [][]string
		for _, rt := range req.Topics {
			var entries []string
			for _, rp := range rt.Partitions {
				entries = append(entries, fmt.Sprintf("%s:%d@%d", rt.Topic, rp.Partition, rp.FetchOffset))
			}
			out = append(out, entries)
		}
		return out
	}
	many := func(dup bool) []string {
		var entries []string
		for p := range 100 {
			entries = append(entries, fmt.Sprintf("a:%d@0", p))
		}
		if dup {
			entries = append(entries, "a:7@9")
		}
		return entries
	}
	for _, tc := range []struct {
		name    string
		version int16
		in      [][]string
		want    [][]string
	}{
		{"no duplicates", 12, [][]string{{"a:0@1", "a:1@1"}, {"b:0@1"}}, [][]string{{"a:0@1", "a:1@1"}, {"b:0@1"}}},
		{"twice in one entry", 12, [][]string{{"a:0@1", "a:1@1", "a:0@5"}}, [][]string{{"a:0@5", "a:1@1"}}},
		{"twice across entries", 12, [][]string{{"a:0@1"}, {"b:0@1"}, {"a:0@5", "a:2@1"}}, [][]string{{"a:0@5"}, {"b:0@1"}, {"a:2@1"}}},
		{"an entry left empty", 13, [][]string{{"a:0@1"}, {"a:0@5"}}, [][]string{{"a:0@5"}}},
		{"many, no duplicates", 12, [][]string{many(false)}, [][]string{many(false)}},
		{"many, one twice", 12, [][]string{many(true)}, [][]string{slices.Replace(many(false), 7, 8, "a:7@9")}},
	} {
		req := build(tc.version, tc.in...)
		dedupeFetch(req)
		if got := show(req); !slices.EqualFunc(got, tc.want, slices.Equal) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestDedupeFetchAllocs: a fetch of a few distinct partitions, as every
// consumer sends, is checked without allocating.
func TestDedupeFetchAllocs(t *testing.T) {
	req := kmsg.NewPtrFetchRequest()
	req.Version = 12
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "t"
	for p := range int32(16) {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	if allocs := testing.AllocsPerRun(100, func() { dedupeFetch(req) }); allocs != 0 {
		t.Fatalf("dedupeFetch of 16 distinct partitions allocates %.1f times", allocs)
	}
}

// TestDedupeProduce: a topic named in two entries is merged into the
// first; a partition named twice keeps its last batch in its first place;
// a request without repeats is left alone, without allocating.
func TestDedupeProduce(t *testing.T) {
	part := func(p int32, records string) kmsg.ProduceRequestTopicPartition {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = p, []byte(records)
		return rp
	}
	topic := func(name string, ps ...kmsg.ProduceRequestTopicPartition) kmsg.ProduceRequestTopic {
		return kmsg.ProduceRequestTopic{Topic: name, Partitions: ps}
	}
	show := func(req *kmsg.ProduceRequest) string {
		out := ""
		for _, rt := range req.Topics {
			out += rt.Topic + ":"
			for _, rp := range rt.Partitions {
				out += fmt.Sprintf(" %d=%s", rp.Partition, rp.Records)
			}
			out += ";"
		}
		return out
	}
	many := make([]kmsg.ProduceRequestTopicPartition, 0, 101)
	for p := range int32(100) {
		many = append(many, part(p, "x"))
	}
	for _, tc := range []struct {
		name string
		in   []kmsg.ProduceRequestTopic
		want string
	}{
		{"no repeats", []kmsg.ProduceRequestTopic{topic("a", part(0, "x"), part(1, "y")), topic("b", part(0, "z"))}, "a: 0=x 1=y;b: 0=z;"},
		{"a partition twice", []kmsg.ProduceRequestTopic{topic("a", part(0, "x"), part(1, "y"), part(0, "z"))}, "a: 0=z 1=y;"},
		{"a topic twice", []kmsg.ProduceRequestTopic{topic("a", part(0, "x")), topic("b", part(0, "y")), topic("a", part(1, "z"), part(0, "w"))}, "a: 0=w 1=z;b: 0=y;"},
		{"many partitions, one twice", []kmsg.ProduceRequestTopic{topic("a", append(slices.Clone(many), part(7, "q"))...)}, ""},
	} {
		req := kmsg.NewPtrProduceRequest()
		req.Topics = tc.in
		dedupeProduce(req)
		got := show(req)
		if tc.want == "" {
			if n := len(req.Topics[0].Partitions); n != 100 || string(req.Topics[0].Partitions[7].Records) != "q" {
				t.Errorf("%s: %d partitions, partition 7 %q", tc.name, n, req.Topics[0].Partitions[7].Records)
			}
			continue
		}
		if got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	req := kmsg.NewPtrProduceRequest()
	req.Topics = []kmsg.ProduceRequestTopic{topic("a", many[:16]...), topic("b", many[:16]...)}
	if allocs := testing.AllocsPerRun(100, func() { dedupeProduce(req) }); allocs != 0 {
		t.Fatalf("dedupeProduce of a request without repeats allocates %.1f times", allocs)
	}
}
