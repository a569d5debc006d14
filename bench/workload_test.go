package bench

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// minimal is the smallest valid workload; tests append to it.
const minimal = "name: t\ntestDurationSeconds: 1\n"

func TestParseWorkloadDefaults(t *testing.T) {
	w, err := ParseWorkload([]byte(minimal), "w.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if w.Name != "t" || w.Topics != 1 || w.PartitionsPerTopic != 1 || w.MessageSize != 1024 || w.KeyDistributor != NoKey ||
		w.ProducersPerTopic != 1 || w.SubscriptionsPerTopic != 1 || w.ConsumerPerSubscription != 1 || w.ProducerRate != 0 ||
		w.TestDuration != time.Second || w.WarmupDuration != time.Minute || w.ReplicationFactor != 1 || w.MinInsyncReplicas != 1 ||
		w.Payload != PayloadText {
		t.Errorf("defaults: %+v", w)
	}
	if w.Producer != DefaultProducerSettings() {
		t.Errorf("producer defaults: %+v", w.Producer)
	}
	// The warmup is OMB's minute only when no field gives one: 0 is 0.
	if w, err := ParseWorkload([]byte(minimal+"warmupDurationMinutes: 0\n"), "w.yaml"); err != nil {
		t.Error(err)
	} else if w.WarmupDuration != 0 {
		t.Errorf("warmupDurationMinutes: 0 gives a warmup of %v, want none", w.WarmupDuration)
	}
}

func TestParseWorkloadEveryField(t *testing.T) {
	src := `
name: all-fields
topics: 2
partitionsPerTopic: 16
messageSize: 512
payload: random
keyDistributor: RANDOM_NANO
subscriptionsPerTopic: 2
producersPerTopic: 3
consumerPerSubscription: 4
producerRate: 12500.5
consumerBacklogSizeGB: 0
testDurationMinutes: 2
warmupDurationMinutes: 1
replicationFactor: 3
minInsyncReplicas: 2
producer:
  acks: 1
  linger.ms: 7
  batch.size: 65536
  compression.type: zstd
  enable.idempotence: false
  max.in.flight.requests.per.connection: 3
  buffer.memory: 1048576
  request.timeout.ms: 5000
  delivery.timeout.ms: 60000
  max.request.size: 16777216
  compression.gzip.level: 1
  compression.lz4.level: 17
  compression.zstd.level: -5
`
	w, err := ParseWorkload([]byte(src), "w.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := ProducerSettings{Acks: AcksLeader, LingerMs: 7, BatchSize: 65536, CompressionType: "zstd", EnableIdempotence: false,
		MaxInFlight: 3, BufferMemory: 1 << 20, RequestTimeoutMs: 5000, DeliveryTimeoutMs: 60000, MaxRequestSize: 16 << 20,
		GzipLevel: 1, LZ4Level: 17, ZstdLevel: -5}
	if w.Producer != want {
		t.Errorf("producer = %+v, want %+v", w.Producer, want)
	}
	if w.Topics != 2 || w.PartitionsPerTopic != 16 || w.MessageSize != 512 || w.Payload != PayloadRandom || w.KeyDistributor != RandomNano ||
		w.SubscriptionsPerTopic != 2 || w.ProducersPerTopic != 3 || w.ConsumerPerSubscription != 4 || w.ProducerRate != 12500.5 ||
		w.TestDuration != 2*time.Minute || w.WarmupDuration != time.Minute || w.ReplicationFactor != 3 || w.MinInsyncReplicas != 2 {
		t.Errorf("fields: %+v", w)
	}
}

// TestParseWorkloadErrors checks that every kind of mistake is an error
// naming the field and the value.
func TestParseWorkloadErrors(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string // each must appear in the error
	}{
		{"not YAML", "name: [", []string{"not valid YAML"}},
		{"not a mapping", "- a\n- b\n", []string{"want a YAML mapping"}},
		{"empty", "", []string{"want a YAML mapping"}},
		{"unknown field", minimal + "partitions: 3\n", []string{"line 3", "partitions", "unknown field", "partitionsPerTopic"}},
		{"unknown producer setting", minimal + "producer:\n  linger: 5\n", []string{"producer.linger", "unknown setting", "linger.ms"}},
		{"unknown sweep setting", minimal + "sweep:\n  retries: [1]\n", []string{"sweep.retries", "unknown setting"}},
		{"unknown client", minimal + "sweep:\n  client: [gregor, java]\n", []string{"sweep.client", `"java"`, "clients: franz, gregor"}},
		{"client twice", minimal + "sweep:\n  client: [franz, franz]\n", []string{"sweep.client", "franz is listed twice"}},
		{"field twice", minimal + "topics: 1\ntopics: 2\n", []string{"topics", "given twice"}},
		{"missing name", "testDurationSeconds: 1\n", []string{"name: missing"}},
		{"name with slash", "name: a/b\ntestDurationSeconds: 1\n", []string{`name: "a/b"`, "path separator"}},
		{"missing duration", "name: t\n", []string{"testDurationMinutes: missing"}},
		{"both durations", minimal + "testDurationMinutes: 1\n", []string{"testDurationSeconds", "use one"}},
		{"both warmups", minimal + "warmupDurationMinutes: 1\nwarmupDurationSeconds: 3\n", []string{"warmupDurationSeconds", "use one"}},
		{"zero duration", "name: t\ntestDurationSeconds: 0\n", []string{"testDuration", "at least one second"}},
		{"string for int", minimal + "topics: many\n", []string{"topics", `"many"`, "want an integer"}},
		{"float for int", minimal + "messageSize: 1.5\n", []string{"messageSize", "want an integer"}},
		{"zero partitions", minimal + "partitionsPerTopic: 0\n", []string{"partitionsPerTopic", "0: want 1 to"}},
		{"negative rate", minimal + "producerRate: -5\n", []string{"producerRate", "-5"}},
		{"bad key distributor", minimal + "keyDistributor: RANDOM\n", []string{"keyDistributor", `"RANDOM"`, "KEY_ROUND_ROBIN"}},
		{"bad payload", minimal + "payload: json\n", []string{"payload", `"json"`}},
		{"backlog", minimal + "consumerBacklogSizeGB: 1\n", []string{"consumerBacklogSizeGB", "not supported"}},
		{"bad acks", minimal + "producer:\n  acks: 2\n", []string{"producer.acks", `"2"`, "all (-1), 0 or 1"}},
		{"bad acks word", minimal + "producer:\n  acks: leader\n", []string{"producer.acks", `"leader"`}},
		{"bad compression", minimal + "producer:\n  compression.type: brotli\n", []string{"producer.compression.type", `"brotli"`, "zstd"}},
		{"bad idempotence", minimal + "producer:\n  enable.idempotence: yes please\n", []string{"producer.enable.idempotence", "want true or false"}},
		{"small batch", minimal + "producer:\n  batch.size: 100\n", []string{"producer.batch.size", "100: want 512"}},
		{"batch smaller than a record", minimal + "messageSize: 4096\nproducer:\n  batch.size: 4096\n", []string{"producer.batch.size", "4096 cannot hold one record of messageSize 4096"}},
		{"buffer below batch", minimal + "producer:\n  buffer.memory: 4096\n", []string{"producer.buffer.memory", "less than batch.size"}},
		{"request below record", minimal + "messageSize: 4096\nproducer:\n  max.request.size: 4096\n", []string{"producer.max.request.size", "4096", "cannot hold one record"}},
		{"request size range", minimal + "producer:\n  max.request.size: 100\n", []string{"producer.max.request.size", "100"}},
		{"idempotence without acks all", minimal + "producer:\n  acks: 1\n  enable.idempotence: true\n", []string{"enable.idempotence", "acks=all", "acks=1"}},
		{"idempotence with acks 0 in sweep", minimal + "producer:\n  enable.idempotence: true\nsweep:\n  acks: [all, 0]\n", []string{"enable.idempotence", "sweep.acks", "acks=0"}},
		{"idempotence in flight", minimal + "producer:\n  enable.idempotence: true\n  max.in.flight.requests.per.connection: 6\n", []string{"max.in.flight.requests.per.connection", "6", "at most 5"}},
		{"minISR above RF", minimal + "replicationFactor: 2\nminInsyncReplicas: 3\n", []string{"minInsyncReplicas: 3 is more than replicationFactor 2"}},
		{"sweep minISR above RF", minimal + "sweep:\n  replicationFactor: [1, 3]\n  minInsyncReplicas: [1, 2]\n", []string{"sweep.minInsyncReplicas: 2 is more than replicationFactor 1"}},
		{"sweep minISR above single RF", minimal + "sweep:\n  minInsyncReplicas: [1, 2]\n", []string{"sweep.minInsyncReplicas: 2 is more than replicationFactor 1"}},
		{"empty sweep list", minimal + "sweep:\n  acks: []\n", []string{"sweep.acks", "empty list"}},
		{"sweep not a list", minimal + "sweep:\n  linger.ms: 5\n", []string{"sweep.linger.ms", "want a list", `"5"`}},
		{"sweep not a mapping", minimal + "sweep: [acks]\n", []string{"sweep", "want a mapping"}},
		{"bad acks in sweep", minimal + "sweep:\n  acks: [1, two]\n", []string{"sweep.acks", `"two"`}},
		{"acks twice in sweep", minimal + "sweep:\n  acks: [all, -1]\n", []string{"sweep.acks", "-1 is listed twice"}},
		{"value twice in sweep", minimal + "sweep:\n  linger.ms: [5, 5]\n", []string{"sweep.linger.ms", "5 is listed twice"}},
		{"negative linger in sweep", minimal + "sweep:\n  linger.ms: [0, -1]\n", []string{"sweep.linger.ms", "-1: want 0 to"}},
		{"bad codec in sweep", minimal + "sweep:\n  compression.type: [none, lzo]\n", []string{"sweep.compression.type", `"lzo"`}},
		{"swept and set", minimal + "producer:\n  linger.ms: 5\nsweep:\n  linger.ms: [0, 5]\n", []string{"sweep.linger.ms", "also set under producer"}},
		{"RF swept and set", minimal + "replicationFactor: 1\nsweep:\n  replicationFactor: [1, 2]\n", []string{"sweep.replicationFactor", "also set as a single value"}},
		{"zero RF in sweep", minimal + "sweep:\n  replicationFactor: [0]\n", []string{"sweep.replicationFactor", "0: want 1 to"}},
		{"small batch in sweep", minimal + "sweep:\n  batch.size: [1024, 16384]\n", []string{"sweep.batch.size", "1024 cannot hold one record"}},
		{"gzip level 0", minimal + "producer:\n  compression.type: gzip\n  compression.gzip.level: 0\n", []string{"producer.compression.gzip.level", "0: want 1 to 9, or -1"}},
		{"lz4 level too high", minimal + "producer:\n  compression.type: lz4\n  compression.lz4.level: 18\n", []string{"producer.compression.lz4.level", "18: want 1 to 17"}},
		{"zstd level too high in sweep", minimal + "producer:\n  compression.type: zstd\nsweep:\n  compression.zstd.level: [3, 23]\n", []string{"sweep.compression.zstd.level", "23: want -131072 to 22"}},
		{"level not a number", minimal + "producer:\n  compression.type: zstd\n  compression.zstd.level: max\n", []string{"producer.compression.zstd.level", "want an integer", `"max"`}},
		{"swept level of an unused codec", minimal + "sweep:\n  compression.type: [none, lz4]\n  compression.gzip.level: [1, 9]\n", []string{"sweep.compression.gzip.level: the scenarios with compression.type=none would repeat once per level (sweep.compression.type)"}},
		{"swept level beside another codec", minimal + "sweep:\n  compression.type: [zstd, lz4]\n  compression.zstd.level: [1, 9]\n", []string{"sweep.compression.zstd.level: the scenarios with compression.type=lz4 would repeat", "with compression.type zstd alone"}},
		{"swept level without its codec", minimal + "sweep:\n  compression.lz4.level: [1, 9]\n", []string{"sweep.compression.lz4.level: the scenarios with compression.type=none would repeat once per level (producer.compression.type)"}},
		{"level swept and set", minimal + "producer:\n  compression.type: lz4\n  compression.lz4.level: 1\nsweep:\n  compression.lz4.level: [1, 9]\n", []string{"sweep.compression.lz4.level", "also set under producer"}},
		{"producer not a mapping", minimal + "producer: fast\n", []string{"producer", "want a mapping", `"fast"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseWorkload([]byte(tt.src), "w.yaml")
			if err == nil {
				t.Fatalf("no error for:\n%s", tt.src)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q\ndoes not contain %q", err, want)
				}
			}
			if !strings.HasPrefix(err.Error(), "w.yaml") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

// TestParseWorkloadReportsEveryError: one run shows every mistake.
func TestParseWorkloadReportsEveryError(t *testing.T) {
	_, err := ParseWorkload([]byte("name: t\ntopics: 0\nfoo: 1\nproducer:\n  acks: 3\n  lingerMs: 1\n"), "w.yaml")
	var we *WorkloadError
	if !errors.As(err, &we) {
		t.Fatalf("err = %v, want a *WorkloadError", err)
	}
	if len(we.Errs) != 5 { // topics, foo, acks, lingerMs, missing duration
		t.Errorf("%d errors, want 5:\n%v", len(we.Errs), err)
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		if !strings.HasPrefix(line, "w.yaml: ") {
			t.Errorf("line %q does not name the file", line)
		}
	}
}

func TestValidateClusterSize(t *testing.T) {
	w, err := ParseWorkload([]byte(minimal+"sweep:\n  replicationFactor: [1, 3]\n"), "w.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Validate(3); err != nil {
		t.Errorf("3 brokers: %v", err)
	}
	if err := w.Validate(0); err != nil {
		t.Errorf("unknown size: %v", err)
	}
	err = w.Validate(1)
	if err == nil || !strings.Contains(err.Error(), "sweep.replicationFactor: 3 is more than the 1 broker(s)") {
		t.Errorf("1 broker: %v", err)
	}
	w2, _ := ParseWorkload([]byte(minimal+"replicationFactor: 2\n"), "w.yaml")
	if err := w2.Validate(1); err == nil || !strings.Contains(err.Error(), "replicationFactor: 2 is more than") {
		t.Errorf("single RF: %v", err)
	}
}

// TestOMBWorkload: a workload as the OpenMessaging Benchmark ships them
// (minutes, payloadFile) runs unchanged.
func TestOMBWorkload(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "payload"), 0o755)
	os.WriteFile(filepath.Join(dir, "payload", "payload-100b.data"), []byte(strings.Repeat("x", 100)), 0o644)
	omb := `name: 1 topic / 16 partitions / 100b
topics: 1
partitionsPerTopic: 16
keyDistributor: "NO_KEY"
messageSize: 100
payloadFile: "payload/payload-100b.data"
subscriptionsPerTopic: 1
consumerPerSubscription: 1
producersPerTopic: 1
producerRate: 50000
consumerBacklogSizeGB: 0
testDurationMinutes: 15
`
	path := filepath.Join(dir, "omb.yaml")
	os.WriteFile(path, []byte(omb), 0o644)
	_, err := LoadWorkload(path)
	if err == nil || !strings.Contains(err.Error(), "path separator") {
		t.Fatalf("OMB names hold slashes, which cannot name a folder: %v", err)
	}
	os.WriteFile(path, []byte(strings.Replace(omb, "name: 1 topic / 16 partitions / 100b", "name: omb-1-topic-16-partitions-100b", 1)), 0o644)
	w, err := LoadWorkload(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.payload) != 100 || w.TestDuration != 15*time.Minute || w.ProducerRate != 50000 {
		t.Errorf("payload %d bytes, duration %v, rate %v", len(w.payload), w.TestDuration, w.ProducerRate)
	}
	os.WriteFile(path, []byte(strings.Replace(omb, "name: 1 topic / 16 partitions / 100b", "name: x", 1)+"messageSize: 99\n"), 0o644)
	if _, err := LoadWorkload(path); err == nil || !strings.Contains(err.Error(), "given twice") {
		t.Errorf("repeated messageSize: %v", err)
	}
	os.WriteFile(path, []byte(strings.Replace(strings.Replace(omb, "messageSize: 100", "messageSize: 99", 1), "name: 1 topic / 16 partitions / 100b", "name: x", 1)), 0o644)
	if _, err := LoadWorkload(path); err == nil || !strings.Contains(err.Error(), "holds 100 bytes but messageSize is 99") {
		t.Errorf("payload size mismatch: %v", err)
	}
}

// TestShippedWorkloads parses every workload in workloads/.
func TestShippedWorkloads(t *testing.T) {
	files, err := filepath.Glob("../workloads/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no workloads: %v", err)
	}
	names := map[string]bool{}
	for _, f := range files {
		w, err := LoadWorkload(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		names[w.Name] = true
		if filepath.Base(f) != w.Name+".yaml" {
			t.Errorf("%s: name %q differs from the file name", f, w.Name)
		}
		brokers := 1
		if w.Name == "replication" {
			brokers = 3
		}
		if err := w.Validate(brokers); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	for _, want := range []string{"default", "tiny", "throughput", "latency"} {
		if !names[want] {
			t.Errorf("no %s workload", want)
		}
	}
}

func TestAcksText(t *testing.T) {
	for _, s := range []string{"all", "-1", "0", "1", "ALL"} {
		a, err := ParseAcks(s)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		b, _ := a.MarshalText()
		var back Acks
		if err := back.UnmarshalText(b); err != nil || back != a {
			t.Errorf("%q: round trip %q -> %v, %v", s, b, back, err)
		}
	}
	if _, err := ParseAcks("2"); err == nil {
		t.Error("acks 2 accepted")
	}
	if got := slices.Collect(func(yield func(string) bool) {
		for _, a := range []Acks{AcksAll, AcksNone, AcksLeader} {
			yield(a.String())
		}
	}); !slices.Equal(got, []string{"all", "0", "1"}) {
		t.Errorf("names %q", got)
	}
}
