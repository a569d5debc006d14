package batch

import (
	"hash/crc32"
	"math"
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

// crc32cCombine holds for parts of 2^29 bytes and more, where the factor
// x^(8·len) needs powers x^(2^k) past k = 31: an uncompressed batch of
// 512 MiB of records is combined so. The long parts are zeros, hashed from
// one reused buffer, so that the test needs no large allocation.
func TestCRC32CCombineLongParts(t *testing.T) {
	zeros := make([]byte, 1<<20)
	updateZeros := func(crc uint32, n int) uint32 {
		for ; n > len(zeros); n -= len(zeros) {
			crc = crc32.Update(crc, castagnoli, zeros)
		}
		return crc32.Update(crc, castagnoli, zeros[:n])
	}
	a := []byte("a header, then a long run of records")
	for _, n := range []int{1<<29 + 3, 1<<30 + 1<<29 + 5} {
		want := updateZeros(CRC32C(a), n)
		if got := crc32cCombine(CRC32C(a), updateZeros(0, n), n); got != want {
			t.Errorf("%d+%d bytes: combined %08x, want %08x", len(a), n, got, want)
		}
	}
}

// x8nModP(a+b) is x8nModP(a)·x8nModP(b), for lengths up to the largest
// an int holds: each side uses different powers of x, so a wrong one shows.
func TestX8nModPIsMultiplicative(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 2000 {
		a := int(rng.Int64N(math.MaxInt64 / 2))
		b := int(rng.Int64N(math.MaxInt64 / 2))
		if rng.IntN(2) == 0 {
			a >>= rng.IntN(60)
			b >>= rng.IntN(60)
		}
		if got, want := x8nModP(a+b), multModP(x8nModP(a), x8nModP(b)); got != want {
			t.Fatalf("x^(8·(%d+%d)) = %08x, but the product of its factors is %08x", a, b, got, want)
		}
	}
}
