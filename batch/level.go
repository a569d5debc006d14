package batch

import (
	"errors"
	"fmt"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Compression levels on Kafka's scale (KIP-390: compression.gzip.level,
// compression.lz4.level, compression.zstd.level, for topics, brokers and
// producers alike), and how they map onto the Go libraries' levels, which
// are coarser:
//
//   - gzip: 1 (fastest) to 9 (smallest), or -1, the library's default (6),
//     as Java's Deflater; the same levels in klauspost/compress.
//   - lz4: 1 to 17, default 9. Kafka compresses its default with lz4-java's
//     fast compressor and any other level with its high-compression one; so
//     does Gregor, with pierrec/lz4's Fast and its Level1..Level9 (Kafka's
//     10 to 17 all map to Level9, the library's highest).
//   - zstd: -131072 to 22, default 3, mapped by klauspost/compress's
//     EncoderLevelFromZstd onto its four speeds: below 3 fastest, 3-5
//     default, 6-9 better, 10 and up best.
const (
	GzipDefaultLevel = -1
	LZ4DefaultLevel  = 9
	ZstdDefaultLevel = 3

	gzipMinLevel, gzipMaxLevel = 1, 9
	lz4MinLevel, lz4MaxLevel   = 1, 17
	zstdMinLevel, zstdMaxLevel = -131072, 22
)

// gzipLevels and lz4Levels are the library levels an encoder pool exists
// for, indexed by gzipLevelIndex and lz4LevelIndex.
var (
	gzipLevels = [...]int{gzip.DefaultCompression, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	lz4Levels  = [...]lz4.CompressionLevel{lz4.Fast, lz4.Level1, lz4.Level2, lz4.Level3,
		lz4.Level4, lz4.Level5, lz4.Level6, lz4.Level7, lz4.Level8, lz4.Level9}
)

// gzipLevelIndex maps a checked gzip level to its pool.
func gzipLevelIndex(level int) int { return max(level, 0) }

// lz4LevelIndex maps a checked lz4 level to its pool: the default to Fast,
// others to the high-compression level of that number, at most Level9.
func lz4LevelIndex(level int) int {
	if level == LZ4DefaultLevel {
		return 0
	}
	return min(level, 9)
}

// LevelConfig is the name of c's level setting (compression.<codec>.level)
// for topics, brokers and producers alike; "" for codecs without levels.
func (c Codec) LevelConfig() string {
	switch c {
	case CodecGzip:
		return "compression.gzip.level"
	case CodecLZ4:
		return "compression.lz4.level"
	case CodecZstd:
		return "compression.zstd.level"
	}
	return ""
}

// Levels are the three level settings of a topic, broker or producer. A
// zero level is its codec's default: Kafka refuses 0 for gzip and lz4, and
// zstd's 0 is its default.
type Levels struct{ Gzip, LZ4, Zstd int }

// DefaultLevels are Kafka's defaults.
func DefaultLevels() Levels {
	return Levels{Gzip: GzipDefaultLevel, LZ4: LZ4DefaultLevel, Zstd: ZstdDefaultLevel}
}

// Of is the level c compresses at (0 for codecs without levels).
func (l Levels) Of(c Codec) int {
	var level int
	switch c {
	case CodecGzip:
		level = l.Gzip
	case CodecLZ4:
		level = l.LZ4
	case CodecZstd:
		level = l.Zstd
	default:
		return 0
	}
	if level == 0 {
		return DefaultLevel(c)
	}
	return level
}

// Check reports every level outside its codec's range, naming its setting.
func (l Levels) Check() error {
	var errs []error
	for _, c := range [...]Codec{CodecGzip, CodecLZ4, CodecZstd} {
		level := l.Of(c) // a zero level is the default, which passes
		if err := CheckLevel(c, level); err != nil {
			errs = append(errs, fmt.Errorf("%s = %d: %w", c.LevelConfig(), level, err))
		}
	}
	return errors.Join(errs...)
}

// LevelRange is the range of levels Kafka accepts for c (gzip also takes
// -1, its default); 0, 0 for codecs without levels.
func LevelRange(c Codec) (lo, hi int) {
	switch c {
	case CodecGzip:
		return gzipMinLevel, gzipMaxLevel
	case CodecLZ4:
		return lz4MinLevel, lz4MaxLevel
	case CodecZstd:
		return zstdMinLevel, zstdMaxLevel
	}
	return 0, 0
}

// DefaultLevel is the level Kafka compresses c at when none is configured
// (0 for codecs without levels).
func DefaultLevel(c Codec) int {
	switch c {
	case CodecGzip:
		return GzipDefaultLevel
	case CodecLZ4:
		return LZ4DefaultLevel
	case CodecZstd:
		return ZstdDefaultLevel
	}
	return 0
}

// LibraryLevel is the level a checked Kafka level of c (0: the codec's
// default) compresses at in the library Gregor uses for c, as that
// library's option takes it: compress/gzip's level, pierrec/lz4's
// CompressionLevel, klauspost/compress's zstd.EncoderLevel; 0 for codecs
// without levels. Another client built on the same libraries (franz-go,
// whose CompressionCodec.WithLevel takes these) then compresses at the
// level Gregor does, which is what the harness needs to compare the two
// (its frame options, such as lz4's block size, may still differ).
func LibraryLevel(c Codec, level int) int {
	if level == 0 {
		level = DefaultLevel(c)
	}
	switch c {
	case CodecGzip:
		return gzipLevels[gzipLevelIndex(level)]
	case CodecLZ4:
		return int(lz4Levels[lz4LevelIndex(level)])
	case CodecZstd:
		return int(zstd.EncoderLevelFromZstd(level))
	}
	return 0
}

// CheckLevel reports a level outside the range Kafka accepts for c, in
// Kafka's words. Codecs without levels (none, snappy) accept any.
func CheckLevel(c Codec, level int) error {
	lo, hi := LevelRange(c)
	if lo == hi || (c == CodecGzip && level == GzipDefaultLevel) {
		return nil
	}
	if level < lo || level > hi {
		if c == CodecGzip {
			return fmt.Errorf("%w: %s level %d: must be in [%d,...,%d] or %d", ErrLevel, c, level, lo, hi, GzipDefaultLevel)
		}
		return fmt.Errorf("%w: %s level %d: must be in [%d,...,%d]", ErrLevel, c, level, lo, hi)
	}
	return nil
}
