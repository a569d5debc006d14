package segment

// The partition metadata file: the id of the topic a partition's log
// belongs to, in Kafka's format (PartitionMetadataFile), so that a log left
// by a topic deleted and created again under the same name is told from the
// new topic's:
//
//	<log.dir>/<topic>-<partition>/partition.metadata
//	    version: 0\n                     version
//	    topic_id: 2Y4d0rJ3SGmLyxqOPaPGJg the topic id: 16 bytes, base64url,
//	                                     no padding, no newline after it
//
// It is written (ReplaceFile: a .tmp file fsynced, renamed over the name,
// the dir fsynced) when the log is first given an id, before anything is
// appended in that topic's name, and never changed: a log of another topic
// is deleted, not given a new id. A log without the file (one created by a
// Gregor that did not write it, or cut short by a crash before the write,
// then empty) has no id until it is given one.
//
// It is read as Kafka's PartitionMetadataReadBuffer reads it: each of the
// first two lines (ended by \n, \r or \r\n) is split at every ':' followed
// by blanks and must give two fields, whatever the names before them; the
// first's value is the version, which must be 0, the second's the id, which
// must decode to 16 bytes other than all zero. Later lines are not read. A
// file that does not read so is ErrCorruption, and the log does not open:
// Kafka takes its log dir offline then, since nothing else can say whose
// records the log holds; the operator removes the file (the log is then
// without an id) or the log.

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// PartitionMetadataFileName is the file in each partition directory that
// records the id of the partition's topic.
const PartitionMetadataFileName = "partition.metadata"

// maxPartitionMetadataBytes bounds what a reader loads: the file Kafka and
// Gregor write has 43 bytes.
const maxPartitionMetadataBytes = 4096

// TopicID is a topic's id, as Kafka's Uuid: the 16 bytes the wire carries.
type TopicID [16]byte

// String is Kafka's form of the id: base64url without padding.
func (id TopicID) String() string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// encodePartitionMetadata returns the partition metadata file for id.
func encodePartitionMetadata(id TopicID) []byte {
	return []byte("version: 0\ntopic_id: " + id.String())
}

// parsePartitionMetadata reads a partition metadata file's bytes as Kafka
// does; what Kafka refuses, it returns an error for.
func parsePartitionMetadata(data []byte) (TopicID, error) {
	lines := javaLines(data, 2)
	if len(lines) == 0 {
		return TopicID{}, errors.New("the file is empty")
	}
	fields := splitColonBlanks(lines[0])
	if len(fields) != 2 {
		return TopicID{}, fmt.Errorf("malformed line %q", lines[0])
	}
	v, err := strconv.ParseInt(fields[1], 10, 32)
	if err != nil {
		return TopicID{}, fmt.Errorf("malformed line %q", lines[0])
	}
	if v != 0 {
		return TopicID{}, fmt.Errorf("unrecognized version %d", v)
	}
	if len(lines) < 2 {
		return TopicID{}, errors.New("no topic_id line")
	}
	fields = splitColonBlanks(lines[1])
	if len(fields) != 2 {
		return TopicID{}, fmt.Errorf("malformed line %q", lines[1])
	}
	id, err := parseTopicID(fields[1])
	if err != nil {
		return TopicID{}, fmt.Errorf("malformed line %q: %w", lines[1], err)
	}
	if id == (TopicID{}) {
		return TopicID{}, errors.New("the topic id is all zero")
	}
	return id, nil
}

// parseTopicID decodes Kafka's Uuid.fromString form: base64url, padded or
// not, of exactly 16 bytes.
func parseTopicID(s string) (TopicID, error) {
	if len(s) > 24 {
		return TopicID{}, fmt.Errorf("%d characters, too long for a topic id", len(s))
	}
	enc := base64.RawURLEncoding
	if strings.HasSuffix(s, "=") {
		enc = base64.URLEncoding
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return TopicID{}, err
	}
	if len(b) != 16 {
		return TopicID{}, fmt.Errorf("decodes to %d bytes, want 16", len(b))
	}
	return TopicID(b), nil
}

// javaLines returns up to n lines of data as Java's BufferedReader.readLine
// does: a line ends at \n, \r or \r\n, and the end of data ends a last line
// that has any bytes.
func javaLines(data []byte, n int) []string {
	var out []string
	for len(data) > 0 && len(out) < n {
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			out = append(out, string(data))
			break
		}
		out = append(out, string(data[:i]))
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	return out
}

// splitColonBlanks is Java's line.split(":\\s+") on a line (which holds no
// \n or \r): the fields between each ':' and the blanks after it, less
// trailing empty fields; the line itself when there is no such ':'.
func splitColonBlanks(line string) []string {
	out := []string{}
	start := 0
	for i := 0; i < len(line); i++ {
		if line[i] != ':' {
			continue
		}
		j := i + 1
		for j < len(line) && isJavaBlank(line[j]) {
			j++
		}
		if j == i+1 {
			continue
		}
		out = append(out, line[start:i])
		start, i = j, j-1
	}
	if len(out) == 0 {
		return []string{line}
	}
	out = append(out, line[start:])
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

// isJavaBlank is Java's regex \s less the line ends: space, tab, vertical
// tab, form feed.
func isJavaBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\v' || c == '\f' }

// readPartitionMetadata reads the partition metadata file in dir: the id it
// records, false when there is no file, ErrCorruption when it does not
// read as Kafka reads it.
func readPartitionMetadata(dir string) (TopicID, bool, error) {
	path := filepath.Join(dir, PartitionMetadataFileName)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return TopicID{}, false, nil
	}
	if err != nil {
		return TopicID{}, false, err
	}
	defer f.Close()
	buf := make([]byte, maxPartitionMetadataBytes+1)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return TopicID{}, false, err
	}
	if n > maxPartitionMetadataBytes {
		return TopicID{}, false, fmt.Errorf("%w: %s is larger than %d bytes", ErrCorruption, path, maxPartitionMetadataBytes)
	}
	id, err := parsePartitionMetadata(buf[:n])
	if err != nil {
		return TopicID{}, false, fmt.Errorf("%w: %s: %w", ErrCorruption, path, err)
	}
	return id, true, nil
}

// TopicID returns the id of the log's topic, and false when the log has
// none (no partition.metadata file).
func (l *Log) TopicID() (TopicID, bool) {
	l.topic.Lock()
	defer l.topic.Unlock()
	return l.topic.id, l.topic.known
}

// SetTopicID gives a log without a topic id the id of its topic: its
// partition.metadata file is written and fsynced, with the directory,
// before SetTopicID returns, so that nothing appended afterwards can be
// taken for another topic's after a crash. The id the log has already is
// no error; another is ErrInconsistentTopicID, and the log keeps its own.
func (l *Log) SetTopicID(id TopicID) error {
	if id == (TopicID{}) {
		return fmt.Errorf("segment: %s: a topic id of all zeros", l.dir)
	}
	l.topic.Lock()
	defer l.topic.Unlock()
	if l.topic.known {
		if l.topic.id != id {
			return fmt.Errorf("%w: %s records topic id %s, not %s", ErrInconsistentTopicID, l.dir, l.topic.id, id)
		}
		return nil
	}
	if err := l.usable(); err != nil {
		return err
	}
	if err := ReplaceFile(filepath.Join(l.dir, PartitionMetadataFileName), encodePartitionMetadata(id)); err != nil {
		return fmt.Errorf("segment: recording the topic id of %s: %w", l.dir, err)
	}
	l.topic.id, l.topic.known = id, true
	return nil
}
