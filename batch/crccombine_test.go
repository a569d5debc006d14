package batch

import (
	"math/rand/v2"
	"testing"
)

// crc32cCombine agrees with a CRC over the concatenation, for empty parts,
// short ones and long ones.
func TestCRC32CCombine(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	cuts := [][2]int{{0, 0}, {0, 1}, {1, 0}, {40, 1}, {40, 1000}, {40, 1 << 20}, {7, 3<<20 - 7}, {1 << 20, 123457}}
	for range 50 {
		a := rng.IntN(5000)
		cuts = append(cuts, [2]int{a, rng.IntN(len(data) - a)})
	}
	for _, c := range cuts {
		a, b := data[:c[0]], data[c[0]:c[0]+c[1]]
		want := CRC32C(data[:c[0]+c[1]])
		if got := crc32cCombine(CRC32C(a), CRC32C(b), len(b)); got != want {
			t.Fatalf("lengths %d+%d: combined %08x, want %08x", len(a), len(b), got, want)
		}
	}
}
