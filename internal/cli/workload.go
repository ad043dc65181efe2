package cli

import (
	"github.com/spf13/pflag"

	"github.com/porttrace/porttrace/internal/workload"
	"github.com/porttrace/porttrace/tracer"
)

// workloadFlags adds --pod, --namespace and --container; the function it
// returns reads them after parsing.
func workloadFlags(fs *pflag.FlagSet) func() workload.Filter {
	pods := fs.StringSlice("pod", nil, "only ports of the pod named `NAME` (repeatable)")
	nss := fs.StringSlice("namespace", nil, "only ports of pods in the Kubernetes namespace `NAME` (repeatable)")
	ctrs := fs.StringSlice("container", nil, "only ports of containers named `NAME` in their pod (repeatable)")
	return func() workload.Filter {
		return workload.Filter{Pods: *pods, Namespaces: *nss, Containers: *ctrs}
	}
}

func criSocketFlag(fs *pflag.FlagSet) *string {
	return fs.String("cri-socket", "", "ask the container runtime at `PATH` for pod and container names (default: the first of containerd's and CRI-O's usual sockets found; none: do not ask)")
}

// keep names e's pod and container, and reports whether f keeps it.
func keep(r *workload.Resolver, f *workload.Filter, e *tracer.Event) bool {
	r.Fill(e)
	return f.Keeps(e)
}

// describeTrace is the filter as the start event records it.
func describeTrace(cfg *Config) string {
	s := cfg.Filter.String()
	if !cfg.Workload.IsZero() {
		s += ", " + cfg.Workload.String()
	}
	return s
}

// podNotes says, in the start event and on stderr, where pod names come
// from, or why they do not.
func podNotes(r *workload.Resolver) []string {
	if err := r.Warning(); err != nil {
		return []string{err.Error() + ": ports get container ids and pod UIDs, no names"}
	}
	if s := r.Socket(); s != "" {
		return []string{"pod and container names from the container runtime at " + s}
	}
	return nil
}
