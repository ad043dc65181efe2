package report

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/porttrace/porttrace/tracer"
)

var t0 = time.Date(2026, 11, 25, 3, 12, 0, 0, time.UTC)

func ev(kind tracer.Kind, at time.Duration, pid uint32, comm string, port uint16) tracer.Event {
	return tracer.Event{Kind: kind, Time: t0.Add(at), PID: pid, Comm: comm, Port: port, Proto: tracer.TCP, Family: tracer.IPv4,
		NetNS: 1, Via: tracer.ViaConnect, LocalAddr: netip.MustParseAddr("10.0.0.1"), RemoteAddr: netip.MustParseAddr("10.0.0.2"), RemotePort: 443}
}

func release(at, held time.Duration, pid uint32, comm string, port uint16) tracer.Event {
	e := ev(tracer.KindRelease, at, pid, comm, port)
	e.Held, e.State = held, 6
	return e
}

func errname(e syscall.Errno) string {
	return map[syscall.Errno]string{syscall.EADDRNOTAVAIL: "EADDRNOTAVAIL"}[e]
}

func TestBuilderProcessesHoldsAndFailures(t *testing.T) {
	var ports tracer.PortSet
	ports.Add(60698)
	b := NewBuilder(Filter{})
	bp := NewBuilder(Filter{Ports: ports})
	events := []tracer.Event{
		{Kind: tracer.KindStart, Time: t0, Start: &tracer.StartInfo{Namespaces: []tracer.Namespace{{Inode: 1, Name: "blue", Range: tracer.PortRange{Lo: 60698, Hi: 60699}}}}},
		ev(tracer.KindAlloc, 0, 10, "curl", 60698),
		ev(tracer.KindAlloc, time.Second, 10, "curl", 60699),
		release(2*time.Second, 2*time.Second, 10, "curl", 60698),
		ev(tracer.KindAlloc, 3*time.Second, 20, "java", 60698),
		release(4*time.Second, 3*time.Second, 10, "curl", 60699),
		{Kind: tracer.KindFail, Time: t0.Add(3500 * time.Millisecond), PID: 30, Comm: "dig", Proto: tracer.TCP, NetNS: 1, Errno: syscall.EADDRNOTAVAIL, Via: tracer.ViaConnect},
		{Kind: tracer.KindLost, Time: t0.Add(5 * time.Second), Count: 4},
	}
	for _, e := range events {
		b.Add(e)
		bp.Add(e)
	}
	r := b.Finish()
	if r.Events != 7 || r.Lost != 4 || r.FailTotal != 1 || r.Span.Duration != 5*time.Second {
		t.Errorf("totals: events %d lost %d fails %d span %v", r.Events, r.Lost, r.FailTotal, r.Span.Duration)
	}
	curl := r.Processes[0]
	if curl.PID != 10 || curl.Allocs != 2 || curl.Releases != 2 || curl.Peak != 2 || curl.HeldMax != 3*time.Second {
		t.Errorf("curl: %+v", curl)
	}
	if d := curl.HeldP50 - 2*time.Second; d < 0 || d > 2*time.Second/100 {
		t.Errorf("curl p50 = %v, want 2s within 1%%", curl.HeldP50)
	}
	if dig := r.Processes[2]; dig.PID != 30 || dig.Fails != 1 || dig.Allocs != 0 {
		t.Errorf("a process that only failed: %+v", dig)
	}
	java := r.Processes[1]
	if java.PID != 20 || java.Allocs != 1 || java.Releases != 0 || java.Peak != 1 {
		t.Errorf("java: %+v", java)
	}
	f := r.Failures[0]
	if f.Errno != "EADDRNOTAVAIL" || f.Comm != "dig" || f.InUse != 2 {
		t.Errorf("failure: %+v (2 of 2 ports were held at 3.5s)", f)
	}
	if len(r.Ranges) != 1 || r.Ranges[0].Peak != 2 || r.Ranges[0].Range != [2]uint16{60698, 60699} || r.Ranges[0].Name != "blue" {
		t.Errorf("ranges: %+v", r.Ranges)
	}

	rp := bp.Finish()
	if len(rp.Ports) != 1 || len(rp.Ports[0].Holds) != 2 {
		t.Fatalf("ports under --port 60698: %+v", rp.Ports)
	}
	h0, h1 := rp.Ports[0].Holds[0], rp.Ports[0].Holds[1]
	if h0.PID != 10 || !h0.Start.Equal(t0) || h0.End == nil || !h0.End.Equal(t0.Add(2*time.Second)) || h0.State != "TIME_WAIT" {
		t.Errorf("first hold: %+v", h0)
	}
	if h1.PID != 20 || h1.End != nil || !h1.Start.Equal(t0.Add(3*time.Second)) {
		t.Errorf("second hold (still held): %+v", h1)
	}
	if rp.FailTotal != 1 {
		t.Errorf("failures must pass a port filter")
	}

	// Every output renders, and the JSON names the fields the issue fixes.
	var buf bytes.Buffer
	if err := WriteText(&buf, rp); err != nil || !strings.Contains(buf.String(), "PORT 60698/tcp: 2 holds") || !strings.Contains(buf.String(), "(still held)") {
		t.Errorf("text: %v\n%s", err, buf.String())
	}
	buf.Reset()
	json.NewEncoder(&buf).Encode(rp)
	var doc map[string]any
	json.Unmarshal(buf.Bytes(), &doc)
	for _, k := range []string{"span", "lost", "truncated", "processes", "ports", "failures"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("JSON report lacks %q", k)
		}
	}
	p0 := doc["processes"].([]any)[0].(map[string]any)
	for _, k := range []string{"pid", "comm", "allocs", "held_p50_ns", "held_p99_ns", "held_max_ns", "peak"} {
		if _, ok := p0[k]; !ok {
			t.Errorf("JSON process lacks %q", k)
		}
	}
	buf.Reset()
	if err := WriteHTML(&buf, rp); err != nil || !strings.Contains(buf.String(), "<svg id=\"timeline\"") || strings.Contains(buf.String(), "http://") && strings.Contains(buf.String(), "src=") {
		t.Errorf("html: %v", err)
	}
}

func TestFilterTimeWindow(t *testing.T) {
	b := NewBuilder(Filter{Since: t0.Add(time.Second), Until: t0.Add(2 * time.Second), Comms: []string{"curl"}})
	b.Add(ev(tracer.KindAlloc, 0, 10, "curl", 1))
	b.Add(ev(tracer.KindAlloc, 1500*time.Millisecond, 10, "curl", 2))
	b.Add(ev(tracer.KindAlloc, 1500*time.Millisecond, 11, "wget", 3))
	b.Add(ev(tracer.KindAlloc, 3*time.Second, 10, "curl", 4))
	if r := b.Finish(); r.Events != 1 || r.Processes[0].Allocs != 1 {
		t.Errorf("window kept %d events: %+v", r.Events, r.Processes)
	}
}

func TestHistQuantiles(t *testing.T) {
	var h hist
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	for q, want := range map[float64]time.Duration{0.5: 500 * time.Millisecond, 0.99: 990 * time.Millisecond, 1: time.Second} {
		got := h.quantile(q)
		if diff := float64(got-want) / float64(want); diff < -0.011 || diff > 0.011 {
			t.Errorf("q%.2f = %v, want %v within 1%%", q, got, want)
		}
	}
	if h.max != time.Second || (&hist{}).quantile(0.5) != 0 {
		t.Error("max or empty")
	}
}
