package broker

import (
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/group"
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

// WatchDecompressions sets the hooks of the broker's decompression budget:
// onQueue is called when a produced batch's decompression starts to wait
// for its share, onCharge once it holds it (blocking there keeps it
// held). nil hooks remove them.
func WatchDecompressions(b *Broker, onQueue, onCharge func()) {
	d := b.decompressions
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mu.onQueue, d.mu.onCharge = onQueue, onCharge
}

// DecompressionPeakBytes is the most bytes of produced records the broker
// has held decompressed at once since the last call.
func DecompressionPeakBytes(b *Broker) int64 {
	d := b.decompressions
	d.mu.Lock()
	defer d.mu.Unlock()
	peak := d.mu.peak
	d.mu.peak = d.mu.held
	return peak
}

// WatchProduceWaits sets f to be called whenever a request starts to wait
// for its connection's Produce requests to be appended; nil removes it.
func WatchProduceWaits(b *Broker, f func()) {
	b.produces.mu.Lock()
	defer b.produces.mu.Unlock()
	b.produces.mu.onWait = f
}

// QuorumObservers lists the quorum's non-voters as b's raft node sees them.
func QuorumObservers(b *Broker) ([]int32, error) { return b.node.Observers() }

// NewMetricsOnlyBroker is a Broker that was never started, with nothing but
// its metrics: enough to observe requests and scrape them.
func NewMetricsOnlyBroker() *Broker {
	b := &Broker{}
	b.metrics = newMetrics(b)
	return b
}

// ObserveLatency records a response to a request of key that took d, as
// the handler does when it hands a response to the network.
func ObserveLatency(b *Broker, key int16, d time.Duration) { b.metrics.observe(key, d, nil) }

// StopQuorumNode stops the broker's metadata quorum node under it, as an
// entry it cannot apply stops it.
func StopQuorumNode(b *Broker) error { return b.node.Shutdown() }

// AddQuorumObserver adds broker id at addr to the quorum's non-voters, as
// its registration does; b must be the active controller.
func AddQuorumObserver(b *Broker, id int32, addr string) error { return b.node.AddObserver(id, addr) }

// RemoveQuorumObserver takes broker id out of the quorum's non-voters, as
// if the add that followed its registration had failed; b must be the
// active controller.
func RemoveQuorumObserver(b *Broker, id int32) error { return b.node.RemoveObserver(id) }

// SnapshotMetadata makes b's metadata quorum node take a raft snapshot of
// its image now, so that a restart begins from that image.
func SnapshotMetadata(b *Broker) error { return b.node.Snapshot() }

// SettleMetadata returns once b's metadata goroutine has handled every
// change of the image notified before the call. It hands the goroutine two
// notices of its own over the channel of capacity one the changes come
// by: the second goes in only once the goroutine has taken the first,
// which it does when it is done with everything before.
func SettleMetadata(b *Broker) {
	for range 2 {
		select {
		case b.metadataChanged <- struct{}{}:
		case <-b.stop:
			return
		}
	}
}

// SetCoordinatorLoaded marks the coordinator of groupID on b as loaded, or
// as still loading its partition, as it is between its start and the end
// of its load.
func SetCoordinatorLoaded(b *Broker, groupID string, loaded bool) {
	t, _ := b.image().Topic(offsetsTopic)
	b.coords.mu.Lock()
	s := b.coords.shards[group.PartitionFor(groupID, len(t.Partitions))]
	b.coords.mu.Unlock()
	s.loaded.Store(loaded)
}

// HoldMetadata makes b's metadata goroutine stop, on the next change of
// the metadata image, before it follows it (and publishes it to clients),
// until the returned release is called. Release before the broker stops.
func HoldMetadata(b *Broker) (release func()) {
	ch := make(chan struct{})
	hold := func() { <-ch }
	b.hooks.beforeFollow.Store(&hold)
	var once sync.Once
	return func() {
		once.Do(func() {
			b.hooks.beforeFollow.Store(nil)
			close(ch)
		})
	}
}

// WatchImageWaits sets f to be called whenever a handler starts to wait
// for b's published image to show a change; nil removes it.
func WatchImageWaits(b *Broker, f func()) {
	if f == nil {
		b.hooks.imageWait.Store(nil)
		return
	}
	b.hooks.imageWait.Store(&f)
}
