package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// ControlledShutdown runs the first step of Close alone.
func (b *Broker) ControlledShutdown() { b.controlledShutdown() }

// Heartbeat sends the heartbeat the lifecycle loop sends.
func (b *Broker) Heartbeat() *kmsg.BrokerHeartbeatResponse { return b.heartbeat() }
