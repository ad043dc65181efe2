// Package kubernetes holds porttrace's manifests; its test decodes them
// strictly into the Kubernetes API types.
package kubernetes

import (
	"errors"
	"os"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// decode reads file into obj, refusing unknown and duplicate fields: a
// misspelt field would otherwise be dropped by the API server in silence.
func decode(t *testing.T, file string, obj any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := strict(b, obj); err != nil {
		t.Fatalf("%s does not decode strictly: %v", file, err)
	}
}

// strict decodes as the API server's strict field validation does: field
// names are case-sensitive (encoding/json's are not: hostPid would pass as
// hostPID), unknown and duplicate fields are errors.
func strict(b []byte, obj any) error {
	j, err := yaml.YAMLToJSONStrict(b)
	if err != nil {
		return err
	}
	strictErrs, err := kjson.UnmarshalStrict(j, obj)
	if err != nil {
		return err
	}
	return errors.Join(strictErrs...)
}

func TestManifestsDecodeStrictly(t *testing.T) {
	var ns corev1.Namespace
	decode(t, "namespace.yaml", &ns)
	var sa corev1.ServiceAccount
	decode(t, "serviceaccount.yaml", &sa)
	var svc corev1.Service
	decode(t, "service.yaml", &svc)
	var ds appsv1.DaemonSet
	decode(t, "daemonset.yaml", &ds)

	for _, c := range []struct{ file, kind, want string }{
		{"namespace.yaml", ns.Kind, "Namespace"}, {"serviceaccount.yaml", sa.Kind, "ServiceAccount"},
		{"service.yaml", svc.Kind, "Service"}, {"daemonset.yaml", ds.Kind, "DaemonSet"},
	} {
		if c.kind != c.want {
			t.Errorf("%s: kind %q, want %q", c.file, c.kind, c.want)
		}
	}
	if sa.Namespace != ns.Name || svc.Namespace != ns.Name || ds.Namespace != ns.Name {
		t.Errorf("objects in namespaces %q, %q, %q; want all in %q", sa.Namespace, svc.Namespace, ds.Namespace, ns.Name)
	}
	if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Error("the ServiceAccount mounts a token porttrace does not need")
	}

	pod := ds.Spec.Template
	if !matches(ds.Spec.Selector.MatchLabels, pod.Labels) || !matches(svc.Spec.Selector, pod.Labels) {
		t.Errorf("selectors %v (DaemonSet) and %v (Service) do not select the pods' labels %v", ds.Spec.Selector.MatchLabels, svc.Spec.Selector, pod.Labels)
	}
	spec := pod.Spec
	if spec.ServiceAccountName != sa.Name || spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("pods run as %q with token %v; want %q, no token", spec.ServiceAccountName, spec.AutomountServiceAccountToken, sa.Name)
	}
	if !spec.HostPID || spec.HostNetwork || spec.HostIPC {
		t.Errorf("hostPID %v, hostNetwork %v, hostIPC %v; want only hostPID", spec.HostPID, spec.HostNetwork, spec.HostIPC)
	}
	if len(spec.Tolerations) != 1 || spec.Tolerations[0].Operator != corev1.TolerationOpExists || spec.Tolerations[0].Key != "" {
		t.Errorf("tolerations %+v: want one that tolerates every taint", spec.Tolerations)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	if len(c.Args) < 2 || c.Args[0] != "serve" || !slices.Contains(c.Args, "--listen=:9477") {
		t.Errorf("args %q: want porttrace serve --listen=:9477", c.Args)
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != 9477 || c.Ports[0].Name != "metrics" {
		t.Errorf("ports %+v: want metrics on 9477", c.Ports)
	}
	if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.String() != "metrics" {
		t.Errorf("readiness probe %+v: want GET /healthz on metrics", p)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v: want CPU and memory requested and memory limited", c.Resources)
	}
	sc := c.SecurityContext
	if sc == nil || sc.Privileged == nil || *sc.Privileged || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Fatalf("security context %+v: want unprivileged, no escalation, read-only root", sc)
	}
	caps := sc.Capabilities
	want := []corev1.Capability{"BPF", "PERFMON", "NET_ADMIN", "SYS_ADMIN", "SYS_PTRACE"}
	if caps == nil || !slices.Equal(caps.Drop, []corev1.Capability{"ALL"}) || !slices.Equal(caps.Add, want) {
		t.Errorf("capabilities %+v: want all dropped and exactly %v added", caps, want)
	}

	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m
	}
	for _, v := range []struct {
		host, mount string
		typ         corev1.HostPathType
		readOnly    bool
	}{
		{"/sys/fs/cgroup", "/sys/fs/cgroup", corev1.HostPathDirectory, true},
		{"/sys/kernel/btf", "/sys/kernel/btf", corev1.HostPathDirectory, true},
		{"/run/containerd/containerd.sock", "/run/containerd/containerd.sock", corev1.HostPathSocket, false},
		{"/var/lib/porttrace", "/var/lib/porttrace", corev1.HostPathDirectoryOrCreate, false},
	} {
		var vol *corev1.Volume
		for i := range spec.Volumes {
			if hp := spec.Volumes[i].HostPath; hp != nil && hp.Path == v.host {
				vol = &spec.Volumes[i]
			}
		}
		if vol == nil || vol.HostPath.Type == nil || *vol.HostPath.Type != v.typ {
			t.Errorf("no hostPath volume %s of type %s", v.host, v.typ)
			continue
		}
		m, ok := mounts[vol.Name]
		if !ok || m.MountPath != v.mount || m.ReadOnly != v.readOnly {
			t.Errorf("volume %s is mounted %+v; want at %s, read-only %v", v.host, m, v.mount, v.readOnly)
		}
	}
	if !slices.Contains(c.Args, "--cri-socket="+mounts["cri"].MountPath) || !slices.Contains(c.Args, "--output="+mounts["recordings"].MountPath+"/trace.jsonl") {
		t.Errorf("args %q do not use the mounted CRI socket and recordings directory", c.Args)
	}

	for _, a := range []map[string]string{pod.Annotations, svc.Annotations} {
		if a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != "9477" || a["prometheus.io/path"] != "/metrics" {
			t.Errorf("scrape annotations %v: want scrape true, port 9477, path /metrics", a)
		}
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 9477 || svc.Spec.Ports[0].TargetPort.String() != "metrics" || svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("service %+v: want headless, 9477 to the pods' metrics port", svc.Spec)
	}
}

func matches(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// A field the API does not have fails the decoding: the test would see a
// misspelt privilege.
func TestStrictDecodingRefusesUnknownFields(t *testing.T) {
	var ds appsv1.DaemonSet
	err := strict([]byte("apiVersion: apps/v1\nkind: DaemonSet\nspec:\n  template:\n    spec:\n      hostPid: true\n"), &ds)
	if err == nil {
		t.Error("hostPid (for hostPID) was accepted")
	}
}
