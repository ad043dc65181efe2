package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/porttrace/porttrace/internal/nstest"
)

// -o FIFO --force and -o SYMLINK --force are refused at once, in a
// sentence; nothing is opened through them.
func TestForceRefusesWhatIsNotARegularFile(t *testing.T) {
	nstest.RequireRoot(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "shadow")
	os.WriteFile(target, []byte("root's\n"), 0o644)
	link := filepath.Join(dir, "link1")
	os.Symlink(target, link)
	for file, kind := range map[string]string{fifo: "a FIFO", link: "a symbolic link"} {
		began := time.Now()
		_, errs, code := runBin(t, "-o", file, "--force", "-d", "1s")
		if took := time.Since(began); took > nstest.Scaled(5*time.Second) {
			t.Errorf("-o %s --force took %v", kind, took)
		}
		want := "porttrace: create recording: " + file + " is " + kind + ", not a regular file: --force replaces only a regular file"
		if code != 1 || !strings.Contains(errs, want) {
			t.Errorf("-o %s --force: exit %d, %q; want exit 1 and %q", kind, code, errs, want)
		}
	}
	if b, _ := os.ReadFile(target); string(b) != "root's\n" {
		t.Errorf("the symlink's target was written: %q", b)
	}
}

// --force replaces a recording only once tracing has started: a start the
// kernel refuses leaves the old one; one it accepts leaves a new 0600 file.
func TestForceKeepsTheOldRecordingUntilTracingStarts(t *testing.T) {
	nstest.RequireRoot(t)
	file := filepath.Join(t.TempDir(), "trace.jsonl")
	os.WriteFile(file, []byte("old recording\n"), 0o644)
	cmd := exec.Command(binary, "--hooks", "precise", "-o", file, "--force", "-d", "500ms")
	out, err := cmd.CombinedOutput()
	b, _ := os.ReadFile(file)
	fi, serr := os.Stat(file)
	if serr != nil {
		t.Fatalf("the recording is gone: %v\n%s", serr, out)
	}
	if err != nil {
		// This kernel refuses the precise hooks (no BPF trampolines).
		if string(b) != "old recording\n" || fi.Mode().Perm() != 0o644 {
			t.Errorf("a failed start changed the old recording: %q, mode %v\n%s", b, fi.Mode().Perm(), out)
		}
	} else if !strings.HasPrefix(string(b), `{"event":"start"`) || fi.Mode().Perm() != 0o600 {
		t.Errorf("after --force: %.40q, mode %v; want a new recording, 0600", b, fi.Mode().Perm())
	}
	if left, _ := os.ReadDir(filepath.Dir(file)); len(left) != 1 {
		t.Errorf("files left beside the recording: %v", left)
	}
}
