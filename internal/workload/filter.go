package workload

import (
	"slices"
	"strings"

	"github.com/porttrace/porttrace/tracer"
)

// Filter keeps the ports of some pods, Kubernetes namespaces or containers,
// by name. Each list that is set must match; an empty Filter keeps all.
type Filter struct {
	Pods       []string
	Namespaces []string
	Containers []string
}

// IsZero reports whether f keeps everything.
func (f *Filter) IsZero() bool {
	return len(f.Pods) == 0 && len(f.Namespaces) == 0 && len(f.Containers) == 0
}

// Match reports whether w passes f.
func (f *Filter) Match(w *tracer.Workload) bool {
	return (len(f.Pods) == 0 || slices.Contains(f.Pods, w.Pod)) &&
		(len(f.Namespaces) == 0 || slices.Contains(f.Namespaces, w.Namespace)) &&
		(len(f.Containers) == 0 || slices.Contains(f.Containers, w.Container))
}

// Keeps reports whether f keeps e: events about a port are filtered, the
// others (start, stop, lost, clock) always kept.
func (f *Filter) Keeps(e *tracer.Event) bool {
	switch e.Kind {
	case tracer.KindAlloc, tracer.KindRelease, tracer.KindFail, tracer.KindFree, tracer.KindSlow:
		return f.Match(&e.Workload)
	}
	return true
}

// String describes f for people, as "pod web, namespace prod".
func (f *Filter) String() string {
	var parts []string
	for _, p := range []struct {
		what  string
		names []string
	}{{"pod", f.Pods}, {"namespace", f.Namespaces}, {"container", f.Containers}} {
		if len(p.names) > 0 {
			parts = append(parts, p.what+" "+strings.Join(p.names, ","))
		}
	}
	return strings.Join(parts, ", ")
}
