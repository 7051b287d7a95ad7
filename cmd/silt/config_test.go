package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// loadKeys resolves keys from args (flags) and an optional YAML file, with
// the process environment as set by the test (t.Setenv).
func loadKeys(t *testing.T, keys []keySpec, yaml string, args ...string) (*configLoader, map[string]string, error) {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	l := newConfigLoader(fs, keys)
	if yaml != "" {
		path := filepath.Join(t.TempDir(), "silt.yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", path)
	}
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse flags %q: %v", args, err)
	}
	raw, err := l.load()
	return l, raw, err
}

func loadSettingsT(t *testing.T, yaml string, args ...string) (settings, error) {
	t.Helper()
	_, raw, err := loadKeys(t, agentKeys(), yaml, args...)
	if err != nil {
		return settings{}, err
	}
	return parseSettings(raw, false)
}

func TestConfigPrecedence(t *testing.T) {
	yaml := `
zone: from-file
flush:
  interval: 1s
  bytes: 1MiB
advertise: file.example:9092
`
	t.Setenv("SILT_FLUSH_INTERVAL", "2s")
	t.Setenv("SILT_ZONE", "from-env")
	s, err := loadSettingsT(t, yaml, "--flush-interval", "3s")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"flag beats env and file (flush.interval)", s.Agent.FlushInterval, 3 * time.Second},
		{"env beats file (zone)", s.Agent.Zone, "from-env"},
		{"file beats default (flush.bytes)", s.Agent.FlushBytes, int64(1 << 20)},
		{"file beats default (advertise)", s.Agent.Advertise, "file.example:9092"},
		{"default (cache.block.bytes)", s.Cache.BlockSize, int64(4 << 20)},
		{"default (http.listen)", s.HTTPListen, "127.0.0.1:9644"},
		{"default (auto.create.topics)", s.Agent.AutoCreateTopics, false},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
}

func TestConfigEnvOnlyKeys(t *testing.T) {
	t.Setenv("SILT_BUCKET_URL", "s3://b/p?region=us-east-1")
	t.Setenv("SILT_METASTORE_URL", "postgres://u@h/db")
	t.Setenv("SILT_FLUSH_MAX_UPLOADS", "7")
	t.Setenv("SILT_AUTO_CREATE_TOPICS", "true")
	t.Setenv("SILT_CACHE_MEMORY_BYTES", "64KiB")
	l, raw, err := loadKeys(t, agentKeys(), "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := parseSettings(raw, false)
	if err != nil {
		t.Fatal(err)
	}
	if s.BucketURL != "s3://b/p?region=us-east-1" || s.MetastoreURL != "postgres://u@h/db" {
		t.Errorf("urls from env: got %q, %q", s.BucketURL, s.MetastoreURL)
	}
	if s.Agent.MaxUploads != 7 || !s.Agent.AutoCreateTopics || s.Cache.MemoryBytes != 64<<10 {
		t.Errorf("env-only keys not picked up: %+v", s.Agent)
	}
	// Unmarshal-style consumers see env-only keys too (BindEnv, not just
	// AutomaticEnv).
	all := l.v.AllSettings()
	bucket, _ := all["bucket"].(map[string]any)
	if bucket["url"] != "s3://b/p?region=us-east-1" {
		t.Errorf("AllSettings misses env-only bucket.url: %v", all["bucket"])
	}
	if !l.isSet("bucket.url") || l.isSet("zone") {
		t.Errorf("isSet: bucket.url=%v zone=%v, want true false", l.isSet("bucket.url"), l.isSet("zone"))
	}
}

func TestConfigFileFlatAndNestedKeys(t *testing.T) {
	s, err := loadSettingsT(t, "flush.interval: 250ms\ncache:\n  memory:\n    bytes: 1GiB\nauto.create.topics: true\nflush.bytes: 1048576\n")
	if err != nil {
		t.Fatal(err)
	}
	if s.Agent.FlushInterval != 250*time.Millisecond || s.Cache.MemoryBytes != 1<<30 ||
		!s.Agent.AutoCreateTopics || s.Agent.FlushBytes != 1<<20 {
		t.Errorf("got %+v", s.Agent)
	}
}

func TestConfigUnknownFileKey(t *testing.T) {
	for _, yaml := range []string{
		"flush:\n  intervall: 1s\n",
		"flush.intervall: 1s\n",
	} {
		_, _, err := loadKeys(t, agentKeys(), yaml)
		var ce *configError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), "flush.intervall") {
			t.Errorf("yaml %q: got %v, want a config error naming flush.intervall", yaml, err)
		}
	}
	// data.dir is a dev key only.
	if _, _, err := loadKeys(t, agentKeys(), "data.dir: /tmp/x\n"); err == nil || !strings.Contains(err.Error(), "data.dir") {
		t.Errorf("data.dir in an agent config: got %v, want an error naming it", err)
	}
	if _, _, err := loadKeys(t, devKeys(), "data.dir: /tmp/x\n"); err != nil {
		t.Errorf("data.dir in a dev config: %v", err)
	}
}

func TestConfigMissingFile(t *testing.T) {
	_, _, err := loadKeys(t, agentKeys(), "", "--config", filepath.Join(t.TempDir(), "nope.yaml"))
	var ce *configError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("got %v, want a config error naming the file", err)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--flush-interval", "abc"}, `flush.interval: invalid duration "abc"`},
		{[]string{"--shutdown-grace", "10"}, `shutdown.grace: invalid duration "10"`},
		{[]string{"--flush-bytes", "8XB"}, `flush.bytes: invalid size "8XB"`},
		{[]string{"--buffer-bytes", "lots"}, `buffer.bytes: invalid size "lots"`},
		{[]string{"--max-request-bytes", "4GiB"}, `max.request.bytes: 4GiB is more than the maximum`},
		{[]string{"--queued-max-request-bytes", "1000"}, `queued.max.request.bytes: must be at least 1024`},
		{[]string{"--fetch-max-bytes", "3GiB"}, `fetch.max.bytes: 3GiB is more than the maximum`},
		{[]string{"--fetch-max-bytes", "100"}, `fetch.max.bytes: must be at least 1024`},
		{[]string{"--num-partitions", "x"}, `num.partitions: invalid integer "x"`},
		{[]string{"--num-partitions", "0"}, `num.partitions: must be at least 1`},
		{[]string{"--flush-max-uploads", "1.5"}, `flush.max.uploads: invalid integer "1.5"`},
		{[]string{"--log-level", "loud"}, `log.level: invalid level "loud"`},
		{[]string{"--log-format", "xml"}, `log.format: invalid format "xml"`},
		{[]string{"--listen", "nohostport"}, `listen: "nohostport" is not host:port`},
		{[]string{"--http-listen", "localhost"}, `http.listen: "localhost" is not host:port`},
		{[]string{"--flush-bytes", "43MiB"}, `buffer.bytes: must be at least three times flush.bytes`},
		{[]string{"--flush-interval", "0s"}, `flush.interval: must be positive`},
		{[]string{"--group-consumer-migration-policy", "sideways"}, `group.consumer.migration.policy: unknown migration policy "sideways"`},
	}
	for _, c := range cases {
		_, err := loadSettingsT(t, "", c.args...)
		var ce *configError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want a config error containing %q", c.args, err, c.want)
		}
	}
	t.Setenv("SILT_CACHE_BLOCK_BYTES", "1 gallon")
	if _, err := loadSettingsT(t, ""); err == nil || !strings.Contains(err.Error(), `cache.block.bytes: invalid size "1 gallon"`) {
		t.Errorf("env: got %v", err)
	}
	t.Setenv("SILT_CACHE_BLOCK_BYTES", "")
	if _, err := loadSettingsT(t, "auto.create.topics: perhaps\n"); err == nil || !strings.Contains(err.Error(), `auto.create.topics: invalid boolean "perhaps"`) {
		t.Errorf("file: got %v", err)
	}
}

func TestParseSize(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "0", want: 0},
		{in: "1048576", want: 1 << 20},
		{in: "1B", want: 1},
		{in: "64KiB", want: 64 << 10},
		{in: "8MiB", want: 8 << 20},
		{in: "8mib", want: 8 << 20},
		{in: "1GiB", want: 1 << 30},
		{in: "2TiB", want: 2 << 40},
		{in: "1KB", want: 1000},
		{in: "1MB", want: 1000 * 1000},
		{in: "1GB", want: 1e9},
		{in: " 8 MiB ", want: 8 << 20},
		{in: "", bad: true},
		{in: "MiB", bad: true},
		{in: "-1", bad: true},
		{in: "1.5MiB", bad: true},
		{in: "8XB", bad: true},
		{in: "8M", bad: true},
		{in: "9223372036854775807", want: 1<<63 - 1},
		{in: "9223372036854775808", bad: true},
		{in: "8589934592GiB", bad: true},
	}
	for _, c := range cases {
		got, err := parseSize(c.in)
		switch {
		case c.bad && err == nil:
			t.Errorf("parseSize(%q) = %d, want an error", c.in, got)
		case !c.bad && err != nil:
			t.Errorf("parseSize(%q): %v", c.in, err)
		case !c.bad && got != c.want:
			t.Errorf("parseSize(%q) = %d, want %d", c.in, got, c.want)
		}
	}
	for _, n := range []int64{0, 1, 1000, 1 << 10, 3 << 20, 100 << 20, 5 << 30} {
		if got, err := parseSize(formatSize(n)); err != nil || got != n {
			t.Errorf("round trip %d via %q: %d, %v", n, formatSize(n), got, err)
		}
	}
}

func TestLogFormatDefault(t *testing.T) {
	for _, c := range []struct {
		terminal bool
		want     string
	}{{true, "text"}, {false, "json"}} {
		_, raw, err := loadKeys(t, agentKeys(), "")
		if err != nil {
			t.Fatal(err)
		}
		s, err := parseSettings(raw, c.terminal)
		if err != nil || s.LogFormat != c.want {
			t.Errorf("terminal=%v: format %q, %v; want %q", c.terminal, s.LogFormat, err, c.want)
		}
	}
}

func TestDevDefaults(t *testing.T) {
	_, raw, err := loadKeys(t, devKeys(), "")
	if err != nil {
		t.Fatal(err)
	}
	if raw["auto.create.topics"] != "true" || raw["data.dir"] != "./silt-data" {
		t.Errorf("dev defaults: %v", raw)
	}
	// listen's default applies unless listeners is set.
	if s, err := parseSettings(raw, false); err != nil || s.Agent.Listen != "127.0.0.1:9092" {
		t.Errorf("dev listen = %q, %v; want 127.0.0.1:9092", s.Agent.Listen, err)
	}
	if got := localURL("file", "/var/lib/silt data/bucket"); got != "file:///var/lib/silt%20data/bucket" {
		t.Errorf("localURL: %s", got)
	}
}

// TestREADMEConfigTable keeps the README's table in step with the keys the
// binary accepts.
func TestREADMEConfigTable(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, k := range append(agentKeys(), devKeys()[len(agentKeys()):]...) {
		prefix := "| `" + k.key + "` | `" + k.envName() + "` | `--" + k.flagName() + "` |"
		i := strings.Index(readme, prefix)
		if i < 0 {
			t.Errorf("README.md: no config table row starting %s", prefix)
			continue
		}
		row := readme[i+len(prefix):]
		row = row[:strings.IndexByte(row, '\n')]
		def := strings.TrimSpace(strings.SplitN(row, "|", 2)[0])
		want := "`" + k.def + "`"
		if k.def == "" {
			want = ""
		}
		if def != want && !strings.HasPrefix(def, want+" ") {
			t.Errorf("README.md row for %s: default %q, want %s", k.key, def, want)
		}
	}
}
