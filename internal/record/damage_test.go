package record

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A gzip file damaged in its middle is listed as damaged, with how much
// was read, and the damage is said among the first warnings.
func TestCorruptGzipIsDamaged(t *testing.T) {
	var plain bytes.Buffer
	zw := gzip.NewWriter(&plain)
	const n = 200000
	for i := 0; i < n; i++ {
		zw.Write(lostAt(int64(i), 1))
	}
	zw.Close()
	data := plain.Bytes()
	for i := len(data) / 2; i < len(data)/2+64; i++ {
		data[i] ^= 0x5a
	}
	p := filepath.Join(t.TempDir(), "trace.jsonl.gz")
	os.WriteFile(p, data, 0o600)
	evs, warns, r := readAll(t, p)
	if len(evs) == 0 || len(evs) >= n {
		t.Fatalf("read %d of %d events", len(evs), n)
	}
	d := r.Damaged()
	if len(d) != 1 || d[0].File != p || d[0].Lines < len(evs) || d[0].Bytes <= 0 || d[0].Bytes > int64(len(data)) || d[0].Size != int64(len(data)) || d[0].Err == "" {
		t.Errorf("damage %+v; read %d events", d, len(evs))
	}
	if !r.Truncated() {
		t.Error("a damaged file is not flagged as cut short")
	}
	var said bool
	for _, w := range warns {
		said = said || strings.HasPrefix(w, p+" is damaged: ")
	}
	if !said {
		t.Errorf("no warning says the file is damaged: %d warnings, first %q", len(warns), warns[:min(3, len(warns))])
	}
}

// The same file twice, a copy of it, and a rotated file with its gzip
// twin: every event is read once, and a warning says so.
func TestDuplicatesCountedOnce(t *testing.T) {
	dir := t.TempDir()
	var a, b []byte
	for i := 0; i < 100; i++ {
		a = append(a, lostAt(int64(i), 1)...)
	}
	for i := 100; i < 150; i++ {
		b = append(b, lostAt(int64(i), 1)...)
	}
	pa, pb, copyA := filepath.Join(dir, "t.1"), filepath.Join(dir, "t.2"), filepath.Join(dir, "copy")
	os.WriteFile(pa, a, 0o600)
	os.WriteFile(copyA, a, 0o600)
	os.WriteFile(pb, append(a[len(a)/2:], b...), 0o600) // overlaps a's second half
	evs, warns, r := readAll(t, pa, pb, pa, copyA)
	if len(evs) != 150 {
		t.Errorf("read %d events, want 150", len(evs))
	}
	for i, e := range evs {
		if e.Time.Unix() != int64(i) {
			t.Fatalf("event %d at %d", i, e.Time.Unix())
		}
	}
	joined := strings.Join(warns, "\n")
	for _, want := range []string{pa + " is " + pa + " given again: read once", "copy: 100 events were already read from another file",
		"t.2: 50 events were already read from another file"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no warning %q in:\n%s", want, joined)
		}
	}
	if r.Duplicates() != 151 {
		t.Errorf("Duplicates = %d, want 151 (a file given again, and 150 repeated events)", r.Duplicates())
	}
}

// Blank lines are passed over without a warning, quickly.
func TestBlankLinesAreCheap(t *testing.T) {
	p := filepath.Join(t.TempDir(), "blank.jsonl")
	data := append(lostAt(1, 1), bytes.Repeat([]byte("\n"), 64<<20)...)
	data = append(data, lostAt(2, 1)...)
	os.WriteFile(p, data, 0o600)
	began := time.Now()
	evs, warns, _ := readAll(t, p)
	took := time.Since(began)
	if len(evs) != 2 || len(warns) != 0 {
		t.Errorf("%d events, warnings %q", len(evs), warns)
	}
	if took > 2*time.Second {
		t.Errorf("64 MiB of blank lines took %v", took)
	}
}

// A read from a FIFO nobody writes to, or from an endless input, ends as
// soon as the context does.
func TestInterruptStopsReading(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	syscall.Mkfifo(fifo, 0o600)
	w, err := os.OpenFile(fifo, os.O_RDWR, 0) // a writer that never writes
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, p := range []string{fifo, "/dev/zero"} {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			r, err := OpenContext(ctx, []string{p, fifo}, nil)
			for err == nil {
				_, err = r.Next()
			}
			done <- err
		}()
		time.Sleep(200 * time.Millisecond)
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s: ended with %v, want the interrupt", p, err)
			}
		case <-time.After(time.Second):
			t.Fatalf("%s: still reading a second after the interrupt", p)
		}
	}
}

// A thousand rotated gzip files: only the file being read holds buffers,
// and every event is read, in order.
func TestManyFilesBoundedMemory(t *testing.T) {
	dir := t.TempDir()
	const n = 1000
	var paths []string
	for i := n - 1; i >= 0; i-- {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(append(lostAt(int64(2*i), 1), lostAt(int64(2*i+1), 1)...))
		zw.Close()
		p := filepath.Join(dir, fmt.Sprintf("trace.jsonl.%04d.gz", i))
		os.WriteFile(p, buf.Bytes(), 0o600)
		paths = append(paths, p)
	}
	var ms runtime.MemStats
	r, err := Open(paths, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	if ms.HeapAlloc > 64<<20 {
		t.Errorf("%d files open: %d MiB of heap", n, ms.HeapAlloc>>20)
	}
	for i := 0; i < 2*n; i++ {
		e, err := r.Next()
		if err != nil || e.Time.Unix() != int64(i) {
			t.Fatalf("event %d: %v at %d", i, err, e.Time.Unix())
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("after the last: %v", err)
	}
}
