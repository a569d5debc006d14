package raft

// The metadata records the quorum's log holds, as Go values. Their byte
// encoding (EncodeEntry, DecodeEntry) and validation live in codec.go and
// are drawn in doc.go. A raft log entry holds one or more records that apply
// atomically (a topic and its partitions, say), as a KRaft record batch does.

// RecordType identifies a metadata record in its encoding.
type RecordType uint8

// The record types. Values are part of the on-disk format: never reuse one.
const (
	TypeBrokerRegistered   RecordType = 1
	TypeBrokerFenced       RecordType = 2
	TypeBrokerUnfenced     RecordType = 3
	TypeBrokerUnregistered RecordType = 4
	TypeTopic              RecordType = 5
	TypeTopicRemoved       RecordType = 6
	TypePartition          RecordType = 7
	TypePartitionChange    RecordType = 8
	TypeConfigChange       RecordType = 9
	// TypeNoOp is what a newly elected active controller commits first, so
	// that it knows its view of the log is current before it decides anything
	// (KRaft's leader-change marker).
	TypeNoOp RecordType = 10
	// TypeProducerIDsAllocated hands a broker the next block of producer ids
	// (Kafka's ProducerIdsRecord, KIP-730).
	TypeProducerIDsAllocated RecordType = 11
)

// lastRecordType is the highest record type this code knows: a decoder
// refuses the types above it.
const lastRecordType = TypeProducerIDsAllocated

// UUID is a 16-byte identifier (topic ids, broker incarnations), as Kafka uses.
type UUID [16]byte

// Record is one metadata record.
type Record interface {
	// Type is the record's type in its encoding.
	Type() RecordType
}

// Endpoint is a listener a broker advertises.
type Endpoint struct {
	Name             string // listener name, e.g. "PLAINTEXT"
	Host             string
	Port             uint16
	SecurityProtocol int16 // Kafka's security protocol id: 0 PLAINTEXT
}

// BrokerRegistered records a broker's registration. The broker epoch is not
// in the record: applying it makes the raft index of its entry the broker's
// epoch, as KRaft uses the record's offset, which is unique, increasing and the
// same on every node. The broker starts fenced until it has caught up with the
// metadata log.
type BrokerRegistered struct {
	BrokerID    int32
	Incarnation UUID // differs on every process start
	Endpoints   []Endpoint
	Rack        string // "" when not set
}

// BrokerFenced records that a broker may no longer lead or be in an ISR
// (its heartbeats lapsed, or it shut down).
type BrokerFenced struct {
	BrokerID    int32
	BrokerEpoch int64
}

// BrokerUnfenced records that a fenced broker caught up and may lead again.
type BrokerUnfenced struct {
	BrokerID    int32
	BrokerEpoch int64
}

// BrokerUnregistered removes a broker from the cluster.
type BrokerUnregistered struct {
	BrokerID    int32
	BrokerEpoch int64
}

// ConfigEntry is one configuration key and value.
type ConfigEntry struct {
	Name  string
	Value string
}

// Topic records a topic's creation.
type Topic struct {
	Name    string
	ID      UUID
	Configs []ConfigEntry // the topic's overrides of broker defaults
}

// TopicRemoved records a topic's deletion (and of all its partitions).
type TopicRemoved struct {
	ID UUID
}

// NoLeader is the leader of a partition without one (offline).
const NoLeader int32 = -1

// Partition records a partition's creation, with its full state.
type Partition struct {
	TopicID        UUID
	Partition      int32
	Replicas       []int32 // assignment order: the first is the preferred leader
	ISR            []int32
	Leader         int32 // NoLeader when offline
	LeaderEpoch    int32 // increases on every leader change
	PartitionEpoch int32 // increases on every change of any field
}

// PartitionChange records a change of a partition's leader or ISR. It carries
// the new state whole, so applying it needs no arithmetic.
type PartitionChange struct {
	TopicID        UUID
	Partition      int32
	Leader         int32
	ISR            []int32
	LeaderEpoch    int32
	PartitionEpoch int32
}

// Config resource types, as Kafka numbers them.
const (
	ResourceTopic  int8 = 2
	ResourceBroker int8 = 4
)

// ConfigChange sets or (with Delete) removes one configuration key of a topic
// or a broker. Broker resource name "" is the cluster-wide default.
type ConfigChange struct {
	ResourceType int8
	ResourceName string
	Name         string
	Value        string
	Delete       bool
}

// NoOp carries nothing; see TypeNoOp.
type NoOp struct{}

// ProducerIDsAllocated records that broker BrokerID, at BrokerEpoch, took
// the producer ids from the image's NextProducerID up to NextProducerID
// (exclusive), which becomes the image's. Only the controller hands out
// producer ids, and through the log, so that a block is never given twice,
// not even across a controller failover. The broker and its epoch say who
// asked; applying the record checks only that NextProducerID advances, since
// a snapshot (which keeps no allocating broker) holds one with both 0.
type ProducerIDsAllocated struct {
	BrokerID       int32
	BrokerEpoch    int64
	NextProducerID int64
}

func (*BrokerRegistered) Type() RecordType     { return TypeBrokerRegistered }
func (*BrokerFenced) Type() RecordType         { return TypeBrokerFenced }
func (*BrokerUnfenced) Type() RecordType       { return TypeBrokerUnfenced }
func (*BrokerUnregistered) Type() RecordType   { return TypeBrokerUnregistered }
func (*Topic) Type() RecordType                { return TypeTopic }
func (*TopicRemoved) Type() RecordType         { return TypeTopicRemoved }
func (*Partition) Type() RecordType            { return TypePartition }
func (*PartitionChange) Type() RecordType      { return TypePartitionChange }
func (*ConfigChange) Type() RecordType         { return TypeConfigChange }
func (*NoOp) Type() RecordType                 { return TypeNoOp }
func (*ProducerIDsAllocated) Type() RecordType { return TypeProducerIDsAllocated }
