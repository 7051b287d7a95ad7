package main

import (
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// masked replaces every secret `silt config show` prints.
const masked = "xxxxx"

// extraEnv are SILT_ variables the binary reads that are not config keys.
var extraEnv = map[string]string{
	"SILT_CONFIG":  "the YAML config file (--config)",
	"SILT_BROKERS": "bootstrap brokers of the topic and group commands (--brokers)",
}

func newConfigCmd(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Inspect the configuration an agent would run with",
	}
	cmd.AddCommand(newConfigShowCmd(stdout))
	return cmd
}

func newConfigShowCmd(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Print the effective configuration of silt agent as YAML, secrets masked",
		Long: `Resolve every key of silt agent's config tree exactly as silt agent would
(flag > SILT_* environment > --config file > default), validate it, and print
it as YAML that can be used as a --config file. Passwords in URLs and values
of keys or parameters that look like secrets are replaced by xxxxx.

With --strict-env, SILT_* environment variables that match no key (a typo such
as SILT_FLUSH_INTERVALL, which silt agent would silently ignore) are an error.`,
		Args: cobra.NoArgs,
	}
	loader := newConfigLoader(cmd.Flags(), agentKeys())
	var strictEnv bool
	cmd.Flags().BoolVar(&strictEnv, "strict-env", false, "fail on SILT_* environment variables that name no config key")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if strictEnv {
			if unknown := unknownEnv(loader.keys, os.Environ()); len(unknown) > 0 {
				return configErrorf("unknown SILT_ environment variable %s (known: %s)",
					strings.Join(unknown, ", "), strings.Join(knownEnv(loader.keys), ", "))
			}
		}
		raw, err := loader.load()
		if err != nil {
			return err
		}
		if _, err := parseSettings(raw, false); err != nil {
			return err
		}
		out, err := configYAML(loader.keys, raw)
		if err != nil {
			return err
		}
		_, err = stdout.Write(out)
		return err
	}
	return cmd
}

// knownEnv lists every SILT_ variable the binary reads, sorted.
func knownEnv(keys []keySpec) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.envName())
	}
	for name := range extraEnv {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// unknownEnv returns the names of SILT_ variables in environ (KEY=value
// pairs) that are neither a key's variable nor one of extraEnv, sorted.
func unknownEnv(keys []keySpec, environ []string) []string {
	known := make(map[string]bool)
	for _, name := range knownEnv(keys) {
		known[name] = true
	}
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "SILT_") && !known[name] {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// configYAML renders raw as a nested YAML tree in the order of keys
// (flush.interval → flush: {interval: …}), typed by kind, secrets masked.
func configYAML(keys []keySpec, raw map[string]string) ([]byte, error) {
	root := &yaml.Node{Kind: yaml.MappingNode}
	for _, k := range keys {
		parts := strings.Split(k.key, ".")
		m := root
		for _, p := range parts[:len(parts)-1] {
			m = childMap(m, p)
		}
		m.Content = append(m.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Value: parts[len(parts)-1]},
			scalarNode(k.kind, maskSecret(k.key, raw[k.key])))
	}
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encode configuration: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode configuration: %w", err)
	}
	return []byte(b.String()), nil
}

// childMap returns the mapping under key in m, adding it if missing.
func childMap(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key && m.Content[i+1].Kind == yaml.MappingNode {
			return m.Content[i+1]
		}
	}
	c := &yaml.Node{Kind: yaml.MappingNode}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, c)
	return c
}

// scalarNode types booleans and integers so the output reads back as the
// same config; everything else (durations and sizes included) is a string.
func scalarNode(k kind, v string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Value: v, Tag: "!!str"}
	switch k {
	case kindBool:
		if _, err := strconv.ParseBool(v); err == nil {
			n.Tag = "!!bool"
		}
	case kindInt:
		if _, err := strconv.ParseInt(v, 10, 64); err == nil {
			n.Tag = "!!int"
		}
	}
	return n
}

// secretName matches key names and URL/DSN parameters that hold secrets.
var secretName = regexp.MustCompile(`(?i)(password|passwd|secret|token|credential|api[_.-]?key|access[_.-]?key|private[_.-]?key)`)

// secretParam matches name=value pairs (URL query parameters, libpq
// key=value strings) whose name looks like a secret.
var secretParam = regexp.MustCompile(`(?i)\b([a-z0-9_.-]*(?:password|passwd|secret|token|credential|api[_.-]?key|access[_.-]?key|private[_.-]?key)[a-z0-9_.-]*)=('[^']*'|[^\s&;]*)`)

// maskSecret hides secrets in the value of key: the whole value if the key
// is named like a secret, else URL passwords and secret-looking parameters.
func maskSecret(key, v string) string {
	if v == "" {
		return v
	}
	if secretName.MatchString(key) {
		return masked
	}
	if u, err := url.Parse(v); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), masked)
			v = u.String()
		}
	}
	return secretParam.ReplaceAllString(v, "${1}="+masked)
}
