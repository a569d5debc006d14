package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/batch"
	"gregor/broker"
	"gregor/internal/testcluster"
)

// TestOffsetsTopicIsTheCoordinators checks that __consumer_offsets is made
// only the group coordinator's way: a client's CreateTopics for it is
// refused as Kafka refuses it, and a Metadata request that auto-creates it
// gets offsets.topic.num.partitions compacted partitions, flagged internal.
func TestOffsetsTopicIsTheCoordinators(t *testing.T) {
	c := testcluster.Start(t, 1, func(_ int, cfg *broker.Config) { cfg.OffsetsTopicNumPartitions = 4 })
	cl := newClient(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "__consumer_offsets", 1, 1
	create.Topics = append(create.Topics, ct)
	resp, err := create.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Topics[0]; got.ErrorCode != kerr.InvalidRequest.Code || got.ErrorMessage == nil {
		t.Fatalf("CreateTopics __consumer_offsets: %s %v, want INVALID_REQUEST with a message", kerr.ErrorForCode(got.ErrorCode), got.ErrorMessage)
	}

	md := kmsg.NewPtrMetadataRequest()
	md.AllowAutoTopicCreation = true
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("__consumer_offsets")
	md.Topics = append(md.Topics, mt)
	mresp, err := md.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if got := mresp.Topics[0]; got.ErrorCode != 0 || len(got.Partitions) != 4 || !got.IsInternal {
		t.Fatalf("Metadata auto-creating __consumer_offsets: %s, %d partitions, internal=%v; want 4 internal partitions",
			kerr.ErrorForCode(got.ErrorCode), len(got.Partitions), got.IsInternal)
	}

	// Only the coordinators append there.
	prod := kmsg.NewPtrProduceRequest()
	prod.Acks, prod.TimeoutMillis = 1, 5000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "__consumer_offsets"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = oneRecordBatch(t)
	pt.Partitions = append(pt.Partitions, pp)
	prod.Topics = append(prod.Topics, pt)
	presp, err := prod.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if got := presp.Topics[0].Partitions[0]; got.ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("Produce to __consumer_offsets: %s, want INVALID_TOPIC_EXCEPTION", kerr.ErrorForCode(got.ErrorCode))
	}

	dc := kmsg.NewPtrDescribeConfigsRequest()
	dr := kmsg.NewDescribeConfigsRequestResource()
	dr.ResourceType, dr.ResourceName, dr.ConfigNames = kmsg.ConfigResourceTypeTopic, "__consumer_offsets", []string{"cleanup.policy"}
	dc.Resources = append(dc.Resources, dr)
	dresp, err := dc.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if cfgs := dresp.Resources[0].Configs; len(cfgs) != 1 || cfgs[0].Value == nil || *cfgs[0].Value != "compact" {
		t.Fatalf("cleanup.policy of __consumer_offsets: %+v, want compact", cfgs)
	}
}

func oneRecordBatch(t *testing.T) []byte {
	t.Helper()
	b := batch.NewBuilder(batch.DefaultBuilderOptions())
	b.Add(time.Now().UnixMilli(), []byte("k"), []byte("v"), nil)
	out, err := b.AppendBatch(nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
