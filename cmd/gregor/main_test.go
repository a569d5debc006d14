package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

// result is what one in-process invocation of gregor produced.
type result struct {
	code           int
	stdout, stderr string
}

// gregor runs the command line args in-process with stdin as input. Every
// run is bounded, so a hang shows up as a failure rather than a stuck test.
func gregor(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, strings.NewReader(stdin), &stdout, &stderr)
	if ctx.Err() != nil {
		t.Fatalf("gregor %q did not finish in time", args)
	}
	return result{code, stdout.String(), stderr.String()}
}

func (r result) want(t *testing.T, code int) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	return r
}

func TestRunDispatch(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		code       int
		stdoutHas  string
		stderrHas  string
		stderrNone string // must not appear in stderr
	}{
		{name: "no arguments", args: nil, code: 2, stderrHas: "Commands:"},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, stderrHas: `unknown command "frobnicate"`},
		{name: "help", args: []string{"help"}, code: 0, stdoutHas: "Commands:"},
		{name: "-h", args: []string{"-h"}, code: 0, stdoutHas: "consume"},
		{name: "--help", args: []string{"--help"}, code: 0, stdoutHas: "produce"},
		{name: "help for a command goes to stdout", args: []string{"help", "produce"}, code: 0, stdoutHas: "--key-separator"},
		{name: "help topic", args: []string{"help", "topic"}, code: 0, stdoutHas: "gregor topic create"},
		{name: "help for an unknown command", args: []string{"help", "nope"}, code: 2, stderrHas: "unknown command"},
		{name: "command -h", args: []string{"consume", "-h"}, code: 0, stderrHas: "--from-beginning"},
		{name: "topic subcommand -h", args: []string{"topic", "create", "-h"}, code: 0, stderrHas: "--replication-factor"},
		{name: "version", args: []string{"version"}, code: 0, stdoutHas: "gregor "},
		{name: "version with arguments", args: []string{"version", "x"}, code: 2, stderrHas: "unexpected arguments"},
		{
			name: "undefined flag is reported once, with usage", args: []string{"produce", "--nope"}, code: 2,
			stderrHas: "flag provided but not defined: -nope", stderrNone: "gregor produce: flag provided",
		},
		{name: "missing required flag", args: []string{"produce"}, code: 2, stderrHas: "gregor produce: --topic is required"},
		{name: "bad acks", args: []string{"produce", "--topic", "t", "--acks", "2"}, code: 2, stderrHas: "--acks"},
		{name: "bad compression", args: []string{"produce", "--topic", "t", "--compression", "brotli"}, code: 2, stderrHas: "--compression"},
		{name: "empty bootstrap", args: []string{"produce", "--topic", "t", "--bootstrap", " , "}, code: 2, stderrHas: "--bootstrap"},
		{name: "consume offset conflict", args: []string{"consume", "--topic", "t", "--from-beginning", "--offset", "3"}, code: 2, stderrHas: "mutually exclusive"},
		{name: "topic without subcommand", args: []string{"topic"}, code: 2, stderrHas: "usage: gregor topic"},
		{name: "topic unknown subcommand", args: []string{"topic", "rename"}, code: 2, stderrHas: `unknown subcommand "rename"`},
		{name: "topic create without names", args: []string{"topic", "create"}, code: 2, stderrHas: "no topic names"},
		{name: "topic create zero partitions", args: []string{"topic", "create", "t", "--partitions", "0"}, code: 2, stderrHas: "--partitions"},
		{name: "topic create bad config", args: []string{"topic", "create", "t", "--config", "retention.ms"}, code: 2, stderrHas: "not key=value"},
		{name: "topic delete without names", args: []string{"topic", "delete"}, code: 2, stderrHas: "no topic names"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := gregor(t, "", tt.args...).want(t, tt.code)
			if !strings.Contains(r.stdout, tt.stdoutHas) {
				t.Errorf("stdout %q does not contain %q", r.stdout, tt.stdoutHas)
			}
			if !strings.Contains(r.stderr, tt.stderrHas) {
				t.Errorf("stderr %q does not contain %q", r.stderr, tt.stderrHas)
			}
			if tt.stderrNone != "" && strings.Contains(r.stderr, tt.stderrNone) {
				t.Errorf("stderr %q contains %q", r.stderr, tt.stderrNone)
			}
		})
	}
}

// TestUsageListsEveryCommand keeps the usage text and the dispatch table in
// step.
func TestUsageListsEveryCommand(t *testing.T) {
	var b bytes.Buffer
	printUsage(&b)
	for _, c := range commands() {
		if !strings.Contains(b.String(), "  "+c.name+" ") {
			t.Errorf("usage does not list %q:\n%s", c.name, b.String())
		}
	}
	for _, name := range []string{"serve", "topic", "produce", "consume", "version", "help"} {
		if lookupCommand(name) == nil {
			t.Errorf("no command %q", name)
		}
	}
}

func TestParseFlagsInterspersed(t *testing.T) {
	tests := []struct {
		args    []string
		wantPos []string
		wantN   int
	}{
		{[]string{"a", "-n", "3", "b"}, []string{"a", "b"}, 3},
		{[]string{"-n", "3", "a", "b"}, []string{"a", "b"}, 3},
		{[]string{"a", "b", "--n=4"}, []string{"a", "b"}, 4},
		{[]string{"a", "--", "-n", "5"}, []string{"a", "-n", "5"}, 0},
		{[]string{"--", "--"}, []string{"--"}, 0},
		{nil, nil, 0},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		n := fs.Int("n", 0, "")
		pos, err := parseFlags(fs, tt.args)
		if err != nil {
			t.Fatalf("parseFlags(%q): %v", tt.args, err)
		}
		if !slices.Equal(pos, tt.wantPos) || *n != tt.wantN {
			t.Errorf("parseFlags(%q) = %q, n=%d; want %q, n=%d", tt.args, pos, *n, tt.wantPos, tt.wantN)
		}
	}
}

// deadAddr is a loopback address where nothing listens: connections to it
// are refused.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestUnreachableClusterFails checks that a dead bootstrap address ends in
// exit code 1 within --timeout instead of retrying forever.
func TestUnreachableClusterFails(t *testing.T) {
	addr := deadAddr(t)

	start := time.Now()
	r := gregor(t, "", "topic", "list", "--bootstrap", addr, "--timeout", "300ms").want(t, 1)
	if !strings.Contains(r.stderr, "gregor topic: list:") {
		t.Errorf("stderr = %q", r.stderr)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v despite --timeout 300ms", d)
	}
}

// TestCancelledContextStopsCommands stands in for SIGINT: run gets an already
// cancelled context, as every subcommand does after a signal.
func TestCancelledContextStopsCommands(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var stdout, stderr bytes.Buffer
	// Consume treats a cancel as the normal way to stop.
	if code := run(ctx, []string{"consume", "--topic", "t", "--bootstrap", "127.0.0.1:1"}, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Errorf("consume after cancel: exit %d, stderr %q", code, stderr.String())
	}
	stderr.Reset()
	// Produce says the input was not all sent.
	if code := run(ctx, []string{"produce", "--topic", "t", "--bootstrap", "127.0.0.1:1"}, strings.NewReader("a\nb\n"), &stdout, &stderr); code != 1 {
		t.Errorf("produce after cancel: exit %d, stderr %q", code, stderr.String())
	}
}
