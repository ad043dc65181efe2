package podtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"
)

// bridge is the CNI bridge of the test's pods.
const bridge = "pt13br0"

// Image is the test image's name: podbin as /podbin, pause by default.
const Image = "docker.io/porttrace/podbin:test"

// Containerd is a containerd of the test's own, with its CRI client.
type Containerd struct {
	Socket string
	CRI    internalapi.RuntimeService
	Podbin string // the image's program, to run on the host too
	dir    string
	uids   []string // pods run, whose cgroups are removed at the end
}

// Start builds podbin, writes the image, starts containerd with its CRI
// plugin configured as CONTAINERS.md (repository's /work/shared) says this
// machine needs, imports the image and connects to the CRI API. Everything
// is stopped and removed when the test ends.
func Start(t *testing.T, subnet string) *Containerd {
	t.Helper()
	requireBridges(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "podbin")
	build := exec.Command("go", "build", "-o", bin, "github.com/porttrace/porttrace/internal/podtest/podbin")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build podbin: %v\n%s", err, out)
	}
	archive := filepath.Join(dir, "podbin.tar")
	if err := writeOCIArchive(archive, Image, bin, []string{"/podbin", "pause"}); err != nil {
		t.Fatalf("write the image: %v", err)
	}
	c := &Containerd{Socket: filepath.Join(dir, "containerd.sock"), Podbin: bin, dir: dir}
	cni := filepath.Join(dir, "cni")
	os.Mkdir(cni, 0o700)
	// A bridge with no gateway, masquerading or routes: pod traffic stays
	// on the machine.
	conflist := fmt.Sprintf(`{"cniVersion":"0.4.0","name":"porttrace-test","plugins":[{"type":"bridge","bridge":%q,
"isGateway":false,"ipMasq":false,"ipam":{"type":"host-local","ranges":[[{"subnet":%q}]],"dataDir":%q}}]}`, bridge, subnet, filepath.Join(dir, "ipam"))
	os.WriteFile(filepath.Join(cni, "10-test.conflist"), []byte(conflist), 0o600)
	config := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[debug]
  level = "warn"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[5]q
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %[6]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.Socket, c.Socket+".ttrpc", Image, cni)
	cfgFile := filepath.Join(dir, "config.toml")
	os.WriteFile(cfgFile, []byte(config), 0o600)
	logf, _ := os.Create(filepath.Join(dir, "containerd.log"))
	cmd := exec.Command("containerd", "--config", cfgFile)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start containerd (apt-get install containerd runc containernetworking-plugins): %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			log, _ := os.ReadFile(logf.Name())
			t.Logf("containerd's log:\n%s", log)
		}
		// Pods' mounts (shm, the netns files) under the state dir, and the
		// bridge the CNI plugin made.
		exec.Command("sh", "-c", "grep -o ' "+dir+"[^ ]*' /proc/self/mounts | sort -r | xargs -r -n1 umount -l").Run()
		exec.Command("ip", "link", "del", bridge).Run()
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(c.Socket); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd did not make its socket %s in 60s", c.Socket)
		}
		time.Sleep(100 * time.Millisecond)
	}
	imp := exec.Command("ctr", "--address", c.Socket, "-n", "k8s.io", "images", "import", archive)
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("ctr images import: %v\n%s", err, out)
	}
	rt, err := remote.NewRemoteRuntimeServiceBuilder().WithEndpoint("unix://" + c.Socket).
		WithConnectionTimeout(30 * time.Second).Build(context.Background())
	if err != nil {
		t.Fatalf("connect to containerd's CRI: %v", err)
	}
	c.CRI = rt
	// First (cleanups run last first): containers outlive a containerd
	// killed under them, so every pod is removed while it still answers;
	// then the pods' cgroups, which the kubelet, not containerd, removes.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		sbs, _ := rt.ListPodSandbox(ctx, nil)
		for _, sb := range sbs {
			rt.StopPodSandbox(ctx, sb.Id)
			rt.RemovePodSandbox(ctx, sb.Id)
		}
		rt.Close(ctx)
		for _, uid := range c.uids {
			removeCgroups("kubepods/besteffort/pod" + uid)
		}
	})
	return c
}

// removeCgroups removes the empty cgroup dir rel in every hierarchy, and
// its parents up to rel's first element. rel is relative, as runc took the
// pods' cgroup parent: below this process's cgroup in each hierarchy
// (which differ here: the v1 memory controller has a path of its own).
func removeCgroups(rel string) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return
	}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			continue
		}
		roots := []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} // v2: "0::path"
		if f[1] != "" {
			roots = nil
			for _, c := range strings.Split(f[1], ",") {
				roots = append(roots, "/sys/fs/cgroup/"+strings.TrimPrefix(c, "name="))
			}
		}
		for _, root := range roots {
			for p := rel; p != "." && p != "/"; p = filepath.Dir(p) {
				os.Remove(filepath.Join(root, f[2], p))
			}
		}
	}
}

// Pod is a pod sandbox made as the kubelet makes one.
type Pod struct {
	ID     string
	Config *runtimeapi.PodSandboxConfig
}

// RunPod starts a pod sandbox with the kubelet's metadata and a
// kubelet-style cgroup parent (relative: under the test's own cgroup).
func (c *Containerd) RunPod(t *testing.T, name, namespace, uid string) *Pod {
	t.Helper()
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: namespace, Uid: uid},
		Hostname:     name,
		LogDirectory: filepath.Join(c.dir, "logs", uid),
		Labels:       map[string]string{"io.kubernetes.pod.name": name, "io.kubernetes.pod.namespace": namespace, "io.kubernetes.pod.uid": uid},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: "kubepods/besteffort/pod" + uid,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER},
			},
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c.uids = append(c.uids, uid)
	id, err := c.CRI.RunPodSandbox(ctx, cfg, "")
	if err != nil {
		t.Fatalf("RunPodSandbox %q/%q: %v", namespace, name, err)
	}
	return &Pod{ID: id, Config: cfg}
}

// Run creates and starts a container named name in the pod, running
// podbin with args.
func (c *Containerd) Run(t *testing.T, p *Pod, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: Image},
		Command:  append([]string{"/podbin"}, args...),
		LogPath:  name + ".log",
		Labels:   map[string]string{"io.kubernetes.container.name": name},
		Linux:    &runtimeapi.LinuxContainerConfig{},
	}
	id, err := c.CRI.CreateContainer(ctx, p.ID, cfg, p.Config)
	if err != nil {
		t.Fatalf("CreateContainer %q: %v", name, err)
	}
	if err := c.CRI.StartContainer(ctx, id); err != nil {
		t.Fatalf("StartContainer %q: %v", name, err)
	}
	return id
}

// Remove stops and removes the pod and its containers, as the kubelet does
// when a pod is deleted.
func (c *Containerd) Remove(t *testing.T, p *Pod) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.CRI.StopPodSandbox(ctx, p.ID); err != nil {
		t.Fatalf("StopPodSandbox: %v", err)
	}
	if err := c.CRI.RemovePodSandbox(ctx, p.ID); err != nil {
		t.Fatalf("RemovePodSandbox: %v", err)
	}
}

// PodPID is a process of the pod with this UID (its sandbox's or a
// container's), found by its cgroup as the host sees it.
func PodPID(t *testing.T, uid string) int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cgroup")
	for _, f := range procs {
		b, err := os.ReadFile(f)
		if err != nil || !strings.Contains(string(b), "/pod"+uid+"/") {
			continue
		}
		var pid int
		if _, err := fmt.Sscanf(f, "/proc/%d/cgroup", &pid); err == nil {
			return pid
		}
	}
	t.Fatalf("no process of pod %s in /proc", uid)
	return 0
}

// requireBridges skips t on a kernel that cannot make a bridge (the second
// kernel's VM loads no bridge module): a pod's network is a CNI bridge.
func requireBridges(t *testing.T) {
	t.Helper()
	name := fmt.Sprintf("ptprobe%d", os.Getpid()%100000)
	out, err := exec.Command("ip", "link", "add", name, "type", "bridge").CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "not supported") || strings.Contains(string(out), "Unknown device type") {
			t.Skipf("skipped: this kernel cannot make a bridge (%s), which a pod's CNI network needs", strings.TrimSpace(string(out)))
		}
		t.Fatalf("ip link add %s type bridge: %v %s", name, err, out)
	}
	exec.Command("ip", "link", "del", name).Run()
}
