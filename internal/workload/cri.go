package workload

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/go-logr/logr"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"
	"k8s.io/klog/v2"
)

// DefaultSockets are where containerd, CRI-O and k3s's containerd listen,
// tried in this order when no socket is named.
var DefaultSockets = []string{
	"/run/containerd/containerd.sock",
	"/run/crio/crio.sock",
	"/run/k3s/containerd/containerd.sock",
	"/var/run/containerd/containerd.sock",
	"/var/run/crio/crio.sock",
}

// criTimeout bounds each call to the runtime: names are looked up while
// events wait.
const criTimeout = 2 * time.Second

// quiet keeps cri-client's klog lines off porttrace's stderr: its errors
// come back as errors, and say so in porttrace's words.
func quiet(ctx context.Context) context.Context { return klog.NewContext(ctx, logr.Discard()) }

// dial connects to the CRI socket; "" tries DefaultSockets and returns
// nil, "", nil when none exists.
func dial(ctx context.Context, socket string) (internalapi.RuntimeService, string, error) {
	if socket == "" {
		for _, s := range DefaultSockets {
			if st, err := os.Stat(s); err == nil && st.Mode()&os.ModeSocket != 0 {
				socket = s
				break
			}
		}
		if socket == "" {
			return nil, "", nil
		}
	}
	rt, err := remote.NewRemoteRuntimeServiceBuilder().WithEndpoint("unix://" + socket).
		WithConnectionTimeout(criTimeout).WithTracerProvider(nil).Build(quiet(ctx))
	if err != nil {
		return nil, socket, fmt.Errorf("connect to the container runtime at %s: %w (name the right socket with --cri-socket, or --cri-socket none to go without pod names)", socket, err)
	}
	return rt, socket, nil
}

// pod is what the runtime says of a pod sandbox.
type pod struct{ uid, name, namespace string }

// snapshot is the runtime's pods and containers at one time.
type snapshot struct {
	pods       map[string]pod    // by UID
	containers map[string]string // container id → name; a sandbox's id → ""
	podOf      map[string]string // container or sandbox id → pod UID
}

// list asks the runtime for every pod sandbox and container.
func list(ctx context.Context, rt internalapi.RuntimeService) (snapshot, error) {
	ctx, cancel := context.WithTimeout(quiet(ctx), criTimeout)
	defer cancel()
	s := snapshot{pods: map[string]pod{}, containers: map[string]string{}, podOf: map[string]string{}}
	sbs, err := rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{})
	if err != nil {
		return s, fmt.Errorf("list pod sandboxes: %w", err)
	}
	for _, sb := range sbs {
		m := sb.GetMetadata()
		if m == nil {
			continue
		}
		uid := capName(m.GetUid())
		s.pods[uid] = pod{uid: uid, name: capName(m.GetName()), namespace: capName(m.GetNamespace())}
		s.podOf[sb.GetId()] = uid
		s.containers[sb.GetId()] = ""
	}
	cs, err := rt.ListContainers(ctx, &runtimeapi.ContainerFilter{})
	if err != nil {
		return s, fmt.Errorf("list containers: %w", err)
	}
	for _, c := range cs {
		s.containers[c.GetId()] = capName(c.GetMetadata().GetName())
		if uid, ok := s.podOf[c.GetPodSandboxId()]; ok {
			s.podOf[c.GetId()] = uid
		}
	}
	return s, nil
}

// MaxName is the longest name porttrace keeps from the runtime: Kubernetes
// allows 253 bytes for a pod's name, fewer for the others. The runtime is
// not trusted to keep to that.
const MaxName = 253

func capName(s string) string {
	if len(s) > MaxName {
		return s[:MaxName]
	}
	return s
}
