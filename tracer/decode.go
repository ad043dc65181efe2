package tracer

import (
	"bytes"
	"fmt"
	"net/netip"
	"syscall"
	"time"
	"unsafe"
)

// rawEventSize is the size of struct pt_event, the record the kernel writes.
const rawEventSize = int(unsafe.Sizeof(porttracePtEvent{}))

// decodeRaw copies one kernel record into the generated struct. The kernel
// writes it in the host's byte order and layout, so a copy is the decode;
// the length check keeps a short or foreign record from being misread.
func decodeRaw(b []byte, raw *porttracePtEvent) error { return copyRaw(b, raw, "event") }

// copyRaw is decodeRaw for any record type bpf2go generated from C.
func copyRaw[T any](b []byte, raw *T, what string) error {
	size := int(unsafe.Sizeof(*raw))
	if len(b) < size {
		return fmt.Errorf("decode %s: record is %d bytes, want %d", what, len(b), size)
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(raw)), size), b[:size])
	return nil
}

// event decodes one kernel record into an Event with its cgroup path.
func (t *Tracer) event(b []byte) (Event, error) {
	if err := decodeRaw(b, &t.raw); err != nil {
		return Event{}, err
	}
	e, err := toEvent(&t.raw, t.clock.offset)
	if err != nil {
		return Event{}, err
	}
	e.Cgroup = t.cgroups.lookup(e.CgroupID)
	if !t.listed {
		e.Counted = false // ports held before the start were never counted
	}
	return e, nil
}

// toEvent turns a kernel record into an Event. monoToWall is added to the
// kernel's CLOCK_MONOTONIC timestamps to get Unix nanoseconds.
func toEvent(raw *porttracePtEvent, monoToWall int64) (Event, error) {
	var e Event
	switch porttracePtKind(raw.Kind) {
	case porttracePtKindPT_KIND_ALLOC:
		e.Kind = KindAlloc
	case porttracePtKindPT_KIND_RELEASE:
		e.Kind = KindRelease
		if raw.TsNs >= raw.AllocNs {
			e.Held = time.Duration(raw.TsNs - raw.AllocNs)
		}
		if raw.Proto == uint8(TCP) {
			e.State = TCPState(raw.State)
		}
	case porttracePtKindPT_KIND_FAIL:
		e.Kind = KindFail
		e.Errno = syscall.Errno(raw.Err)
		e.HeldAtCall = int(raw.HeldAtCall)
		e.Counted = raw.HeldAtCall >= 0
	default:
		return Event{}, fmt.Errorf("decode event: unknown kind %d", raw.Kind)
	}
	e.Time = time.Unix(0, int64(raw.TsNs)+monoToWall).UTC()
	e.Proto = Proto(raw.Proto)
	e.Family = Family(raw.Family)
	e.Port = raw.Lport
	e.RemotePort = raw.Rport
	e.LocalAddr = addrOf(e.Family, raw.Laddr)
	e.RemoteAddr = addrOf(e.Family, raw.Raddr)
	if e.RemotePort == 0 && e.RemoteAddr.IsUnspecified() {
		e.RemoteAddr = netip.Addr{} // no remote: one convention everywhere
	}
	e.Via = Via(raw.Via)
	e.Ephemeral = raw.Ephemeral != 0
	e.Deferred = raw.Flags&uint8(porttracePtEventFlagsPT_EV_DEFERRED) != 0
	e.Late = raw.Flags&uint8(porttracePtEventFlagsPT_EV_DROPPED) != 0
	e.PID = raw.Pid
	e.TID = raw.Tid
	e.UID = raw.Uid
	e.CgroupID = raw.Cgroup
	e.NetNS = raw.Netns
	e.Range = PortRange{Lo: raw.RangeLo, Hi: raw.RangeHi}
	e.Comm = commString(raw.Comm)
	if th := commString(raw.Thread); th != e.Comm {
		e.Thread = th
	}
	e.Search = time.Duration(raw.SearchNs)
	return e, nil
}

func addrOf(f Family, b [16]uint8) netip.Addr {
	switch f {
	case IPv4:
		return netip.AddrFrom4([4]byte(b[:4]))
	case IPv6:
		return netip.AddrFrom16(b)
	}
	return netip.Addr{}
}

func commString(c [16]int8) string {
	b := unsafe.Slice((*byte)(unsafe.Pointer(&c[0])), len(c))
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
