package tracer

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// What the kernel offers that one BPF object for every kernel chooses by,
// found once per process: the kernel does not change under it.
type kernelFeatures struct {
	// Tracing programs (tp_btf, fexit, iterators) may call
	// bpf_sk_storage_get (Linux 5.11+); where not, every tier keeps its
	// records in sock_hash.
	tracingSkStorage bool
	tracingSkErr     error
	// bpf_task_pt_regs (Linux 5.15+); where missing, regsOff says where a
	// task's system call registers are from the base of its kernel stack.
	taskPtRegs bool
	regsOff    uint64
	regsErr    error
	// bpf_sock_from_file (Linux 5.11+); where missing, iter/task_file finds
	// a file's socket through its sockfs inode.
	sockFromFile bool
}

var kernelOffers = sync.OnceValue(probeFeatures)

// How serve's counting keeps its picks (bpf/counters.h): the slots of
// pick_slots (a power of two), and whether to keep them in the hash alone,
// as where the kernel refuses BPF atomics. Changed by tests only, to run
// each way on one kernel.
var (
	pickSlots = 1 << 16
	noAtomics = false
)

func probeFeatures() kernelFeatures {
	var f kernelFeatures
	f.taskPtRegs = haveHelper("BPF_FUNC_task_pt_regs")
	f.sockFromFile = haveHelper("BPF_FUNC_sock_from_file")
	f.tracingSkErr = loadAlone("pt_destroy", map[string]any{"sk_in_hash": false})
	f.tracingSkStorage = f.tracingSkErr == nil
	if !f.taskPtRegs {
		f.regsOff, f.regsErr = measureRegsOff()
	}
	return f
}

// haveHelper looks for a helper in the kernel's own list of them (enum
// bpf_func_id in its BTF): the check the BPF programs make by CO-RE.
func haveHelper(name string) bool {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return true // let the load say what is wrong
	}
	var e *btf.Enum
	if spec.TypeByName("bpf_func_id", &e) != nil {
		return true
	}
	for _, v := range e.Values {
		if v.Name == name {
			return true
		}
	}
	return false
}

// loadAlone loads one program of the object, with the given variables set,
// and frees it: a real load, to ask the verifier.
func loadAlone(prog string, vars map[string]any) error {
	coll, err := loadOnly(prog, vars)
	if err == nil {
		coll.Close()
	}
	return err
}

func loadOnly(prog string, vars map[string]any) (*ebpf.Collection, error) {
	spec, err := loadPorttrace()
	if err != nil {
		return nil, fmt.Errorf("read embedded BPF object: %w", err)
	}
	for name := range spec.Programs {
		if name != prog {
			delete(spec.Programs, name)
		}
	}
	// Small maps: only the program's verdict is wanted.
	spec.Maps["events"].MaxEntries = 1 << 16
	for k, v := range vars {
		if err := spec.Variables[k].Set(v); err != nil {
			return nil, fmt.Errorf("set %s: %w", k, err)
		}
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", prog, err)
	}
	return coll, nil
}

// measureRegsOff finds where the calling task's system call registers are
// from the base of its kernel stack: the sys_enter tracepoint is handed
// them, and this thread makes one call while it is attached.
func measureRegsOff() (uint64, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	coll, err := loadOnly("pt_regs_calib", map[string]any{"calib_tid": uint32(unix.Gettid())})
	if err != nil {
		return 0, err
	}
	defer coll.Close()
	l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: "sys_enter", Program: coll.Programs["pt_regs_calib"]})
	if err != nil {
		return 0, fmt.Errorf("attach raw_tracepoint/sys_enter: %w", err)
	}
	unix.Getppid()
	l.Close()
	var off uint64
	if err := coll.Maps["calib"].Lookup(uint32(0), &off); err != nil {
		return 0, fmt.Errorf("read the measurement: %w", err)
	}
	if off == 0 {
		return 0, errors.New("the sys_enter tracepoint did not see porttrace's own system call")
	}
	return off, nil
}
