package batch

import (
	"bytes"
	"encoding/binary"
	"math"

	"github.com/klauspost/compress/s2"
)

// SizeHint is the size src, compressed with c, says it decompresses to,
// read from its framing without decoding anything: the sizes a snappy
// block or xerial chunk declares, a bound from zstd's frame and block
// headers (zstdOutputBound), one from LZ4 frames' block headers and block
// size, the length a gzip stream's trailer records. It reports false when
// the framing says nothing it can trust enough to be worth using (an LZ4
// legacy frame, a gzip stream too short for its trailer, a walk that finds
// the framing broken); the decoder then finds out what is wrong.
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

// lz4SizeHint walks LZ4 frames (the format Kafka's LZ4 codec writes):
// magic, FLG, BD, an optional content size and dictionary id, the header
// checksum, then blocks of [uint32 size, high bit set when stored
// uncompressed][data][optional checksum] up to a zero size, then an
// optional content checksum. A compressed block decodes to at most the
// frame's block size; a stored one to its own size; a frame with a content
// size to that. Skippable frames are stepped over.
func lz4SizeHint(src []byte) (uint64, bool) {
	const (
		frameMagic     = 0x184D2204
		skipMagicMask  = 0xFFFFFFF0
		skipMagic      = 0x184D2A50
		flagContentSum = 1 << 2
		flagSize       = 1 << 3
		flagBlockSum   = 1 << 4
		flagDictID     = 1 << 0
	)
	var total uint64
	for len(src) > 0 {
		if len(src) < 4 {
			return 0, false
		}
		magic := binary.LittleEndian.Uint32(src)
		src = src[4:]
		if magic&skipMagicMask == skipMagic {
			if len(src) < 4 {
				return 0, false
			}
			n := binary.LittleEndian.Uint32(src)
			src = src[4:]
			if uint64(n) > uint64(len(src)) {
				return 0, false
			}
			src = src[n:]
			continue
		}
		if magic != frameMagic || len(src) < 3 {
			return 0, false
		}
		flg, bd := src[0], src[1]
		descriptor := 3
		if flg&flagSize != 0 {
			descriptor += 8
		}
		if flg&flagDictID != 0 {
			descriptor += 4
		}
		if len(src) < descriptor {
			return 0, false
		}
		var blockMax uint64
		switch bd >> 4 & 7 {
		case 4:
			blockMax = 64 << 10
		case 5:
			blockMax = 256 << 10
		case 6:
			blockMax = 1 << 20
		case 7:
			blockMax = 4 << 20
		default:
			return 0, false
		}
		var contentSize uint64
		if flg&flagSize != 0 {
			contentSize = binary.LittleEndian.Uint64(src[2:])
		}
		src = src[descriptor:]
		var frame uint64
		for {
			if len(src) < 4 {
				return 0, false
			}
			bs := binary.LittleEndian.Uint32(src)
			src = src[4:]
			if bs == 0 {
				break
			}
			size := uint64(bs &^ (1 << 31))
			if bs>>31 != 0 {
				frame += size
			} else {
				frame += blockMax
			}
			if flg&flagBlockSum != 0 {
				size += 4
			}
			if size > uint64(len(src)) {
				return 0, false
			}
			src = src[size:]
		}
		if flg&flagContentSum != 0 {
			if len(src) < 4 {
				return 0, false
			}
			src = src[4:]
		}
		if flg&flagSize != 0 {
			frame = min(frame, contentSize)
		}
		total += frame
	}
	return total, true
}
