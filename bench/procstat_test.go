package bench

import (
	"os"
	"testing"
)

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and a parenthesis, as a process may
	// choose; utime 250 and stime 50 ticks are 3 s.
	line := []byte("1234 (gregor (x) serve) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 12 0 100 1000000 200 18446744073709551615\n")
	got, err := parseStatCPU(line)
	if err != nil || got != 3 {
		t.Errorf("got %v, %v; want 3 s", got, err)
	}
	if _, err := parseStatCPU([]byte("1234 (x) S 1 2")); err == nil {
		t.Error("short line accepted")
	}
	if _, err := parseStatCPU([]byte("no parenthesis")); err == nil {
		t.Error("line without a command name accepted")
	}
}

func TestParseStatusMemory(t *testing.T) {
	status := []byte("Name:\tgregor\nVmPeak:\t  900000 kB\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t12\n")
	rss, hwm := parseStatusMemory(status)
	if rss != 100<<20 || hwm != 200<<20 {
		t.Errorf("rss %d hwm %d", rss, hwm)
	}
}

func TestReadProcStatsSelf(t *testing.T) {
	ps, err := ReadProcStats(os.Getpid())
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	if ps.RSSBytes <= 0 || ps.PeakRSSBytes < ps.RSSBytes || ps.CPUSeconds < 0 {
		t.Errorf("%+v", ps)
	}
	if err := ResetPeakRSS(os.Getpid()); err != nil {
		t.Logf("clear_refs not writable here (peaks then count from start): %v", err)
	}
}
