package client

import "testing"

// TestGoid: goid tells goroutines apart and is stable within one.
func TestGoid(t *testing.T) {
	mine := goid()
	if mine == 0 || goid() != mine {
		t.Fatalf("goid() = %d, then %d: want one non-zero id", mine, goid())
	}
	other := make(chan uint64)
	go func() { other <- goid() }()
	if id := <-other; id == 0 || id == mine {
		t.Fatalf("another goroutine's goid() = %d, this one's %d", id, mine)
	}
}
