package deploy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/siltstream/silt/internal/testenv"
	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	k8syaml "sigs.k8s.io/yaml"
)

// repoRoot is the module root, one level up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// effectiveConfig runs `silt config show --strict-env` with env (NAME=value)
// as the only SILT_ variables, so an unknown SILT_ name or a bad value fails,
// and returns the printed configuration flattened to dotted keys.
func effectiveConfig(t *testing.T, env map[string]string) map[string]string {
	t.Helper()
	bin := testenv.SiltBinary(t)
	cmd := exec.Command(bin, "config", "show", "--strict-env")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SILT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("silt config show --strict-env with %v: %v\n%s", env, err, stderr.String())
	}
	var tree map[string]any
	if err := yaml.Unmarshal(stdout.Bytes(), &tree); err != nil {
		t.Fatalf("config show output is not YAML: %v\n%s", err, stdout.String())
	}
	flat := map[string]string{}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			if sub, ok := v.(map[string]any); ok {
				walk(prefix+k+".", sub)
				continue
			}
			flat[prefix+k] = fmt.Sprint(v)
		}
	}
	walk("", tree)
	return flat
}

// checkEnvApplied asserts that every SILT_ variable of env is reflected by
// the effective configuration (secrets are masked, so those only match up
// to the mask), and returns the configuration.
func checkEnvApplied(t *testing.T, what string, env map[string]string) map[string]string {
	t.Helper()
	cfg := effectiveConfig(t, env)
	byEnv := map[string]string{}
	for key := range cfg {
		byEnv["SILT_"+strings.ToUpper(strings.ReplaceAll(key, ".", "_"))] = key
	}
	for name, val := range env {
		if !strings.HasPrefix(name, "SILT_") {
			continue
		}
		key, ok := byEnv[name]
		if !ok {
			t.Errorf("%s: %s is not a config key of silt agent", what, name)
			continue
		}
		got := cfg[key]
		if strings.Contains(got, "xxxxx") {
			continue // masked: a password was there
		}
		if got != val {
			t.Errorf("%s: %s=%q but silt config show says %s: %q", what, name, val, key, got)
		}
	}
	return cfg
}

func port(t *testing.T, what, hostport string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatalf("%s: %q is not host:port: %v", what, hostport, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%s: %q: bad port", what, hostport)
	}
	return n
}

// listensOnAllInterfaces: a probe or another container reaches the agent
// only if it does not listen on loopback.
func listensOnAllInterfaces(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	return err == nil && (host == "" || host == "0.0.0.0" || host == "::")
}

func shutdownGrace(t *testing.T, cfg map[string]string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(cfg["shutdown.grace"])
	if err != nil {
		t.Fatalf("shutdown.grace %q: %v", cfg["shutdown.grace"], err)
	}
	return d
}

// --- docker-compose.yml ------------------------------------------------------

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
		if !listensOnAllInterfaces(cfg["listen"]) {
			t.Errorf("%s: listen %q is not reachable from other containers", name, cfg["listen"])
		}
		kafkaPort := port(t, name+" listen", cfg["listen"])
		adv := cfg["advertise"]
		advHost, _, _ := net.SplitHostPort(adv)
		if port(t, name+" advertise", adv) != kafkaPort {
			t.Errorf("%s: advertise %q and listen %q differ in port", name, adv, cfg["listen"])
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

type instruction struct {
	cmd, args string
}

// parseDockerfile returns the instructions, continuation lines joined and
// comments dropped.
func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDockerfile(t *testing.T) {
	root := repoRoot(t)
	ins := parseDockerfile(t, filepath.Join(root, "deploy", "Dockerfile"))
	var stages [][]instruction
	args := map[string]string{}
	for _, in := range ins {
		switch {
		case in.cmd == "FROM":
			stages = append(stages, nil)
		case in.cmd == "ARG" && len(stages) == 0:
			k, v, _ := strings.Cut(in.args, "=")
			args[k] = v
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], in)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage build, got %d stages", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]

	// Builder: Go at least as new as go.mod asks, static binary.
	from := strings.Fields(build[0].args)
	image := from[len(from)-3] // ... IMAGE AS NAME
	image = strings.ReplaceAll(image, "${GO_VERSION}", args["GO_VERSION"])
	if !strings.HasPrefix(image, "golang:") {
		t.Fatalf("builder stage FROM %q, want golang:", image)
	}
	if want := goModVersion(t, root); !versionAtLeast(strings.TrimPrefix(strings.SplitN(image, "-", 2)[0], "golang:"), want) {
		t.Errorf("builder %s is older than go.mod's go %s", image, want)
	}
	var buildRun string
	for _, in := range build {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			buildRun = in.args
		}
	}
	if !strings.Contains(buildRun, "CGO_ENABLED=0") || !strings.Contains(buildRun, "./cmd/silt") {
		t.Errorf("builder does not build ./cmd/silt with CGO_ENABLED=0: %q", buildRun)
	}

	// Final: distroless static or scratch, non-root, entrypoint silt, ports.
	finalFrom := strings.Fields(final[0].args)[0]
	if !strings.HasPrefix(finalFrom, "gcr.io/distroless/static") && finalFrom != "scratch" {
		t.Errorf("final stage FROM %q, want distroless/static or scratch", finalFrom)
	}
	var user, entrypoint, expose string
	env := map[string]string{}
	for _, in := range final {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entrypoint = in.args
		case "EXPOSE":
			expose += " " + in.args
		case "ENV":
			for _, kv := range strings.Fields(in.args) {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
		}
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "root" || u == "0" {
		t.Errorf("final stage USER %q, want a non-root user", user)
	} else if _, err := strconv.Atoi(u); err != nil {
		t.Errorf("USER %q is not numeric: Kubernetes runAsNonRoot cannot verify a user name", user)
	}
	if !strings.HasPrefix(entrypoint, "[") || !strings.Contains(entrypoint, `/silt"`) {
		t.Errorf("ENTRYPOINT %q, want the exec form running silt", entrypoint)
	}
	cfg := checkEnvApplied(t, "Dockerfile ENV", env)
	for _, key := range []string{"listen", "http.listen"} {
		p := strconv.Itoa(port(t, key, cfg[key]))
		if !slices.Contains(strings.Fields(expose), p) {
			t.Errorf("EXPOSE %q lacks the %s port %s", expose, key, p)
		}
		if !listensOnAllInterfaces(cfg[key]) {
			t.Errorf("image default %s %q is not reachable from outside the container", key, cfg[key])
		}
	}
	ignore, err := os.ReadFile(filepath.Join(root, "deploy", "Dockerfile.dockerignore"))
	if err != nil {
		t.Fatalf("deploy/Dockerfile.dockerignore: %v", err)
	}
	for _, needed := range []string{"go.mod", "go.sum", "cmd", "metastore"} {
		for _, line := range strings.Split(string(ignore), "\n") {
			if strings.TrimSpace(line) == needed {
				t.Errorf("Dockerfile.dockerignore excludes %s, which the build needs", needed)
			}
		}
	}
}

func goModVersion(t *testing.T, root string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return string(m[1])
}

// versionAtLeast compares major.minor versions.
func versionAtLeast(have, want string) bool {
	parse := func(s string) (int, int) {
		a, b, _ := strings.Cut(s, ".")
		b, _, _ = strings.Cut(b, ".")
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return x, y
	}
	h1, h2 := parse(have)
	w1, w2 := parse(want)
	return h1 > w1 || (h1 == w1 && h2 >= w2)
}

// --- deploy/kubernetes -------------------------------------------------------

// kustomization mirrors the fields of kustomize.config.k8s.io/v1beta1
// Kustomization that the manifests use (decoded strictly, so a field this
// struct lacks fails the test rather than being ignored).
type kustomization struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Labels     []struct {
		Pairs            map[string]string `json:"pairs"`
		IncludeSelectors bool              `json:"includeSelectors,omitempty"`
	} `json:"labels,omitempty"`
	Resources []string `json:"resources"`
	Images    []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
	} `json:"images,omitempty"`
}

// serviceMonitor mirrors monitoring.coreos.com/v1 ServiceMonitor's fields
// used here (the Prometheus Operator module is too heavy to import for one
// type); decoded strictly.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

type manifests struct {
	kust       kustomization
	deploy     appsv1.Deployment
	service    corev1.Service
	hpa        autoscalingv2.HorizontalPodAutoscaler
	pdb        policyv1.PodDisruptionBudget
	configMap  corev1.ConfigMap
	secret     corev1.Secret
	monitor    serviceMonitor
	account    corev1.ServiceAccount
	seenByFile map[string]string // file → kind
}

// loadManifests decodes every file of deploy/kubernetes strictly into its
// real Kubernetes type, chosen by apiVersion and kind.
func loadManifests(t *testing.T) *manifests {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "deploy", "kubernetes")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", dir, err)
	}
	m := &manifests{seenByFile: map[string]string{}}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs := regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1)
		if len(docs) != 1 {
			t.Fatalf("%s: one object per file, please", f)
		}
		var tm metav1.TypeMeta
		if err := k8syaml.Unmarshal(b, &tm); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var into any
		switch tm.APIVersion + " " + tm.Kind {
		case "kustomize.config.k8s.io/v1beta1 Kustomization":
			into = &m.kust
		case "apps/v1 Deployment":
			into = &m.deploy
		case "v1 Service":
			into = &m.service
		case "autoscaling/v2 HorizontalPodAutoscaler":
			into = &m.hpa
		case "policy/v1 PodDisruptionBudget":
			into = &m.pdb
		case "v1 ConfigMap":
			into = &m.configMap
		case "v1 Secret":
			into = &m.secret
		case "v1 ServiceAccount":
			into = &m.account
		case "monitoring.coreos.com/v1 ServiceMonitor":
			into = &m.monitor
		default:
			t.Fatalf("%s: unexpected %s %s", f, tm.APIVersion, tm.Kind)
		}
		if err := k8syaml.UnmarshalStrict(b, into); err != nil {
			t.Fatalf("%s does not match the %s schema: %v", f, tm.Kind, err)
		}
		base := filepath.Base(f)
		if prev, dup := m.seenByFile[base]; dup {
			t.Fatalf("%s: second %s", base, prev)
		}
		m.seenByFile[base] = tm.Kind
	}
	for _, want := range []string{"Kustomization", "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap", "ServiceMonitor"} {
		found := false
		for _, k := range m.seenByFile {
			found = found || k == want
		}
		if !found {
			t.Errorf("deploy/kubernetes has no %s", want)
		}
	}
	return m
}

func selects(sel *metav1.LabelSelector, labels map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil || s.Empty() {
		return false
	}
	return s.Matches(labelSet(labels))
}

type labelSet map[string]string

func (l labelSet) Has(k string) bool   { _, ok := l[k]; return ok }
func (l labelSet) Get(k string) string { return l[k] }
func (l labelSet) Lookup(k string) (string, bool) {
	v, ok := l[k]
	return v, ok
}

func TestKubernetes(t *testing.T) {
	m := loadManifests(t)

	// Kustomization: every listed file exists; the optional ones are left out.
	for _, r := range m.kust.Resources {
		if _, ok := m.seenByFile[r]; !ok {
			t.Errorf("kustomization lists %s, which is not a manifest here", r)
		}
	}
	for f, kind := range m.seenByFile {
		optional := kind == "ServiceMonitor" || kind == "Secret" || kind == "Kustomization"
		if listed := slices.Contains(m.kust.Resources, f); listed == optional {
			t.Errorf("%s (%s): in kustomization resources = %v", f, kind, listed)
		}
	}

	d := &m.deploy
	pod := &d.Spec.Template
	if !selects(d.Spec.Selector, pod.Labels) {
		t.Fatalf("Deployment selector %v does not select its pods %v", d.Spec.Selector, pod.Labels)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(pod.Spec.Containers))
	}
	c := &pod.Spec.Containers[0]
	if !slices.Equal(c.Args, []string{"agent"}) || len(c.Command) != 0 {
		t.Errorf("container command %q args %q, want the image entrypoint with args [agent]", c.Command, c.Args)
	}
	if sc := pod.Spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("pod does not require runAsNonRoot")
	}

	// Environment: ConfigMap + Secret + explicit env, as the agent sees it.
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			if ef.ConfigMapRef.Name != m.configMap.Name {
				t.Errorf("envFrom ConfigMap %q, but the ConfigMap is %q", ef.ConfigMapRef.Name, m.configMap.Name)
			}
			for k, v := range m.configMap.Data {
				env[k] = v
			}
		case ef.SecretRef != nil:
			if ef.SecretRef.Name != m.secret.Name {
				t.Errorf("envFrom Secret %q, but secret.example.yaml defines %q", ef.SecretRef.Name, m.secret.Name)
			}
			for k, v := range m.secret.StringData {
				if !strings.HasPrefix(k, "SILT_") && !strings.HasPrefix(k, "AWS_") {
					t.Errorf("Secret key %s is neither a SILT_ key nor AWS credentials", k)
				}
				env[k] = v
			}
		}
	}
	vars := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		vars[e.Name] = e
	}
	podIP := vars["POD_IP"]
	if podIP.ValueFrom == nil || podIP.ValueFrom.FieldRef == nil || podIP.ValueFrom.FieldRef.FieldPath != "status.podIP" {
		t.Errorf("POD_IP is not the downward API's status.podIP: %+v", podIP)
	}
	adv := vars["SILT_ADVERTISE"]
	if !strings.HasPrefix(adv.Value, "$(POD_IP):") {
		t.Errorf("SILT_ADVERTISE = %q, want $(POD_IP):port", adv.Value)
	}
	gmp := vars["GOMAXPROCS"]
	if gmp.ValueFrom == nil || gmp.ValueFrom.ResourceFieldRef == nil || gmp.ValueFrom.ResourceFieldRef.Resource != "limits.cpu" {
		t.Errorf("GOMAXPROCS is not taken from limits.cpu: %+v", gmp)
	}
	if _, ok := c.Resources.Limits[corev1.ResourceCPU]; !ok {
		t.Errorf("no CPU limit: GOMAXPROCS would be the node's core count")
	}
	if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
		t.Errorf("no CPU request: the HPA's CPU utilization is undefined")
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env[e.Name] = strings.ReplaceAll(e.Value, "$(POD_IP)", "10.1.2.3")
		}
	}
	cfg := checkEnvApplied(t, "kubernetes agent", env)

	// Ports: container ports = listen settings = Service targets = probes.
	kafkaPort := port(t, "listen", cfg["listen"])
	httpPort := port(t, "http.listen", cfg["http.listen"])
	if !listensOnAllInterfaces(cfg["listen"]) || !listensOnAllInterfaces(cfg["http.listen"]) {
		t.Errorf("listen %q / http.listen %q: the kubelet and clients reach the pod IP, not loopback", cfg["listen"], cfg["http.listen"])
	}
	if got := port(t, "advertise", cfg["advertise"]); got != kafkaPort {
		t.Errorf("advertise port %d != listen port %d", got, kafkaPort)
	}
	containerPorts := map[string]int32{}
	for _, p := range c.Ports {
		containerPorts[p.Name] = p.ContainerPort
	}
	if containerPorts["kafka"] != int32(kafkaPort) || containerPorts["http"] != int32(httpPort) {
		t.Errorf("container ports %v, want kafka=%d http=%d", containerPorts, kafkaPort, httpPort)
	}
	resolve := func(p intstr.IntOrString) int32 {
		if p.Type == intstr.String {
			return containerPorts[p.StrVal]
		}
		return p.IntVal
	}
	probe := func(what string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s: want an httpGet probe on %s", what, path)
			return
		}
		if p.HTTPGet.Path != path || resolve(p.HTTPGet.Port) != int32(httpPort) {
			t.Errorf("%s: GET %s on port %v, want %s on %d", what, p.HTTPGet.Path, p.HTTPGet.Port.String(), path, httpPort)
		}
	}
	probe("readinessProbe", c.ReadinessProbe, "/readyz")
	probe("livenessProbe", c.LivenessProbe, "/livez")
	if c.StartupProbe != nil {
		probe("startupProbe", c.StartupProbe, "/livez")
	}

	// Drain: the grace period covers the preStop pause and shutdown.grace.
	var preStop time.Duration
	if lc := c.Lifecycle; lc != nil && lc.PreStop != nil && lc.PreStop.Sleep != nil {
		preStop = time.Duration(lc.PreStop.Sleep.Seconds) * time.Second
	}
	if lc := c.Lifecycle; lc != nil && lc.PreStop != nil && lc.PreStop.Exec != nil {
		t.Errorf("preStop exec: the distroless image has no shell or sleep binary")
	}
	tgps := pod.Spec.TerminationGracePeriodSeconds
	if grace := shutdownGrace(t, cfg); tgps == nil || time.Duration(*tgps)*time.Second <= preStop+grace {
		t.Errorf("terminationGracePeriodSeconds %v must exceed preStop %v + shutdown.grace %v", tgps, preStop, grace)
	}

	// Service: selects the pods, targets the named container ports.
	if !selects(&metav1.LabelSelector{MatchLabels: m.service.Spec.Selector}, pod.Labels) {
		t.Errorf("Service selector %v does not select the agents %v", m.service.Spec.Selector, pod.Labels)
	}
	svcPorts := map[string]corev1.ServicePort{}
	for _, p := range m.service.Spec.Ports {
		svcPorts[p.Name] = p
		if resolve(p.TargetPort) == 0 {
			t.Errorf("Service port %s targets %v, which is no container port", p.Name, p.TargetPort.String())
		}
	}
	if p := svcPorts["kafka"]; p.Port != int32(kafkaPort) || resolve(p.TargetPort) != int32(kafkaPort) {
		t.Errorf("Service kafka port %d → %v, want %d → %d", p.Port, p.TargetPort.String(), kafkaPort, kafkaPort)
	}
	if p := svcPorts["http"]; resolve(p.TargetPort) != int32(httpPort) {
		t.Errorf("Service http port → %v, want %d", p.TargetPort.String(), httpPort)
	}

	// HPA on CPU, scaling this Deployment.
	ref := m.hpa.Spec.ScaleTargetRef
	if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != d.Name {
		t.Errorf("HPA scales %+v, want apps/v1 Deployment %s", ref, d.Name)
	}
	cpu := false
	for _, mt := range m.hpa.Spec.Metrics {
		cpu = cpu || (mt.Type == autoscalingv2.ResourceMetricSourceType && mt.Resource != nil &&
			mt.Resource.Name == corev1.ResourceCPU && mt.Resource.Target.Type == autoscalingv2.UtilizationMetricType)
	}
	if !cpu {
		t.Errorf("HPA has no CPU utilization metric")
	}
	if m.hpa.Spec.MinReplicas == nil || *m.hpa.Spec.MinReplicas < 2 || m.hpa.Spec.MaxReplicas < *m.hpa.Spec.MinReplicas {
		t.Errorf("HPA replicas %v..%d: want at least 2 so the PDB lets nodes drain", m.hpa.Spec.MinReplicas, m.hpa.Spec.MaxReplicas)
	}

	// PDB covers the agents and allows progress.
	if !selects(m.pdb.Spec.Selector, pod.Labels) {
		t.Errorf("PodDisruptionBudget does not select the agents")
	}
	if m.pdb.Spec.MaxUnavailable == nil && m.pdb.Spec.MinAvailable == nil {
		t.Errorf("PodDisruptionBudget sets neither maxUnavailable nor minAvailable")
	}

	// ServiceMonitor scrapes the Service's http port at /metrics.
	if !selects(&m.monitor.Spec.Selector, m.service.Labels) {
		t.Errorf("ServiceMonitor does not select the Service (labels %v)", m.service.Labels)
	}
	for _, ep := range m.monitor.Spec.Endpoints {
		if _, ok := svcPorts[ep.Port]; !ok || ep.Port != "http" || ep.Path != "/metrics" {
			t.Errorf("ServiceMonitor endpoint %s %s, want the Service's http port at /metrics", ep.Port, ep.Path)
		}
	}
	if pod.Spec.ServiceAccountName != "" && pod.Spec.ServiceAccountName != m.account.Name {
		t.Errorf("pods use ServiceAccount %q, the manifest defines %q", pod.Spec.ServiceAccountName, m.account.Name)
	}
	if img := c.Image; !strings.Contains(img, ":") || strings.HasSuffix(img, ":latest") {
		t.Errorf("container image %q is not pinned", img)
	}
}

// TestStrictEnvCatchesTypos makes sure the env check above has teeth.
func TestStrictEnvCatchesTypos(t *testing.T) {
	bin := testenv.SiltBinary(t)
	cmd := exec.Command(bin, "config", "show", "--strict-env")
	cmd.Env = append(os.Environ(), "SILT_FLUSH_INTERVALL=1s")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "SILT_FLUSH_INTERVALL") {
		t.Fatalf("typo in a SILT_ variable: %v\n%s", err, out)
	}
}

// --- deploy/README.md --------------------------------------------------------

// s3Actions maps the S3 API calls of the s3 driver to the IAM actions they
// need. A call missing here fails the test: document its permission first.
var s3Actions = map[string]string{
	"PutObject":     "s3:PutObject",
	"GetObject":     "s3:GetObject",
	"HeadObject":    "s3:GetObject",
	"DeleteObject":  "s3:DeleteObject",
	"HeadBucket":    "s3:ListBucket",
	"ListObjectsV2": "s3:ListBucket",
}

// TestIAMPolicy checks that the operator guide's IAM policy grants exactly
// what the s3 driver calls.
func TestIAMPolicy(t *testing.T) {
	root := repoRoot(t)
	src, err := os.ReadFile(filepath.Join(root, "objectstore", "s3", "s3.go"))
	if err != nil {
		t.Fatal(err)
	}
	calls := regexp.MustCompile(`client\.(\w+)\(|NewListObjectsV2Paginator`).FindAllSubmatch(src, -1)
	need := map[string]bool{}
	for _, c := range calls {
		op := string(c[1])
		if op == "" {
			op = "ListObjectsV2"
		}
		action, ok := s3Actions[op]
		if !ok {
			t.Errorf("the s3 driver calls %s: add its IAM action to deploy/README.md and s3Actions", op)
			continue
		}
		need[action] = true
	}
	if len(need) < 4 {
		t.Fatalf("found only %v in the s3 driver; has it moved?", need)
	}
	readme, err := os.ReadFile(filepath.Join(root, "deploy", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```json\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("deploy/README.md has no IAM policy JSON block")
	}
	var policy struct {
		Version   string
		Statement []struct {
			Sid      string
			Effect   string
			Action   []string
			Resource string
		}
	}
	if err := k8syaml.UnmarshalStrict(m[1], &policy); err != nil {
		t.Fatalf("IAM policy is not valid JSON of the expected shape: %v", err)
	}
	granted := map[string]bool{}
	for _, s := range policy.Statement {
		if s.Effect != "Allow" {
			continue
		}
		for _, a := range s.Action {
			granted[a] = true
			if s.Resource == "" || (a == "s3:ListBucket") == strings.HasSuffix(s.Resource, "/*") {
				t.Errorf("%s granted on %q: bucket actions go on the bucket ARN, object actions on objects", a, s.Resource)
			}
		}
	}
	for a := range need {
		if !granted[a] {
			t.Errorf("IAM policy lacks %s, which the s3 driver needs", a)
		}
	}
	for a := range granted {
		if !need[a] {
			t.Errorf("IAM policy grants %s, which the s3 driver does not use", a)
		}
	}
}
