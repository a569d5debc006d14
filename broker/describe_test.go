package broker_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

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
