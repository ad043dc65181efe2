package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/porttrace/porttrace/internal/output"
)

// WriteText renders the report for people.
func WriteText(w io.Writer, r *Report) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "porttrace report of %s\n", output.Printable(strings.Join(r.Files, ", ")))
	if r.Span.Start.IsZero() {
		fmt.Fprintf(b, "No events matched (filter: %s).\n", output.Printable(r.Filter))
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(b, "Covers %s to %s UTC (%s); filter: %s.\n", r.Span.Start.Format("2006-01-02 15:04:05.000"),
		r.Span.End.Format("2006-01-02 15:04:05.000"), output.Duration(r.Span.Duration), output.Printable(r.Filter))
	fmt.Fprintf(b, "%d events; %d lost in the kernel", r.Events, r.Lost)
	if r.Truncated {
		b.WriteString("; a file was cut short (read up to its last whole line)")
	}
	if r.Duplicates > 0 {
		fmt.Fprintf(b, "; %d repeated events counted once", r.Duplicates)
	}
	b.WriteString(".\n")
	for _, l := range r.Limits {
		b.WriteString(l + "\n")
	}
	for _, d := range r.Damaged {
		fmt.Fprintf(b, "%s is damaged (%s): only its first %d lines (%d of %d bytes) are in this report.\n",
			output.Printable(d.File), output.Printable(d.Err), d.Lines, d.Bytes, d.Size)
	}

	b.WriteString("\nPROCESSES\n")
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PID\tCOMM\tALLOCS\tHELD AT START\tRELEASES\tHELD p50\tp99\tmax\tPEAK AT ONCE\tFAILED\tPOD")
	for _, p := range r.Processes {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%d\t%d\t%s\n", p.PID, output.Printable(p.Comm), p.Allocs, p.Existing, p.Releases,
			dur(p.HeldP50, p.Releases), dur(p.HeldP99, p.Releases), dur(p.HeldMax, p.Releases), p.Peak, p.Fails, dash(output.WorkloadText(p.workload())))
	}
	tw.Flush()

	for _, p := range r.Ports {
		fmt.Fprintf(b, "\nPORT %d/%s: %d hold%s\n", p.Port, p.Proto, len(p.Holds), plural(len(p.Holds)))
		tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PID\tCOMM\tNETNS\tFROM\tTO\tHELD\tVIA\tENDED\tREMOTE")
		for _, h := range p.Holds {
			to, ended := "(still held)", "-"
			if h.End != nil {
				to, ended = h.End.Format("15:04:05.000000"), h.State
			}
			fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", h.PID, output.Printable(h.Comm), h.NetNS, h.Start.Format("15:04:05.000000"), to,
				output.Duration(time.Duration(h.Held)), h.Via, ended, dash(h.Remote))
		}
		tw.Flush()
	}

	fmt.Fprintf(b, "\nFAILURES: %d", r.FailTotal)
	if uint64(len(r.Failures)) < r.FailTotal {
		fmt.Fprintf(b, " (the first %d listed)", len(r.Failures))
	}
	b.WriteString("\n")
	if len(r.Failures) > 0 {
		tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tPID\tCOMM\tPROTO\tVIA\tTO\tERRNO\tPORTS HELD\tNETNS\tPOD")
		for _, f := range r.Failures {
			inUse := fmt.Sprint(f.InUse)
			if rs := r.rangeOf(f.NetNS); rs != nil && rs.Range[0] != 0 {
				inUse += fmt.Sprintf(" of %d", int(rs.Range[1])-int(rs.Range[0])+1)
			}
			when := f.Time.Format("15:04:05.000000")
			if f.Deferred {
				when += "*"
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", when, f.PID, output.Printable(f.Comm), f.Proto, f.Via, dash(f.Remote), f.Errno, inUse, f.NetNS,
				dash(output.WorkloadText(f.workload())))
		}
		tw.Flush()
		b.WriteString("(* seen when the socket was closed or the call retried; the time is the call's.)\n")
	}

	if len(r.Ranges) > 0 {
		b.WriteString("\nRANGES\n")
		tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NETNS\tNAME\tRANGE\tPEAK HELD\tPOD")
		for _, rs := range r.Ranges {
			rg := "?"
			if rs.Range[0] != 0 {
				rg = fmt.Sprintf("%d-%d (%d ports)", rs.Range[0], rs.Range[1], int(rs.Range[1])-int(rs.Range[0])+1)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\n", rs.NetNS, dash(output.Printable(rs.Name)), rg, rs.Peak, dash(output.WorkloadText(rs.workload())))
		}
		tw.Flush()
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Report) rangeOf(netns uint32) *RangeSeries {
	for i := range r.Ranges {
		if r.Ranges[i].NetNS == netns {
			return &r.Ranges[i]
		}
	}
	return nil
}

func dur(d time.Duration, n uint64) string {
	if n == 0 {
		return "-"
	}
	return output.Duration(d)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
