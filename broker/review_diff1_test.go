package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/internal/testcluster"
	"gregor/raft"
)

// TestPartitionOfATopicCreatedAgainStartsEmpty (review): a log on disk
// carries no topic id, and nothing removes the logs a broker finds at
// start-up that its caught-up image does not give it (6f03f6f waits for
// that image, but then only reconciles the partitions it names). Here
// reborn-1 lived on broker 2, which was down while reborn was deleted and
// created again with one partition elsewhere; its old log stays. When
// reborn grows a partition 1 on broker 2, that log, the deleted topic's
// records included, becomes the new partition: a consumer reads records of
// a topic deleted long ago. Kafka's broker treats a log whose topic id
// (partition.metadata) the image does not give it as stray and deletes it
// at start-up (LogManager.isStrayKraftReplica, BrokerMetadataPublisher
// .initializeManagers), so the new partition starts empty.
func TestPartitionOfATopicCreatedAgainStartsEmpty(t *testing.T) {
	c := testcluster.StartMixed(t, 1, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	createTopicOn(t, c, "reborn", []int32{1, 2})
	r := dialRaw(t, c.Addrs()[1])
	if p := produceRaw(r, 9, -1, "reborn", 1, recordBatch(t, 3, 10)); p.ErrorCode != 0 {
		t.Fatalf("producing: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	c.Stop(1)

	adm := kadm.NewClient(newClient(t, c))
	if _, err := adm.DeleteTopics(ctx, "reborn"); err != nil {
		t.Fatal(err)
	}
	c.WaitForImage(func(im *raft.Image) bool { _, ok := im.Topic("reborn"); return !ok })
	createTopicOn(t, c, "reborn", []int32{1})
	c.Restart(1)

	req := kmsg.NewPtrCreatePartitionsRequest()
	req.TimeoutMillis = 10000
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = "reborn", 2
	a := kmsg.NewCreatePartitionsRequestTopicAssignment()
	a.Replicas = []int32{2}
	rt.Assignment = append(rt.Assignment, a)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, newClient(t, c))
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		t.Fatalf("adding reborn-1 on broker 2: %v", err)
	}
	c.WaitForTopic("reborn")
	c.WaitForImage(func(im *raft.Image) bool {
		tp, _ := im.Topic("reborn")
		return len(tp.Partitions) == 2 && tp.Partitions[1].Leader == 2
	})
	until(t, "broker 2 to host reborn-1", func() bool { _, ok := c.Brokers[1].Partition("reborn", 1); return ok })
	p, _ := c.Brokers[1].Partition("reborn", 1)
	if end := p.Log().LogEndOffset(); end != 0 {
		t.Errorf("reborn-1, just created, has log end %d: it is the deleted topic's log, records and all", end)
	}
}
