package segment

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"gregor/batch"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(ms int64) *fakeClock { return &fakeClock{t: time.UnixMilli(ms)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(ms int64) {
	c.mu.Lock()
	c.t = time.UnixMilli(ms)
	c.mu.Unlock()
}

// batchSpec describes a batch built for a test.
type batchSpec struct {
	records   int
	valueSize int
	ts        int64 // timestamp of the first record; records are 1 ms apart
	codec     batch.Codec
	firstKey  int // records' keys are key-<firstKey>, key-<firstKey+1>, ...
}

// buildBatch returns one valid RecordBatch v2 as a producer would send it
// (base offset 0, epoch -1). Values are deterministic so rebuilt logs compare
// byte for byte.
func buildBatch(tb testing.TB, s batchSpec) []byte {
	tb.Helper()
	opts := batch.DefaultBuilderOptions()
	opts.Codec = s.codec
	b := batch.NewBuilder(opts)
	val := make([]byte, s.valueSize)
	for i := range s.records {
		for j := range val {
			val[j] = byte('a' + (i+j)%26)
		}
		b.Add(s.ts+int64(i), fmt.Appendf(nil, "key-%d", s.firstKey+i), val, nil)
	}
	out, err := b.AppendBatch(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// testConfig is a small-segment configuration for tests.
func testConfig() Config {
	return Config{
		SegmentBytes:       4096,
		SegmentIndexBytes:  1024,
		IndexIntervalBytes: 256,
		RetentionMs:        -1,
		RetentionBytes:     -1,
	}
}
