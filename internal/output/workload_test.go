package output

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/porttrace/porttrace/tracer"
)

var podEvent = tracer.Event{Kind: tracer.KindAlloc, Time: when, Proto: tracer.TCP, Family: tracer.IPv4, Port: 40000,
	LocalAddr: netip.MustParseAddr("10.88.0.2"), Via: tracer.ViaConnect, Ephemeral: true, PID: 1, Comm: "app",
	Workload: tracer.Workload{ContainerID: strings.Repeat("ab", 32), Container: "web", PodUID: "0f5b1c7e-2a3d-4e8f-9b6c-1d2e3f4a5b6c",
		Pod: "shop-7d9f", Namespace: "prod"}}

func TestWorkloadJSONRoundTrip(t *testing.T) {
	line := AppendJSON(nil, &podEvent)
	m := decodeLine(t, line)
	for k, v := range map[string]string{"container_id": podEvent.Workload.ContainerID, "container": "web",
		"pod_uid": podEvent.Workload.PodUID, "pod": "shop-7d9f", "pod_namespace": "prod"} {
		if m[k] != v {
			t.Errorf("%s = %v, want %q in %s", k, m[k], v, line)
		}
	}
	got, err := ParseJSON(line)
	if err != nil || !reflect.DeepEqual(got, podEvent) {
		t.Errorf("round trip of %s: %+v, %v", line, got, err)
	}
	host := podEvent
	host.Workload = tracer.Workload{}
	if s := string(AppendJSON(nil, &host)); strings.Contains(s, "pod") || strings.Contains(s, "container") {
		t.Errorf("a host process's event has workload fields: %s", s)
	}
}

func TestWorkloadRefusedWhenTooLong(t *testing.T) {
	e := podEvent
	e.Workload.Pod = strings.Repeat("p", 3*253+1)
	if _, err := ParseJSON(AppendJSON(nil, &e)); err == nil || !strings.Contains(err.Error(), "pod is 760 bytes long") {
		t.Errorf("a 760-byte pod name: %v", err)
	}
	e = podEvent
	e.Workload.ContainerID = strings.Repeat("a", 65)
	if _, err := ParseJSON(AppendJSON(nil, &e)); err == nil || !strings.Contains(err.Error(), "container_id") {
		t.Errorf("a 65-digit container id: %v", err)
	}
}

// The runtime's names are anyone's who can create a pod: text shows them escaped.
func TestWorkloadTextEscapes(t *testing.T) {
	e := podEvent
	e.Workload.Pod = "evil\x1b]0;owned\x07"
	line := NewText().Line(&e)
	if strings.ContainsAny(line, "\x1b\x07") || !strings.Contains(line, `[prod/evil\x1b]0;owned\x07/web]`) {
		t.Errorf("text line: %q", line)
	}
	for _, c := range []struct {
		w    tracer.Workload
		want string
	}{
		{podEvent.Workload, "prod/shop-7d9f/web"},
		{tracer.Workload{PodUID: "u1"}, "pod u1"},
		{tracer.Workload{ContainerID: strings.Repeat("0123456789ab", 5) + "cdef"}, "container 0123456789ab"},
		{tracer.Workload{}, ""},
	} {
		if got := WorkloadText(c.w); got != c.want {
			t.Errorf("WorkloadText(%+v) = %q, want %q", c.w, got, c.want)
		}
	}
}
