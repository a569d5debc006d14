package batch

import "math/bits"

// CRC-32C of a concatenation from the CRCs of its parts, as zlib's
// crc32_combine computes it for its polynomial: crc(A‖B) is crc(A)
// multiplied by x^(8·len(B)) modulo the polynomial, plus crc(B). A Builder
// uses it to checksum a batch's records as they are added, while they are
// still in the cache, and the header, whose fields are known only when the
// batch is finished, at the end.

// castagnoliReversed is the CRC-32C polynomial, bit-reversed.
const castagnoliReversed = 0x82f63b78

// multModP multiplies a and b modulo the polynomial (bit-reversed form: the
// top bit is x^0).
func multModP(a, b uint32) uint32 {
	m := uint32(1) << 31
	var p uint32
	for {
		if a&m != 0 {
			p ^= b
			if a&(m-1) == 0 {
				return p
			}
		}
		m >>= 1
		if b&1 != 0 {
			b = b>>1 ^ castagnoliReversed
		} else {
			b >>= 1
		}
	}
}

// x8nTable[i] is x^(8·2^i) modulo the polynomial, for every bit i a
// non-negative int may have set. zlib's crc32_combine keeps 32 powers
// x^(2^k) and wraps k around, which holds for CRC-32's polynomial, where
// x^(2^32) = x, but not for CRC-32C's: wrapping there breaks lengths of
// 2^29 bytes and more.
var x8nTable = func() (t [bits.UintSize - 1]uint32) {
	p := uint32(1) << 30 // x^1
	for range 3 {
		p = multModP(p, p) // x^2, x^4, x^8
	}
	for i := range t {
		t[i] = p
		p = multModP(p, p)
	}
	return t
}()

// x8nModP is x^(8n) modulo the polynomial: the factor that moves a CRC past
// n more bytes.
func x8nModP(n int) uint32 {
	p := uint32(1) << 31 // x^0
	for i := 0; n != 0; i++ {
		if n&1 != 0 {
			p = multModP(x8nTable[i], p)
		}
		n >>= 1
	}
	return p
}

// crc32cCombine returns the CRC-32C of A‖B from crcA, the CRC-32C of A, crcB,
// that of B, and the length of B.
func crc32cCombine(crcA, crcB uint32, lenB int) uint32 {
	return multModP(x8nModP(lenB), crcA) ^ crcB
}
