package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/porttrace/porttrace/internal/nstest"
)

// rssKiB reads a process's resident and peak resident memory.
func rssKiB(pid int) (rss, hwm int) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "VmRSS:" {
			rss, _ = strconv.Atoi(f[1])
		}
		if len(f) >= 2 && f[0] == "VmHWM:" {
			hwm, _ = strconv.Atoi(f[1])
		}
	}
	return
}

// BenchmarkHold100k holds 100,000 ports across four namespaces under
// porttrace --summary (which keeps every open hold) and reports its memory.
func BenchmarkHold100k(b *testing.B) {
	if b.N > 1 {
		b.Skip("run with -benchtime 1x")
	}
	nstest.RequireRoot(b)
	// A process may hold 20,000 files here: 8 holders of 12,500 ports.
	const perProc, procsPerNS, nsCount = 12500, 2, 4
	var nss []*nstest.Netns
	for i := 0; i < nsCount; i++ {
		nss = append(nss, nstest.New(b, 30000, 59999))
	}
	tr := startTracer(b, *binary, nss[0], []string{"--summary"})
	_, before := rssKiB(tr.cmd.Process.Pid)
	t0 := time.Now()
	var procs []*nstest.Proc
	for _, ns := range nss {
		for j := 0; j < procsPerNS; j++ {
			procs = append(procs, ns.Start(b, "python3", nstest.Script(), "hold-udp", "127.0.0.1", fmt.Sprint(perProc)))
		}
	}
	held := 0
	for _, p := range procs {
		held += int(nstest.Next(b, p.Reports).Int("count"))
	}
	took := time.Since(t0)
	time.Sleep(2 * time.Second) // let porttrace take every event in
	rss, hwm := rssKiB(tr.cmd.Process.Pid)
	for _, p := range procs {
		p.Stdin.Close()
	}
	time.Sleep(2 * time.Second)
	lost := tr.finish(b)
	b.ReportMetric(float64(held), "ports")
	b.ReportMetric(float64(rss)/1024, "rss-MiB")
	b.ReportMetric(float64(hwm)/1024, "peak-MiB")
	resultsMu.Lock()
	reportLines = append(reportLines, fmt.Sprintf("%d ports held across %d namespaces (taken in %v): porttrace --summary RSS %.0f MiB (peak %.0f, %.0f before), %d events lost",
		held, nsCount, took.Round(time.Millisecond), float64(rss)/1024, float64(hwm)/1024, float64(before)/1024, lost))
	resultsMu.Unlock()
}
