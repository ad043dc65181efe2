// Package nstest gives real-kernel tests a throwaway network namespace with
// its own ephemeral port range, and runs code and programs inside it.
package nstest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// RequireRoot skips t unless it runs as root: these tests load BPF programs
// and create network namespaces.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root to load BPF programs and create network namespaces (run the tests with sudo, as CI does)")
	}
}

// Hooks is the hook tier the tests ask for: $PORTTRACE_HOOKS (auto,
// precise or portable), so one build can be tested in each tier.
func Hooks() string {
	if h := os.Getenv("PORTTRACE_HOOKS"); h != "" {
		return h
	}
	return "auto"
}

// Scaled stretches a duration a test gives a run of porttrace by
// $PORTTRACE_TEST_TIMESCALE (a whole number, default 1): under software
// emulation, as on the second kernel in CI, programs start seconds late.
func Scaled(d time.Duration) time.Duration {
	if n, err := strconv.Atoi(os.Getenv("PORTTRACE_TEST_TIMESCALE")); err == nil && n > 1 {
		return d * time.Duration(n)
	}
	return d
}

// Netns is a network namespace made for one test.
type Netns struct {
	Name  string
	Inode uint32
}

var seq atomic.Uint32

// New creates a namespace with loopback up and ip_local_port_range set to
// lo..hi. It is deleted when the test ends.
func New(t testing.TB, lo, hi uint16) *Netns {
	t.Helper()
	RequireRoot(t)
	name := fmt.Sprintf("pt-%d-%d", os.Getpid(), seq.Add(1))
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	run(t, "ip", "netns", "exec", name, "sysctl", "-q", "-w", fmt.Sprintf("net.ipv4.ip_local_port_range=%d %d", lo, hi))
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join("/run/netns", name), &st); err != nil {
		t.Fatalf("stat namespace %s: %v", name, err)
	}
	return &Netns{Name: name, Inode: uint32(st.Ino)}
}

// NoTimeWaitReuse makes a port held by a timewait socket (TIME_WAIT, or
// FIN_WAIT2 after close) block a new connect to the same destination for as
// long as it waits. By default (tcp_tw_reuse=2) Linux reuses it for loopback
// once the clock has passed a whole second since the connection's last
// timestamp: a test that means such a port to stay taken would see its
// connect succeed whenever it ran slowly (under emulation).
func (n *Netns) NoTimeWaitReuse(t testing.TB) {
	t.Helper()
	run(t, "ip", "netns", "exec", n.Name, "sysctl", "-q", "-w", "net.ipv4.tcp_tw_reuse=0")
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// Do runs fn on an OS thread that has entered the namespace, and returns
// that thread's id. Sockets fn creates live in the namespace.
func (n *Netns) Do(t testing.TB, fn func(tid int)) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
		f, err := os.Open(filepath.Join("/run/netns", n.Name))
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter %s: %w", n.Name, err)
			return
		}
		fn(unix.Gettid())
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// Hosts gives the namespace its own /etc/hosts: ip netns exec mounts
// /etc/netns/NAME/hosts over it for the programs it runs.
func (n *Netns) Hosts(t testing.TB, content string) {
	t.Helper()
	dir := filepath.Join("/etc/netns", n.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Command prepares name args... to run inside the namespace.
func (n *Netns) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Report is one JSON line a helper program printed about what it saw.
type Report map[string]any

// Int returns a numeric field.
func (r Report) Int(k string) int64 {
	v, _ := r[k].(float64)
	return int64(v)
}

// Str returns a string field.
func (r Report) Str(k string) string {
	v, _ := r[k].(string)
	return v
}

// Python runs testdata/sockets.py SCENARIO ARGS... inside the namespace
// and returns the JSON lines it printed.
func (n *Netns) Python(t testing.TB, script string, args ...string) []Report {
	t.Helper()
	cmd := n.Command("python3", append([]string{script}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3 %s %s: %v\n%s", script, strings.Join(args, " "), err, stderr.String())
	}
	return parseReports(t, out)
}

// Proc is a helper program running in a namespace.
type Proc struct {
	Cmd     *exec.Cmd
	Stdin   io.WriteCloser
	Reports <-chan Report
}

// Start starts a helper program in the namespace, with a pipe to its stdin
// and a reader of its JSON lines; it is killed at the end of the test.
func (n *Netns) Start(t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	cmd := n.Command(name, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ch := make(chan Report, 64)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var r Report
			if json.Unmarshal(sc.Bytes(), &r) == nil {
				ch <- r
			}
		}
	}()
	return &Proc{Cmd: cmd, Stdin: stdin, Reports: ch}
}

// Next waits for the next report from a started program.
func Next(t testing.TB, ch <-chan Report) Report {
	t.Helper()
	select {
	case r, ok := <-ch:
		if !ok {
			t.Fatal("helper program ended before reporting")
		}
		return r
	case <-time.After(Scaled(10 * time.Second)):
		t.Fatalf("helper program said nothing for %v", Scaled(10*time.Second))
	}
	return nil
}

func parseReports(t testing.TB, out []byte) []Report {
	t.Helper()
	var rs []Report
	for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var r Report
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("helper printed %q, not JSON: %v", line, err)
		}
		rs = append(rs, r)
	}
	return rs
}

// Script is the path of sockets.py, the helper program tests drive.
func Script() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "sockets.py")
}

// ListenHold serves TCP on addr inside the namespace: it accepts, reads
// until the client's EOF and keeps its side open until the test ends, so
// the client's close leaves the port in FIN_WAIT2.
func (n *Netns) ListenHold(t testing.TB, addr string) {
	t.Helper()
	var ln net.Listener
	n.Do(t, func(int) {
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			t.Errorf("listen %s in %s: %v", addr, n.Name, err)
		}
	})
	if ln == nil {
		t.FailNow()
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(io.Discard, c)
				<-done
				c.Close()
			}()
		}
	}()
}
