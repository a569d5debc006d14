package raft

// The metadata image: what the records in the log add up to. An Image is
// immutable once built: applying records makes a new Image that shares every
// part that did not change (copy-on-write), so any goroutine may read the
// current one without locks while the next is being built.

// Image is the cluster metadata after the records up to Offset.
type Image struct {
	Offset  uint64 // the raft index of the last entry applied
	Epoch   uint64 // the raft term of that entry: the controller epoch
	Brokers map[int32]*BrokerImage
	Topics  map[UUID]*TopicImage
	Names   map[string]UUID // topic name -> id
	// Configs of non-topic resources: broker id as a string, or "" for the
	// cluster-wide default.
	BrokerConfigs map[string]map[string]string
	// NextProducerID is the first producer id of the next block the
	// controller hands out (AllocateProducerIDs); every id below it has
	// been given to a broker. 0 until the first block.
	NextProducerID int64
}

// BrokerImage is one registered broker.
type BrokerImage struct {
	ID          int32
	Incarnation UUID
	Epoch       int64
	Endpoints   []Endpoint
	Rack        string
	Fenced      bool
}

// TopicImage is one topic and its partitions, indexed by partition number.
type TopicImage struct {
	Name       string
	ID         UUID
	Configs    map[string]string
	Partitions []*PartitionImage
}

// PartitionImage is the state of one partition.
type PartitionImage struct {
	Replicas       []int32
	ISR            []int32
	Leader         int32
	LeaderEpoch    int32
	PartitionEpoch int32
}
