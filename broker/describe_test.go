package broker_test

import (
	"fmt"
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
	str := func(c kmsg.DescribeConfigsResponseResourceConfig) string {
		s := fmt.Sprintf("%s=%s %v", c.Name, *c.Value, c.Source)
		for _, syn := range c.ConfigSynonyms {
			s += fmt.Sprintf(" [%s=%s %v]", syn.Name, *syn.Value, syn.Source)
		}
		return s
	}
	for _, tc := range []struct{ topic, name, want string }{
		{"src", "retention.ms", "retention.ms=3600000 STATIC_BROKER_CONFIG [log.retention.ms=3600000 STATIC_BROKER_CONFIG] [log.retention.ms=604800000 DEFAULT_CONFIG]"},
		{"own", "retention.ms", "retention.ms=60000 DYNAMIC_TOPIC_CONFIG [retention.ms=60000 DYNAMIC_TOPIC_CONFIG] [log.retention.ms=3600000 STATIC_BROKER_CONFIG] [log.retention.ms=604800000 DEFAULT_CONFIG]"},
		{"src", "segment.bytes", "segment.bytes=1073741824 DEFAULT_CONFIG [log.segment.bytes=1073741824 DEFAULT_CONFIG]"},
	} {
		cfgs := describeTopicConfigs(r, tc.topic, tc.name).Configs
		if len(cfgs) != 1 {
			t.Fatalf("%s %s: %d configs", tc.topic, tc.name, len(cfgs))
		}
		if got := str(cfgs[0]); got != tc.want {
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
