package raft

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"gregor/internal/testseed"
)

// imgID is the topic id tests call n; imgFmtID prints it back as n.
func imgID(n uint64) UUID {
	var u UUID
	binary.BigEndian.PutUint64(u[8:], n)
	return u
}

func imgFmtID(u UUID) string {
	if [8]byte(u[:8]) == [8]byte{} {
		return strconv.FormatUint(binary.BigEndian.Uint64(u[8:]), 10)
	}
	return u.String()
}

// imgDeepCopy copies everything reachable from im.
func imgDeepCopy(im *Image) *Image {
	c := *im
	c.Brokers = maps.Clone(im.Brokers)
	for id, b := range c.Brokers {
		nb := *b
		nb.Endpoints = slices.Clone(b.Endpoints)
		c.Brokers[id] = &nb
	}
	c.Topics = maps.Clone(im.Topics)
	for id, t := range c.Topics {
		nt := *t
		nt.Configs = maps.Clone(t.Configs)
		nt.Partitions = slices.Clone(t.Partitions)
		for i, p := range nt.Partitions {
			np := *p
			np.Replicas = slices.Clone(p.Replicas)
			np.ISR = slices.Clone(p.ISR)
			nt.Partitions[i] = &np
		}
		c.Topics[id] = &nt
	}
	c.Names = maps.Clone(im.Names)
	c.BrokerConfigs = maps.Clone(im.BrokerConfigs)
	for k, v := range c.BrokerConfigs {
		c.BrokerConfigs[k] = maps.Clone(v)
	}
	return &c
}

// imgMustApply applies one entry after im's offset, in im's epoch.
func imgMustApply(tb testing.TB, im *Image, records ...Record) (*Image, *Delta) {
	tb.Helper()
	next, d, err := im.Apply(im.Offset+1, max(im.Epoch, 1), records)
	if err != nil {
		tb.Fatal(err)
	}
	return next, d
}

func imgBroker(id int32) *BrokerRegistered {
	return &BrokerRegistered{BrokerID: id, Incarnation: UUID{0: 0xbb, 15: byte(id)},
		Endpoints: []Endpoint{{Name: "PLAINTEXT", Host: "localhost", Port: uint16(9090 + id)}}}
}

// imageRich is an image with fenced and unfenced brokers, topics with
// partitions and configs, and broker configs.
func imageRich(tb testing.TB) *Image {
	im, _ := imgMustApply(tb, NewImage(), imgBroker(1), imgBroker(2), imgBroker(3), imgBroker(4))
	im, _ = imgMustApply(tb, im,
		&BrokerUnfenced{BrokerID: 1, BrokerEpoch: 1}, &BrokerUnfenced{BrokerID: 2, BrokerEpoch: 1},
		&BrokerUnfenced{BrokerID: 3, BrokerEpoch: 1})
	im, _ = imgMustApply(tb, im,
		&Topic{Name: "orders", ID: imgID(1), Configs: []ConfigEntry{{"retention.ms", "1000"}}},
		&Partition{TopicID: imgID(1), Partition: 0, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}, Leader: 1},
		&Partition{TopicID: imgID(1), Partition: 1, Replicas: []int32{2, 3, 1}, ISR: []int32{2, 3}, Leader: 2},
		&Partition{TopicID: imgID(1), Partition: 2, Replicas: []int32{3, 1, 2}, ISR: []int32{3}, Leader: 3},
		&Topic{Name: "payments", ID: imgID(2)},
		&Partition{TopicID: imgID(2), Partition: 0, Replicas: []int32{4}, Leader: NoLeader},
		&Topic{Name: "audit", ID: imgID(3)},
		&Partition{TopicID: imgID(3), Partition: 0, Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: 2},
		&ConfigChange{ResourceType: ResourceBroker, ResourceName: "", Name: "log.retention.ms", Value: "60000"},
		&ConfigChange{ResourceType: ResourceBroker, ResourceName: "1", Name: "num.io.threads", Value: "8"},
	)
	im, _ = imgMustApply(tb, im, &ProducerIDsAllocated{BrokerID: 2, BrokerEpoch: 1, NextProducerID: 2000})
	return im
}

// imageSamples are images to seed snapshot tests with.
func imageSamples(tb testing.TB) []*Image {
	rich := imageRich(tb)
	emptyTopic, _ := imgMustApply(tb, NewImage(), &Topic{Name: "t", ID: imgID(9)})
	return []*Image{NewImage(), rich, emptyTopic}
}

func TestImageDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata/image", func(t *testing.T, path string) {
		h := &imageHarness{im: NewImage(), epoch: 1}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			return h.run(t, d)
		})
	})
}

// imageHarness runs a datadriven file: each record command (register,
// fence, unfence, unregister, topic, remove-topic, partition, change,
// config, producer-ids, noop) applies one entry holding that record; "entry" applies its
// input lines, one record each, as one entry. Both print the delta, or the
// error and nothing applied. "image" prints the image, "local id=N" what the
// last delta means to broker N, "elect epoch=N" sets the raft term of the
// next entries, "unfenced" and "led-by id=N" call those accessors,
// "snapshot" checks the snapshot round trip and prints its size.
type imageHarness struct {
	im           *Image
	epoch        uint64
	last         *Delta
	incarnations byte
}

func (h *imageHarness) run(t *testing.T, d *datadriven.TestData) string {
	switch d.Cmd {
	case "image":
		return imgFormat(h.im)
	case "elect":
		d.ScanArgs(t, "epoch", &h.epoch)
		return fmt.Sprintf("epoch=%d\n", h.epoch)
	case "local":
		var id int32
		d.ScanArgs(t, "id", &id)
		if h.last == nil {
			d.Fatalf(t, "no delta yet")
		}
		return imgFormatLocal(h.last.Local(id))
	case "unfenced":
		var ids []string
		for _, b := range h.im.UnfencedBrokers() {
			ids = append(ids, strconv.Itoa(int(b.ID)))
		}
		return "unfenced: " + strings.Join(ids, ",") + "\n"
	case "led-by":
		var id int32
		d.ScanArgs(t, "id", &id)
		return fmt.Sprintf("broker %d leads %d partitions\n", id, h.im.PartitionsLedBy(id))
	case "snapshot":
		b := h.im.AppendSnapshot(nil)
		im, err := DecodeSnapshot(b)
		if err != nil {
			d.Fatalf(t, "decoding the snapshot: %v", err)
		}
		if !reflect.DeepEqual(im, h.im) || im.Hash() != h.im.Hash() {
			d.Fatalf(t, "the snapshot did not round trip:\n%s\nbecame\n%s", imgFormat(h.im), imgFormat(im))
		}
		return fmt.Sprintf("snapshot of %d bytes round trips\n", len(b))
	case "entry":
		var lines []string
		if in := strings.TrimSpace(d.Input); in != "" {
			lines = strings.Split(in, "\n")
		}
		return h.apply(t, d, lines, nil)
	default:
		return h.apply(t, d, nil, d)
	}
}

// apply applies one entry: the records of lines, or the one of d's command.
// Each record's defaults (broker epochs, topic ids by name, partition
// states) are read from the image as the records before it left it.
func (h *imageHarness) apply(t *testing.T, d *datadriven.TestData, lines []string, one *datadriven.TestData) string {
	offset := h.im.Offset + 1
	scratch := newImageBuilder(h.im, offset, h.epoch)
	var recs []Record
	add := func(cmd string, args []datadriven.CmdArg) {
		rec, err := h.parse(cmd, args, scratch.next)
		if err != nil {
			d.Fatalf(t, "%s: %v", cmd, err)
		}
		recs = append(recs, rec)
		_ = scratch.apply(rec) // a record that fails leaves the scratch image as it was
	}
	if one != nil {
		add(one.Cmd, one.CmdArgs)
	}
	for _, line := range lines {
		cmd, args, err := datadriven.ParseLine(line)
		if err != nil {
			d.Fatalf(t, "%v", err)
		}
		add(cmd, args)
	}
	before := imgDeepCopy(h.im)
	next, delta, err := h.im.Apply(offset, h.epoch, recs)
	if !reflect.DeepEqual(h.im, before) {
		d.Fatalf(t, "Apply changed the image it applied to")
	}
	if err != nil {
		if !errors.Is(err, ErrInconsistent) || next != nil || delta != nil {
			d.Fatalf(t, "Apply: %v, %v, %v; want only an ErrInconsistent", next, delta, err)
		}
		return "error: " + err.Error() + "\n"
	}
	// Every image the files make round-trips through a snapshot.
	if snap, err := DecodeSnapshot(next.AppendSnapshot(nil)); err != nil || !reflect.DeepEqual(snap, next) {
		d.Fatalf(t, "snapshot round trip: %v", err)
	}
	old := h.im
	h.im, h.last = next, delta
	return imgFormatDelta(old, next, delta)
}

// imgArgs reads a record command's key=value arguments and refuses unknown
// keys, so a typo in a file does not silently apply a default.
type imgArgs struct {
	m    map[string]string
	used map[string]bool
}

func (a *imgArgs) str(k, def string) string {
	a.used[k] = true
	if v, ok := a.m[k]; ok {
		return v
	}
	return def
}

func (a *imgArgs) has(k string) bool { a.used[k] = true; _, ok := a.m[k]; return ok }

func (a *imgArgs) int(k string, def int64) int64 {
	s := a.str(k, "")
	if s == "" {
		return def
	}
	if s == "none" {
		return int64(NoLeader)
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		panic(fmt.Sprintf("%s=%s: %v", k, s, err))
	}
	return v
}

func (a *imgArgs) ids(k string, def []int32) []int32 {
	if !a.has(k) {
		return def
	}
	var ids []int32
	for f := range strings.SplitSeq(a.m[k], ",") {
		if f == "" {
			continue
		}
		v, err := strconv.ParseInt(f, 10, 32)
		if err != nil {
			panic(fmt.Sprintf("%s=%s: %v", k, a.m[k], err))
		}
		ids = append(ids, int32(v))
	}
	return ids
}

// topicID resolves topic=NAME through cur, or takes tid=N.
func (a *imgArgs) topicID(cur *Image) UUID {
	if a.has("tid") {
		return imgID(uint64(a.int("tid", 0)))
	}
	name := a.str("topic", "")
	if id, ok := cur.Names[name]; ok {
		return id
	}
	panic(fmt.Sprintf("no topic %q (use tid=N for an unknown one)", name))
}

func (h *imageHarness) parse(cmd string, cmdArgs []datadriven.CmdArg, cur *Image) (rec Record, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	a := &imgArgs{m: map[string]string{}, used: map[string]bool{}}
	for _, arg := range cmdArgs {
		a.m[arg.Key] = strings.Join(arg.Vals, ",")
	}
	brokerEpoch := func(id int32) int64 {
		def := int64(0)
		if b, ok := cur.Brokers[id]; ok {
			def = b.Epoch
		}
		return a.int("epoch", def)
	}
	switch cmd {
	case "register":
		id := int32(a.int("id", 0))
		h.incarnations++
		rec = &BrokerRegistered{
			BrokerID:    id,
			Incarnation: UUID{15: byte(a.int("inc", int64(h.incarnations)))},
			Endpoints: []Endpoint{{Name: a.str("listener", "PLAINTEXT"), Host: a.str("host", "localhost"),
				Port: uint16(a.int("port", 9090+int64(id)))}},
			Rack: a.str("rack", ""),
		}
	case "fence":
		id := int32(a.int("id", 0))
		rec = &BrokerFenced{BrokerID: id, BrokerEpoch: brokerEpoch(id)}
	case "unfence":
		id := int32(a.int("id", 0))
		rec = &BrokerUnfenced{BrokerID: id, BrokerEpoch: brokerEpoch(id)}
	case "unregister":
		id := int32(a.int("id", 0))
		rec = &BrokerUnregistered{BrokerID: id, BrokerEpoch: brokerEpoch(id)}
	case "topic":
		r := &Topic{Name: a.str("name", ""), ID: imgID(uint64(a.int("id", 0)))}
		if cs := a.str("configs", ""); cs != "" {
			for kv := range strings.SplitSeq(cs, ",") {
				k, v, _ := strings.Cut(kv, "=")
				r.Configs = append(r.Configs, ConfigEntry{Name: k, Value: v})
			}
		}
		rec = r
	case "remove-topic":
		if a.has("name") {
			rec = &TopicRemoved{ID: cur.Names[a.str("name", "")]}
			if _, ok := cur.Names[a.str("name", "")]; !ok {
				return nil, fmt.Errorf("no topic %q (use id=N for an unknown one)", a.str("name", ""))
			}
		} else {
			rec = &TopicRemoved{ID: imgID(uint64(a.int("id", 0)))}
		}
	case "partition":
		r := &Partition{TopicID: a.topicID(cur), Partition: int32(a.int("p", 0)), Replicas: a.ids("replicas", nil)}
		r.ISR = a.ids("isr", r.Replicas)
		leader := NoLeader
		if len(r.ISR) > 0 {
			leader = r.ISR[0]
		}
		r.Leader = int32(a.int("leader", int64(leader)))
		r.LeaderEpoch = int32(a.int("le", 0))
		r.PartitionEpoch = int32(a.int("pe", 0))
		rec = r
	case "change":
		r := &PartitionChange{TopicID: a.topicID(cur), Partition: int32(a.int("p", 0))}
		old, ok := cur.Partition(r.TopicID, r.Partition)
		if !ok {
			old = &PartitionImage{Leader: NoLeader}
		}
		r.Leader = int32(a.int("leader", int64(old.Leader)))
		r.ISR = a.ids("isr", old.ISR)
		le := old.LeaderEpoch
		if r.Leader != old.Leader {
			le++
		}
		r.LeaderEpoch = int32(a.int("le", int64(le)))
		r.PartitionEpoch = int32(a.int("pe", int64(old.PartitionEpoch)+1))
		rec = r
	case "config":
		r := &ConfigChange{Name: a.str("key", ""), Value: a.str("value", ""), Delete: a.has("delete")}
		switch {
		case a.has("topic"):
			r.ResourceType, r.ResourceName = ResourceTopic, a.str("topic", "")
		case a.has("broker"):
			r.ResourceType, r.ResourceName = ResourceBroker, a.str("broker", "")
		case a.has("cluster"):
			r.ResourceType = ResourceBroker
		default:
			return nil, errors.New("config needs topic=NAME, broker=ID or cluster")
		}
		rec = r
	case "producer-ids":
		id := int32(a.int("broker", 0))
		rec = &ProducerIDsAllocated{BrokerID: id, BrokerEpoch: brokerEpoch(id), NextProducerID: a.int("next", 0)}
	case "noop":
		rec = &NoOp{}
	default:
		return nil, fmt.Errorf("unknown command %q", cmd)
	}
	for k := range a.m {
		if !a.used[k] {
			return nil, fmt.Errorf("%s takes no argument %q", cmd, k)
		}
	}
	return rec, nil
}

func imgFormatIDs(ids []int32) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(int(id))
	}
	return strings.Join(s, ",")
}

func imgFormatPartition(p *PartitionImage) string {
	if p == nil {
		return "-"
	}
	leader := strconv.Itoa(int(p.Leader))
	if p.Leader == NoLeader {
		leader = "none"
	}
	return fmt.Sprintf("replicas=%s isr=%s leader=%s le=%d pe=%d",
		imgFormatIDs(p.Replicas), imgFormatIDs(p.ISR), leader, p.LeaderEpoch, p.PartitionEpoch)
}

func imgFormatConfigs(c map[string]string) string {
	var s []string
	for _, k := range slices.Sorted(maps.Keys(c)) {
		s = append(s, k+"="+c[k])
	}
	return strings.Join(s, " ")
}

func imgFormat(im *Image) string {
	var b strings.Builder
	fmt.Fprintf(&b, "image offset=%d epoch=%d\n", im.Offset, im.Epoch)
	for _, id := range slices.Sorted(maps.Keys(im.Brokers)) {
		br := im.Brokers[id]
		state := "unfenced"
		if br.Fenced {
			state = "fenced"
		}
		var eps []string
		for _, e := range br.Endpoints {
			eps = append(eps, fmt.Sprintf("%s://%s:%d", e.Name, e.Host, e.Port))
		}
		fmt.Fprintf(&b, "broker %d epoch=%d %s inc=%d", id, br.Epoch, state, br.Incarnation[15])
		if br.Rack != "" {
			fmt.Fprintf(&b, " rack=%s", br.Rack)
		}
		fmt.Fprintf(&b, " %s\n", strings.Join(eps, ","))
	}
	for _, t := range im.TopicsByName() {
		fmt.Fprintf(&b, "topic %s id=%s", t.Name, imgFmtID(t.ID))
		if len(t.Configs) > 0 {
			fmt.Fprintf(&b, " configs: %s", imgFormatConfigs(t.Configs))
		}
		b.WriteString("\n")
		for i, p := range t.Partitions {
			fmt.Fprintf(&b, "  %s-%d %s\n", t.Name, i, imgFormatPartition(p))
		}
	}
	for _, res := range slices.Sorted(maps.Keys(im.BrokerConfigs)) {
		name := "cluster"
		if res != "" {
			name = "broker " + res
		}
		fmt.Fprintf(&b, "config %s: %s\n", name, imgFormatConfigs(im.BrokerConfigs[res]))
	}
	if im.NextProducerID != 0 {
		fmt.Fprintf(&b, "next producer id %d\n", im.NextProducerID)
	}
	return b.String()
}

func imgFormatDelta(old, next *Image, d *Delta) string {
	var b strings.Builder
	fmt.Fprintf(&b, "delta offset=%d epoch=%d\n", d.Offset, d.Epoch)
	if len(d.Brokers) > 0 {
		fmt.Fprintf(&b, "  brokers: %s\n", imgFormatIDs(d.Brokers))
	}
	topics := func(label string, im *Image, ids []UUID) {
		if len(ids) == 0 {
			return
		}
		var s []string
		for _, id := range ids {
			s = append(s, fmt.Sprintf("%s(%s)", im.Topics[id].Name, imgFmtID(id)))
		}
		fmt.Fprintf(&b, "  %s: %s\n", label, strings.Join(s, " "))
	}
	topics("created", next, d.TopicsCreated)
	topics("removed", old, d.TopicsRemoved)
	for _, p := range d.Partitions {
		fmt.Fprintf(&b, "  %s-%d: %s => %s\n", p.Topic, p.Partition, imgFormatPartition(p.Old), imgFormatPartition(p.New))
	}
	return b.String()
}

func imgFormatLocal(lc LocalChanges) string {
	var b strings.Builder
	list := func(label string, ps []LocalPartition) {
		for _, p := range ps {
			state := imgFormatPartition(p.State)
			if p.State == nil {
				state = "(removed)"
			}
			fmt.Fprintf(&b, "%s %s-%d %s\n", label, p.Topic, p.Partition, state)
		}
	}
	list("lead", lc.Leaders)
	list("follow", lc.Followers)
	list("stop", lc.Stopped)
	if b.Len() == 0 {
		return "nothing\n"
	}
	return b.String()
}

// mapPointer identifies a map, to check that an unchanged one is shared.
func mapPointer[M ~map[K]V, K comparable, V any](m M) uintptr {
	return reflect.ValueOf(m).Pointer()
}

func TestApplyCopyOnWrite(t *testing.T) {
	base := imageRich(t)
	orders, payments, audit := imgID(1), imgID(2), imgID(3)
	for _, tc := range []struct {
		name    string
		records []Record
		topics  []UUID  // topics the entry changes; the others are shared
		parts   []int32 // partitions of orders it changes; the others are shared
		brokers []int32 // brokers it changes
		configs bool    // whether it changes BrokerConfigs
	}{
		{name: "noop", records: []Record{&NoOp{}}},
		{name: "fence", records: []Record{&BrokerFenced{BrokerID: 2, BrokerEpoch: 1}}, brokers: []int32{2}},
		{name: "fence a fenced broker", records: []Record{&BrokerFenced{BrokerID: 4, BrokerEpoch: 1}}},
		{name: "register", records: []Record{imgBroker(9), imgBroker(1)}, brokers: []int32{1, 9}},
		{name: "unregister", records: []Record{&BrokerUnregistered{BrokerID: 3, BrokerEpoch: 1}}, brokers: []int32{3}},
		{name: "change", topics: []UUID{orders}, parts: []int32{1},
			records: []Record{&PartitionChange{TopicID: orders, Partition: 1, Leader: 3, ISR: []int32{3}, LeaderEpoch: 1, PartitionEpoch: 1}}},
		{name: "two changes of one partition", topics: []UUID{orders}, parts: []int32{2},
			records: []Record{
				&PartitionChange{TopicID: orders, Partition: 2, Leader: 3, ISR: []int32{3, 1}, PartitionEpoch: 1},
				&PartitionChange{TopicID: orders, Partition: 2, Leader: 1, ISR: []int32{1}, LeaderEpoch: 1, PartitionEpoch: 2},
			}},
		{name: "add partition", topics: []UUID{orders}, parts: []int32{3},
			records: []Record{&Partition{TopicID: orders, Partition: 3, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}}},
		{name: "topic config", topics: []UUID{orders},
			records: []Record{&ConfigChange{ResourceType: ResourceTopic, ResourceName: "orders", Name: "retention.ms", Delete: true}}},
		{name: "producer ids", records: []Record{&ProducerIDsAllocated{BrokerID: 4, BrokerEpoch: 1, NextProducerID: 3000}}},
		{name: "broker config", configs: true,
			records: []Record{&ConfigChange{ResourceType: ResourceBroker, ResourceName: "", Name: "x", Value: "y"}}},
		{name: "remove topic", topics: []UUID{payments},
			records: []Record{&TopicRemoved{ID: payments}}},
		{name: "create topic", topics: []UUID{imgID(7)},
			records: []Record{&Topic{Name: "new", ID: imgID(7)}, &Partition{TopicID: imgID(7), Replicas: []int32{2}, ISR: []int32{2}, Leader: 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := imgDeepCopy(base)
			next, _ := imgMustApply(t, base, tc.records...)
			if !reflect.DeepEqual(base, want) {
				t.Fatal("Apply changed the image it applied to")
			}
			for _, id := range []UUID{orders, payments, audit} {
				shared := next.Topics[id] == base.Topics[id]
				if shared == slices.Contains(tc.topics, id) {
					t.Errorf("topic %s: shared=%v", imgFmtID(id), shared)
				}
			}
			if slices.Contains(tc.topics, orders) {
				for p, old := range base.Topics[orders].Partitions {
					shared := next.Topics[orders].Partitions[p] == old
					if shared == slices.Contains(tc.parts, int32(p)) {
						t.Errorf("orders-%d: shared=%v", p, shared)
					}
				}
			}
			for id, old := range base.Brokers {
				shared := next.Brokers[id] == old
				if shared == slices.Contains(tc.brokers, id) {
					t.Errorf("broker %d: shared=%v", id, shared)
				}
			}
			if same := mapPointer(next.Brokers) == mapPointer(base.Brokers); same != (len(tc.brokers) == 0) {
				t.Errorf("Brokers map shared=%v", same)
			}
			if same := mapPointer(next.BrokerConfigs) == mapPointer(base.BrokerConfigs); same == tc.configs {
				t.Errorf("BrokerConfigs map shared=%v", same)
			}
			if mapPointer(next.BrokerConfigs["1"]) != mapPointer(base.BrokerConfigs["1"]) {
				t.Error("broker 1's configs, unchanged, are not shared")
			}
			// The entry after this one leaves this one's image alone too.
			want = imgDeepCopy(next)
			imgMustApply(t, next, &PartitionChange{TopicID: audit, Partition: 0, Leader: 1, ISR: []int32{1}, LeaderEpoch: 1, PartitionEpoch: 1},
				&ConfigChange{ResourceType: ResourceBroker, ResourceName: "1", Name: "num.io.threads", Delete: true},
				&BrokerFenced{BrokerID: 1, BrokerEpoch: next.Brokers[1].Epoch})
			if !reflect.DeepEqual(next, want) {
				t.Fatal("the next Apply changed this image")
			}
		})
	}

	// The image does not alias the records' slices.
	p := &Partition{TopicID: orders, Partition: 3, Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: 1}
	reg := imgBroker(8)
	next, _ := imgMustApply(t, base, p, reg)
	want := imgDeepCopy(next)
	p.Replicas[0], p.ISR[0], reg.Endpoints[0].Host = 7, 7, "elsewhere"
	if !reflect.DeepEqual(next, want) {
		t.Fatal("changing an applied record changed the image")
	}
}

func TestApplyInconsistent(t *testing.T) {
	rich := imageRich(t)
	base, _, err := rich.Apply(rich.Offset+1, 3, nil) // in epoch 3, so that one can go back
	if err != nil {
		t.Fatal(err)
	}
	orders := imgID(1)
	ok := &NoOp{}
	for _, tc := range []struct {
		name    string
		offset  uint64 // 0: the next
		epoch   uint64 // 0: the image's
		records []Record
		want    string
	}{
		{"offset repeats", base.Offset, 0, []Record{ok}, "does not follow the image at offset"},
		{"offset goes back", base.Offset - 1, 0, []Record{ok}, "does not follow"},
		{"epoch goes back", 0, base.Epoch - 1, []Record{ok}, "older than the image's"},
		{"offset beyond broker epochs", math.MaxInt64 + 1, 0, []Record{ok}, "does not fit a broker epoch"},
		{"invalid record", 0, 0, []Record{ok, &TopicRemoved{}}, "TopicRemoved.ID is the zero UUID"},
		{"nil record", 0, 0, []Record{nil}, "nil record"},
		{"fence unknown broker", 0, 0, []Record{&BrokerFenced{BrokerID: 42, BrokerEpoch: 1}}, "BrokerFenced of unknown broker 42"},
		{"fence stale epoch", 0, 0, []Record{&BrokerFenced{BrokerID: 1, BrokerEpoch: 0}}, "BrokerFenced of broker 1 at epoch 0, but its epoch is 1"},
		{"unfence stale epoch", 0, 0, []Record{&BrokerUnfenced{BrokerID: 4, BrokerEpoch: 2}}, "at epoch 2, but its epoch is 1"},
		{"unregister unknown", 0, 0, []Record{&BrokerUnregistered{BrokerID: 42}}, "BrokerUnregistered of unknown broker 42"},
		{"unregister twice", 0, 0, []Record{&BrokerUnregistered{BrokerID: 1, BrokerEpoch: 1}, &BrokerUnregistered{BrokerID: 1, BrokerEpoch: 1}}, "unknown broker 1"},
		{"re-registered broker's old epoch", 0, 0, []Record{imgBroker(1), &BrokerUnfenced{BrokerID: 1, BrokerEpoch: 1}}, "BrokerUnfenced of broker 1 at epoch 1, but its epoch is 6"},
		{"topic id exists", 0, 0, []Record{&Topic{Name: "other", ID: orders}}, `already exists, named "orders"`},
		{"topic name taken", 0, 0, []Record{&Topic{Name: "orders", ID: imgID(9)}}, `topic name "orders" is already used`},
		{"topic id reused in one entry", 0, 0, []Record{&TopicRemoved{ID: orders}, &Topic{Name: "orders", ID: orders}}, "re-created in the entry that removes it"},
		{"remove unknown topic", 0, 0, []Record{&TopicRemoved{ID: imgID(9)}}, "removal of unknown topic"},
		{"partition of unknown topic", 0, 0, []Record{&Partition{TopicID: imgID(9), Replicas: []int32{1}, Leader: NoLeader}}, "partition 0 of unknown topic"},
		{"duplicate partition", 0, 0, []Record{&Partition{TopicID: orders, Partition: 2, Replicas: []int32{1}, Leader: NoLeader}}, `partition 2 of topic "orders" already exists`},
		{"partition gap", 0, 0, []Record{&Partition{TopicID: orders, Partition: 4, Replicas: []int32{1}, Leader: NoLeader}}, "would leave a gap: the topic has 3 partitions"},
		{"partition of removed topic", 0, 0, []Record{&TopicRemoved{ID: orders}, &Partition{TopicID: orders, Partition: 3, Replicas: []int32{1}, Leader: NoLeader}}, "unknown topic"},
		{"change of unknown topic", 0, 0, []Record{&PartitionChange{TopicID: imgID(9), Leader: NoLeader, PartitionEpoch: 1}}, "change of partition 0 of unknown topic"},
		{"change of unknown partition", 0, 0, []Record{&PartitionChange{TopicID: orders, Partition: 3, Leader: NoLeader, PartitionEpoch: 1}}, `unknown partition 3 of topic "orders" (it has 3)`},
		{"isr outside replicas", 0, 0, []Record{&PartitionChange{TopicID: orders, Leader: 4, ISR: []int32{4}, LeaderEpoch: 1, PartitionEpoch: 1}}, "ISR [4] has 4, not a replica [1 2 3]"},
		{"partition epoch stays", 0, 0, []Record{&PartitionChange{TopicID: orders, Leader: 1, ISR: []int32{1}}}, "partition epoch 0 does not increase from 0"},
		{"leader epoch decreases", 0, 0, []Record{
			&PartitionChange{TopicID: orders, Leader: 2, ISR: []int32{2}, LeaderEpoch: 1, PartitionEpoch: 1},
			&PartitionChange{TopicID: orders, Leader: 2, ISR: []int32{2}, LeaderEpoch: 0, PartitionEpoch: 2},
		}, "leader epoch 0 decreases from 1"},
		{"new leader same epoch", 0, 0, []Record{&PartitionChange{TopicID: orders, Leader: 2, ISR: []int32{1, 2}, PartitionEpoch: 1}}, "leader 1 -> 2 in the same leader epoch 0"},
		{"config of unknown topic", 0, 0, []Record{&ConfigChange{ResourceType: ResourceTopic, ResourceName: "nope", Name: "k"}}, `config "k" of unknown topic "nope"`},
		{"producer ids go back", 0, 0, []Record{&ProducerIDsAllocated{BrokerID: 1, BrokerEpoch: 1, NextProducerID: 1000}}, "next producer id 1000 does not advance from 2000"},
		{"producer ids stay", 0, 0, []Record{&ProducerIDsAllocated{BrokerID: 1, BrokerEpoch: 1, NextProducerID: 2000}}, "next producer id 2000 does not advance from 2000"},
		{"producer ids twice in one entry", 0, 0, []Record{
			&ProducerIDsAllocated{BrokerID: 1, BrokerEpoch: 1, NextProducerID: 3000},
			&ProducerIDsAllocated{BrokerID: 2, BrokerEpoch: 1, NextProducerID: 3000},
		}, "record 2 of 2: next producer id 3000 does not advance from 3000"},
		{"config of removed topic", 0, 0, []Record{&TopicRemoved{ID: orders}, &ConfigChange{ResourceType: ResourceTopic, ResourceName: "orders", Name: "k"}}, "unknown topic"},
		{"all or nothing", 0, 0, []Record{
			imgBroker(5), &Topic{Name: "new", ID: imgID(8)},
			&ConfigChange{ResourceType: ResourceBroker, Name: "k", Value: "v"},
			&PartitionChange{TopicID: orders, Leader: 2, ISR: []int32{2}, LeaderEpoch: 1, PartitionEpoch: 1},
			&TopicRemoved{ID: imgID(2)},
			&BrokerFenced{BrokerID: 1, BrokerEpoch: 99},
		}, "record 6 of 6"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			offset, epoch := tc.offset, tc.epoch
			if offset == 0 {
				offset = base.Offset + 1
			}
			if epoch == 0 {
				epoch = base.Epoch
			}
			want := imgDeepCopy(base)
			next, d, err := base.Apply(offset, epoch, tc.records)
			if !errors.Is(err, ErrInconsistent) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Apply = %v, want an ErrInconsistent with %q", err, tc.want)
			}
			if next != nil || d != nil {
				t.Fatal("Apply failed but returned an image or a delta")
			}
			if !reflect.DeepEqual(base, want) {
				t.Fatal("a failed Apply changed the image")
			}
		})
	}
	// An invalid record is both.
	_, _, err = base.Apply(base.Offset+1, base.Epoch, []Record{&TopicRemoved{}})
	if !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("invalid record: %v, want ErrInvalidRecord too", err)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	for i, im := range imageSamples(t) {
		b := im.AppendSnapshot([]byte("x"))
		if b[0] != 'x' {
			t.Fatal("AppendSnapshot did not append")
		}
		got, err := DecodeSnapshot(b[1:])
		if err != nil {
			t.Fatalf("sample %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, im) {
			t.Fatalf("sample %d: decoded\n%s\nwant\n%s", i, imgFormat(got), imgFormat(im))
		}
		if got.Hash() != im.Hash() {
			t.Fatalf("sample %d: hash changed in the round trip", i)
		}
		// A decoded image applies entries as the original does.
		entry := []Record{imgBroker(5), &ConfigChange{ResourceType: ResourceBroker, Name: "k", Value: "v"}}
		n1, _ := imgMustApply(t, im, entry...)
		n2, _ := imgMustApply(t, got, entry...)
		if !reflect.DeepEqual(n1, n2) {
			t.Fatalf("sample %d: the decoded image applies differently", i)
		}
	}
}

// TestApplyZeroImage: an Image built by hand, without NewImage's maps,
// takes entries too.
func TestApplyZeroImage(t *testing.T) {
	recs := []Record{imgBroker(1), &Topic{Name: "t", ID: imgID(1)},
		&ConfigChange{ResourceType: ResourceBroker, Name: "k", Value: "v"}}
	a, _ := imgMustApply(t, &Image{}, recs...)
	b, _ := imgMustApply(t, NewImage(), recs...)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("from the zero Image:\n%s\nfrom NewImage:\n%s", imgFormat(a), imgFormat(b))
	}
}

// TestHashIgnoresOrder: the same state reached through records in another
// order has the same hash; a different state has another.
func TestHashIgnoresOrder(t *testing.T) {
	recs := []Record{
		imgBroker(1), imgBroker(2),
		&Topic{Name: "a", ID: imgID(1), Configs: []ConfigEntry{{"x", "1"}, {"y", "2"}}},
		&Topic{Name: "b", ID: imgID(2)},
		&ConfigChange{ResourceType: ResourceBroker, ResourceName: "2", Name: "k", Value: "v"},
		&ConfigChange{ResourceType: ResourceBroker, ResourceName: "", Name: "k", Value: "v"},
		&ConfigChange{ResourceType: ResourceBroker, ResourceName: "", Name: "j", Value: "v"},
	}
	a, _ := imgMustApply(t, NewImage(), recs...)
	reversed := slices.Clone(recs)
	slices.Reverse(reversed)
	reversed[4] = &Topic{Name: "a", ID: imgID(1), Configs: []ConfigEntry{{"y", "2"}, {"x", "1"}}}
	b, _ := imgMustApply(t, NewImage(), reversed...)
	if a.Hash() != b.Hash() || !reflect.DeepEqual(a, b) {
		t.Fatalf("same state, different hash:\n%s\n%s", imgFormat(a), imgFormat(b))
	}
	c, _ := imgMustApply(t, a, &BrokerUnfenced{BrokerID: 1, BrokerEpoch: 1})
	d, _, _ := a.Apply(a.Offset+1, a.Epoch+1, nil)
	e, _ := imgMustApply(t, a, &ConfigChange{ResourceType: ResourceBroker, ResourceName: "", Name: "j", Delete: true})
	f, _ := imgMustApply(t, e, &ConfigChange{ResourceType: ResourceBroker, ResourceName: "", Name: "j", Value: "v"})
	hashes := map[[32]byte]bool{}
	for _, im := range []*Image{a, c, d, e} {
		hashes[im.Hash()] = true
	}
	if len(hashes) != 4 {
		t.Fatal("different images have the same hash")
	}
	if f.Hash() == a.Hash() {
		t.Fatal("images at different offsets have the same hash")
	}
	// Deleting the last key of a resource drops the resource.
	g, _ := imgMustApply(t, a, &ConfigChange{ResourceType: ResourceBroker, ResourceName: "2", Name: "k", Delete: true})
	if _, ok := g.BrokerConfigs["2"]; ok {
		t.Fatal("a broker with no config keys left is still in BrokerConfigs")
	}

	// The next producer id is state: at one offset it alone changes the
	// hash, and who took the block does not.
	at := func(r Record) *Image {
		t.Helper()
		im, _, err := a.Apply(a.Offset+1, a.Epoch, []Record{r})
		if err != nil {
			t.Fatal(err)
		}
		return im
	}
	none := at(&NoOp{})
	p1 := at(&ProducerIDsAllocated{BrokerID: 1, BrokerEpoch: 1, NextProducerID: 1000})
	p1other := at(&ProducerIDsAllocated{BrokerID: 2, BrokerEpoch: 2, NextProducerID: 1000})
	p2 := at(&ProducerIDsAllocated{BrokerID: 1, BrokerEpoch: 1, NextProducerID: 2000})
	if none.Hash() == p1.Hash() || p1.Hash() == p2.Hash() || none.Hash() == p2.Hash() {
		t.Fatal("images differing only in NextProducerID have the same hash")
	}
	if p1.Hash() != p1other.Hash() || !reflect.DeepEqual(p1, p1other) {
		t.Fatal("the broker that took a block changed the image")
	}
	if p1.NextProducerID != 1000 || p2.NextProducerID != 2000 || none.NextProducerID != 0 || NewImage().NextProducerID != 0 {
		t.Fatalf("NextProducerID %d, %d, %d", none.NextProducerID, p1.NextProducerID, p2.NextProducerID)
	}
}

func TestDecodeSnapshotErrors(t *testing.T) {
	valid := imageRich(t).AppendSnapshot(nil)
	for n := range len(valid) {
		if _, err := DecodeSnapshot(valid[:n]); !errors.Is(err, ErrBadRecord) {
			t.Fatalf("DecodeSnapshot of the first %d of %d bytes: %v, want ErrBadRecord", n, len(valid), err)
		}
	}
	type broker struct {
		epoch  int64
		fenced bool
		id     int32
	}
	// snap writes a snapshot by hand, canonical or not.
	snap := func(version uint8, offset uint64, brokers []broker, records ...Record) []byte {
		w := recordWriter{}
		w.u8(version)
		w.u64(offset)
		w.u64(1)
		w.uvarint(uint64(len(brokers)))
		for _, b := range brokers {
			w.i64(b.epoch)
			w.boolean(b.fenced)
			w.record(imgBroker(b.id))
		}
		w.uvarint(uint64(len(records)))
		for _, r := range records {
			w.record(r)
		}
		return w.b
	}
	topic := &Topic{Name: "t", ID: imgID(1)}
	part := &Partition{TopicID: imgID(1), Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}
	if _, err := DecodeSnapshot(snap(1, 5, []broker{{1, true, 1}, {2, false, 2}}, topic, part)); err != nil {
		t.Fatalf("the hand-written snapshot is not valid: %v", err)
	}
	pids := func(broker int32, next int64) *ProducerIDsAllocated {
		return &ProducerIDsAllocated{BrokerID: broker, NextProducerID: next}
	}
	brokerConfig := &ConfigChange{ResourceType: ResourceBroker, Name: "k"}
	if im, err := DecodeSnapshot(snap(1, 5, nil, topic, brokerConfig, pids(0, 7000))); err != nil || im.NextProducerID != 7000 {
		t.Fatalf("the hand-written snapshot with producer ids: %v", err)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"version 0", snap(0, 5, nil), "unknown snapshot format version 0"},
		{"version 2", snap(2, 5, nil), "unknown snapshot format version 2"},
		{"trailing bytes", append(snap(1, 5, nil), 0), "1 trailing bytes"},
		{"brokers unsorted", snap(1, 5, []broker{{1, true, 2}, {1, true, 1}}), "not in canonical form"},
		{"broker twice", snap(1, 5, []broker{{1, true, 1}, {2, true, 1}}), "broker 1 is listed twice"},
		{"broker epoch after offset", snap(1, 5, []broker{{6, true, 1}}), "broker 1 has epoch 6, outside [0, 5]"},
		{"negative broker epoch", snap(1, 5, []broker{{-1, true, 1}}), "outside [0, 5]"},
		{"topics unsorted", snap(1, 5, nil, &Topic{Name: "b", ID: imgID(2)}, &Topic{Name: "a", ID: imgID(1)}), "not in canonical form"},
		{"configs unsorted", snap(1, 5, nil, &Topic{Name: "b", ID: imgID(2), Configs: []ConfigEntry{{"y", ""}, {"x", ""}}}), "not in canonical form"},
		{"partition before its topic", snap(1, 5, nil, part, topic), "unknown topic"},
		{"partition change", snap(1, 5, nil, topic, part, &PartitionChange{TopicID: imgID(1), Leader: NoLeader, PartitionEpoch: 1}), "a PartitionChange record, which a snapshot does not hold"},
		{"noop", snap(1, 5, nil, &NoOp{}), "a NoOp record"},
		{"config delete", snap(1, 5, nil, &ConfigChange{ResourceType: ResourceBroker, Name: "k", Delete: true}), "sets a broker config"},
		{"topic config change", snap(1, 5, nil, topic, &ConfigChange{ResourceType: ResourceTopic, ResourceName: "t", Name: "k"}), "sets a broker config"},
		{"broker configs unsorted", snap(1, 5, nil,
			&ConfigChange{ResourceType: ResourceBroker, ResourceName: "", Name: "k2"},
			&ConfigChange{ResourceType: ResourceBroker, ResourceName: "", Name: "k1"}), "not in canonical form"},
		{"producer ids from a broker", snap(1, 5, nil, pids(3, 1000)), "names broker 0 at epoch 0, not 3 at 0"},
		{"producer ids at an epoch", snap(1, 5, nil, &ProducerIDsAllocated{BrokerEpoch: 2, NextProducerID: 1000}), "not 0 at 2"},
		{"producer ids before configs", snap(1, 5, nil, pids(0, 1000), brokerConfig), "not in canonical form"},
		{"producer ids before topics", snap(1, 5, nil, pids(0, 1000), topic), "not in canonical form"},
		{"producer ids twice", snap(1, 5, nil, pids(0, 1000), pids(0, 2000)), "not in canonical form"},
		{"producer ids repeated", snap(1, 5, nil, pids(0, 1000), pids(0, 1000)), "next producer id 1000 does not advance from 1000"},
		{"producer ids of zero", snap(1, 5, nil, pids(0, 0)), "NextProducerID 0 is not positive"},
		{"not a registration", func() []byte {
			w := recordWriter{}
			w.u8(1)
			w.u64(5)
			w.u64(1)
			w.uvarint(1)
			w.i64(1)
			w.boolean(true)
			w.record(&NoOp{})
			w.uvarint(0)
			return w.b
		}(), "a NoOp record where a BrokerRegistered belongs"},
	} {
		_, err := DecodeSnapshot(tc.in)
		if !errors.Is(err, ErrBadRecord) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: DecodeSnapshot = %v, want ErrBadRecord with %q", tc.name, err, tc.want)
		}
	}
}

// TestApplyRandom applies random entries, many of which do not fit, and
// checks after each: the old image is unchanged, a failed entry applied
// nothing, the delta is exactly what differs, unchanged brokers and
// partitions are shared, and the snapshot round-trips. Images from early on
// are checked again at the end.
func TestApplyRandom(t *testing.T) {
	seed := testseed.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 0))
	im := NewImage()
	type kept struct{ im, copy *Image }
	var history []kept
	applied, failed, partitionDeltas, topicsRemoved := 0, 0, 0, 0
	steps := 3000
	if testing.Short() {
		steps = 500
	}
	for step := range steps {
		offset := im.Offset + 1 + uint64(rng.IntN(2))
		epoch := im.Epoch + uint64(rng.IntN(50)/49)
		recs := imgRandomEntry(rng, im, offset)
		before := imgDeepCopy(im)
		next, d, err := im.Apply(offset, epoch, recs)
		if !reflect.DeepEqual(im, before) {
			t.Fatalf("step %d: Apply changed the image it applied to", step)
		}
		if err != nil {
			if !errors.Is(err, ErrInconsistent) || next != nil {
				t.Fatalf("step %d: %v", step, err)
			}
			failed++
			continue
		}
		applied++
		partitionDeltas += len(d.Partitions)
		topicsRemoved += len(d.TopicsRemoved)
		imgCheckDelta(t, im, next, d)
		snap, err := DecodeSnapshot(next.AppendSnapshot(nil))
		if err != nil || !reflect.DeepEqual(snap, next) {
			t.Fatalf("step %d: snapshot round trip: %v", step, err)
		}
		if step%100 == 0 {
			history = append(history, kept{next, imgDeepCopy(next)})
		}
		im = next
	}
	for i, k := range history {
		if !reflect.DeepEqual(k.im, k.copy) {
			t.Fatalf("image %d of the history changed later", i)
		}
	}
	t.Logf("%d entries applied, %d refused; %d brokers, %d topics, %d partition deltas, %d topics removed", applied, failed, len(im.Brokers), len(im.Topics), partitionDeltas, topicsRemoved)
	if applied < steps/4 || failed < steps/20 {
		t.Fatalf("the generator is off: %d applied, %d refused", applied, failed)
	}
}

// imgCheckDelta compares d with a brute-force diff of old and next.
func imgCheckDelta(t *testing.T, old, next *Image, d *Delta) {
	t.Helper()
	var brokers []int32
	for id := range imgUnion(old.Brokers, next.Brokers) {
		o, n := old.Brokers[id], next.Brokers[id]
		if !reflect.DeepEqual(o, n) {
			brokers = append(brokers, id)
		} else if o != n {
			t.Fatalf("broker %d is unchanged but not shared", id)
		}
	}
	slices.Sort(brokers)
	if !slices.Equal(brokers, d.Brokers) {
		t.Fatalf("delta brokers %v, want %v", d.Brokers, brokers)
	}
	var created, removed []UUID
	var parts []PartitionDelta
	for id := range imgUnion(old.Topics, next.Topics) {
		o, n := old.Topics[id], next.Topics[id]
		if o == nil {
			created = append(created, id)
		}
		if n == nil {
			removed = append(removed, id)
		}
		var op, np []*PartitionImage
		name := ""
		if o != nil {
			op, name = o.Partitions, o.Name
		}
		if n != nil {
			np, name = n.Partitions, n.Name
		}
		for p := range max(len(op), len(np)) {
			pd := PartitionDelta{TopicID: id, Topic: name, Partition: int32(p)}
			if p < len(op) {
				pd.Old = op[p]
			}
			if p < len(np) {
				pd.New = np[p]
			}
			if !reflect.DeepEqual(pd.Old, pd.New) {
				parts = append(parts, pd)
			} else if pd.Old != pd.New {
				t.Fatalf("%s-%d is unchanged but not shared", name, p)
			}
		}
	}
	if !imgSameSet(created, d.TopicsCreated) || !imgSameSet(removed, d.TopicsRemoved) {
		t.Fatalf("delta topics created %v removed %v, want %v and %v", d.TopicsCreated, d.TopicsRemoved, created, removed)
	}
	if !slices.IsSortedFunc(d.Partitions, func(a, b PartitionDelta) int {
		return cmp.Or(strings.Compare(a.Topic, b.Topic), bytes.Compare(a.TopicID[:], b.TopicID[:]), cmp.Compare(a.Partition, b.Partition))
	}) {
		t.Fatal("delta partitions are not sorted")
	}
	if len(parts) != len(d.Partitions) {
		t.Fatalf("delta has %d partitions, want %d", len(d.Partitions), len(parts))
	}
	for _, want := range parts {
		if !slices.ContainsFunc(d.Partitions, func(got PartitionDelta) bool { return got == want }) {
			t.Fatalf("delta lacks %s-%d", want.Topic, want.Partition)
		}
	}
	// Local agrees with the delta for every broker.
	for id := range int32(6) {
		lc := d.Local(id)
		n := 0
		for _, pd := range d.Partitions {
			if (pd.New != nil && slices.Contains(pd.New.Replicas, id)) || (pd.Old != nil && slices.Contains(pd.Old.Replicas, id)) {
				n++
			}
		}
		if got := len(lc.Leaders) + len(lc.Followers) + len(lc.Stopped); got != n {
			t.Fatalf("Local(%d) lists %d partitions, want %d", id, got, n)
		}
		for _, lp := range lc.Leaders {
			if lp.State.Leader != id {
				t.Fatalf("Local(%d) leads %s-%d, led by %d", id, lp.Topic, lp.Partition, lp.State.Leader)
			}
		}
	}
}

func imgUnion[K comparable, V any](a, b map[K]V) map[K]bool {
	u := map[K]bool{}
	for k := range a {
		u[k] = true
	}
	for k := range b {
		u[k] = true
	}
	return u
}

func imgSameSet(a, b []UUID) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	less := func(x, y UUID) int { return bytes.Compare(x[:], y[:]) }
	slices.SortFunc(a, less)
	slices.SortFunc(b, less)
	return slices.Equal(a, b)
}

// imgRandomEntry makes 1 to 4 records, mostly fitting im as the records
// before them leave it, sometimes not.
func imgRandomEntry(rng *rand.Rand, im *Image, offset uint64) []Record {
	b := newImageBuilder(im, offset, im.Epoch)
	subset := func(from []int32, atLeast int) []int32 {
		var s []int32
		for _, id := range from {
			if rng.IntN(3) > 0 {
				s = append(s, id)
			}
		}
		if len(s) < atLeast && len(from) > 0 {
			s = append(s, from[rng.IntN(len(from))])
		}
		return s
	}
	pickBroker := func(cur *Image) (int32, int64) {
		ids := slices.Sorted(maps.Keys(cur.Brokers))
		if len(ids) == 0 || rng.IntN(20) == 0 {
			return int32(rng.IntN(6)), 1
		}
		id := ids[rng.IntN(len(ids))]
		epoch := cur.Brokers[id].Epoch
		if rng.IntN(20) == 0 {
			epoch = int64(rng.IntN(int(offset) + 1))
		}
		return id, epoch
	}
	pickTopic := func(cur *Image) *TopicImage {
		ts := cur.TopicsByName()
		if len(ts) == 0 || rng.IntN(20) == 0 {
			return &TopicImage{Name: "zz", ID: imgID(99)}
		}
		return ts[rng.IntN(len(ts))]
	}
	names := []string{"a", "b", "c", "d", "e", "f"}
	var recs []Record
	for range 1 + rng.IntN(4) {
		cur := b.next
		var r Record
		switch rng.IntN(15) {
		case 0, 12, 13:
			id := int32(rng.IntN(6))
			r = &BrokerRegistered{BrokerID: id, Incarnation: UUID{byte(rng.IntN(255) + 1)}, Rack: names[rng.IntN(3)],
				Endpoints: []Endpoint{{Name: "PLAINTEXT", Host: "h", Port: uint16(9000 + id)}}}
		case 1:
			id, e := pickBroker(cur)
			r = &BrokerFenced{BrokerID: id, BrokerEpoch: e}
		case 2, 3:
			id, e := pickBroker(cur)
			r = &BrokerUnfenced{BrokerID: id, BrokerEpoch: e}
		case 4:
			id, e := pickBroker(cur)
			r = &BrokerUnregistered{BrokerID: id, BrokerEpoch: e}
		case 5:
			t := &Topic{Name: names[rng.IntN(len(names))], ID: imgID(uint64(1 + rng.IntN(1000)))}
			if rng.IntN(2) == 0 {
				t.Configs = []ConfigEntry{{"retention.ms", strconv.Itoa(rng.IntN(3))}}
			}
			r = t
		case 6:
			if rng.IntN(3) > 0 {
				continue
			}
			r = &TopicRemoved{ID: pickTopic(cur).ID}
		case 7, 8:
			t := pickTopic(cur)
			p := int32(len(t.Partitions))
			if rng.IntN(20) == 0 {
				p = int32(rng.IntN(4))
			}
			replicas := subset([]int32{0, 1, 2, 3, 4, 5}, 1)
			rng.Shuffle(len(replicas), func(i, j int) { replicas[i], replicas[j] = replicas[j], replicas[i] })
			isr := subset(replicas, 0)
			leader := NoLeader
			if len(isr) > 0 {
				leader = isr[rng.IntN(len(isr))]
			}
			r = &Partition{TopicID: t.ID, Partition: p, Replicas: replicas, ISR: isr, Leader: leader}
		case 9, 10:
			t := pickTopic(cur)
			if len(t.Partitions) == 0 {
				r = &PartitionChange{TopicID: t.ID, Leader: NoLeader, PartitionEpoch: 1}
				break
			}
			p := rng.IntN(len(t.Partitions))
			old := t.Partitions[p]
			isr := subset(old.Replicas, 0)
			if rng.IntN(20) == 0 {
				isr = append(isr, 5)
			}
			isr = slices.Compact(isr)
			leader := NoLeader
			if len(isr) > 0 && rng.IntN(5) > 0 {
				leader = isr[rng.IntN(len(isr))]
			}
			le := old.LeaderEpoch
			if leader != old.Leader || rng.IntN(10) == 0 {
				le++
			}
			pe := old.PartitionEpoch + 1
			if rng.IntN(30) == 0 {
				pe--
			}
			r = &PartitionChange{TopicID: t.ID, Partition: int32(p), Leader: leader, ISR: isr, LeaderEpoch: le, PartitionEpoch: pe}
		case 11:
			c := &ConfigChange{Name: []string{"k1", "k2", "k3"}[rng.IntN(3)], Value: strconv.Itoa(rng.IntN(3))}
			if rng.IntN(3) == 0 {
				c.Delete, c.Value = true, ""
			}
			if rng.IntN(2) == 0 {
				c.ResourceType, c.ResourceName = ResourceTopic, pickTopic(cur).Name
			} else {
				c.ResourceType = ResourceBroker
				if id := rng.IntN(4); id > 0 {
					c.ResourceName = strconv.Itoa(id)
				}
			}
			r = c
		case 14:
			id, e := pickBroker(cur)
			next := cur.NextProducerID + producerIDBlockSize
			if rng.IntN(10) == 0 {
				next -= int64(rng.IntN(2 * producerIDBlockSize)) // does not advance, or not a block's worth
			}
			r = &ProducerIDsAllocated{BrokerID: id, BrokerEpoch: e, NextProducerID: next}
		}
		if Validate(r) != nil {
			continue // e.g. a duplicate appended to an ISR
		}
		recs = append(recs, r)
		_ = b.apply(r)
	}
	return recs
}
