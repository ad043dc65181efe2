package main_test

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/porttrace/porttrace/internal/nstest"
)

func tmux(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("tmux", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("tmux %v: %v %s", args, err, out)
	}
	return string(out)
}

// porttrace top in a real 80x24 terminal (tmux): it draws the namespace a
// client runs dry, with its holder and its failures, and quits on q.
func TestTopInTmux(t *testing.T) {
	nstest.RequireRoot(t)
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed (CI installs it)")
	}
	ns := nstest.New(t, 48000, 48003)
	ns.ListenHold(t, "127.0.0.1:8080")
	session := fmt.Sprintf("pt-top-%d", os.Getpid())
	tmux(t, "new-session", "-d", "-s", session, "-x", "80", "-y", "24", binary+" top -i 300ms")
	t.Cleanup(func() { exec.Command("tmux", "kill-session", "-t", session).Run() })
	screen := func() string { return tmux(t, "capture-pane", "-p", "-t", session) }
	waitFor := func(what string, ok func(string) bool) string {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			s := screen()
			if ok(s) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("the screen never showed %s:\n%s", what, s)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitFor("the header", func(s string) bool { return strings.Contains(s, "porttrace top") && strings.Contains(s, ns.Name[:7]) })

	ns.NoTimeWaitReuse(t) // the closed port must stay blocked
	proc := ns.Start(t, "python3", nstest.Script(), "fill", "127.0.0.1", "8080", "1")
	r := nstest.Next(t, proc.Reports)
	holder := fmt.Sprintf("python3[%d] 3", r.Int("pid"))
	s := waitFor("the namespace run dry and its failures", func(s string) bool {
		return strings.Contains(s, holder) && strings.Contains(s, "EADDRNOTAVAIL") && strings.Contains(s, "LAST FAILURES")
	})
	var row string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, fmt.Sprint(ns.Inode)) {
			row = l
		}
		if n := len([]rune(l)); n > 80 {
			t.Errorf("a line is %d columns wide in an 80-column terminal: %q", n, l)
		}
	}
	f := strings.Fields(row)
	// NETNS NAME RANGE BAR USED TW FREE UDP NEW/s FAIL/s
	if len(f) != 10 || f[2] != "48000-48003" || f[3] != "[######~~]" || f[4] != "4" || f[5] != "1" || f[6] != "0" {
		t.Errorf("namespace row %q; want range 48000-48003, 4 in use of which 1 in TIME_WAIT, 0 free", row)
	}
	if !strings.Contains(s, "127.0.0.1:8080") {
		t.Errorf("the destination is not shown:\n%s", s)
	}
	io.WriteString(proc.Stdin, "done\n")

	tmux(t, "send-keys", "-t", session, "q")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if exec.Command("tmux", "has-session", "-t", session).Run() != nil {
			break // top quit, and its session with it
		}
		if time.Now().After(deadline) {
			t.Fatalf("top did not quit on q:\n%s", screen())
		}
	}
}

func TestTopPlainWhenNotATerminal(t *testing.T) {
	nstest.RequireRoot(t)
	out, errs, code := runBin(t, "top", "-i", "200ms", "-d", "700ms")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if strings.Contains(out, "\x1b[") {
		t.Error("escape sequences written to a pipe")
	}
	if n := strings.Count(out, "porttrace top —"); n < 2 {
		t.Errorf("%d frames in 700ms at 200ms intervals:\n%s", n, out)
	}
}
