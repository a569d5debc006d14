package segment

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"gregor/batch"
)

// TestLogDataDriven runs the scripts in testdata/log/. Commands:
//
//	open [segment-bytes=N] [index-bytes=N] [interval=N] [retention-ms=N]
//	     [retention-bytes=N] [unclean] [recovery-point=N] [log-start=N] [compact]
//	                           opens (or reopens) the log; unclean skips the
//	                           clean-shutdown marker so recovery runs;
//	                           log-start is its log-start-offset-checkpoint entry;
//	                           compact sets cleanup.policy=compact
//	close                      closes the log cleanly
//	crash                      drops the log without closing it (files stay as they are)
//	append [batches=1] [records=1] [size=10] [ts=1000] [epoch=-1] [codec=none] [key=0]
//	                           appends batches built to that spec, prints offsets;
//	                           each batch's records have keys key-<key>, key-<key+1>, ...
//	clean                      runs a cleaning pass at the fake clock's time
//	read offset=O [max-bytes=N] [max-offset=O]
//	                           prints the regions and the batches they hold
//	segments                   prints each segment with its index entries
//	truncate offset=O
//	truncate-fully offset=O
//	time ms=T                  sets the fake clock
//	retention                  enforces retention, prints what remains
//	delete-records offset=O    raises the log start (DeleteRecords)
//	lookup-time ts=T           ListOffsets by timestamp
//	lookup-max-time            ListOffsets MAX_TIMESTAMP
//	corrupt segment=B at=P [zero=N | flip | cut=N]
//	                           damages a segment's log file: zeroes N bytes
//	                           at P, flips a bit at P, or cuts the file to P
//	remove-index segment=B     deletes a segment's offset index
//	garble-index segment=B     overwrites a segment's offset index with entries
//	                           that point past the end of its log
//	epochs                     prints the leader-epoch cache
//	files                      lists the partition directory
func TestLogDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata/log", func(t *testing.T, path string) {
		dir := filepath.Join(t.TempDir(), "topic-0")
		clock := newFakeClock(1_000_000)
		var l *Log
		defer func() {
			if l != nil {
				l.Close()
			}
		}()
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			out, err := runLogCommand(t, &l, dir, clock, d)
			if err != nil {
				out = "error: " + err.Error() + "\n"
			}
			return strings.ReplaceAll(out, dir, "<dir>")
		})
	})
}

func runLogCommand(t *testing.T, lp **Log, dir string, clock *fakeClock, d *datadriven.TestData) (string, error) {
	arg := func(key string, def int64) int64 {
		if d.HasArg(key) {
			var v int64
			d.ScanArgs(t, key, &v)
			return v
		}
		return def
	}
	l := *lp
	var b strings.Builder
	switch d.Cmd {
	case "open":
		if l != nil {
			t.Fatal("open: log already open")
		}
		cfg := testConfig()
		cfg.SegmentBytes = arg("segment-bytes", cfg.SegmentBytes)
		cfg.SegmentIndexBytes = int(arg("index-bytes", int64(cfg.SegmentIndexBytes)))
		cfg.IndexIntervalBytes = int(arg("interval", int64(cfg.IndexIntervalBytes)))
		cfg.RetentionMs = arg("retention-ms", cfg.RetentionMs)
		cfg.RetentionBytes = arg("retention-bytes", cfg.RetentionBytes)
		cfg.SegmentMs = arg("segment-ms", 0)
		if d.HasArg("compact") {
			cfg.CleanupPolicy = "compact"
		}
		nl, err := Open(dir, cfg, OpenOptions{
			CleanShutdown:  !d.HasArg("unclean"),
			RecoveryPoint:  arg("recovery-point", 0),
			LogStartOffset: arg("log-start", 0),
			Now:            clock.Now,
		})
		if err != nil {
			return "", err
		}
		*lp = nl
		fmt.Fprintf(&b, "log [%d, %d)\n", nl.LogStartOffset(), nl.LogEndOffset())
	case "close":
		err := l.Close()
		*lp = nil
		return "ok\n", err
	case "crash":
		crash(l)
		*lp = nil
		return "ok\n", nil
	case "append":
		var codec string
		if d.HasArg("codec") {
			d.ScanArgs(t, "codec", &codec)
		} else {
			codec = "none"
		}
		c, err := batch.ParseCodec(codec)
		if err != nil {
			t.Fatal(err)
		}
		var buf []byte
		ts := arg("ts", 1000)
		for range arg("batches", 1) {
			buf = append(buf, buildBatch(t, batchSpec{records: int(arg("records", 1)), valueSize: int(arg("size", 10)), ts: ts, codec: c,
				firstKey: int(arg("key", 0))})...)
			ts += arg("records", 1)
		}
		info, err := l.Append(buf, int32(arg("epoch", -1)))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "offsets %d-%d, %d bytes, max timestamp %d\n", info.FirstOffset, info.LastOffset, info.Bytes, info.MaxTimestamp)
	case "read":
		regions, err := l.Read(nil, arg("offset", 0), int(arg("max-bytes", 1<<20)), arg("max-offset", 1<<62))
		defer ReleaseAll(regions)
		if err != nil {
			return "", err
		}
		if len(regions) == 0 {
			b.WriteString("empty\n")
		}
		for _, r := range regions {
			buf := make([]byte, r.Length)
			if _, err := r.File.OS().ReadAt(buf, r.Position); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s [%d, %d):", filepath.Base(r.File.Name()), r.Position, r.Position+r.Length)
			cfg := l.Config()
			it := batch.NewIter(buf)
			for h, ok := it.Next(); ok; h, ok = it.Next() {
				fmt.Fprintf(&b, " %d-%d", h.BaseOffset(), h.LastOffset())
				if err := validateStored(h, cfg.compacts()); err != nil {
					t.Fatalf("read returned a bad batch: %v", err)
				}
			}
			if it.Err() != nil {
				fmt.Fprintf(&b, " +%d partial", len(buf)-it.Pos())
			}
			b.WriteString("\n")
		}
	case "segments":
		printSegments(&b, l)
	case "truncate":
		if err := l.Truncate(arg("offset", 0)); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "log [%d, %d)\n", l.LogStartOffset(), l.LogEndOffset())
	case "truncate-fully":
		if err := l.TruncateFullyAndStartAt(arg("offset", 0)); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "log [%d, %d)\n", l.LogStartOffset(), l.LogEndOffset())
	case "time":
		clock.Set(arg("ms", 0))
		return "ok\n", nil
	case "retention":
		n, err := l.EnforceRetention()
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "deleted %d; log [%d, %d)\n", n, l.LogStartOffset(), l.LogEndOffset())
	case "delete-records":
		moved, err := l.AdvanceLogStart(arg("offset", 0))
		if err != nil {
			return "", err
		}
		start, listed := l.logStartCheckpoint()
		fmt.Fprintf(&b, "moved %t; log [%d, %d); checkpoint entry %t\n", moved, start, l.LogEndOffset(), listed)
	case "lookup-time", "lookup-max-time":
		var off, ts int64
		var found bool
		var err error
		if d.Cmd == "lookup-time" {
			off, ts, found, err = l.OffsetForTimestamp(arg("ts", 0), 1<<20)
		} else {
			off, ts, found, err = l.OffsetForMaxTimestamp(1 << 20)
		}
		if err != nil {
			return "", err
		}
		if !found {
			return "not found\n", nil
		}
		fmt.Fprintf(&b, "offset %d timestamp %d\n", off, ts)
	case "clean":
		st, err := NewCleaner(DefaultCleanerConfig(), discardLogger).Clean(l, clock.Now(), nil)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "clean below %d: kept %d of %d records, dropped %d batches\n", st.EndOffset, st.RecordsKept, st.RecordsRead, st.BatchesDropped)
	case "corrupt":
		p := filepath.Join(dir, segmentName(arg("segment", 0))+logSuffix)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		at := arg("at", 0)
		switch {
		case d.HasArg("zero"):
			clear(data[at : at+arg("zero", 0)])
		case d.HasArg("flip"):
			data[at] ^= 0x10
		case d.HasArg("cut"):
			data = data[:at]
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return "ok\n", nil
	case "remove-index":
		if err := os.Remove(filepath.Join(dir, segmentName(arg("segment", 0))+indexSuffix)); err != nil {
			t.Fatal(err)
		}
		return "ok\n", nil
	case "garble-index":
		p := filepath.Join(dir, segmentName(arg("segment", 0))+indexSuffix)
		if err := os.WriteFile(p, []byte{0, 0, 0, 1, 0, 0, 0, 10, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0}, 0o644); err != nil {
			t.Fatal(err)
		}
		return "ok\n", nil
	case "epochs":
		for _, e := range l.LeaderEpochs().Entries() {
			fmt.Fprintf(&b, "epoch %d from %d\n", e.Epoch, e.StartOffset)
		}
		if b.Len() == 0 {
			b.WriteString("none\n")
		}
	case "files":
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		names := make([]string, 0, len(entries))
		for _, e := range entries {
			info, _ := e.Info()
			names = append(names, fmt.Sprintf("%s %d", e.Name(), info.Size()))
		}
		slices.Sort(names)
		for _, n := range names {
			b.WriteString(n + "\n")
		}
	default:
		t.Fatalf("unknown command %q", d.Cmd)
	}
	return b.String(), nil
}

// printSegments writes each segment and its index entries.
func printSegments(b *strings.Builder, l *Log) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	for _, s := range l.mu.segments {
		fmt.Fprintf(b, "%s: offsets [%d, %d) %d bytes, max timestamp %d\n", segmentName(s.base), s.base, s.next, s.size, s.maxTimestamp)
		fmt.Fprintf(b, "  index:")
		for i := range s.index.n {
			rel, pos := s.index.offsetEntry(i)
			fmt.Fprintf(b, " %d@%d", s.base+int64(rel), pos)
		}
		fmt.Fprintf(b, "\n  time:")
		for i := range s.timeIndex.n {
			ts, rel := s.timeIndex.timeEntry(i)
			fmt.Fprintf(b, " %d@%d", ts, s.base+int64(rel))
		}
		b.WriteString("\n")
	}
}
