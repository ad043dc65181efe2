// Package workload names the container and pod a port belongs to: ids from
// the cgroup path, names from the container runtime's CRI API.
package workload

import "strings"

// idPrefixes are how runtimes name a container's cgroup under systemd
// (docker-<id>.scope, cri-containerd-<id>.scope, crio-<id>.scope,
// libpod-<id>.scope) and under cgroupfs (crio-<id>, libpod-<id>, or the bare
// id that docker and containerd use).
var idPrefixes = []string{"cri-containerd-", "containerd-", "docker-", "crio-", "libpod-", ""}

// FromCgroup finds the container id and the pod UID in a cgroup path, as
// the kubelet, docker, containerd, CRI-O and podman lay them out; either is
// "" when the path has none. The innermost container id wins: a container
// may make cgroups of its own below its own.
func FromCgroup(path string) (containerID, podUID string) {
	parts := strings.Split(path, "/")
	for i := len(parts) - 1; i >= 0; i-- {
		p := parts[i]
		if containerID == "" && podUID == "" {
			containerID = containerIDOf(p)
		}
		if podUID == "" {
			podUID = podUIDOf(p)
		}
	}
	return containerID, podUID
}

func containerIDOf(part string) string {
	part = strings.TrimSuffix(part, ".scope")
	if strings.HasPrefix(part, "libpod-conmon-") || strings.HasPrefix(part, "crio-conmon-") {
		return "" // the runtime's monitor of the container, not the container
	}
	for _, pre := range idPrefixes {
		if id, ok := strings.CutPrefix(part, pre); ok && isHex(id, 64) {
			return id
		}
	}
	return ""
}

// podUIDOf reads pod<uid> (cgroupfs) and kubepods-<qos>-pod<uid>.slice
// (systemd, where the UID's dashes became underscores).
func podUIDOf(part string) string {
	if s, ok := strings.CutSuffix(part, ".slice"); ok {
		i := strings.LastIndex(s, "-pod")
		if !strings.HasPrefix(s, "kubepods") || i < 0 {
			return ""
		}
		part = strings.ReplaceAll(s[i+1:], "_", "-")
	}
	uid, ok := strings.CutPrefix(part, "pod")
	if !ok || !isUID(uid) {
		return ""
	}
	return uid
}

// isUID accepts a UUID (36 characters) and the 32 hex digits of a static
// pod's UID (a hash of its manifest).
func isUID(s string) bool {
	if len(s) == 32 {
		return isHex(s, 32)
	}
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
		} else if !isHexDigit(c) {
			return false
		}
	}
	return true
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHexDigit(s[i]) {
			return false
		}
	}
	return true
}

func isHexDigit(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }
