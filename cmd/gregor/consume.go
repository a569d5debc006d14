package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func runConsume(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("consume", `usage: gregor consume --topic T [flags]

Prints each record's value as a line on stdout, reading the partitions
directly (no consumer group, nothing committed). It starts at the end of each
partition unless told otherwise (an --offset past the end of a partition
or below its start waits at the end, as Kafka's console consumer does with
auto.offset.reset=latest), and stops after --max-messages records,
when --timeout passes without a record, or on Ctrl-C. A count of processed
records goes to stderr at the end, as Kafka's console consumer does.
Stopping at --timeout before --max-messages were read exits 1.`, stderr)
	bootstrap := addBootstrapFlag(fs)
	topic := fs.String("topic", "", "topic to consume (required)")
	fromBeginning := fs.Bool("from-beginning", false, "start at the earliest offset instead of the end")
	offset := fs.Int64("offset", -1, "start at this absolute offset (in --partition, or in every partition)")
	partition := fs.Int("partition", -1, "consume only this partition (-1: all)")
	maxMessages := fs.Int("max-messages", 0, "stop after this many records (0: no limit)")
	timeout := fs.Duration("timeout", 0, "stop when no record arrives for this long (0: wait forever)")
	printKey := fs.Bool("print-key", false, "print the key (\"null\" if none) and a tab before the value")
	printOffset := fs.Bool("print-offset", false, "print \"Partition:P<tab>Offset:O<tab>\" before the record")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected arguments %q", pos)
	}
	switch {
	case *topic == "":
		return usagef("--topic is required")
	case *fromBeginning && *offset >= 0:
		return usagef("--from-beginning and --offset are mutually exclusive")
	case *offset < -1:
		return usagef("--offset must be a non-negative offset, got %d", *offset)
	case *partition < -1 || *partition > math.MaxInt32:
		return usagef("--partition must be -1 or a partition number, got %d", *partition)
	case *maxMessages < 0:
		return usagef("--max-messages must not be negative, got %d", *maxMessages)
	case *timeout < 0:
		return usagef("--timeout must not be negative, got %v", *timeout)
	}

	// Kafka's console consumer sets auto.offset.reset to earliest with
	// --from-beginning and to latest otherwise: an --offset past the end
	// of the log or below its start waits at the end for new records.
	start, reset := kgo.NewOffset().AtEnd(), kgo.NewOffset().AtEnd()
	switch {
	case *fromBeginning:
		start, reset = kgo.NewOffset().AtStart(), kgo.NewOffset().AtStart()
	case *offset >= 0:
		start = kgo.NewOffset().At(*offset)
	}
	opts, err := clientOpts(*bootstrap)
	if err != nil {
		return err
	}
	partitions := map[int32]kgo.Offset{}
	switch {
	case *partition >= 0:
		partitions[int32(*partition)] = start
	case *offset >= 0:
		// kgo moves an exact start offset of a subscribed topic that is
		// out of range to the nearer end of the log, which is the start
		// for one below it. Consuming each partition directly from the
		// offset leaves an out-of-range one to the reset offset instead,
		// as Kafka's consumer does.
		ids, err := topicPartitions(ctx, opts, *topic, *timeout)
		switch {
		case err != nil && ctx.Err() != nil:
			fmt.Fprintf(stderr, "Processed a total of 0 messages\n")
			return nil // Ctrl-C is how a console consumer is stopped
		case errors.Is(err, context.DeadlineExceeded):
			// --timeout passed with nothing to read, as when no
			// broker answers the consumer itself (consumeLoop).
			fmt.Fprintf(stderr, "Processed a total of 0 messages\n")
			if *maxMessages > 0 {
				return fmt.Errorf("no record for %v; got 0 of %d", *timeout, *maxMessages)
			}
			return nil
		case err != nil:
			return err
		}
		for _, id := range ids {
			partitions[id] = start
		}
	}
	if len(partitions) > 0 {
		opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{*topic: partitions}))
	} else {
		// A topic that does not exist yet is waited for; its partitions
		// will start at offset 0, so no --offset is below their start.
		opts = append(opts, kgo.ConsumeTopics(*topic), kgo.ConsumeStartOffset(start))
	}
	opts = append(opts, kgo.ConsumeResetOffset(reset))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()

	out := bufio.NewWriter(stdout)
	n, err := consumeLoop(ctx, cl, out, *maxMessages, *timeout, *printKey, *printOffset)
	if ferr := out.Flush(); err == nil && ferr != nil {
		err = ferr
	}
	fmt.Fprintf(stderr, "Processed a total of %d messages\n", n)
	return err
}

// topicPartitions lists the partitions of topic, none if it does not exist.
// While no broker answers it asks again, as the consumer itself would (and
// Kafka's does), until ctx ends or the idle timeout, if not zero, passes:
// so an unreachable cluster ends the command as it does when consuming.
func topicPartitions(ctx context.Context, opts []kgo.Opt, topic string, timeout time.Duration) ([]int32, error) {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	adm := kadm.NewClient(cl)
	var topics kadm.TopicDetails
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, time.Second) {
		if topics, err = adm.ListTopics(ctx, topic); err == nil {
			break
		}
		if ctx.Err() == nil {
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
				continue
			case <-ctx.Done():
				t.Stop()
			}
		}
		return nil, fmt.Errorf("looking up the partitions of %s: %w (last error: %v)", topic, ctx.Err(), err)
	}
	d, ok := topics[topic]
	switch {
	case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
		return nil, nil
	case d.Err != nil:
		return nil, fmt.Errorf("looking up the partitions of %s: %w", topic, d.Err)
	}
	return d.Partitions.Numbers(), nil
}

// consumeLoop polls and prints records until one of the stop conditions,
// returning how many it printed. Output is flushed after every poll so that
// a consumer tailing a topic shows records as they come, while a backlog is
// still written in large chunks.
func consumeLoop(ctx context.Context, cl *kgo.Client, out *bufio.Writer, maxMessages int, idle time.Duration, printKey, printOffset bool) (int, error) {
	n := 0
	var line []byte
	for maxMessages == 0 || n < maxMessages {
		pollCtx, cancel := ctx, context.CancelFunc(func() {})
		if idle > 0 {
			pollCtx, cancel = context.WithTimeout(ctx, idle)
		}
		want := 0 // all buffered
		if maxMessages > 0 {
			want = maxMessages - n
		}
		fetches := cl.PollRecords(pollCtx, want)
		cancel()

		var fetchErr error
		fetches.EachError(func(topic string, partition int32, err error) {
			switch {
			case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
				// A stop condition, looked at below.
			case fetchErr == nil:
				fetchErr = fmt.Errorf("fetching %s[%d]: %w", topic, partition, err)
			}
		})
		for it := fetches.RecordIter(); !it.Done(); {
			line = appendRecordLine(line[:0], it.Next(), printKey, printOffset)
			if _, err := out.Write(line); err != nil {
				return n, err
			}
			n++
		}
		if err := out.Flush(); err != nil {
			return n, err
		}
		switch {
		case fetchErr != nil:
			return n, fetchErr
		case ctx.Err() != nil:
			return n, nil // Ctrl-C is how a console consumer is stopped
		case pollCtx.Err() != nil && fetches.NumRecords() == 0:
			if maxMessages > 0 {
				return n, fmt.Errorf("no record for %v; got %d of %d", idle, n, maxMessages)
			}
			return n, nil
		}
	}
	return n, nil
}

// appendRecordLine formats a record the way Kafka's DefaultMessageFormatter
// does with print.partition, print.offset and print.key (tab separators,
// "null" for a missing key and for a null value, such as a tombstone's), so
// scripts written for kafka-console-consumer can read it. An empty value is
// an empty line.
func appendRecordLine(dst []byte, r *kgo.Record, printKey, printOffset bool) []byte {
	if printOffset {
		dst = append(dst, "Partition:"...)
		dst = strconv.AppendInt(dst, int64(r.Partition), 10)
		dst = append(dst, "\tOffset:"...)
		dst = strconv.AppendInt(dst, r.Offset, 10)
		dst = append(dst, '\t')
	}
	if printKey {
		if r.Key == nil {
			dst = append(dst, "null"...)
		} else {
			dst = append(dst, r.Key...)
		}
		dst = append(dst, '\t')
	}
	if r.Value == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, r.Value...)
	}
	return append(dst, '\n')
}
