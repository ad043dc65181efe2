package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/porttrace/porttrace/internal/nstest"
	"github.com/porttrace/porttrace/internal/podtest"
)

// Pods made through a real containerd's CRI API, as the kubelet makes them,
// take ports; porttrace names their pod, namespace and container in its
// events, top and the report, which still has them after the pod is gone.
func TestPodsNamedThroughContainerdCRI(t *testing.T) {
	nstest.RequireRoot(t)
	if _, err := exec.LookPath("containerd"); err != nil {
		// As on the second kernel's VM, which has only the test binaries.
		t.Skip("containerd is not installed (CI installs containerd, runc and containernetworking-plugins)")
	}
	ctrd := podtest.Start(t, "10.213.13.0/24")
	rec := filepath.Join(t.TempDir(), "pods.jsonl")
	tr := startTrace(t, "--format", "json", "-o", rec, "--cri-socket", ctrd.Socket, "--comm", "podbin", "--summary")
	start := jsonLine(t, tr.next(t))
	if notes, _ := json.Marshal(start["notes"]); !strings.Contains(string(notes), "container runtime at "+ctrd.Socket) {
		t.Errorf("the start event does not say where names come from: %s", notes)
	}

	const uid = "5f0c2e1a-7b3d-4c9e-8a6f-2d1b0e9c8a7d"
	pod := ctrd.RunPod(t, "shop-0", "prod", uid)
	ids := map[string]string{
		"web":     ctrd.Run(t, pod, "web", "connect", "3", "10m"),
		"sidecar": ctrd.Run(t, pod, "sidecar", "connect", "2", "10m"),
	}
	// Each container's connects: 3 and 2 ports of the pod's range.
	want := map[string]int{"web": 3, "sidecar": 2}
	got := map[string]int{}
	var netns int64
	for got["web"] < want["web"] || got["sidecar"] < want["sidecar"] {
		m := jsonLine(t, tr.next(t))
		if m["event"] != "alloc" || m["via"] != "connect" {
			continue
		}
		c, _ := m["container"].(string)
		if m["pod"] != "shop-0" || m["pod_namespace"] != "prod" || m["pod_uid"] != uid || ids[c] == "" || m["container_id"] != ids[c] {
			t.Fatalf("an alloc in the pod is not named pod shop-0, namespace prod, uid %s, container web or sidecar with its id: %v", uid, m)
		}
		netns = num(m, "netns")
		got[c]++
	}

	// A host process in the pod's network namespace: its port is the pod's,
	// though no container's. A porttrace started now has seen no event of
	// the pod: it finds whose namespace it is in /proc. --namespace prod
	// leaves out the same program's ports in the host's namespace.
	tr2 := startTrace(t, "--format", "json", "--cri-socket", ctrd.Socket, "--comm", "podbin", "--no-existing", "--namespace", "prod")
	tr2.next(t)
	plain := exec.Command(ctrd.Podbin, "connect", "1", "0s", "exit")
	if out, err := plain.CombinedOutput(); err != nil {
		t.Fatalf("podbin on the host: %v\n%s", err, out)
	}
	host := exec.Command("nsenter", fmt.Sprintf("--net=/proc/%d/ns/net", podtest.PodPID(t, uid)), "--", ctrd.Podbin, "connect", "1", "10m")
	if err := host.Start(); err != nil {
		t.Fatalf("nsenter: %v", err)
	}
	defer func() { host.Process.Kill(); host.Wait() }()
	for {
		m := jsonLine(t, tr2.next(t))
		if num(m, "pid") == int64(plain.Process.Pid) {
			t.Errorf("--namespace prod let through a host process's event: %v", m)
		}
		if m["event"] != "alloc" || m["via"] != "connect" || num(m, "pid") != int64(host.Process.Pid) {
			continue
		}
		if num(m, "netns") != netns || m["pod"] != "shop-0" || m["pod_namespace"] != "prod" || m["pod_uid"] != uid || m["container"] != nil || m["container_id"] != nil {
			t.Errorf("a host process's port in the pod's namespace %d is not pod prod/shop-0's, with no container: %v", netns, m)
		}
		break
	}
	tr2.stop(t, syscall.SIGINT)
	host.Process.Kill()

	// top, while the containers hold their ports: the namespace is the pod's.
	out, stderr, code := runBin(t, "top", "--cri-socket", ctrd.Socket, "-i", "1s", "-d", nstest.Scaled(3*time.Second).String())
	if code != 0 {
		t.Fatalf("top: exit %d: %s", code, stderr)
	}
	for _, s := range []string{fmt.Sprintf("%d ", netns), "pod prod/shop-0 · holders:"} {
		if !strings.Contains(out, s) {
			t.Errorf("top does not show %q:\n%s", s, out)
		}
	}

	// serve's metrics: the namespace's series carry the pod's labels, and
	// each container holds its ports.
	addr, _, _, _ := startServe(t, "--cri-socket", ctrd.Socket, "--top-holders", "5")
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape serve: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	labels := fmt.Sprintf(`namespace="prod",netns="%d",pod="shop-0"`, netns)
	for _, want := range []string{
		`porttrace_holder_ports_in_use{holder="pod:prod/shop-0/web",` + labels + `} 3`,
		`porttrace_holder_ports_in_use{holder="pod:prod/shop-0/sidecar",` + labels + `} 2`,
		`porttrace_ports_in_use{` + labels + `,proto="tcp",state="socket"}`,
		`porttrace_port_range_ports{` + labels + `,proto="tcp"}`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("serve's metrics have no %s", want)
		}
	}
	if t.Failed() {
		for _, l := range strings.Split(string(body), "\n") {
			if strings.Contains(l, fmt.Sprint(netns)) {
				t.Log(l)
			}
		}
	}

	// The pod goes, as when it is deleted: its containers are killed and
	// their ports released; the releases still name them.
	ctrd.Remove(t, pod)
	released := map[string]int{}
	for released["web"] < 3 || released["sidecar"] < 2 {
		m := jsonLine(t, tr.next(t))
		if m["event"] == "release" && m["pod"] == "shop-0" && num(m, "netns") == netns {
			c, _ := m["container"].(string)
			released[c]++
		}
	}
	tr.stop(t, syscall.SIGINT)
	for _, c := range []string{"web", "sidecar"} {
		var row []string
		for _, l := range strings.Split(tr.stderr.String(), "\n") {
			if f := strings.Fields(l); len(f) == 9 && f[1] == "podbin" && f[8] == "prod/shop-0/"+c {
				row = f
			}
		}
		if row == nil || row[7] != "0" {
			t.Errorf("--summary has no row of podbin in prod/shop-0/%s:\n%s", c, tr.stderr.String())
		}
	}

	// The post-mortem: the pod is gone, the recording names it.
	text, stderr, code := runBin(t, "report", rec)
	if code != 0 {
		t.Fatalf("report: exit %d: %s", code, stderr)
	}
	for _, s := range []string{"prod/shop-0/web", "prod/shop-0/sidecar"} {
		if !strings.Contains(text, s) {
			t.Errorf("the report does not name %s:\n%s", s, text)
		}
	}
	var rangeLine string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, fmt.Sprintf("%d ", netns)) {
			rangeLine = l
		}
	}
	if !strings.HasSuffix(rangeLine, " prod/shop-0") {
		t.Errorf("the report's RANGES do not give namespace %d to pod prod/shop-0:\n%s", netns, text)
	}

	js, stderr, code := runBin(t, "report", rec, "--format", "json", "--pod", "shop-0", "--container", "web")
	if code != 0 {
		t.Fatalf("report --pod: exit %d: %s", code, stderr)
	}
	var r struct {
		Processes []struct {
			Allocs    int    `json:"allocs"`
			Releases  int    `json:"releases"`
			Pod       string `json:"pod"`
			Namespace string `json:"pod_namespace"`
			Container string `json:"container"`
		} `json:"processes"`
	}
	if err := json.Unmarshal([]byte(js), &r); err != nil {
		t.Fatalf("report --format json: %v\n%s", err, js)
	}
	allocs := 0
	for _, p := range r.Processes {
		if p.Pod != "shop-0" || p.Namespace != "prod" || p.Container != "web" {
			t.Errorf("report --pod shop-0 --container web lists %+v", p)
		}
		allocs += p.Allocs
	}
	b, err := os.ReadFile(rec)
	if err != nil {
		t.Fatal(err)
	}
	// Every alloc the recording gives container web, and only those.
	recorded := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, `"event":"alloc"`) && strings.Contains(l, `"container":"web"`) {
			recorded++
		}
	}
	if recorded < 3 || allocs != recorded {
		t.Errorf("report --pod shop-0 --container web counts %d allocations; the recording has %d of container web (3 or more):\n%s", allocs, recorded, js)
	}
	none, _, _ := runBin(t, "report", rec, "--namespace", "kube-system")
	if !strings.Contains(none, "filter: all, namespace kube-system.\n0 events;") || strings.Contains(none, "podbin") {
		t.Errorf("report --namespace kube-system:\n%s", none)
	}
	if !strings.Contains(string(b), `"pod":"shop-0","pod_namespace":"prod"`) {
		t.Error("the recording does not hold the pod's names")
	}
}
