package tracer

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// A hook is one attachment of one program, with what the kernel must offer
// for it, so a failure can say so.
type hook struct {
	name   string // as reported in the start event
	needs  string // what a kernel that refuses it lacks
	attach func(t *Tracer) (link.Link, error)
}

// A tier is a set of hooks that together see every allocation and release.
// The portable tier uses only hooks that load where kprobes and BPF
// trampolines are refused; a precise tier would slot in beside it.
type tier struct {
	name  string
	hooks []hook
}

func cgroupHook(name string, prog func(*porttracePrograms) *ebpf.Program, typ ebpf.AttachType, needs string) hook {
	return hook{name: name, needs: needs, attach: func(t *Tracer) (link.Link, error) {
		return link.AttachCgroup(link.CgroupOptions{Path: t.cgroupRoot, Attach: typ, Program: prog(&t.objs.porttracePrograms)})
	}}
}

var portableTier = tier{
	name: "portable",
	hooks: []hook{
		// Owner-carrying hooks first, so no release can come before its alloc.
		{name: "tp_btf/inet_sock_set_state", needs: "BTF-typed tracepoints and socket storage from tracing programs (Linux 5.11+ with CONFIG_DEBUG_INFO_BTF)",
			attach: func(t *Tracer) (link.Link, error) {
				return link.AttachTracing(link.TracingOptions{Program: t.objs.PtState})
			}},
		{name: "tp_btf/tcp_destroy_sock", needs: "the tcp_destroy_sock tracepoint (Linux 5.2+) as a BTF-typed tracepoint",
			attach: func(t *Tracer) (link.Link, error) {
				return link.AttachTracing(link.TracingOptions{Program: t.objs.PtDestroy})
			}},
		cgroupHook("cgroup/sockops", func(p *porttracePrograms) *ebpf.Program { return p.PtSockops }, ebpf.AttachCGroupSockOps, "cgroup sock_ops programs with bpf_skc_to_tcp_sock (Linux 5.9+)"),
		cgroupHook("cgroup/bind4", func(p *porttracePrograms) *ebpf.Program { return p.PtBind4 }, ebpf.AttachCGroupInet4Bind, "cgroup bind hooks (Linux 4.17+)"),
		cgroupHook("cgroup/bind6", func(p *porttracePrograms) *ebpf.Program { return p.PtBind6 }, ebpf.AttachCGroupInet6Bind, "cgroup bind hooks (Linux 4.17+)"),
		cgroupHook("cgroup/post_bind4", func(p *porttracePrograms) *ebpf.Program { return p.PtPostBind4 }, ebpf.AttachCGroupInet4PostBind, "cgroup post_bind hooks (Linux 4.17+)"),
		cgroupHook("cgroup/post_bind6", func(p *porttracePrograms) *ebpf.Program { return p.PtPostBind6 }, ebpf.AttachCGroupInet6PostBind, "cgroup post_bind hooks (Linux 4.17+)"),
		cgroupHook("cgroup/connect4", func(p *porttracePrograms) *ebpf.Program { return p.PtConnect4 }, ebpf.AttachCGroupInet4Connect, "cgroup connect hooks and bpf_rdonly_cast (Linux 6.2+)"),
		cgroupHook("cgroup/connect6", func(p *porttracePrograms) *ebpf.Program { return p.PtConnect6 }, ebpf.AttachCGroupInet6Connect, "cgroup connect hooks and bpf_rdonly_cast (Linux 6.2+)"),
		{name: "tp_btf/sock_send_length", needs: "the sock_send_length tracepoint (Linux 6.5+)",
			attach: func(t *Tracer) (link.Link, error) {
				return link.AttachTracing(link.TracingOptions{Program: t.objs.PtSend})
			}},
		cgroupHook("cgroup/sock_release", func(p *porttracePrograms) *ebpf.Program { return p.PtSockRelease }, ebpf.AttachCgroupInetSockRelease, "the cgroup sock_release hook (Linux 5.9+)"),
	},
}

func (h hook) run(t *Tracer) (link.Link, error) {
	l, err := h.attach(t)
	if err != nil {
		return nil, fmt.Errorf("attach %s: %w (this hook needs %s)", h.name, err, h.needs)
	}
	return l, nil
}
