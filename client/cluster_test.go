package client

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// TestNewTopicRefreshesAtOnce: a topic a client is asked about after its
// first metadata refresh is looked up at once, not retry.backoff.ms after
// that refresh, as Kafka's client does: otherwise every producer's first
// record for a topic waits out the backoff. The backoff here is an hour
// and the wait is bounded at 30 s.
func TestNewTopicRefreshesAtOnce(t *testing.T) {
	fake := newFake(t)
	if err := fake.CreateTopic("orders", 2, nil); err != nil {
		t.Fatal(err)
	}
	cl := newCluster(clusterConfig{
		seeds:        fake.ListenAddrs(),
		conn:         connConfig{clientID: "gregor-test", requestTimeout: 10 * time.Second, maxResponseBytes: 100 << 20, log: testLogger()},
		retryBackoff: time.Hour,
		maxAge:       time.Hour,
	}, testLogger())
	defer cl.close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		ch := cl.changedCh()
		if cl.snapshot() != nil {
			break
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatal("no first metadata refresh in 30 s")
		}
	}
	if _, err := cl.waitTopic(ctx, "orders", 1); err != nil {
		t.Fatalf("a topic asked for after the first refresh: %v", err)
	}
}

// TestBackoffEndsForANewTopic (inside a synctest bubble, whose clock moves
// only when every goroutine waits): the wait between two refreshes ends
// when a topic is added, not when a refresh is merely requested, nor when
// a known topic is added again.
func TestBackoffEndsForANewTopic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &cluster{trigger: make(chan struct{}, 1)}
		c.ctx, c.cancel = context.WithCancel(context.Background())
		defer c.cancel()
		c.mu.topics = map[string]time.Time{"orders": time.Now()}
		start := time.Now()
		done := make(chan bool, 1)
		go func() {
			tm := time.NewTimer(time.Hour)
			defer tm.Stop()
			done <- c.waitBackoff(tm, start.Add(time.Hour))
		}()
		waiting := func() bool {
			synctest.Wait()
			select {
			case <-done:
				return false
			default:
				return true
			}
		}
		c.requestRefresh()
		c.addTopics("orders")
		if !waiting() {
			t.Fatal("the backoff ended without a new topic")
		}
		c.addTopics("payments")
		if waiting() {
			t.Fatal("the backoff goes on after a topic was added")
		}
		if waited := time.Since(start); waited != 0 {
			t.Fatalf("the backoff ended after %v, want at once", waited)
		}
	})
}
