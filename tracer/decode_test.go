package tracer

import (
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

func rawBytes(r *porttracePtEvent) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(r)), rawEventSize)
}

func TestDecodeRawChecksLength(t *testing.T) {
	var r porttracePtEvent
	if err := decodeRaw(make([]byte, rawEventSize-1), &r); err == nil || !strings.Contains(err.Error(), "bytes") {
		t.Errorf("short record: err = %v", err)
	}
	src := porttracePtEvent{Pid: 42, Lport: 60698, Kind: uint8(porttracePtKindPT_KIND_ALLOC)}
	if err := decodeRaw(rawBytes(&src), &r); err != nil || r.Pid != 42 || r.Lport != 60698 {
		t.Errorf("decodeRaw = %+v, %v", r, err)
	}
}

func comm(s string) (c [16]int8) {
	for i := 0; i < len(s) && i < 15; i++ {
		c[i] = int8(s[i])
	}
	return c
}

func TestToEvent(t *testing.T) {
	const offset = int64(1_700_000_000_000_000_000)
	alloc := porttracePtEvent{TsNs: 1000, Kind: uint8(porttracePtKindPT_KIND_ALLOC), Proto: uint8(TCP), Family: uint16(IPv4),
		Lport: 60698, Rport: 443, Pid: 10, Tid: 11, Uid: 1000, Netns: 4026531840, Cgroup: 7, Via: uint8(ViaConnect), Ephemeral: 1,
		RangeLo: 32768, RangeHi: 60999, Comm: comm("curl")}
	copy(alloc.Laddr[:], []byte{10, 0, 0, 1})
	copy(alloc.Raddr[:], []byte{93, 184, 216, 34})
	e, err := toEvent(&alloc, offset)
	if err != nil {
		t.Fatal(err)
	}
	if e.Kind != KindAlloc || e.Port != 60698 || e.RemotePort != 443 || e.PID != 10 || e.TID != 11 || e.UID != 1000 ||
		e.Comm != "curl" || e.Via != ViaConnect || !e.Ephemeral || e.NetNS != 4026531840 || e.CgroupID != 7 ||
		e.LocalAddr.String() != "10.0.0.1" || e.RemoteAddr.String() != "93.184.216.34" || e.Range != (PortRange{32768, 60999}) {
		t.Errorf("alloc decoded as %+v", e)
	}
	if !e.Time.Equal(time.Unix(0, offset+1000)) || e.Time.Location() != time.UTC {
		t.Errorf("time = %v", e.Time)
	}

	rel := porttracePtEvent{TsNs: 5000, AllocNs: 1000, Kind: uint8(porttracePtKindPT_KIND_RELEASE), Proto: uint8(TCP), Family: uint16(IPv6), State: 6}
	rel.Laddr[15] = 1
	e, _ = toEvent(&rel, 0)
	if e.Kind != KindRelease || e.Held != 4000 || e.State.String() != "TIME_WAIT" || e.LocalAddr.String() != "::1" {
		t.Errorf("release decoded as %+v", e)
	}
	rel.Proto = uint8(UDP)
	if e, _ = toEvent(&rel, 0); e.State != 0 {
		t.Errorf("UDP release has TCP state %s", e.State)
	}

	fail := porttracePtEvent{Kind: uint8(porttracePtKindPT_KIND_FAIL), Err: int32(syscall.EADDRNOTAVAIL), Flags: uint8(porttracePtEventFlagsPT_EV_DEFERRED)}
	if e, _ = toEvent(&fail, 0); e.Kind != KindFail || e.Errno != syscall.EADDRNOTAVAIL || !e.Deferred {
		t.Errorf("fail decoded as %+v", e)
	}
	if _, err := toEvent(&porttracePtEvent{Kind: 99}, 0); err == nil {
		t.Error("unknown kind accepted")
	}
}

func TestNamesRoundTrip(t *testing.T) {
	for k := KindStart; k <= KindSlow; k++ {
		if got, ok := ParseKind(k.String()); !ok || got != k {
			t.Errorf("kind %d: %q", k, k.String())
		}
	}
	for _, v := range []Via{ViaConnect, ViaSendmsg, ViaBind, ViaExisting, ViaListen} {
		if got, ok := ParseVia(v.String()); !ok || got != v {
			t.Errorf("via %d: %q", v, v.String())
		}
	}
	for s := TCPState(1); s <= 12; s++ {
		if got, ok := ParseTCPState(s.String()); !ok || got != s {
			t.Errorf("state %d: %q", s, s.String())
		}
	}
}
