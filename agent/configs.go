package agent

// DescribeConfigs (0–4), AlterConfigs (0–2), IncrementalAlterConfigs (0–1)
// for topic configs with Kafka's names, validate-only honoured, and for
// group configs (groupconfigs.go). Broker
// configs can be described; they come from the agent's own configuration and
// cannot be altered over the protocol (INVALID_REQUEST says so), nor can
// the internal topics' configs.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/siltstream/silt/metastore"
	"github.com/siltstream/silt/wire"
)

func (a *Agent) handleDescribeConfigs(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	az := a.access(c)
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		if code := az.configs(metastore.OpDescribeConfigs, rr.ResourceType, rr.ResourceName); code != 0 {
			sr.ErrorCode = code
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		wanted := func(name string) bool {
			if rr.ConfigNames == nil {
				return true
			}
			for _, n := range rr.ConfigNames {
				if n == name {
					return true
				}
			}
			return false
		}
		add := func(name, value string, source kmsg.ConfigSource, readOnly bool, doc string) {
			if !wanted(name) {
				return
			}
			c := kmsg.NewDescribeConfigsResponseResourceConfig()
			c.Name = name
			c.Value = &value
			if doc != "" {
				c.Documentation = &doc // how Silt treats the key; tools show it (v3+)
			}
			c.Source = source
			c.IsDefault = source == kmsg.ConfigSourceDefaultConfig
			c.ReadOnly = readOnly
			sr.Configs = append(sr.Configs, c)
		}
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			t, err := a.topic(ctx, rr.ResourceName)
			if err != nil {
				sr.ErrorCode = errorCode(err)
				break
			}
			names, values, isDefault := effectiveTopicConfig(t.Config)
			for _, n := range names {
				src := kmsg.ConfigSourceDynamicTopicConfig
				if isDefault[n] {
					src = kmsg.ConfigSourceDefaultConfig
				}
				d, _ := lookupTopicConfig(n)
				add(n, values[n], src, false, d.note)
			}
		case kmsg.ConfigResourceTypeBroker:
			if rr.ResourceName != "" && rr.ResourceName != strconv.Itoa(int(a.nodeID())) {
				sr.ErrorCode = kerr.InvalidRequest.Code
				msg := fmt.Sprintf("this agent is broker %d", a.nodeID())
				sr.ErrorMessage = &msg
				break
			}
			for _, kv := range a.brokerConfigs() {
				add(kv[0], kv[1], kmsg.ConfigSourceStaticBrokerConfig, true, "")
			}
		case kmsg.ConfigResourceTypeGroupConfig:
			code, msg := a.describeGroupConfig(ctx, rr.ResourceName, add)
			sr.ErrorCode = code
			if msg != "" {
				sr.ErrorMessage = &msg
			}
		default:
			sr.ErrorCode = kerr.InvalidRequest.Code
			msg := "Silt describes topic, broker and group configs only"
			sr.ErrorMessage = &msg
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return wire.Respond(resp)
}

// brokerConfigs are the agent's settings under Kafka's broker config names.
func (a *Agent) brokerConfigs() [][2]string {
	auto := strconv.FormatBool(a.cfg.AutoCreateTopics)
	out := [][2]string{
		{"auto.create.topics.enable", auto},
		{"broker.id", strconv.Itoa(int(a.nodeID()))},
		{"broker.rack", a.cfg.Zone},
		{"num.partitions", strconv.Itoa(int(a.cfg.DefaultPartitions))},
		{"socket.request.max.bytes", strconv.Itoa(int(a.cfg.Wire.MaxRequestBytes))},
	}
	for _, d := range topicConfigDefs {
		switch d.name {
		case "max.message.bytes":
			out = append(out, [2]string{"message.max.bytes", d.def})
		case "retention.ms":
			out = append(out, [2]string{"log.retention.ms", d.def})
		case "retention.bytes":
			out = append(out, [2]string{"log.retention.bytes", d.def})
		case "cleanup.policy":
			out = append(out, [2]string{"log.cleanup.policy", d.def})
		case "compression.type":
			out = append(out, [2]string{"compression.type", d.def})
		}
	}
	return out
}

func (a *Agent) handleAlterConfigs(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.AlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	az := a.access(c)
	for _, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		if code := az.configs(metastore.OpAlterConfigs, rr.ResourceType, rr.ResourceName); code != 0 {
			sr.ErrorCode = code
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		code, msg := a.alterConfig(ctx, rr.ResourceType, rr.ResourceName, req.ValidateOnly, func(map[string]string) (map[string]string, error) {
			next := make(map[string]string) // AlterConfigs replaces the whole set
			for _, c := range rr.Configs {
				if c.Value != nil {
					next[c.Name] = *c.Value
				}
			}
			return next, nil
		})
		sr.ErrorCode = code
		if msg != "" {
			sr.ErrorMessage = &msg
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return wire.Respond(resp)
}

func (a *Agent) handleIncrementalAlterConfigs(ctx context.Context, c *wire.Conn, kreq kmsg.Request) wire.Reply {
	req := kreq.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	az := a.access(c)
	for _, rr := range req.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		if code := az.configs(metastore.OpAlterConfigs, rr.ResourceType, rr.ResourceName); code != 0 {
			sr.ErrorCode = code
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		code, msg := a.alterConfig(ctx, rr.ResourceType, rr.ResourceName, req.ValidateOnly, func(cur map[string]string) (map[string]string, error) {
			next := make(map[string]string, len(cur))
			for k, v := range cur {
				next[k] = v
			}
			for _, c := range rr.Configs {
				val := ""
				if c.Value != nil {
					val = *c.Value
				}
				switch c.Op {
				case kmsg.IncrementalAlterConfigOpSet:
					next[c.Name] = val
				case kmsg.IncrementalAlterConfigOpDelete:
					delete(next, c.Name)
				case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
					if c.Name != "cleanup.policy" {
						return nil, fmt.Errorf("%s is not a list config; APPEND and SUBTRACT do not apply", c.Name)
					}
					next[c.Name] = editList(currentOrDefault(next, c.Name), val, c.Op == kmsg.IncrementalAlterConfigOpAppend)
				default:
					return nil, fmt.Errorf("unknown operation %d", c.Op)
				}
			}
			return next, nil
		})
		sr.ErrorCode = code
		if msg != "" {
			sr.ErrorMessage = &msg
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return wire.Respond(resp)
}

func currentOrDefault(m map[string]string, name string) string {
	if v, ok := m[name]; ok {
		return v
	}
	d, _ := lookupTopicConfig(name)
	return d.def
}

// editList appends or removes the comma-separated items of val.
func editList(cur, val string, add bool) string {
	var items []string
	if cur != "" {
		items = strings.Split(cur, ",")
	}
	for _, v := range strings.Split(val, ",") {
		idx := -1
		for i, it := range items {
			if it == v {
				idx = i
			}
		}
		switch {
		case add && idx < 0:
			items = append(items, v)
		case !add && idx >= 0:
			items = append(items[:idx], items[idx+1:]...)
		}
	}
	return strings.Join(items, ",")
}

// alterConfig alters a group's configs (alterGroupConfig) or a topic's
// (alterTopicConfig).
func (a *Agent) alterConfig(ctx context.Context, rt kmsg.ConfigResourceType, name string, validateOnly bool, edit func(map[string]string) (map[string]string, error)) (int16, string) {
	if rt == kmsg.ConfigResourceTypeGroupConfig {
		return a.alterGroupConfig(ctx, name, validateOnly, edit)
	}
	return a.alterTopicConfig(ctx, rt, name, validateOnly, edit)
}

// alterTopicConfig computes a topic's new config with edit, validates every
// key, and stores it unless validateOnly.
func (a *Agent) alterTopicConfig(ctx context.Context, rt kmsg.ConfigResourceType, name string, validateOnly bool, edit func(map[string]string) (map[string]string, error)) (int16, string) {
	switch rt {
	case kmsg.ConfigResourceTypeTopic:
		if a.internal.byName(name) != nil {
			return kerr.InvalidRequest.Code, "the configs of internal topic " + name + " are fixed"
		}
	case kmsg.ConfigResourceTypeBroker:
		return kerr.InvalidRequest.Code, "broker configs are static in Silt: set them in the agent's configuration"
	default:
		return kerr.InvalidRequest.Code, "Silt alters topic and group configs only"
	}
	// Read, edit, compare-and-set: a concurrent change to the same topic
	// (through this agent or another) makes the write fail, and the edit is
	// applied again to what is stored now, so no change is lost.
	for attempt := 0; ; attempt++ {
		t, err := a.store.Topic(ctx, name)
		if err != nil {
			return errorCode(err), err.Error()
		}
		next, err := edit(t.Config) // edit builds a new map
		if err != nil {
			return kerr.InvalidConfig.Code, err.Error()
		}
		for k, v := range next {
			if err := validateTopicConfig(k, v); err != nil {
				return kerr.InvalidConfig.Code, err.Error()
			}
		}
		if validateOnly {
			return 0, ""
		}
		err = a.store.SetTopicConfig(ctx, name, next, t.Config)
		if errors.Is(err, metastore.ErrConfigChanged) && attempt < 16 {
			continue
		}
		if err != nil {
			return errorCode(err), err.Error()
		}
		t.Config = next
		a.topics.Put(t)
		return 0, ""
	}
}
