package netio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Part is one piece of a response: bytes (written with writev), or a region
// of a file (written with sendfile(2) at an explicit offset, so concurrent
// sends of one file never share a file position).
type Part struct {
	Bytes  []byte
	File   *os.File
	Offset int64
	Length int64
}

// Response is a handler's answer to one request.
type Response struct {
	Parts []Part
	// Done, when set, is called once the response has been written, or
	// dropped because the connection closed: the place to release the file
	// regions its parts refer to.
	Done func()
	// NoResponse sends nothing (a produce with acks=0); the request's turn
	// in the connection's order simply passes.
	NoResponse bool
	// CloseAfter closes the connection once this response has been
	// written. From the moment it is given, the connection's requests not
	// yet handed to Serve never will be: they are dropped unanswered.
	CloseAfter bool
}

// Request is one request frame, without its 4-byte size prefix. Frame
// belongs to the handler.
type Request struct {
	Frame      []byte
	ConnID     uint64
	RemoteAddr net.Addr

	parker parker          // the engine's slot for the request
	done   <-chan struct{} // closed when the connection closes (Done)
}

// parker is an engine's way to park a request (Request.Park).
type parker interface{ park() }

// Park tells the engine that the request now waits for something outside
// the server (a long-poll fetch waiting for appends) rather than for the
// server's work: it gives back the request's share of queued.max.requests,
// as Kafka keeps a fetch waiting in purgatory out of its request queue, so
// that many waiting consumers cannot starve the produce requests that would
// wake them. The request keeps its place in its connection's order and its
// share of the per-connection bound. Calling it again, or after the
// response, does nothing.
func (r *Request) Park() {
	if r.parker != nil {
		r.parker.park()
	}
}

// Done returns a channel that is closed once the request's connection
// closes: its client went away, it was idle too long, a response asked to
// close it, or the server is closing. A handler that holds a request for
// long (a long-poll fetch waiting for appends) waits on it too, so that a
// request no one will read the answer of ends at once instead of holding
// its goroutine, timers and whatever it has read until its own time is up.
// The handler must still respond, with anything (NoResponse will do): the
// engine counts the request until then, and drops the answer. A request
// its client sent whole before hanging up may reach Serve with Done already
// closed: it is still to be served (an acks=0 produce's records), only its
// answer goes nowhere. A Request no engine made (a test's) has a nil
// channel, which never closes.
func (r *Request) Done() <-chan struct{} { return r.done }

// Release gives Frame's memory back to the engine for a later request's
// frame (framepool.go). A handler may call it once nothing refers to any
// byte of Frame any more, slices decoded from it included; it need not, and
// it must not touch Frame afterwards.
func (r *Request) Release() {
	releaseFrame(r.Frame)
	r.Frame = nil
}

// Handler serves requests. Serve must call respond exactly once, from any
// goroutine, at once or later (a long-poll fetch answers when data arrives);
// responses leave each connection in request order whatever order they are
// given in. Serve is called once per request, in request order, one call
// at a time per connection, on a goroutine the connection's reading waits
// on (under the netpoll engine, sometimes its writing), so it should hand
// slow work elsewhere.
type Handler interface {
	Serve(req *Request, respond func(Response))
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(req *Request, respond func(Response))

// Serve calls f.
func (f HandlerFunc) Serve(req *Request, respond func(Response)) { f(req, respond) }

// Stats are an engine's counters.
type Stats struct {
	Connections         int64
	SendfileBytes       uint64 // response bytes sent by sendfile(2): the zero-copy path
	CopiedBytes         uint64 // response bytes written from memory
	RejectedConnections uint64 // over max.connections or max.connections.per.ip
	OversizeFrames      uint64 // frames over socket.request.max.bytes
	// InputOverflows counts connections the netpoll engine closed because a
	// request they sent did not fit: the connection already had
	// MaxInFlightPerConnection requests with the handler and as many read
	// and waiting, or the waiting requests of all connections were at
	// QueuedMaxRequests (or socket.request.max.bytes bytes). The std engine
	// stops reading instead, so for it this stays zero.
	InputOverflows uint64
}

// Server is the std engine: Go's net, a goroutine reading and one writing per
// connection. Reading stops while a connection has MaxInFlightPerConnection
// requests unanswered or the server QueuedMaxRequests, which is the natural
// backpressure of TCP: a flooding client fills its own socket buffers, not the
// broker's memory.
type Server struct {
	cfg      Config
	h        Handler
	logger   *slog.Logger
	sendfile sendfileFunc
	fallback fallbackNote

	inflight chan struct{} // one token per request being handled, server-wide
	nextID   atomic.Uint64
	done     chan struct{} // closed by Close: ends accept loops' waits

	counters
	hooks hooks

	mu struct {
		sync.Mutex
		conns     map[*conn]struct{}
		perIP     map[string]int
		listeners []net.Listener
		closed    bool
	}
	wg sync.WaitGroup
}

// Options are the server's collaborators.
type Options struct {
	Logger *slog.Logger

	// sendfile stands in for unix.Sendfile: tests make it fail.
	sendfile sendfileFunc
}

func (o *Options) ensureDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.sendfile == nil {
		o.sendfile = unix.Sendfile
	}
}

// NewServer returns a std engine that passes requests to h, whatever
// cfg.Engine says; New picks the engine by cfg.Engine.
func NewServer(cfg Config, h Handler, o Options) (*Server, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o.ensureDefaults()
	s := &Server{cfg: cfg, h: h, logger: o.Logger, sendfile: o.sendfile, inflight: make(chan struct{}, cfg.QueuedMaxRequests),
		done: make(chan struct{})}
	s.mu.conns = map[*conn]struct{}{}
	s.mu.perIP = map[string]int{}
	return s, nil
}

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("netio: server closed")

// Serve accepts connections on l until Close; it returns ErrServerClosed then.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.mu.listeners = append(s.mu.listeners, l)
	s.mu.Unlock()
	var retry AcceptRetry
	for {
		nc, err := l.Accept()
		if err != nil {
			if retry.Wait(err, s.logger, s.done) {
				continue
			}
			select {
			case <-s.done:
				return ErrServerClosed
			default:
				return err
			}
		}
		retry.Reset()
		s.accept(nc)
	}
}

// AcceptRetry paces an accept loop through errors that pass: out of file
// descriptors (EMFILE, ENFILE) or kernel memory (ENOBUFS, ENOMEM).
// Returning on them would leave the port bound and no one accepting, so that
// clients connect and hang; instead the loop waits, 5 ms doubling to a
// second, and tries again, as net/http's does. (Go's Accept already retries
// a connection aborted before it was accepted.) The zero value is ready to
// use.
type AcceptRetry struct{ delay time.Duration }

// Wait reports whether err passes, after waiting the next delay; false
// means the listener is done, or done was closed while waiting, so that
// closing a server never waits out a second's delay.
func (a *AcceptRetry) Wait(err error, logger *slog.Logger, done <-chan struct{}) bool {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return true
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE), errors.Is(err, syscall.ENOBUFS),
		errors.Is(err, syscall.ENOMEM):
	default:
		return false
	}
	a.delay = min(max(2*a.delay, 5*time.Millisecond), time.Second)
	logger.Warn("accepting a connection failed; retrying", "err", err, "retry_in", a.delay)
	t := time.NewTimer(a.delay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}

// Reset starts the delays over after an accept succeeds.
func (a *AcceptRetry) Reset() { a.delay = 0 }

func remoteIP(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	return a.String()
}

// accept admits a connection within max.connections and
// max.connections.per.ip, or closes it at once.
func (s *Server) accept(nc net.Conn) {
	ip := remoteIP(nc.RemoteAddr())
	s.mu.Lock()
	if s.mu.closed || len(s.mu.conns) >= s.cfg.MaxConnections || s.mu.perIP[ip] >= s.cfg.MaxConnectionsPerIP {
		s.mu.Unlock()
		s.rejected.Add(1)
		s.logger.Warn("connection refused: over max.connections or max.connections.per.ip", "remote", nc.RemoteAddr())
		nc.Close()
		return
	}
	c := &conn{s: s, nc: nc, id: s.nextID.Add(1), ip: ip, opened: time.Now(),
		slots: make(chan *slot, s.cfg.MaxInFlightPerConnection),
		room:  make(chan struct{}, s.cfg.MaxInFlightPerConnection), closed: make(chan struct{}), hangUp: make(chan struct{})}
	s.mu.conns[c] = struct{}{}
	s.mu.perIP[ip]++
	s.wg.Add(2) // under mu: a Close that follows waits for these two
	s.mu.Unlock()
	go c.readLoop()
	go c.writeLoop()
}

// Close stops accepting, closes every connection, and returns once every
// connection's goroutines have ended, which waits for handlers to answer
// the requests they hold.
func (s *Server) Close() error {
	s.mu.Lock()
	if !s.mu.closed {
		close(s.done)
	}
	s.mu.closed = true
	var err error
	for _, l := range s.mu.listeners {
		err = errors.Join(err, l.Close())
	}
	conns := make([]*conn, 0, len(s.mu.conns))
	for c := range s.mu.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	s.wg.Wait()
	return err
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	n := len(s.mu.conns)
	s.mu.Unlock()
	return s.counters.stats(n)
}

// counters are the byte and event counts both engines keep for Stats.
type counters struct {
	sendfileBytes, copiedBytes, rejected, oversize, overflows atomic.Uint64
}

func (c *counters) stats(conns int) Stats {
	return Stats{Connections: int64(conns), SendfileBytes: c.sendfileBytes.Load(), CopiedBytes: c.copiedBytes.Load(),
		RejectedConnections: c.rejected.Load(), OversizeFrames: c.oversize.Load(), InputOverflows: c.overflows.Load()}
}

// conn is one client connection. The read loop reads frames and hands them
// to the handler, queueing a slot per request; the write loop takes the slots
// in order and writes each response when its handler has answered.
type conn struct {
	s     *Server
	nc    net.Conn
	id    uint64
	ip    string
	slots chan *slot    // requests in order, oldest first
	room  chan struct{} // one token per request unanswered: the per-connection bound
	// pending counts requests read and not yet answered (or dropped).
	pending atomic.Int32
	// opened is when the connection was accepted, the origin of
	// lastWritten (so it is on the monotonic clock).
	opened time.Time
	// lastWritten is when a response was last written, since opened: a
	// completed send is activity, as Kafka's Selector counts it, so the
	// idle clock restarts there and not at the request's arrival.
	lastWritten atomic.Int64

	// closing is set once a response asking to close the connection
	// (CloseAfter) has been given, or the connection closes: the requests
	// read after it are dropped, never handed to the handler, as Kafka
	// reads nothing past a request it closes the connection for. A
	// client that sees the connection close retries what it pipelined
	// behind; had the broker served it too (a produce appended), the
	// retry would duplicate it.
	closing atomic.Bool

	closeOnce sync.Once
	closed    chan struct{} // closed by close

	// hangUp is closed once the client has hung up, or the connection
	// closes: its requests' Done. A hang-up seen while the read loop waits
	// for room (acquire) does not close the connection: the requests the
	// client sent before it are still read and served, as Kafka's Selector
	// keeps a closing channel "so that all received records may be
	// processed" (an acks=0 producer's last records, sent just before
	// close). The read loop ends at the end of the stream, and the write
	// loop at the first answer that cannot be written, as Kafka's does at
	// the first failed send.
	hangUpOnce sync.Once
	hangUp     chan struct{}
}

// endRequests ends the connection's requests (Request.Done), once.
func (c *conn) endRequests() {
	c.hangUpOnce.Do(func() { close(c.hangUp) })
}

// slot is one request's place in the connection's order.
type slot struct {
	c     *conn
	resp  chan Response // buffered: respond never blocks
	once  sync.Once
	token atomic.Bool // holds one of the server's inflight tokens
}

// park gives back the slot's token, once.
func (sl *slot) park() { sl.releaseToken() }

func (sl *slot) releaseToken() {
	if sl.token.CompareAndSwap(true, false) {
		<-sl.c.s.inflight
	}
}

func (c *conn) close() {
	c.closeOnce.Do(func() {
		c.closing.Store(true)
		close(c.closed)
		c.endRequests()
		c.nc.Close()
		c.s.mu.Lock()
		delete(c.s.mu.conns, c)
		if c.s.mu.perIP[c.ip]--; c.s.mu.perIP[c.ip] <= 0 {
			delete(c.s.mu.perIP, c.ip)
		}
		c.s.mu.Unlock()
	})
}

func (c *conn) readLoop() {
	defer c.s.wg.Done()
	defer close(c.slots) // the write loop finishes what is queued
	var hdr [4]byte
	for {
		if err := c.readIdle(hdr[:]); err != nil {
			c.closeWith(err)
			return
		}
		size := int32(binary.BigEndian.Uint32(hdr[:]))
		if size < 0 || size > c.s.cfg.SocketRequestMaxBytes {
			c.s.oversize.Add(1)
			c.s.logger.Warn("closing a connection: request frame over socket.request.max.bytes",
				"remote", c.nc.RemoteAddr(), "size", size, "limit", c.s.cfg.SocketRequestMaxBytes)
			c.close()
			return
		}
		// Wait for room before reading the frame: this is where a flood
		// stops being read.
		if !c.acquire(c.room) {
			return
		}
		sl := &slot{c: c, resp: make(chan Response, 1)}
		c.slots <- sl // never blocks: room bounds the slots
		c.pending.Add(1)
		frame, err := ReadFrame(bodyReader{c}, int(size))
		if err != nil {
			sl.respond(Response{NoResponse: true})
			c.closeWith(err)
			return
		}
		// A server-wide token only for a whole request, as Kafka's
		// queued.max.requests counts them: a connection that sends part
		// of a frame and stalls must not hold one.
		if !c.acquire(c.s.inflight) {
			releaseFrame(frame)
			sl.respond(Response{NoResponse: true})
			return
		}
		sl.token.Store(true)
		if c.closing.Load() {
			// Read behind a response that closes the connection: the
			// write loop writes that one, then closes; this one leaves
			// unserved, and the reading goes on only to see the client
			// leave meanwhile.
			releaseFrame(frame)
			sl.respond(Response{NoResponse: true})
			continue
		}
		c.s.h.Serve(&Request{Frame: frame, ConnID: c.id, RemoteAddr: c.nc.RemoteAddr(), parker: sl, done: c.hangUp}, sl.respond)
	}
}

// acquire takes a place on ch (in the connection's window, or a
// server-wide token), false if the connection closes first. While it waits
// nothing reads the socket, so it watches the socket for the client's
// hang-up (hungUp), which ends the connection's requests (Request.Done): a
// request parked until then (a long-poll Fetch) must not outlive its
// client by max_wait_ms because the requests behind it filled the window.
// The wait goes on: what the client sent before it hung up is served.
func (c *conn) acquire(ch chan<- struct{}) bool {
	select {
	case <-c.closed:
		return false
	default:
	}
	select {
	case ch <- struct{}{}:
		return true
	default:
	}
	c.nc.SetReadDeadline(time.Time{}) // the watch waits as long as acquire does
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		if c.hungUp() {
			c.endRequests()
			c.s.hooks.run(&c.s.hooks.hangUp)
		}
	}()
	defer func() {
		c.nc.SetReadDeadline(time.Unix(1, 0)) // ends the watch; reads set their own
		<-watched
	}()
	select {
	case ch <- struct{}{}:
		return true
	case <-c.closed:
		return false
	}
}

// hungUp waits, reading nothing, until the client has closed or reset the
// connection, and reports whether it has; false once the read deadline
// passes. The TCP state tells, where a read could not: requests the client
// sent before closing sit unread ahead of its end of stream. Go's poller
// wakes the watch on each arrival, the FIN's and the RST's included.
func (c *conn) hungUp() bool {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var gone bool
	err = rc.Read(func(fd uintptr) bool {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			return true // not TCP: nothing to watch
		}
		gone = info.State == unix.BPF_TCP_CLOSE_WAIT || info.State == unix.BPF_TCP_CLOSE
		return gone
	})
	return err == nil && gone
}

// readIdle reads a frame's size prefix, closing the connection once it has
// been idle for connections.max.idle.ms: nothing arriving, nothing in
// flight and nothing written. A client waiting on a long poll is not idle,
// and one answered late has the whole period from its answer.
func (c *conn) readIdle(b []byte) error {
	idle := c.s.cfg.ConnectionsMaxIdle
	got := 0
	deadline := time.Now().Add(idle)
	for {
		c.nc.SetReadDeadline(deadline)
		n, err := io.ReadFull(c.nc, b[got:])
		got += n
		var ne net.Error
		if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
			return err
		}
		// The write loop stamps lastWritten before it counts the request
		// answered: a request no longer pending has its write seen here.
		now := time.Now()
		if c.pending.Load() > 0 {
			deadline = now.Add(idle)
		} else if until := c.opened.Add(time.Duration(c.lastWritten.Load()) + idle); until.After(now) {
			deadline = until
		} else {
			return err
		}
	}
}

// bodyReader reads a frame's body, moving the read deadline on before
// every read: a frame that keeps arriving, however slowly, is not idle;
// one stalled half way for connections.max.idle.ms is.
type bodyReader struct{ c *conn }

func (r bodyReader) Read(p []byte) (int, error) {
	r.c.nc.SetReadDeadline(time.Now().Add(r.c.s.cfg.ConnectionsMaxIdle))
	return r.c.nc.Read(p)
}

func (c *conn) closeWith(err error) {
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.s.logger.Info("closing an idle connection", "remote", c.nc.RemoteAddr(), "idle", c.s.cfg.ConnectionsMaxIdle)
		} else {
			c.s.logger.Info("closing a connection", "remote", c.nc.RemoteAddr(), "err", err)
		}
	}
	c.close()
}

// respond hands the answer to the write loop. The request leaves
// queued.max.requests here, when its handler lets go of it, as a request
// leaves Kafka's request queue once a handler takes it: an answer its client
// is slow to read holds only its connection's place (room), never a token
// every other connection needs.
func (sl *slot) respond(r Response) {
	sl.once.Do(func() {
		if r.CloseAfter {
			sl.c.closing.Store(true)
		}
		sl.releaseToken()
		sl.resp <- r
	})
}

func (c *conn) writeLoop() {
	defer c.s.wg.Done()
	defer c.close()
	for sl := range c.slots {
		r := <-sl.resp
		var err error
		select {
		case <-c.closed:
			err = net.ErrClosed
		default:
			if !r.NoResponse {
				err = c.write(r.Parts)
				c.lastWritten.Store(int64(time.Since(c.opened)))
			}
		}
		if r.Done != nil {
			r.Done()
		}
		c.pending.Add(-1)
		<-c.room
		if err != nil {
			c.closeWith(err)
		} else if r.CloseAfter {
			c.close()
		}
	}
}

// write sends the parts in order: runs of byte parts with one writev, file
// regions with sendfile. A client that stops reading is closed once nothing
// has gone out for connections.max.idle.ms, as Kafka closes a connection
// with no activity: the write deadline moves on with every writev and every
// sendfile chunk that makes progress.
func (c *conn) write(parts []Part) error {
	c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.ConnectionsMaxIdle))
	var bufs net.Buffers
	flush := func() error {
		if len(bufs) == 0 {
			return nil
		}
		n, err := bufs.WriteTo(c.nc)
		c.s.copiedBytes.Add(uint64(n))
		bufs = bufs[:0]
		if n > 0 {
			c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.ConnectionsMaxIdle))
		}
		return err
	}
	for _, p := range parts {
		if p.File == nil {
			bufs = append(bufs, p.Bytes)
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		if err := c.sendFile(p); err != nil {
			return err
		}
	}
	return flush()
}

// sendFile writes a file region with sendfile(2) at an explicit offset. When
// the socket buffer is full (EAGAIN) the goroutine parks on the poller until
// the socket is writable: no spinning, and no OS thread held by a stalled
// client. A connection that is not a socket, or a file sendfile cannot send,
// gets a copy.
func (c *conn) sendFile(p Part) error {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return c.copyRegion(p.File, p.Offset, p.Length)
	}
	sock, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	file, err := p.File.SyscallConn()
	if err != nil {
		return err
	}
	off, remaining := p.Offset, p.Length
	var sendErr, unsupported error
	ctlErr := file.Control(func(ffd uintptr) {
		err := sock.Write(func(sfd uintptr) bool {
			for remaining > 0 {
				n, err := c.s.sendfile(int(sfd), int(ffd), &off, int(min(remaining, 1<<30)))
				if n > 0 {
					remaining -= int64(n)
					c.s.sendfileBytes.Add(uint64(n))
					c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.ConnectionsMaxIdle))
				}
				switch {
				case errors.Is(err, unix.EAGAIN):
					return false // park until writable
				case errors.Is(err, unix.EINTR):
					continue
				case sendfileUnsupported(err):
					unsupported = err
					return true
				case err != nil:
					sendErr = err
					return true
				case n == 0:
					sendErr = fmt.Errorf("netio: %s ends before the region [%d, %d) it was asked to send", p.File.Name(), p.Offset, p.Offset+p.Length)
					return true
				}
			}
			return true
		})
		if sendErr == nil {
			sendErr = err
		}
	})
	if err := errors.Join(ctlErr, sendErr); err != nil || unsupported == nil {
		return err
	}
	c.s.fallback.note(c.s.logger, p.File, unsupported)
	return c.copyRegion(p.File, off, remaining)
}

// copyRegion writes length bytes of f from off through memory, moving the
// write deadline on with every chunk, as sendfile's progress does.
func (c *conn) copyRegion(f *os.File, off, length int64) error {
	return copyRegion(f, off, length, func(b []byte) error {
		n, err := c.nc.Write(b)
		c.s.copiedBytes.Add(uint64(n))
		if n > 0 {
			c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.ConnectionsMaxIdle))
		}
		return err
	})
}
