package netio

import (
	"fmt"
	"net"
	"sync/atomic"
)

// Engine is a network engine: it accepts connections, frames requests, passes
// them to a Handler and writes the answers back in request order, within the
// bounds of Config. Server (std) and NetpollServer (netpoll) are the two.
type Engine interface {
	// Serve accepts connections on l until Close; it returns
	// ErrServerClosed then.
	Serve(l net.Listener) error
	// Close stops accepting, closes every connection, and returns once the
	// handlers have answered every request they were given.
	Close() error
	// Stats returns the counters.
	Stats() Stats
}

var (
	_ Engine = (*Server)(nil)
	_ Engine = (*NetpollServer)(nil)
)

// New returns the engine cfg.Engine names (DefaultEngine when empty),
// passing requests to h.
func New(cfg Config, h Handler, o Options) (Engine, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch cfg.Engine {
	case EngineStd:
		return NewServer(cfg, h, o)
	case EngineNetpoll:
		return NewNetpollServer(cfg, h, o)
	}
	return nil, fmt.Errorf("netio: network.engine=%q: want %q or %q", cfg.Engine, EngineStd, EngineNetpoll)
}

// hooks let a test see the engine reach a point it cannot observe from
// outside; unset, they cost an atomic load.
type hooks struct {
	hangUp atomic.Pointer[func()] // a client hung up with requests unread (std: while its read loop waits)
}

func (h *hooks) run(p *atomic.Pointer[func()]) {
	if f := p.Load(); f != nil {
		(*f)()
	}
}
