package kshape

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestShapesMatchKmsg: every layout walks, to its last byte, what kmsg
// encodes for a request of that API with every field set (each array two
// elements long, each struct carrying an unknown tag), at every version the
// layout declares; and with one byte fewer, it fails. A field missing from a
// layout, or present in the wrong versions, leaves bytes over or runs out.
func TestShapesMatchKmsg(t *testing.T) {
	for key, sh := range shapes {
		for v := sh.min; v <= sh.max; v++ {
			req := kmsg.RequestForKey(key)
			fill(reflect.ValueOf(req).Elem(), 99, []byte{1, 2, 3})
			req.SetVersion(v)
			body := req.AppendTo(nil)
			name := kmsg.NameForKey(key)
			w := newWalker(body, v >= sh.flexible)
			w.run(programs[key][v-sh.min])
			if w.err != nil || len(w.src) != 0 {
				t.Errorf("%s v%d: %v, %d of %d bytes left over", name, v, w.err, len(w.src), len(body))
				continue
			}
			if len(body) == 0 {
				continue // ListGroups before v3: nothing to cut
			}
			if err := Check(key, v, body[:len(body)-1]); !errors.Is(err, ErrMalformed) {
				t.Errorf("%s v%d cut one byte short: %v, want ErrMalformed", name, v, err)
			}
			if err := req.ReadFrom(body); err != nil {
				t.Errorf("%s v%d: kmsg does not decode its own encoding: %v", name, v, err)
			}
		}
	}
}

// fill sets every field of a kmsg request struct to a value that is
// encoded: numbers and strings non-zero, two elements in every array, and
// on every struct an unknown tag of the given key and value.
func fill(v reflect.Value, tag uint32, value []byte) {
	switch v.Kind() {
	case reflect.Struct:
		if tags, ok := v.Addr().Interface().(*kmsg.Tags); ok {
			tags.Set(tag, value)
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).Name == "Version" {
				continue
			}
			fill(v.Field(i), tag, value)
		}
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(3)
	case reflect.String:
		v.SetString("ab")
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), tag, value)
	case reflect.Array:
		for i := range v.Len() {
			fill(v.Index(i), tag, value)
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(v.Index(i), tag, value)
		}
	case reflect.Uint8:
		v.SetUint(7)
	}
}

// TestTagBombsFailFast: a tag count the bytes cannot hold fails at once,
// wherever the tag section is: the request header's, a request's own, an
// array element's. kmsg alone would count to it (about 90 s for 2^32-1).
func TestTagBombsFailFast(t *testing.T) {
	bomb := []byte{0xff, 0xff, 0xff, 0xff, 0x0f} // 2^32-1
	if _, err := SkipTags(bomb); !errors.Is(err, ErrMalformed) {
		t.Errorf("header tags: %v", err)
	}
	// ApiVersions v3: two compact strings, then the request's tags.
	if err := Check(kmsg.ApiVersions.Int16(), 3, append([]byte{1, 1}, bomb...)); !errors.Is(err, ErrMalformed) {
		t.Errorf("request tags: %v", err)
	}
	// DescribeGroups v5: one group, then the request's tags... and
	// Metadata v12: one topic (uuid, name) whose own tags are the bomb.
	md := append([]byte{2}, make([]byte, 16)...)
	md = append(md, 2, 't')
	if err := Check(kmsg.Metadata.Int16(), 12, append(md, bomb...)); !errors.Is(err, ErrMalformed) {
		t.Errorf("array element tags: %v", err)
	}
	// An array count the bytes cannot hold.
	if err := Check(kmsg.DescribeGroups.Int16(), 5, []byte{0xff, 0xff, 0xff, 0xff, 0x07}); !errors.Is(err, ErrMalformed) {
		t.Errorf("array count: %v", err)
	}
}

// TestKnownTagsCannotStallKmsg: kmsg decodes a tag it knows by its
// layout, and a struct-valued one ends in a tag section whose count it
// trusts. In every struct of every flexible layout, for every tag key kmsg
// might know (0-3), a value of some fixed bytes followed by a tag count of
// 2^32-1 is either refused by Check or decoded by kmsg at once. Waiting for
// the decode is bounded: kmsg would take over a minute.
func TestKnownTagsCannotStallKmsg(t *testing.T) {
	bomb := []byte{0xff, 0xff, 0xff, 0xff, 0x0f}
	for key, sh := range shapes {
		for v := max(sh.min, sh.flexible); v <= sh.max; v++ {
			for tag := uint32(0); tag < 4; tag++ {
				for fixed := range 17 {
					value := append(make([]byte, fixed), bomb...)
					req := kmsg.RequestForKey(key)
					fill(reflect.ValueOf(req).Elem(), tag, value)
					req.SetVersion(v)
					body := req.AppendTo(nil)
					if Check(key, v, body) != nil {
						continue
					}
					decoded := make(chan struct{})
					go func() {
						defer close(decoded)
						dec := kmsg.RequestForKey(key)
						dec.SetVersion(v)
						dec.ReadFrom(body)
					}()
					select {
					case <-decoded:
					case <-time.After(10 * time.Second):
						t.Fatalf("%s v%d, tag %d holding %d bytes and a tag count of 2^32-1: Check passed it, and kmsg is still decoding it after 10 s",
							kmsg.NameForKey(key), v, tag, fixed)
					}
				}
			}
		}
	}
}

// TestCheckVersions: a version outside a layout is refused, not walked with
// the wrong layout.
func TestCheckVersions(t *testing.T) {
	if err := Check(kmsg.Produce.Int16(), 2, nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("Produce v2: %v", err)
	}
	if err := Check(kmsg.SASLHandshake.Int16(), 0, nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("an API without a layout: %v", err)
	}
	if !Covers(kmsg.Fetch.Int16(), 4, 13) || Covers(kmsg.Fetch.Int16(), 4, 14) {
		t.Error("Covers does not match Fetch's layout, v4 to v13")
	}
}

func FuzzCheck(f *testing.F) {
	for key, sh := range shapes {
		req := kmsg.RequestForKey(key)
		fill(reflect.ValueOf(req).Elem(), 99, []byte{1, 2, 3})
		req.SetVersion(sh.max)
		f.Add(key, sh.max, req.AppendTo(nil))
	}
	f.Fuzz(func(t *testing.T, key, version int16, body []byte) {
		err := Check(key, version, body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("an error not wrapping ErrMalformed: %v", err)
			}
			return
		}
		// What passes the walk, kmsg decodes in time proportional to it.
		req := kmsg.RequestForKey(key)
		req.SetVersion(version)
		req.ReadFrom(body)
	})
}

// BenchmarkCheck: the walk against kmsg's decoding of the same body, the
// work it guards, for a Produce request of 16 partitions' 64 KiB batches
// (the walk skips records unread) and a Fetch of 1,000 partitions (it
// visits every field).
func BenchmarkCheck(b *testing.B) {
	produce := kmsg.NewPtrProduceRequest()
	produce.Version = 9
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "topic"
	for p := range int32(16) {
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Partition, pp.Records = p, make([]byte, 64<<10)
		pt.Partitions = append(pt.Partitions, pp)
	}
	produce.Topics = append(produce.Topics, pt)
	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version = 13
	for t := range 10 {
		ft := kmsg.NewFetchRequestTopic()
		ft.TopicID[0] = byte(t)
		for p := range int32(100) {
			fp := kmsg.NewFetchRequestTopicPartition()
			fp.Partition = p
			ft.Partitions = append(ft.Partitions, fp)
		}
		fetch.Topics = append(fetch.Topics, ft)
	}
	for _, req := range []kmsg.Request{produce, fetch} {
		body := req.AppendTo(nil)
		name := kmsg.NameForKey(req.Key())
		b.Run("req="+name+"/op=check", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := Check(req.Key(), req.GetVersion(), body); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("req="+name+"/op=kmsg-decode", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				r := kmsg.RequestForKey(req.Key())
				r.SetVersion(req.GetVersion())
				if err := r.ReadFrom(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func skipUnderRace(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's build allocates more than kmsg does")
	}
}

// allocs is what kmsg allocates decoding body, a request of key at
// version: runtime.MemStats' TotalAlloc counts every byte, sampled or not.
func allocs(key, version int16, body []byte) int64 {
	var before, after runtime.MemStats
	runtime.GC() // flushes the per-P caches, whose spans count as allocated when taken
	runtime.ReadMemStats(&before)
	req := kmsg.RequestForKey(key)
	req.SetVersion(version)
	req.ReadFrom(body)
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(req)
	return int64(after.TotalAlloc - before.TotalAlloc)
}

// minimal writes the cheapest body a layout allows, per byte, for one of
// its arrays (target): n elements as small as their fields let them be
// (empty strings, bytes and arrays, which kmsg decodes into values as large
// as any, and zeros), each with an unknown tag of no bytes if tagged; one
// element in each array holding target, every other array empty.
type minimal struct {
	flexible bool
	target   *step
	n        int
	tagged   bool
}

func (m minimal) body(dst []byte, prog []step, inTarget bool) []byte {
	for i := range prog {
		s := &prog[i]
		switch s.op {
		case opFixed:
			dst = append(dst, make([]byte, s.fixed)...)
		case opString, opBytes:
			switch {
			case m.flexible:
				dst = append(dst, 1)
			case s.op == opString:
				dst = append(dst, 0, 0)
			default:
				dst = append(dst, 0, 0, 0, 0)
			}
		case opArray:
			n := 0
			if s == m.target {
				n = m.n
			} else if holds(s.elem, m.target) {
				n = 1
			}
			if m.flexible {
				dst = kbin.AppendUvarint(dst, uint32(n+1))
			} else {
				dst = kbin.AppendInt32(dst, int32(n))
			}
			for range n {
				dst = m.body(dst, s.elem, s == m.target)
			}
		case opTags:
			if inTarget && m.tagged {
				dst = append(dst, 1, 99, 0) // one tag, key 99, no bytes
			} else {
				dst = append(dst, 0)
			}
		}
	}
	return dst
}

func holds(prog []step, target *step) bool {
	for i := range prog {
		if &prog[i] == target || prog[i].op == opArray && holds(prog[i].elem, target) {
			return true
		}
	}
	return false
}

func arraysOf(prog []step) []*step {
	var out []*step
	for i := range prog {
		if prog[i].op == opArray {
			out = append(out, &prog[i])
			out = append(out, arraysOf(prog[i].elem)...)
		}
	}
	return out
}

// cost is what the walk charges for body, without a budget.
func cost(t *testing.T, prog []step, body []byte, flexible bool) int64 {
	t.Helper()
	w := newWalker(body, flexible)
	w.budget = math.MaxInt64
	w.run(prog)
	if w.err != nil || len(w.src) != 0 {
		t.Fatalf("the walk did not take the test's body: %v, %d bytes left", w.err, len(w.src))
	}
	return w.cost
}

// TestElementCostsCoverKmsg: for each array of each layout, the walk
// charges at least what kmsg allocates for an element, with or without an
// unknown tag, measured on the elements kmsg allocates the most for per
// byte (minimal). A kmsg whose structs grow past the estimates (elemCost)
// fails here.
func TestElementCostsCoverKmsg(t *testing.T) {
	skipUnderRace(t)
	const n = 10000
	seen := map[string]bool{} // kmsg's types are the same at every version: each element's bytes once
	for key, sh := range shapes {
		for v := sh.min; v <= sh.max; v++ {
			prog := programs[key][v-sh.min]
			flexible := v >= sh.flexible
			for _, arr := range arraysOf(prog) {
				for _, tagged := range []bool{false, true} {
					m := minimal{flexible: flexible, target: arr, n: 1, tagged: tagged}
					one := m.body(nil, prog, false)
					id := fmt.Sprintf("%d %s %x", key, arr.name, one)
					if seen[id] {
						continue
					}
					seen[id] = true
					m.n = 0
					none := m.body(nil, prog, false)
					m.n = n
					many := m.body(nil, prog, false)
					charged := float64(cost(t, prog, many, flexible)-cost(t, prog, none, flexible)) / n
					// The slice's allocation is rounded up to its size
					// class or page: at most a byte an element here.
					got := float64(allocs(key, v, many)-allocs(key, v, none))/n - 1
					if got > charged {
						t.Errorf("%s v%d %s (tagged %v): kmsg allocates %.1f bytes an element, the walk charges %.1f",
							kmsg.NameForKey(key), v, arr.name, tagged, got+1, charged)
					}
				}
			}
		}
	}
}

// TestTagSectionCostsCoverKmsg: a tag section of k distinct unknown tags
// makes kmsg a map of k entries; the walk charges at least what that
// allocates, as the map grows.
func TestTagSectionCostsCoverKmsg(t *testing.T) {
	skipUnderRace(t)
	key := kmsg.ApiVersions.Int16() // v3: two compact strings, then its tags
	prog := programs[key][3]
	body := func(k int) []byte {
		b := kbin.AppendUvarint([]byte{1, 1}, uint32(k))
		for i := range k {
			b = kbin.AppendUvarint(b, uint32(100+i))
			b = append(b, 0)
		}
		return b
	}
	base, baseCost := allocs(key, 3, body(0)), cost(t, prog, body(0), true)
	for k := 1; k < 20000; k += k/8 + 1 {
		got, charged := allocs(key, 3, body(k))-base, cost(t, prog, body(k), true)-baseCost
		if got > charged {
			t.Errorf("%d tags: kmsg allocates %d bytes, the walk charges %d", k, got, charged)
		}
	}
}

// TestDecodeAllocationsAreBounded: what the package promises. A body that
// passes Check makes kmsg allocate at most 20 times its size and 64 KiB.
// The bodies that made it allocate up to 90 times their size (arrays of
// tiny elements, each with an empty unknown tag) are refused, and so are a
// tag section of many distinct tags (40 times) and an array of empty
// nullable strings (24 times). Each body is a megabyte or more, so the 64
// KiB are small beside it.
func TestDecodeAllocationsAreBounded(t *testing.T) {
	skipUnderRace(t)
	const n = 1 << 18
	leaveGroup := []byte{1} // v5: group "", then n members: "", null, null, one tag
	leaveGroup = kbin.AppendUvarint(leaveGroup, n+1)
	for range n {
		leaveGroup = append(leaveGroup, 1, 0, 0, 1, 9, 0)
	}
	leaveGroup = append(leaveGroup, 0)
	offsetFetch := kbin.AppendUvarint(nil, n+1) // v8: n groups: "", topics null, one tag
	for range n {
		offsetFetch = append(offsetFetch, 1, 0, 1, 9, 0)
	}
	offsetFetch = append(offsetFetch, 0, 0)
	createPartitions := []byte{2, 1, 0, 0, 0, 1} // v3: one topic "a", count 1, n assignments: [], one tag
	createPartitions = kbin.AppendUvarint(createPartitions, n+1)
	for range n {
		createPartitions = append(createPartitions, 1, 1, 9, 0)
	}
	createPartitions = append(createPartitions, 0, 0, 0, 0, 0, 0, 0)
	describeGroups := kbin.AppendUvarint(nil, 4*n+1) // v5: 4n groups named ""
	describeGroups = append(describeGroups, make([]byte, 4*n)...)
	for i := range 4 * n {
		describeGroups[len(describeGroups)-4*n+i] = 1
	}
	describeGroups = append(describeGroups, 0, 0)
	metadata := kbin.AppendInt32(nil, 4*n) // v4: 4n topics named "", no tags at all
	metadata = append(metadata, make([]byte, 2*4*n+1)...)
	apiVersions := kbin.AppendUvarint([]byte{1, 1}, n) // v3: one section of n distinct tags
	for i := range n {
		apiVersions = kbin.AppendUvarint(apiVersions, uint32(100+i))
		apiVersions = append(apiVersions, 0)
	}
	for _, c := range []struct {
		key, version int16
		body         []byte
		refused      bool
	}{
		{kmsg.LeaveGroup.Int16(), 5, leaveGroup, true},
		{kmsg.OffsetFetch.Int16(), 8, offsetFetch, true},
		{kmsg.CreatePartitions.Int16(), 3, createPartitions, true},
		{kmsg.DescribeGroups.Int16(), 5, describeGroups, false},
		{kmsg.Metadata.Int16(), 4, metadata, true},
		{kmsg.ApiVersions.Int16(), 3, apiVersions, true},
	} {
		name := fmt.Sprintf("%s v%d", kmsg.NameForKey(c.key), c.version)
		got := allocs(c.key, c.version, c.body)
		ratio := float64(got) / float64(len(c.body))
		err := Check(c.key, c.version, c.body)
		t.Logf("%s, %d bytes: kmsg allocates %.1f times them; Check: %v", name, len(c.body), ratio, err)
		if err == nil && got > 20*int64(len(c.body))+64<<10 {
			t.Errorf("%s of %d bytes passes Check and makes kmsg allocate %d bytes, %.1f times them", name, len(c.body), got, ratio)
		}
		if c.refused && err == nil {
			t.Errorf("%s of %d bytes, %.1f times them allocated, passes Check", name, len(c.body), ratio)
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: an error not wrapping ErrMalformed: %v", name, err)
		}
	}
}
