package segment

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// entryNames lists the names of dir's entries that keep holds for.
func entryNames(t *testing.T, dir string, keep func(os.DirEntry) bool) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if keep(e) {
			out = append(out, e.Name())
		}
	}
	return out
}

// deletedNames lists the *.deleted files in dir.
func deletedNames(t *testing.T, dir string) []string {
	t.Helper()
	return entryNames(t, dir, func(e os.DirEntry) bool { return strings.HasSuffix(e.Name(), deletedSuffix) })
}

// TestFileDeleteDelay: the files of a segment that retention, truncation or
// a full truncation deletes are renamed *.deleted at once and removed
// file.delete.delay.ms later, not before; a region read before the deletion
// still reads; Close removes what is still waiting.
func TestFileDeleteDelay(t *testing.T) {
	for _, how := range []string{"retention", "truncate", "truncate-fully"} {
		t.Run(how, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const delay = 60 * time.Second
				cfg := testConfig()
				cfg.SegmentBytes = 400
				cfg.FileDeleteDelayMs = delay.Milliseconds()
				dir := filepath.Join(t.TempDir(), "t-0")
				l := openLog(t, dir, cfg, OpenOptions{})
				for range 4 {
					appendBatch(t, l, offsetBatch(t, l.LogEndOffset(), 3))
				}
				// A region of a segment the deletion takes: the first, or
				// for a truncation to offset 1 (inside the first
				// segment, which it shortens) the second.
				victim := int64(0)
				if how == "truncate" {
					victim = l.Segments()[1].BaseOffset
				}
				regions, err := l.Read(nil, victim, 100, 1<<62)
				if err != nil {
					t.Fatal(err)
				}
				defer ReleaseAll(regions)
				first := filepath.Base(regions[0].File.Name())
				switch how {
				case "retention":
					cfg.RetentionBytes = 1
					if err := l.SetConfig(cfg); err != nil {
						t.Fatal(err)
					}
					if n, err := l.EnforceRetention(); err != nil || n == 0 {
						t.Fatalf("retention deleted %d segments: %v", n, err)
					}
				case "truncate":
					if err := l.Truncate(1); err != nil {
						t.Fatal(err)
					}
				case "truncate-fully":
					if err := l.TruncateFullyAndStartAt(100); err != nil {
						t.Fatal(err)
					}
				}
				waiting := deletedNames(t, dir)
				if !slices.Contains(waiting, first+deletedSuffix) || len(waiting)%3 != 0 || len(waiting) != l.retiredFiles() {
					t.Fatalf("after the deletion, *.deleted files %v (%d waiting), want %s's among them, three per segment", waiting, l.retiredFiles(), first)
				}
				if _, err := os.Stat(filepath.Join(dir, first)); !os.IsNotExist(err) {
					t.Fatalf("%s is still under its own name: %v", first, err)
				}
				buf := make([]byte, regions[0].Length)
				if _, err := regions[0].File.OS().ReadAt(buf, regions[0].Position); err != nil {
					t.Fatalf("reading a region held across the deletion: %v", err)
				}

				time.Sleep(delay - time.Millisecond)
				synctest.Wait()
				if got := deletedNames(t, dir); !slices.Equal(got, waiting) {
					t.Fatalf("just before file.delete.delay.ms, *.deleted files %v, want %v", got, waiting)
				}
				time.Sleep(time.Millisecond)
				synctest.Wait()
				if got := deletedNames(t, dir); len(got) != 0 || l.retiredFiles() != 0 {
					t.Fatalf("after file.delete.delay.ms, *.deleted files %v (%d counted)", got, l.retiredFiles())
				}
				if _, err := regions[0].File.OS().ReadAt(buf, regions[0].Position); err != nil {
					t.Fatalf("reading a held region after its file was removed: %v", err)
				}

				// What Close finds waiting goes at once.
				appendBatch(t, l, offsetBatch(t, l.LogEndOffset(), 3))
				if err := l.TruncateFullyAndStartAt(1000); err != nil {
					t.Fatal(err)
				}
				if len(deletedNames(t, dir)) == 0 {
					t.Fatal("a full truncation left no *.deleted file")
				}
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				if got := deletedNames(t, dir); len(got) != 0 {
					t.Fatalf("after Close, *.deleted files %v", got)
				}
			})
		})
	}
}

// TestDeletedFilesGoAtOpen: *.deleted files a crash left behind (the log
// never closed) are removed when the log is opened again.
func TestDeletedFilesGoAtOpen(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 400
	cfg.RetentionBytes = 1
	dir := filepath.Join(t.TempDir(), "t-0")
	l := openLog(t, dir, cfg, OpenOptions{})
	for range 4 {
		appendBatch(t, l, offsetBatch(t, l.LogEndOffset(), 3))
	}
	if n, err := l.EnforceRetention(); err != nil || n == 0 {
		t.Fatalf("retention deleted %d segments: %v", n, err)
	}
	crashed := filepath.Join(t.TempDir(), "t-0")
	copyDir(t, dir, crashed)
	if len(deletedNames(t, crashed)) == 0 {
		t.Fatal("no *.deleted file to leave behind")
	}
	openLog(t, crashed, cfg, OpenOptions{})
	if got := deletedNames(t, crashed); len(got) != 0 {
		t.Fatalf("after open, *.deleted files %v", got)
	}
}

// TestCleanerRetiresReplacedSegments: the segments a cleaned one replaces,
// beyond the first (whose names the cleaned segment takes), wait out
// file.delete.delay.ms as *.deleted files too.
func TestCleanerRetiresReplacedSegments(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := compactConfig()
		cfg.FileDeleteDelayMs = 1000
		dir := filepath.Join(t.TempDir(), "t-0")
		l := openLog(t, dir, cfg, OpenOptions{})
		for i := range 60 {
			appendBatch(t, l, keyedBatch(t, 0, 1000, kv("k"+string(rune('0'+i%3)), strings.Repeat("v", 80))))
		}
		if st := clean(t, testCleaner(), l, time.UnixMilli(2000)); st.SegmentsCleaned <= st.SegmentsWritten {
			t.Fatalf("the pass replaced no segment: %+v", st)
		}
		waiting := deletedNames(t, dir)
		if len(waiting) == 0 || len(waiting) != l.retiredFiles() {
			t.Fatalf("after cleaning, *.deleted files %v, %d counted waiting", waiting, l.retiredFiles())
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if got := deletedNames(t, dir); len(got) != 0 {
			t.Fatalf("after file.delete.delay.ms, *.deleted files %v", got)
		}
	})
}
