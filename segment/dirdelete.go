package segment

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Deleting a partition's directory, as Kafka's LogManager.asyncDelete does:
// the log is closed and its directory renamed
// <topic>-<partition>.<32 hex digits>-delete at once, so that a partition of
// the same name can be created right away and a restart does not load it,
// then removed file.delete.delay.ms later on a goroutine of its own:
// removing a large partition's files takes time the caller (the broker's
// metadata path) must not wait for. A directory still waiting when the
// Manager closes is left for the next start, which schedules every *-delete
// directory it finds in the same way. Readers holding regions of the log's
// files keep reading them: they hold the open files, not their names.

// renameDir is os.Rename; a test makes it fail.
var renameDir = os.Rename

// deleteDirSuffix ends the name of a partition directory waiting to be
// removed.
const deleteDirSuffix = "-delete"

// maxDirName is the longest file name the filesystems Gregor runs on take.
const maxDirName = 255

// deleteDirName is the name a deleted partition's directory is renamed to:
// Kafka's, with the topic cut short when the name would pass maxDirName (a
// topic name may have 249 characters).
func deleteDirName(tp TopicPartition) string {
	var id [16]byte
	rand.Read(id[:])
	suffix := "-" + strconv.Itoa(int(tp.Partition)) + "." + hex.EncodeToString(id[:]) + deleteDirSuffix
	return tp.Topic[:min(len(tp.Topic), maxDirName-len(suffix))] + suffix
}

// isDeleteDir reports whether a log dir entry name is a deleted partition's
// directory.
func isDeleteDir(name string) bool {
	rest, ok := strings.CutSuffix(name, deleteDirSuffix)
	if !ok {
		return false
	}
	i := strings.LastIndexByte(rest, '.')
	if i <= 0 || len(rest)-i-1 != 32 {
		return false
	}
	_, err := hex.DecodeString(rest[i+1:])
	return err == nil
}

// removeDirLater has the directory at path removed after delay, unless the
// Manager closes first.
func (m *Manager) removeDirLater(path string, delay time.Duration) {
	m.deleting.Lock()
	defer m.deleting.Unlock()
	if m.deleting.closed {
		return
	}
	if m.deleting.timers == nil {
		m.deleting.timers = map[string]*time.Timer{}
	}
	m.deleting.timers[path] = time.AfterFunc(delay, func() {
		m.deleting.Lock()
		if _, ok := m.deleting.timers[path]; !ok || m.deleting.closed {
			m.deleting.Unlock()
			return
		}
		delete(m.deleting.timers, path)
		m.deleting.removals.Add(1)
		m.deleting.Unlock()
		defer m.deleting.removals.Done()
		if err := os.RemoveAll(path); err != nil {
			m.logger.Warn("removing a deleted partition's directory", "dir", path, "err", err)
			return
		}
		m.logger.Info("removed a deleted partition's directory", "dir", path)
	})
}

// stopRemovals stops the removals not begun, leaving their directories for
// the next start, and waits for those under way.
func (m *Manager) stopRemovals() {
	m.deleting.Lock()
	m.deleting.closed = true
	for _, t := range m.deleting.timers {
		t.Stop()
	}
	m.deleting.timers = nil
	m.deleting.Unlock()
	m.deleting.removals.Wait()
}

// deleteDirsWaiting is how many deleted partitions' directories wait to be
// removed (tests).
func (m *Manager) deleteDirsWaiting() int {
	m.deleting.Lock()
	defer m.deleting.Unlock()
	return len(m.deleting.timers)
}

// Delete closes the logs of partitions, without writing their pages back
// first, and renames each one's directory to be removed
// file.delete.delay.ms later (see above); a directory whose rename fails is
// removed at once. Then, as Kafka's asyncDelete does, it rewrites the
// recovery-point, cleaner-offset and log-start-offset checkpoints of the
// dirs that held them, once for them all: an entry left there would apply
// to a partition of the same name created next, after a crash, and skip its
// recovery, its cleaning below the old log's offsets, or its first records. A checkpoint it cannot rewrite is
// logged, not returned: the next periodic write, or the next start, drops
// the entries. The partitions are gone from the Manager either way; an
// error means a directory may still hold one under its name. Delete
// and GetOrCreate of one partition must not overlap (the broker calls both
// from its metadata goroutine), nor may Delete and Close.
func (m *Manager) Delete(tps ...TopicPartition) error {
	type gone struct {
		tp  TopicPartition
		l   *Log
		dir string
	}
	var logs []gone
	m.mu.Lock()
	if m.mu.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	for _, tp := range tps {
		if l, ok := m.mu.logs[tp]; ok {
			logs = append(logs, gone{tp, l, m.mu.dirOf[tp]})
			delete(m.mu.logs, tp)
			delete(m.mu.dirOf, tp)
		}
	}
	m.mu.Unlock()
	if len(logs) == 0 {
		return nil
	}
	var errs []error
	var renamed []string
	var dirs []string
	for _, g := range logs {
		if err := g.l.close(false); err != nil {
			m.logger.Warn("closing a deleted partition's log", "partition", g.tp, "err", err)
		}
		if !slices.Contains(dirs, g.dir) {
			dirs = append(dirs, g.dir)
		}
		to := filepath.Join(g.dir, deleteDirName(g.tp))
		if err := renameDir(g.l.Dir(), to); err != nil {
			m.logger.Warn("renaming a deleted partition's directory; removing it now", "partition", g.tp, "err", err)
			if err := os.RemoveAll(g.l.Dir()); err != nil {
				errs = append(errs, fmt.Errorf("segment: deleting %s: %w", g.tp, err))
			}
			continue
		}
		renamed = append(renamed, to)
	}
	for _, d := range dirs {
		// Unless the renames survive a crash, a restart loads the
		// partitions again, as it would had the crash come a moment
		// before.
		if err := syncDir(d); err != nil {
			m.logger.Warn("syncing a log dir after renaming deleted partitions", "dir", d, "err", err)
		}
	}
	if err := errors.Join(m.checkpointRecoveryPoints(dirs), m.checkpointCleanerOffsets(dirs), m.checkpointLogStartOffsets(dirs)); err != nil {
		m.logger.Error("rewriting the checkpoints after deleting partitions", "dirs", dirs, "err", err)
	}
	for _, to := range renamed {
		m.removeDirLater(to, m.cfg.Log.fileDeleteDelay())
	}
	return errors.Join(errs...)
}
