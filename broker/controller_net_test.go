package broker_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/broker"
	"gregor/internal/testcluster"
)

// TestControllerListenerBoundsConnections: max.connections holds on the
// controller listener too. Of more connections than it allows, each sending
// a request, the ones over the bound are closed unanswered; closing some
// makes room again.
func TestControllerListenerBoundsConnections(t *testing.T) {
	const limit = 8
	c := testcluster.Start(t, 1, func(_ int, cfg *broker.Config) { cfg.Net.MaxConnections = limit })
	addr := c.Config(0).Quorum.Addr
	heartbeat := func() kmsg.Request {
		req := kmsg.NewPtrBrokerHeartbeatRequest()
		req.BrokerID, req.BrokerEpoch = 99, 1
		return req
	}
	// answered sends a heartbeat on r and reports whether it was answered.
	answered := func(r *rawConn) bool {
		r.c.Write(r.frameOf(heartbeat()))
		_, err := r.read()
		return err == nil
	}
	var open []*rawConn
	refused := 0
	for range 2 * limit {
		r := dialRaw(t, addr)
		if answered(r) {
			open = append(open, r)
		} else {
			refused++
		}
	}
	// The node's own broker holds connections to its controller too.
	if len(open) > limit || refused < limit {
		t.Fatalf("%d of %d connections answered, %d refused; max.connections is %d", len(open), 2*limit, refused, limit)
	}
	for _, r := range open {
		r.c.Close()
	}
	// The listener notices the closes as it reads them: try again, within
	// a bound, until it has.
	for deadline := time.Now().Add(20 * time.Second); ; {
		r := dialRaw(t, addr)
		if answered(r) {
			return
		}
		r.c.Close()
		if time.Now().After(deadline) {
			t.Fatal("connections are still refused after the others closed")
		}
	}
}

// TestControllerListenerRefusesTagBombs: the controller listener walks a
// request (kshape) before kmsg decodes it, as the client listener does: an
// AllocateProducerIds announcing 2^32-1 tagged fields in five bytes closes
// the connection at once instead of holding a core for a minute, and the
// listener answers the next request. (An API with a known tag 0, such as
// BrokerHeartbeat, escapes kmsg's loop by chance: once out of bytes every
// key reads as 0, whose decoding fails.)
func TestControllerListenerRefusesTagBombs(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	addr := c.Config(0).Quorum.Addr
	req := kmsg.NewPtrAllocateProducerIDsRequest()
	req.BrokerID, req.BrokerEpoch = 99, 1
	body := req.AppendTo(nil)
	bomb := append(body[:len(body)-1:len(body)-1], 0xff, 0xff, 0xff, 0xff, 0x0f)
	r := dialRaw(t, addr)
	r.write(r.frame(req.Key(), req.Version, true, bomb))
	r.expectClosed()
	hb := kmsg.NewPtrBrokerHeartbeatRequest()
	hb.BrokerID, hb.BrokerEpoch = 99, 1
	r = dialRaw(t, addr)
	r.write(r.frameOf(hb))
	if _, err := r.read(); err != nil {
		t.Fatalf("a heartbeat after the refused request: %v", err)
	}
}
