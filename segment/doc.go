// Package segment is the log of one partition: segment files holding
// RecordBatch v2 bytes exactly as they came off the wire, sparse mmapped
// indexes over them, retention, truncation, recovery after a crash, and the
// manager of the log dirs that hold every partition.
//
// # Files
//
//	<log.dir>/
//	    .lock                                  flock(2)ed while a broker uses the dir
//	    .clean-shutdown                        present only after a clean Close
//	    recovery-point-offset-checkpoint       per partition: offsets below are fsynced
//	    <topic>-<partition>/
//	        00000000000000000000.log           batches, back to back, as on the wire
//	        00000000000000000000.index         sparse offset index
//	        00000000000000000000.timeindex     time index
//	        00000000000000001234.log           the next segment: its name is its
//	        00000000000000001234.index         first offset, 20 digits
//	        00000000000000001234.timeindex
//	        leader-epoch-checkpoint            epoch -> start offset (epoch.go)
//
// The checkpoint files' text format is drawn in checkpoint.go.
//
// # The .log file
//
//	position 0        batch (baseOffset = 0,  batchLength = n0-12)   n0 bytes
//	position n0       batch (baseOffset = b1 = 0 + records in the first)
//	...
//
// Each batch is a RecordBatch v2 (drawn in package batch) whose baseOffset and
// partitionLeaderEpoch were written by Append; no other byte differs from what
// the producer sent. Offsets are contiguous, except in compacted logs.
//
// # The offset index (.index): 8-byte entries, big-endian
//
//	 0               4               8
//	+---------------+---------------+
//	| offset - base | position      |   relative offset u32, file position u32
//	+---------------+---------------+
//
// One entry for the first batch that starts at least index.interval.bytes
// after the previous entry (never for position 0): the batch's base offset and
// where it starts. Entries strictly increase in both fields. A lookup binary
// searches for the last entry at or before the target offset, then reads batch
// headers forward from its position.
//
// # The time index (.timeindex): 12-byte entries, big-endian
//
//	 0                               8               12
//	+-------------------------------+---------------+
//	| timestamp                     | offset - base |   i64 ms, relative offset u32
//	+-------------------------------+---------------+
//
// When a batch gets an offset entry, the time index gets (the largest batch
// timestamp so far, the base offset of the batch holding it) if that timestamp
// is newer than its last entry; a segment that rolls gets one final entry for
// its largest timestamp. Timestamps strictly increase. Every batch up to an
// entry's offset is no newer than its timestamp, so a search for the first
// record at or after time T starts at the last entry older than T.
//
// Both indexes are preallocated to segment.index.bytes and mapped while their
// segment is active (a full index rolls the segment), and cut to their entries
// when it rolls or the log closes. One rule (indexer in segment.go) decides the
// entries during appends and during rebuilds, so a rebuilt index is identical
// to the one appending built.
//
// # Recovery
//
// A log dir without .clean-shutdown was not closed cleanly: for each log, every
// segment from the one holding its recovery point on is scanned (CRC-32C,
// lengths, magic, contiguous offsets, non-decreasing leader epochs), the log is
// cut at the first bad byte, later segments are deleted, and the scanned
// segments' indexes are rebuilt. An index that is missing, or that disagrees
// with its log (a zeroed tail, entries out of order or past the end), is
// rebuilt even after a clean shutdown.
//
// # Durability
//
// As in Kafka, data is not fsynced by default: replication makes it durable.
// flush.messages and flush.ms turn fsync on, with group commit: appends that
// wait while an fsync runs share the next one. Rolled segments are fsynced in
// the background, and everything on Close. The first failed write or fsync
// stops the log: every later call returns ErrLogFailed (KAFKA_STORAGE_ERROR).
//
// # Concurrency
//
// A Log has one appender at a time (appendMu serialises appends, rolls,
// truncation, retention and Close) and any number of readers. What readers
// see (the segment list, sizes, index entry counts, log start and end) is
// published under a RWMutex; the appender writes bytes and index entries
// beyond the published ends first and publishes them after, so readers never
// wait for disk writes. Read returns reference-counted regions of segment
// files; a segment deleted while a reader holds a region is unlinked at once
// and closed when the last region is released.
package segment
