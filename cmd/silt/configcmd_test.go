package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs the command line in-process and returns stdout, stderr and
// the exit status.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return stdout.String(), stderr.String(), code
}

// clearSiltEnv unsets SILT_ variables a developer may have exported, for
// the duration of the test.
func clearSiltEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "SILT_") {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
}

func TestMaskSecret(t *testing.T) {
	cases := []struct{ key, in, want string }{
		{"metastore.url", "postgres://user:secret@db:5432/silt", "postgres://user:xxxxx@db:5432/silt"},
		{"metastore.url", "postgres://user@db:5432/silt", "postgres://user@db:5432/silt"},
		{"metastore.url", "postgres://db/silt?sslmode=require&password=hunter2", "postgres://db/silt?sslmode=require&password=xxxxx"},
		{"metastore.url", "host=db user=silt password=hunter2 dbname=silt", "host=db user=silt password=xxxxx dbname=silt"},
		{"bucket.url", "s3://b/p?region=us-east-1&X-Amz-Security-Token=abc", "s3://b/p?region=us-east-1&X-Amz-Security-Token=xxxxx"},
		{"bucket.url", "s3://b/p?region=us-east-1&endpoint=http://minio:9000", "s3://b/p?region=us-east-1&endpoint=http://minio:9000"},
		{"sasl.password", "hunter2", "xxxxx"},
		{"tls.key.secret", "abc", "xxxxx"},
		{"sasl.password", "", ""},
		{"cache.disk.dir", "/var/cache/silt", "/var/cache/silt"},
	}
	for _, c := range cases {
		if got := maskSecret(c.key, c.in); got != c.want {
			t.Errorf("maskSecret(%s, %q) = %q, want %q", c.key, c.in, got, c.want)
		}
	}
}

func TestUnknownEnv(t *testing.T) {
	env := []string{"SILT_FLUSH_INTERVAL=1s", "SILT_FLUSH_INTERVALL=1s", "SILT_CONFIG=x", "SILT_BROKERS=y", "PATH=/bin", "SILTY=1"}
	got := unknownEnv(agentKeys(), env)
	if len(got) != 1 || got[0] != "SILT_FLUSH_INTERVALL" {
		t.Fatalf("unknownEnv = %v, want [SILT_FLUSH_INTERVALL]", got)
	}
}

// TestConfigShow checks that config show reflects every source, masks the
// metastore password, and prints YAML that reads back as the same config.
func TestConfigShow(t *testing.T) {
	clearSiltEnv(t)
	t.Setenv("SILT_METASTORE_URL", "postgres://silt:hunter2@db:5432/silt?sslmode=disable")
	t.Setenv("SILT_FLUSH_INTERVAL", "250ms")
	file := filepath.Join(t.TempDir(), "silt.yaml")
	if err := os.WriteFile(file, []byte("zone: from-file\nflush:\n  bytes: 1MiB\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, "config", "show", "--config", file, "--num-partitions", "6", "--auto-create-topics")
	if code != 0 {
		t.Fatalf("config show: exit %d\n%s", code, errOut)
	}
	for _, want := range []string{
		"zone: from-file\n",
		"  interval: 250ms\n",
		"  bytes: 1MiB\n",
		"  partitions: 6\n",
		"    topics: true\n",
		"url: postgres://silt:xxxxx@db:5432/silt?sslmode=disable\n",
		"  listen: 127.0.0.1:9644\n", // a default (http.listen)
	} {
		if !strings.Contains(out, want) {
			t.Errorf("config show lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "hunter2") {
		t.Fatalf("config show leaks the password:\n%s", out)
	}

	// The output is a valid config file: fed back, it shows the same.
	// (Without the environment; the masked password reads back masked.)
	clearSiltEnv(t)
	again := filepath.Join(t.TempDir(), "again.yaml")
	if err := os.WriteFile(again, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	out2, errOut, code := runCLI(t, "config", "show", "--config", again)
	if code != 0 {
		t.Fatalf("config show of its own output: exit %d\n%s\n%s", code, errOut, out)
	}
	if out2 != out {
		t.Errorf("round trip differs:\n%s\n---\n%s", out, out2)
	}
}

func TestConfigShowErrors(t *testing.T) {
	clearSiltEnv(t)
	t.Setenv("SILT_FLUSH_BYTES", "8XB")
	if _, errOut, code := runCLI(t, "config", "show"); code != 2 || !strings.Contains(errOut, "flush.bytes") {
		t.Errorf("bad value: exit %d, stderr %q; want 2 naming flush.bytes", code, errOut)
	}
	clearSiltEnv(t)
	t.Setenv("SILT_BUCKET_ULR", "mem://")
	if _, errOut, code := runCLI(t, "config", "show"); code != 0 {
		t.Errorf("unknown env without --strict-env: exit %d %s", code, errOut)
	}
	if _, errOut, code := runCLI(t, "config", "show", "--strict-env"); code != 2 || !strings.Contains(errOut, "SILT_BUCKET_ULR") {
		t.Errorf("--strict-env with SILT_BUCKET_ULR: exit %d, stderr %q", code, errOut)
	}
}
