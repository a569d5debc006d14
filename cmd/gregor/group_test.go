package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/broker"
	"gregor/internal/testcluster"
)

// TestGroupCommandsKfake runs the group commands against franz-go's fake
// cluster, which implements Kafka's classic groups and offset commits.
func TestGroupCommandsKfake(t *testing.T) {
	t.Run("brokers=1", func(t *testing.T) { testGroupCommands(t, startCluster(t)) })
	// Groups live on their coordinators: requests are split among them.
	t.Run("brokers=3", func(t *testing.T) { testGroupCommands(t, startCluster(t, kfake.NumBrokers(3))) })
}

// TestGroupCommandsGregor runs the same scenario against an in-process
// Gregor broker, once it speaks the group APIs.
func TestGroupCommandsGregor(t *testing.T) {
	c := testcluster.Start(t, 1, func(_ int, cfg *broker.Config) {
		// Kafka's 3 s wait for more members before the first
		// rebalance only slows a one-consumer test down.
		cfg.Group.GroupInitialRebalanceDelayMs = 0
		cfg.OffsetsTopicNumPartitions = 3
	})
	requireGroupAPIs(t, c.Bootstrap())
	testGroupCommands(t, c.Bootstrap())
}

// requireGroupAPIs skips the test unless the cluster advertises every API
// the group commands and a kgo group consumer use.
func requireGroupAPIs(t *testing.T, bootstrap string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(bootstrap, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	versions, err := kadm.NewClient(cl).ApiVersions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, v := range versions.Sorted() {
		if v.Err != nil {
			t.Fatalf("ApiVersions from broker %d: %v", v.NodeID, v.Err)
		}
		for _, key := range []int16{8, 9, 10, 11, 12, 13, 14, 15, 16, 42, 47} {
			if _, _, ok := v.KeyVersions(key); !ok {
				missing = append(missing, kmsg.NameForKey(key))
			}
		}
	}
	if len(missing) > 0 {
		t.Skipf("the broker does not advertise %s yet", strings.Join(missing, ", "))
	}
}

// produceTo writes n records to one partition of topic.
func produceTo(t *testing.T, bootstrap, topic string, partition int32, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(bootstrap, ",")...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: partition, Value: fmt.Appendf(nil, "%d", i)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// joinAndCommit starts a group consumer of topic, reads want records and
// commits what it read. The consumer stays in the group until closed (or
// the test ends).
func joinAndCommit(t *testing.T, bootstrap, group, topic string, want int) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(bootstrap, ",")...),
		kgo.ClientID("group-test"),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	got := 0
	for got < want {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before the deadline", got, want)
		}
		fetches.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		got += fetches.NumRecords()
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	return cl
}

// describeJSON runs describe --json for one group.
func describeJSON(t *testing.T, bs []string, group string) describedGroup {
	t.Helper()
	r := gregor(t, "", append([]string{"group", "describe", group, "--json"}, bs...)...).want(t, 0)
	var gs []describedGroup
	if err := json.Unmarshal([]byte(r.stdout), &gs); err != nil {
		t.Fatalf("describe --json: %v\n%s", err, r.stdout)
	}
	if len(gs) != 1 || gs[0].Group != group {
		t.Fatalf("describe --json %s gave %d groups:\n%s", group, len(gs), r.stdout)
	}
	return gs[0]
}

// offsetsOf renders a group's partitions as "topic/p committed end lag
// member" lines, with "-" for nulls and "M" for the member id, for
// comparison in one string.
func offsetsOf(g describedGroup) string {
	var b strings.Builder
	for _, p := range g.Partitions {
		member := "-"
		if p.MemberID != "" {
			member = "M"
		}
		fmt.Fprintf(&b, "%s/%d %s %s %s %s\n", p.Topic, p.Partition, int64OrDash(p.CommittedOffset), int64OrDash(p.LogEndOffset), int64OrDash(p.Lag), member)
	}
	fmt.Fprintf(&b, "total %d", g.TotalLag)
	return b.String()
}

func mustMatch(t *testing.T, what, out string, res ...string) {
	t.Helper()
	for _, re := range res {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("%s does not match %s:\n%s", what, re, out)
		}
	}
}

// testGroupCommands walks a consumer group through its life with the group
// commands: a live consumer, lag, refusals while it is active, then offset
// deletion and reset, and deletion once it has left.
func testGroupCommands(t *testing.T, bootstrap string) {
	bs := []string{"--bootstrap", bootstrap}
	cmd := func(args ...string) []string { return append(append([]string{"group"}, args...), bs...) }

	gregor(t, "", "topic", "create", "events", "--partitions", "3", "--bootstrap", bootstrap).want(t, 0)
	produceTo(t, bootstrap, "events", 0, 10)
	produceTo(t, bootstrap, "events", 1, 5)
	consumer := joinAndCommit(t, bootstrap, "g1", "events", 15)
	memberID, _ := consumer.GroupMetadata()
	// Records after the commit are lag: partition 0 is 3 behind.
	produceTo(t, bootstrap, "events", 0, 3)

	// A group that only holds offsets, made by reset-offsets.
	r := gregor(t, "", cmd("reset-offsets", "offsets-only", "--topic", "events:1", "--to-offset", "2", "--execute")...).want(t, 0)
	mustMatch(t, "reset-offsets of a new group", r.stdout, `(?m)^TOPIC +PARTITION +CURRENT-OFFSET +NEW-OFFSET$`, `(?m)^events +1 +- +2$`)
	if strings.Contains(r.stderr, "Dry run") {
		t.Errorf("--execute said dry run: %q", r.stderr)
	}

	r = gregor(t, "", cmd("list")...).want(t, 0)
	t.Logf("gregor group list:\n%s", r.stdout)
	mustMatch(t, "list", r.stdout,
		`^GROUP +STATE +PROTOCOL-TYPE +COORDINATOR\n`,
		`(?m)^g1 +Stable +consumer +\d+$`,
		`(?m)^offsets-only +Empty +- +\d+$`)
	r = gregor(t, "", cmd("list", "--state", "stable")...).want(t, 0)
	if !strings.Contains(r.stdout, "g1 ") || strings.Contains(r.stdout, "offsets-only") {
		t.Errorf("list --state stable:\n%s", r.stdout)
	}
	r = gregor(t, "", cmd("list", "--json")...).want(t, 0)
	var listed []listedGroupJSON
	if err := json.Unmarshal([]byte(r.stdout), &listed); err != nil {
		t.Fatalf("list --json: %v\n%s", err, r.stdout)
	}
	if len(listed) != 2 || listed[0].Group != "g1" || listed[0].State != "Stable" || listed[0].ProtocolType != "consumer" || listed[1].Group != "offsets-only" {
		t.Errorf("list --json = %+v", listed)
	}

	r = gregor(t, "", cmd("describe", "g1")...).want(t, 0)
	t.Logf("gregor group describe g1:\n%s", r.stdout)
	m := regexp.QuoteMeta(memberID)
	mustMatch(t, "describe", r.stdout,
		`^Group: g1  State: Stable  ProtocolType: consumer  Protocol: \S+  Coordinator: \d+ \(127\.0\.0\.1:\d+\)\n`,
		`(?m)^  MEMBER-ID +INSTANCE-ID +CLIENT-ID +HOST +ASSIGNMENT$`,
		`(?m)^  `+m+` +- +group-test +\S+ +events\(0,1,2\)$`,
		`(?m)^  TOPIC +PARTITION +CURRENT-OFFSET +LOG-END-OFFSET +LAG +MEMBER-ID$`,
		`(?m)^  events +0 +10 +13 +3 +`+m+`$`,
		`(?m)^  events +1 +5 +5 +0 +`+m+`$`,
		`(?m)^  events +2 +- +0 +- +`+m+`$`,
		`(?m)^  Total lag: 3$`)
	g := describeJSON(t, bs, "g1")
	if len(g.Members) != 1 || g.Members[0].MemberID != memberID || g.Members[0].ClientID != "group-test" || g.Members[0].InstanceID != nil ||
		!slices.EqualFunc(g.Members[0].Assignment, []groupTopicPartitions{{"events", []int32{0, 1, 2}}}, func(a, b groupTopicPartitions) bool {
			return a.Topic == b.Topic && slices.Equal(a.Partitions, b.Partitions)
		}) {
		t.Errorf("members = %+v", g.Members)
	}
	if want := "events/0 10 13 3 M\nevents/1 5 5 0 M\nevents/2 - 0 - M\ntotal 3"; offsetsOf(g) != want {
		t.Errorf("describe --json offsets:\n%s\nwant:\n%s", offsetsOf(g), want)
	}

	r = gregor(t, "", cmd("describe", "g1", "nope", "offsets-only")...).want(t, 1)
	if !strings.Contains(r.stderr, "gregor group: describe nope: GROUP_ID_NOT_FOUND") ||
		!strings.Contains(r.stdout, "Group: g1 ") || !strings.Contains(r.stdout, "Group: offsets-only ") {
		t.Errorf("describe with a missing group:\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
	mustMatch(t, "describe offsets-only", r.stdout,
		`(?m)^Group: offsets-only  State: Empty  ProtocolType: -  Protocol: -  Coordinator: \d+ `,
		`(?m)^  Members: none`,
		`(?m)^  events +1 +2 +5 +3 +-\n  Total lag: 3$`)
	r = gregor(t, "", cmd("describe", "--all")...).want(t, 0)
	if strings.Index(r.stdout, "Group: g1 ") > strings.Index(r.stdout, "Group: offsets-only ") || !strings.Contains(r.stdout, "Group: g1 ") {
		t.Errorf("describe --all:\n%s", r.stdout)
	}

	// An active group keeps its offsets and cannot be deleted.
	r = gregor(t, "", cmd("delete", "g1", "nope")...).want(t, 1)
	if !strings.Contains(r.stderr, "gregor group: delete g1: NON_EMPTY_GROUP") ||
		!strings.Contains(r.stderr, "gregor group: delete nope: GROUP_ID_NOT_FOUND") || r.stdout != "" {
		t.Errorf("delete of a live and a missing group:\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
	r = gregor(t, "", cmd("delete-offsets", "g1", "events:1")...).want(t, 1)
	mustMatch(t, "delete-offsets of a subscribed topic", r.stdout, `(?m)^events +1 +GROUP_SUBSCRIBED_TO_TOPIC$`)
	if !strings.Contains(r.stderr, "delete-offsets g1 events/1: GROUP_SUBSCRIBED_TO_TOPIC") {
		t.Errorf("stderr = %q", r.stderr)
	}
	r = gregor(t, "", cmd("reset-offsets", "g1", "--topic", "events", "--to-earliest", "--execute")...).want(t, 1)
	if !strings.Contains(r.stderr, "the group must be inactive, but it is Stable with 1 members") {
		t.Errorf("reset-offsets of a live group: stderr = %q", r.stderr)
	}

	// Once the consumer has left, the group is Empty and its offsets stay.
	consumer.Close()
	g = describeJSON(t, bs, "g1")
	if want := "events/0 10 13 3 -\nevents/1 5 5 0 -\ntotal 3"; g.State != "Empty" || len(g.Members) != 0 || offsetsOf(g) != want {
		t.Errorf("after leaving: state %s, members %+v, offsets:\n%s\nwant:\n%s", g.State, g.Members, offsetsOf(g), want)
	}
	r = gregor(t, "", cmd("describe", "g1")...).want(t, 0)
	mustMatch(t, "describe of an empty group", r.stdout, `(?m)^  Members: none \(the group has no active members\)$`, `(?m)^  events +0 +10 +13 +3 +-$`)

	r = gregor(t, "", cmd("delete-offsets", "g1", "events:0")...).want(t, 0)
	mustMatch(t, "delete-offsets", r.stdout, `^TOPIC +PARTITION +STATUS\nevents +0 +deleted\n$`)
	if want := "events/1 5 5 0 -\ntotal 0"; offsetsOf(describeJSON(t, bs, "g1")) != want {
		t.Errorf("after delete-offsets:\n%s\nwant:\n%s", offsetsOf(describeJSON(t, bs, "g1")), want)
	}

	// Reset: a dry run changes nothing; --execute commits.
	r = gregor(t, "", cmd("reset-offsets", "g1", "--topic", "events", "--to-earliest")...).want(t, 0)
	mustMatch(t, "reset-offsets dry run", r.stdout, `(?m)^events +0 +- +0$`, `(?m)^events +1 +5 +0$`, `(?m)^events +2 +- +0$`)
	if !strings.Contains(r.stderr, "Dry run") {
		t.Errorf("dry run stderr = %q", r.stderr)
	}
	if want := "events/1 5 5 0 -\ntotal 0"; offsetsOf(describeJSON(t, bs, "g1")) != want {
		t.Errorf("a dry run changed the offsets:\n%s", offsetsOf(describeJSON(t, bs, "g1")))
	}
	gregor(t, "", cmd("reset-offsets", "g1", "--topic", "events", "--to-latest", "--execute")...).want(t, 0)
	if want := "events/0 13 13 0 -\nevents/1 5 5 0 -\nevents/2 0 0 0 -\ntotal 0"; offsetsOf(describeJSON(t, bs, "g1")) != want {
		t.Errorf("after --to-latest:\n%s\nwant:\n%s", offsetsOf(describeJSON(t, bs, "g1")), want)
	}
	r = gregor(t, "", cmd("reset-offsets", "g1", "--topic", "events:0", "--topic", "events:1", "--to-offset", "4", "--execute")...).want(t, 0)
	if strings.Contains(r.stderr, "offset 4") {
		t.Errorf("4 is within both partitions, yet: %q", r.stderr)
	}
	r = gregor(t, "", cmd("reset-offsets", "g1", "--topic", "events:1", "--to-offset", "100", "--execute")...).want(t, 0)
	if !strings.Contains(r.stderr, "events/1: offset 100 is past the log end offset 5; using 5") {
		t.Errorf("--to-offset 100 stderr = %q", r.stderr)
	}
	if want := "events/0 4 13 9 -\nevents/1 5 5 0 -\nevents/2 0 0 0 -\ntotal 9"; offsetsOf(describeJSON(t, bs, "g1")) != want {
		t.Errorf("after --to-offset:\n%s\nwant:\n%s", offsetsOf(describeJSON(t, bs, "g1")), want)
	}
	r = gregor(t, "", cmd("reset-offsets", "g1", "--all-topics", "--to-earliest", "--execute")...).want(t, 0)
	mustMatch(t, "reset-offsets --all-topics", r.stdout, `(?m)^events +0 +4 +0$`, `(?m)^events +1 +5 +0$`, `(?m)^events +2 +0 +0$`)
	r = gregor(t, "", cmd("reset-offsets", "g1", "--topic", "events:7", "--topic", "missing", "--to-latest")...).want(t, 1)
	if !strings.Contains(r.stderr, "reset-offsets g1 events/7: UNKNOWN_TOPIC_OR_PARTITION") ||
		!strings.Contains(r.stderr, "reset-offsets g1 missing: UNKNOWN_TOPIC_OR_PARTITION") {
		t.Errorf("reset-offsets of missing partitions: stderr = %q", r.stderr)
	}

	// Deleting the whole topic's offsets, then the empty group.
	r = gregor(t, "", cmd("delete-offsets", "g1", "events")...).want(t, 0)
	mustMatch(t, "delete-offsets of a topic", r.stdout, `(?m)^events +0 +deleted$`, `(?m)^events +2 +deleted$`)
	r = gregor(t, "", cmd("delete", "g1", "offsets-only")...).want(t, 0)
	if r.stdout != "deleted group g1\ndeleted group offsets-only\n" {
		t.Errorf("delete stdout = %q", r.stdout)
	}
	r = gregor(t, "", cmd("list")...).want(t, 0)
	if r.stdout != "GROUP  STATE  PROTOCOL-TYPE  COORDINATOR\n" {
		t.Errorf("list after delete = %q", r.stdout)
	}
	r = gregor(t, "", cmd("delete", "g1")...).want(t, 1)
	if !strings.Contains(r.stderr, "gregor group: delete g1: GROUP_ID_NOT_FOUND") {
		t.Errorf("second delete stderr = %q", r.stderr)
	}
	r = gregor(t, "", cmd("describe", "--all", "--json")...).want(t, 0)
	if strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("describe --all --json of no groups = %q", r.stdout)
	}
}

func TestGroupUsageErrors(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		code      int
		stdoutHas string
		stderrHas string
	}{
		{"no subcommand", []string{"group"}, 2, "", "usage: gregor group"},
		{"help", []string{"help", "group"}, 0, "gregor group reset-offsets", ""},
		{"subcommand help", []string{"group", "describe", "-h"}, 0, "", "--all"},
		{"unknown subcommand", []string{"group", "rename"}, 2, "", `unknown subcommand "rename"`},
		{"list arguments", []string{"group", "list", "g"}, 2, "", "unexpected arguments"},
		{"list bad state", []string{"group", "list", "--state", "Sleeping"}, 2, "", `unknown --state "Sleeping"`},
		{"describe nothing", []string{"group", "describe"}, 2, "", "no group names given (or --all)"},
		{"describe names and all", []string{"group", "describe", "g", "--all"}, 2, "", "mutually exclusive"},
		{"delete nothing", []string{"group", "delete"}, 2, "", "no group names given"},
		{"delete-offsets without topics", []string{"group", "delete-offsets", "g"}, 2, "", "want a group and at least one topic"},
		{"delete-offsets bad partition", []string{"group", "delete-offsets", "g", "t:x"}, 2, "", `partition "x" is not a number`},
		{"delete-offsets negative partition", []string{"group", "delete-offsets", "g", "t:-1"}, 2, "", `partition "-1"`},
		{"delete-offsets empty partition", []string{"group", "delete-offsets", "g", "t:"}, 2, "", `partition ""`},
		{"delete-offsets no topic", []string{"group", "delete-offsets", "g", ":1"}, 2, "", "no topic name"},
		{"reset without group", []string{"group", "reset-offsets", "--topic", "t", "--to-latest"}, 2, "", "exactly one group"},
		{"reset without topics", []string{"group", "reset-offsets", "g", "--to-latest"}, 2, "", "either --topic or --all-topics"},
		{"reset topics and all", []string{"group", "reset-offsets", "g", "--topic", "t", "--all-topics", "--to-latest"}, 2, "", "either --topic or --all-topics"},
		{"reset without target", []string{"group", "reset-offsets", "g", "--topic", "t"}, 2, "", "exactly one of --to-earliest"},
		{"reset two targets", []string{"group", "reset-offsets", "g", "--topic", "t", "--to-latest", "--to-offset", "3"}, 2, "", "exactly one of --to-earliest"},
		{"reset negative offset", []string{"group", "reset-offsets", "g", "--topic", "t", "--to-offset", "-2"}, 2, "", "want an offset, 0 or more"},
		{"reset execute and dry run", []string{"group", "reset-offsets", "g", "--topic", "t", "--to-latest", "--execute", "--dry-run"}, 2, "", "mutually exclusive"},
		{"reset bad topic flag", []string{"group", "reset-offsets", "g", "--topic", "t:a", "--to-latest"}, 2, "", `partition "a"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := gregor(t, "", tt.args...).want(t, tt.code)
			if !strings.Contains(r.stdout, tt.stdoutHas) || !strings.Contains(r.stderr, tt.stderrHas) {
				t.Errorf("stdout %q, stderr %q; want %q in stdout, %q in stderr", r.stdout, r.stderr, tt.stdoutHas, tt.stderrHas)
			}
		})
	}
}

func TestParseTopicPartitions(t *testing.T) {
	for in, want := range map[string]topicPartitionSpec{
		"t":            {topic: "t"},
		"a.b-c_d:0":    {topic: "a.b-c_d", partitions: []int32{0}},
		"t:2, 0,2":     {topic: "t", partitions: []int32{2, 0}},
		"t:2147483647": {topic: "t", partitions: []int32{2147483647}},
	} {
		got, err := parseTopicPartitions(in)
		if err != nil || got.topic != want.topic || !slices.Equal(got.partitions, want.partitions) {
			t.Errorf("parseTopicPartitions(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", ":0", "t:", "t:1,", "t:2147483648", "t:0x1"} {
		if _, err := parseTopicPartitions(in); err == nil {
			t.Errorf("parseTopicPartitions(%q) did not fail", in)
		}
	}
}

// TestGroupUnreachableCluster: like the topic commands, a dead bootstrap
// address ends in exit 1 within --timeout.
func TestGroupUnreachableCluster(t *testing.T) {
	addr := deadAddr(t)
	for _, args := range [][]string{{"list"}, {"describe", "g"}, {"delete", "g"}} {
		r := gregor(t, "", append(append([]string{"group"}, args...), "--bootstrap", addr, "--timeout", "300ms")...).want(t, 1)
		if !strings.Contains(r.stderr, "gregor group: "+args[0]) {
			t.Errorf("%s: stderr = %q", args[0], r.stderr)
		}
	}
}
