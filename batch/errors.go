package batch

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Error is a validation failure. Each failure has its own sentinel so tests and
// callers can tell them apart with errors.Is, and each unwraps to the Kafka error
// that a broker must answer with (errors.Is(err, kerr.CorruptMessage) holds for a
// bad CRC), so the broker never needs a table of its own.
type Error struct {
	Kafka  *kerr.Error
	Reason string
}

func (e *Error) Error() string { return "batch: " + e.Reason }

// Unwrap exposes the Kafka error code.
func (e *Error) Unwrap() error { return e.Kafka }

// The distinct validation failures. Detailed errors wrap one of these with
// fmt.Errorf("%w: …") and so match both the sentinel and its Kafka error.
var (
	ErrShort          = &Error{kerr.CorruptMessage, "batch shorter than the 61-byte RecordBatch header"}
	ErrLength         = &Error{kerr.CorruptMessage, "batchLength does not match the bytes"}
	ErrCRC            = &Error{kerr.CorruptMessage, "CRC-32C mismatch"}
	ErrMagic          = &Error{kerr.InvalidRecord, "magic is not 2 (only RecordBatch v2 is supported)"}
	ErrOffsetDelta    = &Error{kerr.InvalidRecord, "lastOffsetDelta is not records-1"}
	ErrRecordCount    = &Error{kerr.InvalidRecord, "record count is not positive"}
	ErrCodec          = &Error{kerr.UnsupportedCompressionType, "unknown compression codec"}
	ErrTooLarge       = &Error{kerr.MessageTooLarge, "batch larger than the size limit"}
	ErrRecord         = &Error{kerr.CorruptMessage, "malformed record"}
	ErrDecompressSize = &Error{kerr.CorruptMessage, "decompressed records exceed the size limit"}
	ErrDecompress     = &Error{kerr.CorruptMessage, "records do not decompress"}
	// ErrLevel is a compression level outside its codec's range: a
	// configuration error, not a bad batch.
	ErrLevel = &Error{kerr.InvalidConfig, "compression level out of range"}
)

// KafkaCode returns the Kafka error code for err: 0 for nil, the code of the Kafka
// error err wraps, or -1 (UNKNOWN_SERVER_ERROR) for anything else.
func KafkaCode(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return kerr.UnknownServerError.Code
}
