package bench

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestParseWorkloadConsumerGroups(t *testing.T) {
	w, err := ParseWorkload([]byte(minimal), "w.yaml")
	if err != nil || w.ConsumerGroups {
		t.Fatalf("default: groups=%v err=%v; want direct assignment", w.ConsumerGroups, err)
	}
	// Absent from summary.json when off, so earlier results compare.
	if b, _ := json.Marshal(w); strings.Contains(string(b), "consumerGroups") {
		t.Errorf("summary JSON mentions consumerGroups when off: %s", b)
	}
	w, err = ParseWorkload([]byte(minimal+"consumerGroups: true\n"), "w.yaml")
	if err != nil || !w.ConsumerGroups {
		t.Fatalf("consumerGroups: true gave %v, %v", w.ConsumerGroups, err)
	}
	if _, err := ParseWorkload([]byte(minimal+"consumerGroups: 2\n"), "w.yaml"); err == nil || !strings.Contains(err.Error(), "consumerGroups: want true or false") {
		t.Errorf("consumerGroups: 2: %v", err)
	}
}

func TestGroupOffsetsCountEachRecordOnce(t *testing.T) {
	g := newGroupOffsets(2)
	for _, c := range []struct {
		partition int32
		offset    int64
		first     bool
	}{{0, 0, true}, {0, 1, true}, {1, 0, true}, {0, 1, false}, {0, 0, false}, {0, 5, true}, {0, 3, false}, {7, 0, true}} {
		if got := g.first(c.partition, c.offset); got != c.first {
			t.Errorf("partition %d offset %d: first=%v, want %v", c.partition, c.offset, got, c.first)
		}
	}
}

// The tiny workload with consumer groups, against kfake, through both
// drivers: two subscriptions (groups) of two members each, and a third
// member that finds no partition left. Each group reads every record once;
// the load starts only once the groups have settled.
func TestRunConsumerGroupsAgainstKfake(t *testing.T) {
	for _, client := range []string{"franz", "gregor"} {
		t.Run(client, func(t *testing.T) {
			w := tinyWorkload(t, "consumerGroups: true\nsubscriptionsPerTopic: 2\nconsumerPerSubscription: 3\n")
			var progress syncBuffer
			res, err := Run(t.Context(), Config{Workload: w, Bootstrap: fakeCluster(t), OutDir: t.TempDir(), Client: client,
				Progress: &progress, LimitsEach: 50 * time.Millisecond, Timeout: 20 * time.Second, DrainTimeout: 10 * time.Second})
			if err != nil {
				t.Fatalf("%v\nprogress:\n%s", err, progress.String())
			}
			for _, r := range res.Summary.Scenarios {
				if !r.OK() {
					t.Errorf("scenario %d: %+v", r.Index, r)
				}
				if r.RecordsStored <= 0 || r.RecordsStored != r.RecordsAcked || r.RecordsConsumed != 2*r.RecordsStored {
					t.Errorf("scenario %d: acked %d stored %d consumed %d (redelivered %d); want each of 2 groups to read every record",
						r.Index, r.RecordsAcked, r.RecordsStored, r.RecordsConsumed, r.RecordsRedelivered)
				}
				if r.EndToEndLatency.Count == 0 {
					t.Errorf("scenario %d: no end-to-end latencies", r.Index)
				}
			}
		})
	}
}
