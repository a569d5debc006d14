package broker_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/batch"
	"gregor/broker"
	"gregor/internal/kshape"
	"gregor/internal/testcluster"
	"gregor/netio"
)

// FuzzRequest hands the broker request frames built from a fuzzed API key,
// version and body, as netio would, and checks what Kafka's broker
// promises for any input: Serve answers every request (a response, nothing
// for acks=0, or a closed connection for one it cannot decode), within a
// bound, and every response decodes as its API's response of the request's
// version with the request's correlation id. A panic anywhere in the
// broker fails the target too, since it ends the process.
//
// The seeds are a well-formed request of every API at its oldest and
// newest version, naming a topic that holds records, so that mutations
// start from requests that reach the handlers' logic rather than dying in
// the decoder. The broker is one node, its topics made up front.
//
// Some requests are kept inside the sandbox the target needs: admin
// requests that create or delete topics or change configs are skipped
// (over a long run they would make topics and files without bound; their
// bad input has tests of its own), and waits the request asks for (a
// fetch's max_wait_ms, a group's session and rebalance timeouts) are
// shortened so that each input is answered in well under the bound. What
// the accepted requests leave behind (records appended to "t", groups and
// their offsets under fuzzed names) grows with the run, a few bytes per
// input, which a bounded -fuzztime keeps small.
func FuzzRequest(f *testing.F) {
	c := testcluster.Start(f, 1, func(_ int, cfg *broker.Config) {
		cfg.AutoCreateTopicsEnable = false
	})
	seedTopics(f, c)
	b := c.Brokers[0]

	var corr int32
	serve := func(t testing.TB, key, version int16, body []byte) (resp []byte) {
		corr++
		frame := requestFrame(key, version, corr, body)
		// The bound covers Serve itself, which decodes the request and
		// runs the inline handlers, as well as the answer.
		answered := make(chan netio.Response, 1)
		served := make(chan struct{})
		go func() {
			defer close(served)
			b.Serve(&netio.Request{Frame: frame, ConnID: 1, RemoteAddr: fuzzRemote}, func(r netio.Response) { answered <- r })
		}()
		var r netio.Response
		deadline := time.After(20 * time.Second)
		for got, returned := false, false; !got || !returned; {
			select {
			case r = <-answered:
				got = true
			case <-served:
				served, returned = nil, true
			case <-deadline:
				t.Fatalf("%s v%d: Serve returned: %v, answered: %v, after 20 s", kmsg.NameForKey(key), version, returned, got)
			}
		}
		if r.Done != nil {
			defer r.Done()
		}
		if r.NoResponse {
			if len(r.Parts) != 0 {
				t.Fatalf("%s v%d: a response marked NoResponse has %d parts", kmsg.NameForKey(key), version, len(r.Parts))
			}
			return nil
		}
		resp = responseBytes(t, r)
		checkResponse(t, key, version, corr, resp)
		return resp
	}

	// Every seed at the oldest and the newest version the broker
	// advertises.
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	av.ClientSoftwareName, av.ClientSoftwareVersion = "fuzz", "1"
	var versions kmsg.ApiVersionsResponse
	versions.Version = 3
	if err := versions.ReadFrom(serve(f, av.Key(), av.Version, av.AppendTo(nil))[8:]); err != nil {
		f.Fatal(err)
	}
	for _, req := range fuzzSeedRequests() {
		for _, k := range versions.ApiKeys {
			if k.ApiKey == req.Key() {
				for _, v := range []int16{k.MinVersion, k.MaxVersion} {
					req.SetVersion(v)
					body := req.AppendTo(nil)
					// A seed the broker refuses would only
					// fuzz the decoder.
					if serve(f, req.Key(), v, body) == nil {
						f.Fatalf("seed %s v%d was not answered", kmsg.NameForKey(req.Key()), v)
					}
					f.Add(req.Key(), v, body)
				}
			}
		}
	}
	f.Add(int16(77), int16(0), []byte{}) // an API the broker does not speak

	f.Fuzz(func(t *testing.T, key, version int16, body []byte) {
		body, ok := sandbox(key, version, body)
		if !ok {
			t.Skip("outside the sandbox")
		}
		serve(t, key, version, body)
	})
}

var fuzzRemote = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}

// sandbox returns the body to send for a fuzzed request, or false for a
// request the target does not send (FuzzRequest). A body that does not
// decode is sent as it is: the broker must refuse it.
func sandbox(key, version int16, body []byte) ([]byte, bool) {
	req := kmsg.RequestForKey(key)
	if req == nil {
		return body, true
	}
	req.SetVersion(version)
	// Decoded only once kshape has passed it, as the broker does: kmsg
	// alone can take minutes over a few bytes.
	if kshape.Check(key, version, body) != nil || req.ReadFrom(body) != nil {
		return body, true
	}
	switch req := req.(type) {
	case *kmsg.CreateTopicsRequest, *kmsg.DeleteTopicsRequest, *kmsg.CreatePartitionsRequest,
		*kmsg.IncrementalAlterConfigsRequest, *kmsg.AlterConfigsRequest:
		return nil, false
	case *kmsg.FetchRequest:
		req.MaxWaitMillis = min(req.MaxWaitMillis, 50)
	case *kmsg.JoinGroupRequest:
		req.SessionTimeoutMillis = min(max(req.SessionTimeoutMillis, 500), 1000)
		req.RebalanceTimeoutMillis = min(req.RebalanceTimeoutMillis, 1000)
	default:
		return body, true
	}
	return req.AppendTo(nil), true
}

// requestFrame is a request as netio hands it to Serve: the header (with
// the tag buffer of a flexible version) and the body, without the size.
func requestFrame(key, version int16, corr int32, body []byte) []byte {
	buf := kbin.AppendInt16(nil, key)
	buf = kbin.AppendInt16(buf, version)
	buf = kbin.AppendInt32(buf, corr)
	buf = kbin.AppendNullableString(buf, kmsg.StringPtr("fuzz"))
	if req := kmsg.RequestForKey(key); req != nil {
		req.SetVersion(version)
		if req.IsFlexible() {
			buf = append(buf, 0)
		}
	}
	return append(buf, body...)
}

// responseBytes gathers a response's parts, file regions read from their
// files, into the bytes a client would receive.
func responseBytes(t testing.TB, r netio.Response) []byte {
	var out []byte
	for _, p := range r.Parts {
		if p.File == nil {
			out = append(out, p.Bytes...)
			continue
		}
		region := make([]byte, p.Length)
		if _, err := p.File.ReadAt(region, p.Offset); err != nil {
			t.Fatalf("reading a response's file region [%d, +%d): %v", p.Offset, p.Length, err)
		}
		out = append(out, region...)
	}
	return out
}

// checkResponse checks that a response is framed by its size, carries the
// request's correlation id, and decodes as the API's response.
func checkResponse(t testing.TB, key, version int16, corr int32, resp []byte) {
	name := kmsg.NameForKey(key)
	if len(resp) < 8 || int(binary.BigEndian.Uint32(resp)) != len(resp)-4 {
		t.Fatalf("%s v%d: a response of %d bytes that its size prefix does not frame", name, version, len(resp))
	}
	rd := kbin.Reader{Src: resp[4:]}
	if got := rd.Int32(); got != corr {
		t.Fatalf("%s v%d: correlation id %d, want %d", name, version, got, corr)
	}
	kind := kmsg.ResponseForKey(key)
	if kind == nil {
		t.Fatalf("a response to %s, an API the broker does not speak", name)
	}
	v := version
	if key == kmsg.ApiVersions.Int16() {
		// An ApiVersions request of a version the broker does not
		// speak is answered at v0 (handler.go), and the response
		// header never has tags.
		if v > 3 || v < 0 {
			v = 0
		}
	}
	kind.SetVersion(v)
	if kind.IsFlexible() && key != kmsg.ApiVersions.Int16() {
		kmsg.SkipTags(&rd)
	}
	if err := kind.ReadFrom(rd.Src); err != nil {
		t.Fatalf("%s v%d: the response does not decode: %v", name, version, err)
	}
}

// seedTopics makes the fuzzed broker's topics: "t" of three partitions
// holding records and an idempotent producer's batch, and "cmp", compacted.
func seedTopics(tb testing.TB, c *testcluster.Cluster) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.DefaultProduceTopic("t"))
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, "t"); err != nil {
		tb.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": kmsg.StringPtr("compact")}, "cmp"); err != nil {
		tb.Fatal(err)
	}
	c.WaitForTopic("t")
	c.WaitForTopic("cmp")
	for i := range 30 {
		r := &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%5), Value: fmt.Appendf(nil, "value %d", i)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			tb.Fatal(err)
		}
	}
}

// fuzzSeedRequests is a well-formed request of every API the broker
// speaks, at its newest version, naming the fuzzed broker's topics.
func fuzzSeedRequests() []kmsg.Request {
	bld := batch.NewBuilder(batch.DefaultBuilderOptions())
	bld.Add(time.Now().UnixMilli(), []byte("k"), []byte("v"), nil)
	records, _ := bld.AppendBatch(nil)
	o := batch.DefaultBuilderOptions()
	o.Codec, o.ProducerID, o.ProducerEpoch, o.BaseSequence = batch.CodecGzip, 1, 0, 0
	bld = batch.NewBuilder(o)
	bld.Add(time.Now().UnixMilli(), []byte("k"), []byte("v"), nil)
	idempotent, _ := bld.AppendBatch(nil)

	var reqs []kmsg.Request
	add := func(r kmsg.Request) { reqs = append(reqs, r) }

	av := kmsg.NewPtrApiVersionsRequest()
	av.ClientSoftwareName, av.ClientSoftwareVersion = "fuzz", "1"
	add(av)
	md := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("t")
	md.Topics = append(md.Topics, mt)
	add(md)
	// Versions are set per seed; the builders' are placeholders.
	add(produceRequest(9, -1, producePart{"t", 0, records}))
	add(produceRequest(9, -1, producePart{"t", 1, idempotent}))
	add(fetchRequest(12, "t", 0, 1, 2))
	add(listOffsetsRequest(7, "t", 1, -1, -2, -3, 0))
	add(offsetForLeaderEpochRequest("t", -1, 0))
	add(kmsg.NewPtrInitProducerIDRequest())
	dc := kmsg.NewPtrDescribeConfigsRequest()
	for _, rt := range []struct {
		typ  kmsg.ConfigResourceType
		name string
	}{{kmsg.ConfigResourceTypeTopic, "t"}, {kmsg.ConfigResourceTypeBroker, "1"}} {
		r := kmsg.NewDescribeConfigsRequestResource()
		r.ResourceType, r.ResourceName = rt.typ, rt.name
		dc.Resources = append(dc.Resources, r)
	}
	add(dc)
	add(kmsg.NewPtrDescribeClusterRequest())

	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey, fc.CoordinatorKeys = "g", []string{"g"}
	add(fc)
	jg := kmsg.NewPtrJoinGroupRequest()
	jg.Group, jg.ProtocolType, jg.SessionTimeoutMillis, jg.RebalanceTimeoutMillis = "g", "consumer", 1000, 1000
	gp := kmsg.NewJoinGroupRequestProtocol()
	gp.Name = "range"
	jg.Protocols = append(jg.Protocols, gp)
	add(jg)
	sg := kmsg.NewPtrSyncGroupRequest()
	sg.Group, sg.MemberID = "g", "m"
	add(sg)
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID = "g", "m"
	add(hb)
	lg := kmsg.NewPtrLeaveGroupRequest()
	lg.Group, lg.MemberID = "g", "m"
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.MemberID = "m"
	lg.Members = append(lg.Members, lm)
	add(lg)
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Group, oc.Generation = "g", -1
	ct := kmsg.NewOffsetCommitRequestTopic()
	ct.Topic = "t"
	cp := kmsg.NewOffsetCommitRequestTopicPartition()
	cp.Offset = 1
	ct.Partitions = append(ct.Partitions, cp)
	oc.Topics = append(oc.Topics, ct)
	add(oc)
	of := kmsg.NewPtrOffsetFetchRequest()
	of.Group = "g"
	og := kmsg.NewOffsetFetchRequestGroup()
	og.Group = "g"
	of.Groups = append(of.Groups, og)
	add(of)
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "g"
	dt := kmsg.NewOffsetDeleteRequestTopic()
	dt.Topic = "t"
	dt.Partitions = append(dt.Partitions, kmsg.NewOffsetDeleteRequestTopicPartition())
	od.Topics = append(od.Topics, dt)
	add(od)
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups = []string{"g"}
	add(dg)
	add(kmsg.NewPtrListGroupsRequest())
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = []string{"g"}
	add(del)
	return reqs
}
