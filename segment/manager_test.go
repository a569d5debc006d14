package segment

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gregor/batch"
)

func managerConfig(dirs ...string) ManagerConfig {
	return ManagerConfig{LogDirs: dirs, Log: testConfig()}
}

// crashManager drops a manager as a killed process would.
func crashManager(m *Manager) {
	for _, l := range m.logs() {
		crash(l)
	}
	m.unlock()
}

// TestManagerPlacementAndRestart: new partitions go to the dir with the
// fewest; a clean restart finds them all with their data and skips recovery;
// a crash leaves no marker, so the next start recovers from the checkpoints.
func TestManagerPlacementAndRestart(t *testing.T) {
	root := t.TempDir()
	dirs := []string{filepath.Join(root, "a"), filepath.Join(root, "b"), filepath.Join(root, "c")}
	m, err := OpenManager(managerConfig(dirs...), ManagerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tps := []TopicPartition{{"orders", 0}, {"orders", 1}, {"orders", 2}, {"user-events", 0}, {"user-events", 1}, {"x", 7}}
	for i, tp := range tps {
		l, err := m.GetOrCreate(tp, testConfig())
		if err != nil {
			t.Fatal(err)
		}
		for range i + 1 {
			if _, err := l.Append(offsetBatch(t, l.LogEndOffset(), 2), 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	count := map[string]int{}
	for _, tp := range tps {
		d, _ := m.DirOf(tp)
		count[d]++
	}
	for _, d := range dirs {
		if count[d] != 2 {
			t.Fatalf("placement %v: want 2 partitions per dir", count)
		}
	}
	if _, err := OpenManager(managerConfig(dirs[0]), ManagerOptions{}); err == nil {
		t.Fatal("a second manager opened a log dir that is in use")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, CleanShutdownFileName)); err != nil {
			t.Fatalf("no clean-shutdown marker after Close: %v", err)
		}
	}

	m, err = OpenManager(managerConfig(dirs...), ManagerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, tp := range tps {
		l, ok := m.Get(tp)
		if !ok || l.LogEndOffset() != int64(2*(i+1)) {
			t.Fatalf("%s after a clean restart: found %v", tp, ok)
		}
	}
	if _, err := os.Stat(filepath.Join(dirs[0], CleanShutdownFileName)); !os.IsNotExist(err) {
		t.Fatalf("the marker survived start-up: %v", err)
	}
	l, _ := m.Get(tps[5])
	if _, err := l.Append(offsetBatch(t, l.LogEndOffset(), 2), 0); err != nil {
		t.Fatal(err)
	}
	if err := m.CheckpointRecoveryPoints(); err != nil {
		t.Fatal(err)
	}
	crashManager(m)
	// A torn tail on the partition written after the checkpoint.
	d, _ := m.DirOf(tps[5])
	p := filepath.Join(d, tps[5].String(), segmentName(0)+logSuffix)
	st, _ := os.Stat(p)
	if err := os.Truncate(p, st.Size()-3); err != nil {
		t.Fatal(err)
	}
	m, err = OpenManager(managerConfig(dirs...), ManagerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	l, _ = m.Get(tps[5])
	if got := l.LogEndOffset(); got != 12 {
		t.Fatalf("after a crash the torn batch should be gone: log end %d, want 12", got)
	}
	if err := m.Delete(tps[5]); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d, tps[5].String())); !os.IsNotExist(err) {
		t.Fatalf("deleted partition's directory remains: %v", err)
	}
}

func TestParsePartitionDir(t *testing.T) {
	for name, want := range map[string]bool{
		"orders-0": true, "user-events-12": true, "a-b-c-3": true,
		"orders": false, "-3": false, "orders-x": false, "orders--1": true, "orders-+1": false, ".lock": false,
		"orders-0.deleted": false, "__cluster_metadata-0": false,
	} {
		if _, ok := parsePartitionDir(name); ok != want {
			t.Errorf("parsePartitionDir(%q) = %v, want %v", name, ok, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	c := Config{SegmentBytes: 1 << 40, IndexIntervalBytes: -1, RetentionMs: -5, CleanupPolicy: "keep"}
	c.EnsureDefaults()
	err := c.Validate()
	for _, key := range []string{"segment.bytes=1099511627776", "index.interval.bytes=-1", "retention.ms=-5", "cleanup.policy=keep"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("Validate() = %v; want it to name %s", err, key)
		}
	}
	d := DefaultConfig()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestLogStartSurvivesRestart: a log start a DeleteRecords raised inside the
// first segment is written to the dir's log-start-offset-checkpoint, so the
// deleted records stay deleted after a crash; deleting the partition drops
// its entry, so a partition of the same name created next starts at 0.
func TestLogStartSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	m, err := OpenManager(managerConfig(dir), ManagerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tp, other := TopicPartition{"orders", 0}, TopicPartition{"orders", 1}
	for _, p := range []TopicPartition{tp, other} {
		l, err := m.GetOrCreate(p, testConfig())
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := l.Append(offsetBatch(t, l.LogEndOffset(), 2), 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	l, _ := m.Get(tp)
	if moved, err := l.AdvanceLogStart(3); err != nil || !moved {
		t.Fatalf("AdvanceLogStart(3): moved %t, %v", moved, err)
	}
	if err := m.CheckpointLogStartOffsets(); err != nil {
		t.Fatal(err)
	}
	got, err := ReadOffsetCheckpoint(filepath.Join(dir, LogStartOffsetCheckpointFileName))
	if err != nil || len(got) != 1 || got[0] != (PartitionOffset{"orders", 0, 3}) {
		t.Fatalf("checkpoint %v, %v: want only orders 0 at 3", got, err)
	}
	crashManager(m)

	m, err = OpenManager(managerConfig(dir), ManagerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l, _ = m.Get(tp)
	if start := l.LogStartOffset(); start != 3 {
		t.Fatalf("log start after a crash: %d, want 3", start)
	}
	if o, _ := m.Get(other); o.LogStartOffset() != 0 {
		t.Fatalf("the other partition's start moved to %d", o.LogStartOffset())
	}
	if err := m.Delete(tp); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadOffsetCheckpoint(filepath.Join(dir, LogStartOffsetCheckpointFileName)); err != nil || len(got) != 0 {
		t.Fatalf("checkpoint after Delete: %v, %v", got, err)
	}
	if l, err = m.GetOrCreate(tp, testConfig()); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(offsetBatch(t, 0, 2), 0); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m, err = OpenManager(managerConfig(dir), ManagerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if l, _ = m.Get(tp); l.LogStartOffset() != 0 || l.LogEndOffset() != 2 {
		t.Fatalf("recreated partition: log [%d, %d), want [0, 2)", l.LogStartOffset(), l.LogEndOffset())
	}
}

// TestManagerLeavesLogsAloneUntilTheirConfigIsSet guards the logs a broker
// finds at start-up, which it opens before the metadata quorum gives it their
// topics' configs (ManagerOptions.ConfigFor nil): they start with the broker's
// defaults, here cleanup.policy=compact,delete and retention.ms of an hour,
// and retention and the cleaner must not act on those. A compacted topic's
// log would lose its old segments, and a delete-only topic that keeps its
// records forever would lose them to retention and have its keys compacted.
// Once SetConfig gives each log its topic's config, they go by it; a
// provisional config equals no config a caller builds, so the broker, which
// applies a topic's config when it differs from the log's, always applies it.
func TestManagerLeavesLogsAloneUntilTheirConfigIsSet(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock(1_000_000)
	cfg := managerConfig(dir)
	cfg.Log.CleanupPolicy = "compact,delete"
	cfg.Log.RetentionMs = 3_600_000
	cfg.Cleaner = DefaultCleanerConfig()
	table := compactConfig() // cleanup.policy=compact
	events := compactConfig()
	events.CleanupPolicy, events.RetentionMs = "delete", -1
	defaults := cfg.Log // a topic without overrides
	logs := []struct {
		tp  TopicPartition
		cfg Config
	}{{TopicPartition{"table", 0}, table}, {TopicPartition{"events", 0}, events}, {TopicPartition{"plain", 0}, defaults}}
	m, err := OpenManager(cfg, ManagerOptions{Now: clock.Now, Logger: discardLogger})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range logs {
		l, err := m.GetOrCreate(x.tp, x.cfg)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 40 { // records at 1000 ms, updating 6 keys
			appendBatch(t, l, keyedBatch(t, batch.CodecNone, 1000, kv(fmt.Sprintf("k%d", i%6), strings.Repeat("v", 80))))
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	// The restart comes a day later; the topics' configs come later still.
	clock.Set(1_000_000 + 24*3_600_000)
	if m, err = OpenManager(cfg, ManagerOptions{Now: clock.Now, Logger: discardLogger}); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	segments := map[TopicPartition]int{}
	for _, x := range logs {
		l, _ := m.Get(x.tp)
		segments[x.tp] = len(l.Segments())
		topicCfg := x.cfg
		topicCfg.EnsureDefaults()
		if l.Config() == topicCfg {
			t.Fatalf("%s: a log opened without its topic's config has one a caller could build", x.tp)
		}
	}
	if n, err := m.CleanLogs(nil); n != 0 || err != nil {
		t.Fatalf("the cleaner cleaned %d logs (%v) whose topics' configs are not known", n, err)
	}
	if n, err := m.EnforceRetention(); n != 0 || err != nil {
		t.Fatalf("retention deleted %d segments (%v) of logs whose topics' configs are not known", n, err)
	}
	for _, x := range logs {
		l, _ := m.Get(x.tp)
		if _, ok := l.CleanerCheckpoint(); ok || len(l.Segments()) != segments[x.tp] {
			t.Fatalf("%s changed before its config came", x.tp)
		}
	}

	// The configs come: each log goes by its own.
	for _, x := range logs {
		l, _ := m.Get(x.tp)
		if err := l.SetConfig(x.cfg); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := m.EnforceRetention(); n != segments[logs[2].tp]-1 || err != nil {
		t.Fatalf("retention deleted %d segments (%v), want the %d closed ones of the topic that takes the defaults", n, err, segments[logs[2].tp]-1)
	}
	if n, err := m.CleanLogs(nil); n != 1 || err != nil {
		t.Fatalf("the cleaner cleaned %d logs (%v), want the compacted topic's", n, err)
	}
	for _, x := range logs[:2] {
		l, _ := m.Get(x.tp)
		_, cleaned := l.CleanerCheckpoint()
		if cleaned != (x.tp.Topic == "table") || len(l.Segments()) > segments[x.tp] {
			t.Fatalf("%s: cleaned %v, %d segments of %d", x.tp, cleaned, len(l.Segments()), segments[x.tp])
		}
	}
}

// TestCorruptCheckpointsAreSetAside: a checkpoint that does not parse does not
// keep its dir from loading (Kafka's LogManager.loadLogs warns and goes on).
// Every log is recovered and whole, starts at its first segment, and the
// checkpoints are written afresh; a checkpoint that cannot be read at all
// still fails the dir.
func TestCorruptCheckpointsAreSetAside(t *testing.T) {
	dir := t.TempDir()
	m, err := OpenManager(managerConfig(dir), ManagerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tp := TopicPartition{"orders", 0}
	l, err := m.GetOrCreate(tp, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := l.Append(offsetBatch(t, l.LogEndOffset(), 2), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.AdvanceLogStart(3); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(l.Flush(), m.CheckpointRecoveryPoints(), m.CheckpointLogStartOffsets()); err != nil {
		t.Fatal(err)
	}
	crashManager(m)
	names := []string{RecoveryPointCheckpointFileName, CleanerOffsetCheckpointFileName, LogStartOffsetCheckpointFileName}
	for _, name := range names {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("0\n1\norders 0 not-a-number\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	m, err = OpenManager(managerConfig(dir), ManagerOptions{})
	if err != nil {
		t.Fatalf("open with corrupt checkpoints: %v", err)
	}
	l, _ = m.Get(tp)
	if start, end := l.LogStartOffset(), l.LogEndOffset(); start != 0 || end != 6 {
		t.Fatalf("log [%d, %d) after corrupt checkpoints, want [0, 6)", start, end)
	}
	for _, name := range names {
		if _, err := ReadOffsetCheckpoint(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s not rewritten: %v", name, err)
		}
	}
	crashManager(m)

	// A directory where the checkpoint should be cannot be read: that is
	// not corruption, and the dir does not load.
	path := filepath.Join(dir, RecoveryPointCheckpointFileName)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if m, err := OpenManager(managerConfig(dir), ManagerOptions{}); err == nil {
		m.Close()
		t.Fatal("opened a dir whose recovery checkpoint cannot be read")
	}
}

// writeCleanedTable fills a compacted log with distinct keys, then new
// values for the odd ones, and cleans it: the cleaned segments lose records
// at their ends too, so a segment does not start where the one before it
// ends. It returns what the log reads once cleaned.
func writeCleanedTable(t *testing.T, m *Manager, tp TopicPartition) map[string]entry {
	t.Helper()
	l, err := m.GetOrCreate(tp, compactConfig())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		appendBatch(t, l, keyedBatch(t, batch.CodecNone, 1000, kv(fmt.Sprintf("k%d", i), strings.Repeat("v", 80))))
	}
	for i := 1; i < 60; i += 2 {
		appendBatch(t, l, keyedBatch(t, batch.CodecNone, 1000, kv(fmt.Sprintf("k%d", i), strings.Repeat("w", 80))))
	}
	if n, err := m.CleanLogs(nil); n != 1 || err != nil {
		t.Fatalf("CleanLogs: %d, %v", n, err)
	}
	return newestPerKey(readAll(t, l))
}

// stopManager stops m cleanly, or as a killed process would once every
// log is fsynced and its recovery point checkpointed.
func stopManager(t *testing.T, m *Manager, crashed bool) {
	t.Helper()
	if !crashed {
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		return
	}
	for _, l := range m.logs() {
		if err := l.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.CheckpointRecoveryPoints(); err != nil {
		t.Fatal(err)
	}
	crashManager(m)
}

// cleanerCheckpointLosses are the ways a dir loses its cleaner checkpoint:
// the file no longer parses, or is gone (removed by hand, or the logs were
// copied in from elsewhere).
type cleanerCheckpointLoss struct {
	name string
	lose func(t *testing.T, dir string)
}

var cleanerCheckpointLosses = []cleanerCheckpointLoss{
	{"corrupt", func(t *testing.T, dir string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, CleanerOffsetCheckpointFileName), []byte("0\n1\ntable 0 x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}},
	{"missing", func(t *testing.T, dir string) {
		t.Helper()
		if err := os.Remove(filepath.Join(dir, CleanerOffsetCheckpointFileName)); err != nil {
			t.Fatal(err)
		}
	}},
}

// forEachCleanerCheckpointLoss runs f for each way of losing the cleaner
// checkpoint, after a clean stop and after a crash.
func forEachCleanerCheckpointLoss(t *testing.T, f func(t *testing.T, loss cleanerCheckpointLoss, crashed bool)) {
	for _, loss := range cleanerCheckpointLosses {
		for _, crashed := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/crashed=%v", loss.name, crashed), func(t *testing.T) { f(t, loss, crashed) })
		}
	}
}

// cleanerManager opens a manager with the cleaner on, on a dir of its own.
func cleanerManager(t *testing.T) (ManagerConfig, string, *Manager) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "d")
	cfg := managerConfig(dir)
	cfg.Cleaner = DefaultCleanerConfig()
	m, err := OpenManager(cfg, ManagerOptions{Logger: discardLogger})
	if err != nil {
		t.Fatal(err)
	}
	return cfg, dir, m
}

// TestCorruptCleanerCheckpointKeepsCleanedLogs: a cleaned log's entry in
// cleaner-offset-checkpoint is what tells recovery its gaps are the
// cleaner's, not damage (TestCleanedLogRecoversWithoutItsPolicy). When a
// corrupt cleaner checkpoint is set aside, the dir's logs are recovered
// allowing for such gaps, after a crash or a clean shutdown: the broker
// opens logs with the default (delete) policy, and a cleaned log was cut at
// its first gap, losing records acknowledged long ago. Kafka's recovery
// does not read the cleaner checkpoint, so setting it aside costs Kafka
// only repeated work, and now Gregor too. A checkpoint missing from a dir
// that holds logs is lost the same way.
func TestCorruptCleanerCheckpointKeepsCleanedLogs(t *testing.T) {
	forEachCleanerCheckpointLoss(t, func(t *testing.T, loss cleanerCheckpointLoss, crashed bool) {
		cfg, dir, m := cleanerManager(t)
		tp := TopicPartition{"table", 0}
		want := writeCleanedTable(t, m, tp)
		l, _ := m.Get(tp)
		end := l.LogEndOffset()
		stopManager(t, m, crashed)
		loss.lose(t, dir)
		m, err := OpenManager(cfg, ManagerOptions{Logger: discardLogger})
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer m.Close()
		l, _ = m.Get(tp)
		if got := l.LogEndOffset(); got != end {
			t.Errorf("log end %d after a corrupt cleaner checkpoint, want %d: the cleaned log was cut as damaged", got, end)
		}
		if got := newestPerKey(readAll(t, l)); !mapsEqual(got, want) {
			t.Errorf("after a corrupt cleaner checkpoint the log reads %d keys, want %d", len(got), len(want))
		}
	})
}

// TestLostCleanerCheckpointListsCleanedLogsAgain: the start that sets a
// corrupt cleaner checkpoint aside rewrites it at once; a cleaned log
// missing from the rewrite is cut at its first gap at the next start (clean
// or not) unless the cleaner has listed it again meanwhile, which it does
// only once the topic's config is known and the log is due. So the start
// that lost the checkpoint lists every log that holds the cleaner's marks
// again, at its log start (cleaned from there, the only work repeated), and
// no other: a log of a delete topic does not become gap-tolerant.
func TestLostCleanerCheckpointListsCleanedLogsAgain(t *testing.T) {
	forEachCleanerCheckpointLoss(t, func(t *testing.T, loss cleanerCheckpointLoss, crashed bool) {
		cfg, dir, m := cleanerManager(t)
		table, events := TopicPartition{"table", 0}, TopicPartition{"events", 0}
		want := writeCleanedTable(t, m, table)
		l, _ := m.Get(table)
		end := l.LogEndOffset()
		ev, err := m.GetOrCreate(events, testConfig())
		if err != nil {
			t.Fatal(err)
		}
		for range 40 {
			if _, err := ev.Append(offsetBatch(t, ev.LogEndOffset(), 3), 0); err != nil {
				t.Fatal(err)
			}
		}
		if len(ev.Segments()) < 2 {
			t.Fatalf("events has %d segments, want several", len(ev.Segments()))
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		loss.lose(t, dir)
		// The start that sets the checkpoint aside, with the broker's
		// provisional configs; then the next, before any cleaning.
		for i := range 2 {
			m, err = OpenManager(cfg, ManagerOptions{Logger: discardLogger})
			if err != nil {
				t.Fatalf("start %d: %v", i, err)
			}
			l, _ = m.Get(table)
			if got := l.LogEndOffset(); got != end {
				t.Fatalf("start %d: log end %d, want %d: the cleaned log was cut as damaged", i, got, end)
			}
			if got := newestPerKey(readAll(t, l)); !mapsEqual(got, want) {
				t.Fatalf("start %d: the log reads %d keys, want %d", i, len(got), len(want))
			}
			if fd, ok := l.CleanerCheckpoint(); !ok || fd != l.LogStartOffset() {
				t.Errorf("start %d: cleaner checkpoint (%d, %v), want (%d, true)", i, fd, ok, l.LogStartOffset())
			}
			ev, _ = m.Get(events)
			if fd, ok := ev.CleanerCheckpoint(); ok {
				t.Errorf("start %d: the never-cleaned log is listed in the cleaner checkpoint at %d", i, fd)
			}
			if got := ev.LogEndOffset(); got != 120 {
				t.Errorf("start %d: events ends at %d, want 120", i, got)
			}
			stopManager(t, m, crashed)
		}
	})
}
