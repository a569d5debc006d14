package netio

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

// TestFrameClass: a pooled frame's buffer is at least its size and at most
// a quarter larger, each class has one capacity, and sizes outside the
// pooled range are not pooled.
func TestFrameClass(t *testing.T) {
	for _, size := range []int{minPooledFrame - 1, maxPooledFrame + 1, 0, 100} {
		if _, _, ok := frameClass(size); ok {
			t.Errorf("a %d-byte frame is pooled", size)
		}
	}
	capacityOf := map[int]int{}
	for size := minPooledFrame; size <= maxPooledFrame; size += 4093 {
		pool, capacity, ok := frameClass(size)
		if !ok || pool < 0 || pool >= len(framePools) {
			t.Fatalf("a %d-byte frame: pool %d of %d, ok %v", size, pool, len(framePools), ok)
		}
		if capacity < size || capacity > size+size/4 {
			t.Fatalf("a %d-byte frame gets a %d-byte buffer", size, capacity)
		}
		if c, seen := capacityOf[pool]; seen && c != capacity {
			t.Fatalf("pool %d holds buffers of %d and %d bytes", pool, c, capacity)
		}
		capacityOf[pool] = capacity
		if p, c, _ := frameClass(capacity); p != pool || c != capacity {
			t.Fatalf("a %d-byte buffer goes back to pool %d (capacity %d), came from %d", capacity, p, c, pool)
		}
	}
	if len(capacityOf) != len(framePools) {
		t.Fatalf("%d pools used, %d declared", len(capacityOf), len(framePools))
	}
}

// TestReleasedFramesCarryNoOldBytes: a handler that releases every frame
// still sees each frame exactly as sent, whatever buffer it was read into,
// with frames of many sizes back to back on one connection.
func TestReleasedFramesCarryNoOldBytes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		sizes := []int{200 << 10, 70 << 10, 1 << 20, 65 << 10, 1<<20 + 7, 300 << 10, 2 << 20, 70<<10 + 1}
		payload := func(i, size int) []byte {
			b := make([]byte, size)
			for j := range b {
				b[j] = byte(i*31 + j*7)
			}
			b[0] = byte(i) // which frame it is, for the handler
			return b
		}
		errs := make(chan error, len(sizes)*4)
		_, addr := startTCP(t, engine, Config{}, HandlerFunc(func(req *Request, respond func(Response)) {
			i := int(req.Frame[0])
			if want := payload(i, sizes[i%len(sizes)]); !bytes.Equal(req.Frame, want) {
				errs <- fmt.Errorf("frame %d: %d bytes, not as sent", i, len(req.Frame))
			} else {
				errs <- nil
			}
			req.Release()
			respond(bytesResponse([]byte{byte(i)}))
		}))
		c := dial(t, addr)
		n := len(sizes) * 4
		go func() {
			for i := range n {
				if _, err := c.Write(frame(payload(i, sizes[i%len(sizes)]))); err != nil {
					return
				}
			}
		}()
		for range n {
			if err := within(t, errs, "a handled frame"); err != nil {
				t.Fatal(err)
			}
			readFrame(t, c)
		}
	})
}

// grantReader checks, at every read into a frame's buffer, how much memory
// ReadFrame has set aside against what has arrived, and delivers at most
// step bytes a read.
type grantReader struct {
	t          *testing.T
	src        []byte
	step, sent int
}

func (r *grantReader) Read(p []byte) (int, error) {
	// p is the unfilled rest of the buffer: sent+len(p) is all of it.
	limit := max(64<<10, 4*r.sent)
	if r.sent >= 64<<10 {
		limit = max(limit, 1<<20)
	}
	if held := r.sent + len(p); held > limit {
		r.t.Fatalf("a frame buffer of %d bytes after %d arrived", held, r.sent)
	}
	if len(r.src) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.step)], r.src)
	r.src, r.sent = r.src[n:], r.sent+n
	return n, nil
}

// TestFrameBufferFollowsArrivals: a peer announcing a large frame holds 64
// KiB until it has sent that much, then 1 MiB or four times what it has
// sent, whether it stops after the
// size, in the middle, or sends it all; a whole frame arrives intact.
func TestFrameBufferFollowsArrivals(t *testing.T) {
	const size = 48 << 20
	for _, sent := range []int{0, 1, 100 << 10, 5 << 20, size} {
		src := bytes.Repeat([]byte("frame"), sent/5+1)[:sent]
		r := &grantReader{t: t, src: src, step: 32 << 10}
		frame, err := ReadFrame(r, size)
		if sent < size {
			if err == nil {
				t.Fatalf("%d of %d bytes sent: no error", sent, size)
			}
			continue
		}
		if err != nil || !bytes.Equal(frame, src) {
			t.Fatalf("a whole frame: err %v, intact %v", err, bytes.Equal(frame, src))
		}
		releaseFrame(frame)
	}
}
