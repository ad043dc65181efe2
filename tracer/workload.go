package tracer

// Workload is the container and pod a port belongs to. The ids come from the
// cgroup path; the names from the container runtime (CRI), when porttrace
// could ask it. Empty fields are not known.
type Workload struct {
	ContainerID string // the runtime's container id (64 hex digits)
	Container   string // the container's name in its pod
	PodUID      string // the pod's UID, as Kubernetes knows it
	Pod         string // the pod's name
	Namespace   string // the pod's Kubernetes namespace (not a network namespace)
}

// IsZero reports whether nothing is known of the workload.
func (w Workload) IsZero() bool { return w == Workload{} }
