package client

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/batch"
)

// sinkConn is a net.Conn that keeps (or only counts) what is written to it,
// for tests and benchmarks of the request-writing path without a network.
type sinkConn struct {
	keep    bool
	buf     []byte
	n       int64
	writes  int
	buffers int // net.Buffers written in one call (writev), see WriteBuffers
}

func (s *sinkConn) Write(p []byte) (int, error) {
	s.writes++
	s.n += int64(len(p))
	if s.keep {
		s.buf = append(s.buf, p...)
	}
	return len(p), nil
}

func (s *sinkConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (s *sinkConn) Close() error                     { return nil }
func (s *sinkConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (s *sinkConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (s *sinkConn) SetDeadline(time.Time) error      { return nil }
func (s *sinkConn) SetReadDeadline(time.Time) error  { return nil }
func (s *sinkConn) SetWriteDeadline(time.Time) error { return nil }

// newWriteTestConn is a connection whose broker speaks Produce up to v9, as
// Gregor's does, ready for write without a dial.
func newWriteTestConn() *conn {
	cfg := &connConfig{clientID: "bench", requestTimeout: 30 * time.Second, maxResponseBytes: defaultMaxResponseBytes,
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	c := &conn{addr: "sink", node: 1, cfg: cfg, fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID(cfg.clientID)),
		signal: make(chan struct{}, 1), done: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	for i := range c.versions {
		c.versions[i] = -1
	}
	c.versions[kmsg.Produce.Int16()] = 9
	return c
}

// testProduceRequest builds a Produce request of one topic with a batch of
// batchBytes (roughly, in 1 KiB records) for each of partitions.
func testProduceRequest(tb testing.TB, partitions, batchBytes int) (*kmsg.ProduceRequest, int64) {
	tb.Helper()
	value := make([]byte, 1024)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 30000
	t := kmsg.NewProduceRequestTopic()
	t.Topic = "bench-topic"
	var total int64
	for p := range partitions {
		bl := batch.NewBuilder(batch.DefaultBuilderOptions())
		for bl.UncompressedSize()+len(value)+16 <= batchBytes {
			bl.Add(1700000000000, nil, value, nil)
		}
		b, err := bl.AppendBatch(nil)
		if err != nil {
			tb.Fatal(err)
		}
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = int32(p)
		rp.Records = b
		t.Partitions = append(t.Partitions, rp)
		total += int64(len(b))
	}
	req.Topics = append(req.Topics, t)
	return req, total
}

// BenchmarkWriteProduceRequest is the connection's request-writing path for
// the Produce requests a saturated producer sends: 16 partitions' batches of
// 16 KiB and of 1 MiB in one request, and one 1 MiB batch alone (what
// max.request.size = 1 MiB gives). The bytes are the batches'. sink=memory
// writes to a connection that only counts bytes: the encoding, its copies
// and allocations alone; sink=tcp writes to a loopback TCP connection that
// a goroutine reads and discards, the system calls included.
func BenchmarkWriteProduceRequest(b *testing.B) {
	for _, sink := range []string{"memory", "tcp"} {
		for _, bc := range []struct{ partitions, batchBytes int }{{16, 16 << 10}, {16, 1 << 20}, {1, 1 << 20}} {
			b.Run(fmt.Sprintf("sink=%s/batches=%dx%dKiB", sink, bc.partitions, bc.batchBytes>>10), func(b *testing.B) {
				c := newWriteTestConn()
				req, total := testProduceRequest(b, bc.partitions, bc.batchBytes)
				var nc net.Conn = &sinkConn{}
				if sink == "tcp" {
					nc = loopbackSink(b)
				}
				cl := &call{req: req, maxVersion: -1, noResponse: true, onDone: func(kmsg.Response, error) {}}
				b.SetBytes(total)
				b.ReportAllocs()
				for b.Loop() {
					if err := c.write(nc, cl); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// loopbackSink returns the writing end of a loopback TCP connection whose
// other end a goroutine reads and throws away, until the benchmark ends.
func loopbackSink(b *testing.B) net.Conn {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		rc, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- rc
		buf := make([]byte, 1<<20)
		for {
			if _, err := rc.Read(buf); err != nil {
				return
			}
		}
	}()
	wc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	rc := <-accepted
	if rc == nil {
		b.Fatal("accept failed")
	}
	b.Cleanup(func() { wc.Close(); rc.Close() })
	return wc
}
