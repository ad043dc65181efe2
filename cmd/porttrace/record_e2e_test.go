package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/porttrace/porttrace/internal/nstest"
)

// recorder is porttrace running with -o, its stdout thrown away.
func recorder(t *testing.T, file string, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	nstest.RequireRoot(t)
	cmd := tracing(append([]string{"--no-existing", "-o", file}, args...)...)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// Tracing has started once the start event is recorded, which the
	// announcement on stderr follows (with a busy host, a small
	// --rotate-size may have rotated the file by the time it is read).
	for deadline := time.Now().Add(nstest.Scaled(10 * time.Second)); ; time.Sleep(20 * time.Millisecond) {
		if strings.Contains(stderr.String(), "porttrace: tracing ") {
			return cmd, stderr
		}
		if time.Now().After(deadline) {
			t.Fatalf("porttrace did not start tracing within 10s: %s", stderr.String())
		}
	}
}

// syncBuffer is a buffer one goroutine writes while another reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type jsonReport struct {
	Events    uint64 `json:"events"`
	Lost      uint64 `json:"lost"`
	Truncated bool   `json:"truncated"`
	Damaged   []struct {
		File  string `json:"file"`
		Lines int    `json:"lines_read"`
	} `json:"damaged"`
	Duplicates uint64 `json:"duplicates"`
	Processes  []struct {
		PID      uint32 `json:"pid"`
		Comm     string `json:"comm"`
		Allocs   uint64 `json:"allocs"`
		Releases uint64 `json:"releases"`
		HeldMax  int64  `json:"held_max_ns"`
		Peak     int    `json:"peak"`
	} `json:"processes"`
	Ports []struct {
		Port  uint16     `json:"port"`
		Proto string     `json:"proto"`
		Holds []jsonHold `json:"holds"`
	} `json:"ports"`
	Failures []struct {
		PID   uint32 `json:"pid"`
		Errno string `json:"errno"`
		InUse int    `json:"in_use"`
		NetNS uint32 `json:"netns"`
	} `json:"failures"`
}

type jsonHold struct {
	PID   uint32     `json:"pid"`
	NetNS uint32     `json:"netns"`
	Start time.Time  `json:"start"`
	End   *time.Time `json:"end"`
	Held  int64      `json:"held_ns"`
	Via   string     `json:"via"`
	State string     `json:"state"`
}

func runReport(t *testing.T, args ...string) (jsonReport, string) {
	t.Helper()
	out, errs, code := runBin(t, append([]string{"report", "--format", "json"}, args...)...)
	if code != 0 {
		t.Fatalf("porttrace report %v: exit %d: %s", args, code, errs)
	}
	var r jsonReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out)
	}
	return r, errs
}

// Record real programs, kill the recorder with SIGKILL, and hold the report
// on what is left of the file to what the programs saw.
func TestRecordSurvivesSIGKILLAndReports(t *testing.T) {
	ns := nstest.New(t, 43000, 43999)
	ns.ListenHold(t, "127.0.0.1:8080")
	tight := nstest.New(t, 43500, 43500)
	tight.ListenHold(t, "127.0.0.1:8080")
	file := filepath.Join(t.TempDir(), "trace.jsonl")
	cmd, _ := recorder(t, file)

	var saw []nstest.Report
	for i := 0; i < 3; i++ {
		rs := ns.Python(t, nstest.Script(), "tcp-connect", "4", "127.0.0.1", "8080", fmt.Sprint(100+50*i), "close")
		saw = append(saw, rs[0])
	}
	ex := tight.Python(t, nstest.Script(), "exhaust", "tcp-connect", "127.0.0.1", "8080")
	time.Sleep(1500 * time.Millisecond) // the recorder syncs at least every second
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	r, warnings := runReport(t, file)
	byPID := map[uint32]int{}
	for i, p := range r.Processes {
		byPID[p.PID] = i
	}
	for _, s := range saw {
		i, ok := byPID[uint32(s.Int("pid"))]
		if !ok {
			t.Fatalf("pid %d is missing from the report (warnings: %s)", s.Int("pid"), warnings)
		}
		p := r.Processes[i]
		prog := s.Int("t_release") - s.Int("t_alloc")
		if p.Allocs != 1 || p.Releases != 1 || p.HeldMax < prog || p.HeldMax > prog+int64(50*time.Millisecond) {
			t.Errorf("pid %d: %+v; the program held its port %v", p.PID, p, time.Duration(prog))
		}
	}
	// The recording is host-wide: other tests may fail in their namespaces.
	var fails []string
	for _, f := range r.Failures {
		if f.NetNS == tight.Inode {
			fails = append(fails, fmt.Sprintf("%d %s %d", f.PID, f.Errno, f.InUse))
		}
	}
	if want := fmt.Sprintf("%d EADDRNOTAVAIL 1", ex[1].Int("pid")); len(fails) != 1 || fails[0] != want {
		t.Errorf("failures in the namespace: %v, want [%s] (pid, errno, ports in use)", fails, want)
	}

	// Every hold of one port, from when to when. The recording is
	// host-wide: tests of other packages, run at the same time in their own
	// namespaces, may take the same port; this program's hold is one.
	port := saw[1].Int("port")
	pr, _ := runReport(t, file, "--port", fmt.Sprint(port))
	if len(pr.Ports) != 1 {
		t.Fatalf("--port %d: %+v", port, pr.Ports)
	}
	var ours []jsonHold
	for _, h := range pr.Ports[0].Holds {
		if h.NetNS == ns.Inode {
			ours = append(ours, h)
		}
	}
	if len(ours) != 1 {
		t.Fatalf("--port %d: %d holds in the test's namespace, want 1: %+v", port, len(ours), pr.Ports[0].Holds)
	}
	h := ours[0]
	if int64(h.PID) != saw[1].Int("pid") || h.End == nil || h.Via != "connect" || h.State != "FIN_WAIT2" ||
		time.Duration(h.Held) != h.End.Sub(h.Start) {
		t.Errorf("hold of %d: %+v", port, h)
	}

	// Cut the file mid-record, as a power loss might: the report still reads
	// every whole record, says where it stopped, and says it was cut.
	data, _ := os.ReadFile(file)
	os.WriteFile(file, data[:len(data)-10], 0o600)
	cut, warnings := runReport(t, file)
	if !cut.Truncated || !strings.Contains(warnings, "incomplete") || !strings.Contains(warnings, "line") {
		t.Errorf("cut file: truncated=%v, warnings %q", cut.Truncated, warnings)
	}
	if cut.Events+1 != r.Events && cut.Events != r.Events {
		t.Errorf("cut file lost more than its last record: %d of %d events", cut.Events, r.Events)
	}
}

func TestRecordRotates(t *testing.T) {
	ns := nstest.New(t, 44000, 44999)
	dir := t.TempDir()
	file := filepath.Join(dir, "trace.jsonl")
	cmd, stderr := recorder(t, file, "--rotate-size", "16K", "--rotate-keep", "3", "--rotate-compress")
	ns.Python(t, nstest.Script(), "many-udp", "127.0.0.1", "9999", "600")
	time.Sleep(1500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("recorder: %v: %s", err, stderr)
	}
	matches, _ := filepath.Glob(file + "*")
	var gz int
	for _, m := range matches {
		if strings.HasSuffix(m, ".gz") {
			gz++
			if out, err := exec.Command("gzip", "-t", m).CombinedOutput(); err != nil {
				t.Errorf("%s is not a whole gzip file: %v %s", m, err, out)
			}
		} else if m != file {
			t.Errorf("unexpected file %s", m)
		}
	}
	if gz != 3 {
		t.Errorf("%d compressed files kept, want 3 (%v)", gz, matches)
	}
	r, warnings := runReport(t, append([]string{"--proto", "udp"}, matches...)...)
	if warnings != "" || r.Truncated {
		t.Errorf("reading rotated files: %q", warnings)
	}
	if r.Events == 0 || r.Lost != 0 {
		t.Errorf("rotated files report %d events, %d lost", r.Events, r.Lost)
	}
}

func TestRecordFullDisk(t *testing.T) {
	nstest.RequireRoot(t)
	ns := nstest.New(t, 45000, 45999)
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a small tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	file := filepath.Join(dir, "trace.jsonl")
	cmd, stderr := recorder(t, file)
	ns.Python(t, nstest.Script(), "many-udp", "127.0.0.1", "9999", "600")
	time.Sleep(1500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	msg := stderr.String()
	if err == nil || !strings.Contains(msg, "no space left on device") || !strings.Contains(msg, "recording stopped") ||
		!strings.Contains(msg, "events were not written") {
		t.Fatalf("full disk: %v, stderr %q; want an error that says recording stopped and how many events were not written", err, msg)
	}
	noStackTrace(t, msg)
	r, _ := runReport(t, file)
	if r.Events == 0 {
		t.Errorf("nothing readable in the recording that filled the disk")
	}
}
