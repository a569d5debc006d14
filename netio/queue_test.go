package netio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/sys/unix"
)

// TestPartialFramesHoldNoQueueToken: connections that send part of a frame
// and stall hold none of queued.max.requests, which counts whole requests:
// more of them than it allows do not keep another connection's request
// from being served.
func TestPartialFramesHoldNoQueueToken(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		const queued = 2
		_, addr := startTCP(t, engine, Config{QueuedMaxRequests: queued}, HandlerFunc(func(req *Request, respond func(Response)) {
			respond(bytesResponse(req.Frame))
		}))
		for range 2 * queued {
			c := dial(t, addr)
			// A 16-byte frame of which 3 bytes arrive.
			c.Write(frame(bytes.Repeat([]byte{'x'}, 16))[:7])
		}
		c := dial(t, addr)
		c.Write(frame([]byte("whole")))
		if got := readFrame(t, c); string(got) != "whole" {
			t.Fatalf("answer %q", got)
		}
	})
}

// TestParkedRequestsHoldNoQueueToken: a request its handler parks (a long
// poll) gives back its share of queued.max.requests, so more parked
// requests than it allows reach the handler and others are still served;
// once answered, the parked ones are written in order and the tokens are
// all still there.
func TestParkedRequestsHoldNoQueueToken(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		const queued = 2
		var mu sync.Mutex
		var held []func(Response)
		arrived := make(chan struct{}, 8)
		e, addr := startTCP(t, engine, Config{QueuedMaxRequests: queued}, HandlerFunc(func(req *Request, respond func(Response)) {
			if string(req.Frame) != "park" {
				respond(bytesResponse(req.Frame))
				return
			}
			req.Park()
			req.Park() // a second call does nothing
			mu.Lock()
			held = append(held, respond)
			mu.Unlock()
			arrived <- struct{}{}
		}))
		// Answer whatever is held when the test ends, failed or not: the
		// engine's Close waits for every request to be answered.
		t.Cleanup(func() {
			mu.Lock()
			defer mu.Unlock()
			for _, respond := range held {
				respond(Response{NoResponse: true})
			}
		})
		var parked []net.Conn
		for range 2 * queued {
			c := dial(t, addr)
			c.Write(frame([]byte("park")))
			within(t, arrived, "a parked request to reach the handler")
			parked = append(parked, c)
		}
		for range 2 * queued {
			c := dial(t, addr)
			c.Write(frame([]byte("served")))
			if got := readFrame(t, c); string(got) != "served" {
				t.Fatalf("answer %q", got)
			}
		}
		mu.Lock()
		for _, respond := range held {
			respond(bytesResponse([]byte("woken")))
		}
		mu.Unlock() // the cleanup's second answers are no-ops
		for _, c := range parked {
			if got := readFrame(t, c); string(got) != "woken" {
				t.Fatalf("parked request answered %q", got)
			}
		}
		// Every token comes back once, parked or not.
		until(t, "every queue token to come back", func() bool { return inUse(e) == 0 })
	})
}

// TestUnreadAnswersHoldNoQueueToken: a client that pipelines requests with
// large answers and never reads them holds only its own connection's
// places: its answered requests give their queue.max.requests tokens back,
// so another client's request is still served.
func TestUnreadAnswersHoldNoQueueToken(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		const queued, big = 2, 32 << 20
		answered := make(chan struct{}, queued)
		e, addr := startTCP(t, engine, Config{QueuedMaxRequests: queued, MaxInFlightPerConnection: queued}, HandlerFunc(func(req *Request, respond func(Response)) {
			if string(req.Frame) != "big" {
				respond(bytesResponse(req.Frame))
				return
			}
			// More than loopback's socket buffers hold: the first
			// answer's write stalls and the second waits behind it.
			respond(Response{Parts: []Part{{Bytes: frame(make([]byte, big))}}})
			answered <- struct{}{}
		}))
		hog := dial(t, addr)
		for range queued {
			hog.Write(frame([]byte("big")))
			within(t, answered, "the hog's request to be answered")
		}
		c := dial(t, addr)
		c.Write(frame([]byte("small")))
		if got := readFrame(t, c); string(got) != "small" {
			t.Fatalf("answer %q", got)
		}
		until(t, "every queue token to come back", func() bool { return inUse(e) == 0 })
	})
}

// TestSlowFrameIsNotIdle (std engine, inside a synctest bubble): a frame
// whose bytes keep arriving, however slowly, is read whole, even when it
// takes longer than connections.max.idle.ms; one that stops half way for
// that long closes its connection.
func TestSlowFrameIsNotIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const idle = 300 * time.Millisecond
		_, dialPipe := pipeServer(t, Config{ConnectionsMaxIdle: idle}, HandlerFunc(func(req *Request, respond func(Response)) {
			respond(bytesResponse([]byte(fmt.Sprint(len(req.Frame)))))
		}))
		c := dialPipe()
		f := frame(make([]byte, 64<<10))
		go func() {
			// 1 KiB every 20 ms: over a second in all, never idle.
			for off := 0; off < len(f); off += 1 << 10 {
				if _, err := c.Write(f[off:min(off+1<<10, len(f))]); err != nil {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
		if got := readFrame(t, c); string(got) != fmt.Sprint(64<<10) {
			t.Fatalf("answer %q", got)
		}
		stalled := make(chan struct{})
		go func() {
			defer close(stalled)
			c.Write(f[:1<<10])
			time.Sleep(2 * idle)
			c.Write(f[1<<10:]) // fails: the connection is closed
		}()
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("a frame stalled half way: read %v, want the connection closed", err)
		}
		<-stalled
	})
}

// until waits for cond, failing the test if it does not hold within 20s: a
// bounded wait on a condition the test cannot be told of otherwise.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("waited 20s for %s", what)
		}
		runtime.Gosched()
	}
}

// backlogged is what the netpoll engine holds read and waiting, server-wide.
func backlogged(e *NetpollServer) (frames, bytes int) {
	e.bl.Lock()
	defer e.bl.Unlock()
	return e.bl.frames, e.bl.bytes
}

// TestNetpollBacklogIsBoundedServerWide: with queued.max.requests in the
// handler, the requests netpoll reads from many connections wait in their
// backlogs, all together at most queued.max.requests frames and
// socket.request.max.bytes bytes; a connection whose request does not fit
// is closed and counted, so connections each within their own bound cannot
// together grow the broker's memory with their number. Those that fit are
// served once the handler catches up, and the room comes back.
func TestNetpollBacklogIsBoundedServerWide(t *testing.T) {
	for _, tc := range []struct {
		name    string
		queued  int
		sizes   []int // frames from one connection each, after the handler is full
		refused int   // the one that does not fit
	}{
		{name: "frames", queued: 2, sizes: []int{10, 10, 10}, refused: 2},
		{name: "bytes", queued: 3, sizes: []int{600, 600, 400}, refused: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var held []func()
			ending := false // answer at once: the test is over
			arrived := make(chan struct{}, 16)
			cfg := Config{QueuedMaxRequests: tc.queued, SocketRequestMaxBytes: 1000}
			en, addr := startTCP(t, EngineNetpoll, cfg, HandlerFunc(func(req *Request, respond func(Response)) {
				f := append([]byte(nil), req.Frame...)
				mu.Lock()
				if ending {
					mu.Unlock()
					respond(bytesResponse(f))
					return
				}
				held = append(held, func() { respond(bytesResponse(f)) })
				mu.Unlock()
				arrived <- struct{}{}
			}))
			e := en.(*NetpollServer)
			answerAll := func() {
				mu.Lock()
				h := held
				held = nil
				mu.Unlock()
				for _, respond := range h {
					respond()
				}
			}
			t.Cleanup(func() { // before the engine's Close, which waits for every request
				mu.Lock()
				ending = true
				mu.Unlock()
				answerAll()
			})
			// Fill the handler: queued.max.requests requests on one connection.
			busy := dial(t, addr)
			for i := range tc.queued {
				busy.Write(frame([]byte{byte(i)}))
				within(t, arrived, "a request to fill the handler")
			}
			conns := make([]net.Conn, len(tc.sizes))
			waiting, waitingBytes := 0, 0
			for i, size := range tc.sizes {
				conns[i] = dial(t, addr)
				conns[i].Write(frame(bytes.Repeat([]byte{byte(i)}, size)))
				if i == tc.refused {
					if _, err := conns[i].Read(make([]byte, 1)); !isClosedErr(err) {
						t.Fatalf("connection %d, over the server-wide backlog, stayed open: %v", i, err)
					}
					continue
				}
				waiting++
				waitingBytes += size
				until(t, "a request to wait in its backlog", func() bool {
					f, b := backlogged(e)
					return f == waiting && b == waitingBytes
				})
			}
			if n := e.Stats().InputOverflows; n != 1 {
				t.Fatalf("%d input overflows counted, want 1", n)
			}
			// The handler catches up: the waiting requests are served.
			for range len(tc.sizes) - 1 {
				answerAll()
				within(t, arrived, "a waiting request to reach the handler")
			}
			answerAll()
			for i, c := range conns {
				if i == tc.refused {
					continue
				}
				if got := readFrame(t, c); !bytes.Equal(got, bytes.Repeat([]byte{byte(i)}, tc.sizes[i])) {
					t.Fatalf("connection %d answered %d bytes", i, len(got))
				}
			}
			if f, b := backlogged(e); f != 0 || b != 0 {
				t.Fatalf("%d frames of %d bytes still counted waiting after all were served", f, b)
			}
		})
	}
}

// TestNetpollBacklogHoldsOnlyWaitingFrames: the server-wide backlog bound
// is for frames that wait. Every frame took room in it, even one the
// handler took at once, so one connection with a frame waiting behind its
// long poll (within its own bounds) filled it, and every other connection
// was closed on its next request (InputOverflows) with the handler idle.
func TestNetpollBacklogHoldsOnlyWaitingFrames(t *testing.T) {
	const maxBytes = 1000
	var mu sync.Mutex
	var held []func(Response)
	arrived := make(chan struct{}, 4)
	e, addr := startTCP(t, EngineNetpoll, Config{MaxInFlightPerConnection: 1, SocketRequestMaxBytes: maxBytes},
		HandlerFunc(func(req *Request, respond func(Response)) {
			if string(req.Frame) == "long poll" {
				req.Park() // waits on appends, not on the server: no token held
				mu.Lock()
				held = append(held, respond)
				mu.Unlock()
				arrived <- struct{}{}
				return
			}
			respond(bytesResponse(req.Frame))
		}))
	t.Cleanup(func() { // before the engine's Close, which waits for every request
		mu.Lock()
		defer mu.Unlock()
		for _, respond := range held {
			respond(Response{NoResponse: true})
		}
	})
	np := e.(*NetpollServer)
	a := dial(t, addr)
	a.Write(frame([]byte("long poll")))
	within(t, arrived, "the long poll")
	a.Write(frame(make([]byte, maxBytes-10))) // waits behind it: its window is 1
	until(t, "the frame behind the long poll to wait in the backlog", func() bool { f, _ := backlogged(np); return f == 1 })
	if n := inUse(e); n != 0 {
		t.Fatalf("%d queue tokens in use, want 0", n)
	}
	for i := range 3 {
		c := dial(t, addr)
		want := fmt.Sprintf("request %d of an idle client", i)
		c.Write(frame([]byte(want)))
		if got := string(readFrame(t, c)); got != want {
			t.Fatalf("answered %q, want %q (InputOverflows %d)", got, want, e.Stats().InputOverflows)
		}
	}
	if f, b := backlogged(np); f != 1 || b != maxBytes-10 {
		t.Errorf("server-wide backlog holds %d frames, %d bytes; want the one waiting frame, %d bytes", f, b, maxBytes-10)
	}
}

// inUse is how many of queued.max.requests an engine has handed out.
func inUse(e Engine) int {
	switch e := e.(type) {
	case *Server:
		return len(e.inflight)
	case *NetpollServer:
		e.tok.Lock()
		defer e.tok.Unlock()
		return e.tok.used
	}
	panic("unknown engine")
}

// emfileListener fails its first accepts as a process out of file
// descriptors does, then hands out a connection it was given.
type emfileListener struct {
	net.Listener
	failures int
}

func (l *emfileListener) Accept() (net.Conn, error) {
	if l.failures > 0 {
		l.failures--
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestAcceptSurvivesEMFILE: running out of file descriptors pauses the std
// engine's accepting instead of ending it, which would leave the port bound
// and clients hanging.
func TestAcceptSurvivesEMFILE(t *testing.T) {
	_, addr := startTCPWrapped(t, EngineStd, Config{}, HandlerFunc(func(req *Request, respond func(Response)) {
		respond(bytesResponse(req.Frame))
	}), func(l net.Listener) net.Listener { return &emfileListener{Listener: l, failures: 3} })
	c := dial(t, addr)
	c.Write(frame([]byte("after EMFILE")))
	if got := readFrame(t, c); string(got) != "after EMFILE" {
		t.Fatalf("answer %q", got)
	}
}

// TestNetpollRefusesWhenOutOfDescriptors: a netpoll engine whose process
// is out of file descriptors takes the waiting connection on its spare
// descriptor and closes it (counted as refused), then serves the next
// connection as usual; netpoll never sees the error, so no retry goroutine
// of its own is left running after Close.
func TestNetpollRefusesWhenOutOfDescriptors(t *testing.T) {
	var failures atomic.Int32
	failures.Store(1)
	t.Cleanup(func() { accept4 = unix.Accept4 }) // after the server's Close
	accept4 = func(fd, flags int) (int, unix.Sockaddr, error) {
		if failures.Add(-1) >= 0 {
			return -1, nil, unix.EMFILE
		}
		return unix.Accept4(fd, flags)
	}
	e, addr := startTCP(t, EngineNetpoll, Config{}, HandlerFunc(func(req *Request, respond func(Response)) {
		respond(bytesResponse(req.Frame))
	}))
	refused := dial(t, addr)
	if _, err := refused.Read(make([]byte, 1)); !isClosedErr(err) {
		t.Fatalf("a connection met by EMFILE stayed open: %v", err)
	}
	if n := e.Stats().RejectedConnections; n != 1 {
		t.Fatalf("%d connections counted refused, want 1", n)
	}
	c := dial(t, addr)
	c.Write(frame([]byte("after EMFILE")))
	if got := readFrame(t, c); string(got) != "after EMFILE" {
		t.Fatalf("answer %q", got)
	}
	e.Close()
	buf := make([]byte, 1<<20)
	if stacks := string(buf[:runtime.Stack(buf, true)]); strings.Contains(stacks, "netpoll.(*server).OnRead") {
		t.Fatalf("a netpoll accept goroutine outlived Close:\n%s", stacks)
	}
}

// noListener is a listener with nothing to accept, for emfileListener
// inside a synctest bubble.
type noListener struct{}

func (noListener) Accept() (net.Conn, error) { return nil, net.ErrClosed }
func (noListener) Close() error              { return nil }
func (noListener) Addr() net.Addr            { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// TestCloseEndsAcceptRetry (inside a synctest bubble, whose clock moves only
// when every goroutine waits): a server out of file descriptors keeps
// accepting, pausing up to a second between tries, and Close ends the pause
// at once instead of waiting it out.
func TestCloseEndsAcceptRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := NewServer(Config{}, HandlerFunc(func(*Request, func(Response)) {}), Options{Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- s.Serve(&emfileListener{Listener: noListener{}, failures: math.MaxInt}) }()
		// 5 ms doubling reaches the one-second pause within 2 s.
		time.Sleep(3 * time.Second)
		synctest.Wait()
		select {
		case err := <-served:
			t.Fatalf("Serve returned %v while the listener was only out of descriptors", err)
		default:
		}
		closedAt := time.Now()
		s.Close()
		synctest.Wait()
		select {
		case err := <-served:
			if !errors.Is(err, ErrServerClosed) {
				t.Fatalf("Serve returned %v, want ErrServerClosed", err)
			}
		default:
			t.Fatal("Serve still pausing after Close")
		}
		if waited := time.Since(closedAt); waited != 0 {
			t.Fatalf("Close waited %v of the accept pause", waited)
		}
	})
}

// TestAcceptRetryPassesOnlyPassingErrors: out of descriptors or memory the
// loop pauses and goes on; any other error, or done closed, ends it.
func TestAcceptRetryPassesOnlyPassingErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		done := make(chan struct{})
		for _, tc := range []struct {
			err  error
			pass bool
		}{
			{syscall.EMFILE, true},
			{os.NewSyscallError("accept4", syscall.ENFILE), true},
			{syscall.ENOBUFS, true},
			{syscall.ENOMEM, true},
			{net.ErrClosed, false},
			{syscall.EINVAL, false},
		} {
			var a AcceptRetry
			if got := a.Wait(tc.err, quiet, done); got != tc.pass {
				t.Errorf("Wait(%v) = %v, want %v", tc.err, got, tc.pass)
			}
		}
		close(done)
		var a AcceptRetry
		if a.Wait(syscall.EMFILE, quiet, done) {
			t.Error("Wait went on after done was closed")
		}
	})
}

// TestStalledReaderIsClosed: a client that sends a request and never reads
// its answer is closed once nothing has gone out for
// connections.max.idle.ms, whether the answer is stuck in writev or in
// sendfile, and the response's Done runs (a fetch's segment references are
// released).
func TestStalledReaderIsClosed(t *testing.T) {
	const big = 32 << 20 // far beyond what the socket buffers take
	path := filepath.Join(t.TempDir(), "region")
	if err := os.WriteFile(path, make([]byte, big), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, kind := range []string{"bytes", "file"} {
		t.Run("part="+kind, func(t *testing.T) {
			forEachEngine(t, func(t *testing.T, engine string) {
				done := make(chan struct{}, 1)
				_, addr := startTCP(t, engine, Config{ConnectionsMaxIdle: 100 * time.Millisecond}, HandlerFunc(func(req *Request, respond func(Response)) {
					r := Response{Done: func() { done <- struct{}{} }}
					hdr := binary.BigEndian.AppendUint32(nil, big)
					if kind == "bytes" {
						r.Parts = []Part{{Bytes: append(hdr, make([]byte, big)...)}}
					} else {
						r.Parts = []Part{{Bytes: hdr}, {File: f, Offset: 0, Length: big}}
					}
					respond(r)
				}))
				c := dial(t, addr)
				c.Write(frame([]byte("never read")))
				within(t, done, kind+" answer to a client that never reads to end")
			})
		})
	}
}

// TestNetpollLogLinesGoToSlog: a line netpoll logs reaches the server's
// structured logger, without log's own timestamp.
func TestNetpollLogLinesGoToSlog(t *testing.T) {
	var buf bytes.Buffer
	if _, err := NewNetpollServer(Config{}, HandlerFunc(func(*Request, func(Response)) {}), Options{Logger: slog.New(slog.NewTextHandler(&buf, nil))}); err != nil {
		t.Fatal(err)
	}
	log.New(netpollLogWriter{}, "", log.LstdFlags).Print("NETPOLL: accept conn failed: too many open files")
	if got := buf.String(); !strings.Contains(got, `level=WARN msg="NETPOLL: accept conn failed: too many open files" component=netpoll`) {
		t.Fatalf("logged %q", got)
	}
}
