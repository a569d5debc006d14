package netio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/sys/unix"
)

var quiet = slog.New(slog.DiscardHandler)

func frame(payload []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
	return append(out, payload...)
}

func readFrame(t *testing.T, r io.Reader) []byte {
	t.Helper()
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		t.Fatalf("reading a response: %v", err)
	}
	b := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(r, b); err != nil {
		t.Fatal(err)
	}
	return b
}

// engines are the network engines every contract test runs against.
var engines = []string{EngineStd, EngineNetpoll}

// forEachEngine runs f as a subtest per engine.
func forEachEngine(t *testing.T, f func(t *testing.T, engine string)) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) { f(t, engine) })
	}
}

// startTCP serves h with the named engine on a loopback listener.
func startTCP(t *testing.T, engine string, cfg Config, h Handler) (Engine, string) {
	t.Helper()
	return startTCPWrapped(t, engine, cfg, h, nil)
}

// startTCPWrapped is startTCP serving the listener wrap makes of the
// loopback one (nil: the loopback one).
func startTCPWrapped(t *testing.T, engine string, cfg Config, h Handler, wrap func(net.Listener) net.Listener) (Engine, string) {
	t.Helper()
	return startTCPWith(t, engine, cfg, h, Options{Logger: quiet}, wrap)
}

// startTCPWith is startTCPWrapped with the engine's Options.
func startTCPWith(t *testing.T, engine string, cfg Config, h Handler, o Options, wrap func(net.Listener) net.Listener) (Engine, string) {
	t.Helper()
	cfg.Engine = engine
	s, err := New(cfg, h, o)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := l
	if wrap != nil {
		served = wrap(l)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(served) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, l.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second)) // a hang becomes a failure
	return c
}

// bytesResponse answers with one length-prefixed frame.
func bytesResponse(payload []byte) Response {
	return Response{Parts: []Part{{Bytes: frame(payload)}}}
}

// TestResponsesInRequestOrder: a handler that answers pipelined requests in
// reverse order still has its responses leave in request order.
func TestResponsesInRequestOrder(t *testing.T) { forEachEngine(t, testResponsesInRequestOrder) }

func testResponsesInRequestOrder(t *testing.T, engine string) {
	const n = 8
	var mu sync.Mutex
	var held []func()
	_, addr := startTCP(t, engine, Config{MaxInFlightPerConnection: n}, HandlerFunc(func(req *Request, respond func(Response)) {
		mu.Lock()
		defer mu.Unlock()
		f := append([]byte(nil), req.Frame...)
		held = append(held, func() { respond(bytesResponse(f)) })
		if len(held) == n {
			for i := n - 1; i >= 0; i-- {
				go held[i]()
			}
		}
	}))
	c := dial(t, addr)
	for i := range n {
		c.Write(frame([]byte{byte(i)}))
	}
	for i := range n {
		if got := readFrame(t, c); !bytes.Equal(got, []byte{byte(i)}) {
			t.Fatalf("response %d carries %v", i, got)
		}
	}
}

// TestSendfileResponse: a response mixing bytes and a file region arrives
// whole, and the region went through sendfile(2), not a copy.
func TestSendfileResponse(t *testing.T) { forEachEngine(t, testSendfileResponse) }

func testSendfileResponse(t *testing.T, engine string) {
	path := filepath.Join(t.TempDir(), "segment.log")
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const off, length = 100, 50_000
	var done sync.WaitGroup
	s, addr := startTCP(t, engine, Config{}, HandlerFunc(func(req *Request, respond func(Response)) {
		hdr := binary.BigEndian.AppendUint32(nil, uint32(length+3))
		respond(Response{Parts: []Part{{Bytes: hdr}, {Bytes: []byte("<<")}, {File: f, Offset: off, Length: length}, {Bytes: []byte(">")}},
			Done: done.Done})
	}))
	c := dial(t, addr)
	// Added here, not in the handler: the handler runs on another goroutine
	// and only a TCP round trip, which the race detector cannot see, would
	// order its Add before this goroutine's Wait.
	done.Add(1)
	c.Write(frame([]byte("fetch")))
	got := readFrame(t, c)
	want := append(append([]byte("<<"), data[off:off+length]...), '>')
	if !bytes.Equal(got, want) {
		t.Fatal("the response differs from the bytes and file region it was made of")
	}
	done.Wait()
	st := s.Stats()
	if st.SendfileBytes != length || st.CopiedBytes != 4+3 {
		t.Fatalf("sent %d bytes by sendfile and %d by copy, want %d and 7", st.SendfileBytes, st.CopiedBytes, length)
	}
}

// TestSendfileFallsBackToCopy: when sendfile(2) says it cannot send the
// file (EINVAL, ENOSYS, EOPNOTSUPP: a filesystem without splice support),
// the rest of the region is copied through memory, from where sendfile
// stopped, and the counters tell the two apart. Any other sendfile error
// ends the connection.
func TestSendfileFallsBackToCopy(t *testing.T) { forEachEngine(t, testSendfileFallsBackToCopy) }

// patternFile writes size bytes of a pattern that repeats only every 256
// bytes (so a shifted copy differs) to a new file, and opens it for the
// test; the file is closed at cleanup.
func patternFile(t *testing.T, size int) (*os.File, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "segment.log")
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, data
}

func testSendfileFallsBackToCopy(t *testing.T, engine string) {
	f, data := patternFile(t, 1<<20)
	const off, length, sentFirst = 100, 900_000, 4096
	for _, tc := range []struct {
		err      syscall.Errno
		fallback bool
	}{{unix.EINVAL, true}, {unix.ENOSYS, true}, {unix.EOPNOTSUPP, true}, {unix.EIO, false}} {
		t.Run(tc.err.Error(), func(t *testing.T) {
			// The first call sends a little of the region; every later
			// one fails with tc.err.
			var calls atomic.Int32
			sendfile := func(out, in int, offset *int64, count int) (int, error) {
				if calls.Add(1) == 1 {
					return unix.Sendfile(out, in, offset, min(count, sentFirst))
				}
				return 0, tc.err
			}
			var done sync.WaitGroup
			s, addr := startTCPWith(t, engine, Config{}, HandlerFunc(func(req *Request, respond func(Response)) {
				hdr := binary.BigEndian.AppendUint32(nil, uint32(length+1))
				respond(Response{Parts: []Part{{Bytes: hdr}, {File: f, Offset: off, Length: length}, {Bytes: []byte(">")}},
					Done: done.Done})
			}), Options{Logger: quiet, sendfile: sendfile}, nil)
			c := dial(t, addr)
			done.Add(1) // before the request, as in testSendfileResponse
			c.Write(frame([]byte("fetch")))
			if !tc.fallback {
				var hdr [4]byte
				io.ReadFull(c, hdr[:])
				if n, err := io.Copy(io.Discard, c); err != nil || n >= length {
					t.Fatalf("after sendfile failed with %v: read %d more bytes (%v), want the connection closed short of the region", tc.err, n, err)
				}
				return
			}
			got := readFrame(t, c)
			if want := append(slices.Clone(data[off:off+length]), '>'); !bytes.Equal(got, want) {
				t.Fatal("the response differs from the file region it was made of")
			}
			done.Wait()
			st := s.Stats()
			if st.SendfileBytes != sentFirst || st.CopiedBytes != length-sentFirst+4+1 {
				t.Fatalf("sent %d bytes by sendfile and %d by copy, want %d and %d", st.SendfileBytes, st.CopiedBytes, sentFirst, length-sentFirst+5)
			}
		})
	}
}

// TestSlowReaderParks: a 16 MiB region is more than the socket buffers of
// both ends hold, so sendfile meets EAGAIN before the client has read it all;
// the sender waits on the poller and finishes as the client reads. (A tiny
// receive buffer would force it sooner, but Linux then crawls through
// zero-window probes.)
func TestSlowReaderParks(t *testing.T) { forEachEngine(t, testSlowReaderParks) }

func testSlowReaderParks(t *testing.T, engine string) {
	f, data := patternFile(t, 16<<20)
	s, addr := startTCP(t, engine, Config{}, HandlerFunc(func(req *Request, respond func(Response)) {
		hdr := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
		if string(req.Frame) == "copy" { // the same bytes from memory: writev meets EAGAIN too
			respond(Response{Parts: []Part{{Bytes: hdr}, {Bytes: data}}})
			return
		}
		respond(Response{Parts: []Part{{Bytes: hdr}, {File: f, Offset: 0, Length: int64(len(data))}}})
	}))
	c := dial(t, addr)
	c.Write(frame([]byte("fetch")))
	c.Write(frame([]byte("copy")))
	if got := readFrame(t, c); !bytes.Equal(got, data) {
		t.Fatal("a large region sent to a slow reader arrived damaged")
	}
	if got := readFrame(t, c); !bytes.Equal(got, data) {
		t.Fatal("large bytes written to a slow reader arrived damaged")
	}
	// The counters move just after the bytes leave, so the client may
	// have read them first: wait for them, within a bound.
	for deadline := time.Now().Add(20 * time.Second); ; runtime.Gosched() {
		st := s.Stats()
		if st.SendfileBytes == uint64(len(data)) && st.CopiedBytes == uint64(len(data))+8 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sent %d bytes by sendfile and %d by copy, want %d and %d", st.SendfileBytes, st.CopiedBytes, len(data), len(data)+8)
		}
	}
}

// TestOversizeFrameClosesConnection: a size prefix over
// socket.request.max.bytes, or negative, closes the connection before any
// of the frame is read.
func TestOversizeFrameClosesConnection(t *testing.T) {
	forEachEngine(t, testOversizeFrameClosesConnection)
}

func testOversizeFrameClosesConnection(t *testing.T, engine string) {
	served := make(chan struct{}, 10)
	s, addr := startTCP(t, engine, Config{SocketRequestMaxBytes: 1024}, HandlerFunc(func(req *Request, respond func(Response)) {
		served <- struct{}{}
		respond(bytesResponse(nil))
	}))
	for _, size := range []uint32{1025, 1 << 31, 0xffffffff} {
		c := dial(t, addr)
		c.Write(binary.BigEndian.AppendUint32(nil, size))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("size %d: the connection stayed open (%v)", size, err)
		}
	}
	if st := s.Stats(); st.OversizeFrames != 3 || len(served) != 0 {
		t.Fatalf("%d oversize frames counted, %d served", st.OversizeFrames, len(served))
	}
}

// TestConnectionLimits: connections over max.connections (and per IP) are
// closed at once.
func TestConnectionLimits(t *testing.T) { forEachEngine(t, testConnectionLimits) }

func testConnectionLimits(t *testing.T, engine string) {
	s, addr := startTCP(t, engine, Config{MaxConnections: 2}, HandlerFunc(func(req *Request, respond func(Response)) {
		respond(bytesResponse(req.Frame))
	}))
	a, b := dial(t, addr), dial(t, addr)
	for _, c := range []net.Conn{a, b} { // both admitted: they are answered
		c.Write(frame([]byte("hi")))
		readFrame(t, c)
	}
	c := dial(t, addr)
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("a third connection over max.connections=2 stayed open (%v)", err)
	}
	if st := s.Stats(); st.RejectedConnections != 1 || st.Connections != 2 {
		t.Fatalf("%d connections rejected and %d open, want 1 and 2", st.RejectedConnections, st.Connections)
	}
}

// TestConnectionsPerIP: max.connections.per.ip refuses a client address's
// connections over it.
func TestConnectionsPerIP(t *testing.T) { forEachEngine(t, testConnectionsPerIP) }

func testConnectionsPerIP(t *testing.T, engine string) {
	s, addr := startTCP(t, engine, Config{MaxConnectionsPerIP: 1}, HandlerFunc(func(req *Request, respond func(Response)) {
		respond(bytesResponse(req.Frame))
	}))
	a := dial(t, addr)
	a.Write(frame([]byte("hi")))
	readFrame(t, a)
	b := dial(t, addr)
	if _, err := b.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("a second connection from 127.0.0.1 over max.connections.per.ip=1 stayed open (%v)", err)
	}
	if st := s.Stats(); st.RejectedConnections != 1 {
		t.Fatalf("%d connections rejected, want 1", st.RejectedConnections)
	}
}

// pipeServer serves h over in-memory pipes, for tests inside a synctest
// bubble, where time and blocking are the bubble's.
func pipeServer(t *testing.T, cfg Config, h Handler) (*Server, func() net.Conn) {
	s, err := NewServer(cfg, h, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, func() net.Conn {
		client, server := net.Pipe()
		s.accept(server)
		t.Cleanup(func() { client.Close() })
		return client
	}
}

// TestFloodIsNotRead (std engine, inside a synctest bubble): a client that pipelines requests faster than they are
// answered is read only up to the per-connection bound; the rest waits in
// its own socket, not in the server's memory.
func TestFloodIsNotRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var held []func(Response)
		_, dialPipe := pipeServer(t, Config{MaxInFlightPerConnection: 3}, HandlerFunc(func(req *Request, respond func(Response)) {
			mu.Lock()
			held = append(held, respond)
			mu.Unlock()
		}))
		c := dialPipe()
		go func() {
			for i := range 100 {
				if _, err := c.Write(frame([]byte{byte(i)})); err != nil {
					return
				}
			}
		}()
		synctest.Wait()
		mu.Lock()
		got := len(held)
		mu.Unlock()
		if got != 3 {
			t.Fatalf("the server took %d requests off a flooding connection, want 3 (the bound)", got)
		}
		go func() { // answer one: exactly one more is read
			for {
				if _, err := c.Read(make([]byte, 64)); err != nil {
					return
				}
			}
		}()
		held[0](bytesResponse(nil))
		synctest.Wait()
		mu.Lock()
		got = len(held)
		mu.Unlock()
		if got != 4 {
			t.Fatalf("after one answer the server holds %d requests, want 4", got)
		}
		c.Close()
		mu.Lock()
		for _, r := range held[1:] {
			r(bytesResponse(nil))
		}
		mu.Unlock()
	})
}

// TestIdleConnectionsClose (std engine, inside a synctest bubble): a connection with nothing in flight closes after
// connections.max.idle.ms; one waiting on a long poll does not. Inside the
// synctest bubble the clock moves only when every goroutine waits, so each
// blocked read below returns exactly when the server's idle deadline fires.
func TestIdleConnectionsClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan func(Response), 1)
		_, dialPipe := pipeServer(t, Config{ConnectionsMaxIdle: time.Second}, HandlerFunc(func(req *Request, respond func(Response)) {
			release <- respond
		}))
		start := time.Now()
		waiting := dialPipe()
		go waiting.Write(frame([]byte("long poll")))
		respond := <-release
		// Two idle connections, one after the other: when the second closes,
		// the long-polling one has outlived two idle deadlines.
		for range 2 {
			idle := dialPipe()
			if _, err := idle.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrClosedPipe) {
				t.Fatalf("an idle connection stayed open: %v", err)
			}
		}
		if waited := time.Since(start); waited < 2*time.Second {
			t.Fatalf("idle connections closed after %v, before connections.max.idle.ms", waited)
		}
		respond(bytesResponse([]byte("data")))
		if got := readFrame(t, waiting); string(got) != "data" {
			t.Fatalf("the long-polling connection got %q", got)
		}
	})
}

// TestIdleCountsFromLastResponse (std engine, inside a synctest bubble): a
// request answered 0.9 s into a 1 s connections.max.idle.ms leaves its
// connection open for a whole second after the answer, as Kafka counts a
// completed send as activity; then it closes.
func TestIdleCountsFromLastResponse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const idle = time.Second
		_, dialPipe := pipeServer(t, Config{ConnectionsMaxIdle: idle}, HandlerFunc(func(req *Request, respond func(Response)) {
			time.AfterFunc(idle*9/10, func() { respond(bytesResponse([]byte("late"))) })
		}))
		c := dialPipe()
		start := time.Now()
		go c.Write(frame([]byte("q")))
		readFrame(t, c)
		answered := time.Since(start)
		_, err := c.Read(make([]byte, 1))
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("read: %v", err)
		}
		if after := time.Since(start) - answered; after != idle {
			t.Fatalf("answered at %v, closed as idle %v after the answer, want %v", answered, after, idle)
		}
	})
}

// TestNothingServedAfterCloseAfterPipe (std engine, inside a synctest
// bubble): a request read behind one answered with CloseAfter, before that
// answer is written, is dropped, not served; the connection closes.
func TestNothingServedAfterCloseAfterPipe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var behind atomic.Int32
		_, dialPipe := pipeServer(t, Config{}, HandlerFunc(func(req *Request, respond func(Response)) {
			if string(req.Frame) == "malformed" {
				respond(Response{Parts: []Part{{Bytes: frame([]byte("bye"))}}, CloseAfter: true})
				return
			}
			behind.Add(1)
			respond(Response{NoResponse: true})
		}))
		c := dialPipe()
		go c.Write(append(frame([]byte("malformed")), frame([]byte("produce"))...))
		synctest.Wait() // both read, the answer not written: the client reads nothing yet
		if got := readFrame(t, c); string(got) != "bye" {
			t.Fatalf("got %q, want bye", got)
		}
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("the connection stayed open after CloseAfter: %v", err)
		}
		synctest.Wait()
		if n := behind.Load(); n > 0 {
			t.Fatalf("%d request(s) behind a CloseAfter response reached the handler", n)
		}
	})
}
