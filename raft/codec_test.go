package raft

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// codecSampleRecords has one record of every type, every field set.
func codecSampleRecords() []Record {
	tid := UUID{0x10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0xff}
	return []Record{
		&BrokerRegistered{BrokerID: 7, Incarnation: UUID{1, 2, 3}, Rack: "rack-a", Endpoints: []Endpoint{
			{Name: "PLAINTEXT", Host: "broker7.example", Port: 9092},
			{Name: "SSL", Host: "broker7.example", Port: 9093, SecurityProtocol: 1},
		}},
		&BrokerFenced{BrokerID: 7, BrokerEpoch: 1 << 40},
		&BrokerUnfenced{BrokerID: 0, BrokerEpoch: 3},
		&BrokerUnregistered{BrokerID: 2147483647, BrokerEpoch: 0},
		&Topic{Name: "orders.v1_x-y", ID: tid, Configs: []ConfigEntry{{"retention.ms", "1000"}, {"cleanup.policy", ""}}},
		&TopicRemoved{ID: tid},
		&Partition{TopicID: tid, Partition: 3, Replicas: []int32{3, 1, 2}, ISR: []int32{1, 3}, Leader: 3, LeaderEpoch: 4, PartitionEpoch: 9},
		&Partition{TopicID: tid, Partition: 0, Replicas: []int32{5}, Leader: NoLeader},
		&PartitionChange{TopicID: tid, Partition: 3, Leader: 1, ISR: []int32{1}, LeaderEpoch: 5, PartitionEpoch: 10},
		&PartitionChange{TopicID: tid, Partition: 1, Leader: NoLeader, ISR: nil, LeaderEpoch: 6, PartitionEpoch: 11},
		&ConfigChange{ResourceType: ResourceTopic, ResourceName: "orders", Name: "retention.ms", Value: "5000"},
		&ConfigChange{ResourceType: ResourceBroker, ResourceName: "", Name: "log.retention.ms", Delete: true},
		&ConfigChange{ResourceType: ResourceBroker, ResourceName: "12", Name: "x", Value: "y"},
		&NoOp{},
		&ProducerIDsAllocated{BrokerID: 3, BrokerEpoch: 1 << 33, NextProducerID: 1<<62 + 1000},
		&ProducerIDsAllocated{NextProducerID: 1},
	}
}

// TestSamplesCoverEveryType keeps codecSampleRecords, which the round-trip
// tests and the fuzz corpus start from, in step with the record types.
func TestSamplesCoverEveryType(t *testing.T) {
	have := map[RecordType]bool{}
	for _, r := range codecSampleRecords() {
		have[r.Type()] = true
	}
	for typ := TypeBrokerRegistered; typ <= lastRecordType; typ++ {
		if !have[typ] {
			t.Errorf("codecSampleRecords has no %s", typ)
		}
		if strings.HasPrefix(typ.String(), "RecordType(") {
			t.Errorf("record type %d has no name", uint8(typ))
		}
	}
}

func mustEncodeEntry(t testing.TB, records ...Record) []byte {
	t.Helper()
	b, err := EncodeEntry(nil, records)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRecordRoundTrip(t *testing.T) {
	for _, r := range codecSampleRecords() {
		t.Run(fmt.Sprintf("%s", r.Type()), func(t *testing.T) {
			b := mustEncodeEntry(t, r)
			got, err := DecodeEntry(b)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || !reflect.DeepEqual(got[0], r) {
				t.Fatalf("round trip of %#v gave %#v", r, got)
			}
		})
	}
}

// TestEncodingPinned pins bytes against doc.go's tables: a change here is a
// format change, which needs a new version.
func TestEncodingPinned(t *testing.T) {
	tid := UUID{15: 1}
	for _, tc := range []struct {
		rec  Record
		want string
	}{
		{&NoOp{}, "01 01 0a00 00"},
		{&BrokerFenced{BrokerID: 1, BrokerEpoch: 5}, "01 01 0200 0c 00000001 0000000000000005"},
		{&TopicRemoved{ID: tid}, "01 01 0600 10 00000000000000000000000000000001"},
		{&Partition{TopicID: tid, Partition: 2, Replicas: []int32{1, 2}, ISR: []int32{2}, Leader: 2, LeaderEpoch: 3, PartitionEpoch: 4},
			"01 01 0700 2e 00000000000000000000000000000001 00000002 02 00000001 00000002 01 00000002 00000002 00000003 00000004"},
		{&ConfigChange{ResourceType: ResourceBroker, ResourceName: "1", Name: "a", Value: "b", Delete: false},
			"01 01 0900 08 04 0131 0161 0162 00"},
		{&BrokerRegistered{BrokerID: 1, Incarnation: UUID{0: 0xaa}, Endpoints: []Endpoint{{Name: "P", Host: "h", Port: 9092, SecurityProtocol: 0}}, Rack: "r"},
			"01 01 0100 1f 00000001 aa000000000000000000000000000000 01 0150 0168 2384 0000 0172"},
		{&Topic{Name: "t", ID: tid, Configs: []ConfigEntry{{"k", "v"}}}, "01 01 0500 17 0174 00000000000000000000000000000001 01 016b 0176"},
		{&ProducerIDsAllocated{BrokerID: 2, BrokerEpoch: 7, NextProducerID: 3000}, "01 01 0b00 14 00000002 0000000000000007 0000000000000bb8"},
	} {
		want, err := hex.DecodeString(strings.ReplaceAll(tc.want, " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		if got := mustEncodeEntry(t, tc.rec); !bytes.Equal(got, want) {
			t.Errorf("%s encodes to\n%x, want\n%x", tc.rec.Type(), got, want)
		}
	}
}

// TestLongBodies crosses the body lengths where the length varint widens.
func TestLongBodies(t *testing.T) {
	for _, n := range []int{0, 1, 100, 127, 128, 16383, 16384, 1 << 20} {
		value := strings.Repeat("v", n)
		recs := []Record{
			&ConfigChange{ResourceType: ResourceBroker, Name: "k", Value: value},
			&NoOp{},
			&Topic{Name: "t", ID: UUID{1}, Configs: []ConfigEntry{{"k", value}}},
		}
		b := mustEncodeEntry(t, recs...)
		got, err := DecodeEntry(b)
		if err != nil {
			t.Fatalf("body with a %d-byte value: %v", n, err)
		}
		if !reflect.DeepEqual(got, recs) {
			t.Fatalf("body with a %d-byte value did not round trip", n)
		}
	}
}

func TestEntryManyRecords(t *testing.T) {
	samples := codecSampleRecords()
	var recs []Record
	for i := range 5000 {
		recs = append(recs, samples[i%len(samples)])
	}
	prefix := []byte("prefix")
	b, err := EncodeEntry(prefix, recs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("prefix")) {
		t.Fatal("EncodeEntry did not append to dst")
	}
	got, err := DecodeEntry(b[len(prefix):])
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, recs) {
		t.Fatal("an entry of 5000 records did not round trip")
	}

	// The empty entry is allowed (it only advances the offset).
	b = mustEncodeEntry(t)
	if got, err := DecodeEntry(b); err != nil || len(got) != 0 {
		t.Fatalf("empty entry: %v, %v", got, err)
	}
}

func TestValidate(t *testing.T) {
	tid := UUID{1}
	ep := []Endpoint{{Name: "PLAINTEXT", Host: "h", Port: 1}}
	for _, r := range codecSampleRecords() {
		if err := Validate(r); err != nil {
			t.Errorf("valid %s: %v", r.Type(), err)
		}
	}
	long := strings.Repeat("a", 250)
	for _, tc := range []struct {
		rec  Record
		want string // in the error
	}{
		{nil, "nil record"},
		{(*Topic)(nil), "nil *raft.Topic"},
		{(*NoOp)(nil), "nil *raft.NoOp"},
		{&BrokerRegistered{BrokerID: -1, Incarnation: UUID{1}, Endpoints: ep}, "BrokerRegistered.BrokerID -1 is negative"},
		{&BrokerRegistered{BrokerID: 1, Endpoints: ep}, "Incarnation is the zero UUID"},
		{&BrokerRegistered{BrokerID: 1, Incarnation: UUID{1}}, "Endpoints is empty"},
		{&BrokerRegistered{BrokerID: 1, Incarnation: UUID{1}, Endpoints: []Endpoint{{Host: "h", Port: 1}}}, "Endpoints[0].Name is empty"},
		{&BrokerRegistered{BrokerID: 1, Incarnation: UUID{1}, Endpoints: []Endpoint{ep[0], ep[0]}}, `Endpoints[1].Name "PLAINTEXT" is listed twice`},
		{&BrokerRegistered{BrokerID: 1, Incarnation: UUID{1}, Endpoints: []Endpoint{{Name: "P", Port: 1}}}, "Endpoints[0].Host is empty"},
		{&BrokerRegistered{BrokerID: 1, Incarnation: UUID{1}, Endpoints: []Endpoint{{Name: "P", Host: "h"}}}, "Endpoints[0].Port is 0"},
		{&BrokerRegistered{BrokerID: 1, Incarnation: UUID{1}, Endpoints: []Endpoint{{Name: "P", Host: "h", Port: 1, SecurityProtocol: 4}}}, "SecurityProtocol 4"},
		{&BrokerFenced{BrokerID: -2, BrokerEpoch: 1}, "BrokerFenced.BrokerID -2 is negative"},
		{&BrokerFenced{BrokerID: 1, BrokerEpoch: -1}, "BrokerFenced.BrokerEpoch -1 is negative"},
		{&BrokerUnfenced{BrokerID: -1}, "BrokerUnfenced.BrokerID -1"},
		{&BrokerUnfenced{BrokerEpoch: -3}, "BrokerUnfenced.BrokerEpoch -3"},
		{&BrokerUnregistered{BrokerID: -1}, "BrokerUnregistered.BrokerID -1"},
		{&BrokerUnregistered{BrokerEpoch: -3}, "BrokerUnregistered.BrokerEpoch -3"},
		{&Topic{Name: "", ID: tid}, "topic name is empty"},
		{&Topic{Name: ".", ID: tid}, `topic name "." is not allowed`},
		{&Topic{Name: "..", ID: tid}, `topic name ".." is not allowed`},
		{&Topic{Name: long, ID: tid}, "250 characters is longer than 249"},
		{&Topic{Name: "a b", ID: tid}, `has ' ' at byte 1`},
		{&Topic{Name: "é", ID: tid}, `at byte 0`},
		{&Topic{Name: "t"}, "Topic.ID is the zero UUID"},
		{&Topic{Name: "t", ID: tid, Configs: []ConfigEntry{{"", "v"}}}, "Topic.Configs[0].Name is empty"},
		{&Topic{Name: "t", ID: tid, Configs: []ConfigEntry{{"k", "1"}, {"k", "2"}}}, `Topic.Configs[1].Name "k" is listed twice`},
		{&TopicRemoved{}, "TopicRemoved.ID is the zero UUID"},
		{&Partition{Partition: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}, "Partition.TopicID is the zero UUID"},
		{&Partition{TopicID: tid, Partition: -1, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}, "Partition.Partition -1 is negative"},
		{&Partition{TopicID: tid, Leader: NoLeader}, "Partition.Replicas is empty"},
		{&Partition{TopicID: tid, Replicas: []int32{1, 2, 1}, ISR: []int32{1}, Leader: 1}, "Partition.Replicas [1 2 1] lists 1 twice"},
		{&Partition{TopicID: tid, Replicas: []int32{1, -2}, ISR: []int32{1}, Leader: 1}, "Partition.Replicas [1 -2]: -2 is not a broker id"},
		{&Partition{TopicID: tid, Replicas: []int32{1, 2}, ISR: []int32{1, 3}, Leader: 1}, "Partition.ISR [1 3]: 3 is not in Replicas [1 2]"},
		{&Partition{TopicID: tid, Replicas: []int32{1, 2}, ISR: []int32{1, 1}, Leader: 1}, "Partition.ISR [1 1] lists 1 twice"},
		{&Partition{TopicID: tid, Replicas: []int32{1, 2}, ISR: nil, Leader: 1}, "Partition.ISR is empty but Leader is 1"},
		{&Partition{TopicID: tid, Replicas: []int32{1, 2}, ISR: []int32{1}, Leader: 2}, "Partition.Leader 2 is not in ISR [1]"},
		{&Partition{TopicID: tid, Replicas: []int32{1, 2}, ISR: []int32{1}, Leader: -5}, "Partition.Leader -5 is neither a broker id nor NoLeader"},
		{&Partition{TopicID: tid, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1, LeaderEpoch: -1}, "Partition.LeaderEpoch -1 is negative"},
		{&Partition{TopicID: tid, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1, PartitionEpoch: -1}, "Partition.PartitionEpoch -1 is negative"},
		{&PartitionChange{Leader: NoLeader}, "PartitionChange.TopicID is the zero UUID"},
		{&PartitionChange{TopicID: tid, Partition: -4, Leader: NoLeader}, "PartitionChange.Partition -4 is negative"},
		{&PartitionChange{TopicID: tid, Leader: 1}, "PartitionChange.ISR is empty but Leader is 1"},
		{&PartitionChange{TopicID: tid, Leader: 1, ISR: []int32{2}}, "PartitionChange.Leader 1 is not in ISR [2]"},
		{&PartitionChange{TopicID: tid, Leader: NoLeader, ISR: []int32{2, 2}}, "PartitionChange.ISR [2 2] lists 2 twice"},
		{&PartitionChange{TopicID: tid, Leader: NoLeader, ISR: []int32{-1}}, "PartitionChange.ISR [-1]: -1 is not a broker id"},
		{&PartitionChange{TopicID: tid, Leader: NoLeader, LeaderEpoch: -1}, "PartitionChange.LeaderEpoch -1 is negative"},
		{&PartitionChange{TopicID: tid, Leader: NoLeader, PartitionEpoch: -1}, "PartitionChange.PartitionEpoch -1 is negative"},
		{&ConfigChange{ResourceType: 3, ResourceName: "x", Name: "k"}, "ConfigChange.ResourceType 3 is not a known resource type"},
		{&ConfigChange{ResourceType: ResourceTopic, ResourceName: "", Name: "k"}, "ConfigChange.ResourceName (a topic): topic name is empty"},
		{&ConfigChange{ResourceType: ResourceTopic, ResourceName: "a/b", Name: "k"}, `has '/' at byte 1`},
		{&ConfigChange{ResourceType: ResourceBroker, ResourceName: "01", Name: "k"}, `ConfigChange.ResourceName "01" (a broker)`},
		{&ConfigChange{ResourceType: ResourceBroker, ResourceName: "-1", Name: "k"}, `ConfigChange.ResourceName "-1" (a broker)`},
		{&ConfigChange{ResourceType: ResourceBroker, ResourceName: "x", Name: "k"}, `ConfigChange.ResourceName "x" (a broker)`},
		{&ConfigChange{ResourceType: ResourceBroker, ResourceName: "1"}, "ConfigChange.Name is empty"},
		{&ConfigChange{ResourceType: ResourceBroker, Name: "k", Value: "v", Delete: true}, `ConfigChange.Value "v" is set on a Delete`},
		{(*ProducerIDsAllocated)(nil), "nil *raft.ProducerIDsAllocated"},
		{&ProducerIDsAllocated{BrokerID: -1, NextProducerID: 1000}, "ProducerIDsAllocated.BrokerID -1 is negative"},
		{&ProducerIDsAllocated{BrokerID: 1, BrokerEpoch: -1, NextProducerID: 1000}, "ProducerIDsAllocated.BrokerEpoch -1 is negative"},
		{&ProducerIDsAllocated{BrokerID: 1, BrokerEpoch: 1}, "ProducerIDsAllocated.NextProducerID 0 is not positive"},
		{&ProducerIDsAllocated{BrokerID: 1, BrokerEpoch: 1, NextProducerID: -1000}, "ProducerIDsAllocated.NextProducerID -1000 is not positive"},
		{codecForeignRecord{}, "unknown record type raft.codecForeignRecord"},
	} {
		err := Validate(tc.rec)
		if !errors.Is(err, ErrInvalidRecord) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%#v) = %v, want an ErrInvalidRecord with %q", tc.rec, err, tc.want)
			continue
		}
		// EncodeEntry refuses it and leaves dst alone.
		dst := []byte{9}
		b, err := EncodeEntry(dst, []Record{&NoOp{}, tc.rec})
		if !errors.Is(err, ErrInvalidRecord) || !bytes.Equal(b, dst) {
			t.Errorf("EncodeEntry with %#v = %x, %v; want dst unchanged and ErrInvalidRecord", tc.rec, b, err)
		}
	}

	// Every problem is reported, not only the first.
	err := Validate(&Partition{Partition: -1, LeaderEpoch: -1, Leader: 3})
	for _, want := range []string{"TopicID", "Partition -1", "Replicas is empty", "ISR is empty", "LeaderEpoch -1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error %q does not report %q", err, want)
		}
	}
	err = Validate(&ProducerIDsAllocated{BrokerID: -1, BrokerEpoch: -1, NextProducerID: -1})
	for _, want := range []string{"BrokerID -1", "BrokerEpoch -1", "NextProducerID -1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error %q does not report %q", err, want)
		}
	}
}

// codecForeignRecord is a Record of a type the codec does not know.
type codecForeignRecord struct{}

func (codecForeignRecord) Type() RecordType { return 99 }

func TestDecodeEntryErrors(t *testing.T) {
	valid := mustEncodeEntry(t, codecSampleRecords()...)
	// Every strict prefix of a valid entry is truncated.
	for n := range len(valid) {
		if _, err := DecodeEntry(valid[:n]); !errors.Is(err, ErrBadRecord) {
			t.Fatalf("DecodeEntry of the first %d of %d bytes: %v, want ErrBadRecord", n, len(valid), err)
		}
	}
	h := func(s string) []byte {
		b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", "", "entry header: byte truncated"},
		{"entry version 0", "00 00", "unknown entry format version 0"},
		{"entry version 2", "02 00", "unknown entry format version 2"},
		{"count beyond input", "01 02 0a0000", "count 2 exceeds"},
		{"huge count", "01 ffffffffffffffffff01", "count 18446744073709551615 exceeds"},
		{"varint overflow", "01 ffffffffffffffffffff01", "varint overflows"},
		{"overlong count", "01 8000", "not in its shortest form"},
		{"trailing bytes", "01 01 0a0000 00", "1 trailing bytes"},
		{"unknown type 0", "01 01 000000", "unknown record type 0"},
		{"unknown type 12", "01 01 0c0000", "unknown record type 12"},
		{"unknown type 255", "01 01 ff0000", "unknown record type 255"},
		{"unknown version", "01 01 0a0100", "unknown version 1 of record NoOp"},
		{"body beyond input", "01 01 0a0005 0000", "NoOp body of 5 bytes truncated: 2 remain"},
		{"body with extra bytes", "01 01 0a0001 00", "NoOp: 1 bytes after the fields of version 0"},
		{"fields beyond body", "01 01 0200 04 00000001", "BrokerFenced: int64 truncated"},
		{"overlong body length", "01 01 0a00 8000", "not in its shortest form"},
		{"bool 2", "01 01 0900 08 04 0131 0161 0162 02", "bool byte 2"},
		{"string beyond body", "01 01 0900 08 04 0931 0161 0162 00", "string of 9 bytes truncated"},
		{"isr count beyond body", "01 01 0800 21 00000000000000000000000000000001 00000000 ffffffff 05 00000000 00000000", "count 5 exceeds"},
		{"invalid record", "01 01 0200 0c ffffffff 0000000000000005", "BrokerFenced.BrokerID -1 is negative"},
		{"producer ids: version 1", "01 01 0b01 14 00000002 0000000000000007 0000000000000bb8", "unknown version 1 of record ProducerIDsAllocated"},
		{"producer ids: short body", "01 01 0b00 0c 00000002 0000000000000007", "ProducerIDsAllocated: int64 truncated"},
		{"producer ids: long body", "01 01 0b00 15 00000002 0000000000000007 0000000000000bb8 00", "ProducerIDsAllocated: 1 bytes after the fields of version 0"},
		{"producer ids: zero next", "01 01 0b00 14 00000002 0000000000000007 0000000000000000", "ProducerIDsAllocated.NextProducerID 0 is not positive"},
		{"leader not in isr", "01 01 0800 25 00000000000000000000000000000001 00000000 00000002 01 00000001 00000001 00000001",
			"PartitionChange.Leader 2 is not in ISR [1]"},
	} {
		_, err := DecodeEntry(h(tc.in))
		if !errors.Is(err, ErrBadRecord) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: DecodeEntry(%s) = %v, want ErrBadRecord with %q", tc.name, tc.in, err, tc.want)
		}
	}
}

// TestDecodeEntryBoundsAllocation: a count the input cannot hold is refused
// before anything is allocated for it.
func TestDecodeEntryBoundsAllocation(t *testing.T) {
	for _, s := range []string{
		"01 ffffffff0f", // ~4 billion records in 6 bytes
		"01 01 0700 1a 01000000000000000000000000000000 00000000 ffffffff0f 00", // ~4 billion replicas in a 26-byte body
	} {
		in, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range 100 {
			if _, err := DecodeEntry(in); !errors.Is(err, ErrBadRecord) || !strings.Contains(err.Error(), "count 4294967295 exceeds") {
				t.Fatalf("DecodeEntry(%x) = %v", in, err)
			}
		}
		runtime.ReadMemStats(&after)
		if perRun := (after.TotalAlloc - before.TotalAlloc) / 100; perRun > 2048 {
			t.Fatalf("DecodeEntry(%x) allocates %d bytes to refuse a huge count", in, perRun)
		}
	}
}

func FuzzDecodeEntry(f *testing.F) {
	samples := codecSampleRecords()
	for _, r := range samples {
		f.Add(mustEncodeEntry(f, r))
	}
	f.Add(mustEncodeEntry(f, samples...))
	f.Add(mustEncodeEntry(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := DecodeEntry(b)
		if err != nil {
			if !errors.Is(err, ErrBadRecord) {
				t.Fatalf("error without ErrBadRecord: %v", err)
			}
			return
		}
		again, err := EncodeEntry(nil, recs)
		if err != nil {
			t.Fatalf("decoded records do not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("decoded %x, re-encoded %x", b, again)
		}
	})
}

func FuzzDecodeSnapshot(f *testing.F) {
	for _, im := range imageSamples(f) {
		f.Add(im.AppendSnapshot(nil))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		im, err := DecodeSnapshot(b)
		if err != nil {
			if !errors.Is(err, ErrBadRecord) {
				t.Fatalf("error without ErrBadRecord: %v", err)
			}
			return
		}
		if again := im.AppendSnapshot(nil); !bytes.Equal(again, b) {
			t.Fatalf("decoded %x, re-encoded %x", b, again)
		}
		if im.Hash() != sha256.Sum256(b) {
			t.Fatal("Hash is not the SHA-256 of the snapshot")
		}
		// The decoded image takes entries like any other.
		if im.Offset < math.MaxInt64 {
			if _, _, err := im.Apply(im.Offset+1, im.Epoch, []Record{&NoOp{}}); err != nil {
				t.Fatalf("a decoded image refuses a NoOp: %v", err)
			}
		}
	})
}
