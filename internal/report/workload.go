package report

import (
	"github.com/porttrace/porttrace/internal/output"
	"github.com/porttrace/porttrace/tracer"
)

// PodRef names the pod (and container) of a row, as recorded at event time;
// empty for host processes. JSON flattens it into the row.
type PodRef struct {
	Pod       string `json:"pod,omitempty"`
	Namespace string `json:"pod_namespace,omitempty"`
	Container string `json:"container,omitempty"`
}

func podRef(w tracer.Workload) PodRef {
	return PodRef{Pod: w.Pod, Namespace: w.Namespace, Container: w.Container}
}

// workload turns a PodRef back into what output.WorkloadText prints.
func (p PodRef) workload() tracer.Workload {
	return tracer.Workload{Pod: p.Pod, Namespace: p.Namespace, Container: p.Container}
}

// Name is namespace/pod/container, "-" for none, for the HTML page (whose
// template escapes it).
func (p PodRef) Name() string {
	if n := output.WorkloadName(p.workload()); n != "" {
		return n
	}
	return "-"
}

// learnPod notes whose namespace e's is: a namespace belongs to a pod, so
// its occupancy is the pod's.
func (b *Builder) learnPod(e *tracer.Event) {
	if e.NetNS == 0 || e.Workload.Pod == "" || len(b.podOf) >= 4*MaxNamespaces {
		return
	}
	if _, ok := b.podOf[e.NetNS]; !ok {
		b.podOf[e.NetNS] = PodRef{Pod: e.Workload.Pod, Namespace: e.Workload.Namespace}
	}
}
