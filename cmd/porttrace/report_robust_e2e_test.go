package main_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// porttrace report stops within a second of SIGINT or SIGTERM, exit 130 or
// 143, whether it is busy (an endless input) or waiting (a silent FIFO).
func TestReportStopsOnSignal(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name  string
		sig   syscall.Signal
		code  int
		write bool
	}{{"busy", syscall.SIGINT, 130, true}, {"waiting", syscall.SIGTERM, 143, false}} {
		fifo := filepath.Join(dir, c.name)
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		w, err := os.OpenFile(fifo, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		stopWriting := make(chan struct{})
		if c.write {
			go func() {
				line := []byte(`{"event":"lost","time":"2026-11-25T03:00:00Z","count":1}` + "\n")
				block := bytes.Repeat(line, 1000)
				for {
					select {
					case <-stopWriting:
						return
					default:
						w.Write(block)
					}
				}
			}()
		}
		cmd := exec.Command(binary, "report", fifo)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		sent := time.Now()
		cmd.Process.Signal(c.sig)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if took := time.Since(sent); took > time.Second {
				t.Errorf("%s: stopped %v after %v", c.name, took, c.sig)
			}
			if code := exitCode(err); code != c.code || !strings.Contains(stderr.String(), "stopped by "+sigName(c.sig)) {
				t.Errorf("%s: exit %d, %q; want %d", c.name, code, stderr.String(), c.code)
			}
		case <-time.After(3 * time.Second):
			cmd.Process.Kill()
			t.Errorf("%s: report still running 3s after %v", c.name, c.sig)
		}
		close(stopWriting)
		w.Close()
	}
}

func sigName(s syscall.Signal) string {
	if s == syscall.SIGINT {
		return "SIGINT"
	}
	return "SIGTERM"
}

// report /dev/zero ends at once: no line, no recording.
func TestReportOnDevZeroEnds(t *testing.T) {
	cmd := exec.Command(binary, "report", "/dev/zero")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Start()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if code := exitCode(err); code != 1 || !strings.Contains(stderr.String(), "/dev/zero is not a porttrace recording") {
			t.Errorf("exit %d, %q", code, stderr.String())
		}
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		t.Fatal("report /dev/zero still running after 5s")
	}
}

// A gzip file damaged in the middle: the report says so, with how much it
// read, in text and JSON.
func TestReportSaysGzipIsDamaged(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	const n = 200000
	for i := 0; i < n; i++ {
		fmt.Fprintf(zw, `{"event":"lost","time":"2026-11-25T03:00:%02d.%09dZ","count":1}`+"\n", i/100000, i)
	}
	zw.Close()
	data := buf.Bytes()
	for i := len(data) / 2; i < len(data)/2+64; i++ {
		data[i] ^= 0x5a
	}
	p := filepath.Join(t.TempDir(), "trace.jsonl.gz")
	os.WriteFile(p, data, 0o600)
	r, errs := runReport(t, p)
	if r.Events == 0 || r.Events >= n || !r.Truncated || len(r.Damaged) != 1 || r.Damaged[0].File != p || r.Damaged[0].Lines == 0 {
		t.Errorf("JSON: %d events, truncated %v, damaged %+v", r.Events, r.Truncated, r.Damaged)
	}
	if want := "porttrace report: " + p + " is damaged ("; !strings.Contains(errs, want) {
		t.Errorf("stderr does not say %q:\n%s", want, errs)
	}
	text, _, _ := runBin(t, "report", p)
	if want := p + " is damaged ("; !strings.Contains(text, want) || !strings.Contains(text, fmt.Sprintf("of %d bytes) are in this report", len(data))) {
		t.Errorf("text report does not say %q:\n%.600s", want, text)
	}
}

// The same recording twice, or with an overlapping copy: counted once, with
// a warning.
func TestReportCountsDuplicatesOnce(t *testing.T) {
	dir := t.TempDir()
	var a strings.Builder
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&a, `{"event":"lost","time":"2026-11-25T03:%02d:%02dZ","count":1}`+"\n", i/60, i%60)
	}
	p, cp := filepath.Join(dir, "trace.jsonl"), filepath.Join(dir, "copy.jsonl")
	os.WriteFile(p, []byte(a.String()), 0o600)
	os.WriteFile(cp, []byte(a.String()), 0o600)
	once, _ := runReport(t, p)
	twice, errs := runReport(t, p, p, cp)
	if twice.Events != once.Events || twice.Lost != once.Lost || twice.Duplicates == 0 {
		t.Errorf("one file: %d events, %d lost; given thrice: %d events, %d lost, %d duplicates", once.Events, once.Lost, twice.Events, twice.Lost, twice.Duplicates)
	}
	if !strings.Contains(errs, "given again: read once") || !strings.Contains(errs, "already read from another file") {
		t.Errorf("no warning about the repeats:\n%s", errs)
	}
}

// Values the kernel cannot produce are refused with a warning naming the
// line, not printed as nonsense.
func TestReportRejectsOutOfRangeValues(t *testing.T) {
	p := filepath.Join(t.TempDir(), "trace.jsonl")
	lines := []string{
		`{"event":"start","time":"2026-11-25T03:00:00Z","namespaces":[{"netns":1,"range":[60999,32768]}]}`,
		`{"event":"start","time":"2026-11-25T03:00:00Z","namespaces":[{"netns":1,"range":[32768,60999]}]}`,
		`{"event":"release","time":"2026-11-25T03:00:01Z","proto":"tcp","family":"ipv4","port":40000,"via":"connect","pid":7,"comm":"x","netns":1,"held_ns":9223372036854775807}`,
		`{"event":"release","time":"2026-11-25T03:00:02Z","proto":"tcp","family":"ipv4","port":40001,"via":"connect","pid":7,"comm":"x","netns":1,"held_ns":1000}`,
		`{"event":"fail","time":"2026-11-25T03:00:03Z","proto":"tcp","family":"ipv4","port":0,"via":"connect","pid":7,"comm":"x","netns":1,"errno":"EADDRNOTAVAIL","in_use":2147483647,"range_size":1}`,
		`{"event":"alloc","time":"2026-11-25T03:00:04Z","proto":"tcp","family":"ipv4","port":40002,"via":"connect","pid":8,"comm":"` + strings.Repeat("y", 100000) + `","netns":1}`,
	}
	os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
	text, errs, code := runBin(t, "report", p)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{
		p + ": line 1 is not a porttrace record (range [60999,32768] of netns 1 is out of range",
		p + ": line 3 is not a porttrace record (held_ns 9223372036854775807 is out of range",
		p + ": line 5 is not a porttrace record (in_use 2147483647 is out of range",
		p + ": line 6 is not a porttrace record (comm is 100000 bytes long: out of range",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("no warning %q in:\n%s", want, errs)
		}
	}
	if strings.Contains(text, "-9223372036854775808") || strings.Contains(text, " of -") {
		t.Errorf("nonsense printed:\n%s", text)
	}
	if f := rowOf(text, 0, "7"); f == nil || f[4] != "1" || f[5] != "1.00µs" {
		t.Errorf("process row %q; want 1 release held 1.00µs\n%s", f, text)
	}
}
