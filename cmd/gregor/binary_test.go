package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"gregor/segment"
)

// buildGregor compiles the gregor binary into a temporary directory, once
// per test binary run.
func buildGregor(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the gregor binary")
	}
	bin := filepath.Join(t.TempDir(), "gregor")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// gregorProcess is a `gregor serve` child process.
type gregorProcess struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error
}

func startGregor(t *testing.T, bin, props string) *gregorProcess {
	t.Helper()
	return startProcess(t, exec.Command(bin, "serve", "--config", props))
}

// startProcess starts cmd with its stderr captured, and kills it at the
// end of the test if it is still running.
func startProcess(t *testing.T, cmd *exec.Cmd) *gregorProcess {
	t.Helper()
	p := &gregorProcess{cmd: cmd, stderr: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// kcat runs kcat with args and stdin, bounded by 60 s.
func kcat(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	stdout, stderr, err := kcatOutputs(stdin, args...)
	if err != nil {
		t.Fatalf("kcat %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return stdout
}

// kcatRun runs kcat, bounded to a minute, and returns its standard error
// and how it ended.
func kcatRun(stdin string, args ...string) (stderr string, err error) {
	_, stderr, err = kcatOutputs(stdin, args...)
	return stderr, err
}

func kcatOutputs(stdin string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kcat", args...)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// TestBinaryWithKcatAndKill9 runs the real binary: kcat (librdkafka)
// produces with every codec and consumes everything back; then the broker
// is killed with SIGKILL, restarted on the same data (an unclean start, so
// its logs are recovered), and every acknowledged record is still there.
func TestBinaryWithKcatAndKill9(t *testing.T) {
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Skip("kcat is not installed (.ci/run installs it)")
	}
	bin := buildGregor(t)
	ports := freePorts(t, 3)
	port, cport, aport := ports[0], ports[1], ports[2]
	dir := t.TempDir()
	props := filepath.Join(dir, "server.properties")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	admin := fmt.Sprintf("127.0.0.1:%d", aport)
	conf := fmt.Sprintf(`node.id=1
process.roles=broker,controller
controller.quorum.voters=1@127.0.0.1:%d
listeners=PLAINTEXT://%s,CONTROLLER://127.0.0.1:%d
log.dirs=%s
admin.listener=%s
num.partitions=3
`, cport, addr, cport, filepath.Join(dir, "data"), admin)
	if err := os.WriteFile(props, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startGregor(t, bin, props)
	(&serveRun{done: p.done, stderr: p.stderr}).waitHealthy(t, admin)

	var want []string
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		var lines []string
		for i := range 50 {
			lines = append(lines, fmt.Sprintf("%s-%03d", codec, i))
		}
		// -X topic.request.required.acks=-1 is kcat's default; make it
		// explicit, with the codec for this round.
		kcat(t, strings.Join(lines, "\n")+"\n", "-P", "-b", addr, "-t", "lines", "-z", codec, "-X", "topic.request.required.acks=-1")
		want = append(want, lines...)
	}
	slices.Sort(want)
	consume := func() []string {
		out := kcat(t, "", "-C", "-b", addr, "-t", "lines", "-o", "beginning", "-e", "-q")
		got := strings.Fields(out)
		slices.Sort(got)
		return got
	}
	if got := consume(); !slices.Equal(got, want) {
		t.Fatalf("kcat consumed %d records, want %d", len(got), len(want))
	}

	// Gregor has no transactions: a transactional producer is told so at
	// once (librdkafka takes the answer as fatal) instead of retrying
	// until init_transactions times out.
	start := time.Now()
	out, err := kcatRun("x\n", "-P", "-b", addr, "-t", "lines", "-X", "transactional.id=tx")
	if err == nil || !strings.Contains(out, "Gregor does not support transactions") {
		t.Errorf("transactional kcat producer: err %v after %v, want a failure naming Gregor's lack of transactions; stderr:\n%s", err, time.Since(start), out)
	}

	// SIGKILL: no controlled shutdown, no clean-shutdown marker.
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
	if _, err := os.Stat(filepath.Join(dir, "data", segment.CleanShutdownFileName)); !os.IsNotExist(err) {
		t.Fatalf("clean-shutdown marker after kill -9: %v", err)
	}
	p2 := startGregor(t, bin, props)
	(&serveRun{done: p2.done, stderr: p2.stderr}).waitHealthy(t, admin)
	if got := consume(); !slices.Equal(got, want) {
		t.Fatalf("after kill -9 and restart kcat consumed %d records, want %d\nstderr:\n%s", len(got), len(want), p2.stderr)
	}
	// A clean stop writes the marker.
	if err := p2.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p2.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("gregor did not stop on SIGINT\nstderr:\n%s", p2.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", segment.CleanShutdownFileName)); err != nil {
		t.Fatalf("no clean-shutdown marker after SIGINT: %v", err)
	}
}

// writeNodeProperties writes the server.properties of a combined node on
// free loopback ports, with its data under dir, and returns the file's path
// and the admin listener's address.
func writeNodeProperties(t *testing.T, dir string) (props, admin string) {
	t.Helper()
	ports := freePorts(t, 3)
	admin = fmt.Sprintf("127.0.0.1:%d", ports[2])
	conf := fmt.Sprintf(`node.id=1
process.roles=broker,controller
controller.quorum.voters=1@127.0.0.1:%[2]d
listeners=PLAINTEXT://127.0.0.1:%[1]d,CONTROLLER://127.0.0.1:%[2]d
log.dirs=%[3]s
admin.listener=%[4]s
`, ports[0], ports[1], filepath.Join(dir, "data"), admin)
	props = filepath.Join(dir, "server.properties")
	if err := os.WriteFile(props, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return props, admin
}

// waitExit waits at most 60 s for p to end and returns how it ended.
func (p *gregorProcess) waitExit(t *testing.T, what string) error {
	t.Helper()
	select {
	case err := <-p.done:
		return err
	case <-time.After(60 * time.Second):
		t.Fatalf("gregor did not stop within 60s of %s\nstderr:\n%s", what, p.stderr)
		return nil
	}
}

// TestServeStopsCleanlyOnSIGHUP: a hangup (the terminal or ssh session that
// started the node went away) stops it as SIGTERM does, with a controlled
// shutdown and the clean-shutdown marker, as Kafka's LoggingSignalHandler
// does for TERM, INT and HUP. Under nohup, which starts it with SIGHUP
// ignored, a hangup leaves it running, as it does a Kafka broker.
func TestServeStopsCleanlyOnSIGHUP(t *testing.T) {
	bin := buildGregor(t)
	t.Run("hangup", func(t *testing.T) {
		if signal.Ignored(syscall.SIGHUP) {
			t.Skip("this test runs with SIGHUP ignored (nohup), and so would gregor")
		}
		dir := t.TempDir()
		props, admin := writeNodeProperties(t, dir)
		p := startGregor(t, bin, props)
		(&serveRun{done: p.done, stderr: p.stderr}).waitHealthy(t, admin)
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if err := p.waitExit(t, "SIGHUP"); err != nil {
			t.Fatalf("exit after SIGHUP: %v\nstderr:\n%s", err, p.stderr)
		}
		if _, err := os.Stat(filepath.Join(dir, "data", segment.CleanShutdownFileName)); err != nil {
			t.Errorf("no clean-shutdown marker after SIGHUP: %v\nstderr:\n%s", err, p.stderr)
		}
		if !strings.Contains(p.stderr.String(), `cause="hangup signal received"`) {
			t.Errorf("no shutdown on hangup logged:\n%s", p.stderr)
		}
	})
	t.Run("nohup", func(t *testing.T) {
		nohup, err := exec.LookPath("nohup")
		if err != nil {
			t.Skip("nohup is not installed")
		}
		dir := t.TempDir()
		props, admin := writeNodeProperties(t, dir)
		// nohup execs gregor in its own process, so the pid is gregor's.
		p := startProcess(t, exec.Command(nohup, bin, "serve", "--config", props))
		(&serveRun{done: p.done, stderr: p.stderr}).waitHealthy(t, admin)
		// An ignored signal is discarded when it is sent: once kill
		// returns, the hangup can no longer reach gregor.
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if resp, _ := httpGet(t, "http://"+admin+"/healthz"); resp.StatusCode != 200 {
			t.Fatalf("/healthz after SIGHUP under nohup: %s\nstderr:\n%s", resp.Status, p.stderr)
		}
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := p.waitExit(t, "SIGTERM"); err != nil {
			t.Fatalf("exit after SIGTERM: %v\nstderr:\n%s", err, p.stderr)
		}
		if out := p.stderr.String(); !strings.Contains(out, `cause="terminated signal received"`) {
			t.Errorf("under nohup, SIGHUP then SIGTERM: want a shutdown on SIGTERM only:\n%s", out)
		}
	})
}
