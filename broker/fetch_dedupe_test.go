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
