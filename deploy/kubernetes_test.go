package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	k8syaml "sigs.k8s.io/yaml"
)

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

func (l labelSet) Has(k string) bool { _, ok := l[k]; return ok }

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
	if a := vars["SILT_ADVERTISED_LISTENERS"]; a.Value != "" {
		adv = a
	}
	if !strings.HasPrefix(adv.Value, "$(POD_IP):") && !strings.Contains(adv.Value, "://$(POD_IP):") {
		t.Errorf("%s = %q, want the pod IP ($(POD_IP):port)", adv.Name, adv.Value)
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
	listen, advertise := kafkaListener(t, cfg)
	kafkaPort := port(t, "listen", listen)
	httpPort := port(t, "http.listen", cfg["http.listen"])
	if !listensOnAllInterfaces(listen) || !listensOnAllInterfaces(cfg["http.listen"]) {
		t.Errorf("listen %q / http.listen %q: the kubelet and clients reach the pod IP, not loopback", listen, cfg["http.listen"])
	}
	if got := port(t, "advertise", advertise); got != kafkaPort {
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
