// Package client is Gregor's own Kafka client: a Producer and a Consumer
// that speak the Kafka protocol to any Kafka-compatible cluster (Gregor,
// Apache Kafka, franz-go's kfake), so the benchmark harness can drive any of
// them. Requests and responses are encoded with franz-go's kmsg; everything
// else (connections, metadata, batching, retries, idempotence, fetching) is
// here. Configuration uses the Java client's names (ProducerConfig,
// ConsumerConfig) and its defaults, and keyed records land on the partition
// the Java client picks (murmur2, KeyPartition).
//
// # Producer
//
// Goroutines and what each owns:
//
//	caller(s)     Produce: validate, wait for the topic's metadata (first
//	              time only), pick a partition, append to the accumulator.
//	              Blocks only for metadata or buffer.memory, up to
//	              max.block.ms.
//	sender        one per producer; owns every batch from the moment it is
//	              drained from the accumulator: per-partition queues,
//	              sequence numbers, the producer id and epoch, in-flight
//	              counts per broker. It drains a broker's batches only when
//	              that broker can take another request, one request at a
//	              time (one batch per partition, the partitions the broker
//	              leads coalesced, up to max.request.size), and decides what
//	              every answer means. It never blocks on I/O: connections
//	              and the InitProducerId helper report back on bounded
//	              channels.
//	callbacks     one per producer; runs the callbacks of completed batches
//	              in order, then releases their memory to the accumulator.
//	              Close and Flush called on it cannot wait for callbacks:
//	              Close then closes without waiting (Java's close with
//	              timeout 0) and Flush fails at once.
//	metadata      one per client (cluster.loop); refreshes on request and
//	              every metadata.max.age.ms, publishing immutable snapshots.
//	connections   two per broker (writer, reader); see below.
//
// The accumulator (batch.Accumulator) holds one open batch per partition and
// closes it at batch.size or after linger.ms; batches wait there until their
// broker has room for a request, so they go on filling meanwhile and
// delivery.timeout.ms expires them there. A broker is drained when one of its
// partitions has a batch ready (full, lingered, or everything while a Flush
// runs, after Close, or while Produce waits for buffer.memory); each drain
// takes the oldest batch of every partition it leads, in a fixed order
// starting where the last drain for that broker stopped (Kafka's drainIndex),
// so no partition waits more than one round for its turn. The sticky
// partitioner steers records without a key away from partitions whose
// batches queue up (KIP-794's adaptive partitioning), which keeps those
// rounds even. The sender compresses each batch once, when it drains it.
// Sequence numbers are assigned when a batch is first sent and kept across
// retries, so the broker can drop a resent batch it
// already has. A batch that must be retried keeps its place in its
// partition's queue and is resent alone before anything after it, so retries
// keep order; nothing new is sent for its partition until the resend is
// answered, so the broker, which remembers a producer's last five batches,
// still knows it if it was written. Should it not (OUT_OF_ORDER_SEQUENCE_NUMBER
// for a batch before the acknowledged sequence, with a batch before it
// acknowledged too), the batch was written and succeeds, at an unknown
// offset. Callbacks of a partition run in queue order whatever order the
// answers come in. OUT_OF_ORDER_SEQUENCE_NUMBER and UNKNOWN_PRODUCER_ID are
// retried, as by Java's idempotent producer (TransactionManager.canRetry,
// Kafka 3.x): as they are when an earlier failure explains them (or
// UNKNOWN_PRODUCER_ID comes without the log start offset); otherwise the
// broker lost the producer's state, and the batch goes again under a new
// epoch (InitProducerId again, once nothing is in flight). A batch that
// fails for good leaves a sequence gap, which also leads to a new epoch.
// Under it, the batch that left the gap, or must go again, and those after
// it in its partition are numbered again from 0; batches before it, in that
// partition or any other, keep their numbering and settle first (a written
// one's resend is then a duplicate the broker drops, not a second copy), and
// the partition moves to the new epoch after them. INVALID_PRODUCER_EPOCH and
// PRODUCER_FENCED are fatal: every record fails and Produce returns the error.
//
// # Consumer
//
// Partitions are assigned by hand (Assign, Seek) or by a consumer group
// (Subscribe; see below). With group.id, partitions assigned by hand start
// at the group's committed offsets too (OffsetFetch, on a goroutine of the
// group's started by the first Assign), as the Java consumer's do.
//
// One fetcher goroutine per broker leading an assigned partition
// resolves pending positions (ListOffsets: earliest, latest, by time) and
// keeps one Fetch in flight, for the partitions that have room in their
// buffers; Poll takes records from those buffers. So the next fetch is on
// the wire while the application handles the last one. Batches are checked
// (CRC), decompressed (bounded), stripped of records below the requested
// offset, and of aborted transactions under read_committed; a partial batch
// at the end of a response is fetched again next time, and an empty one
// (Kafka's cleaner keeps an idempotent producer's last batch so) is read
// past. OFFSET_OUT_OF_RANGE
// resets per auto.offset.reset; NOT_LEADER and friends refresh metadata and
// the partition moves to its new leader's fetcher. Consumer state lives under
// one mutex (Consumer.mu); a Seek bumps the partition's generation so that
// answers to requests sent before it are dropped.
//
// # Consumer groups
//
// With group.id, Subscribe makes the consumer a member of a group under
// Kafka's classic protocol, as the Java consumer speaks it: FindCoordinator
// (key type 0), then JoinGroup (first without a member id; v4+ coordinators
// answer MEMBER_ID_REQUIRED with one to join with), SyncGroup, Heartbeat,
// and LeaveGroup on Close unless the member is static (group.instance.id,
// KIP-345). The protocol type is "consumer"; subscriptions and assignments
// are ConsumerProtocolSubscription (v3) and ConsumerProtocolAssignment. The
// coordinator gets a connection of its own, since a JoinGroup can be parked
// for the whole rebalance timeout (max.poll.interval.ms) and must not hold
// up fetches.
//
// Two goroutines per member, and a lock:
//
//	group run     joins, syncs, computes the assignment when leader,
//	              applies the result, runs the RebalanceListener and
//	              auto-commits every auto.commit.interval.ms.
//	heartbeat     heartbeats every heartbeat.interval.ms while the member
//	              is stable, and leaves the group when the application has
//	              not polled for max.poll.interval.ms.
//	group.mu      what both and committing callers share: member id,
//	              generation, state, owned partitions, the coordinator.
//	              Taken before Consumer.mu, never after.
//
// Assignors (partition.assignment.strategy: range, roundrobin,
// cooperative-sticky) are pure functions of the members' subscriptions and
// the partition counts. The rebalance protocol is cooperative (KIP-429) only
// if every assignor listed is; with the default, range then
// cooperative-sticky, it is eager, as in the Java client. Eager: before
// joining, a member commits and revokes everything. Cooperative: members
// keep their partitions through the rebalance, each revokes only what the
// new assignment moves away from it and then rejoins, and the second
// rebalance hands those partitions to their new owners; no partition is
// ever owned twice.
//
// Records of a partition being taken away stop at once: it is paused
// under Consumer.mu, before the commit and the listener, so no Poll returns
// its records after the revocation. New partitions start paused at their
// committed offsets (OffsetFetch, waiting for pending transactional
// commits) or per auto.offset.reset, and are released to Poll after
// OnPartitionsAssigned. Auto-commit commits each partition's position as of
// the latest Poll: the application has handled what earlier Polls returned
// once it polls again, so a record is never committed before it is handed
// over for good (at least once). CommitSync commits the current positions.
// Commits carry the generation and member id and go one at a time, in
// order. ILLEGAL_GENERATION and UNKNOWN_MEMBER_ID (from a commit, a
// heartbeat or SyncGroup) mean the partitions may be another member's: they
// are given up as lost, without a commit, and the member rejoins;
// REBALANCE_IN_PROGRESS rejoins; NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE
// and broken connections find the coordinator again and retry after
// retry.backoff.ms, as does COORDINATOR_LOAD_IN_PROGRESS. Errors no retry
// can cure (FENCED_INSTANCE_ID, authorization, an inconsistent protocol)
// stop the membership and are reported by Poll.
//
// A consumer with group.id that assigns partitions by hand joins no group,
// as Java's does with assign(): one goroutine starts those partitions at the
// group's committed offsets, and, with enable.auto.commit, another commits
// their positions as of the latest Poll every auto.commit.interval.ms (so a
// lookup retried for one partition holds up no commit), and Close commits
// them; CommitSync commits them too. These commits carry no generation and
// no member id (generation -1). Once the consumer subscribes, the group's
// loop commits instead.
//
// # Connections
//
// One TCP connection per broker, shared by everything a client sends there.
// A connection first negotiates versions (ApiVersions), then pipelines:
// requests are written in order by its writer goroutine, responses read by
// its reader goroutine and matched to requests by correlation id (Kafka
// answers in order). Each request uses the highest version both sides speak
// (Produce up to v9, Fetch v13, Metadata v12, ListOffsets v7, InitProducerId
// v4). A response late by request.timeout.ms kills the connection and fails
// everything on it with a retriable ConnError, as the Java client does;
// acks=0 Produce requests complete once written, since no answer comes.
// Seed connections are closed once the brokers' own addresses are known.
//
// # Bounds
//
//   - Producer memory: buffer.memory bounds the bytes of every batch from
//     its first record until its callbacks have run (the accumulator's open
//     and sealed batches, the sender's queues, requests in flight, the
//     callback queue); Produce blocks when it is full, up to max.block.ms.
//     Idle buffers kept for reuse are bounded by buffer.memory too.
//   - Requests: at most max.in.flight.requests.per.connection Produce
//     requests per broker, each at most max.request.size; one Fetch per
//     broker; each response frame at most 100 MiB (or fetch.max.bytes plus
//     16 MiB for a consumer).
//   - Consumer memory: at most two fetched chunks buffered per partition,
//     each at most max.partition.fetch.bytes of batches; one batch
//     decompresses to at most max(fetch.max.bytes, 128 MiB).
//   - Groups: one JoinGroup or SyncGroup (given the rebalance timeout on top
//     of request.timeout.ms) and one Heartbeat in flight per member, commits
//     one at a time; a leader waits for its topics' metadata at most
//     min(request.timeout.ms, session.timeout.ms/3); commits at revocation
//     and on Close are bounded by request.timeout.ms.
//   - Time: every request has request.timeout.ms; every record gets its
//     callback within delivery.timeout.ms (plus one request timeout for a
//     batch in flight); metadata refreshes at most once per
//     retry.backoff.ms, backing off to 10x while failing, except that a
//     topic the client has not asked about before is looked up at once
//     (as Kafka's requestUpdateForNewTopics).
package client
