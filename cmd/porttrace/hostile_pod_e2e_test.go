package main_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/porttrace/porttrace/internal/nstest"
	"github.com/porttrace/porttrace/internal/podtest"
)

// Anyone who can create a pod names it: a name that would clear root's
// screen, return the cursor and ring reaches the text outputs escaped. (No
// ';' or '=': CNI's arguments, which carry the pod's name, refuse them.)
func TestHostilePodNameEscaped(t *testing.T) {
	nstest.RequireRoot(t)
	if _, err := exec.LookPath("containerd"); err != nil {
		t.Skip("containerd is not installed (CI installs containerd, runc and containernetworking-plugins)")
	}
	ctrd := podtest.Start(t, "10.213.14.0/24")
	rec := filepath.Join(t.TempDir(), "hostile.jsonl")
	tr := startTrace(t, "-o", rec, "--cri-socket", ctrd.Socket, "--comm", "podbin", "--color", "never")
	tr.next(t) // the header: tracing has begun
	const name = "evil\x1b[2J\r\x07"
	pod := ctrd.RunPod(t, name, "prod", "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")
	ctrd.Run(t, pod, "web", "connect", "1", "10m")
	const escaped = `prod/evil\x1b[2J\r\x07/web`
	for {
		l := tr.next(t)
		if strings.ContainsAny(l, "\x1b\x07\r") {
			t.Fatalf("a raw escape reached the text output: %q", l)
		}
		if strings.Contains(l, " connect ") && strings.HasSuffix(l, "["+escaped+"]") {
			break
		}
	}
	ctrd.Remove(t, pod)
	tr.stop(t, syscall.SIGINT)
	out, stderr, code := runBin(t, "report", rec)
	if code != 0 || !strings.Contains(out, escaped) || strings.ContainsAny(out, "\x1b\x07\r") {
		t.Errorf("report (exit %d, %s) does not show the pod escaped:\n%q", code, stderr, out)
	}
}
