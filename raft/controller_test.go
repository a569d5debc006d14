package raft

import (
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
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/internal/testseed"
)

const testClusterID = "test-cluster"

// controllerHarness runs a Controller against an image the way a node
// would: each decision's records are applied (with Image.Apply) before the
// next decision is made.
type controllerHarness struct {
	c     *Controller
	im    *Image
	now   int64
	ids   uint32          // topic ids drawn so far
	names map[UUID]string // every topic id seen, for printing
	lose  bool            // drop the next decision's records
}

func newControllerHarness(cfg ControllerConfig) (*controllerHarness, error) {
	c, err := NewController(cfg)
	if err != nil {
		return nil, err
	}
	return &controllerHarness{c: c, im: NewImage(), names: map[UUID]string{}}, nil
}

// newID draws topic ids 1, 2, 3, … (in the last bytes).
func (h *controllerHarness) newID() UUID {
	h.ids++
	var id UUID
	id[0] = 0x7e
	id[12], id[13], id[14], id[15] = byte(h.ids>>24), byte(h.ids>>16), byte(h.ids>>8), byte(h.ids)
	return id
}

// apply applies records as one entry, as committing them would. No records
// make no entry.
func (h *controllerHarness) apply(records []Record) error {
	if len(records) == 0 {
		return nil
	}
	for _, r := range records {
		if t, ok := r.(*Topic); ok {
			h.names[t.ID] = t.Name
		}
	}
	next, _, err := h.im.Apply(h.im.Offset+1, 1, records)
	if err != nil {
		return err
	}
	h.im = next
	return nil
}

func (h *controllerHarness) topicName(id UUID) string {
	if n, ok := h.names[id]; ok {
		return n
	}
	if id == (UUID{}) {
		return "<none>"
	}
	return "id:" + id.String()
}

func (h *controllerHarness) formatRecord(r Record) string {
	switch r := r.(type) {
	case *BrokerRegistered:
		s := fmt.Sprintf("BrokerRegistered broker=%d incarnation=%d", r.BrokerID, r.Incarnation[15])
		if r.Rack != "" {
			s += " rack=" + r.Rack
		}
		return s
	case *BrokerFenced:
		return fmt.Sprintf("BrokerFenced broker=%d epoch=%d", r.BrokerID, r.BrokerEpoch)
	case *BrokerUnfenced:
		return fmt.Sprintf("BrokerUnfenced broker=%d epoch=%d", r.BrokerID, r.BrokerEpoch)
	case *BrokerUnregistered:
		return fmt.Sprintf("BrokerUnregistered broker=%d epoch=%d", r.BrokerID, r.BrokerEpoch)
	case *Topic:
		s := "Topic " + r.Name
		for _, c := range r.Configs {
			s += fmt.Sprintf(" %s=%s", c.Name, c.Value)
		}
		return s
	case *TopicRemoved:
		return "TopicRemoved " + h.topicName(r.ID)
	case *Partition:
		return fmt.Sprintf("Partition %s-%d replicas=%v isr=%v leader=%d epochs=%d/%d",
			h.topicName(r.TopicID), r.Partition, r.Replicas, r.ISR, r.Leader, r.LeaderEpoch, r.PartitionEpoch)
	case *PartitionChange:
		return fmt.Sprintf("PartitionChange %s-%d leader=%d isr=%v epochs=%d/%d",
			h.topicName(r.TopicID), r.Partition, r.Leader, r.ISR, r.LeaderEpoch, r.PartitionEpoch)
	case *ConfigChange:
		return fmt.Sprintf("ConfigChange %d/%s %s=%s delete=%t", r.ResourceType, r.ResourceName, r.Name, r.Value, r.Delete)
	case *ProducerIDsAllocated:
		return fmt.Sprintf("ProducerIDsAllocated broker=%d epoch=%d next=%d", r.BrokerID, r.BrokerEpoch, r.NextProducerID)
	}
	return fmt.Sprintf("%T", r)
}

// records applies records and prints them; when h.lose is set it drops
// them instead, as a proposal that failed to enqueue.
func (h *controllerHarness) records(b *strings.Builder, records []Record) error {
	for _, r := range records {
		if t, ok := r.(*Topic); ok {
			h.names[t.ID] = t.Name
		}
		fmt.Fprintln(b, h.formatRecord(r))
	}
	if len(records) == 0 {
		fmt.Fprintln(b, "no records")
	}
	if h.lose {
		h.lose = false
		if len(records) > 0 {
			fmt.Fprintln(b, "(lost: not applied)")
		}
		return nil
	}
	return h.apply(records)
}

func (h *controllerHarness) state() string {
	var b strings.Builder
	for _, id := range slices.Sorted(maps.Keys(h.im.Brokers)) {
		br := h.im.Brokers[id]
		state := "unfenced"
		if br.Fenced {
			state = "fenced"
		} else if h.c.shuttingDown(id) {
			state = "shutting-down"
		}
		fmt.Fprintf(&b, "broker %d epoch=%d %s", id, br.Epoch, state)
		if br.Rack != "" {
			fmt.Fprintf(&b, " rack=%s", br.Rack)
		}
		b.WriteByte('\n')
	}
	for _, t := range h.im.TopicsByName() {
		for i, p := range t.Partitions {
			fmt.Fprintf(&b, "%s-%d replicas=%v isr=%v leader=%d epochs=%d/%d\n",
				t.Name, i, p.Replicas, p.ISR, p.Leader, p.LeaderEpoch, p.PartitionEpoch)
		}
	}
	if b.Len() == 0 {
		return "empty\n"
	}
	return b.String()
}

func codeName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok {
		return e.Message
	}
	return strconv.Itoa(int(code))
}

func codeWithMessage(code int16, msg *string) string {
	s := codeName(code)
	if msg != nil && code != 0 {
		s += " (" + *msg + ")"
	}
	return s
}

// harnessArgs reads a command's or an input line's key=value arguments.
type harnessArgs map[string]string

func harnessCmdArgs(d *datadriven.TestData) harnessArgs {
	a := harnessArgs{}
	for _, arg := range d.CmdArgs {
		a[arg.Key] = strings.Join(arg.Vals, ",")
	}
	return a
}

func harnessLineArgs(fields []string) harnessArgs {
	a := harnessArgs{}
	for _, f := range fields {
		k, v, _ := strings.Cut(f, "=")
		a[k] = v
	}
	return a
}

func (a harnessArgs) has(k string) bool { _, ok := a[k]; return ok }

func (a harnessArgs) int(k string, def int64) int64 {
	v, ok := a[k]
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		panic(fmt.Sprintf("%s=%q: %v", k, v, err))
	}
	return n
}

func parseBrokerList(s string) []int32 {
	if s == "" {
		return []int32{}
	}
	var ids []int32
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.ParseInt(f, 10, 32)
		if err != nil {
			panic(fmt.Sprintf("broker list %q: %v", s, err))
		}
		ids = append(ids, int32(n))
	}
	return ids
}

// parseAssignment parses "1,2/2,3" into replica lists.
func parseAssignment(s string) [][]int32 {
	if s == "" {
		return [][]int32{}
	}
	var out [][]int32
	for part := range strings.SplitSeq(s, "/") {
		out = append(out, parseBrokerList(part))
	}
	return out
}

func registrationRequest(id int32, incarnation byte, rack string) *kmsg.BrokerRegistrationRequest {
	req := kmsg.NewPtrBrokerRegistrationRequest()
	req.BrokerID = id
	req.ClusterID = testClusterID
	req.IncarnationID[15] = incarnation
	l := kmsg.NewBrokerRegistrationRequestListener()
	l.Name, l.Host, l.Port = "PLAINTEXT", fmt.Sprintf("broker%d", id), 9092
	req.Listeners = append(req.Listeners, l)
	if rack != "" {
		req.Rack = &rack
	}
	return req
}

// TestControllerDataDriven runs the scripts in testdata/controller/.
// Commands (times are milliseconds; at=T sets the clock first):
//
//	controller [timeout=MS] [partitions=N] [rf=N] [unclean] [validator]
//	                                    a new controller and an empty image;
//	                                    validator: with fakeConfigValidator
//	register id=N [incarnation=N] [rack=R] [cluster=ID] [no-listeners] [at=T]
//	heartbeat id=N [epoch=E] [offset=O] [fence] [shutdown] [expired] [at=T]
//	                                    epoch defaults to the broker's, offset
//	                                    to the image's (caught up); expired:
//	                                    its deadline passed in the queue
//	                                    (ExpiredHeartbeat)
//	unregister id=N                     UnregisterBroker
//	tick [at=T]                         FenceExpired
//	elect-unclean-leaders               ElectUncleanLeaders
//	elect-preferred-leaders             ElectPreferredLeaders
//	create-topics [validate-only]       one topic per line:
//	                                    NAME [partitions=N] [rf=N] [assign=1,2/2,3]
//	                                    [config=K:V] [null-config=K] [empty-config]
//	delete-topics [version=N]           one per line: NAME (v0-5), or
//	                                    [name=NAME] [id=TOPIC|unknown] (v6+)
//	create-partitions [validate-only]   NAME count=N [assign=1,2/2,3|null]
//	alter-partition broker=N [epoch=E] [version=V]
//	                                    TOPIC PARTITION [leader-epoch=E]
//	                                    [partition-epoch=E] [isr=1,2]
//	                                    [isr-epochs=1:E,2:E] [recovery=N]
//	                                    (epochs default to the image's, isr to
//	                                    the current one; TOPIC "unknown" is
//	                                    an id or name no topic has)
//	elect TOPIC PARTITION [exclude=N] [unclean]
//	                                    electLeader, without changing anything
//	change TOPIC PARTITION [leader=N] [isr=1,2]
//	                                    applies a PartitionChange as given
//	topic-config TOPIC KEY=VALUE        applies a ConfigChange
//	allocate-producer-ids broker=N [epoch=E] [version=V]
//	                                    epoch defaults to the broker's
//	alter-configs [validate-only] [version=V]
//	                                    IncrementalAlterConfigs, one resource
//	                                    per line: TYPE:NAME OP:KEY[=VALUE]…,
//	                                    TYPE topic, broker or a number, OP
//	                                    set, delete, append, subtract or opN;
//	                                    no =VALUE is a null value
//	configs                             topic and broker configs, next
//	                                    producer id
//	state                               brokers and partitions
//	sessions                            the controller's volatile state
//
// Request commands print the records (then applied as one entry, unless
// the command has the argument lost, as a proposal that never committed)
// and the response.
func TestControllerDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata/controller", func(t *testing.T, path string) {
		var h *controllerHarness
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			if d.Cmd != "controller" && h == nil {
				d.Fatalf(t, "%s: no controller yet", d.Pos)
			}
			out, err := runControllerCommand(h, &h, d)
			if err != nil {
				return out + "error: " + err.Error() + "\n"
			}
			return out
		})
	})
}

func runControllerCommand(h *controllerHarness, hp **controllerHarness, d *datadriven.TestData) (string, error) {
	a := harnessCmdArgs(d)
	var b strings.Builder
	if h != nil && a.has("at") {
		h.now = a.int("at", 0)
	}
	if h != nil {
		h.lose = a.has("lost")
	}
	switch d.Cmd {
	case "controller":
		cfg := ControllerConfig{
			BrokerSessionTimeoutMs:      a.int("timeout", 0),
			NumPartitions:               int32(a.int("partitions", 0)),
			DefaultReplicationFactor:    int16(a.int("rf", 0)),
			UncleanLeaderElectionEnable: a.has("unclean"),
			ClusterID:                   testClusterID,
		}
		nh, err := newControllerHarness(cfg)
		if err != nil {
			return "", err
		}
		if a.has("validator") {
			nh.c.SetConfigValidator(fakeConfigValidator{})
		}
		*hp = nh
		c := nh.c.Config()
		return fmt.Sprintf("broker.session.timeout.ms=%d num.partitions=%d default.replication.factor=%d unclean=%t\n",
			c.BrokerSessionTimeoutMs, c.NumPartitions, c.DefaultReplicationFactor, c.UncleanLeaderElectionEnable), nil

	case "register":
		req := registrationRequest(int32(a.int("id", 0)), byte(a.int("incarnation", 1)), a["rack"])
		if a.has("cluster") {
			req.ClusterID = a["cluster"]
		}
		if a.has("no-listeners") {
			req.Listeners = nil
		}
		records, resp := h.c.RegisterBroker(h.im, req, h.now)
		if err := h.records(&b, records); err != nil {
			return b.String(), err
		}
		if len(records) > 0 {
			resp.BrokerEpoch = int64(h.im.Offset)
		}
		fmt.Fprintf(&b, "response: %s epoch=%d\n", codeName(resp.ErrorCode), resp.BrokerEpoch)

	case "heartbeat":
		id := int32(a.int("id", 0))
		req := kmsg.NewPtrBrokerHeartbeatRequest()
		req.BrokerID = id
		if br := h.im.Brokers[id]; br != nil {
			req.BrokerEpoch = br.Epoch
		}
		req.BrokerEpoch = a.int("epoch", req.BrokerEpoch)
		req.CurrentMetadataOffset = a.int("offset", int64(h.im.Offset))
		req.WantFence, req.WantShutdown = a.has("fence"), a.has("shutdown")
		if a.has("expired") {
			h.c.ExpiredHeartbeat(h.im, req, h.now)
			fmt.Fprintln(&b, "no response: expired")
			break
		}
		records, resp := h.c.Heartbeat(h.im, req, h.now)
		if err := h.records(&b, records); err != nil {
			return b.String(), err
		}
		fmt.Fprintf(&b, "response: %s caught-up=%t fenced=%t should-shutdown=%t\n",
			codeName(resp.ErrorCode), resp.IsCaughtUp, resp.IsFenced, resp.ShouldShutdown)

	case "unregister":
		req := kmsg.NewPtrUnregisterBrokerRequest()
		req.BrokerID = int32(a.int("id", 0))
		records, resp := h.c.UnregisterBroker(h.im, req)
		if err := h.records(&b, records); err != nil {
			return b.String(), err
		}
		fmt.Fprintf(&b, "response: %s\n", codeName(resp.ErrorCode))

	case "tick":
		if err := h.records(&b, h.c.FenceExpired(h.im, h.now)); err != nil {
			return b.String(), err
		}
		if at, ok := h.c.NextExpiry(h.im, h.now); ok {
			fmt.Fprintf(&b, "next expiry at %d\n", at)
		}

	case "elect-unclean-leaders":
		records, more := h.c.ElectUncleanLeaders(h.im)
		if err := h.records(&b, records); err != nil {
			return b.String(), err
		}
		if more {
			fmt.Fprintln(&b, "more")
		}

	case "elect-preferred-leaders":
		records, more := h.c.ElectPreferredLeaders(h.im)
		if err := h.records(&b, records); err != nil {
			return b.String(), err
		}
		if more {
			fmt.Fprintln(&b, "more")
		}

	case "create-topics":
		req := kmsg.NewPtrCreateTopicsRequest()
		req.Version = 7
		req.ValidateOnly = a.has("validate-only")
		for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
			fields := strings.Fields(line)
			la := harnessLineArgs(fields[1:])
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic = fields[0]
			if fields[0] == `""` {
				rt.Topic = ""
			}
			rt.NumPartitions = int32(la.int("partitions", -1))
			rt.ReplicationFactor = int16(la.int("rf", -1))
			if la.has("assign") {
				for i, rs := range parseAssignment(la["assign"]) {
					ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
					ra.Partition, ra.Replicas = int32(i), rs
					rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
				}
			}
			if la.has("assign-partitions") { // renumbers the assignment's partitions
				for i, p := range parseBrokerList(la["assign-partitions"]) {
					rt.ReplicaAssignment[i].Partition = p
				}
			}
			if la.has("config") {
				for kv := range strings.SplitSeq(la["config"], ",") {
					k, v, _ := strings.Cut(kv, ":")
					c := kmsg.NewCreateTopicsRequestTopicConfig()
					c.Name, c.Value = k, &v
					rt.Configs = append(rt.Configs, c)
				}
			}
			if la.has("null-config") {
				c := kmsg.NewCreateTopicsRequestTopicConfig()
				c.Name = la["null-config"]
				rt.Configs = append(rt.Configs, c)
			}
			if la.has("empty-config") {
				c := kmsg.NewCreateTopicsRequestTopicConfig()
				v := "x"
				c.Value = &v
				rt.Configs = append(rt.Configs, c)
			}
			req.Topics = append(req.Topics, rt)
		}
		records, resp := h.c.CreateTopics(h.im, req, h.newID)
		for _, rt := range resp.Topics {
			if rt.ErrorCode == 0 {
				h.names[rt.TopicID] = rt.Topic
			}
		}
		if err := h.records(&b, records); err != nil {
			return b.String(), err
		}
		for _, rt := range resp.Topics {
			if rt.ErrorCode != 0 {
				fmt.Fprintf(&b, "%s: %s partitions=%d rf=%d\n", rt.Topic, codeWithMessage(rt.ErrorCode, rt.ErrorMessage), rt.NumPartitions, rt.ReplicationFactor)
				continue
			}
			fmt.Fprintf(&b, "%s: NONE id=%s partitions=%d rf=%d\n", rt.Topic, h.topicName(rt.TopicID), rt.NumPartitions, rt.ReplicationFactor)
		}

	case "delete-topics":
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.Version = int16(a.int("version", 6))
		for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
			if req.Version < 6 {
				req.TopicNames = append(req.TopicNames, strings.TrimSpace(line))
				continue
			}
			la := harnessLineArgs(strings.Fields(line))
			rt := kmsg.NewDeleteTopicsRequestTopic()
			if la.has("name") {
				name := la["name"]
				rt.Topic = &name
			}
			if la.has("id") {
				if id, ok := h.im.Names[la["id"]]; ok {
					rt.TopicID = id
				} else {
					rt.TopicID = [16]byte{0xde, 0xad}
				}
			}
			req.Topics = append(req.Topics, rt)
		}
		records, resp := h.c.DeleteTopics(h.im, req)
		if err := h.records(&b, records); err != nil {
			return b.String(), err
		}
		for _, rt := range resp.Topics {
			name := "<nil>"
			if rt.Topic != nil {
				name = *rt.Topic
			}
			fmt.Fprintf(&b, "name=%s id=%s: %s\n", name, h.topicName(rt.TopicID), codeWithMessage(rt.ErrorCode, rt.ErrorMessage))
		}

	case "create-partitions":
		req := kmsg.NewPtrCreatePartitionsRequest()
		req.ValidateOnly = a.has("validate-only")
		for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
			fields := strings.Fields(line)
			la := harnessLineArgs(fields[1:])
			rt := kmsg.NewCreatePartitionsRequestTopic()
			rt.Topic = fields[0]
			rt.Count = int32(la.int("count", 0))
			if la.has("assign") {
				rt.Assignment = []kmsg.CreatePartitionsRequestTopicAssignment{}
				for _, rs := range parseAssignment(la["assign"]) {
					ra := kmsg.NewCreatePartitionsRequestTopicAssignment()
					ra.Replicas = rs
					rt.Assignment = append(rt.Assignment, ra)
				}
			}
			req.Topics = append(req.Topics, rt)
		}
		records, resp := h.c.CreatePartitions(h.im, req)
		if err := h.records(&b, records); err != nil {
			return b.String(), err
		}
		for _, rt := range resp.Topics {
			fmt.Fprintf(&b, "%s: %s\n", rt.Topic, codeWithMessage(rt.ErrorCode, rt.ErrorMessage))
		}

	case "alter-partition":
		req := kmsg.NewPtrAlterPartitionRequest()
		req.Version = int16(a.int("version", 3))
		req.BrokerID = int32(a.int("broker", 0))
		if br := h.im.Brokers[req.BrokerID]; br != nil {
			req.BrokerEpoch = br.Epoch
		}
		req.BrokerEpoch = a.int("epoch", req.BrokerEpoch)
		byTopic := map[string]int{}
		for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
			fields := strings.Fields(line)
			la := harnessLineArgs(fields[2:])
			name := fields[0]
			i, ok := byTopic[name]
			if !ok {
				rt := kmsg.NewAlterPartitionRequestTopic()
				if req.Version < 2 {
					rt.Topic = name
				} else if id, ok := h.im.Names[name]; ok {
					rt.TopicID = id
				} else {
					rt.TopicID = [16]byte{0xde, 0xad}
				}
				req.Topics = append(req.Topics, rt)
				i = len(req.Topics) - 1
				byTopic[name] = i
			}
			rp := kmsg.NewAlterPartitionRequestTopicPartition()
			n, _ := strconv.Atoi(fields[1])
			rp.Partition = int32(n)
			var cur *PartitionImage
			if t, ok := h.im.Topic(name); ok && n < len(t.Partitions) {
				cur = t.Partitions[n]
				rp.LeaderEpoch, rp.PartitionEpoch = cur.LeaderEpoch, cur.PartitionEpoch
			}
			rp.LeaderEpoch = int32(la.int("leader-epoch", int64(rp.LeaderEpoch)))
			rp.PartitionEpoch = int32(la.int("partition-epoch", int64(rp.PartitionEpoch)))
			rp.LeaderRecoveryState = int8(la.int("recovery", 0))
			var isr []int32
			if cur != nil {
				isr = cur.ISR
			}
			if la.has("isr") {
				isr = parseBrokerList(la["isr"])
			}
			epochs := map[int32]int64{}
			if la.has("isr-epochs") {
				for kv := range strings.SplitSeq(la["isr-epochs"], ",") {
					k, v, _ := strings.Cut(kv, ":")
					id, _ := strconv.Atoi(k)
					e, _ := strconv.ParseInt(v, 10, 64)
					epochs[int32(id)] = e
				}
			}
			for _, id := range isr {
				rp.NewISR = append(rp.NewISR, id)
				e := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
				e.BrokerID, e.BrokerEpoch = id, -1
				if br := h.im.Brokers[id]; br != nil {
					e.BrokerEpoch = br.Epoch
				}
				if v, ok := epochs[id]; ok {
					e.BrokerEpoch = v
				}
				rp.NewEpochISR = append(rp.NewEpochISR, e)
			}
			req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
		}
		records, resp := h.c.AlterPartition(h.im, req)
		if err := h.records(&b, records); err != nil {
			return b.String(), err
		}
		fmt.Fprintf(&b, "response: %s\n", codeName(resp.ErrorCode))
		for _, rt := range resp.Topics {
			name := rt.Topic
			if req.Version >= 2 {
				name = h.topicName(rt.TopidID)
			}
			for _, rp := range rt.Partitions {
				if rp.ErrorCode != 0 {
					fmt.Fprintf(&b, "%s-%d: %s\n", name, rp.Partition, codeName(rp.ErrorCode))
					continue
				}
				fmt.Fprintf(&b, "%s-%d: NONE leader=%d isr=%v epochs=%d/%d\n", name, rp.Partition, rp.LeaderID, rp.ISR, rp.LeaderEpoch, rp.PartitionEpoch)
			}
		}

	case "elect":
		t, p, err := harnessPartition(h.im, d)
		if err != nil {
			return "", err
		}
		exclude := int32(a.int("exclude", int64(NoLeader)))
		fmt.Fprintf(&b, "leader: %d\n", electLeader(h.im, t.Partitions[p], exclude, a.has("unclean")))

	case "change":
		t, p, err := harnessPartition(h.im, d)
		if err != nil {
			return "", err
		}
		old := t.Partitions[p]
		ch := &PartitionChange{TopicID: t.ID, Partition: p, Leader: int32(a.int("leader", int64(old.Leader))),
			ISR: old.ISR, LeaderEpoch: old.LeaderEpoch, PartitionEpoch: old.PartitionEpoch + 1}
		if a.has("isr") {
			ch.ISR = parseBrokerList(a["isr"])
		}
		if ch.Leader != old.Leader {
			ch.LeaderEpoch++
		}
		if err := h.records(&b, []Record{ch}); err != nil {
			return b.String(), err
		}

	case "topic-config":
		if len(d.CmdArgs) != 2 || len(d.CmdArgs[1].Vals) != 1 {
			return "", errors.New("topic-config TOPIC KEY=VALUE")
		}
		ch := &ConfigChange{ResourceType: ResourceTopic, ResourceName: d.CmdArgs[0].Key, Name: d.CmdArgs[1].Key, Value: d.CmdArgs[1].Vals[0]}
		if err := h.records(&b, []Record{ch}); err != nil {
			return b.String(), err
		}

	case "allocate-producer-ids":
		req := kmsg.NewPtrAllocateProducerIDsRequest()
		req.Version = int16(a.int("version", 0))
		req.BrokerID = int32(a.int("broker", 0))
		if br := h.im.Brokers[req.BrokerID]; br != nil {
			req.BrokerEpoch = br.Epoch
		}
		req.BrokerEpoch = a.int("epoch", req.BrokerEpoch)
		records, resp := h.c.AllocateProducerIDs(h.im, req)
		if err := h.records(&b, records); err != nil {
			return b.String(), err
		}
		if resp.ErrorCode != 0 {
			fmt.Fprintf(&b, "response: %s\n", codeName(resp.ErrorCode))
			break
		}
		fmt.Fprintf(&b, "response: NONE start=%d len=%d\n", resp.ProducerIDStart, resp.ProducerIDLen)

	case "alter-configs":
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		req.Version = int16(a.int("version", 1))
		req.ValidateOnly = a.has("validate-only")
		for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
			res, err := parseAlterConfigsResource(line)
			if err != nil {
				return "", err
			}
			req.Resources = append(req.Resources, res)
		}
		records, resp := h.c.IncrementalAlterConfigs(h.im, req)
		if err := h.records(&b, records); err != nil {
			return b.String(), err
		}
		for _, r := range resp.Resources {
			fmt.Fprintf(&b, "%s %q: %s\n", r.ResourceType, r.ResourceName, codeWithMessage(r.ErrorCode, r.ErrorMessage))
		}

	case "configs":
		for _, t := range h.im.TopicsByName() {
			if len(t.Configs) > 0 {
				fmt.Fprintf(&b, "topic %s: %s\n", t.Name, imgFormatConfigs(t.Configs))
			}
		}
		for _, res := range slices.Sorted(maps.Keys(h.im.BrokerConfigs)) {
			name := "cluster"
			if res != "" {
				name = "broker " + res
			}
			fmt.Fprintf(&b, "%s: %s\n", name, imgFormatConfigs(h.im.BrokerConfigs[res]))
		}
		fmt.Fprintf(&b, "next producer id %d\n", h.im.NextProducerID)

	case "state":
		return h.state(), nil

	case "sessions":
		for _, id := range slices.Sorted(maps.Keys(h.c.sessions)) {
			s := h.c.sessions[id]
			fmt.Fprintf(&b, "broker %d last-contact=%d metadata-offset=%d", id, s.lastContactMs, s.metadataOffset)
			if s.shuttingDown {
				fmt.Fprintf(&b, " shutting-down shutdown-offset=%d", s.shutdownOffset)
			}
			b.WriteByte('\n')
		}

	default:
		return "", fmt.Errorf("unknown command %q", d.Cmd)
	}
	return b.String(), nil
}

// parseAlterConfigsResource parses one resource of an alter-configs
// command: TYPE:NAME OP:KEY[=VALUE]…
func parseAlterConfigsResource(line string) (kmsg.IncrementalAlterConfigsRequestResource, error) {
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return res, errors.New("alter-configs: an empty resource line")
	}
	typ, name, ok := strings.Cut(fields[0], ":")
	if !ok {
		return res, fmt.Errorf("alter-configs: resource %q is not TYPE:NAME", fields[0])
	}
	switch typ {
	case "topic":
		res.ResourceType = kmsg.ConfigResourceTypeTopic
	case "broker":
		res.ResourceType = kmsg.ConfigResourceTypeBroker
	default:
		n, err := strconv.ParseInt(typ, 10, 8)
		if err != nil {
			return res, fmt.Errorf("alter-configs: resource type %q", typ)
		}
		res.ResourceType = kmsg.ConfigResourceType(n)
	}
	res.ResourceName = name
	for _, f := range fields[1:] {
		op, kv, ok := strings.Cut(f, ":")
		if !ok {
			return res, fmt.Errorf("alter-configs: config %q is not OP:KEY[=VALUE]", f)
		}
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		switch op {
		case "set":
			c.Op = kmsg.IncrementalAlterConfigOpSet
		case "delete":
			c.Op = kmsg.IncrementalAlterConfigOpDelete
		case "append":
			c.Op = kmsg.IncrementalAlterConfigOpAppend
		case "subtract":
			c.Op = kmsg.IncrementalAlterConfigOpSubtract
		default:
			n, err := strconv.ParseInt(strings.TrimPrefix(op, "op"), 10, 8)
			if err != nil || !strings.HasPrefix(op, "op") {
				return res, fmt.Errorf("alter-configs: operation %q", op)
			}
			c.Op = kmsg.IncrementalAlterConfigOp(n)
		}
		k, v, hasValue := strings.Cut(kv, "=")
		c.Name = k
		if hasValue {
			c.Value = &v
		}
		res.Configs = append(res.Configs, c)
	}
	return res, nil
}

// fakeConfigValidator knows a few configs, with Kafka's messages:
// cleanup.policy (topic) and log.cleanup.policy (broker) are lists of
// "delete" and "compact", a name ending in .ms or .bytes takes a long, and
// a topic config name starting "unknown." is not one.
type fakeConfigValidator struct{}

func (fakeConfigValidator) IsListConfig(resourceType int8, name string) bool {
	return resourceType == ResourceTopic && name == "cleanup.policy" ||
		resourceType == ResourceBroker && name == "log.cleanup.policy"
}

// ValidateConfig spells a long in decimal without sign or leading zeros,
// as Kafka's ConfigDef does.
func (v fakeConfigValidator) ValidateConfig(resourceType int8, name, value string) (string, error) {
	switch {
	case v.IsListConfig(resourceType, name):
		for _, e := range splitConfigList(value) {
			if e != "delete" && e != "compact" {
				return "", fmt.Errorf("Invalid value %s for configuration %s: String must be one of: compact, delete", value, name)
			}
		}
	case strings.HasSuffix(name, ".ms") || strings.HasSuffix(name, ".bytes"):
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return "", fmt.Errorf("Invalid value %s for configuration %s: Not a number of type LONG", value, name)
		}
		return strconv.FormatInt(n, 10), nil
	case resourceType == ResourceTopic && strings.HasPrefix(name, "unknown."):
		return "", fmt.Errorf("Unknown topic config name: %s", name)
	}
	return value, nil
}

// harnessPartition reads "TOPIC PARTITION" from a command's first two
// arguments.
func harnessPartition(im *Image, d *datadriven.TestData) (*TopicImage, int32, error) {
	if len(d.CmdArgs) < 2 {
		return nil, 0, errors.New("want TOPIC PARTITION")
	}
	t, ok := im.Topic(d.CmdArgs[0].Key)
	if !ok {
		return nil, 0, fmt.Errorf("no topic %q", d.CmdArgs[0].Key)
	}
	p, err := strconv.Atoi(d.CmdArgs[1].Key)
	if err != nil || p < 0 || p >= len(t.Partitions) {
		return nil, 0, fmt.Errorf("no partition %q of %s", d.CmdArgs[1].Key, t.Name)
	}
	return t, int32(p), nil
}

func TestControllerConfig(t *testing.T) {
	var cfg ControllerConfig
	cfg.EnsureDefaults()
	want := ControllerConfig{BrokerSessionTimeoutMs: 9000, NumPartitions: 1, DefaultReplicationFactor: 1, LeaderImbalanceCheckIntervalSeconds: 300}
	if cfg != want {
		t.Fatalf("defaults: %+v, want %+v", cfg, want)
	}
	// Kafka's defaults, auto.leader.rebalance.enable=true among them.
	want.AutoLeaderRebalanceEnable = true
	if def := DefaultControllerConfig(); def != want {
		t.Fatalf("DefaultControllerConfig: %+v, want %+v", def, want)
	}
	bad := ControllerConfig{BrokerSessionTimeoutMs: -1, NumPartitions: -2, DefaultReplicationFactor: -3, LeaderImbalanceCheckIntervalSeconds: -4}
	err := bad.Validate()
	if err == nil {
		t.Fatal("no error for a bad config")
	}
	for _, s := range []string{"broker.session.timeout.ms=-1", "num.partitions=-2", "default.replication.factor=-3",
		"leader.imbalance.check.interval.seconds=-4", "cluster id is empty"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	if _, err := NewController(ControllerConfig{}); err == nil {
		t.Error("NewController accepted a config without a cluster id")
	}
	if _, err := NewController(ControllerConfig{ClusterID: "c"}); err != nil {
		t.Errorf("NewController with defaults: %v", err)
	}
}

// TestControllerCreateTopicsBounded checks that a request for more records
// than a request may make fails whole, without placing anything.
func TestControllerCreateTopicsBounded(t *testing.T) {
	h, err := newControllerHarness(ControllerConfig{ClusterID: testClusterID})
	if err != nil {
		t.Fatal(err)
	}
	records, _ := h.c.RegisterBroker(h.im, registrationRequest(1, 1, ""), 0)
	if err := h.apply(records); err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	for i, n := range []int32{5000, 1 << 30} {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = fmt.Sprintf("t%d", i), n, 1
		req.Topics = append(req.Topics, rt)
	}
	records, resp := h.c.CreateTopics(h.im, req, h.newID)
	if len(records) != 0 {
		t.Fatalf("%d records", len(records))
	}
	for _, rt := range resp.Topics {
		if rt.ErrorCode != kerr.PolicyViolation.Code {
			t.Errorf("%s: %s, want POLICY_VIOLATION", rt.Topic, codeName(rt.ErrorCode))
		}
	}
}

// TestControllerIncrementalAlterConfigsBounded checks that a request for
// more records than a request may make fails whole, every resource with
// POLICY_VIOLATION, and that one just within the bound does not.
func TestControllerIncrementalAlterConfigsBounded(t *testing.T) {
	h, err := newControllerHarness(ControllerConfig{ClusterID: testClusterID})
	if err != nil {
		t.Fatal(err)
	}
	request := func(n int) *kmsg.IncrementalAlterConfigsRequest {
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		for r, count := range []int{n / 2, n - n/2} {
			res := kmsg.NewIncrementalAlterConfigsRequestResource()
			res.ResourceType = kmsg.ConfigResourceTypeBroker
			if r == 1 {
				res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, "nope" // fails on its own
			}
			for i := range count {
				c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
				c.Name, c.Value = fmt.Sprintf("k%d", i), kmsg.StringPtr("v")
				res.Configs = append(res.Configs, c)
			}
			req.Resources = append(req.Resources, res)
		}
		return req
	}
	// 10000 records from the first resource: the second fails alone.
	records, resp := h.c.IncrementalAlterConfigs(h.im, request(2*maxRecordsPerRequest))
	if len(records) != maxRecordsPerRequest || resp.Resources[0].ErrorCode != 0 || resp.Resources[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("at the bound: %d records, %s, %s", len(records), codeName(resp.Resources[0].ErrorCode), codeName(resp.Resources[1].ErrorCode))
	}
	if err := h.apply(records); err != nil {
		t.Fatal(err)
	}
	// One record more (10001 keys on a fresh image): the whole request fails.
	records, resp = h.c.IncrementalAlterConfigs(NewImage(), request(2*maxRecordsPerRequest+2))
	if len(records) != 0 {
		t.Fatalf("past the bound: %d records", len(records))
	}
	for _, r := range resp.Resources {
		if r.ErrorCode != kerr.PolicyViolation.Code {
			t.Errorf("%s %q: %s, want POLICY_VIOLATION", r.ResourceType, r.ResourceName, codeName(r.ErrorCode))
		}
	}
	// Values that do not change make no records, so do not count.
	records, resp = h.c.IncrementalAlterConfigs(h.im, request(2*maxRecordsPerRequest))
	if len(records) != 0 || resp.Resources[0].ErrorCode != 0 {
		t.Fatalf("unchanged values: %d records, %s", len(records), codeName(resp.Resources[0].ErrorCode))
	}
}

// TestControllerAllocateProducerIDsExhausted: the last block that fits in an
// int64 is handed out; after it there are no more ids, and the controller
// says so instead of wrapping around.
func TestControllerAllocateProducerIDsExhausted(t *testing.T) {
	h, err := newControllerHarness(ControllerConfig{ClusterID: testClusterID})
	if err != nil {
		t.Fatal(err)
	}
	records, _ := h.c.RegisterBroker(h.im, registrationRequest(1, 1, ""), 0)
	if err := h.apply(append(records, &ProducerIDsAllocated{BrokerID: 1, BrokerEpoch: 1, NextProducerID: math.MaxInt64 - 2*producerIDBlockSize})); err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrAllocateProducerIDsRequest()
	req.BrokerID, req.BrokerEpoch = 1, 1
	for _, want := range []int64{math.MaxInt64 - 2*producerIDBlockSize, math.MaxInt64 - producerIDBlockSize} {
		records, resp := h.c.AllocateProducerIDs(h.im, req)
		if resp.ErrorCode != 0 || resp.ProducerIDStart != want || resp.ProducerIDLen != producerIDBlockSize {
			t.Fatalf("%s start %d len %d, want the block at %d", codeName(resp.ErrorCode), resp.ProducerIDStart, resp.ProducerIDLen, want)
		}
		if err := h.apply(records); err != nil {
			t.Fatal(err)
		}
	}
	if h.im.NextProducerID != math.MaxInt64 {
		t.Fatalf("next producer id %d", h.im.NextProducerID)
	}
	records, resp := h.c.AllocateProducerIDs(h.im, req)
	if len(records) != 0 || resp.ErrorCode != kerr.UnknownServerError.Code {
		t.Fatalf("past the last block: %d records, %s", len(records), codeName(resp.ErrorCode))
	}
}

// TestControllerElectUncleanLeadersBounded: one pass elects at most
// maxElectionsPerPass leaders and says there is more, so that the shell
// runs another at once instead of proposing one entry without bound.
func TestControllerElectUncleanLeadersBounded(t *testing.T) {
	h := leaderlessHarness(t, maxElectionsPerPass+200)
	if err := h.apply([]Record{&ConfigChange{ResourceType: ResourceBroker, Name: uncleanLeaderElectionKey, Value: "true"}}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		n    int
		more bool
	}{{maxElectionsPerPass, true}, {200, false}, {0, false}} {
		records, more := h.c.ElectUncleanLeaders(h.im)
		if len(records) != want.n || more != want.more {
			t.Fatalf("%d records, more %t; want %d, %t", len(records), more, want.n, want.more)
		}
		if err := h.apply(records); err != nil {
			t.Fatal(err)
		}
	}
	tp, _ := h.im.Topic("t")
	for i, p := range tp.Partitions {
		if p.Leader != 1 || !slices.Equal(p.ISR, []int32{1}) {
			t.Fatalf("t-%d: leader %d isr %v, want 1 alone", i, p.Leader, p.ISR)
		}
	}
}

// TestControllerElectPreferredLeadersBounded: as ElectUncleanLeaders, one
// pass moves at most maxElectionsPerPass leaderships and says there is
// more.
func TestControllerElectPreferredLeadersBounded(t *testing.T) {
	h := leaderlessHarness(t, maxElectionsPerPass+200)
	// Broker 2 back and in every ISR again, leading; broker 1 preferred.
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.BrokerID, req.BrokerEpoch, req.CurrentMetadataOffset = 2, h.im.Brokers[2].Epoch, int64(h.im.Offset)
	if err := h.apply(mustRecords(h.c.Heartbeat(h.im, req, h.now))); err != nil {
		t.Fatal(err)
	}
	tp, _ := h.im.Topic("t")
	var records []Record
	for i, p := range tp.Partitions {
		records = append(records, &PartitionChange{TopicID: tp.ID, Partition: int32(i), Leader: 2, ISR: []int32{2, 1},
			LeaderEpoch: p.LeaderEpoch + 1, PartitionEpoch: p.PartitionEpoch + 1})
	}
	if err := h.apply(records); err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		n    int
		more bool
	}{{maxElectionsPerPass, true}, {200, false}, {0, false}} {
		records, more := h.c.ElectPreferredLeaders(h.im)
		if len(records) != want.n || more != want.more {
			t.Fatalf("%d records, more %t; want %d, %t", len(records), more, want.n, want.more)
		}
		if err := h.apply(records); err != nil {
			t.Fatal(err)
		}
	}
	tp, _ = h.im.Topic("t")
	for i, p := range tp.Partitions {
		if p.Leader != 1 {
			t.Fatalf("t-%d: leader %d, want its preferred replica 1", i, p.Leader)
		}
	}
}

// leaderlessHarness has brokers 1 and 2 and a topic t of n partitions,
// each with replicas [1 2] and ISR [2], which went leaderless when broker
// 2, its last ISR member, was fenced; broker 1 is live.
func leaderlessHarness(t *testing.T, n int) *controllerHarness {
	t.Helper()
	h, err := newControllerHarness(ControllerConfig{ClusterID: testClusterID})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []int32{1, 2} {
		records, _ := h.c.RegisterBroker(h.im, registrationRequest(id, 1, ""), h.now)
		if err := h.apply(records); err != nil {
			t.Fatal(err)
		}
		req := kmsg.NewPtrBrokerHeartbeatRequest()
		req.BrokerID, req.BrokerEpoch, req.CurrentMetadataOffset = id, h.im.Brokers[id].Epoch, int64(h.im.Offset)
		if err := h.apply(mustRecords(h.c.Heartbeat(h.im, req, h.now))); err != nil {
			t.Fatal(err)
		}
	}
	records := []Record{&Topic{Name: "t", ID: h.newID()}}
	for i := range n {
		records = append(records, &Partition{TopicID: records[0].(*Topic).ID, Partition: int32(i), Replicas: []int32{1, 2}, ISR: []int32{2}, Leader: 2})
	}
	if err := h.apply(records); err != nil {
		t.Fatal(err)
	}
	if err := h.apply(h.c.fence(h.im, []int32{2})); err != nil {
		t.Fatal(err)
	}
	return h
}

// mustRecords drops a decision's response.
func mustRecords[R any](records []Record, _ R) []Record { return records }

// modelBroker is what the randomized test expects of a broker.
type modelBroker struct {
	fenced        bool
	shuttingDown  bool
	lastContactMs int64
}

// TestControllerRandomized drives two controllers alike with random
// registrations, heartbeats, session expiries, topic creations, deletions,
// partition additions, ISR changes, producer id blocks and config changes
// (unclean.leader.election.enable among them); applies every decision's records
// with Image.Apply (which must accept them); and checks the image against a
// model of the brokers' fencing and the invariants every image must keep:
// each partition's leader is in its ISR and unfenced, or there is none;
// the ISR is among the replicas and never empty, and holds a broker that
// may not lead only as its last member, leaderless; epochs only increase.
// The second controller must decide exactly as the first.
func TestControllerRandomized(t *testing.T) {
	seed := testseed.Seed(t)
	rng := rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d))
	const timeout = 1000
	cfg := ControllerConfig{ClusterID: testClusterID, BrokerSessionTimeoutMs: timeout,
		UncleanLeaderElectionEnable: rng.IntN(2) == 0, DefaultReplicationFactor: 2}
	h, err := newControllerHarness(cfg)
	if err != nil {
		t.Fatal(err)
	}
	twin, _ := NewController(cfg)
	model := map[int32]*modelBroker{}
	incarnations := map[int32]byte{}
	const brokers = 6
	topics := []string{"a", "b", "c", "d", "e"}

	seen := map[string]int{} // what the run exercised, logged at the end
	lost := false            // the last decision's records were dropped
	// Brokers whose controlled-shutdown moves were dropped: they lead and
	// share ISRs until their next heartbeat makes the moves again.
	pending := map[int32]bool{}
	decide := func(what string, f func(c *Controller) ([]Record, any)) any {
		t.Helper()
		records, resp := f(h.c)
		for _, r := range records {
			seen[r.Type().String()]++
			if ch, ok := r.(*PartitionChange); ok && ch.Leader != NoLeader {
				if p, ok := h.im.Partition(ch.TopicID, ch.Partition); ok && !slices.Contains(p.ISR, ch.Leader) {
					seen["unclean election"]++
				}
			}
		}
		records2, resp2 := f(twin)
		if !reflect.DeepEqual(records, records2) || !reflect.DeepEqual(resp, resp2) {
			t.Fatalf("%s: controllers decided differently:\n%v %+v\n%v %+v", what, records, resp, records2, resp2)
		}
		if len(records) > 0 && rng.IntN(40) == 0 {
			// The proposal fails to enqueue: nothing commits, but the
			// controllers' volatile state moved on.
			lost = true
			seen["lost proposals"]++
			return resp
		}
		old := h.im
		if err := h.apply(records); err != nil {
			var lines []string
			for _, r := range records {
				lines = append(lines, h.formatRecord(r))
			}
			t.Fatalf("%s: records do not apply: %v\n%s\nimage before:\n%s", what, err, strings.Join(lines, "\n"), harnessStateOf(h, old))
		}
		checkImageInvariants(t, what, h, old, pending)
		return resp
	}

	var nextProducerID int64 // what the blocks handed out so far leave
	for step := range 6000 {
		h.now += int64(rng.IntN(400))
		lost = false
		switch op := rng.IntN(24); {
		case op < 2: // register, sometimes as a new incarnation
			id := int32(rng.IntN(brokers))
			inc := incarnations[id]
			if inc == 0 || rng.IntN(3) == 0 {
				inc++
			}
			rack := fmt.Sprintf("r%d", id%3)
			what := fmt.Sprintf("step %d: register %d incarnation %d", step, id, inc)
			before := h.im.Brokers[id]
			resp := decide(what, func(c *Controller) ([]Record, any) {
				return c.RegisterBroker(h.im, registrationRequest(id, inc, rack), h.now)
			}).(*kmsg.BrokerRegistrationResponse)
			if lost {
				break
			}
			m := model[id]
			seen["BrokerRegistration "+codeName(resp.ErrorCode)]++
			switch {
			case resp.ErrorCode == kerr.DuplicateBrokerRegistration.Code:
				if before == nil || before.Incarnation[15] == inc || m.fenced || m.lastContactMs+timeout < h.now {
					t.Fatalf("%s: DUPLICATE_BROKER_REGISTRATION without a live other incarnation", what)
				}
			case resp.ErrorCode != 0:
				t.Fatalf("%s: %s", what, codeName(resp.ErrorCode))
			case before != nil && before.Incarnation[15] != inc && !m.fenced && m.lastContactMs+timeout >= h.now:
				t.Fatalf("%s: accepted while the other incarnation is live", what)
			default:
				incarnations[id] = inc
				if m == nil {
					m = &modelBroker{}
					model[id] = m
				}
				m.lastContactMs = h.now
				if before == nil || before.Incarnation[15] != inc {
					*m = modelBroker{fenced: true, lastContactMs: h.now}
				}
			}

		case op < 10: // heartbeat
			id := int32(rng.IntN(brokers))
			b := h.im.Brokers[id]
			if b == nil {
				continue
			}
			old := h.im
			req := kmsg.NewPtrBrokerHeartbeatRequest()
			req.BrokerID, req.BrokerEpoch = id, b.Epoch
			if rng.IntN(20) == 0 {
				req.BrokerEpoch--
			}
			req.CurrentMetadataOffset = int64(h.im.Offset)
			if rng.IntN(5) == 0 {
				req.CurrentMetadataOffset = b.Epoch - 1
			}
			req.WantFence = rng.IntN(25) == 0
			req.WantShutdown = rng.IntN(25) == 0
			what := fmt.Sprintf("step %d: heartbeat %d %+v", step, id, *req)
			resp := decide(what, func(c *Controller) ([]Record, any) { return c.Heartbeat(h.im, req, h.now) }).(*kmsg.BrokerHeartbeatResponse)
			if lost {
				break
			}
			if req.BrokerEpoch == b.Epoch {
				delete(pending, id)
			}
			m := model[id]
			if req.BrokerEpoch != b.Epoch {
				if resp.ErrorCode != kerr.StaleBrokerEpoch.Code {
					t.Fatalf("%s: %s, want STALE_BROKER_EPOCH", what, codeName(resp.ErrorCode))
				}
				continue
			}
			m.lastContactMs = h.now
			caughtUp := req.CurrentMetadataOffset >= b.Epoch
			shutdown := false
			switch {
			case m.fenced:
				m.fenced = req.WantShutdown || req.WantFence || !caughtUp
				shutdown = req.WantShutdown
			case m.shuttingDown:
				// Fenced, and told to go, once it leads nothing and the
				// others have caught up.
				if resp.IsFenced {
					m.fenced, m.shuttingDown, shutdown = true, false, true
				}
			case req.WantFence:
				m.fenced, shutdown = true, req.WantShutdown
			case req.WantShutdown:
				if b.Fenced || old.PartitionsLedBy(id) == 0 {
					m.fenced, shutdown = true, true
				} else {
					m.shuttingDown = true
				}
			}
			if m.shuttingDown {
				seen["heartbeat in controlled shutdown"]++
			}
			if resp.ShouldShutdown {
				seen["heartbeat told to shut down"]++
			}
			if resp.IsFenced != m.fenced || resp.ShouldShutdown != shutdown {
				t.Fatalf("%s: response %+v, model %+v", what, *resp, *m)
			}
			if resp.IsCaughtUp != caughtUp {
				t.Fatalf("%s: IsCaughtUp %t", what, resp.IsCaughtUp)
			}
			if n := h.im.PartitionsLedBy(id); m.shuttingDown && n > 0 {
				t.Fatalf("%s: broker in controlled shutdown still leads %d partitions", what, n)
			}

		case op < 12: // session expiry
			what := fmt.Sprintf("step %d: tick at %d", step, h.now)
			decide(what, func(c *Controller) ([]Record, any) { return c.FenceExpired(h.im, h.now), nil })
			if lost {
				break
			}
			for _, m := range model {
				if !m.fenced && m.lastContactMs+timeout < h.now {
					m.fenced, m.shuttingDown = true, false
				}
			}

		case op < 14: // create a topic
			req := kmsg.NewPtrCreateTopicsRequest()
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic = topics[rng.IntN(len(topics))]
			rt.NumPartitions = int32(1 + rng.IntN(4))
			rt.ReplicationFactor = int16(1 + rng.IntN(3))
			req.Topics = append(req.Topics, rt)
			what := fmt.Sprintf("step %d: create %s partitions=%d rf=%d", step, rt.Topic, rt.NumPartitions, rt.ReplicationFactor)
			ids := h.ids
			resp := decide(what, func(c *Controller) ([]Record, any) {
				h.ids = ids // both controllers draw the same ids
				return c.CreateTopics(h.im, req, h.newID)
			}).(*kmsg.CreateTopicsResponse)
			if lost {
				break
			}
			live, fenced := h.c.placementBrokers(h.im)
			got := resp.Topics[0].ErrorCode
			seen["CreateTopics "+codeName(got)]++
			switch {
			case got == kerr.TopicAlreadyExists.Code:
			case len(live) == 0 || int(rt.ReplicationFactor) > len(live)+len(fenced):
				if got != kerr.InvalidReplicationFactor.Code {
					t.Fatalf("%s: %s with %d live and %d fenced brokers", what, codeName(got), len(live), len(fenced))
				}
			case got != 0:
				t.Fatalf("%s: %s", what, codeName(got))
			default:
				ti, ok := h.im.Topic(rt.Topic)
				if !ok || len(ti.Partitions) != int(rt.NumPartitions) {
					t.Fatalf("%s: topic not created as asked", what)
				}
				if int(rt.ReplicationFactor) > len(live) {
					seen["CreateTopics on fenced brokers"]++
				}
				for _, p := range ti.Partitions {
					// Live brokers first: as many live replicas as
					// there can be, and they are the ISR, led by the
					// first replica.
					isr := slices.DeleteFunc(slices.Clone(p.Replicas), func(id int32) bool { return h.im.Brokers[id].Fenced })
					if len(p.Replicas) != int(rt.ReplicationFactor) || len(isr) != min(len(p.Replicas), len(live)) ||
						!slices.Equal(isr, p.ISR) || p.Leader != p.Replicas[0] {
						t.Fatalf("%s: new partition %+v", what, *p)
					}
				}
			}

		case op < 15: // delete a topic
			req := kmsg.NewPtrDeleteTopicsRequest()
			name := topics[rng.IntN(len(topics))]
			req.TopicNames = []string{name}
			req.Version = 5
			_, existed := h.im.Topic(name)
			what := fmt.Sprintf("step %d: delete %s", step, name)
			resp := decide(what, func(c *Controller) ([]Record, any) { return c.DeleteTopics(h.im, req) }).(*kmsg.DeleteTopicsResponse)
			if lost {
				break
			}
			if _, exists := h.im.Topic(name); exists || (resp.Topics[0].ErrorCode == 0) != existed {
				t.Fatalf("%s: %s, existed %t", what, codeName(resp.Topics[0].ErrorCode), existed)
			}

		case op < 16: // add partitions
			name := topics[rng.IntN(len(topics))]
			ti, ok := h.im.Topic(name)
			if !ok {
				continue
			}
			req := kmsg.NewPtrCreatePartitionsRequest()
			rt := kmsg.NewCreatePartitionsRequestTopic()
			rt.Topic, rt.Count = name, int32(len(ti.Partitions)+rng.IntN(3))
			req.Topics = append(req.Topics, rt)
			what := fmt.Sprintf("step %d: create partitions %s count=%d", step, name, rt.Count)
			resp := decide(what, func(c *Controller) ([]Record, any) { return c.CreatePartitions(h.im, req) }).(*kmsg.CreatePartitionsResponse)
			if lost {
				break
			}
			ti, _ = h.im.Topic(name)
			if code := resp.Topics[0].ErrorCode; code == 0 && len(ti.Partitions) != int(rt.Count) {
				t.Fatalf("%s: %d partitions after success", what, len(ti.Partitions))
			}

		case op == 20: // a broker takes a block of producer ids
			id := int32(rng.IntN(brokers))
			req := kmsg.NewPtrAllocateProducerIDsRequest()
			req.BrokerID, req.BrokerEpoch = id, -1
			if b := h.im.Brokers[id]; b != nil {
				req.BrokerEpoch = b.Epoch
				if rng.IntN(10) == 0 {
					req.BrokerEpoch--
				}
			}
			registered := h.im.Brokers[id] != nil && h.im.Brokers[id].Epoch == req.BrokerEpoch
			what := fmt.Sprintf("step %d: allocate producer ids broker %d epoch %d", step, id, req.BrokerEpoch)
			resp := decide(what, func(c *Controller) ([]Record, any) { return c.AllocateProducerIDs(h.im, req) }).(*kmsg.AllocateProducerIDsResponse)
			if lost {
				break
			}
			seen["AllocateProducerIDs "+codeName(resp.ErrorCode)]++
			switch {
			case !registered:
				if resp.ErrorCode != kerr.StaleBrokerEpoch.Code {
					t.Fatalf("%s: %s, want STALE_BROKER_EPOCH", what, codeName(resp.ErrorCode))
				}
			case resp.ErrorCode != 0 || resp.ProducerIDStart != nextProducerID || resp.ProducerIDLen != producerIDBlockSize:
				t.Fatalf("%s: %s start %d len %d, want the block at %d", what, codeName(resp.ErrorCode), resp.ProducerIDStart, resp.ProducerIDLen, nextProducerID)
			default:
				nextProducerID += producerIDBlockSize
			}
			if h.im.NextProducerID != nextProducerID {
				t.Fatalf("%s: the image's next producer id is %d, want %d", what, h.im.NextProducerID, nextProducerID)
			}

		case op == 21: // a topic's or the cluster's config changes
			req := kmsg.NewPtrIncrementalAlterConfigsRequest()
			res := kmsg.NewIncrementalAlterConfigsRequestResource()
			res.ResourceType = kmsg.ConfigResourceTypeBroker
			if rng.IntN(3) > 0 {
				res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, topics[rng.IntN(len(topics))]
			}
			c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
			c.Name = []string{uncleanLeaderElectionKey, "retention.ms"}[rng.IntN(2)]
			c.Op = kmsg.IncrementalAlterConfigOp(rng.IntN(2)) // SET or DELETE
			c.Value = kmsg.StringPtr(strconv.FormatBool(rng.IntN(2) == 0))
			res.Configs = append(res.Configs, c)
			req.Resources = append(req.Resources, res)
			_, exists := h.im.Topic(res.ResourceName)
			what := fmt.Sprintf("step %d: alter configs %s %q %s %s=%s", step, res.ResourceType, res.ResourceName, c.Op, c.Name, *c.Value)
			resp := decide(what, func(c *Controller) ([]Record, any) { return c.IncrementalAlterConfigs(h.im, req) }).(*kmsg.IncrementalAlterConfigsResponse)
			if lost {
				break
			}
			got := resp.Resources[0].ErrorCode
			seen["IncrementalAlterConfigs "+codeName(got)]++
			if want := res.ResourceType == kmsg.ConfigResourceTypeBroker || exists; (got == 0) != want {
				t.Fatalf("%s: %s", what, codeName(got))
			}
			if got == 0 {
				configs := h.im.BrokerConfigs[""]
				if ti, ok := h.im.Topic(res.ResourceName); ok {
					configs = ti.Configs
				}
				if v, ok := configs[c.Name]; ok != (c.Op == kmsg.IncrementalAlterConfigOpSet) || ok && v != *c.Value {
					t.Fatalf("%s: the config is now %q (set: %t)", what, v, ok)
				}
			}

		case op == 22: // the unclean election pass (after a config change, or periodic)
			what := fmt.Sprintf("step %d: elect unclean leaders", step)
			var more bool
			decide(what, func(c *Controller) ([]Record, any) {
				records, m := c.ElectUncleanLeaders(h.im)
				more = m
				return records, m
			})
			if lost || more {
				break
			}
			// Every partition it could bring back has a leader.
			for _, ti := range h.im.TopicsByName() {
				for i, p := range ti.Partitions {
					if p.Leader == NoLeader && h.c.unclean(h.im, ti) &&
						slices.ContainsFunc(p.Replicas, func(id int32) bool { return h.c.usable(h.im, id) }) {
						t.Fatalf("%s: %s-%d replicas %v isr %v left leaderless with a live replica", what, ti.Name, i, p.Replicas, p.ISR)
					}
				}
			}

		case op == 23: // the periodic preferred leader election
			what := fmt.Sprintf("step %d: elect preferred leaders", step)
			var more bool
			decide(what, func(c *Controller) ([]Record, any) {
				records, m := c.ElectPreferredLeaders(h.im)
				more = m
				return records, m
			})
			if lost || more {
				break
			}
			for _, ti := range h.im.TopicsByName() {
				for i, p := range ti.Partitions {
					if preferred := p.Replicas[0]; p.Leader != preferred && slices.Contains(p.ISR, preferred) && h.c.usable(h.im, preferred) {
						t.Fatalf("%s: %s-%d led by %d, not by its preferred replica %d in ISR %v", what, ti.Name, i, p.Leader, preferred, p.ISR)
					}
				}
			}

		default: // a leader changes its ISR
			var cands []struct {
				t *TopicImage
				p int32
			}
			for _, ti := range h.im.TopicsByName() {
				for i, p := range ti.Partitions {
					if p.Leader != NoLeader {
						cands = append(cands, struct {
							t *TopicImage
							p int32
						}{ti, int32(i)})
					}
				}
			}
			if len(cands) == 0 {
				continue
			}
			cand := cands[rng.IntN(len(cands))]
			p := cand.t.Partitions[cand.p]
			req := kmsg.NewPtrAlterPartitionRequest()
			req.Version = int16(rng.IntN(4))
			req.BrokerID = p.Leader
			req.BrokerEpoch = h.im.Brokers[p.Leader].Epoch
			rt := kmsg.NewAlterPartitionRequestTopic()
			rt.Topic, rt.TopicID = cand.t.Name, cand.t.ID
			rp := kmsg.NewAlterPartitionRequestTopicPartition()
			rp.Partition, rp.LeaderEpoch, rp.PartitionEpoch = cand.p, p.LeaderEpoch, p.PartitionEpoch
			if rng.IntN(10) == 0 {
				rp.PartitionEpoch--
			}
			isr := []int32{p.Leader}
			for _, r := range p.Replicas {
				if r != p.Leader && rng.IntN(2) == 0 {
					isr = append(isr, r)
				}
			}
			rp.NewISR = isr
			for _, id := range isr {
				e := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
				e.BrokerID, e.BrokerEpoch = id, -1
				if b := h.im.Brokers[id]; b != nil {
					e.BrokerEpoch = b.Epoch
				}
				rp.NewEpochISR = append(rp.NewEpochISR, e)
			}
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			what := fmt.Sprintf("step %d: alter %s-%d isr=%v v%d", step, cand.t.Name, cand.p, isr, req.Version)
			resp := decide(what, func(c *Controller) ([]Record, any) { return c.AlterPartition(h.im, req) }).(*kmsg.AlterPartitionResponse)
			if lost {
				break
			}
			got := resp.Topics[0].Partitions[0]
			seen["AlterPartition "+codeName(got.ErrorCode)]++
			eligible := true
			for _, id := range isr {
				b := h.im.Brokers[id]
				eligible = eligible && b != nil && !b.Fenced && !h.c.shuttingDown(id)
			}
			now, _ := h.im.Partition(cand.t.ID, cand.p)
			switch {
			case rp.PartitionEpoch < p.PartitionEpoch:
				if got.ErrorCode != kerr.InvalidUpdateVersion.Code {
					t.Fatalf("%s: %s, want INVALID_UPDATE_VERSION", what, codeName(got.ErrorCode))
				}
			case !eligible:
				if got.ErrorCode != kerr.IneligibleReplica.Code && got.ErrorCode != kerr.OperationNotAttempted.Code {
					t.Fatalf("%s: %s, want INELIGIBLE_REPLICA", what, codeName(got.ErrorCode))
				}
			case got.ErrorCode != 0:
				t.Fatalf("%s: %s", what, codeName(got.ErrorCode))
			case !sameSet(now.ISR, isr) || got.PartitionEpoch != now.PartitionEpoch || got.LeaderID != now.Leader || !slices.Equal(got.ISR, now.ISR):
				t.Fatalf("%s: response %+v, partition now %+v", what, got, *now)
			}
		}
		if lost { // what the model expected did not happen: take the image's word
			for id, m := range model {
				m.fenced = h.im.Brokers[id].Fenced
				m.shuttingDown = h.c.shuttingDown(id)
				if m.shuttingDown && (h.im.PartitionsLedBy(id) > 0 || inSharedISR(h.im, id)) {
					pending[id] = true
				}
				if s := h.c.sessions[id]; s != nil {
					m.lastContactMs = s.lastContactMs
				}
			}
		}
		for id, m := range model {
			if b := h.im.Brokers[id]; b.Fenced != m.fenced {
				t.Fatalf("step %d: broker %d fenced=%t, model says %t\n%s", step, id, b.Fenced, m.fenced, h.state())
			}
		}
	}
	var counts []string
	for _, k := range slices.Sorted(maps.Keys(seen)) {
		counts = append(counts, fmt.Sprintf("%s: %d", k, seen[k]))
	}
	t.Logf("exercised:\n%s\nfinal image at offset %d:\n%s", strings.Join(counts, "\n"), h.im.Offset, h.state())
}

func harnessStateOf(h *controllerHarness, im *Image) string {
	saved := h.im
	h.im = im
	defer func() { h.im = saved }()
	return h.state()
}

// checkImageInvariants checks h's image, just made from old. Brokers in
// pending are shutting down but have not had their moves made yet.
func checkImageInvariants(t *testing.T, what string, h *controllerHarness, old *Image, pending map[int32]bool) {
	t.Helper()
	im := h.im
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s: "+format+"\nimage:\n%s", append(append([]any{what}, args...), h.state())...)
	}
	for _, ti := range im.TopicsByName() {
		for i, p := range ti.Partitions {
			name := fmt.Sprintf("%s-%d", ti.Name, i)
			if len(p.ISR) == 0 {
				fail("%s has an empty ISR", name)
			}
			for j, id := range p.ISR {
				if !slices.Contains(p.Replicas, id) || slices.Contains(p.ISR[:j], id) {
					fail("%s: ISR %v is not a set of replicas %v", name, p.ISR, p.Replicas)
				}
				b := im.Brokers[id]
				if (b == nil || b.Fenced || h.c.shuttingDown(id) && !pending[id]) && (len(p.ISR) > 1 || p.Leader != NoLeader) {
					fail("%s: ISR %v holds broker %d, which may not lead, beside others or with a leader", name, p.ISR, id)
				}
			}
			if p.Leader != NoLeader {
				b := im.Brokers[p.Leader]
				if !slices.Contains(p.ISR, p.Leader) || b == nil || b.Fenced {
					fail("%s is led by %d, not an unfenced ISR member", name, p.Leader)
				}
			}
			ot := old.Topics[ti.ID]
			if ot == nil || i >= len(ot.Partitions) {
				continue
			}
			op := ot.Partitions[i]
			switch {
			case p.LeaderEpoch < op.LeaderEpoch || p.PartitionEpoch < op.PartitionEpoch:
				fail("%s: epochs went back from %d/%d to %d/%d", name, op.LeaderEpoch, op.PartitionEpoch, p.LeaderEpoch, p.PartitionEpoch)
			case p.Leader != op.Leader && p.LeaderEpoch != op.LeaderEpoch+1:
				fail("%s: leader %d -> %d with leader epoch %d -> %d", name, op.Leader, p.Leader, op.LeaderEpoch, p.LeaderEpoch)
			case (p.Leader != op.Leader || !slices.Equal(p.ISR, op.ISR)) && p.PartitionEpoch != op.PartitionEpoch+1:
				fail("%s: changed with partition epoch %d -> %d", name, op.PartitionEpoch, p.PartitionEpoch)
			}
		}
	}
}
