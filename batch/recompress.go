package batch

import "encoding/binary"

// Recompress appends to dst the batch h with its records compressed by c at
// level (Kafka's scale, as CompressLevel) instead of h's codec: what a
// broker does for a topic whose compression.type is not "producer". Every
// header field but the codec bits, the length and the CRC stays as the
// producer sent it. maxDecompressed bounds the records' uncompressed size (a
// bomb is an error, as in Decompress).
func Recompress(dst []byte, h Header, c Codec, level, maxDecompressed int) ([]byte, error) {
	records := h.Records()
	if h.Codec() != CodecNone {
		var err error
		if records, err = Decompress(h.Codec(), nil, records, maxDecompressed); err != nil {
			return dst, err
		}
	}
	return RecompressRecords(dst, h, records, c, level)
}

// RecompressRecords is Recompress for a caller that already holds h's
// records section uncompressed (records): a broker that decompressed the
// batch to check its records need not decompress it again.
func RecompressRecords(dst []byte, h Header, records []byte, c Codec, level int) ([]byte, error) {
	start := len(dst)
	out := append(dst, h[:HeaderSize]...)
	out, err := CompressLevel(c, level, out, records)
	if err != nil {
		return dst, err
	}
	nh := Header(out[start:])
	attrs := uint16(h.Attributes())&^attrCodecMask | uint16(c)&attrCodecMask
	binary.BigEndian.PutUint16(nh[offAttributes:], attrs)
	binary.BigEndian.PutUint32(nh[offBatchLength:], uint32(len(nh)-offBatchLength-4))
	nh.SetCRC()
	return out, nil
}
