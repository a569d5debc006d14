package netio

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// sendfileFunc has unix.Sendfile's signature. The engines call sendfile(2)
// through one, so that a test can make it fail (Options.sendfile).
type sendfileFunc func(outFd, inFd int, offset *int64, count int) (int, error)

// sendfileUnsupported reports a sendfile(2) error that says the source file
// cannot be sent this way (a filesystem without splice support, some FUSE
// and network filesystems), not that the connection failed. The region is
// then copied through memory instead, as Go's net package and Java's
// FileChannel.transferTo (Kafka's) fall back. With a socket as the
// destination, EINVAL can only be about the source.
func sendfileUnsupported(err error) bool {
	return errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP)
}

// copyChunk is how much of a file region the copy path reads at a time.
const copyChunk = 256 << 10

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyChunk); return &b }}

// copyRegion writes the length bytes of f at off with write, reading them
// into memory a chunk at a time: the path for a file sendfile(2) cannot send,
// and for a connection that is not a socket. write writes a chunk whole and
// counts it.
func copyRegion(f *os.File, off, length int64, write func([]byte) error) error {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	for end := off + length; off < end; {
		want := int(min(end-off, int64(len(*bp))))
		n, err := f.ReadAt((*bp)[:want], off)
		if n > 0 {
			if werr := write((*bp)[:n]); werr != nil {
				return werr
			}
			off += int64(n)
		}
		switch {
		case n == want:
		case err == nil || err == io.EOF:
			return fmt.Errorf("netio: %s ends before the region [%d, %d) it was asked to send", f.Name(), end-length, end)
		default:
			return err
		}
	}
	return nil
}

// fallbackNote logs, once per engine, that sendfile(2) could not send a
// file and regions are being copied: the zero-copy path is lost, which an
// operator should know, but one line per fetch would flood the log.
type fallbackNote struct{ logged atomic.Bool }

func (n *fallbackNote) note(logger *slog.Logger, f *os.File, err error) {
	if n.logged.CompareAndSwap(false, true) {
		logger.Warn("sendfile cannot send this file; copying file regions through memory instead (logged once)",
			"file", f.Name(), "err", err)
	}
}
