package raft

import (
	"strings"
	"testing"
	"time"

	hraft "github.com/hashicorp/raft"
)

// validNodeConfig is a config Validate accepts once its defaults are in.
func validNodeConfig() NodeConfig {
	return NodeConfig{NodeID: 1, Roles: "controller", Voters: []Voter{{ID: 1, Addr: "127.0.0.1:9093"}},
		Addr: "127.0.0.1:9093", Dir: "meta"}
}

// TestNodeConfigElectionTimeoutDefaultsToHeartbeat: a HeartbeatTimeout
// above the default election timeout (150 ms) with no ElectionTimeout
// given was accepted by Validate and then refused by hashicorp/raft's
// NewRaft (ElectionTimeout below HeartbeatTimeout), after the raft
// listener was bound. Left zero, the election timeout now follows the
// heartbeat timeout up.
func TestNodeConfigElectionTimeoutDefaultsToHeartbeat(t *testing.T) {
	cfg := validNodeConfig()
	cfg.HeartbeatTimeout = time.Second
	cfg.EnsureDefaults()
	if cfg.ElectionTimeout != time.Second {
		t.Fatalf("election timeout %v with a 1s heartbeat timeout, want 1s", cfg.ElectionTimeout)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := hraft.ValidateConfig(raftConfig(&cfg)); err != nil {
		t.Fatalf("hashicorp/raft refuses it: %v", err)
	}
}

// TestNodeConfigValidateMatchesRaft: over a grid of timeouts, Validate
// accepts exactly the configs hashicorp/raft's ValidateConfig accepts, so
// that no config Validate passes fails in StartNode once its listener is
// bound (heartbeat, election, lease timeouts and snapshot interval of at
// least 5 ms, commit timeout of 1 ms, lease at most heartbeat, election at
// least heartbeat), and none that would work is refused.
func TestNodeConfigValidateMatchesRaft(t *testing.T) {
	values := []time.Duration{0, time.Millisecond / 2, time.Millisecond, 4 * time.Millisecond, 5 * time.Millisecond,
		100 * time.Millisecond, 150 * time.Millisecond, time.Second}
	checked := 0
	for _, hb := range values {
		for _, el := range values {
			for _, lease := range values {
				for _, commit := range values {
					for _, snap := range values {
						cfg := validNodeConfig()
						cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = hb, el, lease
						cfg.CommitTimeout, cfg.SnapshotInterval = commit, snap
						cfg.EnsureDefaults()
						ours, theirs := cfg.Validate(), hraft.ValidateConfig(raftConfig(&cfg))
						if (ours == nil) != (theirs == nil) {
							t.Fatalf("heartbeat %v election %v lease %v commit %v snapshot interval %v: Validate says %v, hashicorp/raft %v",
								cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout, cfg.CommitTimeout, cfg.SnapshotInterval, ours, theirs)
						}
						checked++
					}
				}
			}
		}
	}
	t.Logf("%d configs checked", checked)
}

// TestNodeConfigValidateReportsEveryField: each bad timing field is
// reported, with its value.
func TestNodeConfigValidateReportsEveryField(t *testing.T) {
	cfg := validNodeConfig()
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 200*time.Millisecond, 100*time.Millisecond, 2*time.Millisecond
	cfg.CommitTimeout, cfg.SnapshotInterval, cfg.SnapshotRetain = time.Microsecond, time.Millisecond, -1
	err := cfg.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"election timeout 100ms is below the heartbeat timeout 200ms",
		"leader lease timeout 2ms: want at least 5ms",
		"commit timeout 1µs: want at least 1ms",
		"snapshot interval 1ms: want at least 5ms",
		"snapshot retain -1: want at least 1",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v\ndoes not say %q", err, want)
		}
	}
}
