package broker

import (
	"path/filepath"

	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"

	"gregor/segment"
)

// handleDescribeLogDirs lists this broker's log dirs and the partitions in
// each with their sizes, as Kafka's ReplicaManager.describeLogDirs does
// (kafka-log-dirs.sh, kadm's DescribeAllLogDirs, the UIs that show topic
// sizes): null topics ask for every partition, a named partition this
// broker does not host is left out, and v4 adds the volume's total and
// usable bytes. Every log is current (no future logs: Gregor does not move
// partitions between dirs), so its offset lag is 0.
func (b *Broker) handleDescribeLogDirs(rq *request, req *kmsg.DescribeLogDirsRequest) {
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	var want func(segment.TopicPartition) bool
	if req.Topics != nil {
		asked := make(map[segment.TopicPartition]bool)
		for _, rt := range req.Topics {
			for _, p := range rt.Partitions {
				asked[segment.TopicPartition{Topic: rt.Topic, Partition: p}] = true
			}
		}
		want = func(tp segment.TopicPartition) bool { return asked[tp] }
	}
	for _, d := range b.logs.Dirs(want) {
		rd := kmsg.NewDescribeLogDirsResponseDir()
		rd.Dir = d.Path
		if abs, err := filepath.Abs(d.Path); err == nil {
			rd.Dir = abs // Kafka reports the absolute path
		}
		var st unix.Statfs_t
		if err := unix.Statfs(d.Path, &st); err == nil {
			rd.TotalBytes, rd.UsableBytes = int64(st.Blocks)*st.Bsize, int64(st.Bavail)*st.Bsize
		}
		for _, p := range d.Partitions { // sorted by topic, then partition
			if n := len(rd.Topics); n == 0 || rd.Topics[n-1].Topic != p.Topic {
				rt := kmsg.NewDescribeLogDirsResponseDirTopic()
				rt.Topic = p.Topic
				rd.Topics = append(rd.Topics, rt)
			}
			rp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			rp.Partition, rp.Size = p.Partition, p.Bytes
			rt := &rd.Topics[len(rd.Topics)-1]
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Dirs = append(resp.Dirs, rd)
	}
	rq.reply(resp)
}
