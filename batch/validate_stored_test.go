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

// TestValidateFetched: an empty batch, as Kafka's cleaner keeps an idempotent
// producer's last one, passes ValidateFetched (a consumer reads past it) but
// neither ValidateStored (Gregor's recovery: its cleaner never writes one) nor
// Validate; a negative record count or damage passes none.
func TestValidateFetched(t *testing.T) {
	empty := func(lastOffsetDelta, recordCount int32) []byte {
		b := make([]byte, HeaderSize)
		binary.BigEndian.PutUint32(b[offBatchLength:], uint32(HeaderSize-LengthOverhead))
		b[offMagic] = Magic
		binary.BigEndian.PutUint32(b[offLastOffsetDelta:], uint32(lastOffsetDelta))
		binary.BigEndian.PutUint64(b[offProducerID:], 5)
		binary.BigEndian.PutUint32(b[offBaseSequence:], 7)
		binary.BigEndian.PutUint32(b[offRecordCount:], uint32(recordCount))
		Header(b).SetCRC()
		return b
	}
	bad := empty(2, 0)
	bad[offProducerID] ^= 1
	for _, tt := range []struct {
		name          string
		b             []byte
		stored, fetch error
	}{
		{"emptied by Kafka's cleaner", empty(2, 0), ErrRecordCount, nil},
		{"negative record count", empty(2, -1), ErrRecordCount, ErrRecordCount},
		{"empty, negative offset delta", empty(-1, 0), ErrRecordCount, ErrRecordCount},
		{"empty, bad CRC", bad, ErrCRC, ErrCRC},
	} {
		if err := Validate(tt.b, 0); err == nil {
			t.Errorf("%s: Validate passed it", tt.name)
		}
		if err := ValidateStored(tt.b); !errors.Is(err, tt.stored) {
			t.Errorf("%s: ValidateStored = %v, want %v", tt.name, err, tt.stored)
		}
		if err := ValidateFetched(tt.b); !errors.Is(err, tt.fetch) || (tt.fetch == nil) != (err == nil) {
			t.Errorf("%s: ValidateFetched = %v, want %v", tt.name, err, tt.fetch)
		}
	}
}
