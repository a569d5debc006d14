package bench

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestDrivers(t *testing.T) {
	if !slices.Contains(DriverNames(), "franz") {
		t.Fatalf("drivers %q", DriverNames())
	}
	if _, err := LookupDriver("franz"); err != nil {
		t.Fatal(err)
	}
	if _, err := LookupDriver("gregor"); err != nil {
		t.Errorf("gregor: %v", err)
	}
	_, err := LookupDriver("sarama")
	if err == nil || errors.Is(err, ErrDriverNotAvailable) || !strings.Contains(err.Error(), "available: franz or gregor") {
		t.Errorf("unknown: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("registering franz twice did not panic")
		}
	}()
	RegisterDriver("franz", franzDriver{})
}

func TestFranzProducerOpts(t *testing.T) {
	s := DefaultProducerSettings()
	for _, codec := range compressionTypes {
		s.CompressionType = codec
		if _, err := franzProducerOpts(ProducerConfig{Bootstrap: []string{"127.0.0.1:1"}, Settings: s}); err != nil {
			t.Errorf("%s: %v", codec, err)
		}
	}
	s.Acks, s.EnableIdempotence = AcksLeader, true
	if _, err := franzProducerOpts(ProducerConfig{Settings: s}); err == nil {
		t.Error("idempotence with acks=1 accepted")
	}
	s.CompressionType = "brotli"
	s.EnableIdempotence = false
	if _, err := franzProducerOpts(ProducerConfig{Settings: s}); err == nil {
		t.Error("unknown codec accepted")
	}
}

// TestMaxRequestSize checks that a workload's max.request.size reaches both
// clients: Gregor's as max.request.size, franz-go's as its request limit
// (with the batch limit capped to it, which kgo requires).
func TestMaxRequestSize(t *testing.T) {
	s := DefaultProducerSettings()
	if s.MaxRequestSize != 1<<20 {
		t.Errorf("default max.request.size %d, want Kafka's 1048576", s.MaxRequestSize)
	}
	s.BatchSize, s.MaxRequestSize = 4<<20, 2<<20
	cfg := ProducerConfig{Bootstrap: []string{"127.0.0.1:1"}, Settings: s}
	pc, err := gregorProducerConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if pc.MaxRequestSize != 2<<20 {
		t.Errorf("gregor: max.request.size %d, want %d", pc.MaxRequestSize, 2<<20)
	}
	opts, err := franzProducerOpts(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if v := cl.OptValue(kgo.BrokerMaxWriteBytes); v != int32(2<<20) {
		t.Errorf("franz: BrokerMaxWriteBytes %v, want %d", v, 2<<20)
	}
	if v := cl.OptValue(kgo.ProducerBatchMaxBytes); v != int32(2<<20) {
		t.Errorf("franz: ProducerBatchMaxBytes %v, want %d (batch.size capped)", v, 2<<20)
	}

	// Unset (0, as in summaries written before the setting existed): each
	// client's own default.
	s.MaxRequestSize = 0
	cfg.Settings = s
	if pc, err := gregorProducerConfig(cfg); err != nil || pc.MaxRequestSize != 1<<20 {
		t.Errorf("gregor with 0: %d, %v", pc.MaxRequestSize, err)
	}
}
