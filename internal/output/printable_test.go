package output

import (
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"github.com/fatih/color"
	"github.com/porttrace/porttrace/tracer"
)

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"curl":                       "curl",
		"python3 -m http.server":     "python3 -m http.server",
		"curl\t99999\t0":             `curl\t99999\t0`,
		"a\nb\rc":                    `a\nb\rc`,
		"\x1b[2J\x1b]0;pwned\x07":    `\x1b[2J\x1b]0;pwned\x07`,
		"\x1b]52;c;aGk=\x1b\\":       `\x1b]52;c;aGk=\x1b\\`,
		"bad\xff\xfeutf8":            `bad\xff\xfeutf8`,
		"back\\slash":                `back\\slash`,
		"\x7fdel":                    `\x7fdel`,
		"\u202eevil":                 `\u202eevil`, // right-to-left override
		"\u009b31m":                  `\u009b31m`,  // the one-byte CSI of C1
		"/system.slice/café.service": "/system.slice/café.service",
	} {
		if got := Printable(in); got != want {
			t.Errorf("Printable(%q) = %q, want %q", in, got, want)
		}
	}
}

// A failure's explanation names the top holder: escaped, like the caller.
func TestFailureExplanationEscapesHolder(t *testing.T) {
	color.NoColor = true
	tx := NewText()
	e := &tracer.Event{Kind: tracer.KindFail, Time: when, Proto: tracer.TCP, Family: tracer.IPv4, Via: tracer.ViaConnect, PID: 7,
		Comm: "x\ty", Errno: syscall.EADDRNOTAVAIL, LocalAddr: netip.MustParseAddr("127.0.0.1"), RemoteAddr: netip.MustParseAddr("127.0.0.1"), RemotePort: 80,
		Pressure: &tracer.Pressure{InUse: 1, RangeSize: 1, TopHolders: []tracer.Holder{{PID: 9, Comm: "\x1b]0;pwned\x07", Count: 1}}}}
	line := tx.Line(e)
	if !strings.Contains(line, `most held by \x1b]0;pwned\x07[9]: 1`) || !strings.Contains(line, ` x\ty `) {
		t.Errorf("fail line: %q", line)
	}
	if strings.ContainsAny(line, "\x1b\x07\t") {
		t.Errorf("a control byte reached the line: %q", line)
	}
}
