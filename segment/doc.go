// Package segment is the log of one partition: segment files holding
// RecordBatch v2 bytes exactly as they came off the wire, sparse mmapped
// indexes over them, retention, compaction, truncation, recovery after a
// crash, and the manager of the log dirs that hold every partition.
//
// # Files
//
//	<log.dir>/
//	    .lock                                  flock(2)ed while a broker uses the dir
//	    .clean-shutdown                        present only after a clean Close
//	    recovery-point-offset-checkpoint       per partition: offsets below are fsynced
//	    cleaner-offset-checkpoint              per compacted partition: offsets below are clean
//	    log-start-offset-checkpoint            per partition whose start a DeleteRecords
//	                                           raised: offsets below are deleted
//	    <topic>-<partition>/
//	        00000000000000000000.log           batches, back to back, as on the wire
//	        00000000000000000000.index         sparse offset index
//	        00000000000000000000.timeindex     time index
//	        00000000000000001234.log           the next segment: its name is its
//	        00000000000000001234.index         first offset, 20 digits
//	        00000000000000001234.timeindex
//	        leader-epoch-checkpoint            epoch -> start offset (epoch.go)
//	        partition.metadata                 the id of the partition's topic, in
//	                                           Kafka's format (partmeta.go):
//	                                           "version: 0\ntopic_id: <base64url>"
//	        00000000000000000000.log.cleaned   the cleaner's output, not yet committed
//	        00000000000000000000.log.swap      committed cleaner output, not yet renamed
//	        (and .index/.timeindex .cleaned/.swap beside them)
//	        00000000000000000000.log.deleted   a deleted segment's files, removed
//	        (and .index/.timeindex .deleted)   file.delete.delay.ms later, at Close,
//	                                           or at the next open after a crash
//	        00000000000000001234.producers     the replica's producer-state snapshot
//	                                           as of offset 1234 (replica/doc.go);
//	                                           the log leaves it alone
//	    <topic>-<partition>.<32 hex>-delete/   a deleted partition's directory, removed
//	                                           file.delete.delay.ms later, or that
//	                                           long after the next start (dirdelete.go)
//
// The checkpoint files' text format is drawn in checkpoint.go.
//
// # Whose log it is
//
// A partition directory's name says the topic's name, not which topic of
// that name: one deleted and created again is another. partition.metadata
// says which, as in Kafka. It is written, fsynced, when the log is first
// given its topic's id (Log.SetTopicID), before anything is appended in
// that topic's name, and never changed. The log's owner tells by it a log
// left by a deleted topic (another id) from the one it asks for, and
// deletes the first; a log without the file (written by a Gregor that did
// not keep it) is taken for the topic it is given first. A file that does
// not read as Kafka reads it keeps the log from opening (ErrCorruption), as
// it takes Kafka's log dir offline: the records' topic cannot be known.
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
// when it rolls or the log closes. The preallocated tail is a hole, and an
// active index's mapping is advised MADV_RANDOM so that a fault maps the one
// page written instead of reading megabytes of the hole ahead as zeros.
// One rule (indexer in segment.go) decides the entries during appends and
// during rebuilds, so a rebuilt index is identical to the one appending built.
//
// # Recovery
//
// A log dir without .clean-shutdown was not closed cleanly: for each log,
// every segment from the one holding its recovery point on is scanned
// (CRC-32C, lengths, magic, contiguous offsets, non-decreasing leader epochs),
// the log is cut at the first bad byte, later segments are deleted, and the
// scanned segments' indexes are rebuilt. An index that is missing, or that
// disagrees with its log (a zeroed tail, entries out of order or past the
// end), is rebuilt even after a clean shutdown. A checkpoint that does not
// parse is set aside with a warning, as Kafka's LogManager does: the dir's
// logs are recovered, start and are cleaned from their first segments, and the
// checkpoint is rewritten once the dir is loaded. Without the cleaner's
// checkpoint, which tells the cleaner's gaps from damage (set aside, or
// missing from a dir that holds logs, though every load writes one), every log
// of the dir is recovered allowing for gaps, so that no cleaned log is cut,
// and its batch headers are walked (one pread each, up to the first mark) for
// what only the cleaner leaves: a gap between offsets, or a batch holding
// fewer records than its offsets span. A log that has such marks is listed in
// the rewritten checkpoint again, at its log start: cleaned from there, which
// only repeats work, and its gaps still the cleaner's at the next start; a log
// without is not listed, and stays held to contiguous offsets. In a log never
// cleaned (offsets contiguous), a segment that does not start where the one
// before it ended is scanned too, wherever it lies, and the log is cut before
// it: nothing resumes past a hole. Truncate renames the segments after the new
// end *.deleted, the last first, and fsyncs the dir before it cuts the segment
// holding the end, so that a crash leaves a prefix of the log, never a hole.
//
// # Compaction (cleaner.go)
//
// A log whose cleanup.policy has compact keeps at least the newest record of
// each key. The cleaner rewrites its closed segments, never the active one:
//
//	offsets     0    1    2    3    4    5    6    7 | 8    9
//	before      a=1  b=1  a=2  c=1  b=∅  a=3  d=1  e=1| a=4  f=1     (∅: tombstone)
//	            [ segment 0    ][ segment 4        ]  [active 8  ]
//	after       ·    ·    ·    c=1  b=∅  a=3  d=1  e=1| a=4  f=1
//	            [ segment 0: one cleaned segment     ][active 8  ]
//	                                   first dirty offset -> 8
//
// Offsets never move: a cleaned batch keeps its header (baseOffset,
// lastOffsetDelta, baseTimestamp, attributes, producer fields) and holds only
// the records that stay, recompressed with its own codec, so recordCount may
// be less than lastOffsetDelta+1; a batch left empty is dropped, leaving a
// gap, and Read at an offset in a gap returns the next batch after it. As
// in Kafka, a CreateTime batch's maxTimestamp becomes the largest of the
// records it kept (a LogAppendTime batch's, the append time of them all,
// stays), so that the cleaned segment's time index and largest timestamp,
// and ListOffsets by time and MAX_TIMESTAMP, go by records that exist. A
// lookup by time reads the records of the batch whose header qualifies and
// goes on to the next batch when none of them does, never trusting a header
// alone. Groups
// of consecutive cleaned segments whose sizes sum to at most segment.bytes
// merge into one, named after the first. a=4 in the active segment is not
// compared with the closed segments until the next pass, after it rolls.
//
// Tombstones (here b=∅) follow KIP-534, as Kafka's cleaner does since 3.0:
// the first pass that keeps one stamps its batch with a delete horizon, now +
// delete.retention.ms, and a pass at or after the horizon drops it. So a
// tombstone outlives the values it deletes by delete.retention.ms at least,
// however old it is. The stamp is the one header change a cleaned batch
// gets, in Kafka's layout:
//
//	attributes     bit 6 (0x40) set: the delete horizon is set
//	baseTimestamp  the horizon, ms, instead of the first record's timestamp
//	each record    timestampDelta rebased on it: timestamps do not change
//
// The offset
// below which the log is clean (8 above) is its entry in the dir's
// cleaner-offset-checkpoint; a log listed there may have gaps, which recovery
// allows whatever the log's configured policy.
//
// Swapping a cleaned segment in for the segments it replaces survives a
// crash at any point:
//
//	step                                                 a crash after it
//	1  write 00..0.log.cleaned, .index.cleaned and       *.cleaned are deleted at open:
//	   .timeindex.cleaned; fsync them                    the old segments are intact
//	2  rename the indexes, then the log, to .swap;       before the log's rename: as 1;
//	   fsync the dir. 00..0.log.swap: COMMITTED          after it, open completes 3 and 4
//	3  swap the segment list (under the log's lock);
//	   rename the other replaced segments *.deleted;
//	   fsync the dir
//	4  rename the .swap files to their final names,
//	   replacing segment 0's; fsync the dir
//
// At open, a <base>.log.swap replaces every segment whose base offset lies in
// [base, the swap's next offset), as in Kafka; the cleaner makes that exact
// by never ending a group with a segment that kept no record (such a segment
// leads the next group, or is replaced by an empty segment of its own).
// Index .swap files without a log .swap are deleted. Replaced segments stay
// open for readers that hold regions of them (reference counts), and close
// when the last region is released.
//
// # The log start
//
// The log start offset is the first segment's base until a DeleteRecords
// raises it (AdvanceLogStart), possibly into the middle of a segment or a
// batch. Reads, ListOffsets and lookups by time then begin there (a batch
// holding it is still read whole, as Kafka sends it). The segments wholly
// below it go at the next retention check, whatever the cleanup.policy; a
// raised start is kept in the dir's log-start-offset-checkpoint:
//
//	offsets     0 .. 99 | 100 .. 199 | 200 .. 249 (active)
//	DeleteRecords(150)   -> log start 150: reads below it OFFSET_OUT_OF_RANGE
//	retention check      -> segment 0 deleted; segment 100 stays (holds 150..199)
//	checkpoint entry     "topic 0 150" until the start is a segment base again
//
// # Configs at start-up
//
// The Manager opens every log it finds in its dirs before a broker knows
// their topics' configs, which live in the metadata quorum. Without
// ManagerOptions.ConfigFor, such a log takes the broker's defaults
// provisionally: appends, reads and rolls go by them, but retention by time
// and size and the cleaner leave the log alone until Log.SetConfig gives it
// its topic's config (a provisional config equals no Config built elsewhere,
// so a caller that applies a topic's config whenever it differs from the
// log's always applies it). Acting on defaults could delete the old segments
// of a compacted topic or of one that keeps its records longer, or compact a
// topic that does not; Kafka loads each log with its topic's config.
// Segments wholly below a log start that DeleteRecords raised go whatever
// the config.
//
// # Durability
//
// As in Kafka, data is not fsynced by default: replication makes it durable.
// flush.messages and flush.ms turn fsync on, with group commit: appends that
// wait while an fsync runs share the next one. Rolled segments are fsynced in
// the background, and everything on Close. An fsync that covers a segment
// created since the last one fsyncs the dir too, before the recovery point
// passes it (Kafka's LocalLog.flush): the roll's own dir fsync runs in the
// background, and an acknowledged record must not sit in a file a crash could
// unlink. The first failed write or fsync
// stops the log: every later call returns ErrLogFailed (KAFKA_STORAGE_ERROR).
//
// # Concurrency
//
// A Log has one appender at a time (appendMu serialises appends, rolls,
// truncation, retention and Close), any number of readers, and at most one
// cleaning pass, which reads and writes without the log's locks and takes
// swapMu (shared with truncation, retention and Close, never with appends)
// and then the list's lock only to swap segments. What readers
// see (the segment list, sizes, index entry counts, log start and end) is
// published under a RWMutex; the appender writes bytes and index entries
// beyond the published ends first and publishes them after, so readers never
// wait for disk writes. Read returns reference-counted regions of segment
// files; a segment deleted while a reader holds a region is renamed
// *.deleted at once (removed file.delete.delay.ms later, delete.go) and
// closed when the last region is released.
package segment
