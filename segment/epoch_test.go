package segment

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/datadriven"

	"gregor/internal/testseed"
)

// TestEpochCacheDataDriven runs testdata/epoch_cache.txt. Commands:
//
//	reset                              new directory, empty cache
//	assign epoch=E offset=O            then prints the entries
//	truncate-end offset=O              then prints the entries
//	truncate-start offset=O            then prints the entries
//	clear                              then prints the entries
//	reopen                             reloads from the file, prints the entries
//	end-offset epoch=E leo=L           prints EndOffsetFor
//	epoch-for offset=O                 prints EpochForOffset
//	latest                             prints Latest
//	file                               prints the checkpoint file's bytes
//	write-file                         replaces the file with the input (a newline is added)
//
// After every change the file must hold exactly the entries in memory.
func TestEpochCacheDataDriven(t *testing.T) {
	// Each directive runs in a subtest whose TempDir goes when the directive
	// ends, so directories come from the outer test.
	outer := t
	var dir string
	var c *LeaderEpochCache
	reset := func(t *testing.T) {
		dir = outer.TempDir()
		var err error
		if c, err = OpenLeaderEpochCache(dir); err != nil {
			t.Fatal(err)
		}
	}
	reset(t)
	path := func() string { return filepath.Join(dir, LeaderEpochCheckpointFileName) }
	errString := func(err error) string {
		return "error: " + strings.ReplaceAll(err.Error(), dir+string(os.PathSeparator), "")
	}

	datadriven.RunTest(t, "testdata/epoch_cache.txt", func(t *testing.T, d *datadriven.TestData) string {
		var offset int64
		var epoch int32
		change := func(err error) string {
			if err != nil {
				return errString(err)
			}
			checkEpochFile(t, path(), c.Entries())
			return formatEntries(c.Entries())
		}
		switch d.Cmd {
		case "reset":
			reset(t)
			return formatEntries(c.Entries())
		case "assign":
			d.ScanArgs(t, "epoch", &epoch)
			d.ScanArgs(t, "offset", &offset)
			return change(c.Assign(epoch, offset))
		case "truncate-end":
			d.ScanArgs(t, "offset", &offset)
			return change(c.TruncateFromEnd(offset))
		case "truncate-start":
			d.ScanArgs(t, "offset", &offset)
			return change(c.TruncateFromStart(offset))
		case "clear":
			return change(c.Clear())
		case "reopen":
			reopened, err := OpenLeaderEpochCache(dir)
			if err != nil {
				return errString(err)
			}
			c = reopened
			return formatEntries(c.Entries())
		case "end-offset":
			var leo int64
			d.ScanArgs(t, "epoch", &epoch)
			d.ScanArgs(t, "leo", &leo)
			e, o := c.EndOffsetFor(epoch, leo)
			return fmt.Sprintf("epoch=%d end-offset=%d", e, o)
		case "epoch-for":
			d.ScanArgs(t, "offset", &offset)
			e, ok := c.EpochForOffset(offset)
			if !ok {
				return "none"
			}
			return fmt.Sprintf("epoch=%d", e)
		case "latest":
			e, ok := c.Latest()
			if !ok {
				return "none"
			}
			return formatEntries([]EpochEntry{e})
		case "file":
			data, err := os.ReadFile(path())
			if errors.Is(err, os.ErrNotExist) {
				return "(no file)"
			}
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimSuffix(string(data), "\n")
		case "write-file":
			if err := os.WriteFile(path(), []byte(d.Input+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			return "ok"
		default:
			d.Fatalf(t, "unknown command %q", d.Cmd)
			return ""
		}
	})
}

func formatEntries(entries []EpochEntry) string {
	if len(entries) == 0 {
		return "(empty)"
	}
	var b strings.Builder
	for i, e := range entries {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "epoch=%d start=%d", e.Epoch, e.StartOffset)
	}
	return b.String()
}

// checkEpochFile fails t unless the checkpoint at path holds exactly want.
func checkEpochFile(t testing.TB, path string, want []EpochEntry) {
	t.Helper()
	got, err := epochCheckpointFormat.read(path)
	if err != nil {
		t.Fatalf("read back %s: %v", path, err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("file holds %v, memory %v", got, want)
	}
}

func TestEpochCacheCorruption(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		line       int
	}{
		{"version 1", "1\n0\n", 1},
		{"count missing", "0\n", 2},
		{"count too large", "0\n2\n0 0\n", 4},
		{"trailing entry", "0\n1\n0 0\n1 5\n", 4},
		{"no final newline", "0\n1\n0 10", 3},
		{"one field", "0\n1\n0\n", 3},
		{"three fields", "0\n1\n0 0 0\n", 3},
		{"negative epoch", "0\n1\n-1 0\n", 3},
		{"negative start", "0\n1\n0 -1\n", 3},
		{"epoch overflows int32", "0\n1\n2147483648 0\n", 3},
		{"start not a number", "0\n1\n0 x\n", 3},
		{"equal epochs", "0\n2\n1 0\n1 5\n", 4},
		{"decreasing epochs", "0\n3\n1 0\n3 5\n2 7\n", 5},
		{"decreasing start offsets", "0\n2\n1 10\n2 5\n", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, LeaderEpochCheckpointFileName)
			if err := os.WriteFile(path, []byte(tc.data), 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := OpenLeaderEpochCache(dir)
			if !errors.Is(err, ErrCorruption) {
				t.Fatalf("open %q: %v, %v; want ErrCorruption", tc.data, c, err)
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

func TestEpochCacheOpenAccepts(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       []EpochEntry
	}{
		{"empty file", "", nil},
		{"no entries", "0\n0\n", nil},
		{"equal start offsets", "0\n2\n1 5\n2 5\n", []EpochEntry{{1, 5}, {2, 5}}},
		{"gaps in epochs", "0\n3\n0 0\n4 10\n9 10000000000\n", []EpochEntry{{0, 0}, {4, 10}, {9, 10000000000}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, LeaderEpochCheckpointFileName), []byte(tc.data), 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := OpenLeaderEpochCache(dir)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Entries(); !slices.Equal(got, tc.want) {
				t.Fatalf("entries %v, want %v", got, tc.want)
			}
		})
	}
}

func TestEpochCacheOpenMissingDir(t *testing.T) {
	// A missing file in a missing directory is still just a missing file; the
	// first write reports the missing directory.
	c, err := OpenLeaderEpochCache(filepath.Join(t.TempDir(), "gone"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Assign(0, 0); err == nil {
		t.Fatal("assign into a missing directory succeeded")
	}
}

func TestEpochCacheRejectsNegativeArguments(t *testing.T) {
	dir := t.TempDir()
	c, err := OpenLeaderEpochCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Assign(1, 5); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"assign negative epoch":   c.Assign(-1, 10),
		"assign negative offset":  c.Assign(2, -1),
		"truncate-end negative":   c.TruncateFromEnd(-1),
		"truncate-start negative": c.TruncateFromStart(-1),
	} {
		if err == nil || errors.Is(err, ErrCorruption) {
			t.Errorf("%s: %v; want a non-corruption error", name, err)
		}
	}
	want := []EpochEntry{{1, 5}}
	if got := c.Entries(); !slices.Equal(got, want) {
		t.Fatalf("entries %v after rejected calls, want %v", got, want)
	}
	checkEpochFile(t, filepath.Join(dir, LeaderEpochCheckpointFileName), want)
}

// TestEpochCachePersistFailureIsSticky: a failed write is returned, later
// changes return it too, and the file keeps its last good content.
func TestEpochCachePersistFailureIsSticky(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, LeaderEpochCheckpointFileName)
	c, err := OpenLeaderEpochCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Assign(1, 0); err != nil {
		t.Fatal(err)
	}
	// The tmp path is a directory: opening it for writing fails, even as root.
	if err := os.Mkdir(path+".tmp", 0o755); err != nil {
		t.Fatal(err)
	}
	first := c.Assign(2, 10)
	if first == nil {
		t.Fatal("assign with an unwritable tmp path succeeded")
	}
	if errors.Is(first, ErrCorruption) {
		t.Errorf("a write failure is not corruption: %v", first)
	}
	if err := os.Remove(path + ".tmp"); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"assign":         c.Assign(3, 20),
		"truncate-end":   c.TruncateFromEnd(5),
		"truncate-start": c.TruncateFromStart(5),
		"clear":          c.Clear(),
	} {
		if err != first {
			t.Errorf("%s after a failed write: %v; want the first error %v", name, err, first)
		}
	}
	// The entries hold the change that failed; the file does not.
	if got, want := c.Entries(), []EpochEntry{{1, 0}, {2, 10}}; !slices.Equal(got, want) {
		t.Errorf("entries %v, want %v", got, want)
	}
	checkEpochFile(t, path, []EpochEntry{{1, 0}})
	reopened, err := OpenLeaderEpochCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := reopened.Entries(), []EpochEntry{{1, 0}}; !slices.Equal(got, want) {
		t.Errorf("reopened entries %v, want %v", got, want)
	}
}

func TestEpochCacheLeftoverTmp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, LeaderEpochCheckpointFileName)
	c, err := OpenLeaderEpochCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Assign(1, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".tmp", []byte("0\n9\ntorn"), 0o644); err != nil {
		t.Fatal(err)
	}
	reopened, err := OpenLeaderEpochCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := reopened.Entries(), []EpochEntry{{1, 0}}; !slices.Equal(got, want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
	if err := reopened.Assign(2, 7); err != nil {
		t.Fatal(err)
	}
	checkEpochFile(t, path, []EpochEntry{{1, 0}, {2, 7}})
}

// TestEpochCacheConcurrent is for the race detector: changes and reads from
// several goroutines.
func TestEpochCacheConcurrent(t *testing.T) {
	dir := t.TempDir()
	c, err := OpenLeaderEpochCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 25 {
				epoch := int32(g*100 + i)
				if err := c.Assign(epoch, int64(epoch)*10); err != nil {
					t.Error(err)
					return
				}
				c.EndOffsetFor(epoch, 1<<40)
				c.EpochForOffset(int64(i))
				c.Latest()
				_ = c.Entries()
			}
		})
	}
	wg.Wait()
	entries := c.Entries()
	for i := 1; i < len(entries); i++ {
		if entries[i].Epoch <= entries[i-1].Epoch || entries[i].StartOffset <= entries[i-1].StartOffset {
			t.Fatalf("entries out of order: %v", entries)
		}
	}
	checkEpochFile(t, filepath.Join(dir, LeaderEpochCheckpointFileName), entries)
}

// epochModel is the leader-epoch cache as the plainest possible map from epoch
// to start offset, with Kafka's rules applied by brute force.
type epochModel map[int32]int64

func (m epochModel) sorted() []EpochEntry {
	var out []EpochEntry
	for e, o := range m {
		out = append(out, EpochEntry{e, o})
	}
	slices.SortFunc(out, func(a, b EpochEntry) int { return cmp.Compare(a.Epoch, b.Epoch) })
	return out
}

func (m epochModel) latest() (EpochEntry, bool) {
	s := m.sorted()
	if len(s) == 0 {
		return EpochEntry{}, false
	}
	return s[len(s)-1], true
}

func (m epochModel) assign(epoch int32, start int64) {
	if l, ok := m.latest(); ok && l.Epoch == epoch && start >= l.StartOffset {
		return
	}
	for e, o := range m {
		if e >= epoch || o >= start {
			delete(m, e)
		}
	}
	m[epoch] = start
}

func (m epochModel) truncateEnd(end int64) {
	for e, o := range m {
		if o >= end {
			delete(m, e)
		}
	}
}

func (m epochModel) truncateStart(start int64) {
	kept, found := int32(-1), false
	for e, o := range m {
		if o <= start {
			if !found || e > kept {
				kept, found = e, true
			}
			delete(m, e)
		}
	}
	if found {
		m[kept] = start
	}
}

func (m epochModel) endOffsetFor(epoch int32, leo int64) (int32, int64) {
	l, ok := m.latest()
	if epoch == UndefinedEpoch || !ok {
		return UndefinedEpoch, UndefinedEpochOffset
	}
	if l.Epoch == epoch {
		return epoch, leo
	}
	floor, higher, hasFloor, hasHigher := int32(0), int32(0), false, false
	for e := range m {
		if e <= epoch && (!hasFloor || e > floor) {
			floor, hasFloor = e, true
		}
		if e > epoch && (!hasHigher || e < higher) {
			higher, hasHigher = e, true
		}
	}
	switch {
	case !hasHigher:
		return UndefinedEpoch, UndefinedEpochOffset
	case !hasFloor:
		return epoch, m[higher]
	default:
		return floor, m[higher]
	}
}

func (m epochModel) epochForOffset(offset int64) (int32, bool) {
	best, found := UndefinedEpoch, false
	for e, o := range m {
		if o <= offset && (!found || e > best) {
			best, found = e, true
		}
	}
	return best, found
}

// TestEpochCacheRandomized applies random operations to the cache and to
// epochModel and compares every answer, the entries after every change, and
// the file after every reopen.
func TestEpochCacheRandomized(t *testing.T) {
	seed := testseed.Seed(t)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	ops := 3000
	if testing.Short() {
		ops = 300
	}
	dir := t.TempDir()
	c, err := OpenLeaderEpochCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	model := epochModel{}
	// Offsets and epochs mostly move forward, as in a real log, with jumps
	// back for truncation and for stale leaders.
	var logStart, leo int64
	var epoch int32
	var history []string
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d, after:\n  %s\n%s", seed, strings.Join(history, "\n  "), fmt.Sprintf(format, args...))
	}
	for range ops {
		if len(history) > 20 {
			history = history[1:]
		}
		switch op := rng.IntN(200); {
		case op < 90:
			// Mostly a new leader, sometimes the same one again, a stale one
			// or a jump; mostly at the log end, sometimes below it.
			switch r := rng.IntN(10); {
			case r < 5:
				epoch++
			case r < 8:
			case r < 9:
				epoch = max(0, epoch-int32(rng.IntN(4)))
			default:
				epoch += int32(rng.IntN(5))
			}
			start := leo
			if rng.IntN(4) == 0 {
				start = max(0, leo-int64(rng.IntN(30)))
			}
			leo = start + int64(rng.IntN(20))
			logStart = min(logStart, start)
			history = append(history, fmt.Sprintf("assign %d %d", epoch, start))
			if err := c.Assign(epoch, start); err != nil {
				fail("assign: %v", err)
			}
			model.assign(epoch, start)
		case op < 110:
			// Truncation to a point near the end, now and then far back.
			back := int64(rng.IntN(40))
			if rng.IntN(10) == 0 {
				back = int64(rng.IntN(int(leo) + 2))
			}
			end := max(0, leo+1-back)
			history = append(history, fmt.Sprintf("truncate-end %d", end))
			if err := c.TruncateFromEnd(end); err != nil {
				fail("truncate-end: %v", err)
			}
			model.truncateEnd(end)
			leo = min(leo, end)
			logStart = min(logStart, leo)
		case op < 125:
			// Retention moves the log start forward a little.
			start := logStart + int64(rng.IntN(25))
			history = append(history, fmt.Sprintf("truncate-start %d", start))
			if err := c.TruncateFromStart(start); err != nil {
				fail("truncate-start: %v", err)
			}
			model.truncateStart(start)
			logStart = start
			leo = max(leo, start)
		case op < 126:
			history = append(history, "clear")
			if err := c.Clear(); err != nil {
				fail("clear: %v", err)
			}
			clear(model)
		case op < 135:
			history = append(history, "reopen")
			if c, err = OpenLeaderEpochCache(dir); err != nil {
				fail("reopen: %v", err)
			}
		case op < 170:
			// Mostly near a cached epoch, where the answers differ.
			e := int32(rng.IntN(int(epoch)+3)) - 1
			if entries := model.sorted(); len(entries) > 0 && rng.IntN(4) != 0 {
				e = max(-1, entries[rng.IntN(len(entries))].Epoch+int32(rng.IntN(5))-2)
			}
			q := leo + int64(rng.IntN(5))
			gotE, gotO := c.EndOffsetFor(e, q)
			wantE, wantO := model.endOffsetFor(e, q)
			if gotE != wantE || gotO != wantO {
				fail("EndOffsetFor(%d, %d) = (%d, %d), model (%d, %d); entries %v", e, q, gotE, gotO, wantE, wantO, c.Entries())
			}
		default:
			o := max(0, logStart-5) + int64(rng.IntN(int(leo-logStart)+10))
			gotE, gotOK := c.EpochForOffset(o)
			wantE, wantOK := model.epochForOffset(o)
			if gotE != wantE || gotOK != wantOK {
				fail("EpochForOffset(%d) = (%d, %v), model (%d, %v); entries %v", o, gotE, gotOK, wantE, wantOK, c.Entries())
			}
		}
		got, want := c.Entries(), model.sorted()
		if !slices.Equal(got, want) {
			fail("entries %v, model %v", got, want)
		}
		for i := 1; i < len(got); i++ {
			if got[i].Epoch <= got[i-1].Epoch || got[i].StartOffset <= got[i-1].StartOffset {
				fail("entries not strictly increasing: %v", got)
			}
		}
		l, ok := c.Latest()
		ml, mok := model.latest()
		if l != ml || ok != mok {
			fail("Latest() = %v, %v; model %v, %v", l, ok, ml, mok)
		}
	}
	checkEpochFile(t, filepath.Join(dir, LeaderEpochCheckpointFileName), c.Entries())
}

// FuzzEpochCheckpointParse: any bytes either parse, or fail with ErrCorruption.
func FuzzEpochCheckpointParse(f *testing.F) {
	for _, s := range []string{"", "0\n0\n", "0\n2\n0 0\n3 120\n", "0\n1\n0 1", "0\n1\n-1 0\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := epochCheckpointFormat.parse("fuzz", data)
		if err != nil {
			if !errors.Is(err, ErrCorruption) {
				t.Fatalf("parse error %v is not ErrCorruption", err)
			}
			return
		}
		if len(data) == 0 {
			return
		}
		reparsed, err := epochCheckpointFormat.parse("fuzz", epochCheckpointFormat.encode(entries))
		if err != nil || !slices.Equal(reparsed, entries) {
			t.Fatalf("%q: entries %v re-encode to %v, %v", data, entries, reparsed, err)
		}
	})
}
