package client

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The versions this client speaks, per API key: it uses the highest version
// both it and the broker speak, and refuses brokers below the minimum. Produce
// v3 is the first with RecordBatch v2; Fetch v4 the first that returns it.
var ourVersions = map[int16]struct{ min, max int16 }{
	kmsg.Produce.Int16():        {3, 9},
	kmsg.Fetch.Int16():          {4, 13},
	kmsg.ListOffsets.Int16():    {1, 7},
	kmsg.Metadata.Int16():       {1, 12},
	kmsg.ApiVersions.Int16():    {0, 3},
	kmsg.InitProducerID.Int16(): {0, 4},
}

const (
	// softwareName and softwareVersion go in ApiVersions v3+ (KIP-511).
	softwareName    = "gregor-client"
	softwareVersion = "0.1.0"
	// defaultMaxResponseBytes bounds one response frame: a broker that sends
	// a larger length is treated as broken rather than trusted with memory.
	defaultMaxResponseBytes = 100 << 20
	// maxKeptWriteBuffer is the largest write buffer a connection keeps
	// between requests.
	maxKeptWriteBuffer = 2 << 20
)

var (
	// ErrClosed is returned by a closed Producer or Consumer.
	ErrClosed = errors.New("client: closed")
	// ErrCloseInCallback is returned by a Producer's Close called from a
	// produce callback, which closes without waiting (see Close).
	ErrCloseInCallback = errors.New("client: Close called from a callback: it did not wait for the records not yet acknowledged")
	// ErrFlushInCallback is returned by a Producer's Flush called from a
	// produce callback, where it would wait on itself.
	ErrFlushInCallback = errors.New("client: Flush called from a callback, where it would wait on itself")
	// errConnClosed ends the calls of a connection the client closed.
	errConnClosed = errors.New("connection closed")
	// ErrUnsupportedVersion is returned when a broker does not speak a
	// version of an API this client needs.
	ErrUnsupportedVersion = errors.New("client: broker does not support a needed API version")
)

// ConnError is a failure of a connection to a broker (dial, write, read,
// request timeout): every request in flight on it fails with one, and all of
// them are retriable.
type ConnError struct {
	Addr string
	Node int32
	Err  error
}

func (e *ConnError) Error() string {
	return fmt.Sprintf("client: connection to broker %d at %s: %v", e.Node, e.Addr, e.Err)
}

func (e *ConnError) Unwrap() error { return e.Err }

// errRequestTimeout is why a connection dies when a response does not come
// within request.timeout.ms, as the Java client closes the connection then.
var errRequestTimeout = errors.New("request timed out")

// connConfig is what every connection of one client shares.
type connConfig struct {
	clientID         string
	requestTimeout   time.Duration
	maxResponseBytes int32
	log              *slog.Logger
}

// call is one request on a connection. onDone runs exactly once, on the
// connection's reader or writer goroutine or the goroutine that killed the
// connection, so it must not block for long.
type call struct {
	req        kmsg.Request
	maxVersion int16         // the caller's cap on the version, -1 for none
	extra      time.Duration // added to request.timeout.ms (a Fetch's max wait)
	noResponse bool          // acks=0 Produce: done once written
	onDone     func(kmsg.Response, error)

	corr     int32
	deadline time.Time
}

// conn is one TCP connection to one broker. Requests are pipelined: the
// writer goroutine encodes and writes them in order, the reader goroutine
// reads responses, which Kafka sends in request order, and matches each to
// the oldest pending request by correlation id. A response that does not come
// within request.timeout.ms (plus the call's extra time) kills the
// connection, failing everything on it with a ConnError: a connection is
// never reused after a failure, a new one is dialed.
//
// Ownership of a call moves from the queue (mu.queue) to the writer, to
// mu.pending once its correlation id is assigned, to the reader; kill takes
// whatever is in queue and pending. Whoever holds a call when it ends calls
// onDone, so onDone runs exactly once.
type conn struct {
	addr string
	node int32
	cfg  *connConfig
	fmt  *kmsg.RequestFormatter

	ctx    context.Context // canceled by kill: ends a dial in progress
	cancel context.CancelFunc
	signal chan struct{} // something was queued
	done   chan struct{} // closed by kill

	// versions is the highest version the broker speaks per API key, -1 for
	// none; written before the writer starts, read only by the writer.
	versions [128]int16
	wbuf     []byte
	// wvec is the Produce request's pieces for writev: wbuf's framing
	// between the batches, which are written from where they lie. wleft
	// is what WriteTo consumes (it moves the slice on as it writes).
	wvec, wleft net.Buffers

	mu struct {
		sync.Mutex
		nc      net.Conn
		queue   []*call
		pending []*call
		corr    int32
		dead    bool
		err     error
		retire  bool // close once nothing is queued or pending
		// writing is the call the writer is putting on the wire. A kill
		// meanwhile leaves it to the writer (orphaned), which completes
		// it once the write returns: its request may point at the
		// caller's bytes (a Produce's batches), which the caller must not
		// get back while a write can still read them.
		writing  *call
		orphaned bool
	}
}

// dialConn starts a connection; wg tracks its goroutines.
func dialConn(addr string, node int32, cfg *connConfig, wg *sync.WaitGroup) *conn {
	c := &conn{addr: addr, node: node, cfg: cfg,
		fmt:    kmsg.NewRequestFormatter(kmsg.FormatterClientID(cfg.clientID)),
		signal: make(chan struct{}, 1), done: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	wg.Go(func() { c.run(wg) })
	return c
}

func (c *conn) dead() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// start queues a request. It never blocks; the caller bounds how many it
// queues (the producer's in-flight limit, one fetch per broker).
func (c *conn) start(cl *call) {
	c.mu.Lock()
	if c.mu.dead {
		err := c.mu.err
		c.mu.Unlock()
		cl.onDone(nil, err)
		return
	}
	c.mu.queue = append(c.mu.queue, cl)
	c.mu.Unlock()
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

type callResult struct {
	resp kmsg.Response
	err  error
}

// do sends req and waits for its response or ctx. maxVersion caps the version
// (-1: no cap).
func (c *conn) do(ctx context.Context, req kmsg.Request, maxVersion int16, extra time.Duration) (kmsg.Response, error) {
	ch := make(chan callResult, 1)
	c.start(&call{req: req, maxVersion: maxVersion, extra: extra,
		onDone: func(r kmsg.Response, err error) { ch <- callResult{r, err} }})
	select {
	case r := <-ch:
		return r.resp, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// close kills the connection; calls in flight fail.
func (c *conn) close() { c.kill(errConnClosed) }

// closeWhenIdle closes the connection once its calls have their answers: for
// a seed connection that is no longer needed but may carry a request.
func (c *conn) closeWhenIdle() {
	c.mu.Lock()
	c.mu.retire = true
	idle := len(c.mu.queue) == 0 && len(c.mu.pending) == 0
	c.mu.Unlock()
	if idle {
		c.close()
	}
}

func (c *conn) kill(err error) {
	c.mu.Lock()
	if c.mu.dead {
		c.mu.Unlock()
		return
	}
	cerr := &ConnError{Addr: c.addr, Node: c.node, Err: err}
	c.mu.dead, c.mu.err = true, cerr
	queue, pending, nc := c.mu.queue, c.mu.pending, c.mu.nc
	c.mu.queue, c.mu.pending = nil, nil
	// The call being written, if it is still waiting for its answer, is
	// the writer's to complete.
	var writing *call
	for _, cl := range pending {
		if cl == c.mu.writing {
			writing = cl
			c.mu.orphaned = true
		}
	}
	c.mu.Unlock()
	c.cancel()
	if nc != nil {
		nc.Close()
	}
	close(c.done)
	if !errors.Is(err, errConnClosed) {
		c.cfg.log.Debug("broker connection failed", "node", c.node, "addr", c.addr, "err", err,
			"pending", len(pending), "queued", len(queue))
	}
	for _, cl := range pending {
		if cl != writing {
			cl.onDone(nil, cerr)
		}
	}
	for _, cl := range queue {
		cl.onDone(nil, cerr)
	}
}

func (c *conn) run(wg *sync.WaitGroup) {
	for i := range c.versions {
		c.versions[i] = -1
	}
	dctx, cancel := context.WithTimeout(c.ctx, c.cfg.requestTimeout)
	nc, err := (&net.Dialer{}).DialContext(dctx, "tcp", c.addr)
	cancel()
	if err != nil {
		c.kill(err)
		return
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	c.mu.Lock()
	if c.mu.dead {
		c.mu.Unlock()
		nc.Close()
		return
	}
	c.mu.nc = nc
	c.mu.Unlock()
	br := bufio.NewReaderSize(nc, 32<<10)
	if err := c.negotiate(nc, br); err != nil {
		c.kill(err)
		return
	}
	wg.Go(func() { c.readLoop(nc, br) })
	c.writeLoop(nc)
}

// negotiate asks the broker which versions it speaks, before any other
// request. A broker that does not speak our ApiVersions version answers
// UNSUPPORTED_VERSION in the v0 format with the versions it does speak; we
// then ask again with the highest of those.
func (c *conn) negotiate(nc net.Conn, br *bufio.Reader) error {
	version := ourVersions[kmsg.ApiVersions.Int16()].max
	for attempt := 0; ; attempt++ {
		req := kmsg.NewPtrApiVersionsRequest()
		req.ClientSoftwareName, req.ClientSoftwareVersion = softwareName, softwareVersion
		req.SetVersion(version)
		c.mu.Lock()
		c.mu.corr++
		corr := c.mu.corr
		c.mu.Unlock()
		deadline := time.Now().Add(c.cfg.requestTimeout)
		nc.SetDeadline(deadline)
		if _, err := nc.Write(c.fmt.AppendRequest(nil, req, corr)); err != nil {
			return err
		}
		gotCorr, body, err := readFrame(br, c.cfg.maxResponseBytes)
		if err != nil {
			return err
		}
		if gotCorr != corr {
			return fmt.Errorf("ApiVersions: correlation id %d, want %d", gotCorr, corr)
		}
		resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
		perr := resp.ReadFrom(body)
		if perr != nil || resp.ErrorCode == kerr.UnsupportedVersion.Code {
			v0 := kmsg.NewPtrApiVersionsResponse()
			v0.SetVersion(0)
			if v0.ReadFrom(body) == nil && v0.ErrorCode == kerr.UnsupportedVersion.Code && attempt == 0 {
				next := int16(0)
				for _, k := range v0.ApiKeys {
					if k.ApiKey == kmsg.ApiVersions.Int16() {
						next = min(k.MaxVersion, version-1)
					}
				}
				c.cfg.log.Debug("broker refused our ApiVersions version; asking again", "node", c.node,
					"addr", c.addr, "refused", version, "retry", max(next, 0))
				version = max(next, 0)
				continue
			}
			if perr == nil {
				perr = kerr.ErrorForCode(resp.ErrorCode)
			}
			return fmt.Errorf("ApiVersions v%d: %w", version, perr)
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return fmt.Errorf("ApiVersions: %w", err)
		}
		for _, k := range resp.ApiKeys {
			if k.ApiKey >= 0 && int(k.ApiKey) < len(c.versions) && k.MaxVersion >= k.MinVersion {
				c.versions[k.ApiKey] = k.MaxVersion
			}
		}
		nc.SetDeadline(time.Time{})
		return nil
	}
}

// readFrame reads one response: its size, bounded by maxBytes, then its
// correlation id and the rest.
func readFrame(r io.Reader, maxBytes int32) (int32, []byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	size := int32(binary.BigEndian.Uint32(hdr[:]))
	if size < 4 || size > maxBytes {
		return 0, nil, fmt.Errorf("response of %d bytes (the limit is %d)", size, maxBytes)
	}
	// A fresh buffer per response: parsed responses (record batches above
	// all) alias it, and the consumer hands those bytes to the application.
	buf := make([]byte, size)
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, err
	}
	return int32(binary.BigEndian.Uint32(buf)), buf[4:], nil
}

// version picks the version for a request: the highest both sides speak,
// within the caller's cap.
func (c *conn) version(cl *call) (int16, error) {
	key := cl.req.Key()
	ours, ok := ourVersions[key]
	if !ok {
		ours.min, ours.max = 0, cl.req.MaxVersion()
	}
	v := min(ours.max, cl.req.MaxVersion())
	if cl.maxVersion >= 0 {
		v = min(v, cl.maxVersion)
	}
	if int(key) < len(c.versions) {
		v = min(v, c.versions[key])
	} else {
		v = -1
	}
	if v < ours.min {
		return 0, fmt.Errorf("%w: %s (broker %d at %s speaks up to v%d, this client needs v%d+)",
			ErrUnsupportedVersion, kmsg.NameForKey(key), c.node, c.addr, c.versions[key%int16(len(c.versions))], ours.min)
	}
	return v, nil
}

func (c *conn) writeLoop(nc net.Conn) {
	var batch []*call
	for {
		select {
		case <-c.signal:
		case <-c.done:
			return
		}
		c.mu.Lock()
		batch, c.mu.queue = c.mu.queue, batch[:0]
		c.mu.Unlock()
		for i, cl := range batch {
			if err := c.write(nc, cl); err != nil {
				c.kill(err)
				for _, rest := range batch[i+1:] {
					rest.onDone(nil, &ConnError{Addr: c.addr, Node: c.node, Err: err})
				}
				return
			}
			batch[i] = nil
		}
	}
}

// write sends one call; an error is the connection's end.
func (c *conn) write(nc net.Conn, cl *call) error {
	v, err := c.version(cl)
	if err != nil {
		cl.onDone(nil, err)
		return nil
	}
	cl.req.SetVersion(v)
	now := time.Now()
	c.mu.Lock()
	if c.mu.dead {
		err := c.mu.err
		c.mu.Unlock()
		cl.onDone(nil, err)
		return nil
	}
	c.mu.corr++
	cl.corr = c.mu.corr
	cl.deadline = now.Add(c.cfg.requestTimeout + cl.extra)
	if !cl.noResponse {
		c.mu.pending = append(c.mu.pending, cl)
		if len(c.mu.pending) == 1 {
			nc.SetReadDeadline(cl.deadline)
		}
	}
	c.mu.writing = cl
	c.mu.Unlock()
	nc.SetWriteDeadline(now.Add(c.cfg.requestTimeout))
	if pr, ok := cl.req.(*kmsg.ProduceRequest); ok && produceWritable(pr) {
		// The batches go from where they lie, with writev: copying
		// them into one buffer would cost a pass over every byte, and a
		// buffer as large as the largest request.
		c.wbuf, c.wvec = appendProduceRequest(c.wbuf[:0], c.wvec[:0], c.cfg.clientID, pr, cl.corr)
		c.wleft = c.wvec
		_, err = c.wleft.WriteTo(nc)
		c.wleft = nil
		clear(c.wvec) // hold no batch past its write
	} else {
		c.wbuf = c.fmt.AppendRequest(c.wbuf[:0], cl.req, cl.corr)
		_, err = nc.Write(c.wbuf)
	}
	if cap(c.wbuf) > maxKeptWriteBuffer {
		c.wbuf = nil
	}
	c.mu.Lock()
	c.mu.writing = nil
	orphaned, connErr := c.mu.orphaned, c.mu.err
	c.mu.orphaned = false
	c.mu.Unlock()
	if orphaned {
		// Killed during the write: kill left this call to us.
		cl.onDone(nil, connErr)
		return nil
	}
	if cl.noResponse {
		if err != nil {
			cl.onDone(nil, &ConnError{Addr: c.addr, Node: c.node, Err: err})
		} else {
			cl.onDone(nil, nil)
		}
	}
	if err != nil {
		return err
	}
	return nil
}

// produceWritable is whether appendProduceRequest can write req: the
// versions whose layout it knows (3 to 12; 13 names topics by id) and no
// unknown tagged fields, which this client never sets.
func produceWritable(req *kmsg.ProduceRequest) bool {
	if req.Version < 3 || req.Version > 12 || req.UnknownTags.Len() > 0 {
		return false
	}
	for i := range req.Topics {
		t := &req.Topics[i]
		if t.UnknownTags.Len() > 0 {
			return false
		}
		for j := range t.Partitions {
			if t.Partitions[j].UnknownTags.Len() > 0 {
				return false
			}
		}
	}
	return true
}

// appendProduceRequest encodes req (version req.Version, which
// produceWritable accepts) as kmsg's RequestFormatter does, the size prefix
// and the request header included, except that the record batches are not
// copied: buf receives every other byte, and vec the pieces to write in
// order, slices of buf between the batches and the batches themselves.
func appendProduceRequest(buf []byte, vec net.Buffers, clientID string, req *kmsg.ProduceRequest, corr int32) ([]byte, net.Buffers) {
	flexible := req.Version >= 9
	be := binary.BigEndian
	appendLen := func(buf []byte, n int) []byte { // an array's length or a byte string's
		if flexible {
			return binary.AppendUvarint(buf, uint64(n)+1)
		}
		return be.AppendUint32(buf, uint32(n))
	}
	// Header v1 (v2 when flexible): the client id is never compact.
	buf = append(buf, 0, 0, 0, 0) // the size, once known
	buf = be.AppendUint16(buf, uint16(kmsg.Produce.Int16()))
	buf = be.AppendUint16(buf, uint16(req.Version))
	buf = be.AppendUint32(buf, uint32(corr))
	buf = be.AppendUint16(buf, uint16(len(clientID)))
	buf = append(buf, clientID...)
	if flexible {
		buf = append(buf, 0) // no tagged fields
	}
	switch id := req.TransactionID; {
	case id == nil && flexible:
		buf = append(buf, 0)
	case id == nil:
		buf = be.AppendUint16(buf, 0xffff)
	case flexible:
		buf = binary.AppendUvarint(buf, uint64(len(*id))+1)
		buf = append(buf, *id...)
	default:
		buf = be.AppendUint16(buf, uint16(len(*id)))
		buf = append(buf, *id...)
	}
	buf = be.AppendUint16(buf, uint16(req.Acks))
	buf = be.AppendUint32(buf, uint32(req.TimeoutMillis))
	// cuts[i] is where batches[i] goes between the bytes of buf.
	type cut struct {
		at      int
		records []byte
	}
	var cutsArr [64]cut
	cuts := cutsArr[:0]
	total := 0
	buf = appendLen(buf, len(req.Topics))
	for i := range req.Topics {
		t := &req.Topics[i]
		if flexible {
			buf = binary.AppendUvarint(buf, uint64(len(t.Topic))+1)
		} else {
			buf = be.AppendUint16(buf, uint16(len(t.Topic)))
		}
		buf = append(buf, t.Topic...)
		buf = appendLen(buf, len(t.Partitions))
		for j := range t.Partitions {
			p := &t.Partitions[j]
			buf = be.AppendUint32(buf, uint32(p.Partition))
			switch {
			case p.Records == nil && flexible:
				buf = append(buf, 0)
			case p.Records == nil:
				buf = be.AppendUint32(buf, 0xffffffff)
			default:
				buf = appendLen(buf, len(p.Records))
				if len(p.Records) > 0 {
					cuts = append(cuts, cut{len(buf), p.Records})
					total += len(p.Records)
				}
			}
			if flexible {
				buf = append(buf, 0) // the partition's tagged fields
			}
		}
		if flexible {
			buf = append(buf, 0) // the topic's
		}
	}
	if flexible {
		buf = append(buf, 0) // the request's
	}
	be.PutUint32(buf, uint32(len(buf)+total-4))
	from := 0
	for _, c := range cuts {
		if c.at > from {
			vec = append(vec, buf[from:c.at])
		}
		vec = append(vec, c.records)
		from = c.at
	}
	if len(buf) > from {
		vec = append(vec, buf[from:])
	}
	return buf, vec
}

func (c *conn) readLoop(nc net.Conn, br *bufio.Reader) {
	for {
		corr, body, err := readFrame(br, c.cfg.maxResponseBytes)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				err = fmt.Errorf("%w after %v", errRequestTimeout, c.cfg.requestTimeout)
			}
			c.kill(err)
			return
		}
		c.mu.Lock()
		if len(c.mu.pending) == 0 || c.mu.pending[0].corr != corr {
			c.mu.Unlock()
			c.kill(fmt.Errorf("response with correlation id %d matches no request in flight", corr))
			return
		}
		cl := c.mu.pending[0]
		c.mu.pending[0] = nil
		c.mu.pending = c.mu.pending[1:]
		if len(c.mu.pending) > 0 {
			nc.SetReadDeadline(c.mu.pending[0].deadline)
		} else {
			nc.SetReadDeadline(time.Time{})
		}
		retire := c.mu.retire && len(c.mu.pending) == 0 && len(c.mu.queue) == 0
		c.mu.Unlock()
		resp, err := parseResponse(cl.req, body)
		if err != nil {
			err = fmt.Errorf("%s v%d response from broker %d: %w", kmsg.NameForKey(cl.req.Key()), cl.req.GetVersion(), c.node, err)
		}
		cl.onDone(resp, err)
		if retire {
			c.close()
			return
		}
	}
}

// parseResponse decodes a response body (after the correlation id) for req.
func parseResponse(req kmsg.Request, body []byte) (kmsg.Response, error) {
	resp := req.ResponseKind()
	// Flexible responses have a tagged-field header, except ApiVersions,
	// whose header is never flexible so that any client can read it.
	if resp.IsFlexible() && resp.Key() != kmsg.ApiVersions.Int16() {
		r := kbin.Reader{Src: body}
		kmsg.SkipTags(&r)
		if err := r.Complete(); err != nil {
			return nil, err
		}
		body = r.Src
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, err
	}
	return resp, nil
}
