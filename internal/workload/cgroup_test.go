package workload

import "testing"

const (
	id1  = "4c1f2d3e5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d"
	id2  = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	uid  = "0f5b1c7e-2a3d-4e8f-9b6c-1d2e3f4a5b6c"
	uidU = "0f5b1c7e_2a3d_4e8f_9b6c_1d2e3f4a5b6c"
)

// The paths are the shapes each runtime and cgroup driver makes, as
// /proc/<pid>/cgroup shows them on real hosts.
func TestParseCgroupPaths(t *testing.T) {
	for _, c := range []struct {
		name, path, id, uid string
	}{
		{"kubelet cgroupfs, containerd", "/kubepods/besteffort/pod" + uid + "/" + id1, id1, uid},
		{"kubelet cgroupfs, guaranteed", "/kubepods/pod" + uid + "/" + id1, id1, uid},
		{"kubelet cgroupfs under a session (this CI)", "/user.slice/user-0.slice/session-3.scope/kubepods/burstable/pod" + uid + "/" + id1, id1, uid},
		{"kubelet systemd, containerd", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/cri-containerd-" + id1 + ".scope", id1, uid},
		{"kubelet systemd, guaranteed", "/kubepods.slice/kubepods-pod" + uidU + ".slice/cri-containerd-" + id1 + ".scope", id1, uid},
		{"kubelet systemd, CRI-O", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidU + ".slice/crio-" + id1 + ".scope", id1, uid},
		{"kubelet cgroupfs, CRI-O", "/kubepods/besteffort/pod" + uid + "/crio-" + id1, id1, uid},
		{"kubelet systemd, cri-dockerd", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidU + ".slice/docker-" + id1 + ".scope", id1, uid},
		{"static pod (hash UID)", "/kubepods/burstable/pod5d4ad8dd2b1c4b0e2f0a7b9c3d1e6f48/" + id1, id1, "5d4ad8dd2b1c4b0e2f0a7b9c3d1e6f48"},
		{"pod cgroup itself", "/kubepods/besteffort/pod" + uid, "", uid},
		{"systemd in a container", "/kubepods.slice/kubepods-pod" + uidU + ".slice/cri-containerd-" + id1 + ".scope/init.scope", id1, uid},
		{"kind: a pod in a node container", "/docker/" + id2 + "/kubepods/besteffort/pod" + uid + "/" + id1, id1, uid},
		{"docker cgroupfs", "/docker/" + id1, id1, ""},
		{"docker systemd", "/system.slice/docker-" + id1 + ".scope", id1, ""},
		{"podman systemd", "/machine.slice/libpod-" + id1 + ".scope", id1, ""},
		{"podman rootless", "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + id1 + ".scope/container", id1, ""},
		{"podman cgroupfs", "/libpod_parent/libpod-" + id1, id1, ""},
		{"podman's conmon is no container", "/machine.slice/libpod-conmon-" + id1 + ".scope", "", ""},
		{"host service", "/system.slice/ssh.service", "", ""},
		{"root", "/", "", ""},
		{"empty", "", "", ""},
		{"too short an id", "/docker/" + id1[:63], "", ""},
		{"upper-case hex is no id", "/docker/4C1F2D3E5A6B7C8D9E0F1A2B3C4D5E6F7A8B9C0D1E2F3A4B5C6D7E8F9A0B1C2D", "", ""},
		{"pod prefix with no UID", "/kubepods/podcast/" + id1, id1, ""},
		{"slice not kubelet's", "/system.slice/foo-pod" + uidU + ".slice", "", ""},
	} {
		gotID, gotUID := FromCgroup(c.path)
		if gotID != c.id || gotUID != c.uid {
			t.Errorf("%s: FromCgroup(%q) = %q, %q; want %q, %q", c.name, c.path, gotID, gotUID, c.id, c.uid)
		}
	}
}
