package segment

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// File names in each log dir.
const (
	// CleanShutdownFileName marks a log dir whose logs were all closed cleanly;
	// its absence at start-up means recovery must scan past the recovery points.
	CleanShutdownFileName = ".clean-shutdown"
	lockFileName          = ".lock"
)

// ManagerConfig holds the broker-wide storage settings, under Kafka's names.
type ManagerConfig struct {
	// LogDirs are the data directories: log.dirs.
	LogDirs []string
	// RecoveryThreadsPerDataDir bounds how many logs of one dir are opened (and
	// recovered) at once: num.recovery.threads.per.data.dir. Kafka's default is
	// 1; Gregor's is 2, since recovery is CRC work a second core can share.
	RecoveryThreadsPerDataDir int
	// Log holds the defaults of every partition log (the log.* keys).
	Log Config
	// Cleaner holds the log cleaner's settings (log.cleaner.*).
	Cleaner CleanerConfig
}

// EnsureDefaults fills every zero field with its default.
func (c *ManagerConfig) EnsureDefaults() {
	if len(c.LogDirs) == 0 {
		c.LogDirs = []string{"data"}
	}
	setDefault(&c.RecoveryThreadsPerDataDir, 2)
	c.Log.EnsureDefaults()
	c.Cleaner.EnsureDefaults()
}

// Validate reports every field out of range, with its value.
func (c *ManagerConfig) Validate() error {
	var errs []error
	seen := map[string]bool{}
	for _, d := range c.LogDirs {
		abs, err := filepath.Abs(d)
		if d == "" || err != nil {
			errs = append(errs, fmt.Errorf("segment: log.dirs entry %q is not a usable path", d))
		} else if seen[abs] {
			errs = append(errs, fmt.Errorf("segment: log.dirs lists %q twice", d))
		}
		seen[abs] = true
	}
	if c.RecoveryThreadsPerDataDir < 1 {
		errs = append(errs, fmt.Errorf("segment: num.recovery.threads.per.data.dir=%d: want at least 1", c.RecoveryThreadsPerDataDir))
	}
	return errors.Join(append(errs, c.Log.Validate(), c.Cleaner.Validate())...)
}

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp TopicPartition) String() string { return tp.Topic + "-" + strconv.Itoa(int(tp.Partition)) }

// MetadataTopic names the directory of the metadata quorum's log,
// <metadata.log.dir>/__cluster_metadata-0, which a log dir may hold.
const MetadataTopic = "__cluster_metadata"

// parsePartitionDir splits a "<topic>-<partition>" directory name at its last
// dash, as Kafka does (topic names may contain dashes).
func parsePartitionDir(name string) (TopicPartition, bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return TopicPartition{}, false
	}
	digits := name[i+1:]
	p, err := strconv.ParseInt(digits, 10, 32)
	if err != nil || digits[0] < '0' || digits[0] > '9' || checkTopicName(name[:i]) != nil {
		return TopicPartition{}, false
	}
	if name[:i] == MetadataTopic {
		// The raft metadata log may share a log dir, as in Kafka; it is not
		// a partition log.
		return TopicPartition{}, false
	}
	return TopicPartition{name[:i], int32(p)}, true
}

// Manager owns the log dirs: it opens every partition log found in them at
// start-up, places new partitions, keeps each dir's recovery-point and
// cleaner-offset checkpoints and clean-shutdown marker, and runs the periodic
// flush, retention and cleaning work.
//
// Concurrency: mu guards the map of logs and the dir each lives in; the logs
// themselves are safe for concurrent use. The cleaner, its uncleanable set
// and the cleaner checkpoints belong to the one goroutine that cleans (Run's,
// or a caller of CleanLogs); cleanerCheckpointMu serialises the checkpoint
// writes it shares with Delete and Close, as recoveryCheckpointMu does those
// of the recovery points.
type Manager struct {
	cfg    ManagerConfig
	now    func() time.Time
	logger *slog.Logger
	locks  []*os.File

	cleaner             *Cleaner
	uncleanable         map[*Log]bool // logs a pass found damaged: not retried until restart
	cleanerCheckpointMu sync.Mutex

	recoveryCheckpointMu sync.Mutex
	logStartCheckpointMu sync.Mutex

	mu struct {
		sync.Mutex
		logs   map[TopicPartition]*Log
		dirOf  map[TopicPartition]string
		closed bool
	}

	// deleting holds the deleted partitions' directories waiting to be
	// removed (dirdelete.go).
	deleting struct {
		sync.Mutex
		timers   map[string]*time.Timer // by path
		closed   bool
		removals sync.WaitGroup // removals under way
	}
}

// ManagerOptions are the Manager's clock and logger.
type ManagerOptions struct {
	Now    func() time.Time
	Logger *slog.Logger
	// ConfigFor returns the settings of a topic's logs found at start-up (the
	// topic's overrides on top of cfg.Log). When it is nil (a broker reads
	// topic configs from the metadata quorum, which may be late), those logs
	// are opened with cfg.Log provisionally: retention by time and size and
	// the cleaner leave them alone until Log.SetConfig gives them their
	// topic's config, which a provisional config never equals. Kafka loads
	// each log with its topic's config; defaults applied meanwhile could
	// delete the old segments of a compacted topic or clean a delete-only
	// one.
	ConfigFor func(topic string) Config
}

// OpenManager locks each log dir, then opens every partition log in it, in
// parallel (num.recovery.threads.per.data.dir per dir). Logs of a dir without
// a clean-shutdown marker are recovered from the dir's recovery points. The
// marker is removed once the dir is loaded, so a crash from then on is seen.
func OpenManager(cfg ManagerConfig, o ManagerOptions) (*Manager, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Manager{cfg: cfg, now: o.Now, logger: o.Logger, uncleanable: map[*Log]bool{}}
	if m.now == nil {
		m.now = time.Now
	}
	if m.logger == nil {
		m.logger = slog.Default()
	}
	m.cleaner = NewCleaner(cfg.Cleaner, m.logger.With("component", "log-cleaner"))
	if o.ConfigFor == nil {
		provisional := cfg.Log
		provisional.provisional = true
		o.ConfigFor = func(string) Config { return provisional }
	}
	m.mu.logs = map[TopicPartition]*Log{}
	m.mu.dirOf = map[TopicPartition]string{}
	for _, dir := range cfg.LogDirs {
		if err := m.lockDir(dir); err != nil {
			m.unlock()
			return nil, err
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(cfg.LogDirs))
	for i, dir := range cfg.LogDirs {
		wg.Go(func() { errs[i] = m.loadDir(dir, o.ConfigFor) })
	}
	wg.Wait()
	// The checkpoints are written again at once, without the entries of
	// partitions not found: deleted before a crash that came ahead of
	// Delete's rewrite, they must not apply to a partition of the same name
	// created later. Every log just opened is durable up to its end.
	if err := errors.Join(errs...); err == nil {
		errs = append(errs, m.CheckpointRecoveryPoints(), m.CheckpointCleanerOffsets(), m.CheckpointLogStartOffsets())
	}
	if err := errors.Join(errs...); err != nil {
		m.stopRemovals()
		for _, l := range m.mu.logs {
			l.Close()
		}
		m.unlock()
		return nil, err
	}
	return m, nil
}

// lockDir creates dir and takes an exclusive lock on its .lock file, so two
// brokers never share a log dir.
func (m *Manager) lockDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return fmt.Errorf("segment: log dir %s is in use by another process: %w", dir, err)
	}
	m.locks = append(m.locks, f)
	return nil
}

func (m *Manager) unlock() {
	for _, f := range m.locks {
		f.Close() // closing drops the flock
	}
	m.locks = nil
}

// loadDir opens the logs of one dir with a bounded pool of workers.
func (m *Manager) loadDir(dir string, configFor func(string) Config) error {
	marker := filepath.Join(dir, CleanShutdownFileName)
	_, err := os.Stat(marker)
	clean := err == nil
	// A corrupt checkpoint is set aside, as Kafka's LogManager.loadLogs and
	// LogCleanerManager do: with no recovery points every log is recovered
	// from its first segment, with no log starts every log starts at its
	// first segment (a DeleteRecords is undone, nothing is lost), and with no
	// cleaner offsets every compacted log is cleaned from its start, which
	// only repeats work. Kafka's recovery never reads the cleaner's
	// checkpoint; Gregor's does, to tell the cleaner's gaps from damage, so
	// without it every log of the dir is recovered allowing for them
	// (CleanerCheckpointLost), and a cleaned log is not cut at its first
	// gap; each log that holds the cleaner's marks is listed again, at its
	// log start, so the rewritten checkpoint keeps its gaps the cleaner's at
	// every later start, and no other log is. A cleaner checkpoint that is
	// missing from a dir holding logs counts as lost too: every load writes
	// one, so its absence means it was removed, or the logs came from
	// elsewhere, and their gaps may be the cleaner's all the same. Each
	// checkpoint is rewritten once the dir is loaded. A checkpoint that
	// cannot be read at all fails the dir.
	var checkpoints [3]map[TopicPartition]int64
	cleanerLost := false
	_, err = os.Stat(filepath.Join(dir, CleanerOffsetCheckpointFileName))
	cleanerMissing := errors.Is(err, fs.ErrNotExist)
	for i, name := range []string{RecoveryPointCheckpointFileName, CleanerOffsetCheckpointFileName, LogStartOffsetCheckpointFileName} {
		entries, err := ReadOffsetCheckpoint(filepath.Join(dir, name))
		if errors.Is(err, ErrCorruption) {
			m.logger.Warn("ignoring a corrupt checkpoint", "dir", dir, "file", name, "err", err)
			entries, err = nil, nil
			cleanerLost = cleanerLost || name == CleanerOffsetCheckpointFileName
		}
		if err != nil {
			return err
		}
		checkpoints[i] = make(map[TopicPartition]int64, len(entries))
		for _, p := range entries {
			checkpoints[i][TopicPartition{p.Topic, p.Partition}] = p.Offset
		}
	}
	recovery, firstDirty, logStart := checkpoints[0], checkpoints[1], checkpoints[2]
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var tps []TopicPartition
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if tp, ok := parsePartitionDir(e.Name()); ok {
			tps = append(tps, tp)
		} else if isDeleteDir(e.Name()) {
			// Deleted before the last stop, not yet removed.
			m.removeDirLater(filepath.Join(dir, e.Name()), m.cfg.Log.fileDeleteDelay())
		}
	}
	if cleanerMissing && len(tps) > 0 && !cleanerLost {
		m.logger.Warn("the log dir holds logs but no cleaner checkpoint: recovering them allowing for the cleaner's gaps",
			"dir", dir, "file", CleanerOffsetCheckpointFileName, "partitions", len(tps))
		cleanerLost = true
	}
	work := make(chan TopicPartition)
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var errs []error
	for range min(m.cfg.RecoveryThreadsPerDataDir, max(len(tps), 1)) {
		wg.Go(func() {
			for tp := range work {
				fd, listed := firstDirty[tp]
				l, err := Open(filepath.Join(dir, tp.String()), configFor(tp.Topic), OpenOptions{
					RecoveryPoint:         recovery[tp],
					CleanShutdown:         clean,
					Now:                   m.now,
					Logger:                m.logger,
					CleanerCheckpoint:     fd,
					HasCleanerCheckpoint:  listed,
					CleanerCheckpointLost: cleanerLost,
					LogStartOffset:        logStart[tp],
				})
				errMu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					m.mu.Lock()
					if other, dup := m.mu.dirOf[tp]; dup {
						errs = append(errs, fmt.Errorf("segment: partition %s is in both %s and %s", tp, other, dir))
						l.Close()
					} else {
						m.mu.logs[tp], m.mu.dirOf[tp] = l, dir
					}
					m.mu.Unlock()
				}
				errMu.Unlock()
			}
		})
	}
	for _, tp := range tps {
		work <- tp
	}
	close(work)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	m.logger.Info("loaded log dir", "dir", dir, "partitions", len(tps), "clean_shutdown", clean)
	if err := os.Remove(marker); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return syncDir(dir)
}

// Get returns the log of a partition, if this broker has it.
func (m *Manager) Get(tp TopicPartition) (*Log, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.mu.logs[tp]
	return l, ok
}

// GetOrCreate returns the partition's log, creating it with cfg in the log dir
// that holds the fewest partitions (the first such dir on a tie) when it does
// not exist yet.
func (m *Manager) GetOrCreate(tp TopicPartition, cfg Config) (*Log, error) {
	if err := checkTopicName(tp.Topic); err != nil || tp.Partition < 0 {
		return nil, fmt.Errorf("segment: invalid partition %q/%d", tp.Topic, tp.Partition)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.closed {
		return nil, ErrClosed
	}
	if l, ok := m.mu.logs[tp]; ok {
		return l, nil
	}
	count := map[string]int{}
	for _, d := range m.mu.dirOf {
		count[d]++
	}
	dir := m.cfg.LogDirs[0]
	for _, d := range m.cfg.LogDirs[1:] {
		if count[d] < count[dir] {
			dir = d
		}
	}
	l, err := Open(filepath.Join(dir, tp.String()), cfg, OpenOptions{CleanShutdown: true, Now: m.now, Logger: m.logger})
	if err != nil {
		return nil, err
	}
	if err := syncDir(dir); err != nil {
		l.Close()
		return nil, err
	}
	m.mu.logs[tp], m.mu.dirOf[tp] = l, dir
	return l, nil
}

// Partitions lists the partitions this manager holds, in order.
func (m *Manager) Partitions() []TopicPartition {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]TopicPartition, 0, len(m.mu.logs))
	for tp := range m.mu.logs {
		out = append(out, tp)
	}
	slices.SortFunc(out, func(a, b TopicPartition) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition) - int(b.Partition)
	})
	return out
}

// DirOf returns the log dir that holds a partition.
func (m *Manager) DirOf(tp TopicPartition) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.mu.dirOf[tp]
	return d, ok
}

// DirInfo is one log dir as DescribeLogDirs reports it.
type DirInfo struct {
	Path string // as configured in log.dirs
	// Partitions are the dir's partitions and the bytes of their
	// segment files, sorted.
	Partitions []PartitionSize
}

// PartitionSize is a partition and the bytes of its log.
type PartitionSize struct {
	TopicPartition
	Bytes int64
}

// Dirs lists every log dir, in log.dirs order, with those of its
// partitions that want accepts (every one when want is nil).
func (m *Manager) Dirs(want func(TopicPartition) bool) []DirInfo {
	m.mu.Lock()
	byDir := make(map[string][]PartitionSize, len(m.cfg.LogDirs))
	logs := make(map[TopicPartition]*Log)
	for tp, l := range m.mu.logs {
		if want == nil || want(tp) {
			logs[tp] = l
		}
	}
	dirOf := make(map[TopicPartition]string, len(logs))
	for tp := range logs {
		dirOf[tp] = m.mu.dirOf[tp]
	}
	m.mu.Unlock()
	for tp, l := range logs { // sizes outside m.mu: each takes its log's lock
		byDir[dirOf[tp]] = append(byDir[dirOf[tp]], PartitionSize{tp, l.Size()})
	}
	out := make([]DirInfo, 0, len(m.cfg.LogDirs))
	for _, d := range m.cfg.LogDirs {
		ps := byDir[d]
		slices.SortFunc(ps, func(a, b PartitionSize) int {
			if c := strings.Compare(a.Topic, b.Topic); c != 0 {
				return c
			}
			return cmp.Compare(a.Partition, b.Partition)
		})
		out = append(out, DirInfo{Path: d, Partitions: ps})
	}
	return out
}

func (m *Manager) logs() []*Log {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Log, 0, len(m.mu.logs))
	for _, l := range m.mu.logs {
		out = append(out, l)
	}
	return out
}

// EnforceRetention runs retention on every log; it returns the number of
// segments deleted and every log's error.
func (m *Manager) EnforceRetention() (int, error) {
	var n int
	var errs []error
	for _, l := range m.logs() {
		d, err := l.EnforceRetention()
		n += d
		errs = append(errs, err)
	}
	return n, errors.Join(errs...)
}

// FlushDue fsyncs every log whose flush.ms has passed.
func (m *Manager) FlushDue() error {
	var errs []error
	for _, l := range m.logs() {
		errs = append(errs, l.FlushIfDue())
	}
	return errors.Join(errs...)
}

// CheckpointRecoveryPoints writes each log dir's recovery-point checkpoint.
func (m *Manager) CheckpointRecoveryPoints() error {
	return m.checkpointRecoveryPoints(m.cfg.LogDirs)
}

// checkpointRecoveryPoints writes the recovery-point checkpoints of dirs.
func (m *Manager) checkpointRecoveryPoints(dirs []string) error {
	return m.writeCheckpoints(&m.recoveryCheckpointMu, RecoveryPointCheckpointFileName, dirs,
		func(l *Log) (int64, bool) { return l.RecoveryPoint(), true })
}

// CheckpointCleanerOffsets writes each log dir's cleaner-offset checkpoint:
// the first dirty offset of every log that has one.
func (m *Manager) CheckpointCleanerOffsets() error {
	return m.checkpointCleanerOffsets(m.cfg.LogDirs)
}

// checkpointCleanerOffsets writes the cleaner-offset checkpoints of dirs.
func (m *Manager) checkpointCleanerOffsets(dirs []string) error {
	return m.writeCheckpoints(&m.cleanerCheckpointMu, CleanerOffsetCheckpointFileName, dirs, (*Log).CleanerCheckpoint)
}

// CheckpointLogStartOffsets writes each log dir's log-start-offset
// checkpoint: the start of every log a DeleteRecords raised above its first
// segment's base. Kafka writes it every
// log.flush.start.offset.checkpoint.interval.ms; Gregor writes it also
// before it answers a DeleteRecords, so that deleted records never come
// back after a crash.
func (m *Manager) CheckpointLogStartOffsets() error {
	return m.checkpointLogStartOffsets(m.cfg.LogDirs)
}

func (m *Manager) checkpointLogStartOffsets(dirs []string) error {
	return m.writeCheckpoints(&m.logStartCheckpointMu, LogStartOffsetCheckpointFileName, dirs, (*Log).logStartCheckpoint)
}

// writeCheckpoints writes the offset checkpoint called name in each of dirs:
// the entry of every log of the dir that has one. Its callers (Run, the
// cleaner, Delete, Close) take turns under mu, each listing the logs once
// the last has written: a list taken before a partition was deleted can
// never be written after the list that leaves it out.
func (m *Manager) writeCheckpoints(mu *sync.Mutex, name string, dirs []string, entry func(*Log) (int64, bool)) error {
	mu.Lock()
	defer mu.Unlock()
	m.mu.Lock()
	byDir := map[string][]PartitionOffset{}
	for tp, l := range m.mu.logs {
		if off, ok := entry(l); ok {
			d := m.mu.dirOf[tp]
			byDir[d] = append(byDir[d], PartitionOffset{tp.Topic, tp.Partition, off})
		}
	}
	m.mu.Unlock()
	var errs []error
	for _, d := range dirs {
		errs = append(errs, WriteOffsetCheckpoint(filepath.Join(d, name), byDir[d]))
	}
	return errors.Join(errs...)
}

// CleanLogs is one round of the log cleaner: every log whose cleanup.policy
// has compact and whose dirty ratio has reached its min.cleanable.dirty.ratio
// (or whose max.compaction.lag.ms has passed) gets a cleaning pass, the most
// overdue and then the dirtiest first (Kafka cleans the "filthiest" log
// first too), and the cleaner checkpoints are written after each. It returns
// how many passes made progress; stop ends the round early. A log whose pass
// finds damage is left alone until restart, as Kafka marks it uncleanable.
// One caller at a time: the cleaner is one goroutine's.
func (m *Manager) CleanLogs(stop <-chan struct{}) (int, error) {
	now := m.now()
	type candidate struct {
		tp      TopicPartition
		l       *Log
		ratio   float64
		overdue int64
	}
	var all []candidate
	m.mu.Lock()
	for tp, l := range m.mu.logs {
		all = append(all, candidate{tp: tp, l: l})
	}
	m.mu.Unlock()
	live := make(map[*Log]bool, len(all))
	var dirty []candidate // the logs due for cleaning, dirtiest first once sorted
	for _, c := range all {
		live[c.l] = true
		if !m.uncleanable[c.l] && c.l.NeedsCleaning(now) {
			t := c.l.LogToClean(now)
			c.ratio, c.overdue = t.CleanableRatio, t.OverdueMs
			dirty = append(dirty, c)
		}
	}
	for l := range m.uncleanable {
		if !live[l] {
			delete(m.uncleanable, l)
		}
	}
	// The most overdue for max.compaction.lag.ms first, then the dirtiest.
	slices.SortFunc(dirty, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(b.overdue, a.overdue), cmp.Compare(b.ratio, a.ratio))
	})
	var errs []error
	cleaned := 0
	for _, c := range dirty {
		select {
		case <-stop:
			return cleaned, errors.Join(errs...)
		default:
		}
		if c.l.listCleanerCheckpoint() {
			// Recovery must know the log may have gaps before the first
			// cleaned segment reaches the disk.
			if err := m.CheckpointCleanerOffsets(); err != nil {
				c.l.unlistCleanerCheckpoint()
				errs = append(errs, err)
				continue
			}
		}
		st, err := m.cleaner.Clean(c.l, now, stop)
		switch {
		case errors.Is(err, errCleanAborted), errors.Is(err, ErrClosed):
			continue
		case err != nil:
			var cerr *cleanerError
			if errors.Is(err, ErrCorruption) || errors.As(err, &cerr) {
				m.uncleanable[c.l] = true
			}
			errs = append(errs, fmt.Errorf("cleaning %s: %w", c.tp, err))
			continue
		}
		if st.EndOffset > st.FirstDirtyOffset {
			cleaned++
		}
		m.logger.Info("cleaned a log", "partition", c.tp, "first_dirty", st.FirstDirtyOffset, "end", st.EndOffset,
			"map_full", st.MapFull, "keys", st.MapKeys, "segments", st.SegmentsCleaned, "segments_written", st.SegmentsWritten,
			"bytes_read", st.BytesRead, "bytes_written", st.BytesWritten, "records_kept", st.RecordsKept, "records_read", st.RecordsRead,
			"tombstones_dropped", st.TombstonesDropped, "batches_marked", st.BatchesMarked)
		errs = append(errs, m.CheckpointCleanerOffsets())
	}
	return cleaned, errors.Join(errs...)
}

// runCleaner cleans until stop is closed, waiting log.cleaner.backoff.ms
// after a round that cleaned nothing.
func (m *Manager) runCleaner(stop <-chan struct{}) {
	backoff := time.Duration(m.cfg.Cleaner.BackoffMs) * time.Millisecond
	t := time.NewTimer(backoff)
	defer t.Stop()
	for {
		n, err := m.CleanLogs(stop)
		if err != nil {
			m.logger.Error("log cleaning failed", "err", err)
		}
		if n > 0 {
			continue
		}
		t.Reset(backoff)
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// Run does the periodic work until stop is closed: fsyncs due under flush.ms
// every flushEvery, retention every retentionEvery
// (log.retention.check.interval.ms), and recovery-point checkpoints every
// checkpointEvery (log.flush.offset.checkpoint.interval.ms). With
// log.cleaner.enable, the cleaner runs beside it on its own goroutine, so a
// long pass never delays an fsync. Errors are logged: the logs that failed
// have stopped themselves. Run returns once the cleaner has stopped too.
func (m *Manager) Run(stop <-chan struct{}, flushEvery, retentionEvery, checkpointEvery time.Duration) {
	if m.cfg.Cleaner.Enable {
		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Go(func() { m.runCleaner(stop) })
	}
	tick := func(d time.Duration) <-chan time.Time {
		if d <= 0 || d >= math.MaxInt64/2 {
			return nil
		}
		t := time.NewTicker(d)
		go func() { <-stop; t.Stop() }()
		return t.C
	}
	flushC, retentionC, checkpointC := tick(flushEvery), tick(retentionEvery), tick(checkpointEvery)
	for {
		var err error
		select {
		case <-stop:
			return
		case <-flushC:
			err = m.FlushDue()
		case <-retentionC:
			_, err = m.EnforceRetention()
		case <-checkpointC:
			err = errors.Join(m.CheckpointRecoveryPoints(), m.CheckpointLogStartOffsets())
		}
		if err != nil {
			m.logger.Error("periodic log work failed", "err", err)
		}
	}
}

// Close closes every log, writes the recovery-point checkpoints and, for each
// dir whose logs all closed cleanly, the clean-shutdown marker; then it
// releases the dir locks.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.mu.closed {
		m.mu.Unlock()
		return nil
	}
	m.mu.closed = true
	m.mu.Unlock()
	m.stopRemovals()
	failedDirs := map[string]bool{}
	var errs []error
	for tp, l := range m.mu.logs {
		if err := l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing %s: %w", tp, err))
			failedDirs[m.mu.dirOf[tp]] = true
		}
	}
	if err := errors.Join(m.CheckpointRecoveryPoints(), m.CheckpointCleanerOffsets(), m.CheckpointLogStartOffsets()); err != nil {
		errs = append(errs, err)
		for _, d := range m.cfg.LogDirs {
			failedDirs[d] = true
		}
	}
	for _, d := range m.cfg.LogDirs {
		if failedDirs[d] {
			continue
		}
		if err := os.WriteFile(filepath.Join(d, CleanShutdownFileName), nil, 0o644); err != nil {
			errs = append(errs, err)
		} else if err := syncDir(d); err != nil {
			errs = append(errs, err)
		}
	}
	m.unlock()
	return errors.Join(errs...)
}
