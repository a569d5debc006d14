package raft

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Folding records into the Image (image_types.go), the Delta each entry
// makes, and the image's snapshot encoding.

// ErrInconsistent is wrapped by Image.Apply's error for an entry whose
// records do not fit the image: a partition of an unknown topic, a topic
// name already taken, a fence of a stale broker epoch, an offset that does
// not advance. Every node would fail the same way on the same committed
// entry, so the caller stops the node rather than skip or half-apply it.
var ErrInconsistent = errors.New("raft: record inconsistent with the metadata image")

// NewImage returns the empty image, before the first entry of the log.
func NewImage() *Image {
	return &Image{
		Brokers:       map[int32]*BrokerImage{},
		Topics:        map[UUID]*TopicImage{},
		Names:         map[string]UUID{},
		BrokerConfigs: map[string]map[string]string{},
	}
}

// Delta is what one entry changed, for those who react to changes (a
// broker's replica manager) rather than read the whole image. Config
// changes and producer id blocks are not listed: whoever needs a config or
// the next producer id reads it from the image.
type Delta struct {
	Offset, Epoch uint64 // of the entry, as in the image it made
	// Brokers registered, re-registered, fenced, unfenced or unregistered,
	// sorted by id.
	Brokers []int32
	// Topics created and removed, sorted by name (then id).
	TopicsCreated, TopicsRemoved []UUID
	// Partitions created, changed or removed (a removed topic's partitions
	// are here with New nil), sorted by topic name, topic id and partition.
	Partitions []PartitionDelta
}

// PartitionDelta is one partition's change.
type PartitionDelta struct {
	TopicID   UUID
	Topic     string
	Partition int32
	Old, New  *PartitionImage // Old nil when created, New nil when removed
}

// LocalChanges are the partition changes of one Delta that concern one
// broker, each with the state to act on (its leader epoch and ISR).
type LocalChanges struct {
	Leaders   []LocalPartition // changed partitions the broker now leads
	Followers []LocalPartition // changed partitions it now follows: a replica, not the leader
	Stopped   []LocalPartition // partitions it no longer hosts: State nil when the topic was removed
}

// LocalPartition is one partition a LocalChanges lists.
type LocalPartition struct {
	TopicID   UUID
	Topic     string
	Partition int32
	State     *PartitionImage // after the delta; nil when the partition was removed
}

// Local picks out of d the partitions broker brokerID must react to, in d's
// order. A partition whose replicas include the broker is a leader or a
// follower; one whose replicas included it but no longer do (or that was
// removed with its topic) is stopped.
func (d *Delta) Local(brokerID int32) LocalChanges {
	var lc LocalChanges
	for _, pd := range d.Partitions {
		lp := LocalPartition{TopicID: pd.TopicID, Topic: pd.Topic, Partition: pd.Partition, State: pd.New}
		switch {
		case pd.New != nil && containsInt32(pd.New.Replicas, brokerID):
			if pd.New.Leader == brokerID {
				lc.Leaders = append(lc.Leaders, lp)
			} else {
				lc.Followers = append(lc.Followers, lp)
			}
		case pd.Old != nil && containsInt32(pd.Old.Replicas, brokerID):
			lc.Stopped = append(lc.Stopped, lp)
		}
	}
	return lc
}

// Topic returns the topic named name.
func (im *Image) Topic(name string) (*TopicImage, bool) {
	id, ok := im.Names[name]
	if !ok {
		return nil, false
	}
	t, ok := im.Topics[id]
	return t, ok
}

// Partition returns partition p of the topic with id topicID.
func (im *Image) Partition(topicID UUID, p int32) (*PartitionImage, bool) {
	t, ok := im.Topics[topicID]
	if !ok || p < 0 || int(p) >= len(t.Partitions) {
		return nil, false
	}
	return t.Partitions[p], true
}

// TopicsByName returns every topic, sorted by name.
func (im *Image) TopicsByName() []*TopicImage {
	ts := slices.Collect(maps.Values(im.Topics))
	slices.SortFunc(ts, func(a, b *TopicImage) int { return cmp.Compare(a.Name, b.Name) })
	return ts
}

// UnfencedBrokers returns the brokers that may lead and be in an ISR,
// sorted by id.
func (im *Image) UnfencedBrokers() []*BrokerImage {
	var bs []*BrokerImage
	for _, b := range im.Brokers {
		if !b.Fenced {
			bs = append(bs, b)
		}
	}
	slices.SortFunc(bs, func(a, b *BrokerImage) int { return cmp.Compare(a.ID, b.ID) })
	return bs
}

// PartitionsLedBy counts the partitions broker id leads.
func (im *Image) PartitionsLedBy(id int32) int {
	n := 0
	for _, t := range im.Topics {
		for _, p := range t.Partitions {
			if p.Leader == id {
				n++
			}
		}
	}
	return n
}

// Apply folds the records of the entry at raft index offset, of raft term
// epoch, into a new image, and says what changed. Records apply in order and
// atomically: when one does not fit (the error wraps ErrInconsistent, and
// ErrInvalidRecord too for a record Validate rejects) there is no new image,
// and im is unchanged, as it always is: the new image shares every topic,
// partition and broker that did not change and copies the rest.
//
// Offsets must increase and epochs must not decrease from entry to entry. A
// BrokerRegistered makes offset the broker's epoch.
func (im *Image) Apply(offset, epoch uint64, records []Record) (*Image, *Delta, error) {
	switch {
	case offset <= im.Offset:
		return nil, nil, fmt.Errorf("%w: entry at offset %d does not follow the image at offset %d", ErrInconsistent, offset, im.Offset)
	case epoch < im.Epoch:
		return nil, nil, fmt.Errorf("%w: entry at offset %d has epoch %d, older than the image's %d", ErrInconsistent, offset, epoch, im.Epoch)
	case !fitsBrokerEpoch(offset):
		return nil, nil, fmt.Errorf("%w: offset %d does not fit a broker epoch", ErrInconsistent, offset)
	}
	b := newImageBuilder(im, offset, epoch)
	for i, r := range records {
		if err := b.apply(r); err != nil {
			return nil, nil, fmt.Errorf("%w: entry at offset %d, record %d of %d: %w", ErrInconsistent, offset, i+1, len(records), err)
		}
	}
	return b.next, b.delta(), nil
}

// imageBuilder makes the image after an entry. It starts as a shallow copy
// of the old image and copies a map, topic or broker the first time it is
// written, remembering what it owns so that later records of the entry
// write to the copy in place. A record that does not fit returns its error
// before writing anything, leaving the builder as the records before it
// left it.
type imageBuilder struct {
	old, next *Image
	offset    uint64

	ownBrokers, ownTopics, ownNames, ownBrokerConfigs bool
	ownTopic                                          map[UUID]bool   // TopicImage (and Partitions slice) copied
	ownTopicConfigs                                   map[UUID]bool   // TopicImage.Configs copied
	ownBrokerConfig                                   map[string]bool // inner map of BrokerConfigs copied
	removed                                           map[UUID]bool   // topic ids removed by this entry

	touchedBrokers    map[int32]bool
	touchedTopics     map[UUID]bool
	touchedPartitions map[imagePartitionKey]bool
}

type imagePartitionKey struct {
	topic     UUID
	partition int32
}

func newImageBuilder(old *Image, offset, epoch uint64) *imageBuilder {
	next := *old
	next.Offset, next.Epoch = offset, epoch
	return &imageBuilder{old: old, next: &next, offset: offset}
}

func (b *imageBuilder) apply(r Record) error {
	if err := Validate(r); err != nil {
		return err
	}
	switch r := r.(type) {
	case *BrokerRegistered:
		b.setBroker(&BrokerImage{
			ID:          r.BrokerID,
			Incarnation: r.Incarnation,
			Epoch:       int64(b.offset),
			Endpoints:   slices.Clone(r.Endpoints),
			Rack:        r.Rack,
			Fenced:      true,
		})
	case *BrokerFenced:
		return b.setFenced(r.Type(), r.BrokerID, r.BrokerEpoch, true)
	case *BrokerUnfenced:
		return b.setFenced(r.Type(), r.BrokerID, r.BrokerEpoch, false)
	case *BrokerUnregistered:
		if _, err := b.broker(r.Type(), r.BrokerID, r.BrokerEpoch); err != nil {
			return err
		}
		b.mutableBrokers()
		delete(b.next.Brokers, r.BrokerID)
		b.touchBroker(r.BrokerID)
	case *Topic:
		return b.createTopic(r)
	case *TopicRemoved:
		t, ok := b.next.Topics[r.ID]
		if !ok {
			return fmt.Errorf("removal of unknown topic %s", r.ID)
		}
		b.mutableTopics()
		b.mutableNames()
		delete(b.next.Topics, r.ID)
		delete(b.next.Names, t.Name)
		if b.removed == nil {
			b.removed = map[UUID]bool{}
		}
		b.removed[r.ID] = true
		b.touchTopic(r.ID)
	case *Partition:
		return b.createPartition(r)
	case *PartitionChange:
		return b.changePartition(r)
	case *ConfigChange:
		return b.changeConfig(r)
	case *ProducerIDsAllocated:
		// Strictly forward, as KRaft's ProducerIdControlManager.replay: a
		// record that did not advance would hand out ids given before.
		if r.NextProducerID <= b.next.NextProducerID {
			return fmt.Errorf("next producer id %d does not advance from %d", r.NextProducerID, b.next.NextProducerID)
		}
		b.next.NextProducerID = r.NextProducerID
	case *NoOp:
	}
	return nil
}

func (b *imageBuilder) mutableBrokers() {
	if !b.ownBrokers {
		b.next.Brokers = cloneOrMake(b.old.Brokers)
		b.ownBrokers = true
	}
}

func (b *imageBuilder) mutableTopics() {
	if !b.ownTopics {
		b.next.Topics = cloneOrMake(b.old.Topics)
		b.ownTopics = true
	}
}

func (b *imageBuilder) mutableNames() {
	if !b.ownNames {
		b.next.Names = cloneOrMake(b.old.Names)
		b.ownNames = true
	}
}

// mutableTopic returns the entry's own copy of topic id, which must exist.
func (b *imageBuilder) mutableTopic(id UUID) *TopicImage {
	t := b.next.Topics[id]
	if b.ownTopic[id] {
		return t
	}
	c := *t
	c.Partitions = slices.Clone(t.Partitions)
	b.mutableTopics()
	b.next.Topics[id] = &c
	b.own(id)
	return &c
}

func (b *imageBuilder) own(id UUID) {
	if b.ownTopic == nil {
		b.ownTopic = map[UUID]bool{}
	}
	b.ownTopic[id] = true
}

func (b *imageBuilder) touchBroker(id int32) {
	if b.touchedBrokers == nil {
		b.touchedBrokers = map[int32]bool{}
	}
	b.touchedBrokers[id] = true
}

func (b *imageBuilder) touchTopic(id UUID) {
	if b.touchedTopics == nil {
		b.touchedTopics = map[UUID]bool{}
	}
	b.touchedTopics[id] = true
}

func (b *imageBuilder) touchPartition(id UUID, p int32) {
	if b.touchedPartitions == nil {
		b.touchedPartitions = map[imagePartitionKey]bool{}
	}
	b.touchedPartitions[imagePartitionKey{id, p}] = true
}

func (b *imageBuilder) setBroker(bi *BrokerImage) {
	b.mutableBrokers()
	b.next.Brokers[bi.ID] = bi
	b.touchBroker(bi.ID)
}

// broker returns the registration a record of type t names, which must
// exist at that epoch.
func (b *imageBuilder) broker(t RecordType, id int32, epoch int64) (*BrokerImage, error) {
	bi, ok := b.next.Brokers[id]
	if !ok {
		return nil, fmt.Errorf("%s of unknown broker %d", t, id)
	}
	if bi.Epoch != epoch {
		return nil, fmt.Errorf("%s of broker %d at epoch %d, but its epoch is %d", t, id, epoch, bi.Epoch)
	}
	return bi, nil
}

func (b *imageBuilder) setFenced(t RecordType, id int32, epoch int64, fenced bool) error {
	bi, err := b.broker(t, id, epoch)
	if err != nil {
		return err
	}
	if bi.Fenced != fenced {
		c := *bi
		c.Fenced = fenced
		b.setBroker(&c)
	}
	return nil
}

func (b *imageBuilder) createTopic(r *Topic) error {
	if t, ok := b.next.Topics[r.ID]; ok {
		return fmt.Errorf("topic id %s already exists, named %q", r.ID, t.Name)
	}
	if id, ok := b.next.Names[r.Name]; ok {
		return fmt.Errorf("topic name %q is already used by topic id %s", r.Name, id)
	}
	if b.removed[r.ID] {
		return fmt.Errorf("topic id %s is re-created in the entry that removes it", r.ID)
	}
	configs := make(map[string]string, len(r.Configs))
	for _, c := range r.Configs {
		configs[c.Name] = c.Value
	}
	b.mutableTopics()
	b.mutableNames()
	b.next.Topics[r.ID] = &TopicImage{Name: r.Name, ID: r.ID, Configs: configs}
	b.next.Names[r.Name] = r.ID
	b.own(r.ID)
	if b.ownTopicConfigs == nil {
		b.ownTopicConfigs = map[UUID]bool{}
	}
	b.ownTopicConfigs[r.ID] = true
	b.touchTopic(r.ID)
	return nil
}

// createPartition adds the next partition of a topic: partitions are
// created in order, so a topic's are always 0..n-1 with no gap.
func (b *imageBuilder) createPartition(r *Partition) error {
	t, ok := b.next.Topics[r.TopicID]
	if !ok {
		return fmt.Errorf("partition %d of unknown topic %s", r.Partition, r.TopicID)
	}
	if n := len(t.Partitions); int(r.Partition) < n {
		return fmt.Errorf("partition %d of topic %q already exists", r.Partition, t.Name)
	} else if int(r.Partition) > n {
		return fmt.Errorf("partition %d of topic %q would leave a gap: the topic has %d partitions", r.Partition, t.Name, n)
	}
	t = b.mutableTopic(r.TopicID)
	t.Partitions = append(t.Partitions, &PartitionImage{
		Replicas:       cloneInt32s(r.Replicas),
		ISR:            cloneInt32s(r.ISR),
		Leader:         r.Leader,
		LeaderEpoch:    r.LeaderEpoch,
		PartitionEpoch: r.PartitionEpoch,
	})
	b.touchPartition(r.TopicID, r.Partition)
	return nil
}

// changePartition replaces a partition's leader and ISR. The epochs must
// move as KRaft moves them: the partition epoch increases on every change,
// the leader epoch never decreases and increases when the leader changes.
func (b *imageBuilder) changePartition(r *PartitionChange) error {
	t, ok := b.next.Topics[r.TopicID]
	if !ok {
		return fmt.Errorf("change of partition %d of unknown topic %s", r.Partition, r.TopicID)
	}
	if int(r.Partition) >= len(t.Partitions) {
		return fmt.Errorf("change of unknown partition %d of topic %q (it has %d)", r.Partition, t.Name, len(t.Partitions))
	}
	old := t.Partitions[r.Partition]
	for _, id := range r.ISR {
		if !containsInt32(old.Replicas, id) {
			return fmt.Errorf("change of %s-%d: ISR %v has %d, not a replica %v", t.Name, r.Partition, r.ISR, id, old.Replicas)
		}
	}
	switch {
	case r.PartitionEpoch <= old.PartitionEpoch:
		return fmt.Errorf("change of %s-%d: partition epoch %d does not increase from %d", t.Name, r.Partition, r.PartitionEpoch, old.PartitionEpoch)
	case r.LeaderEpoch < old.LeaderEpoch:
		return fmt.Errorf("change of %s-%d: leader epoch %d decreases from %d", t.Name, r.Partition, r.LeaderEpoch, old.LeaderEpoch)
	case r.Leader != old.Leader && r.LeaderEpoch == old.LeaderEpoch:
		return fmt.Errorf("change of %s-%d: leader %d -> %d in the same leader epoch %d", t.Name, r.Partition, old.Leader, r.Leader, r.LeaderEpoch)
	}
	t = b.mutableTopic(r.TopicID)
	t.Partitions[r.Partition] = &PartitionImage{
		Replicas:       old.Replicas, // never written: shared
		ISR:            cloneInt32s(r.ISR),
		Leader:         r.Leader,
		LeaderEpoch:    r.LeaderEpoch,
		PartitionEpoch: r.PartitionEpoch,
	}
	b.touchPartition(r.TopicID, r.Partition)
	return nil
}

func (b *imageBuilder) changeConfig(r *ConfigChange) error {
	var configs map[string]string
	switch r.ResourceType {
	case ResourceTopic:
		id, ok := b.next.Names[r.ResourceName]
		if !ok {
			return fmt.Errorf("config %q of unknown topic %q", r.Name, r.ResourceName)
		}
		t := b.mutableTopic(id)
		if !b.ownTopicConfigs[id] {
			t.Configs = cloneOrMake(t.Configs)
			if b.ownTopicConfigs == nil {
				b.ownTopicConfigs = map[UUID]bool{}
			}
			b.ownTopicConfigs[id] = true
		}
		configs = t.Configs
	case ResourceBroker:
		if !b.ownBrokerConfigs {
			b.next.BrokerConfigs = cloneOrMake(b.old.BrokerConfigs)
			b.ownBrokerConfigs = true
		}
		if !b.ownBrokerConfig[r.ResourceName] {
			b.next.BrokerConfigs[r.ResourceName] = cloneOrMake(b.next.BrokerConfigs[r.ResourceName])
			if b.ownBrokerConfig == nil {
				b.ownBrokerConfig = map[string]bool{}
			}
			b.ownBrokerConfig[r.ResourceName] = true
		}
		configs = b.next.BrokerConfigs[r.ResourceName]
		// A resource with no keys left is not kept, so that equal configs
		// make equal images.
		defer func() {
			if len(configs) == 0 {
				delete(b.next.BrokerConfigs, r.ResourceName)
				delete(b.ownBrokerConfig, r.ResourceName)
			}
		}()
	}
	if r.Delete {
		delete(configs, r.Name)
	} else {
		configs[r.Name] = r.Value
	}
	return nil
}

// cloneOrMake copies m, making a map even of a nil one (an Image built by
// hand, not by NewImage) so that the copy can be written.
func cloneOrMake[M ~map[K]V, K comparable, V any](m M) M {
	if m == nil {
		return M{}
	}
	return maps.Clone(m)
}

// cloneInt32s copies s, making an empty list nil so that equal states make
// deep-equal images however their records spelled "none".
func cloneInt32s(s []int32) []int32 {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

// delta compares what the entry touched in the old and the new image: a
// topic created and removed in one entry, or a broker registered and
// unregistered, changed nothing.
func (b *imageBuilder) delta() *Delta {
	old, next := b.old, b.next
	d := &Delta{Offset: next.Offset, Epoch: next.Epoch}
	for id := range b.touchedBrokers {
		o, n := old.Brokers[id], next.Brokers[id]
		if o != nil && n != nil && o != n && sameBroker(o, n) {
			// Fenced and unfenced again in one entry: keep sharing.
			next.Brokers[id] = o
			continue
		}
		if o != n {
			d.Brokers = append(d.Brokers, id)
		}
	}
	slices.Sort(d.Brokers)

	parts := b.touchedPartitions
	for id := range b.touchedTopics {
		o, n := old.Topics[id], next.Topics[id]
		switch {
		case o == nil && n != nil:
			d.TopicsCreated = append(d.TopicsCreated, id)
		case o != nil && n == nil:
			d.TopicsRemoved = append(d.TopicsRemoved, id)
			if parts == nil {
				parts = map[imagePartitionKey]bool{}
			}
			for p := range o.Partitions {
				parts[imagePartitionKey{id, int32(p)}] = true
			}
		}
	}
	byName := func(im *Image) func(a, b UUID) int {
		return func(a, b UUID) int {
			return cmp.Or(cmp.Compare(im.Topics[a].Name, im.Topics[b].Name), bytes.Compare(a[:], b[:]))
		}
	}
	slices.SortFunc(d.TopicsCreated, byName(next))
	slices.SortFunc(d.TopicsRemoved, byName(old))

	for k := range parts {
		pd := PartitionDelta{TopicID: k.topic, Partition: k.partition}
		if t := old.Topics[k.topic]; t != nil && int(k.partition) < len(t.Partitions) {
			pd.Old, pd.Topic = t.Partitions[k.partition], t.Name
		}
		if t := next.Topics[k.topic]; t != nil && int(k.partition) < len(t.Partitions) {
			pd.New, pd.Topic = t.Partitions[k.partition], t.Name
		}
		if pd.Old != pd.New {
			d.Partitions = append(d.Partitions, pd)
		}
	}
	slices.SortFunc(d.Partitions, func(a, b PartitionDelta) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), bytes.Compare(a.TopicID[:], b.TopicID[:]), cmp.Compare(a.Partition, b.Partition))
	})
	return d
}

func sameBroker(a, b *BrokerImage) bool {
	return a.ID == b.ID && a.Incarnation == b.Incarnation && a.Epoch == b.Epoch &&
		slices.Equal(a.Endpoints, b.Endpoints) && a.Rack == b.Rack && a.Fenced == b.Fenced
}

// AppendSnapshot appends the canonical encoding of the whole image (drawn in
// doc.go): equal images encode to equal bytes, whatever the order their
// records came in, so Hash compares nodes.
func (im *Image) AppendSnapshot(dst []byte) []byte {
	w := recordWriter{b: dst}
	w.u8(snapshotFormatVersion)
	w.u64(im.Offset)
	w.u64(im.Epoch)

	ids := slices.Sorted(maps.Keys(im.Brokers))
	w.uvarint(uint64(len(ids)))
	for _, id := range ids {
		bi := im.Brokers[id]
		w.i64(bi.Epoch)
		w.boolean(bi.Fenced)
		w.record(&BrokerRegistered{BrokerID: bi.ID, Incarnation: bi.Incarnation, Endpoints: bi.Endpoints, Rack: bi.Rack})
	}

	topics := im.TopicsByName()
	n := 0
	for _, t := range topics {
		n += 1 + len(t.Partitions)
	}
	for _, c := range im.BrokerConfigs {
		n += len(c)
	}
	if im.NextProducerID != 0 {
		n++
	}
	w.uvarint(uint64(n))
	for _, t := range topics {
		rec := Topic{Name: t.Name, ID: t.ID}
		for _, k := range slices.Sorted(maps.Keys(t.Configs)) {
			rec.Configs = append(rec.Configs, ConfigEntry{Name: k, Value: t.Configs[k]})
		}
		w.record(&rec)
		for i, p := range t.Partitions {
			w.record(&Partition{TopicID: t.ID, Partition: int32(i), Replicas: p.Replicas, ISR: p.ISR,
				Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch})
		}
	}
	for _, res := range slices.Sorted(maps.Keys(im.BrokerConfigs)) {
		c := im.BrokerConfigs[res]
		for _, k := range slices.Sorted(maps.Keys(c)) {
			w.record(&ConfigChange{ResourceType: ResourceBroker, ResourceName: res, Name: k, Value: c[k]})
		}
	}
	if im.NextProducerID != 0 {
		// The image does not keep who took the last block: broker 0 at
		// epoch 0 stands for nobody, and applies as any allocation does.
		w.record(&ProducerIDsAllocated{NextProducerID: im.NextProducerID})
	}
	return w.b
}

// Hash is the SHA-256 of the image's snapshot encoding: nodes that applied
// the same log have the same hash.
func (im *Image) Hash() [32]byte { return sha256.Sum256(im.AppendSnapshot(nil)) }

// DecodeSnapshot decodes an image encoded by AppendSnapshot. Like
// DecodeEntry it never panics and allocates in proportion to len(b); it
// accepts only the canonical encoding, so the image re-encodes to b. Errors
// wrap ErrBadRecord.
func DecodeSnapshot(b []byte) (*Image, error) {
	bad := func(format string, args ...any) (*Image, error) {
		return nil, fmt.Errorf("%w: snapshot: "+format, append([]any{ErrBadRecord}, args...)...)
	}
	r := recordReader{b: b}
	v := r.u8()
	if r.err == nil && v != snapshotFormatVersion {
		return bad("unknown snapshot format version %d (this decoder knows %d)", v, snapshotFormatVersion)
	}
	im := NewImage()
	im.Offset, im.Epoch = r.u64(), r.u64()
	// A broker is at least its epoch, fenced flag and a record's framing.
	nb := r.count(8 + 1 + minRecordBytes)
	if r.err != nil {
		return bad("header: %v", r.err)
	}
	for i := range nb {
		epoch, fenced := r.i64(), r.boolean()
		rec := r.record()
		if r.err != nil {
			return bad("broker %d of %d: %v", i+1, nb, r.err)
		}
		reg, ok := rec.(*BrokerRegistered)
		if !ok {
			return bad("broker %d of %d: a %s record where a BrokerRegistered belongs", i+1, nb, rec.Type())
		}
		if err := Validate(reg); err != nil {
			return nil, fmt.Errorf("%w: snapshot: broker %d of %d: %w", ErrBadRecord, i+1, nb, err)
		}
		if epoch < 0 || uint64(epoch) > im.Offset {
			return bad("broker %d has epoch %d, outside [0, %d]", reg.BrokerID, epoch, im.Offset)
		}
		if _, dup := im.Brokers[reg.BrokerID]; dup {
			return bad("broker %d is listed twice", reg.BrokerID)
		}
		im.Brokers[reg.BrokerID] = &BrokerImage{ID: reg.BrokerID, Incarnation: reg.Incarnation, Epoch: epoch,
			Endpoints: reg.Endpoints, Rack: reg.Rack, Fenced: fenced}
	}
	nr := r.count(minRecordBytes)
	if r.err != nil {
		return bad("record count: %v", r.err)
	}
	builder := newImageBuilder(im, im.Offset, im.Epoch)
	for i := range nr {
		rec := r.record()
		if r.err != nil {
			return bad("record %d of %d: %v", i+1, nr, r.err)
		}
		switch c := rec.(type) {
		case *Topic, *Partition:
		case *ConfigChange:
			if c.ResourceType != ResourceBroker || c.Delete {
				return bad("record %d of %d: a ConfigChange of a snapshot sets a broker config", i+1, nr)
			}
		case *ProducerIDsAllocated:
			if c.BrokerID != 0 || c.BrokerEpoch != 0 {
				return bad("record %d of %d: a ProducerIDsAllocated of a snapshot names broker 0 at epoch 0, not %d at %d", i+1, nr, c.BrokerID, c.BrokerEpoch)
			}
		default:
			return bad("record %d of %d: a %s record, which a snapshot does not hold", i+1, nr, rec.Type())
		}
		if err := builder.apply(rec); err != nil {
			return nil, fmt.Errorf("%w: snapshot: record %d of %d: %w: %w", ErrBadRecord, i+1, nr, ErrInconsistent, err)
		}
	}
	if len(r.b) > 0 {
		return bad("%d trailing bytes", len(r.b))
	}
	im = builder.next
	// Every field is checked above except order and uniqueness; the
	// canonical encoding is the one AppendSnapshot makes.
	if !bytes.Equal(im.AppendSnapshot(make([]byte, 0, len(b))), b) {
		return bad("not in canonical form (unsorted, duplicated or unnormalized)")
	}
	return im, nil
}
