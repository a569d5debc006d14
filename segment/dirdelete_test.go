package segment

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// deleteDirs lists the *-delete directories in dir.
func deleteDirs(t *testing.T, dir string) []string {
	t.Helper()
	return entryNames(t, dir, func(e os.DirEntry) bool { return e.IsDir() && isDeleteDir(e.Name()) })
}

// managerWithLog opens a Manager over cfg's dirs and creates tp's log in it.
// The caller closes the Manager (or crashes it).
func managerWithLog(t *testing.T, cfg ManagerConfig, tp TopicPartition) (*Manager, *Log) {
	t.Helper()
	m, err := OpenManager(cfg, ManagerOptions{Logger: discardLogger})
	if err != nil {
		t.Fatal(err)
	}
	l, err := m.GetOrCreate(tp, cfg.Log)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	return m, l
}

// TestDeleteRemovesTheDirectoryLater (inside a synctest bubble, whose clock
// moves only when every goroutine waits): a deleted partition's directory
// is renamed at once, without an fsync of its log, so the partition can be
// created again empty, and removed file.delete.delay.ms later, not before; a region read before the
// deletion still reads; a Manager that closes first leaves the directory,
// and the next start neither loads it nor keeps it past the delay.
func TestDeleteRemovesTheDirectoryLater(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const delay = 60 * time.Second
		dir := t.TempDir()
		cfg := managerConfig(dir)
		cfg.Log.FileDeleteDelayMs = delay.Milliseconds()
		tp := TopicPartition{"orders", 3}
		m, l := managerWithLog(t, cfg, tp)
		appendBatch(t, l, offsetBatch(t, 0, 5))
		regions, err := l.Read(nil, 0, 1<<20, 1<<62)
		if err != nil {
			t.Fatal(err)
		}
		defer ReleaseAll(regions)

		if l.RecoveryPoint() != 0 {
			t.Fatalf("recovery point %d before the deletion, want 0: nothing flushed", l.RecoveryPoint())
		}
		if err := m.Delete(tp); err != nil {
			t.Fatal(err)
		}
		if l.RecoveryPoint() != 0 {
			t.Fatalf("recovery point %d after the deletion: the deleted log was flushed", l.RecoveryPoint())
		}
		if _, err := os.Stat(filepath.Join(dir, tp.String())); !os.IsNotExist(err) {
			t.Fatalf("the partition's directory is still under its name: %v", err)
		}
		waiting := deleteDirs(t, dir)
		if len(waiting) != 1 || !strings.HasPrefix(waiting[0], "orders-3.") {
			t.Fatalf("directories waiting: %v, want one orders-3.<id>-delete", waiting)
		}
		buf := make([]byte, 12)
		if _, err := regions[0].File.OS().ReadAt(buf, regions[0].Position); err != nil {
			t.Fatalf("a region read before the deletion: %v", err)
		}
		again, err := m.GetOrCreate(tp, cfg.Log)
		if err != nil || again.LogEndOffset() != 0 {
			t.Fatalf("the partition created again: %v, log end %d; want an empty log", err, again.LogEndOffset())
		}

		time.Sleep(delay - time.Second)
		synctest.Wait()
		if got := deleteDirs(t, dir); len(got) != 1 {
			t.Fatalf("removed before file.delete.delay.ms: %v", got)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := deleteDirs(t, dir); len(got) != 0 || m.deleteDirsWaiting() != 0 {
			t.Fatalf("still waiting after file.delete.delay.ms: %v", got)
		}

		// Deleted, then the Manager closes before the delay: the
		// directory stays, and the next start removes it after the delay
		// without loading it.
		if err := m.Delete(tp); err != nil {
			t.Fatal(err)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		if got := deleteDirs(t, dir); len(got) != 1 {
			t.Fatalf("after Close: %v, want the directory left for the next start", got)
		}
		m, err = OpenManager(cfg, ManagerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if got := m.Partitions(); len(got) != 0 {
			t.Fatalf("the next start loaded %v", got)
		}
		time.Sleep(delay + time.Second)
		synctest.Wait()
		if got := deleteDirs(t, dir); len(got) != 0 {
			t.Fatalf("the next start left %v", got)
		}
	})
}

// TestDeleteDirName: the name is Kafka's, <topic>-<partition>.<32 hex
// digits>-delete, cut to 255 bytes at the topic's end for long topics, and
// recognised as such, never as a partition.
func TestDeleteDirName(t *testing.T) {
	for _, topic := range []string{"orders", "a-b-c", strings.Repeat("x", 249)} {
		name := deleteDirName(TopicPartition{topic, 2147483647})
		if len(name) > maxDirName || !isDeleteDir(name) || !strings.HasSuffix(name, deleteDirSuffix) {
			t.Errorf("topic of %d bytes: %q (%d bytes)", len(topic), name, len(name))
		}
		if _, ok := parsePartitionDir(name); ok {
			t.Errorf("%q parses as a partition", name)
		}
	}
	if name := deleteDirName(TopicPartition{"orders", 0}); !strings.HasPrefix(name, "orders-0.") {
		t.Errorf("%q", name)
	}
	for _, name := range []string{"orders-0", "orders-0-delete", "orders-0.abc-delete", "orders-0." + strings.Repeat("g", 32) + "-delete",
		".lock", "-delete"} {
		if isDeleteDir(name) {
			t.Errorf("isDeleteDir(%q) = true", name)
		}
	}
}

// TestDeleteWhenRenameFails: a directory that cannot be renamed is removed
// at once, so that the partition's name is free all the same.
func TestDeleteWhenRenameFails(t *testing.T) {
	dir := t.TempDir()
	cfg := managerConfig(dir)
	tp := TopicPartition{"orders", 0}
	m, l := managerWithLog(t, cfg, tp)
	defer m.Close()
	appendBatch(t, l, offsetBatch(t, 0, 5))
	renameDir = func(string, string) error { return os.ErrPermission }
	defer func() { renameDir = os.Rename }()
	if err := m.Delete(tp); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, tp.String())); !os.IsNotExist(err) {
		t.Fatalf("the directory that could not be renamed is still there: %v", err)
	}
	if got := deleteDirs(t, dir); len(got) != 0 || m.deleteDirsWaiting() != 0 {
		t.Fatalf("waiting: %v", got)
	}
	if again, err := m.GetOrCreate(tp, cfg.Log); err != nil || again.LogEndOffset() != 0 {
		t.Fatalf("the partition created again: %v", err)
	}
}

// TestDeleteRewritesCheckpoints: deleting partitions rewrites the
// recovery-point and cleaner-offset checkpoints of the dirs that held them
// without them, once for the batch, and leaves the other dirs' files
// alone, so that a partition of the same name created next is recovered
// in full after a crash. A stale recovery point would skip the new log's
// older segments, and a torn byte in one would survive.
func TestDeleteRewritesCheckpoints(t *testing.T) {
	root := t.TempDir()
	dirs := []string{filepath.Join(root, "a"), filepath.Join(root, "b"), filepath.Join(root, "c")}
	cfg := managerConfig(dirs...)
	cfg.Log.FileDeleteDelayMs = time.Hour.Milliseconds()
	m, err := OpenManager(cfg, ManagerOptions{Logger: discardLogger})
	if err != nil {
		t.Fatal(err)
	}
	fill := func(l *Log, batches int) {
		for range batches {
			appendBatch(t, l, offsetBatch(t, l.LogEndOffset(), 4))
		}
		if err := l.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	// One partition per dir: a, b, c in placement order.
	old, other, kept := TopicPartition{"orders", 0}, TopicPartition{"orders", 1}, TopicPartition{"keep", 0}
	for i, tp := range []TopicPartition{old, other, kept} {
		l, err := m.GetOrCreate(tp, cfg.Log)
		if err != nil {
			t.Fatal(err)
		}
		if d, _ := m.DirOf(tp); d != dirs[i] {
			t.Fatalf("%s went to %s, want %s", tp, d, dirs[i])
		}
		fill(l, 200)
		l.listCleanerCheckpoint()
	}
	if err := errors.Join(m.CheckpointRecoveryPoints(), m.CheckpointCleanerOffsets()); err != nil {
		t.Fatal(err)
	}
	oldEnd := func() int64 { l, _ := m.Get(old); return l.LogEndOffset() }()
	keptLog, _ := m.Get(kept)
	keptPoint := keptLog.RecoveryPoint()
	fill(keptLog, 10) // a rewrite of c's checkpoint would show the new point

	if err := m.Delete(old, other); err != nil {
		t.Fatal(err)
	}
	read := func(dir, name string) []PartitionOffset {
		t.Helper()
		entries, err := ReadOffsetCheckpoint(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return entries
	}
	for _, d := range dirs[:2] {
		for _, name := range []string{RecoveryPointCheckpointFileName, CleanerOffsetCheckpointFileName} {
			if got := read(d, name); len(got) != 0 {
				t.Fatalf("%s of %s after the deletion: %v, want no entries", name, filepath.Base(d), got)
			}
		}
	}
	if got := read(dirs[2], RecoveryPointCheckpointFileName); len(got) != 1 || got[0] != (PartitionOffset{"keep", 0, keptPoint}) {
		t.Fatalf("c's recovery points after the deletion: %v, want keep 0 %d as written before it", got, keptPoint)
	}

	l, err := m.GetOrCreate(old, cfg.Log)
	if err != nil {
		t.Fatal(err)
	}
	fill(l, 60)
	if n := len(l.Segments()); n < 3 || l.LogEndOffset() >= oldEnd {
		t.Fatalf("the new log has %d segments and ends at %d: want several, below the old log's end %d", n, l.LogEndOffset(), oldEnd)
	}
	end := l.LogEndOffset()
	crashManager(m)
	first := filepath.Join(dirs[0], old.String(), segmentName(0)+logSuffix)
	f, err := os.OpenFile(first, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	const torn = 1000 // inside a batch of the first segment, not the active one
	if _, err := f.WriteAt([]byte{0xff, 0xff, 0xff, 0xff}, torn); err != nil {
		t.Fatal(err)
	}
	f.Close()

	m, err = OpenManager(cfg, ManagerOptions{Logger: discardLogger})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	l, _ = m.Get(old)
	if got := l.LogEndOffset(); got >= end {
		t.Fatalf("after a crash the new log ends at %d, as before it: the torn first segment was not recovered", got)
	}
	if _, listed := l.CleanerCheckpoint(); listed {
		t.Fatal("the new log took the deleted log's cleaner checkpoint")
	}
}

// TestDeleteDoesNotWaitForARollSync (inside a synctest bubble): deleting a
// partition whose rolled segment is still being synced in the background
// returns without waiting for that sync, which then ends without marking
// the deleted log failed: whether it was syncing the segment's data or, its
// directory since renamed, the directory entry.
func TestDeleteDoesNotWaitForARollSync(t *testing.T) {
	for _, step := range []string{"data", "directory"} {
		t.Run("step="+step, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dir := t.TempDir()
				cfg := managerConfig(dir)
				tp := TopicPartition{"orders", 0}
				m, l := managerWithLog(t, cfg, tp)
				defer m.Close()
				ops := &faultyOps{}
				l.io = ops
				gate := make(chan struct{})
				if step == "data" {
					ops.syncGate = gate
				} else {
					ops.dirGate = gate
				}
				for len(l.Segments()) < 2 {
					appendBatch(t, l, offsetBatch(t, l.LogEndOffset(), 4))
				}
				synctest.Wait() // the roll's sync waits at the gate
				deleted := make(chan error, 1)
				go func() { deleted <- m.Delete(tp) }()
				synctest.Wait()
				select {
				case err := <-deleted:
					if err != nil {
						t.Fatal(err)
					}
				default:
					close(gate)
					t.Fatal("Delete waited for the rolled segment's sync")
				}
				close(gate)
				l.background.Wait()
				if p := l.failed.Load(); p != nil {
					t.Fatalf("the deleted log failed after its deletion: %v", *p)
				}
			})
		})
	}
}

// TestOpenDropsEntriesOfMissingPartitions: a start rewrites the checkpoints
// without the entries of partitions it did not find (deleted, when a crash
// came before Delete rewrote the checkpoints), keeping the others'.
func TestOpenDropsEntriesOfMissingPartitions(t *testing.T) {
	dir := t.TempDir()
	cfg := managerConfig(dir)
	m, l := managerWithLog(t, cfg, TopicPartition{"keep", 0})
	appendBatch(t, l, offsetBatch(t, 0, 4))
	crashManager(m)
	stale := []PartitionOffset{{"gone", 0, 800}, {"keep", 0, 0}}
	for _, name := range []string{RecoveryPointCheckpointFileName, CleanerOffsetCheckpointFileName} {
		if err := WriteOffsetCheckpoint(filepath.Join(dir, name), stale); err != nil {
			t.Fatal(err)
		}
	}
	m, err := OpenManager(cfg, ManagerOptions{Logger: discardLogger})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for name, want := range map[string]PartitionOffset{
		RecoveryPointCheckpointFileName: {"keep", 0, 4}, // recovered and synced to its end
		CleanerOffsetCheckpointFileName: {"keep", 0, 0},
	} {
		got, err := ReadOffsetCheckpoint(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s after the start: %v, want %v alone", name, got, want)
		}
	}
}
