// Package group is the consumer group coordinator: Kafka's classic group
// protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, DescribeGroups,
// ListGroups, DeleteGroups) as a pure state machine. Committed offsets and
// the __consumer_offsets topic are not here yet; ValidateCommit gives the
// OffsetCommit handler the group's verdict on a commit.
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
//   - Nothing is persisted yet: Kafka also writes the group's metadata to
//     __consumer_offsets when the leader's assignment arrives (and when a
//     group empties or a static member is replaced), and answers only once
//     that write commits.
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
