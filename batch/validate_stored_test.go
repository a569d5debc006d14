package batch

import (
	"encoding/binary"
	"errors"
	"testing"
)

// TestValidateStored: a batch whose offsets span more than its records (as
// the cleaner leaves one) passes ValidateStored but not Validate; one with
// more records than offsets, or any other damage, passes neither.
func TestValidateStored(t *testing.T) {
	b := NewBuilder(DefaultBuilderOptions())
	for range 3 {
		b.Add(1000, []byte("k"), []byte("v"), nil)
	}
	out, err := b.AppendBatch(nil)
	if err != nil {
		t.Fatal(err)
	}
	withDelta := func(d int32) []byte {
		c := append([]byte(nil), out...)
		binary.BigEndian.PutUint32(c[offLastOffsetDelta:], uint32(d))
		Header(c).SetCRC()
		return c
	}
	for _, tt := range []struct {
		name             string
		b                []byte
		validate, stored error
	}{
		{"as built", out, nil, nil},
		{"thinned by the cleaner", withDelta(9), ErrOffsetDelta, nil},
		{"more records than offsets", withDelta(1), ErrOffsetDelta, ErrOffsetDelta},
		{"bad CRC", func() []byte { c := withDelta(9); c[len(c)-1] ^= 1; return c }(), ErrCRC, ErrCRC},
	} {
		if err := Validate(tt.b, 0); !errors.Is(err, tt.validate) || (tt.validate == nil) != (err == nil) {
			t.Errorf("%s: Validate = %v, want %v", tt.name, err, tt.validate)
		}
		if err := ValidateStored(tt.b); !errors.Is(err, tt.stored) || (tt.stored == nil) != (err == nil) {
			t.Errorf("%s: ValidateStored = %v, want %v", tt.name, err, tt.stored)
		}
	}
}
