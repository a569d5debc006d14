package bench

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"gregor/batch"
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

// TestCompressionLevels checks that a workload's compression levels reach
// both clients, each at the library level Gregor's codecs use: Gregor's
// client takes them as its compression.<codec>.level settings, and
// franz-go's compressor, built from franzCodec, writes gzip byte for byte
// as Gregor does and compresses lz4 and zstd harder at a higher level
// (their frames differ from Gregor's, so only sizes compare).
func TestCompressionLevels(t *testing.T) {
	s := DefaultProducerSettings()
	s.CompressionType, s.GzipLevel, s.LZ4Level, s.ZstdLevel = "zstd", 9, 12, 19
	pc, err := gregorProducerConfig(ProducerConfig{Bootstrap: []string{"127.0.0.1:1"}, Settings: s})
	if err != nil {
		t.Fatal(err)
	}
	if pc.CompressionLevels != (batch.Levels{Gzip: 9, LZ4: 12, Zstd: 19}) {
		t.Errorf("gregor: levels %+v", pc.CompressionLevels)
	}
	if s.Level() != 19 {
		t.Errorf("zstd's level %d, want 19", s.Level())
	}

	// Text drawn from a small vocabulary: compressible, and unlike a
	// repeated string, compressible more at higher levels.
	words := strings.Fields("user event click view page cart order item price search home about login logout")
	rng := rand.New(rand.NewPCG(1, 2))
	var src []byte
	for len(src) < 256<<10 {
		src = append(src, words[rng.IntN(len(words))]...)
		src = append(src, ' ')
	}
	franz := func(name string, level int) []byte {
		t.Helper()
		codec, err := franzCodec(name, level)
		if err != nil {
			t.Fatal(err)
		}
		comp, err := kgo.DefaultCompressor(codec)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		out, _ := comp.Compress(&buf, src)
		return bytes.Clone(out)
	}
	for _, level := range []int{0, -1, 1, 5, 9} {
		want, err := batch.CompressLevel(batch.CodecGzip, batch.Levels{Gzip: level}.Of(batch.CodecGzip), nil, src)
		if err != nil {
			t.Fatal(err)
		}
		if got := franz("gzip", level); !bytes.Equal(got, want) {
			t.Errorf("gzip level %d: franz-go wrote %d bytes, Gregor %d", level, len(got), len(want))
		}
	}
	for _, tc := range []struct {
		codec     string
		low, high int
	}{{"lz4", 9, 17}, {"zstd", 1, 19}} { // lz4's default 9 is its fast compressor
		low, high := len(franz(tc.codec, tc.low)), len(franz(tc.codec, tc.high))
		if high >= low {
			t.Errorf("%s: level %d gave %d bytes, level %d %d: the level did not reach the compressor", tc.codec, tc.high, high, tc.low, low)
		}
	}
	if _, err := franzCodec("lz4", 18); err == nil {
		t.Error("lz4 level 18 accepted")
	}
}

// TestCompressionRatioCountsWholeBatches guards the drivers' ProducerStats
// against counting different bytes: Gregor's client counts whole batches
// (the 61-byte header included) before and after compression, while kgo's
// ProduceBatchMetrics count the records section alone, which the franz
// driver must make up for. The same records, compressed by the same gzip
// level into byte-identical one-record batches, must give both clients the
// same compression ratio in the report (and the same wire bytes "of bound").
func TestCompressionRatioCountsWholeBatches(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := DefaultProducerSettings()
	s.Acks, s.EnableIdempotence, s.LingerMs, s.CompressionType = AcksLeader, false, 0, "gzip"
	value := makePayload(PayloadText, 1024, 7)
	ts := time.UnixMilli(1_800_000_000_000)
	const batches = 20
	stats := map[string]ProducerStats{}
	for _, name := range []string{"gregor", "franz"} {
		d, _ := LookupDriver(name)
		p, err := d.NewProducer(t.Context(), ProducerConfig{Bootstrap: c.ListenAddrs(), Settings: s, ClientID: "ratio"})
		if err != nil {
			t.Fatal(err)
		}
		// kgo counts a batch on its own goroutine, perhaps after the
		// records' callbacks: hear of each before reading the stats.
		written := make(chan struct{}, batches)
		if fp, ok := p.(*franzProducer); ok {
			fp.hooks.written = written
		}
		for range batches { // one record per batch: flush after each
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			errc := make(chan error, 1)
			if err := p.Produce(ctx, "t", 0, nil, value, ts, func(err error) { errc <- err }); err != nil {
				t.Fatal(err)
			}
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			cancel()
		}
		if _, ok := p.(*franzProducer); ok {
			for i := range batches {
				select {
				case <-written:
				case <-time.After(10 * time.Second):
					t.Fatalf("franz: %d of %d batches counted after 10s", i, batches)
				}
			}
		}
		stats[name] = p.(StatsProducer).Stats()
		p.Close()
	}
	ratio := func(st ProducerStats) float64 { return float64(st.UncompressedBytes) / float64(st.CompressedBytes) }
	g, f := stats["gregor"], stats["franz"]
	if g.Batches != batches || f.Batches != batches {
		t.Fatalf("batches: gregor %d, franz %d; want %d each", g.Batches, f.Batches, batches)
	}
	// A one-record batch: the header, then the record (its value and a
	// few bytes of framing) uncompressed.
	for name, st := range stats {
		if per := st.UncompressedBytes / st.Batches; per < int64(batch.HeaderSize+len(value)) {
			t.Errorf("%s: %d bytes per uncompressed batch, less than the %d-byte header and the %d-byte value",
				name, per, batch.HeaderSize, len(value))
		}
	}
	if d := ratio(f) / ratio(g); d > 1.01 || d < 0.99 {
		t.Errorf("identical gzip batches: franz ratio %.3f (%d/%d bytes), gregor %.3f (%d/%d bytes): the drivers count different bytes",
			ratio(f), f.UncompressedBytes, f.CompressedBytes, ratio(g), g.UncompressedBytes, g.CompressedBytes)
	}
}

// TestFranzInFlightMatchesGregor guards max.in.flight.requests.per.connection
// reaching both clients alike. Without idempotence kgo takes the setting as
// its per-broker limit, as Gregor's client takes it per connection. With
// idempotence kgo keeps up to 5 produce requests in flight whatever it is
// told (not one, as the driver once said), so a scenario asking for fewer
// is refused before the run rather than compared with Gregor's client at a
// different depth of pipelining.
func TestFranzInFlightMatchesGregor(t *testing.T) {
	s := DefaultProducerSettings()
	s.Acks, s.EnableIdempotence, s.MaxInFlight = AcksLeader, false, 3
	cfg := ProducerConfig{Bootstrap: []string{"127.0.0.1:1"}, Settings: s}
	opts, err := franzProducerOpts(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	cl.Close()
	if v := cl.OptValue(kgo.MaxProduceRequestsInflightPerBroker); v != 3 {
		t.Errorf("franz without idempotence: %v requests in flight, want 3", v)
	}
	if pc, err := gregorProducerConfig(cfg); err != nil || pc.MaxInFlightRequestsPerConnection != 3 {
		t.Errorf("gregor without idempotence: %d requests in flight (%v), want 3", pc.MaxInFlightRequestsPerConnection, err)
	}

	s.Acks, s.EnableIdempotence, s.MaxInFlight = AcksAll, true, 5
	if _, err := franzProducerOpts(ProducerConfig{Settings: s}); err != nil {
		t.Errorf("idempotence with 5 in flight, kgo's own limit: %v", err)
	}
	s.MaxInFlight = 1
	if _, err := franzProducerOpts(ProducerConfig{Settings: s}); err == nil ||
		!strings.Contains(err.Error(), "keeps up to 5 produce requests in flight") {
		t.Errorf("idempotence with 1 in flight: err = %v, want a refusal: kgo would keep 5", err)
	}

	// Before the run: a workload whose idempotent scenarios (acks=all
	// turns idempotence on) ask for 1 in flight, swept over both clients,
	// is refused for franz-go's scenarios alone.
	w, err := ParseWorkload([]byte(`name: unit
testDurationSeconds: 1
producer:
  max.in.flight.requests.per.connection: 1
sweep:
  acks: [1, all]
  client: [franz, gregor]
`), "unit.yaml")
	if err != nil {
		t.Fatal(err)
	}
	err = (&Config{Workload: w, Bootstrap: []string{"127.0.0.1:1"}}).Check()
	if err == nil || !strings.Contains(err.Error(), "client franz, scenario(s) 3: max.in.flight.requests.per.connection=1 with enable.idempotence=true") {
		t.Errorf("Check: %v, want scenario 3 (acks=all, franz) refused", err)
	}
	w.Producer.MaxInFlight = 5
	if err := (&Config{Workload: w, Bootstrap: []string{"127.0.0.1:1"}}).Check(); err != nil {
		t.Errorf("Check with 5 in flight: %v", err)
	}
}
