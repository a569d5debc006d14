package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const groupUsage = `usage: gregor group <list|describe|delete|delete-offsets|reset-offsets> [flags] [arguments]

Inspects and manages consumer groups and their committed offsets on any
Kafka-compatible cluster, as Kafka's kafka-consumer-groups.sh does, through
the admin APIs (ListGroups, DescribeGroups, OffsetFetch, ListOffsets,
DeleteGroups, OffsetDelete, OffsetCommit).

  gregor group list [--state S,...] [--json]
  gregor group describe [--json] (group... | --all)
  gregor group delete group...
  gregor group delete-offsets group topic[:partition,...]...
  gregor group reset-offsets group (--topic topic[:partition,...]... | --all-topics)
      (--to-earliest | --to-latest | --to-offset N) [--execute]

Every subcommand takes --bootstrap (default ` + defaultBootstrap + `) and --timeout.
Run 'gregor group <subcommand> -h' for its flags.`

// runGroup implements "gregor group". As with topics, broker errors are
// reported per group (or per partition) with Kafka's error name, and any
// failure makes the command exit 1 after it has done what it could for
// the rest.
func runGroup(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		io.WriteString(stderr, groupUsage+"\n")
		return &usageError{err: errors.New("missing subcommand"), shown: true}
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "-h", "-help", "--help", "help":
		io.WriteString(stderr, groupUsage+"\n")
		return flag.ErrHelp
	case "list":
		return groupList(ctx, rest, stdout, stderr)
	case "describe":
		return groupDescribe(ctx, rest, stdout, stderr)
	case "delete":
		return groupDelete(ctx, rest, stdout, stderr)
	case "delete-offsets":
		return groupDeleteOffsets(ctx, rest, stdout, stderr)
	case "reset-offsets":
		return groupResetOffsets(ctx, rest, stdout, stderr)
	}
	return usagef("unknown subcommand %q (want list, describe, delete, delete-offsets or reset-offsets)", sub)
}

// groupStates are the states a group can be in, classic (the first five)
// and KIP-848, spelled as brokers report them.
var groupStates = []string{"PreparingRebalance", "CompletingRebalance", "Stable", "Empty", "Dead", "Assigning", "Reconciling"}

// listedGroupJSON is one group of "group list --json".
type listedGroupJSON struct {
	Group        string `json:"group"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
	Coordinator  int32  `json:"coordinator"`
}

func groupList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("group list", `usage: gregor group list [flags]

Prints every group on every broker with its state, protocol type
("consumer" for consumer groups, empty for a group that only holds
committed offsets) and coordinator, sorted by name.`, stderr)
	af := addAdminFlags(fs)
	statesFlag := fs.String("state", "", "show only groups in these comma-separated `states` (Stable, Empty, PreparingRebalance, CompletingRebalance, Dead)")
	asJSON := fs.Bool("json", false, "print a JSON array instead of a table")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("list: unexpected arguments %q (use describe for named groups)", pos)
	}
	var states []string
	for s := range strings.SplitSeq(*statesFlag, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		// Kafka's tool takes states in any case; brokers compare them
		// exactly (before Kafka 3.9), so send the canonical spelling.
		i := slices.IndexFunc(groupStates, func(known string) bool { return strings.EqualFold(known, s) })
		if i < 0 {
			return usagef("list: unknown --state %q (want one of %s)", s, strings.Join(groupStates, ", "))
		}
		states = append(states, groupStates[i])
	}

	adm, ctx, release, err := af.connect(ctx)
	if err != nil {
		return err
	}
	defer release()
	listed, err := adm.ListGroups(ctx, states...)
	// A broker that did not answer leaves its groups out; the others are
	// still worth printing, followed by the error.
	var errs []error
	if se, ok := errors.AsType[*kadm.ShardErrors](err); ok && !se.AllFailed {
		for _, e := range se.Errs {
			errs = append(errs, fmt.Errorf("list: broker %d: %w", e.Broker.NodeID, e.Err))
		}
	} else if err != nil {
		return fmt.Errorf("list: %w", err)
	}

	if *asJSON {
		out := make([]listedGroupJSON, 0, len(listed))
		for _, g := range listed.Sorted() {
			out = append(out, listedGroupJSON{g.Group, g.State, g.ProtocolType, g.Coordinator})
		}
		if err := writeJSON(stdout, out); err != nil {
			return err
		}
		return errors.Join(errs...)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tSTATE\tPROTOCOL-TYPE\tCOORDINATOR")
	for _, g := range listed.Sorted() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", g.Group, orDash(g.State), orDash(g.ProtocolType), g.Coordinator)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// describedGroup is what "group describe" shows of one group; it is also
// the JSON form.
type describedGroup struct {
	Group        string           `json:"group"`
	State        string           `json:"state"`
	ProtocolType string           `json:"protocol_type"`
	Protocol     string           `json:"protocol"`
	Coordinator  groupCoordinator `json:"coordinator"`
	Members      []groupMember    `json:"members"`
	Partitions   []groupPartition `json:"partitions"`
	TotalLag     int64            `json:"total_lag"`
}

type groupCoordinator struct {
	NodeID int32  `json:"node_id"`
	Host   string `json:"host"`
	Port   int32  `json:"port"`
}

type groupMember struct {
	MemberID   string                 `json:"member_id"`
	InstanceID *string                `json:"instance_id"` // null unless a static member (KIP-345)
	ClientID   string                 `json:"client_id"`
	Host       string                 `json:"host"`
	Assignment []groupTopicPartitions `json:"assignment"`
}

type groupTopicPartitions struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

// groupPartition is one partition the group has committed to or has
// assigned. The pointers are null where the text table prints "-".
type groupPartition struct {
	Topic           string `json:"topic"`
	Partition       int32  `json:"partition"`
	CommittedOffset *int64 `json:"committed_offset"` // null: nothing committed
	LogEndOffset    *int64 `json:"log_end_offset"`   // null: could not be listed
	Lag             *int64 `json:"lag"`              // null: nothing committed, or an error
	MemberID        string `json:"member_id"`        // empty: not assigned to any member
	Error           string `json:"error,omitempty"`
}

func groupDescribe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("group describe", `usage: gregor group describe [flags] (group... | --all)

Prints each group's state, protocol and coordinator, its members (member id,
group instance id, client id, host, assigned partitions) and, for every
partition it has committed to or has assigned, the committed offset, the log
end offset, the lag between them and the member consuming it, then the total
lag. "-" means nothing committed (or no owner); partitions without a
committed offset do not count toward the total lag.`, stderr)
	af := addAdminFlags(fs)
	all := fs.Bool("all", false, "describe every group in the cluster")
	asJSON := fs.Bool("json", false, "print a JSON array instead of tables")
	groups, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case *all && len(groups) > 0:
		return usagef("describe: --all and group names are mutually exclusive")
	case !*all && len(groups) == 0:
		return usagef("describe: no group names given (or --all)")
	}
	groups = dedupe(groups)

	adm, ctx, release, err := af.connect(ctx)
	if err != nil {
		return err
	}
	defer release()

	var errs []error
	if *all {
		listed, err := adm.ListGroups(ctx)
		if se, ok := errors.AsType[*kadm.ShardErrors](err); ok && !se.AllFailed {
			for _, e := range se.Errs {
				errs = append(errs, fmt.Errorf("describe --all: listing broker %d: %w", e.Broker.NodeID, e.Err))
			}
		} else if err != nil {
			return fmt.Errorf("describe: listing groups: %w", err)
		}
		groups = listed.Groups() // sorted
	}

	var found []describedGroup
	if len(groups) > 0 {
		// Lag describes the groups, fetches their commits and lists the
		// start and end offsets of every partition they touch. It uses
		// the slice it is given as scratch space, hence the clone.
		lags, err := adm.Lag(ctx, slices.Clone(groups)...)
		if err != nil {
			return fmt.Errorf("describe: %w", err)
		}
		for _, name := range groups {
			l, ok := lags[name]
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("describe %s: no answer for this group from the broker", name))
			case l.Error() != nil:
				errs = append(errs, fmt.Errorf("describe %s: %w", name, l.Error()))
			case l.State == "Dead" && len(l.Members) == 0 && len(l.Lag.Sorted()) == 0:
				// Brokers before DescribeGroups v6 (KIP-1043) say a
				// group that does not exist is Dead, without an error.
				errs = append(errs, fmt.Errorf("describe %s: %w", name, kerr.GroupIDNotFound))
			default:
				found = append(found, newDescribedGroup(l))
			}
		}
	}

	if *asJSON {
		if found == nil {
			found = []describedGroup{}
		}
		if err := writeJSON(stdout, found); err != nil {
			return err
		}
		return errors.Join(errs...)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for i, g := range found {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		writeDescribedGroup(tw, g)
		// Each table gets its own column widths.
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

// newDescribedGroup turns kadm's lag report into what describe prints.
func newDescribedGroup(l kadm.DescribedGroupLag) describedGroup {
	g := describedGroup{
		Group:        l.Group,
		State:        l.State,
		ProtocolType: l.ProtocolType,
		Protocol:     l.Protocol,
		Coordinator:  groupCoordinator{l.Coordinator.NodeID, l.Coordinator.Host, l.Coordinator.Port},
		Members:      []groupMember{},
		Partitions:   []groupPartition{},
	}
	for _, m := range l.Members {
		gm := groupMember{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, Host: m.ClientHost, Assignment: []groupTopicPartitions{}}
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				ps := slices.Clone(t.Partitions)
				slices.Sort(ps)
				gm.Assignment = append(gm.Assignment, groupTopicPartitions{t.Topic, ps})
			}
			slices.SortFunc(gm.Assignment, func(a, b groupTopicPartitions) int { return strings.Compare(a.Topic, b.Topic) })
		}
		g.Members = append(g.Members, gm)
	}
	for _, r := range l.Lag.Sorted() {
		// An offset fetch may list a partition without a commit (offset
		// -1); with no owner either, the group has nothing there.
		if r.Commit.At < 0 && r.Member == nil && r.Err == nil {
			continue
		}
		p := groupPartition{Topic: r.Topic, Partition: r.Partition}
		if r.Commit.At >= 0 {
			p.CommittedOffset = new(r.Commit.At)
		}
		if r.End.Err == nil {
			p.LogEndOffset = new(r.End.Offset)
		}
		// kadm counts a partition with no commit as lagging by all of
		// its records; Kafka's tool, and this one, say "-" instead:
		// where such a consumer starts depends on its reset policy.
		if r.Err == nil && p.CommittedOffset != nil {
			p.Lag = new(r.Lag)
			g.TotalLag += r.Lag
		}
		if r.Err != nil {
			p.Error = r.Err.Error()
		}
		if r.Member != nil {
			p.MemberID = r.Member.MemberID
		}
		g.Partitions = append(g.Partitions, p)
	}
	return g
}

// writeDescribedGroup writes a group's header line, its member table and
// its partition table. Lines without tabs end a tabwriter column block,
// so the two tables are aligned each on its own.
func writeDescribedGroup(w io.Writer, g describedGroup) {
	fmt.Fprintf(w, "Group: %s  State: %s  ProtocolType: %s  Protocol: %s  Coordinator: %d (%s)\n",
		g.Group, orDash(g.State), orDash(g.ProtocolType), orDash(g.Protocol),
		g.Coordinator.NodeID, joinHostPort(g.Coordinator.Host, g.Coordinator.Port))
	if len(g.Members) == 0 {
		fmt.Fprintln(w, "  Members: none (the group has no active members)")
	} else {
		fmt.Fprintln(w, "  MEMBER-ID\tINSTANCE-ID\tCLIENT-ID\tHOST\tASSIGNMENT")
		for _, m := range g.Members {
			instance := "-"
			if m.InstanceID != nil {
				instance = *m.InstanceID
			}
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\n", m.MemberID, instance, orDash(m.ClientID), orDash(m.Host), assignmentString(m.Assignment))
		}
	}
	fmt.Fprintln(w)
	if len(g.Partitions) == 0 {
		fmt.Fprintln(w, "  Offsets: none committed, no partitions assigned")
		return
	}
	hasErr := slices.ContainsFunc(g.Partitions, func(p groupPartition) bool { return p.Error != "" })
	header := "  TOPIC\tPARTITION\tCURRENT-OFFSET\tLOG-END-OFFSET\tLAG\tMEMBER-ID"
	if hasErr {
		header += "\tERROR"
	}
	fmt.Fprintln(w, header)
	for _, p := range g.Partitions {
		line := fmt.Sprintf("  %s\t%d\t%s\t%s\t%s\t%s", p.Topic, p.Partition,
			int64OrDash(p.CommittedOffset), int64OrDash(p.LogEndOffset), int64OrDash(p.Lag), orDash(p.MemberID))
		if hasErr {
			line += "\t" + orDash(p.Error)
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "  Total lag: %d\n", g.TotalLag)
}

// assignmentString formats an assignment as Kafka's tool does:
// "orders(0,1,2),payments(3)".
func assignmentString(a []groupTopicPartitions) string {
	if len(a) == 0 {
		return "-"
	}
	var b strings.Builder
	for i, t := range a {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(t.Topic)
		b.WriteByte('(')
		for j, p := range t.Partitions {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(int(p)))
		}
		b.WriteByte(')')
	}
	return b.String()
}

func groupDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("group delete", `usage: gregor group delete [flags] group...

Deletes groups and their committed offsets. Only a group without active
members can be deleted (NON_EMPTY_GROUP otherwise): stop its consumers first.`, stderr)
	af := addAdminFlags(fs)
	groups, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(groups) == 0 {
		return usagef("delete: no group names given")
	}
	groups = dedupe(groups)
	adm, ctx, release, err := af.connect(ctx)
	if err != nil {
		return err
	}
	defer release()
	resps, err := adm.DeleteGroups(ctx, groups...)
	// The request goes to each group's coordinator; one that failed
	// leaves its groups out of the answer, with the reason here.
	shardErr := make(map[string]error)
	if se, ok := errors.AsType[*kadm.ShardErrors](err); ok {
		for _, e := range se.Errs {
			if req, ok := e.Req.(*kmsg.DeleteGroupsRequest); ok {
				for _, g := range req.Groups {
					shardErr[g] = e.Err
				}
			}
		}
	} else if err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	var errs []error
	for _, g := range groups {
		r, ok := resps[g]
		switch {
		case shardErr[g] != nil:
			errs = append(errs, fmt.Errorf("delete %s: %w", g, shardErr[g]))
		case !ok:
			errs = append(errs, fmt.Errorf("delete %s: no answer for this group from the broker", g))
		case r.Err != nil:
			errs = append(errs, fmt.Errorf("delete %s: %w", g, withBrokerMessage(r.Err, r.ErrMessage)))
		default:
			fmt.Fprintf(stdout, "deleted group %s\n", g)
		}
	}
	return errors.Join(errs...)
}

// topicPartitionSpec is a "topic" or "topic:0,1,2" argument. No partitions
// means all of them.
type topicPartitionSpec struct {
	topic      string
	partitions []int32
}

// parseTopicPartitions parses "topic[:partition,...]". Kafka topic names
// cannot contain ':', so the last one separates the partitions.
func parseTopicPartitions(s string) (topicPartitionSpec, error) {
	topic, list, hasList := s, "", false
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		topic, list, hasList = s[:i], s[i+1:], true
	}
	if topic == "" {
		return topicPartitionSpec{}, fmt.Errorf("%q has no topic name (want topic[:partition,...])", s)
	}
	spec := topicPartitionSpec{topic: topic}
	if !hasList {
		return spec, nil
	}
	for p := range strings.SplitSeq(list, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 32)
		if err != nil || n < 0 {
			return topicPartitionSpec{}, fmt.Errorf("%q: partition %q is not a number from 0 to %d (want topic[:partition,...])", s, p, math.MaxInt32)
		}
		if !slices.Contains(spec.partitions, int32(n)) {
			spec.partitions = append(spec.partitions, int32(n))
		}
	}
	return spec, nil
}

// resolvePartitions turns specs into a set of partitions. A spec without
// partitions means every partition of the topic that exists, plus any the
// group still has offsets for (a topic deleted since still has those).
// committed may be nil. Topics that name no partition at all are errors.
func resolvePartitions(ctx context.Context, adm *kadm.Client, specs []topicPartitionSpec, committed kadm.OffsetResponses, verb string) (kadm.TopicsSet, []error, error) {
	set := make(kadm.TopicsSet)
	var whole []string
	for _, s := range specs {
		if len(s.partitions) == 0 {
			whole = append(whole, s.topic)
			continue
		}
		set.Add(s.topic, s.partitions...)
	}
	if len(whole) == 0 {
		return set, nil, nil
	}
	details, err := adm.ListTopics(ctx, whole...)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", verb, err)
	}
	var errs []error
	for _, t := range dedupe(whole) {
		var ps []int32
		if d, ok := details[t]; ok && d.Err == nil {
			for p := range d.Partitions {
				ps = append(ps, p)
			}
		}
		for p := range committed[t] {
			ps = append(ps, p)
		}
		if len(ps) == 0 {
			err := error(kerr.UnknownTopicOrPartition)
			if d, ok := details[t]; ok && d.Err != nil {
				err = d.Err
			}
			errs = append(errs, fmt.Errorf("%s %s: %w", verb, t, err))
			continue
		}
		set.Add(t, ps...)
	}
	return set, errs, nil
}

func groupDeleteOffsets(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("group delete-offsets", `usage: gregor group delete-offsets [flags] group topic[:partition,...]...

Deletes a group's committed offsets for the given partitions (all of a
topic's when none are listed), as OffsetDelete does: a group with active
members keeps the offsets of the topics it is subscribed to
(GROUP_SUBSCRIBED_TO_TOPIC). Prints the outcome per partition.`, stderr)
	af := addAdminFlags(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return usagef("delete-offsets: want a group and at least one topic[:partition,...]")
	}
	group := pos[0]
	var specs []topicPartitionSpec
	for _, a := range pos[1:] {
		s, err := parseTopicPartitions(a)
		if err != nil {
			return usagef("delete-offsets: %v", err)
		}
		specs = append(specs, s)
	}

	adm, ctx, release, err := af.connect(ctx)
	if err != nil {
		return err
	}
	defer release()
	// Only a hint for whole-topic specs: the broker's answer to the
	// delete is what reports a missing group.
	committed, _ := adm.FetchOffsets(ctx, group)
	set, errs, err := resolvePartitions(ctx, adm, specs, committed, "delete-offsets "+group)
	if err != nil {
		return err
	}
	if len(set) == 0 {
		return errors.Join(errs...)
	}
	resps, err := adm.DeleteOffsets(ctx, group, set)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("delete-offsets %s: %w", group, err))...)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tSTATUS")
	for _, tp := range set.Sorted() {
		for _, p := range tp.Partitions {
			perr, ok := resps.Lookup(tp.Topic, p)
			if !ok {
				perr = errors.New("no answer for this partition from the broker")
			}
			status := "deleted"
			if perr != nil {
				status = errorName(perr)
				errs = append(errs, fmt.Errorf("delete-offsets %s %s/%d: %w", group, tp.Topic, p, perr))
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\n", tp.Topic, p, status)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// topicSpecsFlag is the repeatable --topic topic[:partition,...] flag.
type topicSpecsFlag struct{ specs []topicPartitionSpec }

func (f *topicSpecsFlag) String() string {
	if f == nil {
		return ""
	}
	var s []string
	for _, sp := range f.specs {
		s = append(s, sp.topic)
	}
	return strings.Join(s, ",")
}

func (f *topicSpecsFlag) Set(s string) error {
	sp, err := parseTopicPartitions(s)
	if err != nil {
		return err
	}
	f.specs = append(f.specs, sp)
	return nil
}

func groupResetOffsets(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("group reset-offsets", `usage: gregor group reset-offsets [flags] group (--topic topic[:partition,...]... | --all-topics)
       (--to-earliest | --to-latest | --to-offset N) [--execute]

Sets a group's committed offsets, for when its consumers start again. As
with Kafka's tool the group must have no active members, and without
--execute it only prints the plan. --to-offset is clamped to each
partition's earliest and latest offsets. A group that does not exist yet is
created with these offsets.`, stderr)
	af := addAdminFlags(fs)
	var topics topicSpecsFlag
	fs.Var(&topics, "topic", "reset this `topic[:partition,...]` (all partitions when none are listed; repeatable)")
	allTopics := fs.Bool("all-topics", false, "reset every partition the group has committed offsets for")
	toEarliest := fs.Bool("to-earliest", false, "reset to each partition's log start offset")
	toLatest := fs.Bool("to-latest", false, "reset to each partition's log end offset")
	var toOffset int64
	fs.Func("to-offset", "reset to this `offset` (clamped to each partition's start and end)", func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return errors.New("want an offset, 0 or more")
		}
		toOffset = n
		return nil
	})
	execute := fs.Bool("execute", false, "commit the new offsets (without it, only print them)")
	fs.Bool("dry-run", false, "only print the new offsets (the default)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) != 1:
		return usagef("reset-offsets: want exactly one group, got %d arguments", len(pos))
	case len(topics.specs) > 0 == *allTopics:
		return usagef("reset-offsets: give either --topic or --all-topics")
	case btoi(*toEarliest)+btoi(*toLatest)+btoi(flagSet(fs, "to-offset")) != 1:
		return usagef("reset-offsets: give exactly one of --to-earliest, --to-latest and --to-offset")
	case *execute && flagSet(fs, "dry-run"):
		return usagef("reset-offsets: --execute and --dry-run are mutually exclusive")
	}
	group := pos[0]

	adm, ctx, release, err := af.connect(ctx)
	if err != nil {
		return err
	}
	defer release()

	// Consumers that are running would overwrite the new offsets with
	// their next commit, so Kafka's tool refuses; so does this one. (A
	// broker also refuses a commit from outside a non-empty group.)
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return fmt.Errorf("reset-offsets %s: %w", group, err)
	}
	if d, ok := described[group]; ok {
		switch {
		case d.Err != nil && !errors.Is(d.Err, kerr.GroupIDNotFound):
			return fmt.Errorf("reset-offsets %s: %w", group, withBrokerMessage(d.Err, d.ErrMessage))
		case d.Err == nil && d.State != "Empty" && d.State != "Dead":
			return fmt.Errorf("reset-offsets %s: the group must be inactive, but it is %s with %d members: stop its consumers first", group, d.State, len(d.Members))
		}
	}

	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return fmt.Errorf("reset-offsets %s: fetching committed offsets: %w", group, err)
	}
	var parts kadm.TopicsSet
	var errs []error
	if *allTopics {
		parts = committed.Partitions()
		if len(parts) == 0 {
			return fmt.Errorf("reset-offsets %s: the group has no committed offsets (use --topic)", group)
		}
	} else {
		parts, errs, err = resolvePartitions(ctx, adm, topics.specs, nil, "reset-offsets "+group)
		if err != nil {
			return err
		}
	}
	if len(parts) == 0 {
		return errors.Join(errs...)
	}

	topicNames := parts.Topics()
	starts, err := adm.ListStartOffsets(ctx, topicNames...)
	if err != nil {
		return fmt.Errorf("reset-offsets %s: listing start offsets: %w", group, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topicNames...)
	if err != nil {
		return fmt.Errorf("reset-offsets %s: listing end offsets: %w", group, err)
	}
	plan := make(kadm.Offsets)
	for _, tp := range parts.Sorted() {
		for _, p := range tp.Partitions {
			start, sok := starts.Lookup(tp.Topic, p)
			end, eok := ends.Lookup(tp.Topic, p)
			var at int64
			switch {
			case !sok || !eok:
				err = lookupErr(tp.Topic, starts, ends)
			case start.Err != nil:
				err = start.Err
			case end.Err != nil:
				err = end.Err
			case *toEarliest:
				at = start.Offset
			case *toLatest:
				at = end.Offset
			default:
				at = toOffset
				if at < start.Offset {
					fmt.Fprintf(stderr, "%s/%d: offset %d is before the log start offset %d; using %d\n", tp.Topic, p, at, start.Offset, start.Offset)
					at = start.Offset
				} else if at > end.Offset {
					fmt.Fprintf(stderr, "%s/%d: offset %d is past the log end offset %d; using %d\n", tp.Topic, p, at, end.Offset, end.Offset)
					at = end.Offset
				}
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("reset-offsets %s %s/%d: %w", group, tp.Topic, p, err))
				err = nil
				continue
			}
			// No leader epoch: the consumer cannot check an offset it
			// did not read itself for truncation anyway.
			plan.Add(kadm.Offset{Topic: tp.Topic, Partition: p, At: at, LeaderEpoch: -1})
		}
	}

	if *execute && len(plan) > 0 {
		resps, err := adm.CommitOffsets(ctx, group, plan)
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("reset-offsets %s: %w", group, err))...)
		}
		resps.EachError(func(r kadm.OffsetResponse) {
			errs = append(errs, fmt.Errorf("reset-offsets %s %s/%d: %w", group, r.Topic, r.Partition, r.Err))
			plan.Delete(r.Topic, r.Partition)
		})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCURRENT-OFFSET\tNEW-OFFSET")
	for _, o := range plan.Sorted() {
		current := "-"
		if c, ok := committed.Lookup(o.Topic, o.Partition); ok && c.Err == nil && c.At >= 0 {
			current = strconv.FormatInt(c.At, 10)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\n", o.Topic, o.Partition, current, o.At)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !*execute {
		fmt.Fprintln(stderr, "Dry run: nothing was committed. Add --execute to commit these offsets.")
	}
	return errors.Join(errs...)
}

// lookupErr says why a partition is missing from listed offsets: the
// topic's own error if it has one (kadm lists it as partition -1), else
// that the partition does not exist.
func lookupErr(topic string, lists ...kadm.ListedOffsets) error {
	for _, l := range lists {
		if o, ok := l.Lookup(topic, -1); ok && o.Err != nil {
			return o.Err
		}
	}
	return kerr.UnknownTopicOrPartition
}

// dedupe drops repeated names, keeping the first of each in order.
func dedupe(names []string) []string {
	seen := make(map[string]bool, len(names))
	out := names[:0:0]
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// errorName is the short name of a broker error (GROUP_SUBSCRIBED_TO_TOPIC)
// for a table cell; other errors are shown whole.
func errorName(err error) string {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message
	}
	return err.Error()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func joinHostPort(host string, port int32) string {
	if host == "" {
		return "-"
	}
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func int64OrDash(p *int64) string {
	if p == nil {
		return "-"
	}
	return strconv.FormatInt(*p, 10)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
