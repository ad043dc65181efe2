package output

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/fatih/color"
	"github.com/porttrace/porttrace/tracer"
)

// Column widths of the text format. Addresses longer than their column
// (long IPv6) push the rest of the line right rather than being cut.
const (
	wTime  = 15
	wEvent = 7
	wProto = 5
	wPort  = 5
	wVia   = 8
	wPID   = 7
	wComm  = 15
	wAddr  = 21
)

// Header is the first line of the text format.
func Header() string {
	return fmt.Sprintf("%-*s %-*s %-*s %*s %-*s %*s %-*s %-*s   %-*s %s",
		wTime, "TIME", wEvent, "EVENT", wProto, "PROTO", wPort, "PORT", wVia, "VIA",
		wPID, "PID", wComm, "COMM", wAddr, "LOCAL", wAddr, "REMOTE", "HELD/ERROR")
}

// Text renders events as aligned columns, coloured by kind when enabled.
type Text struct {
	alloc, release, fail, lost *color.Color
	Local                      *time.Location
}

// NewText returns a Text renderer; colour follows fatih/color's global
// switch, which the CLI sets from --color, NO_COLOR and the terminal.
func NewText() *Text {
	t := &Text{
		alloc:   color.New(color.FgGreen),
		release: color.New(color.FgCyan),
		fail:    color.New(color.FgRed, color.Bold),
		lost:    color.New(color.FgYellow, color.Bold),
		Local:   time.Local,
	}
	// color.New turns itself off under NO_COLOR; a --color always that
	// cleared the global switch outranks the environment.
	if !color.NoColor {
		for _, c := range []*color.Color{t.alloc, t.release, t.fail, t.lost} {
			c.EnableColor()
		}
	}
	return t
}

// Line renders one alloc, release, fail or lost event, without a newline.
func (t *Text) Line(e *tracer.Event) string {
	ts := e.Time.In(t.Local).Format("15:04:05.000000")
	if e.Kind == tracer.KindLost {
		return t.lost.Sprintf("%-*s %-*s %d events were dropped: the ring buffer was full (try --buffer)", wTime, ts, wEvent, "lost", e.Count)
	}
	if e.Kind == tracer.KindClock {
		return t.lost.Sprintf("%-*s %-*s the wall clock stepped by %s: times from here on follow it; hold times are unaffected", wTime, ts, wEvent, "clock", signedDuration(e.Step))
	}
	kind := fmt.Sprintf("%-*s", wEvent, e.Kind)
	switch e.Kind {
	case tracer.KindAlloc:
		kind = t.alloc.Sprint(kind)
	case tracer.KindRelease, tracer.KindFree:
		kind = t.release.Sprint(kind)
	case tracer.KindFail:
		kind = t.fail.Sprint(kind)
	case tracer.KindSlow:
		kind = t.lost.Sprint(kind)
	}
	port := "-"
	if e.Port != 0 {
		port = strconv.Itoa(int(e.Port))
	}
	local := endpoint(e.LocalAddr, e.Port)
	remote := endpoint(e.RemoteAddr, e.RemotePort)
	var last string
	switch e.Kind {
	case tracer.KindAlloc:
		if !e.Ephemeral {
			last = "explicit port"
		}
	case tracer.KindRelease:
		last = Duration(e.Held)
		if e.Proto == tracer.TCP && e.State != 0 {
			last += " " + e.State.String()
		}
	case tracer.KindFail:
		last = t.fail.Sprint(ErrnoName(e.Errno))
		var ctx []string
		if e.Counted {
			noun := "sockets"
			if e.HeldAtCall == 1 {
				noun = "socket"
			}
			ctx = append(ctx, fmt.Sprintf("%d %s held the range at the call", e.HeldAtCall, noun))
		}
		if p := e.Pressure; p != nil {
			c := fmt.Sprintf("%s: %d of %d ports in use, %d in TIME_WAIT", readWhen(p.ReadAfter), p.InUse, p.RangeSize, p.TimeWait)
			if e.Via == tracer.ViaConnect {
				c += fmt.Sprintf(", %d to this destination", p.DestInUse)
			}
			if len(p.TopHolders) > 0 {
				h := p.TopHolders[0]
				c += fmt.Sprintf(", most held by %s[%d]: %d", Printable(h.Comm), h.PID, h.Count)
			}
			ctx = append(ctx, c)
		}
		if len(ctx) > 0 {
			last += " (" + strings.Join(ctx, "; ") + ")"
		}
	case tracer.KindFree:
		last = Duration(e.Held) + " in all"
		if e.Estimated {
			last += " (end of TIME_WAIT estimated)"
		}
	case tracer.KindSlow:
		last = "port search took " + Duration(e.Search)
	}
	if w := WorkloadText(e.Workload); w != "" {
		last += "  [" + w + "]"
	}
	return strings.TrimRight(fmt.Sprintf("%-*s %s %-*s %*s %-*s %*d %s %-*s → %-*s %s",
		wTime, ts, kind, wProto, protoFamily(e), wPort, port, wVia, e.Via,
		wPID, e.PID, PadColumns(Printable(e.Comm), wComm), wAddr, local, wAddr, remote, last), " ")
}

// readWhen says when a failure's namespace was read, from the failure.
func readWhen(d time.Duration) string {
	if d < 0 {
		return Duration(-d) + " before"
	}
	return Duration(d) + " after"
}

func signedDuration(d time.Duration) string {
	if d < 0 {
		return "-" + Duration(-d)
	}
	return "+" + Duration(d)
}

func protoFamily(e *tracer.Event) string {
	s := e.Proto.String()
	switch e.Family {
	case tracer.IPv4:
		s += "4"
	case tracer.IPv6:
		s += "6"
	}
	return s
}

func endpoint(a netip.Addr, port uint16) string {
	if !a.IsValid() {
		return "-"
	}
	if a.IsUnspecified() && port == 0 {
		return "*"
	}
	p := "*"
	if port != 0 {
		p = strconv.Itoa(int(port))
	}
	if a.Is6() {
		return "[" + a.String() + "]:" + p
	}
	return a.String() + ":" + p
}

// Duration prints d with three significant digits in the largest unit that
// keeps it at or above 1: 250µs, 100ms, 1.50s, 2m03s.
func Duration(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return strconv.FormatInt(int64(d), 10) + "ns"
	case d < time.Millisecond:
		return sig3(float64(d)/1e3) + "µs"
	case d < time.Second:
		return sig3(float64(d)/1e6) + "ms"
	case d < time.Minute:
		return sig3(float64(d)/1e9) + "s"
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	}
	return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

func sig3(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}
