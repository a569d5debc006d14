package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"gregor/internal/testcluster"
)

func TestGroupSmokeFranz(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "gs", 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := newClient(t, c, kgo.DefaultProduceTopic("gs"))
	for i := range 30 {
		if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl := newClient(t, c, kgo.ConsumerGroup("g1"), kgo.ConsumeTopics("gs"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	got := 0
	for got < 30 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got += fs.NumRecords()
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(newClient(t, c))
	lag, err := adm.Lag(ctx, "g1")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", lag["g1"].Lag.Total())
	dg, err := adm.DescribeGroups(ctx, "g1")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", dg["g1"].State)
}
