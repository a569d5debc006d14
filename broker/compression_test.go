package broker_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"sync"
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

// bombBatch is a zstd batch of one record of size bytes, all zeros but for
// a random prefix of noise bytes: a few KiB on the wire that expand to
// size once decompressed, as a legal large record does.
func bombBatch(t *testing.T, size, noise int) []byte {
	t.Helper()
	o := batch.DefaultBuilderOptions()
	o.Codec = batch.CodecZstd
	bld := batch.NewBuilder(o)
	v := make([]byte, size)
	rand.Read(v[:noise])
	bld.Add(time.Now().UnixMilli(), nil, v, nil)
	b, err := bld.AppendBatch(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestProduceDecompressionStaysWithinBudget: a Produce request large
// enough for its partitions to be validated side by side, each holding a
// small zstd batch that expands to 3 MiB, never has more decompressed at
// once than produce.decompression.max.bytes; the decompressions beyond it
// wait their turn and every partition is appended. Every decompression is
// held at the budget (onCharge blocks) until all of them have either taken
// their share or queued for it, so the check sees the most the broker
// would ever hold at once, whatever the scheduling. A batch that expands
// past the whole budget still goes through, alone.
func TestProduceDecompressionStaysWithinBudget(t *testing.T) {
	const budget, partitions, size = 8 << 20, 12, 3 << 20
	c := testcluster.Start(t, 1, func(_ int, cfg *broker.Config) { cfg.DecompressionMaxBytes = budget })
	b := c.Brokers[0]
	createTopic(t, c, "expand", partitions, nil)
	r := dialRaw(t, c.Addrs()[0])

	events := make(chan string, 4*partitions)
	gate := make(chan struct{})
	open := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(open) // a failed test must not leave the appends held
	broker.WatchDecompressions(b,
		func() { events <- "queued" },
		func() { events <- "charged"; <-gate })
	var parts []producePart
	for p := range int32(partitions) {
		// The noise makes the request 300 KiB, over the size from which
		// partitions are validated side by side (parallelProduceMinBytes).
		parts = append(parts, producePart{"expand", p, bombBatch(t, size, 25<<10)})
	}
	req := produceRequest(9, 1, parts...)
	r.write(r.frameOf(req))
	counts := map[string]int{}
	deadline := time.After(20 * time.Second)
	for counts["charged"]+counts["queued"] < partitions {
		select {
		case e := <-events:
			counts[e]++
		case <-deadline:
			t.Fatalf("only %v of %d decompressions arrived", counts, partitions)
		}
	}
	if peak := broker.DecompressionPeakBytes(b); peak > budget || counts["queued"] == 0 {
		t.Errorf("%d bytes decompressed at once (%v), budget %d", peak, counts, budget)
	}
	open()
	checkProduceAnswer(t, r, req, r.corr)
	broker.WatchDecompressions(b, nil, nil)
	if peak := broker.DecompressionPeakBytes(b); peak > budget {
		t.Errorf("%d bytes decompressed at once, budget %d", peak, budget)
	}

	// Over the whole budget: it waits for nothing else to be held, then
	// holds exactly its own share.
	big := bombBatch(t, budget+(4<<20), 25<<10)
	share, _ := batch.SizeHint(batch.CodecZstd, batch.Header(big).Records())
	parts = parts[:0]
	for p := range int32(partitions) {
		records := bombBatch(t, size, 25<<10)
		if p == 5 {
			records = big
		}
		parts = append(parts, producePart{"expand", p, records})
	}
	req = produceRequest(9, 1, parts...)
	r.write(r.frameOf(req))
	checkProduceAnswer(t, r, req, r.corr)
	if peak := broker.DecompressionPeakBytes(b); peak != int64(share) {
		t.Errorf("%d bytes decompressed at once, want the over-budget batch's %d alone", peak, share)
	}
}

// checkProduceAnswer reads the answer to req, sent with correlation id
// corr, and checks that each of its partitions was appended.
func checkProduceAnswer(t *testing.T, r *rawConn, req *kmsg.ProduceRequest, corr int32) {
	t.Helper()
	resp := r.answer(req, corr).(*kmsg.ProduceResponse)
	n := 0
	for _, rt := range resp.Topics {
		for _, sp := range rt.Partitions {
			n++
			if sp.ErrorCode != 0 {
				t.Errorf("%s-%d: %v (%s)", rt.Topic, sp.Partition, kerr.ErrorForCode(sp.ErrorCode), deref(sp.ErrorMessage))
			}
		}
	}
	if want := len(req.Topics[0].Partitions); n != want {
		t.Errorf("the answer names %d partitions, want %d", n, want)
	}
}

// TestProduceGzipOfSeveralMembers: a gzip stream's trailer records only its
// last member's length, the size a decompression's share starts from; a
// batch of two members outgrows it and is decided again with the batch's
// whole bound, so it is appended, while one whose trailer lies about a
// single member is still CORRUPT_MESSAGE.
func TestProduceGzipOfSeveralMembers(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "members", 1, nil)
	r := dialRaw(t, c.Addrs()[0])
	plain := recordBatch(t, 50, 1000)
	section := batch.Header(plain).Records()
	gz := func(parts ...[]byte) []byte {
		var buf bytes.Buffer
		for _, p := range parts {
			w := gzip.NewWriter(&buf)
			w.Write(p)
			w.Close()
		}
		return buf.Bytes()
	}
	two := gz(section[:len(section)-100], section[len(section)-100:])
	if p := produceRaw(r, 9, 1, "members", 0, withCompressed(plain, batch.CodecGzip, two)); p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("two gzip members: %v (%s) at %d", kerr.ErrorForCode(p.ErrorCode), deref(p.ErrorMessage), p.BaseOffset)
	}
	lie := gz(section)
	binary.LittleEndian.PutUint32(lie[len(lie)-4:], 100)
	if p := produceRaw(r, 9, 1, "members", 0, withCompressed(plain, batch.CodecGzip, lie)); p.ErrorCode != kerr.CorruptMessage.Code {
		t.Fatalf("a gzip trailer that undersells: %v (%s), want CORRUPT_MESSAGE", kerr.ErrorForCode(p.ErrorCode), deref(p.ErrorMessage))
	}
}
