package batch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Byte offsets of the RecordBatch v2 header fields. All integers are big-endian.
const (
	offBaseOffset           = 0  // int64
	offBatchLength          = 8  // int32: bytes after this field
	offPartitionLeaderEpoch = 12 // int32
	offMagic                = 16 // int8
	offCRC                  = 17 // uint32: CRC-32C of bytes [21, end)
	offAttributes           = 21 // int16
	offLastOffsetDelta      = 23 // int32
	offBaseTimestamp        = 27 // int64
	offMaxTimestamp         = 35 // int64
	offProducerID           = 43 // int64
	offProducerEpoch        = 51 // int16
	offBaseSequence         = 53 // int32
	offRecordCount          = 57 // int32

	// HeaderSize is the size of the RecordBatch v2 header; records follow it.
	HeaderSize = 61
	// LengthOverhead is the part of a batch not counted by batchLength.
	LengthOverhead = 12
	// CRCStart is where the checksummed bytes begin. baseOffset, batchLength and
	// partitionLeaderEpoch lie before it, which is why a broker can assign
	// offsets and epochs without recomputing the CRC.
	CRCStart = 21
	// Magic is the only record format version Gregor accepts.
	Magic = 2
)

// Attribute bits.
const (
	attrCodecMask     = 0x07
	attrTimestampType = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
	attrDeleteHorizon = 0x40
)

// Codec is a compression codec id, as stored in the low three attribute bits.
type Codec int8

// The codecs Kafka defines.
const (
	CodecNone   Codec = 0
	CodecGzip   Codec = 1
	CodecSnappy Codec = 2
	CodecLZ4    Codec = 3
	CodecZstd   Codec = 4
)

var codecNames = [...]string{"none", "gzip", "snappy", "lz4", "zstd"}

func (c Codec) String() string {
	if c >= 0 && int(c) < len(codecNames) {
		return codecNames[c]
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// Valid reports whether c is a codec Kafka defines.
func (c Codec) Valid() bool { return c >= CodecNone && c <= CodecZstd }

// ParseCodec maps a compression.type name to its codec.
func ParseCodec(name string) (Codec, error) {
	for i, n := range codecNames {
		if n == name {
			return Codec(i), nil
		}
	}
	return 0, fmt.Errorf("batch: unknown compression.type %q (want none, gzip, snappy, lz4 or zstd)", name)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CRC32C returns the CRC-32C (Castagnoli) of b, the checksum Kafka uses.
func CRC32C(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// Header is a zero-copy view of one RecordBatch v2: its accessors read the
// fields at their byte offsets in place. A Header must hold at least HeaderSize
// bytes before any accessor is called (Validate or Iter ensure it); the records
// section, when present, follows at HeaderSize.
type Header []byte

func (h Header) i16(off int) int16 { return int16(binary.BigEndian.Uint16(h[off:])) }
func (h Header) i32(off int) int32 { return int32(binary.BigEndian.Uint32(h[off:])) }
func (h Header) i64(off int) int64 { return int64(binary.BigEndian.Uint64(h[off:])) }

func (h Header) BaseOffset() int64           { return h.i64(offBaseOffset) }
func (h Header) BatchLength() int32          { return h.i32(offBatchLength) }
func (h Header) PartitionLeaderEpoch() int32 { return h.i32(offPartitionLeaderEpoch) }
func (h Header) Magic() int8                 { return int8(h[offMagic]) }
func (h Header) CRC() uint32                 { return binary.BigEndian.Uint32(h[offCRC:]) }
func (h Header) Attributes() int16           { return h.i16(offAttributes) }
func (h Header) LastOffsetDelta() int32      { return h.i32(offLastOffsetDelta) }
func (h Header) BaseTimestamp() int64        { return h.i64(offBaseTimestamp) }
func (h Header) MaxTimestamp() int64         { return h.i64(offMaxTimestamp) }
func (h Header) ProducerID() int64           { return h.i64(offProducerID) }
func (h Header) ProducerEpoch() int16        { return h.i16(offProducerEpoch) }
func (h Header) BaseSequence() int32         { return h.i32(offBaseSequence) }
func (h Header) RecordCount() int32          { return h.i32(offRecordCount) }

// Size is the whole batch's size in bytes as its batchLength declares it.
func (h Header) Size() int { return int(h.BatchLength()) + LengthOverhead }

// LastOffset is the offset of the batch's last record.
func (h Header) LastOffset() int64 { return h.BaseOffset() + int64(h.LastOffsetDelta()) }

// NextOffset is the offset that follows the batch.
func (h Header) NextOffset() int64 { return h.LastOffset() + 1 }

func (h Header) Codec() Codec          { return Codec(h.Attributes() & attrCodecMask) }
func (h Header) LogAppendTime() bool   { return h.Attributes()&attrTimestampType != 0 }
func (h Header) Transactional() bool   { return h.Attributes()&attrTransactional != 0 }
func (h Header) Control() bool         { return h.Attributes()&attrControl != 0 }
func (h Header) Records() []byte       { return h[HeaderSize:h.Size()] }
func (h Header) SetBaseOffset(o int64) { binary.BigEndian.PutUint64(h[offBaseOffset:], uint64(o)) }
func (h Header) SetPartitionLeaderEpoch(e int32) {
	binary.BigEndian.PutUint32(h[offPartitionLeaderEpoch:], uint32(e))
}

// SetMaxTimestampLogAppendTime turns the batch into a LogAppendTime batch with the
// given max timestamp, as a broker does for topics with
// message.timestamp.type=LogAppendTime. Both fields are under the CRC, which is
// recomputed.
func (h Header) SetMaxTimestampLogAppendTime(ts int64) {
	binary.BigEndian.PutUint16(h[offAttributes:], uint16(h.Attributes()|attrTimestampType))
	binary.BigEndian.PutUint64(h[offMaxTimestamp:], uint64(ts))
	h.SetCRC()
}

// SetMaxTimestamp makes the batch a CreateTime batch with the given
// largest timestamp, as a broker does for a topic with
// message.timestamp.type=CreateTime (Kafka's setMaxTimestamp(CREATE_TIME,
// ts)): the producer's header may disagree with its records, or claim
// LogAppendTime, which would make every record read as ts. Both fields are
// under the CRC, which is recomputed.
func (h Header) SetMaxTimestamp(ts int64) {
	binary.BigEndian.PutUint16(h[offAttributes:], uint16(h.Attributes()&^attrTimestampType))
	binary.BigEndian.PutUint64(h[offMaxTimestamp:], uint64(ts))
	h.SetCRC()
}

// DeleteHorizon is the time from which a log cleaner may drop the batch's
// tombstones, if one stamped it (KIP-534): with attribute bit 6 set,
// baseTimestamp holds the horizon instead of the first record's timestamp.
// Record timestamps are baseTimestamp + timestampDelta either way.
func (h Header) DeleteHorizon() (ms int64, ok bool) {
	if h.Attributes()&attrDeleteHorizon == 0 {
		return 0, false
	}
	return h.BaseTimestamp(), true
}

// SetDeleteHorizon stamps the batch with a delete horizon, as Kafka's log
// cleaner does the first time it keeps a tombstone: attribute bit 6 set and
// baseTimestamp = ms. Record timestamps are relative to baseTimestamp, so the
// caller must have written the records' timestampDeltas relative to ms, and
// recomputes the CRC (SetCRC) afterwards: both fields are under it.
func (h Header) SetDeleteHorizon(ms int64) {
	binary.BigEndian.PutUint16(h[offAttributes:], uint16(h.Attributes()|attrDeleteHorizon))
	binary.BigEndian.PutUint64(h[offBaseTimestamp:], uint64(ms))
}

// ClearDeleteHorizon drops a delete horizon's mark (attribute bit 6),
// leaving baseTimestamp, and so every record's timestamp, as it is, and
// recomputes the CRC. A broker clears it from a produced batch: only its
// own cleaner may say when a batch's tombstones may go.
func (h Header) ClearDeleteHorizon() {
	binary.BigEndian.PutUint16(h[offAttributes:], uint16(h.Attributes()&^attrDeleteHorizon))
	h.SetCRC()
}

// SetCRC recomputes the CRC over bytes [21, Size()).
func (h Header) SetCRC() {
	binary.BigEndian.PutUint32(h[offCRC:], CRC32C(h[CRCStart:h.Size()]))
}

// Validate checks that b holds exactly one well-formed RecordBatch v2 of at most
// maxBytes bytes (maxBytes <= 0 means no limit): the length field agrees with
// len(b), magic is 2, the CRC-32C over bytes 21..end matches, lastOffsetDelta is
// the record count minus one, and the codec is one Kafka defines. It reads the
// bytes in place and does not allocate unless it fails. Records themselves are
// not decoded: that needs decompression, which callers do only when a check needs
// it (DecodeRecords).
func Validate(b []byte, maxBytes int) error {
	if len(b) < HeaderSize {
		return fmt.Errorf("%w: %d bytes", ErrShort, len(b))
	}
	h := Header(b)
	if n := int64(h.BatchLength()) + LengthOverhead; n != int64(len(b)) {
		if n > int64(len(b)) && maxBytes > 0 && n > int64(maxBytes) {
			return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, maxBytes)
		}
		return fmt.Errorf("%w: batchLength %d declares %d bytes, have %d", ErrLength, h.BatchLength(), n, len(b))
	}
	if maxBytes > 0 && len(b) > maxBytes {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), maxBytes)
	}
	if m := h.Magic(); m != Magic {
		return fmt.Errorf("%w: magic %d", ErrMagic, m)
	}
	if got, want := CRC32C(b[CRCStart:]), h.CRC(); got != want {
		return fmt.Errorf("%w: stored %08x, computed %08x", ErrCRC, want, got)
	}
	if c := h.Codec(); !c.Valid() {
		return fmt.Errorf("%w: codec id %d", ErrCodec, int8(c))
	}
	n := h.RecordCount()
	if n <= 0 {
		return fmt.Errorf("%w: %d records", ErrRecordCount, n)
	}
	if d := h.LastOffsetDelta(); int64(d) != int64(n)-1 {
		return fmt.Errorf("%w: lastOffsetDelta %d with %d records", ErrOffsetDelta, d, n)
	}
	return nil
}

// ValidateStored is Validate for a batch read back from a log, which
// compaction may have thinned: the cleaner drops records but keeps a
// batch's baseOffset and lastOffsetDelta, so that offsets never move and
// producer sequences stay intact (as Kafka's cleaner does), and a batch may
// hold fewer records than its offsets span. A consumer must accept that; a
// producer's batch must pass Validate.
func ValidateStored(b []byte) error {
	err := Validate(b, 0)
	// Validate checks lastOffsetDelta last: failing there, it passed the rest.
	if h := Header(b); errors.Is(err, ErrOffsetDelta) && int64(h.RecordCount()) <= int64(h.LastOffsetDelta())+1 {
		return nil
	}
	return err
}

// ValidateFetched is ValidateStored for a batch a consumer fetched from any
// Kafka-compatible broker, which may also hold no record at all: Kafka's
// cleaner keeps an idempotent producer's last batch as an empty header
// (recordCount 0, its offsets still spanned) when compaction removes all its
// records, so that the producer's sequence survives. A consumer reads past
// it, as Java's does (it checks such a batch's size and CRC only). Gregor's
// own cleaner drops an emptied batch, so its log recovery keeps to
// ValidateStored, for which an empty batch is damage.
func ValidateFetched(b []byte) error {
	err := ValidateStored(b)
	// Validate checks recordCount after everything but lastOffsetDelta.
	if h := Header(b); errors.Is(err, ErrRecordCount) && h.RecordCount() == 0 && h.LastOffsetDelta() >= 0 {
		return nil
	}
	return err
}
