// Package batch implements Kafka's RecordBatch v2 format (magic 2), the unit
// in which records travel in Produce and Fetch requests and lie in segment
// files: the bytes on the wire and on disk are the same, so a broker validates
// a batch in place, rewrites two header fields, and writes it out unchanged.
//
// The package provides:
//
//   - Header, a zero-copy view of a batch's header fields; Validate, which
//     checks one batch (lengths, magic, CRC-32C, lastOffsetDelta, record count,
//     codec) without allocating; ValidateStored and ValidateFetched, its
//     relaxations for a batch a log cleaner thinned (a log's recovery) or
//     emptied (a consumer reading from Kafka); Iter, which walks batches laid
//     end to end and tells a clean end from a torn one.
//   - RecordReader and AppendRecord, which decode and encode the records inside
//     a batch; DecodeRecords, which decompresses a batch's records first if
//     needed.
//   - Compress and Decompress for the codecs Kafka defines (gzip, snappy raw and
//     xerial-framed, the LZ4 frame format, zstd); SizeHint, the size a
//     compressed stream's framing declares, read without decoding, so that a
//     caller can bound memory by what a batch will take.
//   - Builder, which accumulates records and writes a whole batch, as a producer
//     does; Recompress, for a topic whose compression.type is not "producer".
//   - Accumulator, the producer's batching (DESIGN §2): one open batch per
//     partition, closed at batch.size or after linger.ms, drained per broker
//     in a rotating order when the broker can take a request, compressed once
//     when drained, all of it bounded by buffer.memory (Append blocks up to
//     max.block.ms, then fails).
//
// Everything that reads untrusted bytes is bounded: decoders check every length
// against the bytes present before using it, never panic, and decompression
// stops with ErrDecompressSize at the caller's maxSize whatever sizes the input
// claims. Each failure has its own sentinel error, which unwraps to the Kafka
// error a broker answers with (see Error and KafkaCode).
//
// Nothing here keeps shared mutable state except the codec pools
// (sync.Pool) and the Accumulator, whose mutex guards its batches and memory
// accounting (producers append on their goroutines, the sender drains on
// its own); a Builder, RecordReader or Iter belongs to one goroutine.
//
// # RecordBatch v2 layout
//
// All integers are big-endian. CRC-32C (Castagnoli) covers bytes 21 to the
// end, so baseOffset and partitionLeaderEpoch, which a leader rewrites on
// append, lie outside it.
//
//	offset size field                 notes
//	     0    8 baseOffset            offset of the first record
//	     8    4 batchLength           bytes after this field: total size - 12
//	    12    4 partitionLeaderEpoch  set by the leader on append
//	    16    1 magic                 2
//	    17    4 crc                   CRC-32C of bytes [21, end), unsigned
//	    21    2 attributes            see below
//	    23    4 lastOffsetDelta       record count - 1 (as produced)
//	    27    8 baseTimestamp         first record's timestamp, ms; the delete
//	                                  horizon instead when attribute bit 6 is set
//	    35    8 maxTimestamp          largest timestamp, ms
//	    43    8 producerId            -1 without idempotence
//	    51    2 producerEpoch         -1 without idempotence
//	    53    4 baseSequence          -1 without idempotence
//	    57    4 recordCount           > 0 (0 in a batch Kafka's cleaner emptied)
//	    61    … records               recordCount records, compressed as one
//	                                  block if the codec is not none
//
// Attributes (int16):
//
//	bits 0-2  codec: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd
//	bit  3    timestamp type: 0 CreateTime, 1 LogAppendTime
//	bit  4    transactional
//	bit  5    control batch (transaction markers)
//	bit  6    delete horizon set: a log cleaner kept tombstones in the batch,
//	          and may drop them from baseTimestamp on (KIP-534, compacted topics)
//	bits 7-15 unused, 0
//
// Each record (varint and varlong are zigzag-encoded base-128, like protobuf
// sint32/sint64; a length of -1 means null):
//
//	length          varint   bytes of the record after this field
//	attributes      int8     unused, 0
//	timestampDelta  varlong  ms after baseTimestamp
//	offsetDelta     varint   offset after baseOffset
//	keyLength       varint   -1: null key
//	key             bytes
//	valueLength     varint   -1: null value
//	value           bytes
//	headerCount     varint
//	headers         headerCount × {
//	    keyLength   varint   never null
//	    key         bytes
//	    valueLength varint   -1: null value
//	    value       bytes
//	}
//
// Compressed payloads: gzip (RFC 1952); snappy as one raw block, or, as Java
// clients send, xerial framing ("\x82SNAPPY\x00", int32 version, int32
// compatible version, then [int32 length][raw block] chunks); LZ4 in the
// standard frame format (Kafka's for magic >= 1), one frame of independent
// blocks, as Kafka reads it: bytes after its end mark are ignored; zstd
// frames.
package batch
