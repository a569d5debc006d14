package segment

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestOffsetCheckpointRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), RecoveryPointCheckpointFileName)
	in := []PartitionOffset{
		{Topic: "topic-b", Partition: 3, Offset: 99},
		{Topic: "topic-a", Partition: 10, Offset: 7},
		{Topic: "topic-a", Partition: 0, Offset: 1234},
		{Topic: "__consumer_offsets", Partition: 49, Offset: 0},
	}
	orig := slices.Clone(in)
	if err := WriteOffsetCheckpoint(path, in); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(in, orig) {
		t.Fatalf("WriteOffsetCheckpoint modified its input: %v", in)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const want = "0\n4\n__consumer_offsets 49 0\ntopic-a 0 1234\ntopic-a 10 7\ntopic-b 3 99\n"
	if string(data) != want {
		t.Fatalf("file:\n%s\nwant:\n%s", data, want)
	}
	got, err := ReadOffsetCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	sorted := slices.Clone(in)
	slices.SortFunc(sorted, comparePartitionOffset)
	if !slices.Equal(got, sorted) {
		t.Fatalf("read %v, want %v", got, sorted)
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("tmp file left behind after a successful write: %v", err)
	}

	// Rewriting replaces the whole content.
	if err := WriteOffsetCheckpoint(path, nil); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); string(data) != "0\n0\n" {
		t.Fatalf("empty checkpoint is %q", data)
	}
	got, err = ReadOffsetCheckpoint(path)
	if err != nil || len(got) != 0 {
		t.Fatalf("read empty checkpoint: %v, %v", got, err)
	}
}

func TestOffsetCheckpointMissingAndEmptyFile(t *testing.T) {
	dir := t.TempDir()
	got, err := ReadOffsetCheckpoint(filepath.Join(dir, "missing"))
	if got != nil || err != nil {
		t.Fatalf("missing file: %v, %v; want nil, nil", got, err)
	}
	// Kafka creates its checkpoint files empty before the first write.
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = ReadOffsetCheckpoint(empty)
	if got != nil || err != nil {
		t.Fatalf("empty file: %v, %v; want nil, nil", got, err)
	}
}

// TestOffsetCheckpointReadsKafkaFile reads a file as Kafka writes it: entries
// in no particular order.
func TestOffsetCheckpointReadsKafkaFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), RecoveryPointCheckpointFileName)
	if err := os.WriteFile(path, []byte("0\n3\nt 1 5\nother.topic_x 0 9223372036854775807\nt 0 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadOffsetCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []PartitionOffset{{"t", 1, 5}, {"other.topic_x", 0, 9223372036854775807}, {"t", 0, 0}}
	if !slices.Equal(got, want) {
		t.Fatalf("read %v, want %v", got, want)
	}
}

func TestOffsetCheckpointCorruption(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		line       int
	}{
		{"version not a number", "x\n0\n", 1},
		{"version 1", "1\n0\n", 1},
		{"version with space", "0 \n0\n", 1},
		{"only version", "0\n", 2},
		{"count not a number", "0\nabc\n", 2},
		{"negative count", "0\n-1\n", 2},
		{"fewer entries than count", "0\n2\ntopic-a 0 1\n", 4},
		{"no entries, count 1", "0\n1\n", 3},
		{"trailing line", "0\n1\ntopic-a 0 1\ntopic-b 0 2\n", 4},
		{"trailing blank line", "0\n1\ntopic-a 0 1\n\n", 4},
		{"blank line among entries", "0\n2\ntopic-a 0 1\n\ntopic-b 0 2\n", 5},
		{"no final newline", "0\n1\ntopic-a 0 12", 3},
		{"no newline at all", "0", 1},
		{"two fields", "0\n1\ntopic-a 0\n", 3},
		{"four fields", "0\n1\ntopic-a 0 1 2\n", 3},
		{"double space", "0\n1\ntopic-a  0 1\n", 3},
		{"tab separated", "0\n1\ntopic-a\t0\t1\n", 3},
		{"crlf", "0\r\n1\r\ntopic-a 0 1\r\n", 1},
		{"negative offset", "0\n1\ntopic-a 0 -5\n", 3},
		{"offset not a number", "0\n1\ntopic-a 0 12x\n", 3},
		{"offset overflows int64", "0\n1\ntopic-a 0 9223372036854775808\n", 3},
		{"negative partition", "0\n1\ntopic-a -1 5\n", 3},
		{"partition overflows int32", "0\n1\ntopic-a 2147483648 5\n", 3},
		{"illegal topic byte", "0\n1\ntopic/a 0 5\n", 3},
		{"topic too long", "0\n1\n" + strings.Repeat("t", 250) + " 0 5\n", 3},
		{"duplicate partition", "0\n3\na 0 1\nb 0 2\na 0 3\n", 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), RecoveryPointCheckpointFileName)
			if err := os.WriteFile(path, []byte(tc.data), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := ReadOffsetCheckpoint(path)
			if !errors.Is(err, ErrCorruption) {
				t.Fatalf("read %q: %v, %v; want ErrCorruption", tc.data, got, err)
			}
			if got != nil {
				t.Errorf("entries %v returned with an error", got)
			}
			msg := err.Error()
			if !strings.Contains(msg, path) {
				t.Errorf("error %q does not name the file", msg)
			}
			if wantLine := " line " + strconv.Itoa(tc.line) + ":"; !strings.Contains(msg, wantLine) {
				t.Errorf("error %q does not name%s", msg, wantLine)
			}
		})
	}
}

func TestOffsetCheckpointTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), RecoveryPointCheckpointFileName)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	// A sparse file: no need to write the bytes.
	if err := f.Truncate(maxCheckpointBytes + 1); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadOffsetCheckpoint(path); !errors.Is(err, ErrCorruption) {
		t.Fatalf("oversized file: %v; want ErrCorruption", err)
	}
}

func TestOffsetCheckpointWriteRejectsBadEntries(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []PartitionOffset
	}{
		{"empty topic", []PartitionOffset{{"", 0, 1}}},
		{"topic with space", []PartitionOffset{{"a b", 0, 1}}},
		{"topic with newline", []PartitionOffset{{"a\n0", 0, 1}}},
		{"negative partition", []PartitionOffset{{"a", -1, 1}}},
		{"negative offset", []PartitionOffset{{"a", 0, -1}}},
		{"duplicate", []PartitionOffset{{"a", 0, 1}, {"b", 0, 1}, {"a", 0, 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), RecoveryPointCheckpointFileName)
			old := []PartitionOffset{{"keep", 0, 5}}
			if err := WriteOffsetCheckpoint(path, old); err != nil {
				t.Fatal(err)
			}
			err := WriteOffsetCheckpoint(path, tc.entries)
			if err == nil {
				t.Fatalf("write %v succeeded", tc.entries)
			}
			if errors.Is(err, ErrCorruption) {
				t.Errorf("a bad argument is not corruption: %v", err)
			}
			assertOffsetCheckpoint(t, path, old)
		})
	}
}

// TestOffsetCheckpointLeftoverTmp: a crash between creating the tmp file and
// the rename leaves "<name>.tmp"; the reader ignores it and the next write
// replaces it.
func TestOffsetCheckpointLeftoverTmp(t *testing.T) {
	path := filepath.Join(t.TempDir(), RecoveryPointCheckpointFileName)
	old := []PartitionOffset{{"a", 0, 10}}
	if err := WriteOffsetCheckpoint(path, old); err != nil {
		t.Fatal(err)
	}
	// A torn tmp file, longer than what the next write puts there.
	if err := os.WriteFile(path+".tmp", []byte("0\n2\na 0 11\nb 0 garbage garbage garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	assertOffsetCheckpoint(t, path, old)

	next := []PartitionOffset{{"a", 0, 12}}
	if err := WriteOffsetCheckpoint(path, next); err != nil {
		t.Fatal(err)
	}
	assertOffsetCheckpoint(t, path, next)
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("tmp file still there: %v", err)
	}
}

// TestOffsetCheckpointFailedWriteKeepsOldContent makes the write fail before
// the rename, in a way that works for root too: the tmp path is a directory.
func TestOffsetCheckpointFailedWriteKeepsOldContent(t *testing.T) {
	path := filepath.Join(t.TempDir(), RecoveryPointCheckpointFileName)
	old := []PartitionOffset{{"a", 0, 10}, {"b", 1, 20}}
	if err := WriteOffsetCheckpoint(path, old); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path+".tmp", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteOffsetCheckpoint(path, []PartitionOffset{{"a", 0, 11}}); err == nil {
		t.Fatal("write with an unwritable tmp path succeeded")
	}
	assertOffsetCheckpoint(t, path, old)
}

func TestOffsetCheckpointReadOnlyDir(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions; TestOffsetCheckpointFailedWriteKeepsOldContent covers the failure")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, RecoveryPointCheckpointFileName)
	old := []PartitionOffset{{"a", 0, 10}}
	if err := WriteOffsetCheckpoint(path, old); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
	if err := WriteOffsetCheckpoint(path, []PartitionOffset{{"a", 0, 11}}); err == nil {
		t.Fatal("write into a read-only directory succeeded")
	}
	assertOffsetCheckpoint(t, path, old)
}

func TestOffsetCheckpointParentIsAFile(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(parent, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(parent, RecoveryPointCheckpointFileName)
	if err := WriteOffsetCheckpoint(path, []PartitionOffset{{"a", 0, 1}}); err == nil {
		t.Fatal("write under a regular file succeeded")
	}
	if _, err := ReadOffsetCheckpoint(path); err == nil || errors.Is(err, ErrCorruption) {
		t.Fatalf("read under a regular file: %v; want an I/O error that is not corruption", err)
	}
}

// TestOffsetCheckpointRenameFails: the target is a non-empty directory, so the
// rename fails; the error is returned and the tmp file removed.
func TestOffsetCheckpointRenameFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), RecoveryPointCheckpointFileName)
	if err := os.MkdirAll(filepath.Join(path, "child"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteOffsetCheckpoint(path, []PartitionOffset{{"a", 0, 1}}); err == nil {
		t.Fatal("rename over a non-empty directory succeeded")
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("tmp file left after a failed rename: %v", err)
	}
}

func assertOffsetCheckpoint(t *testing.T, path string, want []PartitionOffset) {
	t.Helper()
	got, err := ReadOffsetCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	want = slices.Clone(want)
	slices.SortFunc(want, comparePartitionOffset)
	if !slices.Equal(got, want) {
		t.Fatalf("checkpoint holds %v, want %v", got, want)
	}
}

// FuzzOffsetCheckpointParse: any bytes either parse into entries that encode
// back to the same bytes, or fail with ErrCorruption.
func FuzzOffsetCheckpointParse(f *testing.F) {
	for _, s := range []string{
		"", "0\n0\n", "0\n1\na 0 1\n", "0\n2\ntopic-a 0 1234\ntopic-b 3 99\n",
		"0\n1\na 0 1", "1\n0\n", "0\n1\na 0 -1\n", "0\n2\na 0 1\na 0 2\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := offsetCheckpointFormat.parse("fuzz", data)
		if err != nil {
			if !errors.Is(err, ErrCorruption) {
				t.Fatalf("parse error %v is not ErrCorruption", err)
			}
			return
		}
		if len(data) == 0 {
			return
		}
		if again := offsetCheckpointFormat.encode(entries); string(again) != string(data) {
			// Numbers may have been written with a sign or leading zeros.
			reparsed, err := offsetCheckpointFormat.parse("fuzz", again)
			if err != nil || !slices.Equal(reparsed, entries) {
				t.Fatalf("re-encoding %q gives %q, which parses to %v, %v", data, again, reparsed, err)
			}
		}
	})
}

// TestReplaceFileNoSync: the unsynced replace leaves the new bytes whole
// under the path and no tmp file, and SyncReplaced syncs it, or nothing
// once it is gone.
func TestReplaceFileNoSync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	for _, data := range []string{"old", "the new bytes"} {
		if err := ReplaceFileNoSync(path, []byte(data)); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(path); err != nil || string(got) != data {
			t.Fatalf("read %q, %v; want %q", got, err, data)
		}
		if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("tmp file left behind: %v", err)
		}
	}
	if err := SyncReplaced(path); err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	if err := SyncReplaced(path); err != nil {
		t.Fatalf("a file removed since: %v", err)
	}
	if err := SyncReplaced(filepath.Join(t.TempDir(), "dir", "f")); err != nil {
		t.Fatalf("a directory removed since: %v", err)
	}
}
