package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// maxReportedErrors bounds how many delivery failures produce prints one by
// one; when a broker is down every record fails the same way, and ten lines
// say as much as a million.
const maxReportedErrors = 10

func runProduce(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("produce", `usage: gregor produce --topic T [flags] < lines

Reads lines from stdin and produces each as one record (without its line
ending). With --key-separator, the text before the first separator on a line
is the record key and the rest its value; a line without the separator is
an error. At end of input, or on an interrupt (as Kafka's console producer
closes its producer), the lines read are sent (a second interrupt stops at
once); the command exits 1 if any record was not delivered within
--delivery-timeout-ms. A topic that does not
exist is created by the first record where the broker allows it
(auto.create.topics.enable), as Kafka's console producer does.`, stderr)
	bootstrap := addBootstrapFlag(fs)
	topic := fs.String("topic", "", "topic to produce to (required)")
	keySep := fs.String("key-separator", "", "split each line into key and value at the first `SEP` (default: no key)")
	acks := fs.String("acks", "all", "acknowledgements to wait for: all (-1), 1 or 0")
	compression := fs.String("compression", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
	// Kafka 4.0 changed the producer's linger.ms default from 0 to 5.
	lingerMs := fs.Int("linger-ms", 5, "how long a batch waits for more records before it is sent (linger.ms)")
	maxLineBytes := fs.Int("max-line-bytes", 1<<20, "longest accepted input line, in bytes without its line ending; Kafka's default message.max.bytes is about 1 MiB")
	deliveryTimeoutMs := fs.Int("delivery-timeout-ms", 120000, "how long a record may take to be delivered, retries included, before it fails (delivery.timeout.ms)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected arguments %q", pos)
	}
	if *topic == "" {
		return usagef("--topic is required")
	}
	if *lingerMs < 0 {
		return usagef("--linger-ms must not be negative, got %d", *lingerMs)
	}
	if *maxLineBytes <= 0 {
		return usagef("--max-line-bytes must be positive, got %d", *maxLineBytes)
	}
	if *deliveryTimeoutMs <= 0 {
		return usagef("--delivery-timeout-ms must be positive, got %d", *deliveryTimeoutMs)
	}
	deliveryTimeout := time.Duration(*deliveryTimeoutMs) * time.Millisecond
	opts, err := clientOpts(*bootstrap)
	if err != nil {
		return err
	}
	ackOpts, err := parseAcks(*acks)
	if err != nil {
		return err
	}
	codec, err := parseCompression(*compression)
	if err != nil {
		return err
	}
	opts = append(opts, ackOpts...)
	opts = append(opts,
		kgo.DefaultProduceTopic(*topic),
		// The Java producer's allow.auto.create.topics defaults to true,
		// so a topic the broker may create (auto.create.topics.enable)
		// is created by the first record sent to it, as with Kafka's
		// console producer and kcat.
		kgo.AllowAutoTopicCreation(),
		kgo.ProducerBatchCompression(codec),
		kgo.ProducerLinger(time.Duration(*lingerMs)*time.Millisecond),
		// The Java producer's max.request.size: franz-go's default,
		// 1,000,012 bytes, refused records of about 1 MB that Kafka's
		// console producer sends.
		kgo.ProducerBatchMaxBytes(1<<20),
		// Without it a record waits for ever for a broker that cannot
		// be reached; Java's producer gives up after delivery.timeout.ms.
		kgo.RecordDeliveryTimeout(deliveryTimeout),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}

	p := &lineProducer{cl: cl, stderr: stderr}
	readErr := p.produceLines(ctx, stdin, *keySep, *maxLineBytes)
	// Flush even after a read error or an interrupt: lines read before it
	// were accepted, and Kafka's console producer closes its producer on
	// an interrupt, which sends them. The flush runs past the interrupt,
	// bounded by the delivery timeout; a second interrupt ends the
	// process (main's signal handling).
	flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deliveryTimeout)
	flushErr := cl.Flush(flushCtx)
	cancel()
	// Close fails whatever Flush left buffered (after a cancel), so every
	// promise has run once it returns and wg.Wait cannot hang.
	cl.Close()
	p.wg.Wait()

	var errs []error
	if readErr != nil {
		errs = append(errs, readErr)
	}
	if flushErr != nil {
		errs = append(errs, fmt.Errorf("flush: %w", flushErr))
	}
	if p.failed > 0 {
		if p.failed > maxReportedErrors {
			fmt.Fprintf(stderr, "gregor produce: ... and %d more failed records\n", p.failed-maxReportedErrors)
		}
		errs = append(errs, fmt.Errorf("%d of %d records not delivered to %s", p.failed, p.total, *topic))
	}
	if len(errs) == 0 && ctx.Err() != nil {
		errs = append(errs, fmt.Errorf("interrupted after %d records: %w", p.total, context.Cause(ctx)))
	}
	return errors.Join(errs...)
}

// lineProducer turns input lines into records and counts delivery results.
type lineProducer struct {
	cl     *kgo.Client
	stderr io.Writer
	wg     sync.WaitGroup // one per record handed to the client

	mu     sync.Mutex // guards the fields below, written from promises
	total  int        // lines read, i.e. records attempted
	failed int        // records known not to be delivered
}

// produceLines reads lines from r until EOF or ctx ends and hands each to the
// client. Reading happens on its own goroutine because a read from a
// terminal cannot be interrupted: without it, Ctrl-C would wait for the
// next line. The channel between them is small, so memory stays bounded by
// kgo's MaxBufferedRecords plus a few lines.
func (p *lineProducer) produceLines(ctx context.Context, r io.Reader, keySep string, maxLineBytes int) error {
	type line struct {
		text string
		err  error
	}
	lines := make(chan line, 16)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(lines)
		tooLong := fmt.Errorf("a line is longer than --max-line-bytes=%d", maxLineBytes)
		// The scanner's buffer holds a line with its ending, "\r\n" at
		// most: a buffer of maxLineBytes would refuse a line of exactly
		// maxLineBytes. Longer lines that still fit are refused below.
		bufBytes := min(maxLineBytes, math.MaxInt-2) + 2
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, min(64<<10, bufBytes)), bufBytes)
		for sc.Scan() {
			if len(sc.Bytes()) > maxLineBytes {
				select {
				case lines <- line{err: tooLong}:
				case <-stop:
				}
				return
			}
			select {
			case lines <- line{text: sc.Text()}:
			case <-stop:
				return
			}
		}
		if err := sc.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				err = tooLong
			}
			select {
			case lines <- line{err: err}:
			case <-stop:
			}
		}
	}()

	lineNo := 0
	handle := func(l line) error {
		if l.err != nil {
			return fmt.Errorf("reading stdin after line %d: %w", lineNo, l.err)
		}
		lineNo++
		p.mu.Lock()
		p.total++
		p.mu.Unlock()
		rec := &kgo.Record{Value: []byte(l.text)}
		if keySep != "" {
			k, v, found := strings.Cut(l.text, keySep)
			if !found {
				p.fail(lineNo, fmt.Errorf("no key separator %q on this line", keySep))
				return nil
			}
			rec.Key, rec.Value = []byte(k), []byte(v)
		}
		p.wg.Add(1)
		n := lineNo
		// Not ctx: records handed over before an interrupt are sent.
		p.cl.Produce(context.WithoutCancel(ctx), rec, func(_ *kgo.Record, err error) {
			defer p.wg.Done()
			if err != nil {
				p.fail(n, err)
			}
		})
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			// Lines read before the interrupt go out with the rest:
			// they were typed and entered. (The interrupt is reported
			// by the caller, after the flush.)
			for {
				select {
				case l, ok := <-lines:
					if !ok {
						return nil
					}
					if err := handle(l); err != nil {
						return err
					}
				default:
					return nil
				}
			}
		case l, ok := <-lines:
			if !ok {
				return nil
			}
			if err := handle(l); err != nil {
				return err
			}
		}
	}
}

// fail counts a record that will not be delivered and reports the first few.
func (p *lineProducer) fail(lineNo int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failed++
	if p.failed <= maxReportedErrors {
		fmt.Fprintf(p.stderr, "gregor produce: line %d: %v\n", lineNo, err)
	}
}

// parseAcks maps --acks to kgo options. Idempotent production needs
// acks=all, so weaker acks turn it off, as the Java client does when
// acks != all is set explicitly.
func parseAcks(s string) ([]kgo.Opt, error) {
	switch s {
	case "all", "-1":
		return []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks())}, nil
	case "1":
		return []kgo.Opt{kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()}, nil
	case "0":
		return []kgo.Opt{kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite()}, nil
	}
	return nil, usagef("--acks must be all, -1, 1 or 0, got %q", s)
}

// parseCompression maps Kafka's compression.type names to kgo codecs.
func parseCompression(s string) (kgo.CompressionCodec, error) {
	switch s {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, usagef("--compression must be none, gzip, snappy, lz4 or zstd, got %q", s)
}
