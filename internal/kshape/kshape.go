// Package kshape walks Kafka request bodies against their layouts, so that
// a broker can refuse, before decoding, a body whose bytes do not hold every
// length, count and tag section they announce. The walk costs at most one
// step per byte of the body: no request, however malformed, costs more than
// its size.
//
// kmsg cannot promise that on its own: it reads a tagged-field section with
// `for n := b.Uvarint(); n > 0; n--` and goes on counting after its reader
// has run out of bytes, so a 7-byte ApiVersions v3 body announcing 2^32-1
// tags keeps a core busy for over a minute (94 s on the development
// machine). Its array counts are checked only against one byte per element,
// so a large frame can also make it allocate many times the frame's size
// before it finds the elements are not there. A body that passes the walk
// holds every element and tag it announces, so kmsg's work stays in
// proportion to the bytes.
//
// Its allocations would not on their own: an element of a byte or two
// decodes into a struct of several words, and a tag section holding an
// unknown tag into a map of some 340 bytes, so that an array of 4-byte
// elements each carrying an empty tag made kmsg allocate 92 times the
// body, and one section of distinct tags 40 times. So the walk also counts
// what decoding will allocate (each array element's Go value, each tag
// section's map and tags: see costPerByte) and refuses a body whose count is
// over 18 times its size and 32 KiB. What passes makes kmsg allocate at
// most 20 times the body and 64 KiB (TestDecodeAllocationsAreBounded; the
// most measured, 16 times, for a list of empty strings), and real requests,
// whose elements carry names, offsets and no unknown tags, a few times.
//
// The layouts are Kafka's request schemas (the message JSON files of
// Apache Kafka) for the versions Gregor's broker speaks, tagged fields left
// to the tag sections: a tagged field is skipped as any tag is. The package
// test checks each layout against kmsg's encoder at every version it
// declares.
package kshape

import (
	"errors"
	"fmt"
	"math"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// wireKind is how a field is encoded.
type wireKind uint8

const (
	wInt8   wireKind = iota // also bool
	wInt16                  //
	wInt32                  //
	wInt64                  //
	wUUID                   // 16 bytes
	wString                 // int16 length, or a compact length in flexible versions; nullable or not
	wBytes                  // int32 length, or a compact length in flexible versions; nullable or not
	wArray                  // int32 count, or a compact count; of elem's structs, or of a primitive (one elem field)
	wTagged                 // a tagged field holding a struct (elem), in the enclosing struct's tag section
)

// wireField is one field of a request layout, present in versions
// [since, before) (before 0: every version from since).
type wireField struct {
	name          string
	kind          wireKind
	since, before int16
	elem          []wireField // wArray: the element's fields
	primitive     bool        // wArray: elements are elem[0] alone, with no tag section
	tag           uint32      // wTagged: its key
}

func (f wireField) in(version int16) bool {
	return version >= f.since && (f.before == 0 || version < f.before)
}

// Field constructors, so that the layouts read as Kafka's schemas do.
func i8(name string) wireField   { return wireField{name: name, kind: wInt8} }
func i16(name string) wireField  { return wireField{name: name, kind: wInt16} }
func i32(name string) wireField  { return wireField{name: name, kind: wInt32} }
func i64(name string) wireField  { return wireField{name: name, kind: wInt64} }
func uuid(name string) wireField { return wireField{name: name, kind: wUUID} }
func str(name string) wireField  { return wireField{name: name, kind: wString} }
func byts(name string) wireField { return wireField{name: name, kind: wBytes} }

// structs is an array of structs with the given fields.
func structs(name string, elem ...wireField) wireField {
	return wireField{name: name, kind: wArray, elem: elem}
}

// taggedStruct is a tagged field whose value is a struct, itself ending in
// a tag section. Only these need a layout: a tag's bytes are otherwise
// skipped whole, and kmsg decodes a known tag of a primitive or an array of
// primitives within the tag's bytes, at a cost bounded by them. kmsg
// decodes a known tag in every flexible version, whatever versions Kafka
// gives the field, so a tagged field's layout applies in all of them.
func taggedStruct(name string, tag uint32, elem ...wireField) wireField {
	return wireField{name: name, kind: wTagged, tag: tag, elem: elem}
}

// list is an array of a primitive (int32s, strings).
func list(name string, of wireField) wireField {
	return wireField{name: name, kind: wArray, elem: []wireField{of}, primitive: true}
}

// from and until bound the versions a field is in: [from, until).
func (f wireField) from(v int16) wireField  { f.since = v; return f }
func (f wireField) until(v int16) wireField { f.before = v; return f }

// wireShape is a request's layout for versions [min, max], and the first
// version whose encoding is flexible (compact lengths, tag sections).
type wireShape struct {
	min, max, flexible int16
	fields             []wireField
}

// aclFilter is DescribeAcls' body and each of DeleteAcls' filters.
var aclFilter = []wireField{
	i8("resource_type_filter"), str("resource_name_filter"), i8("pattern_type_filter").from(1),
	str("principal_filter"), str("host_filter"), i8("operation"), i8("permission_type"),
}

// shapes holds the layout of every request Gregor's broker and controller
// listeners answer, by API key, for the versions they speak.
var shapes = map[int16]wireShape{
	kmsg.Produce.Int16(): {3, 9, 9, []wireField{
		str("transactional_id").from(3), i16("acks"), i32("timeout_ms"),
		structs("topic_data", str("name"),
			structs("partition_data", i32("index"), byts("records"))),
	}},
	kmsg.Fetch.Int16(): {4, 13, 12, []wireField{
		i32("replica_id"), i32("max_wait_ms"), i32("min_bytes"), i32("max_bytes").from(3),
		i8("isolation_level").from(4), i32("session_id").from(7), i32("session_epoch").from(7),
		structs("topics", str("topic").until(13), uuid("topic_id").from(13),
			structs("partitions", i32("partition"), i32("current_leader_epoch").from(9), i64("fetch_offset"),
				i32("last_fetched_epoch").from(12), i64("log_start_offset").from(5), i32("partition_max_bytes"))),
		structs("forgotten_topics_data", str("topic").until(13), uuid("topic_id").from(13),
			list("partitions", i32(""))).from(7),
		str("rack_id").from(11),
		taggedStruct("replica_state", 1, i32("replica_id"), i64("replica_epoch")),
	}},
	kmsg.ListOffsets.Int16(): {0, 7, 6, []wireField{
		i32("replica_id"), i8("isolation_level").from(2),
		structs("topics", str("name"),
			structs("partitions", i32("partition_index"), i32("current_leader_epoch").from(4),
				i64("timestamp"), i32("max_num_offsets").until(1))),
	}},
	kmsg.Metadata.Int16(): {0, 12, 9, []wireField{
		structs("topics", uuid("topic_id").from(10), str("name")),
		i8("allow_auto_topic_creation").from(4),
		i8("include_cluster_authorized_operations").from(8).until(11),
		i8("include_topic_authorized_operations").from(8),
	}},
	kmsg.OffsetForLeaderEpoch.Int16(): {0, 4, 4, []wireField{
		i32("replica_id").from(3),
		structs("topics", str("topic"),
			structs("partitions", i32("partition"), i32("current_leader_epoch").from(2), i32("leader_epoch"))),
	}},
	kmsg.ApiVersions.Int16(): {0, 3, 3, []wireField{
		str("client_software_name").from(3), str("client_software_version").from(3),
	}},
	kmsg.CreateTopics.Int16(): {0, 7, 5, []wireField{
		structs("topics", str("name"), i32("num_partitions"), i16("replication_factor"),
			structs("assignments", i32("partition_index"), list("broker_ids", i32(""))),
			structs("configs", str("name"), str("value"))),
		i32("timeout_ms"), i8("validate_only").from(1),
	}},
	kmsg.DeleteTopics.Int16(): {0, 6, 4, []wireField{
		structs("topics", str("name"), uuid("topic_id")).from(6),
		list("topic_names", str("")).until(6),
		i32("timeout_ms"),
	}},
	kmsg.InitProducerID.Int16(): {0, 4, 2, []wireField{
		str("transactional_id"), i32("transaction_timeout_ms"),
		i64("producer_id").from(3), i16("producer_epoch").from(3),
	}},
	kmsg.DescribeConfigs.Int16(): {0, 4, 4, []wireField{
		structs("resources", i8("resource_type"), str("resource_name"), list("configuration_keys", str(""))),
		i8("include_synonyms").from(1), i8("include_documentation").from(3),
	}},
	kmsg.CreatePartitions.Int16(): {0, 3, 2, []wireField{
		structs("topics", str("name"), i32("count"),
			structs("assignments", list("broker_ids", i32("")))),
		i32("timeout_ms"), i8("validate_only"),
	}},
	kmsg.UnregisterBroker.Int16(): {0, 0, 0, []wireField{i32("broker_id")}},
	kmsg.DescribeProducers.Int16(): {0, 0, 0, []wireField{
		structs("topics", str("name"), list("partition_indexes", i32(""))),
	}},
	kmsg.AlterConfigs.Int16(): {0, 2, 2, []wireField{
		structs("resources", i8("resource_type"), str("resource_name"),
			structs("configs", str("name"), str("value"))),
		i8("validate_only"),
	}},
	kmsg.IncrementalAlterConfigs.Int16(): {0, 1, 1, []wireField{
		structs("resources", i8("resource_type"), str("resource_name"),
			structs("configs", str("name"), i8("config_operation"), str("value"))),
		i8("validate_only"),
	}},
	kmsg.DescribeCluster.Int16(): {0, 1, 0, []wireField{
		i8("include_cluster_authorized_operations"), i8("endpoint_type").from(1),
	}},
	kmsg.DeleteRecords.Int16(): {0, 2, 2, []wireField{
		structs("topics", str("name"),
			structs("partitions", i32("partition_index"), i64("offset"))),
		i32("timeout_ms"),
	}},
	kmsg.DescribeLogDirs.Int16(): {0, 4, 2, []wireField{
		structs("topics", str("topic"), list("partitions", i32(""))),
	}},
	kmsg.DescribeACLs.Int16(): {0, 3, 2, aclFilter},
	kmsg.CreateACLs.Int16(): {0, 3, 2, []wireField{
		structs("creations", i8("resource_type"), str("resource_name"), i8("resource_pattern_type").from(1),
			str("principal"), str("host"), i8("operation"), i8("permission_type")),
	}},
	kmsg.DeleteACLs.Int16(): {0, 3, 2, []wireField{
		structs("filters", aclFilter...),
	}},
	kmsg.FindCoordinator.Int16(): {0, 4, 3, []wireField{
		str("key").until(4), i8("key_type").from(1), list("coordinator_keys", str("")).from(4),
	}},
	kmsg.JoinGroup.Int16(): {0, 9, 6, []wireField{
		str("group_id"), i32("session_timeout_ms"), i32("rebalance_timeout_ms").from(1), str("member_id"),
		str("group_instance_id").from(5), str("protocol_type"),
		structs("protocols", str("name"), byts("metadata")),
		str("reason").from(8),
	}},
	kmsg.SyncGroup.Int16(): {0, 5, 4, []wireField{
		str("group_id"), i32("generation_id"), str("member_id"), str("group_instance_id").from(3),
		str("protocol_type").from(5), str("protocol_name").from(5),
		structs("assignments", str("member_id"), byts("assignment")),
	}},
	kmsg.Heartbeat.Int16(): {0, 4, 4, []wireField{
		str("group_id"), i32("generation_id"), str("member_id"), str("group_instance_id").from(3),
	}},
	kmsg.LeaveGroup.Int16(): {0, 5, 4, []wireField{
		str("group_id"), str("member_id").until(3),
		structs("members", str("member_id"), str("group_instance_id"), str("reason").from(5)).from(3),
	}},
	kmsg.OffsetCommit.Int16(): {2, 9, 8, []wireField{
		str("group_id"), i32("generation_id_or_member_epoch").from(1), str("member_id").from(1),
		str("group_instance_id").from(7), i64("retention_time_ms").from(2).until(5),
		structs("topics", str("name"),
			structs("partitions", i32("partition_index"), i64("committed_offset"),
				i32("committed_leader_epoch").from(6), i64("commit_timestamp").from(1).until(2),
				str("committed_metadata"))),
	}},
	kmsg.OffsetFetch.Int16(): {1, 9, 6, []wireField{
		str("group_id").until(8),
		structs("topics", str("name"), list("partition_indexes", i32(""))).until(8),
		structs("groups", str("group_id"), str("member_id").from(9), i32("member_epoch").from(9),
			structs("topics", str("name"), list("partition_indexes", i32("")))).from(8),
		i8("require_stable").from(7),
	}},
	kmsg.OffsetDelete.Int16(): {0, 0, 1, // never flexible
		[]wireField{
			str("group_id"),
			structs("topics", str("name"), structs("partitions", i32("partition_index"))),
		}},
	kmsg.DescribeGroups.Int16(): {0, 6, 5, []wireField{
		list("groups", str("")), i8("include_authorized_operations").from(3),
	}},
	kmsg.ListGroups.Int16(): {0, 5, 3, []wireField{
		list("states_filter", str("")).from(4), list("types_filter", str("")).from(5),
	}},
	kmsg.DeleteGroups.Int16(): {0, 2, 2, []wireField{
		list("groups_names", str("")),
	}},

	// What brokers send the controller listener, at kmsg's newest
	// versions, which Gregor's brokers use.
	kmsg.BrokerRegistration.Int16(): {0, 4, 0, []wireField{
		i32("broker_id"), str("cluster_id"), uuid("incarnation_id"),
		structs("listeners", str("name"), str("host"), i16("port"), i16("security_protocol")),
		structs("features", str("name"), i16("min_supported_version"), i16("max_supported_version")),
		str("rack"), i8("is_migrating_zk_broker").from(1), list("log_dirs", uuid("")).from(2),
		i64("previous_broker_epoch").from(3),
	}},
	kmsg.BrokerHeartbeat.Int16(): {0, 2, 0, []wireField{
		i32("broker_id"), i64("broker_epoch"), i64("current_metadata_offset"), i8("want_fence"), i8("want_shut_down"),
	}},
	kmsg.AllocateProducerIDs.Int16(): {0, 0, 0, []wireField{
		i32("broker_id"), i64("broker_epoch"),
	}},
	kmsg.AlterPartition.Int16(): {0, 3, 0, []wireField{
		i32("broker_id"), i64("broker_epoch"),
		structs("topics", str("topic_name").until(2), uuid("topic_id").from(2),
			structs("partitions", i32("partition_index"), i32("leader_epoch"), list("new_isr", i32("")).until(3),
				structs("new_isr_with_epochs", i32("broker_id"), i64("broker_epoch")).from(3),
				i8("leader_recovery_state").from(1), i32("partition_epoch"))),
	}},
}

// ErrMalformed is wrapped by every error Check returns: the bytes run out
// before what they announce, or announce more elements and tags than kmsg
// can decode at a cost in proportion to them.
var ErrMalformed = errors.New("the request's bytes do not hold what they announce")

// Check walks body, a request of key at version, against its layout; it
// returns an error naming the field where the bytes ran out or a length was
// invalid, or one saying the version has no layout here.
func Check(key, version int16, body []byte) error {
	progs, ok := programs[key]
	sh := shapes[key]
	if !ok || version < sh.min || version > sh.max {
		return fmt.Errorf("%w: no layout of %s v%d", ErrMalformed, kmsg.NameForKey(key), version)
	}
	w := newWalker(body, version >= sh.flexible)
	w.run(progs[version-sh.min])
	return w.err
}

// Covers reports whether Check has the layout of key at every version in
// [min, max].
func Covers(key, min, max int16) bool {
	sh, ok := shapes[key]
	return ok && sh.min <= min && max <= sh.max
}

// A layout is walked as a program compiled for its version: the fields
// present, each run of fixed-size fields merged into one step, and a tag
// section after each struct in flexible versions. Walking field by field,
// testing each field's versions, cost more than kmsg's whole decode of a
// Fetch of many partitions (BenchmarkCheck).
type step struct {
	op    opcode
	fixed int    // opFixed: the run's bytes
	name  string // the field (of a run, its first), for errors
	elem  []step // opArray: one element's program
	// opArray: what kmsg allocates for one element, at most (elemCost),
	// besides the element's own arrays, strings' bytes and tag sections.
	cost int64
	// opTags: the programs of the tags whose values are structs, by key
	// (wTagged).
	known map[uint32][]step
}

type opcode uint8

const (
	opFixed  opcode = iota // skip fixed bytes
	opString               // a string's length and bytes
	opBytes                // a bytes field's length and bytes
	opArray                // a count, then elem that many times
	opTags                 // a tag section
)

// programs holds each layout compiled for each of its versions, from min.
var programs = func() map[int16][][]step {
	out := make(map[int16][][]step, len(shapes))
	for key, sh := range shapes {
		for v := sh.min; v <= sh.max; v++ {
			out[key] = append(out[key], compile(sh.fields, v, v >= sh.flexible, v >= sh.flexible))
		}
	}
	return out
}()

// compile is the program of a struct's fields at version; tagged says
// whether the struct ends in a tag section (every struct of a flexible
// version; not a primitive array's element).
func compile(fields []wireField, version int16, flexible, tagged bool) []step {
	var prog []step
	var known map[uint32][]step
	for _, f := range fields {
		if !f.in(version) {
			continue
		}
		var s step
		switch f.kind {
		case wInt8, wInt16, wInt32, wInt64, wUUID:
			n := map[wireKind]int{wInt8: 1, wInt16: 2, wInt32: 4, wInt64: 8, wUUID: 16}[f.kind]
			if last := len(prog) - 1; last >= 0 && prog[last].op == opFixed {
				prog[last].fixed += n
				continue
			}
			s = step{op: opFixed, fixed: n}
		case wString:
			s.op = opString
		case wBytes:
			s.op = opBytes
		case wArray:
			s = step{op: opArray, elem: compile(f.elem, version, flexible, flexible && !f.primitive), cost: elemCost(f)}
		case wTagged:
			if tagged {
				if known == nil {
					known = make(map[uint32][]step)
				}
				known[f.tag] = compile(f.elem, version, flexible, true)
			}
			continue
		}
		s.name = f.name
		prog = append(prog, s)
	}
	if tagged {
		prog = append(prog, step{op: opTags, name: "tagged fields", known: known})
	}
	return prog
}

// What decoding costs kmsg, beyond the bytes themselves, as the walk
// counts it (cost): each element of an array, the Go value it decodes into
// (elemCost); each tag section holding tags, the map kmsg keeps its unknown
// tags in, made for the section (tagSectionCost) and grown for each tag
// (tagCost). A body whose cost is over costPerByte times its size, plus
// costSlack, is refused. kmsg's allocations are then at most that, the
// copies of the body's strings (under 1.4 times their bytes, rounded up to
// a size class) and the request's own struct: within 20 times the body and
// 64 KiB. TestElementCostsCoverKmsg and TestTagSectionCostsCoverKmsg check
// each cost against kmsg's allocations, TestDecodeAllocationsAreBounded the
// whole.
const (
	costPerByte    = 18
	costSlack      = 32 << 10
	tagSectionCost = 512 // a map of one group of 8 slots: 336 bytes measured, go1.26 amd64
	tagCost        = 192 // each tag as the map grows: up to 174 bytes measured
)

// walker walks a body, failing at the first field its bytes do not hold,
// or once decoding it would cost kmsg more than budget.
type walker struct {
	src          []byte
	flexible     bool
	cost, budget int64
	err          error
}

func newWalker(body []byte, flexible bool) walker {
	return walker{src: body, flexible: flexible, budget: costPerByte*int64(len(body)) + costSlack}
}

// charge adds c to the cost, failing once it is over the budget. Each c is
// under 2^42 (a count of at most 2^32 times a cost under 2^10), and the walk
// stops at the first one over the budget, so the sum cannot overflow.
func (w *walker) charge(field string, c int64) {
	if w.cost += c; w.cost > w.budget {
		w.fail(field, fmt.Sprintf("elements and tags that would cost kmsg over %d bytes to decode (%d a byte of the body, and %d)",
			w.budget, costPerByte, costSlack))
	}
}

// elemCost is what kmsg allocates for one element of the array f, at most:
// the Go value of a primitive, or the struct kmsg declares for the
// element. A struct's is bounded by 8 bytes for a number, 16 for a UUID, 24
// for a string (a pointer and the string it points to, when nullable),
// bytes or an array, each over all the layout's versions, as kmsg's struct
// has every version's fields; and 24 more for its unknown tags and the
// fields of versions past the layout's (a topic ID, a directory ID).
// TestElementCostsCoverKmsg checks each against kmsg's allocations.
func elemCost(f wireField) int64 {
	if f.primitive {
		return map[wireKind]int64{wInt8: 1, wInt16: 2, wInt32: 4, wInt64: 8, wUUID: 16, wString: 16, wBytes: 24}[f.elem[0].kind]
	}
	return structCost(f.elem)
}

func structCost(fields []wireField) int64 {
	n := int64(24) // UnknownTags, and later versions' fields
	for _, f := range fields {
		switch f.kind {
		case wInt8, wInt16, wInt32, wInt64:
			n += 8
		case wUUID:
			n += 16
		case wString, wBytes, wArray:
			n += 24
		case wTagged:
			n += structCost(f.elem)
		}
	}
	return n
}

func (w *walker) fail(field, why string) {
	if w.err == nil {
		w.err = fmt.Errorf("%w: %s: %s", ErrMalformed, field, why)
		w.src = nil
	}
}

func (w *walker) skip(field string, n int) {
	if n < 0 || n > len(w.src) {
		w.fail(field, fmt.Sprintf("%d bytes announced, %d left", n, len(w.src)))
		return
	}
	w.src = w.src[n:]
}

// run walks a program. Every step but an empty array's consumes at least
// one byte, so the walk ends within the body's size.
func (w *walker) run(prog []step) {
	for i := range prog {
		if w.err != nil {
			return
		}
		s := &prog[i]
		switch s.op {
		case opFixed:
			w.skip(s.name, s.fixed)
		case opString, opBytes:
			if n := w.length(s.name, s.op == opString); n > 0 {
				w.skip(s.name, n)
			}
		case opArray:
			n := w.length(s.name, false)
			if n > 0 {
				w.charge(s.name, int64(n)*s.cost)
			}
			for j := 0; j < n && w.err == nil; j++ {
				left := len(w.src)
				w.run(s.elem)
				if w.err == nil && len(w.src) == left {
					// Cannot happen with Kafka's layouts; it would let
					// a count outrun the bytes.
					w.fail(s.name, "an element of no bytes")
				}
			}
		case opTags:
			w.tags(s.name, s.known)
		}
	}
}

// length reads a string's, bytes' or array's length: a compact one
// (uvarint, less one) in flexible versions, else an int16 (strings) or
// int32. A negative length is null, which kmsg accepts wherever it
// appears; it is the handler's to refuse a null where Kafka allows none.
func (w *walker) length(field string, short bool) int {
	if w.flexible {
		return int(w.uvarint(field)) - 1
	}
	if short {
		if len(w.src) < 2 {
			w.fail(field, "no length")
			return 0
		}
		n := int16(uint16(w.src[0])<<8 | uint16(w.src[1]))
		w.src = w.src[2:]
		return int(n)
	}
	if len(w.src) < 4 {
		w.fail(field, "no length")
		return 0
	}
	n := int32(uint32(w.src[0])<<24 | uint32(w.src[1])<<16 | uint32(w.src[2])<<8 | uint32(w.src[3]))
	w.src = w.src[4:]
	return int(n)
}

// uvarint reads an unsigned varint of at most 32 bits, as kmsg does.
func (w *walker) uvarint(field string) uint32 {
	var v uint32
	for i := 0; i < 5; i++ {
		if i == len(w.src) {
			w.fail(field, "a varint cut short")
			return 0
		}
		b := w.src[i]
		if i == 4 && b > 0x0f {
			w.fail(field, "a varint over 32 bits")
			return 0
		}
		v |= uint32(b&0x7f) << (7 * i)
		if b < 0x80 {
			w.src = w.src[i+1:]
			return v
		}
	}
	w.fail(field, "a varint over 32 bits")
	return 0
}

// tags walks a tag section: a count, then each tag's key, size and bytes.
// Each tag takes at least two bytes, so a count the bytes do not hold
// fails as soon as they run out.
// A tag whose value is a struct (known) is walked within its own bytes,
// as kmsg decodes it.
func (w *walker) tags(field string, known map[uint32][]step) {
	n := w.uvarint(field)
	if n > 0 {
		w.charge(field, tagSectionCost+int64(n)*tagCost)
	}
	for i := uint32(0); i < n && w.err == nil; i++ {
		key := w.uvarint(field)
		size := int(w.uvarint(field))
		if w.err != nil {
			return
		}
		if size > len(w.src) {
			w.skip(field, size)
			return
		}
		if prog, ok := known[key]; ok {
			inner := walker{src: w.src[:size], flexible: true, cost: w.cost, budget: w.budget}
			inner.run(prog)
			w.cost = inner.cost
			if inner.err != nil {
				w.err, w.src = inner.err, nil
				return
			}
		}
		w.src = w.src[size:]
	}
}

// SkipTags skips a tag section at the start of src (a flexible request
// header's), bounded by src's bytes as Check is, and returns the rest.
func SkipTags(src []byte) ([]byte, error) {
	// kmsg never decodes the header's tags: skipping them costs nothing.
	w := walker{src: src, flexible: true, budget: math.MaxInt64}
	w.tags("tagged fields", nil)
	return w.src, w.err
}
