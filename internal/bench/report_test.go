package bench

import (
	"bufio"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/porttrace/porttrace/internal/output"
	pt "github.com/porttrace/porttrace/tracer"
)

var reportMB = flag.Int("report-mb", 1024, "size of the recording BenchmarkReport reads, in MiB")

// writeRecording writes a synthetic recording of about mb MiB: 2000
// processes taking and releasing ports of one range, with some failures.
func writeRecording(b *testing.B, path string, mb int) (events int) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	t := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	start := pt.Event{Kind: pt.KindStart, Time: t, Start: &pt.StartInfo{Version: "bench", Hooks: []string{"x"}, Filter: "all",
		Namespaces: []pt.Namespace{{Inode: 4026531840, Range: pt.PortRange{Lo: 32768, Hi: 60999}}}}}
	var buf []byte
	buf = output.AppendJSON(buf, &start)
	w.Write(buf)
	written := int64(len(buf))
	open := map[uint16]pt.Event{}
	laddr, raddr := netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("10.9.8.7")
	for i := 0; written < int64(mb)<<20; i++ {
		t = t.Add(50 * time.Microsecond)
		port := uint16(32768 + (i*7919)%28232)
		var e pt.Event
		if a, ok := open[port]; ok {
			e = a
			e.Kind, e.Time, e.Held, e.State = pt.KindRelease, t, t.Sub(a.Time), 6
			delete(open, port)
		} else if i%997 == 0 {
			e = pt.Event{Kind: pt.KindFail, Time: t, Proto: pt.TCP, Family: pt.IPv4, Via: pt.ViaConnect, PID: uint32(1000 + i%2000),
				Comm: "worker", RemoteAddr: raddr, RemotePort: 443, Errno: syscall.EADDRNOTAVAIL, NetNS: 4026531840}
		} else {
			e = pt.Event{Kind: pt.KindAlloc, Time: t, Proto: pt.TCP, Family: pt.IPv4, Port: port, LocalAddr: laddr, RemoteAddr: raddr,
				RemotePort: 443, Via: pt.ViaConnect, Ephemeral: true, PID: uint32(1000 + i%2000), TID: uint32(1000 + i%2000), Comm: fmt.Sprintf("worker-%d", i%2000),
				Cgroup: "/system.slice/app.service", CgroupID: 4242, NetNS: 4026531840}
			open[port] = e
		}
		buf = output.AppendJSON(buf[:0], &e)
		w.Write(buf)
		written += int64(len(buf))
		events++
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	return events
}

// BenchmarkReport runs `porttrace report` on a large recording and reports
// its throughput and the largest resident memory it needed.
func BenchmarkReport(b *testing.B) {
	if b.N > 1 {
		b.Skip("run with -benchtime 1x: one pass over the recording is the measurement")
	}
	bin, _ := filepath.Abs(*binary)
	path := filepath.Join(b.TempDir(), "big.jsonl")
	events := writeRecording(b, path, *reportMB)
	st, _ := os.Stat(path)
	for _, format := range []string{"text", "json", "html"} {
		cmd := exec.Command(bin, "report", "--format", format, path)
		cmd.Stdout = nil
		cmd.Stderr = os.Stderr
		t0 := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("porttrace report: %v", err)
		}
		el := time.Since(t0)
		rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // KiB
		mbps := float64(st.Size()) / (1 << 20) / el.Seconds()
		b.ReportMetric(mbps, format+"-MB/s")
		b.ReportMetric(float64(rss)/1024, format+"-maxRSS-MiB")
		resultsMu.Lock()
		reportLines = append(reportLines, fmt.Sprintf("report --format %-4s on %d MiB (%d events): %.1fs, %.0f MiB/s, peak RSS %.0f MiB",
			format, st.Size()>>20, events, el.Seconds(), mbps, float64(rss)/1024))
		resultsMu.Unlock()
	}
}

var reportLines []string
