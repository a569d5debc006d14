// Package netio is the broker's network layer: listeners, Kafka's framing
// (a 4-byte big-endian size, then the request), responses that leave each
// connection in request order, and zero-copy file sends.
//
// A response is a list of parts: byte slices, written with writev, and file
// regions, written with sendfile(2) at explicit offsets on the socket's
// descriptor, so that record bytes go from the page cache to the socket
// without passing through the process, and concurrent sends of one file
// never share a file position. When the socket is full the sender parks on
// Go's runtime poller (no spinning, no OS thread held). A file sendfile
// cannot send (EINVAL, ENOSYS or EOPNOTSUPP: a filesystem without splice
// support) has the rest of its region copied through a pooled 256 KiB
// buffer instead, logged once per engine, as Java's transferTo falls back
// for Kafka (sendfile.go). Stats counts the bytes sent each way, so tests
// can prove which path a response took.
//
// # Two engines, one contract
//
// Engine is the interface; New builds the one Config.Engine
// (network.engine) names. Both engines take the same Handler, Request,
// Response and Part and keep the same promises: Serve is called once per
// request, in request order, one call at a time per connection, on a
// goroutine that the connection's reading (or, under netpoll, writing)
// waits on, so it must hand slow work elsewhere; respond may be called from
// any goroutine, at once or later, and responses still leave in request
// order; NoResponse lets a request's turn pass; CloseAfter closes the
// connection once its response is written; Response.Done is called exactly
// once, after the response is written or dropped because the connection
// closed; Request.Done is closed as the connection closes, for whatever
// reason (the client left, idleness, CloseAfter, Close), so that a handler
// holding a request (a long poll) can give it up at once, though it must
// still respond (the answer is dropped); Close returns once the handlers
// have answered everything they hold.
// A client that hangs up (closes or resets its connection) with whole
// requests sent and not yet served (an acks=0 producer closing after its
// last records) still has them served, as Kafka's Selector keeps a closing
// channel until it has processed all it received: Request.Done closes at
// the hang-up, so long polls end at once; the requests take their turn
// within the bounds below like any others; a frame sent only in part is
// dropped. No answer is meant to reach the client: netpoll writes none
// after the hang-up, and std closes the connection at the first answer it
// cannot write, or once its reading reaches the end of the stream (it sees
// the hang-up only while its reading waits for room, then reads on).
// netpoll keeps such a connection ("draining": still counted) until its
// backlog has all gone to the handler. Close drops what has not reached
// the handler yet, as Kafka drops its closing channels when it shuts down.
// Once a response with CloseAfter is given, no request of its connection
// that Serve has not had yet ever reaches it: those already read are
// dropped unanswered, as Kafka reads nothing past a request it closes the
// connection for. The client retries what it pipelined behind, and serving
// that too (a produce appended) would duplicate it. A handler that gives
// such a response within Serve (the broker's answer to a malformed
// request) is sure that nothing behind it is served; one that gives it
// later may have been handed some of the requests behind meanwhile.
// A frame belongs to its handler, which may give a large one back with
// Request.Release for a later frame to be read into (framepool.go).
//
// std (Server): Go's net, a goroutine reading and one writing per connection.
// The read goroutine reads a frame, queues a slot for it and calls Serve;
// the write goroutine takes the slots in order and writes each response when
// its handler has answered. A connection costs two goroutines even when idle.
//
// netpoll (NetpollServer): an event loop over cloudwego/netpoll. Its poller
// accepts and reads every readable socket into the connection's buffer; a
// goroutine runs only while a connection has input to parse (netpoll's
// request callback, which frames requests and calls Serve) or answers to
// write (started when the oldest unanswered request is answered, ended when
// the next is not answered yet). An idle connection holds no goroutine, only
// netpoll's buffer (4 KiB) and its bookkeeping. Writes go to a dup of the
// socket that the engine owns, since netpoll may close and reuse its own
// descriptor number at any moment.
//
// The default (DefaultEngine) is std, the engine whose memory stays bounded
// whatever the client does: netpoll measured faster on small requests and
// lighter on idle connections, but an acks=0 producer, which never reads
// answers, outruns it (see DefaultEngine for the figures). Use std too for
// a listener that is not a plain TCP or Unix socket (TLS).
//
// # Bounds
//
// Every queue is bounded, under either engine:
//
//   - A frame over socket.request.max.bytes (or with a negative size) closes
//     its connection as soon as its size has been read, before its body is
//     read or any memory is set aside for it, and counts in OversizeFrames.
//     (netpoll's poller may already have buffered a few KiB of the body; the
//     engine never reads them.)
//   - max.connections and max.connections.per.ip refuse connections at
//     accept (RejectedConnections).
//   - connections.max.idle.ms closes a connection with nothing arriving,
//     nothing written and nothing in flight for that long (or with a frame
//     stalled half way, or an answer its client has not read a byte of for
//     that long); a client waiting on a long poll is not idle, and a
//     request answered late leaves its client the whole period from the
//     answer, as Kafka counts a completed send as activity.
//   - MaxInFlightPerConnection bounds the requests of one connection that
//     the handler holds or that wait for their turn to be written, and
//     queued.max.requests the whole requests the handler holds across all
//     connections. The handler never holds more than these. As Kafka's, the
//     second counts whole requests only: a frame is read before it takes a
//     token (so a connection that sends part of a frame and stalls holds
//     none), a request gives its token back once answered (so a client that
//     does not read its answers holds only its own connection's places),
//     and a request its handler parks (Request.Park: a long-poll fetch
//     waiting for appends) gives its token back while it waits, so that
//     idle consumers cannot starve the producers that would wake them.
//   - A frame's buffer grows with the bytes that arrive (64 KiB, then
//     1 MiB, then fourfold), so a peer announcing a large frame holds at
//     most 64 KiB, or 1 MiB, or four times what it sent (framepool.go).
//   - Accept errors that pass (out of file descriptors or kernel memory)
//     do not end accepting. std pauses it, 5 ms doubling to a second, and
//     Close ends a pause at once. netpoll, whose poller would be woken
//     again at once by a connection left waiting, refuses the waiting
//     connections while the process is out of descriptors: each is taken
//     on a descriptor held in reserve and closed (RejectedConnections), as
//     at max.connections, and clients retry after their reconnect backoff.
//
// How the last bound holds differs. The std engine stops reading a
// connection at its bound (and every connection, once it has read one whole
// frame it cannot hand over, while queued.max.requests are in flight): the
// client's further requests stay in its own socket and TCP pushes back on
// it, so a flood costs the broker at most one waiting frame per connection
// (up to socket.request.max.bytes each; there is no server-wide byte bound
// on them, as Kafka has none by default: queued.max.request.bytes=-1). netpoll cannot
// stop reading one connection (its poller reads any readable socket, and a
// request callback that leaves input unparsed is called again at once), so
// the netpoll engine bounds what it holds instead: requests beyond the
// bounds wait, parsed, in a per-connection backlog of at most
// MaxInFlightPerConnection frames and socket.request.max.bytes bytes, all
// backlogs together holding at most queued.max.requests frames and
// socket.request.max.bytes bytes of frames that wait (a frame the handler
// takes at once, a token being free, holds none of that room, so one
// connection's waiting frames cannot refuse another's that need not wait);
// a connection whose next frame does not fit
// (its client sends more than that without reading its answers, or the
// server is that far behind) is closed and counted in InputOverflows. The
// server therefore holds at most queued.max.requests requests with the
// handler and as many waiting, and a connection at most
// MaxInFlightPerConnection frames with the handler, as many waiting, one
// being read (copied out of netpoll's buffer as it arrives, so never held
// twice), and whatever netpoll reads while Serve runs, which is why Serve
// must return quickly. The Java client and sarama keep at most 5 requests in
// flight per connection by default; librdkafka, with idempotence off, sends
// without such a bound and a netpoll broker closes its connection (std
// pushes back on it instead), one reason std is the default.
//
// # Concurrency
//
// std: per connection, the read goroutine owns reading and queues a slot per
// request; the write goroutine owns writing and takes slots in order;
// handlers answer through the slot from any goroutine. The server's
// connection table is guarded by mu.
//
// netpoll: the engine's connection table is guarded by mu and the
// server-wide request tokens by tok (a connection that finds none waits in
// line and is handed the next one released). Per connection, netpoll's
// request callback owns reading; the connection's mu guards its backlog, its
// queue of requests in order and the flags that let one goroutine at a time
// dispatch (call Serve) and one write. Lock order: connection, then tok or
// the backlog's bound.
package netio
