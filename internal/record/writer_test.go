package record

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/porttrace/porttrace/tracer"
)

func TestCreateRefusesToOverwrite(t *testing.T) {
	p := filepath.Join(t.TempDir(), "trace.jsonl")
	if err := os.WriteFile(p, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(p, Options{}); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("Create on an existing file: %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "precious\n" {
		t.Fatalf("existing file changed to %q", b)
	}
	w, err := Create(p, Options{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if b, _ := os.ReadFile(p); len(b) != 0 {
		t.Errorf("--force did not replace the file: %q", b)
	}
}

func TestWriterFlushesEverySecondAndOnClose(t *testing.T) {
	p := filepath.Join(t.TempDir(), "trace.jsonl")
	w, err := Create(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	e := tracer.Event{Kind: tracer.KindLost, Time: time.Unix(0, 0), Count: 1}
	w.Write(&e)
	deadline := time.Now().Add(FlushInterval + time.Second)
	for {
		b, _ := os.ReadFile(p)
		if strings.Count(string(b), "\n") == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("event not on disk %v after it was written", FlushInterval+time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}
	w.Write(&e)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if got := strings.Count(string(b), "\n"); got != 2 || w.Dropped() != 0 {
		t.Errorf("after Close: %d lines, %d dropped; want 2 and 0", got, w.Dropped())
	}
}

func TestWriteErrorStopsRecordingAndCounts(t *testing.T) {
	// /dev/full fails every write with ENOSPC. --force does not replace a
	// device, so the recording's file is swapped for it under the hood.
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no /dev/full")
	}
	w, err := Create(filepath.Join(t.TempDir(), "trace.jsonl"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.f.Close()
	w.f = full
	e := tracer.Event{Kind: tracer.KindLost, Time: time.Unix(0, 0), Count: 1}
	for i := 0; i < 10000; i++ { // more than the buffer holds
		w.Write(&e)
	}
	err = w.Close()
	if err == nil || !strings.Contains(err.Error(), "recording stopped") {
		t.Fatalf("Close = %v, want the write error", err)
	}
	if w.Dropped() == 0 {
		t.Error("no events counted as not written")
	}
}
