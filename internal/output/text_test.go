package output

import (
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fatih/color"
	"github.com/porttrace/porttrace/tracer"
)

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		999:                       "999ns",
		250 * time.Microsecond:    "250µs",
		1500 * time.Microsecond:   "1.50ms",
		100 * time.Millisecond:    "100ms",
		12345 * time.Millisecond:  "12.3s",
		123 * time.Second:         "2m03s",
		3*time.Hour + time.Minute: "3h01m",
	} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
	}
}

// Every column of a line starts where its header does.
func TestTextColumnsLineUp(t *testing.T) {
	color.NoColor = true
	tx := NewText()
	tx.Local = time.UTC
	header := Header()
	events := []tracer.Event{
		{Kind: tracer.KindAlloc, Time: when, Proto: tracer.TCP, Family: tracer.IPv4, Port: 60698, Via: tracer.ViaConnect,
			PID: 123, Comm: "curl", LocalAddr: netip.MustParseAddr("10.0.0.1"), RemoteAddr: netip.MustParseAddr("10.0.0.2"), RemotePort: 443, Ephemeral: true},
		{Kind: tracer.KindRelease, Time: when, Proto: tracer.UDP, Family: tracer.IPv6, Port: 40000, Via: tracer.ViaSendmsg,
			PID: 4194304, Comm: "dig", LocalAddr: netip.MustParseAddr("::1"), RemoteAddr: netip.MustParseAddr("::1"), RemotePort: 53, Held: 2 * time.Millisecond},
		{Kind: tracer.KindFail, Time: when, Proto: tracer.TCP, Family: tracer.IPv4, Via: tracer.ViaConnect, PID: 9, Comm: "java",
			RemoteAddr: netip.MustParseAddr("192.168.100.200"), RemotePort: 5432, Errno: syscall.EADDRNOTAVAIL},
	}
	cols := []string{"EVENT", "PROTO", "VIA", "COMM", "LOCAL", "REMOTE"}
	for _, e := range events {
		line := tx.Line(&e)
		runes := []rune(line)
		for _, c := range cols {
			at := len([]rune(header[:strings.Index(header, c)]))
			if at >= len(runes) || (at > 0 && runes[at-1] != ' ' && runes[at-1] != '→') || runes[at] == ' ' {
				t.Errorf("%s column does not start at %d in\n%s\n%s", c, at, header, line)
			}
		}
		// Right-aligned numbers end where their header ends.
		for _, c := range []string{"PORT", "PID"} {
			end := len([]rune(header[:strings.Index(header, c)+len(c)]))
			if runes[end-1] == ' ' || (end < len(runes) && runes[end] != ' ') {
				t.Errorf("%s column does not end at %d in\n%s\n%s", c, end, header, line)
			}
		}
	}
	if l := tx.Line(&events[1]); !strings.HasSuffix(l, "2.00ms") || !strings.Contains(l, "[::1]:40000") {
		t.Errorf("release line: %q", l)
	}
	if l := tx.Line(&events[2]); !strings.HasSuffix(l, "EADDRNOTAVAIL") || !strings.Contains(l, "  -  ") {
		t.Errorf("fail line: %q", l)
	}
	lost := tracer.Event{Kind: tracer.KindLost, Time: when, Count: 3}
	if l := tx.Line(&lost); !strings.Contains(l, "3 events were dropped") {
		t.Errorf("lost line: %q", l)
	}
}

// A process name of wide characters takes two columns each: the columns
// after it start where the header's do all the same.
func TestWideNamesLineUp(t *testing.T) {
	color.NoColor = true
	tx := NewText()
	tx.Local = time.UTC
	header := Header()
	want := strings.Index(header, "LOCAL") // the header is ASCII: bytes are columns
	for _, comm := range []string{"curl", "日本語サーバ", "ｆｕｌｌ", "nginx: ワーカー"} {
		e := tracer.Event{Kind: tracer.KindAlloc, Time: when, Proto: tracer.TCP, Family: tracer.IPv4, Port: 60698, Via: tracer.ViaConnect,
			PID: 123, Comm: comm, LocalAddr: netip.MustParseAddr("10.0.0.1"), RemoteAddr: netip.MustParseAddr("10.0.0.2"), RemotePort: 443, Ephemeral: true}
		line := tx.Line(&e)
		before, _, ok := strings.Cut(line, "10.0.0.1")
		if !ok {
			t.Fatalf("no local address in %q", line)
		}
		if got := columns(before); got != want {
			t.Errorf("%s: LOCAL starts at column %d, the header's at %d:\n%s\n%s", comm, got, want, header, line)
		}
	}
}

// columns counts the terminal columns of s, as a terminal shows them.
func columns(s string) int {
	n := 0
	for _, r := range s {
		if (r >= 0x3000 && r <= 0x30ff) || (r >= 0x4e00 && r <= 0x9fff) || (r >= 0xff01 && r <= 0xff60) {
			n += 2 // CJK punctuation, kana, ideographs, fullwidth forms
		} else {
			n++
		}
	}
	return n
}
