package client

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// With batches waiting in several partitions and room for one batch per
// request (max.request.size), the requests take the partitions in turn,
// starting after the one the last request took, as Kafka's drainIndex does:
// none goes twice while another waits. The broker holds the first request
// until every record is buffered, so the order is the sender's alone.
func TestKfakeRequestsTakePartitionsInTurn(t *testing.T) {
	const parts = 6
	c := newFake(t, kfake.NumBrokers(1), kfake.SeedTopics(parts, "turns"))
	var (
		mu      sync.Mutex
		order   [][]int32
		first   = make(chan struct{})
		release = make(chan struct{})
	)
	c.ControlKey(kmsg.Produce.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		var in []int32
		for _, tp := range req.(*kmsg.ProduceRequest).Topics {
			for _, p := range tp.Partitions {
				in = append(in, p.Partition)
			}
		}
		mu.Lock()
		order = append(order, in)
		n := len(order)
		mu.Unlock()
		if n == 1 {
			close(first)
			c.SleepControl(func() { <-release })
		}
		return nil, nil, false
	})
	cfg := testProducerConfig(c.ListenAddrs())
	cfg.BatchSize = 300      // a record of 200 bytes closes the batch before it
	cfg.MaxRequestSize = 400 // one such batch per request
	cfg.LingerMs = 60000
	cfg.DeliveryTimeoutMs = 120000
	cfg.MaxInFlightRequestsPerConnection = 1
	p := newTestProducer(t, cfg)
	ctx := context.Background()
	res := newResults()
	seq := 0
	produce := func(partition int32) {
		t.Helper()
		v := make([]byte, 200)
		copy(v, fmt.Sprintf("%d/%d", partition, seq))
		must(t, p.Produce(ctx, &Record{Topic: "turns", Partition: partition, Value: v}, res.callback(seq, string(v))))
		seq++
	}
	// Partition 0's first batch closes and goes; the broker holds it.
	produce(0)
	produce(0)
	select {
	case <-first:
	case <-time.After(10 * time.Second):
		t.Fatal("the first batch was not sent")
	}
	// Meanwhile three batches queue in every partition (partition 0 has
	// one open already).
	produce(0)
	produce(0)
	for part := int32(1); part < parts; part++ {
		for range 3 {
			produce(part)
		}
	}
	flushed := make(chan error, 1)
	go func() { flushed <- p.Flush(ctx) }()
	close(release)
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	checkCallbacksInOrder(t, res.wait(t, 10*time.Second), false)

	mu.Lock()
	defer mu.Unlock()
	var got []int32
	for i, in := range order {
		if len(in) != 1 {
			t.Fatalf("request %d carried partitions %v, want one batch per request", i, in)
		}
		got = append(got, in[0])
	}
	// After partition 0, the rotation starts at 1.
	var want []int32
	for range 3 {
		for part := int32(1); part <= parts; part++ {
			want = append(want, part%parts)
		}
	}
	want = append([]int32{0}, want...)
	if !slices.Equal(got, want) {
		t.Fatalf("requests took partitions %v, want %v", got, want)
	}
}
