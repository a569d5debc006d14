package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"gregor/internal/testcluster"
)

// startCluster starts franz-go's in-memory Kafka (listening on 127.0.0.1)
// and returns its --bootstrap value. It stands in for a broker here so the
// console tools are tested over the real wire protocol, independently of
// Gregor's own broker.
func startCluster(t *testing.T, opts ...kfake.Opt) string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return strings.Join(c.ListenAddrs(), ",")
}

// TestTopicProduceConsumeEndToEnd walks a topic through its life with the
// console tools: create, list, describe, produce, consume, delete.
func TestTopicProduceConsumeEndToEnd(t *testing.T) {
	bs := startCluster(t, kfake.SeedTopics(1, "seeded"))
	b := []string{"--bootstrap", bs}
	cmd := func(args ...string) []string { return append(args, b...) }

	r := gregor(t, "", cmd("topic", "create", "events", "--partitions", "3", "--config", "retention.ms=60000", "--config", "cleanup.policy=delete")...).want(t, 0)
	if want := "created topic events (partitions 3, replication factor 1)\n"; r.stdout != want {
		t.Errorf("create stdout = %q, want %q", r.stdout, want)
	}

	r = gregor(t, "", cmd("topic", "create", "events")...).want(t, 1)
	if !strings.Contains(r.stderr, "gregor topic: create events: TOPIC_ALREADY_EXISTS") {
		t.Errorf("second create stderr = %q, want TOPIC_ALREADY_EXISTS", r.stderr)
	}

	r = gregor(t, "", cmd("topic", "list")...).want(t, 0)
	if want := "events\nseeded\n"; r.stdout != want {
		t.Errorf("list = %q, want %q", r.stdout, want)
	}

	r = gregor(t, "", cmd("topic", "describe", "events")...).want(t, 0)
	t.Logf("gregor topic describe events:\n%s", r.stdout)
	for _, re := range []string{
		`(?m)^Topic: events  ID: \S+  Partitions: 3  ReplicationFactor: 1$`,
		`(?m)^  PARTITION +LEADER +EPOCH +REPLICAS +ISR$`,
		`(?m)^  0 +\d+ +\d+ +\d+ +\d+$`,
		`(?m)^  2 +\d+ +\d+ +\d+ +\d+$`,
		`(?m)^  CONFIG +VALUE +SOURCE$`,
		`(?m)^  retention\.ms +60000 +DYNAMIC_TOPIC_CONFIG$`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("describe output does not match %s:\n%s", re, r.stdout)
		}
	}
	r = gregor(t, "", cmd("topic", "describe", "--overrides", "events")...).want(t, 0)
	if n := strings.Count(r.stdout, "DYNAMIC_TOPIC_CONFIG"); n != 2 || strings.Contains(r.stdout, "DEFAULT_CONFIG") {
		t.Errorf("describe --overrides shows %d overrides or defaults:\n%s", n, r.stdout)
	}

	r = gregor(t, "", cmd("topic", "describe", "events", "nope")...).want(t, 1)
	if !strings.Contains(r.stderr, "describe nope: UNKNOWN_TOPIC_OR_PARTITION") || !strings.Contains(r.stdout, "Topic: events") {
		t.Errorf("describe of a missing topic:\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}

	// Keys spread the lines over the partitions; consume must get all back.
	var in strings.Builder
	var want []string
	for i := range 30 {
		fmt.Fprintf(&in, "k%d:value %d:with a colon\n", i, i)
		want = append(want, fmt.Sprintf("k%d\tvalue %d:with a colon", i, i))
	}
	gregor(t, in.String(), cmd("produce", "--topic", "events", "--key-separator", ":", "--compression", "zstd")...).want(t, 0)
	// A last line without a newline is still a record.
	gregor(t, "tail:no newline", cmd("produce", "--topic", "events", "--key-separator", ":", "--acks", "1", "--linger-ms", "0")...).want(t, 0)
	want = append(want, "tail\tno newline")

	r = gregor(t, "", cmd("consume", "--topic", "events", "--from-beginning", "--max-messages", "31", "--print-key", "--timeout", "10s")...).want(t, 0)
	got := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("consumed:\n%q\nwant:\n%q", got, want)
	}
	if !strings.Contains(r.stderr, "Processed a total of 31 messages") {
		t.Errorf("consume stderr = %q", r.stderr)
	}

	r = gregor(t, "", cmd("topic", "delete", "events")...).want(t, 0)
	if r.stdout != "deleted topic events\n" {
		t.Errorf("delete stdout = %q", r.stdout)
	}
	r = gregor(t, "", cmd("topic", "list")...).want(t, 0)
	if r.stdout != "seeded\n" {
		t.Errorf("list after delete = %q", r.stdout)
	}
	r = gregor(t, "", cmd("topic", "delete", "events")...).want(t, 1)
	if !strings.Contains(r.stderr, "gregor topic: delete events: UNKNOWN_TOPIC_OR_PARTITION") {
		t.Errorf("second delete stderr = %q", r.stderr)
	}
}

func TestConsumePartitionOffsetAndFormat(t *testing.T) {
	b := []string{"--bootstrap", startCluster(t, kfake.SeedTopics(1, "one"))}
	cmd := func(args ...string) []string { return append(args, b...) }
	gregor(t, "a\nb\nc\nd\n", cmd("produce", "--topic", "one")...).want(t, 0)

	r := gregor(t, "", cmd("consume", "--topic", "one", "--partition", "0", "--offset", "2", "--max-messages", "2", "--print-offset", "--print-key", "--timeout", "10s")...).want(t, 0)
	if want := "Partition:0\tOffset:2\tnull\tc\nPartition:0\tOffset:3\tnull\td\n"; r.stdout != want {
		t.Errorf("consume = %q, want %q", r.stdout, want)
	}

	// From the end there is nothing to read: the idle timeout ends the run.
	r = gregor(t, "", cmd("consume", "--topic", "one", "--timeout", "200ms")...).want(t, 0)
	if r.stdout != "" || !strings.Contains(r.stderr, "Processed a total of 0 messages") {
		t.Errorf("idle consume: stdout %q stderr %q", r.stdout, r.stderr)
	}
	// ... but not if it was asked for more records than arrived.
	r = gregor(t, "", cmd("consume", "--topic", "one", "--from-beginning", "--max-messages", "5", "--timeout", "300ms")...).want(t, 1)
	if strings.Count(r.stdout, "\n") != 4 || !strings.Contains(r.stderr, "got 4 of 5") {
		t.Errorf("short consume: stdout %q stderr %q", r.stdout, r.stderr)
	}
}

// TestConsumePrintsNullValues: a record without a value (a tombstone) prints
// as "null", as Kafka's DefaultMessageFormatter prints it (and Gregor a
// missing key); an empty value is an empty line. Against kfake and Gregor.
func TestConsumePrintsNullValues(t *testing.T) {
	t.Run("kfake", func(t *testing.T) { testConsumePrintsNullValues(t, startCluster(t)) })
	t.Run("gregor", func(t *testing.T) { testConsumePrintsNullValues(t, testcluster.Start(t, 1, nil).Bootstrap()) })
}

func testConsumePrintsNullValues(t *testing.T, bs string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(bs), kgo.DefaultProduceTopic("nulls"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(t.Context(), 1, 1, nil, "nulls"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(t.Context(),
		&kgo.Record{Key: []byte("tombstone"), Value: nil},
		&kgo.Record{Key: []byte("empty"), Value: []byte{}},
		&kgo.Record{Value: []byte("v")},
	).FirstErr(); err != nil {
		t.Fatal(err)
	}
	r := gregor(t, "", "consume", "--topic", "nulls", "--from-beginning", "--max-messages", "3", "--print-key", "--timeout", "10s", "--bootstrap", bs).want(t, 0)
	if want := "tombstone\tnull\nempty\t\nnull\tv\n"; r.stdout != want {
		t.Errorf("consumed %q, want %q", r.stdout, want)
	}
}

// TestConsumeOffsetOutOfRangeWaitsAtTheEnd: an --offset past the end of a
// partition or below its start resets to the end of the log, as Kafka's
// console consumer does (auto.offset.reset=latest unless --from-beginning),
// with --partition and without: none of the records already there is
// printed, and the first produced afterwards is. Against kfake and Gregor.
func TestConsumeOffsetOutOfRangeWaitsAtTheEnd(t *testing.T) {
	t.Run("kfake", func(t *testing.T) { testConsumeOffsetOutOfRange(t, startCluster(t)) })
	t.Run("gregor", func(t *testing.T) { testConsumeOffsetOutOfRange(t, testcluster.Start(t, 1, nil).Bootstrap()) })
}

func testConsumeOffsetOutOfRange(t *testing.T, bs string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(bs), kgo.DefaultProduceTopic("two"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(t.Context(), 2, 1, nil, "two"); err != nil {
		t.Fatal(err)
	}
	// Records at offsets 0-3 of both partitions; the logs then start at 2.
	for _, v := range []string{"a", "b", "c", "d"} {
		for p := range int32(2) {
			if err := cl.ProduceSync(t.Context(), &kgo.Record{Partition: p, Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	var trim kadm.Offsets
	trim.Add(kadm.Offset{Topic: "two", Partition: 0, At: 2})
	trim.Add(kadm.Offset{Topic: "two", Partition: 1, At: 2})
	dr, err := adm.DeleteRecords(t.Context(), trim)
	if err == nil {
		err = dr.Error()
	}
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"partition, past the end", []string{"--partition", "0", "--offset", "100"}},
		{"partition, below the start", []string{"--partition", "0", "--offset", "1"}},
		{"every partition, past the end", []string{"--offset", "100"}},
		{"every partition, below the start", []string{"--offset", "0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			done := make(chan int, 1)
			args := append([]string{"consume", "--topic", "two", "--max-messages", "1", "--bootstrap", bs}, tc.args...)
			go func() { done <- run(ctx, args, strings.NewReader(""), &stdout, &stderr) }()
			// The consumer prints the first record produced once it
			// waits at the end; until then, keep producing.
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case code := <-done:
					if ctx.Err() != nil {
						t.Fatalf("consume %q: no record within 30s; stderr:\n%s", tc.args, stderr.String())
					}
					if code != 0 || !strings.HasPrefix(stdout.String(), "late-") || strings.Count(stdout.String(), "\n") != 1 {
						t.Fatalf("consume %q: exit %d, printed %q; want one record produced after it started\nstderr:\n%s", tc.args, code, stdout.String(), stderr.String())
					}
					return
				case <-tick.C:
					for p := range int32(2) {
						if err := cl.ProduceSync(ctx, &kgo.Record{Partition: p, Value: fmt.Appendf(nil, "late-%d", i)}).FirstErr(); err != nil && ctx.Err() == nil {
							t.Fatal(err)
						}
					}
				}
			}
		})
	}
}

func TestProduceFailures(t *testing.T) {
	b := []string{"--bootstrap", startCluster(t, kfake.SeedTopics(1, "t"))}
	cmd := func(args ...string) []string { return append(args, b...) }

	// A line without the key separator fails; the others are still sent.
	r := gregor(t, "k:v\nnokey\nk2:v2\n", cmd("produce", "--topic", "t", "--key-separator", ":")...).want(t, 1)
	if !strings.Contains(r.stderr, `line 2: no key separator ":"`) || !strings.Contains(r.stderr, "1 of 3 records not delivered") {
		t.Errorf("stderr = %q", r.stderr)
	}
	r = gregor(t, "", cmd("consume", "--topic", "t", "--from-beginning", "--max-messages", "2", "--timeout", "10s")...).want(t, 0)
	if r.stdout != "v\nv2\n" {
		t.Errorf("consumed %q", r.stdout)
	}

	// Over-long lines are refused rather than buffered without bound.
	r = gregor(t, "short\n"+strings.Repeat("x", 100)+"\n", cmd("produce", "--topic", "t", "--max-line-bytes", "50")...).want(t, 1)
	if !strings.Contains(r.stderr, "longer than --max-line-bytes=50") {
		t.Errorf("stderr = %q", r.stderr)
	}
}

// TestProduceCreatesTopicWhereTheBrokerAllows: like the Java producer
// (allow.auto.create.topics=true) and kcat, produce to a topic that does not
// exist has a broker with auto.create.topics.enable=true create it.
func TestProduceCreatesTopicWhereTheBrokerAllows(t *testing.T) {
	bs := testcluster.Start(t, 1, nil).Bootstrap() // auto.create.topics.enable=true, as Kafka's default
	b := []string{"--bootstrap", bs}
	gregor(t, "first\nsecond\n", append([]string{"produce", "--topic", "fresh"}, b...)...).want(t, 0)
	r := gregor(t, "", append([]string{"consume", "--topic", "fresh", "--from-beginning", "--max-messages", "2", "--timeout", "10s"}, b...)...).want(t, 0)
	got := strings.Fields(r.stdout)
	slices.Sort(got)
	if !slices.Equal(got, []string{"first", "second"}) {
		t.Errorf("consumed %q from the created topic", r.stdout)
	}
}

// TestProduceMaxLineBytesIsTheLongestLine: --max-line-bytes N accepts a
// line of exactly N bytes and refuses one of N+1, whatever ends it (\n,
// \r\n, or the end of the input), the line ending not counted.
func TestProduceMaxLineBytesIsTheLongestLine(t *testing.T) {
	bs := startCluster(t, kfake.SeedTopics(1, "t"))
	for _, ending := range []string{"\n", "\r\n", ""} {
		t.Run(fmt.Sprintf("%q", ending), func(t *testing.T) {
			r := gregor(t, "0123456789"+ending, "produce", "--topic", "t", "--max-line-bytes", "10", "--bootstrap", bs)
			if r.code != 0 {
				t.Errorf("a 10-byte line with --max-line-bytes 10: exit %d, stderr %q", r.code, r.stderr)
			}
			r = gregor(t, "0123456789a"+ending, "produce", "--topic", "t", "--max-line-bytes", "10", "--bootstrap", bs)
			if r.code != 1 || !strings.Contains(r.stderr, "a line is longer than --max-line-bytes=10") {
				t.Errorf("an 11-byte line with --max-line-bytes 10: exit %d, stderr %q", r.code, r.stderr)
			}
		})
	}
	// The accepted lines arrived whole, without their endings; the refused
	// ones not at all.
	r := gregor(t, "", "consume", "--topic", "t", "--from-beginning", "--max-messages", "3", "--timeout", "10s", "--bootstrap", bs).want(t, 0)
	if want := strings.Repeat("0123456789\n", 3); r.stdout != want {
		t.Errorf("consumed %q, want %q", r.stdout, want)
	}
	gregor(t, "", "consume", "--topic", "t", "--from-beginning", "--max-messages", "4", "--timeout", "1s", "--bootstrap", bs).want(t, 1)
}

// TestProduceToMissingTopicFails: a cluster that does not create topics
// (kfake's default, or auto.create.topics.enable=false) fails the records.
func TestProduceToMissingTopicFails(t *testing.T) {
	b := []string{"--bootstrap", startCluster(t)}
	r := gregor(t, "a\n", append([]string{"produce", "--topic", "missing"}, b...)...).want(t, 1)
	if !strings.Contains(r.stderr, "UNKNOWN_TOPIC_OR_PARTITION") || !strings.Contains(r.stderr, "1 of 1 records not delivered") {
		t.Errorf("stderr = %q", r.stderr)
	}
}

// TestProduceToAnUnreachableBrokerEnds: with no broker to reach, produce
// gives up after --delivery-timeout-ms (delivery.timeout.ms, two minutes by
// default, as the Java producer does) and says so, rather than waiting for
// an interrupt.
func TestProduceToAnUnreachableBrokerEnds(t *testing.T) {
	addr := deadAddr(t)
	r := gregor(t, "a\n", "produce", "--topic", "t", "--delivery-timeout-ms", "1000", "--bootstrap", addr).want(t, 1)
	if !strings.Contains(r.stderr, "1 of 1 records not delivered") {
		t.Errorf("stderr = %q", r.stderr)
	}
}

// TestProduceALineOfAMegabyte: a line of 1,000,000 bytes is under the Java
// producer's max.request.size (1 MiB) and the broker's message.max.bytes,
// so it goes out as Kafka's console producer sends it; franz-go's default
// batch limit (1,000,012 bytes with the batch's header) had refused it.
func TestProduceALineOfAMegabyte(t *testing.T) {
	bs := testcluster.Start(t, 1, nil).Bootstrap()
	gregor(t, "", "topic", "create", "big", "--bootstrap", bs).want(t, 0)
	line := strings.Repeat("x", 1_000_000)
	gregor(t, line+"\n", "produce", "--topic", "big", "--bootstrap", bs).want(t, 0)
	r := gregor(t, "", "consume", "--topic", "big", "--from-beginning", "--max-messages", "1", "--timeout", "10s", "--bootstrap", bs).want(t, 0)
	if r.stdout != line+"\n" {
		t.Errorf("consumed %d bytes, want %d", len(r.stdout), len(line)+1)
	}
}

// terminal is stdin as a terminal gives it: lines, then a read that waits
// for more. asked is closed when that read comes, which is once the lines
// before it have been handed on.
type terminal struct {
	lines string
	asked chan struct{}
	done  <-chan struct{}
}

func (r *terminal) Read(p []byte) (int, error) {
	if r.lines != "" {
		n := copy(p, r.lines)
		r.lines = r.lines[n:]
		return n, nil
	}
	select {
	case <-r.asked:
	default:
		close(r.asked)
	}
	<-r.done
	return 0, io.EOF
}

// TestProduceInterruptSendsTheLinesRead: an interrupt (Ctrl-C) while
// lines wait out linger.ms sends them, as Kafka's console producer closes
// its producer, which sends what it holds. Before, they were failed.
func TestProduceInterruptSendsTheLinesRead(t *testing.T) {
	bs := testcluster.Start(t, 1, nil).Bootstrap()
	gregor(t, "", "topic", "create", "t", "--partitions", "1", "--bootstrap", bs).want(t, 0)
	stdin := &terminal{lines: "a\nb\n", asked: make(chan struct{}), done: t.Context().Done()}
	ctx, interrupt := context.WithCancel(t.Context())
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"produce", "--topic", "t", "--linger-ms", "60000", "--bootstrap", bs}, stdin, &stdout, &stderr)
	}()
	<-stdin.asked
	interrupt()
	select {
	case code := <-done:
		if code != 1 || !strings.Contains(stderr.String(), "interrupted after 2 records") {
			t.Errorf("exit %d, stderr %q; want 1 and the interrupt reported", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("produce did not end within 20s of the interrupt")
	}
	r := gregor(t, "", "consume", "--topic", "t", "--from-beginning", "--max-messages", "2", "--timeout", "10s", "--bootstrap", bs)
	if r.stdout != "a\nb\n" {
		t.Errorf("after the interrupt, consumed %q, want \"a\\nb\\n\" (stderr %q)", r.stdout, r.stderr)
	}
}

// TestConsumeFromAnUnreachableBrokerEndsAlike: with no broker to reach,
// consume stops after --timeout as it does when no record comes, whether or
// not it was given --offset (which looks up the topic's partitions first):
// "Processed a total of 0 messages", and exit 1 only if --max-messages was
// not reached.
func TestConsumeFromAnUnreachableBrokerEndsAlike(t *testing.T) {
	addr := deadAddr(t)
	for _, from := range [][]string{nil, {"--offset", "0"}} {
		for _, tc := range []struct {
			max  string
			code int
		}{{"0", 0}, {"1", 1}} {
			args := append([]string{"consume", "--topic", "t", "--timeout", "500ms", "--max-messages", tc.max, "--bootstrap", addr}, from...)
			r := gregor(t, "", args...)
			if r.code != tc.code || !strings.Contains(r.stderr, "Processed a total of 0 messages") {
				t.Errorf("gregor %q: exit %d, stderr %q; want %d and the count", args, r.code, r.stderr, tc.code)
			}
		}
	}
}
