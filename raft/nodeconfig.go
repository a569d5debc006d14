package raft

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Voter is one member of controller.quorum.voters.
type Voter struct {
	ID   int32
	Addr string // host:port of its controller listener
}

// ParseVoters parses controller.quorum.voters: "1@host:port,2@host:port,…".
func ParseVoters(s string) ([]Voter, error) {
	var voters []Voter
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		id, addr, ok := strings.Cut(item, "@")
		n, err := strconv.ParseInt(id, 10, 32)
		if !ok || err != nil || n < 0 {
			return nil, fmt.Errorf("raft: controller.quorum.voters entry %q: want id@host:port with a non-negative id", item)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("raft: controller.quorum.voters entry %q: %v", item, err)
		}
		if slices.ContainsFunc(voters, func(v Voter) bool { return v.ID == int32(n) }) {
			return nil, fmt.Errorf("raft: controller.quorum.voters lists id %d twice", n)
		}
		voters = append(voters, Voter{ID: int32(n), Addr: addr})
	}
	if len(voters) == 0 {
		return nil, errors.New("raft: controller.quorum.voters is empty")
	}
	return voters, nil
}

// NodeConfig holds a node's quorum settings, under Kafka's names where Kafka
// has them.
type NodeConfig struct {
	// NodeID is node.id.
	NodeID int32
	// Roles is process.roles: "controller", "broker" or "broker,controller".
	// A node with the controller role is a voter and must be listed in Voters;
	// a broker-only node follows the metadata log as a raft non-voter, once
	// the active controller adds it (Node.AddObserver), as it does after
	// the node registers and at its heartbeats while it is missing.
	Roles string
	// Voters is controller.quorum.voters.
	Voters []Voter
	// Addr is the address this node's raft transport listens on: its
	// controller listener for a voter. A non-voter needs one too, since raft
	// pushes the log to it.
	Addr string
	// Dir is metadata.log.dir: the raft log (raft-wal) and snapshots.
	Dir string

	// HeartbeatTimeout is how long a follower waits without hearing from the
	// leader before it stands for election; ElectionTimeout the same for a
	// candidate. hashicorp/raft's defaults are 1 s; 150 ms gives failovers of
	// about 0.3 s on loopback (measured by TestFailoverTime; see README).
	// Both at least 5 ms, and ElectionTimeout at least HeartbeatTimeout, as
	// hashicorp/raft requires; left zero, ElectionTimeout is 150 ms or
	// HeartbeatTimeout, whichever is longer.
	HeartbeatTimeout time.Duration
	ElectionTimeout  time.Duration
	// LeaderLeaseTimeout is how long a leader stays leader without reaching a
	// quorum. From 5 ms to HeartbeatTimeout.
	LeaderLeaseTimeout time.Duration
	// CommitTimeout bounds how long a follower may wait to learn of a
	// commit. At least 1 ms.
	CommitTimeout time.Duration
	// SnapshotThreshold is how many new log entries trigger a snapshot.
	SnapshotThreshold uint64
	// SnapshotInterval is how often raft checks the threshold. At least 5 ms.
	SnapshotInterval time.Duration
	// SnapshotRetain is how many snapshots are kept on disk. At least 1.
	SnapshotRetain int
	// WALSegmentBytes is the size of each raft-wal segment file.
	WALSegmentBytes int
}

// EnsureDefaults fills every zero field with its default.
func (c *NodeConfig) EnsureDefaults() {
	if c.Roles == "" {
		c.Roles = "broker,controller"
	}
	setDur := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	setDur(&c.HeartbeatTimeout, 150*time.Millisecond)
	// hashicorp/raft refuses an election timeout below the heartbeat
	// timeout, so a longer heartbeat timeout alone lengthens both.
	setDur(&c.ElectionTimeout, max(150*time.Millisecond, c.HeartbeatTimeout))
	setDur(&c.LeaderLeaseTimeout, min(100*time.Millisecond, c.HeartbeatTimeout))
	setDur(&c.CommitTimeout, 5*time.Millisecond)
	setDur(&c.SnapshotInterval, 30*time.Second)
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.SnapshotRetain == 0 {
		c.SnapshotRetain = 2
	}
	if c.WALSegmentBytes == 0 {
		c.WALSegmentBytes = 8 << 20
	}
}

// IsVoter reports whether the node has the controller role.
func (c *NodeConfig) IsVoter() bool { return slices.Contains(c.roles(), "controller") }

// IsBroker reports whether the node has the broker role.
func (c *NodeConfig) IsBroker() bool { return slices.Contains(c.roles(), "broker") }

func (c *NodeConfig) roles() []string {
	var out []string
	for r := range strings.SplitSeq(c.Roles, ",") {
		out = append(out, strings.TrimSpace(r))
	}
	return out
}

// Validate reports every field out of range, with its value.
func (c *NodeConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("raft: "+format, args...)) }
	if c.NodeID < 0 {
		bad("node.id=%d: want a non-negative id", c.NodeID)
	}
	for _, r := range c.roles() {
		if r != "broker" && r != "controller" {
			bad("process.roles=%q: want broker, controller or broker,controller", c.Roles)
			break
		}
	}
	listed := slices.ContainsFunc(c.Voters, func(v Voter) bool { return v.ID == c.NodeID })
	if c.IsVoter() && !listed {
		bad("node.id=%d has the controller role but is not in controller.quorum.voters", c.NodeID)
	}
	if !c.IsVoter() && listed {
		bad("node.id=%d is in controller.quorum.voters but process.roles=%q lacks controller", c.NodeID, c.Roles)
	}
	if len(c.Voters) == 0 {
		bad("controller.quorum.voters is empty")
	}
	if c.Dir == "" {
		bad("metadata.log.dir is empty")
	}
	if c.Addr == "" {
		bad("the raft listener address is empty")
	}
	// hashicorp/raft's own limits (raft.ValidateConfig, and the file
	// snapshot store's), checked here so that a config this accepts starts.
	for _, d := range []struct {
		name string
		v    time.Duration
		min  time.Duration
	}{
		{"heartbeat timeout", c.HeartbeatTimeout, 5 * time.Millisecond},
		{"election timeout", c.ElectionTimeout, 5 * time.Millisecond},
		{"leader lease timeout", c.LeaderLeaseTimeout, 5 * time.Millisecond},
		{"commit timeout", c.CommitTimeout, time.Millisecond},
		{"snapshot interval", c.SnapshotInterval, 5 * time.Millisecond},
	} {
		if d.v < d.min {
			bad("%s %v: want at least %v", d.name, d.v, d.min)
		}
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		bad("leader lease timeout %v exceeds the heartbeat timeout %v", c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	if c.ElectionTimeout < c.HeartbeatTimeout {
		bad("election timeout %v is below the heartbeat timeout %v", c.ElectionTimeout, c.HeartbeatTimeout)
	}
	if c.SnapshotRetain < 1 {
		bad("snapshot retain %d: want at least 1", c.SnapshotRetain)
	}
	return errors.Join(errs...)
}
