package replica

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"gregor/batch"
	"gregor/segment"
)

// Producer-state snapshots: the idempotent producers' state of a partition
// as of an offset, so that a broker that restarts still recognises a retry
// of a batch whose segment has since rolled. See doc.go for the format.

const (
	snapshotSuffix  = ".producers"
	snapshotVersion = 1
	// snapshotsKept is how many snapshots a partition keeps: the newest
	// may lie past the log end after recovery truncates an unflushed tail,
	// and the one before it then still saves a scan.
	snapshotsKept = 2
	// snapshotHeaderSize: version, CRC, offset, producer count.
	snapshotHeaderSize = 2 + 4 + 8 + 4
	// snapshotEntryMin is a producer without batches; each batch adds
	// snapshotBatchSize.
	snapshotEntryMin  = 8 + 2 + 8 + 1
	snapshotBatchSize = 4 + 4 + 8 + 8 + 8
)

// snapshotName is the file of the snapshot as of offset: the offset in 20
// digits, as segment files are named, so that names sort by offset.
func snapshotName(offset int64) string {
	return fmt.Sprintf("%020d%s", offset, snapshotSuffix)
}

// encodeSnapshot is the file of s as of offset.
func encodeSnapshot(s *producerStates, offset int64) []byte {
	n := 0
	for _, e := range s.m {
		n += snapshotEntryMin + e.n*snapshotBatchSize
	}
	b := make([]byte, snapshotHeaderSize, snapshotHeaderSize+n)
	binary.BigEndian.PutUint16(b, snapshotVersion)
	binary.BigEndian.PutUint64(b[6:], uint64(offset))
	binary.BigEndian.PutUint32(b[14:], uint32(len(s.m)))
	pids := make([]int64, 0, len(s.m))
	for pid := range s.m {
		pids = append(pids, pid)
	}
	slices.Sort(pids) // the same state makes the same file
	for _, pid := range pids {
		e := s.m[pid]
		b = binary.BigEndian.AppendUint64(b, uint64(pid))
		b = binary.BigEndian.AppendUint16(b, uint16(e.epoch))
		b = binary.BigEndian.AppendUint64(b, uint64(e.lastWriteMs))
		b = append(b, byte(e.n))
		for i := range e.n { // oldest first
			m := &e.batches[(e.next-e.n+i+producerBatchesKept)%producerBatchesKept]
			b = binary.BigEndian.AppendUint32(b, uint32(m.firstSeq))
			b = binary.BigEndian.AppendUint32(b, uint32(m.lastSeq))
			b = binary.BigEndian.AppendUint64(b, uint64(m.firstOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(m.lastOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(m.appendTime))
		}
	}
	binary.BigEndian.PutUint32(b[2:], batch.CRC32C(b[6:]))
	return b
}

// errSnapshot is a snapshot file that does not decode.
var errSnapshot = errors.New("replica: bad producer-state snapshot")

// decodeSnapshot parses a snapshot file into the state and the offset it is
// as of. Anything that does not decode exactly is errSnapshot.
func decodeSnapshot(b []byte) (producerStates, int64, error) {
	bad := func(format string, args ...any) (producerStates, int64, error) {
		return producerStates{}, 0, fmt.Errorf("%w: %s", errSnapshot, fmt.Sprintf(format, args...))
	}
	if len(b) < snapshotHeaderSize {
		return bad("%d bytes, shorter than its header", len(b))
	}
	if v := binary.BigEndian.Uint16(b); v != snapshotVersion {
		return bad("version %d", v)
	}
	if got, want := batch.CRC32C(b[6:]), binary.BigEndian.Uint32(b[2:]); got != want {
		return bad("CRC %08x, file says %08x", got, want)
	}
	offset := int64(binary.BigEndian.Uint64(b[6:]))
	count := int(binary.BigEndian.Uint32(b[14:]))
	p := b[snapshotHeaderSize:]
	if offset < 0 || count > len(p)/snapshotEntryMin {
		return bad("offset %d, %d producers in %d bytes", offset, count, len(p))
	}
	s := producerStates{m: make(map[int64]*producerEntry, count)}
	prev := int64(-1)
	for i := range count {
		if len(p) < snapshotEntryMin {
			return bad("producer %d truncated", i)
		}
		pid := int64(binary.BigEndian.Uint64(p))
		e := &producerEntry{epoch: int16(binary.BigEndian.Uint16(p[8:])), lastWriteMs: int64(binary.BigEndian.Uint64(p[10:]))}
		n := int(p[18])
		p = p[snapshotEntryMin:]
		// Ids ascend, as encodeSnapshot writes them: no id twice.
		if pid <= prev || n < 1 || n > producerBatchesKept || len(p) < n*snapshotBatchSize {
			return bad("producer %d: id %d after %d, with %d batches", i, pid, prev, n)
		}
		prev = pid
		for j := range n {
			e.batches[j] = batchMeta{
				firstSeq:    int32(binary.BigEndian.Uint32(p)),
				lastSeq:     int32(binary.BigEndian.Uint32(p[4:])),
				firstOffset: int64(binary.BigEndian.Uint64(p[8:])),
				lastOffset:  int64(binary.BigEndian.Uint64(p[16:])),
				appendTime:  int64(binary.BigEndian.Uint64(p[24:])),
			}
			p = p[snapshotBatchSize:]
		}
		e.n, e.next = n, n%producerBatchesKept
		s.m[pid] = e
	}
	if len(p) != 0 {
		return bad("%d trailing bytes", len(p))
	}
	return s, offset, nil
}

// snapshotOffsets lists the offsets of the snapshots in dir, ascending.
func snapshotOffsets(dir string) ([]int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var offsets []int64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), snapshotSuffix)
		if !ok || len(name) != 20 || !e.Type().IsRegular() {
			continue
		}
		if o, err := strconv.ParseInt(name, 10, 64); err == nil && o >= 0 {
			offsets = append(offsets, o)
		}
	}
	slices.Sort(offsets)
	return offsets, nil
}

// writeSnapshot writes s as of offset into dir and returns its path. With
// sync it returns once the snapshot is durable; without, the syncer makes it
// so. Either way the caller has it pruned once it is durable
// (snapshotSyncer.synced): until then the ones before it are what a
// machine crash leaves (a snapshot holds its own CRC, so one the crash
// tears is removed on load).
func writeSnapshot(dir string, s *producerStates, offset int64, sync bool) (path string, err error) {
	path = filepath.Join(dir, snapshotName(offset))
	if !sync {
		return path, segment.ReplaceFileNoSync(path, encodeSnapshot(s, offset))
	}
	return path, segment.ReplaceFile(path, encodeSnapshot(s, offset))
}

// pruneSnapshots removes the snapshots in dir older than newest, a durable
// one, but the newest snapshotsKept-1 of those known durable (durable,
// ascending). One never synced is no fallback, since the machine crash it
// is kept for may have torn it or lost it, so it goes even when no durable
// one is left before newest. Newer ones, not yet durable, stay. It returns
// the durable offsets still in dir.
func pruneSnapshots(dir string, newest int64, durable []int64) ([]int64, error) {
	offsets, err := snapshotOffsets(dir)
	if err != nil {
		return durable, err
	}
	var left []int64 // descending until reversed
	fallbacks := 0
	for _, o := range slices.Backward(durable) {
		_, there := slices.BinarySearch(offsets, o)
		switch {
		case !there:
		case o >= newest:
			left = append(left, o)
		case fallbacks < snapshotsKept-1:
			left = append(left, o)
			fallbacks++
		}
	}
	slices.Reverse(left)
	var errs []error
	for _, o := range offsets {
		if _, kept := slices.BinarySearch(left, o); o < newest && !kept {
			errs = append(errs, removeSnapshot(dir, o))
		}
	}
	return left, errors.Join(errs...)
}

// removeSnapshot removes the snapshot in dir as of o; one already gone is
// no error.
func removeSnapshot(dir string, o int64) error {
	if err := os.Remove(filepath.Join(dir, snapshotName(o))); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// loadSnapshot reads the newest snapshot in dir as of at most logEnd.
// Snapshots past logEnd (the log was truncated below them, by recovery of
// an unflushed tail) and snapshots that do not decode are removed. found is
// false when none is left; else older lists the offsets of the snapshots
// before the one loaded, ascending.
func loadSnapshot(dir string, logEnd int64) (s producerStates, offset int64, older []int64, found bool, err error) {
	offsets, err := snapshotOffsets(dir)
	if err != nil {
		return producerStates{}, 0, nil, false, err
	}
	var errs []error
	remove := func(o int64) { errs = append(errs, removeSnapshot(dir, o)) }
	for i := len(offsets) - 1; i >= 0; i-- {
		o := offsets[i]
		if o > logEnd {
			remove(o)
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, snapshotName(o)))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s, at, err := decodeSnapshot(data)
		if err == nil && at != o {
			err = fmt.Errorf("%w: as of offset %d", errSnapshot, at)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", snapshotName(o), err))
			remove(o)
			continue
		}
		return s, o, offsets[:i], true, errors.Join(errs...)
	}
	return producerStates{}, 0, nil, false, errors.Join(errs...)
}

// snapshotSyncer makes the snapshots of rolls durable on a goroutine of its
// own, so that an append does not wait for their fsyncs, as Kafka's roll has
// not since KAFKA-15046: the snapshot is written under the append lock, so
// a process that dies still finds it, and fsynced here. It syncs one at a
// time and only the newest: a snapshot scheduled while another waits
// replaces it, since it holds every batch the older one does, and the
// replaced one is never synced. Older snapshots are pruned only once a
// newer one is durable, and the fallback kept before it is the newest one
// known durable, never one that was replaced, so a machine crash before a
// sync loses only time: the unsynced snapshot, torn, fails its CRC, and
// the partition loads the durable one before it and replays the batch
// headers after it.
type snapshotSyncer struct {
	logger *slog.Logger
	sync   func(path string) error // segment.SyncReplaced; tests stall it

	mu      sync.Mutex
	pending string // the newest snapshot's path not yet being synced
	offset  int64  // pending's offset
	running bool   // the goroutine is syncing or about to
	failed  bool   // a sync failed since the last wait
	// durable lists the offsets of the snapshots known durable,
	// ascending: synced here or by Close, or found at open (a file that
	// outlived the broker that wrote it was synced before a clean
	// shutdown; after a crash nothing better is known of it). Pruning
	// trims it to the files it leaves.
	durable []int64
	done    sync.WaitGroup
}

// schedule has the snapshot at path, as of offset, synced.
func (w *snapshotSyncer) schedule(path string, offset int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending, w.offset = path, offset
	if !w.running {
		w.running = true
		w.done.Go(w.run)
	}
}

func (w *snapshotSyncer) run() {
	for {
		w.mu.Lock()
		path, offset := w.pending, w.offset
		w.pending = ""
		if path == "" {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		err := w.sync(path)
		if err == nil {
			err = w.synced(filepath.Dir(path), offset)
		}
		if err != nil {
			w.logger.Warn("syncing a producer-state snapshot", "path", path, "err", err)
			w.mu.Lock()
			w.failed = true
			w.mu.Unlock()
		}
	}
}

// synced records that the snapshot in dir as of offset is durable and
// prunes the ones before it (pruneSnapshots). Its callers never overlap:
// the goroutine, and the holder of the partition's appendMu once wait has
// returned.
func (w *snapshotSyncer) synced(dir string, offset int64) error {
	w.mu.Lock()
	durable := slices.Clone(w.durable)
	w.mu.Unlock()
	if i, there := slices.BinarySearch(durable, offset); !there {
		durable = slices.Insert(durable, i, offset)
	}
	left, err := pruneSnapshots(dir, offset, durable)
	w.mu.Lock()
	w.durable = left
	w.mu.Unlock()
	return err
}

// wait returns once every scheduled snapshot is synced, reporting whether
// any sync failed since the last wait. The caller keeps schedule from being
// called meanwhile (it holds the partition's appendMu).
func (w *snapshotSyncer) wait() (failed bool) {
	w.done.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	failed, w.failed = w.failed, false
	return failed
}
