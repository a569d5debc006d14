package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// Summary is everything a run measured: summary.json. The report and the
// plots are drawn from it alone, so they can be redrawn without rerunning.
type Summary struct {
	Workload    *Workload `json:"workload"`
	Client      string    `json:"client"`
	Target      Target    `json:"target"`
	StartedAt   time.Time `json:"startedAt"`
	FinishedAt  time.Time `json:"finishedAt"`
	Interrupted bool      `json:"interrupted,omitempty"`
	// Error is what stopped the run before its scenarios were done, if
	// anything did.
	Error string `json:"error,omitempty"`
	// Limits are the machine's, measured in this run.
	Limits      *Limits `json:"limits,omitempty"`
	LimitsError string  `json:"limitsError,omitempty"`
	// Swept lists the settings the sweep varied, in nesting order.
	Swept     []string         `json:"swept"`
	Scenarios []ScenarioResult `json:"scenarios"`
}

// Target is the cluster the run drove.
type Target struct {
	// Embedded is true for the harness's own gregor serve processes.
	Embedded  bool     `json:"embedded"`
	Brokers   int      `json:"brokers"`
	Bootstrap []string `json:"bootstrap,omitempty"`
}

// ScenarioResult is one scenario's settings and figures. Rates are over
// the measured phase; MiB are 2^20 bytes of record values (before
// compression, without keys or batch overhead), as kafka-producer-perf-test
// counts its "MB".
type ScenarioResult struct {
	Scenario
	Topics          []string `json:"topics,omitempty"`
	MeasuredSeconds float64  `json:"measuredSeconds"`
	// ProducerRate is the rate asked for, 0 for as fast as possible.
	ProducerRate float64 `json:"producerRate"`
	// CoordinatedOmissionCorrected says latencies count from each record's
	// intended send time (fixed rate), not from when it was sent.
	CoordinatedOmissionCorrected bool `json:"coordinatedOmissionCorrected"`

	RecordsSent          int64 `json:"recordsSent"`
	RecordsAcked         int64 `json:"recordsAcked"`
	RecordsAckedInWindow int64 `json:"recordsAckedInWindow"`
	// Unacknowledged were sent but neither acknowledged nor failed when
	// the drain timeout ended the scenario; their latencies are missing
	// from the histograms, whose percentiles are then lower bounds.
	Unacknowledged int64 `json:"unacknowledged"`
	// NotSent is how many records fixed-rate producers gave up on, never
	// sending them, because they were still behind schedule just after
	// the measured phase (or still blocked in Produce when the drain's
	// bound passed): the rate was not met. Their latencies are in the
	// produce histogram as lower bounds (from the intended send time to
	// when the producer gave up), so the percentiles are lower bounds too.
	NotSent int64 `json:"notSent"`
	// RecordsStored is the sum of the topics' end offsets after the drain
	// (-1 if unknown): below RecordsAcked, acknowledged records were lost,
	// which acks=0 allows since it gets no answer.
	RecordsStored int64 `json:"recordsStored"`
	// Errors are records that failed: answered with an error, or refused
	// by the client before they were sent (Refused of them).
	Errors  int64 `json:"errors"`
	Refused int64 `json:"refused,omitempty"`
	Retries int64 `json:"retries"`
	// ConsumeErrors are fetches that failed.
	ConsumeErrors int64 `json:"consumeErrors"`
	// RecordsConsumed counts deliveries: each subscription's consumers
	// receive every record stored, so a scenario delivers
	// ConsumeTarget of them when nothing is missing.
	RecordsConsumed int64 `json:"recordsConsumed"`
	// ConsumeTarget is the deliveries the harness waited for after the
	// producers flushed: RecordsStored (RecordsAcked when that is
	// unknown) times the subscriptions per topic; 0 without consumers,
	// or when the wait never started (an interrupt before the drain).
	// RecordsConsumed below it means the drain ended first: the records
	// never delivered, the slowest, are missing from EndToEndLatency,
	// whose percentiles are then lower bounds.
	ConsumeTarget int64 `json:"consumeTarget,omitempty"`
	// RecordsRedelivered are records a consumer group (consumerGroups)
	// delivered again after a rebalance; RecordsConsumed counts each once.
	RecordsRedelivered int64 `json:"recordsRedelivered,omitempty"`

	ProduceRecordsPerSec float64 `json:"produceRecordsPerSec"`
	ProduceMiBPerSec     float64 `json:"produceMiBPerSec"`
	ConsumeRecordsPerSec float64 `json:"consumeRecordsPerSec"`
	ConsumeMiBPerSec     float64 `json:"consumeMiBPerSec"`

	// ProduceLatency is send (or intended send) to acknowledgement;
	// EndToEndLatency is send (or intended send) to a consumer's receipt.
	ProduceLatency  LatencySummary `json:"produceLatency"`
	EndToEndLatency LatencySummary `json:"endToEndLatency"`

	Batches          int64   `json:"batches"`
	AvgBatchRecords  float64 `json:"avgBatchRecords"`
	CompressionRatio float64 `json:"compressionRatio"`

	// Brokers holds the embedded brokers' figures: CPU over the measured
	// phase, peak resident memory over the scenario.
	Brokers            []BrokerFigures `json:"brokers,omitempty"`
	BrokerCPUSeconds   float64         `json:"brokerCpuSeconds"`
	BrokerPeakRSSBytes int64           `json:"brokerPeakRssBytes"`
	// ClientCPUSeconds is the harness process's CPU over the measured
	// phase: the clients' producers and consumers, and the harness's own
	// bookkeeping (histograms, the payload), which is the same whichever
	// client runs.
	ClientCPUSeconds float64 `json:"clientCpuSeconds,omitempty"`

	HgrmFiles    []string `json:"hgrmFiles,omitempty"`
	ProfileFiles []string `json:"profileFiles,omitempty"`
	// ErrorTexts are a few distinct failures the clients reported.
	ErrorTexts []string `json:"errorTexts,omitempty"`
	// Error is why the scenario could not run or finish, if it did not.
	Error       string `json:"error,omitempty"`
	Interrupted bool   `json:"interrupted,omitempty"`
}

// OK reports whether the scenario ran to the end without failures: no
// record failed, no fetch failed, and with acks other than 0 no
// acknowledged record went missing.
func (r *ScenarioResult) OK() bool {
	return r.Error == "" && !r.Interrupted && r.Errors == 0 && r.ConsumeErrors == 0 && r.MeasuredSeconds > 0 &&
		(r.Producer.Acks == AcksNone || r.Lost() == 0)
}

// Undelivered is how many of the deliveries the harness waited for
// (ConsumeTarget) the consumers had not made when the drain ended.
func (r *ScenarioResult) Undelivered() int64 {
	return max(r.ConsumeTarget-r.RecordsConsumed, 0)
}

// Lost is how many acknowledged records the cluster did not hold
// afterwards (0 when unknown).
func (r *ScenarioResult) Lost() int64 {
	if r.RecordsStored < 0 {
		return 0
	}
	return max(r.RecordsAcked-r.RecordsStored, 0)
}

// BrokerFigures are one embedded broker's figures for a scenario.
type BrokerFigures struct {
	Node         int     `json:"node"`
	PID          int     `json:"pid"`
	CPUSeconds   float64 `json:"cpuSeconds"`
	PeakRSSBytes int64   `json:"peakRssBytes"`
}

// ReadSummary reads a summary.json.
func ReadSummary(path string) (*Summary, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s Summary
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &s, nil
}

// WriteSummary writes s as indented JSON.
func WriteSummary(path string, s *Summary) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
