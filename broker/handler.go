package broker

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/internal/kshape"
	"gregor/netio"
)

// apiRange is the versions of one API this broker speaks.
type apiRange struct{ min, max int16 }

// apis is what ApiVersions advertises: every API a client may send to a
// broker. The controller-only APIs (BrokerRegistration, BrokerHeartbeat,
// AllocateProducerIds, AlterPartition) are served on the controller listener.
var apis = map[int16]apiRange{
	kmsg.Produce.Int16():                 {3, 9},
	kmsg.Fetch.Int16():                   {4, 13},
	kmsg.ListOffsets.Int16():             {0, 7},
	kmsg.Metadata.Int16():                {0, 12},
	kmsg.OffsetForLeaderEpoch.Int16():    {0, 4},
	kmsg.ApiVersions.Int16():             {0, 3},
	kmsg.CreateTopics.Int16():            {0, 7},
	kmsg.DeleteTopics.Int16():            {0, 6},
	kmsg.InitProducerID.Int16():          {0, 4},
	kmsg.DescribeConfigs.Int16():         {0, 4},
	kmsg.CreatePartitions.Int16():        {0, 3},
	kmsg.IncrementalAlterConfigs.Int16(): {0, 1},
	kmsg.AlterConfigs.Int16():            {0, 2},
	kmsg.UnregisterBroker.Int16():        {0, 0},
	kmsg.DescribeProducers.Int16():       {0, 0},
	kmsg.DescribeCluster.Int16():         {0, 1},
	kmsg.DeleteRecords.Int16():           {0, 2},
	kmsg.DescribeLogDirs.Int16():         {0, 4},
	kmsg.DescribeACLs.Int16():            {0, 3},
	kmsg.CreateACLs.Int16():              {0, 3},
	kmsg.DeleteACLs.Int16():              {0, 3},
	kmsg.FindCoordinator.Int16():         {0, 4},
	kmsg.JoinGroup.Int16():               {0, 9},
	kmsg.SyncGroup.Int16():               {0, 5},
	kmsg.Heartbeat.Int16():               {0, 4},
	kmsg.LeaveGroup.Int16():              {0, 5},
	kmsg.OffsetCommit.Int16():            {2, 9},
	kmsg.OffsetFetch.Int16():             {1, 9},
	kmsg.OffsetDelete.Int16():            {0, 0},
	kmsg.DescribeGroups.Int16():          {0, 6},
	kmsg.ListGroups.Int16():              {0, 5},
	kmsg.DeleteGroups.Int16():            {0, 2},
}

// request is one decoded request and the means to answer it.
type request struct {
	b        *Broker
	key      int16
	version  int16
	corr     int32
	clientID string
	conn     *netio.Request
	start    time.Time
	respond  func(netio.Response)
	cancels  []context.CancelFunc
}

// ctx is a context for work on the request's behalf: it ends after
// timeoutMs (request.timeout.ms when not positive), when the broker closes,
// or once the response is sent.
func (rq *request) ctx(timeoutMs int32) context.Context {
	d := rq.b.cfg.RequestTimeout
	if timeoutMs > 0 {
		d = time.Duration(timeoutMs) * time.Millisecond
	}
	ctx, cancel := rq.b.stopContext(d)
	rq.cancels = append(rq.cancels, cancel)
	return ctx
}

// Serve is the netio handler: it decodes the request header, and answers or
// hands the request to the API's handler. A request that cannot be decoded
// (a short header, an API or version this broker does not speak, a malformed
// body) closes the connection, as Kafka does: there is no response the
// client could tell apart from one to another request. ApiVersions is the
// exception (KIP-511): a too-new version gets UNSUPPORTED_VERSION and the
// ranges this broker speaks. Any request but a Produce first waits for the
// connection's Produce requests to be appended.
func (b *Broker) Serve(nr *netio.Request, respond func(netio.Response)) {
	r := kbin.Reader{Src: nr.Frame}
	key, version, corr := r.Int16(), r.Int16(), r.Int32()
	clientID := r.NullableString()
	if !r.Ok() {
		b.refuse(nr, respond, "a request shorter than its header")
		return
	}
	if key != kmsg.Produce.Int16() {
		// As if the connection had not been read further, as Kafka's is
		// not until it answers: a request sees the appends of the
		// Produce requests sent before it (unfinishedProduces). Its
		// latency starts once it may run.
		b.produces.wait(nr.ConnID, b.stop)
	}
	rq := &request{b: b, key: key, version: version, corr: corr, conn: nr, start: time.Now(), respond: respond}
	if clientID != nil {
		rq.clientID = *clientID
	}
	rng, ok := apis[key]
	if !ok {
		b.refuse(nr, respond, fmt.Sprintf("unknown API key %d", key))
		return
	}
	if version < rng.min || version > rng.max {
		if key == kmsg.ApiVersions.Int16() {
			b.metrics.request(key, len(nr.Frame))
			rq.version = 0
			rq.reply(b.apiVersions(kerr.UnsupportedVersion.Code))
			return
		}
		b.refuse(nr, respond, fmt.Sprintf("%s version %d (this broker speaks %d to %d)", kmsg.NameForKey(key), version, rng.min, rng.max))
		return
	}
	body := kmsg.RequestForKey(key)
	body.SetVersion(version)
	src := r.Src
	if body.IsFlexible() {
		var err error
		if src, err = kshape.SkipTags(src); err != nil {
			b.refuse(nr, respond, fmt.Sprintf("a request header with malformed tagged fields: %v", err))
			return
		}
	}
	// kmsg alone can spend minutes on a few bytes announcing more than
	// they hold (kshape); the walk costs at most the body's size.
	if err := kshape.Check(key, version, src); err != nil {
		b.refuse(nr, respond, fmt.Sprintf("a malformed %s v%d request: %v", kmsg.NameForKey(key), version, err))
		return
	}
	if err := body.ReadFrom(src); err != nil {
		b.refuse(nr, respond, fmt.Sprintf("a malformed %s v%d request: %v", kmsg.NameForKey(key), version, err))
		return
	}
	b.metrics.request(key, len(nr.Frame))
	switch req := body.(type) {
	case *kmsg.ApiVersionsRequest:
		b.handleApiVersions(rq, req)
	case *kmsg.MetadataRequest:
		b.handleMetadata(rq, req)
	case *kmsg.ProduceRequest:
		b.handleProduce(rq, req)
	case *kmsg.FetchRequest:
		b.handleFetch(rq, req)
	case *kmsg.ListOffsetsRequest:
		b.handleListOffsets(rq, req)
	case *kmsg.OffsetForLeaderEpochRequest:
		b.handleOffsetForLeaderEpoch(rq, req)
	case *kmsg.InitProducerIDRequest:
		go b.handleInitProducerID(rq, req)
	case *kmsg.CreateTopicsRequest:
		go b.handleCreateTopics(rq, req)
	case *kmsg.DeleteTopicsRequest:
		go b.handleDeleteTopics(rq, req)
	case *kmsg.CreatePartitionsRequest:
		go b.handleCreatePartitions(rq, req)
	case *kmsg.DescribeConfigsRequest:
		b.handleDescribeConfigs(rq, req)
	case *kmsg.IncrementalAlterConfigsRequest:
		go b.handleIncrementalAlterConfigs(rq, req)
	case *kmsg.AlterConfigsRequest:
		go b.handleAlterConfigs(rq, req)
	case *kmsg.UnregisterBrokerRequest:
		go b.handleUnregisterBroker(rq, req)
	case *kmsg.DescribeProducersRequest:
		go b.handleDescribeProducers(rq, req)
	case *kmsg.DescribeClusterRequest:
		b.handleDescribeCluster(rq, req)
	case *kmsg.DeleteRecordsRequest:
		go b.handleDeleteRecords(rq, req)
	case *kmsg.DescribeLogDirsRequest:
		go b.handleDescribeLogDirs(rq, req)
	case *kmsg.DescribeACLsRequest:
		b.handleDescribeACLs(rq, req)
	case *kmsg.CreateACLsRequest:
		b.handleCreateACLs(rq, req)
	case *kmsg.DeleteACLsRequest:
		b.handleDeleteACLs(rq, req)
	case *kmsg.FindCoordinatorRequest:
		go b.handleFindCoordinator(rq, req)
	case *kmsg.JoinGroupRequest:
		b.handleJoinGroup(rq, req)
	case *kmsg.SyncGroupRequest:
		b.handleSyncGroup(rq, req)
	case *kmsg.HeartbeatRequest:
		b.handleHeartbeat(rq, req)
	case *kmsg.LeaveGroupRequest:
		b.handleLeaveGroup(rq, req)
	case *kmsg.OffsetCommitRequest:
		b.handleOffsetCommit(rq, req)
	case *kmsg.OffsetFetchRequest:
		go b.handleOffsetFetch(rq, req)
	case *kmsg.OffsetDeleteRequest:
		b.handleOffsetDelete(rq, req)
	case *kmsg.DescribeGroupsRequest:
		go b.handleDescribeGroups(rq, req)
	case *kmsg.ListGroupsRequest:
		go b.handleListGroups(rq, req)
	case *kmsg.DeleteGroupsRequest:
		go b.handleDeleteGroups(rq, req)
	default:
		b.refuse(nr, respond, fmt.Sprintf("%s has no handler", kmsg.NameForKey(key)))
	}
}

// refuse closes the connection of a request that cannot be answered.
func (b *Broker) refuse(nr *netio.Request, respond func(netio.Response), why string) {
	b.logger.Warn("closing a connection after an undecodable request", "remote", nr.RemoteAddr, "reason", why)
	b.metrics.refused.Add(1)
	respond(netio.Response{NoResponse: true, CloseAfter: true})
}

// reply encodes resp (of the request's version) behind the response header
// and sends it.
func (rq *request) reply(resp kmsg.Response) {
	rq.send(netio.Response{Parts: []netio.Part{{Bytes: encodeResponse(rq.corr, rq.version, resp)}}})
}

// send sends a response and records the request's latency.
func (rq *request) send(r netio.Response) {
	for _, cancel := range rq.cancels {
		cancel()
	}
	rq.b.metrics.observe(rq.key, time.Since(rq.start), r.Parts)
	rq.respond(r)
}

// encodeResponse frames resp: the size, the correlation id, the header's
// tag buffer for flexible versions (but never for ApiVersions, whose header
// stays v0 so a client can read it before it knows the versions), the body.
func encodeResponse(corr int32, version int16, resp kmsg.Response) []byte {
	resp.SetVersion(version)
	buf := make([]byte, 4, 256)
	buf = kbin.AppendInt32(buf, corr)
	if resp.IsFlexible() && resp.Key() != kmsg.ApiVersions.Int16() {
		buf = append(buf, 0)
	}
	buf = resp.AppendTo(buf)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	return buf
}

// softwareNameOrVersion is what a client_software_name or
// client_software_version must match (KIP-511): letters and digits at
// both ends, and '-' and '.' between.
var softwareNameOrVersion = regexp.MustCompile(`^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$`)

// handleApiVersions answers with every API and its versions, or, from v3,
// when the client's software name or version is not one KIP-511 allows,
// with INVALID_REQUEST and no APIs, as Kafka's ApiVersionsRequest.isValid
// and getErrorResponse do.
func (b *Broker) handleApiVersions(rq *request, req *kmsg.ApiVersionsRequest) {
	if req.Version >= 3 && (!softwareNameOrVersion.MatchString(req.ClientSoftwareName) || !softwareNameOrVersion.MatchString(req.ClientSoftwareVersion)) {
		rq.log().Info("refusing ApiVersions: client_software_name and client_software_version must match "+softwareNameOrVersion.String(),
			"client_software_name", req.ClientSoftwareName, "client_software_version", req.ClientSoftwareVersion)
		resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
		resp.ErrorCode = kerr.InvalidRequest.Code
		rq.reply(resp)
		return
	}
	rq.reply(b.apiVersions(0))
}

// apiVersions is the ApiVersions response: every API and its versions.
func (b *Broker) apiVersions(code int16) *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.ErrorCode = code
	for key := range int16(kmsg.MaxKey + 1) {
		rng, ok := apis[key]
		if !ok {
			continue
		}
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = key, rng.min, rng.max
		resp.ApiKeys = append(resp.ApiKeys, k)
	}
	return resp
}

func (rq *request) log() *slog.Logger {
	return rq.b.logger.With("api", kmsg.NameForKey(rq.key), "version", rq.version, "client", rq.clientID)
}
