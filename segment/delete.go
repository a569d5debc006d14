package segment

import (
	"errors"
	"os"
	"time"
)

// Deleting a segment's files, as Kafka's asynchronous delete does: a segment
// that retention, truncation or the cleaner takes out of the log has its
// files renamed *.deleted at once and removed file.delete.delay.ms later.
// Readers are unaffected either way: they hold reference-counted regions of
// the open file, never its name. What is still waiting when the log closes
// is removed then, and Open removes any *.deleted file a crash left.

// retired is one deleted segment's files waiting out the delay.
type retired struct {
	names []string // their *.deleted names
	timer *time.Timer
}

// retire renames s's files *.deleted and has them removed after delay.
func (l *Log) retire(s *segment, delay time.Duration) error {
	var err error
	r := &retired{}
	for _, p := range s.paths() {
		if rerr := os.Rename(p, p+deletedSuffix); rerr != nil {
			if !errors.Is(rerr, os.ErrNotExist) {
				err = errors.Join(err, rerr)
			}
			continue
		}
		r.names = append(r.names, p+deletedSuffix)
	}
	if len(r.names) == 0 {
		return err
	}
	l.retiring.Lock()
	defer l.retiring.Unlock()
	if l.retiring.closed {
		l.removeRetired(r)
		return err
	}
	if l.retiring.pending == nil {
		l.retiring.pending = map[*retired]struct{}{}
	}
	l.retiring.pending[r] = struct{}{}
	r.timer = time.AfterFunc(delay, func() {
		l.retiring.Lock()
		defer l.retiring.Unlock()
		if _, ok := l.retiring.pending[r]; ok { // not already removed by Close
			delete(l.retiring.pending, r)
			l.removeRetired(r)
		}
	})
	return err
}

// removeRetired removes r's files. Call with retiring held: Close waits for
// a removal under way.
func (l *Log) removeRetired(r *retired) {
	for _, name := range r.names {
		if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.logger.Warn("removing a deleted segment's file", "file", name, "err", err)
		}
	}
}

// removeAllRetired removes every file still waiting, at once (Close).
func (l *Log) removeAllRetired() {
	l.retiring.Lock()
	defer l.retiring.Unlock()
	for r := range l.retiring.pending {
		r.timer.Stop()
		l.removeRetired(r)
	}
	l.retiring.pending = nil
	l.retiring.closed = true
}

// retiredFiles is how many deleted segments' files are waiting (tests).
func (l *Log) retiredFiles() int {
	l.retiring.Lock()
	defer l.retiring.Unlock()
	n := 0
	for r := range l.retiring.pending {
		n += len(r.names)
	}
	return n
}
