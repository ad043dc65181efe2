// Package serve is what `porttrace serve` exports to Prometheus: the
// kernel's counts read at each scrape, and what a periodic scan of every
// namespace's sockets adds (ranges, TIME_WAIT, destinations, holders).
package serve

import (
	"net/netip"
	"os"
	"strconv"
	"syscall"

	"github.com/porttrace/porttrace/tracer"
)

// Lister is what a scan reads sockets with: a *tracer.Tracer.
type Lister interface {
	Sockets(nsPath string) ([]tracer.Socket, error)
	CgroupPath(id uint64) string
}

// NS is what a scan found in one network namespace.
type NS struct {
	Inode    uint32
	Range    tracer.PortRange
	Size     int                  // ports of the range, reserved ones left out
	TimeWait map[tracer.Proto]int // ports of the range held only by TIME_WAIT entries
	DestMax  map[tracer.Proto]int // local ports of the range used toward the busiest destination
	Holders  map[string]int       // ports of the range each holder's sockets hold (both protocols)
}

// Scan lists every namespace with its range and sockets. Each namespace is
// entered three times (range, reserved ports, sockets): with a thousand of
// them it takes a while, which is why it runs apart from the scrapes.
func Scan(l Lister, holders bool, pods Workloads) ([]NS, error) {
	nss, err := tracer.Namespaces()
	if err != nil {
		return nil, err
	}
	out := make([]NS, 0, len(nss))
	for _, n := range nss {
		var reserved tracer.PortSet
		if s, err := tracer.Sysctl(n.Path, "net/ipv4/ip_local_reserved_ports"); err == nil {
			reserved, _ = tracer.ParsePortList(s)
		}
		socks, err := l.Sockets(n.Path)
		if err != nil {
			continue // gone while we looked
		}
		v := NS{Inode: n.Inode, Range: n.Range, Size: n.Range.Size(), TimeWait: map[tracer.Proto]int{}, DestMax: map[tracer.Proto]int{}}
		for p := int(n.Range.Lo); p <= int(n.Range.Hi); p++ {
			if reserved.Has(uint16(p)) {
				v.Size--
			}
		}
		summarize(&v, socks, reserved)
		if holders {
			v.Holders = holdersOf(l, pods, socks, n.Range, reserved)
		}
		out = append(out, v)
	}
	return out, nil
}

type protoPort struct {
	proto tracer.Proto
	port  uint16
}

// summarize counts, per protocol, the TIME_WAIT-only ports of the range and
// the ports toward the destination that uses the most.
func summarize(v *NS, socks []tracer.Socket, reserved tracer.PortSet) {
	type dest struct {
		proto tracer.Proto
		ap    netip.AddrPort
	}
	live := map[protoPort]bool{}
	dests := map[dest]map[uint16]bool{}
	for i := range socks {
		s := &socks[i]
		if !v.Range.Contains(s.Port) || reserved.Has(s.Port) {
			continue
		}
		k := protoPort{s.Proto, s.Port}
		live[k] = live[k] || !s.TimeWait()
		if s.RemotePort != 0 && s.RemoteAddr.IsValid() && !s.RemoteAddr.IsUnspecified() {
			d := dest{s.Proto, netip.AddrPortFrom(s.RemoteAddr, s.RemotePort)}
			if dests[d] == nil {
				dests[d] = map[uint16]bool{}
			}
			dests[d][s.Port] = true
		}
	}
	for k, l := range live {
		if !l {
			v.TimeWait[k.proto]++
		}
	}
	for d, ports := range dests {
		v.DestMax[d.proto] = max(v.DestMax[d.proto], len(ports))
	}
}

// hostNetns is the inode of the host's network namespace: PID 1's, or
// where PID 1 is out of reach (a sandbox that denies it), porttrace's own,
// as a daemon that monitors the host runs in the host's network.
func hostNetns() uint32 {
	for _, p := range []string{"/proc/1/ns/net", "/proc/self/ns/net"} {
		if st, err := os.Stat(p); err == nil {
			return uint32(st.Sys().(*syscall.Stat_t).Ino)
		}
	}
	return 0
}

// netnsLabel names a namespace for Prometheus: "host", or its inode.
func netnsLabel(ino, host uint32) string {
	if ino == host {
		return "host"
	}
	return strconv.FormatUint(uint64(ino), 10)
}
