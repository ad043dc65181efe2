package pressure

import (
	"os"

	"golang.org/x/sys/unix"
	"net/netip"
	"testing"
	"time"

	"github.com/porttrace/porttrace/tracer"
)

var t0 = time.Date(2026, 11, 25, 3, 12, 0, 0, time.UTC)

func release(port uint16, state string, at time.Duration) tracer.Event {
	st, _ := tracer.ParseTCPState(state)
	return tracer.Event{Kind: tracer.KindRelease, Time: t0.Add(at), Proto: tracer.TCP, Port: port, NetNS: 0, State: st,
		Held: time.Second, RemoteAddr: netip.MustParseAddr("10.0.0.2"), RemotePort: 443}
}

func TestFreeAfterTimeWaitIsEstimated(t *testing.T) {
	tr := New(nil, 0)
	// A port closed straight to CLOSE is back with the release: no free.
	out := tr.Observe(ptr(release(1, "CLOSE", 0)))
	if len(out) != 0 || tr.Pending() != 0 {
		t.Fatalf("CLOSE: %+v", out)
	}
	// TIME_WAIT keeps it TimeWaitLen more: an inferred free.
	if out := tr.Observe(ptr(release(2, "TIME_WAIT", 0))); len(out) != 0 {
		t.Fatalf("TIME_WAIT freed at once: %+v", out)
	}
	if d := tr.Due(t0.Add(TimeWaitLen - time.Millisecond)); len(d) != 0 {
		t.Fatalf("freed before TIME_WAIT ended: %+v", d)
	}
	d := tr.Due(t0.Add(TimeWaitLen))
	if len(d) != 1 || !d[0].Estimated || d[0].Held != time.Second+TimeWaitLen || !d[0].Time.Equal(t0.Add(TimeWaitLen)) {
		t.Fatalf("free after TIME_WAIT: %+v", d)
	}
	// A new connect over the same four-tuple takes the TIME_WAIT over: the
	// port was back at that moment, not 60 s later.
	tr.Observe(ptr(release(3, "TIME_WAIT", 0)))
	a := release(3, "CLOSE", 5*time.Second)
	a.Kind = tracer.KindAlloc
	out = tr.Observe(&a)
	if len(out) != 1 || out[0].Kind != tracer.KindFree || out[0].Estimated || !out[0].Time.Equal(t0.Add(5*time.Second)) || out[0].Held != 6*time.Second {
		t.Fatalf("takeover: %+v", out)
	}
	if tr.Pending() != 0 || len(tr.Due(t0.Add(time.Hour))) != 0 {
		t.Error("the taken-over TIME_WAIT is still pending")
	}
}

func ptr(e tracer.Event) *tracer.Event { return &e }

func TestSummarize(t *testing.T) {
	dst := netip.MustParseAddr("10.0.0.2")
	other := netip.MustParseAddr("10.0.0.3")
	var reserved tracer.PortSet
	reserved.Add(40003)
	socks := []tracer.Socket{
		{Proto: tracer.TCP, Port: 40000, State: 1, RemoteAddr: dst, RemotePort: 443, PID: 7, Comm: "java"},
		{Proto: tracer.TCP, Port: 40001, State: 1, RemoteAddr: dst, RemotePort: 443, PID: 7, Comm: "java"},
		{Proto: tracer.TCP, Port: 40001, State: 1, RemoteAddr: other, RemotePort: 443, PID: 8, Comm: "curl"}, // shared port, other dest
		{Proto: tracer.TCP, Port: 40002, State: 6, Substate: 6, RemoteAddr: dst, RemotePort: 443},
		{Proto: tracer.TCP, Port: 40003, State: 1, PID: 9},  // reserved: not counted
		{Proto: tracer.TCP, Port: 50000, State: 10, PID: 9}, // outside the range
		{Proto: tracer.UDP, Port: 40004, PID: 9},            // other protocol
	}
	fail := tracer.Event{Kind: tracer.KindFail, Proto: tracer.TCP, Via: tracer.ViaConnect, Range: tracer.PortRange{Lo: 40000, Hi: 40009},
		RemoteAddr: dst, RemotePort: 443}
	p := Summarize(socks, &fail, reserved)
	if p.InUse != 3 || p.TimeWait != 1 || p.RangeSize != 9 || p.DestInUse != 3 {
		t.Errorf("pressure %+v: want 3 in use, 1 TIME_WAIT, 9 ports, 3 to the destination", p)
	}
	if len(p.TopHolders) != 2 || p.TopHolders[0] != (tracer.Holder{PID: 7, Comm: "java", Count: 2}) || p.TopHolders[1].PID != 8 {
		t.Errorf("holders %+v", p.TopHolders)
	}
}

type countingLister struct{ n int }

func (c *countingLister) Sockets(string) ([]tracer.Socket, error) { c.n++; return nil, nil }

// A namespace is read once for the failures of the 10 ms after the read,
// again for a later one, and its read time is said relative to each.
func TestScanSharing(t *testing.T) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &st); err != nil {
		t.Skip("no /proc/self/ns/net")
	}
	l := &countingLister{}
	tr := New(l, 0)
	defer tr.Close()
	fail := func(at time.Time) *tracer.Event {
		e := &tracer.Event{Kind: tracer.KindFail, Time: at, Proto: tracer.TCP, Via: tracer.ViaConnect,
			NetNS: uint32(st.Ino), PID: uint32(os.Getpid()), Range: tracer.PortRange{Lo: 40000, Hi: 40009}}
		tr.Observe(e)
		return e
	}
	t0 := time.Now()
	first := fail(t0)
	if l.n != 1 || first.Pressure == nil || first.Pressure.ReadAfter < 0 {
		t.Fatalf("first failure: %d reads, pressure %+v", l.n, first.Pressure)
	}
	soon := fail(first.Time.Add(first.Pressure.ReadAfter + 5*time.Millisecond))
	if l.n != 1 || soon.Pressure.ReadAfter != -5*time.Millisecond {
		t.Errorf("a failure 5 ms after the read: %d reads, read %v after it", l.n, soon.Pressure.ReadAfter)
	}
	time.Sleep(15 * time.Millisecond)
	late := fail(time.Now())
	if l.n != 2 || late.Pressure.ReadAfter < 0 {
		t.Errorf("a failure 15 ms after the read: %d reads, read %v after it", l.n, late.Pressure.ReadAfter)
	}
}
