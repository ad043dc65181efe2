package tracer_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/porttrace/porttrace/internal/nstest"
	"github.com/porttrace/porttrace/tracer"
)

// tracefsInstance gives the test a tracefs instance of its own (its own
// buffer and clock), on a tracefs mounted for it if none is.
func tracefsInstance(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := unix.Mount("nodev", root, "tracefs", 0, ""); err != nil {
		t.Fatalf("mount tracefs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(root, unix.MNT_DETACH) })
	inst := filepath.Join(root, "instances", fmt.Sprintf("porttrace-test-%d", os.Getpid()))
	if err := os.Mkdir(inst, 0o700); err != nil {
		t.Fatalf("make a tracefs instance: %v", err)
	}
	t.Cleanup(func() { os.Remove(inst) })
	// In this order: a new clock empties the buffer.
	for _, kv := range [][2]string{{"trace_clock", "mono"}, {"buffer_size_kb", "4096"}, {"events/sock/inet_sock_set_state/enable", "1"}} {
		if err := os.WriteFile(filepath.Join(inst, kv[0]), []byte(kv[1]), 0o600); err != nil {
			t.Fatalf("tracefs %s: %v", kv[0], err)
		}
	}
	t.Cleanup(func() {
		os.WriteFile(filepath.Join(inst, "events/sock/inet_sock_set_state/enable"), []byte("0"), 0o600)
	})
	return inst
}

// offsetNow reads CLOCK_MONOTONIC between two wall-clock reads, the
// closest pair of many: wall = mono + offset, within ±width/2.
func offsetNow() (offset, width time.Duration) {
	width = time.Hour
	for i := 0; i < 200; i++ {
		var ts unix.Timespec
		a := time.Now().UnixNano()
		unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
		b := time.Now().UnixNano()
		if w := time.Duration(b - a); w < width {
			width, offset = w, time.Duration((a+b)/2-ts.Nano())
		}
	}
	return offset, width
}

var stateLine = regexp.MustCompile(`\s(\d+)\.(\d{6}): inet_sock_set_state: .*sport=(\d+) dport=(\d+) .*oldstate=(\w+) newstate=(\w+)`)

// A connect's alloc is stamped between the program's call and the end of
// the handshake as the kernel's own inet_sock_set_state tracepoint records
// it (SYN_SENT->ESTABLISHED), read through tracefs on the monotonic clock.
// A wall-clock offset re-read during the run stamped some allocs after the
// connection was established.
func TestTimesAgreeWithTheKernelsTracepoint(t *testing.T) {
	nstest.RequireRoot(t)
	inst := tracefsInstance(t)
	ns := nstest.New(t, 43100, 43199)
	// Each port once: after a second Linux reuses a loopback TIME_WAIT port,
	// and under emulation 20 connects take longer than that.
	ns.NoTimeWaitReuse(t)
	serve(t, ns)
	s := openTracer(t, tracer.Options{}).start()
	const n = 20
	r := py(t, ns, "connect-many", "127.0.0.1", fmt.Sprint(drainPort), fmt.Sprint(n))
	called := map[uint16]time.Duration{} // port: monotonic time before its connect()
	for _, c := range r["conns"].([]any) {
		pc := c.([]any)
		called[uint16(pc[0].(float64))] = time.Duration(int64(pc[1].(float64)))
	}
	if len(called) != n {
		t.Fatalf("the program got %d distinct ports in %d connects, want each once", len(called), n)
	}
	allocs := map[uint16]tracer.Event{}
	for i := 0; i < n; i++ {
		e := s.find("alloc", in(ns, tracer.KindAlloc, 0))
		if _, twice := allocs[e.Port]; twice {
			t.Fatalf("port %d allocated twice in %d connects: the test needs each port once", e.Port, n)
		}
		allocs[e.Port] = e
	}
	offset, width := offsetNow()
	slack := width/2 + time.Microsecond // the offset's error, and tracefs's microseconds

	// The kernel's times, per local port: monotonic nanoseconds.
	f, err := os.Open(filepath.Join(inst, "trace"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	established := map[uint16]time.Duration{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := stateLine.FindStringSubmatch(sc.Text())
		if m == nil || m[4] != fmt.Sprint(drainPort) {
			continue
		}
		sec, _ := strconv.ParseInt(m[1], 10, 64)
		us, _ := strconv.ParseInt(m[2], 10, 64)
		at := time.Duration(sec)*time.Second + time.Duration(us)*time.Microsecond
		port, _ := strconv.Atoi(m[3])
		if m[5] == "TCP_SYN_SENT" && m[6] == "TCP_ESTABLISHED" {
			established[uint16(port)] = at
		}
	}
	checked := 0
	for port, a := range allocs {
		est, ok := established[port]
		if !ok {
			t.Errorf("the kernel's tracepoint never saw port %d established", port)
			continue
		}
		mono := time.Duration(a.Time.UnixNano()) - offset
		if mono > est+slack {
			t.Errorf("port %d: alloc stamped %v after the kernel had the connection established", port, mono-est)
		}
		if call, ok := called[port]; !ok || mono < call-slack {
			t.Errorf("port %d: alloc stamped %v before the program called connect()", port, call-mono)
		}
		checked++
	}
	if checked != n {
		t.Errorf("checked %d of %d connections", checked, n)
	}
}
