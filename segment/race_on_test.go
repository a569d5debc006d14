//go:build race

package segment

// raceEnabled: the race detector makes sync.Pool drop what it holds at
// random, so pooled codecs allocate; allocation tests of pooled paths skip.
const raceEnabled = true
