package kshape

import (
	"errors"
	"reflect"
	"testing"
	"time"

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
			w := walker{src: body, flexible: v >= sh.flexible}
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
