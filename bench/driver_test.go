package bench

import (
	"errors"
	"slices"
	"strings"
	"testing"
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
