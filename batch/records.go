package batch

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
)

// RecordHeader is one header of a record. Kafka headers always have a key; a nil
// Value is a null value, distinct from an empty one.
type RecordHeader struct {
	Key, Value []byte
}

// Record is one record of a RecordBatch v2, as it sits inside the (decompressed)
// records section. A nil Key or Value is null, distinct from an empty one. When a
// RecordReader fills a Record, Key, Value and the headers' slices alias the bytes
// being read: nothing is copied, so they are valid only as long as those bytes are.
type Record struct {
	Attributes     int8
	TimestampDelta int64 // milliseconds after the batch's base timestamp
	OffsetDelta    int32 // offset after the batch's base offset
	Key, Value     []byte
	Headers        []RecordHeader
}

// varintSize is the size of v as a zigzag varint (Kafka's varint and varlong
// share the encoding; an int32 widened to int64 encodes identically).
func varintSize(v int64) int {
	ux := uint64(v)<<1 ^ uint64(v>>63)
	return (bits.Len64(ux|1) + 6) / 7
}

// bytesFieldSize is the size of a nullable byte string: varint length (-1 for
// null), then the bytes.
func bytesFieldSize(b []byte) int {
	if b == nil {
		return 1
	}
	return varintSize(int64(len(b))) + len(b)
}

func recordBodySize(r *Record) int {
	n := 1 + varintSize(r.TimestampDelta) + varintSize(int64(r.OffsetDelta)) +
		bytesFieldSize(r.Key) + bytesFieldSize(r.Value) + varintSize(int64(len(r.Headers)))
	for i := range r.Headers {
		h := &r.Headers[i]
		n += varintSize(int64(len(h.Key))) + len(h.Key) + bytesFieldSize(h.Value)
	}
	return n
}

// RecordSize is the encoded size of r, including its length prefix: the number
// of bytes AppendRecord adds.
func RecordSize(r *Record) int {
	n := recordBodySize(r)
	return varintSize(int64(n)) + n
}

func appendBytesField(dst, b []byte) []byte {
	if b == nil {
		return append(dst, 1) // zigzag(-1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

// AppendRecord appends r, prefixed by its length, to dst. A nil header key is
// written as an empty one: Kafka has no null header keys.
func AppendRecord(dst []byte, r *Record) []byte {
	body := recordBodySize(r)
	dst = slices.Grow(dst, varintSize(int64(body))+body)
	dst = binary.AppendVarint(dst, int64(body))
	dst = append(dst, byte(r.Attributes))
	dst = binary.AppendVarint(dst, r.TimestampDelta)
	dst = binary.AppendVarint(dst, int64(r.OffsetDelta))
	dst = appendBytesField(dst, r.Key)
	dst = appendBytesField(dst, r.Value)
	dst = binary.AppendVarint(dst, int64(len(r.Headers)))
	for i := range r.Headers {
		h := &r.Headers[i]
		dst = binary.AppendVarint(dst, int64(len(h.Key)))
		dst = append(dst, h.Key...)
		dst = appendBytesField(dst, h.Value)
	}
	return dst
}

// readVarint decodes a zigzag varint of at most 5 bytes whose value fits in 32
// bits. n > 0 is the number of bytes read; n == 0 means the input ended first,
// n < 0 that the varint is too long or overflows.
func readVarint(b []byte) (v int32, n int) {
	if len(b) > 0 && b[0] < 0x80 { // one-byte fast path: most lengths and deltas
		return int32(b[0]>>1) ^ -int32(b[0]&1), 1
	}
	var ux uint32
	for i := 0; i < len(b); i++ {
		c := b[i]
		if i == 4 && c > 0x0f {
			return 0, -1
		}
		ux |= uint32(c&0x7f) << (7 * i)
		if c < 0x80 {
			return int32(ux>>1) ^ -int32(ux&1), i + 1
		}
	}
	return 0, 0
}

// readVarlong decodes a zigzag varlong of at most 10 bytes; n as for readVarint.
func readVarlong(b []byte) (v int64, n int) {
	if len(b) > 0 && b[0] < 0x80 {
		return int64(b[0]>>1) ^ -int64(b[0]&1), 1
	}
	var ux uint64
	for i := 0; i < len(b); i++ {
		c := b[i]
		if i == 9 && c > 0x01 {
			return 0, -1
		}
		ux |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return int64(ux>>1) ^ -int64(ux&1), i + 1
		}
	}
	return 0, 0
}

// RecordReader decodes the records of one batch's (decompressed) records section
// in place. It remembers its first error:
//
//	rr := batch.NewRecordReader(records, h.RecordCount())
//	var r batch.Record
//	for rr.Next(&r) { … }
//	if err := rr.Err(); err != nil { … }
//
// Every malformation, including fewer or more records than the count and
// trailing bytes, is an error wrapping ErrRecord. RecordReader never panics and
// does not allocate once the Record's Headers has grown to the most headers a
// record carries.
type RecordReader struct {
	b     []byte
	pos   int
	count int32
	index int32
	err   error
}

// NewRecordReader returns a reader over records, which must hold exactly count
// records.
func NewRecordReader(records []byte, count int32) RecordReader {
	rr := RecordReader{b: records, count: count}
	if count < 0 {
		rr.err = fmt.Errorf("%w: negative record count %d", ErrRecord, count)
	}
	return rr
}

// Err is the first malformation found, or nil if every record so far was
// well-formed and, once Next has returned false, the section held exactly the
// declared number of records.
func (rr *RecordReader) Err() error { return rr.err }

// Remaining is the number of records not yet returned by Next.
func (rr *RecordReader) Remaining() int32 { return rr.count - rr.index }

func (rr *RecordReader) fail(start int, format string, args ...any) bool {
	rr.err = fmt.Errorf("%w: record %d of %d at byte %d: %s",
		ErrRecord, rr.index, rr.count, start, fmt.Sprintf(format, args...))
	return false
}

// varintErr describes a failed varint read of the named field.
func varintErr(n int) string {
	if n == 0 {
		return "truncated"
	}
	return "too long"
}

// Next decodes the next record into r and reports whether there was one. It
// reuses r.Headers' backing array. On false, Err tells a clean end from a
// malformed section.
func (rr *RecordReader) Next(r *Record) bool {
	if rr.err != nil {
		return false
	}
	start := rr.pos
	if rr.index >= rr.count {
		if start != len(rr.b) {
			return rr.fail(start, "%d trailing bytes after the last record", len(rr.b)-start)
		}
		return false
	}
	if start >= len(rr.b) {
		return rr.fail(start, "records section ends after %d records", rr.index)
	}
	length, n := readVarint(rr.b[start:])
	if n <= 0 {
		return rr.fail(start, "record length varint %s", varintErr(n))
	}
	lenSize := n
	body := rr.b[start+n:]
	if length < 0 || int(length) > len(body) {
		return rr.fail(start, "record length %d, but %d bytes remain", length, len(body))
	}
	body = body[:length]
	p := 0
	if len(body) < 1 {
		return rr.fail(start, "record length %d holds no attributes", length)
	}
	r.Attributes = int8(body[0])
	p++
	ts, n := readVarlong(body[p:])
	if n <= 0 {
		return rr.fail(start, "timestampDelta varlong %s within record length %d", varintErr(n), length)
	}
	r.TimestampDelta = ts
	p += n
	od, n := readVarint(body[p:])
	if n <= 0 {
		return rr.fail(start, "offsetDelta varint %s within record length %d", varintErr(n), length)
	}
	r.OffsetDelta = od
	p += n
	var ok bool
	if r.Key, p, ok = rr.bytesField(body, p, start, "key"); !ok {
		return false
	}
	if r.Value, p, ok = rr.bytesField(body, p, start, "value"); !ok {
		return false
	}
	nh, n := readVarint(body[p:])
	if n <= 0 {
		return rr.fail(start, "header count varint %s within record length %d", varintErr(n), length)
	}
	p += n
	// Each header takes at least two bytes, which bounds the count by the
	// bytes present before anything is appended.
	if nh < 0 || int(nh) > (len(body)-p)/2 {
		return rr.fail(start, "header count %d, but %d bytes remain in the record", nh, len(body)-p)
	}
	hs := r.Headers[:0]
	for i := int32(0); i < nh; i++ {
		kl, n := readVarint(body[p:])
		if n <= 0 {
			return rr.fail(start, "header %d key length varint %s", i, varintErr(n))
		}
		p += n
		if kl < 0 || int(kl) > len(body)-p {
			return rr.fail(start, "header %d key length %d, but %d bytes remain in the record", i, kl, len(body)-p)
		}
		key := body[p : p+int(kl) : p+int(kl)]
		p += int(kl)
		var val []byte
		if val, p, ok = rr.bytesField(body, p, start, "header value"); !ok {
			return false
		}
		hs = append(hs, RecordHeader{Key: key, Value: val})
	}
	r.Headers = hs
	if p != len(body) {
		return rr.fail(start, "record length %d, but its fields end after %d bytes", length, p)
	}
	rr.pos = start + lenSize + int(length)
	rr.index++
	return true
}

// bytesField reads a nullable byte string at body[p:].
func (rr *RecordReader) bytesField(body []byte, p, start int, what string) ([]byte, int, bool) {
	l, n := readVarint(body[p:])
	if n <= 0 {
		return nil, p, rr.fail(start, "%s length varint %s", what, varintErr(n))
	}
	p += n
	if l == -1 {
		return nil, p, true
	}
	if l < 0 || int(l) > len(body)-p {
		return nil, p, rr.fail(start, "%s length %d, but %d bytes remain in the record", what, l, len(body)-p)
	}
	end := p + int(l)
	return body[p:end:end], end, true
}

// DecodeRecords returns a reader over the records of the batch h. An
// uncompressed batch is read in place. A compressed one is decompressed into
// scratch's backing array (grown if needed, never past maxSize plus a small
// slack), which is returned so the caller can reuse it for the next batch; the
// reader aliases it. Decompressing more than maxSize bytes fails with
// ErrDecompressSize, undecodable input with ErrDecompress.
//
// h must hold one whole batch (Validate checks that); DecodeRecords checks only
// what it needs not to misread.
func DecodeRecords(h Header, scratch []byte, maxSize int) (RecordReader, []byte, error) {
	if len(h) < HeaderSize {
		return RecordReader{}, scratch, fmt.Errorf("%w: %d bytes", ErrShort, len(h))
	}
	if n := int64(h.BatchLength()) + LengthOverhead; n < HeaderSize || n > int64(len(h)) {
		return RecordReader{}, scratch, fmt.Errorf("%w: batchLength %d declares %d bytes, have %d", ErrLength, h.BatchLength(), n, len(h))
	}
	c := h.Codec()
	if !c.Valid() {
		return RecordReader{}, scratch, fmt.Errorf("%w: codec id %d", ErrCodec, int8(c))
	}
	if c == CodecNone {
		return NewRecordReader(h.Records(), h.RecordCount()), scratch, nil
	}
	out, err := Decompress(c, scratch[:0], h.Records(), maxSize)
	if err != nil {
		return RecordReader{}, out, err
	}
	return NewRecordReader(out, h.RecordCount()), out, nil
}
