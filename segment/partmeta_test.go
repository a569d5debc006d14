package segment

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestPartitionMetadataDataDriven runs testdata/partition_metadata.txt:
// partition.metadata files read as Kafka's PartitionMetadataReadBuffer
// reads them. Commands:
//
//	parse [eol=lf|cr|crlf] [trailing]
//	                 parses the input's lines, each ended by eol (lf by
//	                 default) but the last, which is ended too with
//	                 trailing; prints the topic id or the error
//	encode id=<id>   prints the file written for the id, quoted
func TestPartitionMetadataDataDriven(t *testing.T) {
	datadriven.RunTest(t, "testdata/partition_metadata.txt", func(t *testing.T, d *datadriven.TestData) string {
		switch d.Cmd {
		case "parse":
			eol := "lf"
			if d.HasArg("eol") {
				d.ScanArgs(t, "eol", &eol)
			}
			sep := map[string]string{"lf": "\n", "cr": "\r", "crlf": "\r\n"}[eol]
			data := strings.ReplaceAll(d.Input, "\n", sep)
			if d.HasArg("trailing") {
				data += sep
			}
			id, err := parsePartitionMetadata([]byte(data))
			if err != nil {
				return "error: " + err.Error() + "\n"
			}
			return id.String() + "\n"
		case "encode":
			var s string
			d.ScanArgs(t, "id", &s)
			id, err := parseTopicID(s)
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("%q\n", encodePartitionMetadata(id))
		}
		t.Fatalf("unknown command %q", d.Cmd)
		return ""
	})
}

// TestSplitColonBlanks: Java's line.split(":\\s+"), which Kafka reads each
// line of partition.metadata with, blanks at the ends of lines included.
func TestSplitColonBlanks(t *testing.T) {
	for _, c := range []struct {
		line string
		want []string
	}{
		{"version: 0", []string{"version", "0"}},
		{"version: 0 ", []string{"version", "0 "}},
		{"topic_id: x: ", []string{"topic_id", "x"}},
		{"topic_id: x:\t\v\f", []string{"topic_id", "x"}},
		{": 0", []string{"", "0"}},
		{"a:b: c", []string{"a:b", "c"}},
		{"a: : b", []string{"a", "", "b"}},
		{"a:", []string{"a:"}},
		{": ", []string{}},
		{"", []string{""}},
	} {
		if got := splitColonBlanks(c.line); !slices.Equal(got, c.want) {
			t.Errorf("splitColonBlanks(%q) = %q, want %q", c.line, got, c.want)
		}
	}
	if _, err := parsePartitionMetadata([]byte("version: 0 \ntopic_id: 2Y4d0rJ3SGmLyxqOPaPGJg")); err == nil {
		t.Error("a version with a blank after it parsed")
	}
	if id, err := parsePartitionMetadata([]byte("version: 0\ntopic_id: 2Y4d0rJ3SGmLyxqOPaPGJg: ")); err != nil || id.String() != "2Y4d0rJ3SGmLyxqOPaPGJg" {
		t.Errorf("an id with an empty field after it: %s, %v", id, err)
	}
}

// FuzzPartitionMetadataParse: any bytes either fail to parse or give a
// non-zero id that the file written for it gives back.
func FuzzPartitionMetadataParse(f *testing.F) {
	for _, s := range []string{
		"", "version: 0\ntopic_id: AAAAAAAAAAAAAAAAAAAAAQ", "version: 0\r\ntopic_id: AAAAAAAAAAAAAAAAAAAAAQ==\n",
		"version: 1\ntopic_id: AAAAAAAAAAAAAAAAAAAAAQ", "version:0\n", ": 0\n: AAAAAAAAAAAAAAAAAAAAAQ: ",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		id, err := parsePartitionMetadata(data)
		if err != nil {
			return
		}
		if id == (TopicID{}) {
			t.Fatalf("%q parses to the zero id", data)
		}
		if again, err := parsePartitionMetadata(encodePartitionMetadata(id)); err != nil || again != id {
			t.Fatalf("%q parses to %s, whose file parses to %s, %v", data, id, again, err)
		}
	})
}

// TestLogTopicID: a log records the id it is first given in
// partition.metadata, in Kafka's bytes, fsynced before SetTopicID returns,
// and has it again when reopened; another id is refused, and a file that
// does not read as Kafka reads it keeps the log from opening, as Kafka
// takes the log's dir offline.
func TestLogTopicID(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "orders-0")
	l, err := Open(dir, testConfig(), OpenOptions{CleanShutdown: true})
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := l.TopicID(); ok {
		t.Fatalf("a new log has topic id %s", id)
	}
	id := TopicID{0xd9, 0x8e, 0x1d, 0xd2, 0xb2, 0x77, 0x48, 0x69, 0x8b, 0xcb, 0x1a, 0x8e, 0x3d, 0xa3, 0xc6, 0x26}
	if err := l.SetTopicID(id); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, PartitionMetadataFileName)
	if data, err := os.ReadFile(path); err != nil || string(data) != "version: 0\ntopic_id: 2Y4d0rJ3SGmLyxqOPaPGJg" {
		t.Fatalf("partition.metadata %q, %v", data, err)
	}
	if err := l.SetTopicID(id); err != nil {
		t.Fatalf("the same id again: %v", err)
	}
	other := id
	other[0]++
	if err := l.SetTopicID(other); !errors.Is(err, ErrInconsistentTopicID) {
		t.Fatalf("another id: %v, want ErrInconsistentTopicID", err)
	}
	if err := l.SetTopicID(TopicID{}); err == nil {
		t.Fatal("the zero id was taken")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// A crash during a later write leaves its tmp file, which the next
	// open removes.
	if err := os.WriteFile(path+".tmp", []byte("version: 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err = Open(dir, testConfig(), OpenOptions{CleanShutdown: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := l.TopicID(); !ok || got != id {
		t.Fatalf("reopened with topic id %s, %v; want %s", got, ok, id)
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("tmp file left: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("version: 0\ntopic_id: not-an-id"), 0o644); err != nil {
		t.Fatal(err)
	}
	if l, err := Open(dir, testConfig(), OpenOptions{CleanShutdown: true}); !errors.Is(err, ErrCorruption) {
		if err == nil {
			l.Close()
		}
		t.Fatalf("opening with a malformed partition.metadata: %v, want ErrCorruption", err)
	}
}
