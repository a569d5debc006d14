package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// admin creates and deletes the benchmark's topics. It speaks the Kafka
// admin APIs through franz-go whatever client the load uses, since topic
// management is the same for every client and every Kafka-compatible
// cluster.
type admin struct {
	cl      *kgo.Client
	adm     *kadm.Client
	timeout time.Duration
}

func newAdmin(bootstrap []string, timeout time.Duration) (*admin, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap...), kgo.ClientID("gregor-bench-admin"),
		kgo.DialTimeout(min(timeout, 10*time.Second)), kgo.RetryTimeout(timeout))
	if err != nil {
		return nil, err
	}
	return &admin{cl: cl, adm: kadm.NewClient(cl), timeout: timeout}, nil
}

func (a *admin) close() { a.cl.Close() }

// brokers asks the cluster for its brokers: the first contact, so its
// failure says the cluster cannot be reached, within the timeout.
func (a *admin) brokers(ctx context.Context, bootstrap []string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	m, err := a.adm.BrokerMetadata(ctx)
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, context.Canceled) {
			err = fmt.Errorf("no answer within %v (%w)", a.timeout, err)
		}
		return 0, fmt.Errorf("cannot reach the cluster at %s: %w", strings.Join(bootstrap, ","), err)
	}
	return len(m.Brokers), nil
}

// createTopics creates the topics and waits until each partition has a
// leader, so the load does not start against metadata still on its way.
func (a *admin) createTopics(ctx context.Context, topics []string, partitions, rf, minISR int) error {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	configs := map[string]*string{"min.insync.replicas": kadm.StringPtr(strconv.Itoa(minISR))}
	resp, err := a.adm.CreateTopics(ctx, int32(partitions), int16(rf), configs, topics...)
	if err != nil {
		return fmt.Errorf("creating topics: %w", err)
	}
	var errs []error
	for _, t := range topics {
		r, ok := resp[t]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("creating topic %s: no answer for it", t))
		case r.Err != nil && r.ErrMessage != "":
			errs = append(errs, fmt.Errorf("creating topic %s (partitions %d, replicationFactor %d, minInsyncReplicas %d): %w: %s", t, partitions, rf, minISR, r.Err, r.ErrMessage))
		case r.Err != nil:
			errs = append(errs, fmt.Errorf("creating topic %s (partitions %d, replicationFactor %d, minInsyncReplicas %d): %w", t, partitions, rf, minISR, r.Err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	// Bounded by ctx: every 100 ms until every partition has a leader.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		m, err := a.adm.Metadata(ctx, topics...)
		if err == nil && allLed(m, topics, partitions) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topics %s: partitions without a leader after %v", strings.Join(topics, ","), a.timeout)
		case <-tick.C:
		}
	}
}

func allLed(m kadm.Metadata, topics []string, partitions int) bool {
	for _, t := range topics {
		d, ok := m.Topics[t]
		if !ok || d.Err != nil || len(d.Partitions) != partitions {
			return false
		}
		for _, p := range d.Partitions {
			if p.Leader < 0 || p.Err != nil {
				return false
			}
		}
	}
	return true
}

// deleteTopics removes the benchmark's topics, so that a run leaves a
// shared cluster as it found it and an embedded one frees its disk.
func (a *admin) deleteTopics(ctx context.Context, topics []string) error {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	resp, err := a.adm.DeleteTopics(ctx, topics...)
	if err != nil {
		return err
	}
	return resp.Error()
}

// endOffsets adds up the topics' end offsets (high watermarks): how many
// records the cluster holds, since the topics are new. With acks=0 this is
// the only way to learn how many records the brokers actually kept.
func (a *admin) endOffsets(ctx context.Context, topics []string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	offs, err := a.adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return 0, err
	}
	if err := offs.Error(); err != nil {
		return 0, err
	}
	var n int64
	offs.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n, nil
}
