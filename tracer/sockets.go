package tracer

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"runtime"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Socket is one TCP or UDP socket, or one TIME_WAIT entry, of a namespace.
type Socket struct {
	Proto      Proto
	Family     Family
	Port       uint16
	LocalAddr  netip.Addr
	RemoteAddr netip.Addr
	RemotePort uint16
	State      TCPState // TCP only; TIME_WAIT for a mini-socket
	Substate   TCPState // TIME_WAIT entries: TIME_WAIT or FIN_WAIT2
	PID        uint32   // the process porttrace saw take it; 0 if unknown
	Comm       string
	CgroupID   uint64
	NetNS      uint32
}

// TimeWait reports whether s is a TIME_WAIT entry: a port the kernel keeps
// after its holder closed.
func (s *Socket) TimeWait() bool { return s.Proto == TCP && s.State == 6 }

const rawSockSize = int(unsafe.Sizeof(porttracePtSock{}))

// Sockets lists every TCP and UDP socket and TIME_WAIT entry of the network
// namespace that nsPath (/proc/PID/ns/net, /run/netns/NAME) names. The
// kernel's iterators walk the namespace of the thread that opens them, so
// they are opened on a thread that entered it and is then thrown away.
func (t *Tracer) Sockets(nsPath string) ([]Socket, error) {
	type result struct {
		socks []Socket
		err   error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		fd, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- result{err: fmt.Errorf("open network namespace: %w", err)}
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("enter network namespace %s: %w", nsPath, err)}
			return
		}
		var out []Socket
		for _, p := range []*ebpf.Program{t.objs.PtListTcp, t.objs.PtListUdp} {
			s, err := listIter(p)
			if err != nil {
				ch <- result{err: err}
				return
			}
			out = append(out, s...)
		}
		ch <- result{socks: out}
	}()
	r := <-ch
	return r.socks, r.err
}

func listIter(p *ebpf.Program) ([]Socket, error) {
	it, err := link.AttachIter(link.IterOptions{Program: p})
	if err != nil {
		return nil, fmt.Errorf("attach socket iterator (needs Linux 5.9+): %w", err)
	}
	defer it.Close()
	rd, err := it.Open()
	if err != nil {
		return nil, fmt.Errorf("open socket iterator: %w", err)
	}
	defer rd.Close()
	data, err := io.ReadAll(rd)
	if err != nil {
		return nil, fmt.Errorf("read socket iterator: %w", err)
	}
	var out []Socket
	var raw porttracePtSock
	for len(data) >= rawSockSize {
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&raw)), rawSockSize), data[:rawSockSize])
		data = data[rawSockSize:]
		s := Socket{Proto: Proto(raw.Proto), Family: Family(raw.Family), Port: raw.Lport, RemotePort: raw.Rport,
			State: TCPState(raw.State), Substate: TCPState(raw.Substate), NetNS: raw.Netns}
		s.LocalAddr = addrOf(s.Family, raw.Laddr)
		s.RemoteAddr = addrOf(s.Family, raw.Raddr)
		if raw.Owned != 0 {
			s.PID = raw.Pid
			s.Comm = commString(raw.Comm)
			s.CgroupID = raw.Cgroup
		}
		out = append(out, s)
	}
	return out, nil
}

// NamespacePath finds a path that names the network namespace with inode
// ino: under /run/netns, or of a process living in it.
func NamespacePath(ino uint32, hintPID uint32) (string, error) {
	try := func(p string) bool {
		var st unix.Stat_t
		return unix.Stat(p, &st) == nil && uint32(st.Ino) == ino
	}
	if hintPID != 0 {
		if p := fmt.Sprintf("/proc/%d/ns/net", hintPID); try(p) {
			return p, nil
		}
	}
	nss, err := Namespaces()
	if err != nil {
		return "", err
	}
	for _, n := range nss {
		if n.Inode == ino && n.Name != "" {
			return "/run/netns/" + n.Name, nil
		}
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if p := "/proc/" + e.Name() + "/ns/net"; e.Name()[0] >= '0' && e.Name()[0] <= '9' && try(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("network namespace %d is gone", ino)
}

// CgroupPath resolves a cgroup v2 id to its path below the root ("" if it
// is gone).
func (t *Tracer) CgroupPath(id uint64) string { return t.cgroups.lookup(id) }
