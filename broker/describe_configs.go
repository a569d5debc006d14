package broker

import (
	"strconv"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"gregor/raft"
)

// Kafka's config sources (DescribeConfigs v1+).
const (
	sourceDynamicTopic  = kmsg.ConfigSourceDynamicTopicConfig
	sourceStaticBroker  = kmsg.ConfigSourceStaticBrokerConfig
	sourceDefaultConfig = kmsg.ConfigSourceDefaultConfig
)

// handleDescribeConfigs describes topic configs from the image (overrides,
// and the broker's defaults for the rest) and this broker's own settings.
func (b *Broker) handleDescribeConfigs(rq *request, req *kmsg.DescribeConfigsRequest) {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	im := b.image()
	for _, res := range req.Resources {
		rr := kmsg.NewDescribeConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = res.ResourceType, res.ResourceName
		want := func(name string) bool {
			if len(res.ConfigNames) == 0 {
				// Null or empty: every config, as Kafka answers both.
				return true
			}
			for _, n := range res.ConfigNames {
				if n == name {
					return true
				}
			}
			return false
		}
		switch res.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			if err := raft.ValidateTopicName(res.ResourceName); err != nil {
				rr.ErrorCode, rr.ErrorMessage = kerr.InvalidTopicException.Code, kmsg.StringPtr(err.Error())
				break
			}
			t, ok := im.Topic(res.ResourceName)
			if !ok {
				rr.ErrorCode = kerr.UnknownTopicOrPartition.Code
				rr.ErrorMessage = kmsg.StringPtr("Topic " + res.ResourceName + " does not exist")
				break
			}
			for _, tc := range topicConfigs {
				if !want(tc.name) {
					continue
				}
				c := kmsg.NewDescribeConfigsResponseResourceConfig()
				c.Name, c.ConfigType = tc.name, kmsg.ConfigType(tc.kind)
				d := describeTopicConfig(&tc, t.Configs, &b.cfg)
				c.Value, c.Source, c.IsDefault = kmsg.StringPtr(d.value), d.source, d.source == sourceDefaultConfig
				if req.IncludeSynonyms {
					c.ConfigSynonyms = d.synonyms
				}
				if req.IncludeDocumentation {
					c.Documentation = kmsg.StringPtr(tc.doc)
				}
				rr.Configs = append(rr.Configs, c)
			}
		case kmsg.ConfigResourceTypeBroker:
			if res.ResourceName != "" && res.ResourceName != strconv.Itoa(int(b.cfg.NodeID)) {
				rr.ErrorCode = kerr.InvalidRequest.Code
				rr.ErrorMessage = kmsg.StringPtr("Unexpected broker id, expected " + strconv.Itoa(int(b.cfg.NodeID)) + " or empty string, but received " + res.ResourceName)
				break
			}
			if res.ResourceName == "" {
				break // no dynamic cluster-wide defaults
			}
			for _, bc := range b.brokerConfigs() {
				if !want(bc.name) {
					continue
				}
				c := kmsg.NewDescribeConfigsResponseResourceConfig()
				c.Name, c.Value, c.ReadOnly, c.Source = bc.name, kmsg.StringPtr(bc.value), true, sourceDefaultConfig
				c.ConfigType = kmsg.ConfigTypeString
				// A Config built in code does not say which keys it
				// was given: all are static, as a file would give them.
				static := staticLookup(&b.cfg, func(name string) (string, string, bool) { return bc.value, "", name == bc.name })
				synonyms := kafkaSynonyms(bc.name, bc.group, static)
				if len(synonyms) > 0 {
					c.Source = synonyms[0].Source
				}
				c.IsDefault = c.Source == sourceDefaultConfig
				if req.IncludeSynonyms {
					c.ConfigSynonyms = synonyms
				}
				rr.Configs = append(rr.Configs, c)
			}
		default:
			rr.ErrorCode = kerr.InvalidRequest.Code
			rr.ErrorMessage = kmsg.StringPtr("Unsupported resource type " + strconv.Itoa(int(res.ResourceType)))
		}
		resp.Resources = append(resp.Resources, rr)
	}
	rq.reply(resp)
}

// describedConfig is one topic config as DescribeConfigs and CreateTopics
// report it.
type describedConfig struct {
	value  string
	source kmsg.ConfigSource
	// synonyms are where the value could come from, the one it comes
	// from first, as Kafka lists them.
	synonyms []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym
}

// kafkaDefaults is a broker config left at Kafka's defaults.
var kafkaDefaults = sync.OnceValue(func() *Config {
	c := DefaultConfig()
	return &c
})

// laterBrokerSynonyms are the broker keys Kafka reads for a topic config
// after its brokerName, in Kafka's order (ServerTopicConfigSynonyms, and
// DynamicBrokerConfig.brokerConfigSynonyms for the broker keys), each with
// Kafka's default ("" for none). Where a config has them, its brokerName
// has no default of its own in Kafka (log.retention.ms is null,
// log.retention.hours 168).
var laterBrokerSynonyms = map[string][]struct{ name, kafkaDefault string }{
	"segment.ms":        {{"log.roll.hours", "168"}},
	"segment.jitter.ms": {{"log.roll.jitter.hours", "0"}},
	"flush.ms":          {{"log.flush.scheduler.interval.ms", "9223372036854775807"}},
	"retention.ms":      {{"log.retention.minutes", ""}, {"log.retention.hours", "168"}},
}

// brokerKey is one broker key of a synonym group, with Kafka's static
// default for it, if Kafka has one.
type brokerKey struct {
	name, kafkaDefault string
	hasDefault         bool
}

// synonymGroup is the broker keys Kafka reads for topic config tc, its
// brokerName first.
func synonymGroup(tc *topicConfig) []brokerKey {
	later := laterBrokerSynonyms[tc.name]
	group := []brokerKey{{name: tc.brokerName, kafkaDefault: tc.brokerDefault(kafkaDefaults()), hasDefault: len(later) == 0}}
	for _, s := range later {
		group = append(group, brokerKey{s.name, s.kafkaDefault, s.kafkaDefault != ""})
	}
	return group
}

// kafkaSynonyms lists the synonyms of the config called name, whose broker
// keys are group, as Kafka's ConfigHelper.configSynonyms does: the static
// setting of each key of the group that has one (static), in the group's
// order, then the Kafka default of each that has one, and then everything
// before the first synonym called name is dropped. So a topic config whose
// first broker key has no default and is not set (log.retention.ms) has no
// broker synonyms at all, even with log.retention.hours set, and is
// described as DEFAULT_CONFIG: Kafka answers so.
func kafkaSynonyms(name string, group []brokerKey, static func(string) (string, bool)) []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	var out []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym
	for _, k := range group {
		if v, ok := static(k.name); ok {
			out = append(out, synonym(k.name, v, sourceStaticBroker))
		}
	}
	for _, k := range group {
		if k.hasDefault {
			out = append(out, synonym(k.name, k.kafkaDefault, sourceDefaultConfig))
		}
	}
	for len(out) > 0 && out[0].Name != name {
		out = out[1:]
	}
	return out
}

// staticLookup finds a broker key's static setting: what the broker's
// properties gave (cfg.StaticConfigs), or, for a Config built in code,
// which does not say, the broker's value of a key whose value differs from
// Kafka's default (value and kafkaDefault report them).
func staticLookup(cfg *Config, value func(string) (v, kafkaDefault string, ok bool)) func(string) (string, bool) {
	return func(name string) (string, bool) {
		if cfg.StaticConfigs != nil {
			v, ok := cfg.StaticConfigs[name]
			return v, ok
		}
		v, def, ok := value(name)
		return v, ok && v != def
	}
}

// describeTopicConfig describes tc for a topic with overrides on a broker
// configured with cfg, as Kafka's ConfigHelper.createTopicConfigEntry
// does: the value is the topic's own (DYNAMIC_TOPIC_CONFIG, listed first
// among the synonyms) or else the broker's, and the source is that of the
// first synonym, DEFAULT_CONFIG when there is none (kafkaSynonyms).
func describeTopicConfig(tc *topicConfig, overrides map[string]string, cfg *Config) describedConfig {
	d := describedConfig{value: tc.brokerDefault(cfg), source: sourceDefaultConfig}
	if v, ok := overrides[tc.name]; ok {
		d.value = v
		d.synonyms = append(d.synonyms, synonym(tc.name, v, sourceDynamicTopic))
	}
	if tc.brokerName != "" {
		static := staticLookup(cfg, func(name string) (string, string, bool) {
			if name != tc.brokerName {
				return "", "", false
			}
			return tc.brokerDefault(cfg), tc.brokerDefault(kafkaDefaults()), true
		})
		d.synonyms = append(d.synonyms, kafkaSynonyms(tc.brokerName, synonymGroup(tc), static)...)
	}
	if len(d.synonyms) > 0 {
		d.source = d.synonyms[0].Source
	}
	return d
}

func synonym(name, value string, source kmsg.ConfigSource) kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	s := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
	s.Name, s.Value, s.Source = name, kmsg.StringPtr(value), source
	return s
}

// brokerConfig is one of this broker's settings, by Kafka's name, with the
// broker keys Kafka takes for synonyms of it (itself, or its group:
// log.retention.ms, .minutes, .hours) and their Kafka defaults.
type brokerConfig struct {
	name, value string
	group       []brokerKey
}

// brokerConfigs are this broker's settings, by Kafka's names.
func (b *Broker) brokerConfigs() []brokerConfig {
	c := &b.cfg
	own := func(name, value, kafkaDefault string, hasDefault bool) brokerConfig {
		return brokerConfig{name, value, []brokerKey{{name, kafkaDefault, hasDefault}}}
	}
	out := []brokerConfig{
		own("node.id", strconv.Itoa(int(c.NodeID)), "-1", true),
		own("broker.id", strconv.Itoa(int(c.NodeID)), "-1", true),
		own("process.roles", c.Quorum.Roles, "", true),
		own("listeners", "PLAINTEXT://"+c.Listener, "PLAINTEXT://:9092", true),
		own("log.dirs", strings.Join(c.Storage.LogDirs, ","), "", false),
		own("auto.create.topics.enable", strconv.FormatBool(c.AutoCreateTopicsEnable), "true", true),
		own("num.partitions", strconv.Itoa(int(c.Controller.NumPartitions)), "1", true),
		own("default.replication.factor", strconv.Itoa(int(c.Controller.DefaultReplicationFactor)), "1", true),
		own("fetch.max.bytes", strconv.Itoa(int(c.FetchMaxBytes)), "57671680", true),
		own("network.engine", c.Net.Engine, "", false), // Gregor's own
		own("socket.request.max.bytes", strconv.Itoa(int(c.Net.SocketRequestMaxBytes)), "104857600", true),
	}
	for i := range topicConfigs {
		tc := &topicConfigs[i]
		if tc.brokerName != "" && (tc.brokerName != tc.name || !strings.HasPrefix(tc.name, "log.")) {
			out = append(out, brokerConfig{tc.brokerName, tc.brokerDefault(c), synonymGroup(tc)})
		}
	}
	return out
}
