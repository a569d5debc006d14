package broker_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/batch"
	"gregor/broker"
	"gregor/internal/testcluster"
	"gregor/raft"
	"gregor/segment"
)

// TestConfigsGregorLacksAtTheirDefaults: the topic configs of features
// Gregor does not have are taken at the values that turn the feature off,
// which are Kafka's defaults and mean exactly what Gregor does, and refused
// otherwise with INVALID_CONFIG and a reason; so a topic copied from a Kafka
// cluster or created by a tool that sets every config still works.
//   - Tiered storage (KIP-405), as a Kafka broker without it, its default,
//     takes it: remote.storage.enable=false, the local retentions and the
//     remote.log switches are stored and described; remote.storage.enable
//     =true is refused with Kafka's own message.
//   - preallocate=false and empty replication throttle lists.
func TestConfigsGregorLacksAtTheirDefaults(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	set := map[string]string{
		"remote.storage.enable":                   "false",
		"local.retention.ms":                      "3600000",
		"local.retention.bytes":                   "-2",
		"remote.log.copy.disable":                 "true",
		"remote.log.delete.on.disable":            "false",
		"preallocate":                             "false",
		"leader.replication.throttled.replicas":   "",
		"follower.replication.throttled.replicas": "",
	}
	configs := map[string]*string{}
	for k, v := range set {
		configs[k] = kmsg.StringPtr(v)
	}
	createTopic(t, c, "tiered-off", 1, configs)
	createTopic(t, c, "plain", 1, nil)

	adm := kadm.NewClient(newClient(t, c))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rcs, err := adm.DescribeTopicConfigs(ctx, "tiered-off", "plain")
	if err != nil {
		t.Fatal(err)
	}
	defaults := map[string]string{"remote.storage.enable": "false", "local.retention.ms": "-2", "local.retention.bytes": "-2",
		"remote.log.copy.disable": "false", "remote.log.delete.on.disable": "false",
		"preallocate": "false", "leader.replication.throttled.replicas": "", "follower.replication.throttled.replicas": ""}
	for topic, want := range map[string]map[string]string{"tiered-off": set, "plain": defaults} {
		rc, err := rcs.On(topic, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]kadm.Config{}
		for _, cfg := range rc.Configs {
			got[cfg.Key] = cfg
		}
		for name, value := range want {
			cfg, ok := got[name]
			switch {
			case !ok:
				t.Errorf("%s: DescribeConfigs lists no %s", topic, name)
			case cfg.Value == nil || *cfg.Value != value:
				t.Errorf("%s: %s = %v, want %s", topic, name, cfg.MaybeValue(), value)
			case topic == "plain" && cfg.Source != kmsg.ConfigSourceDefaultConfig:
				t.Errorf("%s: %s from %v, want the default", topic, name, cfg.Source)
			}
		}
	}

	const kafkaMsg = "Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage."
	for name, value := range map[string]string{"remote.storage.enable": "true", "local.retention.ms": "-3", "local.retention.bytes": "x",
		"remote.log.copy.disable": "yes", "preallocate": "true", "leader.replication.throttled.replicas": "0:1",
		"follower.replication.throttled.replicas": "*"} {
		resp, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{name: kmsg.StringPtr(value)}, "refused")
		if err == nil {
			err = resp.Err
		}
		if !errors.Is(err, kerr.InvalidConfig) || resp.ErrMessage == "" {
			t.Errorf("create with %s=%s: %v (%q), want INVALID_CONFIG with a reason", name, value, err, resp.ErrMessage)
		}
		if name == "remote.storage.enable" && resp.ErrMessage != kafkaMsg {
			t.Errorf("create with %s=%s: message %q, want Kafka's %q", name, value, resp.ErrMessage, kafkaMsg)
		}
		err = alterTopic(ctx, adm, "plain", kadm.AlterConfig{Op: kadm.SetConfig, Name: name, Value: kmsg.StringPtr(value)})
		if !errors.Is(err, kerr.InvalidConfig) {
			t.Errorf("alter to %s=%s: %v, want INVALID_CONFIG", name, value, err)
		}
	}
}

// kafkaTopicConfigs are Kafka 4.0's topic configs (TopicConfig), sorted.
var kafkaTopicConfigs = []string{
	"cleanup.policy", "compression.gzip.level", "compression.lz4.level", "compression.type", "compression.zstd.level",
	"delete.retention.ms", "file.delete.delay.ms", "flush.messages", "flush.ms", "follower.replication.throttled.replicas",
	"index.interval.bytes", "leader.replication.throttled.replicas", "local.retention.bytes", "local.retention.ms",
	"max.compaction.lag.ms", "max.message.bytes", "message.timestamp.after.max.ms", "message.timestamp.before.max.ms",
	"message.timestamp.type", "min.cleanable.dirty.ratio", "min.compaction.lag.ms", "min.insync.replicas", "preallocate",
	"remote.log.copy.disable", "remote.log.delete.on.disable", "remote.storage.enable", "retention.bytes", "retention.ms",
	"segment.bytes", "segment.index.bytes", "segment.jitter.ms", "segment.ms", "unclean.leader.election.enable",
}

// TestEveryKafkaTopicConfigIsDescribed: DescribeConfigs lists exactly
// Kafka's topic configs, in order, each with a value.
func TestEveryKafkaTopicConfigIsDescribed(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "all", 1, nil)
	adm := kadm.NewClient(newClient(t, c))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rcs, err := adm.DescribeTopicConfigs(ctx, "all")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("all", nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, cfg := range rc.Configs {
		names = append(names, cfg.Key)
		if cfg.Value == nil {
			t.Errorf("%s has no value", cfg.Key)
		}
	}
	if !slices.Equal(names, kafkaTopicConfigs) {
		t.Errorf("described configs\n%q\nwant Kafka's\n%q", names, kafkaTopicConfigs)
	}
}

// TestTopicConfigZeroIsKafkasZero: a topic's retention.ms=0,
// retention.bytes=0 and flush.ms=0 mean what they mean in Kafka (delete
// every closed segment at once; fsync at every check), not the "unset" that
// zero is in segment.Config (7 days, no limit, never), nor the broker's
// defaults. The log a topic gets from them deletes and fsyncs accordingly.
func TestTopicConfigZeroIsKafkasZero(t *testing.T) {
	bc := broker.DefaultConfig()
	bc.Storage.Log.RetentionMs = 3_600_000
	bc.Storage.Log.RetentionBytes = 1 << 30
	bc.Storage.Log.FlushMs = 3_600_000
	var nowMs atomic.Int64
	nowMs.Store(1_700_000_000_000)
	open := func(t *testing.T, overrides map[string]string) *segment.Log {
		t.Helper()
		cfg := broker.LogConfig(bc, overrides)
		l, err := segment.Open(t.TempDir(), cfg, segment.OpenOptions{Now: func() time.Time { return time.UnixMilli(nowMs.Load()) }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	appendOne := func(t *testing.T, l *segment.Log, ts int64) {
		t.Helper()
		b := batch.NewBuilder(batch.DefaultBuilderOptions())
		b.Add(ts, []byte("k"), []byte(strings.Repeat("v", 100)), nil)
		out, err := b.AppendBatch(nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(out, 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, key := range []string{"retention.ms", "retention.bytes"} {
		t.Run(key, func(t *testing.T) {
			// A segment a batch, each batch 10 ms old.
			l := open(t, map[string]string{key: "0", "segment.bytes": "200"})
			for range 5 {
				appendOne(t, l, nowMs.Load()-10)
			}
			if n := len(l.Segments()); n != 5 {
				t.Fatalf("%d segments, want 5", n)
			}
			if n, err := l.EnforceRetention(); err != nil || n != 4 || len(l.Segments()) != 1 {
				t.Fatalf("%s=0 deleted %d segments (%v), leaving %d; want every one but the active one", key, n, err, len(l.Segments()))
			}
		})
	}
	t.Run("flush.ms", func(t *testing.T) {
		l := open(t, map[string]string{"flush.ms": "0"})
		nowMs.Add(1) // the next check after the log opened
		appendOne(t, l, nowMs.Load())
		if rp, end := l.RecoveryPoint(), l.LogEndOffset(); rp != end {
			t.Fatalf("flush.ms=0: recovery point %d after an append, log end %d: not fsynced", rp, end)
		}
	})
}

// TestAppendToAnUnsetListStartsFromItsDefault: APPEND and SUBTRACT on a
// list config a topic does not set start from Kafka's default for it, as
// Kafka's controller does: appending compact to an unset cleanup.policy
// keeps delete (a topic that silently lost its retention otherwise), and
// subtracting compact leaves delete.
func TestAppendToAnUnsetListStartsFromItsDefault(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "appended", 1, nil)
	createTopic(t, c, "subtracted", 1, nil)
	adm := kadm.NewClient(newClient(t, c))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, tc := range []struct {
		topic string
		op    kadm.IncrementalOp
		want  string
	}{
		{"appended", kadm.AppendConfig, "delete,compact"},
		{"subtracted", kadm.SubtractConfig, "delete"},
	} {
		if err := alterTopic(ctx, adm, tc.topic, kadm.AlterConfig{Op: tc.op, Name: "cleanup.policy", Value: kmsg.StringPtr("compact")}); err != nil {
			t.Fatalf("%v compact on %s's unset cleanup.policy: %v", tc.op, tc.topic, err)
		}
		var got string
		c.WaitForImage(func(im *raft.Image) bool {
			tp, _ := im.Topic(tc.topic)
			got = tp.Configs["cleanup.policy"]
			return got == tc.want
		})
		if got != tc.want {
			t.Errorf("%s: cleanup.policy %q, want %q", tc.topic, got, tc.want)
		}
	}
}

// createTopicV7 sends one CreateTopics v7 for name with configs (name,
// value pairs) and returns its answer.
func createTopicV7(r *rawConn, name string, partitions int32, rf int16, validateOnly bool, configs ...[2]string) kmsg.CreateTopicsResponseTopic {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version, req.TimeoutMillis, req.ValidateOnly = 7, 10000, validateOnly
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, rf
	for _, kv := range configs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = kv[0], kmsg.StringPtr(kv[1])
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	return r.do(req).(*kmsg.CreateTopicsResponse).Topics[0]
}

// describeTopicConfigs sends DescribeConfigs v4 with synonyms for the
// named configs of topic (every config when none is named).
func describeTopicConfigs(r *rawConn, topic string, names ...string) kmsg.DescribeConfigsResponseResource {
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.Version, req.IncludeSynonyms = 4, true
	res := kmsg.NewDescribeConfigsRequestResource()
	res.ResourceType, res.ResourceName, res.ConfigNames = kmsg.ConfigResourceTypeTopic, topic, names
	req.Resources = append(req.Resources, res)
	return r.do(req).(*kmsg.DescribeConfigsResponse).Resources[0]
}

// TestCreateTopicsAnswersConfigs: CreateTopics v5+ answers a topic it
// creates, or would create with validate_only, with every config it takes,
// sorted by name, as Kafka's controller does: the topic's own values
// (DYNAMIC_TOPIC_CONFIG) and the defaults for the rest, as DescribeConfigs
// then describes them.
func TestCreateTopicsAnswersConfigs(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	r := dialRaw(t, c.Addrs()[0])
	for _, validateOnly := range []bool{true, false} {
		got := createTopicV7(r, "answered", 1, 1, validateOnly, [2]string{"retention.ms", "12345"})
		if got.ErrorCode != 0 {
			t.Fatalf("validate_only=%t: %s", validateOnly, code(got.ErrorCode))
		}
		var names []string
		for _, cfg := range got.Configs {
			names = append(names, cfg.Name)
		}
		if !slices.Equal(names, kafkaTopicConfigs) {
			t.Fatalf("validate_only=%t: configs %v, want every topic config, sorted: %v", validateOnly, names, kafkaTopicConfigs)
		}
	}
	c.WaitForTopic("answered")
	created := createTopicV7(r, "answered", 1, 1, false)
	if created.ErrorCode != kerr.TopicAlreadyExists.Code || len(created.Configs) != 0 {
		t.Fatalf("creating it again: %s with %d configs, want TOPIC_ALREADY_EXISTS and none", code(created.ErrorCode), len(created.Configs))
	}
	again := createTopicV7(r, "answered-too", 1, 1, false, [2]string{"retention.ms", "12345"})
	described := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
	for _, cfg := range describeTopicConfigs(r, "answered").Configs {
		described[cfg.Name] = cfg
	}
	for _, cfg := range again.Configs {
		d := described[cfg.Name]
		if cfg.Value == nil || d.Value == nil || *cfg.Value != *d.Value || cfg.Source != int8(d.Source) || cfg.ReadOnly || cfg.IsSensitive {
			t.Errorf("%s: created with %v from %d (read only %t, sensitive %t); DescribeConfigs: %v from %v",
				cfg.Name, cfg.Value, cfg.Source, cfg.ReadOnly, cfg.IsSensitive, d.Value, d.Source)
		}
		if cfg.Name == "retention.ms" && (*cfg.Value != "12345" || cfg.Source != int8(kmsg.ConfigSourceDynamicTopicConfig)) {
			t.Errorf("retention.ms: %s from %d, want the topic's 12345", *cfg.Value, cfg.Source)
		}
	}
}

// alterTopicConfig sends one IncrementalAlterConfigs of version for a
// config of topic and returns its answer.
func alterTopicConfig(r *rawConn, version int16, topic string, validateOnly bool, op kmsg.IncrementalAlterConfigOp, name, value string) kmsg.IncrementalAlterConfigsResponseResource {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.Version, req.ValidateOnly = version, validateOnly
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, topic
	c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	c.Name, c.Op, c.Value = name, op, kmsg.StringPtr(value)
	res.Configs = append(res.Configs, c)
	req.Resources = append(req.Resources, res)
	return r.do(req).(*kmsg.IncrementalAlterConfigsResponse).Resources[0]
}

// TestAlterConfigsReadYourWritesEveryOp: a broker answers
// IncrementalAlterConfigs once its own image holds the change, whatever the
// op, so the next DescribeConfigs on it sees it: on a broker-only node,
// which applies the controller's entries a moment after the controller
// answers, at both versions (v0's response has no tagged fields).
func TestAlterConfigsReadYourWritesEveryOp(t *testing.T) {
	c := testcluster.StartMixed(t, 1, 1, nil)
	createTopic(t, c, "ryw", 1, nil)
	r := dialRaw(t, c.Addrs()[1]) // the broker-only node
	for i := range 20 {
		op, want := kmsg.IncrementalAlterConfigOpAppend, "delete,compact"
		if i%2 == 1 {
			op, want = kmsg.IncrementalAlterConfigOpSubtract, "delete"
		}
		version := int16(i / 2 % 2)
		if res := alterTopicConfig(r, version, "ryw", false, op, "cleanup.policy", "compact"); res.ErrorCode != 0 {
			t.Fatalf("v%d %v: %s", version, op, code(res.ErrorCode))
		}
		cfgs := describeTopicConfigs(r, "ryw", "cleanup.policy").Configs
		if len(cfgs) != 1 || cfgs[0].Value == nil || *cfgs[0].Value != want {
			got := "nothing"
			if len(cfgs) == 1 && cfgs[0].Value != nil {
				got = *cfgs[0].Value
			}
			t.Fatalf("v%d %v compact answered OK, then DescribeConfigs on the same broker: cleanup.policy=%s, want %s", version, op, got, want)
		}
	}
}

// TestTopicConfigValuesAsKafkaReadsThem: a topic config value is read as
// Kafka's ConfigDef reads it (trimmed, booleans in any case, list elements
// without the blanks around commas; retention.bytes without a lower bound,
// any negative value meaning no limit) and stored in Kafka's normal form,
// which DescribeConfigs and CreateTopics then answer.
func TestTopicConfigValuesAsKafkaReadsThem(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	r := dialRaw(t, c.Addrs()[0])
	created := createTopicV7(r, "normal", 1, 1, false, [2]string{"retention.ms", " 1000\t"}, [2]string{"preallocate", "FALSE"})
	if created.ErrorCode != 0 {
		t.Fatalf("CreateTopics: %s", code(created.ErrorCode))
	}
	for _, cfg := range created.Configs {
		if want := map[string]string{"retention.ms": "1000", "preallocate": "false"}[cfg.Name]; want != "" && *cfg.Value != want {
			t.Errorf("CreateTopics answered %s=%q, want %q", cfg.Name, *cfg.Value, want)
		}
	}
	c.WaitForTopic("normal")
	for _, tc := range []struct{ name, value, want string }{
		{"retention.bytes", "-2", "-2"},
		{"retention.bytes", "-9223372036854775808", "-9223372036854775808"},
		{"unclean.leader.election.enable", "TRUE", "true"},
		{"unclean.leader.election.enable", " False ", "false"},
		{"retention.ms", " 1000", "1000"},
		{"retention.ms", "+02000", "2000"},
		{"max.message.bytes", "0010", "10"},
		{"compression.type", " gzip\n", "gzip"},
		{"cleanup.policy", " compact ,\tdelete ", "compact,delete"},
		{"min.cleanable.dirty.ratio", "0.50", "0.5"},
		{"min.cleanable.dirty.ratio", "1", "1.0"},
		{"min.cleanable.dirty.ratio", "1e-4", "1.0E-4"},
		{"preallocate", "False", "false"},
	} {
		if res := alterTopicConfig(r, 1, "normal", false, kmsg.IncrementalAlterConfigOpSet, tc.name, tc.value); res.ErrorCode != 0 {
			t.Errorf("%s=%q: %s (%s); Kafka takes it", tc.name, tc.value, code(res.ErrorCode), *res.ErrorMessage)
			continue
		}
		cfgs := describeTopicConfigs(r, "normal", tc.name).Configs
		if len(cfgs) != 1 || *cfgs[0].Value != tc.want {
			t.Errorf("%s=%q described as %+v, want %q", tc.name, tc.value, cfgs, tc.want)
		}
		tp, _ := c.Brokers[0].Image().Topic("normal")
		if got := tp.Configs[tc.name]; got != tc.want {
			t.Errorf("%s=%q stored as %q, want %q", tc.name, tc.value, got, tc.want)
		}
	}
	for _, tc := range []struct{ name, value string }{
		{"unclean.leader.election.enable", "yes"},
		{"remote.storage.enable", "True"},
		{"retention.ms", "-2"},
		{"retention.ms", "1 000"},
		{"min.cleanable.dirty.ratio", "half"},
	} {
		if res := alterTopicConfig(r, 1, "normal", false, kmsg.IncrementalAlterConfigOpSet, tc.name, tc.value); res.ErrorCode != kerr.InvalidConfig.Code {
			t.Errorf("%s=%q: %s, want INVALID_CONFIG", tc.name, tc.value, code(res.ErrorCode))
		}
	}
	if got := broker.LogConfig(broker.DefaultConfig(), map[string]string{"retention.bytes": "-2"}).RetentionBytes; got != -1 {
		t.Errorf("retention.bytes=-2 gives a log a retention of %d bytes, want -1, none", got)
	}
}
