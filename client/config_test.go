package client

import (
	"math"
	"strings"
	"testing"

	"gregor/batch"
)

func TestProducerConfigDefaultsAreKafkas(t *testing.T) {
	c := DefaultProducerConfig()
	if c.Acks != "all" || c.LingerMs != 5 || c.BatchSize != 16384 || c.BufferMemory != 32<<20 || c.MaxBlockMs != 60000 ||
		!c.EnableIdempotence || c.MaxInFlightRequestsPerConnection != 5 || c.Retries != 2147483647 || c.RetryBackoffMs != 100 ||
		c.DeliveryTimeoutMs != 120000 || c.RequestTimeoutMs != 30000 || c.MetadataMaxAgeMs != 300000 || c.CompressionType != "none" ||
		c.CompressionLevels != (batch.Levels{Gzip: -1, LZ4: 9, Zstd: 3}) {
		t.Fatalf("defaults differ from the Java producer's: %+v", c)
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "bootstrap.servers") {
		t.Fatalf("defaults without bootstrap.servers: %v", err)
	}
	c.BootstrapServers = []string{"127.0.0.1:9092"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestProducerConfigValidateReportsEveryBadField(t *testing.T) {
	c := ProducerConfig{
		BootstrapServers: []string{"nohostport"}, Acks: "2", LingerMs: -1, BatchSize: 0, CompressionType: "brotli",
		BufferMemory: 10, MaxBlockMs: -1, MaxInFlightRequestsPerConnection: 0, Retries: -1, RetryBackoffMs: -1,
		RequestTimeoutMs: 0, DeliveryTimeoutMs: -5, Partitioner: "random", MetadataMaxAgeMs: 0, MaxRequestSize: 1,
		CompressionLevels: batch.Levels{Gzip: 10, LZ4: -1, Zstd: 23},
	}
	err := c.Validate()
	if err == nil {
		t.Fatal("validated")
	}
	for _, want := range []string{`"nohostport"`, `acks = "2"`, "linger.ms = -1", "batch.size = 0", `compression.type = "brotli"`,
		"buffer.memory = 10", "max.block.ms = -1", "max.in.flight.requests.per.connection = 0", "retries = -1",
		"retry.backoff.ms = -1", "request.timeout.ms = 0", "delivery.timeout.ms = -5", `partitioner = "random"`,
		"metadata.max.age.ms = 0", "max.request.size = 1",
		"compression.gzip.level = 10", "compression.lz4.level = -1", "compression.zstd.level = 23"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

// TestProducerConfigMillisecondsDoNotOverflow: max.block.ms is a Java long,
// and Long.MAX_VALUE is how a Java user says "block for ever"; as a
// Duration it overflowed to a negative wait, and Produce failed at once.
// request.timeout.ms and delivery.timeout.ms are Java ints (a Produce
// request carries its timeout as int32), and a linger.ms past them must
// not pass the delivery check by overflowing a sum.
func TestProducerConfigMillisecondsDoNotOverflow(t *testing.T) {
	if got := batch.Millis(math.MaxInt64); got != math.MaxInt64 {
		t.Errorf("max.block.ms=Long.MAX_VALUE is %v, want the longest Duration", got)
	}
	c := DefaultProducerConfig()
	c.BootstrapServers = []string{"127.0.0.1:9092"}
	c.MaxBlockMs = math.MaxInt64
	if err := c.Validate(); err != nil {
		t.Fatalf("max.block.ms = Long.MAX_VALUE: %v", err)
	}
	c.RequestTimeoutMs, c.DeliveryTimeoutMs = math.MaxInt32+1, math.MaxInt32+1
	err := c.Validate()
	for _, want := range []string{"request.timeout.ms = 2147483648", "delivery.timeout.ms = 2147483648"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
	c.RequestTimeoutMs, c.DeliveryTimeoutMs, c.LingerMs = 30000, 120000, math.MaxInt64
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "delivery.timeout.ms = 120000") {
		t.Errorf("linger.ms = Long.MAX_VALUE with delivery.timeout.ms = 120000: %v", err)
	}
}

func TestProducerConfigIdempotenceRequirements(t *testing.T) {
	c := DefaultProducerConfig()
	c.BootstrapServers = []string{"127.0.0.1:9092"}
	c.Acks = "1"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "requires acks=all") {
		t.Fatalf("idempotence with acks=1: %v", err)
	}
	c.Acks = "-1"
	c.MaxInFlightRequestsPerConnection = 6
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "max.in.flight.requests.per.connection <= 5, have 6") {
		t.Fatalf("idempotence with 6 in flight: %v", err)
	}
	c.MaxInFlightRequestsPerConnection, c.Retries = 5, 0
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "requires retries > 0, have 0") {
		t.Fatalf("idempotence with retries=0: %v", err)
	}
	c.EnableIdempotence = false
	c.Acks = "0"
	if err := c.Validate(); err != nil {
		t.Fatalf("acks=0 without idempotence: %v", err)
	}
}

func TestConsumerConfig(t *testing.T) {
	c := DefaultConsumerConfig()
	if c.MaxPollRecords != 500 || c.FetchMinBytes != 1 || c.FetchMaxBytes != 52428800 || c.MaxPartitionFetchBytes != 1048576 ||
		c.FetchMaxWaitMs != 500 || c.IsolationLevel != "read_uncommitted" || c.AutoOffsetReset != "latest" {
		t.Fatalf("defaults differ from the Java consumer's: %+v", c)
	}
	c.BootstrapServers = []string{"127.0.0.1:9092"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := ConsumerConfig{BootstrapServers: []string{"127.0.0.1:9092"}, MaxPollRecords: 0, FetchMinBytes: -1, FetchMaxBytes: 0,
		MaxPartitionFetchBytes: 0, FetchMaxWaitMs: -1, IsolationLevel: "dirty", AutoOffsetReset: "middle", RequestTimeoutMs: 0,
		RetryBackoffMs: -1, MetadataMaxAgeMs: 0}
	err := bad.Validate()
	for _, want := range []string{"max.poll.records = 0", "fetch.min.bytes = -1", "fetch.max.bytes = 0", "max.partition.fetch.bytes = 0",
		"fetch.max.wait.ms = -1", `isolation.level = "dirty"`, `auto.offset.reset = "middle"`, "request.timeout.ms = 0",
		"retry.backoff.ms = -1", "metadata.max.age.ms = 0"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}
