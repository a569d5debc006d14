package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/segment"
)

// ControlledShutdown runs the first step of Close alone.
func (b *Broker) ControlledShutdown() { b.controlledShutdown() }

// Heartbeat sends the heartbeat the lifecycle loop sends.
func (b *Broker) Heartbeat() *kmsg.BrokerHeartbeatResponse { return b.heartbeat() }

// LogConfig is the log settings that a broker with cfg gives a topic with
// overrides.
func LogConfig(cfg Config, overrides map[string]string) segment.Config {
	b := &Broker{cfg: cfg}
	return b.logConfig(overrides)
}
