package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"gregor/segment"
)

// syncBuffer is a bytes.Buffer the node's goroutines may log to while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// freePorts returns n loopback ports that were free a moment ago. Another
// process could take one before the node binds it; on a test machine that is
// rare enough, and a clash fails loudly.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// serveRun is one in-process "gregor serve".
type serveRun struct {
	cancel context.CancelFunc
	done   chan error
	stderr *syncBuffer
}

func startServe(t *testing.T, args ...string) *serveRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &serveRun{cancel: cancel, done: make(chan error, 1), stderr: &syncBuffer{}}
	go func() { s.done <- runServe(ctx, args, io.Discard, s.stderr) }()
	t.Cleanup(func() {
		// A failed test must not leave a node running into the next one.
		cancel()
		select {
		case <-s.done:
		case <-time.After(60 * time.Second):
			t.Error("serve did not stop within 60s")
		}
	})
	return s
}

// stop cancels the run (as SIGINT does) and returns its error, failing the
// test if it takes longer than a controlled shutdown may.
func (s *serveRun) stop(t *testing.T) error {
	t.Helper()
	s.cancel()
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		return err
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not stop within 60s\nstderr:\n%s", s.stderr)
		return nil
	}
}

// waitHealthy polls /healthz until it answers 200, for at most 30 s.
func (s *serveRun) waitHealthy(t *testing.T, admin string) {
	t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case err := <-s.done:
			t.Fatalf("serve returned %v before it was healthy\nstderr:\n%s", err, s.stderr)
		case <-deadline.C:
			t.Fatalf("not healthy after 30s\nstderr:\n%s", s.stderr)
		case <-tick.C:
			resp, err := client.Get("http://" + admin + "/healthz")
			if err != nil {
				continue // not listening yet
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("/healthz: %s", resp.Status)
			}
		}
	}
}

func httpGet(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func consumeValues(t *testing.T, addr, topic string, n int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var values []string
	for len(values) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records: %v", len(values), n, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s-%d: %v", topic, p, err) })
		for _, r := range fs.Records() {
			values = append(values, string(r.Value))
		}
	}
	return values
}

// TestServeEndToEnd runs "gregor serve" from a server.properties, produces
// and consumes with franz-go, scrapes the admin endpoints, stops it as a
// signal would, and starts it again on the same data.
func TestServeEndToEnd(t *testing.T) {
	ports := freePorts(t, 3)
	port, cport, aport := ports[0], ports[1], ports[2]
	dir := t.TempDir()
	logDir := filepath.Join(dir, "logs")
	props := fmt.Sprintf(`# a combined node on loopback
node.id=1
process.roles=broker,controller
controller.quorum.voters=1@127.0.0.1:%[2]d
listeners=PLAINTEXT://127.0.0.1:%[1]d,CONTROLLER://127.0.0.1:%[2]d
log.dirs=%[4]s
admin.listener=127.0.0.1:%[3]d
# Kafka keys with no meaning here are accepted with a warning
num.io.threads=8
`, port, cport, aport, logDir)
	configPath := filepath.Join(dir, "server.properties")
	if err := os.WriteFile(configPath, []byte(props), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	admin := net.JoinHostPort("127.0.0.1", strconv.Itoa(aport))
	const topic = "serve-e2e"
	var want []string
	for i := range 10 {
		want = append(want, fmt.Sprintf("record-%d", i))
	}

	// First run: a fresh data dir.
	s := startServe(t, "--config", configPath, "--set", "broker.heartbeat.interval.ms=500")
	s.waitHealthy(t, admin)
	if logs := s.stderr.String(); !strings.Contains(logs, "num.io.threads") || !strings.Contains(logs, "msg=ready") ||
		!strings.Contains(logs, "client="+addr) || !strings.Contains(logs, "admin="+admin) {
		t.Errorf("missing the ignored-key warning or the ready line:\n%s", logs)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	for _, v := range want {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", v, err)
		}
	}
	cancel()
	cl.Close()
	if got := consumeValues(t, addr, topic, len(want)); !slices.Equal(got, want) {
		t.Errorf("consumed %q, want %q", got, want)
	}

	resp, metrics := httpGet(t, "http://"+admin+"/metrics")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/plain; version=0.0.4" {
		t.Errorf("/metrics: %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	for _, m := range []string{`gregor_requests_total{api="Produce"}`, `gregor_sent_bytes_total{path="sendfile"}`} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics lacks %s:\n%s", m, metrics)
		}
	}
	if strings.Contains(metrics, `gregor_sent_bytes_total{path="sendfile"} 0`+"\n") {
		t.Errorf("the fetches sent nothing by sendfile:\n%s", metrics)
	}
	if resp, body := httpGet(t, "http://"+admin+"/debug/pprof/"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/: %s\n%s", resp.Status, body)
	}
	if resp, _ := httpGet(t, "http://"+admin+"/debug/pprof/heap"); resp.StatusCode != http.StatusOK {
		t.Errorf("/debug/pprof/heap: %s", resp.Status)
	}

	if err := s.stop(t); err != nil {
		t.Fatalf("serve: %v\nstderr:\n%s", err, s.stderr)
	}
	if _, err := os.Stat(filepath.Join(logDir, segment.CleanShutdownFileName)); err != nil {
		t.Errorf("no clean-shutdown marker after stopping: %v\nstderr:\n%s", err, s.stderr)
	}
	if _, err := net.DialTimeout("tcp", admin, time.Second); err == nil {
		t.Error("the admin port still accepts connections after serve returned")
	}

	// Second run on the same data, logging JSON: the records survive.
	s = startServe(t, "--config", configPath, "--set", "broker.heartbeat.interval.ms=500", "--log-format", "json")
	s.waitHealthy(t, admin)
	if got := consumeValues(t, addr, topic, len(want)); !slices.Equal(got, want) {
		t.Errorf("after a restart consumed %q, want %q", got, want)
	}
	if err := s.stop(t); err != nil {
		t.Fatalf("serve: %v\nstderr:\n%s", err, s.stderr)
	}
	for line := range strings.Lines(s.stderr.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("--log-format json wrote a line that is not JSON: %q", line)
		}
	}
}

func TestServeConfigErrors(t *testing.T) {
	err := runServe(t.Context(), []string{"--set", "bogus.key=1", "--set", "num.partitions=0"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "bogus.key") || !strings.Contains(err.Error(), `num.partitions="0"`) {
		t.Errorf("err = %v, want it to name bogus.key and num.partitions", err)
	}
	// Through run: a configuration error is a failure (1), each problem
	// on a line of its own.
	r := gregor(t, "", "serve", "--set", "bogus.key=1", "--set", "num.partitions=0").want(t, 1)
	if !strings.Contains(r.stderr, "gregor serve: unknown keys (misspelled, or not supported by Gregor): bogus.key\n") ||
		!strings.Contains(r.stderr, `gregor serve: num.partitions="0": want at least 1`) {
		t.Errorf("stderr:\n%s", r.stderr)
	}
	// A missing file names itself.
	r = gregor(t, "", "serve", "--config", filepath.Join(t.TempDir(), "nope.properties")).want(t, 1)
	if !strings.Contains(r.stderr, "nope.properties") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
}

func TestServeUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--nope"},
		{"serve", "--log-level", "loud"},
		{"serve", "--log-format", "xml"},
		{"serve", "--set", "no-equals-sign"},
		{"serve", "a.properties", "b.properties"},
		{"serve", "--config", "a.properties", "b.properties"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := gregor(t, "", args...).want(t, 2)
			if r.stderr == "" {
				t.Error("nothing on stderr")
			}
		})
	}
	r := gregor(t, "", "help", "serve").want(t, 0)
	if !strings.Contains(r.stdout, "log.retention.check.interval.ms") || !strings.Contains(r.stdout, "--log-format") {
		t.Errorf("help lacks the keys or the flags:\n%s", r.stdout)
	}
}

// TestServeStartFailures: a port in use fails the start with exit code 1,
// and the admin port is checked before any data is touched.
func TestServeStartFailures(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	ports := freePorts(t, 3)
	listeners := fmt.Sprintf("listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", ports[0], ports[1])

	dir := t.TempDir()
	r := gregor(t, "", "serve", "--set", listeners, "--set", "log.dirs="+dir, "--set", "admin.listener="+busy.Addr().String()).want(t, 1)
	if !strings.Contains(r.stderr, "admin.listener") || !strings.Contains(r.stderr, "address already in use") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Errorf("the data dir was touched: %v", entries)
	}

	listeners = fmt.Sprintf("listeners=PLAINTEXT://%s,CONTROLLER://127.0.0.1:%d", busy.Addr(), ports[1])
	r = gregor(t, "", "serve", "--set", listeners, "--set", "log.dirs="+dir, "--set", fmt.Sprintf("admin.listener=127.0.0.1:%d", ports[2])).want(t, 1)
	if !strings.Contains(r.stderr, busy.Addr().String()) || !strings.Contains(r.stderr, "address already in use") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
}

// TestServeExitsWhenTheBrokerStopsServing: when the broker stops serving on
// its own (its client or controller listener stops accepting connections,
// closed under it here), serve does not stay up with /healthz at 200: it
// logs why, stops the node cleanly and returns an error (exit code 1).
func TestServeExitsWhenTheBrokerStopsServing(t *testing.T) {
	for _, which := range []string{"client", "controller"} {
		t.Run(which, func(t *testing.T) {
			dir := t.TempDir()
			var lns [2]net.Listener
			for i := range lns {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				lns[i] = ln
			}
			admin := fmt.Sprintf("127.0.0.1:%d", freePorts(t, 1)[0])
			cfg, _, err := brokerConfig(map[string]string{
				"listeners":      fmt.Sprintf("PLAINTEXT://%s,CONTROLLER://%s", lns[0].Addr(), lns[1].Addr()),
				"log.dirs":       dir,
				"admin.listener": admin,
			})
			if err != nil {
				t.Fatal(err)
			}
			cfg.clientListener, cfg.controllerListener = lns[0], lns[1]
			ctx, cancel := context.WithCancel(context.Background())
			s := &serveRun{cancel: cancel, done: make(chan error, 1), stderr: &syncBuffer{}}
			go func() { s.done <- serve(ctx, cfg, slog.New(slog.NewTextHandler(s.stderr, nil))) }()
			t.Cleanup(func() { s.stop(t) })
			s.waitHealthy(t, admin)

			ln := lns[0]
			if which == "controller" {
				ln = lns[1]
			}
			ln.Close()
			var err2 error
			select {
			case err2 = <-s.done:
				s.done <- err2 // for the cleanup
			case <-time.After(60 * time.Second):
				t.Fatalf("serve still running 60s after its %s listener was closed\nstderr:\n%s", which, s.stderr)
			}
			if err2 == nil || !strings.Contains(err2.Error(), "the broker stopped serving: "+which+" listener stopped") {
				t.Errorf("serve returned %v", err2)
			}
			if !strings.Contains(s.stderr.String(), `msg="shutting down: the broker stopped serving"`) {
				t.Errorf("no log line says why serve stopped:\n%s", s.stderr)
			}
			if _, err := os.Stat(filepath.Join(dir, segment.CleanShutdownFileName)); err != nil {
				t.Errorf("no clean-shutdown marker: %v", err)
			}
		})
	}
}

// TestServeCancelledBeforeStart: a signal that arrives before the node
// starts ends serve at once, having bound nothing.
func TestServeCancelledBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	dir := t.TempDir()
	if err := runServe(ctx, []string{"--set", "log.dirs=" + dir, "--set", "admin.listener=none"}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Errorf("the data dir was touched: %v", entries)
	}
}

func TestHealthHandler(t *testing.T) {
	ready := make(chan struct{})
	var stopping atomic.Bool
	h := healthHandler(ready, &stopping)
	check := func(want int, body string) {
		t.Helper()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/healthz", nil))
		if w.Code != want || !strings.Contains(w.Body.String(), body) {
			t.Errorf("got %d %q, want %d %q", w.Code, w.Body.String(), want, body)
		}
	}
	check(http.StatusServiceUnavailable, "starting")
	close(ready)
	check(http.StatusOK, "ok")
	stopping.Store(true)
	check(http.StatusServiceUnavailable, "shutting down")
}

func TestRaftLogWriter(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w := raftLogWriter{logger}
	io.WriteString(w, "2025-01-02T03:04:05.678Z [WARN]  raft: heartbeat timeout reached: last-leader-addr= last-leader-id=\n")
	io.WriteString(w, "2025-01-02T03:04:05.679Z [ERROR] raft: failed to contact: id=2\n\n")
	var recs []map[string]any
	for line := range strings.Lines(buf.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	if len(recs) != 2 || recs[0]["level"] != "WARN" || recs[0]["msg"] != "raft: heartbeat timeout reached: last-leader-addr= last-leader-id=" ||
		recs[1]["level"] != "ERROR" || recs[1]["msg"] != "raft: failed to contact: id=2" {
		t.Errorf("records %v", recs)
	}
}
