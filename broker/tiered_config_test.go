package broker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/internal/testcluster"
)

// TestTieredStorageConfigs: the tiered-storage topic configs (KIP-405) are
// taken as a Kafka broker without tiered storage takes them, which is
// Kafka's default: remote.storage.enable=false, the local retentions and
// the remote.log switches are stored and described; remote.storage.enable
// =true is INVALID_CONFIG with Kafka's message, on create and on alter;
// values out of range are INVALID_CONFIG.
func TestTieredStorageConfigs(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	set := map[string]string{
		"remote.storage.enable":        "false",
		"local.retention.ms":           "3600000",
		"local.retention.bytes":        "-2",
		"remote.log.copy.disable":      "true",
		"remote.log.delete.on.disable": "false",
	}
	configs := map[string]*string{}
	for k, v := range set {
		configs[k] = kmsg.StringPtr(v)
	}
	createTopic(t, c, "tiered-off", 1, configs)
	createTopic(t, c, "plain", 1, nil)

	adm := kadm.NewClient(newClient(t, c))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rcs, err := adm.DescribeTopicConfigs(ctx, "tiered-off", "plain")
	if err != nil {
		t.Fatal(err)
	}
	defaults := map[string]string{"remote.storage.enable": "false", "local.retention.ms": "-2", "local.retention.bytes": "-2",
		"remote.log.copy.disable": "false", "remote.log.delete.on.disable": "false"}
	for topic, want := range map[string]map[string]string{"tiered-off": set, "plain": defaults} {
		rc, err := rcs.On(topic, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]kadm.Config{}
		for _, cfg := range rc.Configs {
			got[cfg.Key] = cfg
		}
		for name, value := range want {
			cfg, ok := got[name]
			switch {
			case !ok:
				t.Errorf("%s: DescribeConfigs lists no %s", topic, name)
			case cfg.Value == nil || *cfg.Value != value:
				t.Errorf("%s: %s = %v, want %s", topic, name, cfg.MaybeValue(), value)
			case topic == "plain" && cfg.Source != kmsg.ConfigSourceDefaultConfig:
				t.Errorf("%s: %s from %v, want the default", topic, name, cfg.Source)
			}
		}
	}

	const kafkaMsg = "Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage."
	for name, value := range map[string]string{"remote.storage.enable": "true", "local.retention.ms": "-3", "local.retention.bytes": "x", "remote.log.copy.disable": "yes"} {
		resp, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{name: kmsg.StringPtr(value)}, "refused")
		if err == nil {
			err = resp.Err
		}
		if !errors.Is(err, kerr.InvalidConfig) {
			t.Errorf("create with %s=%s: %v, want INVALID_CONFIG", name, value, err)
		}
		if name == "remote.storage.enable" && resp.ErrMessage != kafkaMsg {
			t.Errorf("create with %s=%s: message %q, want Kafka's %q", name, value, resp.ErrMessage, kafkaMsg)
		}
		alters, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: name, Value: kmsg.StringPtr(value)}}, "plain")
		if err == nil {
			var ar kadm.AlterConfigsResponse
			ar, err = alters.On("plain", nil)
			err = errors.Join(err, ar.Err)
		}
		if !errors.Is(err, kerr.InvalidConfig) {
			t.Errorf("alter to %s=%s: %v, want INVALID_CONFIG", name, value, err)
		}
	}
}
