package main_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/porttrace/porttrace/internal/nstest"
)

// A name anyone can give their process: clear the screen, a tab and a
// newline to forge columns and lines, a byte that is not UTF-8.
const (
	hostileHex = "1b5b324a0939390aff78" // "\x1b[2J\t99\n\xffx"
	hostileEsc = `\x1b[2J\t99\n\xffx`
)

// printableOnly fails if out holds a control byte other than a newline, or
// invalid UTF-8: what a terminal would obey or mangle.
func printableOnly(t *testing.T, what, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Errorf("%s is not valid UTF-8:\n%q", what, out)
	}
	for _, c := range []byte(out) {
		if c < 0x20 && c != '\n' || c == 0x7f {
			t.Errorf("%s holds control byte %#x:\n%q", what, c, out)
			return
		}
	}
}

// rowOf returns the fields of the first line of out whose field i is want.
func rowOf(out string, i int, want string) []string {
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > i && f[i] == want {
			return f
		}
	}
	return nil
}

// A process with a hostile name goes through the text trace, --summary,
// the text report and top: each shows the name escaped, in its column.
func TestHostileNamesArePrintable(t *testing.T) {
	ns := nstest.New(t, 43000, 43999)
	ns.ListenHold(t, "127.0.0.1:8000")
	rec := filepath.Join(t.TempDir(), "rec.jsonl")
	tr := startTrace(t, "--color", "never", "--summary", "--no-existing", "-o", rec)
	tr.next(t) // the header
	time.Sleep(300 * time.Millisecond)
	r := ns.Python(t, nstest.Script(), "renamed", hostileHex, "bind", "tcp", "4", "127.0.0.1", "0", "50")
	pid := fmt.Sprint(r[0].Int("pid"))

	// top names the holders it saw take their ports: the holder starts after it.
	topCmd := tracing("top", "-i", "200ms", "-d", nstest.Scaled(2*time.Second).String())
	var topOut, topErr strings.Builder
	topCmd.Stdout, topCmd.Stderr = &topOut, &topErr
	if err := topCmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(nstest.Scaled(700 * time.Millisecond))
	holder := ns.Start(t, "python3", nstest.Script(), "renamed", hostileHex, "hold", "127.0.0.1", "8000")
	nstest.Next(t, holder.Reports)
	if err := topCmd.Wait(); err != nil {
		t.Fatalf("top: %v: %s", err, topErr.String())
	}
	top := topOut.String()
	printableOnly(t, "top", top)
	if !strings.Contains(top, "holders: "+hostileEsc+"[") {
		t.Errorf("top does not show the holder's name escaped:\n%s", top)
	}
	holder.Stdin.Write([]byte("\n"))
	nstest.Next(t, holder.Reports)
	holder.Stdin.Close()

	// A failure names the process holding most of the range: the same name.
	dry := nstest.New(t, 47000, 47003)
	dry.ListenHold(t, "127.0.0.1:8000")
	filler := dry.Start(t, "python3", nstest.Script(), "renamed", hostileHex, "fill", "127.0.0.1", "8000", "0")
	fillPID := fmt.Sprint(nstest.Next(t, filler.Reports).Int("pid"))
	filler.Stdin.Write([]byte("\n"))
	filler.Stdin.Close()

	var out []string
	var fail string
	for deadline := time.Now().Add(nstest.Scaled(10 * time.Second)); (len(out) < 2 || fail == "") && time.Now().Before(deadline); {
		l := tr.next(t)
		if strings.Contains(l, " "+pid+" ") {
			out = append(out, l)
		}
		if strings.Contains(l, " fail ") && strings.Contains(l, " "+fillPID+" ") && strings.Contains(l, "most held by") {
			fail = l
		}
	}
	if want := "most held by " + hostileEsc + "[" + fillPID + "]: 4)"; !strings.HasSuffix(fail, want) || strings.Fields(fail)[6] != hostileEsc {
		t.Errorf("failure line %q; want the name escaped in its column, and the line to end %q", fail, want)
	}
	printableOnly(t, "the failure line", fail)
	rest, code := tr.stop(t, syscall.SIGINT)
	if code != 0 {
		t.Fatalf("trace: exit %d: %s", code, tr.stderr.String())
	}
	all := strings.Join(append(out, rest...), "\n")
	printableOnly(t, "the text trace", all)
	printableOnly(t, "the trace's stderr", tr.stderr.String())
	if len(out) < 2 {
		t.Fatalf("the renamed process's alloc and release were not printed:\n%s", all)
	}
	for _, l := range out {
		if f := strings.Fields(l); f[5] != pid || f[6] != hostileEsc {
			t.Errorf("trace line: the name is not escaped in its column: %q", l)
		}
	}
	// --summary: PID COMM ALLOCS ...
	if f := rowOf(tr.stderr.String(), 0, pid); f == nil || f[1] != hostileEsc || f[2] != "1" {
		t.Errorf("--summary row of %s: %q\n%s", pid, f, tr.stderr.String())
	}

	// JSON keeps the name as JSON can: the byte that is not UTF-8 became U+FFFD.
	const recorded = `\x1b[2J\t99\n` + "\ufffd" + "x"
	rep, errs, code := runBin(t, "report", rec)
	if code != 0 {
		t.Fatalf("report: exit %d: %s", code, errs)
	}
	printableOnly(t, "the text report", rep)
	// PROCESSES: PID COMM ALLOCS HELD-AT-START RELEASES ...
	if f := rowOf(rep, 0, pid); f == nil || f[1] != recorded || f[2] != "1" || f[4] != "1" {
		t.Errorf("report row of %s: %q\n%s", pid, f, rep)
	}
	// FAILURES: TIME PID COMM PROTO VIA TO ERRNO ...
	if f := rowOf(rep, 1, fillPID); f == nil || f[2] != recorded || f[6] != "EADDRNOTAVAIL" {
		t.Errorf("report failure of %s: %q\n%s", fillPID, f, rep)
	}
}
