package segment

// Checkpoint files: small text files in Kafka's format, replaced atomically.
//
//	<log.dir>/recovery-point-offset-checkpoint    (Kafka's replication-offset-checkpoint
//	<log.dir>/cleaner-offset-checkpoint            shares it too)
//	<log.dir>/log-start-offset-checkpoint
//	    0\n                 version
//	    2\n                 entry count
//	    topic-a 0 1234\n    topic SP partition SP offset
//	    topic-b 3 99\n
//
//	<log.dir>/<topic>-<partition>/leader-epoch-checkpoint   (see epoch.go)
//	    0\n                 version
//	    2\n                 entry count
//	    0 0\n               epoch SP startOffset
//	    3 120\n
//
// Numbers are decimal, fields are separated by exactly one space and every line,
// the last included, ends in '\n'. A write goes to "<name>.tmp" in the same
// directory, is fsynced, renamed over "<name>", and the directory is fsynced, so
// a reader sees the old file or the new one, never a mix. A leftover .tmp from a
// crash is never read and is overwritten by the next write. Writers of one path
// must be serialized by their owner (the tmp name is fixed, as in Kafka, so a
// crash cannot leave a growing pile of temp files).
//
// A missing file reads as no entries. So does an empty (0-byte) file: Kafka
// creates its checkpoint files empty before their first write, and a log dir
// written by Kafka may hold one. Anything else that does not parse exactly is
// ErrCorruption naming the file and line.

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// RecoveryPointCheckpointFileName is the offset checkpoint in each log dir that
// records, per partition, the offset below which the log is known to be flushed.
const RecoveryPointCheckpointFileName = "recovery-point-offset-checkpoint"

// CleanerOffsetCheckpointFileName is the offset checkpoint in each log dir
// that records, per compacted partition, the offset below which its log is
// clean (its first dirty offset). A partition listed there may hold cleaned
// batches, which recovery must not take for damage.
const CleanerOffsetCheckpointFileName = "cleaner-offset-checkpoint"

// LogStartOffsetCheckpointFileName is the offset checkpoint in each log dir
// that records, per partition whose log start a DeleteRecords raised above
// its first segment's base, that log start: the records below it stay
// deleted across a restart, though their segment is not yet gone.
const LogStartOffsetCheckpointFileName = "log-start-offset-checkpoint"

// maxCheckpointBytes bounds what a reader loads. A line of the offset
// checkpoint is at most 281 bytes (a 249-byte topic, an int32, an int64), so
// this allows about 238,000 partitions in one log dir.
const maxCheckpointBytes = 64 << 20

// maxTopicLen is Kafka's limit on the length of a topic name.
const maxTopicLen = 249

// checkpointFormat is one versioned, counted, line-per-entry file format. The
// offset checkpoint and the leader-epoch checkpoint are both instances of it.
type checkpointFormat[T any] struct {
	what    string // for error messages, e.g. "offset checkpoint"
	version int64
	// appendEntry appends the line for e, without its newline.
	appendEntry func(dst []byte, e T) []byte
	// parseEntry parses one line, without its newline. Its error says what is
	// wrong with the line; the caller adds the file and line number.
	parseEntry func(line string) (T, error)
}

// encode returns the whole file for entries.
func (f *checkpointFormat[T]) encode(entries []T) []byte {
	buf := make([]byte, 0, 16+32*len(entries))
	buf = strconv.AppendInt(buf, f.version, 10)
	buf = append(buf, '\n')
	buf = strconv.AppendInt(buf, int64(len(entries)), 10)
	buf = append(buf, '\n')
	for _, e := range entries {
		buf = f.appendEntry(buf, e)
		buf = append(buf, '\n')
	}
	return buf
}

// write replaces the file at path with entries (ReplaceFile).
func (f *checkpointFormat[T]) write(path string, entries []T) error {
	if err := ReplaceFile(path, f.encode(entries)); err != nil {
		return fmt.Errorf("segment: write %s: %w", f.what, err)
	}
	return nil
}

// ReplaceFile replaces the file at path with data so that a reader, or a
// restart after a crash, finds the old file or the new one, never a mix:
// "<path>.tmp" is written and fsynced, renamed over path, and the directory
// fsynced. On an error before the rename the old file is untouched and the
// tmp file removed. Writers of one path must be serialized by their owner.
func ReplaceFile(path string, data []byte) error { return replaceFile(path, data, true) }

// ReplaceFileNoSync is ReplaceFile without its fsyncs, for a writer that
// cannot wait for them: a reader, or a process restarted after it died,
// finds the old file or the new one, but after the machine crashes the new
// one may be missing or torn until SyncReplaced has made it durable, so data
// must carry its own check (a CRC).
func ReplaceFileNoSync(path string, data []byte) error { return replaceFile(path, data, false) }

// SyncReplaced makes a ReplaceFileNoSync of path durable: it fsyncs the file
// and its directory. A file removed since is no error.
func SyncReplaced(path string) error {
	fd, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	err = fd.Sync()
	if cerr := fd.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("%s: sync directory: %w", path, err)
	}
	return nil
}

func replaceFile(path string, data []byte, sync bool) error {
	tmp := path + ".tmp"
	fd, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = fd.Write(data)
	if err == nil && sync {
		err = fd.Sync()
	}
	if cerr := fd.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		// The write already failed; a failure to remove the tmp file adds
		// nothing the caller can act on, and the next write truncates it.
		_ = os.Remove(tmp)
		return err
	}
	if !sync {
		return nil
	}
	// The rename is durable only once the directory entry is.
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("%s: sync directory: %w", path, err)
	}
	return nil
}

// read loads the file at path. A missing or empty file is (nil, nil).
func (f *checkpointFormat[T]) read(path string) ([]T, error) {
	fd, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("segment: read %s %s: %w", f.what, path, err)
	}
	defer fd.Close()
	info, err := fd.Stat()
	if err != nil {
		return nil, fmt.Errorf("segment: read %s %s: %w", f.what, path, err)
	}
	if info.Size() > maxCheckpointBytes {
		return nil, fmt.Errorf("%w: %s %s is larger than %d bytes", ErrCorruption, f.what, path, maxCheckpointBytes)
	}
	// The limit still applies if the file grows after the Stat.
	buf := bytes.NewBuffer(make([]byte, 0, info.Size()+1))
	if _, err := buf.ReadFrom(io.LimitReader(fd, maxCheckpointBytes+1)); err != nil {
		return nil, fmt.Errorf("segment: read %s %s: %w", f.what, path, err)
	}
	data := buf.Bytes()
	if len(data) > maxCheckpointBytes {
		return nil, fmt.Errorf("%w: %s %s is larger than %d bytes", ErrCorruption, f.what, path, maxCheckpointBytes)
	}
	return f.parse(path, data)
}

// parse decodes a whole file. path is only used in error messages.
func (f *checkpointFormat[T]) parse(path string, data []byte) ([]T, error) {
	if len(data) == 0 {
		return nil, nil
	}
	// Every line ends in '\n': a last line without one is a torn write, and
	// could otherwise parse as a shorter, wrong number.
	if data[len(data)-1] != '\n' {
		return nil, f.corrupt(path, bytes.Count(data, []byte{'\n'})+1, "last line has no newline")
	}
	lines := strings.Split(string(data[:len(data)-1]), "\n")

	version, err := strconv.ParseInt(lines[0], 10, 32)
	if err != nil {
		return nil, f.corrupt(path, 1, "version %q is not a number", lines[0])
	}
	if version != f.version {
		return nil, f.corrupt(path, 1, "version %d, want %d", version, f.version)
	}
	if len(lines) < 2 {
		return nil, f.corrupt(path, 2, "entry count missing")
	}
	count, err := strconv.ParseInt(lines[1], 10, 32)
	if err != nil || count < 0 {
		return nil, f.corrupt(path, 2, "entry count %q is not a non-negative number", lines[1])
	}
	body := lines[2:]
	if int64(len(body)) > count {
		return nil, f.corrupt(path, 2+int(count)+1, "trailing data after the %d entries the header counts", count)
	}
	if int64(len(body)) < count {
		return nil, f.corrupt(path, len(lines)+1, "%d entries, the header counts %d", len(body), count)
	}
	entries := make([]T, 0, len(body))
	for i, line := range body {
		e, err := f.parseEntry(line)
		if err != nil {
			return nil, f.corrupt(path, i+3, "%q: %v", line, err)
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// corrupt returns an ErrCorruption naming the file and the 1-based line.
func (f *checkpointFormat[T]) corrupt(path string, line int, format string, args ...any) error {
	return fmt.Errorf("%w: %s %s line %d: %s", ErrCorruption, f.what, path, line, fmt.Sprintf(format, args...))
}

// checkpointFields splits line into exactly n fields separated by single spaces.
func checkpointFields(line string, n int) ([]string, error) {
	fields := strings.Split(line, " ")
	if len(fields) != n {
		return nil, fmt.Errorf("want %d fields separated by single spaces, got %d", n, len(fields))
	}
	return fields, nil
}

// PartitionOffset is one line of an offset checkpoint file.
type PartitionOffset struct {
	Topic     string
	Partition int32
	Offset    int64
}

var offsetCheckpointFormat = &checkpointFormat[PartitionOffset]{
	what:    "offset checkpoint",
	version: 0,
	appendEntry: func(dst []byte, e PartitionOffset) []byte {
		dst = append(dst, e.Topic...)
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, int64(e.Partition), 10)
		dst = append(dst, ' ')
		return strconv.AppendInt(dst, e.Offset, 10)
	},
	parseEntry: func(line string) (PartitionOffset, error) {
		fields, err := checkpointFields(line, 3)
		if err != nil {
			return PartitionOffset{}, err
		}
		if err := checkTopicName(fields[0]); err != nil {
			return PartitionOffset{}, err
		}
		partition, err := strconv.ParseInt(fields[1], 10, 32)
		if err != nil || partition < 0 {
			return PartitionOffset{}, fmt.Errorf("partition %q is not a non-negative int32", fields[1])
		}
		offset, err := strconv.ParseInt(fields[2], 10, 64)
		if err != nil || offset < 0 {
			return PartitionOffset{}, fmt.Errorf("offset %q is not a non-negative int64", fields[2])
		}
		return PartitionOffset{Topic: fields[0], Partition: int32(partition), Offset: offset}, nil
	},
}

// checkTopicName accepts Kafka's legal topic names: 1 to 249 characters from
// [a-zA-Z0-9._-]. Anything else could not round-trip through the file.
func checkTopicName(topic string) error {
	if topic == "" || len(topic) > maxTopicLen {
		return fmt.Errorf("topic name length %d is not in [1, %d]", len(topic), maxTopicLen)
	}
	for i := 0; i < len(topic); i++ {
		c := topic[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("topic name %q has byte %q outside [a-zA-Z0-9._-]", topic, c)
		}
	}
	return nil
}

func comparePartitionOffset(a, b PartitionOffset) int {
	if c := strings.Compare(a.Topic, b.Topic); c != 0 {
		return c
	}
	return cmp.Compare(a.Partition, b.Partition)
}

// WriteOffsetCheckpoint atomically replaces the offset checkpoint at path with
// entries, sorted by topic then partition. entries is not modified. An entry
// with an illegal topic name, a negative partition or offset, or a topic
// partition listed twice is rejected before anything is written.
func WriteOffsetCheckpoint(path string, entries []PartitionOffset) error {
	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, comparePartitionOffset)
	for i, e := range sorted {
		if err := checkTopicName(e.Topic); err != nil {
			return fmt.Errorf("segment: write offset checkpoint %s: %w", path, err)
		}
		if e.Partition < 0 || e.Offset < 0 {
			return fmt.Errorf("segment: write offset checkpoint %s: %s-%d: negative partition or offset %d", path, e.Topic, e.Partition, e.Offset)
		}
		if i > 0 && comparePartitionOffset(sorted[i-1], e) == 0 {
			return fmt.Errorf("segment: write offset checkpoint %s: %s-%d listed twice", path, e.Topic, e.Partition)
		}
	}
	return offsetCheckpointFormat.write(path, sorted)
}

// ReadOffsetCheckpoint reads the offset checkpoint at path, in file order. A
// missing file is (nil, nil). A malformed file, including one that lists a
// topic partition twice, is an error wrapping ErrCorruption.
func ReadOffsetCheckpoint(path string) ([]PartitionOffset, error) {
	entries, err := offsetCheckpointFormat.read(path)
	if err != nil {
		return nil, err
	}
	type topicPartition struct {
		topic     string
		partition int32
	}
	seen := make(map[topicPartition]struct{}, len(entries))
	for i, e := range entries {
		tp := topicPartition{e.Topic, e.Partition}
		if _, dup := seen[tp]; dup {
			return nil, offsetCheckpointFormat.corrupt(path, i+3, "%s-%d listed twice", e.Topic, e.Partition)
		}
		seen[tp] = struct{}{}
	}
	return entries, nil
}
