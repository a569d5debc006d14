package broker_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/batch"
	"gregor/broker"
	"gregor/internal/testcluster"
)

// TestCompressionLevels: a topic that recompresses does so at its
// compression.<codec>.level (KIP-390), or the broker's when it sets none;
// DescribeConfigs shows both; levels outside Kafka's ranges are
// INVALID_CONFIG. The level is checked exactly: the stored records section
// must be what batch.CompressLevel writes at that level.
func TestCompressionLevels(t *testing.T) {
	c := testcluster.Start(t, 1, func(_ int, cfg *broker.Config) { cfg.CompressionLevels.Zstd = 10 })
	createTopic(t, c, "gz1", 1, map[string]*string{"compression.type": kmsg.StringPtr("gzip"), "compression.gzip.level": kmsg.StringPtr("1")})
	createTopic(t, c, "gz9", 1, map[string]*string{"compression.type": kmsg.StringPtr("gzip"), "compression.gzip.level": kmsg.StringPtr("9")})
	createTopic(t, c, "lz", 1, map[string]*string{"compression.type": kmsg.StringPtr("lz4"), "compression.lz4.level": kmsg.StringPtr("4")})
	createTopic(t, c, "zs", 1, map[string]*string{"compression.type": kmsg.StringPtr("zstd")})
	r := dialRaw(t, c.Addrs()[0])
	sent := jsonBatch(t)
	uncompressed := batch.Header(sent).Records()
	for _, tc := range []struct {
		topic string
		codec batch.Codec
		level int
	}{{"gz1", batch.CodecGzip, 1}, {"gz9", batch.CodecGzip, 9}, {"lz", batch.CodecLZ4, 4}, {"zs", batch.CodecZstd, 10}} {
		if p := produceRaw(r, 9, 1, tc.topic, 0, sent); p.ErrorCode != 0 {
			t.Fatalf("produce to %s: %v", tc.topic, kerr.ErrorForCode(p.ErrorCode))
		}
		fp := r.do(fetchRequest(12, tc.topic, 0)).(*kmsg.FetchResponse).Topics[0].Partitions[0]
		if fp.ErrorCode != 0 || len(fp.RecordBatches) < batch.HeaderSize {
			t.Fatalf("fetch %s: %v, %d bytes", tc.topic, kerr.ErrorForCode(fp.ErrorCode), len(fp.RecordBatches))
		}
		stored := batch.Header(fp.RecordBatches)
		want, err := batch.CompressLevel(tc.codec, tc.level, nil, uncompressed)
		if err != nil {
			t.Fatal(err)
		}
		if stored.Codec() != tc.codec || !bytes.Equal(stored.Records(), want) {
			t.Errorf("%s stored %s records of %d bytes, want %s at level %d (%d bytes)",
				tc.topic, stored.Codec(), len(stored.Records()), tc.codec, tc.level, len(want))
		}
	}

	adm := kadm.NewClient(newClient(t, c))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rcs, err := adm.DescribeTopicConfigs(ctx, "gz1", "zs")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct{ topic, name, value string }{
		{"gz1", "compression.gzip.level", "1"},
		{"gz1", "compression.lz4.level", "9"},
		{"zs", "compression.zstd.level", "10"},
	} {
		rc, err := rcs.On(want.topic, nil)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, cfg := range rc.Configs {
			if cfg.Key == want.name {
				found = true
				if cfg.Value == nil || *cfg.Value != want.value {
					t.Errorf("%s %s = %v, want %s", want.topic, want.name, cfg.MaybeValue(), want.value)
				}
			}
		}
		if !found {
			t.Errorf("%s: DescribeConfigs lists no %s", want.topic, want.name)
		}
	}

	for name, value := range map[string]string{"compression.gzip.level": "0", "compression.lz4.level": "18", "compression.zstd.level": "23"} {
		resp, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{name: kmsg.StringPtr(value)}, "bad-level")
		if err == nil {
			err = resp.Err
		}
		if !errors.Is(err, kerr.InvalidConfig) {
			t.Errorf("create with %s=%s: %v, want INVALID_CONFIG", name, value, err)
		}
		err = alterTopic(ctx, adm, "gz1", kadm.AlterConfig{Op: kadm.SetConfig, Name: name, Value: kmsg.StringPtr(value)})
		if !errors.Is(err, kerr.InvalidConfig) {
			t.Errorf("alter to %s=%s: %v, want INVALID_CONFIG", name, value, err)
		}
	}
}

// jsonBatch is an uncompressed batch of JSON-like records, which every
// codec and level compresses differently.
func jsonBatch(t *testing.T) []byte {
	t.Helper()
	bld := batch.NewBuilder(batch.DefaultBuilderOptions())
	for i := range 200 {
		v := []byte(`{"id":` + string(rune('0'+i%10)) + `,"user":"u-` + string(rune('a'+i%26)) + `","event":"click","path":"/items/` +
			string(rune('A'+i%26)) + `","ms":` + string(rune('1'+i%9)) + `}`)
		bld.Add(1_000_000+int64(i), nil, v, nil)
	}
	b, err := bld.AppendBatch(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
