package batch

import "fmt"

// Iter walks the RecordBatches laid end to end in a byte slice (a produce
// request's records, or a stretch of a segment file) without copying them.
//
//	it := batch.NewIter(b)
//	for h, ok := it.Next(); ok; h, ok = it.Next() { … }
//	if err := it.Err(); err != nil { … }
//
// Iter checks only what it needs to step safely: that a full header is present
// and that batchLength is sane and fits in the remaining bytes. A trailing
// partial batch stops the walk and is reported by Err as ErrShort or ErrLength,
// with Pos at its first byte, so a caller can tell "ends cleanly" from "ends
// with a torn write". Iter does not allocate.
type Iter struct {
	b   []byte
	pos int
	err error
}

// NewIter returns an iterator over the batches in b.
func NewIter(b []byte) Iter { return Iter{b: b} }

// Next returns the next whole batch, or false at the end or on a partial batch.
func (it *Iter) Next() (Header, bool) {
	if it.err != nil || it.pos >= len(it.b) {
		return nil, false
	}
	rest := it.b[it.pos:]
	if len(rest) < HeaderSize {
		it.err = fmt.Errorf("%w: %d trailing bytes at position %d", ErrShort, len(rest), it.pos)
		return nil, false
	}
	n := int64(Header(rest).BatchLength()) + LengthOverhead
	if n < HeaderSize || n > int64(len(rest)) {
		it.err = fmt.Errorf("%w: batch at position %d declares %d bytes, %d remain", ErrLength, it.pos, n, len(rest))
		return nil, false
	}
	it.pos += int(n)
	return Header(rest[:n:n]), true
}

// Pos is the position just past the last batch Next returned, or, after a
// partial batch, the position where that batch starts.
func (it *Iter) Pos() int { return it.pos }

// Err reports why the walk stopped early: nil if it ran to the end cleanly.
func (it *Iter) Err() error { return it.err }
