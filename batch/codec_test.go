package batch

import (
	"bytes"
	stdgzip "compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

func codecInputs(t testing.TB) map[string][]byte {
	rng := rand.New(rand.NewPCG(7, 7))
	random := make([]byte, 100<<10)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	return map[string][]byte{
		"empty":       {},
		"one byte":    {'x'},
		"random 100K": random,
		"zeros 300K":  make([]byte, 300<<10),
		"json 16K":    recordsSection(t, jsonRecords(1, 16)),
		"json 1M":     recordsSection(t, jsonRecords(2, 1024)),
	}
}

func TestCodecRoundTrip(t *testing.T) {
	prefix := []byte("prefix")
	for name, in := range codecInputs(t) {
		for _, c := range allCodecs {
			t.Run(fmt.Sprintf("%s/%s", c, name), func(t *testing.T) {
				comp, err := Compress(c, bytes.Clone(prefix), in)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.HasPrefix(comp, prefix) {
					t.Fatal("Compress overwrote dst")
				}
				out, err := Decompress(c, bytes.Clone(prefix), comp[len(prefix):], len(in))
				if err != nil {
					t.Fatalf("Decompress (maxSize = exact size): %v", err)
				}
				if !bytes.HasPrefix(out, prefix) || !bytes.Equal(out[len(prefix):], in) {
					t.Fatalf("round trip differs: %d bytes in, %d out", len(in), len(out)-len(prefix))
				}
				if len(in) > 0 {
					_, err := Decompress(c, nil, comp[len(prefix):], len(in)-1)
					if !errors.Is(err, ErrDecompressSize) {
						t.Fatalf("maxSize one below: err = %v, want ErrDecompressSize", err)
					}
				}
			})
		}
	}
}

// TestCodecsReadStandardStreams decodes what other implementations of each
// format write: the standard library's gzip (with several members), a
// streaming zstd encoder (no content size in the frame, as Java's
// ZstdOutputStream writes), and LZ4 frames with other block sizes and
// checksums.
func TestCodecsReadStandardStreams(t *testing.T) {
	in := recordsSection(t, jsonRecords(3, 200))
	half := len(in) / 2
	check := func(name string, c Codec, comp []byte) {
		t.Helper()
		out, err := Decompress(c, nil, comp, len(in))
		if err != nil || !bytes.Equal(out, in) {
			t.Errorf("%s: err %v, equal %v", name, err, bytes.Equal(out, in))
		}
	}

	var gz bytes.Buffer
	for _, part := range [][]byte{in[:half], in[half:]} {
		w := stdgzip.NewWriter(&gz)
		w.Write(part)
		w.Close()
	}
	check("two gzip members", CodecGzip, gz.Bytes())

	zs := zstdStream(in)
	var fh zstd.Header
	if err := fh.Decode(zs); err != nil || fh.HasFCS {
		t.Fatalf("streaming zstd frame: err %v, has content size %v", err, fh.HasFCS)
	}
	check("streaming zstd", CodecZstd, zs)
	check("two zstd frames", CodecZstd, append(append([]byte{}, zstdEncode(in[:half])...), zstdEncode(in[half:])...))

	for _, opts := range [][]lz4.Option{
		{lz4.BlockSizeOption(lz4.Block4Mb)},
		{lz4.BlockSizeOption(lz4.Block256Kb), lz4.BlockChecksumOption(true), lz4.ChecksumOption(false)},
		{lz4.SizeOption(uint64(len(in))), lz4.CompressionLevelOption(lz4.Level9)},
	} {
		check(fmt.Sprintf("lz4 %v", opts), CodecLZ4, lz4Frame(t, in, opts...))
	}
}

// TestLZ4FramesAsKafkaReadsThem: Kafka's LZ4 reader (Lz4BlockInputStream)
// takes one frame of version 1 with independent blocks and no reserved
// bits set (the dictionary ID flag among them), and stops at its end mark;
// a batch it would refuse is refused with its words, and what follows the
// first frame is ignored as Kafka ignores it.
func TestLZ4FramesAsKafkaReadsThem(t *testing.T) {
	stored := binary.LittleEndian.AppendUint32(nil, 7|1<<31)
	stored = append(stored, "records"...)
	for _, tc := range []struct {
		name  string
		frame []byte
		want  string
	}{
		{"dependent blocks", lz4TestFrame(0x40, 0x40, stored), "Dependent block stream is unsupported"},
		{"dictionary id flag", append(lz4TestFrame(0x61, 0x40, nil)[:6], 1, 2, 3, 4, 0), "Reserved bits must be 0"},
		{"reserved FLG bit", lz4TestFrame(0x62, 0x40, stored), "Reserved bits must be 0"},
		{"version 2", lz4TestFrame(0xa0, 0x40, stored), "Version 2 is unsupported"},
		{"reserved BD bits", lz4TestFrame(0x60, 0x41, stored), "Reserved2 field must be 0"},
		{"block size 3", lz4TestFrame(0x60, 0x30, stored), "Block size value must be between 4 and 7"},
		{"reserved BD high bit", lz4TestFrame(0x60, 0xc0, stored), "Reserved3 field must be 0"},
		{"bad descriptor checksum", func() []byte { f := lz4TestFrame(0x60, 0x40, stored); f[6]++; return f }(), "Stream frame descriptor corrupted"},
		{"skippable frame first", append([]byte{0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0}, lz4TestFrame(0x60, 0x40, stored)...), "Stream unsupported (invalid magic bytes)"},
		{"legacy frame", []byte{0x02, 0x21, 0x4c, 0x18, 1, 0, 0, 0, 0x10}, "Stream unsupported (invalid magic bytes)"},
		{"block over the block size", lz4TestFrame(0x60, 0x40, binary.LittleEndian.AppendUint32(nil, 64<<10+1|1<<31), make([]byte, 64<<10+1)), "Block size 65537 exceeded max: 65536"},
		{"no end mark", lz4TestFrame(0x60, 0x40, stored)[:7+len(stored)], "Stream ended prematurely"},
		{"short header", []byte{0x04, 0x22, 0x4d, 0x18, 0x60}, "Stream ended prematurely"},
	} {
		out, err := Decompress(CodecLZ4, nil, tc.frame, 1<<20)
		if !errors.Is(err, ErrDecompress) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: out %q, err %v; want ErrDecompress saying %q", tc.name, out, err, tc.want)
		}
		if n, ok := SizeHint(CodecLZ4, tc.frame); ok {
			t.Errorf("%s: SizeHint %d from a frame the decoder refuses", tc.name, n)
		}
	}

	// The first frame is the batch's records; whatever follows it is not.
	in := recordsSection(t, jsonRecords(4, 100))
	half := len(in) / 2
	a, _ := Compress(CodecLZ4, nil, in[:half])
	b, _ := Compress(CodecLZ4, nil, in[half:])
	for name, comp := range map[string][]byte{
		"two frames":           append(bytes.Clone(a), b...),
		"a frame and garbage":  append(bytes.Clone(a), "garbage"...),
		"a frame, a skippable": append(bytes.Clone(a), 0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 'a', 'b', 'c'),
	} {
		out, err := Decompress(CodecLZ4, nil, comp, len(in))
		if err != nil || !bytes.Equal(out, in[:half]) {
			t.Errorf("%s: %d bytes out (err %v), want the first frame's %d", name, len(out), err, half)
		}
		if n, ok := SizeHint(CodecLZ4, comp); !ok || n < half || n > half+64<<10 {
			t.Errorf("%s: SizeHint %d (ok %v), want the first frame's bound", name, n, ok)
		}
	}
}

// lz4TestFrame is an LZ4 frame with the given FLG and BD bytes, a correct
// descriptor checksum, and blocks (each [size][data], already encoded)
// followed by the end mark.
func lz4TestFrame(flg, bd byte, blocks ...[]byte) []byte {
	f := []byte{0x04, 0x22, 0x4d, 0x18, flg, bd}
	f = append(f, byte(xxh32Short(f[4:6])>>8))
	for _, b := range blocks {
		f = append(f, b...)
	}
	return binary.LittleEndian.AppendUint32(f, 0)
}

// zstdStream encodes like a streaming writer (Java's ZstdOutputStream, too):
// the frame declares no content size.
func zstdStream(in []byte) []byte {
	var buf bytes.Buffer
	w, _ := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
	w.Write(in)
	w.Close()
	return buf.Bytes()
}

func zstdEncode(in []byte) []byte {
	e, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	defer e.Close()
	return e.EncodeAll(in, nil)
}

// xerialFrame frames src the way Java's snappy library (xerial) does: magic,
// version 1, compatible version 1, then [int32 length][raw snappy block] for
// each chunk of chunkSize input bytes.
func xerialFrame(src []byte, chunkSize int) []byte {
	out := append([]byte{}, xerialMagic...)
	out = binary.BigEndian.AppendUint32(out, 1)
	out = binary.BigEndian.AppendUint32(out, 1)
	for len(src) > 0 {
		n := min(chunkSize, len(src))
		block := s2.EncodeSnappy(nil, src[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(len(block)))
		out = append(out, block...)
		src = src[n:]
	}
	return out
}

func TestSnappyXerial(t *testing.T) {
	in := recordsSection(t, jsonRecords(4, 100))
	framed := xerialFrame(in, 32<<10)
	out, err := Decompress(CodecSnappy, []byte("p"), framed, len(in))
	if err != nil || !bytes.Equal(out[1:], in) {
		t.Fatalf("xerial: err %v, equal %v", err, bytes.Equal(out[1:], in))
	}
	// Header only: no chunks, no output.
	if out, err := Decompress(CodecSnappy, nil, framed[:xerialHeaderSize], 10); err != nil || len(out) != 0 {
		t.Fatalf("header only: %v, %d bytes", err, len(out))
	}
	// The limit applies to the sum of the chunks.
	if _, err := Decompress(CodecSnappy, nil, framed, len(in)-1); !errors.Is(err, ErrDecompressSize) {
		t.Fatalf("over limit: %v", err)
	}
	for name, bad := range map[string][]byte{
		"truncated header":       framed[:10],
		"truncated chunk length": framed[:xerialHeaderSize+2],
		"truncated chunk":        framed[:xerialHeaderSize+100],
		"chunk length too big": func() []byte {
			b := bytes.Clone(framed)
			binary.BigEndian.PutUint32(b[xerialHeaderSize:], 0xffffffff)
			return b
		}(),
		"empty chunk": append(bytes.Clone(framed[:xerialHeaderSize]), 0, 0, 0, 0),
		// A block that declares 100 bytes but holds a 3-byte literal.
		"short block": append(bytes.Clone(framed[:xerialHeaderSize]), 0, 0, 0, 5, 100, 2<<2, 'a', 'b', 'c'),
		// A copy reaching back before the start of the output.
		"bad copy offset": append(bytes.Clone(framed[:xerialHeaderSize]), 0, 0, 0, 5, 8, 0<<2, 'a', 0x01|1<<2, 50),
	} {
		if _, err := Decompress(CodecSnappy, nil, bad, 1<<20); !errors.Is(err, ErrDecompress) {
			t.Errorf("%s: err = %v, want ErrDecompress", name, err)
		}
	}
}

func TestDecompressCorrupt(t *testing.T) {
	in := recordsSection(t, jsonRecords(5, 20))
	for _, c := range allCodecs[1:] {
		comp, _ := Compress(c, nil, in)
		cases := map[string][]byte{
			"empty":     {},
			"garbage":   bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 50),
			"truncated": comp[:len(comp)/2],
		}
		if c != CodecSnappy { // raw snappy blocks carry no checksum
			mid := bytes.Clone(comp)
			mid[len(mid)-2] ^= 0x55
			cases["trailer flipped"] = mid
		}
		for name, bad := range cases {
			out, err := Decompress(c, []byte("pre"), bad, 1<<20)
			if string(out) != "pre" {
				t.Errorf("%s/%s: on error returned %q, want dst as passed", c, name, out)
			}
			if !errors.Is(err, ErrDecompress) {
				t.Errorf("%s/%s: err = %v (%d bytes out), want ErrDecompress", c, name, err, len(out))
			} else if KafkaCode(err) != 2 {
				t.Errorf("%s/%s: code %d", c, name, KafkaCode(err))
			}
		}
	}
	if _, err := Decompress(Codec(6), nil, []byte("x"), 10); !errors.Is(err, ErrCodec) {
		t.Errorf("codec 6: %v", err)
	}
	if _, err := Compress(Codec(-1), nil, []byte("x")); !errors.Is(err, ErrCodec) {
		t.Errorf("codec -1: %v", err)
	}
	if _, err := Decompress(CodecNone, nil, []byte("12345"), 4); !errors.Is(err, ErrDecompressSize) {
		t.Errorf("none over limit: %v", err)
	}
}

// TestDecoderThatPanickedIsDropped: a decoder a panic left half-way
// (here a nil one, planted in its pool) fails its Decompress with
// ErrDecompress and does not go back to the pool to fail the next ones.
func TestDecoderThatPanickedIsDropped(t *testing.T) {
	in := recordsSection(t, jsonRecords(5, 20))
	for _, tc := range []struct {
		c      Codec
		pool   *sync.Pool
		broken any
	}{
		{CodecGzip, &gzipDecoders, (*gzipDecoder)(nil)},
		{CodecLZ4, &lz4Decoders, (*lz4Decoder)(nil)},
		{CodecZstd, &zstdDecoders, (*zstd.Decoder)(nil)},
	} {
		comp, err := Compress(tc.c, nil, in)
		if err != nil {
			t.Fatal(err)
		}
		tc.pool.Get() // empties this P's private slot: the next Get takes what is put now
		tc.pool.Put(tc.broken)
		if _, err := Decompress(tc.c, nil, comp, len(in)); err == nil {
			t.Logf("%s: the pool dropped the planted decoder (as it may under -race)", tc.c)
			continue
		} else if !errors.Is(err, ErrDecompress) {
			t.Fatalf("%s: the broken decoder's error %v is not ErrDecompress", tc.c, err)
		}
		for i := range 3 {
			if out, err := Decompress(tc.c, nil, comp, len(in)); err != nil || !bytes.Equal(out, in) {
				t.Fatalf("%s: decode %d after the panic: %v, equal %v", tc.c, i, err, bytes.Equal(out, in))
			}
		}
	}
}

// bomb compresses size zero bytes with c, the way an attacker would build a
// small input that expands enormously.
func bomb(t testing.TB, c Codec, size int) []byte {
	zeros := make([]byte, size)
	switch c {
	case CodecZstd:
		// A streaming frame declares no content size, so the decoder
		// cannot refuse it up front and must stop while decoding.
		return zstdStream(zeros)
	case CodecSnappy:
		return xerialFrame(zeros, 64<<10)
	}
	out, err := Compress(c, nil, zeros)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDecompressionBombs feeds each codec a small input that expands to 32 MiB
// with a 1 MiB limit: the result must be ErrDecompressSize, and the memory
// allocated must stay near the limit, not the claimed or real size.
func TestDecompressionBombs(t *testing.T) {
	const size, limit = 32 << 20, 1 << 20
	inputs := map[string][]byte{}
	for _, c := range allCodecs[1:] {
		inputs[c.String()] = bomb(t, c, size)
	}
	// A raw snappy block that declares 64 MiB, and a zstd frame that
	// declares its content size.
	inputs["snappy raw"] = s2.EncodeSnappy(nil, make([]byte, size))
	inputs["zstd with size"] = zstdEncode(make([]byte, size))
	codecOf := map[string]Codec{"gzip": CodecGzip, "snappy": CodecSnappy, "lz4": CodecLZ4, "zstd": CodecZstd,
		"snappy raw": CodecSnappy, "zstd with size": CodecZstd}
	for name, in := range inputs {
		c := codecOf[name]
		t.Run(name, func(t *testing.T) {
			if len(in) > size/15 { // snappy cannot do better than ~21:1
				t.Fatalf("bomb is %d bytes: not a bomb", len(in))
			}
			Decompress(c, nil, in, limit) // warm the pools
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			out, err := Decompress(c, nil, in, limit)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrDecompressSize) {
				t.Fatalf("err = %v, want ErrDecompressSize", err)
			}
			if len(out) > limit+1 {
				t.Errorf("returned %d bytes, limit %d", len(out), limit)
			}
			// Growth doubles up to the limit (at most twice the limit in
			// total), plus codec buffers of a few hundred KiB.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 2*limit+512<<10 {
				t.Errorf("allocated %d bytes for a %d-byte limit", alloc, limit)
			} else {
				t.Logf("%d-byte input, %d bytes allocated for a %d-byte limit", len(in), alloc, limit)
			}
		})
	}
}

func TestCodecsConcurrent(t *testing.T) {
	in := recordsSection(t, jsonRecords(6, 40))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var comp, out []byte
			for i := range 20 {
				c := allCodecs[(g+i)%len(allCodecs)]
				var err error
				if comp, err = Compress(c, comp[:0], in); err != nil {
					t.Error(err)
					return
				}
				if out, err = Decompress(c, out[:0], comp, len(in)); err != nil || !bytes.Equal(out, in) {
					t.Errorf("%s: %v", c, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestZstdOutputBound(t *testing.T) {
	in := recordsSection(t, jsonRecords(8, 300))
	skippable := []byte{0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 'a', 'b', 'c'}
	cases := map[string][]byte{
		"EncodeAll":         zstdEncode(in),
		"stream":            zstdStream(in),
		"zeros stream":      zstdStream(make([]byte, 1<<20)),
		"ours":              func() []byte { b, _ := Compress(CodecZstd, nil, in); return b }(),
		"two frames":        append(zstdStream(in[:1000]), zstdEncode(in[1000:])...),
		"skippable first":   append(bytes.Clone(skippable), zstdStream(in)...),
		"empty zero frame":  func() []byte { b, _ := Compress(CodecZstd, nil, nil); return b }(),
		"incompressible 1M": zstdStream(codecInputs(t)["random 100K"]),
	}
	for name, comp := range cases {
		want, err := Decompress(CodecZstd, nil, comp, 64<<20)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		bound, ok := zstdOutputBound(comp)
		if !ok || bound < uint64(len(want)) {
			t.Errorf("%s: bound %d (ok %v) below the real %d bytes", name, bound, ok, len(want))
		}
		if len(want) > 0 && bound > uint64(len(want))+128<<10 {
			t.Errorf("%s: bound %d is loose for %d bytes", name, bound, len(want))
		}
		for _, cut := range []int{1, 3, len(comp) / 2} {
			if cut < len(comp) {
				if _, ok := zstdOutputBound(comp[:len(comp)-cut]); ok {
					t.Errorf("%s cut by %d: walk succeeded", name, cut)
				}
			}
		}
	}
}

// TestSizeHint checks the sizes the framing of each codec's streams
// declares against what they decode to: never less for one stream, exact
// where the format states the size, and no hint from a broken frame.
func TestSizeHint(t *testing.T) {
	in := recordsSection(t, jsonRecords(9, 300))
	half := len(in) / 2
	type input struct {
		c     Codec
		comp  []byte
		exact bool
	}
	cases := map[string]input{}
	for name, raw := range codecInputs(t) {
		for _, c := range allCodecs {
			comp, err := Compress(c, nil, raw)
			if err != nil {
				t.Fatal(err)
			}
			// Ours: zstd states its content size, LZ4 does not.
			cases[fmt.Sprintf("%s %s", c, name)] = input{c, comp, c != CodecLZ4}
		}
	}
	var gz bytes.Buffer
	w := stdgzip.NewWriter(&gz)
	w.Write(in)
	w.Close()
	cases["gzip (standard library)"] = input{CodecGzip, gz.Bytes(), true}
	cases["snappy raw"] = input{CodecSnappy, s2.EncodeSnappy(nil, in), true}
	cases["snappy xerial"] = input{CodecSnappy, xerialFrame(in, 32<<10), true}
	cases["zstd stream"] = input{CodecZstd, zstdStream(in), false}
	cases["zstd two frames"] = input{CodecZstd, append(zstdStream(in[:half]), zstdEncode(in[half:])...), false}
	for i, opts := range [][]lz4.Option{
		{lz4.BlockSizeOption(lz4.Block4Mb)},
		{lz4.BlockSizeOption(lz4.Block256Kb), lz4.BlockChecksumOption(true), lz4.ChecksumOption(false)},
		{lz4.SizeOption(uint64(len(in))), lz4.CompressionLevelOption(lz4.Level9)},
		{lz4.BlockSizeOption(lz4.Block1Mb), lz4.CompressionLevelOption(lz4.Fast)},
	} {
		cases[fmt.Sprintf("lz4 options %d", i)] = input{CodecLZ4, lz4Frame(t, in, opts...), i == 2}
	}

	for name, tc := range cases {
		out, err := Decompress(tc.c, nil, tc.comp, 64<<20)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		hint, ok := SizeHint(tc.c, tc.comp)
		switch {
		case !ok && tc.c == CodecGzip && len(tc.comp) < 20:
			// Shorter than a gzip member can be: no trailer to read.
		case !ok || hint < len(out):
			t.Errorf("%s: hint %d (ok %v) below the real %d bytes", name, hint, ok, len(out))
		case tc.exact && hint != len(out):
			t.Errorf("%s: hint %d, want exactly %d", name, hint, len(out))
		case hint > len(out)+4<<20:
			t.Errorf("%s: hint %d is loose for %d bytes", name, hint, len(out))
		}
		if tc.c == CodecGzip || tc.c == CodecNone {
			continue // gzip reads its trailer; nothing to walk
		}
		for _, cut := range []int{1, 3, len(tc.comp) / 2} {
			if cut < len(tc.comp) && len(tc.comp) > 20 {
				if n, ok := SizeHint(tc.c, tc.comp[:len(tc.comp)-cut]); ok && tc.c != CodecSnappy {
					t.Errorf("%s cut by %d: hint %d from a broken frame", name, cut, n)
				}
			}
		}
	}

	// Two gzip members: the trailer is the last member's, so the hint
	// undersells, which is why callers must decide again (SizeHint).
	gz.Reset()
	for _, part := range [][]byte{in[:half], in[half:]} {
		w := stdgzip.NewWriter(&gz)
		w.Write(part)
		w.Close()
	}
	if hint, ok := SizeHint(CodecGzip, gz.Bytes()); !ok || hint != len(in)-half {
		t.Errorf("two gzip members: hint %d (ok %v), want the last member's %d", hint, ok, len(in)-half)
	}
}

// lz4Frame is in as an LZ4 frame written with opts, as other Kafka clients
// may write theirs.
func lz4Frame(t *testing.T, in []byte, opts ...lz4.Option) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := lz4.NewWriter(&buf)
	if err := w.Apply(opts...); err != nil {
		t.Fatal(err)
	}
	w.Write(in)
	w.Close()
	return buf.Bytes()
}

// xxh32Short agrees with XXH32's published values (seed 0).
func TestXXH32Short(t *testing.T) {
	for in, want := range map[string]uint32{"": 0x02cc5d05, "a": 0x550d7456, "abc": 0x32d153ff} {
		if got := xxh32Short([]byte(in)); got != want {
			t.Errorf("XXH32(%q) = %08x, want %08x", in, got, want)
		}
	}
}

// TestZstdWindowAsKafkaLimitsIt: Kafka decodes zstd with zstd-jni's
// streaming decoder at libzstd's defaults, which refuse a frame whose
// window is over 2^27 bytes ("Frame requires too much memory for
// decoding"), whatever the frame holds; so is it refused here, and a
// window of 2^27 is not.
func TestZstdWindowAsKafkaLimitsIt(t *testing.T) {
	// A frame with a window descriptor (exponent in the high five bits,
	// window 2^(10+exponent), plus eighths in the low three) and one raw
	// block of 7 bytes.
	frame := func(windowDescriptor byte) []byte {
		f := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, windowDescriptor}
		bh := uint32(1 | 0<<1 | 7<<3) // last block, raw, 7 bytes
		f = append(f, byte(bh), byte(bh>>8), byte(bh>>16))
		return append(f, "records"...)
	}
	for _, tc := range []struct {
		wd     byte
		window int
		ok     bool
	}{
		{17 << 3, 1 << 27, true},
		{17<<3 | 1, 1<<27 + 1<<24, false},
		{18 << 3, 256 << 20, false},
		{19 << 3, 512 << 20, false},
	} {
		out, err := Decompress(CodecZstd, nil, frame(tc.wd), 1<<20)
		if tc.ok && (err != nil || string(out) != "records") {
			t.Errorf("window of %d bytes: out %q, err %v", tc.window, out, err)
		}
		if !tc.ok && (!errors.Is(err, ErrDecompress) || !strings.Contains(err.Error(), "Frame requires too much memory for decoding")) {
			t.Errorf("window of %d bytes: out %q, err %v; want ErrDecompress in Kafka's words, as Kafka refuses it", tc.window, out, err)
		}
	}
}
