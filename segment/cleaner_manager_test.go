package segment

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gregor/batch"
)

// waitCleanedTo waits, at most 30 s, until l is clean up to offset: a
// bounded wait on the end of each cleaning pass, not a polling loop.
func waitCleanedTo(t testing.TB, l *Log, offset int64) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		passed := l.Cleaned()
		if off, ok := l.CleanerCheckpoint(); ok && off >= offset {
			return
		}
		select {
		case <-passed:
		case <-deadline:
			off, _ := l.CleanerCheckpoint()
			t.Fatalf("the log is clean up to %d after 30 s, want %d", off, offset)
		}
	}
}

// TestManagerRunsTheCleaner: with log.cleaner.enable, Run cleans the
// compacted logs (not the others) in the background; the dir's
// cleaner-offset-checkpoint records how far; a restart resumes from it, and
// a crash recovers a cleaned log although its topic's policy is not known
// yet (the broker opens logs before it reads topic configs).
func TestManagerRunsTheCleaner(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	cfg := managerConfig(dir)
	cfg.Cleaner = DefaultCleanerConfig()
	cfg.Cleaner.BackoffMs = 10
	m, err := OpenManager(cfg, ManagerOptions{Logger: discardLogger})
	if err != nil {
		t.Fatal(err)
	}
	compacted, plain := TopicPartition{"compacted", 0}, TopicPartition{"plain", 0}
	lc, err := m.GetOrCreate(compacted, compactConfig())
	if err != nil {
		t.Fatal(err)
	}
	lp, err := m.GetOrCreate(plain, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	fill := func(l *Log, round int) {
		for i := range 40 {
			appendBatch(t, l, keyedBatch(t, batch.CodecNone, 1000, kv(fmt.Sprintf("k%d", i%6), fmt.Sprint(round, strings.Repeat("v", 80)))))
		}
	}
	fill(lc, 0)
	fill(lp, 0)
	stop := make(chan struct{})
	ran := make(chan struct{})
	go func() { defer close(ran); m.Run(stop, time.Hour, time.Hour, time.Hour) }()
	target := activeBase(lc)
	waitCleanedTo(t, lc, target)
	close(stop)
	<-ran
	if _, ok := lp.CleanerCheckpoint(); ok {
		t.Fatal("the cleaner cleaned a delete-policy log")
	}
	points, err := ReadOffsetCheckpoint(filepath.Join(dir, CleanerOffsetCheckpointFileName))
	if err != nil || len(points) != 1 || points[0] != (PartitionOffset{"compacted", 0, target}) {
		t.Fatalf("cleaner-offset-checkpoint: %v %v, want compacted 0 %d", points, err, target)
	}
	want := newestPerKey(readAll(t, lc))
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	// A clean restart resumes from the checkpoint.
	if m, err = OpenManager(cfg, ManagerOptions{Logger: discardLogger}); err != nil {
		t.Fatal(err)
	}
	lc, _ = m.Get(compacted)
	if err := lc.SetConfig(compactConfig()); err != nil {
		t.Fatal(err)
	}
	if tc := lc.LogToClean(time.Now()); tc.FirstDirtyOffset != target {
		t.Fatalf("after a restart the log is dirty from %d, want %d", tc.FirstDirtyOffset, target)
	}
	fill(lc, 1)
	if n, err := m.CleanLogs(nil); n != 1 || err != nil {
		t.Fatalf("CleanLogs: %d, %v", n, err)
	}
	if off, _ := lc.CleanerCheckpoint(); off != activeBase(lc) {
		t.Fatalf("clean up to %d, want %d", off, activeBase(lc))
	}
	if n, err := m.CleanLogs(nil); n != 0 || err != nil {
		t.Fatalf("a second round cleaned %d logs (%v): nothing is dirty", n, err)
	}
	want = newestPerKey(readAll(t, lc))

	// A crash: the logs reopen with the default (delete) policy.
	crashManager(m)
	if m, err = OpenManager(cfg, ManagerOptions{Logger: discardLogger}); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	lc, _ = m.Get(compacted)
	if got := newestPerKey(readAll(t, lc)); !mapsEqual(got, want) {
		t.Fatalf("after a crash the cleaned log reads\n%v\nwant\n%v", got, want)
	}
}

func TestCleanerConfigValidate(t *testing.T) {
	c := CleanerConfig{BackoffMs: -1, DedupeBufferSize: 10}
	err := c.Validate()
	for _, key := range []string{"log.cleaner.backoff.ms=-1", "log.cleaner.dedupe.buffer.size=10"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("Validate() = %v; want it to name %s", err, key)
		}
	}
	d := DefaultCleanerConfig()
	if err := d.Validate(); err != nil || !d.Enable || d.BackoffMs != 15000 || d.DedupeBufferSize != 128<<20 {
		t.Fatalf("%+v: %v", d, err)
	}
	lc := Config{DeleteRetentionMs: -1, MinCleanableDirtyRatio: 1.5, MinCompactionLagMs: -2}
	lc.EnsureDefaults()
	err = lc.Validate()
	for _, key := range []string{"delete.retention.ms=-1", "min.cleanable.dirty.ratio=1.5", "min.compaction.lag.ms=-2"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("Validate() = %v; want it to name %s", err, key)
		}
	}
	if d := DefaultConfig(); d.DeleteRetentionMs != 86400000 || d.MinCleanableDirtyRatio != 0.5 || d.MinCompactionLagMs != 0 {
		t.Fatalf("defaults %+v", d)
	}
}
