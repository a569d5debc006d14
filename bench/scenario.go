package bench

import (
	"fmt"
	"strconv"
	"strings"
)

// Scenario is one combination of a sweep: the workload with every swept
// setting fixed to one value.
type Scenario struct {
	// Index counts scenarios from 1, in the order they run.
	Index int `json:"index"`
	// Name lists the swept settings and their values ("acks=1
	// linger.ms=5"), or "baseline" when nothing is swept.
	Name string `json:"name"`
	// Slug is Name made safe for file names, prefixed with Index.
	Slug string `json:"slug"`
	// Swept holds the swept settings' values, in sweep nesting order.
	Swept             []Setting        `json:"swept,omitempty"`
	Producer          ProducerSettings `json:"producer"`
	ReplicationFactor int              `json:"replicationFactor"`
	MinInsyncReplicas int              `json:"minInsyncReplicas"`
	// Client is the load generator when the sweep varies it; empty for
	// the run's own (Config.Client).
	Client string `json:"client,omitempty"`
}

// Setting is one key and its value as text, e.g. {"acks", "all"}.
type Setting struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Value returns the scenario's value of a swept key, or "".
func (s *Scenario) Value(key string) string {
	for _, st := range s.Swept {
		if st.Key == key {
			return st.Value
		}
	}
	return ""
}

// Scenarios expands the sweep into its cartesian product, in a fixed order
// (sweepKeys, the last varying fastest). Without a sweep there is one
// scenario, the workload's own settings.
func (w *Workload) Scenarios() []Scenario {
	type dim struct {
		key    string
		values []string
		apply  func(sc *Scenario, i int)
	}
	var dims []dim
	for _, key := range sweepKeys {
		switch {
		case key == "acks" && w.Sweep.Acks != nil:
			dims = append(dims, dim{key, mapStrings(w.Sweep.Acks, Acks.String), func(sc *Scenario, i int) { sc.Producer.Acks = w.Sweep.Acks[i] }})
		case key == "linger.ms" && w.Sweep.LingerMs != nil:
			dims = append(dims, dim{key, mapStrings(w.Sweep.LingerMs, strconv.Itoa), func(sc *Scenario, i int) { sc.Producer.LingerMs = w.Sweep.LingerMs[i] }})
		case key == "batch.size" && w.Sweep.BatchSize != nil:
			dims = append(dims, dim{key, mapStrings(w.Sweep.BatchSize, strconv.Itoa), func(sc *Scenario, i int) { sc.Producer.BatchSize = w.Sweep.BatchSize[i] }})
		case key == "compression.type" && w.Sweep.CompressionType != nil:
			dims = append(dims, dim{key, w.Sweep.CompressionType, func(sc *Scenario, i int) { sc.Producer.CompressionType = w.Sweep.CompressionType[i] }})
		case key == "compression.gzip.level" && w.Sweep.GzipLevel != nil:
			dims = append(dims, dim{key, mapStrings(w.Sweep.GzipLevel, strconv.Itoa), func(sc *Scenario, i int) { sc.Producer.GzipLevel = w.Sweep.GzipLevel[i] }})
		case key == "compression.lz4.level" && w.Sweep.LZ4Level != nil:
			dims = append(dims, dim{key, mapStrings(w.Sweep.LZ4Level, strconv.Itoa), func(sc *Scenario, i int) { sc.Producer.LZ4Level = w.Sweep.LZ4Level[i] }})
		case key == "compression.zstd.level" && w.Sweep.ZstdLevel != nil:
			dims = append(dims, dim{key, mapStrings(w.Sweep.ZstdLevel, strconv.Itoa), func(sc *Scenario, i int) { sc.Producer.ZstdLevel = w.Sweep.ZstdLevel[i] }})
		case key == "replicationFactor" && w.Sweep.ReplicationFactor != nil:
			dims = append(dims, dim{key, mapStrings(w.Sweep.ReplicationFactor, strconv.Itoa), func(sc *Scenario, i int) { sc.ReplicationFactor = w.Sweep.ReplicationFactor[i] }})
		case key == "minInsyncReplicas" && w.Sweep.MinInsyncReplicas != nil:
			dims = append(dims, dim{key, mapStrings(w.Sweep.MinInsyncReplicas, strconv.Itoa), func(sc *Scenario, i int) { sc.MinInsyncReplicas = w.Sweep.MinInsyncReplicas[i] }})
		case key == "client" && w.Sweep.Client != nil:
			dims = append(dims, dim{key, w.Sweep.Client, func(sc *Scenario, i int) { sc.Client = w.Sweep.Client[i] }})
		}
	}
	total := 1
	for _, d := range dims {
		total *= len(d.values)
		if total > maxScenarios+1 {
			total = maxScenarios + 1 // check() reports it; do not build millions
			break
		}
	}
	out := make([]Scenario, 0, total)
	idx := make([]int, len(dims))
	for n := range total {
		sc := Scenario{Index: n + 1, Producer: w.Producer, ReplicationFactor: w.ReplicationFactor, MinInsyncReplicas: w.MinInsyncReplicas}
		var names []string
		for i, d := range dims {
			d.apply(&sc, idx[i])
			sc.Swept = append(sc.Swept, Setting{d.key, d.values[idx[i]]})
			names = append(names, d.key+"="+d.values[idx[i]])
		}
		if !w.idempotenceSet {
			// Kafka's client turns idempotence on by default only where
			// it is allowed: with acks=all.
			sc.Producer.EnableIdempotence = sc.Producer.Acks == AcksAll
		}
		sc.Name = strings.Join(names, " ")
		if sc.Name == "" {
			sc.Name = "baseline"
		}
		sc.Slug = fmt.Sprintf("%02d_%s", sc.Index, slug(sc.Swept))
		out = append(out, sc)
		// Odometer: the last dimension turns fastest.
		for i := len(dims) - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < len(dims[i].values) {
				break
			}
			idx[i] = 0
		}
	}
	return out
}

// slug turns settings into a file-name-safe string:
// "acks-all_linger-5_compression-lz4".
func slug(settings []Setting) string {
	if len(settings) == 0 {
		return "baseline"
	}
	short := map[string]string{"compression.type": "compression", "linger.ms": "linger", "batch.size": "batch",
		"compression.gzip.level": "gzip-level", "compression.lz4.level": "lz4-level", "compression.zstd.level": "zstd-level",
		"replicationFactor": "rf", "minInsyncReplicas": "minisr"}
	var parts []string
	for _, s := range settings {
		k := s.Key
		if v, ok := short[k]; ok {
			k = v
		}
		parts = append(parts, k+"-"+s.Value)
	}
	return strings.Join(parts, "_")
}

func mapStrings[T any](in []T, f func(T) string) []string {
	out := make([]string, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}
