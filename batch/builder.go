package batch

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// BuilderOptions are the header fields of the batches a Builder writes.
//
// A producer that is neither idempotent nor transactional uses -1 for
// ProducerID, ProducerEpoch and BaseSequence, and -1 for PartitionLeaderEpoch
// (the broker assigns it); DefaultBuilderOptions returns exactly that. The zero
// BuilderOptions is not those defaults: its zeros are real ids.
type BuilderOptions struct {
	Codec Codec
	// Level is Codec's compression level on Kafka's scale (CompressLevel);
	// 0 is the codec's default (zstd's own 0 is its default too).
	Level                int
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
	opts BuilderOptions
	// buf is HeaderSize bytes of room for the batch header, then the
	// uncompressed records section, so that an uncompressed batch can be
	// finished where it lies (TakeBatch).
	buf    []byte
	count  int32
	baseTs int64
	maxTs  int64
	// Without compression, once a batch grows past crcFrom bytes the CRC
	// covers its records as they are added: crc is the CRC-32C of
	// buf[HeaderSize:crcEnd], brought up to date every crcChunk bytes
	// while they are still in the cache, and combined with the header's
	// when the batch is finished (crc32cCombine). A large batch's first
	// records are out of the cache by then, and reading them again for
	// the CRC would cost as much as copying them.
	crc    uint32
	crcEnd int
}

const (
	// crcFrom is the batch size from which the CRC runs as records are
	// added: smaller batches are still in the cache when finished, and a
	// combine costs about what the CRC of a few KiB does.
	crcFrom = 64 << 10
	// crcChunk is how many bytes of records the running CRC lets gather:
	// enough to make a call worth it, few enough to be in the L1 cache.
	crcChunk = 4 << 10
)

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
	b.clear()
	b.count = 0
	b.baseTs = 0
	b.maxTs = 0
}

// clear empties buf to the header's room. A buffer too small for that room
// is left empty; the first Add makes one.
func (b *Builder) clear() {
	b.crc, b.crcEnd = 0, HeaderSize
	if cap(b.buf) < HeaderSize {
		b.buf = b.buf[:0]
		return
	}
	b.buf = b.buf[:HeaderSize]
}

// records is the uncompressed records section.
func (b *Builder) records() []byte {
	if len(b.buf) < HeaderSize {
		return nil
	}
	return b.buf[HeaderSize:]
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
	if len(b.buf) < HeaderSize { // no room for the header yet
		b.buf = make([]byte, HeaderSize, 512)
		b.crc, b.crcEnd = 0, HeaderSize
	}
	b.buf = AppendRecord(b.buf, &r)
	b.count++
	if b.opts.Codec == CodecNone && len(b.buf) >= crcFrom && len(b.buf)-b.crcEnd >= crcChunk {
		b.crc = crc32.Update(b.crc, castagnoli, b.buf[b.crcEnd:])
		b.crcEnd = len(b.buf)
	}
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
func (b *Builder) UncompressedSize() int { return HeaderSize + len(b.records()) }

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
	records := b.records()
	if b.opts.Codec == CodecNone {
		if cap(dst)-len(dst) < HeaderSize+len(records) {
			nd := make([]byte, len(dst), len(dst)+HeaderSize+len(records))
			copy(nd, dst)
			dst = nd
		}
	}
	var hdr [HeaderSize]byte
	dst = append(dst, hdr[:]...)
	var err error
	level := b.opts.Level
	if level == 0 {
		level = DefaultLevel(b.opts.Codec)
	}
	if dst, err = CompressLevel(b.opts.Codec, level, dst, records); err != nil {
		return dst[:start], err
	}
	if err := b.putHeader(dst[start:]); err != nil {
		return dst[:start], err
	}
	return dst, nil
}

// TakeBatch is AppendBatch without a copy, for a caller that sends the batch
// and then drops it, as a producer does. Without compression the header is
// written into the room the builder keeps in front of its records and the
// builder's own buffer is returned: it belongs to the caller from then on,
// and the builder takes spare (emptied; nil will do) as its buffer instead.
// With a codec the records are compressed into spare, as AppendBatch(spare[:0])
// does, and the builder keeps its buffer. Either way, Reset the builder before
// its next batch. On an error the builder keeps its buffer and spare comes back
// empty.
func (b *Builder) TakeBatch(spare []byte) ([]byte, error) {
	if b.opts.Codec != CodecNone || len(b.buf) < HeaderSize {
		return b.AppendBatch(spare[:0])
	}
	if b.count == 0 {
		return spare[:0], fmt.Errorf("%w: no records added", ErrRecordCount)
	}
	if err := b.putHeader(b.buf); err != nil {
		return spare[:0], err
	}
	out := b.buf
	b.buf = spare[:0]
	return out, nil
}

// putHeader writes the header of the batch that fills dst, whose records
// section is already in place after HeaderSize bytes.
func (b *Builder) putHeader(dst []byte) error {
	size := len(dst)
	if size-LengthOverhead > math.MaxInt32 {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, size)
	}
	h := Header(dst)
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
	if b.opts.Codec != CodecNone || b.crcEnd == HeaderSize {
		h.SetCRC()
		return nil
	}
	// The records are the builder's, as added (copied into dst or not):
	// finish their running CRC and put the header's in front of it.
	if b.crcEnd < len(b.buf) {
		b.crc = crc32.Update(b.crc, castagnoli, b.buf[b.crcEnd:])
		b.crcEnd = len(b.buf)
	}
	be.PutUint32(h[offCRC:], crc32cCombine(CRC32C(h[CRCStart:HeaderSize]), b.crc, len(b.buf)-HeaderSize))
	return nil
}
