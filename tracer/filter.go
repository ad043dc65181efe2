package tracer

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// PortSet is a set of port numbers, as a 65536-bit bitmap: the layout the
// kernel side tests a port against in one load.
type PortSet struct {
	bits [1024]uint64
	n    int
}

// Add puts a port in the set.
func (s *PortSet) Add(p uint16) {
	if !s.Has(p) {
		s.bits[p>>6] |= 1 << (p & 63)
		s.n++
	}
}

// Has reports whether p is in the set.
func (s *PortSet) Has(p uint16) bool { return s.bits[p>>6]&(1<<(p&63)) != 0 }

// Len is the number of ports in the set.
func (s *PortSet) Len() int { return s.n }

// String renders the set the way ParsePorts reads it, ranges collapsed.
func (s *PortSet) String() string {
	var parts []string
	for p := 0; p < 65536; p++ {
		if !s.Has(uint16(p)) {
			continue
		}
		q := p
		for q+1 < 65536 && s.Has(uint16(q+1)) {
			q++
		}
		if q == p {
			parts = append(parts, strconv.Itoa(p))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", p, q))
		}
		p = q
	}
	return strings.Join(parts, ",")
}

// ParsePorts reads a list of ports and ranges such as "60698" or
// "60000-60100,8080". Port 0 is refused: it is never held.
func ParsePorts(spec string) (PortSet, error) {
	var s PortSet
	if strings.TrimSpace(spec) == "" {
		return s, fmt.Errorf("no port given: write a port (60698), a range (60000-60100) or a list of both")
	}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		lo, hi, isRange := strings.Cut(item, "-")
		a, err := parsePort(lo)
		if err != nil {
			return s, err
		}
		b := a
		if isRange {
			if b, err = parsePort(hi); err != nil {
				return s, err
			}
			if b < a {
				return s, fmt.Errorf("port range %q runs backwards: write the low port first", item)
			}
		}
		for p := int(a); p <= int(b); p++ {
			s.Add(uint16(p))
		}
	}
	return s, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is not a port number: ports are whole numbers from 1 to 65535", s)
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %d is out of range: ports run from 1 to 65535", n)
	}
	return uint16(n), nil
}

// Filter selects what the kernel reports. The zero Filter reports everything.
// Failures pass any port filter: the port they did not get is unknown.
type Filter struct {
	Ports  PortSet  // empty: ports of the ephemeral range, and any explicit bind into it
	PIDs   []uint32 // at most MaxPIDs
	Comms  []string // at most MaxComms, each compared with the kernel's 15-byte comm
	Proto  Proto    // 0: TCP and UDP
	Family Family   // 0: IPv4 and IPv6
}

// Limits of the in-kernel filter.
const (
	MaxPIDs  = 16
	MaxComms = 8
)

// Validate checks the filter fits the kernel side.
func (f *Filter) Validate() error {
	if len(f.PIDs) > MaxPIDs {
		return fmt.Errorf("too many pids (%d): porttrace filters on at most %d", len(f.PIDs), MaxPIDs)
	}
	if len(f.Comms) > MaxComms {
		return fmt.Errorf("too many command names (%d): porttrace filters on at most %d", len(f.Comms), MaxComms)
	}
	for _, c := range f.Comms {
		if c == "" {
			return fmt.Errorf("empty command name: give the process name as ps shows it")
		}
		if len(c) > 15 {
			return fmt.Errorf("command name %q is longer than the 15 bytes the kernel keeps: use its first 15 bytes (%q)", c, c[:15])
		}
	}
	for _, p := range f.PIDs {
		if p == 0 {
			return fmt.Errorf("pid 0 is not a process: give the pid of a running program")
		}
	}
	return nil
}

// String describes the filter for people and for the start event.
func (f *Filter) String() string {
	var parts []string
	if f.Ports.Len() > 0 {
		parts = append(parts, "port "+f.Ports.String())
	}
	if len(f.PIDs) > 0 {
		ps := append([]uint32(nil), f.PIDs...)
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		var ss []string
		for _, p := range ps {
			ss = append(ss, strconv.FormatUint(uint64(p), 10))
		}
		parts = append(parts, "pid "+strings.Join(ss, ","))
	}
	if len(f.Comms) > 0 {
		parts = append(parts, "comm "+strings.Join(f.Comms, ","))
	}
	if f.Proto != 0 {
		parts = append(parts, "proto "+f.Proto.String())
	}
	if f.Family != 0 {
		parts = append(parts, "family "+f.Family.String())
	}
	if len(parts) == 0 {
		return "all"
	}
	return strings.Join(parts, " ")
}
