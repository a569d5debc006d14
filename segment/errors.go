package segment

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
)

// ErrCorruption marks bytes on disk that fail a check: a bad CRC, a torn batch,
// an index that disagrees with its log, a malformed checkpoint file. It is a
// distinct error so recovery and tests can tell damage from an I/O failure.
var ErrCorruption = errors.New("segment: corruption")

// ErrLogFailed wraps the first write or fsync error of a Log. After it, every
// call on that Log returns it: a storage error stops the partition and is never
// retried or swallowed. It unwraps to KAFKA_STORAGE_ERROR.
var ErrLogFailed = &failedError{}

type failedError struct{}

func (*failedError) Error() string { return "segment: log failed after a storage error" }
func (*failedError) Unwrap() error { return kerr.KafkaStorageError }

// ErrOffsetOutOfRange is returned for reads below the log start offset or past
// the log end offset. It unwraps to OFFSET_OUT_OF_RANGE.
var ErrOffsetOutOfRange = &rangeError{}

type rangeError struct{}

func (*rangeError) Error() string { return "segment: offset out of range" }
func (*rangeError) Unwrap() error { return kerr.OffsetOutOfRange }

// ErrClosed is returned by calls on a closed Log.
var ErrClosed = errors.New("segment: log closed")

// ErrInconsistentTopicID is returned when a log is given a topic id other
// than the one its partition.metadata records: it holds another topic's
// records, and its owner deletes it rather than give it a new id (Kafka's
// InconsistentTopicIdException). It unwraps to INCONSISTENT_TOPIC_ID.
var ErrInconsistentTopicID = &topicIDError{}

type topicIDError struct{}

func (*topicIDError) Error() string { return "segment: the log belongs to another topic id" }
func (*topicIDError) Unwrap() error { return kerr.InconsistentTopicID }
