package batch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"

	"github.com/klauspost/compress/s2"
)

// SizeHint is the size src, compressed with c, says it decompresses to,
// read from its framing without decoding anything: the sizes a snappy
// block or xerial chunk declares, a bound from zstd's frame and block
// headers (zstdOutputBound), one from the first LZ4 frame's block headers
// and block size (the only frame Decompress reads), the length a gzip
// stream's trailer records. It reports false when the framing says nothing
// it can trust enough to be worth using (an LZ4 frame Kafka would refuse, a
// gzip stream too short for its trailer, a walk that finds the framing
// broken); the decoder then finds out what is wrong.
//
// It lets a caller bound memory by the size a batch will take rather than
// by the largest any batch may take. It is a hint, not a promise: only the
// decoders check the data, and a gzip stream of several members records
// only its last member's length, so a caller that passes the hint to
// Decompress as maxSize and gets ErrDecompressSize must decide again with
// its real limit. For the output a well-formed input has, the hint is an
// upper bound, and for snappy, a zstd frame with its content size, gzip and
// an LZ4 frame with its content size, exact.
func SizeHint(c Codec, src []byte) (int, bool) {
	var n uint64
	var ok bool
	switch c {
	case CodecNone:
		n, ok = uint64(len(src)), true
	case CodecGzip:
		n, ok = gzipSizeHint(src)
	case CodecSnappy:
		n, ok = snappySizeHint(src)
	case CodecLZ4:
		n, ok = lz4SizeHint(src)
	case CodecZstd:
		n, ok = zstdOutputBound(src)
	}
	return int(min(n, math.MaxInt)), ok
}

// gzipSizeHint reads ISIZE, the last four bytes of a gzip member (RFC
// 1952): its uncompressed length modulo 2^32.
func gzipSizeHint(src []byte) (uint64, bool) {
	const minMember = 10 + 2 + 8 // header, the smallest deflate stream, trailer
	if len(src) < minMember || src[0] != 0x1f || src[1] != 0x8b {
		return 0, false
	}
	return uint64(binary.LittleEndian.Uint32(src[len(src)-4:])), true
}

// snappySizeHint adds up the lengths a raw block or each xerial chunk
// declares, which decodeSnappy holds them to.
func snappySizeHint(src []byte) (uint64, bool) {
	if !bytes.HasPrefix(src, xerialMagic) {
		n, err := s2.DecodedLen(src)
		return uint64(n), err == nil
	}
	total, err := xerialDecodedLen(src)
	return total, err == nil
}

// lz4SizeHint is the bound lz4FirstFrame finds on the first frame's
// output, the only output Decompress takes from an LZ4 stream.
func lz4SizeHint(src []byte) (uint64, bool) {
	_, bound, err := lz4FirstFrame(src)
	return bound, err == nil
}

// lz4FirstFrame checks the LZ4 frame that starts src as Kafka's reader
// (Lz4BlockInputStream, for the LZ4 frame format Kafka writes) does, and
// walks its blocks without decoding them: magic, FLG, BD, an optional
// content size, the descriptor's checksum, then blocks of [uint32 size,
// high bit set when stored uncompressed][data][optional checksum] up to a
// zero size, then an optional content checksum. It returns the frame's
// length in bytes and a bound on its output: a compressed block decodes to
// at most the frame's block size, a stored one to its own size, a frame
// with a content size to that.
//
// Kafka refuses what its writer never produces: another magic (a legacy
// or skippable frame), a version other than 1, dependent blocks, a set
// reserved bit (the dictionary ID flag is one to Kafka), a block size
// other than 64 KiB to 4 MiB, a block larger than that. Its reader also
// stops at the first frame's end mark, so bytes after it are not looked
// at. The errors are ErrDecompress with Kafka's words.
func lz4FirstFrame(src []byte) (size int, bound uint64, err error) {
	const (
		frameMagic      = 0x184D2204
		flagReserved    = 3 // dictionary ID and a reserved bit, to Kafka both reserved
		flagContentSum  = 1 << 2
		flagSize        = 1 << 3
		flagBlockSum    = 1 << 4
		flagIndependent = 1 << 5
		bdReserved2     = 0x0f
		bdReserved3     = 0x80
		prematureEOS    = "Stream ended prematurely"
	)
	refuse := func(format string, args ...any) (int, uint64, error) {
		return 0, 0, fmt.Errorf("%w: %s: %s", ErrDecompress, CodecLZ4, fmt.Sprintf(format, args...))
	}
	if len(src) < 6 {
		return refuse(prematureEOS)
	}
	if binary.LittleEndian.Uint32(src) != frameMagic {
		return refuse("Stream unsupported (invalid magic bytes)")
	}
	flg, bd := src[4], src[5]
	switch {
	case flg&flagReserved != 0:
		return refuse("Reserved bits must be 0")
	case flg&flagIndependent == 0:
		return refuse("Dependent block stream is unsupported")
	case flg>>6 != 1:
		return refuse("Version %d is unsupported", flg>>6)
	case bd&bdReserved2 != 0:
		return refuse("Reserved2 field must be 0")
	case bd>>4&7 < 4:
		return refuse("Block size value must be between 4 and 7")
	case bd&bdReserved3 != 0:
		return refuse("Reserved3 field must be 0")
	}
	blockMax := uint64(1) << (2*(bd>>4&7) + 8)
	descriptor := 2 // FLG, BD; the checksum follows
	if flg&flagSize != 0 {
		descriptor += 8
	}
	if len(src) < 4+descriptor+1 {
		return refuse(prematureEOS)
	}
	if src[4+descriptor] != byte(xxh32Short(src[4:4+descriptor])>>8) {
		return refuse("Stream frame descriptor corrupted")
	}
	rest := src[4+descriptor+1:]
	for {
		if len(rest) < 4 {
			return refuse(prematureEOS)
		}
		bs := binary.LittleEndian.Uint32(rest)
		rest = rest[4:]
		if bs == 0 {
			break
		}
		n := uint64(bs &^ (1 << 31))
		if n > blockMax {
			return refuse("Block size %d exceeded max: %d", n, blockMax)
		}
		if bs>>31 != 0 {
			bound += n
		} else {
			bound += blockMax
		}
		if flg&flagBlockSum != 0 {
			n += 4
		}
		if n > uint64(len(rest)) {
			return refuse(prematureEOS)
		}
		rest = rest[n:]
	}
	if flg&flagContentSum != 0 {
		if len(rest) < 4 {
			return refuse(prematureEOS)
		}
		rest = rest[4:]
	}
	if flg&flagSize != 0 {
		bound = min(bound, binary.LittleEndian.Uint64(src[6:]))
	}
	return len(src) - len(rest), bound, nil
}

// xxh32Short is XXH32 with seed 0 of fewer than 16 bytes, as an LZ4 frame
// descriptor's checksum needs (its second byte, over at most 10 bytes
// here): with no full 16-byte stripe, only the tail rounds and the final
// mix remain.
func xxh32Short(b []byte) uint32 {
	const p1, p2, p3, p4, p5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393
	h := uint32(p5) + uint32(len(b))
	for ; len(b) >= 4; b = b[4:] {
		h = bits.RotateLeft32(h+binary.LittleEndian.Uint32(b)*p3, 17) * p4
	}
	for _, c := range b {
		h = bits.RotateLeft32(h+uint32(c)*p5, 11) * p1
	}
	h ^= h >> 15
	h *= p2
	h ^= h >> 13
	h *= p3
	return h ^ h>>16
}
