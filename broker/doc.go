// Package broker is a Gregor node: it wires the storage engine (segment),
// partition state (replica), the metadata quorum (raft) and the network layer
// (netio) into a broker any Kafka client can use, with one handler file per
// Kafka API.
//
// Data paths (DESIGN §2):
//
//	Produce   netio frame -> kmsg decode -> the partition's append lane ->
//	          batch.Validate in place -> replica.Partition.Append (idempotence
//	          check, offsets and leader epoch written into the header) ->
//	          segment.Log.Append -> response once every partition is done
//	Fetch     kmsg decode -> replica.Partition.Read (file regions below the
//	          high watermark) -> appendFetchResponse (hand-written with kbin:
//	          header bytes + regions) -> netio writev + sendfile(2)
//	Metadata  served from the published image: the raft image this broker's
//	          partitions already follow (see publish.go)
//	Admin     CreateTopics, DeleteTopics, CreatePartitions,
//	          IncrementalAlterConfigs, AlterConfigs and UnregisterBroker are
//	          forwarded to the active controller
//	          (in process on a voter that leads the quorum, otherwise over the
//	          controller listener) and answered once committed and in
//	          this broker's published image, so the client reads its own
//	          write from this broker
//
// The controller listener (controller_net.go) carries both the quorum's raft
// traffic and the Kafka requests brokers send the controller
// (BrokerRegistration, BrokerHeartbeat, AllocateProducerIds, forwarded admin
// requests), told apart by a connection's first byte. A flexible response
// there carries, in a header tagged field, the metadata offset it reflects
// (metadataOffsetTag): what the config changes wait for the broker's
// image to reach.
//
// Lifecycle: Start opens the logs, joins the quorum, listens, then registers
// with the controller and heartbeats. The broker's partitions follow the
// image, and the image is published, only once it holds the broker's own
// registration from this start (runMetadata): the image a restart begins
// with is the last snapshot's, which the broker must not lead, append or
// delete from. The first image after that deletes, before it is published,
// every log found at start-up that the image does not give this broker
// (strayLogs: its topic deleted, or its partition moved, while the broker
// was down), and hosting a partition deletes a log that records another
// topic id (partition.metadata) and starts the partition empty, as Kafka's
// broker does with its stray logs; a log without an id, from an older
// Gregor, is taken for the partition of its name and given the topic's id.
// The controller unfences the broker once its published metadata has
// caught up (Ready). Close performs a controlled shutdown (the controller
// moves leadership away), stops the listener, leaves the quorum and closes
// the logs, writing the clean-shutdown marker.
//
// Concurrency: netio calls Serve on a connection's reading goroutine.
// Metadata without auto-creation, ListOffsets, the describe requests and
// Produce requests under 256 KiB answer there; a larger Produce request's
// partitions are appended on their append lanes' goroutines, side by side,
// each lane in queue order (appendlanes.go), and the request answers when
// the last is done. Compressed batches are decompressed only within the
// broker-wide budget of DecompressionMaxBytes (decompression.go), since side
// by side they would otherwise each hold one batch's expansion. The
// connection's next request, unless it is a Produce too, waits on the
// connection's goroutine until those appends are done (connproduces.go), as
// Kafka reads no further on a connection until it answers. A Fetch that
// must wait parks on its partitions (replica.Waiter) and answers from its
// own goroutine once appends bring its min_bytes or max_wait_ms passes,
// holding no segment file while parked (it reads again when woken) and
// ending, unanswered, as soon as its connection closes
// (netio.Request.Done); requests that need the controller answer from their
// own goroutine. netio bounds the requests in flight per connection and
// overall, which bounds those goroutines; a waiting Fetch gives back its
// share of the overall bound (netio.Request.Park), as Kafka's purgatory
// keeps it out of the request queue, and stays bounded by its connection's
// share and max.connections. One goroutine (runMetadata) owns the map of
// hosted partitions' membership; lookups take its read lock. A mutex guards
// the append lanes (appendLanes.mu): which partitions have one and what each
// has queued; another the decompression budget's shares and waiters
// (decompressionBudget.mu); another each connection's count of unfinished
// Produce requests (unfinishedProduces.mu).
//
// Until follower replication lands, every partition has one replica:
// CreateTopics refuses a replication factor above 1, and a partition's high
// watermark is its leader's log end.
package broker
