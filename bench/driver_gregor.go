package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gregor/client"
)

// The driver for Gregor's own client (package client): --client gregor, the
// default.

func init() { RegisterDriver("gregor", gregorDriver{}) }

type gregorDriver struct{}

// gregorProducerConfig translates the workload's producer settings into
// client's config, which uses the Java client's names and meanings.
func gregorProducerConfig(cfg ProducerConfig) (client.ProducerConfig, error) {
	s := cfg.Settings
	pc := client.DefaultProducerConfig()
	pc.BootstrapServers = cfg.Bootstrap
	pc.ClientID = cfg.ClientID
	switch s.Acks {
	case AcksAll:
		pc.Acks = "all"
	case AcksLeader:
		pc.Acks = "1"
	case AcksNone:
		pc.Acks = "0"
	default:
		return pc, fmt.Errorf("acks %v: unknown", s.Acks)
	}
	pc.LingerMs = s.LingerMs
	pc.BatchSize = s.BatchSize
	pc.CompressionType = s.CompressionType
	if pc.CompressionType == "" {
		pc.CompressionType = "none"
	}
	// 0 is the codec's default level, in both configs.
	pc.CompressionLevels = s.Levels()
	pc.EnableIdempotence = s.EnableIdempotence
	pc.MaxInFlightRequestsPerConnection = s.MaxInFlight
	pc.BufferMemory = s.BufferMemory
	pc.RequestTimeoutMs = s.RequestTimeoutMs
	pc.DeliveryTimeoutMs = s.DeliveryTimeoutMs
	if s.MaxRequestSize > 0 { // 0: the client's default, Kafka's 1 MiB
		pc.MaxRequestSize = s.MaxRequestSize
	}
	return pc, pc.Validate()
}

func (gregorDriver) NewProducer(_ context.Context, cfg ProducerConfig) (Producer, error) {
	pc, err := gregorProducerConfig(cfg)
	if err != nil {
		return nil, err
	}
	p, err := client.NewProducer(pc)
	if err != nil {
		return nil, err
	}
	return &gregorProducer{p: p}, nil
}

type gregorProducer struct{ p *client.Producer }

func (g *gregorProducer) Produce(ctx context.Context, topic string, partition int32, key, value []byte, ts time.Time, done func(error)) error {
	r := &client.Record{Topic: topic, Partition: partition, Key: key, Value: value, Timestamp: ts}
	return g.p.Produce(ctx, r, func(_ client.RecordMetadata, err error) { done(err) })
}

func (g *gregorProducer) Flush(ctx context.Context) error { return g.p.Flush(ctx) }

func (g *gregorProducer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return g.p.Close(ctx)
}

func (g *gregorProducer) Stats() ProducerStats {
	st := g.p.Stats()
	return ProducerStats{Batches: st.Batches, UncompressedBytes: st.UncompressedBytes, CompressedBytes: st.Bytes, Retries: st.Retries}
}

func (gregorDriver) NewConsumer(_ context.Context, cfg ConsumerConfig) (Consumer, error) {
	cc := client.DefaultConsumerConfig()
	cc.BootstrapServers = cfg.Bootstrap
	cc.ClientID = cfg.ClientID
	cc.MaxPollRecords = 10000
	cc.FetchMaxBytes = 64 << 20
	cc.MaxPartitionFetchBytes = 8 << 20
	cc.AutoOffsetReset = "earliest"
	if cfg.Group != "" {
		cc.GroupID = cfg.Group
		cc.PartitionAssignmentStrategy = []string{"range", "cooperative-sticky"}
		c, err := client.NewConsumer(cc)
		if err != nil {
			return nil, err
		}
		if err := c.Subscribe(cfg.Topics, nil); err != nil {
			c.Close()
			return nil, err
		}
		return &gregorConsumer{c: c}, nil
	}
	c, err := client.NewConsumer(cc)
	if err != nil {
		return nil, err
	}
	var tps []client.TopicPartition
	for topic, parts := range cfg.Partitions {
		for _, p := range parts {
			tps = append(tps, client.TopicPartition{Topic: topic, Partition: p})
		}
	}
	c.Assign(tps)
	for _, tp := range tps {
		c.Seek(tp, client.Earliest())
	}
	return &gregorConsumer{c: c}, nil
}

type gregorConsumer struct{ c *client.Consumer }

func (g *gregorConsumer) Poll(ctx context.Context, fn func(ConsumedRecord)) error {
	recs, err := g.c.Poll(ctx)
	for _, r := range recs {
		fn(ConsumedRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp, Value: r.Value})
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

func (g *gregorConsumer) Close() error { return g.c.Close() }

func (g *gregorConsumer) GroupState() (int32, int) {
	return g.c.GroupMetadata().GenerationID, len(g.c.Assignment())
}
