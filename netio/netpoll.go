package netio

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/cloudwego/netpoll"
	"golang.org/x/sys/unix"
)

func init() {
	// netpoll reads these settings without synchronisation, hence init.
	netpoll.Configure(netpoll.Config{
		// netpoll gives every connection an 8 KiB input buffer up front;
		// its smallest, 4 KiB, is enough for the small requests most
		// connections send, and the buffer still grows by doubling when
		// reads fill it. This is most of what an idle connection costs.
		BufferSize: netpoll.LinkBufferCap,
		// Request callbacks run on plain goroutines rather than netpoll's
		// default pool, which recovers panics: a handler that panics must
		// crash the process as it does under the std engine, not leave a
		// connection wedged and Close waiting for it forever.
		Runner: func(_ context.Context, f func()) { go f() },
		// netpoll's own messages (accept failures and the like) go to the
		// latest server's structured logger, not to stderr unformatted.
		LoggerOutput: netpollLogWriter{},
	})
}

// netpollLog is the logger of the netpoll server made last: netpoll's
// logging is the process's, not a server's.
var netpollLog atomic.Pointer[slog.Logger]

// netpollLogWriter turns the lines netpoll's log.Logger writes into slog
// records.
type netpollLogWriter struct{}

func (netpollLogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	// log.LstdFlags' "2006/01/02 15:04:05 ": slog stamps its own time.
	if len(msg) > 20 && msg[4] == '/' && msg[13] == ':' {
		msg = msg[20:]
	}
	l := netpollLog.Load()
	if l == nil {
		l = slog.Default()
	}
	l.Warn(msg, "component", "netpoll")
	return len(p), nil
}

// NetpollServer is the netpoll engine: an event loop over cloudwego/netpoll.
// netpoll's poller (one per 20 cores) accepts connections and reads every
// readable socket into the connection's own buffer; a goroutine runs only
// while a connection has input to parse or answers to write, so an idle
// connection costs no goroutine.
//
// netpoll reads eagerly and offers no way to stop reading one connection (its
// poller re-reads a readable socket at once, and a request callback that
// leaves input unparsed is called again in a loop), so the bounds hold by
// parsing, not by leaving bytes in the socket. The reading goroutine always
// takes whole frames out of netpoll's buffer, releasing it as it goes (a
// large frame is copied out as it arrives, never held twice). Frames that
// cannot be handled yet, because MaxInFlightPerConnection of the connection's
// requests are unanswered or QueuedMaxRequests are in flight server-wide,
// wait in a per-connection backlog of at most MaxInFlightPerConnection frames
// and socket.request.max.bytes bytes (one frame of any allowed size always
// fits), and all backlogs together hold at most QueuedMaxRequests frames and
// socket.request.max.bytes bytes. A connection whose frame does not fit, its
// own backlog or the server's being full, is closed and counted in
// Stats.InputOverflows. So one connection holds at most
// MaxInFlightPerConnection frames with the handler, as many waiting, one
// frame being read, and what netpoll reads while the handler's Serve runs on
// the reading goroutine: Serve must return quickly, as Handler says; and the
// server holds at most QueuedMaxRequests frames with the handler, as many
// waiting, and one frame being read per connection.
//
// Responses are written by a goroutine started when the oldest unanswered
// request of a connection is answered; it writes every answer that is ready,
// in order, and ends. Byte parts go out with writev(2) and file regions with
// sendfile(2) at explicit offsets, both on a dup(2) of the socket that the
// engine owns: netpoll may close its own descriptor at any moment (a peer
// hang-up closes it on the poller), and a write to a descriptor number that
// has been closed could land on another client's socket once the number is
// reused. When the socket is full (EAGAIN), the dup is wrapped in an os.File,
// registered with Go's runtime poller, and the writer parks on it until the
// socket is writable: no spinning, no OS thread held per stalled connection.
// netpoll has no exported wait-for-writable (its own Flush waits on a private
// trigger), poll(2) in a goroutine would hold a thread per stalled
// connection, and a second epoll loop would duplicate what the runtime
// poller already does. The registration happens only for connections that
// have filled their socket once; the others never touch Go's poller.
//
// Concurrency: the engine's connection table and per-IP counts are guarded
// by mu, the server-wide request tokens by tok. Per connection, netpoll's
// request callback owns reading; a connection's mu guards its backlog, its
// queue of requests in order, and the flags that let one goroutine at a time
// dispatch (call Serve, in request order) and one write. Lock order:
// connection mu, then tok or bl.
type NetpollServer struct {
	cfg      Config
	h        Handler
	logger   *slog.Logger
	sendfile sendfileFunc
	fallback fallbackNote
	epoch    time.Time
	nextID   atomic.Uint64

	counters
	hooks hooks

	// tok bounds the requests being handled server-wide (QueuedMaxRequests).
	// A connection that finds none waits in waiters; a released token is
	// handed to the first waiter.
	tok struct {
		sync.Mutex
		used    int
		waiters []*npConn
	}

	// bl bounds the frames waiting in backlogs server-wide, as each
	// connection's are bounded: QueuedMaxRequests frames and
	// socket.request.max.bytes bytes, one frame of any allowed size always
	// fitting in an empty backlog. Without it the backlogs of many
	// connections together would grow with their number.
	bl struct {
		sync.Mutex
		frames, bytes int
	}

	mu struct {
		sync.Mutex
		conns   map[*npConn]struct{}
		perIP   map[string]int
		pending map[int]string // accepted, not yet prepared: fd -> IP
		serving []*npListener
		closed  bool
	}
	wg sync.WaitGroup // one per admitted connection, until it is finished
}

// NewNetpollServer returns a netpoll engine that passes requests to h.
func NewNetpollServer(cfg Config, h Handler, o Options) (*NetpollServer, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o.ensureDefaults()
	netpollLog.Store(o.Logger)
	e := &NetpollServer{cfg: cfg, h: h, logger: o.Logger, sendfile: o.sendfile, epoch: time.Now()}
	e.mu.conns = map[*npConn]struct{}{}
	e.mu.perIP = map[string]int{}
	e.mu.pending = map[int]string{}
	return e, nil
}

func (e *NetpollServer) now() int64 { return int64(time.Since(e.epoch)) }

// Serve accepts connections on l until Close; it returns ErrServerClosed
// then. l must be a *net.TCPListener or *net.UnixListener: netpoll works on
// the raw descriptor (so no TLS).
func (e *NetpollServer) Serve(l net.Listener) error {
	sc, ok := l.(syscall.Conn)
	if !ok {
		l.Close()
		return fmt.Errorf("netio: the netpoll engine needs a listener with a descriptor, not %T", l)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		l.Close()
		return err
	}
	fd := -1
	var dupErr error
	if err := rc.Control(func(lfd uintptr) {
		fd, dupErr = unix.FcntlInt(lfd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil || dupErr != nil {
		l.Close()
		return errors.Join(err, dupErr)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		l.Close()
		return err
	}
	nl := &npListener{e: e, l: l, fd: fd, spare: openSpare(), addr: l.Addr(), registered: make(chan struct{})}
	evl, err := netpoll.NewEventLoop(e.onRequest, netpoll.WithOnPrepare(e.onPrepare))
	if err != nil {
		nl.Close()
		return err
	}
	nl.evl = evl
	e.mu.Lock()
	if e.mu.closed {
		e.mu.Unlock()
		nl.Close()
		return ErrServerClosed
	}
	e.mu.serving = append(e.mu.serving, nl)
	e.mu.Unlock()
	err = evl.Serve(nl)
	nl.signalRegistered() // in case the loop never took the listener
	e.mu.Lock()
	closed := e.mu.closed
	e.mu.Unlock()
	if closed {
		return ErrServerClosed
	}
	return err
}

// Close stops accepting, closes every connection, and returns once every
// request the handler was given has been answered and its Done called.
func (e *NetpollServer) Close() error {
	e.mu.Lock()
	e.mu.closed = true
	serving := e.mu.serving
	e.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Shutdown stops the listener, then need not wait: we close the connections below
	var err error
	for _, nl := range serving {
		// Shutdown before the event loop has taken the listener would be
		// lost and leave Serve running: wait for that (or for Serve's end).
		<-nl.registered
		nl.evl.Shutdown(ctx)
		err = errors.Join(err, nl.Close())
	}
	e.mu.Lock()
	conns := make([]*npConn, 0, len(e.mu.conns))
	for c := range e.mu.conns {
		conns = append(conns, c)
	}
	e.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	e.wg.Wait()
	return err
}

// Stats returns the counters.
func (e *NetpollServer) Stats() Stats {
	e.mu.Lock()
	n := len(e.mu.conns)
	e.mu.Unlock()
	return e.counters.stats(n)
}

// admit reserves a place for a new connection within max.connections and
// max.connections.per.ip, or refuses it. Runs on netpoll's poller.
func (e *NetpollServer) admit(fd int, remote net.Addr) bool {
	ip := remoteIP(remote)
	e.mu.Lock()
	if e.mu.closed || len(e.mu.conns)+len(e.mu.pending) >= e.cfg.MaxConnections || e.mu.perIP[ip] >= e.cfg.MaxConnectionsPerIP {
		e.mu.Unlock()
		e.rejected.Add(1)
		e.logger.Warn("connection refused: over max.connections or max.connections.per.ip", "remote", remote)
		return false
	}
	e.mu.pending[fd] = ip
	e.mu.perIP[ip]++
	e.mu.Unlock()
	return true
}

func (e *NetpollServer) unreserveLocked(ip string) {
	if e.mu.perIP[ip]--; e.mu.perIP[ip] <= 0 {
		delete(e.mu.perIP, ip)
	}
}

type npConnKey struct{}

// onPrepare turns an admitted connection into an npConn before netpoll
// registers it. Runs on netpoll's poller, right after Accept.
func (e *NetpollServer) onPrepare(nc netpoll.Connection) context.Context {
	ctx := context.Background()
	fder, ok := nc.(interface{ Fd() int })
	if !ok {
		nc.Close()
		return ctx
	}
	fd := fder.Fd()
	e.mu.Lock()
	ip, ok := e.mu.pending[fd]
	if !ok { // not from our listener: cannot happen
		e.mu.Unlock()
		unix.Shutdown(fd, unix.SHUT_RDWR)
		return ctx
	}
	delete(e.mu.pending, fd)
	wfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if e.mu.closed || err != nil {
		e.unreserveLocked(ip)
		e.mu.Unlock()
		if err != nil {
			e.logger.Warn("closing a connection: cannot duplicate its descriptor", "remote", nc.RemoteAddr(), "err", err)
		} else {
			unix.Close(wfd)
		}
		// netpoll sees the hang-up as soon as it registers the socket, and
		// closes it; the request callback discards anything read before.
		unix.Shutdown(fd, unix.SHUT_RDWR)
		return ctx
	}
	c := &npConn{e: e, nc: nc, id: e.nextID.Add(1), ip: ip, remote: nc.RemoteAddr(), wfd: wfd, done: make(chan struct{})}
	c.lastActive.Store(e.now())
	c.idle = time.AfterFunc(math.MaxInt64, c.idleCheck)
	e.mu.conns[c] = struct{}{}
	e.wg.Add(1)
	// Still under e.mu, so before Close can see c: a close that came
	// before the callback was added would never report back, and Close
	// would wait forever. netpoll has not registered the socket yet, so
	// nothing else can close it meanwhile.
	nc.AddCloseCallback(func(netpoll.Connection) error {
		c.closeFrom(true, true)
		return nil
	})
	c.idle.Reset(e.cfg.ConnectionsMaxIdle)
	e.mu.Unlock()
	return context.WithValue(ctx, npConnKey{}, c)
}

// onRequest is netpoll's request callback: it runs on a goroutine of its
// own, one at a time per connection, while the connection has input.
func (e *NetpollServer) onRequest(ctx context.Context, nc netpoll.Connection) error {
	r := nc.Reader()
	c, _ := ctx.Value(npConnKey{}).(*npConn)
	if c == nil { // refused at prepare: discard until netpoll closes it
		r.Skip(r.Len())
		return r.Release()
	}
	c.readFrames(r)
	return nil
}

// acquire takes a server-wide request token for c, or queues c to be handed
// one. Called with c.mu held.
func (e *NetpollServer) acquire(c *npConn) bool {
	e.tok.Lock()
	defer e.tok.Unlock()
	if c.granted {
		c.granted = false
		return true
	}
	if e.tok.used < e.cfg.QueuedMaxRequests {
		e.tok.used++
		return true
	}
	if !c.waiting {
		c.waiting = true
		e.tok.waiters = append(e.tok.waiters, c)
	}
	return false
}

// release gives a token back, handing it to the first waiting connection.
func (e *NetpollServer) release() {
	e.tok.Lock()
	if len(e.tok.waiters) == 0 {
		e.tok.used--
		e.tok.Unlock()
		return
	}
	w := e.tok.waiters[0]
	e.tok.waiters[0] = nil
	e.tok.waiters = e.tok.waiters[1:]
	w.waiting, w.granted = false, true
	e.tok.Unlock()
	go w.pump() // dispatches on its own goroutine, not on this connection's writer
}

// dropGrant gives back a token handed to c after c closed.
func (e *NetpollServer) dropGrant(c *npConn) {
	e.tok.Lock()
	g := c.granted
	c.granted = false
	e.tok.Unlock()
	if g {
		e.release()
	}
}

// npConn is one client connection of the netpoll engine.
type npConn struct {
	e      *NetpollServer
	nc     netpoll.Connection
	id     uint64
	ip     string
	remote net.Addr
	// wfd is a dup of the socket that all writes use; it is closed when the
	// connection is finished (no writer can be using it then), or by wfile
	// once that wraps it.
	wfd  int
	idle *time.Timer
	// done is closed when the connection closes (closeFrom): its
	// requests' Done.
	done chan struct{}

	lastActive atomic.Int64 // e.now() when bytes last arrived or a response was last written
	lastWrite  atomic.Int64 // e.now() when a write last started or made progress
	midFrame   atomic.Bool  // a frame's size has been read, not all its bytes

	waiting, granted bool // guarded by e.tok

	mu struct {
		sync.Mutex
		backlog      [][]byte // read, not yet given to the handler, oldest first
		backlogBytes int      // their bytes
		// headUnreserved: the backlog's one frame holds no room in the
		// server-wide backlog, since the handler can take it at once
		// (enqueue).
		headUnreserved bool
		queue          []*npSlot // given to the handler, not yet written, in request order
		dispatching    bool      // a goroutine is calling Serve for this connection
		writing        bool      // a goroutine is writing this connection's answers
		// closing: a response asking to close the connection (CloseAfter)
		// has been given. The requests read after it are dropped, never
		// handed to the handler (see the std engine's conn.closing).
		closing bool
		closed  bool
		// draining: the peer hung up (netpoll closed the connection)
		// with frames in the backlog, which are still served, their
		// answers dropped, as Kafka's Selector processes all that a
		// closing channel received (an acks=0 producer's last records,
		// sent just before its close). It ends with the backlog, or
		// when the connection is closed from this side (Close).
		draining    bool
		netpollDone bool // netpoll's close callbacks have run
		finished    bool
		wfile       *os.File // wfd, registered with Go's poller once a write met EAGAIN
	}

	// w is the writer's state while a writer runs, from npWrites: a
	// connection with nothing to write holds none, and writes allocate
	// nothing.
	w *npWrite
}

// npWrites holds writer state between writes.
var npWrites = sync.Pool{New: func() any {
	w := new(npWrite)
	w.writevFn, w.sendfileFn = w.writevOp, w.sendfileOp
	return w
}}

type npWrite struct {
	e                    *NetpollServer
	c                    *npConn
	writevFn, sendfileFn func(fd int) bool // w's ops, bound once
	parts                []Part            // byte parts being written
	i, off               int               // progress: parts[i].Bytes[off:] is next
	file                 int               // sendfile: source descriptor
	pos                  int64             // sendfile: next offset
	left                 int64             // sendfile: bytes left
	region               Part
	err                  error
	unsupported          error // sendfile cannot send region's file: copy it
	iov                  [64]unix.Iovec
}

// npSlot is one request's place in its connection's order.
type npSlot struct {
	c        *npConn
	resp     Response
	answered bool // guarded by c.mu
	released bool // guarded by c.mu: its token was given back (parked or answered)
}

// park gives the slot's token back (Request.Park), once.
func (sl *npSlot) park() {
	c := sl.c
	c.mu.Lock()
	if sl.released {
		c.mu.Unlock()
		return
	}
	sl.released = true
	c.mu.Unlock()
	c.e.release()
}

func (c *npConn) touch() { c.lastActive.Store(c.e.now()) }

// readFrames takes every whole frame netpoll has buffered, waiting for the
// rest of a frame once its size has arrived.
func (c *npConn) readFrames(r netpoll.Reader) {
	c.touch()
	for r.Len() > 0 {
		if c.isStopped() {
			r.Skip(r.Len())
			r.Release()
			return
		}
		hdr, err := r.Peek(4)
		if err != nil {
			c.closeRead(err)
			return
		}
		size := int32(binary.BigEndian.Uint32(hdr))
		if size < 0 || size > c.e.cfg.SocketRequestMaxBytes {
			c.e.oversize.Add(1)
			c.e.logger.Warn("closing a connection: request frame over socket.request.max.bytes",
				"remote", c.remote, "size", size, "limit", c.e.cfg.SocketRequestMaxBytes)
			c.close()
			return
		}
		r.Skip(4)
		frame, err := c.readFrame(r, int(size))
		r.Release()
		if err != nil {
			c.closeRead(err)
			return
		}
		if !c.enqueue(frame) {
			continue // closed or closing: the rest of the input goes unread
		}
		c.pump()
	}
}

// readFrame copies a frame's bytes into a buffer of its own (newFrame): at
// once when all are buffered, else as they arrive, so netpoll never holds a
// whole large frame besides ours.
func (c *npConn) readFrame(r netpoll.Reader, size int) ([]byte, error) {
	if size == 0 {
		return []byte{}, nil
	}
	if r.Len() >= size {
		b, err := r.Next(size)
		if err != nil {
			return nil, err
		}
		frame := newFrame(size)
		copy(frame, b)
		return frame, nil
	}
	c.midFrame.Store(true)
	defer c.midFrame.Store(false)
	// As the bytes arrive, into a buffer that grows with them
	// (ReadFrame).
	frame := newFrame(min(size, firstFrameChunk))
	for got := 0; got < size; {
		if got == len(frame) {
			frame = growFrame(frame, size)
		}
		n := min(r.Len(), len(frame)-got)
		if n == 0 {
			r.Release()
			if _, err := r.Peek(1); err != nil {
				return nil, err
			}
			c.touch()
			continue
		}
		b, err := r.Next(n)
		if err != nil {
			return nil, err
		}
		got += copy(frame[got:], b)
		r.Release()
	}
	return frame, nil
}

// enqueue adds a frame to the backlog, or closes the connection if the frame
// does not fit: its client sent more than the engine holds for it, or the
// server holds as many waiting requests as it takes from all clients. A
// frame read behind a response that closes the connection is dropped.
//
// A frame the handler can take at once (nothing ahead of it, room in the
// window, a token free, which is then kept for it) takes no room in the
// server-wide backlog: that room is for frames that must wait, and taking
// it for every frame let one connection's waiting frames get every other
// connection closed on its next request, idle as the handler was.
func (c *npConn) enqueue(frame []byte) bool {
	c.mu.Lock()
	if c.mu.closed || c.mu.closing {
		c.mu.Unlock()
		releaseFrame(frame)
		return false
	}
	n := len(c.mu.backlog)
	direct := n == 0 && len(c.mu.queue) < c.e.cfg.MaxInFlightPerConnection && c.e.grantNow(c)
	full := "" // why the frame does not fit
	switch {
	case direct:
	case n >= c.e.cfg.MaxInFlightPerConnection || (n > 0 && c.mu.backlogBytes+len(frame) > int(c.e.cfg.SocketRequestMaxBytes)):
		full = "it sent more requests than are held for it unanswered"
	case !c.e.reserveBacklog(len(frame)):
		full = "the requests waiting server-wide are at queued.max.requests or socket.request.max.bytes"
	}
	if full != "" {
		inFlight := len(c.mu.queue)
		c.mu.Unlock()
		c.e.overflows.Add(1)
		c.e.logger.Warn("closing a connection: "+full,
			"remote", c.remote, "in_flight", inFlight, "waiting", n, "frame_bytes", len(frame))
		c.close()
		return false
	}
	c.mu.backlog = append(c.mu.backlog, frame)
	c.mu.backlogBytes += len(frame)
	if direct {
		c.mu.headUnreserved = true
	}
	c.mu.Unlock()
	return true
}

// grantNow takes a free token for c, to be used by its next dispatch
// (acquire), without queueing c for one. Called with c.mu held.
func (e *NetpollServer) grantNow(c *npConn) bool {
	e.tok.Lock()
	defer e.tok.Unlock()
	if c.granted {
		return true
	}
	if e.tok.used < e.cfg.QueuedMaxRequests {
		e.tok.used++
		c.granted = true
		return true
	}
	return false
}

// reserveBacklog makes room for a frame of n bytes in the server-wide
// backlog (bl), or reports that there is none.
func (e *NetpollServer) reserveBacklog(n int) bool {
	e.bl.Lock()
	defer e.bl.Unlock()
	if e.bl.frames > 0 && (e.bl.frames >= e.cfg.QueuedMaxRequests || e.bl.bytes+n > int(e.cfg.SocketRequestMaxBytes)) {
		return false
	}
	e.bl.frames++
	e.bl.bytes += n
	return true
}

// releaseBacklog gives back the server-wide backlog's room for frames
// that have left a backlog, to the handler or dropped.
func (e *NetpollServer) releaseBacklog(frames, bytes int) {
	e.bl.Lock()
	e.bl.frames -= frames
	e.bl.bytes -= bytes
	e.bl.Unlock()
}

// pump gives backlogged frames to the handler, in order, while the
// connection and the server have room. One goroutine at a time pumps; the
// others return, and the pumping one sees their changes when it re-checks.
func (c *npConn) pump() {
	c.mu.Lock()
	if c.mu.dispatching {
		c.mu.Unlock()
		return
	}
	c.mu.dispatching = true
	// closing before acquire: a connection that will serve nothing more
	// takes no token.
	for (!c.mu.closed || c.drainingLocked()) && !c.mu.closing && len(c.mu.backlog) > 0 && len(c.mu.queue) < c.e.cfg.MaxInFlightPerConnection && c.e.acquire(c) {
		frame := c.mu.backlog[0]
		c.mu.backlog[0] = nil
		c.mu.backlog = c.mu.backlog[1:]
		c.mu.backlogBytes -= len(frame)
		if c.mu.headUnreserved {
			c.mu.headUnreserved = false
		} else {
			c.e.releaseBacklog(1, len(frame))
		}
		sl := &npSlot{c: c}
		c.mu.queue = append(c.mu.queue, sl)
		c.mu.Unlock()
		c.e.h.Serve(&Request{Frame: frame, ConnID: c.id, RemoteAddr: c.remote, parker: sl, done: c.done}, sl.respond)
		c.mu.Lock()
	}
	c.mu.dispatching = false
	stopped := (c.mu.closed && !c.drainingLocked()) || c.mu.closing
	fin := c.finishLocked()
	c.mu.Unlock()
	if stopped {
		c.e.dropGrant(c)
	}
	if fin {
		c.finished()
	}
}

func (sl *npSlot) respond(r Response) {
	c := sl.c
	c.mu.Lock()
	if sl.answered {
		c.mu.Unlock()
		return
	}
	sl.answered, sl.resp = true, r
	if r.CloseAfter && !c.mu.closing {
		c.mu.closing = true
		c.dropBacklogLocked()
	}
	// The request leaves queued.max.requests once answered (see the std
	// engine's slot.respond): an answer its client is slow to read holds
	// only its place in this connection's queue.
	release := !sl.released
	sl.released = true
	start := !c.mu.writing && c.mu.queue[0] == sl
	if start {
		c.mu.writing = true
		// The idle check reads a writing connection's lastWrite: from
		// now, not a stale one, so a writer about to start is not stalled.
		c.lastWrite.Store(c.e.now())
	}
	c.mu.Unlock()
	if release {
		c.e.release()
	}
	if start {
		go c.writeLoop()
	}
}

// writeLoop writes every answered request at the head of the queue, in
// order, and ends at the first one not answered yet. A request keeps its
// place (and its share of MaxInFlightPerConnection) until it is written.
func (c *npConn) writeLoop() {
	c.w = npWrites.Get().(*npWrite)
	c.w.e, c.w.c = c.e, c
	for {
		c.mu.Lock()
		if len(c.mu.queue) == 0 || !c.mu.queue[0].answered {
			c.w.c = nil
			npWrites.Put(c.w)
			c.w = nil
			c.mu.writing = false
			fin := c.finishLocked()
			c.mu.Unlock()
			if fin {
				c.finished()
			}
			return
		}
		sl := c.mu.queue[0]
		closed := c.mu.closed
		c.mu.Unlock()
		r := sl.resp
		var err error
		if !closed && !r.NoResponse {
			err = c.write(r.Parts)
			// A completed send is activity, as Kafka's Selector counts
			// it: the idle clock restarts here, not at the request's
			// arrival. Stamped while the request is still queued, so
			// idleCheck sees it in flight or sees the stamp.
			c.touch()
		}
		if r.Done != nil {
			r.Done()
		}
		c.mu.Lock()
		c.mu.queue[0] = nil
		c.mu.queue = c.mu.queue[1:]
		c.mu.Unlock()
		switch {
		case err != nil:
			c.closeWith(err)
		case r.CloseAfter && !closed:
			c.close()
		}
		c.pump() // room for one more
	}
}

// write sends the parts in order: runs of byte parts with writev, file
// regions with sendfile.
func (c *npConn) write(parts []Part) error {
	c.lastWrite.Store(c.e.now())
	start := 0
	for i, p := range parts {
		if p.File == nil {
			continue
		}
		if err := c.writeBytes(parts[start:i]); err != nil {
			return err
		}
		if err := c.sendFile(p); err != nil {
			return err
		}
		start = i + 1
	}
	return c.writeBytes(parts[start:])
}

func (c *npConn) writeBytes(parts []Part) error {
	w := c.w
	w.parts, w.i, w.off, w.err = parts, 0, 0, nil
	err := c.sysWrite(w.writevFn)
	w.parts = nil
	return errors.Join(err, w.err)
}

// writevOp writes the remaining byte parts; false means EAGAIN.
func (w *npWrite) writevOp(fd int) bool {
	for {
		for w.i < len(w.parts) && w.off == len(w.parts[w.i].Bytes) {
			w.i, w.off = w.i+1, 0
		}
		if w.i == len(w.parts) {
			return true
		}
		n := 0
		for j, off := w.i, w.off; j < len(w.parts) && n < len(w.iov); j, off = j+1, 0 {
			b := w.parts[j].Bytes[off:]
			if len(b) == 0 {
				continue
			}
			w.iov[n].Base = &b[0]
			w.iov[n].SetLen(len(b))
			n++
		}
		written, err := writev(fd, w.iov[:n])
		for k := range n {
			w.iov[k].Base = nil // keep no response memory alive
		}
		if written > 0 {
			w.e.copiedBytes.Add(uint64(written))
			w.c.lastWrite.Store(w.e.now())
			for written > 0 {
				if left := len(w.parts[w.i].Bytes) - w.off; written < left {
					w.off += written
					written = 0
				} else {
					written -= left
					w.i, w.off = w.i+1, 0
				}
			}
		}
		switch {
		case err == unix.EAGAIN:
			return false
		case err == unix.EINTR:
		case err != nil:
			w.err = err
			return true
		}
	}
}

func writev(fd int, iov []unix.Iovec) (int, error) {
	n, _, e := unix.Syscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// sendFile writes a file region with sendfile(2) at an explicit offset, or
// copies it if sendfile cannot send the file.
func (c *npConn) sendFile(p Part) error {
	rc, err := p.File.SyscallConn()
	if err != nil {
		return err
	}
	w := c.w
	w.pos, w.left, w.region, w.err, w.unsupported = p.Offset, p.Length, p, nil, nil
	var sendErr error
	ctlErr := rc.Control(func(ffd uintptr) {
		w.file = int(ffd)
		sendErr = c.sysWrite(w.sendfileFn)
	})
	w.region = Part{}
	if err := errors.Join(ctlErr, sendErr, w.err); err != nil || w.unsupported == nil {
		return err
	}
	c.e.fallback.note(c.e.logger, p.File, w.unsupported)
	return copyRegion(p.File, w.pos, w.left, func(b []byte) error {
		return c.writeBytes([]Part{{Bytes: b}})
	})
}

// sendfileOp sends the rest of the region; false means EAGAIN.
func (w *npWrite) sendfileOp(fd int) bool {
	for w.left > 0 {
		n, err := w.e.sendfile(fd, w.file, &w.pos, int(min(w.left, 1<<30)))
		if n > 0 {
			w.left -= int64(n)
			w.e.sendfileBytes.Add(uint64(n))
			w.c.lastWrite.Store(w.e.now())
		}
		switch {
		case err == unix.EAGAIN:
			return false
		case err == unix.EINTR:
			continue
		case sendfileUnsupported(err):
			w.unsupported = err
			return true
		case err != nil:
			w.err = err
			return true
		case n == 0:
			p := w.region
			w.err = fmt.Errorf("netio: %s ends before the region [%d, %d) it was asked to send", p.File.Name(), p.Offset, p.Offset+p.Length)
			return true
		}
	}
	return true
}

// sysWrite runs op on the connection's write descriptor until op reports
// done, parking on Go's poller whenever op meets EAGAIN.
func (c *npConn) sysWrite(op func(fd int) bool) error {
	c.mu.Lock()
	wf, closed := c.mu.wfile, c.mu.closed
	c.mu.Unlock()
	if closed {
		return net.ErrClosed
	}
	if wf == nil {
		// wfd stays open while this goroutine writes: only finish closes
		// it, and finish waits for the writer.
		if op(c.wfd) {
			return nil
		}
		c.mu.Lock()
		if c.mu.closed {
			c.mu.Unlock()
			return net.ErrClosed
		}
		if c.mu.wfile == nil {
			// The socket is nonblocking (netpoll made it so), so the file
			// is registered with Go's poller.
			c.mu.wfile = os.NewFile(uintptr(c.wfd), "netio-conn-"+strconv.FormatUint(c.id, 10))
		}
		wf = c.mu.wfile
		c.mu.Unlock()
	}
	rc, err := wf.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Write(func(fd uintptr) bool { return op(int(fd)) })
}

// isStopped reports whether the connection reads no more requests: it is
// closed, or a response has asked to close it.
func (c *npConn) isStopped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.closed || c.mu.closing
}

// dropBacklogLocked drops the frames read and not handed to the handler,
// giving their buffers and their room in the server-wide backlog back.
func (c *npConn) dropBacklogLocked() {
	frames, bytes := len(c.mu.backlog), c.mu.backlogBytes
	if c.mu.headUnreserved {
		frames, bytes = frames-1, bytes-len(c.mu.backlog[0])
		c.mu.headUnreserved = false
	}
	c.e.releaseBacklog(frames, bytes)
	for _, f := range c.mu.backlog {
		releaseFrame(f)
	}
	c.mu.backlog, c.mu.backlogBytes = nil, 0
}

// idleCheck closes the connection once nothing has arrived or been written
// for connections.max.idle.ms and nothing is in flight (or a frame has
// stopped half way, or an answer has not moved). A client waiting on a long
// poll is not idle, and one answered late has the whole period from its
// answer.
func (c *npConn) idleCheck() {
	idle := c.e.cfg.ConnectionsMaxIdle
	now := c.e.now()
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return
	}
	if since := time.Duration(now - c.lastActive.Load()); since < idle {
		c.idle.Reset(idle - since)
		c.mu.Unlock()
		return
	}
	// A connection writing an answer its client does not read for
	// connections.max.idle.ms is idle too, as Kafka counts no activity.
	stalled := c.mu.writing && time.Duration(now-c.lastWrite.Load()) >= idle
	if len(c.mu.queue)+len(c.mu.backlog) > 0 && !c.midFrame.Load() && !stalled {
		c.lastActive.Store(now)
		c.idle.Reset(idle)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.e.logger.Info("closing an idle connection", "remote", c.remote, "idle", idle)
	c.close()
}

// closeRead closes the connection on a read error. The end of the input
// (the client hung up, mid-frame) is a hang-up: the frames parsed before it
// are still served.
func (c *npConn) closeRead(err error) {
	if !errors.Is(err, netpoll.ErrEOF) && !errors.Is(err, netpoll.ErrConnClosed) {
		c.e.logger.Info("closing a connection", "remote", c.remote, "err", err)
		c.close()
		return
	}
	c.closeFrom(false, true)
}

func (c *npConn) closeWith(err error) {
	if !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrClosed) && !errors.Is(err, unix.EPIPE) && !errors.Is(err, unix.ECONNRESET) {
		c.e.logger.Info("closing a connection", "remote", c.remote, "err", err)
	}
	c.close()
}

func (c *npConn) close() { c.closeFrom(false, false) }

// closeFrom closes the connection: shuts the socket down (the peer sees it
// at once, even while the write descriptor stays open for a writer that is
// finishing), drops the backlog, unless the peer hung up (then it drains
// it), and closes netpoll's side unless this is netpoll's own close
// callback.
func (c *npConn) closeFrom(fromNetpoll, hungUp bool) {
	c.mu.Lock()
	if fromNetpoll {
		c.mu.netpollDone = true
	}
	if c.mu.closed {
		drained := false
		if !hungUp && c.mu.draining {
			c.mu.draining = false
			c.dropBacklogLocked()
			drained = true
		}
		fin := c.finishLocked()
		c.mu.Unlock()
		if drained {
			c.e.dropGrant(c)
		}
		if fin {
			c.finished()
		}
		return
	}
	c.mu.closed = true
	close(c.done)
	unix.Shutdown(c.wfd, unix.SHUT_RDWR)
	if c.mu.wfile != nil {
		c.mu.wfile.Close() // wakes a writer parked on the poller
	}
	c.mu.draining = hungUp && !c.mu.closing && len(c.mu.backlog) > 0
	if !c.mu.draining {
		c.dropBacklogLocked()
	}
	draining := c.mu.draining
	c.idle.Stop()
	fin := c.finishLocked()
	c.mu.Unlock()

	e := c.e
	if !draining {
		e.forget(c)
	} // else still a connection, which Close must find, until drained
	if !fromNetpoll {
		c.nc.Close()
	}
	if draining {
		e.hooks.run(&e.hooks.hangUp)
		c.pump()
	} else {
		e.dropGrant(c)
	}
	if fin {
		c.finished()
	}
}

// forget takes c out of the server's connections.
func (e *NetpollServer) forget(c *npConn) {
	e.mu.Lock()
	if _, ok := e.mu.conns[c]; ok {
		delete(e.mu.conns, c)
		e.unreserveLocked(c.ip)
	}
	e.mu.Unlock()
}

// finished is called once, when finishLocked has reported the connection
// finished.
func (c *npConn) finished() {
	c.e.forget(c) // a drained connection is still listed
	c.e.wg.Done()
}

// drainingLocked reports whether the connection, closed by its peer,
// still has backlogged frames to serve.
func (c *npConn) drainingLocked() bool {
	return c.mu.draining && !c.mu.closing && len(c.mu.backlog) > 0
}

// finishLocked reports whether the connection has just finished: closed,
// released by netpoll, and with no request left to answer and no goroutine
// at work. It then closes the write descriptor.
func (c *npConn) finishLocked() bool {
	if c.mu.finished || !c.mu.closed || !c.mu.netpollDone || c.mu.writing || c.mu.dispatching || len(c.mu.queue) > 0 || c.drainingLocked() {
		return false
	}
	c.mu.finished = true
	if c.mu.wfile == nil {
		unix.Close(c.wfd)
	}
	return true
}

// npListener hands netpoll's poller the listening socket. It accepts with
// accept4 on its own dup of the descriptor, guarded so that a close can
// never race an accept onto a reused descriptor number, and refuses
// connections over the limits right there.
type npListener struct {
	e    *NetpollServer
	l    net.Listener
	addr net.Addr
	evl  netpoll.EventLoop

	mu sync.Mutex
	fd int // -1 once closed
	// spare is a descriptor held in reserve (on /dev/null; -1 if none):
	// when the process runs out, it is given up for a moment to take a
	// waiting connection off the queue and close it (refuse).
	spare     int
	closeOnce sync.Once
	closeErr  error

	registered chan struct{} // closed when the event loop takes the listener
	regOnce    sync.Once
}

var _ netpoll.Listener = (*npListener)(nil)

func (l *npListener) signalRegistered() { l.regOnce.Do(func() { close(l.registered) }) }

// Fd is called by netpoll's event loop when it registers the listener,
// under the lock that its Shutdown takes.
func (l *npListener) Fd() int {
	l.signalRegistered()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fd
}

func (l *npListener) Addr() net.Addr { return l.addr }

func (l *npListener) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		if l.fd >= 0 {
			unix.Close(l.fd)
			l.fd = -1
		}
		if l.spare >= 0 {
			unix.Close(l.spare)
			l.spare = -1
		}
		l.mu.Unlock()
		if err := l.l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			l.closeErr = err
		}
	})
	return l.closeErr
}

// Accept returns the next admitted connection; nil and no error tell
// netpoll there is none now.
func (l *npListener) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		if l.fd < 0 {
			l.mu.Unlock()
			return nil, net.ErrClosed
		}
		fd, sa, err := accept4(l.fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		refused := false
		if err == unix.EMFILE || err == unix.ENFILE {
			refused, err = l.refuseLocked()
		}
		l.mu.Unlock()
		switch {
		case refused:
			l.e.logger.Warn("connection refused: out of file descriptors", "listener", l.addr)
			continue
		case err == unix.EAGAIN:
			return nil, nil
		case err == unix.EINTR || err == unix.ECONNABORTED:
			continue
		case err != nil:
			return nil, err
		}
		remote := sockaddrToAddr(sa)
		if !l.e.admit(fd, remote) {
			unix.Close(fd)
			continue
		}
		if _, ok := remote.(*net.TCPAddr); ok {
			unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1) // as Go's net does
		}
		return &npAccepted{fd: fd, local: l.addr, remote: remote}, nil
	}
}

// accept4 is unix.Accept4; a test makes it run out of descriptors.
var accept4 = unix.Accept4

// openSpare opens a descriptor to hold in reserve, -1 if it cannot.
func openSpare() int {
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	return fd
}

// refuseLocked is accept for a process out of file descriptors (EMFILE,
// ENFILE): it closes the spare, takes the waiting connection on the freed
// descriptor, closes it, and takes the spare again. The poller watches the
// listener level-triggered, so a connection left waiting would wake it at
// once, again and again; netpoll's own answer to the error (a goroutine
// retrying accept) would outlive Close. A client refused so sees its
// connection closed and tries again after its reconnect backoff, as with
// max.connections. Without a spare it reports the error (netpoll's answer
// then stands); with no connection left waiting, EAGAIN. Called with l.mu
// held.
func (l *npListener) refuseLocked() (bool, error) {
	if l.spare < 0 {
		if l.spare = openSpare(); l.spare < 0 {
			return false, unix.EMFILE
		}
	}
	unix.Close(l.spare)
	fd, _, err := accept4(l.fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
	if err == nil {
		l.e.rejected.Add(1) // counted before the client can see it
		unix.Close(fd)
	}
	l.spare = openSpare()
	return err == nil, err
}

func sockaddrToAddr(sa unix.Sockaddr) net.Addr {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IPv4(sa.Addr[0], sa.Addr[1], sa.Addr[2], sa.Addr[3]), Port: sa.Port}
	case *unix.SockaddrInet6:
		zone := ""
		if sa.ZoneId != 0 {
			zone = strconv.FormatUint(uint64(sa.ZoneId), 10)
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				zone = ifi.Name
			}
		}
		return &net.TCPAddr{IP: append(net.IP(nil), sa.Addr[:]...), Port: sa.Port, Zone: zone}
	case *unix.SockaddrUnix:
		return &net.UnixAddr{Name: sa.Name, Net: "unix"}
	}
	return &net.UnixAddr{Net: "unix"}
}

// npAccepted carries an accepted socket to netpoll, which takes its
// descriptor and addresses; nothing else of it is used.
type npAccepted struct {
	fd            int
	local, remote net.Addr
}

var _ netpoll.Conn = (*npAccepted)(nil)

func (a *npAccepted) Fd() int                          { return a.fd }
func (a *npAccepted) LocalAddr() net.Addr              { return a.local }
func (a *npAccepted) RemoteAddr() net.Addr             { return a.remote }
func (a *npAccepted) Read([]byte) (int, error)         { return 0, errors.ErrUnsupported }
func (a *npAccepted) Write([]byte) (int, error)        { return 0, errors.ErrUnsupported }
func (a *npAccepted) Close() error                     { return errors.ErrUnsupported }
func (a *npAccepted) SetDeadline(time.Time) error      { return errors.ErrUnsupported }
func (a *npAccepted) SetReadDeadline(time.Time) error  { return errors.ErrUnsupported }
func (a *npAccepted) SetWriteDeadline(time.Time) error { return errors.ErrUnsupported }
