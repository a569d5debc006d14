package broker_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gregor/internal/testcluster"
)

// TestKafkaJS runs KafkaJS, a pure-JavaScript client, against a broker
// (testdata/kafkajs/e2e.js): admin calls, an idempotent gzip producer, a
// two-member consumer group that commits, DeleteRecords. It needs node and
// the package installed (`npm ci` in testdata/kafkajs, which .ci/run does);
// without them it is skipped, and says why.
func TestKafkaJS(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	dir, err := filepath.Abs("testdata/kafkajs")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "kafkajs")); err != nil {
		t.Skip("kafkajs is not installed: run npm ci in broker/testdata/kafkajs")
	}
	c := testcluster.Start(t, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "e2e.js")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GREGOR_BROKERS="+c.Bootstrap())
	out, err := cmd.CombinedOutput()
	t.Logf("kafkajs:\n%s", out)
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "ok") {
		t.Fatalf("kafkajs e2e: %v", err)
	}
}
