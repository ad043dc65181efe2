// Package record writes traces to files that survive crashes: JSON Lines,
// whole lines only, flushed to the disk every second and on close.
package record

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/porttrace/porttrace/internal/output"
	"github.com/porttrace/porttrace/tracer"
)

// FlushInterval bounds how long a written event may sit in memory.
const FlushInterval = time.Second

// Options of a recording.
type Options struct {
	Force bool // replace an existing file
	// RotateSize starts a new file once the current one holds this many
	// bytes; 0 never rotates. Rotated files are named PATH.<UTC time>.
	RotateSize int64
	RotateKeep int  // rotated files to keep (0: all)
	Compress   bool // gzip rotated files (PATH.<time>.gz)
	// OnError is told, once, why recording stopped.
	OnError func(error)
}

// Writer appends events as JSON Lines to a file.
type Writer struct {
	path    string
	opts    Options
	size    int64
	zipping sync.WaitGroup
	mu      sync.Mutex
	nf      *NewFile // the file as created: until Commit, maybe beside its name
	f       *os.File
	pending []byte // whole lines not yet handed to the kernel
	dirty   bool   // written since the last fsync
	buf     []byte
	err     error // first write error; recording stops there
	dropped uint64
	done    chan struct{}
	wg      sync.WaitGroup
}

// Create opens path for a new recording with mode 0600 (see CreateNew). An
// existing file is refused unless force is set, so nothing recorded is lost
// by accident; with force, it is replaced at Commit, once tracing has
// started.
func Create(path string, opts Options) (*Writer, error) {
	nf, err := CreateNew(path, opts.Force)
	if err != nil {
		return nil, fmt.Errorf("create recording: %w", err)
	}
	w := &Writer{path: path, opts: opts, nf: nf, f: nf.File, pending: make([]byte, 0, pendingMax), done: make(chan struct{})}
	w.wg.Add(1)
	go w.flusher()
	return w, nil
}

// Commit puts the recording at its name, replacing the file --force was
// given for. Call it once tracing has started; Close commits too.
func (w *Writer) Commit() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.nf.Commit()
}

// Abort stops a recording that never started: the file is removed, and a
// file --force was to replace stays as it was.
func (w *Writer) Abort() {
	close(w.done)
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.nf.Abort()
}

// Write appends one event. After a write error it only counts what it could
// not write; Err says why.
func (w *Writer) Write(e *tracer.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		w.dropped++
		return
	}
	n := len(w.pending)
	w.pending = output.AppendJSON(w.pending, e)
	w.size += int64(len(w.pending) - n)
	if len(w.pending) >= pendingMax {
		w.flush()
	}
	if w.opts.RotateSize > 0 && w.size >= w.opts.RotateSize && w.nf.Committed() {
		w.rotate()
	}
}

// pendingMax is how much is gathered before it is written.
const pendingMax = 256 << 10

// flush hands the pending lines to the kernel. On an error, the lines not
// written whole are counted as dropped. Caller holds mu.
func (w *Writer) flush() {
	if w.err != nil || len(w.pending) == 0 {
		return
	}
	n, err := w.f.Write(w.pending)
	if err != nil {
		// A line cut by the error is lost as well: count what follows the
		// last newline written.
		w.dropped += uint64(bytes.Count(w.pending[n:], []byte{'\n'}))
		w.pending = w.pending[:0]
		w.fail(err)
		return
	}
	w.pending = w.pending[:0]
	w.dirty = true
}

func (w *Writer) fail(err error) {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	w.err = fmt.Errorf("recording to %s failed: %w; recording stopped, what was written before is intact; tracing goes on", w.path, err)
	if w.opts.OnError != nil {
		w.opts.OnError(w.err)
	}
}

// rotate closes the current file under a dated name and starts a new one.
// Caller holds mu.
func (w *Writer) rotate() {
	w.sync()
	if w.err != nil {
		return
	}
	if err := w.f.Close(); err != nil {
		w.fail(err)
		return
	}
	old := fmt.Sprintf("%s.%s", w.path, time.Now().UTC().Format(stampLayout))
	if err := renameNoReplace(w.path, old); err != nil {
		w.fail(fmt.Errorf("rotate: %w", err))
		return
	}
	f, err := createExcl(w.path)
	if err != nil {
		w.fail(fmt.Errorf("rotate: %w", err))
		return
	}
	w.f, w.size = f, 0
	if w.opts.Compress {
		w.zipping.Wait() // one at a time, so rotated files are pruned in order
		w.zipping.Add(1)
		go func() {
			defer w.zipping.Done()
			if err := gzipFile(old); err != nil && w.opts.OnError != nil {
				w.opts.OnError(fmt.Errorf("compress %s: %w; it is kept uncompressed and recording goes on", old, err))
			}
			w.prune()
		}()
	} else {
		w.prune()
	}
}

// gzipFile replaces path by path.gz; on any error the original stays. The
// directory may be writable by others: the temporary file is created
// exclusively, and neither it nor the .gz name is ever followed or replaced.
func gzipFile(path string) error {
	in, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := path + ".gz.tmp"
	out, err := createExcl(tmp)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s already exists (porttrace did not make it): remove it", tmp)
	}
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(out)
	_, err = io.Copy(zw, in)
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = renameNoReplace(tmp, path+".gz")
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Remove(path)
}

// prune removes the oldest rotated files beyond RotateKeep.
func (w *Writer) prune() {
	if w.opts.RotateKeep <= 0 {
		return
	}
	old, _ := Rotated(w.path)
	for len(old) > w.opts.RotateKeep {
		os.Remove(old[0])
		old = old[1:]
	}
}

// stampLayout is the UTC time a rotated file's name ends with.
const stampLayout = "20060102T150405.000000000Z"

// Rotated lists the rotated files of the recording at path, oldest first:
// only regular files named as porttrace names them, PATH.<stamp> or
// PATH.<stamp>.gz. Anything else beside them (trace.jsonl.1, a .bak, a
// symlink, a directory) is not porttrace's to count or delete.
func Rotated(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range entries {
		if d.Type().IsRegular() && isRotatedName(d.Name(), base) {
			out = append(out, filepath.Join(filepath.Dir(path), d.Name()))
		}
	}
	sort.Strings(out) // the UTC stamp sorts by time
	return out, nil
}

// isRotatedName reports whether name is base.<stamp> or base.<stamp>.gz.
func isRotatedName(name, base string) bool {
	rest, ok := strings.CutPrefix(name, base+".")
	if !ok {
		return false
	}
	rest = strings.TrimSuffix(rest, ".gz")
	if len(rest) != len(stampLayout) {
		return false
	}
	_, err := time.Parse(stampLayout, rest)
	return err == nil
}

func (w *Writer) flusher() {
	defer w.wg.Done()
	tk := time.NewTicker(FlushInterval)
	defer tk.Stop()
	for {
		select {
		case <-w.done:
			return
		case <-tk.C:
			w.mu.Lock()
			w.sync()
			w.mu.Unlock()
		}
	}
}

// sync pushes buffered lines to the disk. Caller holds mu.
func (w *Writer) sync() {
	w.flush()
	if w.err != nil || !w.dirty {
		return
	}
	w.dirty = false
	if err := w.f.Sync(); err != nil {
		w.fail(err)
	}
}

// Err is the error that stopped the recording, if any.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Dropped counts events not written because recording had stopped.
func (w *Writer) Dropped() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dropped
}

// Close flushes, syncs and closes the file, and waits for compression.
func (w *Writer) Close() error {
	close(w.done)
	w.wg.Wait()
	defer w.zipping.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sync()
	merr := w.nf.Commit()
	cerr := w.f.Close()
	if merr != nil {
		return merr
	}
	if w.err != nil {
		return w.err
	}
	if cerr != nil {
		return fmt.Errorf("close %s: %w", w.path, cerr)
	}
	return nil
}
