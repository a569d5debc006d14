package segment

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"gregor/batch"
)

// FuzzRecover opens a log whose only segment holds arbitrary bytes after an
// unclean shutdown: recovery must not panic, and must keep exactly a prefix of
// the file made of valid, contiguous batches, which then reads back whole.
func FuzzRecover(f *testing.F) {
	second := buildBatch(f, batchSpec{records: 2, valueSize: 5, ts: 1003, codec: batch.CodecSnappy})
	batch.Header(second).SetBaseOffset(3)
	good := append(buildBatch(f, batchSpec{records: 3, valueSize: 20, ts: 1000}), second...)
	f.Add(good)
	f.Add(good[:len(good)-7])
	f.Add([]byte{})
	f.Add(make([]byte, 100))
	quiet := slog.New(slog.DiscardHandler)
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := filepath.Join(t.TempDir(), "t-0")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, segmentName(0)+logSuffix), data, 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := Open(dir, testConfig(), OpenOptions{Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		size := l.Size()
		if size > int64(len(data)) {
			t.Fatalf("recovered %d bytes from a %d-byte file", size, len(data))
		}
		got, err := l.ReadBytes(nil, 0, len(data)+1, 1<<62)
		if err != nil && size > 0 {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data[:size]) {
			t.Fatal("the recovered log is not a prefix of the file")
		}
		it := batch.NewIter(got)
		next := int64(0)
		for h, ok := it.Next(); ok; h, ok = it.Next() {
			if err := batch.Validate(h, 0); err != nil || h.BaseOffset() != next {
				t.Fatalf("recovery kept a bad batch at offset %d: %v", next, err)
			}
			next = h.NextOffset()
		}
		if it.Err() != nil || next != l.LogEndOffset() {
			t.Fatalf("recovered batches end at %d (%v), log end %d", next, it.Err(), l.LogEndOffset())
		}
	})
}
