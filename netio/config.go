package netio

import (
	"errors"
	"fmt"
	"time"
)

// Config holds the network settings, under Kafka's broker config names.
type Config struct {
	// SocketRequestMaxBytes bounds a request frame: socket.request.max.bytes,
	// 100 MiB. A larger size prefix closes the connection before any of the
	// frame is read.
	SocketRequestMaxBytes int32
	// MaxConnections bounds open client connections: max.connections.
	// Kafka's default is unbounded; Gregor's is 65536.
	MaxConnections int
	// MaxConnectionsPerIP bounds the connections of one client address:
	// max.connections.per.ip (default as MaxConnections).
	MaxConnectionsPerIP int
	// ConnectionsMaxIdle closes a connection with no request in flight and
	// none arriving for this long: connections.max.idle.ms, 10 minutes.
	// Negative turns idle expiry off, as a negative value does in Kafka's
	// Selector; EnsureDefaults makes it NeverIdle.
	ConnectionsMaxIdle time.Duration
	// QueuedMaxRequests bounds the requests being handled (read and not
	// yet answered) across all connections: queued.max.requests, 500.
	// Connections stop being read while it is reached.
	QueuedMaxRequests int
	// MaxInFlightPerConnection bounds the requests of one connection being
	// handled or waiting for their turn to be answered; its reading stops at
	// the bound. Kafka handles one at a time per connection; Gregor lets a
	// client's pipelined requests (up to max.in.flight.requests.per.connection,
	// 5 by default) proceed together and still answers in order. Default 16.
	MaxInFlightPerConnection int
	// Engine picks the network engine: network.engine, "std" (Go's net, a
	// goroutine reading and one writing per connection) or "netpoll" (an
	// event loop over cloudwego/netpoll). The default is DefaultEngine.
	Engine string
}

// The engines Config.Engine names.
const (
	EngineStd     = "std"
	EngineNetpoll = "netpoll"
)

// DefaultEngine is the engine EnsureDefaults picks: std, because it is the
// one whose memory stays bounded under every client. netpoll reads a
// socket eagerly and cannot pause one connection, so a producer with acks=0
// (which never reads answers) fills its input faster than the broker drains
// it: in a 4 s run of `gregor bench` at full speed (1 KiB records, acks=0,
// linger 5 ms), netpoll's broker peaked at 466 MB of RSS and closed the
// connection over its bound, losing 19% of the records sent (1,183,825 of
// 1,462,620 stored), where std peaked at 34 MB, stored what was sent, and
// produced 16% faster, since its reading simply stops and TCP pushes back.
//
// netpoll measured better elsewhere, in four runs of BenchmarkEngine (and
// two of BenchmarkIdleConnections), -count 6 to 10, with benchstat, on a
// shared, noisy 2-core machine:
//
//   - small pipelined requests, one connection, 16 in flight: 6 to 30% more
//     requests/s, up to 33% less process CPU per request, 40% fewer
//     allocations; significant (p <= 0.002) in all three runs that had it;
//   - the same over 32 connections: 28% faster and 24-29% less CPU in the
//     two runs that interleaved the engines (p <= 0.037); within noise in
//     the two others;
//   - 1 MiB sendfile fetches: no significant difference in the three
//     interleaved runs (medians from 12% faster to 26% slower); CPU profiles
//     of both are 95% the same two syscalls (sendfile and the client's read);
//   - 2000 idle connections: about 4.2-4.9 KiB and no goroutine per
//     connection, against 7.5-8.5 KiB (1.1-1.3 KiB heap and two goroutine
//     stacks) for std.
//
// Choose netpoll (network.engine=netpoll) for many mostly idle connections
// or small request/response traffic from well-behaved clients; it serves
// only plain TCP or Unix listeners.
const DefaultEngine = EngineStd

// EnsureDefaults fills every zero field with its default.
func (c *Config) EnsureDefaults() {
	if c.SocketRequestMaxBytes == 0 {
		c.SocketRequestMaxBytes = 100 << 20
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = 65536
	}
	if c.MaxConnectionsPerIP == 0 {
		c.MaxConnectionsPerIP = c.MaxConnections
	}
	if c.ConnectionsMaxIdle == 0 {
		c.ConnectionsMaxIdle = 10 * time.Minute
	} else if c.ConnectionsMaxIdle < 0 {
		c.ConnectionsMaxIdle = NeverIdle
	}
	if c.QueuedMaxRequests == 0 {
		c.QueuedMaxRequests = 500
	}
	if c.MaxInFlightPerConnection == 0 {
		c.MaxInFlightPerConnection = 16
	}
	if c.Engine == "" {
		c.Engine = DefaultEngine
	}
}

// NeverIdle is the idle period of a connection that never expires: a
// century, so that the deadlines the engines add it to (a connection's age
// plus the period) cannot overflow.
const NeverIdle = 100 * 365 * 24 * time.Hour

// Validate reports every field out of range, with its value.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("netio: "+format, args...)) }
	if c.SocketRequestMaxBytes < 8 {
		bad("socket.request.max.bytes=%d: want at least 8", c.SocketRequestMaxBytes)
	}
	if c.MaxConnections < 1 {
		bad("max.connections=%d: want at least 1", c.MaxConnections)
	}
	if c.MaxConnectionsPerIP < 1 {
		bad("max.connections.per.ip=%d: want at least 1", c.MaxConnectionsPerIP)
	}
	if c.ConnectionsMaxIdle >= 0 && c.ConnectionsMaxIdle < time.Millisecond {
		bad("connections.max.idle.ms=%d: want at least 1, or negative for never", c.ConnectionsMaxIdle.Milliseconds())
	}
	if c.QueuedMaxRequests < 1 {
		bad("queued.max.requests=%d: want at least 1", c.QueuedMaxRequests)
	}
	if c.MaxInFlightPerConnection < 1 {
		bad("max in-flight requests per connection=%d: want at least 1", c.MaxInFlightPerConnection)
	}
	if c.Engine != EngineStd && c.Engine != EngineNetpoll {
		bad("network.engine=%q: want %q or %q", c.Engine, EngineStd, EngineNetpoll)
	}
	return errors.Join(errs...)
}
