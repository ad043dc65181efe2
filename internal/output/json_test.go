package output

import (
	"encoding/json"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/porttrace/porttrace/tracer"
)

func decodeLine(t *testing.T, b []byte) map[string]any {
	t.Helper()
	if len(b) == 0 || b[len(b)-1] != '\n' {
		t.Fatalf("line %q does not end in a newline", b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not JSON: %q: %v", b, err)
	}
	return m
}

var when = time.Date(2026, 11, 25, 3, 12, 0, 5, time.UTC)

func TestAppendJSONKinds(t *testing.T) {
	alloc := tracer.Event{Kind: tracer.KindAlloc, Time: when, Proto: tracer.TCP, Family: tracer.IPv4, Port: 60698,
		LocalAddr: netip.MustParseAddr("10.0.0.1"), RemoteAddr: netip.MustParseAddr("10.0.0.2"), RemotePort: 443,
		Via: tracer.ViaConnect, Ephemeral: true, PID: 1, TID: 2, Comm: "curl", UID: 3, Cgroup: "/system.slice", CgroupID: 9, NetNS: 4026531840}
	m := decodeLine(t, AppendJSON(nil, &alloc))
	want := map[string]any{"event": "alloc", "time": "2026-11-25T03:12:00.000000005Z", "proto": "tcp", "family": "ipv4",
		"port": 60698.0, "laddr": "10.0.0.1", "raddr": "10.0.0.2", "rport": 443.0, "via": "connect", "ephemeral": true,
		"pid": 1.0, "tid": 2.0, "comm": "curl", "uid": 3.0, "cgroup": "/system.slice", "cgroup_id": 9.0, "netns": 4026531840.0}
	if len(m) != len(want) {
		t.Errorf("alloc has %d fields, want %d: %v", len(m), len(want), m)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("alloc %s = %v, want %v", k, m[k], v)
		}
	}

	rel := alloc
	rel.Kind, rel.Held, rel.State = tracer.KindRelease, 1500*time.Millisecond, 6
	m = decodeLine(t, AppendJSON(nil, &rel))
	if m["held_ns"] != 1.5e9 || m["state"] != "TIME_WAIT" || m["event"] != "release" {
		t.Errorf("release: %v", m)
	}
	rel.Proto = tracer.UDP
	if m = decodeLine(t, AppendJSON(nil, &rel)); m["state"] != nil {
		t.Errorf("UDP release carries a TCP state: %v", m)
	}

	fail := tracer.Event{Kind: tracer.KindFail, Time: when, Proto: tracer.UDP, Family: tracer.IPv6, Via: tracer.ViaConnect,
		Errno: syscall.EAGAIN, Deferred: true, RemoteAddr: netip.MustParseAddr("::1"), RemotePort: 53}
	m = decodeLine(t, AppendJSON(nil, &fail))
	if m["errno"] != "EAGAIN" || m["deferred"] != true || m["ephemeral"] != nil || m["raddr"] != "::1" || m["laddr"] != "" {
		t.Errorf("fail: %v", m)
	}

	lost := tracer.Event{Kind: tracer.KindLost, Time: when, Count: 12}
	if m = decodeLine(t, AppendJSON(nil, &lost)); m["count"] != 12.0 || len(m) != 3 {
		t.Errorf("lost: %v", m)
	}

	start := tracer.Event{Kind: tracer.KindStart, Time: when, Start: &tracer.StartInfo{Version: "v1", Tier: "precise", TierReason: "asked for", Hooks: []string{"a", "b"}, Filter: "all",
		Namespaces: []tracer.Namespace{{Inode: 1, Range: tracer.PortRange{Lo: 32768, Hi: 60999}, Name: "blue"}}}}
	m = decodeLine(t, AppendJSON(nil, &start))
	ns := m["namespaces"].([]any)[0].(map[string]any)
	if len(m["hooks"].([]any)) != 2 || ns["name"] != "blue" || ns["range"].([]any)[1] != 60999.0 || m["filter"] != "all" ||
		m["tier"] != "precise" || m["tier_reason"] != "asked for" {
		t.Errorf("start: %v", m)
	}

	stop := tracer.Event{Kind: tracer.KindStop, Time: when, Stop: &tracer.StopInfo{Events: 5, Allocs: 2, Releases: 2, Fails: 1, Lost: 7, Duration: time.Second}}
	m = decodeLine(t, AppendJSON(nil, &stop))
	if m["events"] != 5.0 || m["lost"] != 7.0 || m["duration_ns"] != 1e9 || m["fails"] != 1.0 {
		t.Errorf("stop: %v", m)
	}
}

func TestAppendJSONStringEscapes(t *testing.T) {
	for in, want := range map[string]string{
		"plain":           "plain",
		"quo\"te\\":       "quo\"te\\",
		"ctl\x01\n\t":     "ctl\x01\n\t",
		"bad\xffutf8":     "bad\ufffdutf8",
		"ünïcödé":         "ünïcödé",
		"\x00kworker/0:1": "\x00kworker/0:1",
	} {
		b := appendJSONString(nil, in)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Errorf("%q → %s: not a JSON string: %v", in, b, err)
			continue
		}
		if got != want {
			t.Errorf("%q → %s → %q, want %q", in, b, got, want)
		}
	}
}
