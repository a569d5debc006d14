package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	hraft "github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/internal/kshape"
	"gregor/netio"
)

// The controller listener (controller.quorum.voters' address of a voter)
// carries two protocols, as KRaft's does: the quorum's raft traffic and the
// Kafka requests brokers send the active controller (BrokerRegistration,
// BrokerHeartbeat, AllocateProducerIds, and the admin requests brokers
// forward). A raft connection starts with raftMagic; a Kafka connection
// starts with a request's 4-byte size, whose first byte is never 0xFF (that
// would be a negative size).
const raftMagic = 0xFF

// controllerMaxFrame bounds a request on the controller listener: brokers'
// requests are small.
const controllerMaxFrame = 16 << 20

type controllerServer struct {
	b         *Broker
	ln        net.Listener
	raftConns chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
	mu        sync.Mutex
	conns     map[net.Conn]struct{}
	wg        sync.WaitGroup
}

func newControllerServer(b *Broker, ln net.Listener) *controllerServer {
	return &controllerServer{b: b, ln: ln, raftConns: make(chan net.Conn), closed: make(chan struct{}),
		conns: make(map[net.Conn]struct{})}
}

// serve accepts connections until close.
func (s *controllerServer) serve() {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		var retry netio.AcceptRetry
		for {
			c, err := s.ln.Accept()
			if err != nil {
				if retry.Wait(err, s.b.logger, s.closed) {
					continue
				}
				select {
				case <-s.closed:
				default:
					s.b.logger.Error("controller listener stopped", "err", err)
					s.b.fail(fmt.Errorf("controller listener stopped: %w", err))
				}
				return
			}
			retry.Reset()
			if !s.track(c) {
				// Closed or full: close ends the listener, so the next
				// Accept returns.
				c.Close()
				continue
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.route(c)
			}()
		}
	}()
}

func (s *controllerServer) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.closed:
		return false
	default:
	}
	if len(s.conns) >= s.b.cfg.Net.MaxConnections {
		// max.connections bounds this listener too: its peers are the
		// cluster's brokers and voters, a handful of connections each.
		s.b.logger.Debug("controller listener: refusing a connection over max.connections",
			"remote", c.RemoteAddr(), "max.connections", s.b.cfg.Net.MaxConnections)
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *controllerServer) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// route reads a connection's first byte and hands it to raft or serves its
// Kafka requests.
func (s *controllerServer) route(c net.Conn) {
	var first [1]byte
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, first[:]); err != nil {
		s.untrack(c)
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	if first[0] == raftMagic {
		s.untrack(c) // raft owns it now, and closes it
		select {
		case s.raftConns <- c:
		case <-s.closed:
			c.Close()
		}
		return
	}
	defer func() {
		s.untrack(c)
		c.Close()
	}()
	s.serveKafka(c, first[0])
}

// serveKafka answers one broker's requests to the controller, one at a time.
func (s *controllerServer) serveKafka(c net.Conn, first byte) {
	var size [4]byte
	size[0] = first
	for {
		if _, err := io.ReadFull(c, size[1:]); err != nil {
			return
		}
		n := int32(binary.BigEndian.Uint32(size[:]))
		if n < 8 || n > controllerMaxFrame {
			s.b.logger.Warn("controller listener: closing a connection with a bad frame size", "size", n, "remote", c.RemoteAddr())
			return
		}
		// Into a buffer that grows with the bytes that arrive: a peer
		// announcing a large frame holds about what it sent.
		frame, err := netio.ReadFrame(c, int(n))
		if err != nil {
			return
		}
		out, err := s.answer(frame)
		if err != nil {
			s.b.logger.Warn("controller listener: closing a connection", "remote", c.RemoteAddr(), "err", err)
			return
		}
		if _, err := c.Write(out); err != nil {
			return
		}
		if _, err := io.ReadFull(c, size[:1]); err != nil {
			return
		}
	}
}

// controllerAPIs are the requests the controller listener answers.
var controllerAPIs = map[int16]bool{
	kmsg.BrokerRegistration.Int16():      true,
	kmsg.BrokerHeartbeat.Int16():         true,
	kmsg.AllocateProducerIDs.Int16():     true,
	kmsg.AlterPartition.Int16():          true,
	kmsg.CreateTopics.Int16():            true,
	kmsg.DeleteTopics.Int16():            true,
	kmsg.CreatePartitions.Int16():        true,
	kmsg.IncrementalAlterConfigs.Int16(): true,
	kmsg.AlterConfigs.Int16():            true,
	kmsg.UnregisterBroker.Int16():        true,
}

func (s *controllerServer) answer(frame []byte) ([]byte, error) {
	r := kbin.Reader{Src: frame}
	key, version, corr := r.Int16(), r.Int16(), r.Int32()
	r.NullableString()
	if !r.Ok() || !controllerAPIs[key] {
		return nil, fmt.Errorf("unexpected API key %d", key)
	}
	req := kmsg.RequestForKey(key)
	if version < 0 || version > req.MaxVersion() {
		return nil, fmt.Errorf("%s version %d", kmsg.NameForKey(key), version)
	}
	req.SetVersion(version)
	src := r.Src
	if req.IsFlexible() {
		var err error
		if src, err = kshape.SkipTags(src); err != nil {
			return nil, fmt.Errorf("a request header: %w", err)
		}
	}
	// As on the client listener: bounded before kmsg decodes (kshape).
	if err := kshape.Check(key, version, src); err != nil {
		return nil, fmt.Errorf("malformed %s: %w", kmsg.NameForKey(key), err)
	}
	if err := req.ReadFrom(src); err != nil {
		return nil, fmt.Errorf("malformed %s: %w", kmsg.NameForKey(key), err)
	}
	if s.b.ctrl == nil {
		return nil, fmt.Errorf("%s sent to a broker-only node", kmsg.NameForKey(key))
	}
	ctx, cancel := s.b.stopContext(s.b.cfg.RequestTimeout)
	defer cancel()
	resp, offset, err := s.b.ctrl.HandleAt(ctx, req)
	if err != nil {
		return nil, err
	}
	return encodeControllerResponse(corr, version, resp, offset), nil
}

// metadataOffsetTag is the tagged field of a flexible response header on
// the controller listener that carries the metadata offset the response
// reflects (raft.QuorumController.HandleAt), an int64: the broker that
// forwarded a client's request waits for its own image to reach it before
// it answers. Kafka defines no response header tags; the listener speaks
// only to Gregor's brokers.
const metadataOffsetTag = 0x4772

// encodeControllerResponse is encodeResponse with the metadata offset in
// the header's tagged fields, when the version has them.
func encodeControllerResponse(corr int32, version int16, resp kmsg.Response, offset uint64) []byte {
	resp.SetVersion(version)
	if !resp.IsFlexible() {
		return encodeResponse(corr, version, resp)
	}
	buf := make([]byte, 4, 256)
	buf = kbin.AppendInt32(buf, corr)
	buf = kbin.AppendUvarint(buf, 1) // one tagged field
	buf = kbin.AppendUvarint(buf, metadataOffsetTag)
	buf = kbin.AppendUvarint(buf, 8)
	buf = kbin.AppendInt64(buf, int64(offset))
	buf = resp.AppendTo(buf)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	return buf
}

func (s *controllerServer) close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
	})
	s.wg.Wait()
}

// raftTransport is hashicorp/raft's network transport over this listener.
func (s *controllerServer) raftTransport() hraft.Transport {
	hlog := hclog.New(&hclog.LoggerOptions{Name: "raft-net", Level: hclog.Off})
	return hraft.NewNetworkTransportWithConfig(&hraft.NetworkTransportConfig{
		Stream:  &raftStream{s: s},
		MaxPool: 3,
		Timeout: 5 * time.Second,
		Logger:  hlog,
	})
}

// raftStream is raft's StreamLayer: connections raft dials announce
// themselves with raftMagic; accepted ones come from route.
type raftStream struct{ s *controllerServer }

func (r *raftStream) Accept() (net.Conn, error) {
	select {
	case c := <-r.s.raftConns:
		return c, nil
	case <-r.s.closed:
		return nil, net.ErrClosed
	}
}

func (r *raftStream) Close() error   { return nil } // the controllerServer owns the listener
func (r *raftStream) Addr() net.Addr { return r.s.ln.Addr() }

func (r *raftStream) Dial(addr hraft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", string(addr), timeout)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write([]byte{raftMagic}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// requestController sends one request to the controller listener at addr
// and reads its response, and the metadata offset in its header (0 if
// none: see metadataOffsetTag).
func requestController(ctx context.Context, addr string, nodeID int32, req kmsg.Request) (kmsg.Response, uint64, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, 0, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()

	if req.GetVersion() < 0 || req.GetVersion() > req.MaxVersion() {
		req.SetVersion(req.MaxVersion())
	}
	clientID := fmt.Sprintf("gregor-broker-%d", nodeID)
	buf := make([]byte, 4, 256)
	buf = kbin.AppendInt16(buf, req.Key())
	buf = kbin.AppendInt16(buf, req.GetVersion())
	buf = kbin.AppendInt32(buf, 1)
	buf = kbin.AppendNullableString(buf, &clientID)
	if req.IsFlexible() {
		buf = append(buf, 0)
	}
	buf = req.AppendTo(buf)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	if _, err := c.Write(buf); err != nil {
		return nil, 0, err
	}
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return nil, 0, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 4 || n > controllerMaxFrame {
		return nil, 0, fmt.Errorf("controller response of %d bytes", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c, body); err != nil {
		return nil, 0, err
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	rd := kbin.Reader{Src: body}
	if corr := rd.Int32(); corr != 1 {
		return nil, 0, fmt.Errorf("controller response for correlation id %d, want 1", corr)
	}
	var offset uint64
	if resp.IsFlexible() {
		for n := rd.Uvarint(); n > 0 && rd.Ok(); n-- {
			tag, size := rd.Uvarint(), rd.Uvarint()
			field := rd.Span(int(size))
			if tag == metadataOffsetTag && len(field) == 8 {
				offset = binary.BigEndian.Uint64(field)
			}
		}
	}
	if !rd.Ok() {
		return nil, 0, errors.New("short controller response header")
	}
	if err := resp.ReadFrom(rd.Src); err != nil {
		return nil, 0, fmt.Errorf("decoding the controller's %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	return resp, offset, nil
}
