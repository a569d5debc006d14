// Command gregor is the single binary of the Gregor project: the broker
// (gregor serve) and the console tools used next to it (topic, group,
// produce, consume) and the benchmark harness (bench). The tools speak only the Kafka protocol, through franz-go, so they
// work against any Kafka-compatible cluster, not only Gregor.
//
// Only this package reads flags, environment variables and config files
// (DESIGN.md §1); everything below it takes Config structs.
//
// Exit codes: 0 success, 1 failure, 2 usage error (bad flags or arguments),
// the convention of the Go tools and of most Unix commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
)

// version is the release this binary was built from, stamped at link time
// with -ldflags "-X main.version=v1.2.3". When it is empty the module's build
// information is used instead, so `go install` builds still say something.
var version string

// command is one subcommand of gregor.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

// commands lists the subcommands in the order the usage text shows them.
// It is a function rather than a package variable so that the "help"
// entry can refer back to run without an initialization cycle.
func commands() []command {
	return []command{
		{"serve", "run a broker (and controller)", func(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
			return runServe(ctx, args, stdout, stderr)
		}},
		{"topic", "create, list, describe or delete topics", runTopic},
		{"group", "list, describe or delete consumer groups; delete or reset their offsets", runGroup},
		{"produce", "write lines from stdin to a topic, one record per line", runProduce},
		{"consume", "print a topic's records, one per line", runConsume},
		{"bench", "run a benchmark workload and write its results", runBench},
		{"version", "print the version of this binary", runVersion},
		{"help", "show help for gregor or one of its commands", nil},
	}
}

func lookupCommand(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return &c
		}
	}
	return nil
}

func main() {
	// The root context ends on SIGINT, SIGTERM or SIGHUP (the terminal or
	// ssh session went away), the signals Kafka's LoggingSignalHandler
	// shuts down cleanly on, so that every subcommand can stop cleanly: the
	// broker closes its logs, a producer reports which records were not
	// delivered. A second signal is left to the default handler (stop
	// restores it), so an impatient Ctrl-C still kills a process whose
	// shutdown is stuck.
	ctx, stop := signal.NotifyContext(context.Background(), shutdownSignals()...)
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// shutdownSignals are the signals that stop a command cleanly. SIGHUP is
// left alone when the process started with it ignored (nohup), as the JVM
// leaves it for Kafka: catching it would undo what nohup asked for.
func shutdownSignals() []os.Signal {
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	return sigs
}

// run dispatches args (without the program name) to a subcommand and returns
// the process exit code. It does no process-global work (no os.Exit, no
// signal handling, no os.Std* access) so tests can call it in-process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stderr)
		return 2
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(rest) == 0 {
			printUsage(stdout)
			return 0
		}
		if len(rest) > 1 || lookupCommand(rest[0]) == nil || rest[0] == "help" {
			fmt.Fprintf(stderr, "gregor help: unknown command %q\n\n", strings.Join(rest, " "))
			printUsage(stderr)
			return 2
		}
		// Help that was asked for goes to stdout, so it can be paged.
		return run(ctx, []string{rest[0], "-h"}, stdin, stdout, stdout)
	}
	cmd := lookupCommand(name)
	if cmd == nil {
		fmt.Fprintf(stderr, "gregor: unknown command %q\n\n", name)
		printUsage(stderr)
		return 2
	}
	return exitCode(name, cmd.run(ctx, rest, stdin, stdout, stderr), stderr)
}

func printUsage(w io.Writer) {
	var b strings.Builder
	b.WriteString("gregor: a Kafka-compatible streaming log, its console tools and benchmarks.\n\n")
	b.WriteString("Usage:\n  gregor <command> [flags] [arguments]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-9s %s\n", c.name, c.summary)
	}
	b.WriteString("\nRun 'gregor help <command>' or 'gregor <command> -h' for a command's flags.\n")
	io.WriteString(w, b.String())
}

// exitCode turns a subcommand's error into an exit code, printing it unless
// the flag package already has.
func exitCode(name string, err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ue *usageError
	if errors.As(err, &ue) {
		if !ue.shown {
			printError(stderr, name, err)
			fmt.Fprintf(stderr, "Run 'gregor help %s' for usage.\n", name)
		}
		return 2
	}
	printError(stderr, name, err)
	return 1
}

// printError prefixes every line of err with the command name, so that
// joined errors (one per topic, say) each say where they come from.
func printError(w io.Writer, name string, err error) {
	for line := range strings.SplitSeq(err.Error(), "\n") {
		fmt.Fprintf(w, "gregor %s: %s\n", name, line)
	}
}

// usageError marks an error as the caller's mistake (exit code 2) rather
// than a failure of the operation (exit code 1).
type usageError struct {
	err error
	// shown is set when the flag package has already printed the error and
	// the usage text, so run must not print it a second time.
	shown bool
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usagef returns a usage error (exit code 2) with a formatted message.
func usagef(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// newFlagSet returns a FlagSet whose usage text is the given header
// followed by the flag defaults. Errors are returned, never os.Exit-ed, so
// that run stays callable from tests.
func newFlagSet(name, header string, output io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(output)
	fs.Usage = func() {
		w := fs.Output()
		io.WriteString(w, strings.TrimRight(header, "\n")+"\n")
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			io.WriteString(w, "\nFlags:\n")
			printDefaults(w, fs)
		}
	}
	return fs
}

// printDefaults is FlagSet.PrintDefaults with flags shown as "--name":
// both forms work, and the double dash is what users of Kafka's tools type
// and what this binary's messages say.
func printDefaults(w io.Writer, fs *flag.FlagSet) {
	var b strings.Builder
	out := fs.Output()
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(out)
	for line := range strings.SplitAfterSeq(b.String(), "\n") {
		if strings.HasPrefix(line, "  -") {
			line = "  --" + line[len("  -"):]
		}
		io.WriteString(w, line)
	}
}

// parseFlags parses args with fs and returns the positional arguments.
// Unlike FlagSet.Parse it accepts flags after positional arguments
// ("gregor topic create t1 --partitions 3"), because that is how people type
// admin commands; "--" still ends flag parsing. Parse errors come back as a
// *usageError (already printed by the flag package), and -h as flag.ErrHelp.
// flagSet reports whether the command line gave the flag name, rather than
// leaving it at its default.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{err: err, shown: true}
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

func runVersion(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "usage: gregor version\n\nPrints the version of this binary and the Go release it was built with.", stderr)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected arguments %q", pos)
	}
	fmt.Fprintf(stdout, "gregor %s %s %s/%s\n", buildVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

// buildVersion prefers the link-time version, then the module version and
// VCS revision recorded by the go command.
func buildVersion() string {
	if version != "" {
		return version
	}
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " " + s.Value[:12]
			}
		}
	}
	return v
}
