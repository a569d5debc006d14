package raft

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The controller's config decisions: KRaft's ConfigurationControlManager,
// with the checks Kafka's brokers make before they forward an
// IncrementalAlterConfigs request (ConfigAdminManager.preprocess), since
// here the controller answers the client's request whole.

// ConfigValidator checks config values the controller stores; the broker
// knows what the names mean, the controller does not.
type ConfigValidator interface {
	// ValidateConfig checks one config of a resource (ResourceTopic or
	// ResourceBroker); its error message is shown to the client as
	// INVALID_CONFIG. It returns the value as the controller stores it:
	// its normal form (Kafka's ConfigDef parses a value, trimmed, and
	// convertToString spells it back), so that every reader of the image
	// sees one spelling of it.
	ValidateConfig(resourceType int8, name, value string) (string, error)
	// IsListConfig reports whether name's value is a comma-separated list,
	// to which APPEND and SUBTRACT apply.
	IsListConfig(resourceType int8, name string) bool
}

// ConfigDefaulter is a ConfigValidator that also knows each config's
// default, Kafka's static one (ConfigDef's, not a broker's setting): APPEND
// and SUBTRACT on a config a resource does not set start from it, as
// Kafka's ConfigurationControlManager does, so that appending compact to an
// unset cleanup.policy gives delete,compact.
type ConfigDefaulter interface {
	ConfigDefault(resourceType int8, name string) (string, bool)
}

// ConfigDescriber is a ConfigValidator that also describes a new topic's
// configs: CreateTopics v5+ answers a topic it creates (or would create,
// with validate_only) with every config the topic takes, its own or else
// the default, sorted by name, as Kafka's ReplicationControlManager does.
// The controller calls it with the configs the topic is created with.
type ConfigDescriber interface {
	DescribeNewTopicConfigs(configs map[string]string) []kmsg.CreateTopicsResponseTopicConfig
}

// ConfigSetValidator is a ConfigValidator that also checks a resource's
// configs together, for rules between them (Kafka refuses a
// min.compaction.lag.ms above max.compaction.lag.ms). The controller calls
// it with every config a topic is created with, and with a resource's
// configs as an IncrementalAlterConfigs would leave them.
type ConfigSetValidator interface {
	ValidateConfigSet(resourceType int8, configs map[string]string) error
}

// SetConfigValidator makes v check every config value the controller's
// decisions store (CreateTopics, IncrementalAlterConfigs) and say which
// configs are lists. nil, the default, accepts every value and treats no
// config as a list. The shell sets it on each Controller it makes.
func (c *Controller) SetConfigValidator(v ConfigValidator) { c.configs = v }

// validateConfig runs the validator, if any, on one value, and returns it
// as it is stored.
func (c *Controller) validateConfig(resourceType int8, name, value string) (string, *apiError) {
	if c.configs == nil {
		return value, nil
	}
	normal, err := c.configs.ValidateConfig(resourceType, name, value)
	if err != nil {
		return "", failf(kerr.InvalidConfig, "%v", err)
	}
	return normal, nil
}

func (c *Controller) isListConfig(resourceType int8, name string) bool {
	return c.configs != nil && c.configs.IsListConfig(resourceType, name)
}

// describeNewTopicConfigs is what CreateTopics v5+ answers of a new
// topic's configs: nothing unless the validator is a ConfigDescriber.
func (c *Controller) describeNewTopicConfigs(configs []ConfigEntry) []kmsg.CreateTopicsResponseTopicConfig {
	d, ok := c.configs.(ConfigDescriber)
	if !ok {
		return nil
	}
	m := make(map[string]string, len(configs))
	for _, e := range configs {
		m[e.Name] = e.Value
	}
	return d.DescribeNewTopicConfigs(m)
}

// validateTopicConfigs checks the configs a new topic is created with,
// sorted by name so that the first bad one reported does not depend on map
// order, and puts each in the form it is stored in.
func (c *Controller) validateTopicConfigs(configs map[string]string) *apiError {
	for _, name := range slices.Sorted(maps.Keys(configs)) {
		normal, fail := c.validateConfig(ResourceTopic, name, configs[name])
		if fail != nil {
			return fail
		}
		configs[name] = normal
	}
	return c.validateConfigSet(ResourceTopic, configs)
}

// validateConfigSet checks a resource's configs together, when the
// validator can.
func (c *Controller) validateConfigSet(resourceType int8, configs map[string]string) *apiError {
	if v, ok := c.configs.(ConfigSetValidator); ok {
		if err := v.ValidateConfigSet(resourceType, configs); err != nil {
			return failf(kerr.InvalidConfig, "%v", err)
		}
	}
	return nil
}

// IncrementalAlterConfigs handles an IncrementalAlterConfigs request (v0-1)
// as Kafka does, each resource decided on its own, so one bad resource
// does not fail the others; the records of those that succeed go in one
// proposal. Per resource, in this order:
//
//   - a resource (type and name) given twice: INVALID_REQUEST, for each
//   - a type other than TOPIC (2) and BROKER (4): INVALID_REQUEST
//   - a config name given twice, a null value for anything but DELETE, an
//     operation other than SET, DELETE, APPEND, SUBTRACT: INVALID_REQUEST,
//     as Kafka's brokers answer before they forward the request; an empty
//     config name: INVALID_CONFIG (a record needs a name)
//   - a topic: name "" INVALID_REQUEST (Kafka has no default topic
//     resource), an invalid name INVALID_TOPIC_EXCEPTION, an unknown one
//     UNKNOWN_TOPIC_OR_PARTITION
//   - a broker: "" is the cluster-wide default; otherwise the name must
//     parse as an int32 (INVALID_REQUEST), be written as a broker id is, in
//     decimal without sign or leading zero (INVALID_REQUEST: the broker
//     would never find configs stored under another spelling), and name a
//     registered broker (BROKER_ID_NOT_REGISTERED)
//   - APPEND or SUBTRACT of a config the ConfigValidator does not call a
//     list, or a new value it rejects: INVALID_CONFIG
//
// SET replaces the value and DELETE removes the key. APPEND adds each
// comma-separated element of the value not already in the list, starting
// from the current value (when unset, from the config's default if the
// ConfigValidator is a ConfigDefaulter, as Kafka does, else the empty
// list); SUBTRACT removes every occurrence of each. Empty elements are dropped. The
// new value is stored as the ConfigValidator spells it. A config whose
// value does not change makes no record (Kafka writes one for a
// broker anyway, so that brokers reload files; Gregor's have none to
// reload). With ValidateOnly the response is the same and there are no
// records; past 10000 records the whole request fails with
// POLICY_VIOLATION. Responses follow the request's order.
func (c *Controller) IncrementalAlterConfigs(im *Image, req *kmsg.IncrementalAlterConfigsRequest) ([]Record, *kmsg.IncrementalAlterConfigsResponse) {
	resp := kmsg.NewPtrIncrementalAlterConfigsResponse()
	resp.Version = req.Version
	type resourceKey struct {
		typ  kmsg.ConfigResourceType
		name string
	}
	count := map[resourceKey]int{}
	for _, r := range req.Resources {
		count[resourceKey{r.ResourceType, r.ResourceName}]++
	}
	var records []Record
	tooMany := false
	for i := range req.Resources {
		rr := &req.Resources[i]
		var (
			fail *apiError
			more []Record
		)
		if count[resourceKey{rr.ResourceType, rr.ResourceName}] > 1 {
			fail = failf(kerr.InvalidRequest, "Each resource must appear at most once.")
		} else {
			more, fail = c.alterConfigs(im, rr)
		}
		if fail == nil && len(records)+len(more) > maxRecordsPerRequest {
			tooMany = true
		}
		records = append(records, more...)
		out := kmsg.NewIncrementalAlterConfigsResponseResource()
		out.ResourceType, out.ResourceName = rr.ResourceType, rr.ResourceName
		out.ErrorCode, out.ErrorMessage = fail.code(), fail.message()
		resp.Resources = append(resp.Resources, out)
	}
	if tooMany {
		for i := range resp.Resources {
			resp.Resources[i].ErrorCode, resp.Resources[i].ErrorMessage = errTooLarge.code(), errTooLarge.message()
		}
		return nil, resp
	}
	if req.ValidateOnly {
		return nil, resp
	}
	return records, resp
}

// AlterConfigs handles a legacy AlterConfigs request (v0-2), which sarama's
// and kafka-go's admin clients still send, as KRaft's
// ConfigurationControlManager.legacyAlterConfigs does: each resource's
// configs become exactly the ones given. It is decided as the
// IncrementalAlterConfigs that says so on this image: a SET for each config
// given (a DELETE for a null value), a DELETE for each config the resource
// has and the request leaves out; so its checks, errors and records are
// IncrementalAlterConfigs', resource by resource, in the request's order.
func (c *Controller) AlterConfigs(im *Image, req *kmsg.AlterConfigsRequest) ([]Record, *kmsg.AlterConfigsResponse) {
	inc := kmsg.NewPtrIncrementalAlterConfigsRequest()
	inc.ValidateOnly = req.ValidateOnly
	for _, r := range req.Resources {
		ir := kmsg.NewIncrementalAlterConfigsRequestResource()
		ir.ResourceType, ir.ResourceName = r.ResourceType, r.ResourceName
		given := make(map[string]bool, len(r.Configs))
		for _, cfg := range r.Configs {
			ic := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
			ic.Name, ic.Value, ic.Op = cfg.Name, cfg.Value, kmsg.IncrementalAlterConfigOpSet
			if cfg.Value == nil {
				ic.Op = kmsg.IncrementalAlterConfigOpDelete
			}
			given[cfg.Name] = true
			ir.Configs = append(ir.Configs, ic)
		}
		var current map[string]string
		switch int8(r.ResourceType) {
		case ResourceTopic:
			if t, ok := im.Topic(r.ResourceName); ok {
				current = t.Configs
			}
		case ResourceBroker:
			current = im.BrokerConfigs[r.ResourceName]
		}
		for _, name := range slices.Sorted(maps.Keys(current)) {
			if !given[name] {
				ic := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
				ic.Name, ic.Op = name, kmsg.IncrementalAlterConfigOpDelete
				ir.Configs = append(ir.Configs, ic)
			}
		}
		inc.Resources = append(inc.Resources, ir)
	}
	records, iresp := c.IncrementalAlterConfigs(im, inc)
	resp := kmsg.NewPtrAlterConfigsResponse()
	resp.Version = req.Version
	for _, ir := range iresp.Resources {
		rr := kmsg.NewAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName, rr.ErrorCode, rr.ErrorMessage = ir.ResourceType, ir.ResourceName, ir.ErrorCode, ir.ErrorMessage
		resp.Resources = append(resp.Resources, rr)
	}
	return records, resp
}

// alterConfigs decides one resource of an IncrementalAlterConfigs request:
// the ConfigChange records that make its changes, or why it fails.
func (c *Controller) alterConfigs(im *Image, rr *kmsg.IncrementalAlterConfigsRequestResource) ([]Record, *apiError) {
	resourceType := int8(rr.ResourceType)
	if resourceType != ResourceTopic && resourceType != ResourceBroker {
		return nil, failf(kerr.InvalidRequest, "Unsupported resource type %s (%d): only TOPIC (%d) and BROKER (%d) configs can be altered.",
			rr.ResourceType, resourceType, ResourceTopic, ResourceBroker)
	}
	seen := map[string]bool{}
	var nulls []string
	for _, cfg := range rr.Configs {
		if seen[cfg.Name] {
			return nil, failf(kerr.InvalidRequest, "Error due to duplicate config keys")
		}
		seen[cfg.Name] = true
		if cfg.Op != kmsg.IncrementalAlterConfigOpDelete && cfg.Value == nil {
			nulls = append(nulls, cfg.Name)
		}
	}
	if len(nulls) > 0 {
		return nil, failf(kerr.InvalidRequest, "Null value not supported for : %s", strings.Join(nulls, ", "))
	}
	for _, cfg := range rr.Configs {
		switch {
		case cfg.Op < kmsg.IncrementalAlterConfigOpSet || cfg.Op > kmsg.IncrementalAlterConfigOpSubtract:
			return nil, failf(kerr.InvalidRequest, "Unknown operations type %d", cfg.Op)
		case cfg.Name == "":
			return nil, failf(kerr.InvalidConfig, "A config has an empty name.")
		}
	}

	var current map[string]string
	switch resourceType {
	case ResourceTopic:
		if rr.ResourceName == "" {
			return nil, failf(kerr.InvalidRequest, "Default topic resources are not allowed.")
		}
		if err := ValidateTopicName(rr.ResourceName); err != nil {
			return nil, failf(kerr.InvalidTopicException, "%v", err)
		}
		t, ok := im.Topic(rr.ResourceName)
		if !ok {
			return nil, failf(kerr.UnknownTopicOrPartition, "The topic '%s' does not exist.", rr.ResourceName)
		}
		current = t.Configs
	case ResourceBroker:
		if rr.ResourceName != "" {
			id, err := strconv.ParseInt(rr.ResourceName, 10, 32)
			switch {
			case err != nil:
				return nil, failf(kerr.InvalidRequest, "Unable to parse broker name %s", rr.ResourceName)
			case id >= 0 && !isBrokerIDString(rr.ResourceName):
				return nil, failf(kerr.InvalidRequest, "Invalid broker name %s: write broker %d as %d.", rr.ResourceName, id, id)
			case im.Brokers[int32(id)] == nil:
				return nil, failf(kerr.BrokerIDNotRegistered, "No broker with id %d found.", id)
			}
		}
		current = im.BrokerConfigs[rr.ResourceName]
	}

	var records []Record
	for _, cfg := range rr.Configs {
		old, had := current[cfg.Name]
		value, set := old, had
		switch cfg.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			value, set = *cfg.Value, true
		case kmsg.IncrementalAlterConfigOpDelete:
			value, set = "", false
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if !c.isListConfig(resourceType, cfg.Name) {
				return nil, failf(kerr.InvalidConfig, "Can't %s to key %s because its type is not LIST.", cfg.Op, cfg.Name)
			}
			list := splitConfigList(old)
			if d, ok := c.configs.(ConfigDefaulter); ok && !had {
				if def, ok := d.ConfigDefault(resourceType, cfg.Name); ok {
					list = splitConfigList(def)
				}
			}
			for _, v := range splitConfigList(*cfg.Value) {
				if cfg.Op == kmsg.IncrementalAlterConfigOpAppend {
					if !slices.Contains(list, v) {
						list = append(list, v)
					}
				} else {
					list = slices.DeleteFunc(list, func(x string) bool { return x == v })
				}
			}
			value, set = strings.Join(list, ","), true
		}
		if set {
			var fail *apiError
			if value, fail = c.validateConfig(resourceType, cfg.Name, value); fail != nil {
				return nil, fail
			}
		}
		if set == had && value == old {
			continue
		}
		records = append(records, &ConfigChange{ResourceType: resourceType, ResourceName: rr.ResourceName,
			Name: cfg.Name, Value: value, Delete: !set})
	}
	if len(records) > 0 {
		after := maps.Clone(current)
		if after == nil {
			after = map[string]string{}
		}
		for _, r := range records {
			if ch := r.(*ConfigChange); ch.Delete {
				delete(after, ch.Name)
			} else {
				after[ch.Name] = ch.Value
			}
		}
		if fail := c.validateConfigSet(resourceType, after); fail != nil {
			return nil, fail
		}
	}
	return records, nil
}

// splitConfigList splits a list config's value at its commas, dropping
// empty elements, as Kafka reads a list it appends to.
func splitConfigList(s string) []string {
	return slices.DeleteFunc(strings.Split(s, ","), func(e string) bool { return e == "" })
}
