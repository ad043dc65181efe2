package tracer

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
)

// A hook is one attachment of one program, with what the kernel must offer
// for it, so a failure can say so.
type hook struct {
	name  string // as reported in the start event
	prog  string // the BPF program: its function name in porttrace.bpf.c
	needs string // what a kernel that refuses it lacks
	typ   ebpf.AttachType
	kind  hookKind
	// tracepoint, for tp_btf hooks, is looked up in the kernel's BTF; where
	// it is missing, the fallback hooks stand in.
	tracepoint string
	fallback   []hook
	symbol     string // kprobes: the kernel function
}

type hookKind int

const (
	tracing   hookKind = iota // tp_btf, fentry, fexit: the target is in the program
	cgroup                    // attached to the root cgroup v2
	kprobe                    // on entry to the function named by symbol
	kretprobe                 // on return from it
)

// A tier is a set of hooks that together see every allocation and release.
type tier struct {
	name     string
	needs    string // in a few words, what a kernel must offer for it
	precise  bool   // its hooks report allocations and failures as they return
	skInHash bool   // its records are kept in a hash map, not socket storage
	hooks    []hook
}

// The hooks that end holds, and the one that names the caller of a TCP
// connect or listen, are shared by every tier. They come first, so no
// release can be missed for an allocation seen.
var (
	hookState = hook{name: "tp_btf/inet_sock_set_state", prog: "pt_state", kind: tracing,
		needs: "BTF-typed tracepoints (Linux 5.5+ with CONFIG_DEBUG_INFO_BTF)"}
	hookDestroy = hook{name: "tp_btf/tcp_destroy_sock", prog: "pt_destroy", kind: tracing,
		needs: "the tcp_destroy_sock tracepoint (Linux 5.2+) as a BTF-typed tracepoint"}
	hookRelease = hook{name: "cgroup/sock_release", prog: "pt_sock_release", kind: cgroup, typ: ebpf.AttachCgroupInetSockRelease,
		needs: "the cgroup sock_release hook (Linux 5.9+)"}
)

// precise: BPF trampolines on the kernel functions that pick ports.
var preciseTier = tier{
	name:    "precise",
	needs:   "BPF trampolines (fexit) on inet_csk_get_port, udp_lib_get_port, tcp_v4/v6_connect and udp_disconnect, and lockdown off or integrity",
	precise: true,
	hooks: []hook{
		hookState, hookDestroy, hookRelease,
		{name: "fexit/inet_csk_get_port", prog: "pt_fx_csk_get_port", kind: tracing, needs: fexitNeeds},
		{name: "fexit/udp_lib_get_port", prog: "pt_fx_udp_get_port", kind: tracing, needs: fexitNeeds},
		{name: "fexit/tcp_v4_connect", prog: "pt_fx_tcp_v4_connect", kind: tracing, needs: fexitNeeds},
		{name: "fexit/tcp_v6_connect", prog: "pt_fx_tcp_v6_connect", kind: tracing, needs: fexitNeeds + " and IPv6 built in"},
		{name: "fexit/udp_disconnect", prog: "pt_fx_udp_disconnect", kind: tracing, needs: fexitNeeds},
	},
}

const fexitNeeds = "fexit programs (BPF trampolines: Linux 5.5+ on x86-64, 6.4+ on arm64, where they need ftrace direct calls)"

// kprobe: the precise hooks' work, done by kprobes, where the kernel has no
// BPF trampolines (arm64 before 6.4, which had no ftrace direct calls).
var kprobeTier = tier{
	name:     "kprobe",
	needs:    "kprobes on those functions (CONFIG_KPROBES), and lockdown off or integrity",
	precise:  true,
	skInHash: true,
	hooks:    kprobeHooks("inet_csk_get_port", "udp_lib_get_port", "tcp_v4_connect", "tcp_v6_connect", "udp_disconnect"),
}

// kprobeHooks puts a kprobe and a kretprobe on each function, after the
// shared hooks; their programs are pt_kp_<function> and pt_kr_<function>
// (KPROBE_PAIR in porttrace.bpf.c).
func kprobeHooks(fns ...string) []hook {
	const needs = "kprobes (CONFIG_KPROBES) and BPF read access to kernel memory"
	hs := []hook{hookState, hookDestroy, hookRelease}
	for _, fn := range fns {
		hs = append(hs,
			hook{name: "kprobe/" + fn, prog: "pt_kp_" + fn, kind: kprobe, symbol: fn, needs: needs},
			hook{name: "kretprobe/" + fn, prog: "pt_kr_" + fn, kind: kretprobe, symbol: fn, needs: needs})
	}
	return hs
}

// portable: only hooks that load where kprobes and BPF trampolines are
// refused (tracepoints and cgroup socket hooks).
var portableTier = tier{
	name:  "portable",
	needs: "BTF-typed tracepoints, cgroup v2 socket hooks and socket storage (Linux 5.10+)",
	hooks: []hook{
		hookState, hookDestroy,
		{name: "cgroup/sockops", prog: "pt_sockops", kind: cgroup, typ: ebpf.AttachCGroupSockOps, needs: "cgroup sock_ops programs with bpf_skc_to_tcp_sock (Linux 5.9+)"},
		{name: "cgroup/bind4", prog: "pt_bind4", kind: cgroup, typ: ebpf.AttachCGroupInet4Bind, needs: "cgroup bind hooks (Linux 4.17+)"},
		{name: "cgroup/bind6", prog: "pt_bind6", kind: cgroup, typ: ebpf.AttachCGroupInet6Bind, needs: "cgroup bind hooks (Linux 4.17+)"},
		{name: "cgroup/post_bind4", prog: "pt_post_bind4", kind: cgroup, typ: ebpf.AttachCGroupInet4PostBind, needs: "cgroup post_bind hooks (Linux 4.17+)"},
		{name: "cgroup/post_bind6", prog: "pt_post_bind6", kind: cgroup, typ: ebpf.AttachCGroupInet6PostBind, needs: "cgroup post_bind hooks (Linux 4.17+)"},
		{name: "cgroup/connect4", prog: "pt_connect4", kind: cgroup, typ: ebpf.AttachCGroupInet4Connect, needs: "cgroup connect hooks (Linux 4.17+)"},
		{name: "cgroup/connect6", prog: "pt_connect6", kind: cgroup, typ: ebpf.AttachCGroupInet6Connect, needs: "cgroup connect hooks (Linux 4.17+)"},
		{name: "tp_btf/sock_send_length", prog: "pt_send", kind: tracing, needs: "the sock_send_length tracepoint (Linux 6.5+)",
			tracepoint: "sock_send_length", fallback: []hook{
				// Cost every unconnected UDP send the socket lock, and miss
				// failed autobinds: only where the tracepoint is missing.
				{name: "cgroup/sendmsg4", prog: "pt_sendmsg4", kind: cgroup, typ: ebpf.AttachCGroupUDP4Sendmsg, needs: "cgroup sendmsg hooks (Linux 4.18+)"},
				{name: "cgroup/sendmsg6", prog: "pt_sendmsg6", kind: cgroup, typ: ebpf.AttachCGroupUDP6Sendmsg, needs: "cgroup sendmsg hooks (Linux 4.18+)"},
			}},
		hookRelease,
	},
}

// Iterators every tier runs: ports held at start, a namespace's sockets.
var iters = []struct{ prog, name string }{
	{"pt_existing", "iter/task_file"}, {"pt_list_tcp", "iter/tcp"}, {"pt_list_udp", "iter/udp"},
}

// Hook tiers, as --hooks names them.
const (
	HooksAuto     = "auto"     // the first tier the kernel accepts: precise, kprobe, portable
	HooksPrecise  = "precise"  // fexit on the functions that pick ports, else kprobe
	HooksPortable = "portable" // tracepoints and cgroup socket hooks only
	HooksKprobe   = "kprobe"   // the precise hooks' work through kprobes: their fallback
)

// tiersFor lists the tiers to try, best first.
func tiersFor(choice string) ([]tier, error) {
	switch choice {
	case "", HooksAuto:
		return []tier{preciseTier, kprobeTier, portableTier}, nil
	case HooksPrecise:
		return []tier{preciseTier, kprobeTier}, nil
	case HooksKprobe:
		return []tier{kprobeTier}, nil
	case HooksPortable:
		return []tier{portableTier}, nil
	}
	return nil, fmt.Errorf("unknown hook tier %q: use auto, precise, kprobe or portable", choice)
}

// forKernel replaces the hooks whose tracepoint this kernel lacks by their
// fallbacks, saying which in notes.
func (tr tier) forKernel() (tier, []string) {
	out := tr
	out.hooks = nil
	var notes []string
	for _, h := range tr.hooks {
		if h.tracepoint == "" || haveTracepoint(h.tracepoint) {
			out.hooks = append(out.hooks, h)
			continue
		}
		var names []string
		for _, f := range h.fallback {
			names = append(names, f.name)
		}
		notes = append(notes, fmt.Sprintf("this kernel has no %s tracepoint: %s stand in", h.tracepoint, strings.Join(names, " and ")))
		out.hooks = append(out.hooks, h.fallback...)
	}
	return out, notes
}

// haveTracepoint looks for a tracepoint's BTF type: a tp_btf program can
// attach to it exactly when the kernel's BTF has btf_trace_<name>.
func haveTracepoint(name string) bool {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return true // let the load say what is wrong
	}
	var td *btf.Typedef
	return spec.TypeByName("btf_trace_"+name, &td) == nil
}

// countLean says whether the portable tier counts with as few programs as
// it can (count_lean in bpf/counters.h): when only counts are wanted (serve
// without a recording or a filter), it leaves out sockops (the state
// tracepoint counts TCP connect and listen, pick_begins in bpf/shared.h)
// and tcp_destroy_sock (cgroup/sock_release ends what outlives ->CLOSE):
// eleven of 26 program runs per loopback connect+close, each ~65 ns even
// when it returns at once. The same condition as counts_only().
func (tr tier) countLean(opts Options) bool {
	f := opts.Filter
	return tr.name == portableTier.name && opts.Count && opts.FailuresOnly &&
		len(f.PIDs) == 0 && len(f.Comms) == 0 && f.Family == 0 && f.Ports.Len() == 0
}

// without leaves out the hook of one program.
func (tr tier) without(prog string) tier {
	out := tr
	out.hooks = nil
	for _, h := range tr.hooks {
		if h.prog != prog {
			out.hooks = append(out.hooks, h)
		}
	}
	return out
}

// replacing loads the program with for the one named prog, on the same
// hook.
func (tr tier) replacing(prog, with string) tier {
	out := tr
	out.hooks = nil
	for _, h := range tr.hooks {
		if h.prog == prog {
			h.prog = with
		}
		out.hooks = append(out.hooks, h)
	}
	return out
}

// programs names the BPF programs a tier loads.
func (tr tier) programs() []string {
	var names []string
	for _, it := range iters {
		names = append(names, it.prog)
	}
	for _, h := range tr.hooks {
		names = append(names, h.prog)
	}
	return names
}

// run attaches the hook, an error saying what the hook needs.
func (h hook) run(t *Tracer) (link.Link, error) {
	l, err := h.attach(t)
	if err != nil {
		return nil, fmt.Errorf("attach %s: %w (this hook needs %s)", h.name, err, h.needs)
	}
	return l, nil
}

func (h hook) attach(t *Tracer) (link.Link, error) {
	p := t.coll.Programs[h.prog]
	var (
		l   link.Link
		err error
	)
	if p == nil {
		err = fmt.Errorf("program %s is not loaded", h.prog)
	} else if h.kind == cgroup {
		l, err = link.AttachCgroup(link.CgroupOptions{Path: t.cgroupRoot, Attach: h.typ, Program: p})
	} else if h.kind == kprobe {
		l, err = link.Kprobe(h.symbol, p, nil)
	} else if h.kind == kretprobe {
		// Enough instances for every CPU to be inside the function at once,
		// several times over, so no return goes unseen.
		l, err = link.Kretprobe(h.symbol, p, &link.KprobeOptions{RetprobeMaxActive: 4 * runtime.NumCPU()})
	} else {
		l, err = link.AttachTracing(link.TracingOptions{Program: p})
	}
	if err != nil && h.kind == tracing && strings.HasPrefix(h.name, "fexit/") && errors.Is(err, ebpf.ErrNotSupported) {
		err = fmt.Errorf("the kernel cannot attach fexit programs here (%w): no BPF trampolines on kernel functions (arm64 has them from Linux 6.4)", err)
	}
	if err != nil && (h.kind == kprobe || h.kind == kretprobe) && errors.Is(err, os.ErrNotExist) {
		err = errors.New("the kernel has no kprobes (CONFIG_KPROBES is off, or tracefs has no kprobe_events)")
	}
	return l, err
}
