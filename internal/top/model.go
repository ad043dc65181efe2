// Package top is porttrace's live view of every namespace's ephemeral
// range: how full it is, who holds it, toward where, how fast ports are
// taken, and what failed.
package top

import (
	"fmt"
	"net/netip"
	"sort"
	"time"

	"github.com/porttrace/porttrace/internal/output"
	"github.com/porttrace/porttrace/internal/pressure"
	"github.com/porttrace/porttrace/tracer"
)

// Count is a name and how many ports it holds.
type Count struct {
	Name  string
	Count int
}

// Occ is how much of a range one protocol uses.
type Occ struct {
	InUse    int
	TimeWait int
}

// NS is one namespace in a snapshot.
type NS struct {
	Inode     uint32
	Name      string
	Range     tracer.PortRange
	Size      int // ports of the range, reserved ones left out
	TCP, UDP  Occ
	AllocRate float64 // per second over the last interval
	FailRate  float64
	ByProc    []Count
	ByCgroup  []Count
	Dests     []Count
	Pod       string // namespace/pod whose network namespace it is
}

// Snapshot is what the screen shows at one moment.
type Snapshot struct {
	Time     time.Time
	NS       []NS
	Failures []tracer.Event // the latest, newest first
	Lost     uint64
}

// Source is what a snapshot is made from (a tracer.Tracer and the host).
type Source interface {
	Sockets(nsPath string) ([]tracer.Socket, error)
	CgroupPath(id uint64) string
}

// Namer names the pod of a namespace and the container of a cgroup
// (a *workload.Resolver).
type Namer interface {
	ForNetns(inode uint32) tracer.Workload
	Lookup(cgroupID uint64, path string) tracer.Workload
}

// Model keeps the counts between snapshots.
type Model struct {
	Pods     Namer // nil: cgroups shown by path, namespaces by inode
	src      Source
	nss      []nsEntry // namespaces, their paths and reserved ports: re-read every few seconds
	nssRead  time.Time
	allocs   map[uint32]int
	fails    map[uint32]int
	last     time.Time
	failures []tracer.Event
	lost     uint64
	ranges   map[uint32]tracer.PortRange
}

type nsEntry struct {
	tracer.Namespace
	reserved tracer.PortSet
}

// namespaces lists the host's namespaces with what changes rarely, read
// again every 5 s: each read enters every namespace, which costs with many.
func (m *Model) namespaces(now time.Time) ([]nsEntry, error) {
	if m.nss != nil && now.Sub(m.nssRead) < 5*time.Second {
		return m.nss, nil
	}
	nss, err := tracer.Namespaces()
	if err != nil {
		return nil, err
	}
	var out []nsEntry
	for _, n := range nss {
		e := nsEntry{Namespace: n}
		if s, err := tracer.Sysctl(n.Path, "net/ipv4/ip_local_reserved_ports"); err == nil {
			e.reserved, _ = tracer.ParsePortList(s)
		}
		out = append(out, e)
	}
	m.nss, m.nssRead = out, now
	return out, nil
}

// NewModel starts counting.
func NewModel(src Source) *Model {
	return &Model{src: src, allocs: map[uint32]int{}, fails: map[uint32]int{}, last: time.Now(), ranges: map[uint32]tracer.PortRange{}}
}

// Add counts one event of the trace.
func (m *Model) Add(e *tracer.Event) {
	switch e.Kind {
	case tracer.KindAlloc:
		if e.Via != tracer.ViaExisting {
			m.allocs[e.NetNS]++
		}
	case tracer.KindFail:
		m.fails[e.NetNS]++
		m.failures = append([]tracer.Event{*e}, m.failures...)
		if len(m.failures) > 10 {
			m.failures = m.failures[:10]
		}
	case tracer.KindLost:
		m.lost += e.Count
	}
}

// Snapshot lists every namespace's sockets and sums them up, with the rates
// since the last snapshot.
func (m *Model) Snapshot(now time.Time) (*Snapshot, error) {
	nss, err := m.namespaces(now)
	if err != nil {
		return nil, err
	}
	secs := now.Sub(m.last).Seconds()
	if secs <= 0 {
		secs = 1
	}
	snap := &Snapshot{Time: now, Failures: append([]tracer.Event(nil), m.failures...), Lost: m.lost}
	for _, n := range nss {
		socks, err := m.src.Sockets(n.Path)
		if err != nil {
			continue
		}
		v := NS{Inode: n.Inode, Name: n.Name, Range: n.Range, Size: n.Range.Size(),
			AllocRate: float64(m.allocs[n.Inode]) / secs, FailRate: float64(m.fails[n.Inode]) / secs}
		for p := int(n.Range.Lo); p <= int(n.Range.Hi); p++ {
			if n.reserved.Has(uint16(p)) {
				v.Size--
			}
		}
		for _, proto := range []tracer.Proto{tracer.TCP, tracer.UDP} {
			e := tracer.Event{Proto: proto, Range: n.Range, Via: tracer.ViaBind}
			p := pressure.Summarize(socks, &e, n.reserved)
			o := Occ{InUse: p.InUse, TimeWait: p.TimeWait}
			if proto == tracer.TCP {
				v.TCP = o
			} else {
				v.UDP = o
			}
		}
		v.ByProc, v.ByCgroup, v.Dests = m.holders(socks, n.Range)
		if m.Pods != nil {
			v.Pod = output.WorkloadText(m.Pods.ForNetns(n.Inode))
		}
		snap.NS = append(snap.NS, v)
	}
	// Fullest first.
	sort.SliceStable(snap.NS, func(i, j int) bool {
		a, b := snap.NS[i], snap.NS[j]
		return a.TCP.InUse+a.UDP.InUse+int(a.FailRate) > b.TCP.InUse+b.UDP.InUse+int(b.FailRate)
	})
	m.allocs, m.fails, m.last = map[uint32]int{}, map[uint32]int{}, now
	return snap, nil
}

func (m *Model) holders(socks []tracer.Socket, r tracer.PortRange) (procs, cgroups, dests []Count) {
	type pk struct {
		proto tracer.Proto
		port  uint16
	}
	byProc := map[string]map[pk]bool{}
	byCg := map[string]map[pk]bool{}
	byDest := map[string]map[pk]bool{}
	add := func(m map[string]map[pk]bool, k string, p pk) {
		if m[k] == nil {
			m[k] = map[pk]bool{}
		}
		m[k][p] = true
	}
	for i := range socks {
		s := &socks[i]
		if !r.Contains(s.Port) {
			continue
		}
		p := pk{s.Proto, s.Port}
		if s.PID != 0 && !s.TimeWait() {
			add(byProc, fmt.Sprintf("%s[%d]", s.Comm, s.PID), p)
			if cg := m.src.CgroupPath(s.CgroupID); cg != "" {
				if m.Pods != nil {
					if w := output.WorkloadName(m.Pods.Lookup(s.CgroupID, cg)); w != "" {
						cg = w // a container's cgroup, by its name (counts escapes it)
					}
				}
				add(byCg, cg, p)
			}
		}
		if s.RemotePort != 0 && s.RemoteAddr.IsValid() && !s.RemoteAddr.IsUnspecified() {
			add(byDest, netip.AddrPortFrom(s.RemoteAddr, s.RemotePort).String(), p)
		}
	}
	return top3(byProc), top3(byCg), top3(byDest)
}

func top3[P comparable](m map[string]map[P]bool) []Count {
	var out []Count
	for k, v := range m {
		out = append(out, Count{k, len(v)})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Count > out[j].Count || out[i].Count == out[j].Count && out[i].Name < out[j].Name
	})
	if len(out) > 3 {
		out = out[:3]
	}
	return out
}
