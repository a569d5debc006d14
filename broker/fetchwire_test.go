package broker

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/batch"
	"gregor/internal/testseed"
	"gregor/netio"
	"gregor/segment"
)

// The Fetch encoder is checked three ways for every version it speaks: kmsg
// decodes the frame into exactly the fields encoded, kmsg's own encoder
// produces the same body byte for byte, and the parts have the shape netio
// relies on (byte parts are slices of the returned buffer, at most one between
// file regions). The record bytes come from real segment files, read back
// with ReadAt, as sendfile(2) would send them.

const (
	fwMinVersion = 4
	fwMaxVersion = 13
)

// fwLog is a segment log filled with valid record batches, and the regions
// that cover each of its segment files whole.
type fwLog struct {
	log   *segment.Log
	whole []segment.Region // one per segment file, from Read of the whole log
	held  []segment.Region // every region read, released at cleanup
}

// newFWLog opens a log in a test directory with segments of segmentBytes
// and appends n batches of records whose values are about valueSize bytes;
// every region it hands out is released, and the log closed, at cleanup.
func newFWLog(tb testing.TB, segmentBytes int64, n, valueSize int) *fwLog {
	tb.Helper()
	l, err := segment.Open(tb.TempDir(), segment.Config{
		SegmentBytes:       segmentBytes,
		SegmentIndexBytes:  1 << 16,
		IndexIntervalBytes: 256,
		RetentionMs:        -1,
		RetentionBytes:     -1,
	}, segment.OpenOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	fl := &fwLog{log: l}
	tb.Cleanup(func() {
		segment.ReleaseAll(fl.held)
		if err := l.Close(); err != nil {
			tb.Error(err)
		}
	})
	b := batch.NewBuilder(batch.DefaultBuilderOptions())
	val := make([]byte, valueSize+32)
	var out []byte
	for i := range n {
		b.Reset(batch.DefaultBuilderOptions())
		for j := range 3 {
			for k := range val {
				val[k] = byte('a' + (i+j+k)%26)
			}
			b.Add(1700000000000+int64(i*3+j), fmt.Appendf(nil, "key-%d-%d", i, j), val[:valueSize+(i*7+j)%32], nil)
		}
		if out, err = b.AppendBatch(out[:0]); err != nil {
			tb.Fatal(err)
		}
		if _, err := l.Append(out, 1); err != nil {
			tb.Fatal(err)
		}
	}
	fl.whole = fl.read(tb, 0, 1<<30)
	for _, r := range fl.whole {
		if r.Position != 0 {
			tb.Fatalf("a whole-log read starts a region at %d, want 0", r.Position)
		}
	}
	return fl
}

// read returns the regions Log.Read gives for offset and maxBytes, released
// at cleanup.
func (fl *fwLog) read(tb testing.TB, offset int64, maxBytes int) []segment.Region {
	tb.Helper()
	rs, err := fl.log.Read(nil, offset, maxBytes, fl.log.LogEndOffset())
	if err != nil {
		tb.Fatal(err)
	}
	fl.held = append(fl.held, rs...)
	return rs
}

// fwRegionBytes reads the bytes of rs, in order, as sendfile would send them.
// It never returns nil: an empty records field is empty, not null.
func fwRegionBytes(tb testing.TB, rs []segment.Region) []byte {
	tb.Helper()
	out := []byte{}
	for _, r := range rs {
		out = fwReadAt(tb, out, r.File.OS(), r.Position, r.Length)
	}
	return out
}

// fwReadAt appends the length bytes of f at off to dst.
func fwReadAt(tb testing.TB, dst []byte, f *os.File, off, length int64) []byte {
	tb.Helper()
	start := len(dst)
	dst = append(dst, make([]byte, length)...)
	if n, err := f.ReadAt(dst[start:], off); err != nil || int64(n) != length {
		tb.Fatalf("ReadAt(%s, %d, %d): %d bytes, %v", f.Name(), off, length, n, err)
	}
	return dst
}

// fwMaterialize returns the bytes the parts put on the wire.
func fwMaterialize(tb testing.TB, parts []netio.Part) []byte {
	tb.Helper()
	var out []byte
	for _, p := range parts {
		if p.File == nil {
			out = append(out, p.Bytes...)
			continue
		}
		out = fwReadAt(tb, out, p.File, p.Offset, p.Length)
	}
	return out
}

// fwCheckParts checks the shape of the parts an encode returned: the byte parts
// are consecutive, capped slices of buf that cover it exactly (so they point
// into the buffer after all of its growth), no two byte parts or two
// mergeable file parts are adjacent, and no part is empty.
func fwCheckParts(t *testing.T, buf []byte, parts []netio.Part) {
	t.Helper()
	pos := 0
	for i, p := range parts {
		if p.File == nil {
			switch {
			case len(p.Bytes) == 0:
				t.Errorf("part %d: empty bytes", i)
			case pos+len(p.Bytes) > len(buf) || &p.Bytes[0] != &buf[pos]:
				t.Errorf("part %d: bytes are not buf[%d:%d]", i, pos, pos+len(p.Bytes))
			case cap(p.Bytes) != len(p.Bytes):
				t.Errorf("part %d: cap %d, len %d: an append to it would overwrite what follows", i, cap(p.Bytes), len(p.Bytes))
			}
			if p.Offset != 0 || p.Length != 0 {
				t.Errorf("part %d: bytes part with offset %d, length %d", i, p.Offset, p.Length)
			}
			if i > 0 && parts[i-1].File == nil {
				t.Errorf("parts %d and %d: adjacent byte parts", i-1, i)
			}
			pos += len(p.Bytes)
			continue
		}
		if p.Bytes != nil || p.Length <= 0 || p.Offset < 0 {
			t.Errorf("part %d: file part with %d bytes, offset %d, length %d", i, len(p.Bytes), p.Offset, p.Length)
		}
		if i > 0 {
			if q := parts[i-1]; q.File == p.File && q.Offset+q.Length == p.Offset {
				t.Errorf("parts %d and %d: contiguous regions of one file not merged", i-1, i)
			}
		}
	}
	if pos != len(buf) {
		t.Errorf("byte parts cover %d bytes of a %d-byte buffer", pos, len(buf))
	}
}

// fwDecodeFrame checks the size prefix and the response header of frame and
// returns the body.
func fwDecodeFrame(t *testing.T, version int16, correlationID int32, frame []byte) []byte {
	t.Helper()
	if len(frame) < 4 {
		t.Fatalf("frame of %d bytes", len(frame))
	}
	if size := int64(int32(binary.BigEndian.Uint32(frame))); size != int64(len(frame)-4) {
		t.Fatalf("size prefix %d, %d bytes follow", size, len(frame)-4)
	}
	rd := kbin.Reader{Src: frame[4:]}
	if got := rd.Int32(); got != correlationID {
		t.Errorf("correlation id %d, want %d", got, correlationID)
	}
	if version >= 12 {
		kmsg.SkipTags(&rd)
	}
	if !rd.Ok() {
		t.Fatal("truncated response header")
	}
	return rd.Src
}

// fwKmsgResponse is r as kmsg's FetchResponse, with records the bytes of
// each partition's regions, by topic then partition.
func fwKmsgResponse(version int16, r *fetchResponse, records [][][]byte) *kmsg.FetchResponse {
	k := kmsg.NewPtrFetchResponse()
	k.SetVersion(version)
	k.ThrottleMillis = r.ThrottleMillis
	k.ErrorCode = r.ErrorCode
	k.SessionID = r.SessionID
	k.Topics = []kmsg.FetchResponseTopic{}
	for ti, t := range r.Topics {
		kt := kmsg.NewFetchResponseTopic()
		kt.Topic, kt.TopicID = t.Name, t.ID
		kt.Partitions = []kmsg.FetchResponseTopicPartition{}
		for pi, p := range t.Partitions {
			kp := kmsg.NewFetchResponseTopicPartition()
			kp.Partition = p.Partition
			kp.ErrorCode = p.ErrorCode
			kp.HighWatermark = p.HighWatermark
			kp.LastStableOffset = p.LastStableOffset
			kp.LogStartOffset = p.LogStartOffset
			if e := p.DivergingEpoch; e != nil {
				kp.DivergingEpoch.Epoch, kp.DivergingEpoch.EndOffset = e.Epoch, e.EndOffset
			}
			if l := p.CurrentLeader; l != nil {
				kp.CurrentLeader.LeaderID, kp.CurrentLeader.LeaderEpoch = l.LeaderID, l.LeaderEpoch
			}
			if p.AbortedTransactions != nil {
				kp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
				for _, a := range p.AbortedTransactions {
					ka := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
					ka.ProducerID, ka.FirstOffset = a.ProducerID, a.FirstOffset
					kp.AbortedTransactions = append(kp.AbortedTransactions, ka)
				}
			}
			kp.PreferredReadReplica = p.PreferredReadReplica
			kp.RecordBatches = records[ti][pi]
			kt.Partitions = append(kt.Partitions, kp)
		}
		k.Topics = append(k.Topics, kt)
	}
	return k
}

// fwCompareDecoded checks every field kmsg decoded against what was encoded,
// with the defaults kmsg gives the fields version does not carry.
func fwCompareDecoded(t *testing.T, version int16, want *fetchResponse, records [][][]byte, got *kmsg.FetchResponse) {
	t.Helper()
	// The paths in the messages locate a failure; t.Helper here would cost
	// more than the rest of the random test. A misaligned decode yields
	// differences by the thousand, so the first few are enough.
	errs := 0
	errorf := func(path, format string, args ...any) {
		t.Errorf("v%d %s: %s", version, path, fmt.Sprintf(format, args...))
		if errs++; errs == 20 {
			t.Fatal("too many differences")
		}
	}
	eq := func(path string, got, want any) {
		if got != want {
			errorf(path, "got %v, want %v", got, want)
		}
	}
	ifVersion := func(min int16, v, def int64) int64 {
		if version >= min {
			return v
		}
		return def
	}
	eq("ThrottleMillis", got.ThrottleMillis, want.ThrottleMillis)
	eq("ErrorCode", int64(got.ErrorCode), ifVersion(7, int64(want.ErrorCode), 0))
	eq("SessionID", int64(got.SessionID), ifVersion(7, int64(want.SessionID), 0))
	eq("len(Brokers)", len(got.Brokers), 0)
	eq("UnknownTags", got.UnknownTags.Len(), 0)
	if len(got.Topics) != len(want.Topics) {
		errorf("Topics", "%d topics, want %d", len(got.Topics), len(want.Topics))
		return
	}
	for ti, wt := range want.Topics {
		gt := got.Topics[ti]
		path := fmt.Sprintf("Topics[%d]", ti)
		if version >= 13 {
			eq(path+".Topic", gt.Topic, "")
			eq(path+".TopicID", gt.TopicID, wt.ID)
		} else {
			eq(path+".Topic", gt.Topic, wt.Name)
			eq(path+".TopicID", gt.TopicID, [16]byte{})
		}
		eq(path+".UnknownTags", gt.UnknownTags.Len(), 0)
		if len(gt.Partitions) != len(wt.Partitions) {
			errorf(path, "%d partitions, want %d", len(gt.Partitions), len(wt.Partitions))
			continue
		}
		for pi, wp := range wt.Partitions {
			gp := gt.Partitions[pi]
			path := fmt.Sprintf("%s.Partitions[%d]", path, pi)
			eq(path+".Partition", gp.Partition, wp.Partition)
			eq(path+".ErrorCode", gp.ErrorCode, wp.ErrorCode)
			eq(path+".HighWatermark", gp.HighWatermark, wp.HighWatermark)
			eq(path+".LastStableOffset", gp.LastStableOffset, wp.LastStableOffset)
			eq(path+".LogStartOffset", gp.LogStartOffset, ifVersion(5, wp.LogStartOffset, -1))
			eq(path+".PreferredReadReplica", int64(gp.PreferredReadReplica), ifVersion(11, int64(wp.PreferredReadReplica), -1))
			wantEpoch := kmsg.FetchResponseTopicPartitionDivergingEpoch{Epoch: -1, EndOffset: -1}
			if e := wp.DivergingEpoch; e != nil && version >= 12 {
				wantEpoch.Epoch, wantEpoch.EndOffset = e.Epoch, e.EndOffset
			}
			eq(path+".DivergingEpoch.Epoch", gp.DivergingEpoch.Epoch, wantEpoch.Epoch)
			eq(path+".DivergingEpoch.EndOffset", gp.DivergingEpoch.EndOffset, wantEpoch.EndOffset)
			eq(path+".DivergingEpoch.UnknownTags", gp.DivergingEpoch.UnknownTags.Len(), 0)
			wantLeader := kmsg.FetchResponseTopicPartitionCurrentLeader{LeaderID: -1, LeaderEpoch: -1}
			if l := wp.CurrentLeader; l != nil && version >= 12 {
				wantLeader.LeaderID, wantLeader.LeaderEpoch = l.LeaderID, l.LeaderEpoch
			}
			eq(path+".CurrentLeader.LeaderID", gp.CurrentLeader.LeaderID, wantLeader.LeaderID)
			eq(path+".CurrentLeader.LeaderEpoch", gp.CurrentLeader.LeaderEpoch, wantLeader.LeaderEpoch)
			eq(path+".CurrentLeader.UnknownTags", gp.CurrentLeader.UnknownTags.Len(), 0)
			eq(path+".SnapshotID.EndOffset", gp.SnapshotID.EndOffset, int64(-1))
			eq(path+".SnapshotID.Epoch", gp.SnapshotID.Epoch, int32(-1))
			eq(path+".UnknownTags", gp.UnknownTags.Len(), 0)
			eq(path+".AbortedTransactions == nil", gp.AbortedTransactions == nil, wp.AbortedTransactions == nil)
			if len(gp.AbortedTransactions) != len(wp.AbortedTransactions) {
				errorf(path+".AbortedTransactions", "%d entries, want %d", len(gp.AbortedTransactions), len(wp.AbortedTransactions))
			} else {
				for ai, wa := range wp.AbortedTransactions {
					ga := gp.AbortedTransactions[ai]
					apath := fmt.Sprintf("%s.AbortedTransactions[%d]", path, ai)
					eq(apath+".ProducerID", ga.ProducerID, wa.ProducerID)
					eq(apath+".FirstOffset", ga.FirstOffset, wa.FirstOffset)
					eq(apath+".UnknownTags", ga.UnknownTags.Len(), 0)
				}
			}
			if gp.RecordBatches == nil {
				errorf(path+".RecordBatches", "null, want %d bytes", len(records[ti][pi]))
			} else if !bytes.Equal(gp.RecordBatches, records[ti][pi]) {
				errorf(path+".RecordBatches", "%d bytes differ from the %d bytes of the regions", len(gp.RecordBatches), len(records[ti][pi]))
			}
		}
	}
}

// fwRecords returns the bytes of each partition's regions, by topic then
// partition.
func fwRecords(tb testing.TB, r *fetchResponse) [][][]byte {
	tb.Helper()
	records := make([][][]byte, len(r.Topics))
	for ti, tp := range r.Topics {
		records[ti] = make([][]byte, len(tp.Partitions))
		for pi, p := range tp.Partitions {
			records[ti][pi] = fwRegionBytes(tb, p.Records)
		}
	}
	return records
}

// fwCheck encodes r at version and runs every check on the result;
// records are r's, from fwRecords. It returns the parts, for checks of
// their count.
func fwCheck(t *testing.T, version int16, r *fetchResponse, records [][][]byte) []netio.Part {
	t.Helper()
	const correlationID = 0x5eed1234

	// Scratch that is too small and holds stale bytes, as a pooled buffer
	// would: the encoder must grow it and start from its beginning.
	buf := bytes.Repeat([]byte{0xee}, 7)
	buf, parts := appendFetchResponse(buf, nil, version, correlationID, r)
	fwCheckParts(t, buf, parts)
	frame := fwMaterialize(t, parts)
	body := fwDecodeFrame(t, version, correlationID, frame)

	want := fwKmsgResponse(version, r, records).AppendTo(nil)
	if !bytes.Equal(body, want) {
		at := 0
		for at < min(len(body), len(want)) && body[at] == want[at] {
			at++
		}
		t.Fatalf("v%d: body differs from kmsg's encoding at byte %d (%d bytes, kmsg %d)\n got: % x\nwant: % x",
			version, at, len(body), len(want), body[max(at-8, 0):min(at+16, len(body))], want[max(at-8, 0):min(at+16, len(want))])
	}

	// Decoded only once the bytes are right: kmsg takes seconds over a
	// misaligned body, whose lengths are garbage.
	got := kmsg.NewPtrFetchResponse()
	got.SetVersion(version)
	if err := got.ReadFrom(body); err != nil {
		t.Fatalf("v%d: kmsg cannot decode the body: %v", version, err)
	}
	fwCompareDecoded(t, version, r, records, got)
	return parts
}

// fwShapes are the hand-written responses of TestFetchWireVersions.
func fwShapes(t *testing.T) []struct {
	name  string
	r     *fetchResponse
	check func(t *testing.T, version int16, parts []netio.Part)
} {
	a := newFWLog(t, 4096, 40, 200)
	b := newFWLog(t, 4096, 20, 100)
	if len(a.whole) < 3 {
		t.Fatalf("log a has %d segments, want several", len(a.whole))
	}
	// A read that starts in the first segment and ends in the second: two
	// regions of two files.
	seg0 := a.whole[0].Length
	twoFiles := a.read(t, 0, int(seg0)+1000)
	if len(twoFiles) != 2 || twoFiles[0].File == twoFiles[1].File {
		t.Fatalf("read across a segment boundary gave %d regions, want 2 of 2 files", len(twoFiles))
	}
	// One segment cut into adjacent pieces, an empty one between them: they
	// go out as one file part.
	w := a.whole[1]
	split := []segment.Region{
		{File: w.File, Position: 0, Length: 100},
		{File: w.File, Position: 100, Length: 0},
		{File: w.File, Position: 100, Length: w.Length - 100},
	}
	id := [16]byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	countFileParts := func(parts []netio.Part) (n int) {
		for _, p := range parts {
			if p.File != nil {
				n++
			}
		}
		return n
	}

	return []struct {
		name  string
		r     *fetchResponse
		check func(t *testing.T, version int16, parts []netio.Part)
	}{
		{name: "no topics", r: &fetchResponse{ThrottleMillis: 17, SessionID: 99},
			check: func(t *testing.T, _ int16, parts []netio.Part) {
				if len(parts) != 1 {
					t.Errorf("%d parts, want 1 byte part", len(parts))
				}
			}},
		{name: "top-level error", r: &fetchResponse{ErrorCode: 70, SessionID: 0}}, // FETCH_SESSION_ID_NOT_FOUND
		{name: "several topics and partitions", r: &fetchResponse{
			ThrottleMillis: 3,
			SessionID:      12345,
			Topics: []fetchTopic{
				{Name: "orders", ID: id, Partitions: []fetchPartition{
					{Partition: 0, HighWatermark: a.log.LogEndOffset(), LastStableOffset: a.log.LogEndOffset(), LogStartOffset: 0, PreferredReadReplica: -1, Records: a.whole},
					{Partition: 1, HighWatermark: b.log.LogEndOffset(), LastStableOffset: 30, LogStartOffset: 0, PreferredReadReplica: 2, Records: b.read(t, 9, 3000)},
					{Partition: 2, ErrorCode: 6, HighWatermark: -1, LastStableOffset: -1, LogStartOffset: -1, PreferredReadReplica: -1}, // NOT_LEADER_OR_FOLLOWER
				}},
				{Name: "payments", ID: [16]byte{1}, Partitions: []fetchPartition{
					{Partition: 7, HighWatermark: 1 << 40, LastStableOffset: 1<<40 - 5, LogStartOffset: 1 << 20, PreferredReadReplica: -1,
						AbortedTransactions: []fetchAborted{{ProducerID: 1000, FirstOffset: 3}, {ProducerID: 1001, FirstOffset: 1 << 35}},
						Records:             b.read(t, 0, 100)},
					{Partition: 8, HighWatermark: 10, LastStableOffset: 10, LogStartOffset: 0, PreferredReadReplica: -1,
						AbortedTransactions: []fetchAborted{}, Records: []segment.Region{}},
				}},
				{Name: "empty-topic", ID: [16]byte{2}, Partitions: []fetchPartition{}},
			},
		}},
		{name: "error without records", r: &fetchResponse{Topics: []fetchTopic{{Name: "t", ID: id, Partitions: []fetchPartition{
			{Partition: 0, ErrorCode: 1, HighWatermark: -1, LastStableOffset: -1, LogStartOffset: -1, PreferredReadReplica: -1}, // OFFSET_OUT_OF_RANGE
		}}}},
			check: func(t *testing.T, _ int16, parts []netio.Part) {
				if len(parts) != 1 || parts[0].File != nil {
					t.Errorf("%d parts, want 1 byte part", len(parts))
				}
			}},
		{name: "regions of two files", r: &fetchResponse{Topics: []fetchTopic{{Name: "t", ID: id, Partitions: []fetchPartition{
			{Partition: 4, HighWatermark: 100, LastStableOffset: 100, PreferredReadReplica: -1, Records: twoFiles},
		}}}},
			check: func(t *testing.T, _ int16, parts []netio.Part) {
				// Bytes, then both files (then the tag buffers in v12+).
				if n := countFileParts(parts); n != 2 {
					t.Errorf("%d file parts, want 2", n)
				}
			}},
		{name: "adjacent regions merge", r: &fetchResponse{Topics: []fetchTopic{{Name: "t", ID: id, Partitions: []fetchPartition{
			{Partition: 0, HighWatermark: 100, LastStableOffset: 100, PreferredReadReplica: -1, Records: split},
			{Partition: 1, HighWatermark: 100, LastStableOffset: 100, PreferredReadReplica: -1, Records: split[:1]},
		}}}},
			check: func(t *testing.T, _ int16, parts []netio.Part) {
				// Two partitions: bytes, file, bytes, file, bytes.
				if n := countFileParts(parts); n != 2 {
					t.Errorf("%d file parts, want 2 (adjacent regions of one file merged)", n)
				}
			}},
		{name: "aborted transactions nil and not", r: &fetchResponse{Topics: []fetchTopic{{Name: "tx", ID: id, Partitions: []fetchPartition{
			{Partition: 0, HighWatermark: 50, LastStableOffset: 40, PreferredReadReplica: -1, AbortedTransactions: nil, Records: b.read(t, 0, 1)},
			{Partition: 1, HighWatermark: 50, LastStableOffset: 40, PreferredReadReplica: -1, AbortedTransactions: []fetchAborted{}},
			{Partition: 2, HighWatermark: 50, LastStableOffset: 40, PreferredReadReplica: -1, AbortedTransactions: []fetchAborted{{ProducerID: -5, FirstOffset: 0}}},
		}}}}},
		{name: "diverging epoch and current leader", r: &fetchResponse{SessionID: 1, Topics: []fetchTopic{{Name: "r", ID: id, Partitions: []fetchPartition{
			{Partition: 0, ErrorCode: 0, HighWatermark: 90, LastStableOffset: 90, PreferredReadReplica: -1,
				DivergingEpoch: &fetchEpochEnd{Epoch: 4, EndOffset: 77}},
			{Partition: 1, ErrorCode: 6, HighWatermark: -1, LastStableOffset: -1, LogStartOffset: -1, PreferredReadReplica: -1,
				CurrentLeader: &fetchLeader{LeaderID: 3, LeaderEpoch: 9}},
			{Partition: 2, HighWatermark: 90, LastStableOffset: 90, PreferredReadReplica: -1,
				DivergingEpoch: &fetchEpochEnd{Epoch: 2, EndOffset: 1 << 33},
				CurrentLeader:  &fetchLeader{LeaderID: 0, LeaderEpoch: 0},
				Records:        a.read(t, 6, 500)},
		}}}}},
		{name: "empty name with topic id", r: &fetchResponse{Topics: []fetchTopic{
			{Name: "", ID: id, Partitions: []fetchPartition{{Partition: 0, HighWatermark: 5, LastStableOffset: 5, PreferredReadReplica: -1, Records: b.read(t, 3, 10)}}},
			{Name: strings.Repeat("long-topic-name-", 12), ID: [16]byte{15: 1}, Partitions: []fetchPartition{{Partition: 1, HighWatermark: 5, LastStableOffset: 5, PreferredReadReplica: -1}}},
		}}},
	}
}

func TestFetchWireVersions(t *testing.T) {
	for _, s := range fwShapes(t) {
		records := fwRecords(t, s.r)
		for v := int16(fwMinVersion); v <= fwMaxVersion; v++ {
			t.Run(fmt.Sprintf("%s/v%d", s.name, v), func(t *testing.T) {
				parts := fwCheck(t, v, s.r, records)
				if s.check != nil {
					s.check(t, v, parts)
				}
			})
		}
	}
}

// TestFetchWireKeepsParts checks that parts already in the slice are kept and
// that a reused buf is encoded from its start, leaving the byte parts of the
// second encode pointing into the buffer it returned.
func TestFetchWireKeepsParts(t *testing.T) {
	fl := newFWLog(t, 4096, 10, 50)
	r := &fetchResponse{Topics: []fetchTopic{{Name: "t", Partitions: []fetchPartition{
		{Partition: 0, HighWatermark: 10, LastStableOffset: 10, PreferredReadReplica: -1, Records: fl.whole},
	}}}}
	prefix := netio.Part{Bytes: []byte("caller's")}
	buf, parts := appendFetchResponse(nil, []netio.Part{prefix}, 13, 1, r)
	if len(parts) < 2 || string(parts[0].Bytes) != "caller's" {
		t.Fatalf("the caller's part was not kept: %d parts", len(parts))
	}
	fwCheckParts(t, buf, parts[1:])
	first := fwMaterialize(t, parts[1:])

	buf, parts = appendFetchResponse(buf, parts[:0], 13, 1, r)
	fwCheckParts(t, buf, parts)
	if again := fwMaterialize(t, parts); !bytes.Equal(again, first) {
		t.Fatal("a second encode into the same buffer differs from the first")
	}
}

func TestFetchWireUnsupportedVersionPanics(t *testing.T) {
	for _, v := range []int16{-1, 0, 3, 14} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("v%d: no panic", v)
				}
			}()
			appendFetchResponse(nil, nil, v, 0, &fetchResponse{})
		}()
	}
}

// TestFetchWireRandom cross-checks random responses against kmsg. Tagged
// fields are never set to their defaults (-1, -1): kmsg, like Kafka, leaves a
// tagged field at its default out, while appendFetchResponse writes every
// field its caller sets; the two decode the same, but the bytes would differ.
func TestFetchWireRandom(t *testing.T) {
	seed := testseed.Seed(t)
	rng := rand.New(rand.NewPCG(seed, seed^0x6a09e667f3bcc909))
	logs := []*fwLog{newFWLog(t, 4096, 30, 150), newFWLog(t, 8192, 30, 400)}
	var whole []segment.Region
	for _, l := range logs {
		whole = append(whole, l.whole...)
	}

	int64s := []int64{-1, 0, 1, 127, 128, 1 << 31, 1<<62 + 3}
	randInt64 := func() int64 {
		if rng.IntN(2) == 0 {
			return int64s[rng.IntN(len(int64s))]
		}
		return rng.Int64()
	}
	// count is mostly small, sometimes past 127, where compact lengths take
	// two bytes; big is how many more big counts the case may have, so that
	// big arrays do not nest.
	var big int
	count := func(small int) int {
		if big > 0 && rng.IntN(20) == 0 {
			big--
			return 120 + rng.IntN(20)
		}
		return rng.IntN(small + 1)
	}
	randRegions := func() []segment.Region {
		if rng.IntN(4) == 0 {
			return nil
		}
		var rs []segment.Region
		for range rng.IntN(4) {
			w := whole[rng.IntN(len(whole))]
			pos := rng.Int64N(w.Length)
			n := rng.Int64N(w.Length - pos + 1)
			if rng.IntN(3) == 0 && n > 1 { // two adjacent pieces
				cut := rng.Int64N(n)
				rs = append(rs, segment.Region{File: w.File, Position: pos, Length: cut},
					segment.Region{File: w.File, Position: pos + cut, Length: n - cut})
				continue
			}
			rs = append(rs, segment.Region{File: w.File, Position: pos, Length: n})
		}
		return rs
	}
	randResponse := func() *fetchResponse {
		big = 1
		r := &fetchResponse{ThrottleMillis: rng.Int32(), ErrorCode: int16(rng.IntN(120)), SessionID: rng.Int32()}
		if rng.IntN(2) == 0 {
			r.ThrottleMillis, r.ErrorCode = 0, 0
		}
		for range count(4) {
			var tp fetchTopic
			nameLen := rng.IntN(20)
			if rng.IntN(10) == 0 {
				nameLen = 100 + rng.IntN(200)
			}
			tp.Name = strings.Repeat("x", nameLen)
			for i := range tp.ID {
				tp.ID[i] = byte(rng.Uint32())
			}
			tp.Partitions = []fetchPartition{}
			for range count(5) {
				p := fetchPartition{
					Partition:            rng.Int32N(1000),
					ErrorCode:            int16(rng.IntN(3)),
					HighWatermark:        randInt64(),
					LastStableOffset:     randInt64(),
					LogStartOffset:       randInt64(),
					PreferredReadReplica: rng.Int32N(5) - 1,
					Records:              randRegions(),
				}
				if rng.IntN(3) == 0 {
					p.DivergingEpoch = &fetchEpochEnd{Epoch: rng.Int32N(100), EndOffset: rng.Int64N(1 << 40)}
				}
				if rng.IntN(3) == 0 {
					p.CurrentLeader = &fetchLeader{LeaderID: rng.Int32N(10), LeaderEpoch: rng.Int32N(100)}
				}
				if rng.IntN(2) == 0 {
					p.AbortedTransactions = []fetchAborted{}
					for range count(3) {
						p.AbortedTransactions = append(p.AbortedTransactions, fetchAborted{ProducerID: randInt64(), FirstOffset: randInt64()})
					}
				}
				tp.Partitions = append(tp.Partitions, p)
			}
			r.Topics = append(r.Topics, tp)
		}
		return r
	}

	for i := range 200 {
		r := randResponse()
		records := fwRecords(t, r)
		for v := int16(fwMinVersion); v <= fwMaxVersion; v++ {
			fwCheck(t, v, r, records)
			if t.Failed() {
				t.Fatalf("case %d, v%d failed (seed %d)", i, v, seed)
			}
		}
	}
}

// TestFetchWireAlloc proves the encoder allocates nothing once buf and parts
// are large enough, as they are when pooled. (Its name matches the Makefile's
// allocation run without the race detector, too.)
func TestFetchWireAlloc(t *testing.T) {
	fl := newFWLog(t, 4096, 40, 200)
	r := fwBenchResponse(t, fl, 3, 8)
	for _, v := range []int16{4, 11, 12, 13} {
		buf := make([]byte, 0, 1<<16)
		parts := make([]netio.Part, 0, 256)
		var n int
		allocs := testing.AllocsPerRun(200, func() {
			buf, parts = appendFetchResponse(buf[:0], parts[:0], v, 7, r)
			n = len(parts)
		})
		if allocs != 0 {
			t.Errorf("v%d: %v allocations per encode (%d parts), want 0", v, allocs, n)
		}
	}
}

// fwBenchResponse is a response of topics × partitions, each partition's
// records a read of up to 16 KiB at a different offset of fl (one or two
// regions), with every v12+ field set.
func fwBenchResponse(tb testing.TB, fl *fwLog, topics, partitions int) *fetchResponse {
	r := &fetchResponse{SessionID: 42}
	end := fl.log.LogEndOffset()
	for ti := range topics {
		tp := fetchTopic{Name: fmt.Sprintf("bench-topic-%d", ti), ID: [16]byte{byte(ti), 1}}
		for pi := range partitions {
			off := int64(ti*partitions+pi) * 7 % end
			rs := fl.read(tb, off, 16<<10)
			tp.Partitions = append(tp.Partitions, fetchPartition{
				Partition: int32(pi), HighWatermark: end, LastStableOffset: end, LogStartOffset: 0,
				PreferredReadReplica: -1, Records: rs,
				CurrentLeader: &fetchLeader{LeaderID: 1, LeaderEpoch: 5},
			})
		}
		r.Topics = append(r.Topics, tp)
	}
	return r
}

// BenchmarkAppendFetchResponse measures the header encode of a 24-partition
// v13 response (impl=parts) against what a broker without file parts would do:
// kmsg's AppendTo with the records already in memory (impl=kmsg), which copies
// them. SetBytes is the size of the encoded header bytes in both, so MB/s
// compares directly.
func BenchmarkAppendFetchResponse(b *testing.B) {
	const version = 13
	fl := newFWLog(b, 256<<10, 300, 1000)
	r := fwBenchResponse(b, fl, 3, 8)
	buf, parts := appendFetchResponse(nil, nil, version, 1, r)
	var header, records int
	for _, p := range parts {
		header += len(p.Bytes)
		records += int(p.Length)
	}
	b.Logf("%d parts: %d header bytes, %d record bytes", len(parts), header, records)

	b.Run("impl=parts", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(header))
		for b.Loop() {
			buf, parts = appendFetchResponse(buf[:0], parts[:0], version, 1, r)
		}
	})
	b.Run("impl=kmsg", func(b *testing.B) {
		recs := make([][][]byte, len(r.Topics))
		for ti, tp := range r.Topics {
			recs[ti] = make([][]byte, len(tp.Partitions))
			for pi, p := range tp.Partitions {
				recs[ti][pi] = fwRegionBytes(b, p.Records)
			}
		}
		k := fwKmsgResponse(version, r, recs)
		dst := k.AppendTo(nil)
		b.ReportAllocs()
		b.SetBytes(int64(header))
		for b.Loop() {
			dst = k.AppendTo(dst[:0])
		}
	})
}
