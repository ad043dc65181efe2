package record

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/porttrace/porttrace/tracer"
)

const stamp1, stamp2, stamp3 = "20261125T210000.000000001Z", "20261125T210001.000000002Z", "20261125T210002.000000003Z"

// A name planted as a symlink where rotation writes its gzip file is not
// followed: the rotation fails in a sentence and the target stays as it was.
func TestGzipRefusesPlantedTempFile(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "shadow")
	os.WriteFile(target, []byte("root's\n"), 0o644)
	rotated := filepath.Join(dir, "trace.jsonl."+stamp1)
	os.WriteFile(rotated, []byte("{}\n"), 0o600)
	if err := os.Symlink(target, rotated+".gz.tmp"); err != nil {
		t.Fatal(err)
	}
	err := gzipFile(rotated)
	if err == nil || !strings.Contains(err.Error(), ".gz.tmp already exists") {
		t.Errorf("gzip through a planted symlink: %v", err)
	}
	if b, _ := os.ReadFile(target); string(b) != "root's\n" {
		t.Errorf("the symlink's target was written: %q", b)
	}
	if _, err := os.Stat(rotated); err != nil {
		t.Errorf("the rotated file is gone: %v", err)
	}

	// A planted .gz is not replaced either.
	os.Remove(rotated + ".gz.tmp")
	os.Symlink(target, rotated+".gz")
	if err := gzipFile(rotated); err == nil || !strings.Contains(err.Error(), ".gz already exists") {
		t.Errorf("gzip over a planted .gz: %v", err)
	}
	if fi, _ := os.Lstat(rotated + ".gz"); fi.Mode()&os.ModeSymlink == 0 {
		t.Error("the planted .gz was replaced")
	}
	if _, err := os.Stat(rotated + ".gz.tmp"); err == nil {
		t.Error("the temporary file was left behind")
	}

	// Done right, the .gz is 0600.
	os.Remove(rotated + ".gz")
	if err := gzipFile(rotated); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(rotated + ".gz"); fi.Mode().Perm() != 0o600 {
		t.Errorf("gzip file mode %v, want 0600", fi.Mode().Perm())
	}
}

// --rotate-keep counts and deletes only the regular files porttrace names.
func TestRotateKeepPrunesOnlyItsOwn(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "trace.jsonl")
	theirs := []string{"trace.jsonl.1", "trace.jsonl.0.gz", "trace.jsonl.bak", "trace.jsonl.old", "trace.jsonl.zzz",
		"trace.jsonl." + stamp1 + ".bak", "trace.jsonl.2026"}
	for _, n := range theirs {
		os.WriteFile(filepath.Join(dir, n), nil, 0o644)
	}
	os.Symlink("/etc/hostname", filepath.Join(dir, "trace.jsonl."+stamp1))
	os.Mkdir(filepath.Join(dir, "trace.jsonl."+stamp1+".gz"), 0o755)
	for _, n := range []string{stamp2, stamp3 + ".gz"} {
		os.WriteFile(filepath.Join(dir, "trace.jsonl."+n), nil, 0o600)
	}
	got, err := Rotated(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "trace.jsonl."+stamp2), filepath.Join(dir, "trace.jsonl."+stamp3+".gz")}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Rotated = %q, want %q", got, want)
	}
	w := &Writer{path: p, opts: Options{RotateKeep: 1}}
	w.prune()
	left, _ := os.ReadDir(dir)
	var names []string
	for _, d := range left {
		names = append(names, d.Name())
	}
	wantLeft := append(theirs, "trace.jsonl."+stamp1, "trace.jsonl."+stamp1+".gz", "trace.jsonl."+stamp3+".gz")
	sort.Strings(wantLeft)
	if strings.Join(names, " ") != strings.Join(wantLeft, " ") {
		t.Errorf("after pruning to 1: %q\nwant %q", names, wantLeft)
	}
}

// --force replaces only a regular file, with a new 0600 file, and only
// once the recording is committed.
func TestForceReplacesOnlyARegularFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "trace.jsonl")
	os.WriteFile(p, []byte("old recording\n"), 0o644)
	w, err := Create(p, Options{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "old recording\n" {
		t.Errorf("replaced before the recording started: %q", b)
	}
	w.Abort()
	if b, _ := os.ReadFile(p); string(b) != "old recording\n" {
		t.Errorf("an aborted start lost the old recording: %q", b)
	}
	if left, _ := os.ReadDir(dir); len(left) != 1 {
		t.Errorf("files left after an aborted start: %v", left)
	}

	w, err = Create(p, Options{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	fi, _ := os.Stat(p)
	if b, _ := os.ReadFile(p); len(b) != 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("after --force: %q, mode %v; want empty, 0600", b, fi.Mode().Perm())
	}

	target := filepath.Join(dir, "shadow")
	os.WriteFile(target, []byte("root's\n"), 0o644)
	link := filepath.Join(dir, "link1")
	os.Symlink(target, link)
	fifo := filepath.Join(dir, "fifo")
	syscall.Mkfifo(fifo, 0o644)
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o755)
	for name, kind := range map[string]string{link: "a symbolic link", fifo: "a FIFO", sub: "a directory"} {
		done := make(chan error, 1)
		go func() { _, err := Create(name, Options{Force: true}); done <- err }()
		select {
		case err := <-done:
			want := name + " is " + kind + ", not a regular file"
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("--force on %s: %v; want %q", kind, err, want)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("--force on %s blocked", kind)
		}
		done2 := make(chan error, 1)
		go func() { _, err := Create(name, Options{}); done2 <- err }()
		select {
		case err := <-done2:
			if err == nil || !strings.Contains(err.Error(), name+" already exists") {
				t.Errorf("no --force on %s: %v", kind, err)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("opening %s blocked", kind)
		}
	}
	if b, _ := os.ReadFile(target); string(b) != "root's\n" {
		t.Errorf("the symlink's target was written: %q", b)
	}
}

// A rotated file that cannot be compressed is kept as it is, and the
// message says recording goes on (it does).
func TestCompressErrorSaysRecordingGoesOn(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts a tmpfs with three inodes")
	}
	dir := t.TempDir()
	// The directory, the recording and the one after rotation: no inode
	// is left for the gzip file.
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "nr_inodes=3,size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v %s", err, out)
	}
	defer exec.Command("umount", dir).Run()
	var msgs []string
	var mu sync.Mutex
	w, err := Create(filepath.Join(dir, "trace.jsonl"), Options{RotateSize: 4096, Compress: true, OnError: func(err error) {
		mu.Lock()
		msgs = append(msgs, err.Error())
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		e := tracer.Event{Kind: tracer.KindLost, Time: time.Unix(int64(i), 0), Count: 1}
		w.Write(&e)
	}
	w.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(msgs) != 1 || !strings.HasPrefix(msgs[0], "compress "+dir) || !strings.HasSuffix(msgs[0], "; it is kept uncompressed and recording goes on") ||
		strings.Contains(msgs[0], "without recording") {
		t.Errorf("messages %q", msgs)
	}
	if rot, _ := Rotated(filepath.Join(dir, "trace.jsonl")); len(rot) != 1 || strings.HasSuffix(rot[0], ".gz") {
		t.Errorf("rotated files %v; want one, uncompressed", rot)
	}
}
