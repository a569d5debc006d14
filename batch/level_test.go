package batch

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kerr"
)

// TestCheckLevel: the ranges Kafka's configs accept (KIP-390), and INVALID_CONFIG
// outside them.
func TestCheckLevel(t *testing.T) {
	for _, tc := range []struct {
		c      Codec
		levels []int
		ok     bool
	}{
		{CodecGzip, []int{-1, 1, 6, 9}, true},
		{CodecGzip, []int{-2, 0, 10}, false},
		{CodecLZ4, []int{1, 9, 17}, true},
		{CodecLZ4, []int{-1, 0, 18}, false},
		{CodecZstd, []int{-131072, -1, 0, 3, 22}, true},
		{CodecZstd, []int{-131073, 23}, false},
		{CodecSnappy, []int{-5, 0, 99}, true},
		{CodecNone, []int{-5, 0, 99}, true},
	} {
		for _, level := range tc.levels {
			err := CheckLevel(tc.c, level)
			if (err == nil) != tc.ok {
				t.Errorf("CheckLevel(%s, %d) = %v, want ok=%v", tc.c, level, err, tc.ok)
			}
			if err != nil && (!errors.Is(err, ErrLevel) || !errors.Is(err, kerr.InvalidConfig)) {
				t.Errorf("CheckLevel(%s, %d) = %v, want ErrLevel wrapping INVALID_CONFIG", tc.c, level, err)
			}
			if _, cerr := CompressLevel(tc.c, level, nil, []byte("x")); (cerr == nil) != tc.ok {
				t.Errorf("CompressLevel(%s, %d) = %v, want ok=%v", tc.c, level, cerr, tc.ok)
			}
		}
	}
	for _, c := range allCodecs {
		if err := CheckLevel(c, DefaultLevel(c)); err != nil {
			t.Errorf("the default level of %s is refused: %v", c, err)
		}
	}
}

// TestCompressLevels: every level round-trips; the default is what Compress
// writes; and the levels reach the libraries, so a slower level writes other
// (on JSON, smaller) output than a faster one.
func TestCompressLevels(t *testing.T) {
	in := recordsSection(t, jsonRecords(3, 512))
	for _, tc := range []struct {
		c             Codec
		levels        []int
		fast, smaller int // a pair of levels whose output must differ
	}{
		{CodecGzip, []int{-1, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 1, 9},
		{CodecLZ4, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 17}, 9, 17},
		{CodecZstd, []int{-131072, -5, 0, 1, 3, 6, 10, 22}, 1, 10},
	} {
		sizes := map[int]int{}
		for _, level := range tc.levels {
			t.Run(fmt.Sprintf("%s/%d", tc.c, level), func(t *testing.T) {
				comp, err := CompressLevel(tc.c, level, nil, in)
				if err != nil {
					t.Fatal(err)
				}
				out, err := Decompress(tc.c, nil, comp, len(in))
				if err != nil || !bytes.Equal(out, in) {
					t.Fatalf("round trip at level %d: %v", level, err)
				}
				sizes[level] = len(comp)
			})
		}
		def, err := Compress(tc.c, nil, in)
		if err != nil {
			t.Fatal(err)
		}
		if atDefault, _ := CompressLevel(tc.c, DefaultLevel(tc.c), nil, in); !bytes.Equal(def, atDefault) {
			t.Errorf("%s: Compress differs from CompressLevel at the default level %d", tc.c, DefaultLevel(tc.c))
		}
		// zstd's level 0 is its default level, in libzstd as in Kafka.
		if at0, _ := CompressLevel(tc.c, 0, nil, in); tc.c == CodecZstd && !bytes.Equal(def, at0) {
			t.Errorf("zstd level 0 differs from the default level %d", DefaultLevel(tc.c))
		}
		if sizes[tc.smaller] >= sizes[tc.fast] {
			t.Errorf("%s: level %d wrote %d bytes, level %d %d: want the higher level smaller on JSON",
				tc.c, tc.smaller, sizes[tc.smaller], tc.fast, sizes[tc.fast])
		}
	}
}

// TestLevels: a zero level is its codec's default, a codec without levels
// has none, and Check names the setting of every bad level.
func TestLevels(t *testing.T) {
	var zero Levels
	for _, c := range allCodecs {
		if got, want := zero.Of(c), DefaultLevel(c); got != want {
			t.Errorf("zero Levels.Of(%s) = %d, want the default %d", c, got, want)
		}
	}
	if got := (Levels{Gzip: 1, LZ4: 2, Zstd: 19}).Of(CodecZstd); got != 19 {
		t.Errorf("Of(zstd) = %d, want 19", got)
	}
	if err := zero.Check(); err != nil {
		t.Errorf("zero levels: %v", err)
	}
	if err := DefaultLevels().Check(); err != nil {
		t.Errorf("default levels: %v", err)
	}
	err := Levels{Gzip: 10, LZ4: 18, Zstd: 23}.Check()
	for _, want := range []string{"compression.gzip.level = 10", "compression.lz4.level = 18", "compression.zstd.level = 23"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check: %v, want it to name %q", err, want)
		}
	}
	if !errors.Is(err, ErrLevel) {
		t.Errorf("Check: %v, want ErrLevel", err)
	}
}

// TestLibraryLevel: the library level a Kafka level maps to is the one
// CompressLevel uses, as a client built on the same libraries takes it.
func TestLibraryLevel(t *testing.T) {
	for _, tc := range []struct {
		c           Codec
		level, want int
	}{
		{CodecGzip, 0, gzip.DefaultCompression}, {CodecGzip, -1, gzip.DefaultCompression}, {CodecGzip, 1, 1}, {CodecGzip, 9, 9},
		{CodecLZ4, 0, int(lz4.Fast)}, {CodecLZ4, 9, int(lz4.Fast)}, {CodecLZ4, 1, int(lz4.Level1)},
		{CodecLZ4, 8, int(lz4.Level8)}, {CodecLZ4, 10, int(lz4.Level9)}, {CodecLZ4, 17, int(lz4.Level9)},
		{CodecZstd, 0, int(zstd.SpeedDefault)}, {CodecZstd, -5, int(zstd.SpeedFastest)}, {CodecZstd, 3, int(zstd.SpeedDefault)},
		{CodecZstd, 9, int(zstd.SpeedBetterCompression)}, {CodecZstd, 22, int(zstd.SpeedBestCompression)},
		{CodecSnappy, 0, 0}, {CodecNone, 0, 0},
	} {
		if got := LibraryLevel(tc.c, tc.level); got != tc.want {
			t.Errorf("LibraryLevel(%s, %d) = %d, want %d", tc.c, tc.level, got, tc.want)
		}
	}
}
