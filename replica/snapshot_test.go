package replica

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"gregor/segment"
)

// smallSegments is a log config whose segments roll every few batches.
func smallSegments() segment.Config {
	cfg := segment.DefaultConfig()
	cfg.SegmentBytes = 400
	return cfg
}

func openAt(t *testing.T, dir string, cfg segment.Config, clean bool) (*Partition, *segment.Log) {
	t.Helper()
	log, err := segment.Open(dir, cfg, segment.OpenOptions{CleanShutdown: clean})
	if err != nil {
		t.Fatal(err)
	}
	p := New(segment.TopicPartition{Topic: "t", Partition: 0}, log, nil, testProducerIDExpiration)
	if err := p.BecomeLeader(1); err != nil {
		t.Fatal(err)
	}
	return p, log
}

func mustAppend(t *testing.T, p *Partition, b []byte) AppendResult {
	t.Helper()
	res, err := p.Append(b, AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestProducerStateSurvivesRollAndReopen: a producer whose batches lie in
// rolled segments is still recognised after a reopen, whether the
// partition was closed (its snapshot is as of the log end) or the process
// died (the snapshot of the last roll, then the batch headers after it):
// retries of its last five batches are duplicates, a gap is out of order,
// an older epoch is fenced.
func TestProducerStateSurvivesRollAndReopen(t *testing.T) {
	for _, closed := range []bool{true, false} {
		dir := t.TempDir()
		p, log := openAt(t, dir, smallSegments(), false)
		var sent [][]byte
		var offsets []int64
		for i := range 4 {
			b := idempotentBatch(t, 42, 3, int32(i*3), 3)
			sent = append(sent, b)
			offsets = append(offsets, mustAppend(t, p, b).FirstOffset)
		}
		for i := range 6 { // another producer rolls segments past producer 42's
			mustAppend(t, p, idempotentBatch(t, 7, 0, int32(i*10), 10))
		}
		// One more batch of producer 42 after the last roll: the
		// snapshot of the roll does not hold it, the active segment does.
		b := idempotentBatch(t, 42, 3, 12, 3)
		sent, offsets = append(sent, b), append(offsets, mustAppend(t, p, b).FirstOffset)
		if n := len(log.Segments()); n < 3 {
			t.Fatalf("%d segments, the test needs rolls", n)
		}
		if closed {
			p.Close()
		}
		if err := log.Close(); err != nil {
			t.Fatal(err)
		}
		p, log = openAt(t, dir, smallSegments(), closed)
		for i, b := range sent {
			if res, err := p.Append(b, AppendOptions{}); err != nil || !res.Duplicate || res.FirstOffset != offsets[i] {
				t.Fatalf("closed=%v: retry of batch %d after reopen: %+v %v, want a duplicate at %d", closed, i, res, err, offsets[i])
			}
		}
		if _, err := p.Append(idempotentBatch(t, 42, 3, 99, 1), AppendOptions{}); !errors.Is(err, kerr.OutOfOrderSequenceNumber) {
			t.Fatalf("closed=%v: gap after reopen: %v", closed, err)
		}
		if _, err := p.Append(idempotentBatch(t, 42, 2, 15, 1), AppendOptions{}); !errors.Is(err, kerr.InvalidProducerEpoch) {
			t.Fatalf("closed=%v: older epoch after reopen: %v", closed, err)
		}
		if _, err := p.Append(idempotentBatch(t, 42, 3, 15, 1), AppendOptions{}); err != nil {
			t.Fatalf("closed=%v: the next sequence after reopen: %v", closed, err)
		}
		log.Close()
	}
}

// TestSnapshotsKeptAndStale: a partition keeps its newest snapshots only;
// one past the log end (the log lost an unflushed tail) or one that does
// not decode is removed on open and the next older one used.
func TestSnapshotsKeptAndStale(t *testing.T) {
	dir := t.TempDir()
	p, log := openAt(t, dir, smallSegments(), false)
	first := idempotentBatch(t, 42, 0, 0, 3)
	mustAppend(t, p, first)
	for i := range 12 {
		mustAppend(t, p, idempotentBatch(t, 7, 0, int32(i*10), 10))
		p.snapshots.wait() // each roll's snapshot synced, none replaced
	}
	offsets, err := snapshotOffsets(dir)
	if err != nil || len(offsets) != snapshotsKept {
		t.Fatalf("snapshots %v (%v), want the newest %d", offsets, err, snapshotsKept)
	}
	end := log.LogEndOffset()
	p.Close()
	log.Close()

	// A snapshot past the log end that forgets producer 42, and a
	// corrupt one at the log end: both go, and the one before them,
	// which holds producer 42, is used.
	empty := producerStates{}
	if err := os.WriteFile(filepath.Join(dir, snapshotName(end+100)), encodeSnapshot(&empty, end+100), 0o644); err != nil {
		t.Fatal(err)
	}
	corrupt := encodeSnapshot(&empty, end)
	corrupt[len(corrupt)-1] ^= 1
	if err := os.WriteFile(filepath.Join(dir, snapshotName(end)), corrupt, 0o644); err != nil {
		t.Fatal(err)
	}
	p, log = openAt(t, dir, smallSegments(), true)
	defer log.Close()
	if res, err := p.Append(first, AppendOptions{}); err != nil || !res.Duplicate || res.FirstOffset != 0 {
		t.Fatalf("retry of the first batch: %+v %v, want a duplicate at 0", res, err)
	}
	offsets, _ = snapshotOffsets(dir)
	for _, o := range offsets {
		if o >= end {
			t.Fatalf("snapshot at %d left behind (log end %d): %v", o, end, offsets)
		}
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	var s producerStates
	for i := range 7 { // producer 1 wraps its ring of five
		s.record(1, 4, batchMeta{firstSeq: int32(i * 2), lastSeq: int32(i*2 + 1), firstOffset: int64(i * 2), lastOffset: int64(i*2 + 1), appendTime: -1}, 100)
	}
	s.record(5, 0, batchMeta{firstSeq: 0, lastSeq: 0, firstOffset: 20, lastOffset: 20, appendTime: 1234}, 200)
	got, offset, err := decodeSnapshot(encodeSnapshot(&s, 21))
	if err != nil || offset != 21 {
		t.Fatalf("decode: %v, offset %d", err, offset)
	}
	for pid, want := range s.m {
		e := got.m[pid]
		if e == nil || e.epoch != want.epoch || e.lastWriteMs != want.lastWriteMs || e.n != want.n || *e.last() != *want.last() {
			t.Fatalf("producer %d: got %+v, want %+v", pid, e, want)
		}
		for i := range want.n {
			g, w := e.batches[(e.next-e.n+i+producerBatchesKept)%producerBatchesKept], want.batches[(want.next-want.n+i+producerBatchesKept)%producerBatchesKept]
			if g != w {
				t.Fatalf("producer %d batch %d: got %+v, want %+v", pid, i, g, w)
			}
		}
	}
	if len(got.m) != len(s.m) {
		t.Fatalf("%d producers, want %d", len(got.m), len(s.m))
	}
	// Encoding is deterministic: the same state, the same bytes.
	if !reflect.DeepEqual(encodeSnapshot(&got, 21), encodeSnapshot(&s, 21)) {
		t.Fatal("re-encoding differs")
	}
}

// FuzzDecodeSnapshot: no input panics the decoder, and whatever decodes
// encodes back to the same bytes.
func FuzzDecodeSnapshot(f *testing.F) {
	var s producerStates
	s.record(9, 1, batchMeta{firstSeq: 5, lastSeq: 9, firstOffset: 100, lastOffset: 104, appendTime: -1}, 7)
	f.Add(encodeSnapshot(&s, 105))
	f.Add(encodeSnapshot(&producerStates{}, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, offset, err := decodeSnapshot(b)
		if err != nil {
			if !errors.Is(err, errSnapshot) {
				t.Fatalf("error %v is not errSnapshot", err)
			}
			return
		}
		if again := encodeSnapshot(&got, offset); !reflect.DeepEqual(again, b) {
			t.Fatalf("decoded and encoded again:\n% x\nwant\n% x", again, b)
		}
	})
}

// TestCloseSnapshotsOnlyChanges: Close writes a snapshot only when the
// producer state changed since the last one, so that a shutdown does not
// fsync a file for every partition of plain producers.
func TestCloseSnapshotsOnlyChanges(t *testing.T) {
	dir := t.TempDir()
	p, log := openAt(t, dir, segment.DefaultConfig(), false)
	mustAppend(t, p, recordBatchOf(t, 3))
	p.Close()
	if offsets, _ := snapshotOffsets(dir); len(offsets) != 0 {
		t.Fatalf("plain producers only: snapshots %v", offsets)
	}
	mustAppend(t, p, idempotentBatch(t, 42, 0, 0, 2))
	p.Close()
	offsets, _ := snapshotOffsets(dir)
	if len(offsets) != 1 || offsets[0] != log.LogEndOffset() {
		t.Fatalf("after an idempotent append: snapshots %v, want one at %d", offsets, log.LogEndOffset())
	}
	log.Close()

	p, log = openAt(t, dir, segment.DefaultConfig(), true)
	defer log.Close()
	mustAppend(t, p, recordBatchOf(t, 1))
	p.Close()
	if again, _ := snapshotOffsets(dir); !reflect.DeepEqual(again, offsets) {
		t.Fatalf("nothing changed since the snapshot: snapshots %v, want %v", again, offsets)
	}
}

// recordBatchOf builds a batch of n records without a producer id.
func recordBatchOf(t *testing.T, n int) []byte { return idempotentBatch(t, -1, -1, -1, n) }

// TestRollSnapshotSyncedInBackground: an append that rolls a segment writes
// the producer-state snapshot but does not wait for its fsync, which runs
// in the background, one at a time and newest first; a process that dies
// before the fsync still finds the snapshot; Close waits for the fsyncs
// and, if one failed, writes the snapshot again, durably.
func TestRollSnapshotSyncedInBackground(t *testing.T) {
	dir := t.TempDir()
	p, log := openAt(t, dir, smallSegments(), false)
	defer log.Close()
	var (
		mu     sync.Mutex
		synced []string
	)
	release := make(chan struct{})
	p.snapshots.sync = func(path string) error {
		<-release
		mu.Lock()
		defer mu.Unlock()
		synced = append(synced, filepath.Base(path))
		return nil
	}
	// Appends that roll finish while the first fsync is stalled.
	first := idempotentBatch(t, 42, 0, 0, 3)
	batches := [][]byte{first}
	for i := range 12 {
		batches = append(batches, idempotentBatch(t, 7, 0, int32(i*10), 10))
	}
	appended := make(chan error, 1)
	go func() {
		for _, b := range batches {
			if _, err := p.Append(b, AppendOptions{}); err != nil {
				appended <- err
				return
			}
		}
		appended <- nil
	}()
	select {
	case err := <-appended:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("appends that roll waited for a snapshot's fsync")
	}
	if n := len(log.Segments()); n < 4 {
		t.Fatalf("%d segments, the test needs several rolls", n)
	}
	// Each roll's snapshot is written at once, and none is pruned before
	// a newer one is durable: a machine crash now may tear any of them,
	// so the older ones must stay.
	offsets, err := snapshotOffsets(dir)
	if rolls := len(log.Segments()) - 1; err != nil || len(offsets) != rolls {
		t.Fatalf("snapshots %v (%v), want one per roll (%d), none pruned before a sync", offsets, err, rolls)
	}
	// A process that died now leaves these files: a partition opened
	// over them finds the snapshots and still knows producer 42.
	crashed := filepath.Join(t.TempDir(), "crashed")
	if err := os.CopyFS(crashed, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	reopened, relog := openAt(t, crashed, smallSegments(), false)
	if res, err := reopened.Append(first, AppendOptions{}); err != nil || !res.Duplicate {
		t.Fatalf("retry of the first batch over the unsynced snapshot: %+v %v, want a duplicate", res, err)
	}
	relog.Close()

	close(release)
	p.snapshots.wait()
	// The roll the goroutine started with, then only the newest of the
	// rolls that came while it was stalled.
	newest := snapshotName(offsets[len(offsets)-1])
	if len(synced) == 0 || len(synced) > 2 || synced[len(synced)-1] != newest {
		t.Fatalf("synced %v, want at most two, the last %s", synced, newest)
	}
	// The newest durable, and the durable one before it, if any, as the
	// fallback for when a machine crash cuts the log below the newest:
	// the ones replaced while the sync stalled were never synced, so a
	// crash may have torn them, and are pruned.
	var want []int64
	for _, o := range offsets {
		if slices.Contains(synced, snapshotName(o)) {
			want = append(want, o)
		}
	}
	if got, _ := snapshotOffsets(dir); !reflect.DeepEqual(got, want) {
		t.Fatalf("snapshots after the sync %v, want the synced ones %v of %v", got, synced, offsets)
	}

	// A failed fsync has Close write the snapshot again, durably, even
	// with nothing appended since the roll (the last append rolls). The
	// files are removed first to see that it does.
	p.snapshots.sync = func(string) error { return errors.New("injected") }
	for n, segs := 0, len(log.Segments()); len(log.Segments()) == segs; n++ {
		mustAppend(t, p, idempotentBatch(t, 100, 0, int32(n*10), 10))
	}
	offsets, _ = snapshotOffsets(dir)
	for _, o := range offsets {
		os.Remove(filepath.Join(dir, snapshotName(o)))
	}
	p.Close()
	if offsets, _ := snapshotOffsets(dir); len(offsets) != 1 || offsets[0] != log.LogEndOffset() {
		t.Fatalf("after a failed fsync, Close left snapshots %v, want one at the log end %d", offsets, log.LogEndOffset())
	}
}

// TestReplayCrossesItsReadBound: the replay of the batch headers after the
// snapshot reads at most producerReplayReadBytes at a time (2 GiB, a
// Log.Read's bound, in production), and goes on from the first batch the
// last read cut, to the log end: a producer's batches past the bound are
// not skipped, which would leave its state at an older batch, refusing its
// next sequence and appending a retry of its last batch twice.
func TestReplayCrossesItsReadBound(t *testing.T) {
	for _, readBytes := range []int{1, 200} { // less than a batch; a few batches
		t.Run(fmt.Sprint(readBytes), func(t *testing.T) {
			defer func(old int) { producerReplayReadBytes = old }(producerReplayReadBytes)
			producerReplayReadBytes = readBytes
			dir := t.TempDir()
			p, log := openAt(t, dir, segment.DefaultConfig(), false)
			mustAppend(t, p, idempotentBatch(t, 42, 0, 0, 1))
			for range 20 {
				mustAppend(t, p, recordBatchOf(t, 1))
			}
			last := idempotentBatch(t, 42, 0, 1, 1)
			at := mustAppend(t, p, slices.Clone(last)).FirstOffset
			// Closing the log but not the partition leaves no snapshot:
			// the reopened partition replays every batch header.
			log.Close()
			p, log = openAt(t, dir, segment.DefaultConfig(), true)
			defer log.Close()
			if res, err := p.Append(last, AppendOptions{}); err != nil || !res.Duplicate || res.FirstOffset != at {
				t.Fatalf("retry of the last batch: %+v %v, want a duplicate at %d", res, err, at)
			}
			if _, err := p.Append(idempotentBatch(t, 42, 0, 2, 1), AppendOptions{}); err != nil {
				t.Fatalf("the next sequence: %v", err)
			}
		})
	}
}

// TestReplayOfCorruptHeaderFailsPartition: a batch header the replay
// cannot make sense of stops the partition with a storage error, as
// Kafka's log load fails, rather than leaving the producer state at the
// batches before it.
func TestReplayOfCorruptHeaderFailsPartition(t *testing.T) {
	dir := t.TempDir()
	p, log := openAt(t, dir, segment.DefaultConfig(), false)
	first := idempotentBatch(t, 42, 0, 0, 1)
	mustAppend(t, p, first)
	for range 3 {
		mustAppend(t, p, recordBatchOf(t, 1))
	}
	mustAppend(t, p, idempotentBatch(t, 42, 0, 1, 1))
	log.Close()
	// The magic byte, outside the CRC, of the second batch.
	f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("%020d.log", 0)), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{7}, int64(len(first))+16); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// A clean shutdown: no recovery scan truncates the damage.
	log, err = segment.Open(dir, segment.DefaultConfig(), segment.OpenOptions{CleanShutdown: true})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	p = New(segment.TopicPartition{Topic: "t", Partition: 0}, log, nil, testProducerIDExpiration)
	if err := p.BecomeLeader(1); !errors.Is(err, kerr.KafkaStorageError) || !errors.Is(err, segment.ErrCorruption) {
		t.Fatalf("becoming leader over a corrupt batch header: %v, want KAFKA_STORAGE_ERROR for the corruption", err)
	}
	if _, err := p.Append(idempotentBatch(t, 42, 0, 2, 1), AppendOptions{}); !errors.Is(err, kerr.KafkaStorageError) {
		t.Fatalf("append: %v, want KAFKA_STORAGE_ERROR", err)
	}
	p.Close()
	if offsets, _ := snapshotOffsets(dir); len(offsets) != 0 {
		t.Fatalf("Close of a failed partition wrote snapshots %v", offsets)
	}
}

// TestSnapshotBelowLogStartDropped: a snapshot older than the log start
// misses the batches between it and the start, which DeleteRecords or
// retention removed; its state is dropped and the batches from the log
// start replayed, as Kafka drops the snapshots below the log start, rather
// than holding a producer to a batch that is not its last.
func TestSnapshotBelowLogStartDropped(t *testing.T) {
	dir := t.TempDir()
	p, log := openAt(t, dir, smallSegments(), false)
	mustAppend(t, p, idempotentBatch(t, 42, 0, 0, 1))
	for segs := len(log.Segments()); len(log.Segments()) == segs; {
		mustAppend(t, p, recordBatchOf(t, 1)) // until a roll's snapshot holds seq 0
	}
	mustAppend(t, p, idempotentBatch(t, 42, 0, 1, 1))
	mustAppend(t, p, recordBatchOf(t, 1))
	p.snapshots.wait()
	start := log.LogEndOffset()
	if offsets, _ := snapshotOffsets(dir); len(offsets) != 1 || offsets[0] >= start-1 {
		t.Fatalf("snapshots %v, the test wants one below producer 42's seq 1", offsets)
	}
	log.Close()
	log, err := segment.Open(dir, smallSegments(), segment.OpenOptions{CleanShutdown: true, LogStartOffset: start})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	p = New(segment.TopicPartition{Topic: "t", Partition: 0}, log, nil, testProducerIDExpiration)
	if err := p.BecomeLeader(1); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Append(idempotentBatch(t, 42, 0, 2, 1), AppendOptions{}); err != nil {
		t.Fatalf("producer 42's next sequence, its last batch below the log start: %v", err)
	}
}

// TestPruneKeepsDurableFallback: while a roll's fsync stalls, the
// snapshots of later rolls replace one another in the queue and are never
// synced; once the newest is durable, the fallback kept before it is the
// durable one the stalled fsync was for, not the never-synced one just
// before the newest, which a machine crash may have torn.
func TestPruneKeepsDurableFallback(t *testing.T) {
	dir := t.TempDir()
	p, log := openAt(t, dir, smallSegments(), false)
	defer log.Close()
	syncing := make(chan string, 1)
	release := make(chan struct{})
	p.snapshots.sync = func(path string) error {
		select {
		case syncing <- filepath.Base(path):
		default:
		}
		<-release
		return nil
	}
	rollOnce := func(pid int64) {
		for n, segs := 0, len(log.Segments()); len(log.Segments()) == segs; n++ {
			mustAppend(t, p, idempotentBatch(t, pid, 0, int32(n*10), 10))
		}
	}
	rollOnce(1)
	var first string
	select {
	case first = <-syncing:
	case <-time.After(20 * time.Second):
		t.Fatal("the first roll's snapshot was not synced")
	}
	for pid := int64(2); pid < 5; pid++ { // queued while the sync stalls
		rollOnce(pid)
	}
	close(release)
	p.snapshots.wait()
	offsets, _ := snapshotOffsets(dir)
	end := log.LogEndOffset()
	if len(offsets) != 2 || snapshotName(offsets[0]) != first || offsets[1] != end {
		t.Fatalf("snapshots %v, want the durable %s and the newest at %d", offsets, first, end)
	}
}

// TestExpiredProducerNotLoaded: a producer of the snapshot idle for
// producer.id.expiration.ms or longer is not loaded, as Kafka's
// loadFromSnapshot skips those isProducerExpired: it was as good as
// forgotten, and may start again at any sequence.
func TestExpiredProducerNotLoaded(t *testing.T) {
	dir := t.TempDir()
	open := func(nowMs int64) (*Partition, *segment.Log) {
		t.Helper()
		log, err := segment.Open(dir, segment.DefaultConfig(), segment.OpenOptions{CleanShutdown: true})
		if err != nil {
			t.Fatal(err)
		}
		p := New(segment.TopicPartition{Topic: "t", Partition: 0}, log, func() time.Time { return time.UnixMilli(nowMs) }, testProducerIDExpiration)
		if err := p.BecomeLeader(1); err != nil {
			t.Fatal(err)
		}
		return p, log
	}
	const wroteMs = 1_000_000
	p, log := open(wroteMs)
	mustAppend(t, p, idempotentBatch(t, 42, 0, 0, 1))
	p.Close() // the snapshot holds producer 42, last written at wroteMs
	log.Close()

	p, log = open(wroteMs + testProducerIDExpiration.Milliseconds() - 1)
	if _, err := p.Append(idempotentBatch(t, 42, 0, 77, 1), AppendOptions{}); !errors.Is(err, kerr.OutOfOrderSequenceNumber) {
		t.Fatalf("a gap from a producer not yet expired: %v, want OUT_OF_ORDER_SEQUENCE_NUMBER", err)
	}
	p.Close()
	log.Close()

	p, log = open(wroteMs + testProducerIDExpiration.Milliseconds())
	defer log.Close()
	if _, err := p.Append(idempotentBatch(t, 42, 0, 77, 1), AppendOptions{}); err != nil {
		t.Fatalf("producer idle for producer.id.expiration.ms, loaded from a snapshot: %v, want it forgotten", err)
	}
}
