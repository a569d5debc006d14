package batch

import (
	"encoding/binary"
	"fmt"
	"math"
)

// BuilderOptions are the header fields of the batches a Builder writes.
//
// A producer that is neither idempotent nor transactional uses -1 for
// ProducerID, ProducerEpoch and BaseSequence, and -1 for PartitionLeaderEpoch
// (the broker assigns it); DefaultBuilderOptions returns exactly that. The zero
// BuilderOptions is not those defaults: its zeros are real ids.
type BuilderOptions struct {
	Codec                Codec
	ProducerID           int64 // -1: no producer id
	ProducerEpoch        int16 // -1: no producer epoch
	BaseSequence         int32 // -1: no sequence numbers
	Transactional        bool
	PartitionLeaderEpoch int32 // -1: unknown, set by the leader on append
}

// DefaultBuilderOptions are the options of a plain (non-idempotent,
// non-transactional) producer sending uncompressed batches.
func DefaultBuilderOptions() BuilderOptions {
	return BuilderOptions{
		Codec:                CodecNone,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		BaseSequence:         -1,
		PartitionLeaderEpoch: -1,
	}
}

// Builder accumulates records and writes them as one RecordBatch v2. It keeps
// its buffers across Reset, so a Builder reused for batch after batch does not
// allocate once its buffers have grown to the batch size.
//
//	b := batch.NewBuilder(batch.DefaultBuilderOptions())
//	b.Add(tsMs, key, value, nil)
//	out, err := b.AppendBatch(out[:0])
type Builder struct {
	opts    BuilderOptions
	records []byte // the uncompressed records section
	count   int32
	baseTs  int64
	maxTs   int64
}

// NewBuilder returns an empty Builder writing batches with opts.
func NewBuilder(opts BuilderOptions) *Builder {
	b := new(Builder)
	b.Reset(opts)
	return b
}

// Reset empties the builder, keeping its buffers, and sets the options for
// the next batch. The zero Builder is usable after Reset.
func (b *Builder) Reset(opts BuilderOptions) {
	b.opts = opts
	b.records = b.records[:0]
	b.count = 0
	b.baseTs = 0
	b.maxTs = 0
}

// Options returns the options the builder writes with.
func (b *Builder) Options() BuilderOptions { return b.opts }

// Add appends a record. Its offsetDelta is its index in the batch and its
// timestampDelta is relative to the first record's timestamp, which becomes the
// batch's base timestamp; the batch's max timestamp is the largest added. A nil
// key or value is null. The bytes are copied.
func (b *Builder) Add(timestampMs int64, key, value []byte, headers []RecordHeader) {
	if b.count == 0 {
		b.baseTs, b.maxTs = timestampMs, timestampMs
	} else if timestampMs > b.maxTs {
		b.maxTs = timestampMs
	}
	r := Record{
		TimestampDelta: timestampMs - b.baseTs,
		OffsetDelta:    b.count,
		Key:            key,
		Value:          value,
		Headers:        headers,
	}
	b.records = AppendRecord(b.records, &r)
	b.count++
}

// SizeWith is what UncompressedSize would be after adding this record: a
// producer uses it to close a batch before it passes batch.size.
func (b *Builder) SizeWith(timestampMs int64, key, value []byte, headers []RecordHeader) int {
	base := timestampMs
	if b.count > 0 {
		base = b.baseTs
	}
	r := Record{
		TimestampDelta: timestampMs - base,
		OffsetDelta:    b.count,
		Key:            key,
		Value:          value,
		Headers:        headers,
	}
	return b.UncompressedSize() + RecordSize(&r)
}

// Records is the number of records added since the last Reset.
func (b *Builder) Records() int { return int(b.count) }

// UncompressedSize is the size of the batch written without compression: the
// 61-byte header plus the records. With a codec, the written batch is the
// header plus the compressed records.
func (b *Builder) UncompressedSize() int { return HeaderSize + len(b.records) }

// AppendBatch appends the batch to dst: baseOffset 0, the options' producer
// fields and leader epoch, magic 2, the codec in the attributes, the records
// (compressed once here) and the CRC-32C. It fails with ErrRecordCount if no
// record was added and with ErrTooLarge if the batch would not fit the int32
// length field. The builder is left as it was; call Reset to start the next
// batch.
func (b *Builder) AppendBatch(dst []byte) ([]byte, error) {
	if b.count == 0 {
		return dst, fmt.Errorf("%w: no records added", ErrRecordCount)
	}
	if !b.opts.Codec.Valid() {
		return dst, fmt.Errorf("%w: codec id %d", ErrCodec, int8(b.opts.Codec))
	}
	start := len(dst)
	if b.opts.Codec == CodecNone {
		if cap(dst)-len(dst) < HeaderSize+len(b.records) {
			nd := make([]byte, len(dst), len(dst)+HeaderSize+len(b.records))
			copy(nd, dst)
			dst = nd
		}
	}
	var hdr [HeaderSize]byte
	dst = append(dst, hdr[:]...)
	var err error
	if dst, err = Compress(b.opts.Codec, dst, b.records); err != nil {
		return dst[:start], err
	}
	size := len(dst) - start
	if size-LengthOverhead > math.MaxInt32 {
		return dst[:start], fmt.Errorf("%w: %d bytes", ErrTooLarge, size)
	}
	h := Header(dst[start:])
	attrs := int16(b.opts.Codec) & attrCodecMask
	if b.opts.Transactional {
		attrs |= attrTransactional
	}
	be := binary.BigEndian
	be.PutUint64(h[offBaseOffset:], 0)
	be.PutUint32(h[offBatchLength:], uint32(size-LengthOverhead))
	be.PutUint32(h[offPartitionLeaderEpoch:], uint32(b.opts.PartitionLeaderEpoch))
	h[offMagic] = Magic
	be.PutUint16(h[offAttributes:], uint16(attrs))
	be.PutUint32(h[offLastOffsetDelta:], uint32(b.count-1))
	be.PutUint64(h[offBaseTimestamp:], uint64(b.baseTs))
	be.PutUint64(h[offMaxTimestamp:], uint64(b.maxTs))
	be.PutUint64(h[offProducerID:], uint64(b.opts.ProducerID))
	be.PutUint16(h[offProducerEpoch:], uint16(b.opts.ProducerEpoch))
	be.PutUint32(h[offBaseSequence:], uint32(b.opts.BaseSequence))
	be.PutUint32(h[offRecordCount:], uint32(b.count))
	h.SetCRC()
	return dst, nil
}
