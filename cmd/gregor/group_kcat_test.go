package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestGroupKcatConsumesCommitsAndResumes runs kcat's balanced consumer
// (-G: librdkafka's KafkaConsumer, which joins the group, commits what it
// consumed as it closes, and leaves) against the real binary. Each run
// reads exactly the records the runs before it did not: the first all of
// them, the next only those produced since, one with nothing new nothing.
// The group's offsets are also still there after the broker is killed with
// SIGKILL and started again on its data.
func TestGroupKcatConsumesCommitsAndResumes(t *testing.T) {
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Skip("kcat is not installed (.ci/run installs it)")
	}
	bin := buildGregor(t)
	ports := freePorts(t, 3)
	dir := t.TempDir()
	props := filepath.Join(dir, "server.properties")
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	admin := fmt.Sprintf("127.0.0.1:%d", ports[2])
	conf := fmt.Sprintf(`node.id=1
process.roles=broker,controller
controller.quorum.voters=1@127.0.0.1:%[2]d
listeners=PLAINTEXT://%[1]s,CONTROLLER://127.0.0.1:%[2]d
log.dirs=%[3]s
admin.listener=%[4]s
num.partitions=3
group.initial.rebalance.delay.ms=0
offsets.topic.num.partitions=3
# The restart after kill -9 waits for the killed incarnation's session.
broker.session.timeout.ms=2000
broker.heartbeat.interval.ms=200
`, addr, ports[1], filepath.Join(dir, "data"), admin)
	if err := os.WriteFile(props, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	start := func() *gregorProcess {
		p := startGregor(t, bin, props)
		(&serveRun{done: p.done, stderr: p.stderr}).waitHealthy(t, admin)
		return p
	}
	p := start()

	const topic, group = "kcat-lines", "kcat-group"
	next := 0
	produce := func(n int) []string {
		t.Helper()
		// Keyed (-K), so that librdkafka's partitioner spreads them
		// over the partitions.
		var lines, keyed []string
		for range n {
			lines = append(lines, fmt.Sprintf("line-%03d", next))
			keyed = append(keyed, fmt.Sprintf("key-%03d:line-%03d", next, next))
			next++
		}
		kcat(t, strings.Join(keyed, "\n")+"\n", "-P", "-b", addr, "-t", topic, "-K", ":")
		return lines
	}
	consume := func(what string, want []string) {
		t.Helper()
		out := kcat(t, "", "-b", addr, "-G", group, "-X", "auto.offset.reset=earliest", "-e", "-q", topic)
		got := strings.Fields(out)
		slices.Sort(got)
		if want == nil {
			want = []string{}
		}
		if got == nil {
			got = []string{}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: kcat -G consumed %d records %v, want %d %v\nbroker stderr:\n%s", what, len(got), got, len(want), want, p.stderr)
		}
	}
	// committed checks that the group's offsets are the topic's end
	// offsets, all n records (librdkafka commits only the partitions it
	// consumed from, so an empty one may have none).
	committed := func(n int64) {
		t.Helper()
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		adm := kadm.NewClient(cl)
		offs, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		ends.Each(func(end kadm.ListedOffset) {
			o, ok := offs.Lookup(topic, end.Partition)
			if end.Offset == 0 && !ok {
				return
			}
			if !ok || o.Err != nil || o.At != end.Offset {
				t.Errorf("partition %d: committed %+v, want the end offset %d", end.Partition, o, end.Offset)
			}
			sum += o.At
		})
		if sum != n {
			t.Errorf("committed offsets add up to %d, want %d", sum, n)
		}
	}

	first := produce(30)
	consume("the first run", first)
	committed(30)
	second := produce(20)
	consume("a second run", second)
	consume("a run with nothing new", nil)
	committed(50)

	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
	p = start()
	committed(50)
	consume("a run after kill -9 and a restart", nil)
	third := produce(10)
	consume("a run after the restart", third)
	committed(60)
}
