// Package group is the consumer group coordinator: Kafka's classic group
// protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, DescribeGroups,
// ListGroups, DeleteGroups) and committed offsets (OffsetCommit,
// OffsetFetch, OffsetDelete, expiry) as a pure state machine. The shell
// (broker/groups.go) stores the offsets as records of __consumer_offsets,
// which this package encodes and replays.
//
// # Pure state, thin shell
//
// A Coordinator holds every group of one coordinator (one
// __consumer_offsets partition's leader). Each method is a function of the
// state, one request and the time, which the caller passes in: nothing here
// reads a clock, starts a goroutine, sleeps or does I/O. (The one input not
// passed in is the random part of new member ids, which SetMemberIDSuffix
// replaces.) Requests and responses are franz-go's kmsg types, and the
// decisions and error codes are those of Kafka's GroupMetadataManager and
// ClassicGroup (Kafka 3.7+; see below for where they differ). Tests drive
// it with a fake clock.
//
// # Who owns it
//
// A Coordinator is not safe for concurrent use. One goroutine in the shell
// owns it; connection goroutines hand it requests over a bounded channel and
// get their responses back by request id. That goroutine also owns the one
// timer the Coordinator needs.
//
// # Replies
//
// A JoinGroup or SyncGroup often cannot be answered at once: a JoinGroup
// waits until every member has rejoined (or the rebalance times out), a
// follower's SyncGroup until the leader's arrives. So the shell numbers each
// request (any id unique among requests still waiting) and the methods that
// may complete requests (Join, Sync, Leave, Tick, Unload) append to a slice
// of Reply the responses that are now complete, each with its request's id:
// possibly the request just handed in, possibly others parked earlier,
// possibly none. A request whose reply is not in the slice is parked; its
// reply comes out of a later call, and every parked request is answered
// eventually: by the group's progress, by a timeout, by its member's removal
// or replacement, or by Unload. The shell sends each reply to the connection
// its request came from, in that connection's request order. Heartbeat,
// DescribeGroups, ListGroups and DeleteGroups never park and never complete
// other requests, so they return their response directly.
//
// The slice is the caller's (dst, as with append), so a shell that reuses one
// does not allocate for it. Responses are handed over: the coordinator never
// writes to one again, and the byte slices it keeps from requests are its own
// copies, so the shell may reuse request buffers.
//
// A request is parked only if it can be answered later: at most one
// JoinGroup and one SyncGroup per member (a second one answers the first
// REBALANCE_IN_PROGRESS), and members per group are bounded by
// group.max.size.
//
// # Deadlines
//
// Sessions, the join phase (group.initial.rebalance.delay.ms, the rebalance
// timeout), the wait for SyncGroups and unused MEMBER_ID_REQUIRED ids all
// end at deadlines the Coordinator keeps in a heap. After every call the
// shell asks NextDeadline and sets its single timer to it (or stops it when
// there is none); when the timer fires it calls Tick with the current time,
// sends the replies, and asks again. Nothing polls: between requests and
// deadlines the Coordinator is not called. Calling Tick late or early is
// harmless: it runs exactly the deadlines that are due at the time it is
// given, and every deadline it sets is at least 1ms after that time. The
// shell passes time.Now(), whose monotonic reading the comparisons use, so
// that a wall clock stepping back or forth does not expire sessions.
//
// # Where it differs from Kafka
//
//   - A request Kafka would leave unanswered is answered, since an
//     unanswered request holds up every later response on its connection:
//     a JoinGroup or SyncGroup replaced by a second one from the same member
//     gets REBALANCE_IN_PROGRESS, and a SyncGroup parked by a member that is
//     then removed gets UNKNOWN_MEMBER_ID.
//   - A tie in the protocol vote goes to the leader's preference (Kafka's
//     goes by hash order).
//   - A group that a failed JoinGroup created, and that holds nothing, is
//     dropped (Kafka writes it to its log and keeps it).
//   - A restarted static member's first session deadline uses the session
//     timeout it asked for (Kafka's uses its predecessor's).
//   - Only offsets are persisted: Kafka also writes the group's metadata
//     (GroupMetadataKey v2, GroupMetadataValue) to __consumer_offsets when
//     the leader's assignment arrives, so that a new coordinator knows the
//     members and generation. Here a new coordinator starts with the groups
//     Empty and their offsets; members get UNKNOWN_MEMBER_ID on their next
//     heartbeat or commit and rejoin (one rebalance), then resume from the
//     committed offsets. Group metadata records found in the log (written
//     by Kafka) are skipped.
//   - The retention time an OffsetCommit v2-4 request may carry is ignored
//     (as Kafka 2.1+ does for v5+): offsets.retention.minutes applies.
//
// # Committed offsets
//
// A commit is accepted by CommitOffsets (the group's verdict, the
// partition's existence, offset.metadata.max.bytes), which returns the
// records to append; the shell appends them to the group's partition of
// __consumer_offsets and, once the high watermark covers them, replays
// them (Replay), and only then answers. A coordinator that starts leading a
// partition replays its whole log the same way before it answers anything
// (COORDINATOR_LOAD_IN_PROGRESS meanwhile), so what a client was told is
// committed is what a later coordinator serves. DeleteGroups, OffsetDelete
// and ExpireOffsets return tombstones the same way. The records use Kafka's
// schemas (kmsg's OffsetCommitKey and OffsetCommitValue), so tools that
// read __consumer_offsets understand them; every field is big-endian, a
// string is an int16 length and its bytes:
//
//	key: OffsetCommitKey v1
//	+---------------+--------------+--------------+-----------------+
//	| version int16 | group string | topic string | partition int32 |
//	|      = 1      |              |              |                 |
//	+---------------+--------------+--------------+-----------------+
//
//	value: OffsetCommitValue v3 (null: a tombstone, the offset deleted)
//	+---------------+--------------+--------------------+-----------------+------------------------+
//	| version int16 | offset int64 | leaderEpoch int32  | metadata string | commitTimestamp int64  |
//	|      = 3      |              | -1 when not given  |                 | ms, the coordinator's  |
//	+---------------+--------------+--------------------+-----------------+------------------------+
//
// Key version 0 has the same layout; version 2 is a group's metadata
// (skipped, see above); Kafka's later versions (KIP-848) are skipped too.
// A group's records all go to the partition abs(javaHashCode(group.id)) mod
// offsets.topic.num.partitions, as Kafka puts them. Offsets of groups with
// no members expire offsets.retention.minutes after the group became Empty,
// or, for a group known only by its offsets (a standalone consumer's, or
// any after a reload), after their commit (KIP-211); an Empty group with no
// offsets left is forgotten.
//
// A consumer group's subscriptions are the union of the topics in its
// members' metadata (ConsumerProtocolSubscription, read as its version 0
// prefix), computed when a join phase completes, as Kafka's
// computeSubscribedTopics does. They decide two things: OffsetDelete
// refuses only the subscribed topics (GROUP_SUBSCRIBED_TO_TOPIC), and a
// Stable consumer group's offsets of topics no member subscribes to expire
// offsets.retention.minutes after their commit (KIP-496). A consumer group
// one of whose members' metadata does not decode, or that has not
// completed a join phase, is taken as subscribed to every topic, as in
// Kafka: OffsetDelete refuses them all and nothing expires.
//
// # The protocol, briefly
//
// A group is Empty, PreparingRebalance (the join phase: members rejoin),
// CompletingRebalance (every member has its JoinGroup response for the new
// generation; the leader computes the assignment), Stable (the leader's
// SyncGroup handed the assignment out), or Dead (deleted or unloaded). A
// rebalance starts when a member joins, changes its metadata, leaves, or
// misses its session timeout, and when the leader rejoins. The join phase
// ends when every member has rejoined or the longest rebalance timeout
// passes; members that did not rejoin are removed (static ones, which may be
// restarting, stay until their session expires), the generation goes up by
// one, and the protocol is chosen by vote (Kafka's selectProtocol). Each
// member then has the rebalance timeout to send SyncGroup, or it is removed
// and the group rebalances again.
package group
