package batch

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

// x2nTable[k] is x^(2^k) modulo the polynomial.
var x2nTable = func() (t [32]uint32) {
	p := uint32(1) << 30 // x^1
	t[0] = p
	for k := 1; k < len(t); k++ {
		p = multModP(p, p)
		t[k] = p
	}
	return t
}()

// x8nModP is x^(8n) modulo the polynomial: the factor that moves a CRC past
// n more bytes.
func x8nModP(n int) uint32 {
	p := uint32(1) << 31 // x^0
	for k := 3; n != 0; k++ {
		if n&1 != 0 {
			p = multModP(x2nTable[k&31], p)
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
