package broker_test

import (
	"bufio"
	"bytes"
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/broker"
	"gregor/internal/testcluster"
)

// scrape parses a broker's /metrics text: each sample by its name and
// labels as written. It fails the test on a sample whose family has no
// # TYPE line before it, a value that does not parse, or a histogram whose
// buckets are not cumulative or whose +Inf bucket is not its count.
func scrape(t *testing.T, b *broker.Broker) map[string]float64 {
	t.Helper()
	var buf bytes.Buffer
	b.WritePrometheus(&buf)
	samples := map[string]float64{}
	types := map[string]string{}
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			types[f[2]] = f[3]
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		name, value := line[:i], line[i+1:]
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		family, _, _ := strings.Cut(name, "{")
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(family, "_bucket"), "_sum"), "_count")
		if types[family] == "" && types[base] != "histogram" {
			t.Fatalf("metric %s has no # TYPE line before it", family)
		}
		samples[name] = v
	}
	// Buckets by API, in order of their bounds: cumulative, the +Inf one
	// the count.
	type bucket struct{ le, n float64 }
	buckets := map[string][]bucket{}
	for name, v := range samples {
		rest, ok := strings.CutPrefix(name, "gregor_request_duration_seconds_bucket{")
		if !ok {
			continue
		}
		api, le, _ := strings.Cut(strings.TrimSuffix(rest, "}"), ",le=")
		bound, err := strconv.ParseFloat(strings.Trim(le, `"`), 64)
		if err != nil {
			t.Fatalf("%s: bound %s: %v", name, le, err)
		}
		buckets[api] = append(buckets[api], bucket{bound, v})
	}
	for api, bs := range buckets {
		slices.SortFunc(bs, func(a, b bucket) int { return cmp.Compare(a.le, b.le) })
		for i := 1; i < len(bs); i++ {
			if bs[i].n < bs[i-1].n {
				t.Errorf("%s: bucket le=%v holds %v, fewer than le=%v's %v", api, bs[i].le, bs[i].n, bs[i-1].le, bs[i-1].n)
			}
		}
		if last := bs[len(bs)-1]; !math.IsInf(last.le, 1) || last.n != samples["gregor_request_duration_seconds_count{"+api+"}"] {
			t.Errorf("%s: last bucket %+v, count %v", api, last, samples["gregor_request_duration_seconds_count{"+api+"}"])
		}
	}
	return samples
}

// TestMetricsCountRequestsAndZeroCopyBytes: requests and their bytes are
// counted per API, a too-new ApiVersions included, and every record byte a
// fetch answers goes out by sendfile.
func TestMetricsCountRequestsAndZeroCopyBytes(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	createTopic(t, c, "measured", 1, nil)
	b := c.Brokers[0]
	r := dialRaw(t, c.Addrs()[0])
	before := scrape(t, b)

	r.write(r.frame(kmsg.ApiVersions.Int16(), 99, false, nil))
	if _, err := r.read(); err != nil {
		t.Fatal(err)
	}
	records := recordBatch(t, 100, 1000)
	produceRaw(r, 9, 1, "measured", 0, records)
	p := fetchOnce(r, "measured", 0, 1, 0)
	after := scrape(t, b)

	delta := func(name string) float64 { return after[name] - before[name] }
	if d := delta(`gregor_requests_total{api="ApiVersions"}`); d != 1 {
		t.Errorf("ApiVersions requests counted: %v, want 1 (a too-new version)", d)
	}
	if d := delta(`gregor_request_bytes_total{api="Produce"}`); d < float64(len(records)) {
		t.Errorf("Produce request bytes: %v, want at least the batch's %d", d, len(records))
	}
	fetched := delta("gregor_fetched_bytes_total")
	if fetched != float64(len(p.RecordBatches)) || fetched < float64(len(records)) {
		t.Errorf("fetched bytes counted %v; the response held %d", fetched, len(p.RecordBatches))
	}
	if sent := delta(`gregor_sent_bytes_total{path="sendfile"}`); sent != fetched {
		t.Errorf("sendfile sent %v bytes; the fetch answered %v record bytes", sent, fetched)
	}
}

// TestLatencyHistogramConsistentUnderConcurrentScrapes: a scrape taken while
// responses are being observed still shows a histogram whose buckets are
// cumulative and whose +Inf bucket is its count (scrape checks both), and a
// latency above every bound counts in +Inf and the count only.
func TestLatencyHistogramConsistentUnderConcurrentScrapes(t *testing.T) {
	b := broker.NewMetricsOnlyBroker()
	key := int16(kmsg.Produce)
	broker.ObserveLatency(b, key, 40*time.Second)
	m := scrape(t, b)
	if got := m[`gregor_request_duration_seconds_bucket{api="Produce",le="30"}`]; got != 0 {
		t.Errorf("a 40 s latency counted in le=30: %v", got)
	}
	if got := m[`gregor_request_duration_seconds_count{api="Produce"}`]; got != 1 {
		t.Errorf("count %v after one observation, want 1", got)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				broker.ObserveLatency(b, key, time.Duration(i%64)*time.Millisecond)
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()
	// A thousand scrapes, each racing the observers; bounded by a
	// deadline too on a slow machine.
	deadline := time.Now().Add(2 * time.Second)
	for n := 0; n < 1000 && time.Now().Before(deadline) && !t.Failed(); n++ {
		scrape(t, b)
	}
}
