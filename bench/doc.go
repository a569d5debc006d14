// Package bench is Gregor's benchmark harness (`gregor bench`): it measures
// what acks, linger.ms, batch.size, compression, the replication factor and
// min.insync.replicas cost in throughput and latency, against Gregor or any
// Kafka-compatible cluster, and writes the figures next to the limits of
// the machine measured in the same run.
//
// # Workloads and scenarios
//
// A workload is YAML with the OpenMessaging Benchmark's fields (name,
// topics, partitionsPerTopic, messageSize, keyDistributor,
// producersPerTopic, subscriptionsPerTopic, consumerPerSubscription,
// producerRate, testDurationMinutes, warmupDurationMinutes, payloadFile)
// and Gregor's own: consumerGroups, testDurationSeconds and
// warmupDurationSeconds, payload
// (text or random), the producer's Kafka settings under producer:,
// replicationFactor, minInsyncReplicas, and sweep: value lists for acks,
// linger.ms, batch.size, compression.type, the codecs' levels
// (compression.gzip.level, .lz4.level, .zstd.level: KIP-390's, on Kafka's
// scale, which both clients map onto the same library levels,
// batch.LibraryLevel), replicationFactor, minInsyncReplicas and client.
// The sweep's cartesian product gives the scenarios, nested in a fixed
// order (replicationFactor outermost, client innermost) so neighbouring
// scenarios differ in one setting.
//
// Parsing is strict because a benchmark that silently ignores a misspelt
// setting measures the wrong thing for minutes: ParseWorkload walks the
// YAML node tree itself and reports every unknown field, unknown producer
// setting, wrong type, out-of-range value and impossible combination
// (minInsyncReplicas above replicationFactor, an empty list, a bad acks
// value, idempotence without acks=all, a batch.size that cannot hold one
// record, a swept level beside scenarios of another codec), each with its line, field and value, all at once. The cluster's
// size is checked by Validate once it is known.
//
// # A run
//
// Run validates everything that needs no cluster, then starts the embedded
// cluster (StartCluster: gregor serve processes on loopback with fresh
// data directories, each node a broker and a quorum voter, in their own
// process group so a terminal's Ctrl-C reaches only the harness) or
// contacts the --bootstrap cluster, failing within Config.Timeout if it
// cannot. Only then does it create the run's folder and measure the
// machine's limits (MeasureLimits: one loopback TCP stream, page-cache
// appends into fresh and into reused pages, fdatasync latency). Each
// scenario gets fresh topics (deleted afterwards), consumers assigned
// partitions directly reading from the start (or, with consumerGroups:
// true, one consumer group per subscription whose members subscribe to the
// topic; the load starts once every group has settled), and producers
// that run for the warmup plus the measured phase, then a bounded drain
// for the last acknowledgements and deliveries.
//
// After the producers' flush the harness reads the topics' end offsets:
// how many records the cluster holds (again, within the drain, while they
// trail the count acknowledged and still grow: high watermarks lag a
// leader's answer). That is the only count of what arrived with acks=0,
// which gets no answer; acknowledged records missing from the log are
// reported as lost, and such scenarios are left out of the best settings
// and the cost ratios, as are those whose end offsets could not be read
// (their losses are unknown). Times the subscriptions per topic, it is
// also the consumers' target (ConsumeTarget), which the rest of the drain
// waits for. Consumers still short of it when the drain ends leave
// end-to-end percentiles drawn from the fastest records alone, so the
// scenario falls short, as one whose producers did not keep up does, and
// so does one whose fetches failed: the report gives the counts, marks
// the percentiles that are lower bounds and leaves the scenario out of
// the best settings and the cost ratios. An interrupt during the drain
// marks the scenario interrupted. Every scenario's error texts are in the
// report, whether or not they kept it out.
//
// Every loop is bounded in count and time: producers stop at the end of
// the measured phase or after a record count derived from it, consumers
// have a deadline, every wait on the cluster has a timeout, and the
// embedded brokers are killed if they do not stop within 30 s.
//
// # Measuring
//
// A record belongs to the measured window by its intended send time (for
// latency) or by when it was acknowledged or received (for throughput).
// At a fixed producerRate, the Pacer gives each record its intended send
// time and latency counts from it, so a stall that delays sending is
// charged to the records it delayed (coordinated omission correction, as
// wrk2 and OMB do). A fixed-rate producer still behind schedule just after
// the measured phase gives up on the records left, the ones that waited
// longest: each counts as not sent, with the latency it had seen by then
// (a lower bound, as wrk2 records it), and the report marks such a
// scenario's percentiles as lower bounds and leaves it out of the best
// settings and the cost ratios. As fast as possible, latency counts from
// just before the send, including time blocked on a full buffer. Values
// are drawn from a pool of distinct generated records (a batch of copies
// of one record would compress 60-90x, which no real stream does). Each
// value carries its send time in its first 8 bytes, so end-to-end latency
// is measured to the microsecond rather than to the record timestamp's
// millisecond.
// Latencies go into HdrHistograms of microseconds with 3 significant
// digits (Recorder); each scenario's are written as .hgrm files, with
// values in milliseconds as OMB writes them.
// Embedded brokers' CPU seconds come from /proc/<pid>/stat at the start
// and end of the measured phase, their peak RSS from VmHWM in
// /proc/<pid>/status, reset per scenario through /proc/<pid>/clear_refs.
// --profile fetches the brokers' own /debug/pprof endpoints over HTTP
// during the measured phase, so no profiling code runs in the harness.
//
// # Clients
//
// The load goes through two small interfaces, Producer and Consumer,
// built by a Driver registered under the --client name: Gregor's own client
// (driver_gregor.go, the default) or franz-go (driver_franz.go, --client
// franz), so that a report can set one against the other on the same
// workload (workloads/clients.yaml; the README quotes the comparison). Topic
// administration always goes through franz-go's kadm, which every Kafka-
// compatible cluster understands.
//
// # Output
//
// A run writes results/<date>-<workload name>/ (date in UTC): summary.json
// (Summary: settings and figures of each scenario and the machine's
// limits), <scenario>.hgrm (produce latency) and <scenario>.e2e.hgrm per
// scenario, report.md (WriteReport) and PNG plots (WritePlots, gonum/plot).
// The report and the plots are drawn from the summary alone, so they can be
// redrawn from summary.json and the report is tested against a golden
// file. While running, a line every 5 s and a final line per scenario go
// to Config.Progress in kafka-producer-perf-test's format.
//
// # Concurrency
//
// A scenario's goroutines (one per producer loop and consumer loop, one
// for progress lines, one for phase boundaries, one per profile fetch)
// share one loadStats: counters are atomics, histograms sit behind the
// Recorder's mutex, and the few remaining fields behind loadStats.mu.
// Everything else belongs to the goroutine running Run, which waits for
// each scenario's goroutines before starting the next.
package bench
