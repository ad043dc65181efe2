package workload

import (
	"context"
	"os"
	"sync"
	"syscall"
	"time"

	internalapi "k8s.io/cri-api/pkg/apis"

	"github.com/porttrace/porttrace/tracer"
)

// tableMax bounds each cache: cgroups and namespaces come and go for as
// long as porttrace runs.
const tableMax = 4096

// Relists of the runtime: a cgroup never seen before asks at once (its
// container was just made); one that asked already waits relistEvery, so
// a flood of unknown cgroups cannot keep the runtime busy.
const (
	relistEvery = time.Second
	scanEvery   = 2 * time.Second // /proc, for namespaces not yet seen in an event
)

// Resolver names the workload of cgroups and network namespaces. It caches
// by cgroup id and by namespace inode, so a pod's names outlive the pod for
// as long as porttrace runs. Safe for concurrent use.
//
// Use: r, err := Open(ctx, socket) once ("" finds the runtime), then
// r.Fill(&e) on every event before it is written or counted: e.Workload
// then has the pod, namespace and container. A metric per namespace takes
// its pod from r.ForNetns(inode).
type Resolver struct {
	rt      internalapi.RuntimeService // nil: ids from cgroup paths only
	socket  string
	warning error  // the runtime found did not answer
	hostNS  uint32 // the host's namespace: no pod's, whatever runs in it
	proc    string

	mu       sync.Mutex
	snap     snapshot
	listed   time.Time
	listErr  error
	byCgroup map[uint64]cached
	byNetns  map[uint32]tracer.Workload
	scanned  time.Time
}

type cached struct {
	w     tracer.Workload
	final bool // nothing more to learn: no ids, or names found, or no runtime
}

// Open connects to the CRI socket: "" finds one at DefaultSockets (none
// found, or one found that does not answer, is no error: ids only, and
// Warning says why), "none" uses none. A socket named that does not answer
// is an error.
func Open(ctx context.Context, socket string) (*Resolver, error) {
	r := &Resolver{proc: "/proc", byCgroup: map[uint64]cached{}, byNetns: map[uint32]tracer.Workload{}}
	r.hostNS = nsInode("/proc/1/ns/net")
	if socket == "none" {
		return r, nil
	}
	rt, found, err := dial(ctx, socket)
	if err != nil && socket == "" {
		r.warning = err
		return r, nil
	}
	if err != nil {
		return nil, err
	}
	r.rt, r.socket = rt, found
	return r, nil
}

// Warning is why the runtime found at a usual socket is not asked, nil if
// it is or none was found.
func (r *Resolver) Warning() error { return r.warning }

// Socket is the CRI socket in use, "" for none.
func (r *Resolver) Socket() string { return r.socket }

// Close lets the runtime connection go.
func (r *Resolver) Close() {
	if r != nil && r.rt != nil {
		r.rt.Close(quiet(context.Background()))
	}
}

// Fill sets e.Workload from its cgroup, or, for a port no process of a pod
// holds (TIME_WAIT), from its network namespace.
func (r *Resolver) Fill(e *tracer.Event) {
	if r == nil {
		return
	}
	w := r.Lookup(e.CgroupID, e.Cgroup)
	if w.PodUID == "" && e.NetNS != 0 {
		if p := r.ForNetns(e.NetNS); p.PodUID != "" {
			w = p
		}
	} else if w.PodUID != "" && e.NetNS != 0 {
		r.learnNetns(e.NetNS, w)
	}
	e.Workload = w
}

// Lookup names the workload of cgroup id, whose path below the cgroup2 root
// is path (tracer.Event's Cgroup).
func (r *Resolver) Lookup(id uint64, path string) tracer.Workload {
	if r == nil {
		return tracer.Workload{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c, seen := r.byCgroup[id]
	if id != 0 && seen && (c.final || path == "") {
		return c.w // path "": the cgroup is gone (its last process exited), its names are not
	}
	if path == "" {
		return tracer.Workload{}
	}
	cid, uid := FromCgroup(path)
	if cid == "" && uid == "" {
		r.remember(id, cached{final: true})
		return tracer.Workload{}
	}
	w, ok := r.names(cid, uid)
	if !ok && r.rt != nil && (!seen || time.Since(r.listed) >= relistEvery) {
		r.relist()
		w, ok = r.names(cid, uid)
	}
	r.remember(id, cached{w: w, final: ok || r.rt == nil})
	return w
}

// names fills a workload from the last snapshot; ok is false when the
// runtime did not know the pod or container yet.
func (r *Resolver) names(cid, uid string) (tracer.Workload, bool) {
	w := tracer.Workload{ContainerID: cid, PodUID: uid}
	ok := true
	if cid != "" {
		name, known := r.snap.containers[cid]
		w.Container = name
		if w.PodUID == "" {
			w.PodUID = r.snap.podOf[cid]
		}
		ok = known
	}
	if w.PodUID != "" {
		p, known := r.snap.pods[w.PodUID]
		w.Pod, w.Namespace = p.name, p.namespace
		ok = ok && known
	}
	return w, ok
}

func (r *Resolver) relist() {
	r.listed = time.Now()
	s, err := list(context.Background(), r.rt)
	r.listErr = err
	if err == nil {
		r.snap = s
	}
}

// Err is the last error the runtime gave, nil if its last answer was good.
func (r *Resolver) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.listErr
}

func (r *Resolver) remember(id uint64, c cached) {
	if id == 0 {
		return // a path read from /proc, with no id to cache it by
	}
	if len(r.byCgroup) >= tableMax {
		clear(r.byCgroup)
	}
	r.byCgroup[id] = c
}

// learnNetns notes that namespace inode is pod w's, unless it is the
// host's (a pod on the host network owns no namespace).
func (r *Resolver) learnNetns(inode uint32, w tracer.Workload) {
	if inode == r.hostNS {
		return
	}
	w.Container, w.ContainerID = "", "" // a namespace is the pod's, shared by its containers
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.byNetns[inode]; ok && old == w {
		return
	}
	if len(r.byNetns) >= tableMax {
		clear(r.byNetns)
	}
	r.byNetns[inode] = w
}

// ForNetns names the pod whose network namespace has this inode: one seen
// in an event of the pod, or found by looking through /proc for a process
// of a pod in it (at most every scanEvery).
func (r *Resolver) ForNetns(inode uint32) tracer.Workload {
	if r == nil || inode == 0 || inode == r.hostNS {
		return tracer.Workload{}
	}
	r.mu.Lock()
	w, ok := r.byNetns[inode]
	scan := !ok && time.Since(r.scanned) >= scanEvery
	if scan {
		r.scanned = time.Now()
	}
	r.mu.Unlock()
	if ok || !scan {
		return w
	}
	r.scanProc()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byNetns[inode]
}

// nsInode is the inode of a namespace file, 0 if it cannot be read.
func nsInode(path string) uint32 {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0
	}
	return uint32(st.Ino)
}

// scanProc learns the namespace of every process in a pod's cgroup.
func (r *Resolver) scanProc() {
	d, err := os.Open(r.proc)
	if err != nil {
		return
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	seen := map[uint32]bool{}
	for _, n := range names {
		if n[0] < '0' || n[0] > '9' {
			continue
		}
		ino := nsInode(r.proc + "/" + n + "/ns/net")
		if ino == 0 || ino == r.hostNS || seen[ino] {
			continue
		}
		path := procCgroup(r.proc + "/" + n + "/cgroup")
		if _, uid := FromCgroup(path); uid != "" {
			seen[ino] = true
			r.learnNetns(ino, r.Lookup(0, path))
		}
	}
}
