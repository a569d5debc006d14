package netio

import (
	"bytes"
	"encoding/binary"
	"log"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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
		for deadline := time.Now().Add(20 * time.Second); inUse(e) != 0; {
			if time.Now().After(deadline) {
				t.Fatalf("%d queue tokens in use after every request was answered", inUse(e))
			}
			runtime.Gosched()
		}
	})
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
