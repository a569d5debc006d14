package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gregor/bench"
	"gregor/internal/testcluster"
)

// tinyWorkload is the shipped tiny workload: two 2-second scenarios at 500
// records/s.
const tinyWorkload = "../../workloads/tiny.yaml"

// writeWorkload writes a workload file, without OMB's minute of warmup
// unless body gives one.
func writeWorkload(t *testing.T, body string) string {
	t.Helper()
	if !strings.Contains(body, "warmupDuration") {
		body += "warmupDurationSeconds: 0\n"
	}
	p := filepath.Join(t.TempDir(), "w.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBenchUsageErrors(t *testing.T) {
	bad := writeWorkload(t, "name: bad\ntestDurationSeconds: 1\nproducer:\n  acks: 2\n  lingerMs: 5\nsweep:\n  compression.type: []\n")
	rf3 := writeWorkload(t, "name: rf3\ntestDurationSeconds: 1\nreplicationFactor: 3\n")
	clients := writeWorkload(t, "name: clients\ntestDurationSeconds: 1\nsweep:\n  client: [franz, gregor]\n")
	tests := []struct {
		name      string
		args      []string
		code      int
		stderrHas []string
	}{
		{"no workload", []string{"bench"}, 2, []string{"--workload is required"}},
		{"two workloads", []string{"bench", "--workload", tinyWorkload, "other.yaml"}, 2, []string{"workload given twice"}},
		{"missing file", []string{"bench", "--workload", "nope.yaml"}, 1, []string{"nope.yaml", "no such file"}},
		{"bad workload names fields and values", []string{"bench", "--workload", bad}, 2, []string{
			"gregor bench: " + bad + ": line 4: producer.acks: \"2\"", "producer.lingerMs: unknown setting", "sweep.compression.type: empty list"}},
		{"replication factor above the embedded cluster", []string{"bench", "--workload", rf3}, 2, []string{"replicationFactor: 3 is more than the 1 broker(s)"}},
		{"unknown client", []string{"bench", "--workload", tinyWorkload, "--client", "sarama"}, 2, []string{`client "sarama": unknown`}},
		{"client flag and client sweep", []string{"bench", "--workload", clients, "--client", "franz"}, 2, []string{"--client franz", "sweeps the client (franz, gregor)"}},
		{"profile with bootstrap", []string{"bench", "--workload", tinyWorkload, "--bootstrap", "127.0.0.1:1", "--profile", "cpu"}, 2, []string{"embedded brokers"}},
		{"bad profile", []string{"bench", "--workload", tinyWorkload, "--profile", "cpu,heap"}, 2, []string{`--profile: profile "heap"`}},
		{"brokers with bootstrap", []string{"bench", "--workload", tinyWorkload, "--bootstrap", "127.0.0.1:1", "--brokers", "3"}, 2, []string{"--brokers"}},
		{"set with bootstrap", []string{"bench", "--workload", tinyWorkload, "--bootstrap", "127.0.0.1:1", "--set", "a=b"}, 2, []string{"--set"}},
		{"zero brokers", []string{"bench", "--workload", tinyWorkload, "--brokers", "0"}, 2, []string{"--brokers 0"}},
		{"embedded inside a test binary", []string{"bench", "--workload", tinyWorkload, "--out", t.TempDir()}, 2, []string{"test binary", "--gregor-binary"}},
		{"help", []string{"bench", "-h"}, 0, []string{"usage: gregor bench", "--workload", "--bootstrap", "--brokers", "--client", "--profile", "--out"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := gregor(t, "", tt.args...).want(t, tt.code)
			for _, want := range tt.stderrHas {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr %q\ndoes not contain %q", r.stderr, want)
				}
			}
		})
	}
}

func TestBenchDryRun(t *testing.T) {
	r := gregor(t, "", "bench", "--dry-run", "../../workloads/default.yaml").want(t, 0)
	if !strings.Contains(r.stdout, "workload default: 27 scenario(s)") || !strings.Contains(r.stdout, " 27  acks=all compression.type=zstd linger.ms=20") {
		t.Errorf("stdout:\n%s", r.stdout)
	}
}

func TestBenchUnreachableCluster(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	start := time.Now()
	r := gregor(t, "", "bench", "--workload", tinyWorkload, "--bootstrap", addr, "--timeout", "1s", "--out", t.TempDir()).want(t, 1)
	if !strings.Contains(r.stderr, "gregor bench: cannot reach the cluster at "+addr) {
		t.Errorf("stderr %q", r.stderr)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("took %v despite --timeout 1s", d)
	}
}

// checkRunDir checks every file of a finished run: summary.json unmarshals
// with every scenario measured, each .hgrm parses, each PNG decodes, and
// report.md has its sections and tables.
func checkRunDir(t *testing.T, dir string, scenarios int) *bench.Summary {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s bench.Summary
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("summary.json: %v", err)
	}
	if len(s.Scenarios) != scenarios || s.Limits == nil || s.Limits.LoopbackTCPMiBps <= 0 {
		t.Fatalf("summary: %d scenarios, limits %+v", len(s.Scenarios), s.Limits)
	}
	for _, sc := range s.Scenarios {
		if !sc.OK() || sc.ProduceLatency.Count == 0 || sc.EndToEndLatency.Count == 0 || sc.ProduceRecordsPerSec <= 0 {
			t.Errorf("scenario %d %s: %+v", sc.Index, sc.Name, sc)
		}
		if len(sc.HgrmFiles) != 2 {
			t.Errorf("scenario %d: hgrm files %q", sc.Index, sc.HgrmFiles)
		}
		for _, f := range sc.HgrmFiles {
			fh, err := os.Open(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			h, err := bench.ParseHgrm(fh)
			fh.Close()
			if err != nil {
				t.Errorf("%s: %v", f, err)
			} else if h.TotalCount == 0 || len(h.Rows) == 0 {
				t.Errorf("%s: empty distribution", f)
			}
		}
	}
	pngs, _ := filepath.Glob(filepath.Join(dir, "*.png"))
	if len(pngs) != 4 {
		t.Errorf("plots %q, want 4", pngs)
	}
	for _, p := range pngs {
		fh, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(fh); err != nil {
			t.Errorf("%s: %v", p, err)
		}
		fh.Close()
	}
	report, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Machine limits (measured in this run)", "| one TCP stream over loopback", "## Results",
		"| # | acks | produce rec/s |", "## Best settings", "## What each setting change cost", "| acks | 1 | all | 1 |"} {
		if !strings.Contains(string(report), want) {
			t.Errorf("report.md lacks %q:\n%s", want, report)
		}
	}
	return &s
}

// TestBenchAgainstTestcluster runs `gregor bench --bootstrap` in-process
// against an in-process Gregor broker.
func TestBenchAgainstTestcluster(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	out := t.TempDir()
	r := gregor(t, "", "bench", "--workload", tinyWorkload, "--bootstrap", c.Bootstrap(), "--out", out, "--limits-time", "100ms")
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	dir := filepath.Join(out, time.Now().UTC().Format("2006-01-02")+"-tiny")
	if !strings.Contains(r.stdout, "results in "+dir) {
		t.Errorf("stdout %q", r.stdout)
	}
	if n := strings.Count(r.stderr, " ms 50th, "); n != 2 {
		t.Errorf("%d final lines in stderr:\n%s", n, r.stderr)
	}
	s := checkRunDir(t, dir, 2)
	if s.Target.Embedded || len(s.Scenarios[0].Brokers) != 0 {
		t.Errorf("target %+v: a --bootstrap run has no broker processes to measure", s.Target)
	}
}

// gregorBin builds the gregor binary once per test binary, shared with the
// benchmarks (bench_test.go's TestMain removes it).
func gregorBin(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the gregor binary")
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
		t.Fatal(benchBinErr)
	}
	return benchBin
}

// TestBenchEmbeddedBinary runs the real binary's `gregor bench` with the
// tiny workload: it starts its own gregor serve process (itself), measures
// and stops it, leaving no data behind.
func TestBenchEmbeddedBinary(t *testing.T) {
	bin := gregorBin(t)
	out, data := t.TempDir(), t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "bench", "--workload", tinyWorkload, "--out", out, "--data-dir", data, "--limits-time", "100ms",
		"--profile", "cpu,mem")
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	dir := filepath.Join(out, time.Now().UTC().Format("2006-01-02")+"-tiny")
	s := checkRunDir(t, dir, 2)
	if !s.Target.Embedded || s.Target.Brokers != 1 {
		t.Errorf("target %+v", s.Target)
	}
	for _, sc := range s.Scenarios {
		if len(sc.Brokers) != 1 || sc.BrokerPeakRSSBytes <= 0 || sc.BrokerCPUSeconds < 0 {
			t.Errorf("scenario %d broker figures %+v", sc.Index, sc.Brokers)
		}
	}
	// Profiles come from the broker's /debug/pprof, gzipped protobuf.
	for _, sc := range s.Scenarios {
		if len(sc.ProfileFiles) != 2 {
			t.Errorf("scenario %d profiles %q, want cpu and heap", sc.Index, sc.ProfileFiles)
		}
		for _, f := range sc.ProfileFiles {
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
				t.Errorf("%s: not a pprof profile (%v)", f, err)
			}
		}
	}
	if left, _ := os.ReadDir(data); len(left) != 0 {
		t.Errorf("the embedded cluster left %v in --data-dir", left)
	}
}

// TestBenchEmbeddedInterrupt: SIGINT in the middle of a scenario stops the
// brokers, writes what was measured, and exits 1.
func TestBenchEmbeddedInterrupt(t *testing.T) {
	bin := gregorBin(t)
	long := writeWorkload(t, "name: long\npartitionsPerTopic: 2\nmessageSize: 128\nproducerRate: 500\ntestDurationSeconds: 60\nsweep:\n  acks: [1, all]\n")
	out, data := t.TempDir(), t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "bench", "--workload", long, "--out", out, "--data-dir", data, "--limits-time", "100ms")
	stderrPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Read stderr until the first scenario has started, then interrupt
	// it a second later (a timer, bounded by ctx).
	started := make(chan struct{})
	var log syncBuffer
	go func() {
		sc := bufio.NewScanner(stderrPipe)
		once := false
		for sc.Scan() {
			fmt.Fprintln(&log, sc.Text())
			if !once && strings.HasPrefix(sc.Text(), "scenario 1/2") {
				once = true
				close(started)
			}
		}
		io.Copy(io.Discard, stderrPipe)
	}()
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatalf("the first scenario did not start\n%s", log.String())
	}
	timer := time.NewTimer(time.Second)
	<-timer.C
	start := time.Now()
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v\n%s", err, log.String())
	}
	if d := time.Since(start); d > 45*time.Second {
		t.Errorf("took %v to stop after SIGINT", d)
	}
	if !strings.Contains(log.String(), "interrupted") {
		t.Errorf("stderr does not say it was interrupted:\n%s", log.String())
	}
	s, err := bench.ReadSummary(filepath.Join(out, time.Now().UTC().Format("2006-01-02")+"-long", "summary.json"))
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if !s.Interrupted || len(s.Scenarios) != 1 || !s.Scenarios[0].Interrupted || s.Scenarios[0].ProduceLatency.Count == 0 {
		t.Errorf("summary: interrupted %v, scenarios %+v", s.Interrupted, s.Scenarios)
	}
	for _, b := range s.Scenarios[0].Brokers {
		if err := syscall.Kill(b.PID, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("broker process %d still exists after the harness exited (%v)", b.PID, err)
		}
	}
	if left, _ := os.ReadDir(data); len(left) != 0 {
		t.Errorf("the embedded cluster left %v in --data-dir", left)
	}
}
