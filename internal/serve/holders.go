package serve

import (
	"regexp"
	"sort"

	"github.com/porttrace/porttrace/tracer"
)

// containerID finds a container's id in a cgroup path, as docker, podman,
// containerd and CRI-O name their scopes (…/docker-<id>.scope,
// …/libpod-<id>.scope, …/cri-containerd-<id>.scope, …/crio-<id>.scope,
// or a bare …/docker/<id>).
var containerID = regexp.MustCompile(`(?:docker|libpod|cri-containerd|crio)[-/]([0-9a-f]{64})`)

// holderName is who holds a socket, as a label: its pod's container
// ("pod:" namespace/pod/container) when the runtime named it, else its
// container ("container:" and the id's first 12 digits, as docker ps shows
// it), or outside containers its process's name (never the pid: one series
// per process would grow without bound).
func holderName(comm, cgroup string, w tracer.Workload) string {
	if w.Pod != "" {
		return "pod:" + w.Namespace + "/" + w.Pod + "/" + w.Container
	}
	if m := containerID.FindStringSubmatch(cgroup); m != nil {
		return "container:" + m[1][:12]
	}
	if comm == "" {
		return "unknown"
	}
	return comm
}

// holdersOf counts the ports of the range each holder's live sockets hold.
func holdersOf(l Lister, pods Workloads, socks []tracer.Socket, r tracer.PortRange, reserved tracer.PortSet) map[string]int {
	ports := map[string]map[protoPort]bool{}
	for i := range socks {
		s := &socks[i]
		if !r.Contains(s.Port) || reserved.Has(s.Port) || s.TimeWait() {
			continue
		}
		h := "unknown"
		if s.PID != 0 {
			path := l.CgroupPath(s.CgroupID)
			var w tracer.Workload
			if pods != nil {
				w = pods.Lookup(s.CgroupID, path)
			}
			h = holderName(s.Comm, path, w)
		}
		if ports[h] == nil {
			ports[h] = map[protoPort]bool{}
		}
		ports[h][protoPort{s.Proto, s.Port}] = true
	}
	out := map[string]int{}
	for h, p := range ports {
		out[h] = len(p)
	}
	return out
}

// topHolders keeps the n biggest holders and sums the rest as "other".
func topHolders(all map[string]int, n int) map[string]int {
	if len(all) <= n {
		return all
	}
	names := make([]string, 0, len(all))
	for h := range all {
		names = append(names, h)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := all[names[i]], all[names[j]]
		return a > b || a == b && names[i] < names[j]
	})
	out := map[string]int{}
	for i, h := range names {
		if i < n {
			out[h] = all[h]
		} else {
			out["other"] += all[h]
		}
	}
	return out
}
