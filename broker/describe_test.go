package broker_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/broker"
	"gregor/internal/testcluster"
)

// TestDescribeCluster: v0 and v1 list the live brokers; v1 asking for
// controllers or an unknown endpoint type gets Kafka's codes for each, v0
// INVALID_REQUEST.
func TestDescribeCluster(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	r := dialRaw(t, c.Addrs()[0])
	for _, tc := range []struct {
		version      int16
		endpointType int8
		want         *kerr.Error
	}{
		{0, 1, nil},
		{1, 1, nil},
		{1, 2, kerr.MismatchedEndpointType},
		{1, 7, kerr.UnsupportedEndpointType},
		{1, 0, kerr.UnsupportedEndpointType},
	} {
		req := kmsg.NewPtrDescribeClusterRequest()
		req.Version, req.EndpointType = tc.version, tc.endpointType
		resp := r.do(req).(*kmsg.DescribeClusterResponse)
		want := int16(0)
		if tc.want != nil {
			want = tc.want.Code
		}
		if resp.ErrorCode != want {
			t.Errorf("v%d endpoint type %d: %v, want %v", tc.version, tc.endpointType, kerr.ErrorForCode(resp.ErrorCode), tc.want)
			continue
		}
		if tc.want == nil && (len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != 1 || resp.ClusterID == "") {
			t.Errorf("v%d: brokers %+v cluster %q, want node 1", tc.version, resp.Brokers, resp.ClusterID)
		}
		if tc.want != nil && (resp.ErrorMessage == nil || *resp.ErrorMessage == "") {
			t.Errorf("v%d endpoint type %d: no error message", tc.version, tc.endpointType)
		}
	}
}

// TestDescribeConfigs: null and empty name lists both describe every
// config, a list describes what it names, an invalid topic name is
// INVALID_TOPIC_EXCEPTION and an absent topic UNKNOWN_TOPIC_OR_PARTITION.
func TestDescribeConfigs(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "described", 1, map[string]*string{"retention.ms": kmsg.StringPtr("60000")})
	r := dialRaw(t, c.Addrs()[0])
	describe := func(name string, names []string) kmsg.DescribeConfigsResponseResource {
		t.Helper()
		req := kmsg.NewPtrDescribeConfigsRequest()
		req.Version = 4
		res := kmsg.NewDescribeConfigsRequestResource()
		res.ResourceType, res.ResourceName, res.ConfigNames = kmsg.ConfigResourceTypeTopic, name, names
		req.Resources = append(req.Resources, res)
		return r.do(req).(*kmsg.DescribeConfigsResponse).Resources[0]
	}
	all := describe("described", nil)
	if all.ErrorCode != 0 || len(all.Configs) < 10 {
		t.Fatalf("every config: %v, %d configs", kerr.ErrorForCode(all.ErrorCode), len(all.Configs))
	}
	if empty := describe("described", []string{}); empty.ErrorCode != 0 || len(empty.Configs) != len(all.Configs) {
		t.Errorf("an empty name list: %v, %d configs, want all %d", kerr.ErrorForCode(empty.ErrorCode), len(empty.Configs), len(all.Configs))
	}
	one := describe("described", []string{"retention.ms"})
	if one.ErrorCode != 0 || len(one.Configs) != 1 || one.Configs[0].Value == nil || *one.Configs[0].Value != "60000" ||
		one.Configs[0].Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("retention.ms: %v %+v", kerr.ErrorForCode(one.ErrorCode), one.Configs)
	}
	for name, want := range map[string]*kerr.Error{"bad/name": kerr.InvalidTopicException, "absent": kerr.UnknownTopicOrPartition} {
		if got := describe(name, nil); got.ErrorCode != want.Code || got.ErrorMessage == nil {
			t.Errorf("topic %q: %v, want %v with a message", name, kerr.ErrorForCode(got.ErrorCode), want)
		}
	}
}

// TestDescribeConfigsStaticBrokerSource: a topic config the topic does not
// set, whose broker synonym the broker was configured with
// (log.retention.ms here), is STATIC_BROKER_CONFIG, not a default, with
// Kafka's synonyms: the topic's value if any, the broker's setting, then
// Kafka's default. CreateTopics answers the same source.
func TestDescribeConfigsStaticBrokerSource(t *testing.T) {
	c := testcluster.Start(t, 1, func(_ int, cfg *broker.Config) { cfg.Storage.Log.RetentionMs = 3600000 })
	r := dialRaw(t, c.Addrs()[0])
	created := createTopicV7(r, "src", 1, 1, false)
	createTopic(t, c, "own", 1, map[string]*string{"retention.ms": kmsg.StringPtr("60000")})
	c.WaitForTopic("src")
	for _, cfg := range created.Configs {
		if cfg.Name == "retention.ms" && (cfg.Value == nil || *cfg.Value != "3600000" || cfg.Source != int8(kmsg.ConfigSourceStaticBrokerConfig)) {
			t.Errorf("CreateTopics: retention.ms from source %d, want 3600000 from STATIC_BROKER_CONFIG", cfg.Source)
		}
	}
	for _, tc := range []struct{ topic, name, want string }{
		{"src", "retention.ms", "retention.ms=3600000 STATIC_BROKER_CONFIG [log.retention.ms=3600000 STATIC_BROKER_CONFIG] [log.retention.hours=168 DEFAULT_CONFIG]"},
		{"own", "retention.ms", "retention.ms=60000 DYNAMIC_TOPIC_CONFIG [retention.ms=60000 DYNAMIC_TOPIC_CONFIG] [log.retention.ms=3600000 STATIC_BROKER_CONFIG] [log.retention.hours=168 DEFAULT_CONFIG]"},
		{"src", "segment.bytes", "segment.bytes=1073741824 DEFAULT_CONFIG [log.segment.bytes=1073741824 DEFAULT_CONFIG]"},
	} {
		cfgs := describeTopicConfigs(r, tc.topic, tc.name).Configs
		if len(cfgs) != 1 {
			t.Fatalf("%s %s: %d configs", tc.topic, tc.name, len(cfgs))
		}
		if got := describedString(cfgs[0]); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.topic, got, tc.want)
		}
	}
	// v0 has no source: is_default says it.
	req := kmsg.NewPtrDescribeConfigsRequest()
	res := kmsg.NewDescribeConfigsRequestResource()
	res.ResourceType, res.ResourceName, res.ConfigNames = kmsg.ConfigResourceTypeTopic, "src", []string{"retention.ms"}
	req.Resources = append(req.Resources, res)
	if got := r.do(req).(*kmsg.DescribeConfigsResponse).Resources[0].Configs; len(got) != 1 || got[0].IsDefault {
		t.Errorf("v0 retention.ms set by the broker: %+v, want is_default false", got)
	}
}

// describedString is a config as DescribeConfigs described it, with its
// source and synonyms.
func describedString(c kmsg.DescribeConfigsResponseResourceConfig) string {
	s := fmt.Sprintf("%s=%s %v", c.Name, *c.Value, c.Source)
	for _, syn := range c.ConfigSynonyms {
		s += fmt.Sprintf(" [%s=%s %v]", syn.Name, *syn.Value, syn.Source)
	}
	return s
}

// TestDescribeConfigsReportsTheKeysTheBrokerWasGiven: a key the broker's
// properties gave is STATIC_BROKER_CONFIG even at Kafka's default value,
// as Kafka reports every key of its server.properties, and the synonyms are
// Kafka's ConfigHelper.configSynonyms: the static settings of the key's
// group, then the group's Kafka defaults, less every one before the first
// named after the config's own broker key. So retention.ms, whose first
// broker key log.retention.ms has no default, is DEFAULT_CONFIG with no
// synonyms when only log.retention.hours is given, as Kafka describes it
// with its own server.properties; given log.retention.ms too, it lists
// both, then log.retention.hours' default.
func TestDescribeConfigsReportsTheKeysTheBrokerWasGiven(t *testing.T) {
	for _, tc := range []struct {
		static map[string]string
		want   []string // retention.ms, segment.bytes, segment.ms
	}{
		{map[string]string{"log.retention.hours": "168", "log.segment.bytes": "1073741824", "num.partitions": "1"}, []string{
			"retention.ms=604800000 DEFAULT_CONFIG",
			"segment.bytes=1073741824 STATIC_BROKER_CONFIG [log.segment.bytes=1073741824 STATIC_BROKER_CONFIG] [log.segment.bytes=1073741824 DEFAULT_CONFIG]",
			"segment.ms=604800000 DEFAULT_CONFIG",
		}},
		{map[string]string{"log.retention.ms": "3600000", "log.retention.hours": "48", "log.roll.ms": "60000"}, []string{
			"retention.ms=604800000 STATIC_BROKER_CONFIG [log.retention.ms=3600000 STATIC_BROKER_CONFIG] [log.retention.hours=48 STATIC_BROKER_CONFIG] [log.retention.hours=168 DEFAULT_CONFIG]",
			"segment.bytes=1073741824 DEFAULT_CONFIG [log.segment.bytes=1073741824 DEFAULT_CONFIG]",
			"segment.ms=604800000 STATIC_BROKER_CONFIG [log.roll.ms=60000 STATIC_BROKER_CONFIG] [log.roll.hours=168 DEFAULT_CONFIG]",
		}},
	} {
		// The values are the Config's, which this test leaves at the
		// defaults: only the sources and synonyms follow the keys.
		c := testcluster.Start(t, 1, func(_ int, cfg *broker.Config) { cfg.StaticConfigs = tc.static })
		r := dialRaw(t, c.Addrs()[0])
		createTopic(t, c, "given", 1, nil)
		c.WaitForTopic("given")
		for i, name := range []string{"retention.ms", "segment.bytes", "segment.ms"} {
			cfgs := describeTopicConfigs(r, "given", name).Configs
			if len(cfgs) != 1 {
				t.Fatalf("%s: %d configs", name, len(cfgs))
			}
			if got := describedString(cfgs[0]); got != tc.want[i] {
				t.Errorf("given %v, %s:\n got %s\nwant %s", tc.static, name, got, tc.want[i])
			}
		}
	}

	c := testcluster.Start(t, 1, func(_ int, cfg *broker.Config) {
		cfg.StaticConfigs = map[string]string{"num.partitions": "1", "log.retention.hours": "168"}
	})
	r := dialRaw(t, c.Addrs()[0])
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.Version, req.IncludeSynonyms = 4, true
	res := kmsg.NewDescribeConfigsRequestResource()
	res.ResourceType, res.ResourceName, res.ConfigNames = kmsg.ConfigResourceTypeBroker, "1", []string{"num.partitions", "auto.create.topics.enable", "log.retention.ms"}
	req.Resources = append(req.Resources, res)
	var got []string
	for _, cfg := range r.do(req).(*kmsg.DescribeConfigsResponse).Resources[0].Configs {
		got = append(got, describedString(cfg))
	}
	want := []string{
		"auto.create.topics.enable=true DEFAULT_CONFIG [auto.create.topics.enable=true DEFAULT_CONFIG]",
		"log.retention.ms=604800000 DEFAULT_CONFIG",
		"num.partitions=1 STATIC_BROKER_CONFIG [num.partitions=1 STATIC_BROKER_CONFIG] [num.partitions=1 DEFAULT_CONFIG]",
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("broker configs:\n got %q\nwant %q", got, want)
	}
}
