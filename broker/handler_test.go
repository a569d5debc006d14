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
