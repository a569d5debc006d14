package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gregor/bench"
)

const benchHeader = `usage: gregor bench --workload FILE [flags]

Runs a benchmark workload (YAML, the OpenMessaging Benchmark's fields plus
Gregor's: producer settings, replicationFactor, minInsyncReplicas and a
sweep: of acks, linger.ms, batch.size, compression.type, replicationFactor
and minInsyncReplicas whose cartesian product gives the scenarios) and
writes results/<date>-<workload name>/: summary.json, a .hgrm latency
distribution per scenario, report.md and PNG plots. The report starts with
this machine's limits, measured in the same run.

Without --bootstrap the harness starts an embedded cluster of --brokers
gregor serve processes (this binary) on loopback, with fresh data
directories, and stops it afterwards. With --bootstrap it drives any
Kafka-compatible cluster; its topics are created per scenario and deleted.

While running, a line every 5 s and a final line per scenario go to stderr
in kafka-producer-perf-test's format. Ctrl-C stops the scenario in
progress, stops the embedded brokers and still writes what was measured
(exit 1). A workload error exits 2; an unreachable cluster exits 1 within
--timeout.

Workloads shipped with Gregor are in workloads/ (default.yaml is what
make bench runs).`

// runBench is "gregor bench".
func runBench(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", benchHeader, stderr)
	workload := fs.String("workload", "", "the workload `FILE` (YAML); also accepted as the one argument")
	bootstrap := fs.String("bootstrap", "", "comma-separated `host:port` list of a Kafka-compatible cluster to drive (default: an embedded cluster)")
	brokers := fs.Int("brokers", 1, "number of gregor nodes of the embedded cluster")
	client := fs.String("client", "gregor", "load generator `client`: gregor (Gregor's own client) or franz (franz-go)")
	outDir := fs.String("out", "results", "parent `DIR` of the run's folder <date>-<workload name>")
	profile := fs.String("profile", "", "record profiles during each measured phase: comma-separated `kinds` of cpu, mem, mutex, block, trace (the embedded brokers'), client (this process's CPU: the load generator)")
	timeout := fs.Duration("timeout", 30*time.Second, "bound on reaching the cluster and on each topic operation")
	drainTimeout := fs.Duration("drain-timeout", 30*time.Second, "bound on waiting, after each measured phase, for the last acknowledgements and deliveries")
	dataDir := fs.String("data-dir", "", "`DIR` for the embedded brokers' temporary data and the disk limits (default: the system temporary directory)")
	binary := fs.String("gregor-binary", "", "gregor `executable` for the embedded cluster (default: this binary)")
	limitsTime := fs.Duration("limits-time", time.Second, "how long each machine-limit measurement runs")
	dryRun := fs.Bool("dry-run", false, "check the workload and list its scenarios, then exit")
	var sets keyValueFlag
	fs.Var(&sets, "set", "server.properties `key=value` for the embedded brokers (repeatable)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 1:
		return usagef("unexpected arguments %q", pos[1:])
	case len(pos) == 1 && *workload != "":
		return usagef("workload given twice: --workload %s and %s", *workload, pos[0])
	case len(pos) == 1:
		*workload = pos[0]
	case *workload == "":
		return usagef("--workload is required")
	}
	if *brokers < 1 || *brokers > 9 {
		return usagef("--brokers %d: want 1 to 9", *brokers)
	}
	if *timeout <= 0 || *drainTimeout <= 0 || *limitsTime <= 0 {
		return usagef("--timeout, --drain-timeout and --limits-time must be positive")
	}
	var seeds []string
	if strings.TrimSpace(*bootstrap) != "" {
		if seeds, err = seedBrokers(*bootstrap); err != nil {
			return err
		}
		if *brokers != 1 {
			return usagef("--brokers sizes the embedded cluster; it cannot be used with --bootstrap")
		}
		if len(sets.pairs) > 0 {
			return usagef("--set configures the embedded brokers; it cannot be used with --bootstrap")
		}
	}
	profiles, err := bench.ParseProfiles(*profile)
	if err != nil {
		return usagef("--profile: %v", err)
	}

	w, err := bench.LoadWorkload(*workload)
	if err != nil {
		var we *bench.WorkloadError
		if errors.As(err, &we) {
			return &usageError{err: err}
		}
		return err
	}
	if w.Sweep.Client != nil && flagSet(fs, "client") {
		// Which would apply is a guess; say so rather than ignore one.
		return usagef("--client %s: the workload sweeps the client (%s); drop one of the two", *client, strings.Join(w.Sweep.Client, ", "))
	}
	cfg := bench.Config{
		Workload: w, Bootstrap: seeds, Brokers: *brokers, Client: *client, OutDir: *outDir, Profiles: profiles,
		Timeout: *timeout, DrainTimeout: *drainTimeout, DataDir: *dataDir, LimitsEach: *limitsTime, Progress: stderr,
	}
	for _, kv := range sets.pairs {
		cfg.BrokerProperties = append(cfg.BrokerProperties, kv[0]+"="+kv[1])
	}
	if err := cfg.Check(); err != nil {
		var we *bench.WorkloadError
		if errors.As(err, &we) || errors.Is(err, bench.ErrDriverNotAvailable) {
			return &usageError{err: err}
		}
		return usagef("%v", err)
	}
	if *dryRun {
		scenarios := w.Scenarios()
		fmt.Fprintf(stdout, "workload %s: %d scenario(s), each %v warmup + %v measured\n", w.Name, len(scenarios), w.WarmupDuration, w.TestDuration)
		for _, sc := range scenarios {
			fmt.Fprintf(stdout, "%3d  %s\n", sc.Index, sc.Name)
		}
		return nil
	}
	if len(seeds) == 0 {
		if cfg.GregorBinary, err = gregorBinary(*binary); err != nil {
			return err
		}
	}

	res, err := bench.Run(ctx, cfg)
	if res != nil {
		fmt.Fprintf(stdout, "results in %s: %s\n", res.Dir, describeFiles(res.Files))
	}
	return err
}

// gregorBinary is the executable the embedded cluster runs: --gregor-binary,
// or this very binary, since `gregor bench` is inside the gregor binary. A
// test binary (in-process tests) is refused: it would run tests, not
// brokers.
func gregorBinary(flagValue string) (string, error) {
	if flagValue != "" {
		abs, err := filepath.Abs(flagValue)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(abs); err != nil {
			return "", usagef("--gregor-binary: %v", err)
		}
		return abs, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("locating this binary for the embedded cluster: %w (pass --gregor-binary)", err)
	}
	if strings.HasSuffix(exe, ".test") {
		return "", usagef("running inside a test binary (%s): pass --gregor-binary or --bootstrap", exe)
	}
	return exe, nil
}

// describeFiles summarises the written files by kind.
func describeFiles(files []string) string {
	var hgrm, png, prof int
	var named []string
	for _, f := range files {
		switch {
		case strings.HasSuffix(f, ".hgrm"):
			hgrm++
		case strings.HasSuffix(f, ".png"):
			png++
		case strings.HasSuffix(f, ".pprof"), strings.HasSuffix(f, ".out"):
			prof++
		default:
			named = append(named, f)
		}
	}
	out := strings.Join(named, ", ")
	out += fmt.Sprintf(", %d .hgrm files, %d plots", hgrm, png)
	if prof > 0 {
		out += fmt.Sprintf(", %d profiles", prof)
	}
	return out
}
