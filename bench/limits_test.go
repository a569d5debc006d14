package bench

import (
	"context"
	"os"
	"testing"
	"time"
)

func TestMeasureLimits(t *testing.T) {
	dir := t.TempDir()
	l, err := MeasureLimits(t.Context(), LimitsConfig{Dir: dir, Each: 50 * time.Millisecond, MaxBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if l.LoopbackTCPMiBps <= 0 || l.AppendFreshMiBps <= 0 || l.AppendReusedMiBps <= 0 || l.Fdatasync.Count == 0 || l.Fdatasync.P50Ms <= 0 {
		t.Errorf("%+v", l)
	}
	if l.Cores <= 0 || l.GoVersion == "" || l.Dir != dir {
		t.Errorf("machine: %+v", l)
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 0 {
		t.Errorf("scratch files left behind: %v", left)
	}
}

func TestMeasureLimitsCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	start := time.Now()
	MeasureLimits(ctx, LimitsConfig{Dir: t.TempDir(), Each: 10 * time.Second})
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a cancelled measurement took %v", d)
	}
}
