package tracer

import (
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// Kind says what an Event reports.
type Kind uint8

const (
	KindStart   Kind = iota + 1 // tracing began: every hook is attached
	KindAlloc                   // a socket got a local port
	KindRelease                 // the holder let the port go
	KindFail                    // a port could not be had
	KindLost                    // events dropped before they reached user space
	KindStop                    // tracing ended
	KindFree                    // the kernel gave the port back to the range (after TIME_WAIT)
	KindSlow                    // a connect() took longer than the threshold to find a port
	KindClock                   // the wall clock stepped: times from here on follow it
)

var kindNames = [...]string{KindStart: "start", KindAlloc: "alloc", KindRelease: "release", KindFail: "fail", KindLost: "lost", KindStop: "stop",
	KindFree: "free", KindSlow: "slow", KindClock: "clock"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// parseName finds s among names, indexed by value.
func parseName[T ~uint8](names []string, s string) (T, bool) {
	for i, n := range names {
		if n != "" && n == s {
			return T(i), true
		}
	}
	return 0, false
}

// ParseKind is the inverse of Kind.String.
func ParseKind(s string) (Kind, bool) { return parseName[Kind](kindNames[:], s) }

// Via says how a port was obtained.
type Via uint8

const (
	ViaConnect  Via = Via(porttracePtViaPT_VIA_CONNECT)  // TCP or UDP connect()
	ViaSendmsg  Via = Via(porttracePtViaPT_VIA_SENDMSG)  // UDP autobind on the first send
	ViaBind     Via = Via(porttracePtViaPT_VIA_BIND)     // bind(), to port 0 or to a port in the range
	ViaExisting Via = Via(porttracePtViaPT_VIA_EXISTING) // already held when tracing started
	ViaListen   Via = Via(porttracePtViaPT_VIA_LISTEN)   // listen() on an unbound TCP socket
)

var viaNames = [...]string{ViaConnect: "connect", ViaSendmsg: "sendmsg", ViaBind: "bind", ViaExisting: "existing", ViaListen: "listen"}

func (v Via) String() string {
	if int(v) < len(viaNames) && viaNames[v] != "" {
		return viaNames[v]
	}
	return ""
}

// ParseVia is the inverse of Via.String.
func ParseVia(s string) (Via, bool) { return parseName[Via](viaNames[:], s) }

// Proto is a transport protocol number (IPPROTO_*).
type Proto uint8

const (
	TCP Proto = syscall.IPPROTO_TCP
	UDP Proto = syscall.IPPROTO_UDP
)

func (p Proto) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	case 0:
		return ""
	}
	return fmt.Sprintf("proto(%d)", uint8(p))
}

// ParseProto accepts "tcp" and "udp".
func ParseProto(s string) (Proto, bool) {
	switch strings.ToLower(s) {
	case "tcp":
		return TCP, true
	case "udp":
		return UDP, true
	}
	return 0, false
}

// Family is an address family (AF_INET, AF_INET6) of the socket.
type Family uint16

const (
	IPv4 Family = syscall.AF_INET
	IPv6 Family = syscall.AF_INET6
)

func (f Family) String() string {
	switch f {
	case IPv4:
		return "ipv4"
	case IPv6:
		return "ipv6"
	case 0:
		return ""
	}
	return fmt.Sprintf("family(%d)", uint16(f))
}

// ParseFamily accepts "ipv4" and "ipv6".
func ParseFamily(s string) (Family, bool) {
	switch s {
	case "ipv4":
		return IPv4, true
	case "ipv6":
		return IPv6, true
	}
	return 0, false
}

// TCPState is a TCP socket state as the kernel numbers them.
type TCPState uint8

var tcpStateNames = [...]string{1: "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
	"TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV"}

func (s TCPState) String() string {
	if int(s) < len(tcpStateNames) {
		return tcpStateNames[s]
	}
	return ""
}

// ParseTCPState is the inverse of TCPState.String.
func ParseTCPState(s string) (TCPState, bool) { return parseName[TCPState](tcpStateNames[:], s) }

// PortRange is a namespace's ip_local_port_range, both ends included.
type PortRange struct {
	Lo, Hi uint16
}

// Size is the number of ports in the range.
func (r PortRange) Size() int {
	if r.Hi < r.Lo || r.Lo == 0 {
		return 0
	}
	return int(r.Hi) - int(r.Lo) + 1
}

// Contains reports whether p lies in the range.
func (r PortRange) Contains(p uint16) bool { return r.Lo != 0 && p >= r.Lo && p <= r.Hi }

func (r PortRange) String() string { return fmt.Sprintf("%d-%d", r.Lo, r.Hi) }

// Event is one thing porttrace observed. Which fields are set depends on
// Kind; the JSON Lines format (see README) names them.
type Event struct {
	Kind Kind
	Time time.Time

	Proto      Proto
	Family     Family
	Port       uint16 // local port; 0 on a failure where none was asked for
	LocalAddr  netip.Addr
	RemoteAddr netip.Addr
	RemotePort uint16
	Via        Via
	Ephemeral  bool // picked by the kernel from the ephemeral range
	// Deferred: no hook runs when this call returns, so the event was seen
	// later (first send, retry or close); Time is still when the call was made.
	Deferred bool
	// Late (release): the port went back before Time, by a UDP
	// connect(AF_UNSPEC) that no hook of the tier sees; Time (and Held) is
	// when porttrace noticed: the socket's next connect, send or close.
	Late bool

	PID      uint32 // process (thread group) that made the call; for release, the holder
	TID      uint32
	Comm     string // the process's name, as ps shows it (its main thread's)
	Thread   string // the calling thread's name, when it differs from Comm
	UID      uint32
	CgroupID uint64
	Cgroup   string // path below the cgroup v2 root, when it could be resolved
	NetNS    uint32 // inode number of the network namespace; 0 if unknown
	Range    PortRange
	// Workload is the container and pod of the cgroup, or of the network
	// namespace for ports no process holds; filled in user space by
	// internal/workload, not by the tracer.
	Workload Workload

	Held  time.Duration // release: from alloc to release
	State TCPState      // release, TCP: the state the socket left the port in
	Errno syscall.Errno // fail

	Count uint64 // lost: how many events were dropped since the last lost event
	// Step (clock): how far the wall clock moved, ahead if positive.
	Step time.Duration

	// Search is how long a TCP connect() spent finding its port (alloc).
	Search time.Duration
	// Estimated (free): the end of TIME_WAIT was inferred, not seen.
	Estimated bool
	// HeldAtCall (fail, when Counted) is how many sockets held ports of the
	// namespace's range as the call failed, counted by the kernel programs
	// at the call itself. Counted is false where that is not known (see the
	// README): then HeldAtCall means nothing.
	HeldAtCall int
	Counted    bool
	// Pressure is the state of the range when a call failed (fail), read
	// from the namespace just after.
	Pressure *Pressure

	Start *StartInfo // start
	Stop  *StopInfo  // stop
}

// Pressure is how full a namespace's range was when a call failed.
type Pressure struct {
	InUse      int      // ports of the range held: by sockets and TIME_WAIT entries
	TimeWait   int      // of those, held only by TIME_WAIT entries
	RangeSize  int      // ports in the range, reserved ones left out
	DestInUse  int      // connect: local ports already used toward the same destination
	TopHolders []Holder // processes holding the most ports of the range
	// ReadAfter is when the namespace was read, from the failure's time:
	// what it holds may have changed in between.
	ReadAfter time.Duration
}

// Holder is a process and how many ports it holds.
type Holder struct {
	PID   uint32
	Comm  string
	Count int
}

// StartInfo describes a trace at its beginning.
type StartInfo struct {
	Version    string
	Tier       string // HooksPrecise or HooksPortable
	TierReason string // why that tier: asked for, or what refused the better one
	Hooks      []string
	Filter     string
	Namespaces []Namespace
	Notes      []string // e.g. mounts porttrace had to make
}

// Namespace is a network namespace with its ephemeral port range.
type Namespace struct {
	Inode uint32
	Range PortRange
	Name  string // a name under /run/netns, if it has one
	Path  string // a path that names it, to enter it (not recorded)
}

// StopInfo sums a trace up.
type StopInfo struct {
	Events   uint64 // events written, start and stop excluded
	Allocs   uint64
	Releases uint64
	Fails    uint64
	Lost     uint64
	Duration time.Duration
}
