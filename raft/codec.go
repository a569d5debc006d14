package raft

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The byte encoding of records and raft log entries, drawn in doc.go.

var (
	// ErrBadRecord is wrapped by every error decoding an entry or a snapshot
	// whose bytes are not a valid encoding: truncated, garbled, an unknown
	// record type or version, trailing bytes, or a decoded record that fails
	// Validate. Bytes the quorum committed that do not decode are corruption
	// (or a newer writer): the node stops rather than skip them.
	ErrBadRecord = errors.New("raft: bad record encoding")

	// ErrInvalidRecord is wrapped by every error of Validate: a record that
	// is wrong on its own, whatever the image it would apply to.
	ErrInvalidRecord = errors.New("raft: invalid record")
)

// The format versions this code writes and reads.
const (
	entryFormatVersion    uint8 = 1 // first byte of a log entry
	recordFormatVersion   uint8 = 0 // second byte of every record of every type
	snapshotFormatVersion uint8 = 1 // first byte of a snapshot
)

// minRecordBytes is the smallest encoded record: type, version, body length.
const minRecordBytes = 3

// maxTopicNameLength is Kafka's limit (Topic.MAX_NAME_LENGTH).
const maxTopicNameLength = 249

// String names the record type as records.go does.
func (t RecordType) String() string {
	switch t {
	case TypeBrokerRegistered:
		return "BrokerRegistered"
	case TypeBrokerFenced:
		return "BrokerFenced"
	case TypeBrokerUnfenced:
		return "BrokerUnfenced"
	case TypeBrokerUnregistered:
		return "BrokerUnregistered"
	case TypeTopic:
		return "Topic"
	case TypeTopicRemoved:
		return "TopicRemoved"
	case TypePartition:
		return "Partition"
	case TypePartitionChange:
		return "PartitionChange"
	case TypeConfigChange:
		return "ConfigChange"
	case TypeNoOp:
		return "NoOp"
	case TypeProducerIDsAllocated:
		return "ProducerIDsAllocated"
	}
	return "RecordType(" + strconv.Itoa(int(t)) + ")"
}

// String prints a UUID as Kafka does: 22 characters of URL-safe base64.
func (u UUID) String() string { return base64.RawURLEncoding.EncodeToString(u[:]) }

// EncodeEntry validates every record and appends to dst one raft log entry
// holding them, to be applied atomically. Nothing is appended when a record
// is invalid: the error wraps ErrInvalidRecord and names the record.
func EncodeEntry(dst []byte, records []Record) ([]byte, error) {
	for i, r := range records {
		if err := Validate(r); err != nil {
			return dst, fmt.Errorf("raft: entry record %d of %d: %w", i+1, len(records), err)
		}
	}
	w := recordWriter{b: dst}
	w.u8(entryFormatVersion)
	w.uvarint(uint64(len(records)))
	for _, r := range records {
		w.record(r)
	}
	return w.b, nil
}

// DecodeEntry decodes a raft log entry made by EncodeEntry. It never panics,
// allocates at most in proportion to len(b), rejects trailing bytes and
// validates every record it decodes; its errors wrap ErrBadRecord.
func DecodeEntry(b []byte) ([]Record, error) {
	r := recordReader{b: b}
	if v := r.u8(); r.err == nil && v != entryFormatVersion {
		return nil, fmt.Errorf("%w: unknown entry format version %d (this decoder knows %d)", ErrBadRecord, v, entryFormatVersion)
	}
	n := r.count(minRecordBytes)
	if r.err != nil {
		return nil, fmt.Errorf("%w: entry header: %v", ErrBadRecord, r.err)
	}
	records := make([]Record, 0, n)
	for i := range n {
		rec := r.record()
		if r.err != nil {
			return nil, fmt.Errorf("%w: entry record %d of %d: %v", ErrBadRecord, i+1, n, r.err)
		}
		if err := Validate(rec); err != nil {
			return nil, fmt.Errorf("%w: entry record %d of %d: %w", ErrBadRecord, i+1, n, err)
		}
		records = append(records, rec)
	}
	if len(r.b) > 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes after the entry's %d records", ErrBadRecord, len(r.b), n)
	}
	return records, nil
}

// recordWriter appends the encoding of records to b.
type recordWriter struct{ b []byte }

func (w *recordWriter) u8(v uint8)   { w.b = append(w.b, v) }
func (w *recordWriter) i8(v int8)    { w.b = append(w.b, uint8(v)) }
func (w *recordWriter) u16(v uint16) { w.b = binary.BigEndian.AppendUint16(w.b, v) }
func (w *recordWriter) i16(v int16)  { w.b = binary.BigEndian.AppendUint16(w.b, uint16(v)) }
func (w *recordWriter) i32(v int32)  { w.b = binary.BigEndian.AppendUint32(w.b, uint32(v)) }
func (w *recordWriter) i64(v int64)  { w.b = binary.BigEndian.AppendUint64(w.b, uint64(v)) }
func (w *recordWriter) u64(v uint64) { w.b = binary.BigEndian.AppendUint64(w.b, v) }
func (w *recordWriter) uvarint(v uint64) {
	w.b = binary.AppendUvarint(w.b, v)
}
func (w *recordWriter) uuid(u UUID) { w.b = append(w.b, u[:]...) }

func (w *recordWriter) str(s string) {
	w.uvarint(uint64(len(s)))
	w.b = append(w.b, s...)
}

func (w *recordWriter) boolean(v bool) {
	if v {
		w.u8(1)
	} else {
		w.u8(0)
	}
}

func (w *recordWriter) int32s(vs []int32) {
	w.uvarint(uint64(len(vs)))
	for _, v := range vs {
		w.i32(v)
	}
}

// record appends one record: type, version, body length, body. The body is
// written in place after a one-byte length, which is widened afterwards in
// the rare case the body is 128 bytes or more, so the layout of each body is
// written down once.
func (w *recordWriter) record(r Record) {
	w.u8(uint8(r.Type()))
	w.u8(recordFormatVersion)
	lenAt := len(w.b)
	w.u8(0)
	w.body(r)
	n := len(w.b) - lenAt - 1
	var lenBuf [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(lenBuf[:], uint64(n))
	if k > 1 {
		w.b = append(w.b, lenBuf[:k-1]...)
		copy(w.b[lenAt+k:], w.b[lenAt+1:lenAt+1+n])
	}
	copy(w.b[lenAt:], lenBuf[:k])
}

// body appends the version-0 body of r. Keep doc.go's tables in step.
func (w *recordWriter) body(r Record) {
	switch r := r.(type) {
	case *BrokerRegistered:
		w.i32(r.BrokerID)
		w.uuid(r.Incarnation)
		w.uvarint(uint64(len(r.Endpoints)))
		for _, e := range r.Endpoints {
			w.str(e.Name)
			w.str(e.Host)
			w.u16(e.Port)
			w.i16(e.SecurityProtocol)
		}
		w.str(r.Rack)
	case *BrokerFenced:
		w.i32(r.BrokerID)
		w.i64(r.BrokerEpoch)
	case *BrokerUnfenced:
		w.i32(r.BrokerID)
		w.i64(r.BrokerEpoch)
	case *BrokerUnregistered:
		w.i32(r.BrokerID)
		w.i64(r.BrokerEpoch)
	case *Topic:
		w.str(r.Name)
		w.uuid(r.ID)
		w.uvarint(uint64(len(r.Configs)))
		for _, c := range r.Configs {
			w.str(c.Name)
			w.str(c.Value)
		}
	case *TopicRemoved:
		w.uuid(r.ID)
	case *Partition:
		w.uuid(r.TopicID)
		w.i32(r.Partition)
		w.int32s(r.Replicas)
		w.int32s(r.ISR)
		w.i32(r.Leader)
		w.i32(r.LeaderEpoch)
		w.i32(r.PartitionEpoch)
	case *PartitionChange:
		w.uuid(r.TopicID)
		w.i32(r.Partition)
		w.i32(r.Leader)
		w.int32s(r.ISR)
		w.i32(r.LeaderEpoch)
		w.i32(r.PartitionEpoch)
	case *ConfigChange:
		w.i8(r.ResourceType)
		w.str(r.ResourceName)
		w.str(r.Name)
		w.str(r.Value)
		w.boolean(r.Delete)
	case *NoOp:
	case *ProducerIDsAllocated:
		w.i32(r.BrokerID)
		w.i64(r.BrokerEpoch)
		w.i64(r.NextProducerID)
	default:
		// Validate rejects every other type before anything is written.
		panic(fmt.Sprintf("raft: encoding unknown record type %T", r))
	}
}

// recordReader decodes from b, remembering the first error: after one, every
// read returns a zero value, so a decoder checks err once, at the end.
type recordReader struct {
	b   []byte
	err error
}

func (r *recordReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
	r.b = nil
}

// take returns the next n bytes, or nil after recording that they are missing.
func (r *recordReader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.fail("%s truncated: want %d bytes, %d remain", what, n, len(r.b))
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *recordReader) u8() uint8 {
	if b := r.take(1, "byte"); b != nil {
		return b[0]
	}
	return 0
}

func (r *recordReader) i8() int8 { return int8(r.u8()) }

func (r *recordReader) u16() uint16 {
	if b := r.take(2, "int16"); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *recordReader) i16() int16 { return int16(r.u16()) }

func (r *recordReader) i32() int32 {
	if b := r.take(4, "int32"); b != nil {
		return int32(binary.BigEndian.Uint32(b))
	}
	return 0
}

func (r *recordReader) u64() uint64 {
	if b := r.take(8, "int64"); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (r *recordReader) i64() int64 { return int64(r.u64()) }

func (r *recordReader) uuid() (u UUID) {
	if b := r.take(16, "uuid"); b != nil {
		copy(u[:], b)
	}
	return u
}

// uvarint reads a varint in its shortest form only, so that every value has
// one encoding and decoded bytes re-encode to themselves.
func (r *recordReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	switch {
	case n == 0:
		r.fail("varint truncated")
		return 0
	case n < 0:
		r.fail("varint overflows 64 bits")
		return 0
	case n > 1 && r.b[n-1] == 0:
		r.fail("varint not in its shortest form")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads an element count and bounds it by the bytes left, each
// element taking at least minBytes, so that no count allocates more than
// the input can fill.
func (r *recordReader) count(minBytes int) int {
	v := r.uvarint()
	if r.err != nil {
		return 0
	}
	if v > uint64(len(r.b)/minBytes) {
		r.fail("count %d exceeds what the remaining %d bytes can hold", v, len(r.b))
		return 0
	}
	return int(v)
}

func (r *recordReader) str() string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.fail("string of %d bytes truncated: %d remain", n, len(r.b))
		return ""
	}
	return string(r.take(int(n), "string"))
}

func (r *recordReader) boolean() bool {
	switch v := r.u8(); v {
	case 0:
		return false
	case 1:
		return true
	default:
		r.fail("bool byte %d, want 0 or 1", v)
		return false
	}
}

func (r *recordReader) int32s() []int32 {
	n := r.count(4)
	if n == 0 {
		return nil
	}
	vs := make([]int32, n)
	for i := range vs {
		vs[i] = r.i32()
	}
	return vs
}

// record reads one framed record. The body length bounds the body: the
// fields of a known type and version must fill it exactly.
func (r *recordReader) record() Record {
	t := RecordType(r.u8())
	v := r.u8()
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if t < TypeBrokerRegistered || t > lastRecordType {
		r.fail("unknown record type %d", uint8(t))
		return nil
	}
	if v != recordFormatVersion {
		r.fail("unknown version %d of record %s (this decoder knows version %d)", v, t, recordFormatVersion)
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail("%s body of %d bytes truncated: %d remain", t, n, len(r.b))
		return nil
	}
	body := recordReader{b: r.take(int(n), "body")}
	rec := body.body(t)
	if body.err == nil && len(body.b) > 0 {
		body.fail("%d bytes after the fields of version %d", len(body.b), v)
	}
	if body.err != nil {
		r.fail("%s: %v", t, body.err)
		return nil
	}
	return rec
}

// body decodes the version-0 body of a record of type t.
func (r *recordReader) body(t RecordType) Record {
	switch t {
	case TypeBrokerRegistered:
		rec := &BrokerRegistered{BrokerID: r.i32(), Incarnation: r.uuid()}
		// An endpoint is at least two empty strings and two int16s.
		if n := r.count(6); n > 0 {
			rec.Endpoints = make([]Endpoint, n)
			for i := range rec.Endpoints {
				rec.Endpoints[i] = Endpoint{Name: r.str(), Host: r.str(), Port: r.u16(), SecurityProtocol: r.i16()}
			}
		}
		rec.Rack = r.str()
		return rec
	case TypeBrokerFenced:
		return &BrokerFenced{BrokerID: r.i32(), BrokerEpoch: r.i64()}
	case TypeBrokerUnfenced:
		return &BrokerUnfenced{BrokerID: r.i32(), BrokerEpoch: r.i64()}
	case TypeBrokerUnregistered:
		return &BrokerUnregistered{BrokerID: r.i32(), BrokerEpoch: r.i64()}
	case TypeTopic:
		rec := &Topic{Name: r.str(), ID: r.uuid()}
		if n := r.count(2); n > 0 {
			rec.Configs = make([]ConfigEntry, n)
			for i := range rec.Configs {
				rec.Configs[i] = ConfigEntry{Name: r.str(), Value: r.str()}
			}
		}
		return rec
	case TypeTopicRemoved:
		return &TopicRemoved{ID: r.uuid()}
	case TypePartition:
		return &Partition{TopicID: r.uuid(), Partition: r.i32(), Replicas: r.int32s(), ISR: r.int32s(),
			Leader: r.i32(), LeaderEpoch: r.i32(), PartitionEpoch: r.i32()}
	case TypePartitionChange:
		return &PartitionChange{TopicID: r.uuid(), Partition: r.i32(), Leader: r.i32(), ISR: r.int32s(),
			LeaderEpoch: r.i32(), PartitionEpoch: r.i32()}
	case TypeConfigChange:
		return &ConfigChange{ResourceType: r.i8(), ResourceName: r.str(), Name: r.str(), Value: r.str(), Delete: r.boolean()}
	case TypeNoOp:
		return &NoOp{}
	case TypeProducerIDsAllocated:
		return &ProducerIDsAllocated{BrokerID: r.i32(), BrokerEpoch: r.i64(), NextProducerID: r.i64()}
	}
	r.fail("unknown record type %d", uint8(t))
	return nil
}

// Validate checks what can be checked of a record on its own, whatever the
// image it would apply to (Image.Apply checks that). It reports every
// problem, naming the field and its value; the error wraps ErrInvalidRecord.
func Validate(r Record) error {
	var p recordProblems
	switch r := r.(type) {
	case nil:
		return fmt.Errorf("%w: nil record", ErrInvalidRecord)
	case *BrokerRegistered:
		if r == nil {
			break
		}
		p.brokerID("BrokerRegistered", r.BrokerID)
		if r.Incarnation == (UUID{}) {
			p.addf("BrokerRegistered.Incarnation is the zero UUID")
		}
		if len(r.Endpoints) == 0 {
			p.addf("BrokerRegistered.Endpoints is empty: a broker needs a listener")
		}
		for i, e := range r.Endpoints {
			if e.Name == "" {
				p.addf("BrokerRegistered.Endpoints[%d].Name is empty", i)
			}
			for _, prev := range r.Endpoints[:i] {
				if e.Name != "" && prev.Name == e.Name {
					p.addf("BrokerRegistered.Endpoints[%d].Name %q is listed twice", i, e.Name)
					break
				}
			}
			if e.Host == "" {
				p.addf("BrokerRegistered.Endpoints[%d].Host is empty", i)
			}
			if e.Port == 0 {
				p.addf("BrokerRegistered.Endpoints[%d].Port is 0", i)
			}
			if e.SecurityProtocol < 0 || e.SecurityProtocol > 3 {
				p.addf("BrokerRegistered.Endpoints[%d].SecurityProtocol %d is not one of Kafka's (0 PLAINTEXT, 1 SSL, 2 SASL_PLAINTEXT, 3 SASL_SSL)", i, e.SecurityProtocol)
			}
		}
		return p.err(r)
	case *BrokerFenced:
		if r == nil {
			break
		}
		p.brokerID("BrokerFenced", r.BrokerID)
		p.epoch("BrokerFenced.BrokerEpoch", r.BrokerEpoch)
		return p.err(r)
	case *BrokerUnfenced:
		if r == nil {
			break
		}
		p.brokerID("BrokerUnfenced", r.BrokerID)
		p.epoch("BrokerUnfenced.BrokerEpoch", r.BrokerEpoch)
		return p.err(r)
	case *BrokerUnregistered:
		if r == nil {
			break
		}
		p.brokerID("BrokerUnregistered", r.BrokerID)
		p.epoch("BrokerUnregistered.BrokerEpoch", r.BrokerEpoch)
		return p.err(r)
	case *Topic:
		if r == nil {
			break
		}
		if err := ValidateTopicName(r.Name); err != nil {
			p.addf("Topic.Name: %v", err)
		}
		p.topicID("Topic.ID", r.ID)
		for i, c := range r.Configs {
			if c.Name == "" {
				p.addf("Topic.Configs[%d].Name is empty", i)
				continue
			}
			for _, prev := range r.Configs[:i] {
				if prev.Name == c.Name {
					p.addf("Topic.Configs[%d].Name %q is listed twice", i, c.Name)
					break
				}
			}
		}
		return p.err(r)
	case *TopicRemoved:
		if r == nil {
			break
		}
		p.topicID("TopicRemoved.ID", r.ID)
		return p.err(r)
	case *Partition:
		if r == nil {
			break
		}
		p.topicID("Partition.TopicID", r.TopicID)
		p.partition("Partition.Partition", r.Partition)
		if len(r.Replicas) == 0 {
			p.addf("Partition.Replicas is empty")
		}
		p.brokerList("Partition.Replicas", r.Replicas)
		p.leaderAndISR("Partition", r.Leader, r.ISR)
		for _, b := range r.ISR {
			if b >= 0 && len(r.Replicas) > 0 && !containsInt32(r.Replicas, b) {
				p.addf("Partition.ISR %v: %d is not in Replicas %v", r.ISR, b, r.Replicas)
			}
		}
		p.epoch("Partition.LeaderEpoch", int64(r.LeaderEpoch))
		p.epoch("Partition.PartitionEpoch", int64(r.PartitionEpoch))
		return p.err(r)
	case *PartitionChange:
		if r == nil {
			break
		}
		p.topicID("PartitionChange.TopicID", r.TopicID)
		p.partition("PartitionChange.Partition", r.Partition)
		p.leaderAndISR("PartitionChange", r.Leader, r.ISR)
		p.epoch("PartitionChange.LeaderEpoch", int64(r.LeaderEpoch))
		p.epoch("PartitionChange.PartitionEpoch", int64(r.PartitionEpoch))
		return p.err(r)
	case *ConfigChange:
		if r == nil {
			break
		}
		switch r.ResourceType {
		case ResourceTopic:
			if err := ValidateTopicName(r.ResourceName); err != nil {
				p.addf("ConfigChange.ResourceName (a topic): %v", err)
			}
		case ResourceBroker:
			if r.ResourceName != "" && !isBrokerIDString(r.ResourceName) {
				p.addf("ConfigChange.ResourceName %q (a broker) is neither \"\" (the cluster default) nor a broker id", r.ResourceName)
			}
		default:
			p.addf("ConfigChange.ResourceType %d is not a known resource type (%d topic, %d broker)", r.ResourceType, ResourceTopic, ResourceBroker)
		}
		if r.Name == "" {
			p.addf("ConfigChange.Name is empty")
		}
		if r.Delete && r.Value != "" {
			p.addf("ConfigChange.Value %q is set on a Delete", r.Value)
		}
		return p.err(r)
	case *NoOp:
		if r == nil {
			break
		}
		return nil
	case *ProducerIDsAllocated:
		if r == nil {
			break
		}
		p.brokerID("ProducerIDsAllocated", r.BrokerID)
		p.epoch("ProducerIDsAllocated.BrokerEpoch", r.BrokerEpoch)
		// The first block starts at 0 and ends above it: a record always
		// leaves the next id positive.
		if r.NextProducerID <= 0 {
			p.addf("ProducerIDsAllocated.NextProducerID %d is not positive", r.NextProducerID)
		}
		return p.err(r)
	default:
		return fmt.Errorf("%w: unknown record type %T", ErrInvalidRecord, r)
	}
	return fmt.Errorf("%w: nil %T", ErrInvalidRecord, r)
}

// ValidateTopicName checks a topic name by Kafka's rules: 1 to 249
// characters of ASCII letters, digits, '.', '_' and '-', and not "." or "..".
func ValidateTopicName(name string) error {
	switch {
	case name == "":
		return errors.New("topic name is empty")
	case name == "." || name == "..":
		return fmt.Errorf("topic name %q is not allowed", name)
	case len(name) > maxTopicNameLength:
		return fmt.Errorf("topic name of %d characters is longer than %d", len(name), maxTopicNameLength)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("topic name %q has %q at byte %d: only ASCII letters, digits, '.', '_' and '-' are allowed", name, c, i)
		}
	}
	return nil
}

// isBrokerIDString reports whether s is a non-negative int32 written the
// one way strconv writes it, so a broker has one config resource name.
func isBrokerIDString(s string) bool {
	v, err := strconv.ParseInt(s, 10, 32)
	return err == nil && v >= 0 && strconv.FormatInt(v, 10) == s
}

func containsInt32(s []int32, v int32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// recordProblems collects what Validate finds wrong with one record.
type recordProblems struct{ list []string }

func (p *recordProblems) addf(format string, args ...any) {
	p.list = append(p.list, fmt.Sprintf(format, args...))
}

func (p *recordProblems) err(r Record) error {
	if len(p.list) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s: %s", ErrInvalidRecord, r.Type(), strings.Join(p.list, "; "))
}

func (p *recordProblems) brokerID(rec string, id int32) {
	if id < 0 {
		p.addf("%s.BrokerID %d is negative", rec, id)
	}
}

func (p *recordProblems) epoch(field string, e int64) {
	if e < 0 {
		p.addf("%s %d is negative", field, e)
	}
}

func (p *recordProblems) partition(field string, v int32) {
	if v < 0 {
		p.addf("%s %d is negative", field, v)
	}
}

func (p *recordProblems) topicID(field string, id UUID) {
	if id == (UUID{}) {
		p.addf("%s is the zero UUID", field)
	}
}

// brokerList checks a list of broker ids: each >= 0, none twice.
func (p *recordProblems) brokerList(field string, ids []int32) {
	for i, b := range ids {
		if b < 0 {
			p.addf("%s %v: %d is not a broker id", field, ids, b)
		}
		if containsInt32(ids[:i], b) {
			p.addf("%s %v lists %d twice", field, ids, b)
		}
	}
}

// leaderAndISR checks that a partition with a leader has it in a non-empty
// ISR; one without (NoLeader) may have any ISR, even an empty one.
func (p *recordProblems) leaderAndISR(rec string, leader int32, isr []int32) {
	p.brokerList(rec+".ISR", isr)
	if leader == NoLeader {
		return
	}
	if len(isr) == 0 {
		p.addf("%s.ISR is empty but Leader is %d", rec, leader)
	} else if !containsInt32(isr, leader) {
		p.addf("%s.Leader %d is not in ISR %v", rec, leader, isr)
	}
	if leader < 0 {
		p.addf("%s.Leader %d is neither a broker id nor NoLeader (%d)", rec, leader, NoLeader)
	}
}

// fitsBrokerEpoch reports whether a raft index can be a broker epoch.
func fitsBrokerEpoch(offset uint64) bool { return offset <= math.MaxInt64 }
