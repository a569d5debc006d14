// Package raft is the metadata quorum (KRaft-style) over hashicorp/raft:
// records, image, controller.
//
// Controllers replicate a log of metadata records (records.go); every node
// folds the committed log into an immutable Image (image_types.go, image.go).
// Image.Apply returns a new Image that shares every unchanged broker, topic
// and partition with the old one, so any goroutine may read an Image without
// locks while the next one is built; nothing reachable from a published Image
// is ever written again.
//
// # Log entries
//
// One raft log entry holds records that apply atomically (EncodeEntry,
// DecodeEntry). Integers are big-endian and fixed-size unless "uvarint"
// (unsigned LEB128, as encoding/binary writes it, shortest form only).
//
//	entry  := version u8 (=1) | count uvarint | record × count
//	record := type u8 | version u8 (=0) | length uvarint | body (length bytes)
//
//	string := length uvarint | bytes
//	array  := count uvarint | element × count
//	uuid   := 16 bytes
//	bool   := u8, 0 or 1
//
// Record bodies, version 0:
//
//	type                      body
//	1  BrokerRegistered       broker id i32 | incarnation uuid |
//	                          endpoints array of (name string | host string |
//	                          port u16 | security protocol i16) | rack string
//	2  BrokerFenced           broker id i32 | broker epoch i64
//	3  BrokerUnfenced         broker id i32 | broker epoch i64
//	4  BrokerUnregistered     broker id i32 | broker epoch i64
//	5  Topic                  name string | id uuid |
//	                          configs array of (name string | value string)
//	6  TopicRemoved           id uuid
//	7  Partition              topic id uuid | partition i32 |
//	                          replicas array of i32 | isr array of i32 |
//	                          leader i32 | leader epoch i32 | partition epoch i32
//	8  PartitionChange        topic id uuid | partition i32 | leader i32 |
//	                          isr array of i32 | leader epoch i32 |
//	                          partition epoch i32
//	9  ConfigChange           resource type i8 | resource name string |
//	                          name string | value string | delete bool
//	10 NoOp                   (empty)
//	11 ProducerIDsAllocated   broker id i32 | broker epoch i64 |
//	                          next producer id i64
//
// # Versions
//
// The entry version changes only if the framing does. Each record carries
// its own version, and the rule for changing a record is:
//
//   - A new field is appended to the body, and the record's version goes up
//     by one: version v+1's body is version v's followed by the new fields.
//     A decoder that knows version v+1 reads a version-v body (the body
//     length tells it where the body stops) and gives the new fields their
//     zero value.
//   - A decoder rejects a version it does not know, and a body whose bytes
//     its fields do not fill exactly. It never skips fields: every node must
//     fold every record into the same image, and a node that ignored a
//     field would silently diverge from one that did not. So a writer may use
//     a new version only once every node of the cluster decodes it (as
//     Kafka's metadata.version gates new records); until then a record with
//     the new version is corruption, and the node stops.
//   - The body length frames each record: a field cannot run into the next
//     record, and a tool that lists a log can step over records without
//     knowing their layout.
//
// This makes the encoding canonical: anything DecodeEntry accepts re-encodes
// to the same bytes, which the fuzz tests check.
//
// # What a record must be
//
// Validate checks a record alone (ids, names, epochs, that a partition's
// leader is in its ISR and its ISR among its replicas; errors wrap
// ErrInvalidRecord). Image.Apply checks it against the image (errors wrap
// ErrInconsistent), and makes these choices:
//
//   - The broker epoch is the raft index of the entry that registered the
//     broker, as KRaft uses the record's offset. A broker registers fenced;
//     a re-registration replaces the old registration. Fence, unfence and
//     unregister name the broker's current epoch.
//   - A topic's partitions are created in order, 0 to n-1, with no gap.
//   - A PartitionChange keeps the replicas, takes an ISR among them, raises
//     the partition epoch, and never lowers the leader epoch; a new leader
//     comes with a new leader epoch.
//   - ConfigChange names a topic by name (it must exist) or a broker by id
//     as a decimal string, "" being the cluster-wide default. A broker
//     resource left with no keys is dropped from Image.BrokerConfigs.
//   - ProducerIDsAllocated moves Image.NextProducerID strictly forward, so
//     no producer id is handed out twice. Whether the broker it names is
//     registered at that epoch is the controller's decision.
//   - Offsets increase and epochs (raft terms) do not decrease from one
//     entry to the next.
//   - Whether the brokers a partition names are registered or fenced is the
//     controller's decision, not a consistency check: a partition may name
//     a broker that has gone, as in Kafka.
//
// # Snapshots
//
// An Image is snapshotted as records, so the record codec is reused
// (Image.AppendSnapshot, DecodeSnapshot). A BrokerRegistered record does not
// hold what applying it decides, the broker's epoch, nor whether the broker is
// fenced now, and a record never holds the image's offset and epoch, so the
// snapshot has a header and a broker section for them:
//
//	snapshot := version u8 (=1) | offset u64 | epoch u64 |
//	            broker count uvarint |
//	            (broker epoch i64 | fenced bool | BrokerRegistered record) × count |
//	            record count uvarint | record × count
//
// Brokers are sorted by id. The records are, for each topic sorted by name,
// its Topic record (configs sorted by name) and then a Partition record for
// each of its partitions in order; then a ConfigChange (Delete false) for
// each broker config key, sorted by resource name and key; last, when
// Image.NextProducerID is not 0, a ProducerIDsAllocated carrying it, with
// broker id and epoch 0 since the image does not keep who took the last
// block (Kafka writes -1 for both). Only this
// canonical form decodes, so equal images have equal snapshots, and
// Image.Hash, the SHA-256 of the snapshot, compares nodes' images.
//
// # Nodes and the active controller
//
// A Node (node.go) runs hashicorp/raft with raft-wal as its log and stable
// store and file snapshots, over TCP (or the in-memory transport in tests).
// Voters are the nodes with the controller role in process.roles; each
// bootstraps with controller.quorum.voters on its first start and recovers
// from its log and snapshot afterwards. Broker-only nodes follow the log as
// raft non-voters (hashicorp/raft pushes the log to the non-voters the leader
// knows; a KRaft observer fetches it), so every broker keeps the image
// locally. The active controller's shell adds one (Node.AddObserver) at the
// address its registration gives (QuorumControllerOptions.ObserverAddr),
// in its loop, ordered with the removal that follows an UnregisterBroker:
// right after the registration is decided, and again at any heartbeat it
// decides while the raft configuration, replicated like the log and so
// known to the next active controller too, does not list it there. An add
// that failed is thus retried, not lost with a broker that would stay
// fenced for want of the log. Delta.Local tells a broker which partitions
// it now leads or follows, at which epochs. The raft leader becomes the active
// controller once it has committed a NoOp in its term; the raft term is the
// controller epoch. An entry that cannot be decoded or applied stops the node.
//
// # Decisions
//
// The controller's decisions (controller.go, assign.go, configs.go) are
// pure: functions of (image, request, now) that return the records to
// propose and the Kafka response. What config names mean is the broker's
// knowledge, not the controller's: a ConfigValidator it is given checks
// values and says which configs are lists. QuorumController (service.go)
// is the thin shell around them: one goroutine owns the Controller's
// volatile broker sessions, takes requests from a bounded queue, decides
// each on the image that includes the previous decision, proposes the
// records and answers once they are applied. The same goroutine makes the
// timed decisions, on a timer set from its clock (QuorumController.Tick
// does the same on demand, for tests with a fake clock): fencing brokers
// whose sessions expired; electing leaders for leaderless partitions
// where unclean.leader.election.enable allows it (ElectUncleanLeaders)
// every five minutes and right after a change of that config; and, with
// auto.leader.rebalance.enable, moving leaderships back to preferred
// replicas (ElectPreferredLeaders) every
// leader.imbalance.check.interval.seconds.
package raft
