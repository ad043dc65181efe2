package tracer

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Check is one thing porttrace needs, or could use, from the host.
type Check struct {
	Name   string
	OK     bool
	Needed bool   // porttrace cannot trace without it
	Detail string // what was found
	Fix    string // one line saying what to do, when not OK
}

// Doctor looks at what this host offers: it loads and attaches every hook
// for real, detaching each at once, and probes the kernel for the rest.
func Doctor() []Check {
	var cs []Check
	add := func(c Check) { cs = append(cs, c) }

	var uts unix.Utsname
	unix.Uname(&uts)
	add(Check{Name: "kernel", OK: true, Detail: fmt.Sprintf("Linux %s %s", unix.ByteSliceToString(uts.Release[:]), unix.ByteSliceToString(uts.Machine[:]))})

	priv := checkPrivileges()
	who := "CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN and CAP_SYS_ADMIN"
	if os.Geteuid() == 0 {
		who = "root with " + who
	}
	add(Check{Name: "privileges", OK: priv == nil, Needed: true, Detail: detail(priv, who), Fix: "run porttrace with sudo"})

	_, btfErr := os.Stat("/sys/kernel/btf/vmlinux")
	add(Check{Name: "BTF", OK: btfErr == nil, Needed: true, Detail: detail(btfErr, "/sys/kernel/btf/vmlinux"),
		Fix: "boot a kernel built with CONFIG_DEBUG_INFO_BTF=y (Linux 5.11 or later)"})

	rb := features.HaveMapType(ebpf.RingBuf)
	add(Check{Name: "ring buffer", OK: rb == nil, Needed: true, Detail: detail(rb, "BPF_MAP_TYPE_RINGBUF"), Fix: "needs Linux 5.8 or later"})
	sks := features.HaveMapType(ebpf.SkStorage)
	add(Check{Name: "socket storage", OK: sks == nil, Needed: true, Detail: detail(sks, "BPF_MAP_TYPE_SK_STORAGE"), Fix: "needs Linux 5.11 or later"})

	cg, _ := mountPoint("cgroup2")
	add(Check{Name: "cgroup v2", OK: true, Detail: orElse(cg, "not mounted: porttrace mounts the hierarchy privately under /run/porttrace")})

	mode, lerr := lockdown()
	add(Check{Name: "lockdown", OK: lerr != nil || mode != "confidentiality", Needed: true, Detail: orElse(mode, "unknown (no securityfs)"),
		Fix: "lockdown=confidentiality forbids reading kernel memory from BPF: boot with lockdown=integrity or none"})

	for _, fs := range []struct{ name, typ, why string }{
		{"tracefs", "tracefs", "not needed: porttrace attaches no tracefs tracepoints"},
		{"bpffs", "bpf", "not needed: porttrace pins nothing"},
	} {
		p, _ := mountPoint(fs.typ)
		d := "mounted at " + p
		if p == "" {
			d = "not mounted; " + fs.why
		}
		add(Check{Name: fs.name, OK: true, Detail: d})
	}

	// Every hook of the portable tier, loaded and attached for real.
	if priv == nil && btfErr == nil {
		t, err := load(Options{BufferSize: 1 << 16})
		if err != nil {
			add(Check{Name: "load BPF programs", Needed: true, Detail: err.Error(), Fix: "porttrace's hooks need Linux 6.5 or later; a tier for older kernels is not built yet"})
		} else {
			for _, h := range portableTier.hooks {
				l, err := h.run(t)
				if err == nil {
					l.Close()
				}
				add(Check{Name: "hook " + h.name, OK: err == nil, Needed: true, Detail: detail(err, "attached and detached"), Fix: "needs " + h.needs})
			}
			for _, it := range []struct {
				name string
				p    *ebpf.Program
			}{{"iter/task_file", t.objs.PtExisting}, {"iter/tcp", t.objs.PtListTcp}, {"iter/udp", t.objs.PtListUdp}} {
				_, err := readIter(it.p, it.name)
				add(Check{Name: "hook " + it.name, OK: err == nil, Needed: true, Detail: detail(err, "ran once"), Fix: "needs Linux 5.11 or later with BTF"})
			}
			t.Close()
		}
	}

	// What a precise tier would use; none is needed today.
	fe := probeFexit()
	add(Check{Name: "fentry/fexit", OK: fe == nil, Detail: detail(fe, "fexit on inet_csk_get_port loads and attaches"),
		Fix: "not needed by the portable hooks porttrace uses"})
	kp := probeKprobe()
	add(Check{Name: "kprobes", OK: kp == nil, Detail: detail(kp, "kprobe on inet_csk_get_port attaches"),
		Fix: "not needed by the portable hooks porttrace uses"})
	return cs
}

// Usable reports whether every needed check passed.
func Usable(cs []Check) bool {
	for _, c := range cs {
		if c.Needed && !c.OK {
			return false
		}
	}
	return true
}

func detail(err error, ok string) string {
	if err == nil {
		return ok
	}
	return err.Error()
}

func orElse(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// lockdown reads the kernel lockdown mode from securityfs, mounting it
// privately if no one did.
func lockdown() (string, error) {
	read := func(p string) (string, error) {
		b, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		for _, f := range strings.Fields(string(b)) {
			if strings.HasPrefix(f, "[") {
				return strings.Trim(f, "[]"), nil
			}
		}
		return "", errors.New("no mode marked")
	}
	if m, err := read("/sys/kernel/security/lockdown"); err == nil {
		return m, nil
	}
	dir, err := os.MkdirTemp("", "porttrace-securityfs")
	if err != nil {
		return "", err
	}
	defer os.Remove(dir)
	if err := unix.Mount("securityfs", dir, "securityfs", unix.MS_RDONLY, ""); err != nil {
		return "", err
	}
	defer unix.Unmount(dir, 0)
	return read(dir + "/lockdown")
}

var returnZero = asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}

func probeFexit() error {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.Tracing, AttachType: ebpf.AttachTraceFExit, AttachTo: "inet_csk_get_port",
		Instructions: returnZero, License: "GPL"})
	if errors.Is(err, unix.EPERM) {
		return errors.New("the kernel refuses BPF trampolines (EPERM)")
	}
	if err != nil {
		return fmt.Errorf("refused: %w", err)
	}
	defer p.Close()
	l, err := link.AttachTracing(link.TracingOptions{Program: p})
	if err != nil {
		return fmt.Errorf("attach refused: %w", err)
	}
	return l.Close()
}

func probeKprobe() error {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.Kprobe, Instructions: returnZero, License: "GPL"})
	if err != nil {
		return fmt.Errorf("refused: %w", err)
	}
	defer p.Close()
	l, err := link.Kprobe("inet_csk_get_port", p, nil)
	if errors.Is(err, os.ErrNotExist) {
		return errors.New("the kernel has no kprobes (CONFIG_KPROBES is off, or tracefs lacks kprobe_events)")
	}
	if err != nil {
		return fmt.Errorf("attach refused: %w", err)
	}
	return l.Close()
}
