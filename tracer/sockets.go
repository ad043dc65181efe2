package tracer

import (
	"fmt"
	"net/netip"
	"unsafe"

	"github.com/cilium/ebpf"
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
// namespace that nsPath (/proc/PID/ns/net, /run/netns/NAME) names.
func (t *Tracer) Sockets(nsPath string) ([]Socket, error) {
	var out []Socket
	err := t.withColl(func(c *ebpf.Collection) error {
		return inNetns(nsPath, func() error {
			for _, p := range []*ebpf.Program{c.Programs["pt_list_tcp"], c.Programs["pt_list_udp"]} {
				data, err := readIter(p, "socket iterator (needs Linux 5.9+)")
				if err != nil {
					return err
				}
				out = append(out, decodeSockets(data)...)
			}
			return nil
		})
	})
	return out, err
}

func decodeSockets(data []byte) []Socket {
	var out []Socket
	var raw porttracePtSock
	for ; copyRaw(data, &raw, "socket") == nil; data = data[rawSockSize:] {
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
	return out
}

// NamespacePath finds a path that names the network namespace with inode
// ino: hintPID's, if it still lives there; else its name under /run/netns,
// or a process living in it.
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
	found, err := namespacePaths()
	if err != nil {
		return "", err
	}
	if n, ok := found[ino]; ok {
		return n.Path, nil
	}
	return "", fmt.Errorf("network namespace %d is gone", ino)
}

// CgroupPath resolves a cgroup v2 id to its path below the root ("" if it
// is gone).
func (t *Tracer) CgroupPath(id uint64) string { return t.cgroups.lookup(id) }
