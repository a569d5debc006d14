package bench

import (
	"slices"
	"strconv"
	"testing"
)

func TestSweepExpansion(t *testing.T) {
	w, err := ParseWorkload([]byte(minimal+`replicationFactor: 3
producer:
  batch.size: 32768
sweep:
  linger.ms: [0, 5]
  acks: [1, all]
  compression.type: [none, lz4, zstd]
  minInsyncReplicas: [1, 2]
`), "w.yaml")
	if err != nil {
		t.Fatal(err)
	}
	scs := w.Scenarios()
	if len(scs) != 2*2*3*2 {
		t.Fatalf("%d scenarios, want 24", len(scs))
	}
	// Nesting follows sweepKeys whatever the YAML order: minISR
	// outermost here, linger.ms innermost.
	wantFirst := []string{
		"minInsyncReplicas=1 acks=1 compression.type=none linger.ms=0",
		"minInsyncReplicas=1 acks=1 compression.type=none linger.ms=5",
		"minInsyncReplicas=1 acks=1 compression.type=lz4 linger.ms=0",
	}
	for i, want := range wantFirst {
		if scs[i].Name != want {
			t.Errorf("scenario %d = %q, want %q", i+1, scs[i].Name, want)
		}
	}
	last := scs[len(scs)-1]
	if last.Name != "minInsyncReplicas=2 acks=all compression.type=zstd linger.ms=5" || last.Index != 24 {
		t.Errorf("last = %d %q", last.Index, last.Name)
	}
	if last.Slug != "24_minisr-2_acks-all_compression-zstd_linger-5" {
		t.Errorf("slug %q", last.Slug)
	}
	if last.MinInsyncReplicas != 2 || last.ReplicationFactor != 3 || last.Producer.Acks != AcksAll ||
		last.Producer.CompressionType != "zstd" || last.Producer.LingerMs != 5 || last.Producer.BatchSize != 32768 {
		t.Errorf("last settings %+v", last)
	}
	// Every combination appears once.
	seen := map[string]bool{}
	for i, sc := range scs {
		if sc.Index != i+1 || seen[sc.Name] {
			t.Errorf("scenario %d %q: index or duplicate", i, sc.Name)
		}
		seen[sc.Name] = true
		// Unset idempotence follows acks, as in Kafka's client.
		if sc.Producer.EnableIdempotence != (sc.Producer.Acks == AcksAll) {
			t.Errorf("%s: idempotence %v", sc.Name, sc.Producer.EnableIdempotence)
		}
		if got := sc.Value("acks"); got != sc.Producer.Acks.String() {
			t.Errorf("%s: Value(acks) = %q", sc.Name, got)
		}
	}
	if got := w.Sweep.Swept(); !slices.Equal(got, []string{"minInsyncReplicas", "acks", "compression.type", "linger.ms"}) {
		t.Errorf("swept = %q", got)
	}
}

// TestSweepCompressionLevels: a level sweeps inside its codec, which the
// scenarios compress at; the names and slugs say which level.
func TestSweepCompressionLevels(t *testing.T) {
	w, err := ParseWorkload([]byte(minimal+`producer:
  compression.type: zstd
sweep:
  linger.ms: [0, 5]
  compression.zstd.level: [1, 9]
`), "w.yaml")
	if err != nil {
		t.Fatal(err)
	}
	scs := w.Scenarios()
	var names []string
	for _, sc := range scs {
		names = append(names, sc.Name)
		if want := sc.Value("compression.zstd.level"); want != strconv.Itoa(sc.Producer.ZstdLevel) || sc.Producer.Level() != sc.Producer.ZstdLevel {
			t.Errorf("%s: zstd level %d", sc.Name, sc.Producer.ZstdLevel)
		}
	}
	want := []string{"compression.zstd.level=1 linger.ms=0", "compression.zstd.level=1 linger.ms=5",
		"compression.zstd.level=9 linger.ms=0", "compression.zstd.level=9 linger.ms=5"}
	if !slices.Equal(names, want) {
		t.Errorf("scenarios %q, want %q", names, want)
	}
	if scs[3].Slug != "04_zstd-level-9_linger-5" {
		t.Errorf("slug %q", scs[3].Slug)
	}
}

func TestNoSweepIsOneScenario(t *testing.T) {
	w, err := ParseWorkload([]byte(minimal+"producer:\n  acks: 1\n  enable.idempotence: false\n"), "w.yaml")
	if err != nil {
		t.Fatal(err)
	}
	scs := w.Scenarios()
	if len(scs) != 1 || scs[0].Name != "baseline" || scs[0].Slug != "01_baseline" || len(scs[0].Swept) != 0 {
		t.Fatalf("%+v", scs)
	}
	if scs[0].Producer.Acks != AcksLeader || scs[0].Producer.EnableIdempotence {
		t.Errorf("settings %+v", scs[0].Producer)
	}
}

func TestExplicitIdempotenceKept(t *testing.T) {
	w, err := ParseWorkload([]byte(minimal+"producer:\n  enable.idempotence: false\n"), "w.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if sc := w.Scenarios()[0]; sc.Producer.EnableIdempotence || sc.Producer.Acks != AcksAll {
		t.Errorf("explicit false with acks=all: %+v", sc.Producer)
	}
}

func TestTooManyScenarios(t *testing.T) {
	src := minimal + "sweep:\n  linger.ms: [" + intList(0, 40) + "]\n  batch.size: [" + intList(2000, 40) + "]\n"
	_, err := ParseWorkload([]byte(src), "w.yaml")
	if err == nil {
		t.Fatal("1600 scenarios accepted")
	}
}

func intList(from, n int) string {
	s := ""
	for i := range n {
		if i > 0 {
			s += ", "
		}
		s += itoa(from + i)
	}
	return s
}

func itoa(i int) string { return string(appendInt(nil, i)) }

func appendInt(b []byte, i int) []byte {
	if i >= 10 {
		b = appendInt(b, i/10)
	}
	return append(b, byte('0'+i%10))
}

// A swept client is the innermost dimension: each combination of the other
// settings runs once per client, back to back, and the report's cost table
// compares the clients pair by pair.
func TestSweepClients(t *testing.T) {
	w, err := ParseWorkload([]byte(minimal+`sweep:
  client: [franz, gregor]
  acks: [1, all]
`), "w.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, sc := range w.Scenarios() {
		got = append(got, sc.Slug+" "+sc.Client)
		if sc.Value("client") != sc.Client {
			t.Errorf("%s: Value(client) = %q, Client %q", sc.Name, sc.Value("client"), sc.Client)
		}
	}
	want := []string{"01_acks-1_client-franz franz", "02_acks-1_client-gregor gregor",
		"03_acks-all_client-franz franz", "04_acks-all_client-gregor gregor"}
	if !slices.Equal(got, want) {
		t.Fatalf("scenarios %q, want %q", got, want)
	}
	if swept := w.Sweep.Swept(); !slices.Equal(swept, []string{"acks", "client"}) {
		t.Errorf("swept %v", swept)
	}
}
