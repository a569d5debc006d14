package broker_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/broker"
	"gregor/internal/testcluster"
)

// TestDescribeLogDirs: kadm's DescribeAllLogDirs sees both of a broker's
// log dirs, each partition in the dir that holds it with the size of its
// segment files, and the volume's sizes (v4); a request naming partitions
// gets only those this broker hosts.
func TestDescribeLogDirs(t *testing.T) {
	var dirs []string
	c := testcluster.Start(t, 1, func(_ int, cfg *broker.Config) {
		root := t.TempDir()
		dirs = []string{filepath.Join(root, "a"), filepath.Join(root, "b")}
		cfg.Storage.LogDirs = dirs
	})
	createTopic(t, c, "sized", 2, nil)
	r := dialRaw(t, c.Addrs()[0])
	for range 3 {
		if p := produceRaw(r, 9, -1, "sized", 1, recordBatch(t, 4, 100)); p.ErrorCode != 0 {
			t.Fatalf("produce: %v", kerr.ErrorForCode(p.ErrorCode))
		}
	}
	adm := kadm.NewClient(newClient(t, c))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	all, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{} // dir/topic-partition -> size
	seen := map[string]bool{}
	all.Each(func(d kadm.DescribedLogDir) {
		seen[d.Dir] = true
		if d.Err != nil || d.TotalBytes <= 0 || d.UsableBytes <= 0 || d.UsableBytes > d.TotalBytes {
			t.Errorf("dir %s: err %v, total %d, usable %d", d.Dir, d.Err, d.TotalBytes, d.UsableBytes)
		}
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
			if p.Topic == "sized" {
				got[fmt.Sprintf("%s/%s-%d", filepath.Base(p.Dir), p.Topic, p.Partition)] = p.Size
			}
		})
	})
	for _, d := range dirs {
		if !seen[d] {
			t.Errorf("log dir %s not described (saw %v)", d, seen)
		}
	}
	// The two partitions went one to each dir, the fewest-partitions dir
	// first; partition 1 holds three batches.
	if len(got) != 2 {
		t.Fatalf("partitions of sized: %v", got)
	}
	sizes := map[string]int64{}
	for where, size := range got {
		sizes[where[len(where)-len("sized-0"):]] = size
	}
	if sizes["sized-0"] != 0 || sizes["sized-1"] < 3*400 {
		t.Errorf("sizes %v: want sized-0 empty and sized-1 holding three batches of 400 bytes of values", got)
	}
	holders := map[string]bool{}
	for where := range got {
		holders[filepath.Dir(where)] = true
	}
	if len(holders) != 2 {
		t.Errorf("partitions not one per dir: %v", got)
	}

	req := kmsg.NewPtrDescribeLogDirsRequest()
	req.Version = 0
	rt := kmsg.NewDescribeLogDirsRequestTopic()
	rt.Topic, rt.Partitions = "sized", []int32{1, 7}
	req.Topics = append(req.Topics, rt)
	resp := r.do(req).(*kmsg.DescribeLogDirsResponse)
	var listed []int32
	for _, d := range resp.Dirs {
		for _, t := range d.Topics {
			for _, p := range t.Partitions {
				listed = append(listed, p.Partition)
			}
		}
	}
	if len(resp.Dirs) != 2 || len(listed) != 1 || listed[0] != 1 {
		t.Fatalf("v0 for sized 1 and 7: %d dirs, partitions %v; want both dirs, partition 1 only", len(resp.Dirs), listed)
	}
}
