// Package report turns recorded traces into the story of an incident: who
// held which ports, for how long, at most how many at once, and what failed.
// It reads events as a stream and keeps memory bounded by the number of
// processes and ports held at once, not by the size of the recording.
package report

import (
	"fmt"
	"net/netip"
	"sort"
	"time"

	"github.com/porttrace/porttrace/internal/output"
	"github.com/porttrace/porttrace/internal/record"
	"github.com/porttrace/porttrace/internal/workload"
	"github.com/porttrace/porttrace/tracer"
)

// Filter selects events, as the live tracer's flags do.
type Filter struct {
	Ports        tracer.PortSet
	PIDs         []uint32
	Comms        []string
	Proto        tracer.Proto
	Since, Until time.Time
	Workload     workload.Filter // pods, namespaces, containers, as recorded
}

func (f *Filter) keep(e *tracer.Event) bool {
	if !f.Since.IsZero() && e.Time.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && e.Time.After(f.Until) {
		return false
	}
	if e.Kind != tracer.KindAlloc && e.Kind != tracer.KindRelease && e.Kind != tracer.KindFail {
		return true
	}
	if !f.Workload.Match(&e.Workload) {
		return false
	}
	if f.Proto != 0 && e.Proto != f.Proto {
		return false
	}
	if f.Ports.Len() > 0 && e.Kind != tracer.KindFail && !f.Ports.Has(e.Port) {
		return false
	}
	if len(f.PIDs) > 0 && !containsPID(f.PIDs, e.PID) {
		return false
	}
	if len(f.Comms) > 0 && !containsStr(f.Comms, e.Comm) && (e.Thread == "" || !containsStr(f.Comms, e.Thread)) {
		return false
	}
	return true
}

func containsPID(s []uint32, v uint32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func containsStr(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Limits that keep a report's memory bounded whatever the input (under
// about 256 MiB in all): what does not fit is summed up, and the report
// says so (Report.Limits).
const (
	MaxFailures  = 1000   // failures listed one by one; all are counted
	MaxHolds     = 20000  // holds kept for the timeline; all are counted
	MaxProcesses = 50000  // processes listed; the others are summed in one row
	MaxOpen      = 300000 // holds followed at once; more are counted, not followed
	MaxPortHolds = 200000 // holds listed under --port; all are counted
	// MaxNamespaces is how many namespaces' ports in use are followed.
	MaxNamespaces = 256
)

// OtherProcesses is the command name of the row that sums the processes
// beyond MaxProcesses.
const OtherProcesses = "(other processes)"

type procKey struct {
	pid  uint32
	comm string
}

type proc struct {
	key      procKey
	fails    uint64
	allocs   uint64
	existing uint64
	held     hist
	open     int
	peak     int
	pod      PodRef // as first seen
}

// openHold is what a hold still open needs beyond its key.
type openHold struct {
	start time.Time
	comm  string
	via   tracer.Via
}

type holdKey struct {
	netns       uint32
	proto       tracer.Proto
	port, rport uint16
	pid         uint32
	laddr       netip.Addr
	raddr       netip.Addr
}

// Hold is one port held by one process.
type Hold struct {
	Port   uint16
	Proto  tracer.Proto
	NetNS  uint32
	PID    uint32
	Comm   string
	Start  time.Time
	End    time.Time // zero: still held when the recording ended
	Held   time.Duration
	Via    tracer.Via
	State  tracer.TCPState
	Remote netip.AddrPort
}

// Builder accumulates a report from events in time order.
type Builder struct {
	filter    Filter
	keepHolds bool // list every hold (a port filter is set)

	first, last  time.Time
	events       uint64
	lost         uint64
	failCount    uint64
	failures     []tracer.Event
	procs        map[procKey]*proc
	other        *proc // the processes beyond MaxProcesses, summed
	open         map[holdKey]openHold
	all          map[holdKey]struct{} // every hold open, filtered or not
	unfollowed   uint64               // holds beyond MaxOpen
	unlisted     uint64               // holds beyond MaxPortHolds
	stepsLeft    int                  // see occupancy
	nsUnfollowed bool
	holds        []Hold // with a port filter: all; otherwise a sample for the timeline
	holdsSeen    uint64
	occ          map[uint32]*occupancy
	ranges       map[uint32]tracer.PortRange
	names        map[uint32]string
	podOf        map[uint32]PodRef // network namespace → its pod
}

// NewBuilder starts an empty report.
func NewBuilder(f Filter) *Builder {
	return &Builder{filter: f, keepHolds: f.Ports.Len() > 0, procs: map[procKey]*proc{}, open: map[holdKey]openHold{}, all: map[holdKey]struct{}{},
		occ: map[uint32]*occupancy{}, ranges: map[uint32]tracer.PortRange{}, names: map[uint32]string{}, podOf: map[uint32]PodRef{}, stepsLeft: maxSteps}
}

func keyOf(e *tracer.Event) holdKey {
	return holdKey{netns: e.NetNS, proto: e.Proto, port: e.Port, rport: e.RemotePort, pid: e.PID, laddr: e.LocalAddr, raddr: e.RemoteAddr}
}

// releaseKey finds the open hold a release ends in m: a port taken by
// bind() and connected later was allocated with no remote and is released
// with the one it was connected to.
func releaseKey[V any](m map[holdKey]V, e *tracer.Event) (holdKey, bool) {
	k := keyOf(e)
	if _, ok := m[k]; ok {
		return k, true
	}
	k.raddr, k.rport = netip.Addr{}, 0
	_, ok := m[k]
	return k, ok
}

func (b *Builder) proc(e *tracer.Event) *proc {
	k := procKey{e.PID, e.Comm}
	p := b.procs[k]
	if p == nil {
		if len(b.procs) >= MaxProcesses {
			if b.other == nil {
				b.other = &proc{key: procKey{0, OtherProcesses}}
			}
			return b.other
		}
		p = &proc{key: k, pod: podRef(e.Workload)}
		b.procs[k] = p
	}
	return p
}

// Add takes the next event.
func (b *Builder) Add(e tracer.Event) {
	if e.Kind == tracer.KindStart && e.Start != nil {
		for _, n := range e.Start.Namespaces {
			if len(b.ranges) >= 4*MaxNamespaces {
				break
			}
			b.ranges[n.Inode] = n.Range
			if n.Name != "" {
				b.names[n.Inode] = n.Name
			}
		}
	}
	b.learnPod(&e)
	// How full each range was depends on every holder, whatever the filter.
	unfollowed := false
	switch e.Kind {
	case tracer.KindAlloc:
		k := keyOf(&e)
		if _, dup := b.all[k]; !dup {
			if len(b.all) >= MaxOpen {
				b.unfollowed++
				unfollowed = true
				break
			}
			b.all[k] = struct{}{}
			b.occupancy(e.NetNS).change(e.Time, +1)
		}
	case tracer.KindRelease:
		if k, ok := releaseKey(b.all, &e); ok {
			delete(b.all, k)
			b.occupancy(e.NetNS).change(e.Time, -1)
		}
	}
	if !b.filter.keep(&e) {
		return
	}
	if b.first.IsZero() || e.Time.Before(b.first) {
		b.first = e.Time
	}
	if e.Time.After(b.last) {
		b.last = e.Time
	}
	switch e.Kind {
	case tracer.KindLost:
		b.lost += e.Count
		b.events++
	case tracer.KindAlloc:
		b.events++
		if e.Range.Lo != 0 && len(b.ranges) < 4*MaxNamespaces {
			b.ranges[e.NetNS] = e.Range
		}
		p := b.proc(&e)
		if e.Via == tracer.ViaExisting {
			p.existing++
		} else {
			p.allocs++
		}
		k := keyOf(&e)
		if _, ok := b.open[k]; !ok && (unfollowed || len(b.open) >= MaxOpen) {
			if !unfollowed {
				b.unfollowed++
			}
			break
		}
		p.open++
		if p.open > p.peak {
			p.peak = p.open
		}
		b.open[k] = openHold{start: e.Time, comm: e.Comm, via: e.Via}
	case tracer.KindRelease:
		b.events++
		p := b.proc(&e)
		p.held.add(e.Held)
		if k, ok := releaseKey(b.open, &e); ok {
			delete(b.open, k)
			if p.open > 0 {
				p.open--
			}
		}
		b.hold(Hold{Port: e.Port, Proto: e.Proto, NetNS: e.NetNS, PID: e.PID, Comm: e.Comm, Start: e.Time.Add(-e.Held), End: e.Time,
			Held: e.Held, Via: e.Via, State: e.State, Remote: netip.AddrPortFrom(e.RemoteAddr, e.RemotePort)})
	case tracer.KindFail:
		b.events++
		b.failCount++
		b.proc(&e).fails++
		if len(b.failures) < MaxFailures {
			b.failures = append(b.failures, e)
		}
	}
}

// hold records a finished (or, at the end, unfinished) hold: all of them
// under a port filter, otherwise an even sample for the timeline.
func (b *Builder) hold(h Hold) {
	b.holdsSeen++
	if b.keepHolds && len(b.holds) >= MaxPortHolds {
		b.unlisted++
		return
	}
	if b.keepHolds || len(b.holds) < MaxHolds {
		b.holds = append(b.holds, h)
		return
	}
	// Reservoir sampling: every hold has the same chance to be drawn.
	if j := int(splitmix(b.holdsSeen) % b.holdsSeen); j < MaxHolds {
		b.holds[j] = h
	}
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// occupancy is the namespace's curve; nil beyond MaxNamespaces, which are
// then not followed.
func (b *Builder) occupancy(netns uint32) *occupancy {
	o := b.occ[netns]
	if o == nil {
		if len(b.occ) >= MaxNamespaces {
			b.nsUnfollowed = true
			return nil
		}
		o = newOccupancy(&b.stepsLeft)
		b.occ[netns] = o
	}
	return o
}

// Report is the finished report; its JSON form is the --format json output.
type Report struct {
	Span      Span            `json:"span"`
	Events    uint64          `json:"events"`
	Lost      uint64          `json:"lost"`
	Truncated bool            `json:"truncated"`
	Damaged   []record.Damage `json:"damaged"` // files not read to their end
	// Duplicates counts events passed over as read before from another
	// file (the same file twice, rotated files that overlap).
	Duplicates uint64        `json:"duplicates"`
	Files      []string      `json:"files"`
	Filter     string        `json:"filter"`
	Processes  []Process     `json:"processes"`
	Ports      []Port        `json:"ports"`
	Failures   []Failure     `json:"failures"`
	FailTotal  uint64        `json:"failures_total"`
	Ranges     []RangeSeries `json:"occupancy"`
	// Limits says, in sentences, what was summed up to keep memory bounded.
	Limits    []string `json:"limits"`
	Timeline  []Hold   `json:"-"`
	Sampled   bool     `json:"-"` // Timeline is a sample of HoldTotal holds
	HoldTotal uint64   `json:"-"`
}

// Span is the time the report covers.
type Span struct {
	Start    time.Time     `json:"start"`
	End      time.Time     `json:"end"`
	Duration time.Duration `json:"duration_ns"`
}

// Process sums up one process (pid and command name).
type Process struct {
	PID      uint32        `json:"pid"`
	Comm     string        `json:"comm"`
	Allocs   uint64        `json:"allocs"`
	Existing uint64        `json:"existing"`
	Releases uint64        `json:"releases"`
	HeldP50  time.Duration `json:"held_p50_ns"`
	HeldP99  time.Duration `json:"held_p99_ns"`
	HeldMax  time.Duration `json:"held_max_ns"`
	Peak     int           `json:"peak"`
	Fails    uint64        `json:"fails"`
	PodRef
}

// Port lists every hold of one port (with a port filter).
type Port struct {
	Port  uint16     `json:"port"`
	Proto string     `json:"proto"`
	Holds []JSONHold `json:"holds"`
	// LeftOut is how many holds a page left out of its table.
	LeftOut int `json:"-"`
}

// JSONHold is a Hold as the JSON document spells it.
type JSONHold struct {
	PID    uint32     `json:"pid"`
	Comm   string     `json:"comm"`
	NetNS  uint32     `json:"netns"`
	Start  time.Time  `json:"start"`
	End    *time.Time `json:"end"` // null: still held at the end of the recording
	Held   int64      `json:"held_ns"`
	Via    string     `json:"via"`
	State  string     `json:"state"`
	Remote string     `json:"remote"`
}

// Failure is one call that could not get a port.
type Failure struct {
	Time     time.Time `json:"time"`
	PID      uint32    `json:"pid"`
	Comm     string    `json:"comm"`
	Proto    string    `json:"proto"`
	Family   string    `json:"family"`
	Via      string    `json:"via"`
	Port     uint16    `json:"port"`
	Remote   string    `json:"remote"`
	Errno    string    `json:"errno"`
	NetNS    uint32    `json:"netns"`
	Deferred bool      `json:"deferred"`
	InUse    int       `json:"in_use"` // ports held in that namespace at that moment, as far as the recording shows
	PodRef
}

// RangeSeries is how many ports of a namespace were held over time.
type RangeSeries struct {
	NetNS  uint32     `json:"netns"`
	Name   string     `json:"name,omitempty"`
	Range  [2]uint16  `json:"range"`
	Peak   int        `json:"peak"`
	Points []OccPoint `json:"points"`
	PodRef            // the pod whose namespace it is
}

// OccPoint is the highest number of ports held during one step of time.
type OccPoint struct {
	Time time.Time `json:"time"`
	Held int       `json:"held"`
}

// Finish closes the report. Holds still open become holds without an end.
func (b *Builder) Finish() *Report {
	r := &Report{Span: Span{Start: b.first, End: b.last, Duration: b.last.Sub(b.first)}, Events: b.events, Lost: b.lost, FailTotal: b.failCount,
		Processes: []Process{}, Ports: []Port{}, Failures: []Failure{}, Ranges: []RangeSeries{}, Damaged: []record.Damage{}}
	for k, o := range b.open {
		b.hold(Hold{Port: k.port, Proto: k.proto, NetNS: k.netns, PID: k.pid, Comm: o.comm, Start: o.start, Held: b.last.Sub(o.start),
			Via: o.via, Remote: netip.AddrPortFrom(k.raddr, k.rport)})
	}
	r.Limits = b.limits()
	if b.other != nil {
		b.procs[b.other.key] = b.other
	}
	for _, p := range b.procs {
		r.Processes = append(r.Processes, Process{PID: p.key.pid, Comm: p.key.comm, Allocs: p.allocs, Existing: p.existing, Releases: p.held.n,
			HeldP50: p.held.quantile(0.5), HeldP99: p.held.quantile(0.99), HeldMax: p.held.max, Peak: p.peak, Fails: p.fails, PodRef: p.pod})
	}
	sort.Slice(r.Processes, func(i, j int) bool {
		a, c := r.Processes[i], r.Processes[j]
		if a.Allocs+a.Existing != c.Allocs+c.Existing {
			return a.Allocs+a.Existing > c.Allocs+c.Existing
		}
		return a.PID < c.PID
	})
	sort.Slice(b.holds, func(i, j int) bool { return b.holds[i].Start.Before(b.holds[j].Start) })
	r.Timeline = b.holds
	r.HoldTotal = b.holdsSeen
	r.Sampled = !b.keepHolds && b.holdsSeen > uint64(len(b.holds))
	if b.keepHolds {
		byPort := map[[2]uint16]*Port{}
		var order [][2]uint16
		for _, h := range b.holds {
			k := [2]uint16{h.Port, uint16(h.Proto)}
			p := byPort[k]
			if p == nil {
				p = &Port{Port: h.Port, Proto: h.Proto.String()}
				byPort[k] = p
				order = append(order, k)
			}
			jh := JSONHold{PID: h.PID, Comm: h.Comm, NetNS: h.NetNS, Start: h.Start, Held: int64(h.Held), Via: h.Via.String(), Remote: remote(h.Remote)}
			if !h.End.IsZero() {
				end := h.End
				jh.End = &end
				jh.State = endState(h)
			}
			p.Holds = append(p.Holds, jh)
		}
		sort.Slice(order, func(i, j int) bool {
			return order[i][0] < order[j][0] || order[i][0] == order[j][0] && order[i][1] < order[j][1]
		})
		for _, k := range order {
			r.Ports = append(r.Ports, *byPort[k])
		}
	}
	for _, f := range b.failures {
		r.Failures = append(r.Failures, Failure{Time: f.Time, PID: f.PID, Comm: f.Comm, Proto: f.Proto.String(), Family: f.Family.String(),
			Via: f.Via.String(), Port: f.Port, Remote: remote(netip.AddrPortFrom(f.RemoteAddr, f.RemotePort)), Errno: output.ErrnoName(f.Errno),
			NetNS: f.NetNS, Deferred: f.Deferred, InUse: b.occ[f.NetNS].at(f.Time), PodRef: podRef(f.Workload)})
	}
	for ns, o := range b.occ {
		rg := b.ranges[ns]
		r.Ranges = append(r.Ranges, RangeSeries{NetNS: ns, Name: b.names[ns], Range: [2]uint16{rg.Lo, rg.Hi}, Peak: o.peak, Points: o.points(), PodRef: b.podOf[ns]})
	}
	sort.Slice(r.Ranges, func(i, j int) bool { return r.Ranges[i].NetNS < r.Ranges[j].NetNS })
	return r
}

func (b *Builder) limits() []string {
	out := []string{}
	if b.other != nil {
		out = append(out, fmt.Sprintf("More than %d processes: the others are summed in the %s row.", MaxProcesses, OtherProcesses))
	}
	if b.unfollowed > 0 {
		out = append(out, fmt.Sprintf("More than %d ports were held at once: %d holds were counted but not followed, so ports in use and peaks are lower bounds.", MaxOpen, b.unfollowed))
	}
	if b.nsUnfollowed {
		out = append(out, fmt.Sprintf("More than %d network namespaces: the ports in use of the others are not drawn.", MaxNamespaces))
	}
	if b.unlisted > 0 {
		out = append(out, fmt.Sprintf("Only the first %d holds of the ports asked for are listed; %d more are counted.", MaxPortHolds, b.unlisted))
	}
	return out
}

// endState says how a hold ended: the TCP state the port was left in, or
// "closed" for UDP.
func endState(h Hold) string {
	if h.Proto == tracer.TCP && h.State != 0 {
		return h.State.String()
	}
	return "closed"
}

func remote(a netip.AddrPort) string {
	if !a.Addr().IsValid() || a.Addr().IsUnspecified() {
		return ""
	}
	return a.String()
}
