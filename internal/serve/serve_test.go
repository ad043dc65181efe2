package serve

import (
	"net/netip"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/porttrace/porttrace/tracer"
)

func TestHolderName(t *testing.T) {
	id := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, c := range []struct{ comm, cgroup, want string }{
		{"nginx", "/system.slice/nginx.service", "nginx"},
		{"curl", "/system.slice/docker-" + id + ".scope", "container:0123456789ab"},
		{"java", "/kubepods.slice/kubepods-pod1.slice/cri-containerd-" + id + ".scope", "container:0123456789ab"},
		{"sh", "/machine.slice/libpod-" + id + ".scope/container", "container:0123456789ab"},
		{"sh", "/docker/" + id, "container:0123456789ab"},
		{"", "/", "unknown"},
	} {
		if got := holderName(c.comm, c.cgroup, tracer.Workload{}); got != c.want {
			t.Errorf("holderName(%q, %q) = %q, want %q", c.comm, c.cgroup, got, c.want)
		}
	}
}

func TestTopHoldersSumsTheRest(t *testing.T) {
	all := map[string]int{"a": 5, "b": 3, "c": 3, "d": 1}
	got := topHolders(all, 2)
	want := map[string]int{"a": 5, "b": 3, "other": 4}
	if len(got) != len(want) {
		t.Fatalf("topHolders = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("topHolders = %v, want %v", got, want)
		}
	}
	if got := topHolders(all, 4); len(got) != 4 || got["other"] != 0 {
		t.Errorf("topHolders with room for all = %v", got)
	}
}

// The kernel's buckets become Prometheus's cumulative ones; the last
// (longer than every bound) counts only in +Inf.
func TestHoldHistogram(t *testing.T) {
	h := tracer.HoldHist{NSProto: tracer.NSProto{NetNS: 7, Proto: tracer.TCP}, Sum: 1500 * time.Millisecond}
	h.Buckets[0] = 2
	h.Buckets[5] = 1
	h.Buckets[len(h.Buckets)-1] = 4
	var m dto.Metric
	if err := holdHistogram(&h, []string{"7", "", "", "tcp"}).Write(&m); err != nil {
		t.Fatal(err)
	}
	hg := m.GetHistogram()
	if hg.GetSampleCount() != 7 || hg.GetSampleSum() != 1.5 {
		t.Errorf("count %d sum %v, want 7 and 1.5", hg.GetSampleCount(), hg.GetSampleSum())
	}
	b := hg.GetBucket()
	if len(b) != len(tracer.HoldBounds) {
		t.Fatalf("%d buckets, want %d", len(b), len(tracer.HoldBounds))
	}
	if b[0].GetUpperBound() != 1.024e-06 || b[0].GetCumulativeCount() != 2 || b[4].GetCumulativeCount() != 2 ||
		b[5].GetCumulativeCount() != 3 || b[len(b)-1].GetCumulativeCount() != 3 || b[len(b)-1].GetUpperBound() != 1099.511627776 {
		t.Errorf("buckets %v", b)
	}
}

// TIME_WAIT counts ports no live socket holds; the busiest destination
// counts its local ports, TIME_WAIT entries included.
func TestSummarize(t *testing.T) {
	a := netip.MustParseAddr("10.0.0.1")
	b := netip.MustParseAddr("10.0.0.2")
	tw := tracer.TCPState(6)
	socks := []tracer.Socket{
		{Proto: tracer.TCP, Port: 40000, RemoteAddr: a, RemotePort: 80, State: 1},
		{Proto: tracer.TCP, Port: 40001, RemoteAddr: a, RemotePort: 80, State: tw},
		{Proto: tracer.TCP, Port: 40002, RemoteAddr: a, RemotePort: 80, State: tw},
		{Proto: tracer.TCP, Port: 40002, RemoteAddr: b, RemotePort: 80, State: 1}, // same port, live toward b
		{Proto: tracer.TCP, Port: 40003, RemoteAddr: b, RemotePort: 443, State: tw},
		{Proto: tracer.TCP, Port: 50000, RemoteAddr: a, RemotePort: 80, State: tw}, // outside the range
		{Proto: tracer.UDP, Port: 40005, RemoteAddr: a, RemotePort: 53},
		{Proto: tracer.TCP, Port: 40009, RemoteAddr: a, RemotePort: 80, State: tw}, // reserved
	}
	var reserved tracer.PortSet
	reserved.Add(40009)
	v := NS{Range: tracer.PortRange{Lo: 40000, Hi: 40009}, TimeWait: map[tracer.Proto]int{}, DestMax: map[tracer.Proto]int{}}
	summarize(&v, socks, reserved)
	if v.TimeWait[tracer.TCP] != 2 || v.TimeWait[tracer.UDP] != 0 {
		t.Errorf("TIME_WAIT-only ports: %v, want tcp 2 (40001, 40003)", v.TimeWait)
	}
	if v.DestMax[tracer.TCP] != 3 || v.DestMax[tracer.UDP] != 1 {
		t.Errorf("busiest destination: %v, want tcp 3 (10.0.0.1:80), udp 1", v.DestMax)
	}
}
