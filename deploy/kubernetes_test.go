package deploy

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/edgeprobe/edgeprobe/probe"
)

// manifests are the decoded documents of deploy/kubernetes.
type manifests struct {
	deployments     []appsv1.Deployment
	configMaps      []corev1.ConfigMap
	services        []corev1.Service
	serviceAccounts []corev1.ServiceAccount
	serviceMonitors []monitoringv1.ServiceMonitor
}

// decodeStrict decodes one document into the Kubernetes API type its
// apiVersion and kind name: an unknown or misspelt field, a duplicate key
// or a value of the wrong type fails, as `kubectl apply --validate=strict`
// would.
func (m *manifests) decodeStrict(doc []byte) error {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return err
	}
	var err error
	switch head.APIVersion + " " + head.Kind {
	case "apps/v1 Deployment":
		var v appsv1.Deployment
		if err = yaml.UnmarshalStrict(doc, &v); err == nil {
			m.deployments = append(m.deployments, v)
		}
	case "v1 ConfigMap":
		var v corev1.ConfigMap
		if err = yaml.UnmarshalStrict(doc, &v); err == nil {
			m.configMaps = append(m.configMaps, v)
		}
	case "v1 Service":
		var v corev1.Service
		if err = yaml.UnmarshalStrict(doc, &v); err == nil {
			m.services = append(m.services, v)
		}
	case "v1 ServiceAccount":
		var v corev1.ServiceAccount
		if err = yaml.UnmarshalStrict(doc, &v); err == nil {
			m.serviceAccounts = append(m.serviceAccounts, v)
		}
	case "monitoring.coreos.com/v1 ServiceMonitor":
		var v monitoringv1.ServiceMonitor
		if err = yaml.UnmarshalStrict(doc, &v); err == nil {
			m.serviceMonitors = append(m.serviceMonitors, v)
		}
	default:
		return &unknownKind{head.APIVersion, head.Kind}
	}
	return err
}

type unknownKind struct{ apiVersion, kind string }

func (u *unknownKind) Error() string { return "no API type known for " + u.apiVersion + " " + u.kind }

func loadManifests(t *testing.T) *manifests {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("kubernetes", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	m := &manifests{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range bytes.Split(b, []byte("\n---")) {
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			if err := m.decodeStrict(doc); err != nil {
				t.Errorf("%s document %d: %v", f, i+1, err)
			}
		}
	}
	return m
}

// TestManifestsStrict: the decoder refuses what the API server would: an
// unknown field (a typo of a real one) and a misplaced one.
func TestManifestsStrict(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("kubernetes", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for what, bad := range map[string]string{
		"typo":      strings.Replace(string(b), "replicas: 1", "replica: 1", 1),
		"misplaced": strings.Replace(string(b), "      serviceAccountName: edgeprobe", "      serviceAccountName: edgeprobe\n      livenessProbe: {}", 1),
	} {
		if bad == string(b) {
			t.Fatalf("%s: the manifest changed; update this test", what)
		}
		if err := (&manifests{}).decodeStrict([]byte(bad)); err == nil {
			t.Errorf("%s: decoded without error", what)
		}
	}
}

func TestManifests(t *testing.T) {
	m := loadManifests(t)
	if len(m.deployments) != 1 || len(m.configMaps) != 1 || len(m.services) != 1 || len(m.serviceAccounts) != 1 || len(m.serviceMonitors) != 1 {
		t.Fatalf("want one Deployment, ConfigMap, Service, ServiceAccount and ServiceMonitor; got %d %d %d %d %d",
			len(m.deployments), len(m.configMaps), len(m.services), len(m.serviceAccounts), len(m.serviceMonitors))
	}
	d, cm, svc, sa, sm := m.deployments[0], m.configMaps[0], m.services[0], m.serviceAccounts[0], m.serviceMonitors[0]
	pod := d.Spec.Template

	// The selector picks the pod template; the Service and the
	// ServiceMonitor pick what they should.
	matches := func(sel, labels map[string]string) bool {
		for k, v := range sel {
			if labels[k] != v {
				return false
			}
		}
		return len(sel) > 0
	}
	if d.Spec.Selector == nil || !matches(d.Spec.Selector.MatchLabels, pod.Labels) {
		t.Errorf("Deployment selector %v does not match its pods %v", d.Spec.Selector, pod.Labels)
	}
	if !matches(svc.Spec.Selector, pod.Labels) {
		t.Errorf("Service selector %v does not match the pods %v", svc.Spec.Selector, pod.Labels)
	}
	if !matches(sm.Spec.Selector.MatchLabels, svc.Labels) {
		t.Errorf("ServiceMonitor selector %v does not match the Service %v", sm.Spec.Selector.MatchLabels, svc.Labels)
	}
	if pod.Spec.ServiceAccountName != sa.Name {
		t.Errorf("pods run as %q, the ServiceAccount is %q", pod.Spec.ServiceAccountName, sa.Name)
	}

	// Non-root, read-only, nothing extra.
	psc := pod.Spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 65532 {
		t.Errorf("pod securityContext %+v: want runAsNonRoot and runAsUser 65532 (the image's user)", psc)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("container securityContext %+v: want read-only root, no privilege escalation, all capabilities dropped", sc)
	}

	// Probes on /healthz and /ready through the named metrics port 9470,
	// the port the Service and the ServiceMonitor use.
	var port int32
	for _, p := range c.Ports {
		if p.Name == "metrics" {
			port = p.ContainerPort
		}
	}
	if port != 9470 {
		t.Errorf("container port metrics = %d, want 9470", port)
	}
	for name, pr := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/ready": c.ReadinessProbe} {
		if pr == nil || pr.HTTPGet == nil || pr.HTTPGet.Path != name || pr.HTTPGet.Port.String() != "metrics" {
			t.Errorf("probe for %s: %+v", name, pr)
		}
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "metrics" || svc.Spec.Ports[0].TargetPort.String() != "metrics" {
		t.Errorf("Service ports %+v, want metrics → metrics", svc.Spec.Ports)
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "metrics" || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoints %+v, want port metrics, /metrics", sm.Spec.Endpoints)
	}

	// The config: mounted where the args say, and valid.
	if i := slices.Index(c.Args, "--config"); i < 0 || i+1 >= len(c.Args) || c.Args[i+1] != "/etc/edgeprobe/edgeprobe.yml" {
		t.Fatalf("args %q, want --config /etc/edgeprobe/edgeprobe.yml", c.Args)
	}
	var mounted bool
	for _, vm := range c.VolumeMounts {
		for _, v := range pod.Spec.Volumes {
			if v.Name == vm.Name && vm.MountPath == "/etc/edgeprobe" && v.ConfigMap != nil && v.ConfigMap.Name == cm.Name {
				mounted = true
			}
		}
	}
	if !mounted {
		t.Errorf("the ConfigMap %s is not mounted at /etc/edgeprobe", cm.Name)
	}
	yml, ok := cm.Data["edgeprobe.yml"]
	if !ok {
		t.Fatalf("ConfigMap %s has no edgeprobe.yml", cm.Name)
	}
	cfg, err := probe.Parse("configmap.yaml:edgeprobe.yml", []byte(yml))
	if err != nil {
		t.Fatalf("the ConfigMap's edgeprobe.yml: %v", err)
	}
	if cfg.Exporters.Prometheus == nil || !strings.HasSuffix(cfg.Exporters.Prometheus.Listen, ":9470") {
		t.Errorf("the config's prometheus exporter %+v: want it on :9470, the port probed and scraped", cfg.Exporters.Prometheus)
	}
}
