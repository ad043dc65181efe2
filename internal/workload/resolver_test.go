package workload

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/porttrace/porttrace/tracer"
)

// Without a runtime, ports still get their container id and pod UID, and a
// cgroup's are kept by id after the cgroup is gone (its path reads "").
func TestResolverWithoutRuntime(t *testing.T) {
	r, err := Open(context.Background(), "none")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	e := tracer.Event{Kind: tracer.KindAlloc, CgroupID: 77, Cgroup: "/kubepods/besteffort/pod" + uid + "/" + id1}
	r.Fill(&e)
	want := tracer.Workload{ContainerID: id1, PodUID: uid}
	if e.Workload != want {
		t.Errorf("Fill: %+v, want %+v", e.Workload, want)
	}
	if got := r.Lookup(77, ""); got != want {
		t.Errorf("cgroup 77 gone: %+v, want %+v from the cache", got, want)
	}
	if got := r.Lookup(78, "/system.slice/ssh.service"); !got.IsZero() {
		t.Errorf("a host service: %+v", got)
	}
}

// A socket named that does not answer is an error that says what to do.
func TestResolverSocketThatDoesNotAnswer(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	_, err := Open(context.Background(), sock)
	if err == nil || !strings.Contains(err.Error(), "connect to the container runtime at "+sock) || !strings.Contains(err.Error(), "--cri-socket") {
		t.Errorf("Open(%s): %v", sock, err)
	}
}

// A runtime found at a usual socket that does not answer (a stale socket
// file) does not stop porttrace: it goes without names and says why.
func TestResolverFoundSocketThatDoesNotAnswer(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "containerd.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	saved := DefaultSockets
	DefaultSockets = []string{sock}
	defer func() { DefaultSockets = saved }()
	r, err := Open(context.Background(), "")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer r.Close()
	if w := r.Warning(); w == nil || !strings.Contains(w.Error(), "connect to the container runtime at "+sock) || r.Socket() != "" {
		t.Errorf("Warning() = %v, Socket() = %q", w, r.Socket())
	}
}
