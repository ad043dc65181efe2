package output

import (
	"fmt"

	"github.com/porttrace/porttrace/tracer"
)

// The workload's JSON fields, present only when the port belongs to a
// container or a pod.
func appendWorkload(b []byte, w *tracer.Workload) []byte {
	for _, f := range []struct{ key, v string }{
		{"container_id", w.ContainerID}, {"container", w.Container},
		{"pod_uid", w.PodUID}, {"pod", w.Pod}, {"pod_namespace", w.Namespace},
	} {
		if f.v != "" {
			b = appendStr(b, f.key, f.v)
		}
	}
	return b
}

// workloadField is where a workload JSON key goes, nil if key is none.
func workloadField(w *tracer.Workload, key string) *string {
	switch key {
	case "container_id":
		return &w.ContainerID
	case "container":
		return &w.Container
	case "pod_uid":
		return &w.PodUID
	case "pod":
		return &w.Pod
	case "pod_namespace":
		return &w.Namespace
	}
	return nil
}

// Longest workload strings: ids are 64 hex digits (a UID 36); names are
// capped at 253 bytes by internal/workload, each byte possibly a 3-byte
// U+FFFD in JSON.
const (
	maxWorkloadID   = 64
	maxWorkloadName = 3 * 253
)

func validateWorkload(w *tracer.Workload) error {
	for _, f := range []struct {
		key, v string
		max    int
	}{
		{"container_id", w.ContainerID, maxWorkloadID}, {"pod_uid", w.PodUID, maxWorkloadID},
		{"container", w.Container, maxWorkloadName}, {"pod", w.Pod, maxWorkloadName}, {"pod_namespace", w.Namespace, maxWorkloadName},
	} {
		if len(f.v) > f.max {
			return fmt.Errorf("%s is %d bytes long: out of range (at most %d)", f.key, len(f.v), f.max)
		}
	}
	return nil
}

// WorkloadText is how text outputs name a workload:
// namespace/pod/container, or the container id's first 12 digits when the
// runtime gave no names; "" for none. Names from the runtime are untrusted:
// they are made printable.
func WorkloadText(w tracer.Workload) string { return Printable(WorkloadName(w)) }

// WorkloadName is WorkloadText before it is made printable, for callers
// that escape what they print themselves.
func WorkloadName(w tracer.Workload) string {
	switch {
	case w.Pod != "":
		s := w.Namespace + "/" + w.Pod
		if w.Container != "" {
			s += "/" + w.Container
		}
		return s
	case w.PodUID != "":
		return "pod " + w.PodUID
	case w.ContainerID != "":
		return "container " + shortID(w.ContainerID)
	}
	return ""
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
