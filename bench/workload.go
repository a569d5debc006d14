package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"gregor/batch"
)

// Workload is one benchmark definition, read from YAML. Its fields are the
// OpenMessaging Benchmark's (so OMB workloads run unchanged, within what is
// supported) plus Gregor's own: second-granularity durations, the producer's
// Kafka settings, the topic's replication settings and a sweep.
type Workload struct {
	// Source is the file the workload was read from, for messages.
	Source string `json:"source,omitempty"`

	Name                    string         `json:"name"`
	Topics                  int            `json:"topics"`
	PartitionsPerTopic      int            `json:"partitionsPerTopic"`
	MessageSize             int            `json:"messageSize"`
	Payload                 PayloadKind    `json:"payload"`
	PayloadFile             string         `json:"payloadFile,omitempty"`
	KeyDistributor          KeyDistributor `json:"keyDistributor"`
	SubscriptionsPerTopic   int            `json:"subscriptionsPerTopic"`
	ProducersPerTopic       int            `json:"producersPerTopic"`
	ConsumerPerSubscription int            `json:"consumerPerSubscription"`
	// ConsumerGroups makes each subscription a consumer group, as in the
	// OpenMessaging Benchmark: its consumerPerSubscription members
	// subscribe to the topic and the group protocol shares the partitions
	// out. False (the default) assigns partitions to consumers directly, as
	// the harness always did, so earlier workloads and results compare.
	ConsumerGroups bool `json:"consumerGroups,omitempty"`
	// ProducerRate is the total rate of all producers in records per
	// second; 0 sends as fast as the producers are acknowledged.
	ProducerRate float64 `json:"producerRate"`
	// The durations appear in JSON as testDurationSeconds and
	// warmupDurationSeconds (see MarshalJSON). Without either warmup
	// field the warmup is a minute, as OMB's default.
	TestDuration   time.Duration `json:"-"`
	WarmupDuration time.Duration `json:"-"`

	ReplicationFactor int              `json:"replicationFactor"`
	MinInsyncReplicas int              `json:"minInsyncReplicas"`
	Producer          ProducerSettings `json:"producer"`
	Sweep             Sweep            `json:"sweep"`

	// payload holds payloadFile's bytes once loaded.
	payload []byte
	// idempotenceSet records whether enable.idempotence was given: as in
	// Kafka's client, an unset one follows acks (on only with acks=all).
	idempotenceSet bool
}

// workloadJSON is Workload as summary.json holds it, durations in seconds.
type workloadJSON struct {
	workloadFields
	TestDurationSeconds   float64 `json:"testDurationSeconds"`
	WarmupDurationSeconds float64 `json:"warmupDurationSeconds"`
}

type workloadFields Workload

// MarshalJSON writes durations in seconds, the unit workloads are written in.
func (w Workload) MarshalJSON() ([]byte, error) {
	return json.Marshal(workloadJSON{workloadFields(w), w.TestDuration.Seconds(), w.WarmupDuration.Seconds()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (w *Workload) UnmarshalJSON(b []byte) error {
	var j workloadJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*w = Workload(j.workloadFields)
	w.TestDuration = time.Duration(j.TestDurationSeconds * float64(time.Second))
	w.WarmupDuration = time.Duration(j.WarmupDurationSeconds * float64(time.Second))
	return nil
}

// ProducerSettings are the producer's Kafka settings a workload may set.
// Names in YAML are Kafka's (linger.ms, batch.size, ...); the defaults are
// those of Kafka 4.0's Java producer.
type ProducerSettings struct {
	Acks              Acks   `json:"acks"`
	LingerMs          int    `json:"linger.ms"`
	BatchSize         int    `json:"batch.size"`
	CompressionType   string `json:"compression.type"`
	EnableIdempotence bool   `json:"enable.idempotence"`
	MaxInFlight       int    `json:"max.in.flight.requests.per.connection"`
	BufferMemory      int64  `json:"buffer.memory"`
	RequestTimeoutMs  int    `json:"request.timeout.ms"`
	DeliveryTimeoutMs int    `json:"delivery.timeout.ms"`
	// MaxRequestSize is max.request.size: the most bytes of batches one
	// Produce request carries (and so the largest record). Kafka's 1 MiB
	// means that with batches of 1 MiB each request carries one; comparing
	// clients needs the same value for both (franz-go's own default is
	// 100 MiB, Kafka's socket.request.max.bytes).
	MaxRequestSize int `json:"max.request.size,omitempty"`
	// GzipLevel, LZ4Level and ZstdLevel are compression.gzip.level,
	// compression.lz4.level and compression.zstd.level (KIP-390, the Java
	// producer's since Kafka 3.8): the level compression.type compresses
	// at, on Kafka's scale (batch.CheckLevel); 0 is the codec's default.
	GzipLevel int `json:"compression.gzip.level,omitempty"`
	LZ4Level  int `json:"compression.lz4.level,omitempty"`
	ZstdLevel int `json:"compression.zstd.level,omitempty"`
}

// Levels are the settings' compression levels, 0 for a codec's default.
func (s ProducerSettings) Levels() batch.Levels {
	return batch.Levels{Gzip: s.GzipLevel, LZ4: s.LZ4Level, Zstd: s.ZstdLevel}
}

// Level is the level the settings' compression.type compresses at (its
// default when unset; 0 for a codec without levels or an unknown one).
func (s ProducerSettings) Level() int {
	c, err := batch.ParseCodec(s.CompressionType)
	if err != nil {
		return 0
	}
	return s.Levels().Of(c)
}

// DefaultProducerSettings are Kafka 4.0's producer defaults.
func DefaultProducerSettings() ProducerSettings {
	return ProducerSettings{
		Acks:              AcksAll,
		LingerMs:          5,
		BatchSize:         16384,
		CompressionType:   "none",
		EnableIdempotence: true,
		MaxInFlight:       5,
		BufferMemory:      32 << 20,
		RequestTimeoutMs:  30000,
		DeliveryTimeoutMs: 120000,
		MaxRequestSize:    1 << 20,
	}
}

// Sweep holds the value lists whose cartesian product gives a workload's
// scenarios. A nil list is not swept: the single value from the workload
// applies.
type Sweep struct {
	Acks              []Acks   `json:"acks,omitempty"`
	LingerMs          []int    `json:"linger.ms,omitempty"`
	BatchSize         []int    `json:"batch.size,omitempty"`
	CompressionType   []string `json:"compression.type,omitempty"`
	GzipLevel         []int    `json:"compression.gzip.level,omitempty"`
	LZ4Level          []int    `json:"compression.lz4.level,omitempty"`
	ZstdLevel         []int    `json:"compression.zstd.level,omitempty"`
	ReplicationFactor []int    `json:"replicationFactor,omitempty"`
	MinInsyncReplicas []int    `json:"minInsyncReplicas,omitempty"`
	// Client sweeps the load generator (driver names): each other
	// combination runs once per client, back to back, so the report's
	// cost table compares the clients on the same broker and settings.
	Client []string `json:"client,omitempty"`
}

// Acks is the producer's acks setting: -1 (all), 0 or 1.
type Acks int8

// The acks values Kafka knows.
const (
	AcksAll    Acks = -1
	AcksNone   Acks = 0
	AcksLeader Acks = 1
)

// ParseAcks reads "all", "-1", "0" or "1".
func ParseAcks(s string) (Acks, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "all", "-1":
		return AcksAll, nil
	case "0":
		return AcksNone, nil
	case "1":
		return AcksLeader, nil
	}
	return 0, fmt.Errorf("%q is not an acks value: want all (-1), 0 or 1", s)
}

func (a Acks) String() string {
	if a == AcksAll {
		return "all"
	}
	return strconv.Itoa(int(a))
}

// MarshalText writes acks as Kafka users write it ("all", "1", "0").
func (a Acks) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText reads what MarshalText writes.
func (a *Acks) UnmarshalText(b []byte) error {
	v, err := ParseAcks(string(b))
	if err == nil {
		*a = v
	}
	return err
}

// KeyDistributor is how records get keys, as in the OpenMessaging
// Benchmark: none, cycling through a fixed set, or picked at random.
type KeyDistributor string

// The key distributors of the OpenMessaging Benchmark.
const (
	NoKey         KeyDistributor = "NO_KEY"
	KeyRoundRobin KeyDistributor = "KEY_ROUND_ROBIN"
	RandomNano    KeyDistributor = "RANDOM_NANO"
)

// PayloadKind is what the record values are made of. Compression sweeps
// mean nothing on random bytes, so the default is text that compresses
// about as JSON logs do.
type PayloadKind string

// The payload kinds.
const (
	PayloadText   PayloadKind = "text"
	PayloadRandom PayloadKind = "random"
)

// Compression codecs the producer can use (Kafka's compression.type).
var compressionTypes = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// Limits on workload values: they keep a typo from asking for a
// million topics or a week-long run.
const (
	maxTopics            = 1000
	maxPartitions        = 10000
	maxMessageSize       = 16 << 20
	maxClients           = 256
	maxDuration          = 24 * time.Hour
	maxLingerMs          = 60000
	maxBatchSize         = 64 << 20
	maxRequestSize       = 1 << 30 // franz-go's ceiling for BrokerMaxWriteBytes
	maxScenarios         = 1000
	maxReplicationFactor = 32
	// batchOverhead is what a batch of one record needs besides the
	// value: the 61-byte batch header, the record's varints and a key.
	batchOverhead = 128
)

// producerKeys are the settings accepted under producer:, in the order
// error messages list them.
var producerKeys = []string{"acks", "linger.ms", "batch.size", "compression.type", "enable.idempotence",
	"max.in.flight.requests.per.connection", "buffer.memory", "request.timeout.ms", "delivery.timeout.ms", "max.request.size",
	"compression.gzip.level", "compression.lz4.level", "compression.zstd.level"}

// sweepKeys are the settings a sweep may vary, in the order scenarios
// nest them: the last varies fastest, so that neighbouring scenarios differ
// in linger.ms, the setting most often tuned, or, when clients are swept,
// only in the client, run one right after the other.
var sweepKeys = []string{"replicationFactor", "minInsyncReplicas", "acks", "compression.type",
	"compression.gzip.level", "compression.lz4.level", "compression.zstd.level", "batch.size", "linger.ms", "client"}

var topKeys = []string{"name", "topics", "partitionsPerTopic", "messageSize", "payload", "payloadFile", "keyDistributor",
	"subscriptionsPerTopic", "producersPerTopic", "consumerPerSubscription", "consumerGroups", "producerRate", "consumerBacklogSizeGB",
	"testDurationMinutes", "warmupDurationMinutes", "testDurationSeconds", "warmupDurationSeconds",
	"replicationFactor", "minInsyncReplicas", "producer", "sweep"}

// LoadWorkload reads and parses a workload file. payloadFile, when given,
// is read relative to the workload file's directory, as OMB does from its
// repository root.
func LoadWorkload(path string) (*Workload, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	w, err := ParseWorkload(data, path)
	if err != nil {
		return nil, err
	}
	if w.PayloadFile != "" {
		p := w.PayloadFile
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(path), p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("%s: payloadFile: %w", path, err)
		}
		if len(b) != w.MessageSize {
			return nil, fmt.Errorf("%s: payloadFile %s holds %d bytes but messageSize is %d", path, w.PayloadFile, len(b), w.MessageSize)
		}
		w.payload = b
	}
	return w, nil
}

// ParseWorkload parses a workload from YAML and checks every field. Parsing
// is strict: an unknown field or producer setting, a value of the wrong
// type or out of range, and an impossible sweep are errors, each naming the
// field and the value; all of them are reported at once. source names the
// input in messages. The cluster size is checked later, by Validate.
func ParseWorkload(data []byte, source string) (*Workload, error) {
	if source == "" {
		source = "workload"
	}
	p := &parser{source: source}
	w := &Workload{
		Source: source, Topics: 1, PartitionsPerTopic: 1, MessageSize: 1024, Payload: PayloadText,
		KeyDistributor: NoKey, SubscriptionsPerTopic: 1, ProducersPerTopic: 1, ConsumerPerSubscription: 1,
		ReplicationFactor: 1, MinInsyncReplicas: 1, Producer: DefaultProducerSettings(),
	}
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: not valid YAML: %w", source, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: want a YAML mapping of workload fields (name, topics, partitionsPerTopic, ...)", source)
	}
	var (
		minutes, seconds             = -1, -1
		warmMinutes, warmSeconds     = -1, -1
		rfSet, minISRSet, nameSet    bool
		producerSet                  = map[string]bool{}
		sweepNode, testDurationField *yaml.Node
	)
	p.mapping(doc.Content[0], "", topKeys, func(key string, v *yaml.Node) {
		switch key {
		case "name":
			w.Name = p.str(v, key)
			nameSet = true
		case "topics":
			w.Topics = p.intIn(v, key, 1, maxTopics)
		case "partitionsPerTopic":
			w.PartitionsPerTopic = p.intIn(v, key, 1, maxPartitions)
		case "messageSize":
			w.MessageSize = p.intIn(v, key, 1, maxMessageSize)
		case "payload":
			s := p.str(v, key)
			switch PayloadKind(s) {
			case PayloadText, PayloadRandom:
				w.Payload = PayloadKind(s)
			default:
				p.errorf(v, key, "%q: want text or random", s)
			}
		case "payloadFile":
			w.PayloadFile = p.str(v, key)
		case "keyDistributor":
			s := p.str(v, key)
			switch KeyDistributor(s) {
			case NoKey, KeyRoundRobin, RandomNano:
				w.KeyDistributor = KeyDistributor(s)
			default:
				p.errorf(v, key, "%q: want NO_KEY, KEY_ROUND_ROBIN or RANDOM_NANO", s)
			}
		case "subscriptionsPerTopic":
			w.SubscriptionsPerTopic = p.intIn(v, key, 0, maxClients)
		case "producersPerTopic":
			w.ProducersPerTopic = p.intIn(v, key, 1, maxClients)
		case "consumerPerSubscription":
			w.ConsumerPerSubscription = p.intIn(v, key, 0, maxClients)
		case "consumerGroups":
			w.ConsumerGroups = p.boolean(v, key)
		case "producerRate":
			w.ProducerRate = p.float(v, key)
			if w.ProducerRate < 0 || w.ProducerRate > 1e8 {
				p.errorf(v, key, "%s: want 0 (as fast as possible) up to 100000000 records/s", v.Value)
			}
		case "consumerBacklogSizeGB":
			if n := p.intIn(v, key, 0, math.MaxInt32); n != 0 {
				p.errorf(v, key, "%d: backlog tests are not supported; want 0", n)
			}
		case "testDurationMinutes":
			minutes = p.intIn(v, key, 0, int(maxDuration/time.Minute))
			testDurationField = v
		case "testDurationSeconds":
			seconds = p.intIn(v, key, 0, int(maxDuration/time.Second))
			testDurationField = v
		case "warmupDurationMinutes":
			warmMinutes = p.intIn(v, key, 0, int(maxDuration/time.Minute))
		case "warmupDurationSeconds":
			warmSeconds = p.intIn(v, key, 0, int(maxDuration/time.Second))
		case "replicationFactor":
			w.ReplicationFactor = p.intIn(v, key, 1, maxReplicationFactor)
			rfSet = true
		case "minInsyncReplicas":
			w.MinInsyncReplicas = p.intIn(v, key, 1, maxReplicationFactor)
			minISRSet = true
		case "producer":
			p.mapping(v, "producer", producerKeys, func(k string, pv *yaml.Node) {
				producerSet[k] = true
				p.producerSetting(&w.Producer, &w.idempotenceSet, "producer."+k, k, pv)
			})
		case "sweep":
			sweepNode = v
		}
	})
	if !nameSet || strings.TrimSpace(w.Name) == "" {
		p.errs = append(p.errs, errors.New("name: missing; every workload needs a name (it names the results folder)"))
	} else if strings.ContainsAny(w.Name, "/\\\x00") || w.Name == "." || w.Name == ".." {
		p.errs = append(p.errs, fmt.Errorf("name: %q: must not contain a path separator", w.Name))
	}

	switch {
	case minutes >= 0 && seconds >= 0:
		p.errorf(testDurationField, "testDurationSeconds", "given together with testDurationMinutes; use one")
	case minutes < 0 && seconds < 0:
		p.errs = append(p.errs, errors.New("testDurationMinutes: missing (or testDurationSeconds)"))
	default:
		w.TestDuration = time.Duration(max(minutes, 0))*time.Minute + time.Duration(max(seconds, 0))*time.Second
		if w.TestDuration <= 0 {
			p.errorf(testDurationField, "testDuration", "0: the measured phase must last at least one second")
		}
	}
	if warmMinutes >= 0 && warmSeconds >= 0 {
		p.errs = append(p.errs, errors.New("warmupDurationSeconds: given together with warmupDurationMinutes; use one"))
	}
	w.WarmupDuration = time.Duration(max(warmMinutes, 0))*time.Minute + time.Duration(max(warmSeconds, 0))*time.Second
	if warmMinutes < 0 && warmSeconds < 0 {
		// OMB's Workload.warmupDurationMinutes defaults to 1, and its
		// shipped workloads leave it out: without the same default their
		// cold start (connections, the first metadata, fresh page-cache
		// pages) would be measured here and not there.
		w.WarmupDuration = time.Minute
	}

	if sweepNode != nil {
		p.sweep(w, sweepNode, producerSet, rfSet, minISRSet)
	}
	if len(p.errs) > 0 {
		return nil, &WorkloadError{Source: source, Errs: p.errs}
	}
	if err := w.check(); err != nil {
		return nil, err
	}
	return w, nil
}

// WorkloadError lists every problem found in a workload.
type WorkloadError struct {
	Source string
	Errs   []error
}

func (e *WorkloadError) Error() string {
	var b strings.Builder
	for i, err := range e.Errs {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Source + ": " + err.Error())
	}
	return b.String()
}

// Unwrap gives errors.Is and errors.As each problem.
func (e *WorkloadError) Unwrap() []error { return e.Errs }

// Validate checks the workload against a cluster of brokers nodes (0 when
// the size is not known yet): a replication factor above the cluster's
// size can never be met.
func (w *Workload) Validate(brokers int) error {
	if brokers <= 0 {
		return nil
	}
	var errs []error
	rfs := w.Sweep.ReplicationFactor
	field := "sweep.replicationFactor"
	if rfs == nil {
		rfs, field = []int{w.ReplicationFactor}, "replicationFactor"
	}
	for _, rf := range rfs {
		if rf > brokers {
			errs = append(errs, fmt.Errorf("%s: %d is more than the %d broker(s) of the cluster", field, rf, brokers))
		}
	}
	if len(errs) > 0 {
		return &WorkloadError{Source: w.Source, Errs: errs}
	}
	return nil
}

// check runs the checks that span fields, over every scenario of the
// sweep, once each field is known to be well-formed on its own.
func (w *Workload) check() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	scenarios := w.Scenarios()
	if len(scenarios) > maxScenarios {
		return &WorkloadError{Source: w.Source, Errs: []error{fmt.Errorf("sweep: %d scenarios, more than %d", len(scenarios), maxScenarios)}}
	}
	seen := map[string]bool{}
	once := func(msg string) {
		if !seen[msg] {
			seen[msg] = true
			add("%s", msg)
		}
	}
	// A level swept where a scenario compresses with another codec would
	// run that scenario once per level, the same each time.
	type sweptLevel struct{ key, codec string }
	var levels []sweptLevel
	for _, l := range []struct {
		sweptLevel
		swept bool
	}{
		{sweptLevel{"compression.gzip.level", "gzip"}, w.Sweep.GzipLevel != nil},
		{sweptLevel{"compression.lz4.level", "lz4"}, w.Sweep.LZ4Level != nil},
		{sweptLevel{"compression.zstd.level", "zstd"}, w.Sweep.ZstdLevel != nil},
	} {
		if l.swept {
			levels = append(levels, l.sweptLevel)
		}
	}
	for _, sc := range scenarios {
		if sc.MinInsyncReplicas > sc.ReplicationFactor {
			once(fmt.Sprintf("%s: %d is more than replicationFactor %d: acks=all could never be satisfied",
				w.fieldName("minInsyncReplicas"), sc.MinInsyncReplicas, sc.ReplicationFactor))
		}
		if sc.Producer.BatchSize < w.MessageSize+batchOverhead {
			once(fmt.Sprintf("%s: %d cannot hold one record of messageSize %d (a batch needs about %d bytes more)",
				w.fieldName("batch.size"), sc.Producer.BatchSize, w.MessageSize, batchOverhead))
		}
		if w.idempotenceSet && w.Producer.EnableIdempotence && sc.Producer.Acks != AcksAll {
			once(fmt.Sprintf("producer.enable.idempotence: true needs acks=all, but %s includes acks=%s", w.fieldName("acks"), sc.Producer.Acks))
		}
		for _, l := range levels {
			if sc.Producer.CompressionType != l.codec {
				once(fmt.Sprintf("sweep.%s: the scenarios with compression.type=%s would repeat once per level (%s); sweep %s's levels with compression.type %s alone",
					l.key, sc.Producer.CompressionType, w.fieldName("compression.type"), l.codec, l.codec))
			}
		}
	}
	if w.MessageSize+batchOverhead > w.Producer.MaxRequestSize {
		add("producer.max.request.size: %d cannot hold one record of messageSize %d (a batch needs about %d bytes more)",
			w.Producer.MaxRequestSize, w.MessageSize, batchOverhead)
	}
	if w.idempotenceSet && w.Producer.EnableIdempotence && w.Producer.MaxInFlight > 5 {
		add("producer.max.in.flight.requests.per.connection: %d: at most 5 with enable.idempotence=true", w.Producer.MaxInFlight)
	}
	if w.Producer.BufferMemory < int64(w.Producer.BatchSize) {
		if w.Sweep.BatchSize == nil {
			add("producer.buffer.memory: %d is less than batch.size %d", w.Producer.BufferMemory, w.Producer.BatchSize)
		}
	}
	for _, bs := range w.Sweep.BatchSize {
		if w.Producer.BufferMemory < int64(bs) {
			add("producer.buffer.memory: %d is less than sweep.batch.size %d", w.Producer.BufferMemory, bs)
		}
	}
	if w.PayloadFile != "" && w.Payload != PayloadText {
		add("payload: %q given together with payloadFile; use one", w.Payload)
	}
	if len(errs) > 0 {
		return &WorkloadError{Source: w.Source, Errs: errs}
	}
	return nil
}

// fieldName is where a sweepable setting was given: in the sweep, or as a
// single value.
func (w *Workload) fieldName(key string) string {
	if w.Sweep.has(key) {
		return "sweep." + key
	}
	switch key {
	case "replicationFactor", "minInsyncReplicas", "client":
		return key
	}
	return "producer." + key
}

func (s *Sweep) has(key string) bool {
	switch key {
	case "acks":
		return s.Acks != nil
	case "linger.ms":
		return s.LingerMs != nil
	case "batch.size":
		return s.BatchSize != nil
	case "compression.type":
		return s.CompressionType != nil
	case "compression.gzip.level":
		return s.GzipLevel != nil
	case "compression.lz4.level":
		return s.LZ4Level != nil
	case "compression.zstd.level":
		return s.ZstdLevel != nil
	case "client":
		return s.Client != nil
	case "replicationFactor":
		return s.ReplicationFactor != nil
	case "minInsyncReplicas":
		return s.MinInsyncReplicas != nil
	}
	return false
}

// Swept lists the keys the sweep varies, in scenario nesting order.
func (s *Sweep) Swept() []string {
	var keys []string
	for _, k := range sweepKeys {
		if s.has(k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// parser collects every error in a workload rather than stopping at the
// first, so one run of the command shows everything to fix.
type parser struct {
	source string
	errs   []error
}

func (p *parser) errorf(n *yaml.Node, field, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if n != nil && n.Line > 0 {
		p.errs = append(p.errs, fmt.Errorf("line %d: %s: %s", n.Line, field, msg))
		return
	}
	p.errs = append(p.errs, fmt.Errorf("%s: %s", field, msg))
}

// mapping calls fn for each key of a mapping node, reporting unknown and
// repeated keys.
func (p *parser) mapping(n *yaml.Node, where string, known []string, fn func(key string, v *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, where, "want a mapping of settings, got %s", describe(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name := k.Value
		field := name
		if where != "" {
			field = where + "." + name
		}
		if line, dup := seen[name]; dup {
			p.errorf(k, field, "given twice (first on line %d)", line)
			continue
		}
		seen[name] = k.Line
		if !slices.Contains(known, name) {
			p.errorf(k, field, "unknown %s; known: %s", map[bool]string{true: "field", false: "setting"}[where == ""], strings.Join(known, ", "))
			continue
		}
		fn(name, v)
	}
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "an alias"
}

func (p *parser) str(n *yaml.Node, field string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errorf(n, field, "want a string, got %s", describe(n))
		return ""
	}
	return n.Value
}

func (p *parser) intIn(n *yaml.Node, field string, lo, hi int) int {
	v, ok := p.integer(n, field)
	if !ok {
		return lo
	}
	if v < int64(lo) || v > int64(hi) {
		p.errorf(n, field, "%d: want %d to %d", v, lo, hi)
		return lo
	}
	return int(v)
}

// integer parses an integer scalar, reporting anything else.
func (p *parser) integer(n *yaml.Node, field string) (int64, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		p.errorf(n, field, "want an integer, got %s", describe(n))
		return 0, false
	}
	var v int64
	if err := n.Decode(&v); err != nil {
		p.errorf(n, field, "%q: %v", n.Value, err)
		return 0, false
	}
	return v, true
}

func (p *parser) float(n *yaml.Node, field string) float64 {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
		p.errorf(n, field, "want a number, got %s", describe(n))
		return 0
	}
	var v float64
	if err := n.Decode(&v); err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		p.errorf(n, field, "%q: not a finite number", n.Value)
		return 0
	}
	return v
}

func (p *parser) boolean(n *yaml.Node, field string) bool {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		p.errorf(n, field, "want true or false, got %s", describe(n))
		return false
	}
	var v bool
	n.Decode(&v)
	return v
}

func (p *parser) acks(n *yaml.Node, field string) Acks {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errorf(n, field, "want all, -1, 0 or 1, got %s", describe(n))
		return AcksAll
	}
	a, err := ParseAcks(n.Value)
	if err != nil {
		p.errorf(n, field, "%q: want all (-1), 0 or 1", n.Value)
		return AcksAll
	}
	return a
}

func (p *parser) compression(n *yaml.Node, field string) string {
	s := p.str(n, field)
	if s != "" && !slices.Contains(compressionTypes, s) {
		p.errorf(n, field, "%q: want one of %s", s, strings.Join(compressionTypes, ", "))
		return "none"
	}
	return s
}

// level parses a compression level of codec c: a level Kafka accepts for it
// (batch.CheckLevel: gzip 1 to 9 or -1, lz4 1 to 17, zstd -131072 to 22).
func (p *parser) level(n *yaml.Node, field string, c batch.Codec) int {
	v, ok := p.integer(n, field)
	if !ok {
		return 0
	}
	if v < math.MinInt32 || v > math.MaxInt32 || batch.CheckLevel(c, int(v)) != nil {
		lo, hi := batch.LevelRange(c)
		extra := ""
		if c == batch.CodecGzip {
			extra = ", or -1 (the default)"
		}
		p.errorf(n, field, "%d: want %d to %d%s", v, lo, hi, extra)
		return 0
	}
	return int(v)
}

// producerSetting parses one producer setting into ps.
func (p *parser) producerSetting(ps *ProducerSettings, idemSet *bool, field, key string, v *yaml.Node) {
	switch key {
	case "acks":
		ps.Acks = p.acks(v, field)
	case "linger.ms":
		ps.LingerMs = p.intIn(v, field, 0, maxLingerMs)
	case "batch.size":
		ps.BatchSize = p.intIn(v, field, 512, maxBatchSize)
	case "compression.type":
		ps.CompressionType = p.compression(v, field)
	case "enable.idempotence":
		ps.EnableIdempotence = p.boolean(v, field)
		*idemSet = true
	case "max.in.flight.requests.per.connection":
		ps.MaxInFlight = p.intIn(v, field, 1, 1000)
	case "buffer.memory":
		ps.BufferMemory = int64(p.intIn(v, field, 1<<10, 1<<34))
	case "request.timeout.ms":
		ps.RequestTimeoutMs = p.intIn(v, field, 100, 3600000)
	case "delivery.timeout.ms":
		ps.DeliveryTimeoutMs = p.intIn(v, field, 100, 3600000)
	case "max.request.size":
		ps.MaxRequestSize = p.intIn(v, field, 1<<10, maxRequestSize)
	case "compression.gzip.level":
		ps.GzipLevel = p.level(v, field, batch.CodecGzip)
	case "compression.lz4.level":
		ps.LZ4Level = p.level(v, field, batch.CodecLZ4)
	case "compression.zstd.level":
		ps.ZstdLevel = p.level(v, field, batch.CodecZstd)
	}
}

// sweep parses the sweep: mapping. A swept setting must not also be given
// as a single value, because which one applies would be a guess.
func (p *parser) sweep(w *Workload, n *yaml.Node, producerSet map[string]bool, rfSet, minISRSet bool) {
	p.mapping(n, "sweep", sweepKeys, func(key string, v *yaml.Node) {
		field := "sweep." + key
		if v.Kind != yaml.SequenceNode {
			p.errorf(v, field, "want a list of values, got %s", describe(v))
			return
		}
		if len(v.Content) == 0 {
			p.errorf(v, field, "empty list: a sweep needs at least one value")
			return
		}
		switch {
		case producerSet[key]:
			p.errorf(v, field, "also set under producer:; give it in one place")
		case key == "replicationFactor" && rfSet, key == "minInsyncReplicas" && minISRSet:
			p.errorf(v, field, "also set as a single value (%s:); give it in one place", key)
		}
		dup := map[string]bool{}
		for _, item := range v.Content {
			if item.Kind == yaml.ScalarNode {
				if dup[item.Value] {
					p.errorf(item, field, "%s is listed twice", item.Value)
					continue
				}
				dup[item.Value] = true
			}
			switch key {
			case "acks":
				a := p.acks(item, field)
				if slices.Contains(w.Sweep.Acks, a) {
					p.errorf(item, field, "%s is listed twice", item.Value)
					continue
				}
				w.Sweep.Acks = append(w.Sweep.Acks, a)
			case "linger.ms":
				w.Sweep.LingerMs = append(w.Sweep.LingerMs, p.intIn(item, field, 0, maxLingerMs))
			case "batch.size":
				w.Sweep.BatchSize = append(w.Sweep.BatchSize, p.intIn(item, field, 512, maxBatchSize))
			case "compression.type":
				w.Sweep.CompressionType = append(w.Sweep.CompressionType, p.compression(item, field))
			case "compression.gzip.level":
				w.Sweep.GzipLevel = append(w.Sweep.GzipLevel, p.level(item, field, batch.CodecGzip))
			case "compression.lz4.level":
				w.Sweep.LZ4Level = append(w.Sweep.LZ4Level, p.level(item, field, batch.CodecLZ4))
			case "compression.zstd.level":
				w.Sweep.ZstdLevel = append(w.Sweep.ZstdLevel, p.level(item, field, batch.CodecZstd))
			case "replicationFactor":
				w.Sweep.ReplicationFactor = append(w.Sweep.ReplicationFactor, p.intIn(item, field, 1, maxReplicationFactor))
			case "minInsyncReplicas":
				w.Sweep.MinInsyncReplicas = append(w.Sweep.MinInsyncReplicas, p.intIn(item, field, 1, maxReplicationFactor))
			case "client":
				if item.Kind != yaml.ScalarNode {
					p.errorf(item, field, "want a client name, got %s", describe(item))
				} else if _, err := LookupDriver(item.Value); err != nil {
					p.errorf(item, field, "%v (clients: %s)", err, strings.Join(DriverNames(), ", "))
				} else {
					w.Sweep.Client = append(w.Sweep.Client, item.Value)
				}
			}
		}
	})
}
