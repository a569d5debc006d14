package netio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestEngineConfig: network.engine picks the engine, defaults, and an
// unknown value is an error that names it.
func TestEngineConfig(t *testing.T) {
	var cfg Config
	cfg.EnsureDefaults()
	if cfg.Engine != DefaultEngine {
		t.Fatalf("default engine %q, want %q", cfg.Engine, DefaultEngine)
	}
	cfg.Engine = "epoll"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), `network.engine="epoll"`) {
		t.Fatalf("an unknown engine validated as %v", err)
	}
	if _, err := New(cfg, HandlerFunc(func(*Request, func(Response)) {}), Options{Logger: quiet}); err == nil {
		t.Fatal("New accepted an unknown engine")
	}
	for _, engine := range engines {
		s, err := New(Config{Engine: engine}, HandlerFunc(func(*Request, func(Response)) {}), Options{Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		switch s.(type) {
		case *Server:
			if engine != EngineStd {
				t.Fatalf("network.engine=%s built the std engine", engine)
			}
		case *NetpollServer:
			if engine != EngineNetpoll {
				t.Fatalf("network.engine=%s built the netpoll engine", engine)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Serve(l); !errors.Is(err, ErrServerClosed) {
			t.Fatalf("%s: Serve after Close returned %v", engine, err)
		}
	}
}

// TestNegativeIdleNeverExpires: a negative connections.max.idle.ms turns
// idle expiry off, as in Kafka, whose own server.properties may say -1;
// Gregor refused it. The period it stands for must not overflow the
// deadlines the engines add it to (a connection's age plus the period).
func TestNegativeIdleNeverExpires(t *testing.T) {
	var cfg Config
	cfg.EnsureDefaults()
	cfg.ConnectionsMaxIdle = -1
	if err := cfg.Validate(); err != nil {
		t.Fatalf("a negative idle period: %v", err)
	}
	cfg.EnsureDefaults()
	if cfg.ConnectionsMaxIdle != NeverIdle {
		t.Fatalf("a negative idle period became %v, want NeverIdle", cfg.ConnectionsMaxIdle)
	}
	if age := 50 * 365 * 24 * time.Hour; age+NeverIdle <= age || time.Now().Add(age+NeverIdle).Before(time.Now()) {
		t.Fatalf("NeverIdle overflows a deadline")
	}
	zero := cfg
	zero.ConnectionsMaxIdle = time.Microsecond
	if err := zero.Validate(); err == nil || !strings.Contains(err.Error(), "connections.max.idle.ms=0") {
		t.Fatalf("an idle period under a millisecond validated as %v", err)
	}
	forEachEngine(t, func(t *testing.T, engine string) {
		_, addr := startTCP(t, engine, Config{ConnectionsMaxIdle: -1}, HandlerFunc(func(req *Request, respond func(Response)) {
			respond(bytesResponse(req.Frame))
		}))
		c := dial(t, addr)
		for _, msg := range []string{"one", "two"} {
			c.Write(frame([]byte(msg)))
			if got := string(readFrame(t, c)); got != msg {
				t.Fatalf("answered %q, want %q", got, msg)
			}
		}
	})
}

// within waits for a value from ch, failing the test if none comes within
// 30s: a bounded wait on a condition, not a timing assertion.
func within[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("waited 30s for %s", what)
		panic("unreachable")
	}
}

func isClosedErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// TestIdleConnectionsCloseTCP: over real sockets, a connection with nothing
// in flight closes after connections.max.idle.ms; one waiting on a long poll
// outlives two idle periods and still gets its answer.
func TestIdleConnectionsCloseTCP(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		const idle = 50 * time.Millisecond
		release := make(chan func(Response), 1)
		_, addr := startTCP(t, engine, Config{ConnectionsMaxIdle: idle}, HandlerFunc(func(req *Request, respond func(Response)) {
			release <- respond
		}))
		start := time.Now()
		waiting := dial(t, addr)
		waiting.Write(frame([]byte("long poll")))
		respond := within(t, release, "the long poll to reach the handler")
		// Two idle connections, one after the other: when the second closes,
		// the long-polling one has outlived two idle periods.
		for range 2 {
			c := dial(t, addr)
			if _, err := c.Read(make([]byte, 1)); !isClosedErr(err) {
				t.Fatalf("an idle connection stayed open: %v", err)
			}
		}
		if waited := time.Since(start); waited < 2*idle {
			t.Fatalf("idle connections closed after %v, before connections.max.idle.ms", waited)
		}
		respond(bytesResponse([]byte("data")))
		if got := readFrame(t, waiting); string(got) != "data" {
			t.Fatalf("the long-polling connection got %q", got)
		}
	})
}

// TestIdleCountsFromLastResponseTCP: over real sockets, a request answered
// late in connections.max.idle.ms leaves its connection open for a whole
// period after the answer, not after the request's arrival; then it closes.
// The answer leaves no sooner than 0.8 periods after the request was sent,
// so the connection cannot close before 1.8 periods: a bound the engine
// guarantees whatever the machine's load, not a timing guess.
func TestIdleCountsFromLastResponseTCP(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		const idle = 250 * time.Millisecond
		_, addr := startTCP(t, engine, Config{ConnectionsMaxIdle: idle}, HandlerFunc(func(req *Request, respond func(Response)) {
			time.AfterFunc(idle*8/10, func() { respond(bytesResponse([]byte("late"))) })
		}))
		c := dial(t, addr)
		sent := time.Now()
		c.Write(frame([]byte("q")))
		readFrame(t, c)
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Read(make([]byte, 1)); !isClosedErr(err) {
			t.Fatalf("the connection did not close as idle: %v", err)
		}
		if open := time.Since(sent); open < idle*18/10 {
			t.Fatalf("answered at least %v after the request, closed as idle %v after it: before connections.max.idle.ms (%v) had passed since the answer",
				idle*8/10, open, idle)
		}
	})
}

// TestDoneOnceWhenDropped: a response to a connection that has closed is
// dropped, its Done called exactly once; a second respond is ignored; and
// Close waits for the handler to answer what it holds.
func TestDoneOnceWhenDropped(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		got := make(chan func(Response), 1)
		s, addr := startTCP(t, engine, Config{}, HandlerFunc(func(req *Request, respond func(Response)) {
			got <- respond
		}))
		c := dial(t, addr)
		c.Write(frame([]byte("x")))
		respond := within(t, got, "the request")
		c.Close()
		var mu sync.Mutex
		done := 0
		dropped := make(chan struct{})
		respond(Response{Parts: []Part{{Bytes: frame(make([]byte, 64<<10))}}, Done: func() {
			mu.Lock()
			done++
			mu.Unlock()
			close(dropped)
		}})
		respond(Response{Done: func() { t.Error("a second respond was not ignored") }})
		within(t, dropped, "Done")
		closed := make(chan error)
		go func() { closed <- s.Close() }()
		within(t, closed, "Close")
		mu.Lock()
		defer mu.Unlock()
		if done != 1 {
			t.Fatalf("Done called %d times", done)
		}
	})
}

// holdUntilDone answers req, with nothing, once its connection closes or
// quit (the test's end, failed or not) is closed: a long poll that only its
// connection's end gives up.
func holdUntilDone(req *Request, respond func(Response), quit <-chan struct{}) {
	select {
	case <-req.Done():
	case <-quit:
	}
	respond(Response{NoResponse: true})
}

// TestRequestDoneWhenConnectionCloses: Request.Done stays open while the
// connection does, and closes when its client goes away and when the server
// closes, so a handler holding a request (a long poll) can give it up; the
// handler still answers, and Close waits for that. A Request no engine made
// never reports done.
func TestRequestDoneWhenConnectionCloses(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		held := make(chan *Request, 2)
		quit := make(chan struct{}) // the test's end, failed or not
		s, addr := startTCP(t, engine, Config{}, HandlerFunc(func(req *Request, respond func(Response)) {
			held <- req
			go holdUntilDone(req, respond, quit)
		}))
		t.Cleanup(func() { close(quit) }) // before startTCP's Close, which waits for the answers
		leaving, staying := dial(t, addr), dial(t, addr)
		leaving.Write(frame([]byte("leaving")))
		left := within(t, held, "the leaving client's request")
		staying.Write(frame([]byte("staying")))
		stays := within(t, held, "the staying client's request")
		for _, req := range []*Request{left, stays} {
			select {
			case <-req.Done():
				t.Fatalf("%q: Done closed while its connection is open", req.Frame)
			default:
			}
		}
		leaving.Close()
		within(t, left.Done(), "Done after the client closed its connection")
		select {
		case <-stays.Done():
			t.Fatal("another connection's close closed Done")
		default:
		}
		closed := make(chan error)
		go func() { closed <- s.Close() }()
		within(t, stays.Done(), "Done as the server closes")
		within(t, closed, "Close")
	})
	if (&Request{}).Done() != nil {
		t.Fatal("a Request no engine made has a Done channel")
	}
}

// TestDoneWhileTheWindowIsFull: a client that hangs up while its
// connection's window is full, requests it sent still unread behind the one
// held, ends the held request's wait: nothing reads the socket then, but
// the engine still sees the connection close.
func TestDoneWhileTheWindowIsFull(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		held := make(chan *Request, 1)
		quit := make(chan struct{})
		_, addr := startTCP(t, engine, Config{MaxInFlightPerConnection: 1}, HandlerFunc(func(req *Request, respond func(Response)) {
			if string(req.Frame) != "poll" {
				respond(bytesResponse(req.Frame))
				return
			}
			held <- req
			go holdUntilDone(req, respond, quit)
		}))
		t.Cleanup(func() { close(quit) })
		c := dial(t, addr)
		c.Write(append(frame([]byte("poll")), frame([]byte("behind it"))...))
		poll := within(t, held, "the long poll")
		c.Close()
		within(t, poll.Done(), "Done after the client hung up with its window full")
	})
}

// onHangUp has f called when e sees a client hang up.
func onHangUp(e Engine, f func()) {
	switch e := e.(type) {
	case *Server:
		e.hooks.hangUp.Store(&f)
	case *NetpollServer:
		e.hooks.hangUp.Store(&f)
	}
}

// hangUpSeen returns a channel closed once e sees a client hang up.
func hangUpSeen(e Engine) <-chan struct{} {
	seen := make(chan struct{})
	var once sync.Once
	onHangUp(e, func() { once.Do(func() { close(seen) }) })
	return seen
}

// TestRequestsSentBeforeAHangUpAreServed: a client sends requests and closes
// its connection at once (an acks=0 producer's last records, as the Java
// producer's close sends them) while the server has no queued.max.requests
// token for them. Both engines dropped them unserved once they saw the
// hang-up (std as its read loop waited for a token, netpoll in its close
// callback, with the backlog), and the records were lost; Kafka's Selector
// keeps such a channel "so that all received records may be processed". The
// frame the client had sent only part of is dropped: it is no request.
func TestRequestsSentBeforeAHangUpAreServed(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		const queued = 2 // netpoll's backlogs hold as many server-wide: the two sent fit
		holding := make(chan func(Response), queued)
		served := make(chan string, 4)
		s, addr := startTCP(t, engine, Config{QueuedMaxRequests: queued}, HandlerFunc(func(req *Request, respond func(Response)) {
			if string(req.Frame) == "slow" {
				holding <- respond
				return
			}
			served <- string(req.Frame)
			respond(Response{NoResponse: true})
		}))
		hungUp := hangUpSeen(s)
		busy := dial(t, addr)
		var slow []func(Response)
		for range queued {
			busy.Write(frame([]byte("slow")))
			slow = append(slow, within(t, holding, "a slow request"))
		}
		p := dial(t, addr)
		sent := append(frame([]byte("acks=0 first")), frame([]byte("acks=0 last"))...)
		sent = append(sent, frame([]byte("cut short"))[:7]...)
		p.Write(sent)
		p.Close()
		within(t, hungUp, "the server to see the client hang up")
		for _, respond := range slow {
			respond(bytesResponse([]byte("done")))
			readFrame(t, busy)
		}
		for _, want := range []string{"acks=0 first", "acks=0 last"} {
			if got := within(t, served, "a request sent before the hang-up"); got != want {
				t.Fatalf("served %q, want %q", got, want)
			}
		}
		until(t, "the hung-up connection to close", func() bool { return s.Stats().Connections == 1 })
		select {
		case got := <-served:
			t.Fatalf("served %q, a frame the client sent only part of", got)
		default:
		}
		if n := inUse(s); n != 0 {
			t.Fatalf("%d queue tokens still in use", n)
		}
	})
}

// TestRequestsBehindAHangUpKeepTheBounds: the requests a client sent before
// it hung up, served after, still wait their turn within
// MaxInFlightPerConnection: the long polls filling the window end when
// their client hangs up (Done), and only then does the handler get the
// requests behind them, never more at once than the window.
func TestRequestsBehindAHangUpKeepTheBounds(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		const window = 2 // netpoll holds as many waiting: the two behind fit
		held := make(chan *Request, window)
		served := make(chan string, 4)
		quit := make(chan struct{})
		var mu sync.Mutex
		inHandler, most := 0, 0
		s, addr := startTCP(t, engine, Config{MaxInFlightPerConnection: window}, HandlerFunc(func(req *Request, respond func(Response)) {
			mu.Lock()
			inHandler++
			most = max(most, inHandler)
			mu.Unlock()
			answer := func(r Response) {
				mu.Lock()
				inHandler--
				mu.Unlock()
				respond(r)
			}
			if string(req.Frame) == "poll" {
				held <- req
				go holdUntilDone(req, answer, quit)
				return
			}
			served <- string(req.Frame)
			answer(Response{NoResponse: true})
		}))
		t.Cleanup(func() { close(quit) })
		c := dial(t, addr)
		var sent []byte
		for _, r := range []string{"poll", "poll", "behind 1", "behind 2"} {
			sent = append(sent, frame([]byte(r))...)
		}
		c.Write(sent)
		var polls []*Request
		for range window {
			polls = append(polls, within(t, held, "a long poll"))
		}
		c.Close()
		for _, poll := range polls {
			within(t, poll.Done(), "Done after the client hung up with its window full")
		}
		for _, want := range []string{"behind 1", "behind 2"} {
			if got := within(t, served, "a request sent before the hang-up"); got != want {
				t.Fatalf("served %q, want %q", got, want)
			}
		}
		until(t, "the hung-up connection to close", func() bool { return s.Stats().Connections == 0 })
		mu.Lock()
		defer mu.Unlock()
		if most > window {
			t.Fatalf("the handler held %d of the connection's requests at once, over MaxInFlightPerConnection=%d", most, window)
		}
	})
}

// TestCloseDropsWhatAHungUpClientLeft: Close does not wait for the requests
// a hung-up client left to be served (a handler that does not answer would
// hold Close forever): those not handed over yet are dropped, as Kafka
// drops its closing channels when it shuts down, and their room in the
// bounds comes back.
func TestCloseDropsWhatAHungUpClientLeft(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		holding := make(chan *Request, 1)
		served := make(chan string, 4)
		quit := make(chan struct{})
		s, addr := startTCP(t, engine, Config{QueuedMaxRequests: 1}, HandlerFunc(func(req *Request, respond func(Response)) {
			if string(req.Frame) == "slow" {
				holding <- req
				go holdUntilDone(req, respond, quit)
				return
			}
			served <- string(req.Frame)
			respond(Response{NoResponse: true})
		}))
		t.Cleanup(func() { close(quit) })
		hungUp := hangUpSeen(s)
		busy := dial(t, addr)
		busy.Write(frame([]byte("slow")))
		within(t, holding, "the slow request")
		p := dial(t, addr)
		p.Write(frame([]byte("left"))) // one: netpoll's backlogs hold queued.max.requests server-wide
		p.Close()
		within(t, hungUp, "the server to see the client hang up")
		closed := make(chan error, 1)
		go func() { closed <- s.Close() }()
		within(t, closed, "Close")
		if np, ok := s.(*NetpollServer); ok {
			if f, b := backlogged(np); f != 0 || b != 0 {
				t.Fatalf("%d frames of %d bytes still counted waiting after Close", f, b)
			}
		}
		// A token released as Close ends the slow request may pass through
		// the closed connection's place in line on its way back.
		until(t, "every queue token back", func() bool { return inUse(s) == 0 })
	})
}

// TestCloseAfter: CloseAfter closes the connection once its response is
// written, and NoResponse lets the request's turn pass silently.
func TestCloseAfter(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		_, addr := startTCP(t, engine, Config{}, HandlerFunc(func(req *Request, respond func(Response)) {
			switch string(req.Frame) {
			case "acks=0":
				respond(Response{NoResponse: true})
			case "bye":
				respond(Response{Parts: []Part{{Bytes: frame([]byte("bye"))}}, CloseAfter: true})
			default:
				respond(bytesResponse(req.Frame))
			}
		}))
		c := dial(t, addr)
		for _, r := range []string{"a", "acks=0", "b", "bye", "never"} {
			c.Write(frame([]byte(r)))
		}
		for _, want := range []string{"a", "b", "bye"} {
			if got := readFrame(t, c); string(got) != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
		if _, err := c.Read(make([]byte, 1)); !isClosedErr(err) {
			t.Fatalf("the connection stayed open after CloseAfter: %v", err)
		}
	})
}

// TestNothingServedAfterCloseAfter: requests pipelined behind one answered
// with CloseAfter never reach the handler, as Kafka reads nothing past a
// request it closes the connection for: the client sees the connection
// close and retries them, so serving them too (a produce appended) would
// duplicate them. Close waits for the handler's every call, so the count
// after it is final.
func TestNothingServedAfterCloseAfter(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		var mu sync.Mutex
		var behind []string
		s, addr := startTCP(t, engine, Config{}, HandlerFunc(func(req *Request, respond func(Response)) {
			switch string(req.Frame) {
			case "before":
				respond(bytesResponse(req.Frame))
			case "malformed":
				respond(Response{Parts: []Part{{Bytes: frame([]byte("bye"))}}, CloseAfter: true})
			default:
				mu.Lock()
				behind = append(behind, string(req.Frame))
				mu.Unlock()
				respond(Response{NoResponse: true})
			}
		}))
		c := dial(t, addr)
		var pipelined []byte
		for _, r := range []string{"before", "malformed", "produce", "produce again"} {
			pipelined = append(pipelined, frame([]byte(r))...)
		}
		c.Write(pipelined)
		for _, want := range []string{"before", "bye"} {
			if got := readFrame(t, c); string(got) != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Read(make([]byte, 1)); !isClosedErr(err) {
			t.Fatalf("the connection stayed open after CloseAfter: %v", err)
		}
		closed := make(chan error)
		go func() { closed <- s.Close() }()
		within(t, closed, "Close")
		mu.Lock()
		defer mu.Unlock()
		if len(behind) > 0 {
			t.Fatalf("requests pipelined behind a CloseAfter response reached the handler: %q", behind)
		}
	})
}

// TestFloodIsBounded: a client pipelines far more requests than the
// per-connection bound, 64 MiB of them, and never reads an answer. The
// handler never holds more than the bound at once, and the server does not
// take the flood into memory: the std engine stops reading (TCP pushes back
// on the client); the netpoll engine, which cannot stop its poller reading,
// holds the bound and as many waiting, then closes the connection and counts
// it in InputOverflows, so the client cannot write it all.
func TestFloodIsBounded(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		const bound = 3
		const frameBytes = 64 << 10
		const total = 64 << 20
		var mu sync.Mutex
		var held []func(Response)
		inFlight, maxInFlight := 0, 0
		arrived := make(chan struct{}, total/frameBytes)
		s, addr := startTCP(t, engine, Config{MaxInFlightPerConnection: bound}, HandlerFunc(func(req *Request, respond func(Response)) {
			mu.Lock()
			inFlight++
			maxInFlight = max(maxInFlight, inFlight)
			held = append(held, respond)
			mu.Unlock()
			arrived <- struct{}{}
		}))
		answer := func(respond func(Response)) {
			respond(Response{Parts: []Part{{Bytes: frame(nil)}}, Done: func() {
				mu.Lock()
				inFlight--
				mu.Unlock()
			}})
		}
		t.Cleanup(func() { // before the server's Close, which waits for these
			mu.Lock()
			defer mu.Unlock()
			for _, r := range held {
				go answer(r)
			}
		})
		c := dial(t, addr)
		wrote := make(chan int, 1)
		go func() {
			payload := frame(make([]byte, frameBytes-4))
			n := 0
			for n < total {
				if _, err := c.Write(payload); err != nil {
					break
				}
				n += len(payload)
			}
			wrote <- n
		}()
		for range bound {
			within(t, arrived, "the handler to receive the first requests")
		}
		switch engine {
		case EngineNetpoll:
			if _, err := c.Read(make([]byte, 1)); !isClosedErr(err) {
				t.Fatalf("a flooding connection stayed open: %v", err)
			}
			// The server has shut the socket down, but its descriptor
			// stays open while handlers still hold requests (these are
			// held until cleanup), so the client's write may block on a
			// full window instead of failing: end it from this side, as
			// the std case does.
			c.Close()
			if n := within(t, wrote, "the flooding writer to stop"); n >= total {
				t.Fatalf("the server took the whole %d-byte flood", n)
			}
			if st := s.Stats(); st.InputOverflows != 1 {
				t.Fatalf("%d input overflows counted, want 1", st.InputOverflows)
			}
		case EngineStd:
			// Answer one at a time: each answer lets exactly one more in.
			for range 2 * bound {
				mu.Lock()
				r := held[0]
				held = held[1:]
				mu.Unlock()
				answer(r)
				within(t, arrived, "one more request after an answer")
			}
			c.Close()
			within(t, wrote, "the flooding writer to stop")
		}
		mu.Lock()
		defer mu.Unlock()
		if maxInFlight > bound {
			t.Fatalf("the handler held %d requests at once, over the bound %d", maxInFlight, bound)
		}
	})
}

// TestServerWideBound: queued.max.requests bounds the requests being handled
// across connections; the rest wait, and are served as tokens free up.
func TestServerWideBound(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		const conns, queued = 4, 2
		var mu sync.Mutex
		inFlight, maxInFlight := 0, 0
		var held []func(Response)
		arrived := make(chan struct{}, conns)
		_, addr := startTCP(t, engine, Config{QueuedMaxRequests: queued}, HandlerFunc(func(req *Request, respond func(Response)) {
			mu.Lock()
			inFlight++
			maxInFlight = max(maxInFlight, inFlight)
			f := append([]byte(nil), req.Frame...)
			held = append(held, func(Response) {
				// The handler holds a request until it answers.
				mu.Lock()
				inFlight--
				mu.Unlock()
				respond(Response{Parts: []Part{{Bytes: frame(f)}}})
			})
			mu.Unlock()
			arrived <- struct{}{}
		}))
		cs := make([]net.Conn, conns)
		for i := range cs {
			cs[i] = dial(t, addr)
			cs[i].Write(frame([]byte{byte(i)}))
		}
		for served := 0; served < conns; {
			within(t, arrived, "a request")
			served++
			mu.Lock()
			if served >= queued {
				r := held[0]
				held = held[1:]
				mu.Unlock()
				r(Response{})
				continue
			}
			mu.Unlock()
		}
		mu.Lock()
		rest := held
		held = nil
		mu.Unlock()
		for _, r := range rest {
			r(Response{})
		}
		for i, c := range cs {
			if got := readFrame(t, c); !bytes.Equal(got, []byte{byte(i)}) {
				t.Fatalf("connection %d got %v", i, got)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if maxInFlight > queued {
			t.Fatalf("%d requests handled at once, over queued.max.requests=%d", maxInFlight, queued)
		}
	})
}

// TestLargeAndEmptyFrames: a frame far larger than any read buffer, sent in
// pieces, reaches the handler whole; an empty frame reaches it empty.
func TestLargeAndEmptyFrames(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		big := make([]byte, 8<<20)
		for i := range big {
			big[i] = byte(i * 13)
		}
		got := make(chan []byte, 3)
		_, addr := startTCP(t, engine, Config{}, HandlerFunc(func(req *Request, respond func(Response)) {
			got <- req.Frame
			respond(bytesResponse([]byte{byte(len(req.Frame) >> 20)}))
		}))
		c := dial(t, addr)
		go func() {
			msg := append(append(frame(nil), frame(big)...), frame([]byte("x"))...)
			for len(msg) > 0 { // in pieces, so the frame arrives over many reads
				n := min(len(msg), 100_000)
				if _, err := c.Write(msg[:n]); err != nil {
					return
				}
				msg = msg[n:]
			}
		}()
		for i, want := range [][]byte{{}, big, []byte("x")} {
			if f := within(t, got, "a frame"); !bytes.Equal(f, want) {
				t.Fatalf("frame %d: got %d bytes, want %d", i, len(f), len(want))
			}
			readFrame(t, c)
		}
	})
}
