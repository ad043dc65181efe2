package main_test

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/porttrace/porttrace/internal/nstest"
)

// ssRange counts, as ss shows them in the namespace, the distinct local TCP
// ports of lo..hi in use, those held only by TIME_WAIT entries (no process),
// and those toward dest.
func ssRange(t *testing.T, ns *nstest.Netns, lo, hi int, dest string) (inUse, timeWait, toDest int) {
	t.Helper()
	out, err := ns.Command("ss", "-tanpH").CombinedOutput()
	if err != nil {
		t.Fatalf("ss: %v %s", err, out)
	}
	live, tw, d := map[int]bool{}, map[int]bool{}, map[int]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		ap, err := netip.ParseAddrPort(f[3])
		if err != nil || int(ap.Port()) < lo || int(ap.Port()) > hi {
			continue
		}
		port := int(ap.Port())
		if strings.Contains(line, "users:") {
			live[port] = true
		} else {
			tw[port] = true
		}
		if f[4] == dest {
			d[port] = true
		}
	}
	inUse = len(live)
	for p := range tw {
		if !live[p] {
			timeWait++
			inUse++
		}
	}
	return inUse, timeWait, len(d)
}

// Run a range dry with a real client and check that each failure is
// reported once, with its errno and process, and that the pressure it
// carries is what ss shows in the namespace at that moment.
func TestFailureCarriesPressure(t *testing.T) {
	ns := nstest.New(t, 46000, 46003)
	ns.ListenHold(t, "127.0.0.1:8080")
	tr := startTrace(t, "--format", "json", "--no-existing", "--summary")
	if m := jsonLine(t, tr.next(t)); m["event"] != "start" {
		t.Fatalf("first line: %v", m)
	}
	ns.NoTimeWaitReuse(t) // the closed port must stay blocked
	proc := ns.Start(t, "python3", nstest.Script(), "fill", "127.0.0.1", "8080", "1")
	r := nstest.Next(t, proc.Reports)
	pid := r.Int("pid")
	if fails := fmt.Sprint(r["fails"]); fails != "[EADDRNOTAVAIL EADDRNOTAVAIL]" {
		t.Fatalf("the program saw %s", fails)
	}
	inUse, timeWait, toDest := ssRange(t, ns, 46000, 46003, "127.0.0.1:8080")
	if inUse != 4 || timeWait != 1 {
		t.Fatalf("ss shows %d ports in use, %d in TIME_WAIT; the scenario should leave 4 and 1", inUse, timeWait)
	}

	var fails []map[string]any
	deadline := time.After(nstest.Scaled(10 * time.Second))
	for len(fails) < 2 {
		select {
		case <-deadline:
			t.Fatalf("got %d fail events, want 2", len(fails))
		default:
		}
		m := jsonLine(t, tr.next(t))
		if m["event"] == "fail" && uint32(num(m, "netns")) == ns.Inode {
			fails = append(fails, m)
		}
	}
	for _, f := range fails {
		if num(f, "pid") != pid || f["errno"] != "EADDRNOTAVAIL" || f["via"] != "connect" || num(f, "range_size") != 4 {
			t.Errorf("fail: %v", f)
		}
	}
	last := fails[1] // the program holds still after its last attempt
	if int(num(last, "in_use")) != inUse || int(num(last, "timewait")) != timeWait || int(num(last, "dest_in_use")) != toDest {
		t.Errorf("last fail says in_use %v, timewait %v, dest_in_use %v; ss says %d, %d, %d",
			last["in_use"], last["timewait"], last["dest_in_use"], inUse, timeWait, toDest)
	}
	top, _ := last["top_holders"].([]any)
	if len(top) == 0 {
		t.Fatalf("no top holders: %v", last)
	}
	h := top[0].(map[string]any)
	if num(h, "pid") != pid || h["comm"] != "python3" || num(h, "count") != 3 {
		t.Errorf("top holder %v, want pid %d python3 with 3 ports", h, pid)
	}
	io.WriteString(proc.Stdin, "done\n")
	rest, code := tr.stop(t, syscall.SIGINT)
	if code != 0 || len(rest) == 0 {
		t.Fatalf("exit %d", code)
	}
	// --summary: the process, its allocations, its two failures.
	var row []string
	for _, l := range strings.Split(tr.stderr.String(), "\n") {
		if f := strings.Fields(l); len(f) == 8 && f[0] == fmt.Sprint(pid) {
			row = f
		}
	}
	if row == nil || row[1] != "python3" || row[2] != "4" || row[6] != "4" || row[7] != "2" {
		t.Errorf("--summary row for %d: %v\n%s", pid, row, tr.stderr.String())
	}
}

// With tcp_fin_timeout short, a port parked in FIN_WAIT2 after its holder
// closed comes back soon: its free event arrives, marked estimated.
func TestFreeAfterFinWait2(t *testing.T) {
	ns := nstest.New(t, 47000, 47999)
	if out, err := ns.Command("sysctl", "-qw", "net.ipv4.tcp_fin_timeout=1").CombinedOutput(); err != nil {
		t.Fatalf("sysctl: %v %s", err, out)
	}
	ns.ListenHold(t, "127.0.0.1:8080")
	tr := startTrace(t, "--format", "json", "--no-existing")
	tr.next(t)
	rs := ns.Python(t, nstest.Script(), "tcp-connect", "4", "127.0.0.1", "8080", "50", "close")
	port := rs[0].Int("port")
	var rel, free map[string]any
	for free == nil {
		m := jsonLine(t, tr.next(t))
		if uint32(num(m, "netns")) != ns.Inode || num(m, "port") != port {
			continue
		}
		switch m["event"] {
		case "release":
			rel = m
		case "free":
			free = m
		}
	}
	if rel == nil || rel["state"] != "FIN_WAIT2" {
		t.Fatalf("release: %v", rel)
	}
	held := num(free, "held_ns") - num(rel, "held_ns")
	if free["estimated"] != true || held != int64(time.Second) || num(free, "pid") != rs[0].Int("pid") {
		t.Errorf("free: %v (%v after the release)", free, time.Duration(held))
	}
	tr.stop(t, syscall.SIGINT)
}

// The namespace of a failure is read whoever failed and whether or not they
// still live: here each failing process exits at once, and the holder is
// another process. Every failure carries the context, equal to what ss shows,
// and the count the kernel made at the failing call itself.
func TestFailureContextOutlivesTheFailingProcess(t *testing.T) {
	ns := nstest.New(t, 46100, 46103)
	ns.ListenHold(t, "127.0.0.1:8080")
	tr := startTrace(t, "--format", "json")
	if m := jsonLine(t, tr.next(t)); m["event"] != "start" {
		t.Fatalf("first line: %v", m)
	}
	holder := ns.Start(t, "python3", nstest.Script(), "hold-n", "127.0.0.1", "8080", "4")
	nstest.Next(t, holder.Reports)
	holderPID := int64(holder.Cmd.Process.Pid)
	for i := 0; i < 3; i++ {
		r := ns.Python(t, nstest.Script(), "tcp-connect", "4", "127.0.0.1", "8080", "0")[0]
		if r.Str("errno") != "EADDRNOTAVAIL" {
			t.Fatalf("connect %d to a full range: %v", i, r)
		}
		var f map[string]any
		for f == nil {
			m := jsonLine(t, tr.next(t))
			if m["event"] == "fail" && uint32(num(m, "netns")) == ns.Inode {
				f = m
			}
		}
		inUse, timeWait, toDest := ssRange(t, ns, 46100, 46103, "127.0.0.1:8080")
		if num(f, "pid") != r.Int("pid") || f["errno"] != "EADDRNOTAVAIL" {
			t.Errorf("fail %d: %v, want pid %d EADDRNOTAVAIL", i, f, r.Int("pid"))
		}
		if _, ok := f["in_use"]; !ok {
			t.Fatalf("fail %d of a process that has exited carries no context: %v", i, f)
		}
		if int(num(f, "in_use")) != inUse || int(num(f, "timewait")) != timeWait || int(num(f, "dest_in_use")) != toDest || num(f, "range_size") != 4 {
			t.Errorf("fail %d says in_use %v, timewait %v, dest_in_use %v, range_size %v; ss says %d, %d, %d, range 4",
				i, f["in_use"], f["timewait"], f["dest_in_use"], f["range_size"], inUse, timeWait, toDest)
		}
		if num(f, "held_at_call") != 4 {
			t.Errorf("fail %d: held_at_call %v, want 4", i, f["held_at_call"])
		}
		top, _ := f["top_holders"].([]any)
		if len(top) != 1 || num(top[0].(map[string]any), "pid") != holderPID || num(top[0].(map[string]any), "count") != 4 {
			t.Errorf("fail %d: top holders %v, want only %d with 4", i, f["top_holders"], holderPID)
		}
	}
	io.WriteString(holder.Stdin, "done\n")
	tr.stop(t, syscall.SIGINT)
}
