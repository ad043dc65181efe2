package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/porttrace/porttrace/internal/report"
	"github.com/porttrace/porttrace/tracer"
)

func TestLostAdviceSaysTheRealBufferSize(t *testing.T) {
	for size, want := range map[int]string{4096: "now 4K)", 512 << 10: "now 512K)", 32 << 20: "now 32M)", 1 << 30: "now 1G)"} {
		if got := lostAdvice(3, size); !strings.HasSuffix(got, want) || !strings.Contains(got, "3 events were dropped") {
			t.Errorf("lostAdvice(3, %d) = %q, want it to end %q", size, got, want)
		}
	}
}

// With events lost, --summary marks the peak as an upper bound.
func TestSummaryPeakIsAnUpperBoundWhenEventsWereLost(t *testing.T) {
	b := report.NewBuilder(report.Filter{})
	at := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	for port := uint16(1); port <= 2; port++ {
		b.Add(tracer.Event{Kind: tracer.KindAlloc, Time: at, PID: 9, Comm: "curl", Port: 40000 + port, Proto: tracer.TCP})
	}
	var clean, lossy strings.Builder
	writeSummary(&clean, b, 0)
	writeSummary(&lossy, b, 5)
	if f := rowOf(clean.String(), "9"); len(f) < 8 || f[6] != "2" || strings.Contains(clean.String(), "upper bound") {
		t.Errorf("no loss: %q\n%s", f, clean.String())
	}
	if f := rowOf(lossy.String(), "9"); len(f) < 8 || f[6] != "≤2" || !strings.Contains(lossy.String(), "5 events were lost: a lost release keeps its port counted as held, so PEAK AT ONCE is an upper bound") {
		t.Errorf("5 lost: %q\n%s", f, lossy.String())
	}
}

func rowOf(out, first string) []string {
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == first {
			return f
		}
	}
	return nil
}

// --summary names each process's pod, escaped, when pods took ports; a
// host's summary has no POD column.
func TestSummaryNamesPods(t *testing.T) {
	b := report.NewBuilder(report.Filter{})
	at := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	b.Add(tracer.Event{Kind: tracer.KindAlloc, Time: at, PID: 9, Comm: "curl", Port: 40001, Proto: tracer.TCP,
		Workload: tracer.Workload{Pod: "shop\x1b[2J", Namespace: "prod", Container: "web"}})
	b.Add(tracer.Event{Kind: tracer.KindAlloc, Time: at, PID: 10, Comm: "sshd", Port: 40002, Proto: tracer.TCP})
	var out strings.Builder
	writeSummary(&out, b, 0)
	if f := rowOf(out.String(), "9"); len(f) != 9 || f[8] != `prod/shop\x1b[2J/web` {
		t.Errorf("the pod's process: %q\n%s", f, out.String())
	}
	if f := rowOf(out.String(), "10"); len(f) != 9 || f[8] != "-" {
		t.Errorf("the host's process: %q\n%s", f, out.String())
	}
	host := report.NewBuilder(report.Filter{})
	host.Add(tracer.Event{Kind: tracer.KindAlloc, Time: at, PID: 10, Comm: "sshd", Port: 40002, Proto: tracer.TCP})
	out.Reset()
	writeSummary(&out, host, 0)
	if strings.Contains(out.String(), "POD") {
		t.Errorf("a host's summary has a POD column:\n%s", out.String())
	}
}
