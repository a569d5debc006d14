package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Limits are the machine's own speeds, measured in the same run as the
// benchmark so that each figure can be read as a fraction of what bounds
// it: a broker on this machine cannot take records faster than one TCP
// stream carries them over loopback, nor append them faster than the page
// cache takes new pages.
type Limits struct {
	// LoopbackTCPMiBps is one TCP stream over loopback, 1 MiB writes.
	LoopbackTCPMiBps float64 `json:"loopbackTcpMiBps"`
	// AppendFreshMiBps appends 1 MiB chunks to a new file: every page is
	// new to the page cache, which must allocate and zero it, as a
	// broker's active segment does.
	AppendFreshMiBps float64 `json:"appendFreshMiBps"`
	// AppendReusedMiBps rewrites a 64 MiB region already in the page cache.
	AppendReusedMiBps float64 `json:"appendReusedMiBps"`
	// Fdatasync is the latency of a 4 KiB append followed by fdatasync(2).
	Fdatasync LatencySummary `json:"fdatasync"`
	// Dir is the directory the file figures were measured in (the
	// embedded brokers' data directories live beside it).
	Dir       string `json:"dir"`
	Cores     int    `json:"cores"`
	CPU       string `json:"cpu,omitempty"`
	GoVersion string `json:"goVersion"`
}

// LimitsConfig bounds the measurements.
type LimitsConfig struct {
	// Dir holds the scratch files; it should be on the filesystem the
	// brokers write to.
	Dir string
	// Each is how long each measurement runs at most (default 1 s).
	Each time.Duration
	// MaxBytes bounds the bytes each throughput measurement moves
	// (default 1 GiB), so that a fast machine does not fill its disk.
	MaxBytes int64
}

// MeasureLimits measures the machine. Each measurement is bounded in time
// and bytes; the scratch files are removed.
func MeasureLimits(ctx context.Context, cfg LimitsConfig) (Limits, error) {
	if cfg.Each <= 0 {
		cfg.Each = time.Second
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 1 << 30
	}
	if cfg.Dir == "" {
		cfg.Dir = os.TempDir()
	}
	l := Limits{Dir: cfg.Dir, Cores: runtime.NumCPU(), CPU: cpuModel(), GoVersion: runtime.Version()}
	dir, err := os.MkdirTemp(cfg.Dir, "gregor-bench-limits-")
	if err != nil {
		return l, err
	}
	defer os.RemoveAll(dir)
	var errs []error
	steps := []struct {
		name string
		fn   func() error
	}{
		{"loopback TCP", func() (err error) { l.LoopbackTCPMiBps, err = measureLoopback(ctx, cfg); return }},
		{"append into fresh pages", func() (err error) {
			l.AppendFreshMiBps, err = measureAppend(ctx, cfg, filepath.Join(dir, "fresh"), false)
			return
		}},
		{"append into reused pages", func() (err error) {
			l.AppendReusedMiBps, err = measureAppend(ctx, cfg, filepath.Join(dir, "reused"), true)
			return
		}},
		{"fdatasync", func() (err error) { l.Fdatasync, err = measureFdatasync(ctx, cfg, filepath.Join(dir, "sync")); return }},
	}
	for _, s := range steps {
		if ctx.Err() != nil {
			break
		}
		if err := s.fn(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
		}
	}
	return l, errors.Join(errs...)
}

func mibps(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) / (1 << 20) / d.Seconds()
}

func measureLoopback(ctx context.Context, cfg LimitsConfig) (float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	type result struct {
		n   int64
		err error
	}
	got := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- result{err: err}
			return
		}
		defer c.Close()
		n, err := io.Copy(io.Discard, c)
		got <- result{n, err}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	chunk := make([]byte, 1<<20)
	start := time.Now()
	deadline := start.Add(cfg.Each)
	c.SetWriteDeadline(deadline.Add(time.Second))
	var sent int64
	for sent < cfg.MaxBytes && time.Now().Before(deadline) && ctx.Err() == nil {
		n, err := c.Write(chunk)
		sent += int64(n)
		if err != nil {
			c.Close()
			return 0, err
		}
	}
	c.Close()
	r := <-got // the reader ends at EOF, right after Close
	elapsed := time.Since(start)
	if r.err != nil {
		return 0, r.err
	}
	return mibps(r.n, elapsed), nil
}

// measureAppend writes 1 MiB chunks for cfg.Each. Fresh: appends to a new
// file, so every page is new. Reused: first fills a 64 MiB region, then
// rewrites it in a loop, so every page is already cached.
func measureAppend(ctx context.Context, cfg LimitsConfig, path string, reused bool) (float64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	defer os.Remove(path)
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i*7 + 1)
	}
	const region = 64 << 20
	if reused {
		for off := int64(0); off < region; off += int64(len(chunk)) {
			if _, err := f.WriteAt(chunk, off); err != nil {
				return 0, err
			}
		}
	}
	start := time.Now()
	deadline := start.Add(cfg.Each)
	var off, written int64
	for written < cfg.MaxBytes && time.Now().Before(deadline) && ctx.Err() == nil {
		if _, err := f.WriteAt(chunk, off); err != nil {
			return 0, err
		}
		written += int64(len(chunk))
		off += int64(len(chunk))
		if reused {
			off %= region
		}
	}
	return mibps(written, time.Since(start)), nil
}

// measureFdatasync appends 4 KiB and calls fdatasync, at most 1000 times
// or for cfg.Each.
func measureFdatasync(ctx context.Context, cfg LimitsConfig, path string) (LatencySummary, error) {
	f, err := os.Create(path)
	if err != nil {
		return LatencySummary{}, err
	}
	defer f.Close()
	defer os.Remove(path)
	h := NewLatencyHistogram()
	block := make([]byte, 4096)
	deadline := time.Now().Add(cfg.Each)
	for i := 0; i < 1000 && time.Now().Before(deadline) && ctx.Err() == nil; i++ {
		if _, err := f.Write(block); err != nil {
			return LatencySummary{}, err
		}
		t := time.Now()
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return LatencySummary{}, err
		}
		h.RecordValue(max(time.Since(t).Microseconds(), 1))
	}
	s := Summarize(h)
	s.Spectrum = nil
	return s, nil
}

// cpuModel is the first "model name" in /proc/cpuinfo, or "".
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
