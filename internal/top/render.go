package top

import (
	"fmt"
	"strings"

	"github.com/porttrace/porttrace/internal/output"
	"github.com/porttrace/porttrace/tracer"
)

// Render draws a snapshot in width x height cells, plain text: lines are
// cut to the width, and what does not fit the height is left out, saying so.
func Render(s *Snapshot, width, height int) []string {
	var lines []string
	add := func(format string, a ...any) { lines = append(lines, fit(fmt.Sprintf(format, a...), width)) }
	add("porttrace top — %s — %d namespaces%s — q quits", s.Time.Format("15:04:05"), len(s.NS), lostNote(s.Lost))
	add("%-10s %-8s %-11s %-10s %5s %4s %5s %4s %5s %6s", "NETNS", "NAME", "RANGE", "TCP", "USED", "TW", "FREE", "UDP", "NEW/s", "FAIL/s")

	// What the failures need at the bottom.
	failLines := 0
	if len(s.Failures) > 0 {
		failLines = 1 + min(len(s.Failures), 5)
	}
	room := height - len(lines) - failLines
	if 2*len(s.NS) > room {
		room-- // keep a line to say how many are not shown
	}
	shown := 0
	for _, n := range s.NS {
		need := 2
		if room < need {
			break
		}
		free := n.Size - n.TCP.InUse
		if free < 0 {
			free = 0
		}
		add("%-10d %-8s %-11s %s %5d %4d %5d %4d %5.0f %6.0f", n.Inode, cut(dash(output.Printable(n.Name)), 8), n.Range.String(),
			bar(n.TCP.InUse, n.TCP.TimeWait, n.Size, 8), n.TCP.InUse, n.TCP.TimeWait, free, n.UDP.InUse, n.AllocRate, n.FailRate)
		pod := ""
		if n.Pod != "" {
			pod = "pod " + n.Pod + " · " // already made printable
		}
		add("  %sholders: %s · cgroups: %s · to: %s", pod, counts(n.ByProc), counts(n.ByCgroup), counts(n.Dests))
		room -= need
		shown++
	}
	if shown < len(s.NS) {
		add("  (%d more namespaces: make the window taller)", len(s.NS)-shown)
	}
	if failLines > 0 {
		add("LAST FAILURES")
		for _, f := range s.Failures[:failLines-1] {
			line := fmt.Sprintf("%s %s[%d] %s %s %s", f.Time.Local().Format("15:04:05.000"), output.Printable(f.Comm), f.PID, f.Via,
				dest(f), output.ErrnoName(f.Errno))
			if p := f.Pressure; p != nil {
				line += fmt.Sprintf(" %d/%d used %d TW", p.InUse, p.RangeSize, p.TimeWait)
			}
			if w := output.WorkloadText(f.Workload); w != "" {
				line += " [" + w + "]"
			}
			add("%s", line)
		}
	}
	if len(lines) > height {
		lines = lines[:height]
	}
	return lines
}

// bar draws used ports (#) and the TIME_WAIT part of them (~) over size.
func bar(inUse, tw, size, w int) string {
	if size <= 0 {
		return "[" + strings.Repeat("?", w) + "]"
	}
	used := (inUse*w + size - 1) / size
	if used > w {
		used = w
	}
	t := (tw*w + size - 1) / size
	if t > used {
		t = used
	}
	return "[" + strings.Repeat("#", used-t) + strings.Repeat("~", t) + strings.Repeat(".", w-used) + "]"
}

func counts(cs []Count) string {
	if len(cs) == 0 {
		return "-"
	}
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s %d", output.Printable(c.Name), c.Count))
	}
	return strings.Join(parts, ", ")
}

func dest(e tracer.Event) string {
	if !e.RemoteAddr.IsValid() || e.RemotePort == 0 {
		return "-"
	}
	if e.RemoteAddr.Is6() {
		return fmt.Sprintf("[%s]:%d", e.RemoteAddr, e.RemotePort)
	}
	return fmt.Sprintf("%s:%d", e.RemoteAddr, e.RemotePort)
}

func lostNote(n uint64) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" — %d events lost", n)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func cut(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func fit(s string, width int) string {
	if width <= 0 {
		return s
	}
	return cut(s, width)
}
