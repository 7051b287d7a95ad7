package deploy

import (
	"context"
	"maps"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	root := repoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := loader.LoadWithContext(ctx, types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "docker-compose.yml")}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("silt", true) })
	if err != nil {
		t.Fatalf("load docker-compose.yml with the compose schema: %v", err)
	}
	return p
}

// pinnedTag matches image references with an explicit tag other than latest.
var pinnedTag = regexp.MustCompile(`^[^:@]+(:[A-Za-z0-9_][A-Za-z0-9_.-]*|@sha256:[0-9a-f]{64})$`)

func TestCompose(t *testing.T) {
	p := loadCompose(t)
	root := repoRoot(t)

	var agents []types.ServiceConfig
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		s := p.Services[name]
		if s.Build != nil {
			agents = append(agents, s)
			continue
		}
		if !pinnedTag.MatchString(s.Image) || strings.HasSuffix(s.Image, ":latest") {
			t.Errorf("service %s: image %q is not pinned to a tag", name, s.Image)
		}
	}
	if len(agents) != 3 {
		t.Fatalf("want 3 silt agents built from deploy/Dockerfile, got %d", len(agents))
	}

	pg, ok := p.Services["postgres"]
	if !ok || pg.HealthCheck == nil || len(pg.HealthCheck.Test) == 0 {
		t.Fatalf("postgres service with a healthcheck: missing")
	}
	minio, ok := p.Services["minio"]
	if !ok || !strings.HasPrefix(minio.Image, "minio/minio:RELEASE.") || minio.HealthCheck == nil {
		t.Fatalf("minio service pinned to a RELEASE tag with a healthcheck: got %+v", minio.Image)
	}
	mc, ok := p.Services["createbucket"]
	if !ok || !strings.HasPrefix(mc.Image, "minio/mc:RELEASE.") {
		t.Fatalf("createbucket one-shot on minio/mc at a RELEASE tag: missing")
	}
	if c := mc.DependsOn["minio"].Condition; c != types.ServiceConditionHealthy {
		t.Errorf("createbucket depends on minio with %q, want service_healthy", c)
	}
	mcScript := strings.Join(append(append([]string{}, mc.Entrypoint...), mc.Command...), " ")

	var advertised []string
	for _, a := range agents {
		name := a.Name
		if a.Build.Dockerfile != "deploy/Dockerfile" && a.Build.Dockerfile != filepath.Join(root, "deploy/Dockerfile") {
			t.Errorf("%s: built from %q, want deploy/Dockerfile", name, a.Build.Dockerfile)
		}
		if ctxDir, _ := filepath.Abs(filepath.Join(root, a.Build.Context)); filepath.Clean(a.Build.Context) != root && ctxDir != root {
			t.Errorf("%s: build context %q, want the repository root", name, a.Build.Context)
		}
		if !slices.Equal([]string(a.Command), []string{"agent"}) {
			t.Errorf("%s: command %q, want [agent]", name, a.Command)
		}
		if c := a.DependsOn["postgres"].Condition; c != types.ServiceConditionHealthy {
			t.Errorf("%s: depends on postgres with %q, want service_healthy", name, c)
		}
		if c := a.DependsOn["createbucket"].Condition; c != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("%s: depends on createbucket with %q, want service_completed_successfully", name, c)
		}

		env := map[string]string{}
		for k, v := range a.Environment {
			if v == nil {
				t.Errorf("%s: environment %s has no value", name, k)
				continue
			}
			env[k] = *v
		}
		cfg := checkEnvApplied(t, "compose "+name, env)

		// Kafka: listen and advertise on the same port, published as is, so
		// the advertised address works on the compose network and (through
		// /etc/hosts) from the host.
		listen, adv := kafkaListener(t, cfg)
		if !listensOnAllInterfaces(listen) {
			t.Errorf("%s: listen %q is not reachable from other containers", name, listen)
		}
		kafkaPort := port(t, name+" listen", listen)
		advHost, _, _ := net.SplitHostPort(adv)
		if port(t, name+" advertise", adv) != kafkaPort {
			t.Errorf("%s: advertise %q and listen %q differ in port", name, adv, listen)
		}
		if advHost != name && advHost != a.Hostname {
			t.Errorf("%s: advertises host %q, not its service name", name, advHost)
		}
		advertised = append(advertised, adv)
		if !hasPort(a.Ports, kafkaPort, strconv.Itoa(kafkaPort)) {
			t.Errorf("%s: Kafka port %d not published as %d", name, kafkaPort, kafkaPort)
		}
		if !listensOnAllInterfaces(cfg["http.listen"]) {
			t.Errorf("%s: http.listen %q is not reachable from outside the container", name, cfg["http.listen"])
		}
		if httpPort := port(t, name+" http.listen", cfg["http.listen"]); !hasPort(a.Ports, httpPort, "") {
			t.Errorf("%s: http port %d not published", name, httpPort)
		}

		if a.StopGracePeriod == nil || time.Duration(*a.StopGracePeriod) <= shutdownGrace(t, cfg) {
			t.Errorf("%s: stop_grace_period %v must exceed shutdown.grace %s", name, a.StopGracePeriod, cfg["shutdown.grace"])
		}

		// The stores point at the compose services, and the bucket exists.
		if !strings.Contains(cfg["metastore.url"], "@postgres:5432/") {
			t.Errorf("%s: metastore.url %q does not name the postgres service", name, cfg["metastore.url"])
		}
		bucketURL := cfg["bucket.url"]
		if !strings.Contains(bucketURL, "endpoint=http://minio:9000") || !strings.Contains(bucketURL, "path_style=true") {
			t.Errorf("%s: bucket.url %q does not use the minio service path-style", name, bucketURL)
		}
		bucket := strings.TrimPrefix(bucketURL, "s3://")
		bucket = bucket[:strings.IndexAny(bucket, "/?")]
		if !strings.Contains(mcScript, "mb") || !strings.Contains(mcScript, "/"+bucket) {
			t.Errorf("createbucket does not create bucket %q: %s", bucket, mcScript)
		}
		if env["AWS_ACCESS_KEY_ID"] != *minio.Environment["MINIO_ROOT_USER"] ||
			env["AWS_SECRET_ACCESS_KEY"] != *minio.Environment["MINIO_ROOT_PASSWORD"] {
			t.Errorf("%s: AWS credentials do not match MinIO's root user", name)
		}
	}
	if len(slices.Compact(slices.Sorted(slices.Values(advertised)))) != len(advertised) {
		t.Errorf("agents share advertise addresses: %v", advertised)
	}

	// The console bootstraps from every agent.
	console, ok := p.Services["console"]
	if !ok || !strings.HasPrefix(console.Image, "redpandadata/console:") {
		t.Fatalf("console service on redpandadata/console: missing")
	}
	brokers := console.Environment["KAFKA_BROKERS"]
	if brokers == nil {
		t.Fatalf("console: KAFKA_BROKERS not set")
	}
	for _, adv := range advertised {
		if !slices.Contains(strings.Split(*brokers, ","), adv) {
			t.Errorf("console KAFKA_BROKERS %q lacks agent %s", *brokers, adv)
		}
	}
}

func hasPort(ports []types.ServicePortConfig, target int, published string) bool {
	for _, p := range ports {
		if int(p.Target) == target && (published == "" || p.Published == published) {
			return true
		}
	}
	return false
}

// --- deploy/Dockerfile -------------------------------------------------------
