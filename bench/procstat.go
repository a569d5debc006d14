package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ProcStats are what Linux's /proc says about one process.
type ProcStats struct {
	// CPUSeconds is user plus system time, from /proc/<pid>/stat.
	CPUSeconds float64
	// RSSBytes is the resident set now (VmRSS) and PeakRSSBytes the
	// highest since start or since the last ResetPeakRSS (VmHWM), from
	// /proc/<pid>/status.
	RSSBytes, PeakRSSBytes int64
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// ReadProcStats reads a process's CPU time and memory.
func ReadProcStats(pid int) (ProcStats, error) {
	var ps ProcStats
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ps, err
	}
	cpu, err := parseStatCPU(raw)
	if err != nil {
		return ps, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	ps.CPUSeconds = cpu
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ps, err
	}
	ps.RSSBytes, ps.PeakRSSBytes = parseStatusMemory(status)
	return ps, nil
}

// parseStatCPU reads utime and stime (fields 14 and 15) from a stat line.
// The command name (field 2) is in parentheses and may hold spaces, so the
// fields are counted from its closing parenthesis.
func parseStatCPU(raw []byte) (float64, error) {
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 || i+2 > len(raw) {
		return 0, fmt.Errorf("no command name")
	}
	f := strings.Fields(string(raw[i+1:]))
	// f[0] is field 3 (state); utime is field 14, so f[11].
	if len(f) < 13 {
		return 0, fmt.Errorf("only %d fields", len(f)+2)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad utime %q or stime %q", f[11], f[12])
	}
	return float64(ut+st) / clockTicks, nil
}

// parseStatusMemory reads VmRSS and VmHWM (in kB) from a status file.
func parseStatusMemory(status []byte) (rss, hwm int64) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		if k == "VmRSS" {
			rss = n << 10
		} else {
			hwm = n << 10
		}
	}
	return rss, hwm
}

// ResetPeakRSS resets a process's VmHWM to its current RSS (writing 5 to
// /proc/<pid>/clear_refs, Linux 4.0 and later), so that each scenario's
// peak is its own rather than the highest since the broker started.
func ResetPeakRSS(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}
