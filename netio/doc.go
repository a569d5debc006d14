// Package netio is the broker's network layer: listeners, Kafka's framing
// (a 4-byte big-endian size, then the request), responses that leave each
// connection in request order, and zero-copy file sends.
//
// A response is a list of parts: byte slices, written with writev, and file
// regions, written with sendfile(2) at explicit offsets through the socket's
// raw descriptor, so that record bytes go from the page cache to the socket
// without passing through the process. When the socket is full the sender
// parks on Go's poller (no spinning, no OS thread held). Stats counts the
// bytes sent each way, so tests can prove which path a response took.
//
// Every queue is bounded: a frame over socket.request.max.bytes closes its
// connection before any of it is read; a connection is not read while
// MaxInFlightPerConnection of its requests are unanswered, nor any connection
// while queued.max.requests are in flight; max.connections and
// max.connections.per.ip refuse connections at accept; connections.max.idle.ms
// closes connections with nothing arriving and nothing in flight.
//
// Server is the std engine (Go's net, a goroutine reading and one writing per
// connection). DESIGN's second engine, an event loop over cloudwego/netpoll
// behind the same interface, is not written yet.
//
// Concurrency: per connection, the read goroutine owns reading and queues a
// slot per request; the write goroutine owns writing and takes slots in
// order; handlers answer through the slot from any goroutine. The server's
// connection table is guarded by mu.
package netio
