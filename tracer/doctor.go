package tracer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/rlimit"
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
// of every tier for real, detaching each at once, and probes the kernel for
// the rest. use names the tier porttrace would pick ("" if none works).
func Doctor() (_ []Check, use string) {
	var cs []Check
	add := func(c Check) { cs = append(cs, c) }
	// Before Linux 5.11 BPF memory is charged to RLIMIT_MEMLOCK (64 KiB by
	// default): raised as the tracer raises it, or every load is refused.
	_ = rlimit.RemoveMemlock()

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
		Fix: "boot a kernel built with CONFIG_DEBUG_INFO_BTF=y (Linux 5.10 or later)"})

	rb := features.HaveMapType(ebpf.RingBuf)
	add(Check{Name: "ring buffer", OK: rb == nil, Needed: true, Detail: detail(rb, "BPF_MAP_TYPE_RINGBUF"), Fix: "needs Linux 5.8 or later"})
	sks := features.HaveMapType(ebpf.SkStorage)
	add(Check{Name: "socket storage", OK: sks == nil, Needed: true, Detail: detail(sks, "BPF_MAP_TYPE_SK_STORAGE"), Fix: "needs Linux 5.2 or later"})

	cg, _ := mountPoint("cgroup2")
	add(Check{Name: "cgroup v2", OK: true, Detail: orElse(cg, "not mounted: porttrace mounts the hierarchy for itself alone, and leaves nothing mounted")})

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

	// Every hook of every tier, loaded and attached for real.
	if priv == nil && btfErr == nil {
		for _, c := range featureChecks() {
			add(c)
		}
		var works []string
		seen := map[string]bool{}
		itersRun := false
		for _, full := range []tier{preciseTier, kprobeTier, portableTier} {
			tr, _ := full.forKernel()
			for _, h := range full.hooks {
				if h.tracepoint != "" && !haveTracepoint(h.tracepoint) && !seen[h.name] {
					seen[h.name] = true
					add(Check{Name: "hook " + h.name, Detail: "no such tracepoint in this kernel: its fallbacks below stand in", Fix: "needs " + h.needs})
				}
			}
			t, err := load(Options{BufferSize: 1 << 16}, tr, tr.programs())
			if err != nil {
				// Say which hooks the kernel refuses: load each alone.
				for _, h := range tr.hooks {
					if seen[h.name] {
						continue
					}
					seen[h.name] = true
					one, err := load(Options{BufferSize: 1 << 16}, tr, []string{h.prog})
					if err == nil {
						var l io.Closer
						if l, err = h.attach(one); err == nil {
							l.Close()
						}
						one.Close()
					}
					add(Check{Name: "hook " + h.name, OK: err == nil, Detail: detail(unwrapTier(err), "attached and detached"), Fix: "needs " + needsOf(h, err)})
				}
				continue
			}
			ok := true
			for _, h := range tr.hooks {
				l, err := h.attach(t)
				if err == nil {
					l.Close()
				} else {
					ok = false
				}
				if seen[h.name] && err == nil {
					continue
				}
				seen[h.name] = true
				add(Check{Name: "hook " + h.name, OK: err == nil, Detail: detail(err, "attached and detached"), Fix: "needs " + needsOf(h, err)})
			}
			if !itersRun {
				itersRun = true
				for _, it := range iters {
					_, err := readIter(t.coll.Programs[it.prog], it.name)
					add(Check{Name: "hook " + it.name, OK: err == nil, Needed: true, Detail: detail(err, "ran once"), Fix: "needs Linux 5.10 or later with BTF (iter/tcp and iter/udp: 5.9)"})
				}
			}
			t.Close()
			if ok {
				works = append(works, tr.name)
			}
		}
		d := "none"
		if len(works) > 0 {
			use = works[0]
		}
		switch {
		case len(works) > 1:
			d = works[0] + " (" + strings.Join(works[1:], " and ") + " would work too)"
		case len(works) == 1:
			d = works[0] + " (the other tiers are refused: see their hooks above)"
		}
		add(Check{Name: "hook tier", OK: len(works) > 0, Needed: true, Detail: d,
			Fix: "precise needs " + preciseTier.needs + "; kprobe needs " + kprobeTier.needs + "; portable needs " + portableTier.needs})
	}
	return cs, use
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

func unwrapTier(err error) error {
	var te *tierError
	if errors.As(err, &te) {
		return te.err
	}
	return err
}

// needsOf names what a hook the kernel refused lacks: the helper the
// verifier refused, if that was it, else what the hook needs.
func needsOf(h hook, err error) string {
	if m := missingHelper(err); m != "" {
		return m
	}
	return h.needs
}

// featureChecks say which helpers this kernel lacks that porttrace works
// around, and how.
func featureChecks() []Check {
	kf := kernelOffers()
	var cs []Check
	d := "bpf_sk_storage_get from tracing programs"
	if !kf.tracingSkStorage {
		d = "absent (Linux 5.11+): records kept in a hash map keyed by socket"
	}
	cs = append(cs, Check{Name: "tracing socket storage", OK: true, Detail: d})
	d = "bpf_task_pt_regs"
	ok := true
	switch {
	case kf.taskPtRegs:
	case kf.regsErr != nil:
		ok = false
		d = "absent (Linux 5.15+), and measuring where they are failed: " + kf.regsErr.Error()
	default:
		d = fmt.Sprintf("absent (Linux 5.15+): measured %d bytes into the task's kernel stack", kf.regsOff)
	}
	cs = append(cs, Check{Name: "syscall registers", OK: ok, Detail: d,
		Fix: "the precise and kprobe hooks need a system call's registers: the portable hooks stand in"})
	d = "bpf_sock_from_file"
	if !kf.sockFromFile {
		d = "absent (Linux 5.11+): iter/task_file finds sockets through their sockfs inodes"
	}
	cs = append(cs, Check{Name: "socket of a file", OK: true, Detail: d})
	d = "compare-and-swap: serve counts TCP connects in table slots"
	lean := map[string]any{"sk_in_hash": !kf.tracingSkStorage, "count_lean": true, "count_on": true, "failures_only": true}
	if err := loadAlone("pt_state_count", lean); err != nil {
		d = "absent (Linux 5.12+): " + hashCounting + " (" + firstLine(err.Error()) + ")"
	}
	cs = append(cs, Check{Name: "BPF atomics", OK: true, Detail: d})
	return cs
}
