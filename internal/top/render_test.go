package top

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/porttrace/porttrace/tracer"
)

func TestRenderFits80x24(t *testing.T) {
	s := &Snapshot{Time: time.Date(2026, 11, 25, 3, 12, 0, 0, time.UTC)}
	for i := 0; i < 20; i++ {
		s.NS = append(s.NS, NS{Inode: 4026531840 + uint32(i), Name: "a-long-namespace-name", Range: tracer.PortRange{Lo: 32768, Hi: 60999}, Size: 28232,
			TCP: Occ{InUse: 28232, TimeWait: 20000}, UDP: Occ{InUse: 1234}, AllocRate: 12345, FailRate: 999,
			ByProc: []Count{{"java[123456]", 20000}, {"curl[7]", 3}}, ByCgroup: []Count{{"/kubepods/burstable/pod1234/abcdef", 20000}},
			Dests: []Count{{"[2001:db8::1]:5432", 28232}}})
	}
	for i := 0; i < 8; i++ {
		s.Failures = append(s.Failures, tracer.Event{Kind: tracer.KindFail, Time: s.Time, Comm: "java", PID: 123456, Via: tracer.ViaConnect,
			Errno: syscall.EADDRNOTAVAIL, Pressure: &tracer.Pressure{InUse: 28232, RangeSize: 28232, TimeWait: 20000}})
	}
	lines := Render(s, 80, 24)
	if len(lines) > 24 {
		t.Errorf("%d lines for a 24-line terminal", len(lines))
	}
	for _, l := range lines {
		if n := len([]rune(l)); n > 80 {
			t.Errorf("%d columns: %q", n, l)
		}
	}
	all := strings.Join(lines, "\n")
	if !strings.Contains(all, "more namespaces") || !strings.Contains(all, "LAST FAILURES") || !strings.Contains(all, "[##~~~~~~]") {
		t.Errorf("screen:\n%s", all)
	}
	if got := bar(3, 1, 4, 8); got != "[####~~..]" {
		t.Errorf("bar(3,1,4,8) = %q", got)
	}
}
