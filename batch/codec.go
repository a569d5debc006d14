package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Compression and decompression. Every decoder works on untrusted bytes and is
// bounded by the caller's maxSize: output is grown step by step and never past
// maxSize plus a small slack, whatever sizes the input claims, so a
// decompression bomb costs an error, not memory. Encoders and decoders are
// pooled; none of them starts goroutines.

// appendWriter is an io.Writer that appends to b, so stream encoders can write
// straight into the caller's buffer.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// streamEncoder is a pooled gzip or LZ4 writer with the buffer it appends to.
type streamEncoder struct {
	w interface {
		io.WriteCloser
		Reset(io.Writer)
	}
	out appendWriter
}

// compress appends src, compressed, to dst.
func (e *streamEncoder) compress(dst, src []byte) ([]byte, error) {
	e.out.b = dst
	e.w.Reset(&e.out)
	_, err := e.w.Write(src)
	if err == nil {
		err = e.w.Close()
	}
	dst = e.out.b
	e.out.b = nil
	return dst, err
}

type gzipDecoder struct {
	r   gzip.Reader
	src bytes.Reader
}

type lz4Decoder struct {
	r   *lz4.Reader
	src bytes.Reader
}

// Encoders are pooled per codec and level (level.go maps Kafka's levels
// onto the libraries').
var (
	gzipEncoders [len(gzipLevels)]sync.Pool
	lz4Encoders  [len(lz4Levels)]sync.Pool
	zstdEncoders [zstd.SpeedBestCompression + 1]sync.Pool
)

func init() {
	for i, level := range gzipLevels {
		gzipEncoders[i].New = func() any {
			e := new(streamEncoder)
			var err error
			if e.w, err = gzip.NewWriterLevel(&e.out, level); err != nil {
				panic(err) // a level from the table: cannot fail
			}
			return e
		}
	}
	// Kafka's own LZ4 writer uses 64 KiB independent blocks; so do we, which
	// also keeps each reader's and writer's block buffer small.
	for i, level := range lz4Levels {
		lz4Encoders[i].New = func() any {
			w := lz4.NewWriter(nil)
			if err := w.Apply(lz4.BlockSizeOption(lz4.Block64Kb), lz4.ConcurrencyOption(1), lz4.CompressionLevelOption(level)); err != nil {
				panic(err) // constant options: cannot fail
			}
			return &streamEncoder{w: w}
		}
	}
	// A 1 MiB window covers a whole batch of the usual sizes, so compression
	// sees all of it, while keeping what a consumer must allocate modest.
	for level := zstd.SpeedFastest; level <= zstd.SpeedBestCompression; level++ {
		zstdEncoders[level].New = func() any {
			e, err := zstd.NewWriter(nil,
				zstd.WithEncoderConcurrency(1),
				zstd.WithEncoderLevel(level),
				zstd.WithWindowSize(1<<20),
				zstd.WithZeroFrames(true))
			if err != nil {
				panic(err)
			}
			return e
		}
	}
}

// zstdBlockRoom is the room decodeZstd leaves past the output it expects:
// one whole block, plus the overrun of the decoder's fast copies.
const zstdBlockRoom = 128<<10 + 64

// zstdMaxWindow is the largest window libzstd's streaming decoder takes by
// default: 1<<ZSTD_WINDOWLOG_LIMIT_DEFAULT, plus one.
const zstdMaxWindow = 1<<27 + 1

var (
	gzipDecoders = sync.Pool{New: func() any { return new(gzipDecoder) }}

	lz4Decoders = sync.Pool{New: func() any {
		d := new(lz4Decoder)
		d.r = lz4.NewReader(&d.src)
		if err := d.r.Apply(lz4.ConcurrencyOption(1)); err != nil {
			panic(err)
		}
		return d
	}}

	// Concurrency 1: no goroutines, one block decoder per instance. The cap
	// limit makes DecodeAll stop at cap(dst), which is how maxSize is enforced
	// per call (the pool's decoders are shared by callers with different
	// limits). Windows are held to Kafka's: it decodes with zstd-jni's
	// streaming decoder at libzstd's defaults, which refuses a window (for a
	// single-segment frame, its content size) over 2^27+1 bytes
	// (ZSTD_WINDOWLOG_LIMIT_DEFAULT, "Frame requires too much memory for
	// decoding"); the library's own default would take 512 MiB.
	zstdDecoders = sync.Pool{New: func() any {
		d, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(zstdMaxWindow),
			zstd.WithDecodeAllCapLimit(true))
		if err != nil {
			panic(err)
		}
		return d
	}}
)

// Compress appends the compressed form of src to dst: gzip, raw snappy blocks
// (which every Kafka client reads), the LZ4 frame format, or a zstd frame.
// CodecNone appends src unchanged. It compresses at the codec's default
// level, as CompressLevel with DefaultLevel(c).
func Compress(c Codec, dst, src []byte) ([]byte, error) {
	return CompressLevel(c, DefaultLevel(c), dst, src)
}

// CompressLevel is Compress at a level on Kafka's scale for the codec
// (KIP-390; see CheckLevel). Snappy has no levels and ignores it.
func CompressLevel(c Codec, level int, dst, src []byte) ([]byte, error) {
	if err := CheckLevel(c, level); err != nil {
		return dst, err
	}
	switch c {
	case CodecNone:
		return append(dst, src...), nil
	case CodecGzip, CodecLZ4:
		var pool *sync.Pool
		if c == CodecGzip {
			pool = &gzipEncoders[gzipLevelIndex(level)]
		} else {
			pool = &lz4Encoders[lz4LevelIndex(level)]
		}
		e := pool.Get().(*streamEncoder)
		dst, err := e.compress(dst, src)
		pool.Put(e)
		if err != nil {
			return dst, fmt.Errorf("batch: %s: %w", c, err)
		}
		return dst, nil
	case CodecSnappy:
		n := s2.MaxEncodedLen(len(src))
		if n < 0 {
			return dst, fmt.Errorf("%w: %d bytes are too many for one snappy block", ErrTooLarge, len(src))
		}
		dst = slices.Grow(dst, n)
		enc := s2.EncodeSnappy(dst[len(dst):len(dst)+n], src)
		return dst[:len(dst)+len(enc)], nil
	case CodecZstd:
		if level == 0 { // zstd's 0 is its default level, in libzstd and Kafka
			level = DefaultLevel(CodecZstd)
		}
		pool := &zstdEncoders[zstd.EncoderLevelFromZstd(level)]
		e := pool.Get().(*zstd.Encoder)
		dst = e.EncodeAll(src, dst)
		pool.Put(e)
		return dst, nil
	}
	return dst, fmt.Errorf("%w: codec id %d", ErrCodec, int8(c))
}

// Decompress appends the decompressed form of src to dst. More than maxSize
// bytes of output fail with ErrDecompressSize; input that does not decode fails
// with ErrDecompress. On error it returns dst's original length, possibly in a
// grown backing array, so the caller can reuse the capacity.
//
// Snappy input may be a raw block or xerial-framed, as Java clients send it.
// Raw blocks are decoded by s2, which also accepts its own extensions of the
// snappy block format (as franz-go does).
//
// LZ4 input is read as Kafka's reader reads it (lz4FirstFrame): one frame
// with independent blocks, whatever follows its end mark ignored; a frame
// Kafka refuses is refused with Kafka's words.
//
// A panic inside a codec library on hostile input is turned into ErrDecompress:
// a broker must not crash on bytes a client sent. The decoder that panicked is
// not returned to its pool.
func Decompress(c Codec, dst, src []byte, maxSize int) (out []byte, err error) {
	start := len(dst)
	defer func() {
		if p := recover(); p != nil {
			out, err = dst[:start], fmt.Errorf("%w: %s: decoder panicked: %v", ErrDecompress, c, p)
		}
	}()
	out, err = decompress(c, dst, src, max(maxSize, 0))
	if err != nil {
		return out[:start], err
	}
	return out, nil
}

func decompress(c Codec, dst, src []byte, maxSize int) ([]byte, error) {
	if c != CodecNone && len(src) == 0 {
		if !c.Valid() {
			return dst, fmt.Errorf("%w: codec id %d", ErrCodec, int8(c))
		}
		return dst, fmt.Errorf("%w: %s: empty input", ErrDecompress, c)
	}
	switch c {
	case CodecNone:
		if len(src) > maxSize {
			return dst, sizeErr(c, maxSize)
		}
		return append(dst, src...), nil
	case CodecGzip:
		d := gzipDecoders.Get().(*gzipDecoder)
		d.src.Reset(src)
		var err error
		if err = d.r.Reset(&d.src); err == nil {
			dst, err = readBounded(c, dst, &d.r, maxSize, len(src))
		} else {
			err = decompressErr(c, err)
		}
		d.src.Reset(nil)
		gzipDecoders.Put(d)
		return dst, err
	case CodecSnappy:
		return decodeSnappy(dst, src, maxSize)
	case CodecLZ4:
		// The first frame only, checked as Kafka's reader checks it.
		n, _, err := lz4FirstFrame(src)
		if err != nil {
			return dst, err
		}
		d := lz4Decoders.Get().(*lz4Decoder)
		d.src.Reset(src[:n])
		d.r.Reset(&d.src)
		dst, err = readBounded(c, dst, d.r, maxSize, n)
		d.r.Reset(&d.src) // return the block buffer to lz4's pool
		d.src.Reset(nil)
		lz4Decoders.Put(d)
		return dst, err
	case CodecZstd:
		return decodeZstd(dst, src, maxSize)
	}
	return dst, fmt.Errorf("%w: codec id %d", ErrCodec, int8(c))
}

func sizeErr(c Codec, maxSize int) error {
	return fmt.Errorf("%w: %s output exceeds %d bytes", ErrDecompressSize, c, maxSize)
}

func decompressErr(c Codec, err error) error {
	return fmt.Errorf("%w: %s: %v", ErrDecompress, c, err)
}

// growBounded makes room for at least want more bytes after len(dst) (fewer if
// that would pass limit, the largest length dst may reach). It allocates
// exactly what it needs rather than leaving growth to append, whose rounding
// up could overshoot the limit by a quarter.
func growBounded(dst []byte, want, limit int) []byte {
	want = min(want, limit-len(dst))
	if want <= cap(dst)-len(dst) {
		return dst
	}
	buf := make([]byte, len(dst), len(dst)+want)
	copy(buf, dst)
	return buf
}

// readBounded appends everything r produces to dst, failing once more than
// maxSize bytes arrive. Growth doubles from a guess based on the input size and
// stops at maxSize+1 bytes: the extra byte is what detects overflow.
func readBounded(c Codec, dst []byte, r io.Reader, maxSize, srcLen int) ([]byte, error) {
	start := len(dst)
	limit := start + maxSize + 1
	guess := max(4*srcLen, 4<<10)
	stalls := 0
	for {
		if len(dst) == cap(dst) {
			if len(dst) >= limit {
				return dst, sizeErr(c, maxSize)
			}
			dst = growBounded(dst, max(guess, len(dst)-start), limit)
		}
		room := dst[len(dst):min(cap(dst), limit)]
		n, err := r.Read(room)
		dst = dst[:len(dst)+n]
		if len(dst)-start > maxSize {
			return dst, sizeErr(c, maxSize)
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, decompressErr(c, err)
		}
		if n == 0 {
			if stalls++; stalls > 100 {
				return dst, decompressErr(c, io.ErrNoProgress)
			}
		} else {
			stalls = 0
		}
	}
}

// xerialMagic starts the framing the Java snappy library (xerial) writes:
// magic, int32 version, int32 compatible version, then chunks of
// [int32 big-endian length][raw snappy block].
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialHeaderSize = 16

func decodeSnappy(dst, src []byte, maxSize int) ([]byte, error) {
	if !bytes.HasPrefix(src, xerialMagic) {
		n, err := s2.DecodedLen(src)
		if err != nil {
			return dst, decompressErr(CodecSnappy, err)
		}
		if n > maxSize {
			return dst, sizeErr(CodecSnappy, maxSize)
		}
		return decodeSnappyBlock(growBounded(dst, n, len(dst)+n), src, n)
	}
	// First walk the chunks to check the framing and add up the lengths the
	// blocks declare, so the output is sized (and bounded) once.
	n, err := xerialDecodedLen(src)
	if err != nil {
		return dst, err
	}
	if n > uint64(maxSize) {
		return dst, sizeErr(CodecSnappy, maxSize)
	}
	total := int(n)
	dst = growBounded(dst, total, len(dst)+total)
	for rest := src[xerialHeaderSize:]; len(rest) > 0; {
		n := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		dl, _ := s2.DecodedLen(rest[:n])
		if dst, err = decodeSnappyBlock(dst, rest[:n], dl); err != nil {
			return dst, err
		}
		rest = rest[n:]
	}
	return dst, nil
}

// xerialDecodedLen checks the chunk framing of a xerial-framed snappy
// stream and adds up the lengths its blocks declare.
func xerialDecodedLen(src []byte) (uint64, error) {
	if len(src) < xerialHeaderSize {
		return 0, fmt.Errorf("%w: snappy: xerial header truncated at %d bytes", ErrDecompress, len(src))
	}
	var total uint64
	for rest := src[xerialHeaderSize:]; len(rest) > 0; {
		if len(rest) < 4 {
			return 0, fmt.Errorf("%w: snappy: xerial chunk length truncated", ErrDecompress)
		}
		n := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(n) > uint64(len(rest)) {
			return 0, fmt.Errorf("%w: snappy: xerial chunk of %d bytes, %d remain", ErrDecompress, n, len(rest))
		}
		dl, err := s2.DecodedLen(rest[:n])
		if err != nil {
			return 0, decompressErr(CodecSnappy, err)
		}
		total += uint64(dl)
		rest = rest[n:]
	}
	return total, nil
}

// decodeSnappyBlock appends one raw snappy block that declares n decoded bytes;
// dst already has room for them.
func decodeSnappyBlock(dst, block []byte, n int) ([]byte, error) {
	out, err := s2.Decode(dst[len(dst):len(dst)+n], block)
	if err != nil {
		return dst, decompressErr(CodecSnappy, err)
	}
	return dst[:len(dst)+len(out)], nil
}

// decodeZstd decodes with the decoder capped at cap(dst): DecodeAll writes
// straight into dst, so unlike a streaming decoder it never allocates a window
// the frame claims. The first frame's declared content size, when present, is
// checked against maxSize before anything is allocated.
//
// The room is sized by zstdOutputBound, so a frame without a content size
// (Java's streaming encoder writes none) usually decodes in one attempt; when
// the bound is unknown, the room starts from a guess and doubles, redecoding,
// up to maxSize.
//
// A capped decode that runs out of room does not always say so with
// ErrDecoderSizeExceeded: its fast path reports a generic error. So room is
// always one whole block (plus the fast copies' overrun) past what the output
// may use: a failure with at least that much room left cannot be for lack of
// room and is corruption, and output past maxSize is too big whatever the
// error that stopped it.
func decodeZstd(dst, src []byte, maxSize int) ([]byte, error) {
	guess, ok := zstdOutputBound(src)
	if !ok {
		guess = uint64(max(16*len(src), 64<<10))
	}
	var fh zstd.Header
	if err := fh.Decode(src); err != nil {
		return dst, decompressErr(CodecZstd, err)
	}
	if fh.HasFCS && fh.FrameContentSize > uint64(maxSize) {
		return dst, sizeErr(CodecZstd, maxSize)
	}
	if fh.WindowSize > zstdMaxWindow {
		// The decoder refuses it too; this says so in Kafka's words.
		return dst, fmt.Errorf("%w: %s: Frame requires too much memory for decoding: a window of %d bytes, more than 2^27", ErrDecompress, CodecZstd, fh.WindowSize)
	}
	want := int(min(guess, uint64(maxSize))) + zstdBlockRoom
	d := zstdDecoders.Get().(*zstd.Decoder)
	dst, err := decodeZstdWith(d, dst, src, maxSize, want)
	// Not deferred: a decoder that panicked is dropped (see Decompress).
	zstdDecoders.Put(d)
	return dst, err
}

// decodeZstdWith is decodeZstd's decoding with d, starting with room for
// want bytes (zstdBlockRoom included) and doubling it up to maxSize.
func decodeZstdWith(d *zstd.Decoder, dst, src []byte, maxSize, want int) ([]byte, error) {
	start := len(dst)
	limit := start + maxSize + zstdBlockRoom
	for {
		dst = growBounded(dst[:start], want, limit)
		room := min(cap(dst), limit) - start
		out, err := d.DecodeAll(src, dst[:start:start+room])
		n := len(out) - start
		if n > maxSize {
			return dst, sizeErr(CodecZstd, maxSize)
		}
		if err == nil {
			return out, nil
		}
		if !errors.Is(err, zstd.ErrDecoderSizeExceeded) && n <= room-zstdBlockRoom {
			return dst, decompressErr(CodecZstd, err)
		}
		if start+room >= limit {
			return dst, sizeErr(CodecZstd, maxSize)
		}
		// Redecode with twice the room (the bytes so far may have been
		// decoded into a buffer that is not dst's).
		want = min(max(2*(room-zstdBlockRoom), 64<<10), maxSize) + zstdBlockRoom
	}
}

// zstdOutputBound walks the frames and block headers of src without decoding
// and returns an upper bound on the decoded size: raw and RLE blocks state
// their size, a compressed block decodes to at most min(window, 128 KiB), and a
// frame's declared content size caps its blocks' sum. It reports false if the
// walk fails; the decoder then finds out what is wrong.
func zstdOutputBound(src []byte) (uint64, bool) {
	const maxBlock = 128 << 10
	var total uint64
	var h zstd.Header
	for len(src) > 0 {
		rest, err := h.DecodeAndStrip(src)
		if err != nil {
			return 0, false
		}
		if h.Skippable {
			if uint64(h.SkippableSize) > uint64(len(rest)) {
				return 0, false
			}
			src = rest[h.SkippableSize:]
			continue
		}
		blockMax := uint64(maxBlock)
		if h.SingleSegment && h.HasFCS {
			blockMax = min(blockMax, h.FrameContentSize)
		} else if h.WindowSize > 0 {
			blockMax = min(blockMax, h.WindowSize)
		}
		var frame uint64
		for last := false; !last; {
			if len(rest) < 3 {
				return 0, false
			}
			bh := uint32(rest[0]) | uint32(rest[1])<<8 | uint32(rest[2])<<16
			rest = rest[3:]
			last = bh&1 != 0
			size := uint64(bh >> 3)
			var skip uint64
			switch (bh >> 1) & 3 {
			case 0: // raw
				frame += size
				skip = size
			case 1: // RLE: one byte repeated size times
				frame += size
				skip = 1
			case 2: // compressed
				frame += blockMax
				skip = size
			default:
				return 0, false
			}
			if skip > uint64(len(rest)) {
				return 0, false
			}
			rest = rest[skip:]
		}
		if h.HasCheckSum {
			if len(rest) < 4 {
				return 0, false
			}
			rest = rest[4:]
		}
		if h.HasFCS {
			frame = min(frame, h.FrameContentSize)
		}
		total += frame
		src = rest
	}
	return total, true
}
