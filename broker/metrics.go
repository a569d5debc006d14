package broker

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/netio"
)

// latencyBuckets are the upper bounds, in seconds, of the request latency
// histogram: 100 µs to 30 s, roughly ×2.5 apart.
var latencyBuckets = [...]float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// apiMetrics are one API's counters. Every field is an atomic: requests are
// counted on many goroutines and read by a scrape.
type apiMetrics struct {
	requests      atomic.Uint64
	requestBytes  atomic.Uint64
	responseBytes atomic.Uint64
	latencySumNs  atomic.Uint64
	// buckets count the latencies of each bucket alone, the last those
	// above every bound. The +Inf bucket and the count are their sum, as
	// a scrape reads them once: a separate counter, read before or after
	// the buckets, could disagree with them when a response is observed
	// between the reads, and Prometheus takes a histogram whose buckets
	// are not cumulative for a reset.
	buckets [len(latencyBuckets) + 1]atomic.Uint64
}

// metrics are the broker's counters, written in Prometheus' text format by
// WritePrometheus (the admin port's /metrics).
type metrics struct {
	b             *Broker
	apis          [kmsg.MaxKey + 1]apiMetrics
	refused       atomic.Uint64
	producedBytes atomic.Uint64
	fetchedBytes  atomic.Uint64
	partitions    atomic.Uint64
	fetchWaiting  atomic.Int64 // Fetch requests parked for min_bytes
}

func newMetrics(b *Broker) *metrics { return &metrics{b: b} }

// request counts a request of key and its bytes, size prefix included.
func (m *metrics) request(key int16, frameBytes int) {
	if key >= 0 && int(key) < len(m.apis) {
		m.apis[key].requests.Add(1)
		m.apis[key].requestBytes.Add(uint64(frameBytes) + 4)
	}
}

func (m *metrics) observe(key int16, d time.Duration, parts []netio.Part) {
	if key < 0 || int(key) >= len(m.apis) {
		return
	}
	a := &m.apis[key]
	var n int64
	for _, p := range parts {
		n += int64(len(p.Bytes)) + p.Length
	}
	a.responseBytes.Add(uint64(n))
	a.latencySumNs.Add(uint64(d.Nanoseconds()))
	i, _ := slices.BinarySearch(latencyBuckets[:], d.Seconds()) // len(latencyBuckets) above every bound
	a.buckets[i].Add(1)
}

func (m *metrics) produced(n int)  { m.producedBytes.Add(uint64(n)) }
func (m *metrics) fetched(n int64) { m.fetchedBytes.Add(uint64(n)) }

// WritePrometheus writes the broker's metrics in Prometheus' text exposition
// format.
func (b *Broker) WritePrometheus(w io.Writer) {
	m := b.metrics
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("# HELP gregor_requests_total Requests received, by API.\n# TYPE gregor_requests_total counter\n")
	for key := range m.apis {
		if n := m.apis[key].requests.Load(); n > 0 {
			p("gregor_requests_total{api=%q} %d\n", kmsg.NameForKey(int16(key)), n)
		}
	}
	p("# HELP gregor_request_bytes_total Request bytes received (size prefix included), by API.\n# TYPE gregor_request_bytes_total counter\n")
	for key := range m.apis {
		if n := m.apis[key].requestBytes.Load(); n > 0 {
			p("gregor_request_bytes_total{api=%q} %d\n", kmsg.NameForKey(int16(key)), n)
		}
	}
	p("# HELP gregor_response_bytes_total Response bytes, by API.\n# TYPE gregor_response_bytes_total counter\n")
	for key := range m.apis {
		if n := m.apis[key].responseBytes.Load(); n > 0 {
			p("gregor_response_bytes_total{api=%q} %d\n", kmsg.NameForKey(int16(key)), n)
		}
	}
	p("# HELP gregor_request_duration_seconds Time from a request's arrival to its response being handed to the network.\n# TYPE gregor_request_duration_seconds histogram\n")
	for key := range m.apis {
		a := &m.apis[key]
		var counts [len(a.buckets)]uint64
		var count uint64
		for i := range a.buckets {
			counts[i] = a.buckets[i].Load()
			count += counts[i]
		}
		if count == 0 {
			continue
		}
		name := kmsg.NameForKey(int16(key))
		var cum uint64
		for i, le := range latencyBuckets {
			cum += counts[i]
			p("gregor_request_duration_seconds_bucket{api=%q,le=%q} %d\n", name, formatFloat(le), cum)
		}
		p("gregor_request_duration_seconds_bucket{api=%q,le=\"+Inf\"} %d\n", name, count)
		p("gregor_request_duration_seconds_sum{api=%q} %g\n", name, float64(a.latencySumNs.Load())/1e9)
		p("gregor_request_duration_seconds_count{api=%q} %d\n", name, count)
	}
	st := b.NetStats()
	p("# HELP gregor_sent_bytes_total Response bytes sent, by path: sendfile (zero copy) or copy (from memory).\n# TYPE gregor_sent_bytes_total counter\n")
	p("gregor_sent_bytes_total{path=\"sendfile\"} %d\ngregor_sent_bytes_total{path=\"copy\"} %d\n", st.SendfileBytes, st.CopiedBytes)
	p("# HELP gregor_connections Open client connections.\n# TYPE gregor_connections gauge\ngregor_connections %d\n", st.Connections)
	p("# HELP gregor_rejected_connections_total Connections refused over max.connections or max.connections.per.ip.\n# TYPE gregor_rejected_connections_total counter\ngregor_rejected_connections_total %d\n", st.RejectedConnections)
	p("# HELP gregor_refused_requests_total Requests that closed their connection (undecodable, unknown API or version, oversize).\n# TYPE gregor_refused_requests_total counter\ngregor_refused_requests_total %d\n", m.refused.Load()+st.OversizeFrames)
	p("# HELP gregor_produced_bytes_total Record batch bytes appended.\n# TYPE gregor_produced_bytes_total counter\ngregor_produced_bytes_total %d\n", m.producedBytes.Load())
	p("# HELP gregor_fetched_bytes_total Record bytes answered to fetches.\n# TYPE gregor_fetched_bytes_total counter\ngregor_fetched_bytes_total %d\n", m.fetchedBytes.Load())
	p("# HELP gregor_fetches_waiting Fetch requests waiting for min_bytes or max_wait_ms (Kafka's fetch purgatory).\n# TYPE gregor_fetches_waiting gauge\ngregor_fetches_waiting %d\n", m.fetchWaiting.Load())
	p("# HELP gregor_partitions Partitions this broker hosts.\n# TYPE gregor_partitions gauge\ngregor_partitions %d\n", m.partitions.Load())
	p("# HELP gregor_partitions_led Partitions this broker leads.\n# TYPE gregor_partitions_led gauge\ngregor_partitions_led %d\n", b.image().PartitionsLedBy(b.cfg.NodeID))
}

// FetchesWaiting is the number of Fetch requests parked until appends bring
// their min_bytes or max_wait_ms passes, as gregor_fetches_waiting.
func (b *Broker) FetchesWaiting() int64 { return b.metrics.fetchWaiting.Load() }

func formatFloat(f float64) string {
	if f == math.Trunc(f) {
		return fmt.Sprintf("%.0f", f)
	}
	return fmt.Sprintf("%g", f)
}
