package output

import (
	"net/netip"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/porttrace/porttrace/tracer"
)

// Every event AppendJSON writes reads back as the same Event.
func TestParseJSONRoundTrip(t *testing.T) {
	events := []tracer.Event{
		{Kind: tracer.KindAlloc, Time: when, Proto: tracer.TCP, Family: tracer.IPv6, Port: 60698,
			LocalAddr: netip.MustParseAddr("::ffff:10.0.0.1"), RemoteAddr: netip.MustParseAddr("2001:db8::1"), RemotePort: 443,
			Via: tracer.ViaConnect, Ephemeral: true, PID: 1, TID: 2, Comm: "we\"ird\x01ñame", UID: 3, Cgroup: "/a b", CgroupID: 9, NetNS: 4026531840},
		{Kind: tracer.KindRelease, Time: when, Proto: tracer.TCP, Family: tracer.IPv4, Port: 1, LocalAddr: netip.MustParseAddr("0.0.0.0"),
			Via: tracer.ViaBind, PID: 5, Held: 123456789, State: 5},
		{Kind: tracer.KindFail, Time: when, Proto: tracer.UDP, Family: tracer.IPv4, Via: tracer.ViaConnect, Errno: syscall.EAGAIN, Deferred: true},
		{Kind: tracer.KindLost, Time: when, Count: 77},
		{Kind: tracer.KindFree, Time: when, Proto: tracer.TCP, Family: tracer.IPv4, Port: 9, Via: tracer.ViaConnect, Held: 61e9, State: 6, Estimated: true},
		{Kind: tracer.KindSlow, Time: when, Proto: tracer.TCP, Family: tracer.IPv4, Port: 9, Via: tracer.ViaConnect, Search: 2e6},
		{Kind: tracer.KindFail, Time: when, Proto: tracer.TCP, Family: tracer.IPv4, Via: tracer.ViaConnect, Errno: syscall.EADDRNOTAVAIL,
			Pressure: &tracer.Pressure{InUse: 10, RangeSize: 10, TimeWait: 4, DestInUse: 10, ReadAfter: 812345}},
		{Kind: tracer.KindFail, Time: when, Proto: tracer.TCP, Family: tracer.IPv4, Via: tracer.ViaConnect, Errno: syscall.EADDRNOTAVAIL,
			HeldAtCall: 0, Counted: true, Pressure: &tracer.Pressure{InUse: 1, RangeSize: 1, ReadAfter: -3000}},
		{Kind: tracer.KindRelease, Time: when, Proto: tracer.UDP, Family: tracer.IPv4, Port: 2, Via: tracer.ViaConnect, Late: true,
			PID: 7, TID: 8, Comm: "dig", Thread: "isc-net-0000", Held: 5},
		{Kind: tracer.KindClock, Time: when, Step: -2 * time.Second},
		{Kind: tracer.KindClock, Time: when, Step: 3},
		{Kind: tracer.KindStop, Time: when, Stop: &tracer.StopInfo{Events: 1, Allocs: 2, Releases: 3, Fails: 4, Lost: 5, Duration: 6}},
		{Kind: tracer.KindStart, Time: when, Start: &tracer.StartInfo{Version: "v", Tier: "portable", TierReason: "asked for", Hooks: []string{"h"}, Filter: "all",
			Namespaces: []tracer.Namespace{{Inode: 7, Name: "n", Range: tracer.PortRange{Lo: 1, Hi: 2}}}}},
	}
	for _, want := range events {
		line := AppendJSON(nil, &want)
		got, err := ParseJSON(line)
		if err != nil {
			t.Errorf("ParseJSON(%s): %v", line, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round trip of %s\n got %+v\nwant %+v", line, got, want)
		}
	}
}

func TestParseJSONRejects(t *testing.T) {
	for _, bad := range []string{
		``, `{`, `{"event":"alloc"`, `{"event":"alloc","time":"2026-11-25T03:12:00Z","port":70000}`,
		`{"event":"nope","time":"2026-11-25T03:12:00Z"}`, `{"time":"2026-11-25T03:12:00Z"}`, `{"event":"alloc"}`,
		`{"event":"alloc","time":"yesterday"}`, `{"event":"alloc","time":"2026-11-25T03:12:00Z","laddr":"x"}`,
		`{"event":"alloc","time":"2026-11-25T03:12:00Z"} trailing`, `[1,2]`, `{"event":"fail","time":"2026-11-25T03:12:00Z","errno":"ENOPE"}`,
	} {
		if _, err := ParseJSON([]byte(bad)); err == nil {
			t.Errorf("ParseJSON(%q) accepted it", bad)
		}
	}
	// Fields a newer porttrace may add are skipped.
	e, err := ParseJSON([]byte(`{"event":"lost","future":{"a":[1,"]"]},"n":-1.5e3,"time":"2026-11-25T03:12:00Z","count":3,"x":null}`))
	if err != nil || e.Count != 3 || e.Kind != tracer.KindLost {
		t.Errorf("unknown fields: %+v, %v", e, err)
	}
	if !e.Time.Equal(time.Date(2026, 11, 25, 3, 12, 0, 0, time.UTC)) {
		t.Errorf("time = %v", e.Time)
	}
	if _, err := ParseJSON([]byte(strings.Repeat("{", 10000))); err == nil {
		t.Error("deep nesting accepted")
	}
}

func FuzzParseJSON(f *testing.F) {
	f.Add([]byte(`{"event":"alloc","time":"2026-11-25T03:12:00.000000005Z","proto":"tcp","family":"ipv4","port":60698,"laddr":"10.0.0.1","raddr":"10.0.0.2","rport":443,"via":"connect","ephemeral":true,"pid":1,"tid":2,"comm":"curl","uid":3,"cgroup":"/","cgroup_id":9,"netns":4026531840}`))
	f.Add([]byte(`{"event":"release","time":"2026-11-25T03:12:00Z","held_ns":5,"state":"TIME_WAIT","comm":"a\u00e9\ud83d\ude00"}`))
	f.Add([]byte(`{"event":"start","time":"2026-11-25T03:12:00Z","namespaces":[{"netns":1,"range":[1,2]}]}`))
	f.Add([]byte(`{"event":"stop","time":"2026-11-25T03:12:00Z","events":1,"lost":0}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseJSON(b)
		if err != nil {
			return
		}
		// What parses must write back and parse to the same thing.
		again, err := ParseJSON(AppendJSON(nil, &e))
		if err != nil {
			t.Fatalf("re-parse of %q: %v", AppendJSON(nil, &e), err)
		}
		if !reflect.DeepEqual(again.Kind, e.Kind) || !again.Time.Equal(e.Time) || again.Port != e.Port || again.Comm != e.Comm {
			t.Fatalf("round trip changed %+v into %+v", e, again)
		}
	})
}
