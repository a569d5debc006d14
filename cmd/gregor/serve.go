package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"gregor/broker"
)

// adminShutdownTimeout bounds how long the admin server waits for requests
// in flight (a scrape, a CPU profile) once the broker has stopped; after it
// their connections are closed.
const adminShutdownTimeout = 5 * time.Second

// prometheusContentType is the text exposition format's content type.
const prometheusContentType = "text/plain; version=0.0.4"

func serveHeader() string {
	var b strings.Builder
	b.WriteString(`usage: gregor serve [--config server.properties] [--set key=value ...]

Runs a Gregor node: a broker and, with process.roles=broker,controller (the
default), a voter of the metadata quorum. Settings are Kafka's
server.properties keys, read from --config (or the one argument, as Kafka's
kafka-server-start.sh takes it) with every --set applied over them. With no
settings at all it runs a single-node development cluster: clients on
127.0.0.1:9092, the controller on 127.0.0.1:9093, data in ./data.

The admin server (admin.listener, default 127.0.0.1:9094; "none" disables it)
serves /metrics (Prometheus), /healthz (200 once the broker is registered and
unfenced, 503 before and while stopping) and /debug/pprof/.

listeners needs one client listener and one controller listener
(controller.listener.names, default CONTROLLER), both PLAINTEXT, on
broker-only nodes too: their raft non-voter receives the metadata log there.

SIGINT, SIGTERM or SIGHUP (unless started under nohup) stops the node
cleanly: a controlled shutdown moves its partition leaderships away, and the
logs are closed with a clean-shutdown marker so the next start skips
recovery. A second signal kills it. A node that stops serving on its own
(a listener or its quorum member stopped) shuts down too, and exits 1.

Keys understood:
`)
	line := " "
	for _, k := range serveConfigKeys() {
		if len(line)+1+len(k) > 78 {
			b.WriteString(line + "\n")
			line = " "
		}
		line += " " + k
	}
	b.WriteString(line + "\n")
	return b.String()
}

// runServe is "gregor serve". It returns when ctx ends (main cancels it on
// SIGINT, SIGTERM or SIGHUP) and the node has stopped, when the node cannot
// start, or, with an error, when it stops serving on its own.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	_ = stdout // everything serve says is a log record, on stderr
	fs := newFlagSet("serve", serveHeader(), stderr)
	configPath := fs.String("config", "", "read settings from `FILE`, in Kafka's server.properties format")
	var sets keyValueFlag
	fs.Var(&sets, "set", "set `key=value` over the file's settings (repeatable; the last wins)")
	fs.Var(&sets, "override", "the same as --set `key=value`, as Kafka's kafka-server-start.sh spells it")
	logLevel := fs.String("log-level", "info", "least severe log records written: debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "log record format on stderr: text (key=value) or json")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 1:
		return usagef("unexpected arguments %q", pos[1:])
	case len(pos) == 1 && *configPath != "":
		return usagef("config file given twice: --config %s and %s", *configPath, pos[0])
	case len(pos) == 1:
		*configPath = pos[0]
	}
	logger, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}

	props, err := loadConfig(*configPath, &sets)
	if err != nil {
		return err
	}
	cfg, warnings, err := brokerConfig(props)
	for _, w := range warnings {
		logger.Warn(w)
	}
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		// A signal during start-up: starting a node only to stop it
		// would still take a controlled shutdown.
		logger.Info("interrupted before start", "cause", context.Cause(ctx))
		return nil
	}
	logger.Info("starting gregor", "version", buildVersion(), "go", runtime.Version(), "config", *configPath,
		"node.id", cfg.broker.NodeID, "process.roles", cfg.broker.Quorum.Roles)
	return serve(ctx, cfg, logger)
}

// newLogger returns the structured logger every part of the node writes to.
// Levels and formats are checked here, as usage errors: a typo in
// --log-level should not start a broker that logs nothing.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lv = slog.LevelDebug
	case "info":
		lv = slog.LevelInfo
	case "warn", "warning":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		return nil, usagef("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("--log-format %q: want text or json", format)
}

// serve runs the node until ctx ends, or until the broker stops serving on
// its own (then with an error, so that the exit status tells). The admin port is bound before the
// broker starts so that a port conflict fails before any data directory is
// touched.
func serve(ctx context.Context, cfg serveConfig, logger *slog.Logger) error {
	var adminLn net.Listener
	if cfg.adminListener != "" {
		var err error
		if adminLn, err = net.Listen("tcp", cfg.adminListener); err != nil {
			return fmt.Errorf("admin.listener: %w", err)
		}
	}
	b, err := broker.Start(cfg.broker, broker.Options{Logger: logger, RaftLog: raftLogWriter{logger.With("component", "raft")},
		ClientListener: cfg.clientListener, ControllerListener: cfg.controllerListener})
	if err != nil {
		if adminLn != nil {
			adminLn.Close()
		}
		return err
	}

	var stopping atomic.Bool
	var srv *http.Server
	var httpErr chan error // nil, never ready, without an admin server
	adminAddr := "disabled"
	if adminLn != nil {
		adminAddr = adminLn.Addr().String()
		srv = &http.Server{
			Handler: adminHandler(b, healthHandler(b.Ready(), &stopping)),
			// No WriteTimeout: /debug/pprof/profile?seconds=N answers
			// after N seconds, and pprof refuses N beyond it.
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(logger.With("component", "admin").Handler(), slog.LevelWarn),
		}
		httpErr = make(chan error, 1)
		go func() { httpErr <- srv.Serve(adminLn) }()
	}

	var runErr error
	ready := b.Ready()
wait:
	for {
		select {
		case <-ready:
			client := "none (controller only)"
			if a := b.Addr(); a != nil {
				client = a.String()
			}
			logger.Info("ready", "client", client, "admin", adminAddr, "node.id", b.NodeID())
			ready = nil
		case err := <-httpErr:
			runErr = fmt.Errorf("admin server on %s stopped: %w", adminAddr, err)
			httpErr = nil
			break wait
		case <-b.Failed():
			// A node that no longer serves must not look healthy to
			// whatever supervises it: it stops, and exits non-zero.
			runErr = fmt.Errorf("the broker stopped serving: %w", b.Err())
			logger.Error("shutting down: the broker stopped serving", "err", b.Err())
			break wait
		case <-ctx.Done():
			logger.Info("shutting down", "cause", context.Cause(ctx))
			break wait
		}
	}

	// Health checks fail from here on, so that a load balancer stops
	// sending clients while leadership moves away.
	stopping.Store(true)
	closeErr := b.Close()
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), adminShutdownTimeout)
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
		cancel()
		if httpErr != nil {
			<-httpErr // Serve has returned ErrServerClosed
		}
	}
	if closeErr != nil {
		closeErr = fmt.Errorf("stopping the broker: %w", closeErr)
		logger.Error("stopped with errors", "err", closeErr)
	} else {
		logger.Info("stopped")
	}
	return errors.Join(runErr, closeErr)
}

// adminHandler serves the admin endpoints on a mux of its own: importing
// net/http/pprof also registers it on http.DefaultServeMux, which this
// server does not use, so nothing else can add handlers to the admin port.
func adminHandler(b *broker.Broker, health http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		// Render first, so that the response has a length and a scrape
		// never sees half of a page.
		var buf bytes.Buffer
		b.WritePrometheus(&buf)
		w.Header().Set("Content-Type", prometheusContentType)
		w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
		w.Write(buf.Bytes())
	})
	mux.Handle("GET /healthz", health)
	mux.HandleFunc("/debug/pprof/", pprof.Index) // also the named profiles: heap, goroutine, ...
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "gregor admin\n\n/metrics        Prometheus metrics\n/healthz        200 when serving, 503 otherwise\n/debug/pprof/   Go profiles\n")
	})
	return mux
}

// healthHandler answers 200 once ready is closed (the broker is registered
// and unfenced, so it may lead partitions and serve clients) and 503 before
// that and once stopping is set.
func healthHandler(ready <-chan struct{}, stopping *atomic.Bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if stopping.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "shutting down\n")
			return
		}
		select {
		case <-ready:
			io.WriteString(w, "ok\n")
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "starting: not yet registered and unfenced\n")
		}
	})
}

// raftLogWriter turns hashicorp/raft's log lines (hclog's text format,
// "<time> [WARN]  raft: message: key=value") into records of the node's
// logger, so that the output stays in one format (one JSON object per line
// with --log-format json) and obeys --log-level.
type raftLogWriter struct{ logger *slog.Logger }

func (w raftLogWriter) Write(p []byte) (int, error) {
	for line := range strings.SplitSeq(strings.TrimRight(string(p), "\r\n"), "\n") {
		level, msg := slog.LevelInfo, strings.TrimSpace(line)
		if i := strings.Index(msg, "["); i >= 0 {
			if j := strings.Index(msg[i:], "]"); j > 0 {
				switch msg[i+1 : i+j] {
				case "TRACE", "DEBUG":
					level = slog.LevelDebug
				case "WARN":
					level = slog.LevelWarn
				case "ERROR":
					level = slog.LevelError
				}
				msg = strings.TrimSpace(msg[i+j+1:])
			}
		}
		if msg != "" {
			w.logger.Log(context.Background(), level, msg)
		}
	}
	return len(p), nil
}
