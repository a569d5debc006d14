//go:build race

package kshape

// raceEnabled: the race detector's build allocates kmsg's slices twice
// (the make that append extends is not elided: 32 bytes an element of a
// list of strings, not 16), so tests measuring its allocations skip.
const raceEnabled = true
