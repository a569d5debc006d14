package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/internal/kshape"
)

// TestEveryAPIHasALayout: every request the broker decodes is first walked
// by kshape, which needs the layout of every version the broker speaks.
func TestEveryAPIHasALayout(t *testing.T) {
	for key, rng := range apis {
		if !kshape.Covers(key, rng.min, rng.max) {
			t.Errorf("%s v%d-v%d: kshape has no layout for every version", kmsg.NameForKey(key), rng.min, rng.max)
		}
	}
}

// TestEveryControllerAPIHasALayout: the controller listener walks what it
// decodes too. It takes the admin requests brokers forward, at the versions
// the client listener took, and the brokers' own requests at every version
// kmsg knows, the newest of which Gregor's brokers send.
func TestEveryControllerAPIHasALayout(t *testing.T) {
	for key := range controllerAPIs {
		if _, forwarded := apis[key]; forwarded {
			continue // TestEveryAPIHasALayout
		}
		if max := kmsg.RequestForKey(key).MaxVersion(); !kshape.Covers(key, 0, max) {
			t.Errorf("%s v0-v%d: kshape has no layout for every version", kmsg.NameForKey(key), max)
		}
	}
}
