package cli

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/porttrace/porttrace/internal/output"
	"github.com/porttrace/porttrace/internal/report"
	"github.com/porttrace/porttrace/tracer"
)

// writeSummary prints, at exit, what each process did. When events were
// lost, a lost release leaves its port counted as held: the peak is then
// an upper bound, and says so.
func writeSummary(w io.Writer, b *report.Builder, lost uint64) {
	r := b.Finish()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	// The POD column only where pods took ports: a host's summary stays as it was.
	pods := slices.ContainsFunc(r.Processes, func(p report.Process) bool { return p.Pod != "" })
	head := "\nPID\tCOMM\tALLOCS\tHELD p50\tp99\tmax\tPEAK AT ONCE\tFAILED"
	if pods {
		head += "\tPOD"
	}
	fmt.Fprintln(tw, head)
	for _, p := range r.Processes {
		d := func(v time.Duration) string {
			if p.Releases == 0 {
				return "-"
			}
			return output.Duration(v)
		}
		peak := fmt.Sprint(p.Peak)
		if lost > 0 {
			peak = "≤" + peak
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\t%s\t%d", p.PID, output.Printable(p.Comm), p.Allocs+p.Existing, d(p.HeldP50), d(p.HeldP99), d(p.HeldMax), peak, p.Fails)
		if pods {
			pod := output.WorkloadText(tracer.Workload{Pod: p.Pod, Namespace: p.Namespace, Container: p.Container})
			if pod == "" {
				pod = "-"
			}
			fmt.Fprintf(tw, "\t%s", pod)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	if lost > 0 {
		fmt.Fprintf(w, "%d events were lost: a lost release keeps its port counted as held, so PEAK AT ONCE is an upper bound (≤).\n", lost)
	}
	for _, l := range r.Limits {
		fmt.Fprintln(w, l)
	}
}

// lostAdvice says what to do about events the kernel dropped, with the
// buffer's real size.
func lostAdvice(lost uint64, buffer int) string {
	return fmt.Sprintf("porttrace: %d events were dropped in the kernel because the ring buffer was full: raise --buffer (now %s)", lost, sizeString(buffer))
}

// sizeString writes a buffer size as --buffer takes it: 4K, 32M, 1G.
func sizeString(n int) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dG", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dM", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%dK", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
