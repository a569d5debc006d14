// Package testseed gives randomized tests a seed that a failure can replay.
package testseed

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// Env is the environment variable that fixes the seed.
const Env = "GREGOR_TEST_SEED"

// Seed returns $GREGOR_TEST_SEED if set, else a seed from the clock, and logs
// it with the command-line hint to rerun the test with it.
func Seed(tb testing.TB) uint64 {
	tb.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(Env); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			tb.Fatalf("%s=%q: %v", Env, s, err)
		}
	}
	tb.Logf("seed %d (rerun with %s=%d)", seed, Env, seed)
	return seed
}
