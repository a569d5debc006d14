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
			for _, kv := range b.brokerConfigs(im) {
				if !want(kv[0]) {
					continue
				}
				c := kmsg.NewDescribeConfigsResponseResourceConfig()
				c.Name, c.Value, c.ReadOnly, c.Source = kv[0], kmsg.StringPtr(kv[1]), true, sourceStaticBroker
				if _, set := b.cfg.StaticConfigs[kv[0]]; b.cfg.StaticConfigs != nil && !set {
					c.Source, c.IsDefault = sourceDefaultConfig, true
				}
				c.ConfigType = kmsg.ConfigTypeString
				if req.IncludeSynonyms {
					c.ConfigSynonyms = append(c.ConfigSynonyms, synonym(kv[0], kv[1], c.Source))
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
// after its brokerName, in Kafka's order (ServerTopicConfigSynonyms), each
// with Kafka's default ("" for none). Where a config has them, its
// brokerName has no default of its own in Kafka (log.retention.ms is
// null, log.retention.hours 168), so these give the DEFAULT_CONFIG synonym.
var laterBrokerSynonyms = map[string][]struct{ name, kafkaDefault string }{
	"segment.ms":        {{"log.roll.hours", "168"}},
	"segment.jitter.ms": {{"log.roll.jitter.hours", "0"}},
	"flush.ms":          {{"log.flush.scheduler.interval.ms", "9223372036854775807"}},
	"retention.ms":      {{"log.retention.minutes", ""}, {"log.retention.hours", "168"}},
}

// describeTopicConfig describes tc for a topic with overrides on a broker
// configured with cfg, as Kafka's ConfigHelper does: the topic's own value
// (DYNAMIC_TOPIC_CONFIG), or else the broker's setting of one of its
// synonyms (STATIC_BROKER_CONFIG), or else DEFAULT_CONFIG. A synonym is
// static when the broker's properties gave it (cfg.StaticConfigs), or, for
// a Config that does not say, when the broker's value differs from Kafka's
// default. The synonyms follow Kafka's order: the topic's value, each
// broker key set, in Kafka's order of precedence, with its value as
// written, then Kafka's default.
func describeTopicConfig(tc *topicConfig, overrides map[string]string, cfg *Config) describedConfig {
	def := tc.brokerDefault(cfg)
	d := describedConfig{value: def, source: sourceDefaultConfig}
	if v, ok := overrides[tc.name]; ok {
		d.value, d.source = v, sourceDynamicTopic
		d.synonyms = append(d.synonyms, synonym(tc.name, v, sourceDynamicTopic))
	}
	if tc.brokerName == "" {
		return d
	}
	later := laterBrokerSynonyms[tc.name]
	static := false
	if cfg.StaticConfigs != nil {
		names := []string{tc.brokerName}
		for _, s := range later {
			names = append(names, s.name)
		}
		for _, n := range names {
			if v, ok := cfg.StaticConfigs[n]; ok {
				static = true
				d.synonyms = append(d.synonyms, synonym(n, v, sourceStaticBroker))
			}
		}
	}
	kafkaDef := tc.brokerDefault(kafkaDefaults())
	if !static && def != kafkaDef {
		static = true
		d.synonyms = append(d.synonyms, synonym(tc.brokerName, def, sourceStaticBroker))
	}
	if static && d.source == sourceDefaultConfig {
		d.source = sourceStaticBroker
	}
	if len(later) == 0 {
		d.synonyms = append(d.synonyms, synonym(tc.brokerName, kafkaDef, sourceDefaultConfig))
	}
	for _, s := range later {
		if s.kafkaDefault != "" {
			d.synonyms = append(d.synonyms, synonym(s.name, s.kafkaDefault, sourceDefaultConfig))
		}
	}
	return d
}

func synonym(name, value string, source kmsg.ConfigSource) kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	s := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
	s.Name, s.Value, s.Source = name, kmsg.StringPtr(value), source
	return s
}

// brokerConfigs are this broker's settings, by Kafka's names.
func (b *Broker) brokerConfigs(*raft.Image) [][2]string {
	c := &b.cfg
	out := [][2]string{
		{"node.id", strconv.Itoa(int(c.NodeID))},
		{"broker.id", strconv.Itoa(int(c.NodeID))},
		{"process.roles", c.Quorum.Roles},
		{"listeners", "PLAINTEXT://" + c.Listener},
		{"log.dirs", strings.Join(c.Storage.LogDirs, ",")},
		{"auto.create.topics.enable", strconv.FormatBool(c.AutoCreateTopicsEnable)},
		{"num.partitions", strconv.Itoa(int(c.Controller.NumPartitions))},
		{"default.replication.factor", strconv.Itoa(int(c.Controller.DefaultReplicationFactor))},
		{"fetch.max.bytes", strconv.Itoa(int(c.FetchMaxBytes))},
		{"network.engine", c.Net.Engine},
		{"socket.request.max.bytes", strconv.Itoa(int(c.Net.SocketRequestMaxBytes))},
	}
	for _, tc := range topicConfigs {
		if tc.brokerName != "" && (tc.brokerName != tc.name || !strings.HasPrefix(tc.name, "log.")) {
			out = append(out, [2]string{tc.brokerName, tc.brokerDefault(c)})
		}
	}
	return out
}
