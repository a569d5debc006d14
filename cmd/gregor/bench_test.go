package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/batch"
	"gregor/bench"
	"gregor/client"
)

// The broker benchmarks of the load: 1 KiB records, 16 partitions,
// acks=1, linger 5 ms, batches up to 1 MiB, franz-go as the client, the
// broker a separate `gregor serve` process. Beside them, in the same run,
// the machine's limits that bound them: one loopback TCP stream, and
// appending to a file in the page cache, into fresh and into reused memory.
// Figures go in the README; nothing here asserts a speed.

const (
	benchRecordSize = 1024
	benchPartitions = 16
)

// BenchmarkLimits measures the machine: what produce and fetch through a
// broker can at best approach.
func BenchmarkLimits(b *testing.B) {
	chunk := make([]byte, 1<<20)
	b.Run("limit=loopback-tcp", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		done := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				done <- err
				return
			}
			defer c.Close()
			_, err = io.Copy(io.Discard, c)
			done <- err
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(chunk)))
		for b.Loop() {
			if _, err := c.Write(chunk); err != nil {
				b.Fatal(err)
			}
		}
		c.Close()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	})
	// Appending to a new file takes page-cache pages the kernel must find
	// and the hypervisor back, which costs far more than rewriting a region
	// of pages in the cache already. The fresh files of every round are kept
	// until the process ends, as a broker's data is kept across the rounds
	// of its benchmark, so that no round writes into pages an earlier round
	// freed.
	b.Run("limit=append-fresh", func(b *testing.B) {
		dir := freshDir(b)
		// The files stay until the process ends: stop a -benchtime that
		// would take more than half the free space rather than fill the
		// disk.
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil {
			b.Fatal(err)
		}
		budget := int64(st.Bavail) * st.Bsize / 2
		f, err := os.CreateTemp(dir, "fresh")
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		b.SetBytes(int64(len(chunk)))
		var written int64
		for b.Loop() {
			if written += int64(len(chunk)); written > budget {
				b.Fatalf("stopped after %d bytes: more would take over half the free space in %s; lower -benchtime", written-int64(len(chunk)), dir)
			}
			if _, err := f.Write(chunk); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("limit=append-reused", func(b *testing.B) {
		f, err := os.Create(filepath.Join(b.TempDir(), "reused"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		const region = 64 << 20
		for off := int64(0); off < region; off += int64(len(chunk)) {
			if _, err := f.WriteAt(chunk, off); err != nil {
				b.Fatal(err)
			}
		}
		var off int64
		b.SetBytes(int64(len(chunk)))
		for b.Loop() {
			if _, err := f.WriteAt(chunk, off); err != nil {
				b.Fatal(err)
			}
			off = (off + int64(len(chunk))) % region
		}
	})
}

// benchBroker is a gregor process shared by the rounds of one benchmark.
type benchBroker struct {
	settings string // the extra properties it was started with
	addr     string
	pid      int
	cmd      *exec.Cmd
	dir      string
}

var (
	freshDirOnce sync.Once
	freshDirPath string
	freshDirErr  error

	benchBinOnce sync.Once
	benchBin     string
	benchBinErr  error
	benchBrokers sync.Map // settings -> *benchBroker
)

// TestMain stops the gregor processes the benchmarks started, once every
// benchmark has run: rounds of one benchmark share a process.
func TestMain(m *testing.M) {
	code := m.Run()
	benchBrokers.Range(func(_, v any) bool {
		v.(*benchBroker).stop()
		return true
	})
	if benchBin != "" {
		os.RemoveAll(filepath.Dir(benchBin))
	}
	if freshDirPath != "" {
		os.RemoveAll(freshDirPath)
	}
	os.Exit(code)
}

// freshDir is the directory of the fresh-append files, removed by TestMain.
func freshDir(b *testing.B) string {
	b.Helper()
	freshDirOnce.Do(func() { freshDirPath, freshDirErr = os.MkdirTemp("", "gregor-bench-fresh") })
	if freshDirErr != nil {
		b.Fatal(freshDirErr)
	}
	return freshDirPath
}

// stop ends the broker's process, removes its data and forgets it.
func (bb *benchBroker) stop() {
	bb.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { bb.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		bb.cmd.Process.Kill()
		<-done
	}
	os.RemoveAll(bb.dir)
	benchBrokers.Delete(bb.settings)
}

// startBenchBroker starts (once per settings string) a gregor process with
// extra properties; it stops when the benchmark binary exits.
func startBenchBroker(b *testing.B, extra string) *benchBroker {
	b.Helper()
	if v, ok := benchBrokers.Load(extra); ok {
		return v.(*benchBroker)
	}
	benchBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gregor-bench-bin")
		if err != nil {
			benchBinErr = err
			return
		}
		benchBin = filepath.Join(dir, "gregor")
		out, err := exec.Command("go", "build", "-o", benchBin, ".").CombinedOutput()
		if err != nil {
			benchBinErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if benchBinErr != nil {
		b.Fatal(benchBinErr)
	}
	ports := freePorts(b, 3)
	dir, err := os.MkdirTemp("", "gregor-bench-data")
	if err != nil {
		b.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	admin := fmt.Sprintf("127.0.0.1:%d", ports[2])
	conf := fmt.Sprintf("node.id=1\nprocess.roles=broker,controller\ncontroller.quorum.voters=1@127.0.0.1:%d\n"+
		"listeners=PLAINTEXT://%s,CONTROLLER://127.0.0.1:%d\nlog.dirs=%s\nadmin.listener=%s\n%s",
		ports[1], addr, ports[1], filepath.Join(dir, "data"), admin, extra)
	props := filepath.Join(dir, "server.properties")
	if err := os.WriteFile(props, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(benchBin, "serve", "--config", props, "--log-level", "warn")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	bb := &benchBroker{settings: extra, addr: addr, pid: cmd.Process.Pid, cmd: cmd, dir: dir}
	if err := waitHealthyURL("http://"+admin+"/healthz", 30*time.Second); err != nil {
		cmd.Process.Kill()
		b.Fatalf("gregor not healthy: %v\n%s", err, stderr.String())
	}
	benchBrokers.Store(extra, bb)
	return bb
}

// selfCPUSeconds is the user+system CPU time of this process: the client's
// side of the load.
func selfCPUSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// procStats reads a process's CPU time and memory from /proc.
func procStats(b *testing.B, pid int) bench.ProcStats {
	b.Helper()
	ps, err := bench.ReadProcStats(pid)
	if err != nil {
		b.Fatal(err)
	}
	return ps
}

// cpuSeconds is the user+system CPU time a process has used.
func cpuSeconds(b *testing.B, pid int) float64 { return procStats(b, pid).CPUSeconds }

func benchProducer(b *testing.B, addr string) *kgo.Client {
	b.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(),
		kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(1<<16),
		// franz-go compresses with snappy by default; the load is plain
		// bytes, so that the figures are the broker's, not a codec's.
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		// Kafka's producers keep up to five requests in flight
		// (max.in.flight.requests.per.connection), as gregor bench
		// does; franz-go keeps one unless told otherwise when
		// idempotence is off.
		kgo.MaxProduceRequestsInflightPerBroker(5),
		kgo.AllowAutoTopicCreation())
	if err != nil {
		b.Fatal(err)
	}
	return cl
}

// produceN produces n 1 KiB records of random bytes round-robin over the
// partitions.
func produceN(b *testing.B, cl *kgo.Client, topic string, n int) {
	b.Helper()
	value := make([]byte, benchRecordSize)
	rand.Read(value)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var firstErr error
	var mu sync.Mutex
	for i := range n {
		cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: int32(i % benchPartitions), Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	if firstErr != nil {
		b.Fatal(firstErr)
	}
}

func createBenchTopic(b *testing.B, addr, topic string) {
	b.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, benchPartitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		b.Fatal(err)
	}
}

// waitHealthyURL polls a /healthz URL until it answers 200 or timeout passes.
func waitHealthyURL(url string, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-deadline.C:
			return fmt.Errorf("%s not healthy after %v", url, timeout)
		case <-tick.C:
			resp, err := client.Get(url)
			if err != nil {
				continue
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
}

var benchRound int

// BenchmarkBroker measures produce and fetch through a gregor process, and
// the broker's CPU seconds per GB fetched with sendfile and with the copy
// path (fetch.sendfile.enable=false). Produce and fetch through franz-go's
// in-memory fake cluster (kfake) are the peer figures for the same client
// and load.
func BenchmarkBroker(b *testing.B) {
	b.Run("op=produce/target=gregor", func(b *testing.B) {
		benchProduce(b, startBenchBroker(b, ""))
	})
	b.Run("op=produce/target=kfake", func(b *testing.B) {
		addr, topic := startKfake(b, "produce")
		cl := benchProducer(b, addr)
		defer cl.Close()
		b.SetBytes(benchRecordSize)
		b.ResetTimer()
		produceN(b, cl, topic, b.N)
	})
	b.Run("op=fetch/target=kfake", func(b *testing.B) {
		addr, topic := startKfake(b, "fetch")
		prod := benchProducer(b, addr)
		produceN(b, prod, topic, b.N)
		prod.Close()
		b.SetBytes(benchRecordSize)
		b.ResetTimer()
		franzFetchAll(b, addr, topic, b.N)
	})
	for _, sendfile := range []bool{true, false} {
		b.Run(fmt.Sprintf("op=fetch/sendfile=%v", sendfile), func(b *testing.B) {
			benchFetch(b, startBenchBroker(b, fmt.Sprintf("fetch.sendfile.enable=%v\n", sendfile)), franzFetchAll)
		})
	}
	b.Run("op=fetch/consumers=2", func(b *testing.B) {
		benchFetch(b, startBenchBroker(b, "fetch.sendfile.enable=true\n"), func(b *testing.B, addr, topic string, n int) {
			franzFetchParallel(b, addr, topic, n, franzFetch{consumers: 2})
		})
	})
	b.Run("op=fetch-gregor/sendfile=true", func(b *testing.B) {
		benchFetch(b, startBenchBroker(b, "fetch.sendfile.enable=true\n"), gregorFetchAll)
	})
	for _, read := range []string{"whole", "stream"} {
		b.Run("op=fetch-raw/read="+read, func(b *testing.B) {
			benchFetch(b, startBenchBroker(b, "fetch.sendfile.enable=true\n"), func(b *testing.B, addr, topic string, n int) {
				rawFetchAll(b, addr, topic, n, read == "stream")
			})
		})
	}
}

// BenchmarkFetchTuning measures what franz-go's own knobs do for its
// consumer on the fetch load of BenchmarkBroker (op=fetch/sendfile=true):
// smaller fetches, whose responses fit the CPU's last-level cache (32 MiB
// here) where a 64 MiB one does not, and franz-go's record pools
// (kgo.WithPools, Record.Recycle), which decode into reused records. Not
// part of make bench-broker; the README quotes a run of it.
func BenchmarkFetchTuning(b *testing.B) {
	for _, ff := range []franzFetch{
		{consumers: 1},
		{consumers: 1, pooled: true},
		{consumers: 1, maxBytes: 16 << 20, partitionBytes: 1 << 20},
		{consumers: 1, maxBytes: 16 << 20, partitionBytes: 1 << 20, pooled: true},
	} {
		ff = ff.withDefaults()
		b.Run(fmt.Sprintf("max=%dMiB/partition=%dMiB/pooled=%v", ff.maxBytes>>20, ff.partitionBytes>>20, ff.pooled), func(b *testing.B) {
			benchFetch(b, startBenchBroker(b, "fetch.sendfile.enable=true\n"), func(b *testing.B, addr, topic string, n int) {
				franzFetchParallel(b, addr, topic, n, ff)
			})
		})
	}
}

// startKfake starts a one-broker kfake cluster holding a new topic of the
// benchmark's partitions, closed when the benchmark ends.
func startKfake(b *testing.B, prefix string) (addr, topic string) {
	benchRound++
	topic = fmt.Sprintf("%s-%d", prefix, benchRound)
	fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(benchPartitions, topic))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(fake.Close)
	return fake.ListenAddrs()[0], topic
}

// benchProduce produces b.N records into a new topic on bb and reports
// both processes' CPU seconds per GB.
func benchProduce(b *testing.B, bb *benchBroker) {
	benchRound++
	topic := fmt.Sprintf("produce-%d", benchRound)
	createBenchTopic(b, bb.addr, topic)
	cl := benchProducer(b, bb.addr)
	defer cl.Close()
	b.SetBytes(benchRecordSize)
	cpu0, self0 := cpuSeconds(b, bb.pid), selfCPUSeconds()
	b.ResetTimer()
	produceN(b, cl, topic, b.N)
	b.StopTimer()
	reportCPU(b, bb, cpu0, self0)
}

// benchFetch produces b.N records into a new topic on bb, untimed, then
// times fetching them all with fetchAll and reports both processes' CPU
// seconds per GB.
func benchFetch(b *testing.B, bb *benchBroker, fetchAll func(b *testing.B, addr, topic string, n int)) {
	benchRound++
	topic := fmt.Sprintf("fetch-%d", benchRound)
	createBenchTopic(b, bb.addr, topic)
	prod := benchProducer(b, bb.addr)
	produceN(b, prod, topic, b.N)
	prod.Close()
	// Collect the producer's garbage now, so that the consumer's
	// figures do not pay for it.
	runtime.GC()
	b.SetBytes(benchRecordSize)
	cpu0, self0 := cpuSeconds(b, bb.pid), selfCPUSeconds()
	b.ResetTimer()
	fetchAll(b, bb.addr, topic, b.N)
	b.StopTimer()
	reportCPU(b, bb, cpu0, self0)
}

func reportCPU(b *testing.B, bb *benchBroker, cpu0, self0 float64) {
	gb := float64(b.N) * benchRecordSize / 1e9
	b.ReportMetric((cpuSeconds(b, bb.pid)-cpu0)/gb, "broker-cpu-s/GB")
	b.ReportMetric((selfCPUSeconds()-self0)/gb, "client-cpu-s/GB")
}

// franzFetchAll consumes n records of topic from the start with franz-go's
// consumer.
func franzFetchAll(b *testing.B, addr, topic string, n int) {
	franzFetchParallel(b, addr, topic, n, franzFetch{consumers: 1})
}

// franzFetchParallel consumes n records of topic from the start with
// ff.consumers franz-go clients, each reading its share of the partitions
// (partition p goes to client p mod consumers) on a connection of its own,
// fetching as ff says.
// franz-go keeps one fetch in flight per broker, so one client's transfers
// and decoding take turns; several clients let one decode while another's
// response is on the wire, and show whether the cores, rather than the
// turn-taking, bound the rate.
func franzFetchParallel(b *testing.B, addr, topic string, n int, ff franzFetch) {
	ff = ff.withDefaults()
	consumers := ff.consumers
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var (
		got      atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err })
		cancel()
	}
	for i := range consumers {
		parts := make(map[int32]kgo.Offset)
		for p := int32(i); p < benchPartitions; p += int32(consumers) {
			parts[p] = kgo.NewOffset().AtStart()
		}
		opts := []kgo.Opt{kgo.SeedBrokers(addr),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
			kgo.FetchMaxBytes(ff.maxBytes), kgo.FetchMaxPartitionBytes(ff.partitionBytes)}
		if ff.pooled {
			opts = append(opts, kgo.WithPools(new(recordPool)))
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for got.Load() < int64(n) {
				fs := cl.PollFetches(ctx)
				if err := ctx.Err(); err != nil {
					fail(err)
					return
				}
				fs.EachError(func(t string, p int32, err error) { fail(fmt.Errorf("fetch %s-%d: %w", t, p, err)) })
				nrec := fs.NumRecords()
				if ff.pooled {
					fs.EachRecord((*kgo.Record).Recycle)
				}
				if got.Add(int64(nrec)) >= int64(n) {
					// Wake the other clients' PollFetches.
					cancel()
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil && got.Load() < int64(n) {
		b.Fatal(firstErr)
	}
}

// franzFetch is how franzFetchParallel's clients fetch.
type franzFetch struct {
	consumers                int
	maxBytes, partitionBytes int32
	pooled                   bool // decode into pooled records, recycled once counted
}

func (f franzFetch) withDefaults() franzFetch {
	if f.maxBytes == 0 {
		f.maxBytes, f.partitionBytes = 64<<20, 8<<20
	}
	return f
}

// recordPool is a kgo.PoolRecords: franz-go decodes each fetched batch into
// a slice it takes from here, and puts it back once every record of it has
// been recycled.
type recordPool struct{ p sync.Pool }

func (rp *recordPool) GetRecords(n int) []kgo.Record {
	if s, ok := rp.p.Get().(*[]kgo.Record); ok && cap(*s) >= n {
		return (*s)[:0]
	}
	return make([]kgo.Record, 0, n)
}

func (rp *recordPool) PutRecords(s []kgo.Record) { rp.p.Put(&s) }

// gregorFetchAll consumes n records of topic's partitions from the start
// with Gregor's own consumer, fetch sizes as franzFetchAll's.
func gregorFetchAll(b *testing.B, addr, topic string, n int) {
	cfg := client.DefaultConsumerConfig()
	cfg.BootstrapServers = []string{addr}
	cfg.FetchMaxBytes, cfg.MaxPartitionFetchBytes = 64<<20, 8<<20
	cfg.MaxPollRecords = 10000
	cfg.AutoOffsetReset = "earliest"
	c, err := client.NewConsumer(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var tps []client.TopicPartition
	for p := range int32(benchPartitions) {
		tps = append(tps, client.TopicPartition{Topic: topic, Partition: p})
	}
	c.Assign(tps)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for got := 0; got < n; {
		recs, err := c.Poll(ctx)
		if err != nil {
			b.Fatal(err)
		}
		got += len(recs)
	}
}

// rawFetchAll reads n records from topic's partitions with plain Fetch v12
// requests on one connection, one in flight as a consumer has, each
// response read into one reused buffer, walking the record batches'
// headers to advance but never decoding a record: what the broker serves
// when the client costs next to nothing. franz-go's consumer, besides
// decoding every record, reads each response into a new buffer, and on
// this VM memory the process has not touched lately costs more to fill
// than to copy.
//
// With stream set, each response is read through a 1 MiB buffer as it
// arrives (streamFetchResponse) instead of whole.
func rawFetchAll(b *testing.B, addr, topic string, n int, stream bool) {
	b.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Minute))
	fmtr := kmsg.NewRequestFormatter(kmsg.FormatterClientID("gregor-bench"))
	offsets := make([]int64, benchPartitions)
	var wbuf, rbuf []byte
	var br *bufio.Reader
	if stream {
		br = bufio.NewReaderSize(conn, 1<<20)
	}
	for corr, got := int32(1), 0; got < n; corr++ {
		req := kmsg.NewPtrFetchRequest()
		req.SetVersion(12) // topics by name; v13 would need the topic id
		req.ReplicaID, req.MaxWaitMillis, req.MinBytes = -1, 500, 1
		req.MaxBytes, req.SessionEpoch = 64<<20, -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		for p, off := range offsets {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = int32(p), off, 8<<20
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		wbuf = fmtr.AppendRequest(wbuf[:0], req, corr)
		if _, err := conn.Write(wbuf); err != nil {
			b.Fatal(err)
		}
		if br != nil {
			recs, err := streamFetchResponse(br, corr, offsets)
			if err != nil {
				b.Fatalf("fetch %s: %v", topic, err)
			}
			got += recs
			continue
		}
		var size [4]byte
		if _, err := io.ReadFull(conn, size[:]); err != nil {
			b.Fatal(err)
		}
		sz := int(binary.BigEndian.Uint32(size[:]))
		if cap(rbuf) < sz {
			rbuf = make([]byte, sz)
		}
		body := rbuf[:sz]
		if _, err := io.ReadFull(conn, body); err != nil {
			b.Fatal(err)
		}
		if got := int32(binary.BigEndian.Uint32(body)); got != corr {
			b.Fatalf("correlation id %d, want %d", got, corr)
		}
		r := kbin.Reader{Src: body[4:]}
		kmsg.SkipTags(&r) // the flexible response header's tagged fields
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		if err := resp.UnsafeReadFrom(r.Src); err != nil {
			b.Fatal(err)
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					b.Fatalf("fetch %s-%d: %v", topic, p.Partition, err)
				}
				it := batch.NewIter(p.RecordBatches)
				for h, ok := it.Next(); ok; h, ok = it.Next() {
					got += int(h.NextOffset() - max(h.BaseOffset(), offsets[p.Partition]))
					offsets[p.Partition] = h.NextOffset()
				}
			}
		}
	}
}

// streamFetchResponse reads one Fetch v12 response from br as it arrives,
// never holding more of it than br's buffer: the fixed fields are read,
// each record batch's header is peeked to advance offsets, and the rest of
// the batch is discarded through the buffer. A consumer that processes a
// response in pieces touches only memory that stays in the CPU's cache,
// where reading a whole response into one buffer writes every byte out to
// memory first. It returns how many records the response carried past
// offsets, which it advances.
func streamFetchResponse(br *bufio.Reader, corr int32, offsets []int64) (int, error) {
	var fixed [8]byte
	read := func(n int) ([]byte, error) {
		_, err := io.ReadFull(br, fixed[:n])
		return fixed[:n], err
	}
	skip := func(n int) error {
		_, err := br.Discard(n)
		return err
	}
	skipTags := func() error {
		n, err := binary.ReadUvarint(br)
		for ; err == nil && n > 0; n-- {
			var size uint64
			if _, err = binary.ReadUvarint(br); err == nil {
				if size, err = binary.ReadUvarint(br); err == nil {
					err = skip(int(size))
				}
			}
		}
		return err
	}
	// size, correlation id, header tags, then throttle (4), error (2),
	// session id (4).
	if b, err := read(8); err != nil {
		return 0, err
	} else if got := int32(binary.BigEndian.Uint32(b[4:])); got != corr {
		return 0, fmt.Errorf("correlation id %d, want %d", got, corr)
	}
	if err := skipTags(); err != nil {
		return 0, err
	}
	if b, err := read(6); err != nil {
		return 0, err
	} else if code := int16(binary.BigEndian.Uint16(b[4:])); code != 0 {
		return 0, kerr.ErrorForCode(code)
	}
	if err := skip(4); err != nil {
		return 0, err
	}
	records := 0
	topics, err := binary.ReadUvarint(br)
	for t := uint64(1); err == nil && t < topics; t++ {
		var nameLen, parts uint64
		if nameLen, err = binary.ReadUvarint(br); err == nil {
			err = skip(int(nameLen) - 1)
		}
		if err == nil {
			parts, err = binary.ReadUvarint(br)
		}
		for p := uint64(1); err == nil && p < parts; p++ {
			var b []byte
			if b, err = read(6); err != nil {
				break
			}
			partition := int32(binary.BigEndian.Uint32(b))
			if code := int16(binary.BigEndian.Uint16(b[4:])); code != 0 {
				return 0, fmt.Errorf("partition %d: %w", partition, kerr.ErrorForCode(code))
			}
			// high watermark, last stable offset, log start offset
			if err = skip(24); err != nil {
				break
			}
			var aborted, size uint64
			if aborted, err = binary.ReadUvarint(br); err == nil && aborted > 1 {
				err = fmt.Errorf("partition %d: aborted transactions in a benchmark topic", partition)
			}
			if err == nil {
				err = skip(4) // preferred read replica
			}
			if err == nil {
				size, err = binary.ReadUvarint(br)
			}
			for left := int(size) - 1; err == nil && left > 0; {
				if left < batch.HeaderSize {
					err = skip(left) // a batch cut at max_bytes
					break
				}
				var hdr []byte
				if hdr, err = br.Peek(batch.HeaderSize); err != nil {
					break
				}
				h := batch.Header(hdr)
				n := 12 + int(h.BatchLength())
				if n > left {
					err = skip(left)
					break
				}
				records += int(h.NextOffset() - max(h.BaseOffset(), offsets[partition]))
				offsets[partition] = h.NextOffset()
				err = skip(n)
				left -= n
			}
			if err == nil {
				err = skipTags() // the partition's
			}
		}
		if err == nil {
			err = skipTags() // the topic's
		}
	}
	if err == nil {
		err = skipTags() // the response's
	}
	return records, err
}
