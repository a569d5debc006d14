package broker_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/internal/testcluster"
)

// TestDescribeProducers: the leader lists each idempotent producer it
// remembers for a partition, with its epoch and last sequence, as Kafka's
// DescribeProducers does; an unknown partition gets
// UNKNOWN_TOPIC_OR_PARTITION.
func TestDescribeProducers(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "idem", 1, nil)
	r := dialRaw(t, c.Addrs()[0])
	for _, b := range [][]byte{idempotentBatch(t, 12, 3, 0, 1), idempotentBatch(t, 11, 0, 0, 2), idempotentBatch(t, 11, 0, 2, 3), recordBatch(t, 1, 10)} {
		if p := produceRaw(r, 9, -1, "idem", 0, b); p.ErrorCode != 0 {
			t.Fatalf("produce: %v", kerr.ErrorForCode(p.ErrorCode))
		}
	}
	req := kmsg.NewPtrDescribeProducersRequest()
	rt := kmsg.NewDescribeProducersRequestTopic()
	rt.Topic, rt.Partitions = "idem", []int32{0, 5}
	req.Topics = append(req.Topics, rt)
	resp := r.do(req).(*kmsg.DescribeProducersResponse)
	parts := resp.Topics[0].Partitions
	if len(parts) != 2 || parts[0].ErrorCode != 0 || parts[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("partitions %+v: want 0 described and 5 UNKNOWN_TOPIC_OR_PARTITION", parts)
	}
	type producer struct {
		id          int64
		epoch, last int32
	}
	var got []producer
	for _, ap := range parts[0].ActiveProducers {
		got = append(got, producer{ap.ProducerID, ap.ProducerEpoch, ap.LastSequence})
		if ap.LastTimestamp <= 0 || ap.CoordinatorEpoch != -1 || ap.CurrentTxnStartOffset != -1 {
			t.Errorf("producer %d: last timestamp %d, coordinator epoch %d, txn start %d", ap.ProducerID, ap.LastTimestamp, ap.CoordinatorEpoch, ap.CurrentTxnStartOffset)
		}
	}
	if want := []producer{{11, 0, 4}, {12, 3, 0}}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("producers %v, want %v", got, want)
	}
}
