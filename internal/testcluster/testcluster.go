// Package testcluster starts in-process Gregor clusters on loopback for
// tests and the benchmark harness: every node a combined broker and
// controller, with fresh data directories and quick failure detection.
package testcluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gregor/broker"
	"gregor/raft"
)

// Cluster is a running in-process cluster.
type Cluster struct {
	tb      testing.TB
	Brokers []*broker.Broker // nil for a stopped node
	configs []broker.Config
}

// Logger is where nodes log: nowhere unless GREGOR_TEST_LOG is set.
func Logger() *slog.Logger {
	if os.Getenv("GREGOR_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Start starts n nodes, each a voter and a broker, and waits until every
// broker is registered and unfenced. configure, when not nil, adjusts node
// i's config before it starts. The cluster stops when the test ends.
func Start(tb testing.TB, n int, configure func(i int, c *broker.Config)) *Cluster {
	tb.Helper()
	return StartMixed(tb, n, 0, configure)
}

// StartMixed starts voters combined broker+controller nodes (ids 1..voters)
// and brokersOnly broker-only nodes after them, which follow the metadata
// log as raft non-voters.
func StartMixed(tb testing.TB, voters, brokersOnly int, configure func(i int, c *broker.Config)) *Cluster {
	tb.Helper()
	n := voters + brokersOnly
	c := &Cluster{tb: tb, Brokers: make([]*broker.Broker, n), configs: make([]broker.Config, n)}
	clientLns, ctrlLns := make([]net.Listener, n), make([]net.Listener, n)
	var voterList []raft.Voter
	for i := range n {
		var err error
		if clientLns[i], err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			tb.Fatal(err)
		}
		if ctrlLns[i], err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			tb.Fatal(err)
		}
		if i < voters {
			voterList = append(voterList, raft.Voter{ID: int32(i + 1), Addr: ctrlLns[i].Addr().String()})
		}
	}
	for i := range n {
		dir := tb.TempDir()
		cfg := broker.DefaultConfig()
		cfg.NodeID = int32(i + 1)
		cfg.Listener = clientLns[i].Addr().String()
		roles := "broker,controller"
		if i >= voters {
			roles = "broker"
		}
		cfg.Quorum = raft.NodeConfig{NodeID: cfg.NodeID, Roles: roles, Voters: voterList,
			Addr: ctrlLns[i].Addr().String(), Dir: filepath.Join(dir, "meta"),
			HeartbeatTimeout: 150 * time.Millisecond, ElectionTimeout: 150 * time.Millisecond,
			LeaderLeaseTimeout: 100 * time.Millisecond, CommitTimeout: 10 * time.Millisecond}
		cfg.Storage.LogDirs = []string{filepath.Join(dir, "logs")}
		cfg.BrokerHeartbeatInterval = 200 * time.Millisecond
		cfg.Controller.BrokerSessionTimeoutMs = 3000
		cfg.ControlledShutdownTimeout = 5 * time.Second
		// Groups settle at once and may use short sessions, and
		// __consumer_offsets is small, so that group tests run fast.
		cfg.Group.GroupInitialRebalanceDelayMs = 0
		cfg.Group.GroupMinSessionTimeoutMs = 500
		cfg.OffsetsTopicNumPartitions = 5
		if configure != nil {
			configure(i, &cfg)
		}
		c.configs[i] = cfg
	}
	for i := range n {
		b, err := broker.Start(c.configs[i], broker.Options{Logger: Logger().With("node", i+1), RaftLog: io.Discard,
			ClientListener: clientLns[i], ControllerListener: ctrlLns[i]})
		if err != nil {
			for _, ln := range clientLns[i:] {
				ln.Close()
			}
			for _, ln := range ctrlLns[i:] {
				ln.Close()
			}
			c.Close()
			tb.Fatalf("starting node %d: %v", i+1, err)
		}
		c.Brokers[i] = b
	}
	tb.Cleanup(func() { c.Close() })
	c.WaitReady()
	return c
}

// WaitReady waits (at most 30 s) until every running broker is unfenced.
func (c *Cluster) WaitReady() {
	c.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, b := range c.Brokers {
		if b == nil {
			continue
		}
		if err := b.WaitReady(ctx); err != nil {
			c.tb.Fatal(err)
		}
	}
}

// WaitForImage waits (at most 30 s) until cond holds for the published
// metadata image of every running broker: metadata reaches brokers a moment
// after the controller commits it.
func (c *Cluster) WaitForImage(cond func(*raft.Image) bool) {
	c.tb.Helper()
	deadline := time.After(30 * time.Second)
	for _, b := range c.Brokers {
		if b == nil {
			continue
		}
		for {
			changed := b.ImageChanged()
			if cond(b.Image()) {
				break
			}
			select {
			case <-changed:
			case <-deadline:
				c.tb.Fatalf("broker %d: metadata did not reach the expected state in 30 s", b.NodeID())
			}
		}
	}
}

// WaitForTopic waits until every running broker knows topic and each of its
// partitions has a leader.
func (c *Cluster) WaitForTopic(topic string) {
	c.tb.Helper()
	c.WaitForImage(func(im *raft.Image) bool {
		t, ok := im.Topic(topic)
		if !ok {
			return false
		}
		for _, p := range t.Partitions {
			if p.Leader < 0 {
				return false
			}
		}
		return true
	})
}

// Bootstrap is the comma-separated list of the running brokers' addresses.
func (c *Cluster) Bootstrap() string {
	var addrs []string
	for _, b := range c.Brokers {
		if b != nil && b.IsBroker() {
			addrs = append(addrs, b.Addr().String())
		}
	}
	return strings.Join(addrs, ",")
}

// Addrs are the running brokers' addresses.
func (c *Cluster) Addrs() []string { return strings.Split(c.Bootstrap(), ",") }

// Stop shuts node i down cleanly (controlled shutdown, clean-shutdown marker).
func (c *Cluster) Stop(i int) {
	c.tb.Helper()
	if b := c.Brokers[i]; b != nil {
		if err := b.Close(); err != nil {
			c.tb.Errorf("stopping node %d: %v", i+1, err)
		}
		c.Brokers[i] = nil
	}
}

// Restart starts node i again on its addresses and data, after Stop, and
// waits until it is ready.
func (c *Cluster) Restart(i int) {
	c.tb.Helper()
	c.Stop(i)
	cfg := c.configs[i]
	// A restarted node listens on its old addresses, as a real one does:
	// closed listening ports are free at once (Go sets SO_REUSEADDR).
	b, err := broker.Start(cfg, broker.Options{Logger: Logger().With("node", i+1), RaftLog: io.Discard})
	if err != nil {
		c.tb.Fatalf("restarting node %d: %v", i+1, err)
	}
	c.Brokers[i] = b
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.WaitReady(ctx); err != nil {
		c.tb.Fatal(err)
	}
}

// Config is node i's config.
func (c *Cluster) Config(i int) broker.Config { return c.configs[i] }

// Close stops every running node.
func (c *Cluster) Close() {
	for i := range c.Brokers {
		if b := c.Brokers[i]; b != nil {
			if err := b.Close(); err != nil {
				fmt.Fprintf(os.Stderr, "testcluster: stopping node %d: %v\n", i+1, err)
			}
			c.Brokers[i] = nil
		}
	}
}
