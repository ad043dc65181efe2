package record

import (
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/porttrace/porttrace/internal/output"
	"github.com/porttrace/porttrace/tracer"
)

func lostAt(sec int64, n uint64) []byte {
	e := tracer.Event{Kind: tracer.KindLost, Time: time.Unix(sec, 0), Count: n}
	return output.AppendJSON(nil, &e)
}

func readAll(t *testing.T, paths ...string) ([]tracer.Event, []string, *Reader) {
	t.Helper()
	var warns []string
	r, err := Open(paths, func(s string) { warns = append(warns, s) })
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var evs []tracer.Event
	for {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	return evs, warns, r
}

func TestReaderOrdersFilesAndReadsGzip(t *testing.T) {
	dir := t.TempDir()
	late := filepath.Join(dir, "late.jsonl")
	os.WriteFile(late, append(lostAt(30, 3), lostAt(40, 4)...), 0o600)
	early := filepath.Join(dir, "early.jsonl.gz")
	f, _ := os.Create(early)
	zw := gzip.NewWriter(f)
	zw.Write(append(lostAt(10, 1), lostAt(20, 2)...))
	zw.Close()
	f.Close()
	evs, warns, r := readAll(t, late, early)
	if len(evs) != 4 || len(warns) != 0 || r.Truncated() {
		t.Fatalf("read %d events, warnings %v", len(evs), warns)
	}
	for i, e := range evs {
		if e.Count != uint64(i+1) {
			t.Errorf("event %d has count %d: files not in time order", i, e.Count)
		}
	}
}

func TestReaderSurvivesDamage(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "cut.jsonl")
	data := append(append(lostAt(1, 1), "garbage line\n"...), lostAt(2, 2)...)
	cut := lostAt(3, 3)
	data = append(data, cut[:len(cut)/2]...) // SIGKILL mid-write
	os.WriteFile(p, data, 0o600)
	evs, warns, r := readAll(t, p)
	if len(evs) != 2 || !r.Truncated() || r.Skipped() != 1 {
		t.Fatalf("got %d events, truncated %v, skipped %d", len(evs), r.Truncated(), r.Skipped())
	}
	joined := strings.Join(warns, "\n")
	if !strings.Contains(joined, "line 2 is not a porttrace record") || !strings.Contains(joined, "line 4 is incomplete") {
		t.Errorf("warnings do not name the lines: %q", joined)
	}

	// A gzip file cut short: what decompressed is kept.
	gzp := filepath.Join(dir, "cut.jsonl.gz")
	f, _ := os.Create(gzp)
	zw := gzip.NewWriter(f)
	for i := 0; i < 2000; i++ {
		zw.Write(lostAt(int64(i), 1))
	}
	zw.Close()
	f.Close()
	st, _ := os.Stat(gzp)
	os.Truncate(gzp, st.Size()/2)
	evs, _, r = readAll(t, gzp)
	if len(evs) == 0 || len(evs) >= 2000 || !r.Truncated() {
		t.Errorf("cut gzip: %d events, truncated %v", len(evs), r.Truncated())
	}
}

func TestWriterRotatesCompressesAndPrunes(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "trace.jsonl")
	w, err := Create(p, Options{RotateSize: 4096, RotateKeep: 3, Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	for i := 0; i < n; i++ {
		e := tracer.Event{Kind: tracer.KindLost, Time: time.Unix(int64(i), 0), Count: uint64(i)}
		w.Write(&e)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rot, _ := Rotated(p)
	if len(rot) != 3 {
		t.Fatalf("rotated files: %v, want 3 kept", rot)
	}
	for _, f := range rot {
		if !strings.HasSuffix(f, ".gz") {
			t.Errorf("%s is not compressed", f)
		}
	}
	evs, warns, _ := readAll(t, append(rot, p)...)
	if len(warns) != 0 {
		t.Errorf("warnings: %v", warns)
	}
	// The kept files hold the newest events, in order, through the last.
	for i := 1; i < len(evs); i++ {
		if evs[i].Count != evs[i-1].Count+1 {
			t.Fatalf("gap or disorder at %d: %d after %d", i, evs[i].Count, evs[i-1].Count)
		}
	}
	if evs[len(evs)-1].Count != n-1 {
		t.Errorf("last event %d, want %d", evs[len(evs)-1].Count, n-1)
	}
}

// Whatever a file holds, reading it ends without a panic, and every event
// it yields is one the writer could have written.
func FuzzReader(f *testing.F) {
	f.Add(append(lostAt(1, 1), lostAt(2, 2)...))
	f.Add([]byte("{\"event\":\"alloc\",\"time\":\"2026-11-25T03:12:00Z\"}\n\x1f\x8b garbage\n{"))
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "f.jsonl")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := Open([]string{p}, func(string) {})
		if err != nil {
			return
		}
		defer r.Close()
		for i := 0; ; i++ {
			e, err := r.Next()
			if err != nil {
				return
			}
			if e.Kind == 0 || e.Time.IsZero() {
				t.Fatalf("event %d has no kind or time: %+v", i, e)
			}
		}
	})
}
