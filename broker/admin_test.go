package broker_test

import (
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/broker"
	"gregor/internal/testcluster"
	"gregor/raft"
)

// TestCreateTopicsAnswersOnceTheNewTopicIsServed: a topic deleted through
// one broker and created again under its name through another. The second
// broker answered CreateTopics as soon as its image held a topic of that
// name, and while it had yet to follow the deletion that was the old
// topic: clients it then answered Metadata were sent to the old topic's
// partitions, whose logs go once the deletion arrives, acknowledged
// records and all. A broker now answers an admin request once its image
// has reached the metadata offset the controller answered at.
func TestCreateTopicsAnswersOnceTheNewTopicIsServed(t *testing.T) {
	c := testcluster.Start(t, 3, nil)
	a, b := dialRaw(t, c.Addrs()[0]), dialRaw(t, c.Addrs()[1])
	const topic = "again"
	if got := createTopicV7(a, topic, 1, 1, false); got.ErrorCode != 0 {
		t.Fatalf("creating %s: %v", topic, kerr.ErrorForCode(got.ErrorCode))
	}
	c.WaitForTopic(topic)
	old, _ := c.Brokers[1].Image().Topic(topic)

	// The second broker stops following the metadata log before the
	// deletion: its image keeps the old topic until released.
	release := broker.HoldMetadata(c.Brokers[1])
	defer release()
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.Version, del.TimeoutMillis, del.TopicNames = 5, 10000, []string{topic}
	if got := a.do(del).(*kmsg.DeleteTopicsResponse).Topics[0]; got.ErrorCode != 0 {
		t.Fatalf("deleting %s: %v", topic, kerr.ErrorForCode(got.ErrorCode))
	}

	waiting := make(chan struct{})
	var once sync.Once
	broker.WatchImageWaits(c.Brokers[1], func() { once.Do(func() { close(waiting) }) })
	defer broker.WatchImageWaits(c.Brokers[1], nil)
	create := kmsg.NewPtrCreateTopicsRequest()
	create.Version, create.TimeoutMillis = 7, 10000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 2, 1
	create.Topics = append(create.Topics, rt)
	b.write(b.frameOf(create))
	type read struct {
		body []byte
		err  error
	}
	answered := make(chan read, 1)
	go func() {
		body, err := b.read()
		answered <- read{body, err}
	}()
	var ans read
	select {
	case ans = <-answered:
		t.Fatalf("CreateTopics answered while the broker's image still held the deleted topic %s", raft.UUID(old.ID))
	case <-waiting:
		release()
		ans = <-answered
	}
	got := b.decode(create, b.corr, ans.body, ans.err).(*kmsg.CreateTopicsResponse).Topics[0]
	if got.ErrorCode != 0 {
		t.Fatalf("creating %s again: %v", topic, kerr.ErrorForCode(got.ErrorCode))
	}
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	md.Topics = append(md.Topics, mt)
	served := b.do(md).(*kmsg.MetadataResponse).Topics[0]
	if served.TopicID != got.TopicID || len(served.Partitions) != 2 {
		t.Errorf("after CreateTopics answered, Metadata from the same broker serves topic %x with %d partitions, want the new %x with 2",
			served.TopicID, len(served.Partitions), got.TopicID)
	}
}
