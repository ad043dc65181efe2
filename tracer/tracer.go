// Package tracer loads porttrace's BPF programs, attaches them, and turns
// what they report into Events: which process got which local port, how, for
// how long, and which calls could not get one.
package tracer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Options configure a Tracer.
type Options struct {
	Filter Filter
	// BufferSize is the ring buffer size in bytes, a power of two and a
	// multiple of the page size; 0 means 32 MiB.
	BufferSize int
	// SkipHooks leaves out hooks whose name starts with one of these, to
	// measure what each costs. What they alone see is then missed.
	SkipHooks []string
	// Hooks picks the hook tier: HooksAuto (""), HooksPrecise, HooksKprobe
	// or HooksPortable.
	Hooks string
	// Count has the programs count allocations, failures and hold times
	// per namespace, for Counters.
	Count bool
	// FailuresOnly, with Count, leaves allocations and releases in the
	// counts without sending them: Read returns failures only, the cheap
	// way to monitor around the clock.
	FailuresOnly bool
	// Poll is how often Read looks for lost events and clock steps while
	// nothing arrives; 0 means 100 ms. Each look wakes porttrace: a
	// daemon that waits for rare failures (which wake it at once) can
	// look less often.
	Poll time.Duration
}

// ErrKernelTooOld is wrapped by errors from kernels that offer no tier of
// hooks porttrace has.
var ErrKernelTooOld = errors.New("this kernel offers none of porttrace's hook tiers: the precise hooks need BPF trampolines (fexit), the kprobe ones kprobes, the portable ones BTF-typed tracepoints and cgroup socket hooks (Linux 5.10 or later)")

// ErrClosed is returned by Read once the tracer is closed.
var ErrClosed = errors.New("tracer closed")

// Tracer is a loaded and attached set of BPF programs.
type Tracer struct {
	coll       *ebpf.Collection
	links      []link.Link
	hooks      []string
	notes      []string
	tier       string
	tierWhy    string
	cgroupRoot string
	cgroupHeld *os.File // a private cgroup2 mount, reachable only through it
	cgroups    *cgroupPaths
	reader     *ringbuf.Reader

	rec       ringbuf.Record
	raw       porttracePtEvent
	clock     wallClock
	pending   []Event // clock and lost events, returned before the next record
	lostSeen  uint64
	listed    bool // Existing ran: the kernel's counts include the ports held at start
	lastCheck time.Time
	poll      time.Duration
	stopping  atomic.Bool
	closed    atomic.Bool
	// collMu guards coll against Close, which may run on another goroutine
	// while Read, Lost, Existing or Sockets use the maps and programs.
	collMu sync.RWMutex
}

// Open loads the BPF programs and attaches every hook of the best tier the
// kernel allows (or of the one Options.Hooks asks for). On error nothing is
// left attached.
func Open(opts Options) (*Tracer, error) {
	tiers, err := tiersFor(opts.Hooks)
	if err != nil {
		return nil, err
	}
	if err := checkHost(opts); err != nil {
		return nil, err
	}
	var refused []string
	for i, tr := range tiers {
		t, err := openTier(opts, tr)
		var te *tierError
		if !errors.As(err, &te) {
			if err != nil {
				return nil, err
			}
			switch {
			case len(tiers) == 1:
				t.tierWhy = "asked for"
			case i == 0:
				t.tierWhy = "the kernel allows them"
			default:
				t.tierWhy = strings.Join(refused, "; ")
			}
			return t, nil
		}
		refused = append(refused, te.Error())
	}
	if opts.Hooks != "" && opts.Hooks != HooksAuto {
		return nil, fmt.Errorf("%s; without --hooks %s porttrace picks the hooks this kernel allows", strings.Join(refused, "; "), opts.Hooks)
	}
	return nil, fmt.Errorf("%w: %s; run porttrace doctor for what this kernel offers", ErrKernelTooOld, strings.Join(refused, "; "))
}

// A tierError is a tier the kernel refused: the next may still work.
type tierError struct {
	tier string
	err  error
}

func (e *tierError) Error() string { return fmt.Sprintf("%s hooks refused: %v", e.tier, e.err) }
func (e *tierError) Unwrap() error { return e.err }

func openTier(opts Options, tr tier) (_ *Tracer, err error) {
	tr, notes := tr.forKernel()
	if tr.countLean(opts) {
		tr = tr.without("pt_sockops").without("pt_destroy")
	}
	t, tr, err := loadCounting(opts, tr)
	if err != nil {
		return nil, err
	}
	t.notes = append(notes, t.notes...)
	// A return sets the named result before this runs: close t, not it.
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	for _, h := range tr.hooks {
		if skipped(h.name, opts.SkipHooks) {
			continue
		}
		l, err := h.run(t)
		if err != nil {
			return nil, &tierError{tr.name, err}
		}
		t.links = append(t.links, l)
		t.hooks = append(t.hooks, h.name)
	}

	t.reader, err = ringbuf.NewReader(t.coll.Maps["events"])
	if err != nil {
		return nil, fmt.Errorf("open ring buffer: %w", err)
	}
	return t, nil
}

// loadCounting loads the tier's programs; where it counts lean, with
// pt_state_count for pt_state, which keeps each TCP pick in a table slot
// claimed by compare-and-swap. A kernel without BPF atomics (before 5.12)
// refuses that program outright ("BPF_STX uses reserved fields"): then
// pt_state keeps the picks in a hash map, and the notes say so. The tier
// returned is the one loaded.
func loadCounting(opts Options, tr tier) (*Tracer, tier, error) {
	if tr.countLean(opts) && !noAtomics {
		slots := tr.replacing("pt_state", "pt_state_count")
		t, err := load(opts, slots, slots.programs())
		if err == nil {
			return t, slots, nil
		}
		t, err2 := load(opts, tr, tr.programs())
		if err2 != nil {
			return nil, tr, err2
		}
		t.notes = append(t.notes, hashCounting+": the kernel refused the compare-and-swap of pt_state_count (BPF atomics, Linux 5.12+): "+firstLine(err.Error()))
		return t, tr, nil
	}
	t, err := load(opts, tr, tr.programs())
	return t, tr, err
}

// hashCounting says what counting costs where the kernel refuses
// pt_state_count; the start notes and doctor both say it.
const hashCounting = "serve counts TCP connects in a hash map, about 0.4 µs dearer each"

// firstLine is s up to its first newline.
func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

// checkHost checks what every tier needs before any is tried.
func checkHost(opts Options) error {
	if err := opts.Filter.Validate(); err != nil {
		return err
	}
	if err := checkPrivileges(); err != nil {
		return err
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		return errors.New("this kernel does not publish BTF (/sys/kernel/btf/vmlinux is missing): porttrace needs Linux 5.10 or later built with CONFIG_DEBUG_INFO_BTF=y")
	}
	// Kernels from 5.11 on account BPF memory to the cgroup; on older ones
	// the limit must go, and where it cannot the load will say so.
	_ = rlimit.RemoveMemlock()
	return nil
}

// load loads the named BPF programs, set up for one tier, and finds the
// cgroup root, attaching nothing. A kernel that refuses the programs gives a
// *tierError.
func load(opts Options, tr tier, progs []string) (_ *Tracer, err error) {
	spec, err := loadPorttrace()
	if err != nil {
		return nil, fmt.Errorf("read embedded BPF object: %w", err)
	}
	if err := setFilter(spec, &opts.Filter); err != nil {
		return nil, err
	}
	size := opts.BufferSize
	if size == 0 {
		size = 32 << 20
	}
	if size < os.Getpagesize() || size&(size-1) != 0 {
		return nil, fmt.Errorf("ring buffer size %d is not a power of two of at least %d bytes", size, os.Getpagesize())
	}
	spec.Maps["events"].MaxEntries = uint32(size)
	if err := spec.Variables["wakeup_bytes"].Set(uint64(size / 8)); err != nil {
		return nil, fmt.Errorf("set wakeup threshold: %w", err)
	}

	kf := kernelOffers()
	inHash := tr.skInHash || !kf.tracingSkStorage
	if err := errors.Join(spec.Variables["tier_precise"].Set(tr.precise), spec.Variables["sk_in_hash"].Set(inHash),
		spec.Variables["count_on"].Set(opts.Count), spec.Variables["failures_only"].Set(opts.Count && opts.FailuresOnly),
		spec.Variables["count_lean"].Set(tr.countLean(opts))); err != nil {
		return nil, fmt.Errorf("set tier: %w", err)
	}
	if inHash {
		spec.Maps["sock_hash"].MaxEntries = 1 << 17 // ports held at once, with room
	}
	if tr.precise && !kf.taskPtRegs {
		if kf.regsErr != nil {
			return nil, &tierError{tr.name, fmt.Errorf("find a system call's registers without bpf_task_pt_regs (Linux 5.15+): %w", kf.regsErr)}
		}
		if err := spec.Variables["regs_off"].Set(kf.regsOff); err != nil {
			return nil, fmt.Errorf("set regs_off: %w", err)
		}
	}
	keep := map[string]bool{}
	for _, p := range progs {
		keep[p] = true
	}
	// The picks of lean counting (bpf/counters.h): a hash map's buckets
	// are allocated whole when it is made, 16 bytes each, so it is sized
	// for what it holds: every connecting and connected TCP socket where
	// there are no table slots, those whose slot was taken where there are.
	slots, hashed := uint32(pickSlots), uint32(1)
	switch {
	case keep["pt_state_count"]:
		hashed = 1 << 18
	case tr.countLean(opts):
		slots, hashed = 1, 1<<20
	default:
		slots = 1
	}
	spec.Maps["picks"].MaxEntries = hashed
	spec.Maps["pick_slots"].MaxEntries = slots
	if err := spec.Variables["pick_slots_mask"].Set(slots - 1); err != nil {
		return nil, fmt.Errorf("set pick_slots_mask: %w", err)
	}
	for name := range spec.Programs {
		if !keep[name] {
			delete(spec.Programs, name)
		}
	}

	t := &Tracer{tier: tr.name, clock: newWallClock(), poll: opts.Poll}
	if t.poll <= 0 {
		t.poll = 100 * time.Millisecond
	}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()

	t.coll, err = ebpf.NewCollection(spec)
	if err != nil {
		if errors.Is(err, unix.EPERM) && !tr.precise {
			// Privileges were checked: lockdown or an LSM said no.
			return nil, fmt.Errorf("load BPF programs: %w (%w)", err, ErrPrivileges)
		}
		if errors.Is(err, unix.EPERM) && tr.name == preciseTier.name {
			// cilium/ebpf blames MEMLOCK for any EPERM; root has no such limit.
			return nil, &tierError{tr.name, errors.New("load BPF programs: the kernel refused fexit programs (EPERM): it offers no BPF trampolines")}
		}
		return nil, &tierError{tr.name, fmt.Errorf("load BPF programs: %w", err)}
	}
	// Loading parsed the kernel's BTF for CO-RE: tens of MiB not needed again.
	debug.FreeOSMemory()

	root, held, note, err := cgroup2Root()
	if err != nil {
		return nil, err
	}
	t.cgroupRoot, t.cgroupHeld = root, held
	t.cgroups = newCgroupPaths(root)
	t.addNote(note)
	return t, nil
}

func (t *Tracer) addNote(n string) {
	if n != "" {
		t.notes = append(t.notes, n)
	}
}

func setFilter(spec *ebpf.CollectionSpec, f *Filter) error {
	set := func(name string, v any) error {
		vs, ok := spec.Variables[name]
		if !ok {
			return fmt.Errorf("set filter: BPF object has no variable %s", name)
		}
		if err := vs.Set(v); err != nil {
			return fmt.Errorf("set filter %s: %w", name, err)
		}
		return nil
	}
	var pids [MaxPIDs]uint32
	copy(pids[:], f.PIDs)
	var comms [MaxComms][16]byte
	for i, c := range f.Comms {
		copy(comms[i][:15], c)
	}
	var on uint8
	if f.Ports.Len() > 0 {
		on = 1
	}
	return errors.Join(
		set("f_ports_on", on),
		set("f_ports", f.Ports.bits),
		set("f_npids", uint32(len(f.PIDs))),
		set("f_pids", pids),
		set("f_ncomms", uint32(len(f.Comms))),
		set("f_comms", comms),
		set("f_proto", uint8(f.Proto)),
		set("f_family", uint16(f.Family)),
	)
}

// Hooks names the attached hooks, in attach order.
func (t *Tracer) Hooks() []string { return append([]string(nil), t.hooks...) }

// Tier names the set of hooks in use: HooksPrecise or HooksPortable.
func (t *Tracer) Tier() string { return t.tier }

// TierReason says why that tier is in use.
func (t *Tracer) TierReason() string { return t.tierWhy }

// Notes lists what porttrace changed on the host to run (mounts it made).
func (t *Tracer) Notes() []string { return append([]string(nil), t.notes...) }

// Existing lists the ports held when it is called, one alloc Event with
// Via == ViaExisting per socket, each named with a process holding it. Call
// it once, after Open: sockets reported here get their release reported too.
func (t *Tracer) Existing() ([]Event, error) {
	var data []byte
	err := t.withColl(func(c *ebpf.Collection) (err error) {
		data, err = readIter(c.Programs["pt_existing"], "iter/task_file (needs Linux 5.10+)")
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []Event
	for ; len(data) >= rawEventSize; data = data[rawEventSize:] {
		e, err := t.event(data)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	t.listed = true
	return out, nil
}

// Read blocks until the next Event. Drops in the kernel come back as
// KindLost events. After Stop, Read returns what is already buffered and then
// io.EOF; after Close it returns ErrClosed.
func (t *Tracer) Read() (Event, error) { return t.ReadUntil(time.Time{}) }

// ReadUntil is Read that gives up at deadline (zero: never) with
// os.ErrDeadlineExceeded, so a caller can do periodic work between events
// without a second goroutine.
func (t *Tracer) ReadUntil(deadline time.Time) (Event, error) {
	for {
		if t.closed.Load() {
			return Event{}, ErrClosed
		}
		if time.Since(t.lastCheck) >= t.poll {
			t.check()
		}
		if len(t.pending) > 0 {
			e := t.pending[0]
			t.pending = t.pending[1:]
			return e, nil
		}
		stopping := t.stopping.Load()
		wait := time.Now().Add(t.poll)
		if !deadline.IsZero() && deadline.Before(wait) {
			wait = deadline
		}
		if stopping {
			wait = time.Now()
		}
		t.reader.SetDeadline(wait)
		err := t.reader.ReadInto(&t.rec)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			if stopping {
				t.check()
				if len(t.pending) > 0 {
					continue
				}
				return Event{}, io.EOF
			}
			if !deadline.IsZero() && !time.Now().Before(deadline) {
				return Event{}, os.ErrDeadlineExceeded
			}
			continue
		case errors.Is(err, ringbuf.ErrClosed):
			return Event{}, ErrClosed
		case err != nil:
			return Event{}, fmt.Errorf("read ring buffer: %w", err)
		}
		return t.event(t.rec.RawSample)
	}
}

// Stop makes Read drain what is buffered and then return io.EOF.
func (t *Tracer) Stop() { t.stopping.Store(true) }

// Lost is the number of events the kernel could not queue so far.
func (t *Tracer) Lost() uint64 {
	n, _ := t.lostTotal()
	return n
}

// withColl runs fn on the loaded programs and maps, unless Close has
// freed them.
func (t *Tracer) withColl(fn func(*ebpf.Collection) error) error {
	t.collMu.RLock()
	defer t.collMu.RUnlock()
	if t.coll == nil {
		return ErrClosed
	}
	return fn(t.coll)
}

func (t *Tracer) lostTotal() (uint64, error) {
	var per []uint64
	if err := t.withColl(func(c *ebpf.Collection) error { return c.Maps["lost_events"].Lookup(uint32(0), &per) }); err != nil {
		return 0, err
	}
	var n uint64
	for _, v := range per {
		n += v
	}
	return n, nil
}

// check queues a clock event if the wall clock stepped, and a lost event
// if the kernel dropped events since the last check.
func (t *Tracer) check() {
	t.lastCheck = time.Now()
	if step, ok := t.clock.adjust(monoToWall()); ok {
		t.pending = append(t.pending, Event{Kind: KindClock, Time: time.Now().UTC(), Step: step})
	}
	n, err := t.lostTotal()
	if err != nil || n <= t.lostSeen {
		return
	}
	d := n - t.lostSeen
	t.lostSeen = n
	t.pending = append(t.pending, Event{Kind: KindLost, Time: time.Now().UTC(), Count: d})
}

// Close detaches every hook and frees the programs and maps, in the reverse
// order of Open. It is safe on a half-opened Tracer.
func (t *Tracer) Close() error {
	var errs []error
	if t.closed.Swap(true) {
		return nil
	}
	if t.reader != nil {
		errs = append(errs, t.reader.Close()) // wakes a blocked Read
	}
	for i := len(t.links) - 1; i >= 0; i-- {
		errs = append(errs, t.links[i].Close())
	}
	t.links = nil
	t.collMu.Lock()
	if t.coll != nil {
		t.coll.Close()
		t.coll = nil
	}
	t.collMu.Unlock()
	t.cgroups.close()
	if t.cgroupHeld != nil {
		t.cgroupHeld.Close()
	}
	return errors.Join(errs...)
}

func skipped(name string, prefixes []string) bool {
	for _, p := range prefixes {
		if p != "" && strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// readIter runs a BPF iterator once and returns all it wrote. Iterators of
// a namespace's sockets walk the namespace of the thread calling this.
func readIter(p *ebpf.Program, what string) ([]byte, error) {
	it, err := link.AttachIter(link.IterOptions{Program: p})
	if err != nil {
		return nil, fmt.Errorf("attach %s: %w", what, err)
	}
	defer it.Close()
	rd, err := it.Open()
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", what, err)
	}
	defer rd.Close()
	data, err := io.ReadAll(rd)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	return data, nil
}
