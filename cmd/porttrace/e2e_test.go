package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/porttrace/porttrace/internal/nstest"
)

var binary string

// TestMain builds the binary under test, or takes $PORTTRACE_BIN (as the
// second kernel's VM does, where no compiler runs).
func TestMain(m *testing.M) {
	if binary = os.Getenv("PORTTRACE_BIN"); binary != "" {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "porttrace-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "porttrace")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build porttrace:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// tracing is porttrace run with args, in the hook tier the tests ask for.
func tracing(args ...string) *exec.Cmd {
	if len(args) == 0 || !map[string]bool{"report": true, "top": true, "serve": true, "doctor": true}[args[0]] {
		args = append([]string{"--hooks", nstest.Hooks()}, args...)
	}
	return exec.Command(binary, args...)
}

func runBin(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := tracing(args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func noStackTrace(t *testing.T, s string) {
	t.Helper()
	if strings.Contains(s, "goroutine ") || strings.Contains(s, "panic:") || strings.Contains(s, ".go:") {
		t.Errorf("a Go stack trace reached the user:\n%s", s)
	}
}

func TestBadFlagsExit2(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--port", "70000"}, "--port"},
		{[]string{"--format", "xml"}, "--format"},
		{[]string{"--nope"}, "--nope"},
	} {
		out, errs, code := runBin(t, c.args...)
		if code != 2 || out != "" || !strings.Contains(errs, c.want) || strings.Count(errs, "\n") > 2 {
			t.Errorf("porttrace %v: exit %d, stderr %q; want exit 2 and a sentence naming %s", c.args, code, errs, c.want)
		}
		noStackTrace(t, errs)
	}
	if out, _, code := runBin(t, "--help"); code != 0 || !strings.Contains(out, "Usage: porttrace") {
		t.Errorf("--help: exit %d", code)
	}
}

func TestNotRootSaysSudo(t *testing.T) {
	nstest.RequireRoot(t) // to become someone else
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv (util-linux) is not installed")
	}
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", binary)
	var e bytes.Buffer
	cmd.Stderr = &e
	err := cmd.Run()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("as nobody: %v, want exit 1", err)
	}
	msg := e.String()
	for _, want := range []string{"sudo", "CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not name %s", msg, want)
		}
	}
	noStackTrace(t, msg)
}

// trace is a running porttrace with its stdout lines collected.
type trace struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr bytes.Buffer
}

func startTrace(t *testing.T, args ...string) *trace {
	t.Helper()
	nstest.RequireRoot(t)
	tr := &trace{cmd: tracing(args...), lines: make(chan string, 4096)}
	out, err := tr.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	tr.cmd.Stderr = &tr.stderr
	if err := tr.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.cmd.Process.Kill(); tr.cmd.Wait() })
	go func() {
		defer close(tr.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			tr.lines <- sc.Text()
		}
	}()
	return tr
}

func (tr *trace) next(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-tr.lines:
		if !ok {
			t.Fatalf("porttrace ended early: %s", tr.stderr.String())
		}
		return l
	case <-time.After(nstest.Scaled(10 * time.Second)):
		t.Fatalf("porttrace printed nothing for 10s")
	}
	return ""
}

// stop sends sig and returns the rest of stdout and the exit code.
func (tr *trace) stop(t *testing.T, sig syscall.Signal) ([]string, int) {
	t.Helper()
	tr.cmd.Process.Signal(sig)
	var rest []string
	for l := range tr.lines {
		rest = append(rest, l)
	}
	err := tr.cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	return rest, code
}

func jsonLine(t *testing.T, l string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(l), &m); err != nil {
		t.Fatalf("not a JSON line: %q", l)
	}
	return m
}

func num(m map[string]any, k string) int64 { v, _ := m[k].(float64); return int64(v) }

func TestJSONTraceEndToEnd(t *testing.T) {
	ns := nstest.New(t, 41000, 41999)
	file := filepath.Join(t.TempDir(), "trace.jsonl")
	tr := startTrace(t, "--format", "json", "-o", file)
	start := jsonLine(t, tr.next(t))
	if start["event"] != "start" || len(start["hooks"].([]any)) == 0 {
		t.Fatalf("first line is not a start event with hooks: %v", start)
	}
	found := false
	for _, n := range start["namespaces"].([]any) {
		m := n.(map[string]any)
		if uint32(num(m, "netns")) == ns.Inode {
			r := m["range"].([]any)
			found = r[0] == 41000.0 && r[1] == 41999.0 && m["name"] == ns.Name
		}
	}
	if !found {
		t.Errorf("start event does not list namespace %s (%d) with its range 41000-41999: %v", ns.Name, ns.Inode, start["namespaces"])
	}

	rs := ns.Python(t, nstest.Script(), "udp", "sendto", "4", "127.0.0.1", "9999", "100")
	pid, port := rs[0].Int("pid"), rs[0].Int("port")
	var got []map[string]any
	for len(got) < 2 {
		m := jsonLine(t, tr.next(t))
		if uint32(num(m, "netns")) == ns.Inode && num(m, "port") == port {
			got = append(got, m)
		}
	}
	if got[0]["event"] != "alloc" || num(got[0], "pid") != pid || got[0]["proto"] != "udp" || got[0]["family"] != "ipv4" ||
		got[0]["via"] != "sendmsg" || got[0]["ephemeral"] != true || got[0]["raddr"] != "127.0.0.1" || num(got[0], "rport") != 9999 {
		t.Errorf("alloc: %v", got[0])
	}
	held := time.Duration(num(got[1], "held_ns"))
	prog := time.Duration(rs[0].Int("t_release") - rs[0].Int("t_alloc"))
	if got[1]["event"] != "release" || num(got[1], "pid") != pid || held < prog || held > prog+50*time.Millisecond {
		t.Errorf("release: %v (program held it %v)", got[1], prog)
	}
	if _, err := time.Parse(time.RFC3339Nano, got[0]["time"].(string)); err != nil || !strings.HasSuffix(got[0]["time"].(string), "Z") {
		t.Errorf("time %q is not RFC 3339 UTC", got[0]["time"])
	}

	rest, code := tr.stop(t, syscall.SIGINT)
	if code != 0 || len(rest) == 0 {
		t.Fatalf("SIGINT: exit %d, %d more lines: %s", code, len(rest), tr.stderr.String())
	}
	stop := jsonLine(t, rest[len(rest)-1])
	if stop["event"] != "stop" || num(stop, "events") < 2 || num(stop, "lost") != 0 {
		t.Errorf("last line: %v", stop)
	}
	if !strings.Contains(tr.stderr.String(), "0 lost") {
		t.Errorf("no summary on stderr: %q", tr.stderr.String())
	}

	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("recording: %v, mode %v; want 0600", err, st.Mode().Perm())
	}
	data, _ := os.ReadFile(file)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if jsonLine(t, lines[0])["event"] != "start" || jsonLine(t, lines[len(lines)-1])["event"] != "stop" {
		t.Errorf("recording does not run from start to stop")
	}
	if num(jsonLine(t, lines[len(lines)-1]), "events") != num(stop, "events") {
		t.Errorf("recording and stdout disagree on the totals")
	}

	// A second run must not overwrite the recording.
	_, errs, code := runBin(t, "-o", file, "-d", "1s")
	if code == 0 || !strings.Contains(errs, "already exists") || !strings.Contains(errs, "--force") {
		t.Errorf("second run on the same file: exit %d, %q", code, errs)
	}
	if again, _ := os.ReadFile(file); !bytes.Equal(again, data) {
		t.Errorf("the recording was changed")
	}
}

func TestTextPortFilterAndDuration(t *testing.T) {
	ns := nstest.New(t, 42000, 42999)
	tr := startTrace(t, "--port", "42424", "--color", "never", "-d", nstest.Scaled(4*time.Second).String())
	header := tr.next(t)
	if !strings.HasPrefix(header, "TIME") || !strings.Contains(header, "PORT") || !strings.Contains(header, "REMOTE") {
		t.Fatalf("first line is not the header: %q", header)
	}
	time.Sleep(300 * time.Millisecond) // the header is written before the hooks finish attaching
	other := ns.Python(t, nstest.Script(), "bind", "udp", "4", "127.0.0.1", "0", "10")
	r := ns.Python(t, nstest.Script(), "bind", "tcp", "4", "127.0.0.1", "42424", "50")
	var lines []string
	for len(lines) < 2 {
		l := tr.next(t)
		if strings.Contains(l, "42424") {
			lines = append(lines, l)
		} else if strings.Contains(l, fmt.Sprintf(" %d ", other[0].Int("port"))) {
			t.Errorf("--port 42424 printed another port: %q", l)
		}
	}
	pid := fmt.Sprint(r[0].Int("pid"))
	if f := strings.Fields(lines[0]); f[1] != "alloc" || f[2] != "tcp4" || f[3] != "42424" || f[4] != "bind" || f[5] != pid || f[6] != "python3" {
		t.Errorf("alloc line: %q", lines[0])
	}
	if f := strings.Fields(lines[1]); f[1] != "release" || f[5] != pid || !strings.HasSuffix(lines[1], "CLOSE") {
		t.Errorf("release line: %q", lines[1])
	}
	// -d ends the trace by itself.
	done := make(chan error, 1)
	go func() {
		for range tr.lines {
		}
		done <- tr.cmd.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("porttrace -d 4s: %v: %s", err, tr.stderr.String())
		}
	case <-time.After(nstest.Scaled(15 * time.Second)):
		t.Fatal("porttrace -d still running 11s after it should have ended")
	}
	if !strings.Contains(tr.stderr.String(), "events (") {
		t.Errorf("no closing summary on stderr: %q", tr.stderr.String())
	}
}

func TestSIGTERMStopsCleanly(t *testing.T) {
	tr := startTrace(t, "--format", "json")
	if m := jsonLine(t, tr.next(t)); m["event"] != "start" {
		t.Fatalf("first line: %v", m)
	}
	rest, code := tr.stop(t, syscall.SIGTERM)
	if code != 0 || len(rest) == 0 || jsonLine(t, rest[len(rest)-1])["event"] != "stop" {
		t.Errorf("SIGTERM: exit %d, last lines %v", code, rest)
	}
}
