package netio

import (
	"io"
	"math/bits"
	"sync"
)

// Request frames of minPooledFrame bytes or more are read into buffers
// drawn from size-class pools, and a handler that is done with a frame may
// give it back (Request.Release). A broker taking megabyte produce requests
// hundreds of times a second would otherwise allocate and zero that much
// memory each second and run the garbage collector for it: together about a
// tenth of its CPU in a profile of that load. Classes are a quarter of a
// power of two apart, so a buffer is at most 25% larger than its frame, and
// sync.Pool lets the collector drop buffers no request asks for again.
// Smaller frames are allocated as before: their cost is the request's, not
// the bytes'.
const (
	minPooledFrame = 64 << 10
	maxPooledFrame = 16 << 20
)

// framePools holds one pool per class: four per power of two from
// minPooledFrame (2^16) to maxPooledFrame (2^24), which is the last.
var framePools [4*(24-16) + 1]sync.Pool

// frameClass is the pool and buffer size for a frame of size bytes; ok is
// false when frames of that size are not pooled.
func frameClass(size int) (pool, capacity int, ok bool) {
	if size < minPooledFrame || size > maxPooledFrame {
		return 0, 0, false
	}
	step := 1 << (bits.Len(uint(size)) - 3) // a quarter of the power of two below size
	capacity = (size + step - 1) &^ (step - 1)
	k := bits.Len(uint(capacity)) - 1
	return (k-16)*4 + capacity>>(k-2) - 4, capacity, true
}

// newFrame returns a buffer of size bytes for a request frame, from its
// class's pool when it has one. A pooled buffer holds an earlier frame's
// bytes: the caller overwrites all size of them before handing it on.
func newFrame(size int) []byte {
	pool, capacity, ok := frameClass(size)
	if !ok {
		return make([]byte, size)
	}
	if b, _ := framePools[pool].Get().([]byte); b != nil {
		return b[:size]
	}
	return make([]byte, size, capacity)
}

// releaseFrame puts a frame's buffer back in its class's pool, if its
// capacity is a class's.
func releaseFrame(b []byte) {
	if pool, capacity, ok := frameClass(cap(b)); ok && capacity == cap(b) {
		// Boxing the slice costs an allocation of its header, next to
		// the frame of 64 KiB or more it saves.
		framePools[pool].Put(b[:0])
	}
}

// A frame's buffer starts at firstFrameChunk, the smallest pooled frame, so
// that a peer that sends a size and nothing more holds 64 KiB, not what it
// announced. Once that is full it grows to secondFrameChunk, so that a
// megabyte produce request (the common large one) is copied once more by
// 64 KiB, not by the 320 KiB a fourfold step would copy; then fourfold.
const (
	firstFrameChunk  = minPooledFrame
	secondFrameChunk = 1 << 20
)

// ReadFrame reads a size-byte frame from r into a buffer that grows as its
// bytes arrive: a peer that announces a large frame and sends little of it
// holds 64 KiB until it has sent that much, 1 MiB until it has sent 256
// KiB, and at most four times what it sent beyond, and a large frame's
// bytes are copied a third of a time more in all
// (BenchmarkReadRequestFrame: the copies against reading a frame into a
// buffer of its announced size).
// The engines read request frames with it; other listeners of Kafka-framed
// requests (the controller's) may too.
func ReadFrame(r io.Reader, size int) ([]byte, error) {
	frame := newFrame(min(size, firstFrameChunk))
	got := 0
	for {
		n, err := io.ReadFull(r, frame[got:])
		got += n
		if err != nil {
			releaseFrame(frame)
			return nil, err
		}
		if got == size {
			return frame, nil
		}
		frame = growFrame(frame, size)
	}
}

// growFrame returns a buffer of secondFrameChunk bytes or four times
// frame's length, whichever is more (at most size), holding frame's bytes,
// and gives frame back to its pool.
func growFrame(frame []byte, size int) []byte {
	next := newFrame(min(size, max(secondFrameChunk, 4*len(frame))))
	copy(next, frame)
	releaseFrame(frame)
	return next
}
