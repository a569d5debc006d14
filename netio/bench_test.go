package netio

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkFetchResponse measures serving a 1 MiB file region per request
// over loopback TCP with sendfile(2) (impl=sendfile), next to the same bytes
// read into memory and written from there (impl=copy), measured in the same
// run: the cost the zero-copy path saves. The copy reuses one buffer, so it
// pays the read(2) and the copy, not an allocation.
func BenchmarkFetchResponse(b *testing.B) {
	const size = 1 << 20
	path := filepath.Join(b.TempDir(), "segment.log")
	if err := os.WriteFile(path, make([]byte, 64<<20), 0o644); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	for _, impl := range []string{"sendfile", "copy"} {
		b.Run("impl="+impl, func(b *testing.B) {
			var next int64
			buf := make([]byte, size) // one client, one request at a time: reusable
			h := HandlerFunc(func(req *Request, respond func(Response)) {
				off := next % (64<<20 - size)
				next += size
				hdr := binary.BigEndian.AppendUint32(nil, size)
				if impl == "sendfile" {
					respond(Response{Parts: []Part{{Bytes: hdr}, {File: f, Offset: off, Length: size}}})
					return
				}
				if _, err := f.ReadAt(buf, off); err != nil {
					b.Error(err)
				}
				respond(Response{Parts: []Part{{Bytes: hdr}, {Bytes: buf}}})
			})
			s, err := NewServer(Config{}, h, Options{Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			go s.Serve(l)
			defer s.Close()
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			req := frame([]byte("fetch"))
			sink := make([]byte, size+4)
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, sink); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// startBench serves h with the named engine on a loopback listener for the
// length of the benchmark.
func startBench(b *testing.B, engine string, cfg Config, h Handler) string {
	b.Helper()
	cfg.Engine = engine
	s, err := New(cfg, h, Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go s.Serve(l)
	b.Cleanup(func() { s.Close() })
	return l.Addr().String()
}

// BenchmarkEngine runs the same workloads on both engines, side by side
// (compare with benchstat, e.g. -col /engine):
//
//   - workload=pipelined: one connection keeps 16 small requests in flight
//     (a sliding window, as a producer with max.in.flight does), each answered
//     at once with a small response: requests/s of framing, ordering and
//     writing.
//   - workload=pipelined-32conns: the same over 32 connections at once.
//   - workload=fetch-1MiB: one connection fetches 1 MiB file regions, one at a
//     time, sent with sendfile(2): zero-copy throughput.
func BenchmarkEngine(b *testing.B) {
	for _, engine := range engines {
		b.Run("engine="+engine, func(b *testing.B) {
			b.Run("workload=pipelined", func(b *testing.B) { benchPipelined(b, engine, 1) })
			b.Run("workload=pipelined-32conns", func(b *testing.B) { benchPipelined(b, engine, 32) })
			b.Run("workload=fetch-1MiB", func(b *testing.B) { benchFetch(b, engine) })
		})
	}
}

func benchPipelined(b *testing.B, engine string, conns int) {
	const payload, window = 60, 16
	resp := frame(make([]byte, payload))
	addr := startBench(b, engine, Config{MaxInFlightPerConnection: window}, HandlerFunc(func(req *Request, respond func(Response)) {
		respond(Response{Parts: []Part{{Bytes: resp}}})
	}))
	cs := make([]net.Conn, conns)
	for i := range cs {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		cs[i] = c
	}
	req := frame(make([]byte, payload))
	batch := bytes.Repeat(req, window)
	b.SetBytes(int64(len(req) + len(resp)))
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	var wg sync.WaitGroup
	for i, c := range cs {
		n := b.N / conns
		if i < b.N%conns {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := pipeline(c, n, window, req, batch, len(resp)); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
}

// pipeline sends n requests on c keeping up to window in flight, writing
// as many as there is room for in one write, and reads the n responses.
func pipeline(c net.Conn, n, window int, req, batch []byte, respLen int) error {
	credits := make(chan int, window)
	errc := make(chan error, 1)
	go func() {
		r := bufio.NewReaderSize(c, 64<<10)
		buf := make([]byte, respLen)
		for i := range n {
			if _, err := io.ReadFull(r, buf); err != nil {
				errc <- err
				return
			}
			if i+window < n {
				credits <- 1
			}
		}
		errc <- nil
	}()
	sent := 0
	room := min(window, n)
	for sent < n {
		k := min(room, n-sent)
		if _, err := c.Write(batch[:k*len(req)]); err != nil {
			return err
		}
		sent += k
		room = 0
		if sent == n {
			break
		}
		room = <-credits
	drain:
		for {
			select {
			case x := <-credits:
				room += x
			default:
				break drain
			}
		}
	}
	return <-errc
}

func benchFetch(b *testing.B, engine string) {
	const size = 1 << 20
	path := filepath.Join(b.TempDir(), "segment.log")
	if err := os.WriteFile(path, make([]byte, 64<<20), 0o644); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var next int64
	hdr := binary.BigEndian.AppendUint32(nil, size)
	addr := startBench(b, engine, Config{}, HandlerFunc(func(req *Request, respond func(Response)) {
		off := next % (64<<20 - size)
		next += size
		respond(Response{Parts: []Part{{Bytes: hdr}, {File: f, Offset: off, Length: size}}})
	}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := frame([]byte("fetch"))
	sink := make([]byte, size+4)
	b.SetBytes(size)
	b.ReportAllocs()
	stop := reportCPU(b)
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, sink); err != nil {
			b.Fatal(err)
		}
	}
	stop()
}

// reportCPU reports the process's CPU time (user and system, all threads)
// per operation, from now until the returned func is called: with the same
// client on both engines, the difference is the server's CPU per request
// (or per MiB for the fetch workload).
func reportCPU(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru unix.Rusage
		unix.Getrusage(unix.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	return func() {
		b.ReportMetric(float64(cpu()-start)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkIdleConnections measures what a flood of idle connections costs
// each engine: 2000 clients connect, send one request, read its answer and
// stay connected, silent. It reports the heap and stack bytes and the
// goroutines held per connection (clients are raw blocking sockets, which
// cost the process nothing, so the figures are the server's). Each iteration
// opens and closes the 2000 connections.
func BenchmarkIdleConnections(b *testing.B) {
	const conns = 2000
	for _, engine := range engines {
		b.Run("engine="+engine, func(b *testing.B) {
			resp := frame([]byte("ok"))
			addr := startBench(b, engine, Config{}, HandlerFunc(func(req *Request, respond func(Response)) {
				respond(Response{Parts: []Part{{Bytes: resp}}})
			}))
			ta, err := net.ResolveTCPAddr("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			sa := &unix.SockaddrInet4{Port: ta.Port}
			copy(sa.Addr[:], ta.IP.To4())
			req := frame([]byte("hello"))
			var heap, stacks, goroutines float64
			for b.Loop() {
				b.StopTimer()
				h0, s0, g0 := memNow()
				b.StartTimer()
				fds := make([]int, 0, conns)
				buf := make([]byte, len(resp))
				for range conns {
					fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
					if err != nil {
						b.Fatal(err)
					}
					fds = append(fds, fd)
					if err := unix.Connect(fd, sa); err != nil {
						b.Fatal(err)
					}
					if _, err := unix.Write(fd, req); err != nil {
						b.Fatal(err)
					}
					for got := 0; got < len(buf); {
						n, err := unix.Read(fd, buf[got:])
						if err != nil || n == 0 {
							b.Fatalf("reading an answer: %d, %v", n, err)
						}
						got += n
					}
				}
				b.StopTimer()
				h1, s1, g1 := memNow()
				heap += float64(h1) - float64(h0)
				stacks += float64(s1) - float64(s0)
				goroutines += float64(g1 - g0)
				for _, fd := range fds {
					unix.Close(fd)
				}
				b.StartTimer()
			}
			b.ReportMetric(heap/float64(b.N)/conns, "heap-B/conn")
			b.ReportMetric(stacks/float64(b.N)/conns, "stack-B/conn")
			b.ReportMetric(goroutines/float64(b.N)/conns, "goroutines/conn")
		})
	}
}

func memNow() (heap, stack uint64, goroutines int) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse, ms.StackInuse, runtime.NumGoroutine()
}

// BenchmarkReadRequestFrame reads a request frame the way the std engine
// does, into a buffer that grows with the bytes (impl=grow), next to reading
// it straight into a buffer of its announced size (impl=whole): the cost of
// not trusting the announced size.
func BenchmarkReadRequestFrame(b *testing.B) {
	for _, size := range []int{64 << 10, 512 << 10, 1 << 20, 4 << 20, 16 << 20} {
		src := make([]byte, size)
		for _, impl := range []string{"whole", "grow"} {
			b.Run(fmt.Sprintf("size=%dKiB/impl=%s", size>>10, impl), func(b *testing.B) {
				b.SetBytes(int64(size))
				b.ReportAllocs()
				r := bytes.NewReader(src)
				for b.Loop() {
					r.Reset(src)
					var frame []byte
					if impl == "whole" {
						frame = newFrame(size)
						if _, err := io.ReadFull(r, frame); err != nil {
							b.Fatal(err)
						}
					} else {
						var err error
						if frame, err = ReadFrame(r, size); err != nil {
							b.Fatal(err)
						}
					}
					releaseFrame(frame)
				}
			})
		}
	}
}
