package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"

	"gregor/netio"
)

// idleConnections is how many silent clients BenchmarkEngines connects to
// the broker at once. The clients' descriptors are this process's and the
// broker's its own; Go raises each process's descriptor limit to its hard
// limit, 20,000 on these machines. The std engine holds one descriptor per
// connection; netpoll holds two (it writes to a dup of every socket, which
// netpoll cannot close under it), so BenchmarkEngines raises the hard limit
// its brokers inherit when it may (a privileged process); otherwise the
// netpoll broker gets as many connections as its limit holds.
const idleConnections = 10000

// brokerFileLimit is the descriptor limit BenchmarkEngines asks for:
// netpoll's two per connection and room for the broker's own files.
const brokerFileLimit = 2*idleConnections + 4096

// BenchmarkEngines runs the broker issue's load through a gregor process
// with each network engine (network.engine): produce and fetch as
// BenchmarkBroker does, what 10,000 idle client connections cost the
// broker's memory, and what floods of oversized or pipelined requests do
// to it (bench_flood_test.go).
func BenchmarkEngines(b *testing.B) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Max < brokerFileLimit {
		// Only a privileged process may raise its hard limit; without
		// it, the netpoll idle run says why it cannot run.
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: brokerFileLimit, Max: brokerFileLimit})
	}
	for _, engine := range []string{netio.EngineStd, netio.EngineNetpoll} {
		extra := "network.engine=" + engine + "\n"
		b.Run("engine="+engine+"/op=produce", func(b *testing.B) {
			benchProduce(b, startBenchBroker(b, extra))
		})
		b.Run("engine="+engine+"/op=fetch", func(b *testing.B) {
			benchFetch(b, startBenchBroker(b, extra), franzFetchAll)
		})
		b.Run("engine="+engine+"/op=fetch-raw", func(b *testing.B) {
			benchFetch(b, startBenchBroker(b, extra), func(b *testing.B, addr, topic string, n int) {
				rawFetchAll(b, addr, topic, n, true)
			})
		})
		b.Run("engine="+engine+"/op=idle-connections", func(b *testing.B) {
			perConn := 1
			if engine == netio.EngineNetpoll {
				perConn = 2
			}
			// A broker of its own per round: a Go process keeps the
			// memory it grew into, so a second round on the same
			// broker would measure reuse.
			benchRound++
			bb := startBenchBroker(b, fmt.Sprintf("%s# round %d\n", extra, benchRound))
			defer bb.stop()
			benchIdleConnections(b, bb, perConn)
		})
		for _, flood := range []struct {
			op  string
			run func(*testing.B, *benchBroker)
		}{{"flood-oversized", benchFloodOversized}, {"flood-pipelined", benchFloodPipelined}, {"flood-pipelined-conns", benchFloodPipelinedConns}} {
			b.Run("engine="+engine+"/op="+flood.op, func(b *testing.B) {
				benchRound++ // a broker of its own per round, as above
				bb := startBenchBroker(b, fmt.Sprintf("%s# round %d\n", extra, benchRound))
				defer bb.stop()
				flood.run(b, bb)
			})
		}
	}
}

// benchIdleConnections opens idleConnections connections to the broker
// (fewer when its descriptor limit cannot hold them),
// each sending ApiVersions, as every client does first, and reading the
// answer, then staying silent; it reports how much the broker's resident
// memory grew per connection while they are open. The clients are raw
// blocking sockets, which cost this process next to nothing.
func benchIdleConnections(b *testing.B, bb *benchBroker, descriptorsPerConn int) {
	// As many as the broker's descriptor limit allows, up to
	// idleConnections, keeping 256 for its own files.
	conns := min(idleConnections, (fileLimit(b, bb.pid)-256)/descriptorsPerConn)
	if conns < idleConnections {
		b.Logf("the broker may open %d descriptors: %d connections at %d each, not %d", fileLimit(b, bb.pid), conns, descriptorsPerConn, idleConnections)
	}
	sa := sockaddr(b, bb.addr)
	req := kmsg.NewPtrApiVersionsRequest()
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("idle")).AppendRequest(nil, req, 1)
	var grew, peak float64
	for b.Loop() {
		b.StopTimer()
		rss0 := procStats(b, bb.pid).RSSBytes
		b.StartTimer()
		fds := make([]int, 0, conns)
		for range conns {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			fds = append(fds, fd)
			if err := connect(fd, sa); err != nil {
				b.Fatalf("connection %d: %v", len(fds), err)
			}
			if _, err := sendAll(fd, frame); err != nil {
				b.Fatal(err)
			}
			if !readAnswer(fd) {
				b.Fatalf("connection %d: the broker closed it before answering", len(fds))
			}
		}
		b.StopTimer()
		rss1 := procStats(b, bb.pid).RSSBytes
		grew += float64(rss1) - float64(rss0)
		peak = max(peak, float64(rss1))
		for _, fd := range fds {
			unix.Close(fd)
		}
		b.StartTimer()
	}
	b.ReportMetric(grew/float64(b.N)/float64(conns), "broker-rss-B/conn")
	b.ReportMetric(float64(conns), "conns")
	b.ReportMetric(peak/(1<<20), "broker-rss-MiB")
}

// readAnswer reads one size-prefixed response from a blocking socket; it
// reports false when the socket ends first.
func readAnswer(fd int) bool {
	var size [4]byte
	return readFull(fd, size[:]) && readFull(fd, make([]byte, binary.BigEndian.Uint32(size[:])))
}

func readFull(fd int, buf []byte) bool {
	for got := 0; got < len(buf); {
		n, err := unix.Read(fd, buf[got:])
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			return false
		}
		got += n
	}
	return true
}

// fileLimit is a process's soft limit on open descriptors, from
// /proc/<pid>/limits.
func fileLimit(b *testing.B, pid int) int {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(raw)) {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			n, err := strconv.Atoi(strings.Fields(rest)[0])
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatalf("no open-files limit in /proc/%d/limits", pid)
	return 0
}
