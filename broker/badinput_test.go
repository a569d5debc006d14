package broker_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/batch"
	"gregor/internal/testcluster"
)

// rawConn speaks the Kafka protocol by hand, so tests can send what no
// client library would.
type rawConn struct {
	t    *testing.T
	c    net.Conn
	corr int32
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawConn{t: t, c: c}
}

// frame builds a request frame for key/version with body.
func (r *rawConn) frame(key, version int16, flexible bool, body []byte) []byte {
	r.corr++
	buf := make([]byte, 4, 64+len(body))
	buf = kbin.AppendInt16(buf, key)
	buf = kbin.AppendInt16(buf, version)
	buf = kbin.AppendInt32(buf, r.corr)
	buf = kbin.AppendNullableString(buf, kmsg.StringPtr("raw-test"))
	if flexible {
		buf = append(buf, 0)
	}
	buf = append(buf, body...)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	return buf
}

func (r *rawConn) write(b []byte) {
	r.t.Helper()
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

// frameOf builds req's frame, with the next correlation id.
func (r *rawConn) frameOf(req kmsg.Request) []byte {
	return r.frame(req.Key(), req.GetVersion(), req.IsFlexible(), req.AppendTo(nil))
}

// do sends req and decodes its response.
func (r *rawConn) do(req kmsg.Request) kmsg.Response {
	r.t.Helper()
	r.write(r.frameOf(req))
	return r.answer(req, r.corr)
}

// answer reads the next response, which must be req's, sent with
// correlation id corr, and decodes it.
func (r *rawConn) answer(req kmsg.Request, corr int32) kmsg.Response {
	r.t.Helper()
	body, err := r.read()
	return r.decode(req, corr, body, err)
}

// decode decodes body, read with err, as the response to req sent with
// correlation id corr.
func (r *rawConn) decode(req kmsg.Request, corr int32, body []byte, err error) kmsg.Response {
	r.t.Helper()
	if err != nil {
		r.t.Fatalf("%s v%d: reading the response: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	rd := kbin.Reader{Src: body}
	if got := rd.Int32(); got != corr {
		r.t.Fatalf("correlation id %d, want %d", got, corr)
	}
	if resp.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16() {
		kmsg.SkipTags(&rd)
	}
	if err := resp.ReadFrom(rd.Src); err != nil {
		r.t.Fatalf("decoding %s v%d response: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp
}

func (r *rawConn) read() ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r.c, size[:]); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	_, err := io.ReadFull(r.c, body)
	return body, err
}

// expectClosed checks the broker closed the connection without answering.
func (r *rawConn) expectClosed() {
	r.t.Helper()
	if b, err := r.read(); err == nil {
		r.t.Fatalf("the broker answered (%d bytes) instead of closing the connection", len(b))
	} else if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		r.t.Fatalf("waiting for the broker to close the connection: %v", err)
	}
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}

func TestBadRequestsCloseTheConnection(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	addr := c.Addrs()[0]
	t.Run("unknown API key", func(t *testing.T) {
		r := dialRaw(t, addr)
		r.write(r.frame(99, 0, false, nil))
		r.expectClosed()
	})
	t.Run("unsupported Produce version", func(t *testing.T) {
		r := dialRaw(t, addr)
		r.write(r.frame(kmsg.Produce.Int16(), 2, false, make([]byte, 16)))
		r.expectClosed()
	})
	t.Run("malformed Metadata body", func(t *testing.T) {
		r := dialRaw(t, addr)
		// A topic array claiming a million entries in three bytes.
		r.write(r.frame(kmsg.Metadata.Int16(), 1, false, []byte{0, 0x0f, 0x42}))
		r.expectClosed()
	})
	// A tag count of 2^32-1 in a few bytes: kmsg alone would count to it
	// for over a minute, past the connection's 20 s deadline (kshape).
	bomb := []byte{0xff, 0xff, 0xff, 0xff, 0x0f}
	t.Run("tag count in the body the bytes cannot hold", func(t *testing.T) {
		r := dialRaw(t, addr)
		r.write(r.frame(kmsg.ApiVersions.Int16(), 3, true, append([]byte{1, 1}, bomb...)))
		r.expectClosed()
	})
	t.Run("tag count in the header the bytes cannot hold", func(t *testing.T) {
		r := dialRaw(t, addr)
		r.write(r.frame(kmsg.Metadata.Int16(), 12, false, bomb))
		r.expectClosed()
	})
	t.Run("short header", func(t *testing.T) {
		r := dialRaw(t, addr)
		r.write([]byte{0, 0, 0, 3, 0, 3, 0})
		r.expectClosed()
	})
	t.Run("oversize frame", func(t *testing.T) {
		r := dialRaw(t, addr)
		r.write([]byte{0x10, 0, 0, 0}) // 256 MiB, over socket.request.max.bytes
		r.expectClosed()
	})
	t.Run("negative frame size", func(t *testing.T) {
		r := dialRaw(t, addr)
		r.write([]byte{0xff, 0xff, 0xff, 0xf0})
		r.expectClosed()
	})
	// The broker is still serving.
	r := dialRaw(t, addr)
	if resp := r.do(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
		t.Fatalf("ApiVersions after bad requests: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
}

// TestApiVersions: every version lists the APIs; from v3 a client software
// name or version KIP-511 does not allow gets INVALID_REQUEST and no APIs,
// as Kafka answers; a version newer than the broker's gets
// UNSUPPORTED_VERSION with the ranges.
func TestApiVersions(t *testing.T) {
	const served = 32 // the APIs the broker listener answers
	c := testcluster.Start(t, 1, nil)
	r := dialRaw(t, c.Addrs()[0])
	for v := int16(0); v <= 3; v++ {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = v
		req.ClientSoftwareName, req.ClientSoftwareVersion = "raw", "1"
		resp := r.do(req).(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode != 0 || len(resp.ApiKeys) != served {
			t.Fatalf("v%d: error %d, %d APIs", v, resp.ErrorCode, len(resp.ApiKeys))
		}
	}
	for _, tc := range []struct {
		name, version string
		ok            bool
	}{
		{"apache-kafka-java", "3.7.0-SNAPSHOT", true},
		{"kgo", "v1.18.0", true},
		{"a", "1", true},
		{"bad name!", "1.0", false},
		{"ok", "1.0 ", false},
		{"", "1.0", false},
		{"ok", "", false},
		{"-lead", "1", false},
		{"trail.", "1", false},
		{"unié", "1", false},
	} {
		for v := int16(0); v <= 3; v++ {
			req := kmsg.NewPtrApiVersionsRequest()
			req.Version, req.ClientSoftwareName, req.ClientSoftwareVersion = v, tc.name, tc.version
			resp := r.do(req).(*kmsg.ApiVersionsResponse)
			want, apis := int16(0), served
			if v >= 3 && !tc.ok {
				want, apis = kerr.InvalidRequest.Code, 0
			}
			if resp.ErrorCode != want || len(resp.ApiKeys) != apis {
				t.Errorf("v%d client_software %q %q: %s with %d APIs, want %s with %d", v, tc.name, tc.version, code(resp.ErrorCode), len(resp.ApiKeys), code(want), apis)
			}
		}
	}
	// A newer ApiVersions than the broker speaks gets UNSUPPORTED_VERSION
	// and the ranges, in a v0 response (KIP-511).
	r.write(r.frame(kmsg.ApiVersions.Int16(), 9, true, []byte{0, 0, 0}))
	body, err := r.read()
	if err != nil {
		t.Fatal(err)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	if err := resp.ReadFrom(body[4:]); err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) == 0 {
		t.Fatalf("too-new ApiVersions: error %d, %d APIs", resp.ErrorCode, len(resp.ApiKeys))
	}
	for _, k := range resp.ApiKeys {
		if k.ApiKey == kmsg.Fetch.Int16() && (k.MinVersion != 4 || k.MaxVersion != 13) {
			t.Fatalf("Fetch advertised as %d-%d", k.MinVersion, k.MaxVersion)
		}
	}
}

// recordBatch builds a valid batch of n small records.
func recordBatch(t *testing.T, n int, valueSize int) []byte {
	t.Helper()
	return codecBatch(t, batch.CodecNone, n, valueSize)
}

// codecBatch builds a valid batch of n records of valueSize zero bytes,
// compressed with codec.
func codecBatch(t *testing.T, codec batch.Codec, n int, valueSize int) []byte {
	t.Helper()
	o := batch.DefaultBuilderOptions()
	o.Codec = codec
	bld := batch.NewBuilder(o)
	for range n {
		bld.Add(time.Now().UnixMilli(), nil, make([]byte, valueSize), nil)
	}
	b, err := bld.AppendBatch(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withSection returns a copy of the valid batch b (of codec none) whose
// records section is replaced by section compressed with codec, its length
// and CRC set to match: a batch well-formed on the outside with whatever
// inside.
func withSection(t *testing.T, b []byte, codec batch.Codec, section []byte) []byte {
	t.Helper()
	compressed, err := batch.Compress(codec, nil, section)
	if err != nil {
		t.Fatal(err)
	}
	return withCompressed(b, codec, compressed)
}

// withCompressed is withSection for a section compressed already.
func withCompressed(b []byte, codec batch.Codec, compressed []byte) []byte {
	out := append(append([]byte(nil), b[:batch.HeaderSize]...), compressed...)
	binary.BigEndian.PutUint16(out[21:], binary.BigEndian.Uint16(out[21:])|uint16(codec))
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	batch.Header(out).SetCRC()
	return out
}

// producePart is one partition's records in a Produce request.
type producePart struct {
	topic     string
	partition int32
	records   []byte
}

// produceRequest builds a Produce request of parts, in order; consecutive
// parts of one topic share its entry.
func produceRequest(version, acks int16, parts ...producePart) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = version, acks, 10000
	for _, p := range parts {
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != p.topic {
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = p.topic
			req.Topics = append(req.Topics, rt)
		}
		rt := &req.Topics[len(req.Topics)-1]
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = p.partition, p.records
		rt.Partitions = append(rt.Partitions, rp)
	}
	return req
}

func produceRaw(r *rawConn, version int16, acks int16, topic string, partition int32, records []byte) *kmsg.ProduceResponseTopicPartition {
	resp := r.do(produceRequest(version, acks, producePart{topic, partition, records})).(*kmsg.ProduceResponse)
	return &resp.Topics[0].Partitions[0]
}

func TestProduceBadInput(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "bad", 2, map[string]*string{"max.message.bytes": kmsg.StringPtr("4096")})
	createTopic(t, c, "recompress", 1, map[string]*string{"max.message.bytes": kmsg.StringPtr("4096"), "compression.type": kmsg.StringPtr("uncompressed")})
	createTopic(t, c, "nothing", 1, map[string]*string{"max.message.bytes": kmsg.StringPtr("0")})
	r := dialRaw(t, c.Addrs()[0])

	good := recordBatch(t, 3, 10)
	if p := produceRaw(r, 9, 1, "bad", 0, good); p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("a good batch: error %v offset %d", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}
	corrupt := recordBatch(t, 3, 10)
	corrupt[len(corrupt)-1] ^= 0xff
	twoBatches := append(recordBatch(t, 1, 10), recordBatch(t, 1, 10)...)
	// Records that do not parse, under a CRC that holds.
	unparsable := recordBatch(t, 3, 10)
	for i := batch.HeaderSize; i < len(unparsable); i++ {
		unparsable[i] = 0xff
	}
	batch.Header(unparsable).SetCRC()
	// Compresses to a few dozen bytes, 8 KiB once the topic recompresses it.
	compressible := codecBatch(t, batch.CodecGzip, 8, 1024)
	// Compressed batches whose CRC holds but whose insides do not: records
	// that do not parse, fewer records than the header counts, and a
	// section that is not lz4 at all.
	three := recordBatch(t, 3, 10)
	unparsableLZ4 := withSection(t, three, batch.CodecLZ4, bytes.Repeat([]byte{0xff}, 64))
	shortSnappy := withSection(t, three, batch.CodecSnappy, recordBatch(t, 2, 10)[batch.HeaderSize:])
	notLZ4 := withSection(t, three, batch.CodecNone, bytes.Repeat([]byte{0x5a}, 64))
	binary.BigEndian.PutUint16(notLZ4[21:], binary.BigEndian.Uint16(notLZ4[21:])|uint16(batch.CodecLZ4))
	batch.Header(notLZ4).SetCRC()
	for _, tc := range []struct {
		name      string
		acks      int16
		topic     string
		partition int32
		records   []byte
		want      *kerr.Error
	}{
		{"bad CRC", 1, "bad", 0, corrupt, kerr.CorruptMessage},
		{"over max.message.bytes", 1, "bad", 0, recordBatch(t, 2, 4096), kerr.MessageTooLarge},
		{"two batches", 1, "bad", 0, twoBatches, kerr.InvalidRecord},
		// Fewer bytes than the batch announces are no batch at all
		// to Kafka's batch iterator.
		{"truncated batch", 1, "bad", 0, good[:40], kerr.InvalidRecord},
		{"unknown topic", 1, "nope", 0, good, kerr.UnknownTopicOrPartition},
		{"unknown partition", 1, "bad", 7, good, kerr.UnknownTopicOrPartition},
		{"invalid acks", 2, "bad", 0, good, kerr.InvalidRequiredAcks},
		{"no records", 1, "bad", 0, nil, kerr.InvalidRecord},
		{"records that do not parse", 1, "bad", 0, unparsable, kerr.InvalidRecord},
		{"compressed records that do not parse", 1, "bad", 0, unparsableLZ4, kerr.InvalidRecord},
		{"compressed records fewer than counted", 1, "bad", 0, shortSnappy, kerr.InvalidRecord},
		{"compressed records that do not decompress", 1, "bad", 0, notLZ4, kerr.CorruptMessage},
		{"recompressed records that do not parse", 1, "recompress", 0, withSection(t, three, batch.CodecGzip, []byte{1, 2, 3}), kerr.InvalidRecord},
		{"negative sequence with a producer id", 1, "bad", 0, idempotentBatch(t, 7, 0, -5, 1), kerr.InvalidRecord},
		{"zstd before Produce v7", 1, "bad", 0, codecBatch(t, batch.CodecZstd, 2, 10), kerr.UnsupportedCompressionType},
		{"over max.message.bytes once recompressed", 1, "recompress", 0, compressible, kerr.MessageTooLarge},
		{"max.message.bytes 0", 1, "nothing", 0, good, kerr.MessageTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			version := int16(9)
			if tc.name == "zstd before Produce v7" {
				version = 6
			}
			p := produceRaw(r, version, tc.acks, tc.topic, tc.partition, tc.records)
			if p.ErrorCode != tc.want.Code {
				t.Fatalf("error %v, want %v", kerr.ErrorForCode(p.ErrorCode), tc.want)
			}
			if version >= 8 && (p.ErrorMessage == nil || *p.ErrorMessage == "") {
				t.Fatal("no error message for the client")
			}
		})
	}
	// Nothing bad was appended: the log holds the one good batch.
	if p := produceRaw(r, 9, 1, "bad", 0, good); p.BaseOffset != 3 {
		t.Fatalf("next offset %d, want 3", p.BaseOffset)
	}
	// acks=0 with an error closes the connection so the client refreshes
	// its metadata.
	r2 := dialRaw(t, c.Addrs()[0])
	r2.write(r2.frameOf(produceRequest(9, 0, producePart{"nope", 0, good})))
	r2.expectClosed()
}

func TestFetchAndListOffsetsBadInput(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "f", 1, nil)
	r := dialRaw(t, c.Addrs()[0])
	produceRaw(r, 9, -1, "f", 0, recordBatch(t, 5, 10))

	fetch := func(version int16, topic string, id [16]byte, partition int32, offset int64) kmsg.FetchResponseTopicPartition {
		req := kmsg.NewPtrFetchRequest()
		req.Version, req.MaxBytes, req.SessionEpoch = version, 1<<20, -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, id
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = partition, offset, 1<<20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := r.do(req).(*kmsg.FetchResponse)
		return resp.Topics[0].Partitions[0]
	}
	if p := fetch(11, "f", [16]byte{}, 0, 0); p.ErrorCode != 0 || p.HighWatermark != 5 || len(p.RecordBatches) == 0 {
		t.Fatalf("good fetch: error %v hw %d %d bytes", kerr.ErrorForCode(p.ErrorCode), p.HighWatermark, len(p.RecordBatches))
	}
	if p := fetch(11, "f", [16]byte{}, 0, 6); p.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("fetch past the end: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	if p := fetch(11, "f", [16]byte{}, 0, 5); p.ErrorCode != 0 || len(p.RecordBatches) != 0 {
		t.Fatalf("fetch at the end: %v, %d bytes", kerr.ErrorForCode(p.ErrorCode), len(p.RecordBatches))
	}
	if p := fetch(11, "nope", [16]byte{}, 0, 0); p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("fetch of an unknown topic: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	if p := fetch(13, "", [16]byte{1, 2, 3}, 0, 0); p.ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("fetch of an unknown topic id: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	if p := fetch(11, "f", [16]byte{}, 3, 0); p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("fetch of an unknown partition: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	// A topic that compresses with zstd is refused to Fetch before v10,
	// which predates zstd, as Kafka refuses it.
	createTopic(t, c, "z", 1, map[string]*string{"compression.type": kmsg.StringPtr("zstd")})
	if p := fetch(9, "z", [16]byte{}, 0, 0); p.ErrorCode != kerr.UnsupportedCompressionType.Code {
		t.Fatalf("Fetch v9 of a zstd topic: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	if p := fetch(10, "z", [16]byte{}, 0, 0); p.ErrorCode != 0 {
		t.Fatalf("Fetch v10 of a zstd topic: %v", kerr.ErrorForCode(p.ErrorCode))
	}

	// One partition at a time: a partition named twice in one request is
	// INVALID_REQUEST (TestListOffsetsVersionsAndDuplicates).
	var ps []kmsg.ListOffsetsResponseTopicPartition
	for _, ask := range []struct {
		partition int32
		ts        int64
	}{{0, -1}, {0, -2}, {0, -3}, {9, -1}} {
		req := listOffsetsRequest(7, "f", 1, ask.ts)
		req.Topics[0].Partitions[0].Partition = ask.partition
		ps = append(ps, r.do(req).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0])
	}
	if ps[0].Offset != 5 || ps[1].Offset != 0 || ps[2].ErrorCode != 0 || ps[2].Offset < 0 || ps[2].Offset > 4 {
		t.Fatalf("latest %d earliest %d max-timestamp %d (%v)", ps[0].Offset, ps[1].Offset, ps[2].Offset, kerr.ErrorForCode(ps[2].ErrorCode))
	}
	if ps[3].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown partition: %v", kerr.ErrorForCode(ps[3].ErrorCode))
	}

	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	for _, name := range []string{"bad/name", "absent"} {
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(name)
		md.Topics = append(md.Topics, mt)
	}
	mresp := r.do(md).(*kmsg.MetadataResponse)
	if mresp.Topics[0].ErrorCode != kerr.InvalidTopicException.Code || mresp.Topics[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("metadata of a bad name and an absent topic without auto-create: %v, %v",
			kerr.ErrorForCode(mresp.Topics[0].ErrorCode), kerr.ErrorForCode(mresp.Topics[1].ErrorCode))
	}
}

func TestAcksAllNeedsMinInsyncReplicas(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "isr", 1, map[string]*string{"min.insync.replicas": kmsg.StringPtr("2")})
	r := dialRaw(t, c.Addrs()[0])
	if p := produceRaw(r, 9, -1, "isr", 0, recordBatch(t, 1, 1)); p.ErrorCode != kerr.NotEnoughReplicas.Code {
		t.Fatalf("acks=all with an ISR of 1 and min.insync.replicas=2: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	if p := produceRaw(r, 9, 1, "isr", 0, recordBatch(t, 1, 1)); p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("acks=1 is not bound by min.insync.replicas: %v at %d", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}
}

// TestTopicNamedTwice: CreateTopics with a name given twice answers it
// once with INVALID_REQUEST and creates nothing, even when one entry alone
// would be refused by this broker and the other allowed; Metadata's
// auto-creation creates a name asked twice once.
func TestTopicNamedTwice(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	r := dialRaw(t, c.Addrs()[0])
	create := kmsg.NewPtrCreateTopicsRequest()
	create.Version, create.TimeoutMillis = 7, 10000
	for _, rf := range []int16{1, 3} {
		ct := kmsg.NewCreateTopicsRequestTopic()
		ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "dup", 1, rf
		create.Topics = append(create.Topics, ct)
	}
	cresp := r.do(create).(*kmsg.CreateTopicsResponse)
	if len(cresp.Topics) != 1 || cresp.Topics[0].Topic != "dup" || cresp.Topics[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("CreateTopics of a name given twice: %+v, want one INVALID_REQUEST", cresp.Topics)
	}

	md := kmsg.NewPtrMetadataRequest()
	md.Version, md.AllowAutoTopicCreation = 12, true
	for _, name := range []string{"twice", "twice"} {
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(name)
		md.Topics = append(md.Topics, mt)
	}
	for _, mt := range r.do(md).(*kmsg.MetadataResponse).Topics {
		if mt.ErrorCode != 0 {
			t.Fatalf("auto-creating a name asked twice: %s %v", *mt.Topic, kerr.ErrorForCode(mt.ErrorCode))
		}
	}
	if _, ok := c.Brokers[0].Image().Names["dup"]; ok {
		t.Fatal("a name given twice to CreateTopics was created")
	}
}

// TestCreateTopicsRefusalsInKafkasOrder: a topic's errors come in the order
// Kafka checks them (the name, whether it exists, its configs, then where
// its replicas go), so this broker's own refusals (a replication factor
// above 1, __consumer_offsets) come after the controller's checks.
func TestCreateTopicsRefusalsInKafkasOrder(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "exists", 1, nil)
	r := dialRaw(t, c.Addrs()[0])
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.Version, fc.CoordinatorKey = 3, "g"
	r.do(fc) // creates __consumer_offsets
	c.WaitForTopic("__consumer_offsets")
	for _, tc := range []struct {
		name    string
		rf      int16
		configs [][2]string
		want    *kerr.Error
	}{
		{"exists", 3, nil, kerr.TopicAlreadyExists},
		{"bad name", 3, nil, kerr.InvalidTopicException},
		{"__consumer_offsets", -1, nil, kerr.TopicAlreadyExists},
		{"__consumer_offsets", 3, [][2]string{{"retention.ms", "soon"}}, kerr.TopicAlreadyExists},
		{"bad-config", 3, [][2]string{{"retention.ms", "soon"}}, kerr.InvalidConfig},
		{"three-replicas", 3, [][2]string{{"retention.ms", "1000"}}, kerr.InvalidReplicationFactor},
	} {
		got := createTopicV7(r, tc.name, -1, tc.rf, false, tc.configs...)
		if got.ErrorCode != tc.want.Code || got.ErrorMessage == nil {
			msg := "no message"
			if got.ErrorMessage != nil {
				msg = *got.ErrorMessage
			}
			t.Errorf("CreateTopics %q rf=%d configs %v: %s (%s), want %s with a message", tc.name, tc.rf, tc.configs, code(got.ErrorCode), msg, tc.want.Message)
		}
	}
	for _, name := range []string{"bad-config", "three-replicas"} {
		if _, ok := c.Brokers[0].Image().Names[name]; ok {
			t.Errorf("%s was created", name)
		}
	}
}

// TestProduceTimestampBounds: message.timestamp.before.max.ms and
// after.max.ms refuse CreateTime batches timestamped too far from the
// broker's clock (INVALID_TIMESTAMP); LogAppendTime topics stamp their own.
func TestProduceTimestampBounds(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	bounds := map[string]*string{"message.timestamp.before.max.ms": kmsg.StringPtr("3600000"), "message.timestamp.after.max.ms": kmsg.StringPtr("60000")}
	createTopic(t, c, "bounded", 1, bounds)
	bounds["message.timestamp.type"] = kmsg.StringPtr("LogAppendTime")
	createTopic(t, c, "stamped", 1, bounds)
	r := dialRaw(t, c.Addrs()[0])
	at := func(ts time.Time) []byte {
		bld := batch.NewBuilder(batch.DefaultBuilderOptions())
		bld.Add(ts.UnixMilli(), nil, []byte("v"), nil)
		b, err := bld.AppendBatch(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	now := time.Now()
	for _, tc := range []struct {
		topic string
		ts    time.Time
		want  int16
	}{
		{"bounded", now, 0},
		{"bounded", now.Add(-30 * time.Minute), 0},
		{"bounded", now.Add(-2 * time.Hour), kerr.InvalidTimestamp.Code},
		{"bounded", now.Add(10 * time.Minute), kerr.InvalidTimestamp.Code},
		{"stamped", now.Add(-2 * time.Hour), 0},
	} {
		if p := produceRaw(r, 9, 1, tc.topic, 0, at(tc.ts)); p.ErrorCode != tc.want {
			t.Errorf("%s, timestamp %v from now: %v, want %v", tc.topic, tc.ts.Sub(now).Round(time.Minute), kerr.ErrorForCode(p.ErrorCode), kerr.ErrorForCode(tc.want))
		}
	}
	// Every record is checked, not only the batch's first and largest
	// timestamps: the second record here is older than the first. Its
	// index comes back in record_errors.
	bld := batch.NewBuilder(batch.DefaultBuilderOptions())
	bld.Add(now.UnixMilli(), nil, []byte("v"), nil)
	bld.Add(now.Add(-2*time.Hour).UnixMilli(), nil, []byte("v"), nil)
	older, err := bld.AppendBatch(nil)
	if err != nil {
		t.Fatal(err)
	}
	p := produceRaw(r, 9, 1, "bounded", 0, older)
	if p.ErrorCode != kerr.InvalidTimestamp.Code || len(p.ErrorRecords) != 1 || p.ErrorRecords[0].RelativeOffset != 1 {
		t.Fatalf("a second record two hours old: %v, record errors %+v", kerr.ErrorForCode(p.ErrorCode), p.ErrorRecords)
	}
}

// TestProduceTimestampAndKeyChecksAsKafka: Kafka's LogValidator checks a
// record's timestamp only once its key passes, so a keyless record on a
// compacted topic that is also too old is one INVALID_RECORD, where Gregor
// listed it twice and answered INVALID_TIMESTAMP. And the append time is
// the broker's to set: a producer's batch marked LogAppendTime is
// INVALID_TIMESTAMP on a LogAppendTime topic, and on a CreateTime one when
// its records read no time (a LogAppendTime batch's records all read as
// its largest timestamp, here -1); Gregor stored both.
func TestProduceTimestampAndKeyChecksAsKafka(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "compacted", 1, map[string]*string{"cleanup.policy": kmsg.StringPtr("compact"),
		"message.timestamp.before.max.ms": kmsg.StringPtr("3600000")})
	createTopic(t, c, "appendtime", 1, map[string]*string{"message.timestamp.type": kmsg.StringPtr("LogAppendTime")})
	createTopic(t, c, "createtime", 1, nil)
	r := dialRaw(t, c.Addrs()[0])

	bld := batch.NewBuilder(batch.DefaultBuilderOptions())
	bld.Add(time.Now().Add(-2*time.Hour).UnixMilli(), nil, []byte("v"), nil)
	p := produceRaw(r, 9, -1, "compacted", 0, must(bld.AppendBatch(nil)))
	if p.ErrorCode != kerr.InvalidRecord.Code || len(p.ErrorRecords) != 1 {
		t.Errorf("one keyless record two hours old: %v, record errors %+v; want INVALID_RECORD, one record error",
			kerr.ErrorForCode(p.ErrorCode), p.ErrorRecords)
	}

	markedAppendTime := func(maxTs int64) []byte {
		b := recordBatch(t, 2, 4)
		h := batch.Header(b)
		binary.BigEndian.PutUint16(b[21:], uint16(h.Attributes())|0x08) // timestamp type: LogAppendTime
		binary.BigEndian.PutUint64(b[35:], uint64(maxTs))
		h.SetCRC()
		if !h.LogAppendTime() || h.MaxTimestamp() != maxTs {
			t.Fatalf("batch as built: LogAppendTime %v, max timestamp %d", h.LogAppendTime(), h.MaxTimestamp())
		}
		return b
	}
	for _, tc := range []struct {
		topic string
		maxTs int64
		want  int16
	}{
		{"appendtime", time.Now().UnixMilli(), kerr.InvalidTimestamp.Code},
		{"createtime", -1, kerr.InvalidTimestamp.Code},
		{"createtime", time.Now().UnixMilli(), 0}, // its records read the batch's time, which is in range
	} {
		p := produceRaw(r, 9, 1, tc.topic, 0, markedAppendTime(tc.maxTs))
		if p.ErrorCode != tc.want || tc.want != 0 && len(p.ErrorRecords) != 2 {
			t.Errorf("a batch marked LogAppendTime, max timestamp %d, to %s: %v, record errors %+v; want %v",
				tc.maxTs, tc.topic, kerr.ErrorForCode(p.ErrorCode), p.ErrorRecords, kerr.ErrorForCode(tc.want))
		}
	}
}

// TestProduceRecordChecks: a compressed batch whose records carry offset
// deltas other than 0, 1, 2, … is stored renumbered, as Kafka's validator
// rebuilds it (since KAFKA-9669; Gregor refused it with INVALID_RECORD),
// whether the topic keeps the producer's codec or recompresses; and a
// batch whose header's largest timestamp disagrees with its records is
// stored with the records' largest, as Kafka's validator rewrites it.
func TestProduceRecordChecks(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "t", 1, nil)
	createTopic(t, c, "tz", 1, map[string]*string{"compression.type": kmsg.StringPtr("zstd")})
	r := dialRaw(t, c.Addrs()[0])
	fetch := func(topic string, offset int64) []byte { return fetchOnce(r, topic, offset, 0, 0).RecordBatches }

	three := recordBatch(t, 3, 10)
	var section []byte
	for i, delta := range []int32{0, 1, 3} {
		section = batch.AppendRecord(section, &batch.Record{TimestampDelta: int64(i), OffsetDelta: delta, Value: []byte{'a' + byte(i)}})
	}
	for topic, codec := range map[string]batch.Codec{"t": batch.CodecSnappy, "tz": batch.CodecZstd} {
		p := produceRaw(r, 9, 1, topic, 0, withSection(t, three, batch.CodecSnappy, section))
		if p.ErrorCode != 0 || p.BaseOffset != 0 {
			t.Fatalf("%s: offset deltas 0, 1, 3 compressed: %v at %d, record errors %+v", topic, kerr.ErrorForCode(p.ErrorCode), p.BaseOffset, p.ErrorRecords)
		}
		got := fetch(topic, 0)
		h := batch.Header(got)
		if err := batch.Validate(got, 0); err != nil || h.Codec() != codec {
			t.Fatalf("%s: stored batch: %v, codec %v, want %v", topic, err, h.Codec(), codec)
		}
		records := must(batch.Decompress(h.Codec(), nil, h.Records(), 1<<20))
		rr := batch.NewRecordReader(records, h.RecordCount())
		var rec batch.Record
		for i := int32(0); rr.Next(&rec); i++ {
			if rec.OffsetDelta != i || string(rec.Value) != string(rune('a'+i)) || rec.TimestampDelta != int64(i) {
				t.Errorf("%s: stored record %d: offset delta %d, value %q, timestamp delta %d", topic, i, rec.OffsetDelta, rec.Value, rec.TimestampDelta)
			}
		}
		if err := rr.Err(); err != nil {
			t.Fatalf("%s: reading the stored records: %v", topic, err)
		}
	}

	wrongMax := recordBatch(t, 3, 10)
	h := batch.Header(wrongMax)
	want := h.MaxTimestamp()
	h.SetMaxTimestamp(want + 1e6)
	if p := produceRaw(r, 9, 1, "t", 0, wrongMax); p.ErrorCode != 0 || p.BaseOffset != 3 {
		t.Fatalf("a batch with a wrong max timestamp: %v at %d", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}
	got := fetch("t", 3)
	if err := batch.Validate(got, 0); err != nil || batch.Header(got).MaxTimestamp() != want {
		t.Fatalf("stored batch: %v, max timestamp %d, want %d", err, batch.Header(got).MaxTimestamp(), want)
	}
}

// TestProduceLogAppendTimeBitOnCreateTimeTopic: a producer's batch that
// says LogAppendTime (attribute bit 3) on a CreateTime topic is stored as
// CreateTime, as Kafka's validator stores it (setMaxTimestamp with the
// topic's timestamp type): else consumers, and the log's search by time,
// would read every record's timestamp as the batch's largest. So it is
// when the topic recompresses the batch, too.
func TestProduceLogAppendTimeBitOnCreateTimeTopic(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "ct", 1, nil)
	createTopic(t, c, "ctz", 1, map[string]*string{"compression.type": kmsg.StringPtr("zstd")})
	r := dialRaw(t, c.Addrs()[0])
	t0 := time.Now().UnixMilli()
	for _, topic := range []string{"ct", "ctz"} {
		bld := batch.NewBuilder(batch.DefaultBuilderOptions())
		for i := range int64(3) {
			bld.Add(t0+10*i, nil, []byte("v"), nil)
		}
		b := must(bld.AppendBatch(nil))
		h := batch.Header(b)
		binary.BigEndian.PutUint16(b[21:], uint16(h.Attributes())|0x08) // LogAppendTime
		h.SetCRC()
		if !h.LogAppendTime() || h.MaxTimestamp() != t0+20 {
			t.Fatalf("the batch as produced: LogAppendTime %v, max %d", h.LogAppendTime(), h.MaxTimestamp())
		}
		if p := produceRaw(r, 9, 1, topic, 0, b); p.ErrorCode != 0 || p.LogAppendTime != -1 {
			t.Fatalf("%s: %v, log_append_time %d", topic, kerr.ErrorForCode(p.ErrorCode), p.LogAppendTime)
		}

		got := fetchOnce(r, topic, 0, 0, 0).RecordBatches
		if err := batch.Validate(got, 0); err != nil {
			t.Fatalf("%s: stored batch: %v", topic, err)
		}
		sh := batch.Header(got)
		if sh.LogAppendTime() || sh.MaxTimestamp() != t0+20 {
			t.Errorf("%s: stored with LogAppendTime %v, max timestamp %d; want CreateTime, %d", topic, sh.LogAppendTime(), sh.MaxTimestamp(), t0+20)
		}
		if want := map[string]batch.Codec{"ct": batch.CodecNone, "ctz": batch.CodecZstd}[topic]; sh.Codec() != want {
			t.Errorf("%s: stored as %s, want %s", topic, sh.Codec(), want)
		}
		lo := r.do(listOffsetsRequest(7, topic, 1, t0+5)).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
		if lo.ErrorCode != 0 || lo.Offset != 1 || lo.Timestamp != t0+10 {
			t.Errorf("%s: the first record at or after %d: offset %d, timestamp %d (%v); want 1, %d", topic, t0+5, lo.Offset, lo.Timestamp, kerr.ErrorForCode(lo.ErrorCode), t0+10)
		}
	}
}

// TestProduceAnswersLikeKafka: the corners of a Produce answer where Kafka
// has a rule: every record that fails is listed in record_errors; errors
// after the partition was found carry its log start offset; a partition
// named twice is appended once, with its last batch; a batch's baseOffset
// must be 0; a transactional_id on plain batches is no error; and
// InitProducerId refuses an empty transactional id as INVALID_REQUEST.
func TestProduceAnswersLikeKafka(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "t", 2, nil)
	createTopic(t, c, "cmp", 1, map[string]*string{"cleanup.policy": kmsg.StringPtr("compact"),
		"message.timestamp.before.max.ms": kmsg.StringPtr("3600000")})
	r := dialRaw(t, c.Addrs()[0])

	// Two keyless records on a compacted topic: both listed.
	p := produceRaw(r, 9, -1, "cmp", 0, recordBatch(t, 2, 4))
	if p.ErrorCode != kerr.InvalidRecord.Code || len(p.ErrorRecords) != 2 || p.ErrorRecords[0].RelativeOffset != 0 || p.ErrorRecords[1].RelativeOffset != 1 {
		t.Fatalf("two keyless records on a compacted topic: %v, record errors %+v", kerr.ErrorForCode(p.ErrorCode), p.ErrorRecords)
	}
	if p.LogStartOffset != 0 {
		t.Fatalf("INVALID_RECORD with log_start_offset %d, want the partition's 0", p.LogStartOffset)
	}
	// A keyless record and an old one: the timestamp decides the code.
	bld := batch.NewBuilder(batch.DefaultBuilderOptions())
	bld.Add(time.Now().UnixMilli(), nil, []byte("v"), nil)
	bld.Add(time.Now().Add(-2*time.Hour).UnixMilli(), []byte("k"), []byte("v"), nil)
	if p := produceRaw(r, 9, -1, "cmp", 0, must(bld.AppendBatch(nil))); p.ErrorCode != kerr.InvalidTimestamp.Code || len(p.ErrorRecords) != 2 {
		t.Fatalf("a keyless and an old record: %v, record errors %+v", kerr.ErrorForCode(p.ErrorCode), p.ErrorRecords)
	}

	// An out-of-order sequence carries the log start offset too; an
	// unknown partition does not.
	produceRaw(r, 9, -1, "t", 0, idempotentBatch(t, 5, 0, 0, 1))
	if p := produceRaw(r, 9, -1, "t", 0, idempotentBatch(t, 5, 0, 9, 1)); p.ErrorCode != kerr.OutOfOrderSequenceNumber.Code || p.LogStartOffset != 0 {
		t.Fatalf("out of order: %v, log_start_offset %d", kerr.ErrorForCode(p.ErrorCode), p.LogStartOffset)
	}
	if p := produceRaw(r, 9, -1, "t", 7, recordBatch(t, 1, 1)); p.LogStartOffset != -1 {
		t.Fatalf("unknown partition: log_start_offset %d, want -1", p.LogStartOffset)
	}

	// Partition 1 named twice, topic t twice: one answer each, the last
	// batch (two records) appended alone.
	req := produceRequest(9, -1, producePart{"t", 1, recordBatch(t, 1, 1)}, producePart{"t", 1, recordBatch(t, 2, 1)})
	other := kmsg.NewProduceRequestTopic()
	other.Topic = "t"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = 0, recordBatch(t, 1, 1)
	other.Partitions = append(other.Partitions, rp)
	req.Topics = append(req.Topics, other)
	resp := r.do(req).(*kmsg.ProduceResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 2 {
		t.Fatalf("answers: %+v, want one topic with partitions 1 and 0", resp.Topics)
	}
	if p := produceRaw(r, 9, -1, "t", 1, recordBatch(t, 1, 1)); p.BaseOffset != 2 {
		t.Fatalf("partition 1's next offset %d, want 2: only the last batch named is appended", p.BaseOffset)
	}

	offset77 := recordBatch(t, 1, 1)
	binary.BigEndian.PutUint64(offset77, 77)
	if p := produceRaw(r, 9, -1, "t", 0, offset77); p.ErrorCode != kerr.InvalidRecord.Code {
		t.Fatalf("baseOffset 77: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	req = produceRequest(9, -1, producePart{"t", 0, recordBatch(t, 1, 1)})
	req.TransactionID = kmsg.StringPtr("tx")
	if p := r.do(req).(*kmsg.ProduceResponse).Topics[0].Partitions[0]; p.ErrorCode != 0 {
		t.Fatalf("transactional_id with a plain batch: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.Version, ip.TransactionalID = 4, kmsg.StringPtr("")
	if resp := r.do(ip).(*kmsg.InitProducerIDResponse); resp.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("InitProducerId with transactional_id \"\": %v", kerr.ErrorForCode(resp.ErrorCode))
	}
}

// TestProduceLogStartOffsetLikeKafka: a failed partition's answer carries
// its log start offset exactly when Kafka's does: not for what Kafka refuses
// before it looks at a log (invalid acks, an unknown topic or partition, a
// partition led elsewhere, the internal offsets topic, an empty or
// multi-batch records field, zstd before v7) nor for the exceptions it
// answers with UNKNOWN_LOG_APPEND_INFO (a corrupt or oversized batch); for
// every other failure, yes.
func TestProduceLogStartOffsetLikeKafka(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "t", 1, nil)
	createTopic(t, c, "isr", 1, map[string]*string{"min.insync.replicas": kmsg.StringPtr("2")})
	r := dialRaw(t, c.Addrs()[0])
	produceRaw(r, 9, -1, "t", 0, idempotentBatch(t, 5, 0, 0, 1))
	corrupt := recordBatch(t, 1, 1)
	corrupt[len(corrupt)-1] ^= 1
	offset7 := recordBatch(t, 1, 1)
	binary.BigEndian.PutUint64(offset7, 7)
	// Base offset 7 and a bad CRC: Kafka's log checks the offset first.
	offset7Corrupt := slices.Clone(offset7)
	offset7Corrupt[len(offset7Corrupt)-1] ^= 1
	withMagic := func(m byte) []byte {
		b := recordBatch(t, 1, 1)
		b[16] = m
		return b
	}
	tiny := recordBatch(t, 1, 1)
	binary.BigEndian.PutUint32(tiny[8:], 13)
	for _, tc := range []struct {
		name      string
		version   int16
		acks      int16
		topic     string
		partition int32
		records   []byte
		code      *kerr.Error
		logStart  int64
	}{
		{"acks 2", 9, 2, "t", 0, recordBatch(t, 1, 1), kerr.InvalidRequiredAcks, -1},
		{"unknown partition", 9, -1, "t", 7, recordBatch(t, 1, 1), kerr.UnknownTopicOrPartition, -1},
		{"internal topic", 9, -1, "__consumer_offsets", 0, recordBatch(t, 1, 1), nil, -1},
		{"no records", 9, -1, "t", 0, []byte{}, kerr.InvalidRecord, -1},
		{"two batches", 9, -1, "t", 0, append(recordBatch(t, 1, 1), recordBatch(t, 1, 1)...), kerr.InvalidRecord, -1},
		{"a second batch of length 13", 9, -1, "t", 0, append(recordBatch(t, 1, 1), tiny[:12]...), kerr.CorruptMessage, -1},
		{"a second batch of magic 5", 9, -1, "t", 0, append(recordBatch(t, 1, 1), withMagic(5)[:17]...), kerr.CorruptMessage, -1},
		{"zstd in v6", 6, -1, "t", 0, codecBatch(t, batch.CodecZstd, 1, 1), kerr.UnsupportedCompressionType, -1},
		{"bad CRC", 9, -1, "t", 0, corrupt, kerr.CorruptMessage, -1},
		{"truncated batch", 9, -1, "t", 0, corrupt[:40], kerr.InvalidRecord, -1},
		{"magic 1", 9, -1, "t", 0, withMagic(1), kerr.InvalidRecord, -1},
		{"magic 5", 9, -1, "t", 0, withMagic(5), kerr.CorruptMessage, -1},
		{"batch length 13", 9, -1, "t", 0, tiny, kerr.CorruptMessage, -1},
		{"magic 1 with acks 2", 9, 2, "t", 0, withMagic(1), kerr.InvalidRecord, -1},
		{"base offset 7 and a bad CRC", 9, -1, "t", 0, offset7Corrupt, kerr.InvalidRecord, 0},
		{"base offset 7", 9, -1, "t", 0, offset7, kerr.InvalidRecord, 0},
		{"sequence gap", 9, -1, "t", 0, idempotentBatch(t, 5, 0, 9, 1), kerr.OutOfOrderSequenceNumber, 0},
		{"ISR below min.insync.replicas", 9, -1, "isr", 0, recordBatch(t, 1, 1), kerr.NotEnoughReplicas, 0},
	} {
		p := produceRaw(r, tc.version, tc.acks, tc.topic, tc.partition, tc.records)
		if tc.code != nil && p.ErrorCode != tc.code.Code || p.ErrorCode == 0 {
			t.Errorf("%s: %v, want %v", tc.name, kerr.ErrorForCode(p.ErrorCode), tc.code)
		}
		if p.LogStartOffset != tc.logStart || p.BaseOffset != -1 {
			t.Errorf("%s: log_start_offset %d and base_offset %d, want %d and -1", tc.name, p.LogStartOffset, p.BaseOffset, tc.logStart)
		}
	}
}

// TestProduceTrimsBytesAfterTheBatch: bytes after a Produce partition's batch
// that are no whole batch end Kafka's iteration; Kafka appends the batch
// without them, and so does Gregor, where it once refused the request.
func TestProduceTrimsBytesAfterTheBatch(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "t", 1, nil)
	r := dialRaw(t, c.Addrs()[0])
	next := recordBatch(t, 1, 1)
	for i, tail := range [][]byte{
		{0, 0, 0, 0, 0},    // too short for a batch's length
		next[:16],          // its length, not yet its magic
		next[:len(next)-1], // one byte short of the length it announces
	} {
		p := produceRaw(r, 9, -1, "t", 0, append(recordBatch(t, 2, 1), tail...))
		if p.ErrorCode != 0 || p.BaseOffset != int64(2*i) {
			t.Fatalf("a batch and %d bytes after it: %v at offset %d, want offset %d", len(tail), kerr.ErrorForCode(p.ErrorCode), p.BaseOffset, 2*i)
		}
	}
	// The log holds the three batches, whole, and nothing between them: a
	// fetch returns them back to back, each checked.
	f := fetchOnce(r, "t", 0, 0, 0)
	if f.ErrorCode != 0 || f.HighWatermark != 6 {
		t.Fatalf("fetch: %v, high watermark %d, want 6", kerr.ErrorForCode(f.ErrorCode), f.HighWatermark)
	}
	var n int
	for rest := f.RecordBatches; len(rest) > 0; n++ {
		size := batch.Header(rest).Size()
		if size > len(rest) {
			t.Fatalf("batch %d: %d bytes announced, %d left", n, size, len(rest))
		}
		if err := batch.Validate(rest[:size], 0); err != nil {
			t.Fatalf("batch %d: %v", n, err)
		}
		if got := batch.Header(rest).BaseOffset(); got != int64(2*n) {
			t.Fatalf("batch %d at offset %d, want %d", n, got, 2*n)
		}
		rest = rest[size:]
	}
	if n != 3 {
		t.Fatalf("fetched %d batches, want 3", n)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
