// Package pressure explains failures: how full the range was, who held it,
// how much of it only TIME_WAIT kept — and follows ports after their holder
// let go, until the kernel gives them back (free events).
package pressure

import (
	"container/heap"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/porttrace/porttrace/tracer"
)

// TimeWaitLen is how long the kernel keeps a port in TIME_WAIT
// (TCP_TIMEWAIT_LEN, fixed in the kernel).
const TimeWaitLen = 60 * time.Second

// Lister lists a namespace's sockets (tracer.Tracer does).
type Lister interface {
	Sockets(nsPath string) ([]tracer.Socket, error)
}

// Tracker follows the trace's events.
type Tracker struct {
	lister Lister
	slow   time.Duration // 0: no slow warnings

	mu      sync.Mutex
	pending freeHeap
	byTuple map[tuple]*pendingFree
	ns      map[uint32]*nsInfo
	scans   map[uint32]scan
}

type tuple struct {
	netns uint32
	port  uint16
	raddr netip.Addr
	rport uint16
}

type pendingFree struct {
	due   time.Time
	e     tracer.Event // the free event to send
	index int
	done  bool
}

type nsInfo struct {
	ns         *os.File // the namespace itself, held open: no process's path to it
	path       string   // names ns: /proc/self/fd/N
	used       time.Time
	finTimeout time.Duration
	reserved   tracer.PortSet
	read       time.Time
}

const (
	scanShare = 10 * time.Millisecond
	scanGap   = 10 * time.Millisecond
)

// nsIdle is how long a namespace no event has named is held open. Holding
// it keeps it alive (with its interfaces), so it is let go after a while
// and found again by name or by a process in it if it is named again.
const nsIdle = time.Minute

type scan struct {
	at    time.Time
	socks []tracer.Socket
	err   error
}

// New starts a Tracker. slow is the port search time above which a connect
// is reported as slow (0: never).
func New(l Lister, slow time.Duration) *Tracker {
	return &Tracker{lister: l, slow: slow, byTuple: map[tuple]*pendingFree{}, ns: map[uint32]*nsInfo{}, scans: map[uint32]scan{}}
}

// Observe takes an event of the trace and returns the events it leads to
// now: frees of TIME_WAIT entries a new connect took over, slow warnings.
// It adds the range's pressure to fail events.
func (t *Tracker) Observe(e *tracer.Event) []tracer.Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []tracer.Event
	switch e.Kind {
	case tracer.KindAlloc:
		// A connect may take over a TIME_WAIT of the same four-tuple:
		// that port was free again from this moment.
		if p := t.byTuple[tupleOf(e)]; p != nil && e.Proto == tracer.TCP {
			out = append(out, t.freeNow(p, e.Time))
		}
		if t.slow > 0 && e.Search >= t.slow {
			s := *e
			s.Kind = tracer.KindSlow
			out = append(out, s)
		}
	case tracer.KindRelease:
		f := *e
		f.Kind = tracer.KindFree
		if e.Proto == tracer.TCP && (e.State.String() == "TIME_WAIT" || e.State.String() == "FIN_WAIT2") {
			wait := TimeWaitLen
			if e.State.String() == "FIN_WAIT2" {
				if ft := t.info(e.NetNS, e.PID).finTimeout; ft > 0 && ft < wait {
					wait = ft
				}
			}
			f.Time = e.Time.Add(wait)
			f.Held = e.Held + wait
			f.Estimated = true
			p := &pendingFree{due: f.Time, e: f}
			if old := t.byTuple[tupleOf(e)]; old != nil {
				t.drop(old)
			}
			t.byTuple[tupleOf(e)] = p
			heap.Push(&t.pending, p)
		}
		// Otherwise the port went back to the range with the release
		// itself: the release says so (state CLOSE, or UDP), and a free
		// event would only double the output.
	case tracer.KindFail:
		e.Pressure = t.pressure(e)
	}
	return out
}

// Due returns the free events whose time has come, in time order.
func (t *Tracker) Due(now time.Time) []tracer.Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []tracer.Event
	for t.pending.Len() > 0 && !t.pending[0].due.After(now) {
		p := heap.Pop(&t.pending).(*pendingFree)
		if p.done {
			continue
		}
		delete(t.byTuple, tupleOf(&p.e))
		out = append(out, p.e)
	}
	return out
}

// Pending is the number of ports waiting out TIME_WAIT.
func (t *Tracker) Pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byTuple)
}

func (t *Tracker) freeNow(p *pendingFree, at time.Time) tracer.Event {
	f := p.e
	f.Held -= f.Time.Sub(at)
	f.Time = at
	f.Estimated = false
	t.drop(p)
	return f
}

func (t *Tracker) drop(p *pendingFree) {
	p.done = true
	delete(t.byTuple, tupleOf(&p.e))
}

func tupleOf(e *tracer.Event) tuple {
	return tuple{netns: e.NetNS, port: e.Port, raddr: e.RemoteAddr, rport: e.RemotePort}
}

// info reads what the namespace's sysctls say, at most once a few seconds,
// so a change to them is picked up.
func (t *Tracker) info(netns, pid uint32) *nsInfo {
	now := time.Now()
	t.letGo(now)
	n := t.ns[netns]
	if n == nil {
		n = &nsInfo{}
		t.ns[netns] = n
	}
	n.used = now
	if n.ns == nil {
		n.ns = openNamespace(netns, pid)
		n.read = time.Time{}
		if n.ns != nil {
			n.path = "/proc/self/fd/" + strconv.Itoa(int(n.ns.Fd()))
		}
	}
	if n.ns == nil || now.Sub(n.read) < 5*time.Second {
		return n
	}
	n.read = now
	if s, err := tracer.Sysctl(n.path, "net/ipv4/tcp_fin_timeout"); err == nil {
		if v, err := strconv.Atoi(s); err == nil {
			n.finTimeout = time.Duration(v) * time.Second
		}
	}
	if s, err := tracer.Sysctl(n.path, "net/ipv4/ip_local_reserved_ports"); err == nil {
		if set, err := tracer.ParsePortList(s); err == nil {
			n.reserved = set
		}
	}
	return n
}

// openNamespace opens the network namespace with inode ino, through the
// process pid if it still lives there, else its name or any process in it;
// nil if it is gone. The inode is checked on the open file: a pid reused by
// a process elsewhere gives no wrong namespace.
func openNamespace(ino, pid uint32) *os.File {
	path, err := tracer.NamespacePath(ino, pid)
	if err != nil {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil || uint32(st.Ino) != ino {
		f.Close()
		if pid == 0 {
			return nil
		}
		return openNamespace(ino, 0)
	}
	return f
}

// letGo closes the namespaces no event has named for nsIdle.
func (t *Tracker) letGo(now time.Time) {
	for ino, n := range t.ns {
		if now.Sub(n.used) > nsIdle {
			if n.ns != nil {
				n.ns.Close()
			}
			delete(t.ns, ino)
			delete(t.scans, ino)
		}
	}
}

// Close lets go of every namespace held.
func (t *Tracker) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.letGo(time.Now().Add(2 * nsIdle))
}

// pressure lists the failing call's namespace and sums up its range.
func (t *Tracker) pressure(e *tracer.Event) *tracer.Pressure {
	n := t.info(e.NetNS, e.PID)
	if n.ns == nil || e.Range.Size() == 0 {
		return nil
	}
	// A scan serves the failures up to scanShare after it; an older one is
	// no answer for this failure, unless one was made just now (a storm of
	// failures gets at most one scan per scanGap).
	sc, ok := t.scans[e.NetNS]
	if !ok || (sc.at.Before(e.Time.Add(-scanShare)) && time.Since(sc.at) > scanGap) {
		socks, err := t.lister.Sockets(n.path)
		sc = scan{at: time.Now(), socks: socks, err: err}
		t.scans[e.NetNS] = sc
	}
	if sc.err != nil {
		return nil
	}
	p := Summarize(sc.socks, e, n.reserved)
	p.ReadAfter = sc.at.Sub(e.Time)
	return p
}

// Summarize computes the pressure on the range of e's protocol from a list
// of the namespace's sockets.
func Summarize(socks []tracer.Socket, e *tracer.Event, reserved tracer.PortSet) *tracer.Pressure {
	p := &tracer.Pressure{RangeSize: e.Range.Size()}
	for port := int(e.Range.Lo); port <= int(e.Range.Hi); port++ {
		if reserved.Has(uint16(port)) {
			p.RangeSize--
		}
	}
	held := map[uint16]bool{} // port → held by a live socket
	dest := map[uint16]bool{}
	perPID := map[uint32]map[uint16]bool{}
	comm := map[uint32]string{}
	for i := range socks {
		s := &socks[i]
		if s.Proto != e.Proto || !e.Range.Contains(s.Port) || reserved.Has(s.Port) {
			continue
		}
		live := !s.TimeWait()
		held[s.Port] = held[s.Port] || live
		if e.Via == tracer.ViaConnect && s.RemotePort == e.RemotePort && s.RemoteAddr == e.RemoteAddr {
			dest[s.Port] = true
		}
		if live && s.PID != 0 {
			if perPID[s.PID] == nil {
				perPID[s.PID] = map[uint16]bool{}
			}
			perPID[s.PID][s.Port] = true
			comm[s.PID] = s.Comm
		}
	}
	p.InUse = len(held)
	for _, live := range held {
		if !live {
			p.TimeWait++
		}
	}
	p.DestInUse = len(dest)
	for pid, ports := range perPID {
		p.TopHolders = append(p.TopHolders, tracer.Holder{PID: pid, Comm: comm[pid], Count: len(ports)})
	}
	sort.Slice(p.TopHolders, func(i, j int) bool {
		a, b := p.TopHolders[i], p.TopHolders[j]
		return a.Count > b.Count || a.Count == b.Count && a.PID < b.PID
	})
	if len(p.TopHolders) > 5 {
		p.TopHolders = p.TopHolders[:5]
	}
	return p
}

type freeHeap []*pendingFree

func (h freeHeap) Len() int           { return len(h) }
func (h freeHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h freeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i]; h[i].index = i; h[j].index = j }
func (h *freeHeap) Push(x any)        { p := x.(*pendingFree); p.index = len(*h); *h = append(*h, p) }
func (h *freeHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	*h = old[:len(old)-1]
	return p
}
