package main

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"

	"gregor/batch"
	"gregor/bench"
)

// The floods of the broker issue's engine comparison: what a client that
// breaks the protocol's bounds costs the broker's memory with each engine.
// Each round runs against a broker of its own, whose peak resident memory
// (VmHWM) is its answer.

const (
	// oversizedConns is how many connections op=flood-oversized opens,
	// one after another, each announcing a frame over
	// socket.request.max.bytes.
	oversizedConns = 1000
	// oversizedFrame is the size they announce: 1 GiB, ten times the
	// 100 MiB default limit.
	oversizedFrame = 1 << 30
	// oversizedSent is how many bytes of that frame each sends before
	// waiting to be closed.
	oversizedSent = 1 << 20
	// pipelinedBytes bounds what op=flood-pipelined writes: acks=0
	// Produce requests of one 1 MiB batch, never reading.
	pipelinedBytes = 1 << 30
	// pipelinedConns is how many connections op=flood-pipelined-conns
	// floods from at once, pipelinedBytes/pipelinedConns each: every one
	// within a connection's bound, all together far beyond it.
	pipelinedConns = 128
	// floodIOTimeout bounds every blocking socket call of a flood, so a
	// broker that neither reads nor closes stops the round instead of
	// hanging it.
	floodIOTimeout = 30 * time.Second
)

// benchFloodOversized connects oversizedConns times; each connection sends
// a size prefix of oversizedFrame bytes and the frame's first
// oversizedSent bytes, then reads until the broker closes it. Every
// connection must be closed without an answer; the broker's peak resident
// memory over the round is reported.
func benchFloodOversized(b *testing.B, bb *benchBroker) {
	sa := sockaddr(b, bb.addr)
	msg := make([]byte, 4+oversizedSent)
	binary.BigEndian.PutUint32(msg, oversizedFrame)
	rss0 := procStats(b, bb.pid).RSSBytes
	if err := bench.ResetPeakRSS(bb.pid); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		for i := range oversizedConns {
			fd := dialBlocking(b, sa)
			// The broker may close before the whole message is in:
			// its reset ends the write early, which is the point.
			sendAll(fd, msg)
			if n, err := readUntilClosed(fd); err != nil || n > 0 {
				unix.Close(fd)
				b.Fatalf("connection %d: %d bytes answered, %v; want the connection closed unanswered", i, n, err)
			}
			unix.Close(fd)
		}
	}
	ps := procStats(b, bb.pid)
	b.ReportMetric(float64(ps.PeakRSSBytes-rss0)/(1<<20), "broker-peak-rss-grew-MiB")
	b.ReportMetric(oversizedConns, "conns-closed")
}

// benchFloodPipelined writes acks=0 Produce requests, each one 1 MiB batch
// of 1 KiB records for partition 0, on one connection as fast as it can,
// up to pipelinedBytes, and never reads. With the std engine the broker
// reads no faster than it appends, and TCP holds the client back; netpoll
// reads eagerly and closes the connection once it holds more than its
// bound. It reports the broker's peak memory growth, what the client
// managed to write and how fast, and whether the broker closed the
// connection.
func benchFloodPipelined(b *testing.B, bb *benchBroker) {
	f := startPipelinedFlood(b, bb)
	for b.Loop() {
		n, shut, err := floodConn(f.sa, f.req, pipelinedBytes)
		if err != nil {
			b.Fatal(err)
		}
		f.wrote.Add(n)
		if shut {
			f.closed.Add(1)
		}
	}
	f.report(b, bb)
}

// pipelinedFlood is a pipelined flood's request, target and tallies.
type pipelinedFlood struct {
	req           []byte
	sa            unix.Sockaddr
	rss0          int64
	start         time.Time
	wrote, closed atomic.Int64
}

// startPipelinedFlood makes a new topic on bb and the request that floods
// it, and starts measuring the broker's peak memory.
func startPipelinedFlood(b *testing.B, bb *benchBroker) *pipelinedFlood {
	benchRound++
	topic := fmt.Sprintf("flood-%d", benchRound)
	createBenchTopic(b, bb.addr, topic)
	f := &pipelinedFlood{req: floodProduceRequest(b, topic), sa: sockaddr(b, bb.addr), rss0: procStats(b, bb.pid).RSSBytes}
	if err := bench.ResetPeakRSS(bb.pid); err != nil {
		b.Fatal(err)
	}
	f.start = time.Now()
	return f
}

// report gives the broker's peak memory growth, what the clients wrote
// per round and how fast, and how many connections the broker closed per
// round.
func (f *pipelinedFlood) report(b *testing.B, bb *benchBroker) {
	elapsed := time.Since(f.start)
	ps := procStats(b, bb.pid)
	wrote := float64(f.wrote.Load())
	b.ReportMetric(float64(ps.PeakRSSBytes-f.rss0)/(1<<20), "broker-peak-rss-grew-MiB")
	b.ReportMetric(wrote/float64(b.N)/(1<<20), "client-wrote-MiB")
	b.ReportMetric(wrote/elapsed.Seconds()/(1<<20), "client-wrote-MiB/s")
	b.ReportMetric(float64(f.closed.Load())/float64(b.N), "closed-by-broker")
}

// benchFloodPipelinedConns floods as benchFloodPipelined does from
// pipelinedConns connections at once, each writing
// pipelinedBytes/pipelinedConns: a load each connection's bound admits and
// only the server-wide bounds (queued.max.requests; netpoll's backlogs)
// hold. It reports the broker's peak memory growth, what the clients wrote
// and how fast, and how many connections the broker closed.
func benchFloodPipelinedConns(b *testing.B, bb *benchBroker) {
	f := startPipelinedFlood(b, bb)
	for b.Loop() {
		var wg sync.WaitGroup
		errs := make(chan error, pipelinedConns)
		for range pipelinedConns {
			wg.Go(func() {
				n, shut, err := floodConn(f.sa, f.req, pipelinedBytes/pipelinedConns)
				f.wrote.Add(n)
				if shut {
					f.closed.Add(1)
				}
				if err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	f.report(b, bb)
}

// floodConn connects and writes req over and over, up to limit bytes,
// never reading. It returns how much went out and whether the broker
// closed the connection first.
func floodConn(sa unix.Sockaddr, req []byte, limit int64) (wrote int64, closed bool, err error) {
	fd, err := dialBlockingErr(sa)
	if err != nil {
		return 0, false, err
	}
	defer unix.Close(fd)
	for wrote < limit {
		w, err := sendAll(fd, req)
		wrote += int64(w)
		if err != nil {
			if isPeerClosed(err) {
				return wrote, true, nil
			}
			return wrote, false, fmt.Errorf("after %d bytes: %w", wrote, err)
		}
	}
	return wrote, false, nil
}

// floodProduceRequest is one framed acks=0 Produce request (v9) carrying a
// 1 MiB batch of 1 KiB random records for partition 0 of topic.
func floodProduceRequest(b *testing.B, topic string) []byte {
	bld := batch.NewBuilder(batch.DefaultBuilderOptions())
	value := make([]byte, benchRecordSize)
	rand.Read(value)
	now := time.Now().UnixMilli()
	for bld.SizeWith(now, nil, value, nil) <= 1<<20 {
		bld.Add(now, nil, value, nil)
	}
	records, err := bld.AppendBatch(nil)
	if err != nil {
		b.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks, req.TimeoutMillis = 0, 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("flood")).AppendRequest(nil, req, 1)
}

func sockaddr(b *testing.B, addr string) *unix.SockaddrInet4 {
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	sa := &unix.SockaddrInet4{Port: ta.Port}
	copy(sa.Addr[:], ta.IP.To4())
	return sa
}

// dialBlocking connects a blocking socket whose reads and writes give up
// after floodIOTimeout.
func dialBlocking(b *testing.B, sa unix.Sockaddr) int {
	fd, err := dialBlockingErr(sa)
	if err != nil {
		b.Fatal(err)
	}
	return fd
}

// dialBlockingErr is dialBlocking for goroutines other than the
// benchmark's, which must not call b.Fatal.
func dialBlockingErr(sa unix.Sockaddr) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	tv := unix.NsecToTimeval(floodIOTimeout.Nanoseconds())
	for _, opt := range []int{unix.SO_RCVTIMEO, unix.SO_SNDTIMEO} {
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, opt, &tv); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	if err := connect(fd, sa); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// connect connects a blocking socket. A signal (the Go runtime preempts
// goroutines with them) can interrupt connect(2), which then goes on in
// the background: wait for it and take its result.
func connect(fd int, sa unix.Sockaddr) error {
	err := unix.Connect(fd, sa)
	if err != unix.EINTR {
		return err
	}
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	for {
		if _, err := unix.Poll(pfd, -1); err != unix.EINTR {
			if err != nil {
				return err
			}
			break
		}
	}
	errno, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err == nil && errno != 0 {
		err = unix.Errno(errno)
	}
	return err
}

// sendAll writes p to a blocking socket (MSG_NOSIGNAL: a closed peer is an
// error, not a SIGPIPE) and returns how much went out.
func sendAll(fd int, p []byte) (int, error) {
	sent := 0
	for sent < len(p) {
		n, err := unix.SendmsgN(fd, p[sent:], nil, nil, unix.MSG_NOSIGNAL)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return sent, err
		}
		sent += n
	}
	return sent, nil
}

// readUntilClosed reads a blocking socket until the peer closes it (EOF or
// reset) and returns how many bytes came first; a timeout is an error.
func readUntilClosed(fd int) (int, error) {
	buf := make([]byte, 4096)
	total := 0
	for {
		n, err := unix.Read(fd, buf)
		switch {
		case err == unix.EINTR:
		case err != nil && isPeerClosed(err):
			return total, nil
		case err != nil:
			return total, err
		case n == 0:
			return total, nil
		default:
			total += n
		}
	}
}

func isPeerClosed(err error) bool {
	return errors.Is(err, unix.ECONNRESET) || errors.Is(err, unix.EPIPE)
}
