package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const topicUsage = `usage: gregor topic <create|list|describe|delete> [flags] [topic...]

Manages topics on any Kafka-compatible cluster through the admin APIs
(CreateTopics, Metadata, DescribeConfigs, DeleteTopics).

  gregor topic create [--partitions N] [--replication-factor R] [--config k=v]... topic...
  gregor topic list [--internal]
  gregor topic describe [--overrides] [topic...]
  gregor topic delete topic...

Every subcommand takes --bootstrap (default ` + defaultBootstrap + `) and --timeout.
Run 'gregor topic <subcommand> -h' for its flags.`

// runTopic implements "gregor topic". Broker errors are reported per topic
// with Kafka's error name; if any topic failed the command exits 1 after
// doing what it could for the others.
func runTopic(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		io.WriteString(stderr, topicUsage+"\n")
		return &usageError{err: errors.New("missing subcommand"), shown: true}
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "-h", "-help", "--help", "help":
		io.WriteString(stderr, topicUsage+"\n")
		return flag.ErrHelp
	case "create":
		return topicCreate(ctx, rest, stdout, stderr)
	case "list":
		return topicList(ctx, rest, stdout, stderr)
	case "describe":
		return topicDescribe(ctx, rest, stdout, stderr)
	case "delete":
		return topicDelete(ctx, rest, stdout, stderr)
	}
	return usagef("unknown subcommand %q (want create, list, describe or delete)", sub)
}

// adminFlags are the flags every topic subcommand shares.
type adminFlags struct {
	bootstrap *string
	timeout   *time.Duration
}

func addAdminFlags(fs *flag.FlagSet) adminFlags {
	return adminFlags{
		bootstrap: addBootstrapFlag(fs),
		// Without a bound, an unreachable bootstrap address makes the
		// client retry until the user gives up; a script deserves an answer.
		timeout: fs.Duration("timeout", 30*time.Second, "give up on the cluster after this long"),
	}
}

// connect returns an admin client and a context bounded by --timeout. The
// caller must call the returned release function.
func (f adminFlags) connect(ctx context.Context) (*kadm.Client, context.Context, func(), error) {
	if *f.timeout <= 0 {
		return nil, nil, nil, usagef("--timeout must be positive, got %v", *f.timeout)
	}
	opts, err := clientOpts(*f.bootstrap)
	if err != nil {
		return nil, nil, nil, err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, nil, nil, err
	}
	adm := kadm.NewClient(cl)
	// Create/delete wait on the broker for at most this long as well, so a
	// slow controller is reported as a timeout rather than a dropped socket.
	adm.SetTimeoutMillis(int32(min(f.timeout.Milliseconds(), math.MaxInt32)))
	ctx, cancel := context.WithTimeout(ctx, *f.timeout)
	return adm, ctx, func() { cancel(); adm.Close() }, nil
}

func topicCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("topic create", `usage: gregor topic create [flags] topic...

Creates topics. -1 for --partitions or --replication-factor means the
broker's default (num.partitions, default.replication.factor).`, stderr)
	af := addAdminFlags(fs)
	partitions := fs.Int("partitions", -1, "number of partitions (-1: broker default)")
	replication := fs.Int("replication-factor", -1, "replicas per partition (-1: broker default)")
	var configs keyValueFlag
	fs.Var(&configs, "config", "topic config `key=value`, e.g. retention.ms=60000 (repeatable)")
	topics, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(topics) == 0 {
		return usagef("create: no topic names given")
	}
	if *partitions == 0 || *partitions < -1 || *partitions > math.MaxInt32 {
		return usagef("create: --partitions must be -1 or positive, got %d", *partitions)
	}
	if *replication == 0 || *replication < -1 || *replication > math.MaxInt16 {
		return usagef("create: --replication-factor must be -1 or in 1..%d, got %d", math.MaxInt16, *replication)
	}
	var cfg map[string]*string
	if len(configs.pairs) > 0 {
		cfg = make(map[string]*string)
		for k, v := range configs.Map() {
			cfg[k] = kadm.StringPtr(v)
		}
	}

	adm, ctx, release, err := af.connect(ctx)
	if err != nil {
		return err
	}
	defer release()
	resps, err := adm.CreateTopics(ctx, int32(*partitions), int16(*replication), cfg, topics...)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	var errs []error
	for _, t := range topics {
		r, ok := resps[t]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("create %s: no answer for this topic from the broker", t))
		case r.Err != nil:
			errs = append(errs, fmt.Errorf("create %s: %w", t, withBrokerMessage(r.Err, r.ErrMessage)))
		case r.NumPartitions > 0:
			// Kafka 2.4+ says what the defaults resolved to.
			fmt.Fprintf(stdout, "created topic %s (partitions %d, replication factor %d)\n", t, r.NumPartitions, r.ReplicationFactor)
		default:
			fmt.Fprintf(stdout, "created topic %s\n", t)
		}
	}
	return errors.Join(errs...)
}

func topicList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("topic list", `usage: gregor topic list [flags]

Prints the names of all topics, one per line, sorted.`, stderr)
	af := addAdminFlags(fs)
	internal := fs.Bool("internal", false, "include internal topics such as __consumer_offsets")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("list: unexpected arguments %q (use describe for named topics)", pos)
	}
	adm, ctx, release, err := af.connect(ctx)
	if err != nil {
		return err
	}
	defer release()
	list := adm.ListTopics
	if *internal {
		list = adm.ListTopicsWithInternal
	}
	details, err := list(ctx)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	var errs []error
	var b strings.Builder
	for _, name := range details.Names() { // sorted
		if d := details[name]; d.Err != nil {
			errs = append(errs, fmt.Errorf("list %s: %w", name, d.Err))
			continue
		}
		b.WriteString(name)
		b.WriteByte('\n')
	}
	io.WriteString(stdout, b.String())
	return errors.Join(errs...)
}

func topicDescribe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("topic describe", `usage: gregor topic describe [flags] [topic...]

Prints each topic's partitions (leader, leader epoch, replicas, in-sync
replicas) and its configs with where each value comes from. Without topic
names it describes every non-internal topic.`, stderr)
	af := addAdminFlags(fs)
	overrides := fs.Bool("overrides", false, "show only configs set on the topic itself, not defaults")
	topics, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	adm, ctx, release, err := af.connect(ctx)
	if err != nil {
		return err
	}
	defer release()

	details, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return fmt.Errorf("describe: %w", err)
	}
	var errs []error
	var found []string
	for _, d := range details.Sorted() {
		if d.Err != nil {
			errs = append(errs, fmt.Errorf("describe %s: %w", d.Topic, d.Err))
			continue
		}
		found = append(found, d.Topic)
	}
	configs := make(map[string]kadm.ResourceConfig)
	if len(found) > 0 {
		rcs, err := adm.DescribeTopicConfigs(ctx, found...)
		// Partial answers still carry the topics that did load; any
		// shard error is reported alongside them.
		if err != nil {
			errs = append(errs, fmt.Errorf("describe configs: %w", err))
		}
		for _, rc := range rcs {
			configs[rc.Name] = rc
		}
	}

	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for i, name := range found {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		writeTopicDetail(tw, details[name])
		// Flushing ends the column block, so the config table gets its
		// own column widths instead of sharing the partition table's.
		if err := tw.Flush(); err != nil {
			return err
		}
		rc, ok := configs[name]
		switch {
		case !ok:
			// Already reported above, or the broker sent nothing.
		case rc.Err != nil:
			errs = append(errs, fmt.Errorf("describe configs %s: %w", name, withBrokerMessage(rc.Err, rc.ErrMessage)))
		default:
			writeTopicConfigs(tw, rc.Configs, *overrides)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// writeTopicDetail writes a topic's header line and partition table. The
// header has no tabs so that it ends the tabwriter's column block: each
// table is aligned on its own.
func writeTopicDetail(w io.Writer, d kadm.TopicDetail) {
	parts := d.Partitions.Sorted()
	rf := 0
	if len(parts) > 0 {
		rf = len(parts[0].Replicas)
	}
	fmt.Fprintf(w, "Topic: %s  ID: %s  Partitions: %d  ReplicationFactor: %d", d.Topic, kafkaUUID(d.ID), len(parts), rf)
	if d.IsInternal {
		fmt.Fprint(w, "  (internal)")
	}
	fmt.Fprintln(w)

	hasErr, hasOffline := false, false
	for _, p := range parts {
		hasErr = hasErr || p.Err != nil
		hasOffline = hasOffline || len(p.OfflineReplicas) > 0
	}
	header := "  PARTITION\tLEADER\tEPOCH\tREPLICAS\tISR"
	if hasOffline {
		header += "\tOFFLINE"
	}
	if hasErr {
		header += "\tERROR"
	}
	fmt.Fprintln(w, header)
	for _, p := range parts {
		leader := "none"
		if p.Leader >= 0 {
			leader = strconv.Itoa(int(p.Leader))
		}
		line := fmt.Sprintf("  %d\t%s\t%d\t%s\t%s", p.Partition, leader, p.LeaderEpoch, brokerList(p.Replicas), brokerList(p.ISR))
		if hasOffline {
			line += "\t" + brokerList(p.OfflineReplicas)
		}
		if hasErr && p.Err != nil {
			line += "\t" + p.Err.Error()
		}
		fmt.Fprintln(w, line)
	}
}

// writeTopicConfigs writes a topic's configs sorted by key, with their
// source, because "why is retention 7 days" is answered by the source.
func writeTopicConfigs(w io.Writer, cfgs []kadm.Config, overridesOnly bool) {
	byKey := make(map[string]kadm.Config, len(cfgs))
	for _, c := range cfgs {
		if overridesOnly && c.Source != kmsg.ConfigSourceDynamicTopicConfig {
			continue
		}
		byKey[c.Key] = c
	}
	if len(byKey) == 0 {
		fmt.Fprintln(w, "  Configs: none")
		return
	}
	fmt.Fprintln(w, "  CONFIG\tVALUE\tSOURCE")
	for _, k := range sortedKeys(byKey) {
		c := byKey[k]
		value := "(null)"
		switch {
		case c.Sensitive:
			value = "(sensitive)"
		case c.Value != nil:
			value = *c.Value
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\n", c.Key, value, c.Source)
	}
}

// kafkaUUID formats a topic ID as Kafka's Uuid.toString does (URL-safe
// base64 without padding), so IDs can be compared with kafka-topics.sh
// output and broker logs; kadm's String uses standard base64.
func kafkaUUID(id kadm.TopicID) string {
	if id == (kadm.TopicID{}) {
		return "-" // brokers before Kafka 2.8 have no topic IDs
	}
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// brokerList formats broker ids as Kafka's tools do: "1,2,3".
func brokerList(ids []int32) string {
	if len(ids) == 0 {
		return "-"
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(int(id))
	}
	return strings.Join(s, ",")
}

func topicDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("topic delete", `usage: gregor topic delete [flags] topic...

Deletes topics and all their data.`, stderr)
	af := addAdminFlags(fs)
	topics, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(topics) == 0 {
		return usagef("delete: no topic names given")
	}
	adm, ctx, release, err := af.connect(ctx)
	if err != nil {
		return err
	}
	defer release()
	resps, err := adm.DeleteTopics(ctx, topics...)
	if err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	var errs []error
	for _, t := range topics {
		r, ok := resps[t]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("delete %s: no answer for this topic from the broker", t))
		case r.Err != nil:
			errs = append(errs, fmt.Errorf("delete %s: %w", t, withBrokerMessage(r.Err, r.ErrMessage)))
		default:
			fmt.Fprintf(stdout, "deleted topic %s\n", t)
		}
	}
	return errors.Join(errs...)
}
