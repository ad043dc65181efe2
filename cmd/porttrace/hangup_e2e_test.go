package main_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/porttrace/porttrace/internal/nstest"
)

// recorded returns the lines of a recording, and fails unless it runs from
// its start line to its stop line.
func recorded(t *testing.T, file string) []string {
	t.Helper()
	b, _ := os.ReadFile(file)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 || jsonLine(t, lines[0])["event"] != "start" || jsonLine(t, lines[len(lines)-1])["event"] != "stop" {
		t.Fatalf("the recording does not run from start to stop: %d lines, last %.80q", len(lines), lines[len(lines)-1])
	}
	return lines
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return 0
}

// A hang-up (ssh dropped, terminal closed) stops a recording cleanly, with
// every event and the stop line.
func TestSIGHUPStopsCleanly(t *testing.T) {
	ns := nstest.New(t, 46000, 46999)
	file := filepath.Join(t.TempDir(), "trace.jsonl")
	cmd, stderr := recorder(t, file)
	ns.Python(t, nstest.Script(), "many-udp", "127.0.0.1", "9999", "300")
	time.Sleep(300 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGHUP)
	if code := exitCode(cmd.Wait()); code != 0 {
		t.Fatalf("SIGHUP: exit %d: %s", code, stderr.String())
	}
	if n := len(recorded(t, file)); n < 2+600 {
		t.Errorf("%d lines recorded; want the start, 300 allocs, 300 releases and the stop", n)
	}
}

// Under nohup (SIGHUP ignored), a hang-up does not stop the recording.
func TestIgnoredSIGHUPKeepsRecording(t *testing.T) {
	nstest.RequireRoot(t)
	file := filepath.Join(t.TempDir(), "trace.jsonl")
	cmd := exec.Command("sh", "-c", `trap "" HUP; exec "$0" "$@"`, binary, "--hooks", nstest.Hooks(), "--no-existing", "-o", file)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	time.Sleep(nstest.Scaled(time.Second))
	cmd.Process.Signal(syscall.SIGHUP)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("an ignored SIGHUP stopped porttrace: %v: %s", err, stderr.String())
	case <-time.After(time.Second):
	}
	cmd.Process.Signal(syscall.SIGINT)
	if code := exitCode(<-done); code != 0 {
		t.Fatalf("SIGINT: exit %d: %s", code, stderr.String())
	}
	recorded(t, file)
}

// porttrace -o FILE | head -1: the printing ends, the recording goes on and
// says so.
func TestClosedStdoutKeepsRecording(t *testing.T) {
	ns := nstest.New(t, 46000, 46999)
	file := filepath.Join(t.TempDir(), "trace.jsonl")
	cmd := tracing("--no-existing", "--format", "json", "-o", file)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	out.Close() // as head -1 does
	ns.Python(t, nstest.Script(), "many-udp", "127.0.0.1", "9999", "300")
	time.Sleep(500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	if code := exitCode(cmd.Wait()); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if want := "porttrace: standard output was closed: printing stopped; recording to " + file + " goes on\n"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q; want %q", stderr.String(), want)
	}
	if n := len(recorded(t, file)); n < 2+600 {
		t.Errorf("%d lines recorded; want the start, 300 allocs, 300 releases and the stop", n)
	}
}

// A stdout that fails (a full disk) is an error, exit 1, with the reason.
func TestStdoutWriteErrorIsReported(t *testing.T) {
	nstest.RequireRoot(t)
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	cmd := tracing("-d", nstest.Scaled(5*time.Second).String())
	cmd.Stdout = full
	var stderr strings.Builder
	cmd.Stderr = &stderr
	began := time.Now()
	code := exitCode(cmd.Run())
	msg := stderr.String()
	if code != 1 || !strings.Contains(msg, "porttrace: write standard output: write /dev/stdout: no space left on device: printing stopped; tracing stopped\n") {
		t.Errorf("stdout on /dev/full: exit %d, stderr %q", code, msg)
	}
	if took := time.Since(began); took > nstest.Scaled(4*time.Second) {
		t.Errorf("tracing went on %v with nowhere to print", took)
	}
	noStackTrace(t, msg)
}

// porttrace report ... | head: the report ends quietly when its reader
// goes, as it did when SIGPIPE killed it, but with status 0.
func TestReportIntoAClosedPipeEndsQuietly(t *testing.T) {
	p := filepath.Join(t.TempDir(), "trace.jsonl")
	var b strings.Builder
	for i := 0; i < 20000; i++ {
		fmt.Fprintf(&b, `{"event":"fail","time":"2026-11-25T03:00:00.%09dZ","proto":"tcp","family":"ipv4","port":0,"via":"connect","pid":%d,"comm":"x","netns":1,"errno":"EADDRNOTAVAIL"}`+"\n", i, i)
	}
	os.WriteFile(p, []byte(b.String()), 0o600)
	cmd := exec.Command(binary, "report", p)
	out, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.Start()
	bufio.NewReader(out).ReadString('\n')
	out.Close()
	if code := exitCode(cmd.Wait()); code != 0 || stderr.Len() != 0 {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

// openPTY returns a terminal's two ends, as sshd makes for a session.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err == nil {
		err = unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0)
	}
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

// An ssh session dropped: the terminal is gone (writes fail) and SIGHUP
// arrives. The run ends cleanly, status 0, the recording whole.
func TestHangUpWithTheTerminalGone(t *testing.T) {
	ns := nstest.New(t, 46000, 46999)
	file := filepath.Join(t.TempDir(), "trace.jsonl")
	master, slave := openPTY(t)
	cmd := tracing("--no-existing", "-o", file)
	cmd.Stdout, cmd.Stderr = slave, slave
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	slave.Close()
	go io.Copy(io.Discard, master)
	time.Sleep(nstest.Scaled(time.Second))
	master.Close() // the terminal goes: its writes now fail with EIO
	ns.Python(t, nstest.Script(), "many-udp", "127.0.0.1", "9999", "100")
	time.Sleep(300 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGHUP)
	if code := exitCode(cmd.Wait()); code != 0 {
		t.Fatalf("SIGHUP with the terminal gone: exit %d", code)
	}
	if n := len(recorded(t, file)); n < 2+200 {
		t.Errorf("%d lines recorded; want the start, 100 allocs, 100 releases and the stop", n)
	}
}
